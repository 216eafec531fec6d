// CUDA ChaCha20 keystream: one thread per 64-byte block; word w of the stream is
// word w % 16 of block w / 16, as on the CPU and in NumPy.
#include <cuda_runtime.h>

#include "launch.cuh"
#include "secure_random.cuh"
#include "synthcore/rng/chacha.hpp"

namespace synthcore::cuda {
namespace {

constexpr int kThreads = 128;

__global__ void raw_kernel(const uint32_t* key_words, uint64_t stream, uint64_t offset,
                           uint32_t* out, uint64_t n) {
  uint32_t key[8];
  for (int i = 0; i < 8; ++i) key[i] = key_words[i];
  const uint64_t first_block = offset / 16;
  const uint64_t n_blocks = (offset + n - 1) / 16 - first_block + 1;
  const uint64_t step = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t t = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < n_blocks;
       t += step) {
    const uint64_t block = first_block + t;
    uint32_t w[16];
    rng::chacha_stream_block(key, stream, block, w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint64_t j = block * 16 + i;
      if (j >= offset && j - offset < n) out[j - offset] = w[i];
    }
  }
}

}  // namespace

void secure_random_raw(uintptr_t key, uint64_t stream, uint64_t offset, uintptr_t out, size_t n,
                       uintptr_t cuda_stream) {
  if (n == 0) return;
  const uint64_t chacha_blocks = (offset + n - 1) / 16 - offset / 16 + 1;
  raw_kernel<<<grid_for(chacha_blocks, kThreads), kThreads, 0,
               reinterpret_cast<cudaStream_t>(cuda_stream)>>>(
      reinterpret_cast<const uint32_t*>(key), stream, offset, reinterpret_cast<uint32_t*>(out), n);
  check_launch("secure_random_raw");
}

}  // namespace synthcore::cuda
