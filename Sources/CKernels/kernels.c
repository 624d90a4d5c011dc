#include "CKernels.h"
#include "depthwise.h"
#include "multiversion.h"
#include "quantize.h"
#include "im2col.h"
#include "vector_math.h"

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

/* GELU with the exact erf, vectorized for whichever target the clone has (an erff call per value was a
   quarter of MiniLM's time on AVX2 before this clone existed; the AVX-512 numbers are unchanged). */
MULTIVERSION
void hk_bias_gelu(float *x, long row_begin, long row_end, long columns, const float *bias) {
    for (long r = row_begin; r < row_end; r++) {
        float *row = x + r * columns;
        long c = 0;
        for (; c + 16 <= columns; c += 16) {
            v16 v = *(const v16u *)(row + c) + (bias != NULL ? *(const v16u *)(bias + c) : (v16){0}), e;
            ERF(e, v * 0.70710678118654752f);
            *(v16u *)(row + c) = 0.5f * v * (1.0f + e);
        }
        for (; c < columns; c++) {
            float v = row[c] + (bias != NULL ? bias[c] : 0.0f);
            row[c] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        }
    }
}
