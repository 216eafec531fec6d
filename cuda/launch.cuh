// Launch helpers shared by every CUDA op: the grid size and the launch-error check.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace synthcore::cuda {

// At most this many blocks: every kernel strides over the grid beyond it.
constexpr uint64_t kMaxGrid = 1u << 20;

// Blocks of `threads` threads for `items` work items: at least 1, at most kMaxGrid.
inline unsigned grid_for(uint64_t items, int threads) {
  const uint64_t blocks = (items + threads - 1) / threads;
  return static_cast<unsigned>(blocks < kMaxGrid ? (blocks ? blocks : 1) : kMaxGrid);
}

// Turns a failed launch into a Python-visible exception naming the kernel.
inline void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("synthcore CUDA kernel ") + what +
                             " failed to launch: " + cudaGetErrorString(err));
}

}  // namespace synthcore::cuda
