/* Backward passes of the forward kernels in kernels.c, for fine-tuning the last blocks of a
   network. NHWC layouts as in the forward kernels; the gradient outputs accumulate (+=), so gradients
   of several uses of one tensor add up and callers zero them first. Two exceptions say so below: ReLU6's
   backward masks its gradient in place, and the fused pooling + ReLU6 backward writes its output. */
#include "CKernels.h"
#include "multiversion.h"

/* y = relu6(z) elementwise: dz = dy where 0 < z < 6, else 0, in place on dy. The mask may be read from z or
   from y (0 < z < 6 exactly when 0 < y < 6), so forward passes keep only their outputs. */
MULTIVERSION
void hk_relu6_backward(const float *restrict values, float *restrict gradient, long count) {
    for (long i = 0; i < count; i++) {
        float x = values[i];
        gradient[i] = (x > 0.0f && x < 6.0f) ? gradient[i] : 0.0f;
    }
}

/* Column sums: bias_gradient[c] += sum over rows of gradient[r, c]. */
MULTIVERSION
void hk_column_sums(const float *restrict gradient, long rows, long columns, float *restrict sums) {
    for (long r = 0; r < rows; r++) {
        const float *restrict row = gradient + r * columns;
        for (long c = 0; c < columns; c++) sums[c] += row[c];
    }
}

/* Depthwise convolution z[n, oy, ox, c] = sum_{ky,kx} x[n, oy*s - pt + ky, ox*s - pl + kx, c] w[ky, kx, c] + b[c]
   (zero padding outside), backward for output rows [row_begin, row_end) of batch * out_height:
   input_gradient [batch, height, width, channels] += dz scattered through w (may be NULL),
   weight_gradient [kernel, kernel, channels] += sum of x * dz (may be NULL).
   Only channels [channel_begin, channel_end) are touched: threads split the channels, so no two
   write the same gradient value (output rows of one image overlap in their input rows). */
MULTIVERSION
void hk_depthwise_backward(const float *input, long height, long width, long channels, const float *weight,
                           long kernel, long stride, long pad_top, long pad_left, long out_height, long out_width,
                           const float *output_gradient, float *input_gradient, float *weight_gradient,
                           long row_begin, long row_end, long channel_begin, long channel_end) {
    for (long row = row_begin; row < row_end; row++) {
        long n = row / out_height, oy = row % out_height;
        const float *image = input + n * height * width * channels;
        float *image_gradient = input_gradient ? input_gradient + n * height * width * channels : 0;
        for (long ox = 0; ox < out_width; ox++) {
            const float *dz = output_gradient + (row * out_width + ox) * channels;
            for (long ky = 0; ky < kernel; ky++) {
                long iy = oy * stride - pad_top + ky;
                if (iy < 0 || iy >= height) continue;
                for (long kx = 0; kx < kernel; kx++) {
                    long ix = ox * stride - pad_left + kx;
                    if (ix < 0 || ix >= width) continue;
                    long tap = (ky * kernel + kx) * channels, pixel = (iy * width + ix) * channels;
                    if (weight_gradient) {
                        const float *restrict x = image + pixel;
                        float *restrict dw = weight_gradient + tap;
                        for (long c = channel_begin; c < channel_end; c++) dw[c] += x[c] * dz[c];
                    }
                    if (image_gradient) {
                        const float *restrict w = weight + tap;
                        float *restrict dx = image_gradient + pixel;
                        for (long c = channel_begin; c < channel_end; c++) dx[c] += w[c] * dz[c];
                    }
                }
            }
        }
    }
}

/* Global average pooling after ReLU6, backward in one pass (the head convolution's output):
   for y[n, p, c] = relu6(z[n, p, c]) pooled into m[n, c] = mean_p y[n, p, c],
   gradient[n, p, c] = dm[n, c] / positions where 0 < y < 6, else 0. Writes (does not accumulate):
   the gradient buffer need not be zeroed. pooled_gradient rows are pooled_stride apart (they are the
   first channels of a wider feature row). Images [image_begin, image_end). */
MULTIVERSION
void hk_average_pool_relu6_backward(const float *restrict pooled_gradient, long pooled_stride,
                                    const float *restrict activated, long positions, long channels,
                                    float *restrict gradient, long image_begin, long image_end) {
    const float scale = 1.0f / (float)positions;
    for (long n = image_begin; n < image_end; n++) {
        const float *restrict dm = pooled_gradient + n * pooled_stride;
        for (long p = 0; p < positions; p++) {
            const float *restrict y = activated + (n * positions + p) * channels;
            float *restrict dz = gradient + (n * positions + p) * channels;
            for (long c = 0; c < channels; c++) dz[c] = (y[c] > 0.0f && y[c] < 6.0f) ? dm[c] * scale : 0.0f;
        }
    }
}
