#ifndef HEADTUNE_CKERNELS_H
#define HEADTUNE_CKERNELS_H

#include <stdint.h>

// Element-wise and depthwise loops in C: the compiler vectorizes them and builds AVX-512, AVX2 and
// baseline versions chosen at run time (target_clones), which Swift's SIMD types on the baseline
// x86-64 target do not (their min/max and FMA fall back to per-lane code).

/// The activations a GEMM's epilogue applies (the `activation` arguments below; 0 and 1 are also the
/// relu6 flags of the depthwise kernels).
#define HK_ACTIVATION_IDENTITY 0
#define HK_ACTIVATION_RELU6 1      /* min(max(x, 0), 6) */
#define HK_ACTIVATION_QUICK_GELU 2 /* x * sigmoid(1.702 x), CLIP's quick_gelu (as hk_quick_gelu) */

/// out[r, c] = act(out[r, c] + bias[c] (+ residual[r, c])) for rows [row_begin, row_end) of a
/// row-major [rows, columns] matrix whose rows (and residual's) are ld floats apart. residual may be NULL.
void hk_bias_activation(float *out, long row_begin, long row_end, long columns, long ld, const float *bias,
                        const float *residual, int activation);

/// Depthwise convolution over NHWC, output rows [row_begin, row_end) of the flattened
/// (batch * out_height) row index. weight is [kernel, kernel, channels]; padding is explicit.
void hk_depthwise(const float *input, long height, long width, long channels, const float *weight,
                  const float *bias, long kernel, long stride, long pad_top, long pad_left, long out_height,
                  long out_width, int relu6, float *output, long row_begin, long row_end);

/// The same for channels [channel_begin, channel_end) only (multiples of 16 keep it vectorized):
/// threads split a map with few rows by channels.
void hk_depthwise_channels(const float *input, long height, long width, long channels, const float *weight,
                           const float *bias, long kernel, long stride, long pad_top, long pad_left, long out_height,
                           long out_width, int relu6, float *output, long row_begin, long row_end,
                           long channel_begin, long channel_end);


/// hk_depthwise_channels with uint8 output for an int8 layer that reads it: each output row is computed
/// into row_scratch (out_width * channels floats, one per concurrent call) and written quantized as
/// hk_quantize_u8 would (inv_scale, zero_point), so the float map never reaches memory.
void hk_depthwise_channels_u8(const float *input, long height, long width, long channels, const float *weight,
                              const float *bias, long kernel, long stride, long pad_top, long pad_left, long out_height,
                              long out_width, int relu6, float *row_scratch, float inv_scale, int zero_point,
                              uint8_t *output, long row_begin, long row_end, long channel_begin, long channel_end);

/// Packed-weight GEMM with a fused epilogue, for 1x1 convolutions and linear layers:
/// C[m, n] = act(sum_k A[m, k] * W[n, k] + bias[n] (+ residual[m, n])), rows [row_begin, row_end),
/// act one of HK_ACTIVATION_*. residual may be c itself (C += A W^T + bias): each element is read just
/// before it is stored.
/// hk_gemm_packed_available() tells whether this CPU runs it (AVX-512, or AVX2 + FMA); otherwise use
/// BLAS plus hk_bias_activation. hk_gemm_available(): AVX-512 itself (the fused inverted-residual
/// block and the vectorized GELU need it).
int hk_gemm_available(void);
int hk_gemm_avx2_available(void);
int hk_gemm_packed_available(void);

/// hk_gemm_strided with the AVX2 kernel whatever the CPU has beyond it (tests run it on AVX-512
/// machines too). Requires AVX2 + FMA.
void hk_gemm_strided_avx2(const float *a, long lda, long row_begin, long row_end, long k, const float *packed, long n,
                          const float *bias, const float *residual, int activation, float *c, long ldc,
                          long panel_begin, long panel_end);

/// Floats needed to pack W [n, k]: k x n rounded up to whole panels of 32 output channels (zero weights).
long hk_gemm_packed_count(long n, long k);

/// Packs W [n, k] (row-major, PyTorch's [out, in]) for hk_gemm_bias_activation / hk_gemm_strided, in
/// the layout of the kernel they run on this CPU (hk_gemm_packed_offset tells where a weight went).
void hk_gemm_pack(const float *weight, long n, long k, float *packed);

/// hk_gemm_pack's layout for the AVX2 kernel (each panel's two 16-channel halves stored one after the
/// other), whatever the CPU: what hk_gemm_strided_avx2 reads.
void hk_gemm_pack_avx2(const float *weight, long n, long k, float *packed);

/// Where hk_gemm_pack put W[o, i] of a W with k inputs.
long hk_gemm_packed_offset(long o, long i, long k);

void hk_gemm_bias_activation(const float *a, long row_begin, long row_end, long k, const float *packed, long n,
                             const float *bias, const float *residual, int activation, float *c);

/// The same for output columns [32 * panel_begin, 32 * panel_end) only: threads split a short, wide
/// matrix (7x7 maps, one image's logits) by columns.
void hk_gemm_bias_activation_panels(const float *a, long row_begin, long row_end, long k, const float *packed, long n,
                                    const float *bias, const float *residual, int activation, float *c,
                                    long panel_begin, long panel_end);

/// The same with A's rows lda floats apart and C's (and residual's) ldc apart, lda >= k, ldc >= n: a
/// matrix whose rows are a multiple of 4 KiB apart puts the 8 rows of a register block in the same L1
/// sets (CLIP's [tokens, 3072] MLP activations ran 10% slower than [tokens, 2304] ones until padded).
void hk_gemm_strided(const float *a, long lda, long row_begin, long row_end, long k, const float *packed, long n,
                     const float *bias, const float *residual, int activation, float *c, long ldc,
                     long panel_begin, long panel_end);

/// Int8 GEMM for 1x1 convolutions and linear layers (gemm_int8.c), AVX-512 VNNI:
///   sum[m, n] = sum_k A[m, k] * W[n, k] in int32, exactly (A uint8 [rows, k] row-major with stride k,
///   W int8 [n, k]); then y = float(sum + offset[n]) * scale[n] + bias[n] (one fused multiply-add)
///   (+ residual[m, n]) (relu6 != 0: min(max(y, 0), 6)), stored as float C[m, n], or requantized to
///   uint8 C[m, n] = clamp(round_half_even(y * output_inv_scale) + output_zero_point, 0, 255).
/// With activations x = s_x * (A - z_x) and weights w = s_w[n] * W: offset[n] = -z_x * sum_k W[n, k]
/// and scale[n] = s_x * s_w[n]. Sums are exact for k <= 65536 (|A * W| <= 255 * 128 per term).
/// k need not be a multiple of 4: the packing pads it with zero weights and the kernel reads only the
/// k bytes of each A row (no padding of A needed).
#define HK_QGEMM_PANEL 32     /* output channels per packed panel (column splits are panel ranges) */
#define HK_QGEMM_BLOCK_ROWS 8 /* rows per register block (row splits in multiples of it keep blocks whole) */

/// What happens to the int32 sums (see above). offset, scale, bias: [n]; residual: [rows, n] or NULL.
/// Exactly one of output (float) and output_u8 is non-NULL; output_inv_scale and output_zero_point
/// (0...255) are read only with output_u8.
typedef struct {
    const int32_t *offset;
    const float *scale;
    const float *bias;
    const float *residual;
    int relu6;
    float *output;
    uint8_t *output_u8;
    float output_inv_scale;
    int output_zero_point;
} hk_qgemm_epilogue;

/// Whether this CPU has AVX-512 F/BW/VL/DQ and VNNI (vpdpbusd), which hk_qgemm_vnni needs.
int hk_qgemm_vnni_available(void);

/// Bytes needed to pack W [n, k]: panels of 32 output channels, each [ceil(k / 4)][32][4], zero-padded.
long hk_qgemm_packed_size(long n, long k);

/// Packs W [n, k] (row-major, int8, PyTorch's [out, in]) for hk_qgemm_vnni and hk_qgemm_reference
/// (packed: hk_qgemm_packed_size bytes, 64-byte aligned for the kernel). column_sums (NULL: not
/// wanted) receives sum_k W[n, k] for each n, from which the offsets are made.
void hk_qgemm_pack(const int8_t *weight, long n, long k, int8_t *packed, int32_t *column_sums);

/// The GEMM with its epilogue for rows [row_begin, row_end) and output columns
/// [32 * panel_begin, min(32 * panel_end, n)): threads split many rows by rows (in multiples of
/// HK_QGEMM_BLOCK_ROWS) and few rows by panels. Requires hk_qgemm_vnni_available().
void hk_qgemm_vnni(const uint8_t *a, long row_begin, long row_end, long k, const int8_t *packed, long n,
                   const hk_qgemm_epilogue *epilogue, long panel_begin, long panel_end);

/// The same in portable scalar C, bit-identical to hk_qgemm_vnni (same sums, same float operations in
/// the same order, same rounding): the tests' reference, and a (slow) path on CPUs without VNNI.
void hk_qgemm_reference(const uint8_t *a, long row_begin, long row_end, long k, const int8_t *packed, long n,
                        const hk_qgemm_epilogue *epilogue, long panel_begin, long panel_end);

/// q[i] = clamp(round_half_even(x[i] * inv_scale) + zero_point, 0, 255) for i in [begin, end), the
/// rounding of hk_qgemm's uint8 output; NaN -> zero_point, +-inf -> 255 / 0. zero_point in 0...255.
void hk_quantize_u8(const float *x, long begin, long end, float inv_scale, int zero_point, uint8_t *q);

/// hk_im2col over an image already quantized to uint8 (hk_quantize_u8): byte copies, `padding` (the
/// quantized 0.0) where a patch leaves the image.
void hk_im2col_u8(const uint8_t *input, long height, long width, long channels, long kernel, long stride, long pad_top,
                  long pad_left, long out_height, long out_width, uint8_t padding, uint8_t *columns,
                  long row_begin, long row_end);

/// x[i] = float(q[i] - zero_point) * scale for i in [begin, end).
void hk_dequantize_u8(const uint8_t *q, long begin, long end, float scale, int zero_point, float *x);

/// x[r, c] = gelu(x[r, c] + bias[c]) (bias NULL: no bias) with the exact (erf) GELU, rows [row_begin, row_end) of [rows, columns].
/// Vectorized erf (Numerical Recipes erfc, fractional error < 1.2e-7) instead of a libm call per value.
void hk_bias_gelu(float *x, long row_begin, long row_end, long columns, const float *bias);

/// Floats of scratch hk_attention_head needs (keys transposed, four rows of scores, the key mask).
long hk_attention_scratch_count(long sequence, long head_dim);

/// Scaled dot-product attention of one batch item and one head, queries [query_begin, query_end):
/// output_i = sum_j softmax_j(scale * query_i . key_j) value_j over keys j with key_mask[j] != 0 (NULL: all)
/// and, when causal, j <= i; a query with no such key gets zeros. query, key, value: rows of row_stride
/// floats, head_dim of them used from the pointer on; output rows of output_stride floats.
/// scratch: hk_attention_scratch_count floats, one per concurrent call.
void hk_attention_head(const float *query, const float *key, const float *value, long row_stride, long sequence,
                       long head_dim, const unsigned char *key_mask, int causal, float scale, float *output,
                       long output_stride, long query_begin, long query_end, float *scratch);

/// x[i] = x[i] * sigmoid(1.702 x[i]) for i in [begin, end): CLIP's quick_gelu, vectorized exp.
void hk_quick_gelu(float *x, long begin, long end);

/// im2col for a dense convolution over NHWC, output rows [row_begin, row_end) of the flattened
/// (batch * out_height) index: columns[(row * out_width + ox)] = the kernel x kernel x channels patch
/// (taps outer, channels inner), zeros where the patch leaves the image.
void hk_im2col(const float *input, long height, long width, long channels, long kernel, long stride, long pad_top,
               long pad_left, long out_height, long out_width, float *columns, long row_begin, long row_end);

/// Floats of scratch hk_inverted_residual needs per thread.
long hk_inverted_residual_scratch_count(long width, long mid, long kernel, long out_width, long out_height);

/// An inverted-residual block for output rows [row_begin, row_end) of one image, AVX-512 only (like
/// hk_gemm_bias_activation, whose packed weights it takes):
/// mid = relu6(expand(input)) (expand_packed NULL: input already has mid channels),
/// output = project(relu6(depthwise(mid))) (+ input when residual != 0; needs stride 1 and
/// in_channels == out_channels). input [height, width, in_channels], output [out_height, out_width,
/// out_channels], depthwise_weight [kernel, kernel, mid], kernel <= 7. Expanded rows are computed once
/// per call into a ring in scratch (hk_inverted_residual_scratch_count floats, not shared between
/// concurrent calls); the rows of two calls that split one image overlap by kernel - stride rows.
void hk_inverted_residual(const float *input, long height, long width, long in_channels,
                          const float *expand_packed, const float *expand_bias, long mid,
                          const float *depthwise_weight, const float *depthwise_bias, long kernel, long stride,
                          long pad_top, long pad_left, long out_height, long out_width,
                          const float *project_packed, const float *project_bias, long out_channels,
                          int residual, float *output, long row_begin, long row_end, float *scratch);

/// Work of one chunk of a pool job; participant is in 0 ..< participants (0 is the caller) and no two
/// chunks run on the same participant at once, so it can index per-thread scratch memory.
typedef void (*hk_pool_body)(void *context, long chunk, long participant);

/// Runs body(context, chunk, participant) for chunk in 0 ..< chunks on the calling thread and up to
/// participants - 1 of the pool's workers (one per other CPU, started on first use), which take chunks
/// in order as they finish; returns when all chunks are done. Workers spin briefly between jobs, so
/// back-to-back short jobs do not pay an OS wake-up each. Nested or concurrent calls run inline.
void hk_pool_run(long chunks, long participants, hk_pool_body body, void *context);


/// Backward kernels (backward.c): gradients accumulate (+=), except ReLU6's (masked in place) and the
/// pooling + ReLU6 one (written: its buffer need not be zeroed).
void hk_relu6_backward(const float *values, float *gradient, long count);
void hk_average_pool_relu6_backward(const float *pooled_gradient, long pooled_stride, const float *activated, long positions,
                                    long channels, float *gradient, long image_begin, long image_end);
void hk_column_sums(const float *gradient, long rows, long columns, float *sums);
void hk_depthwise_backward(const float *input, long height, long width, long channels, const float *weight,
                           long kernel, long stride, long pad_top, long pad_left, long out_height, long out_width,
                           const float *output_gradient, float *input_gradient, float *weight_gradient,
                           long row_begin, long row_end, long channel_begin, long channel_end);

#endif
