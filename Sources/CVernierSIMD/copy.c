#include <string.h>

#include "CVernierSIMD.h"
#include "cpu_features.h"

// Pieces shorter than this go through vector moves in a loop of our own; longer ones
// through memcpy, whose call costs nothing next to the copy.
enum { short_piece_limit = 1024 };

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f,avx512bw")))
static inline void copy_short_avx512(const uint8_t *s, uint8_t *d, size_t bytes) {
    const size_t whole = bytes & ~(size_t)63;
    for (size_t x = 0; x < whole; x += 64) _mm512_storeu_si512(d + x, _mm512_loadu_si512(s + x));
    if (bytes & 63) {
        const __mmask64 tail = (~(__mmask64)0) >> (64 - (bytes & 63));
        _mm512_mask_storeu_epi8(d + whole, tail, _mm512_maskz_loadu_epi8(tail, s + whole));
    }
}

__attribute__((target("avx512f,avx512bw")))
static void copy_row_parts_avx512(const vernier_row_part *parts, size_t count, size_t first_row, size_t rows) {
    for (size_t r = first_row; r < first_row + rows; r++) {
        for (size_t p = 0; p < count; p++) {
            const vernier_row_part *part = &parts[p];
            const uint8_t *s = (const uint8_t *)part->src + r * part->src_stride;
            uint8_t *d = (uint8_t *)part->dst + r * part->dst_stride;
            if (part->bytes < short_piece_limit) {
                copy_short_avx512(s, d, part->bytes);
            } else {
                memcpy(d, s, part->bytes);
            }
        }
    }
}
#endif

void vernier_copy_row_parts(const vernier_row_part *parts, size_t count, size_t first_row, size_t rows) {
#if defined(__x86_64__)
    if (vernier_cpu_has_avx512bw()) {
        copy_row_parts_avx512(parts, count, first_row, rows);
        return;
    }
#endif
    for (size_t r = first_row; r < first_row + rows; r++) {
        for (size_t p = 0; p < count; p++) {
            const vernier_row_part *part = &parts[p];
            memcpy((uint8_t *)part->dst + r * part->dst_stride, (const uint8_t *)part->src + r * part->src_stride, part->bytes);
        }
    }
}
