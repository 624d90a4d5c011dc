// The one rounding rule of every fp32 -> uint8 step (the GEMM's epilogue, hk_quantize_u8, the depthwise
// convolution's uint8 output), in one place so they stay bit-identical.
#ifndef HEADTUNE_QUANTIZE_H
#define HEADTUNE_QUANTIZE_H

/* Requantization of one value, shared by hk_quantize_u8, the reference epilogue and (as the same
   sequence of vector operations) the VNNI epilogue: t = x * inv_scale in float; NaN -> 0 (so NaN becomes
   the zero point); t clamped to [-512, 512] (changes nothing after the final clamp, since the zero point
   is in [0, 255], but keeps the rounding exact and in range); rounded to nearest, ties to even (1.5 * 2^23
   added and subtracted: exact for |t| <= 2^22, and what cvtps2dq does in the default rounding mode);
   + zero_point, clamped to [0, 255]. */
static inline __attribute__((always_inline)) int quantize_value(float x, float inv_scale, int zero_point) {
    float t = x * inv_scale;
    t = t == t ? t : 0.0f;
    t = t < -512.0f ? -512.0f : t;
    t = t > 512.0f ? 512.0f : t;
    t = (t + 0x1.8p23f) - 0x1.8p23f;
    int q = (int)t + zero_point;
    return q < 0 ? 0 : q > 255 ? 255 : q;
}

#endif
