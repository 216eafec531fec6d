// CUDA launchers for Gaussian-copula sampling (synthcore/copula.hpp). All
// pointers are device pointers passed as integers; `outputs` points to a device
// array of d output pointers. Asynchronous on `cuda_stream`; throws
// std::runtime_error when the launch fails.
#pragma once
#include <cstddef>
#include <cstdint>

namespace synthcore::cuda {

constexpr int kCopulaMaxDims = 128;  // per-thread latent vector lives in registers/local memory

struct DevicePlan {
  int d;
  uintptr_t chol, dim_kind, z_lo, z_scale, knot_offsets, knots, out_kind, level_offsets,
      levels_i64, levels_f64, null_dim, round_mode, round_q;
};

void copula_sample(const DevicePlan& plan, uintptr_t outputs, size_t n, uint32_t key0,
                   uint32_t key1, uint64_t stream, uint64_t row_offset, uintptr_t cuda_stream);
void copula_map(const DevicePlan& plan, uintptr_t z, uintptr_t outputs, size_t n,
                uintptr_t cuda_stream);

}  // namespace synthcore::cuda
