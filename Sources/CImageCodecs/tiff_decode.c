#include "codec_common.h"

#include <pthread.h>
#include <stdlib.h>

#include <tiffio.h>

// The first page (IFD) of a TIFF through libtiff's RGBA interface, which converts every photometric
// libtiff knows (grey and palette of any depth, RGB, CMYK, YCbCr, 16-bit samples, alpha) to packed
// RGBA. It is asked for one band at a time: a strip's rows (or a row of tiles) is decoded, converted
// and sent through the sink, so memory holds one band and the (reduced) output, never the whole page.
// The file is read from memory through TIFFClientOpenExt; libtiff's errors and warnings go to
// handlers bound to this decode (the message lands in `out`), never to stderr.

typedef struct {
    const uint8_t *data;
    toff_t size;
    toff_t offset;
} hc_tiff_reader;

static tmsize_t hc_tiff_read(thandle_t handle, void *buffer, tmsize_t length) {
    hc_tiff_reader *reader = (hc_tiff_reader *)handle;
    if (length <= 0 || reader->offset >= reader->size) return 0;
    toff_t available = reader->size - reader->offset;
    toff_t n = (toff_t)length < available ? (toff_t)length : available;
    memcpy(buffer, reader->data + reader->offset, (size_t)n);
    reader->offset += n;
    return (tmsize_t)n;
}

static tmsize_t hc_tiff_write(thandle_t handle, void *buffer, tmsize_t length) {
    (void)handle;
    (void)buffer;
    (void)length;
    return -1;
}

static toff_t hc_tiff_seek(thandle_t handle, toff_t offset, int whence) {
    hc_tiff_reader *reader = (hc_tiff_reader *)handle;
    toff_t base = whence == SEEK_CUR ? reader->offset : whence == SEEK_END ? reader->size : 0;
    if (offset > UINT64_MAX - base) return (toff_t)-1;
    reader->offset = base + offset;  // past the end is allowed; reads there return 0 bytes
    return reader->offset;
}

static int hc_tiff_close(thandle_t handle) {
    (void)handle;
    return 0;
}

static toff_t hc_tiff_size(thandle_t handle) { return ((hc_tiff_reader *)handle)->size; }

// "Mapping" the buffer lets libtiff read uncompressed and compressed strips in place, without a copy.
static int hc_tiff_map(thandle_t handle, void **base, toff_t *size) {
    hc_tiff_reader *reader = (hc_tiff_reader *)handle;
    *base = (void *)reader->data;
    *size = reader->size;
    return 1;
}

static void hc_tiff_unmap(thandle_t handle, void *base, toff_t size) {
    (void)handle;
    (void)base;
    (void)size;
}

// The first error is the reason (later ones are consequences). Returning 1 stops libtiff from
// calling the process-wide handlers, which print.
static int hc_tiff_error(TIFF *tif, void *user_data, const char *module, const char *format, va_list args) {
    (void)tif;
    hc_image *out = (hc_image *)user_data;
    if (out->status != HC_OK) return 1;
    char text[sizeof(out->message)];
    vsnprintf(text, sizeof(text), format, args);
    if (module != NULL && module[0] != 0) hc_fail(out, HC_CORRUPT, "%s: %s", module, text);
    else hc_fail(out, HC_CORRUPT, "%s", text);
    return 1;
}

static int hc_tiff_warning(TIFF *tif, void *user_data, const char *module, const char *format, va_list args) {
    (void)tif;
    (void)user_data;
    (void)module;
    (void)format;
    (void)args;
    return 1;
}

// A few libtiff paths still report through the process-wide handlers; with them unset nothing prints.
static pthread_once_t hc_tiff_silenced = PTHREAD_ONCE_INIT;
static void hc_tiff_silence(void) {
    TIFFSetErrorHandler(NULL);
    TIFFSetWarningHandler(NULL);
    TIFFSetErrorHandlerExt(NULL);
    TIFFSetWarningHandlerExt(NULL);
}

/// Rows of a premultiplied RGBA band (libtiff's packed ABGR, R in the low byte) composited on white:
/// c + (255 - a), the same as compositing the unassociated colour, (a*c + (255-a)*255) / 255.
static void hc_tiff_row_on_white(const uint32_t *in, uint8_t *out, uint32_t width) {
    for (uint32_t x = 0; x < width; x++, out += 3) {
        uint32_t p = in[x];
        uint32_t white = 255 - (p >> 24);
        for (int c = 0; c < 3; c++) {
            uint32_t v = ((p >> (8 * c)) & 0xFF) + white;
            out[c] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
}

void hc_decode_tiff(const void *bytes, size_t size, hc_decode_options options, hc_image *out) {
    hc_image_reset(out);
    pthread_once(&hc_tiff_silenced, hc_tiff_silence);

    TIFFOpenOptions *open_options = TIFFOpenOptionsAlloc();
    if (open_options == NULL) {
        hc_fail(out, HC_OUT_OF_MEMORY, "cannot create libtiff options");
        return;
    }
    // libtiff refuses any single allocation above this (directory arrays, strip buffers).
    if (options.max_working_bytes > 0) TIFFOpenOptionsSetMaxSingleMemAlloc(open_options, (tmsize_t)options.max_working_bytes);
    TIFFOpenOptionsSetErrorHandlerExtR(open_options, hc_tiff_error, out);
    TIFFOpenOptionsSetWarningHandlerExtR(open_options, hc_tiff_warning, out);
    hc_tiff_reader reader = {(const uint8_t *)bytes, (toff_t)size, 0};
    TIFF *tif = TIFFClientOpenExt("TIFF", "r", (thandle_t)&reader, hc_tiff_read, hc_tiff_write, hc_tiff_seek,
                                  hc_tiff_close, hc_tiff_size, hc_tiff_map, hc_tiff_unmap, open_options);
    TIFFOpenOptionsFree(open_options);
    if (tif == NULL) {
        if (out->status == HC_OK) hc_fail(out, HC_CORRUPT, "cannot read the first image directory");
        return;
    }

    uint32_t width = 0, height = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &width);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &height);
    out->source_width = width;
    out->source_height = height;
    uint32_t *raster = NULL;
    uint8_t *rgb_row = NULL;
    hc_row_sink sink;
    memset(&sink, 0, sizeof(sink));
    TIFFRGBAImage image;
    int image_begun = 0;

    if (width == 0 || height == 0) {
        hc_fail(out, HC_ZERO_SIZE, "zero width or height");
        goto done;
    }
    if (hc_exceeds_limit(width, height, options.max_pixels)) {
        hc_fail(out, HC_TOO_LARGE, "declared size exceeds the pixel limit");
        goto done;
    }
    uint16_t orientation = ORIENTATION_TOPLEFT;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ORIENTATION, &orientation);
    out->orientation = orientation >= 1 && orientation <= 8 ? orientation : 1;

    char reason[1024];
    if (!TIFFRGBAImageOK(tif, reason)) {
        if (out->status == HC_OK) hc_fail(out, HC_UNSUPPORTED, "%s", reason);
        goto done;
    }

    // One band = the rows one read decodes: a strip, or a row of tiles.
    const int tiled = TIFFIsTiled(tif);
    uint32_t band = height;
    uint64_t chunk_bytes = 0;
    uint16_t planar = PLANARCONFIG_CONTIG, samples = 1;
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &samples);
    if (tiled) {
        uint32_t tile_height = 0;
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &tile_height);
        band = tile_height;
        chunk_bytes = (uint64_t)TIFFTileSize64(tif);
    } else {
        uint32_t rows_per_strip = height;
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rows_per_strip);
        band = rows_per_strip;
        chunk_bytes = (uint64_t)TIFFStripSize64(tif);
    }
    if (band == 0 || band > height) band = height;
    if (planar == PLANARCONFIG_SEPARATE) chunk_bytes *= samples;
    // A strip's decoded samples and the band's RGBA: one page written as a single strip needs them
    // for the whole page, which bounds such files to a lower pixel count than the limit.
    const uint64_t band_bytes = (uint64_t)width * band * 4 + chunk_bytes;
    if (options.max_working_bytes > 0 && band_bytes > (uint64_t)options.max_working_bytes) {
        hc_fail(out, HC_OUT_OF_MEMORY, "a TIFF %s of %u rows x %u pixels needs %llu bytes at once, above the decoder "
                "memory limit of %lld bytes (a page in fewer, larger %ss allows fewer pixels)", tiled ? "tile row" : "strip",
                band, width, (unsigned long long)band_bytes, (long long)options.max_working_bytes, tiled ? "tile" : "strip");
        goto done;
    }

    const uint32_t factor = hc_reduction_factor(width, height, options.exact_size ? 0 : options.minimum_side);
    if (options.probe_only) {
        out->reduction_factor = factor;
        out->width = (width + factor - 1) / factor;
        out->height = (height + factor - 1) / factor;
        // libtiff also holds the compressed strip when it cannot read it in place, and its codec state.
        out->estimated_bytes = hc_estimate_bytes(width, height, factor, (size_t)(band_bytes + chunk_bytes) + (size_t)width * 3,
                                                 256u << 10);
        goto done;
    }

    if (!TIFFRGBAImageBegin(&image, tif, 1, reason)) {
        if (out->status == HC_OK) hc_fail(out, HC_UNSUPPORTED, "%s", reason);
        goto done;
    }
    image_begun = 1;
    // The stored row order: orientation is applied afterwards, with the other formats' EXIF path.
    image.req_orientation = image.orientation;

    if (!hc_sink_init(&sink, out, width, height, factor)) goto done;
    raster = hc_counted_malloc(out, (size_t)width * band * sizeof(uint32_t));
    rgb_row = hc_counted_malloc(out, (size_t)width * 3);
    if (raster == NULL || rgb_row == NULL) {
        hc_fail(out, HC_OUT_OF_MEMORY, "no memory for a band of %u rows", band);
        goto done;
    }
    for (uint32_t y = 0; y < height; y += band) {
        uint32_t rows = height - y < band ? height - y : band;
        image.row_offset = (int)y;
        image.col_offset = 0;
        if (!TIFFRGBAImageGet(&image, raster, width, rows) || out->status != HC_OK) {
            if (out->status == HC_OK) hc_fail(out, HC_CORRUPT, "cannot decode rows %u to %u", y, y + rows - 1);
            goto done;
        }
        for (uint32_t r = 0; r < rows; r++) {
            hc_tiff_row_on_white(raster + (size_t)r * width, rgb_row, width);
            hc_sink_row(&sink, out, rgb_row, width, y + r, 0, 1);
        }
    }
    hc_sink_finish(&sink, out);

done:
    hc_counted_free(out, raster);
    hc_counted_free(out, rgb_row);
    hc_sink_release(&sink, out);
    if (image_begun) TIFFRGBAImageEnd(&image);
    TIFFClose(tif);
    if (out->status != HC_OK) {
        hc_image_release(out);
        out->width = out->height = 0;
    }
}
