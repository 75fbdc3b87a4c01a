#include "CVernierSIMD.h"
#include "cpu_features.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f")))
static void resample_row_avx512(const float *row, float *out, size_t width, const int32_t *first, const float *weight0,
                                const float *weight1) {
    size_t x = 0;
    for (; x + 16 <= width; x += 16) {
        const __m512i i0 = _mm512_loadu_si512(first + x);
        const __m512i i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(1));
        const __m512 a = _mm512_i32gather_ps(i0, row, 4), b = _mm512_i32gather_ps(i1, row, 4);
        _mm512_storeu_ps(out + x, _mm512_fmadd_ps(_mm512_loadu_ps(weight0 + x), a,
                                                  _mm512_mul_ps(_mm512_loadu_ps(weight1 + x), b)));
    }
    if (x < width) {
        const __mmask16 tail = (__mmask16)((1u << (width - x)) - 1);
        const __m512i i0 = _mm512_maskz_loadu_epi32(tail, first + x);
        const __m512i i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(1));
        const __m512 a = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), tail, i0, row, 4);
        const __m512 b = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), tail, i1, row, 4);
        _mm512_mask_storeu_ps(out + x, tail, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, weight0 + x), a,
                                                             _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, weight1 + x), b)));
    }
}

__attribute__((target("avx512f")))
static void blend_rows_avx512(const float *a, const float *b, float wa, float wb, float *out, size_t width) {
    const __m512 va = _mm512_set1_ps(wa), vb = _mm512_set1_ps(wb);
    size_t x = 0;
    for (; x + 16 <= width; x += 16) {
        _mm512_storeu_ps(out + x, _mm512_fmadd_ps(va, _mm512_loadu_ps(a + x), _mm512_mul_ps(vb, _mm512_loadu_ps(b + x))));
    }
    if (x < width) {
        const __mmask16 tail = (__mmask16)((1u << (width - x)) - 1);
        _mm512_mask_storeu_ps(out + x, tail, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(tail, a + x),
                                                             _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(tail, b + x))));
    }
}
#endif

void vernier_resample_row(const float *row, float *out, size_t width, const int32_t *first, const float *weight0,
                          const float *weight1) {
#if defined(__x86_64__)
    if (vernier_cpu_has_avx512f()) {
        resample_row_avx512(row, out, width, first, weight0, weight1);
        return;
    }
#endif
    for (size_t x = 0; x < width; x++) out[x] = weight0[x] * row[first[x]] + weight1[x] * row[first[x] + 1];
}

void vernier_blend_rows(const float *a, const float *b, float wa, float wb, float *out, size_t width) {
#if defined(__x86_64__)
    if (vernier_cpu_has_avx512f()) {
        blend_rows_avx512(a, b, wa, wb, out, width);
        return;
    }
#endif
    for (size_t x = 0; x < width; x++) out[x] = wa * a[x] + wb * b[x];
}
