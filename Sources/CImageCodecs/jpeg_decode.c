#include "codec_common.h"

#include <setjmp.h>
#include <stdlib.h>

#include <jpeglib.h>
#include <jerror.h>

// A progressive JPEG can declare thousands of tiny scans, each of which costs a pass over the
// whole coefficient buffer; libjpeg-turbo's own tools cap this too (djpeg -maxscans).
enum { HC_JPEG_MAX_SCANS = 1000 };

typedef struct {
    struct jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
    jmp_buf jump;
    hc_image *out;
} hc_jpeg_error;

static hc_status hc_jpeg_status_for(int msg_code) {
    switch (msg_code) {
    case JERR_EMPTY_IMAGE:
        return HC_ZERO_SIZE;
    case JERR_IMAGE_TOO_BIG:
    case JERR_WIDTH_OVERFLOW:
        return HC_TOO_LARGE;
    case JERR_OUT_OF_MEMORY:
        return HC_OUT_OF_MEMORY;
    case JERR_BAD_PRECISION:
    case JERR_CONVERSION_NOTIMPL:
    case JERR_NOT_COMPILED:
        return HC_UNSUPPORTED;
    default:
        return HC_CORRUPT;
    }
}

static void hc_jpeg_fail(j_common_ptr cinfo) {
    hc_jpeg_error *err = (hc_jpeg_error *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    hc_status status = hc_jpeg_status_for(cinfo->err->msg_code);
    if ((status == HC_TOO_LARGE || status == HC_ZERO_SIZE) && cinfo->is_decompressor) {
        j_decompress_ptr d = (j_decompress_ptr)cinfo;
        err->out->source_width = d->image_width;
        err->out->source_height = d->image_height;
    }
    hc_fail(err->out, status, "%s", text);
    longjmp(err->jump, 1);
}

static void hc_jpeg_error_exit(j_common_ptr cinfo) { hc_jpeg_fail(cinfo); }

// libjpeg reports damaged entropy-coded data only as warnings and fills the rest of the image
// with grey; a classifier fed such an image gives confident nonsense, so these become errors.
// Harmless oddities (extraneous bytes between markers, unknown JFIF/Adobe versions, a bad ICC
// chunk) stay warnings, as in Pillow.
static void hc_jpeg_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level >= 0) return;  // trace output
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_NOT_SEQUENTIAL:
        hc_jpeg_fail(cinfo);
        break;
    default:
        cinfo->err->num_warnings++;
        break;
    }
}

static void hc_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }  // never print to stderr

static void hc_jpeg_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > HC_JPEG_MAX_SCANS) {
        hc_jpeg_error *err = (hc_jpeg_error *)cinfo->err;
        hc_fail(err->out, HC_CORRUPT, "more than %d progressive scans", HC_JPEG_MAX_SCANS);
        longjmp(err->jump, 1);
    }
}

static void hc_jpeg_abort(j_decompress_ptr cinfo, hc_image *out, hc_status status, const char *text) {
    hc_fail(out, status, "%s", text);
    longjmp(((hc_jpeg_error *)cinfo->err)->jump, 1);
}

// Copies the first APP1 "Exif\0\0" payload (the TIFF structure) for the Swift side to parse.
static void hc_jpeg_copy_exif(j_decompress_ptr cinfo, hc_image *out) {
    static const unsigned char tag[6] = {'E', 'x', 'i', 'f', 0, 0};
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m != NULL; m = m->next) {
        if (m->marker != JPEG_APP0 + 1 || m->data_length <= sizeof(tag)) continue;
        if (memcmp(m->data, tag, sizeof(tag)) != 0) continue;
        size_t n = m->data_length - sizeof(tag);
        out->exif = malloc(n);
        if (out->exif == NULL) hc_jpeg_abort(cinfo, out, HC_OUT_OF_MEMORY, "no memory for EXIF data");
        memcpy(out->exif, m->data + sizeof(tag), n);
        out->exif_size = n;
        return;
    }
}

// Pillow reads every 4-channel JPEG as Adobe-style inverted CMYK ("CMYK;I") and converts with
// rgb = (255 - k) - (255 - k) * c / 255 (rounded); we do the same so results match Pillow.
static void hc_cmyk_row_to_rgb(const JSAMPLE *in, uint8_t *out, JDIMENSION width) {
    for (JDIMENSION x = 0; x < width; x++, in += 4, out += 3) {
        int nk = in[3];  // 255 - (255 - k)
        for (int c = 0; c < 3; c++) {
            int v = nk - hc_muldiv255(255 - in[c], nk);
            out[c] = (uint8_t)(v < 0 ? 0 : v);
        }
    }
}

void hc_decode_jpeg(const void *bytes, size_t size, hc_decode_options options, hc_image *out) {
    hc_image_reset(out);
    const uint8_t *data = (const uint8_t *)bytes;

    struct jpeg_decompress_struct cinfo;
    hc_jpeg_error err;
    struct jpeg_progress_mgr progress;
    memset(&cinfo, 0, sizeof(cinfo));
    memset(&progress, 0, sizeof(progress));
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = hc_jpeg_error_exit;
    err.pub.emit_message = hc_jpeg_emit_message;
    err.pub.output_message = hc_jpeg_output_message;
    err.out = out;

    // A local changed after setjmp is indeterminate after longjmp: the volatile pointer is not.
    hc_row_sink sink_storage;
    memset(&sink_storage, 0, sizeof(sink_storage));
    hc_row_sink *volatile sink = &sink_storage;

    if (setjmp(err.jump)) {
        hc_sink_release(sink, out);
        jpeg_destroy_decompress(&cinfo);
        hc_image_release(out);
        out->width = out->height = 0;
        return;
    }

    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = hc_jpeg_progress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);

    out->source_width = cinfo.image_width;
    out->source_height = cinfo.image_height;
    if (cinfo.image_width == 0 || cinfo.image_height == 0) {
        hc_jpeg_abort(&cinfo, out, HC_ZERO_SIZE, "zero width or height");
    }
    // Checked before jpeg_start_decompress, which allocates the (full-size, for progressive
    // files) coefficient buffers.
    if (hc_exceeds_limit(cinfo.image_width, cinfo.image_height, options.max_pixels)) {
        hc_jpeg_abort(&cinfo, out, HC_TOO_LARGE, "declared size exceeds the pixel limit");
    }

    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:  // libjpeg-turbo replicates grey into R, G and B
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo.out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK:  // libjpeg converts YCCK to CMYK
        cinfo.out_color_space = JCS_CMYK;
        break;
    default: {
        char text[96];
        snprintf(text, sizeof(text), "unsupported JPEG colour space (%d components)", cinfo.num_components);
        hc_jpeg_abort(&cinfo, out, HC_UNSUPPORTED, text);
    }
    }

    hc_jpeg_copy_exif(&cinfo, out);

    // A progressive (multi-scan) file keeps every DCT coefficient until its last scan: one
    // whole-image buffer per component, padded to whole MCUs, 64 coefficients x 2 bytes per block.
    // Counted from the header, before jpeg_start_decompress allocates it.
    uint64_t coefficient_bytes = 0;
    if (jpeg_has_multiple_scans(&cinfo)) {
        for (int c = 0; c < cinfo.num_components; c++) {
            const jpeg_component_info *component = &cinfo.comp_info[c];
            uint64_t columns = component->width_in_blocks, rows = component->height_in_blocks;
            uint64_t h = (uint64_t)component->h_samp_factor, v = (uint64_t)component->v_samp_factor;
            columns = (columns + h - 1) / h * h;
            rows = (rows + v - 1) / v * v;
            coefficient_bytes += columns * rows * DCTSIZE2 * sizeof(JCOEF);
        }
        if (options.max_working_bytes > 0 && coefficient_bytes > (uint64_t)options.max_working_bytes) {
            char text[200];
            snprintf(text, sizeof(text), "a progressive JPEG of %ux%u keeps %llu bytes of DCT coefficients, "
                     "above the decoder memory limit of %lld bytes", cinfo.image_width, cinfo.image_height,
                     (unsigned long long)coefficient_bytes, (long long)options.max_working_bytes);
            hc_jpeg_abort(&cinfo, out, HC_OUT_OF_MEMORY, text);
        }
    }

    // Draft mode: the smallest scale whose output still has both sides >= minimum_side.
    unsigned int denominator = 1;
    if (options.minimum_side > 0) {
        for (unsigned int d = 8; d >= 2; d /= 2) {
            cinfo.scale_num = 1;
            cinfo.scale_denom = d;
            jpeg_calc_output_dimensions(&cinfo);
            if (cinfo.output_width >= (JDIMENSION)options.minimum_side &&
                cinfo.output_height >= (JDIMENSION)options.minimum_side) {
                denominator = d;
                break;
            }
        }
    }
    cinfo.scale_num = 1;
    cinfo.scale_denom = denominator;
    out->scale_denominator = denominator;

    if (options.probe_only) {
        jpeg_calc_output_dimensions(&cinfo);
        const uint32_t factor = hc_reduction_factor(cinfo.output_width, cinfo.output_height,
                                                    options.exact_size ? 0 : options.minimum_side);
        out->reduction_factor = factor;
        out->width = (cinfo.output_width + factor - 1) / factor;
        out->height = (cinfo.output_height + factor - 1) / factor;
        // libjpeg's row groups: up to two MCU rows (16 source rows at 2x2 sampling, scaled) of
        // every component, plus our scanline buffers; then the coefficients of a multi-scan file.
        size_t rows = (size_t)cinfo.output_width * (size_t)cinfo.num_components * 2 * 16 + (size_t)cinfo.output_width * 7;
        out->estimated_bytes = hc_estimate_bytes(cinfo.output_width, cinfo.output_height, factor, rows,
                                                 (size_t)coefficient_bytes + (64u << 10));
        jpeg_destroy_decompress(&cinfo);
        return;
    }

    jpeg_start_decompress(&cinfo);

    const JDIMENSION width = cinfo.output_width;
    const JDIMENSION height = cinfo.output_height;
    const uint32_t factor = hc_reduction_factor(width, height, options.exact_size ? 0 : options.minimum_side);
    if (cinfo.output_components != 3 && cinfo.output_components != 4) {
        hc_jpeg_abort(&cinfo, out, HC_UNSUPPORTED, "unexpected number of output components");
    }
    if (!hc_sink_init(sink, out, width, height, factor)) longjmp(err.jump, 1);

    if (factor == 1 && cinfo.output_components == 3) {
        // The exact path: scanlines straight into the output, eight at a time.
        const size_t stride = (size_t)width * 3;
        while (cinfo.output_scanline < height) {
            JSAMPROW rows[8];
            JDIMENSION count = height - cinfo.output_scanline;
            if (count > 8) count = 8;
            for (JDIMENSION i = 0; i < count; i++) {
                rows[i] = out->pixels + (size_t)(cinfo.output_scanline + i) * stride;
            }
            if (jpeg_read_scanlines(&cinfo, rows, count) == 0) {
                hc_jpeg_abort(&cinfo, out, HC_CORRUPT, "decoder made no progress");
            }
        }
    } else {
        // One scanline at a time through the sink (CMYK converted first). Both rows are freed
        // with the decompressor, also on the error path.
        JSAMPARRAY row = (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE,
                                                    width * (JDIMENSION)cinfo.output_components, 1);
        JSAMPARRAY rgb = cinfo.output_components == 4
            ? (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE, width * 3, 1)
            : row;
        while (cinfo.output_scanline < height) {
            JDIMENSION y = cinfo.output_scanline;
            if (jpeg_read_scanlines(&cinfo, row, 1) != 1) {
                hc_jpeg_abort(&cinfo, out, HC_CORRUPT, "decoder made no progress");
            }
            if (cinfo.output_components == 4) hc_cmyk_row_to_rgb(row[0], rgb[0], width);
            hc_sink_row(sink, out, rgb[0], width, y, 0, 1);
        }
    }
    if (!hc_sink_finish(sink, out)) longjmp(err.jump, 1);

    // No jpeg_finish_decompress: every pixel has been decoded, and reading on to EOI would only
    // turn a missing end marker into an error.
    jpeg_destroy_decompress(&cinfo);
}
