// CUDA ChaCha20 keystream words (synthcore/secure_random.hpp). `key` is a device
// pointer to 8 uint32 words; asynchronous on `cuda_stream`.
#pragma once
#include <cstddef>
#include <cstdint>

namespace synthcore::cuda {

void secure_random_raw(uintptr_t key, uint64_t stream, uint64_t offset, uintptr_t out, size_t n,
                       uintptr_t cuda_stream);

}  // namespace synthcore::cuda
