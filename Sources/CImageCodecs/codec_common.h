#ifndef HEADTUNE_CODEC_COMMON_H
#define HEADTUNE_CODEC_COMMON_H

#include "CImageCodecs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/// Resets every field so callers can release `out` whatever happened.
void hc_image_reset(hc_image *out);

/// Records a failure; the message is formatted like printf.
void hc_fail(hc_image *out, hc_status status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/// True when width * height exceeds the caller's limit (limit <= 0: unlimited).
static inline int hc_exceeds_limit(uint64_t width, uint64_t height, int64_t max_pixels) {
    return max_pixels > 0 && width * height > (uint64_t)max_pixels;
}

/// width * height * channels as size_t, or 0 when it does not fit.
static inline size_t hc_byte_count(uint64_t width, uint64_t height, uint64_t channels) {
    // width and height come from 32-bit header fields, so these products fit in 64 bits
    // except for the final multiply by channels, which is checked.
    uint64_t pixels = width * height;
    if (pixels != 0 && channels > UINT64_MAX / pixels) return 0;
    uint64_t bytes = pixels * channels;
    if (bytes > (uint64_t)SIZE_MAX) return 0;
    return (size_t)bytes;
}

/// t / 255 rounded to nearest for t in 0...255*255, without a division (Pillow's DIV255).
static inline int hc_div255(int t) {
    t += 128;
    return ((t >> 8) + t) >> 8;
}

/// a * b / 255 rounded to nearest for a, b in 0...255 (Pillow's MULDIV255).
static inline int hc_muldiv255(int a, int b) { return hc_div255(a * b); }

#endif
