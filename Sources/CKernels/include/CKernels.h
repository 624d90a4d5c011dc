#ifndef HEADTUNE_CKERNELS_H
#define HEADTUNE_CKERNELS_H

// Element-wise and depthwise loops in C: the compiler vectorizes them and builds AVX-512, AVX2 and
// baseline versions chosen at run time (target_clones), which Swift's SIMD types on the baseline
// x86-64 target do not (their min/max and FMA fall back to per-lane code).

/// out[r, c] = act(out[r, c] + bias[c] (+ residual[r, c])) for rows [row_begin, row_end) of a
/// row-major [rows, columns] matrix. relu6 != 0 clamps to [0, 6]. residual may be NULL.
void hk_bias_activation(float *out, long row_begin, long row_end, long columns, const float *bias,
                        const float *residual, int relu6);

/// Depthwise convolution over NHWC, output rows [row_begin, row_end) of the flattened
/// (batch * out_height) row index. weight is [kernel, kernel, channels]; padding is explicit.
void hk_depthwise(const float *input, long height, long width, long channels, const float *weight,
                  const float *bias, long kernel, long stride, long pad_top, long pad_left, long out_height,
                  long out_width, int relu6, float *output, long row_begin, long row_end);

#endif
