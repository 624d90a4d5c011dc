#include "CKernels.h"

#include <math.h>
#include <stddef.h>

#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef MULTIVERSION
#define MULTIVERSION
#endif

static inline __attribute__((always_inline)) float clamp6(float x) { return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x); }

MULTIVERSION
void hk_bias_activation(float *out, long row_begin, long row_end, long columns, const float *bias,
                        const float *residual, int relu6) {
    for (long r = row_begin; r < row_end; r++) {
        float *restrict row = out + r * columns;
        if (residual != NULL) {
            const float *restrict skip = residual + r * columns;
            for (long c = 0; c < columns; c++) row[c] += bias[c] + skip[c];
        } else {
            for (long c = 0; c < columns; c++) row[c] += bias[c];
        }
        if (relu6) {
            for (long c = 0; c < columns; c++) row[c] = clamp6(row[c]);
        }
    }
}

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));

static inline __attribute__((always_inline)) v16 load16(const float *p) { return *(const v16u *)p; }
static inline __attribute__((always_inline)) void store16(float *p, v16 v) { *(v16u *)p = v; }
static inline __attribute__((always_inline)) v16 relu6_16(v16 v) {
    const v16 zero = {0}, six = zero + 6.0f;
    return __builtin_elementwise_min(__builtin_elementwise_max(v, zero), six);
}

/* One output pixel, any position: taps clipped to the image. */
static inline __attribute__((always_inline)) void depthwise_pixel(const float *image, long width, long channels, const float *weight,
                                   const float *bias, long kernel, long iy0, long ix0, long ky_begin, long ky_end,
                                   long kx_begin, long kx_end, int relu6, float *out) {
    long c = 0;
    for (; c + 16 <= channels; c += 16) {
        v16 acc = load16(bias + c);
        for (long ky = ky_begin; ky < ky_end; ky++)
            for (long kx = kx_begin; kx < kx_end; kx++)
                acc += load16(image + ((iy0 + ky) * width + ix0 + kx) * channels + c) *
                       load16(weight + (ky * kernel + kx) * channels + c);
        store16(out + c, relu6 ? relu6_16(acc) : acc);
    }
    for (; c < channels; c++) {
        float acc = bias[c];
        for (long ky = ky_begin; ky < ky_end; ky++)
            for (long kx = kx_begin; kx < kx_end; kx++)
                acc += image[((iy0 + ky) * width + ix0 + kx) * channels + c] * weight[(ky * kernel + kx) * channels + c];
        out[c] = relu6 ? clamp6(acc) : acc;
    }
}

/* Four horizontally adjacent output pixels whose taps are all inside the image horizontally: each
   weight vector is loaded once and used four times, and the accumulators stay in registers. */
static inline __attribute__((always_inline)) void depthwise_quad(const float *image, long width, long channels, const float *weight,
                                  const float *bias, long kernel, long stride, long iy0, long ix0, long ky_begin,
                                  long ky_end, int relu6, float *out) {
    const long step = stride * channels;
    long c = 0;
    for (; c + 16 <= channels; c += 16) {
        v16 a0 = load16(bias + c), a1 = a0, a2 = a0, a3 = a0;
        for (long ky = ky_begin; ky < ky_end; ky++) {
            const float *x = image + ((iy0 + ky) * width + ix0) * channels + c;
            const float *w = weight + ky * kernel * channels + c;
            for (long kx = 0; kx < kernel; kx++, x += channels, w += channels) {
                v16 wv = load16(w);
                a0 += load16(x) * wv;
                a1 += load16(x + step) * wv;
                a2 += load16(x + 2 * step) * wv;
                a3 += load16(x + 3 * step) * wv;
            }
        }
        if (relu6) { a0 = relu6_16(a0); a1 = relu6_16(a1); a2 = relu6_16(a2); a3 = relu6_16(a3); }
        store16(out + c, a0);
        store16(out + channels + c, a1);
        store16(out + 2 * channels + c, a2);
        store16(out + 3 * channels + c, a3);
    }
    for (; c < channels; c++) {
        for (long p = 0; p < 4; p++) {
            float acc = bias[c];
            for (long ky = ky_begin; ky < ky_end; ky++)
                for (long kx = 0; kx < kernel; kx++)
                    acc += image[((iy0 + ky) * width + ix0 + p * stride + kx) * channels + c] *
                           weight[(ky * kernel + kx) * channels + c];
            out[p * channels + c] = relu6 ? clamp6(acc) : acc;
        }
    }
}

MULTIVERSION
void hk_depthwise(const float *input, long height, long width, long channels, const float *weight,
                  const float *bias, long kernel, long stride, long pad_top, long pad_left, long out_height,
                  long out_width, int relu6, float *output, long row_begin, long row_end) {
    for (long row = row_begin; row < row_end; row++) {
        long n = row / out_height, oy = row % out_height;
        long iy0 = oy * stride - pad_top;
        long ky_begin = iy0 < 0 ? -iy0 : 0;
        long ky_end = height - iy0 < kernel ? height - iy0 : kernel;
        const float *image = input + n * height * width * channels;
        float *out_row = output + row * out_width * channels;
        long ox = 0;
        while (ox < out_width) {
            long ix0 = ox * stride - pad_left;
            if (ix0 >= 0 && ox + 4 <= out_width && ix0 + 3 * stride + kernel <= width) {
                depthwise_quad(image, width, channels, weight, bias, kernel, stride, iy0, ix0, ky_begin, ky_end,
                               relu6, out_row + ox * channels);
                ox += 4;
                continue;
            }
            long kx_begin = ix0 < 0 ? -ix0 : 0;
            long kx_end = width - ix0 < kernel ? width - ix0 : kernel;
            depthwise_pixel(image, width, channels, weight, bias, kernel, iy0, ix0, ky_begin, ky_end, kx_begin, kx_end,
                            relu6, out_row + ox * channels);
            ox++;
        }
    }
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
            v16 v = *(const v16u *)(row + c) + *(const v16u *)(bias + c);
            *(v16u *)(row + c) = 0.5f * v * (1.0f + erf16(v * 0.70710678118654752f));
        }
        for (; c < columns; c++) {
            float v = row[c] + bias[c];
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
            float v = row[c] + bias[c];
            row[c] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        }
    }
}
