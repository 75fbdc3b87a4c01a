#include "CVernierSIMD.h"
#include "cpu_features.h"

#if defined(__x86_64__)
#include <immintrin.h>

// Compiled for VBMI whatever the build's -march; only called when the CPU has it.
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static void lookup_vbmi(const uint8_t *src, uint8_t *dst, size_t count, const uint8_t *table) {
    const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
    const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
    size_t i = 0;
    for (; i + 64 <= count; i += 64) {
        __m512i x = _mm512_loadu_si512(src + i);
        // Bits 0-6 pick one of 128 entries from each half of the table; bit 7 picks the half.
        __m512i low = _mm512_permutex2var_epi8(t0, x, t1);
        __m512i high = _mm512_permutex2var_epi8(t2, x, t3);
        _mm512_storeu_si512(dst + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), low, high));
    }
    if (i < count) {
        __mmask64 tail = (1ULL << (count - i)) - 1;  // count - i < 64
        __m512i x = _mm512_maskz_loadu_epi8(tail, src + i);
        __m512i low = _mm512_permutex2var_epi8(t0, x, t1);
        __m512i high = _mm512_permutex2var_epi8(t2, x, t3);
        _mm512_mask_storeu_epi8(dst + i, tail, _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), low, high));
    }
}

#endif

int vernier_lookup_bytes_is_vectorized(void) { return vernier_cpu_has_avx512vbmi(); }

void vernier_lookup_bytes(const uint8_t *src, uint8_t *dst, size_t count, const uint8_t *table) {
#if defined(__x86_64__)
    if (vernier_cpu_has_avx512vbmi()) {
        lookup_vbmi(src, dst, count, table);
        return;
    }
#endif
    for (size_t i = 0; i < count; i++) dst[i] = table[src[i]];
}
