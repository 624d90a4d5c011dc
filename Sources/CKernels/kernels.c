#include "CKernels.h"
#include "depthwise.h"
#include "multiversion.h"
#include "quantize.h"
#include "im2col.h"

#include <math.h>
#include <stddef.h>

MULTIVERSION
void hk_bias_activation(float *out, long row_begin, long row_end, long columns, long ld, const float *bias,
                        const float *residual, int activation) {
    for (long r = row_begin; r < row_end; r++) {
        float *restrict row = out + r * ld;
        if (residual != NULL) {
            const float *restrict skip = residual + r * ld;
            for (long c = 0; c < columns; c++) row[c] += bias[c] + skip[c];
        } else {
            for (long c = 0; c < columns; c++) row[c] += bias[c];
        }
        if (activation == HK_ACTIVATION_RELU6) {
            for (long c = 0; c < columns; c++) row[c] = clamp6(row[c]);
        } else if (activation == HK_ACTIVATION_QUICK_GELU) {
            hk_quick_gelu(row, 0, columns);
        }
    }
}

/* The input rows output row `row` (of the flattened batch * out_height index) reads: rows[ky] is input
   row oy * stride - pad_top + ky of its image, NULL where that row is padding. */
static inline __attribute__((always_inline)) void
input_rows(const float *input, long row, long height, long width, long channels, long kernel, long stride,
           long pad_top, long out_height, const float *rows[]) {
    long n = row / out_height, oy = row % out_height;
    const float *image = input + n * height * width * channels;
    for (long ky = 0; ky < kernel; ky++) {
        long iy = oy * stride - pad_top + ky;
        rows[ky] = iy >= 0 && iy < height ? image + iy * width * channels : NULL;
    }
}

MULTIVERSION
void hk_depthwise_channels(const float *input, long height, long width, long channels, const float *weight,
                           const float *bias, long kernel, long stride, long pad_top, long pad_left, long out_height,
                           long out_width, int relu6, float *output, long row_begin, long row_end,
                           long channel_begin, long channel_end) {
    const float *rows[HK_MAX_KERNEL];
    for (long row = row_begin; row < row_end; row++) {
        input_rows(input, row, height, width, channels, kernel, stride, pad_top, out_height, rows);
        hk_depthwise_row(rows, width, channels, channel_begin, channel_end, weight, bias, kernel, stride, pad_left,
                         out_width, relu6, output + row * out_width * channels);
    }
}

MULTIVERSION
void hk_depthwise_channels_u8(const float *input, long height, long width, long channels, const float *weight,
                              const float *bias, long kernel, long stride, long pad_top, long pad_left, long out_height,
                              long out_width, int relu6, float *row_scratch, float inv_scale, int zero_point,
                              uint8_t *output, long row_begin, long row_end, long channel_begin, long channel_end) {
    const float *rows[HK_MAX_KERNEL];
    for (long row = row_begin; row < row_end; row++) {
        input_rows(input, row, height, width, channels, kernel, stride, pad_top, out_height, rows);
        /* The row in float only in scratch (still in L1), then its uint8 values where the map goes. */
        hk_depthwise_row(rows, width, channels, channel_begin, channel_end, weight, bias, kernel, stride, pad_left,
                         out_width, relu6, row_scratch);
        uint8_t *out = output + row * out_width * channels;
        for (long ox = 0; ox < out_width; ox++) {
            const float *x = row_scratch + ox * channels;
            uint8_t *q = out + ox * channels;
            for (long c = channel_begin; c < channel_end; c++) q[c] = (uint8_t)quantize_value(x[c], inv_scale, zero_point);
        }
    }
}

void hk_depthwise(const float *input, long height, long width, long channels, const float *weight,
                  const float *bias, long kernel, long stride, long pad_top, long pad_left, long out_height,
                  long out_width, int relu6, float *output, long row_begin, long row_end) {
    hk_depthwise_channels(input, height, width, channels, weight, bias, kernel, stride, pad_top, pad_left, out_height,
                          out_width, relu6, output, row_begin, row_end, 0, channels);
}

void hk_im2col(const float *input, long height, long width, long channels, long kernel, long stride, long pad_top,
               long pad_left, long out_height, long out_width, float *columns, long row_begin, long row_end) {
    IM2COL_ROWS(float, input, height, width, channels, kernel, stride, pad_top, pad_left, out_height, out_width, 0.0f,
                columns, row_begin, row_end);
}

typedef int v16i __attribute__((vector_size(64)));

/* exp for x <= 0 (down to underflow): 2^n * exp(r) with r in [-ln2/2, ln2/2] and a degree-7 Taylor
   polynomial (error < 2e-8 relative). */
#define AVX512_ONLY __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))

static inline __attribute__((always_inline)) AVX512_ONLY v16 exp_nonpositive16(v16 x) {
    const v16 zero = {0};
    x = __builtin_elementwise_max(x, zero - 87.0f);
    v16 n = __builtin_elementwise_round(x * 1.44269504088896341f);
    v16 r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
    v16 p = zero + (1.0f / 5040.0f);
    p = p * r + (1.0f / 720.0f);
    p = p * r + (1.0f / 120.0f);
    p = p * r + (1.0f / 24.0f);
    p = p * r + (1.0f / 6.0f);
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    v16i bits = (__builtin_convertvector(n, v16i) + 127) << 23;
    return p * (v16)bits;
}

/* erf(x) = 1 - erfc(|x|) with sign, erfc from Numerical Recipes' erfcc (Chebyshev fit). */
static inline __attribute__((always_inline)) AVX512_ONLY v16 erf16(v16 x) {
    const v16 zero = {0};
    v16 z = __builtin_elementwise_abs(x);
    v16 t = 1.0f / (1.0f + 0.5f * z);
    v16 poly = zero + 0.17087277f;
    poly = poly * t - 0.82215223f;
    poly = poly * t + 1.48851587f;
    poly = poly * t - 1.13520398f;
    poly = poly * t + 0.27886807f;
    poly = poly * t - 0.18628806f;
    poly = poly * t + 0.09678418f;
    poly = poly * t + 0.37409196f;
    poly = poly * t + 1.00002368f;
    poly = poly * t - 1.26551223f;
    v16 erfc = t * exp_nonpositive16(poly - z * z);
    v16 magnitude = 1.0f - erfc;
    return __builtin_elementwise_copysign(magnitude, x);
}

static AVX512_ONLY void bias_gelu_avx512(float *x, long row_begin, long row_end, long columns, const float *bias) {
    for (long r = row_begin; r < row_end; r++) {
        float *row = x + r * columns;
        long c = 0;
        for (; c + 16 <= columns; c += 16) {
            v16 v = *(const v16u *)(row + c) + (bias != NULL ? *(const v16u *)(bias + c) : (v16){0});
            *(v16u *)(row + c) = 0.5f * v * (1.0f + erf16(v * 0.70710678118654752f));
        }
        for (; c < columns; c++) {
            float v = row[c] + (bias != NULL ? bias[c] : 0.0f);
            row[c] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        }
    }
}

void hk_bias_gelu(float *x, long row_begin, long row_end, long columns, const float *bias) {
    if (hk_gemm_available()) {
        bias_gelu_avx512(x, row_begin, row_end, columns, bias);
        return;
    }
    for (long r = row_begin; r < row_end; r++) {
        float *row = x + r * columns;
        for (long c = 0; c < columns; c++) {
            float v = row[c] + (bias != NULL ? bias[c] : 0.0f);
            row[c] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        }
    }
}
