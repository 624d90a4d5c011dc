// An inverted-residual block (MobileNetV2 / EfficientNet MBConv without squeeze-excite) in one pass
// over the output rows: expand 1x1 + ReLU6, depthwise kxk + ReLU6, project 1x1 (+ residual). Unfused,
// the expanded tensor of an early block (112x112x96 floats, 4.8 MB) goes out to memory and back
// twice; here only the kernel rows the depthwise filter needs live in a ring in L1/L2.
#include "CKernels.h"
#include "depthwise.h"

#define AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))

/* Output rows projected together: enough pixels for full 8-row GEMM blocks on narrow maps. */
static long band_rows(long out_width, long out_height) {
    long rows = (64 + out_width - 1) / out_width;
    return rows < out_height ? rows : out_height;
}

long hk_inverted_residual_scratch_count(long width, long mid, long kernel, long out_width, long out_height) {
    return kernel * width * mid + band_rows(out_width, out_height) * out_width * mid;
}

AVX512 void hk_inverted_residual(const float *input, long height, long width, long in_channels,
                                 const float *expand_packed, const float *expand_bias, long mid,
                                 const float *depthwise_weight, const float *depthwise_bias, long kernel, long stride,
                                 long pad_top, long pad_left, long out_height, long out_width,
                                 const float *project_packed, const float *project_bias, long out_channels,
                                 int residual, float *output, long row_begin, long row_end, float *scratch) {
    float *ring = scratch;                         /* [kernel][width][mid]: input row iy in slot iy % kernel */
    float *filtered = scratch + kernel * width * mid; /* [band][out_width][mid] */
    const long band = band_rows(out_width, out_height);
    long next_row = 0;                             /* rows below this are already expanded */
    int started = 0;
    const float *rows[HK_MAX_KERNEL];
    for (long band_begin = row_begin; band_begin < row_end; band_begin += band) {
        long band_end = band_begin + band < row_end ? band_begin + band : row_end;
        for (long oy = band_begin; oy < band_end; oy++) {
            long iy0 = oy * stride - pad_top;
            long first = iy0 < 0 ? 0 : iy0, last = iy0 + kernel < height ? iy0 + kernel : height;
            if (expand_packed != NULL) {
                if (!started || next_row < first) next_row = first;
                started = 1;
                for (; next_row < last; next_row++)
                    hk_gemm_bias_activation(input + next_row * width * in_channels, 0, width, in_channels,
                                            expand_packed, mid, expand_bias, NULL, 1,
                                            ring + (next_row % kernel) * width * mid);
            }
            for (long ky = 0; ky < kernel; ky++) {
                long iy = iy0 + ky;
                if (iy < 0 || iy >= height) rows[ky] = NULL;
                else if (expand_packed != NULL) rows[ky] = ring + (iy % kernel) * width * mid;
                else rows[ky] = input + iy * width * mid;
            }
            hk_depthwise_row(rows, width, mid, 0, mid, depthwise_weight, depthwise_bias, kernel, stride, pad_left, out_width,
                             1, filtered + (oy - band_begin) * out_width * mid);
        }
        long pixels = (band_end - band_begin) * out_width;
        hk_gemm_bias_activation(filtered, 0, pixels, mid, project_packed, out_channels, project_bias,
                                residual ? input + band_begin * out_width * in_channels : NULL, 0,
                                output + band_begin * out_width * out_channels);
    }
}
