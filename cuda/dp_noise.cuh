// CUDA exact integer DP noise and randomized response from ChaCha20 words already in
// device memory (synthcore/dp_noise.hpp has the layout). Pointers are device pointers;
// asynchronous on cuda_stream.
#pragma once
#include <cstddef>
#include <cstdint>

namespace synthcore::cuda {

// out[i] = x[i] + Z_i, Z_i from the words of its group (16 values, word-interleaved: word k
// of value i at words[(1 + 2 S)(i - i % 16) + 16 k + i % 16]) against the thresholds.
void integer_noise_from_words(uintptr_t words, int segments, uintptr_t multipliers,
                              uintptr_t starts, uintptr_t window_log2,
                              uintptr_t guide_bits, uintptr_t guide_starts, uintptr_t guide,
                              uintptr_t t_hi, uintptr_t t_lo, uintptr_t x, uintptr_t out,
                              size_t n, uintptr_t cuda_stream);

// k-ary randomized response: out[i] from codes[i] and words[3 i .. 3 i + 3).
void randomized_response_from_words(uintptr_t words, uintptr_t codes, uintptr_t out, size_t n,
                                    uint64_t keep_hi, uint32_t keep_lo, uint64_t other_hi,
                                    uint32_t other_lo, uintptr_t cuda_stream);

}  // namespace synthcore::cuda
