// The body of im2col for one element type, shared by the float and the uint8 (int8 network) versions.
#ifndef HEADTUNE_IM2COL_H
#define HEADTUNE_IM2COL_H

/* columns[(row * out_width + ox)] = the kernel x kernel x channels patch of output position (row, ox)
   (row = n * out_height + oy), taps outer, channels inner, `padding` where the patch leaves the image,
   for rows [row_begin, row_end). Element loops, not memcpy: a tap is 3 values for RGB, below a call's
   cost. */
#define IM2COL_ROWS(T, input, height, width, channels, kernel, stride, pad_top, pad_left, out_height, out_width,     \
                    padding, columns, row_begin, row_end)                                                          \
    do {                                                                                                           \
        const long patch_ = (kernel) * (kernel) * (channels);                                                      \
        for (long row = (row_begin); row < (row_end); row++) {                                                     \
            long n = row / (out_height), oy = row % (out_height);                                                  \
            const T *image = (input) + n * (height) * (width) * (channels);                                        \
            for (long ox = 0; ox < (out_width); ox++) {                                                            \
                T *column = (columns) + (row * (out_width) + ox) * patch_;                                         \
                for (long ky = 0; ky < (kernel); ky++) {                                                           \
                    long iy = oy * (stride) - (pad_top) + ky;                                                      \
                    for (long kx = 0; kx < (kernel); kx++) {                                                       \
                        long ix = ox * (stride) - (pad_left) + kx;                                                 \
                        T *dst = column + (ky * (kernel) + kx) * (channels);                                       \
                        if (iy >= 0 && iy < (height) && ix >= 0 && ix < (width)) {                                 \
                            const T *src = image + (iy * (width) + ix) * (channels);                               \
                            for (long c = 0; c < (channels); c++) dst[c] = src[c];                                 \
                        } else {                                                                                   \
                            for (long c = 0; c < (channels); c++) dst[c] = (padding);                              \
                        }                                                                                          \
                    }                                                                                              \
                }                                                                                                  \
            }                                                                                                      \
        }                                                                                                          \
    } while (0)

#endif
