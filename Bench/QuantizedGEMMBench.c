// Single-thread rate of the int8 VNNI GEMM (hk_qgemm_vnni, float and uint8 output) against the fp32
// packed GEMM (hk_gemm_bias_activation) on EfficientNet-Lite0's 1x1 convolutions at 224x224, batch 1,
// and its stem (a 3x3 convolution as im2col, k = 27), all with ReLU6 in the epilogue. Outside SwiftPM:
// scripts/bench-int8-gemm compiles it with the two kernels' sources. Rounds alternate the three
// kernels; the rates printed are medians over rounds.
//   qgemm-bench [--rounds N] [--seconds S]   S: seconds per kernel per shape per round (default 0.2)
#include "CKernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void *aligned(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }

enum { MAX_ROUNDS = 64 };

int main(int argc, char **argv) {
    int rounds = 5;
    double seconds = 0.2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
    }
    if (rounds < 1 || rounds > MAX_ROUNDS) rounds = 5;
    if (!hk_qgemm_vnni_available() || !hk_gemm_available()) {
        fprintf(stderr, "qgemm-bench: needs AVX-512 with VNNI\n");
        return 1;
    }
    /* rows (output pixels), k (input channels), n (output channels) */
    const long shapes[][3] = {{12544, 27, 32}, {3136, 24, 144}, {784, 40, 240}, {196, 112, 672}, {49, 1152, 320}, {49, 320, 1280},
                              {3136, 144, 24}, {196, 672, 112}};
    printf("| rows | k | n | int8 float out GOPS | int8 uint8 out GOPS | fp32 GFLOPS | int8 / fp32 |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const long m = shapes[s][0], k = shapes[s][1], n = shapes[s][2], panels = (n + 31) / 32;
        uint8_t *a = malloc((size_t)(m * k)), *c_u8 = malloc((size_t)(m * n));
        int8_t *w = malloc((size_t)(n * k)), *packed = aligned((size_t)hk_qgemm_packed_size(n, k));
        float *a_f32 = malloc(sizeof(float) * m * k), *w_f32 = malloc(sizeof(float) * n * k);
        float *packed_f32 = aligned(sizeof(float) * hk_gemm_packed_count(n, k)), *c = malloc(sizeof(float) * m * n);
        float *scale = malloc(sizeof(float) * n), *bias = malloc(sizeof(float) * n);
        int32_t *sums = malloc(sizeof(int32_t) * n), *offset = malloc(sizeof(int32_t) * n);
        srand(1);
        for (long i = 0; i < m * k; i++) { a[i] = (uint8_t)(rand() & 255); a_f32[i] = (float)a[i] / 255.0f; }
        for (long i = 0; i < n * k; i++) { w[i] = (int8_t)(rand() % 255 - 127); w_f32[i] = (float)w[i] / 127.0f; }
        hk_qgemm_pack(w, n, k, packed, sums);
        hk_gemm_pack(w_f32, n, k, packed_f32);
        for (long j = 0; j < n; j++) { offset[j] = -3 * sums[j]; scale[j] = 1e-4f; bias[j] = 0.1f; }
        hk_qgemm_epilogue float_out = {offset, scale, bias, NULL, 1, c, NULL, 1.0f, 0};
        hk_qgemm_epilogue u8_out = {offset, scale, bias, NULL, 1, NULL, c_u8, 40.0f, 3};
        double rates[3][MAX_ROUNDS];
        for (int r = 0; r < rounds; r++) {
            for (int kernel = 0; kernel < 3; kernel++) {
                long calls = 0;
                double t0 = now(), t;
                do {
                    if (kernel == 0) hk_qgemm_vnni(a, 0, m, k, packed, n, &float_out, 0, panels);
                    else if (kernel == 1) hk_qgemm_vnni(a, 0, m, k, packed, n, &u8_out, 0, panels);
                    else hk_gemm_bias_activation(a_f32, 0, m, k, packed_f32, n, bias, NULL, 1, c);
                    calls++;
                } while ((t = now() - t0) < seconds);
                rates[kernel][r] = 2.0 * (double)(m * k * n) * (double)calls / t * 1e-9;
            }
        }
        double median[3];
        for (int kernel = 0; kernel < 3; kernel++) {
            qsort(rates[kernel], (size_t)rounds, sizeof(double), by_value);
            median[kernel] = rates[kernel][rounds / 2];
        }
        printf("| %ld | %ld | %ld | %.0f | %.0f | %.0f | %.2f |\n", m, k, n, median[0], median[1], median[2], median[0] / median[2]);
        free(a); free(c_u8); free(w); free(packed); free(a_f32); free(w_f32); free(packed_f32); free(c);
        free(scale); free(bias); free(sums); free(offset);
    }
    return 0;
}
