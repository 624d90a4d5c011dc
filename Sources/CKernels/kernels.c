#include "CKernels.h"

#include <stddef.h>

#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef MULTIVERSION
#define MULTIVERSION
#endif

static inline float clamp6(float x) { return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x); }

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
        for (long ox = 0; ox < out_width; ox++) {
            long ix0 = ox * stride - pad_left;
            long kx_begin = ix0 < 0 ? -ix0 : 0;
            long kx_end = width - ix0 < kernel ? width - ix0 : kernel;
            float *restrict out = output + (row * out_width + ox) * channels;
            for (long c = 0; c < channels; c++) out[c] = bias[c];
            for (long ky = ky_begin; ky < ky_end; ky++) {
                for (long kx = kx_begin; kx < kx_end; kx++) {
                    const float *restrict x = image + ((iy0 + ky) * width + ix0 + kx) * channels;
                    const float *restrict w = weight + (ky * kernel + kx) * channels;
                    for (long c = 0; c < channels; c++) out[c] += x[c] * w[c];
                }
            }
            if (relu6) {
                for (long c = 0; c < channels; c++) out[c] = clamp6(out[c]);
            }
        }
    }
}
