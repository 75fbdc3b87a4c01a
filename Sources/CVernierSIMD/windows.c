#include <string.h>

#include "CVernierSIMD.h"

// One tap's lanes: a 64-byte block (AVX-512's 16 floats) as a fixed-size copy the
// compiler turns into vector moves, other widths through a call.
static inline void copy_lanes(float *d, const float *s, size_t lanes) {
    if (lanes == 16) {
        memcpy(d, s, 16 * sizeof(float));
    } else {
        memcpy(d, s, lanes * sizeof(float));
    }
}

void vernier_window_rows(const float *src, size_t blocks, size_t lanes, vernier_window_geometry g, float *dst) {
    const size_t plane = g.height * g.width * lanes;
    for (size_t oh = 0; oh < g.out_h; oh++) {
        for (size_t ow = 0; ow < g.out_w; ow++) {
            float *row = dst + (oh * g.out_w + ow) * blocks * g.kernel_h * g.kernel_w * lanes;
            // Coordinates are signed: a tap left of or above the image is padding.
            const ptrdiff_t top = (ptrdiff_t)(oh * g.stride_h) - (ptrdiff_t)g.pad_top;
            const ptrdiff_t left = (ptrdiff_t)(ow * g.stride_w) - (ptrdiff_t)g.pad_left;
            for (size_t b = 0; b < blocks; b++) {
                const float *image = src + b * plane;
                for (size_t kh = 0; kh < g.kernel_h; kh++) {
                    const ptrdiff_t y = top + (ptrdiff_t)(kh * g.dilation_h);
                    const int row_inside = y >= 0 && y < (ptrdiff_t)g.height;
                    for (size_t kw = 0; kw < g.kernel_w; kw++, row += lanes) {
                        const ptrdiff_t x = left + (ptrdiff_t)(kw * g.dilation_w);
                        if (row_inside && x >= 0 && x < (ptrdiff_t)g.width) {
                            copy_lanes(row, image + ((size_t)y * g.width + (size_t)x) * lanes, lanes);
                        } else {
                            memset(row, 0, lanes * sizeof(float));
                        }
                    }
                }
            }
        }
    }
}
