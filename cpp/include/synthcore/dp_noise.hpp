// Discrete Laplace noise from the ChaCha20 word stream (python/synthcore/_reference/
// dp_noise.py is the definition and the oracle). Z = G1 - G2, each geometric
// G = a + M b read from two 96-bit uniforms against decreasing threshold tables;
// sample i uses words [12 i, 12 i + 12) after word_offset. Fixed work per sample.
#pragma once
#include <cstddef>
#include <cstdint>

#include "synthcore/secure_random.hpp"

namespace synthcore {

struct GeometricTables {
  int m;                   // M = 2^m
  const uint64_t* a_hi;    // M - 1 decreasing thresholds (bits 95..32)
  const uint32_t* a_lo;    // (bits 31..0)
  int64_t a_size;
  const uint64_t* b_hi;    // J decreasing thresholds
  const uint32_t* b_lo;
  int64_t b_size;
};

void discrete_laplace_noise(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                            const GeometricTables& tables, int64_t* out, size_t n,
                            int num_threads);

}  // namespace synthcore
