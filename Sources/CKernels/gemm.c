// A GEMM specialised for 1x1 convolutions with pre-packed weights: the weights are packed once at
// load (panels of 32 output channels), so a call packs nothing, and bias, residual and ReLU6 are
// applied while the output block is still in registers: 8x32 blocks on AVX-512; on AVX2 + FMA 6x16
// blocks (the classic Haswell shape: 12 accumulators, 2 panel loads and 6 broadcasts per k) over
// cache blocks of A packed per call, the panels stored as two 16-channel halves. Other CPUs use BLAS.
// Intrinsics rather than vector extensions: clang then keeps the broadcasts as FMA memory operands and
// the tails as masked stores (the vector-extension version ran at half the FLOP rate on small k).
#include "CKernels.h"
#include "row_cases.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <immintrin.h>

#include "vector_math.h"

#define NR 32
#define MR 8
#define AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))

int hk_gemm_available(void) {
    static int available = -1; /* racing first calls compute the same value */
    if (available < 0) {
        __builtin_cpu_init();
        available = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
    }
    return available;
}

int hk_gemm_avx2_available(void) {
    static int available = -1;
    if (available < 0) {
        __builtin_cpu_init();
        available = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return available;
}

int hk_gemm_packed_available(void) { return hk_gemm_available() || hk_gemm_avx2_available(); }

long hk_gemm_packed_count(long n, long k) { return (n + NR - 1) / NR * NR * k; }

/* Strips of `width` output channels, each [k][width], over the channels padded to whole 32-channel
   panels with zero weights: width 32 is the AVX-512 layout, width 16 the AVX2 one (a panel's two halves
   one after the other, the same addresses for the panels). */
static void pack_strips(const float *weight, long n, long k, long width, float *packed) {
    long strips = (n + NR - 1) / NR * (NR / width);
    for (long strip = 0; strip < strips; strip++) {
        float *out = packed + strip * k * width;
        for (long kk = 0; kk < k; kk++) {
            for (long j = 0; j < width; j++) {
                long col = strip * width + j;
                out[kk * width + j] = col < n ? weight[col * k + kk] : 0.0f;
            }
        }
    }
}

/* rows x (16 * halves) block, halves = 2 for a full panel, 1 when at most 16 columns are left (the
   zero half of the panel is skipped). rows and halves are constants at each call site (always_inline),
   so the accumulators live in registers; columns < 16 * halves use masked loads and stores. */
static inline __attribute__((always_inline)) AVX512 void
block(const float *a, long lda, long k, const float *panel, const float *bias,
      const float *residual, long ldc, int activation, float *c, long columns, const int rows, const int halves,
      const int quick_gelu) {
    __m512 acc[MR][2];
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (long kk = 0; kk < k; kk++) {
        __m512 b0 = _mm512_load_ps(panel + kk * NR);
        __m512 b1 = halves == 2 ? _mm512_load_ps(panel + kk * NR + 16) : b0;
        for (int r = 0; r < rows; r++) {
            __m512 x = _mm512_set1_ps(a[r * lda + kk]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            if (halves == 2) acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (int h = 0; h < halves; h++) {
        long remaining = columns - 16 * h;
        __mmask16 mask = remaining >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << remaining) - 1);
        __m512 b = _mm512_maskz_loadu_ps(mask, bias + 16 * h);
        for (int r = 0; r < rows; r++) {
            __m512 y = _mm512_add_ps(acc[r][h], b);
            if (residual != NULL) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, residual + r * ldc + 16 * h));
            if (quick_gelu) {
                v16 g;
                QUICK_GELU(g, (v16)y);
                y = (__m512)g;
            } else if (activation == HK_ACTIVATION_RELU6) {
                y = _mm512_min_ps(_mm512_max_ps(y, zero), six);
            }
            _mm512_mask_storeu_ps(c + r * ldc + 16 * h, mask, y);
        }
    }
}

void hk_gemm_bias_activation(const float *a, long row_begin, long row_end, long k, const float *packed,
                             long n, const float *bias, const float *residual, int activation, float *c) {
    hk_gemm_strided(a, k, row_begin, row_end, k, packed, n, bias, residual, activation, c, n, 0, (n + NR - 1) / NR);
}

static AVX512 void panels_avx512(const float *a, long lda, long row_begin, long row_end, long k, const float *packed,
                                 long n, const float *bias, const float *residual, int activation, float *c, long ldc,
                                 long panel_begin, long panel_end) {
    const long panels = (n + NR - 1) / NR;
    /* Row blocks of 64 keep A's rows in L1/L2 while every weight panel passes over them. */
    const long row_block = 64;
    for (long i0 = row_begin; i0 < row_end; i0 += row_block) {
        long i1 = i0 + row_block < row_end ? i0 + row_block : row_end;
        for (long p = panel_begin; p < panel_end; p++) {
            const float *panel = packed + p * k * NR;
            const float *panel_bias = bias + p * NR;
            long columns = p == panels - 1 ? n - p * NR : NR;
            for (long i = i0; i < i1; i += MR) {
                long rows = i1 - i >= MR ? MR : i1 - i;
                const float *ai = a + i * lda;
                const float *ri = residual != NULL ? residual + i * ldc + p * NR : NULL;
                float *ci = c + i * ldc + p * NR;
/* quick_gelu a constant at each call site: the identity and ReLU6 blocks carry none of its code. */
#define FULL(R) block(ai, lda, k, panel, panel_bias, ri, ldc, activation, ci, columns, R, 2, 0)
#define HALF(R) block(ai, lda, k, panel, panel_bias, ri, ldc, activation, ci, columns, R, 1, 0)
#define FULL_GELU(R) block(ai, lda, k, panel, panel_bias, ri, ldc, activation, ci, columns, R, 2, 1)
#define HALF_GELU(R) block(ai, lda, k, panel, panel_bias, ri, ldc, activation, ci, columns, R, 1, 1)
                if (activation == HK_ACTIVATION_QUICK_GELU) {
                    if (columns > 16) { ROW_CASES(FULL_GELU) } else { ROW_CASES(HALF_GELU) }
                } else {
                    if (columns > 16) { ROW_CASES(FULL) } else { ROW_CASES(HALF) }
                }
#undef FULL
#undef HALF
#undef FULL_GELU
#undef HALF_GELU
            }
        }
    }
}

#define AVX2 __attribute__((target("avx2,fma")))
#define MR2 6
#define HALF 16

/* The strip width of the kernel hk_gemm_strided runs here: hk_gemm_pack and hk_gemm_packed_offset
   follow it. */
static long strip_width(void) { return hk_gemm_available() ? NR : HALF; }

void hk_gemm_pack(const float *weight, long n, long k, float *packed) { pack_strips(weight, n, k, strip_width(), packed); }

long hk_gemm_packed_offset(long o, long i, long k) {
    long width = strip_width();
    return o / width * k * width + i * width + o % width;
}
/* Cache blocking of the AVX2 kernel (BLIS's shape for this register block): a kc x 16 half panel of B
   (16 KiB) stays in L1 while every 6-row micro-panel of an mc x kc block of A (packed, 144 KiB, in L2)
   passes over it, and that A block stays in L2 while every half panel of the output passes. Before it
   (A read in place, 60-row blocks, no k blocks) both operands streamed from L2 on every k, and A from
   L3 once 60 rows x k no longer fitted: 67-94% of OpenBLAS on many rows. kc 512-1024 and mc 72-288
   measured the same within noise on Zen 2 (BENCHMARKS.md). */
#define HK_AVX2_KC 256
#define HK_AVX2_MC 144

void hk_gemm_pack_avx2(const float *weight, long n, long k, float *packed) { pack_strips(weight, n, k, HALF, packed); }

/* 8 floats at p: plain when the whole half panel is real (mask then all ones), masked otherwise. On AMD
   a masked store costs about ten plain ones, and 6 x 2 of them per tile and k block were 15% of the
   kernel's time. */
static inline __attribute__((always_inline)) AVX2 __m256 load8(const float *p, int whole, __m256i mask) {
    return whole ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

static inline __attribute__((always_inline)) AVX2 void store8(float *p, int whole, __m256i mask, __m256 v) {
    if (whole) {
        _mm256_storeu_ps(p, v);
    } else {
        _mm256_maskstore_ps(p, mask, v);
    }
}

/* rows x 16 block over kc values of k: a_packed is [kc][6] (rows <= 6 of each 6 are real), b [kc][16].
   The accumulators start from `start` (rows x 16, ldc apart: the residual on the first k block, the
   partial sums in c on later ones) or zero; the last k block adds the bias and applies the activation.
   Only the first `columns` (1...16) columns of start and c are read or written. */
static inline __attribute__((always_inline)) AVX2 void
micro_avx2(const float *a_packed, long kc, const float *b, const float *start, long ldc, int last, const float *bias,
           int activation, float *c, long columns, const int rows) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(columns < 8 ? columns : 8)), lanes);
    const __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(columns - 8)), lanes);
    __m256 acc[MR2][2];
    const int whole = columns == HALF;
    for (int r = 0; r < rows; r++) {
        if (start != NULL) {
            acc[r][0] = load8(start + r * ldc, whole, mask0);
            acc[r][1] = load8(start + r * ldc + 8, whole, mask1);
        } else {
            acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        }
    }
    for (long kk = 0; kk < kc; kk++) {
        __m256 b0 = _mm256_load_ps(b + kk * HALF);
        __m256 b1 = _mm256_load_ps(b + kk * HALF + 8);
        for (int r = 0; r < rows; r++) {
            __m256 x = _mm256_broadcast_ss(a_packed + kk * MR2 + r);
            acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    if (!last) {
        for (int r = 0; r < rows; r++) {
            store8(c + r * ldc, whole, mask0, acc[r][0]);
            store8(c + r * ldc + 8, whole, mask1, acc[r][1]);
        }
        return;
    }
    const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    const __m256 bias0 = load8(bias, whole, mask0), bias1 = load8(bias + 8, whole, mask1);
    for (int r = 0; r < rows; r++) {
        __m256 y0 = _mm256_add_ps(acc[r][0], bias0), y1 = _mm256_add_ps(acc[r][1], bias1);
        if (activation == HK_ACTIVATION_RELU6) {
            y0 = _mm256_min_ps(_mm256_max_ps(y0, zero), six);
            y1 = _mm256_min_ps(_mm256_max_ps(y1, zero), six);
        }
        store8(c + r * ldc, whole, mask0, y0);
        store8(c + r * ldc + 8, whole, mask1, y1);
    }
    if (activation == HK_ACTIVATION_QUICK_GELU) {
        /* On the stored block, still in L1: a whole half panel is one 16-float vector. */
        for (int r = 0; r < rows; r++) {
            float *row = c + r * ldc;
            if (columns == HALF) {
                QUICK_GELU(*(v16u *)row, *(v16u *)row);
            } else {
                for (long j = 0; j < columns; j++) row[j] = row[j] / (1.0f + expf(-1.702f * row[j]));
            }
        }
    }
}

/* Rows [i0, i0 + rows) x k values [k0, k0 + kc) of A as 6-row micro-panels, each [kc][6], the rows past
   `rows` in the last one zero. */
static AVX2 void pack_a_avx2(const float *a, long lda, long i0, long rows, long k0, long kc, float *a_packed) {
    for (long m = 0; m < rows; m += MR2) {
        float *panel = a_packed + m * kc;
        long real = rows - m < MR2 ? rows - m : MR2;
        for (long r = 0; r < MR2; r++) {
            const float *row = a + (i0 + m + r) * lda + k0;
            if (r < real) {
                for (long kk = 0; kk < kc; kk++) panel[kk * MR2 + r] = row[kk];
            } else {
                for (long kk = 0; kk < kc; kk++) panel[kk * MR2 + r] = 0.0f;
            }
        }
    }
}

static AVX2 void panels_avx2(const float *a, long lda, long row_begin, long row_end, long k, const float *packed,
                             long n, const float *bias, const float *residual, int activation, float *c, long ldc,
                             long panel_begin, long panel_end, float *a_packed) {
    const int large_weights = n * k * (long)sizeof(float) >= 2L << 20;
    for (long i0 = row_begin; i0 < row_end; i0 += HK_AVX2_MC) {
        long block_rows = row_end - i0 < HK_AVX2_MC ? row_end - i0 : HK_AVX2_MC;
        const long tiles = (block_rows + MR2 - 1) / MR2;
        const int prefetch = large_weights && tiles >= 8;
        for (long k0 = 0; k0 < k; k0 += HK_AVX2_KC) {
            long kc = k - k0 < HK_AVX2_KC ? k - k0 : HK_AVX2_KC;
            int last = k0 + kc == k;
            /* A half panel's k block is kc lines of 64 bytes; each tile prefetches its share of the next. */
            const long lines = kc * HALF * (long)sizeof(float) / 64, share = (lines + tiles - 1) / tiles;
            pack_a_avx2(a, lda, i0, block_rows, k0, kc, a_packed);
            for (long p = panel_begin; p < panel_end; p++) {
                for (long h = 0; h < 2; h++) {
                    long columns = n - p * NR - HALF * h;
                    if (columns <= 0) break;
                    if (columns > HALF) columns = HALF;
                    const float *b = packed + p * k * NR + h * k * HALF + k0 * HALF;
                    const float *half_bias = bias + p * NR + HALF * h;
                    /* The next half panel's k block (k x 16 floats further on in this layout), fetched
                       into L2 a share per tile: with few rows the weights come from DRAM and every
                       half panel would otherwise start by waiting for it. Only for weights beyond L2 and
                       enough tiles to spread it thin: on two tiles (a short sentence) or small weights
                       (EfficientNet's) it cost 10-15%. */
                    int more = prefetch && (h == 0 ? p * NR + HALF < n : p + 1 < panel_end);
                    const char *next_b = (const char *)(b + k * HALF);
                    for (long m = 0; m < block_rows; m += MR2) {
                        long rows = block_rows - m < MR2 ? block_rows - m : MR2;
                        if (more) {
                            long first = m / MR2 * share;
                            for (long l = first; l < first + share && l < lines; l++)
                                _mm_prefetch(next_b + l * 64, _MM_HINT_T1);
                        }
                        long offset = (i0 + m) * ldc + p * NR + HALF * h;
                        float *ci = c + offset;
                        const float *start = k0 > 0 ? ci : residual != NULL ? residual + offset : NULL;
                        if (m + MR2 < block_rows) {
                            /* The next tile's output (and its residual) is usually in L3 by now: ask for it
                               while this tile's kc x 6 x 16 FMAs run, not when its loads would wait. */
                            for (int r = 0; r < MR2; r++) {
                                _mm_prefetch((const char *)(ci + (MR2 + r) * ldc), _MM_HINT_T0);
                                if (k0 == 0 && residual != NULL && residual != c)
                                    _mm_prefetch((const char *)(start + (MR2 + r) * ldc), _MM_HINT_T0);
                            }
                        }
#define MICRO(R) micro_avx2(a_packed + m * kc, kc, b, start, ldc, last, half_bias, activation, ci, columns, R)
                        switch (rows) {
                        case 6: MICRO(6); break;
                        case 5: MICRO(5); break;
                        case 4: MICRO(4); break;
                        case 3: MICRO(3); break;
                        case 2: MICRO(2); break;
                        default: MICRO(1); break;
                        }
#undef MICRO
                    }
                }
            }
        }
    }
}

void hk_gemm_strided_avx2(const float *a, long lda, long row_begin, long row_end, long k, const float *packed, long n,
                          const float *bias, const float *residual, int activation, float *c, long ldc,
                          long panel_begin, long panel_end) {
    if (row_end <= row_begin || panel_end <= panel_begin || k <= 0) return;
    /* The packed A block: at most mc rows (rounded up to whole micro-panels) x kc. On the stack when
       small (few rows: per-token calls), else on the heap, so a 512 KiB thread stack is never at risk. */
    long rows = row_end - row_begin < HK_AVX2_MC ? row_end - row_begin : HK_AVX2_MC;
    long count = (rows + MR2 - 1) / MR2 * MR2 * (k < HK_AVX2_KC ? k : HK_AVX2_KC);
    float local[MR2 * 4 * HK_AVX2_KC] __attribute__((aligned(64)));
    float *a_packed = count <= (long)(sizeof local / sizeof local[0]) ? local : aligned_alloc(64, (size_t)((count * 4 + 63) / 64 * 64));
    if (a_packed == NULL) abort(); /* 144 KiB; a process out of memory this far is lost anyway */
    panels_avx2(a, lda, row_begin, row_end, k, packed, n, bias, residual, activation, c, ldc, panel_begin, panel_end,
                a_packed);
    if (a_packed != local) free(a_packed);
}

void hk_gemm_bias_activation_panels(const float *a, long row_begin, long row_end, long k, const float *packed,
                                    long n, const float *bias, const float *residual, int activation, float *c,
                                    long panel_begin, long panel_end) {
    hk_gemm_strided(a, k, row_begin, row_end, k, packed, n, bias, residual, activation, c, n, panel_begin, panel_end);
}

void hk_gemm_strided(const float *a, long lda, long row_begin, long row_end, long k, const float *packed, long n,
                     const float *bias, const float *residual, int activation, float *c, long ldc,
                     long panel_begin, long panel_end) {
    if (hk_gemm_available()) {
        panels_avx512(a, lda, row_begin, row_end, k, packed, n, bias, residual, activation, c, ldc, panel_begin, panel_end);
    } else {
        hk_gemm_strided_avx2(a, lda, row_begin, row_end, k, packed, n, bias, residual, activation, c, ldc, panel_begin,
                             panel_end);
    }
}
