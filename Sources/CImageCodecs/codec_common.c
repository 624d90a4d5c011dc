#include "codec_common.h"

#include <stdlib.h>

void hc_image_reset(hc_image *out) {
    memset(out, 0, sizeof(*out));
    out->status = HC_OK;
    out->scale_denominator = 1;
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
