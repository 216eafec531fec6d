// CUDA Gaussian-copula sampling: one thread per row. The row's normals come
// from the same Philox words as on the CPU (latent dim j: stream
// (stream << 20) + j, element = row), z = L z_raw is accumulated in column
// order and every lookup is the CPU's, compiled without FMA contraction, so
// the GPU's rows equal the CPU's bit for bit.
#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "copula.cuh"
#include "launch.cuh"
#include "synthcore/copula.hpp"

namespace synthcore::cuda {
namespace {

constexpr int kThreads = 128;

struct Plan {
  int d;
  const double* chol;
  const int8_t* dim_kind;
  const double* z_lo;
  const double* z_scale;
  const int64_t* knot_offsets;
  const double* knots;
  const int8_t* out_kind;
  const int64_t* level_offsets;
  const int64_t* levels_i64;
  const double* levels_f64;
  const int32_t* null_dim;
  const int8_t* round_mode;
  const double* round_q;
};

Plan device_plan(const DevicePlan& p) {
  return Plan{p.d,
              reinterpret_cast<const double*>(p.chol),
              reinterpret_cast<const int8_t*>(p.dim_kind),
              reinterpret_cast<const double*>(p.z_lo),
              reinterpret_cast<const double*>(p.z_scale),
              reinterpret_cast<const int64_t*>(p.knot_offsets),
              reinterpret_cast<const double*>(p.knots),
              reinterpret_cast<const int8_t*>(p.out_kind),
              reinterpret_cast<const int64_t*>(p.level_offsets),
              reinterpret_cast<const int64_t*>(p.levels_i64),
              reinterpret_cast<const double*>(p.levels_f64),
              reinterpret_cast<const int32_t*>(p.null_dim),
              reinterpret_cast<const int8_t*>(p.round_mode),
              reinterpret_cast<const double*>(p.round_q)};
}

__device__ double table_value(const Plan& p, int j, double z) {
  const int64_t a = p.knot_offsets[j];
  const int64_t knots = p.knot_offsets[j + 1] - a;
  const double* t = p.knots + a;
  const double last = static_cast<double>(knots - 1);
  const double x = fmin(fmax((z - p.z_lo[j]) * p.z_scale[j], 0.0), last);
  const int64_t i = min(static_cast<int64_t>(x), knots - 2);
  const double f = x - static_cast<double>(i);
  const double lo = t[i];
  double v = lo + f * (t[i + 1] - lo);
  const double q = p.round_q[j];
  if (p.round_mode[j] == 1) v = nearbyint(v * q) / q;
  else if (p.round_mode[j] == 2) v = nearbyint(v / q) * q;
  return v;
}

__device__ int32_t threshold_code(const Plan& p, int j, double z) {
  const int64_t a = p.knot_offsets[j];
  const int64_t nt = p.knot_offsets[j + 1] - a;
  const double* t = p.knots + a;
  int64_t lo = 0, len = nt;  // number of thresholds <= z, by binary search
  while (len > 0) {
    const int64_t half = len / 2;
    if (t[lo + half] <= z) {
      lo += half + 1;
      len -= half + 1;
    } else {
      len = half;
    }
  }
  return static_cast<int32_t>(lo);
}

// Writes row r's outputs from its latent vector z (null dims come first).
__device__ void write_row(const Plan& p, const double* z, void* const* outputs, uint64_t r) {
  bool is_null[kCopulaMaxDims];
  for (int j = 0; j < p.d; ++j) {
    const bool table = p.dim_kind[j] == kDimTable;
    const double v = table ? table_value(p, j, z[j]) : 0.0;
    const int32_t code = table ? 0 : threshold_code(p, j, z[j]);
    const bool null = p.null_dim[j] >= 0 && is_null[p.null_dim[j]];
    const int64_t la = p.level_offsets[j];
    is_null[j] = false;
    switch (p.out_kind[j]) {
      case kOutF64:
        static_cast<double*>(outputs[j])[r] = null ? NAN : v;
        break;
      case kOutF32:
        static_cast<float*>(outputs[j])[r] = null ? NAN : static_cast<float>(v);
        break;
      case kOutI64Round:
        static_cast<int64_t*>(outputs[j])[r] =
            null ? INT64_MIN : static_cast<int64_t>(nearbyint(v));
        break;
      case kOutI32Round:
        static_cast<int32_t*>(outputs[j])[r] =
            null ? INT32_MIN : static_cast<int32_t>(nearbyint(v));
        break;
      case kOutCodeI32:
        static_cast<int32_t*>(outputs[j])[r] = null ? -1 : code;
        break;
      case kOutCodeU8:
        static_cast<uint8_t*>(outputs[j])[r] = null ? 0 : static_cast<uint8_t>(code);
        is_null[j] = !null && code != 0;
        break;
      case kOutCodeI8:
        static_cast<int8_t*>(outputs[j])[r] = null ? int8_t{-1} : static_cast<int8_t>(code);
        break;
      case kOutLevelI64:
        static_cast<int64_t*>(outputs[j])[r] = null ? INT64_MIN : p.levels_i64[la + code];
        break;
      case kOutLevelF64:
        static_cast<double*>(outputs[j])[r] = null ? NAN : p.levels_f64[la + code];
        break;
    }
  }
}

__global__ void sample_kernel(Plan p, void* const* outputs, uint64_t n, PhiloxKey key,
                              uint64_t stream, uint64_t row_offset) {
  const uint64_t step = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t r = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < n;
       r += step) {
    double zr[kCopulaMaxDims], z[kCopulaMaxDims];
    const uint64_t e = row_offset + r;  // element of each dim's stream
    for (int j = 0; j < p.d; ++j) {
      uint32_t w[4];
      rng::philox_stream_block(key, (stream << kCopulaStreamBits) + static_cast<uint64_t>(j),
                               e / 2, w);
      const int lane = static_cast<int>(e % 2) * 2;
      zr[j] = normal_f64(words_to_u64(w[lane], w[lane + 1]));
    }
    for (int i = 0; i < p.d; ++i) {
      const double* row = p.chol + static_cast<size_t>(i) * p.d;
      double acc = row[0] * zr[0];
      for (int j = 1; j <= i; ++j) acc = acc + row[j] * zr[j];
      z[i] = acc;
    }
    write_row(p, z, outputs, r);
  }
}

__global__ void map_kernel(Plan p, const double* z_all, void* const* outputs, uint64_t n) {
  const uint64_t step = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t r = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < n;
       r += step) {
    double z[kCopulaMaxDims];
    for (int j = 0; j < p.d; ++j) z[j] = z_all[static_cast<uint64_t>(j) * n + r];
    write_row(p, z, outputs, r);
  }
}

void check(const char* what, int d) {
  if (d > kCopulaMaxDims)
    throw std::invalid_argument(std::string(what) + ": the CUDA kernel supports up to " +
                                std::to_string(kCopulaMaxDims) + " latent dims, the model has " +
                                std::to_string(d));
}

}  // namespace

void copula_sample(const DevicePlan& plan, uintptr_t outputs, size_t n, uint32_t key0,
                   uint32_t key1, uint64_t stream, uint64_t row_offset, uintptr_t cuda_stream) {
  check("copula_sample", plan.d);
  if (n == 0 || plan.d == 0) return;
  sample_kernel<<<grid_for(n, kThreads), kThreads, 0,
      reinterpret_cast<cudaStream_t>(cuda_stream)>>>(
      device_plan(plan), reinterpret_cast<void* const*>(outputs), n, PhiloxKey{key0, key1},
      stream, row_offset);
  check_launch("copula_sample");
}

void copula_map(const DevicePlan& plan, uintptr_t z, uintptr_t outputs, size_t n,
                uintptr_t cuda_stream) {
  check("copula_map", plan.d);
  if (n == 0 || plan.d == 0) return;
  map_kernel<<<grid_for(n, kThreads), kThreads, 0,
      reinterpret_cast<cudaStream_t>(cuda_stream)>>>(
      device_plan(plan), reinterpret_cast<const double*>(z),
      reinterpret_cast<void* const*>(outputs), n);
  check_launch("copula_map");
}

}  // namespace synthcore::cuda
