// Exact integer DP noise (discrete Laplace, discrete Gaussian) from the ChaCha20 word
// stream. python/synthcore/_reference/dp_noise.py is the definition and the oracle.
// Each value reads 1 + 2 S words: word 0, c, is shared (bit 0 the sign), then 64 bits
// per segment; segment s searches the 96-bit U_s = (w[1 + 2 s] 2^32 + w[2 + 2 s]) 2^32 + c
// against thresholds T_k = 2 floor(P(X >= k) 2^95) (even, so the sign bit never decides
// a comparison). Values go in groups of 16, word-interleaved (word k of value 16 g + j is
// stream word (g (1 + 2 S) + k) 16 + j), so n values take 16 ceil(n / 16) (1 + 2 S) words.
// Per segment: a guide bucket from U's top bits (2^m buckets per octave) gives the
// count of thresholds above the bucket, then W branch-free binary-search steps over the
// decreasing thresholds finish the count X;
// |Z| = X_0 + [X_0 > 0] sum_{s >= 1} multiplier_s X_s. The work per value depends only
// on the tables, i.e. on the scale.
#pragma once
#include <cstddef>
#include <cstdint>

#include "synthcore/secure_random.hpp"

namespace synthcore {

struct NoiseTables {
  int segments;                  // |Z| = X_0 + [X_0 > 0] sum_{s >= 1} multipliers[s] X_s
  const int64_t* multipliers;    // [segments]
  const int64_t* starts;         // [segments] first threshold of each segment
  const int32_t* window_log2;    // [segments] W: binary-search steps
  const int32_t* guide_bits;     // [segments] m > 0: 2^m buckets per octave of U;
                                 // m < 0: 2^-m linear buckets (top bits of U)
  const int64_t* guide_starts;   // [segments] first guide entry of each segment
  const int32_t* guide;          // thresholds above each bucket
  const uint64_t* t_hi;          // bits 95..32 of the (doubled) thresholds
  const uint32_t* t_lo;          // bits 31..0
};

// out[i] = x[i] + noise value i, from the words of its group (see above) at word_offset
// in (key, stream). out may alias x.
void integer_noise(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                   const NoiseTables& tables, const int64_t* x, int64_t* out, size_t n,
                   int num_threads);

// The float mechanisms' one pass: out[i] = (rint(x[i] / granularity) + Z_i) granularity,
// granularity a power of two (so both operations are exact apart from the rounding to
// the grid), Z_i as in integer_noise. |x / granularity| < 2^62 is checked by the caller.
void grid_float_noise(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                      const NoiseTables& tables, const double* x, double granularity,
                      double* out, size_t n, int num_threads);

// k-ary randomized response: each code kept when its 96-bit uniform U < keep, else
// replaced by the j-th other code, j = (U - keep) / other. keep and other are 96-bit
// numbers given as (hi 64 bits, lo 32 bits). Value i uses words [3 i, 3 i + 3).
void randomized_response(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                         const int64_t* codes, int64_t* out, size_t n, uint64_t keep_hi,
                         uint32_t keep_lo, uint64_t other_hi, uint32_t other_lo,
                         int num_threads);

}  // namespace synthcore
