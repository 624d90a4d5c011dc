#ifndef HEADTUNE_CIMAGECODECS_H
#define HEADTUNE_CIMAGECODECS_H

// Thin C layer over libjpeg(-turbo), libpng, libwebp, libtiff and libheif. libjpeg and libpng report errors
// by longjmp, which Swift cannot survive, libtiff through process-wide handlers that print to stderr:
// every library call happens here and errors come back as a status and a message. The output is always 8-bit interleaved RGB (HWC); the Swift module `Imaging` wraps it.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    HC_OK = 0,
    /// Truncated or malformed data; `message` holds the library's reason.
    HC_CORRUPT = 1,
    /// A valid file of a kind we do not decode (12-bit JPEG, 2-channel JPEG, ...).
    HC_UNSUPPORTED = 2,
    /// The declared pixel count exceeds `max_pixels`; `source_width`/`source_height` are set.
    HC_TOO_LARGE = 3,
    /// The header declares a zero width or height.
    HC_ZERO_SIZE = 4,
    /// malloc failed (or the byte count overflowed size_t).
    HC_OUT_OF_MEMORY = 5,
} hc_status;

typedef struct {
    /// Refuse images whose header declares more pixels than this (checked before any
    /// pixel-sized allocation). Values <= 0 mean "no limit" (not recommended).
    int64_t max_pixels;
    /// JPEG: decode at the smallest DCT scale 1/8, 1/4, 1/2 or 1/1 whose output keeps both sides
    /// >= minimum_side. JPEG, PNG, TIFF and HEIF: then box-reduce by the largest integer factor that
    /// keeps both sides >= 2 * minimum_side (see reduction_factor). WebP: libwebp's scaler decodes
    /// straight to the size that factor gives (scale_denominator). 0 = full size, no reduction.
    int32_t minimum_side;
    /// The most the library may hold for its own buffers, checked from the header before decoding;
    /// past it the decode fails with HC_OUT_OF_MEMORY instead of allocating. JPEG: a progressive
    /// file keeps every DCT coefficient (2 bytes per sample) until the last scan. WebP: a lossless
    /// image keeps all its ARGB pixels (4 bytes each), a lossy one with alpha its alpha plane.
    /// TIFF: one strip or tile row of decoded samples plus its RGBA band (4 bytes per pixel), and
    /// libtiff's largest single allocation. HEIF: libheif's full-size planes and RGB conversion.
    /// Values <= 0 mean "no limit".
    int64_t max_working_bytes;
    /// Non-zero: never box-reduce (DCT scaling still follows minimum_side).
    int32_t exact_size;
    /// Non-zero: read the header only, run every check a decode runs on it, and fill
    /// source_width/height, width/height, scale_denominator, reduction_factor and
    /// estimated_bytes; no pixels are decoded.
    int32_t probe_only;
} hc_decode_options;

typedef struct {
    hc_status status;
    /// Size declared in the file header (before DCT scaling).
    uint32_t source_width;
    uint32_t source_height;
    /// Size of `pixels` (after DCT scaling; EXIF orientation is NOT applied here).
    uint32_t width;
    uint32_t height;
    /// Scale used by the library: JPEG decoded at 1/scale_denominator by DCT scaling (1, 2, 4, 8);
    /// WebP by libwebp's area-averaging scaler to ceil(side / scale_denominator) (any integer);
    /// 1 for PNG and TIFF.
    uint32_t scale_denominator;
    /// Integer box reduction applied after decoding (and after DCT scaling): `pixels` holds the
    /// rounded mean of each reduction_factor x reduction_factor block (smaller at the right and
    /// bottom edges), like Pillow's Image.reduce. 1 = not reduced. With minimum_side > 0 the factor
    /// is the largest that keeps both sides >= 2 * minimum_side, so a decode never holds the
    /// full-size image when a much smaller one serves the network.
    uint32_t reduction_factor;
    /// Peak bytes held at once by this decode's own buffers (rows, reduction sums, pixels) and,
    /// for PNG, every libpng allocation (zlib state included); for HEIF libheif's buffers at their
    /// estimate. Not counted: libjpeg's, libwebp's and libtiff's internals (bounded by
    /// max_working_bytes) and the caller's copy of the pixels.
    size_t peak_bytes;
    /// Bytes currently held (internal bookkeeping for peak_bytes).
    size_t held_bytes;
    /// probe_only: what the decode would hold at its peak (an upper estimate of peak_bytes, the
    /// library's own buffers included).
    size_t estimated_bytes;
    /// malloc'd, width * height * 3 bytes, RGB; NULL unless status == HC_OK.
    uint8_t *pixels;
    /// Orientation (1...8, as EXIF's) declared by the container itself: TIFF tag 274. 0 = none;
    /// the orientation is then read from `exif`.
    uint32_t orientation;
    /// malloc'd TIFF-structured EXIF data (JPEG APP1 after "Exif\0\0", PNG eXIf, WebP EXIF chunk), or NULL.
    uint8_t *exif;
    size_t exif_size;
    /// NUL-terminated reason when status != HC_OK.
    char message[256];
} hc_image;

/// Decodes a JPEG held in memory. Always fills `out` (call hc_image_release afterwards).
void hc_decode_jpeg(const void *bytes, size_t size, hc_decode_options options, hc_image *out);

/// Decodes a PNG held in memory. Always fills `out` (call hc_image_release afterwards).
void hc_decode_png(const void *bytes, size_t size, hc_decode_options options, hc_image *out);

/// Decodes a WebP held in memory (lossy, lossless, alpha; the first frame of an animation).
/// Always fills `out` (call hc_image_release afterwards).
void hc_decode_webp(const void *bytes, size_t size, hc_decode_options options, hc_image *out);

/// Decodes the first page of a TIFF held in memory. Always fills `out` (call hc_image_release afterwards).
void hc_decode_tiff(const void *bytes, size_t size, hc_decode_options options, hc_image *out);

/// Decodes the primary image of a HEIF/HEIC held in memory (rotation, mirroring and crop applied,
/// as the container says). Always fills `out` (call hc_image_release afterwards).
void hc_decode_heif(const void *bytes, size_t size, hc_decode_options options, hc_image *out);

/// Frees `pixels` and `exif` and sets them to NULL.
void hc_image_release(hc_image *image);

#ifdef __cplusplus
}
#endif

#endif
