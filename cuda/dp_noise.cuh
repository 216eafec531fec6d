// CUDA discrete Laplace noise from ChaCha20 words already in device memory
// (synthcore/dp_noise.hpp). Pointers are device pointers; asynchronous on cuda_stream.
#pragma once
#include <cstddef>
#include <cstdint>

namespace synthcore::cuda {

// out[i] = x[i] + Z_i, Z_i from words[6 L i .. 6 L (i + 1)) against the L * 64 thresholds.
void discrete_laplace_from_words(uintptr_t words, int levels, uintptr_t t_hi, uintptr_t t_lo,
                                 uintptr_t x, uintptr_t out, size_t n, uintptr_t cuda_stream);

}  // namespace synthcore::cuda
