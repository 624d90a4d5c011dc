#define _GNU_SOURCE
#include "COpenBLAS.h"

#include <cpuid.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CBLAS enum values, fixed by the CBLAS standard. */
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*corename_fn)(void);

static sgemm_fn cblas_sgemm_ptr;
static set_threads_fn set_threads_ptr;
static get_threads_fn get_threads_ptr;
static corename_fn corename_ptr;
static char chosen_coretype[32];
static char load_error[512];
static int load_status = -1;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static int os_saves_avx512_state(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (eax & 0xE6) == 0xE6; /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM */
}

static int os_saves_avx_state(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (eax & 0x6) == 0x6;
}

static const char *coretype_for_this_cpu(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return NULL;
    int osxsave = (ecx >> 27) & 1, fma = (ecx >> 12) & 1, avx = (ecx >> 28) & 1;
    if (!osxsave || !avx || !os_saves_avx_state()) return NULL;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return NULL;
    int avx2 = (ebx >> 5) & 1, avx512f = (ebx >> 16) & 1, avx512dq = (ebx >> 17) & 1;
    int avx512bw = (ebx >> 30) & 1, avx512vl = (ebx >> 31) & 1, avx512cd = (ebx >> 28) & 1;
    if (avx512f && avx512dq && avx512bw && avx512vl && avx512cd && os_saves_avx512_state()) return "SkylakeX";
    if (avx2 && fma) return "Haswell";
    return NULL;
}

static void load(void) {
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user == NULL || user[0] == '\0') {
        const char *core = coretype_for_this_cpu();
        if (core != NULL) {
            setenv("OPENBLAS_CORETYPE", core, 1);
            snprintf(chosen_coretype, sizeof chosen_coretype, "%s", core);
        }
    }
    static const char *candidates[] = {"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", NULL};
    void *handle = NULL;
    for (int i = 0; candidates[i] != NULL && handle == NULL; i++) {
        handle = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
    }
    if (handle == NULL) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error,
                 "OpenBLAS could not be loaded (%s); install it with: apt-get install libopenblas0",
                 why ? why : "not found");
        return;
    }
    cblas_sgemm_ptr = (sgemm_fn)dlsym(handle, "cblas_sgemm");
    set_threads_ptr = (set_threads_fn)dlsym(handle, "openblas_set_num_threads");
    get_threads_ptr = (get_threads_fn)dlsym(handle, "openblas_get_num_threads");
    corename_ptr = (corename_fn)dlsym(handle, "openblas_get_corename");
    if (cblas_sgemm_ptr == NULL) {
        snprintf(load_error, sizeof load_error, "the loaded BLAS library has no cblas_sgemm symbol");
        return;
    }
    /* headtune splits work across threads itself; OpenBLAS's own workers would spin between
       calls and compete with ours for the cores. */
    if (set_threads_ptr != NULL) set_threads_ptr(1);
    load_status = 0;
}

int headtune_blas_load(char *error, int error_size) {
    pthread_once(&load_once, load);
    if (load_status != 0 && error != NULL && error_size > 0) snprintf(error, (size_t)error_size, "%s", load_error);
    return load_status;
}

const char *headtune_blas_core_name(void) {
    if (load_status != 0 || corename_ptr == NULL) return "";
    return corename_ptr();
}

const char *headtune_blas_chosen_coretype(void) { return chosen_coretype; }

void headtune_blas_set_threads(int threads) {
    if (set_threads_ptr != NULL) set_threads_ptr(threads);
}

int headtune_blas_get_threads(void) { return get_threads_ptr != NULL ? get_threads_ptr() : 1; }

void headtune_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc) {
    /* Callers that reach a GEMM without headtune_blas_load (a head scored on its own, a test suite run
       alone) load here instead of calling a null pointer; after the first call this is one check. */
    pthread_once(&load_once, load);
    if (load_status != 0) {
        fprintf(stderr, "headtune: OpenBLAS is unavailable: %s\n", load_error);
        abort();
    }
    cblas_sgemm_ptr(ROW_MAJOR, trans_a ? TRANS : NO_TRANS, trans_b ? TRANS : NO_TRANS, m, n, k, alpha, a, lda, b,
                    ldb, beta, c, ldc);
}
