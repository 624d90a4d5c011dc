// Depthwise convolution of one output row from the input rows it reads, shared by hk_depthwise (rows
// of a whole image) and hk_inverted_residual (rows of a ring of freshly expanded rows). always_inline,
// so each caller's target (AVX-512 clone, AVX2 clone, baseline) compiles its own copy.
#ifndef HEADTUNE_DEPTHWISE_H
#define HEADTUNE_DEPTHWISE_H

#include <stddef.h>

#define HK_MAX_KERNEL 7

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));

static inline __attribute__((always_inline)) float clamp6(float x) { return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x); }
static inline __attribute__((always_inline)) v16 load16(const float *p) { return *(const v16u *)p; }
static inline __attribute__((always_inline)) void store16(float *p, v16 v) { *(v16u *)p = v; }
static inline __attribute__((always_inline)) v16 relu6_16(v16 v) {
    const v16 zero = {0}, six = zero + 6.0f;
    return __builtin_elementwise_min(__builtin_elementwise_max(v, zero), six);
}

/* One output pixel, any position: taps clipped to the image (rows[ky] == NULL outside it). */
static inline __attribute__((always_inline)) void
depthwise_pixel(const float *const *rows, long width, long channels, long c_begin, long c_end, const float *weight,
                const float *bias, long kernel, long ix0, long ky_begin, long ky_end, int relu6, float *out) {
    long kx_begin = ix0 < 0 ? -ix0 : 0;
    long kx_end = width - ix0 < kernel ? width - ix0 : kernel;
    long c = c_begin;
    for (; c + 16 <= c_end; c += 16) {
        v16 acc = load16(bias + c);
        for (long ky = ky_begin; ky < ky_end; ky++)
            for (long kx = kx_begin; kx < kx_end; kx++)
                acc += load16(rows[ky] + (ix0 + kx) * channels + c) * load16(weight + (ky * kernel + kx) * channels + c);
        store16(out + c, relu6 ? relu6_16(acc) : acc);
    }
    for (; c < c_end; c++) {
        float acc = bias[c];
        for (long ky = ky_begin; ky < ky_end; ky++)
            for (long kx = kx_begin; kx < kx_end; kx++)
                acc += rows[ky][(ix0 + kx) * channels + c] * weight[(ky * kernel + kx) * channels + c];
        out[c] = relu6 ? clamp6(acc) : acc;
    }
}

/* Four horizontally adjacent output pixels whose taps are all inside the image horizontally: each
   weight vector is loaded once and used four times, and the accumulators stay in registers. */
static inline __attribute__((always_inline)) void
depthwise_quad(const float *const *rows, long channels, long c_begin, long c_end, const float *weight,
               const float *bias, long kernel, long stride, long ix0, long ky_begin, long ky_end, int relu6, float *out) {
    const long step = stride * channels;
    long c = c_begin;
    for (; c + 16 <= c_end; c += 16) {
        v16 a0 = load16(bias + c), a1 = a0, a2 = a0, a3 = a0;
        for (long ky = ky_begin; ky < ky_end; ky++) {
            const float *x = rows[ky] + ix0 * channels + c;
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
    for (; c < c_end; c++) {
        for (long p = 0; p < 4; p++) {
            float acc = bias[c];
            for (long ky = ky_begin; ky < ky_end; ky++)
                for (long kx = 0; kx < kernel; kx++)
                    acc += rows[ky][(ix0 + p * stride + kx) * channels + c] * weight[(ky * kernel + kx) * channels + c];
            out[p * channels + c] = relu6 ? clamp6(acc) : acc;
        }
    }
}

/* One output row of width out_width x channels, channels [c_begin, c_end) only. rows[ky] is input row (oy * stride - pad_top + ky),
   NULL where that row is padding; the non-NULL rows are contiguous in ky. */
static inline __attribute__((always_inline)) void
hk_depthwise_row(const float *const *rows, long width, long channels, long c_begin, long c_end, const float *weight,
                 const float *bias, long kernel, long stride, long pad_left, long out_width, int relu6, float *out_row) {
    long ky_begin = 0, ky_end = kernel;
    while (ky_begin < kernel && rows[ky_begin] == NULL) ky_begin++;
    while (ky_end > ky_begin && rows[ky_end - 1] == NULL) ky_end--;
    long ox = 0;
    while (ox < out_width) {
        long ix0 = ox * stride - pad_left;
        if (ix0 >= 0 && ox + 4 <= out_width && ix0 + 3 * stride + kernel <= width) {
            /* Constant kernel and stride for the common cases: the tap loops unroll. */
            float *out = out_row + ox * channels;
            if (kernel == 3 && stride == 1)
                depthwise_quad(rows, channels, c_begin, c_end, weight, bias, 3, 1, ix0, ky_begin, ky_end, relu6, out);
            else if (kernel == 3 && stride == 2)
                depthwise_quad(rows, channels, c_begin, c_end, weight, bias, 3, 2, ix0, ky_begin, ky_end, relu6, out);
            else if (kernel == 5 && stride == 1)
                depthwise_quad(rows, channels, c_begin, c_end, weight, bias, 5, 1, ix0, ky_begin, ky_end, relu6, out);
            else if (kernel == 5 && stride == 2)
                depthwise_quad(rows, channels, c_begin, c_end, weight, bias, 5, 2, ix0, ky_begin, ky_end, relu6, out);
            else
                depthwise_quad(rows, channels, c_begin, c_end, weight, bias, kernel, stride, ix0, ky_begin, ky_end, relu6, out);
            ox += 4;
            continue;
        }
        depthwise_pixel(rows, width, channels, c_begin, c_end, weight, bias, kernel, ix0, ky_begin, ky_end, relu6,
                        out_row + ox * channels);
        ox++;
    }
}

#endif
