#ifndef CVERNIER_SIMD_H
#define CVERNIER_SIMD_H

#include <stddef.h>
#include <stdint.h>

/// Kernels Swift cannot express with its SIMD types: they need one instruction
/// (e.g. AVX-512 VBMI's byte permute) chosen at run time by the CPU's features.

/// dst[i] = table[src[i]] for i < count. `src` and `dst` may be the same buffer.
/// With AVX-512 VBMI, 64 bytes per step (four 64-entry permutes); else byte by byte.
void vernier_lookup_bytes(const uint8_t *src, uint8_t *dst, size_t count, const uint8_t *table);

/// Whether `vernier_lookup_bytes` takes its AVX-512 VBMI path on this CPU.
int vernier_lookup_bytes_is_vectorized(void);

/// Softmax (log_form 0) or log-softmax (1) of `rows` contiguous rows of `n` floats, from
/// x into y (which may be x). With AVX-512F, 16 lanes per step with fused multiply-adds,
/// and returns 1; else does nothing and returns 0 (the caller keeps its own loop).
int vernier_softmax_rows(const float *x, float *y, size_t rows, size_t n, int log_form);

/// One row of a linear resize: out[x] = weight0[x] * row[first[x]] + weight1[x] *
/// row[first[x] + 1] for x < width (the two taps are neighbours; an edge repeats its
/// pixel with first[x] + 1 still inside the row or a zero weight). With AVX-512F, 16
/// outputs per step from two gathers.
void vernier_resample_row(const float *row, float *out, size_t width, const int32_t *first, const float *weight0,
                          const float *weight1);

/// out[x] = wa * a[x] + wb * b[x] for x < width; `out` may not overlap `a` or `b`.
void vernier_blend_rows(const float *a, const float *b, float wa, float wb, float *out, size_t width);

/// One of the pieces `vernier_copy_row_parts` moves in every row: `bytes` bytes from
/// `src + r * src_stride` to `dst + r * dst_stride` for row `r` (the two never overlap).
typedef struct {
    const void *src;
    size_t src_stride;
    void *dst;
    size_t dst_stride;
    size_t bytes;
} vernier_row_part;

/// Copies every part of rows `first_row ..< first_row + rows`, row by row, so a Split
/// reads its source (and a Concat writes its output) once, front to back. With
/// AVX-512BW, pieces under 1 KiB take 64-byte moves and one masked move for the tail
/// instead of a memcpy call each (a YOLO head's Split and Concat move rows of 8, 8 and
/// 324 bytes).
void vernier_copy_row_parts(const vernier_row_part *parts, size_t count, size_t first_row, size_t rows);

/// The geometry of a 2-D convolution's windows over one image, for `vernier_window_rows`.
typedef struct {
    size_t height, width;            // the source image
    size_t kernel_h, kernel_w;
    size_t stride_h, stride_w;
    size_t pad_top, pad_left;
    size_t dilation_h, dilation_w;
    size_t out_h, out_w;
} vernier_window_geometry;

/// The windows of a channel-blocked image (`blocks` blocks of [height][width][lanes]
/// floats) as the rows of a matrix, for a convolution run as one matrix product: row
/// (oh, ow) holds, for each block, kernel row and kernel column in that order, the
/// `lanes` channels of the pixel under that tap, zeros where it falls in the padding.
/// Rows are blocks * kernel_h * kernel_w * lanes floats long, one after the other.
void vernier_window_rows(const float *src, size_t blocks, size_t lanes, vernier_window_geometry g, float *dst);

#endif
