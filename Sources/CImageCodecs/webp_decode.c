#include "codec_common.h"

#include <stdlib.h>

#include <webp/decode.h>
#include <webp/demux.h>

// WebP through libwebp's advanced API. The container is parsed by WebPDemux (no copy), which also
// gives the first frame of an animation and the EXIF chunk. A frame that covers the whole canvas
// (every still image, and most animations' first frame) is decoded by WebPDecode straight at the
// reduced size, libwebp's scaler doing what box reduction does for PNG; a first frame smaller than
// its canvas is decoded at its own size and placed on the canvas row by row through the sink.

// libwebp's own state beside the pixels: the lossy decoder's macroblock-row caches (about 40 bytes
// per column with the loop filter's extra rows), the scaler's rows, the Huffman tables.
enum { HC_WEBP_BYTES_PER_COLUMN = 96 };
static const size_t hc_webp_fixed_bytes = 1u << 20;

static hc_status hc_webp_status_for(VP8StatusCode code) {
    switch (code) {
    case VP8_STATUS_OUT_OF_MEMORY: return HC_OUT_OF_MEMORY;
    case VP8_STATUS_UNSUPPORTED_FEATURE: return HC_UNSUPPORTED;
    default: return HC_CORRUPT;
    }
}

static const char *hc_webp_reason(VP8StatusCode code) {
    switch (code) {
    case VP8_STATUS_OUT_OF_MEMORY: return "libwebp ran out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid decoding parameters";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "decoding suspended";
    case VP8_STATUS_USER_ABORT: return "decoding aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "unexpected end of data";
    default: return "unknown error";
    }
}

/// What libwebp itself holds for one frame of frame_width x frame_height: a lossless bitstream keeps
/// every ARGB pixel (backward references reach anywhere above), a lossy one with alpha its alpha plane.
static uint64_t hc_webp_library_bytes(const WebPBitstreamFeatures *frame, uint32_t frame_width, uint32_t frame_height) {
    uint64_t pixels = (uint64_t)frame_width * frame_height;
    uint64_t bytes = (uint64_t)frame_width * HC_WEBP_BYTES_PER_COLUMN + hc_webp_fixed_bytes;
    if (frame->format == 2) bytes += pixels * 4;
    else if (frame->has_alpha) bytes += pixels;
    return bytes;
}

// Copies the EXIF chunk (the TIFF structure; some writers put "Exif\0\0" in front, which is dropped).
static void hc_webp_copy_exif(const WebPDemuxer *demux, hc_image *out) {
    WebPChunkIterator chunk;
    if (!WebPDemuxGetChunk(demux, "EXIF", 1, &chunk)) return;
    const uint8_t *exif = chunk.chunk.bytes;
    size_t size = chunk.chunk.size;
    if (size >= 6 && memcmp(exif, "Exif\0\0", 6) == 0) {
        exif += 6;
        size -= 6;
    }
    if (size > 0 && (out->exif = malloc(size)) != NULL) {
        memcpy(out->exif, exif, size);
        out->exif_size = size;
    }
    WebPDemuxReleaseChunkIterator(&chunk);
}

/// Decodes the frame at exactly width x height (its own size, or the reduced canvas when it covers
/// the canvas) into `out->pixels` as RGB, alpha composited on white in place.
static void hc_webp_decode_covering(const WebPIterator *frame, const WebPBitstreamFeatures *features,
                                    uint32_t width, uint32_t height, int scaled, hc_image *out) {
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config)) {
        hc_fail(out, HC_UNSUPPORTED, "libwebp ABI mismatch");
        return;
    }
    const int alpha = features->has_alpha;
    const size_t channels = alpha ? 4 : 3;
    size_t bytes = hc_byte_count(width, height, channels);
    uint8_t *pixels = bytes == 0 ? NULL : malloc(bytes);
    if (pixels == NULL) {
        hc_fail(out, HC_OUT_OF_MEMORY, "no memory for %ux%u pixels", width, height);
        return;
    }
    hc_count_bytes(out, bytes);
    config.options.use_threads = 0;
    if (scaled) {
        config.options.use_scaling = 1;
        config.options.scaled_width = (int)width;
        config.options.scaled_height = (int)height;
    }
    config.output.colorspace = alpha ? MODE_RGBA : MODE_RGB;
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = pixels;
    config.output.u.RGBA.stride = (int)(width * channels);
    config.output.u.RGBA.size = bytes;
    VP8StatusCode status = WebPDecode(frame->fragment.bytes, frame->fragment.size, &config);
    WebPFreeDecBuffer(&config.output);  // external memory: frees nothing of ours
    if (status != VP8_STATUS_OK) {
        free(pixels);
        hc_fail(out, hc_webp_status_for(status), "%s", hc_webp_reason(status));
        return;
    }
    if (alpha) {
        hc_rgba_row_on_white(pixels, pixels, (size_t)width * height);
        uint8_t *shrunk = realloc(pixels, hc_byte_count(width, height, 3));
        if (shrunk != NULL) pixels = shrunk;
    }
    out->pixels = pixels;
    out->width = width;
    out->height = height;
}

/// A first frame smaller than the canvas: decoded at its own size, then every canvas row goes
/// through the sink, white where the frame does not reach (the canvas starts transparent).
static void hc_webp_decode_placed(const WebPIterator *frame, const WebPBitstreamFeatures *features,
                                  uint32_t canvas_width, uint32_t canvas_height, uint32_t factor, hc_image *out) {
    hc_image frame_image;
    hc_image_reset(&frame_image);
    WebPBitstreamFeatures rgba = *features;
    rgba.has_alpha = 1;  // the frame's own transparency and the canvas around it both become white
    hc_webp_decode_covering(frame, &rgba, (uint32_t)frame->width, (uint32_t)frame->height, 0, &frame_image);
    hc_count_bytes(out, frame_image.peak_bytes);
    if (frame_image.status != HC_OK) {
        hc_fail(out, frame_image.status, "%s", frame_image.message);
        hc_image_release(&frame_image);
        return;
    }
    hc_row_sink sink;
    uint8_t *row = NULL;
    if (!hc_sink_init(&sink, out, canvas_width, canvas_height, factor) ||
        (row = hc_counted_malloc(out, (size_t)canvas_width * 3)) == NULL) {
        if (out->status == HC_OK) hc_fail(out, HC_OUT_OF_MEMORY, "no memory for a row");
        hc_sink_release(&sink, out);
        hc_image_release(out);
        hc_image_release(&frame_image);
        return;
    }
    const uint32_t x0 = (uint32_t)frame->x_offset, y0 = (uint32_t)frame->y_offset;
    const uint32_t frame_width = (uint32_t)frame->width, frame_height = (uint32_t)frame->height;
    // The demuxer guarantees the frame lies inside the canvas.
    for (uint32_t y = 0; y < canvas_height; y++) {
        memset(row, 255, (size_t)canvas_width * 3);
        if (y >= y0 && y - y0 < frame_height) {
            memcpy(row + (size_t)x0 * 3, frame_image.pixels + (size_t)(y - y0) * frame_width * 3, (size_t)frame_width * 3);
        }
        hc_sink_row(&sink, out, row, canvas_width, y, 0, 1);
    }
    hc_counted_free(out, row);
    hc_image_release(&frame_image);
    out->held_bytes -= frame_image.peak_bytes;
    hc_sink_finish(&sink, out);
}

void hc_decode_webp(const void *bytes, size_t size, hc_decode_options options, hc_image *out) {
    hc_image_reset(out);
    WebPData data = {(const uint8_t *)bytes, size};
    WebPDemuxState state = WEBP_DEMUX_PARSE_ERROR;
    WebPDemuxer *demux = WebPDemuxPartial(&data, &state);
    if (demux == NULL || state == WEBP_DEMUX_PARSE_ERROR) {
        if (demux != NULL) WebPDemuxDelete(demux);
        hc_fail(out, HC_CORRUPT, "malformed RIFF/WebP container");
        return;
    }
    // The canvas size is known once the header is parsed, even in a truncated file.
    if (state >= WEBP_DEMUX_PARSED_HEADER) {
        out->source_width = WebPDemuxGetI(demux, WEBP_FF_CANVAS_WIDTH);
        out->source_height = WebPDemuxGetI(demux, WEBP_FF_CANVAS_HEIGHT);
    }
    if (state != WEBP_DEMUX_DONE) {
        WebPDemuxDelete(demux);
        hc_fail(out, HC_CORRUPT, "unexpected end of data (the file is incomplete)");
        return;
    }
    const uint32_t width = out->source_width, height = out->source_height;
    if (width == 0 || height == 0) {
        WebPDemuxDelete(demux);
        hc_fail(out, HC_ZERO_SIZE, "zero width or height");
        return;
    }
    if (hc_exceeds_limit(width, height, options.max_pixels)) {
        WebPDemuxDelete(demux);
        hc_fail(out, HC_TOO_LARGE, "declared size exceeds the pixel limit");
        return;
    }

    WebPIterator frame;
    if (!WebPDemuxGetFrame(demux, 1, &frame)) {
        WebPDemuxDelete(demux);
        hc_fail(out, HC_CORRUPT, "no image frame");
        return;
    }
    WebPBitstreamFeatures features;
    VP8StatusCode status = WebPGetFeatures(frame.fragment.bytes, frame.fragment.size, &features);
    if (status != VP8_STATUS_OK) {
        WebPDemuxReleaseIterator(&frame);
        WebPDemuxDelete(demux);
        hc_fail(out, hc_webp_status_for(status), "%s in the frame header", hc_webp_reason(status));
        return;
    }
    const int covers = frame.x_offset == 0 && frame.y_offset == 0 && (uint32_t)frame.width == width &&
                       (uint32_t)frame.height == height;
    const uint32_t factor = hc_reduction_factor(width, height, options.exact_size ? 0 : options.minimum_side);
    const uint32_t out_width = (width + factor - 1) / factor, out_height = (height + factor - 1) / factor;

    uint64_t library_bytes = hc_webp_library_bytes(&features, (uint32_t)frame.width, (uint32_t)frame.height);
    if (options.max_working_bytes > 0 && library_bytes > (uint64_t)options.max_working_bytes) {
        char text[200];
        snprintf(text, sizeof(text), "a %s WebP of %dx%d keeps %llu bytes while decoding, above the decoder memory "
                 "limit of %lld bytes", features.format == 2 ? "lossless" : features.has_alpha ? "lossy (with alpha)" : "lossy", frame.width,
                 frame.height, (unsigned long long)library_bytes, (long long)options.max_working_bytes);
        WebPDemuxReleaseIterator(&frame);
        WebPDemuxDelete(demux);
        hc_fail(out, HC_OUT_OF_MEMORY, "%s", text);
        return;
    }

    if (covers) {
        out->scale_denominator = factor;
        out->width = out_width;
        out->height = out_height;
        // The decoded (RGBA with alpha) pixels are the peak; nothing is box-reduced afterwards.
        size_t pixels = hc_byte_count(out_width, out_height, features.has_alpha ? 4 : 3);
        out->estimated_bytes = pixels + (size_t)library_bytes;
    } else {
        out->reduction_factor = factor;
        out->width = out_width;
        out->height = out_height;
        size_t frame_pixels = hc_byte_count((uint64_t)frame.width, (uint64_t)frame.height, 4);
        out->estimated_bytes = hc_estimate_bytes(width, height, factor, (size_t)width * 3, frame_pixels + (size_t)library_bytes);
    }
    if (options.probe_only) {
        WebPDemuxReleaseIterator(&frame);
        WebPDemuxDelete(demux);
        return;
    }

    if (covers) {
        hc_webp_decode_covering(&frame, &features, out_width, out_height, factor > 1, out);
    } else {
        hc_webp_decode_placed(&frame, &features, width, height, factor, out);
    }
    if (out->status == HC_OK) hc_webp_copy_exif(demux, out);
    WebPDemuxReleaseIterator(&frame);
    WebPDemuxDelete(demux);
    if (out->status != HC_OK) {
        hc_image_release(out);
        out->width = out->height = 0;
    }
}
