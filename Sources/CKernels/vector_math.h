// Vector math shared by the kernels that need exp: attention's softmax, quick_gelu on its own and in
// the GEMM's epilogue. Vector extensions, so each includer's target (a target_clones clone, an AVX-512
// function) decides the instructions; the same expressions give the same numbers everywhere.
#ifndef HEADTUNE_VECTOR_MATH_H
#define HEADTUNE_VECTOR_MATH_H

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef int v16i __attribute__((vector_size(64)));

/* x in every lane. x - 0 is x for every x (-0 too), so only the broadcast is left; (v16){0} + x
   must turn -0 into +0 and costs a scalar add before each broadcast. */
#define SPLAT(x) ((x) - (v16){0})

/* exp for x <= 0 (down to underflow): 2^n * exp(r), r in [-ln2/2, ln2/2], degree-7 Taylor
   polynomial (relative error < 2e-8); the same polynomial as kernels.c's AVX-512 exp. A macro, not a
   function: a v16 argument of a function in a non-AVX-512 clone would change the calling convention. */
#define EXP_NONPOSITIVE(result, input)                                                                           \
    do {                                                                                                         \
        const v16 zero_ = {0};                                                                                   \
        v16 x_ = __builtin_elementwise_max((input), zero_ - 87.0f);                                              \
        v16 n_ = __builtin_elementwise_round(x_ * 1.44269504088896341f);                                         \
        v16 r_ = x_ - n_ * 0.693145751953125f - n_ * 1.428606765330187e-06f;                                     \
        v16 p_ = zero_ + (1.0f / 5040.0f);                                                                       \
        p_ = p_ * r_ + (1.0f / 720.0f);                                                                          \
        p_ = p_ * r_ + (1.0f / 120.0f);                                                                          \
        p_ = p_ * r_ + (1.0f / 24.0f);                                                                           \
        p_ = p_ * r_ + (1.0f / 6.0f);                                                                            \
        p_ = p_ * r_ + 0.5f;                                                                                     \
        p_ = p_ * r_ + 1.0f;                                                                                     \
        p_ = p_ * r_ + 1.0f;                                                                                     \
        v16i bits_ = (__builtin_convertvector(n_, v16i) + 127) << 23;                                            \
        (result) = p_ * (v16)bits_;                                                                              \
    } while (0)

/* result = x * sigmoid(1.702 x), CLIP's quick_gelu, from t = exp(-1.702 |x|) <= 1 so that nothing
   overflows: sigmoid(z) = 1 / (1 + t) for z >= 0, t / (1 + t) below. */
#define QUICK_GELU(result, input)                                                                                \
    do {                                                                                                         \
        v16 v_ = (input), t_;                                                                                    \
        EXP_NONPOSITIVE(t_, -1.702f * __builtin_elementwise_abs(v_));                                            \
        v16 positive_ = 1.0f / (1.0f + t_);                                                                      \
        v16i nonnegative_ = v_ >= 0.0f;                                                                          \
        (result) = v_ * (v16)(((v16i)positive_ & nonnegative_) | ((v16i)(t_ * positive_) & ~nonnegative_));     \
    } while (0)

/* erf(x) = 1 - erfc(|x|) with x's sign, erfc from Numerical Recipes' erfcc (Chebyshev fit, fractional
   error < 1.2e-7). */
#define ERF(result, input)                                                                                       \
    do {                                                                                                         \
        v16 x_erf_ = (input);                                                                                    \
        v16 z_ = __builtin_elementwise_abs(x_erf_);                                                              \
        v16 t_ = 1.0f / (1.0f + 0.5f * z_);                                                                      \
        v16 poly_ = (v16){0} + 0.17087277f;                                                                      \
        poly_ = poly_ * t_ - 0.82215223f;                                                                        \
        poly_ = poly_ * t_ + 1.48851587f;                                                                        \
        poly_ = poly_ * t_ - 1.13520398f;                                                                        \
        poly_ = poly_ * t_ + 0.27886807f;                                                                        \
        poly_ = poly_ * t_ - 0.18628806f;                                                                        \
        poly_ = poly_ * t_ + 0.09678418f;                                                                        \
        poly_ = poly_ * t_ + 0.37409196f;                                                                        \
        poly_ = poly_ * t_ + 1.00002368f;                                                                        \
        poly_ = poly_ * t_ - 1.26551223f;                                                                        \
        v16 e_;                                                                                                  \
        EXP_NONPOSITIVE(e_, poly_ - z_ * z_);                                                                    \
        (result) = __builtin_elementwise_copysign(1.0f - t_ * e_, x_erf_);                                       \
    } while (0)

#endif
