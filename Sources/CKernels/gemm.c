// A GEMM specialised for 1x1 convolutions with pre-packed weights: the weights are packed once at
// load (panels of 32 output channels), so a call packs nothing, and bias, residual and ReLU6 are
// applied while the 8x32 output block is still in registers. AVX-512 only; other CPUs use BLAS.
#include "CKernels.h"

#include <stddef.h>
#include <string.h>

#define NR 32
#define MR 8
#define AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));

int hk_gemm_available(void) {
    static int available = -1; /* racing first calls compute the same value */
    if (available < 0) {
        __builtin_cpu_init();
        available = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
    }
    return available;
}

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

/* rows x 32 block: rows is a compile-time constant at each call site (always_inline), so the
   accumulators live in registers. */
static inline __attribute__((always_inline)) AVX512 void
block(const float *a, long lda, long k, const float *panel, const float *bias, const float *residual, long ldc,
      int relu6, float *c, long columns, const int rows) {
    v16 acc[MR][2];
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = (v16){0};
    for (long kk = 0; kk < k; kk++) {
        v16 b0 = *(const v16 *)(panel + kk * NR);
        v16 b1 = *(const v16 *)(panel + kk * NR + 16);
        for (int r = 0; r < rows; r++) {
            float s = a[r * lda + kk];
            v16 x = {s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s};
            acc[r][0] += x * b0;
            acc[r][1] += x * b1;
        }
    }
    v16 bias0 = *(const v16u *)bias, bias1 = *(const v16u *)(bias + 16);
    const v16 zero = {0}, six = zero + 6.0f;
    for (int r = 0; r < rows; r++) {
        v16 y0 = acc[r][0] + bias0, y1 = acc[r][1] + bias1;
        float *out = c + r * ldc;
        if (columns == NR) {
            if (residual != NULL) {
                y0 += *(const v16u *)(residual + r * ldc);
                y1 += *(const v16u *)(residual + r * ldc + 16);
            }
            if (relu6) {
                y0 = __builtin_elementwise_min(__builtin_elementwise_max(y0, zero), six);
                y1 = __builtin_elementwise_min(__builtin_elementwise_max(y1, zero), six);
            }
            *(v16u *)out = y0;
            *(v16u *)(out + 16) = y1;
        } else {
            float tmp[NR];
            *(v16u *)tmp = y0;
            *(v16u *)(tmp + 16) = y1;
            for (long j = 0; j < columns; j++) {
                float v = tmp[j] + (residual != NULL ? residual[r * ldc + j] : 0.0f);
                if (relu6) v = v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
                out[j] = v;
            }
        }
    }
}

AVX512 void hk_gemm_bias_activation(const float *a, long row_begin, long row_end, long k, const float *packed,
                                    long n, const float *bias, const float *residual, int relu6, float *c) {
    /* Bias is read 32 at a time: pad the last panel's bias through a copy. */
    long panels = (n + NR - 1) / NR;
    float tail_bias[NR];
    long tail = n - (panels - 1) * NR;
    memset(tail_bias, 0, sizeof tail_bias);
    memcpy(tail_bias, bias + (panels - 1) * NR, (size_t)tail * sizeof(float));
    /* Row blocks of 64 keep A's rows in L2 while every weight panel passes over them. */
    const long row_block = 64;
    for (long i0 = row_begin; i0 < row_end; i0 += row_block) {
        long i1 = i0 + row_block < row_end ? i0 + row_block : row_end;
        for (long p = 0; p < panels; p++) {
            const float *panel = packed + p * k * NR;
            const float *panel_bias = p == panels - 1 ? tail_bias : bias + p * NR;
            long columns = p == panels - 1 ? tail : NR;
            for (long i = i0; i < i1; i += MR) {
                const float *ai = a + i * k;
                const float *ri = residual != NULL ? residual + i * n + p * NR : NULL;
                float *ci = c + i * n + p * NR;
                switch (i1 - i >= MR ? MR : i1 - i) {
                case 8: block(ai, k, k, panel, panel_bias, ri, n, relu6, ci, columns, 8); break;
                case 7: block(ai, k, k, panel, panel_bias, ri, n, relu6, ci, columns, 7); break;
                case 6: block(ai, k, k, panel, panel_bias, ri, n, relu6, ci, columns, 6); break;
                case 5: block(ai, k, k, panel, panel_bias, ri, n, relu6, ci, columns, 5); break;
                case 4: block(ai, k, k, panel, panel_bias, ri, n, relu6, ci, columns, 4); break;
                case 3: block(ai, k, k, panel, panel_bias, ri, n, relu6, ci, columns, 3); break;
                case 2: block(ai, k, k, panel, panel_bias, ri, n, relu6, ci, columns, 2); break;
                default: block(ai, k, k, panel, panel_bias, ri, n, relu6, ci, columns, 1); break;
                }
            }
        }
    }
}
