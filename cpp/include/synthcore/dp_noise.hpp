// Discrete Laplace noise from the ChaCha20 word stream (python/synthcore/_reference/
// dp_noise.py is the definition and the oracle). Z = G1 - G2; each geometric is
// written in base 64, one 96-bit uniform per digit counted against that level's 64
// decreasing (zero-padded) thresholds. Sample i uses words [6 L i, 6 L (i + 1)) after
// word_offset. The work per sample depends only on L, i.e. on the scale.
#pragma once
#include <cstddef>
#include <cstdint>

#include "synthcore/secure_random.hpp"

namespace synthcore {

constexpr int kGeometricBase = 64;

struct GeometricTables {
  int levels;              // L
  const uint64_t* t_hi;    // [L * 64] bits 95..32 of the thresholds
  const uint32_t* t_lo;    // [L * 64] bits 31..0
};

void discrete_laplace_noise(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                            const GeometricTables& tables, int64_t* out, size_t n,
                            int num_threads);

}  // namespace synthcore

namespace synthcore {
// k-ary randomized response: each code kept when its 96-bit uniform U < keep, else
// replaced by the j-th other code, j = (U - keep) / other. keep and other are 96-bit
// numbers given as (hi 64 bits, lo 32 bits). Value i uses words [3 i, 3 i + 3).
void randomized_response(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                         const int64_t* codes, int64_t* out, size_t n, uint64_t keep_hi,
                         uint32_t keep_lo, uint64_t other_hi, uint32_t other_lo,
                         int num_threads);
}  // namespace synthcore
