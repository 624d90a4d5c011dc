#include "codec_common.h"

#include <pthread.h>
#include <stdlib.h>

#include <libheif/heif.h>

// HEIC/HEIF (the primary image) through libheif with libde265. libheif decodes the whole image
// (assembling a phone's grid of tiles) and applies the container's rotation, mirroring and crop
// (irot, imir, clap: what HEIF uses instead of EXIF orientation, which it says to ignore); it has
// no reduced-size decoding, so the full image is held in libheif's YCbCr planes and its RGB
// conversion at once, then box-reduced through the sink like PNG. That peak is checked against the
// decoder memory limit from the header before anything is decoded.

static pthread_once_t hc_heif_initialized = PTHREAD_ONCE_INIT;
static void hc_heif_init(void) { heif_init(NULL); }

static hc_status hc_heif_status_for(const struct heif_error *error) {
    switch (error->code) {
    case heif_error_Unsupported_filetype:
    case heif_error_Unsupported_feature:
        return HC_UNSUPPORTED;
    case heif_error_Memory_allocation_error:
        return HC_OUT_OF_MEMORY;
    default:  // a security limit exceeded included: its message says which
        return HC_CORRUPT;
    }
}

static void hc_heif_fail(hc_image *out, const struct heif_error *error) {
    hc_fail(out, hc_heif_status_for(error), "%s", error->message != NULL ? error->message : "libheif error");
}

void hc_decode_heif(const void *bytes, size_t size, hc_decode_options options, hc_image *out) {
    hc_image_reset(out);
    pthread_once(&hc_heif_initialized, hc_heif_init);
    struct heif_context *context = heif_context_alloc();
    if (context == NULL) {
        hc_fail(out, HC_OUT_OF_MEMORY, "cannot create a libheif context");
        return;
    }
    // Tiles are decoded on this thread: the caller already decodes one image per core.
    heif_context_set_max_decoding_threads(context, 0);
    struct heif_image_handle *handle = NULL;
    struct heif_image *image = NULL;
    uint8_t *row = NULL;
    hc_row_sink sink;
    memset(&sink, 0, sizeof(sink));

    struct heif_error error = heif_context_read_from_memory_without_copy(context, bytes, size, NULL);
    if (error.code != heif_error_Ok) {
        hc_heif_fail(out, &error);
        goto done;
    }
    error = heif_context_get_primary_image_handle(context, &handle);
    if (error.code != heif_error_Ok) {
        hc_heif_fail(out, &error);
        goto done;
    }
    // The size after rotation and crop: what the decode returns.
    const int width = heif_image_handle_get_width(handle), height = heif_image_handle_get_height(handle);
    out->source_width = width > 0 ? (uint32_t)width : 0;
    out->source_height = height > 0 ? (uint32_t)height : 0;
    if (width <= 0 || height <= 0) {
        hc_fail(out, HC_ZERO_SIZE, "zero width or height");
        goto done;
    }
    if (hc_exceeds_limit((uint64_t)width, (uint64_t)height, options.max_pixels)) {
        hc_fail(out, HC_TOO_LARGE, "declared size exceeds the pixel limit");
        goto done;
    }
    const int alpha = heif_image_handle_has_alpha_channel(handle);
    const int luma_bits = heif_image_handle_get_luma_bits_per_pixel(handle);
    // libheif's planes (up to 4:4:4, 2 bytes a sample above 8 bits) and its interleaved conversion,
    // both full size, plus the decoder's reference pictures for a tile.
    const uint64_t pixels = (uint64_t)width * (uint64_t)height;
    const uint64_t library_bytes = pixels * 3 * (luma_bits > 8 ? 2 : 1) + pixels * (alpha ? 4 : 3) + (4u << 20);
    if (options.max_working_bytes > 0 && library_bytes > (uint64_t)options.max_working_bytes) {
        hc_fail(out, HC_OUT_OF_MEMORY, "a HEIF image of %dx%d needs about %llu bytes in libheif (it decodes at full "
                "size), above the decoder memory limit of %lld bytes", width, height, (unsigned long long)library_bytes,
                (long long)options.max_working_bytes);
        goto done;
    }
    const uint32_t factor = hc_reduction_factor((uint32_t)width, (uint32_t)height,
                                                options.exact_size ? 0 : options.minimum_side);
    if (options.probe_only) {
        out->reduction_factor = factor;
        out->width = ((uint32_t)width + factor - 1) / factor;
        out->height = ((uint32_t)height + factor - 1) / factor;
        out->estimated_bytes = hc_estimate_bytes((uint32_t)width, (uint32_t)height, factor, (size_t)width * 3,
                                                 (size_t)library_bytes);
        goto done;
    }

    struct heif_decoding_options *decoding = heif_decoding_options_alloc();
    if (decoding == NULL) {
        hc_fail(out, HC_OUT_OF_MEMORY, "cannot create libheif decoding options");
        goto done;
    }
    decoding->convert_hdr_to_8bit = 1;
    error = heif_decode_image(handle, &image, heif_colorspace_RGB,
                              alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, decoding);
    heif_decoding_options_free(decoding);
    if (error.code != heif_error_Ok) {
        hc_heif_fail(out, &error);
        goto done;
    }
    hc_count_bytes(out, (size_t)library_bytes);  // libheif's allocations are not seen; count the estimate
    int stride = 0;
    const uint8_t *plane = heif_image_get_plane_readonly(image, heif_channel_interleaved, &stride);
    if (plane == NULL || heif_image_get_width(image, heif_channel_interleaved) != width ||
        heif_image_get_height(image, heif_channel_interleaved) != height ||
        heif_image_get_bits_per_pixel_range(image, heif_channel_interleaved) != 8) {
        hc_fail(out, HC_UNSUPPORTED, "libheif returned an unexpected layout");
        goto done;
    }
    if (!hc_sink_init(&sink, out, (uint32_t)width, (uint32_t)height, factor)) goto done;
    if (alpha && (row = hc_counted_malloc(out, (size_t)width * 3)) == NULL) {
        hc_fail(out, HC_OUT_OF_MEMORY, "no memory for a row");
        goto done;
    }
    for (int y = 0; y < height; y++) {
        const uint8_t *source = plane + (size_t)y * (size_t)stride;
        if (alpha) {
            hc_rgba_row_on_white(source, row, (size_t)width);
            source = row;
        }
        hc_sink_row(&sink, out, source, (uint32_t)width, (uint32_t)y, 0, 1);
    }
    hc_sink_finish(&sink, out);

done:
    hc_counted_free(out, row);
    hc_sink_release(&sink, out);
    if (image != NULL) heif_image_release(image);
    if (handle != NULL) heif_image_handle_release(handle);
    heif_context_free(context);
    if (out->status != HC_OK) {
        hc_image_release(out);
        out->width = out->height = 0;
    }
}
