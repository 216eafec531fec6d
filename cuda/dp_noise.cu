// CUDA discrete Laplace: one thread per value, the same base-64 digit counts as the
// CPU kernel (cpp/src/dp_noise.cpp), on keystream words produced by
// secure_random.cu, so the noise is the CPU's bit for bit.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "dp_noise.cuh"

namespace synthcore::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kBase = 64;

__device__ int64_t geometric(const uint32_t* w, int levels, const uint64_t* t_hi,
                             const uint32_t* t_lo) {
  int64_t g = 0;
  for (int level = 0; level < levels; ++level) {
    const uint64_t u_hi = (static_cast<uint64_t>(w[3 * level]) << 32) | w[3 * level + 1];
    const uint32_t u_lo = w[3 * level + 2];
    int64_t count = 0;
    for (int k = 0; k < kBase; ++k) {  // the same 64 tests for every value
      const uint64_t h = t_hi[kBase * level + k];
      const uint32_t l = t_lo[kBase * level + k];
      count += (u_hi < h) | ((u_hi == h) & (u_lo < l));
    }
    g += count << (6 * level);
  }
  return g;
}

__global__ void laplace_kernel(const uint32_t* words, int levels, const uint64_t* t_hi,
                               const uint32_t* t_lo, const int64_t* x, int64_t* out,
                               uint64_t n) {
  const uint64_t step = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  const uint64_t per = 6 * static_cast<uint64_t>(levels);
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += step) {
    const uint32_t* w = words + per * i;
    out[i] = x[i] + (geometric(w, levels, t_hi, t_lo) -
                     geometric(w + 3 * levels, levels, t_hi, t_lo));
  }
}

}  // namespace

void discrete_laplace_from_words(uintptr_t words, int levels, uintptr_t t_hi, uintptr_t t_lo,
                                 uintptr_t x, uintptr_t out, size_t n, uintptr_t cuda_stream) {
  if (n == 0) return;
  const uint64_t blocks = (n + kThreads - 1) / kThreads;
  const unsigned grid = static_cast<unsigned>(blocks < (1u << 20) ? blocks : (1u << 20));
  laplace_kernel<<<grid, kThreads, 0, reinterpret_cast<cudaStream_t>(cuda_stream)>>>(
      reinterpret_cast<const uint32_t*>(words), levels, reinterpret_cast<const uint64_t*>(t_hi),
      reinterpret_cast<const uint32_t*>(t_lo), reinterpret_cast<const int64_t*>(x),
      reinterpret_cast<int64_t*>(out), n);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("synthcore CUDA kernel discrete_laplace failed to "
                                         "launch: ") + cudaGetErrorString(err));
}

}  // namespace synthcore::cuda
