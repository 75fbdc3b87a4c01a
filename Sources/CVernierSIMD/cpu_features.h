// What the CPU can run, asked once per feature. Private to this module's C files: each
// includes it and calls these before taking an AVX-512 path compiled for a `target`
// the build's -march may lack.
#ifndef VERNIER_CPU_FEATURES_H
#define VERNIER_CPU_FEATURES_H

#if defined(__x86_64__)
// `name()`: whether `condition` (of __builtin_cpu_supports calls) holds, asked once.
#define VERNIER_CPU_FEATURE(name, condition)  \
    static inline int name(void) {            \
        static int cached = -1;               \
        if (cached < 0) {                     \
            __builtin_cpu_init();             \
            cached = (condition);             \
        }                                     \
        return cached;                        \
    }
#else
#define VERNIER_CPU_FEATURE(name, condition) \
    static inline int name(void) { return 0; }
#endif

VERNIER_CPU_FEATURE(vernier_cpu_has_avx512f, __builtin_cpu_supports("avx512f"))
VERNIER_CPU_FEATURE(vernier_cpu_has_avx512bw, __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
VERNIER_CPU_FEATURE(vernier_cpu_has_avx512vbmi, __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw"))

#endif
