// The int8 counterpart of gemm.c for 1x1 convolutions: uint8 activations (asymmetric, per tensor) times
// int8 weights (symmetric, per output channel) with AVX-512 VNNI, exact int32 sums, and the epilogue
// (zero-point correction, per-channel scale, bias, residual, ReLU6, optional requantization to uint8)
// applied while the block is still in registers. Weights are packed once at load.
//
// vpdpbusd multiplies 4 adjacent unsigned bytes of one operand by 4 signed bytes of the other and adds
// the four products to a 32-bit lane without saturation. So a panel stores, for each group of 4 k
// values, 32 output channels x 4 bytes ([panel][k / 4][32][4]): two zmm loads, and each row's 4
// activation bytes are broadcast to all lanes. Blocks are 8 rows x 32 channels (16 accumulators), the
// fp32 kernel's shape (12-row blocks measured slower: 116 vs 198 GOPS at k 24, equal at k 1152).
//
// The scalar reference takes the same packed weights and arguments and returns bit-identical results:
// the same int32 sums, the same float operations in the same order (int32 -> float, one fused
// multiply-add, + residual, max/min), and the same rounding (see quantize_value).
#include "CKernels.h"
#include "row_cases.h"
#include "im2col.h"
#include "multiversion.h"

#include <math.h>
#include <stddef.h>
#include <string.h>
#include <immintrin.h>

#define NR HK_QGEMM_PANEL
#define MR HK_QGEMM_BLOCK_ROWS
#define VNNI __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,fma")))

int hk_qgemm_vnni_available(void) {
    static int available = -1; /* racing first calls compute the same value */
    if (available < 0) {
        __builtin_cpu_init();
        available = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                    __builtin_cpu_supports("avx512vnni");
    }
    return available;
}

static long groups_of_four(long k) { return (k + 3) / 4; }

long hk_qgemm_packed_size(long n, long k) { return (n + NR - 1) / NR * NR * groups_of_four(k) * 4; }

void hk_qgemm_pack(const int8_t *weight, long n, long k, int8_t *packed, int32_t *column_sums) {
    const long panels = (n + NR - 1) / NR, groups = groups_of_four(k);
    for (long p = 0; p < panels; p++) {
        int8_t *panel = packed + p * groups * NR * 4;
        for (long g = 0; g < groups; g++) {
            for (long j = 0; j < NR; j++) {
                long col = p * NR + j;
                for (long b = 0; b < 4; b++) {
                    long kk = 4 * g + b;
                    panel[(g * NR + j) * 4 + b] = col < n && kk < k ? weight[col * k + kk] : 0;
                }
            }
        }
    }
    if (column_sums != NULL) {
        for (long col = 0; col < n; col++) {
            int32_t sum = 0;
            for (long kk = 0; kk < k; kk++) sum += weight[col * k + kk];
            column_sums[col] = sum;
        }
    }
}

#include "quantize.h"

MULTIVERSION
void hk_quantize_u8(const float *x, long begin, long end, float inv_scale, int zero_point, uint8_t *q) {
    for (long i = begin; i < end; i++) q[i] = (uint8_t)quantize_value(x[i], inv_scale, zero_point);
}

/* im2col of an already quantized image: the padding given is the quantized 0.0. */
void hk_im2col_u8(const uint8_t *input, long height, long width, long channels, long kernel, long stride, long pad_top,
                  long pad_left, long out_height, long out_width, uint8_t padding, uint8_t *columns,
                  long row_begin, long row_end) {
    IM2COL_ROWS(uint8_t, input, height, width, channels, kernel, stride, pad_top, pad_left, out_height, out_width,
                padding, columns, row_begin, row_end);
}

MULTIVERSION
void hk_dequantize_u8(const uint8_t *q, long begin, long end, float scale, int zero_point, float *x) {
    for (long i = begin; i < end; i++) x[i] = (float)((int)q[i] - zero_point) * scale;
}

/* The epilogue of one output value (the reference's; the VNNI kernel does the same per vector). */
static inline float epilogue_value(int32_t sum, long row, long col, long n, const hk_qgemm_epilogue *e) {
    float y = fmaf((float)(sum + e->offset[col]), e->scale[col], e->bias[col]);
    if (e->residual != NULL) y += e->residual[row * n + col];
    if (e->relu6) {
        y = y > 0.0f ? y : 0.0f; /* as vmaxps(y, 0): NaN -> 0 */
        y = y < 6.0f ? y : 6.0f;
    }
    return y;
}

static void store_value(float y, long row, long col, long n, const hk_qgemm_epilogue *e) {
    if (e->output_u8 != NULL) {
        e->output_u8[row * n + col] = (uint8_t)quantize_value(y, e->output_inv_scale, e->output_zero_point);
    } else {
        e->output[row * n + col] = y;
    }
}

void hk_qgemm_reference(const uint8_t *a, long row_begin, long row_end, long k, const int8_t *packed, long n,
                        const hk_qgemm_epilogue *epilogue, long panel_begin, long panel_end) {
    const long groups = groups_of_four(k);
    for (long i = row_begin; i < row_end; i++) {
        for (long p = panel_begin; p < panel_end; p++) {
            const int8_t *panel = packed + p * groups * NR * 4;
            for (long j = 0; j < NR && p * NR + j < n; j++) {
                int32_t sum = 0;
                for (long kk = 0; kk < k; kk++) sum += (int32_t)a[i * k + kk] * (int32_t)panel[((kk / 4) * NR + j) * 4 + kk % 4];
                store_value(epilogue_value(sum, i, p * NR + j, n, epilogue), i, p * NR + j, n, epilogue);
            }
        }
    }
}

/* The last, partial group of 4 activation bytes of a row whose k is not a multiple of 4, broadcast:
   a masked load reads only the row's remaining k % 4 bytes (zeros beyond, no fault past the end). */
static inline __attribute__((always_inline)) VNNI __m512i broadcast_tail(const uint8_t *group, long left) {
    return _mm512_broadcastd_epi32(_mm_maskz_loadu_epi8((__mmask16)((1u << left) - 1), group));
}

/* rows x (16 * zmms) block, zmms = 2 for a full panel, 1 when at most 16 columns are left (the zero
   half of the panel is skipped); to_u8: requantized uint8 output, else float. rows, zmms and to_u8 are
   constants at each call site (always_inline), so the accumulators live in registers; columns < 16 * zmms
   use masked loads and stores. */
static inline __attribute__((always_inline)) VNNI void
qblock(const uint8_t *a, long k, const int8_t *panel, long row, long col, long n, long columns,
       const hk_qgemm_epilogue *e, const int rows, const int zmms, const int to_u8) {
    __m512i acc[MR][2];
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    const long full = k / 4, groups = groups_of_four(k);
    for (long g = 0; g < full; g++) {
        __m512i b0 = _mm512_load_si512((const void *)(panel + g * NR * 4));
        __m512i b1 = zmms == 2 ? _mm512_load_si512((const void *)(panel + g * NR * 4 + 64)) : b0;
        for (int r = 0; r < rows; r++) {
            int32_t word;
            memcpy(&word, a + r * k + 4 * g, 4);
            __m512i x = _mm512_set1_epi32(word);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, b0);
            if (zmms == 2) acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, b1);
        }
    }
    if (groups > full) {
        __m512i b0 = _mm512_load_si512((const void *)(panel + full * NR * 4));
        __m512i b1 = zmms == 2 ? _mm512_load_si512((const void *)(panel + full * NR * 4 + 64)) : b0;
        for (int r = 0; r < rows; r++) {
            __m512i x = broadcast_tail(a + r * k + 4 * full, k - 4 * full);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, b0);
            if (zmms == 2) acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, b1);
        }
    }
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    const __m512 low = _mm512_set1_ps(-512.0f), high = _mm512_set1_ps(512.0f);
    const __m512 inv_scale = _mm512_set1_ps(e->output_inv_scale);
    const __m512i zero_point = _mm512_set1_epi32(e->output_zero_point), zero_i = _mm512_setzero_si512();
    for (int h = 0; h < zmms; h++) {
        long remaining = columns - 16 * h, c0 = col + 16 * h;
        __mmask16 mask = remaining >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << remaining) - 1);
        __m512i offset = _mm512_maskz_loadu_epi32(mask, e->offset + c0);
        __m512 scale = _mm512_maskz_loadu_ps(mask, e->scale + c0);
        __m512 bias = _mm512_maskz_loadu_ps(mask, e->bias + c0);
        for (int r = 0; r < rows; r++) {
            __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc[r][h], offset)), scale, bias);
            if (e->residual != NULL) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, e->residual + (row + r) * n + c0));
            if (e->relu6) y = _mm512_min_ps(_mm512_max_ps(y, zero), six);
            if (to_u8) {
                /* quantize_value, vectorized: NaN -> 0, clamp, round half to even, + zero point, clamp. */
                __m512 t = _mm512_mul_ps(y, inv_scale);
                if (!e->relu6) { /* after ReLU6, t is neither NaN nor negative: these two change nothing */
                    t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, t, _CMP_ORD_Q), t);
                    t = _mm512_max_ps(t, low);
                }
                t = _mm512_min_ps(t, high);
                __m512i q = _mm512_max_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(t), zero_point), zero_i);
                _mm512_mask_cvtusepi32_storeu_epi8(e->output_u8 + (row + r) * n + c0, mask, q);
            } else {
                _mm512_mask_storeu_ps(e->output + (row + r) * n + c0, mask, y);
            }
        }
    }
}

VNNI void hk_qgemm_vnni(const uint8_t *a, long row_begin, long row_end, long k, const int8_t *packed, long n,
                        const hk_qgemm_epilogue *epilogue, long panel_begin, long panel_end) {
    const long panels = (n + NR - 1) / NR, groups = groups_of_four(k);
    const int to_u8 = epilogue->output_u8 != NULL;
    /* Row blocks of 64 keep A's rows in L1/L2 while every weight panel passes over them. */
    const long row_block = 64;
    for (long i0 = row_begin; i0 < row_end; i0 += row_block) {
        long i1 = i0 + row_block < row_end ? i0 + row_block : row_end;
        for (long p = panel_begin; p < panel_end; p++) {
            const int8_t *panel = packed + p * groups * NR * 4;
            long columns = p == panels - 1 ? n - p * NR : NR;
            for (long i = i0; i < i1; i += MR) {
                long rows = i1 - i >= MR ? MR : i1 - i;
                const uint8_t *ai = a + i * k;
#define BLOCK(R, ZMMS, U8) qblock(ai, k, panel, i, p * NR, n, columns, epilogue, R, ZMMS, U8)
#define FULL_F32(R) BLOCK(R, 2, 0)
#define HALF_F32(R) BLOCK(R, 1, 0)
#define FULL_U8(R) BLOCK(R, 2, 1)
#define HALF_U8(R) BLOCK(R, 1, 1)
                if (to_u8) {
                    if (columns > 16) { ROW_CASES(FULL_U8) } else { ROW_CASES(HALF_U8) }
                } else {
                    if (columns > 16) { ROW_CASES(FULL_F32) } else { ROW_CASES(HALF_F32) }
                }
#undef BLOCK
#undef FULL_F32
#undef HALF_F32
#undef FULL_U8
#undef HALF_U8
            }
        }
    }
}
