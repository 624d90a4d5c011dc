// A GEMM specialised for 1x1 convolutions with pre-packed weights: the weights are packed once at
// load (panels of 32 output channels), so a call packs nothing, and bias, residual and ReLU6 are
// applied while the output block is still in registers: 8x32 blocks on AVX-512, 6x16 blocks (the classic
// Haswell shape: 12 accumulators, 2 panel loads and 6 broadcasts per k) on AVX2 + FMA, same packing.
// Other CPUs use BLAS.
// Intrinsics rather than vector extensions: clang then keeps the broadcasts as FMA memory operands and
// the tails as masked stores (the vector-extension version ran at half the FLOP rate on small k).
#include "CKernels.h"
#include "row_cases.h"

#include <math.h>
#include <stddef.h>
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

void hk_gemm_pack(const float *weight, long n, long k, float *packed) {
    long panels = (n + NR - 1) / NR;
    for (long p = 0; p < panels; p++) {
        float *panel = packed + p * k * NR;
        for (long kk = 0; kk < k; kk++) {
            for (long j = 0; j < NR; j++) {
                long col = p * NR + j;
                panel[kk * NR + j] = col < n ? weight[col * k + kk] : 0.0f;
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

/* rows x 16 block of one half of a panel on AVX2: columns (1...16) of them are real; the panel is
   zero-padded, so loads are whole and only the bias, residual and stores are masked. */
static inline __attribute__((always_inline)) AVX2 void
block_avx2(const float *a, long lda, long k, const float *half_panel, const float *bias, const float *residual,
           long ldc, int activation, float *c, long columns, const int rows) {
    __m256 acc[MR2][2];
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (long kk = 0; kk < k; kk++) {
        __m256 b0 = _mm256_load_ps(half_panel + kk * NR);
        __m256 b1 = _mm256_load_ps(half_panel + kk * NR + 8);
        for (int r = 0; r < rows; r++) {
            __m256 x = _mm256_broadcast_ss(a + r * lda + kk);
            acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int h = 0; h < 2; h++) {
        long remaining = columns - 8 * h;
        if (remaining <= 0) break;
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(remaining < 8 ? remaining : 8)), lanes);
        __m256 b = _mm256_maskload_ps(bias + 8 * h, mask);
        for (int r = 0; r < rows; r++) {
            __m256 y = _mm256_add_ps(acc[r][h], b);
            if (residual != NULL) y = _mm256_add_ps(y, _mm256_maskload_ps(residual + r * ldc + 8 * h, mask));
            if (activation == HK_ACTIVATION_RELU6) y = _mm256_min_ps(_mm256_max_ps(y, zero), six);
            _mm256_maskstore_ps(c + r * ldc + 8 * h, mask, y);
        }
    }
    if (activation == HK_ACTIVATION_QUICK_GELU) {
        /* On the stored block, still in L1: a whole half panel is one 16-float vector. */
        for (int r = 0; r < rows; r++) {
            float *row = c + r * ldc;
            if (columns == 16) {
                QUICK_GELU(*(v16u *)row, *(v16u *)row);
            } else {
                for (long j = 0; j < columns; j++) row[j] = row[j] / (1.0f + expf(-1.702f * row[j]));
            }
        }
    }
}

static AVX2 void panels_avx2(const float *a, long lda, long row_begin, long row_end, long k, const float *packed,
                             long n, const float *bias, const float *residual, int activation, float *c, long ldc,
                             long panel_begin, long panel_end) {
    const long row_block = 60;
    for (long i0 = row_begin; i0 < row_end; i0 += row_block) {
        long i1 = i0 + row_block < row_end ? i0 + row_block : row_end;
        for (long p = panel_begin; p < panel_end; p++) {
            for (long h = 0; h < 2; h++) {
                long columns = n - p * NR - 16 * h;
                if (columns <= 0) break;
                if (columns > 16) columns = 16;
                const float *half_panel = packed + p * k * NR + 16 * h;
                const float *half_bias = bias + p * NR + 16 * h;
                for (long i = i0; i < i1; i += MR2) {
                    long rows = i1 - i >= MR2 ? MR2 : i1 - i;
                    const float *ai = a + i * lda;
                    const float *ri = residual != NULL ? residual + i * ldc + p * NR + 16 * h : NULL;
                    float *ci = c + i * ldc + p * NR + 16 * h;
#define HALF2(R) block_avx2(ai, lda, k, half_panel, half_bias, ri, ldc, activation, ci, columns, R)
                    switch (rows) {
                    case 6: HALF2(6); break;
                    case 5: HALF2(5); break;
                    case 4: HALF2(4); break;
                    case 3: HALF2(3); break;
                    case 2: HALF2(2); break;
                    default: HALF2(1); break;
                    }
#undef HALF2
                }
            }
        }
    }
}

void hk_gemm_strided_avx2(const float *a, long lda, long row_begin, long row_end, long k, const float *packed, long n,
                          const float *bias, const float *residual, int activation, float *c, long ldc,
                          long panel_begin, long panel_end) {
    panels_avx2(a, lda, row_begin, row_end, k, packed, n, bias, residual, activation, c, ldc, panel_begin, panel_end);
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
        panels_avx2(a, lda, row_begin, row_end, k, packed, n, bias, residual, activation, c, ldc, panel_begin, panel_end);
    }
}
