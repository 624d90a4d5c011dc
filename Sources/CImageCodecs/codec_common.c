#include "codec_common.h"

#include <stdlib.h>

void hc_image_reset(hc_image *out) {
    memset(out, 0, sizeof(*out));
    out->status = HC_OK;
    out->scale_denominator = 1;
    out->reduction_factor = 1;
}

void hc_fail(hc_image *out, hc_status status, const char *format, ...) {
    out->status = status;
    va_list args;
    va_start(args, format);
    vsnprintf(out->message, sizeof(out->message), format, args);
    va_end(args);
}

void hc_image_release(hc_image *image) {
    if (image == NULL) return;
    free(image->pixels);
    image->pixels = NULL;
    free(image->exif);
    image->exif = NULL;
    image->exif_size = 0;
}

// The size header keeps the block 16-byte aligned, as malloc's own blocks are.
typedef union {
    size_t size;
    max_align_t align;
} hc_block_header;

void hc_rgba_row_on_white(const uint8_t *in, uint8_t *out, size_t width) {
    // Writing 3 bytes per 4 read, front to back, never overtakes the input: in == out is allowed.
    for (size_t x = 0; x < width; x++, in += 4, out += 3) {
        int a = in[3];
        int white = (255 - a) * 255;
        uint8_t r = in[0], g = in[1], b = in[2];
        out[0] = (uint8_t)hc_div255(a * r + white);
        out[1] = (uint8_t)hc_div255(a * g + white);
        out[2] = (uint8_t)hc_div255(a * b + white);
    }
}

void *hc_counted_malloc(hc_image *out, size_t size) {
    if (size > SIZE_MAX - sizeof(hc_block_header)) return NULL;
    hc_block_header *block = malloc(sizeof(hc_block_header) + size);
    if (block == NULL) return NULL;
    block->size = size;
    hc_count_bytes(out, size);
    return block + 1;
}

void hc_counted_free(hc_image *out, void *pointer) {
    if (pointer == NULL) return;
    hc_block_header *block = (hc_block_header *)pointer - 1;
    out->held_bytes -= block->size;
    free(block);
}

void hc_count_bytes(hc_image *out, size_t size) {
    out->held_bytes += size;
    if (out->held_bytes > out->peak_bytes) out->peak_bytes = out->held_bytes;
}

uint32_t hc_reduction_factor(uint32_t width, uint32_t height, int32_t minimum_side) {
    if (minimum_side <= 0) return 1;
    uint64_t floor_side = 2 * (uint64_t)minimum_side;
    uint64_t shorter = width < height ? width : height;
    uint64_t factor = shorter / floor_side;
    if (factor < 2) return 1;
    // 4104^2 * 255 < 2^32; 4096 keeps the bound obvious.
    return factor > 4096 ? 4096 : (uint32_t)factor;
}

int hc_sink_init(hc_row_sink *sink, hc_image *out, uint32_t width, uint32_t height, uint32_t factor) {
    memset(sink, 0, sizeof(*sink));
    sink->factor = factor < 1 ? 1 : factor;
    sink->width = width;
    sink->height = height;
    sink->out_width = (uint32_t)(((uint64_t)width + sink->factor - 1) / sink->factor);
    sink->out_height = (uint32_t)(((uint64_t)height + sink->factor - 1) / sink->factor);
    if (sink->factor == 1) {
        size_t bytes = hc_byte_count(width, height, 3);
        out->pixels = bytes == 0 ? NULL : malloc(bytes);
        if (out->pixels == NULL) {
            hc_fail(out, HC_OUT_OF_MEMORY, "no memory for %ux%u pixels", width, height);
            return 0;
        }
        hc_count_bytes(out, bytes);
        return 1;
    }
    size_t sum_bytes = hc_byte_count(sink->out_width, sink->out_height, 3 * sizeof(uint32_t));
    sink->sums = sum_bytes == 0 ? NULL : hc_counted_malloc(out, sum_bytes);
    sink->column_offset = hc_counted_malloc(out, (size_t)width * sizeof(uint32_t));
    if (sink->sums == NULL || sink->column_offset == NULL) {
        hc_sink_release(sink, out);
        hc_fail(out, HC_OUT_OF_MEMORY, "no memory to reduce %ux%u pixels by %u", width, height, factor);
        return 0;
    }
    memset(sink->sums, 0, sum_bytes);
    for (uint32_t x = 0; x < width; x++) sink->column_offset[x] = x / sink->factor * 3;
    return 1;
}

void hc_sink_row(hc_row_sink *sink, hc_image *out, const uint8_t *rgb, uint32_t count, uint32_t y,
                 uint32_t x0, uint32_t dx) {
    if (sink->factor == 1) {
        uint8_t *row = out->pixels + (size_t)y * sink->width * 3;
        if (dx == 1) {
            memcpy(row + (size_t)x0 * 3, rgb, (size_t)count * 3);
            return;
        }
        for (uint32_t i = 0; i < count; i++, rgb += 3) memcpy(row + ((size_t)x0 + (size_t)i * dx) * 3, rgb, 3);
        return;
    }
    uint32_t *sums = sink->sums + (size_t)(y / sink->factor) * sink->out_width * 3;
    const uint32_t *offsets = sink->column_offset;
    for (uint32_t i = 0, x = x0; i < count; i++, x += dx, rgb += 3) {
        uint32_t *s = sums + offsets[x];
        s[0] += rgb[0];
        s[1] += rgb[1];
        s[2] += rgb[2];
    }
}

int hc_sink_finish(hc_row_sink *sink, hc_image *out) {
    if (sink->factor > 1) {
        size_t bytes = hc_byte_count(sink->out_width, sink->out_height, 3);
        out->pixels = malloc(bytes);
        if (out->pixels == NULL) {
            hc_sink_release(sink, out);
            hc_fail(out, HC_OUT_OF_MEMORY, "no memory for %ux%u reduced pixels", sink->out_width, sink->out_height);
            return 0;
        }
        hc_count_bytes(out, bytes);
        const uint32_t f = sink->factor;
        for (uint32_t y = 0; y < sink->out_height; y++) {
            uint32_t box_height = sink->height - y * f < f ? sink->height - y * f : f;
            for (uint32_t x = 0; x < sink->out_width; x++) {
                uint32_t box_width = sink->width - x * f < f ? sink->width - x * f : f;
                uint32_t area = box_width * box_height;
                size_t i = ((size_t)y * sink->out_width + x) * 3;
                for (int c = 0; c < 3; c++) out->pixels[i + c] = (uint8_t)((sink->sums[i + c] + area / 2) / area);
            }
        }
        hc_sink_release(sink, out);
    }
    out->width = sink->out_width;
    out->height = sink->out_height;
    out->reduction_factor = sink->factor;
    return 1;
}

void hc_sink_release(hc_row_sink *sink, hc_image *out) {
    hc_counted_free(out, sink->sums);
    hc_counted_free(out, sink->column_offset);
    sink->sums = NULL;
    sink->column_offset = NULL;
}

size_t hc_estimate_bytes(uint32_t width, uint32_t height, uint32_t factor, size_t row_bytes, size_t fixed_bytes) {
    if (factor < 1) factor = 1;
    uint64_t out_width = ((uint64_t)width + factor - 1) / factor, out_height = ((uint64_t)height + factor - 1) / factor;
    uint64_t bytes = out_width * out_height * 3;                                    // the output
    if (factor > 1) bytes += out_width * out_height * 3 * sizeof(uint32_t) + (uint64_t)width * sizeof(uint32_t);
    bytes += row_bytes + fixed_bytes;
    return bytes > SIZE_MAX ? SIZE_MAX : (size_t)bytes;
}
