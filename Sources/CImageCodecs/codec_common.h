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

/// Alpha-composites an RGBA row onto white: (a*c + (255-a)*255) / 255, rounded like Pillow's
/// paste(mask=alpha) onto a white RGB image. `out` may be `in` (compaction in place).
void hc_rgba_row_on_white(const uint8_t *in, uint8_t *out, size_t width);

/// malloc/free that count into out->held_bytes and out->peak_bytes (a size header precedes the
/// block). Used for the decoders' working buffers and, through libpng's user-memory hooks, for
/// libpng's own allocations.
void *hc_counted_malloc(hc_image *out, size_t size);
void hc_counted_free(hc_image *out, void *block);
/// Counts a block allocated with plain malloc (the output pixels, which the caller frees).
void hc_count_bytes(hc_image *out, size_t size);

/// The box-reduction factor for a width x height image: the largest integer f with both
/// floor(side / f) >= 2 * minimum_side (1 when minimum_side <= 0 or no f >= 2 qualifies), capped
/// so that a block's sum (f * f * 255) fits in 32 bits.
uint32_t hc_reduction_factor(uint32_t width, uint32_t height, int32_t minimum_side);

/// Where decoded RGB rows go. Factor 1: straight into out->pixels (the exact image). Factor >= 2:
/// summed into one uint32 per output sample, so only the reduced image (x4) is ever held, whatever
/// the source size; rows may arrive in any order (Adam7 passes deliver every pixel once).
typedef struct {
    uint32_t factor;
    uint32_t width, height;          // source
    uint32_t out_width, out_height;  // ceil(source / factor)
    uint32_t *sums;                  // factor >= 2: out_width * out_height * 3
    uint32_t *column_offset;         // factor >= 2: source column -> x / factor * 3
} hc_row_sink;

/// Allocates the sink's buffers (and out->pixels for factor 1); on failure records
/// HC_OUT_OF_MEMORY in `out` and returns 0.
int hc_sink_init(hc_row_sink *sink, hc_image *out, uint32_t width, uint32_t height, uint32_t factor);
/// Delivers `count` RGB pixels of source row y at columns x0, x0 + dx, x0 + 2 dx, ...
void hc_sink_row(hc_row_sink *sink, hc_image *out, const uint8_t *rgb, uint32_t count, uint32_t y,
                 uint32_t x0, uint32_t dx);
/// Writes the (reduced) pixels to `out` and sets width, height and reduction_factor; returns 0
/// (HC_OUT_OF_MEMORY recorded) when the output cannot be allocated.
int hc_sink_finish(hc_row_sink *sink, hc_image *out);
/// Frees the working buffers (not out->pixels); safe to call twice and after hc_sink_finish.
void hc_sink_release(hc_row_sink *sink, hc_image *out);

/// The peak a decode to out_width x out_height (reduced by `factor` from a source `width` wide)
/// holds in the sink and its output, plus `row_bytes` of per-row buffers and `fixed_bytes` of
/// codec state: the estimate behind hc_image.estimated_bytes.
size_t hc_estimate_bytes(uint32_t width, uint32_t height, uint32_t factor, size_t row_bytes, size_t fixed_bytes);

#endif
