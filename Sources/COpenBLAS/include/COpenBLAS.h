#ifndef HEADTUNE_COPENBLAS_H
#define HEADTUNE_COPENBLAS_H

/// Loads OpenBLAS at run time. Before loading, when OPENBLAS_CORETYPE is unset, it is set from CPUID
/// (SkylakeX with AVX-512, Haswell with AVX2+FMA): Debian's DYNAMIC_ARCH build misdetects some VMs
/// as "Prescott" and then runs GEMM several times slower.
/// Returns 0 on success, otherwise -1 with a message in `error` (NUL-terminated, truncated to `error_size`).
int headtune_blas_load(char *error, int error_size);

/// The core name OpenBLAS reports after loading (e.g. "SkylakeX"); "" before a successful load.
const char *headtune_blas_core_name(void);

/// The OPENBLAS_CORETYPE value chosen by the loader, or "" when the user's own setting was kept or none applied.
const char *headtune_blas_chosen_coretype(void);

void headtune_blas_set_threads(int threads);
int headtune_blas_get_threads(void);

/// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C.
/// op(A) is M x K, op(B) is K x N. trans_a/trans_b non-zero means transposed.
void headtune_sgemm(int trans_a, int trans_b, int m, int n, int k,
                    float alpha, const float *a, int lda, const float *b, int ldb,
                    float beta, float *c, int ldc);

#endif
