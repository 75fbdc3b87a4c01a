// What the CPU can run, asked once per feature. Private to this module's C files: each
// includes it and calls these before taking an AVX-512 path compiled for a `target`
// the build's -march may lack.
#ifndef VERNIER_CPU_FEATURES_H
#define VERNIER_CPU_FEATURES_H

#if defined(__x86_64__)
static inline int vernier_cpu_has_avx512f(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f");
    }
    return cached;
}

static inline int vernier_cpu_has_avx512bw(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    }
    return cached;
}

static inline int vernier_cpu_has_avx512vbmi(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw");
    }
    return cached;
}
#else
static inline int vernier_cpu_has_avx512f(void) { return 0; }
static inline int vernier_cpu_has_avx512bw(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    }
    return cached;
}

static inline int vernier_cpu_has_avx512bw(void) { return 0; }
static inline int vernier_cpu_has_avx512vbmi(void) { return 0; }
#endif

#endif
