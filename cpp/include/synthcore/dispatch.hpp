// CPU dispatch for the kernels' hot functions: each SC_CLONES function is compiled
// for x86-64-v4 (AVX-512), x86-64-v3 (AVX2, FMA) and baseline, and the loader picks
// the best for the running CPU, so one portable build runs at full vector width.
// Kernels are compiled without FMA contraction (CMakeLists.txt), so every clone
// gives the same bits.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SC_CLONES
#endif
#define SC_ALWAYS_INLINE inline __attribute__((always_inline))
