#include "codec_common.h"

#include <stdlib.h>

#include <png.h>

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
} hc_png_reader;

static void hc_png_read(png_structp png, png_bytep dst, size_t length) {
    hc_png_reader *reader = (hc_png_reader *)png_get_io_ptr(png);
    if (length > reader->size - reader->offset) png_error(png, "unexpected end of file");
    memcpy(dst, reader->data + reader->offset, length);
    reader->offset += length;
}

static void hc_png_error(png_structp png, png_const_charp message) {
    hc_image *out = (hc_image *)png_get_error_ptr(png);
    if (out->status == HC_OK) hc_fail(out, HC_CORRUPT, "%s", message);
    png_longjmp(png, 1);
}

static void hc_png_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

// libpng's allocations go through the decode's byte counter (mem_ptr is the hc_image).
static png_voidp hc_png_malloc(png_structp png, png_alloc_size_t size) {
    return hc_counted_malloc((hc_image *)png_get_mem_ptr(png), size);
}

static void hc_png_free(png_structp png, png_voidp block) {
    hc_counted_free((hc_image *)png_get_mem_ptr(png), block);
}

static uint32_t hc_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

void hc_decode_png(const void *bytes, size_t size, hc_decode_options options, hc_image *out) {
    hc_image_reset(out);
    const uint8_t *data = (const uint8_t *)bytes;

    // Look at IHDR ourselves first (it must be the first chunk): this classifies zero-sized and
    // oversized images precisely, before libpng allocates anything that depends on the width.
    if (size >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        uint32_t w = hc_be32(data + 16), h = hc_be32(data + 20);
        out->source_width = w;
        out->source_height = h;
        if (w == 0 || h == 0) {
            hc_fail(out, HC_ZERO_SIZE, "IHDR declares zero width or height");
            return;
        }
        if (hc_exceeds_limit(w, h, options.max_pixels)) {
            hc_fail(out, HC_TOO_LARGE, "declared size exceeds the pixel limit");
            return;
        }
    }

    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, out, hc_png_error, hc_png_warning,
                                               out, hc_png_malloc, hc_png_free);
    if (png == NULL) {
        hc_fail(out, HC_OUT_OF_MEMORY, "cannot create libpng reader");
        return;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        hc_fail(out, HC_OUT_OF_MEMORY, "cannot create libpng info");
        return;
    }

    hc_png_reader reader = {data, size, 0};
    // Changed after setjmp and read after a longjmp, hence volatile.
    uint8_t *volatile row = NULL;
    uint8_t *volatile rgb_row = NULL;
    volatile int pixels_complete = 0;
    // A local changed after setjmp is indeterminate after longjmp: the volatile pointer is not.
    hc_row_sink sink_storage;
    memset(&sink_storage, 0, sizeof(sink_storage));
    hc_row_sink *volatile sink = &sink_storage;

    if (setjmp(png_jmpbuf(png))) {
        hc_counted_free(out, row);
        hc_counted_free(out, rgb_row);
        hc_sink_release(sink, out);
        if (pixels_complete) {
            // Damage after the last image row (a missing IEND, a bad trailing chunk) does not
            // affect the pixels; keep them, drop whatever trailing EXIF was being read.
            out->status = HC_OK;
            out->message[0] = 0;
            free(out->exif);
            out->exif = NULL;
            out->exif_size = 0;
        } else {
            hc_image_release(out);
            out->width = out->height = 0;
        }
        png_destroy_read_struct(&png, &info, NULL);
        return;
    }

    png_set_read_fn(png, &reader, hc_png_read);
    // Second guard behind the IHDR check above: libpng itself refuses wider/taller images.
    png_uint_32 dimension_limit = PNG_UINT_31_MAX;
    if (options.max_pixels > 0 && (uint64_t)options.max_pixels < dimension_limit) {
        dimension_limit = (png_uint_32)options.max_pixels;
    }
    png_set_user_limits(png, dimension_limit, dimension_limit);
    png_set_chunk_malloc_max(png, 8u << 20);  // caps ancillary chunk (e.g. zTXt bomb) memory
    // Text, ICC and palette-suggestion chunks are never used: skip them without inflating them.
    static const png_byte ignored[] = {
        'i', 'C', 'C', 'P', 0, 'i', 'T', 'X', 't', 0, 's', 'P', 'L', 'T', 0,
        't', 'E', 'X', 't', 0, 'z', 'T', 'X', 't', 0,
    };
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, ignored, (int)(sizeof(ignored) / 5));

    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    out->source_width = width;
    out->source_height = height;
    if (hc_exceeds_limit(width, height, options.max_pixels)) {
        hc_fail(out, HC_TOO_LARGE, "declared size exceeds the pixel limit");
        png_longjmp(png, 1);
    }

    // 16 -> 8 bits by png_set_scale_16: round(v * 255 / 65535) == (v * 255 + 32895) >> 16.
    // (Pillow instead keeps the high byte for RGB(A) and clips 16-bit grey; we scale.)
    if (bit_depth == 16) png_set_scale_16(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
        png_set_gray_to_rgb(png);
    }
    // No png_set_interlace_handling: Adam7 passes arrive as their own sub-images and each pixel
    // goes straight to its place (or its reduction block), so an interlaced image needs no
    // full-size buffer either.
    png_read_update_info(png, info);

    const int channels = png_get_channels(png, info);
    const size_t row_bytes = png_get_rowbytes(png, info);
    if ((channels != 3 && channels != 4) || png_get_bit_depth(png, info) != 8 ||
        row_bytes != (size_t)width * (size_t)channels) {
        hc_fail(out, HC_UNSUPPORTED, "unexpected PNG layout after conversion");
        png_longjmp(png, 1);
    }

    const uint32_t factor = hc_reduction_factor(width, height, options.exact_size ? 0 : options.minimum_side);
    if (options.probe_only) {
        // libpng keeps the previous and current rows (row_bytes + 1 each) beside ours, and zlib
        // its 32 KB window and state: the fixed part is measured with peak_bytes, rounded up.
        out->reduction_factor = factor;
        out->width = (width + factor - 1) / factor;
        out->height = (height + factor - 1) / factor;
        out->estimated_bytes = hc_estimate_bytes(width, height, factor, 4 * row_bytes + (size_t)width * 3, 96u << 10);
        png_destroy_read_struct(&png, &info, NULL);
        return;
    }
    if (!hc_sink_init(sink, out, width, height, factor)) png_longjmp(png, 1);
    row = hc_counted_malloc(out, row_bytes);
    if (channels == 4) rgb_row = hc_counted_malloc(out, (size_t)width * 3);
    if (row == NULL || (channels == 4 && rgb_row == NULL)) {
        hc_fail(out, HC_OUT_OF_MEMORY, "no memory for a row");
        png_longjmp(png, 1);
    }

    const int passes = interlace == PNG_INTERLACE_ADAM7 ? 7 : 1;
    for (int pass = 0; pass < passes; pass++) {
        uint32_t columns = passes == 1 ? width : PNG_PASS_COLS(width, pass);
        uint32_t rows = passes == 1 ? height : PNG_PASS_ROWS(height, pass);
        if (columns == 0 || rows == 0) continue;  // libpng skips empty passes too
        uint32_t x0 = passes == 1 ? 0 : PNG_PASS_START_COL(pass);
        uint32_t dx = passes == 1 ? 1 : PNG_PASS_COL_OFFSET(pass);
        for (uint32_t r = 0; r < rows; r++) {
            png_read_row(png, row, NULL);
            uint32_t y = passes == 1 ? r : PNG_ROW_FROM_PASS_ROW(r, pass);
            const uint8_t *rgb = row;
            if (channels == 4) {
                hc_rgba_row_on_white(row, rgb_row, columns);
                rgb = rgb_row;
            }
            hc_sink_row(sink, out, rgb, columns, y, x0, dx);
        }
    }
    hc_counted_free(out, row);
    row = NULL;
    hc_counted_free(out, rgb_row);
    rgb_row = NULL;
    if (!hc_sink_finish(sink, out)) png_longjmp(png, 1);
    pixels_complete = 1;

    // eXIf may follow the image data; errors from here on keep the pixels (see setjmp above).
    png_read_end(png, info);
#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 exif_size = 0;
    png_bytep exif = NULL;
    if (png_get_eXIf_1(png, info, &exif_size, &exif) != 0 && exif != NULL && exif_size > 0) {
        out->exif = malloc(exif_size);
        if (out->exif != NULL) {
            memcpy(out->exif, exif, exif_size);
            out->exif_size = exif_size;
        }
    }
#endif
    png_destroy_read_struct(&png, &info, NULL);
}
