// CUDA implementation of the counter-based random kernels. One thread computes
// one Philox block (4 words) and writes the elements made from it, so an
// element's value is the same function of (key, stream, index) as on the CPU.
#include <cuda_runtime.h>

#include "launch.cuh"
#include "random.cuh"
#include "synthcore/random.hpp"

namespace synthcore::cuda {
namespace {

constexpr int kThreads = 256;

// Elements use W words each, E = 4 / W elements per Philox block. Thread t
// owns block first_block + t and writes those of its E elements that fall in
// [offset, offset + n).
template <int W, class T, class Op>
__global__ void fill_kernel(PhiloxKey key, uint64_t stream, uint64_t offset, T* out, uint64_t n,
                            Op op) {
  constexpr int E = 4 / W;
  const uint64_t first_block = offset / E;
  const uint64_t n_blocks = (offset + n - 1) / E - first_block + 1;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t t = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < n_blocks;
       t += stride) {
    const uint64_t block = first_block + t;
    uint32_t w[4];
    rng::philox_stream_block(key, stream, block, w);
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const uint64_t j = block * E + e;
      if (j >= offset && j - offset < n) out[j - offset] = op(w + e * W);
    }
  }
}

struct RawOp {
  __device__ uint32_t operator()(const uint32_t* w) const { return w[0]; }
};
struct UniformF64Op {
  double low, width;
  __device__ double operator()(const uint32_t* w) const {
    return low + width * uniform01_f64(words_to_u64(w[0], w[1]));
  }
};
struct UniformF32Op {
  float low, width;
  __device__ float operator()(const uint32_t* w) const { return low + width * uniform01_f32(w[0]); }
};
struct NormalF64Op {
  double loc, scale;
  __device__ double operator()(const uint32_t* w) const {
    return loc + scale * normal_f64(words_to_u64(w[0], w[1]));
  }
};
struct NormalF32Op {
  float loc, scale;
  __device__ float operator()(const uint32_t* w) const { return loc + scale * normal_f32(w[0]); }
};
template <class T>
struct IntegersOp {
  int64_t low;
  uint64_t range;
  __device__ T operator()(const uint32_t* w) const {
    const uint64_t v = static_cast<uint64_t>(low) + bounded_u64(words_to_u64(w[0], w[1]), range);
    return static_cast<T>(static_cast<int64_t>(v));
  }
};

template <int W, class T, class Op>
void launch_fill(const char* what, uintptr_t out, size_t n, StreamArgs a, Op op,
                 uintptr_t cuda_stream) {
  if (n == 0) return;
  constexpr int E = 4 / W;
  const uint64_t n_blocks = (a.offset + n - 1) / E - a.offset / E + 1;
  fill_kernel<W, T, Op><<<grid_for(n_blocks, kThreads), kThreads, 0,
                          reinterpret_cast<cudaStream_t>(cuda_stream)>>>(
      PhiloxKey{a.key0, a.key1}, a.stream, a.offset, reinterpret_cast<T*>(out), n, op);
  check_launch(what);
}

__global__ void philox_blocks_kernel(const uint32_t* counters, uint32_t key0, uint32_t key1,
                                     uint32_t* out, uint64_t n_blocks) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t b = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < n_blocks;
       b += stride) {
    uint32_t c0 = counters[4 * b], c1 = counters[4 * b + 1], c2 = counters[4 * b + 2],
             c3 = counters[4 * b + 3];
    rng::philox4x32_10(c0, c1, c2, c3, key0, key1);
    out[4 * b] = c0;
    out[4 * b + 1] = c1;
    out[4 * b + 2] = c2;
    out[4 * b + 3] = c3;
  }
}

}  // namespace

void philox4x32_10_blocks(uintptr_t counters, uint32_t key0, uint32_t key1, uintptr_t out,
                          size_t n_blocks, uintptr_t cuda_stream) {
  if (n_blocks == 0) return;
  philox_blocks_kernel<<<grid_for(n_blocks, kThreads), kThreads, 0,
                         reinterpret_cast<cudaStream_t>(cuda_stream)>>>(
      reinterpret_cast<const uint32_t*>(counters), key0, key1, reinterpret_cast<uint32_t*>(out),
      n_blocks);
  check_launch("philox4x32_10");
}

void random_raw(uintptr_t out, size_t n, StreamArgs a, uintptr_t s) {
  launch_fill<1, uint32_t>("random_raw", out, n, a, RawOp{}, s);
}
void random_uniform_f64(uintptr_t out, size_t n, StreamArgs a, double low, double width,
                        uintptr_t s) {
  launch_fill<2, double>("random_uniform_f64", out, n, a, UniformF64Op{low, width}, s);
}
void random_uniform_f32(uintptr_t out, size_t n, StreamArgs a, double low, double width,
                        uintptr_t s) {
  launch_fill<1, float>("random_uniform_f32", out, n, a,
                        UniformF32Op{static_cast<float>(low), static_cast<float>(width)}, s);
}
void random_normal_f64(uintptr_t out, size_t n, StreamArgs a, double loc, double scale,
                       uintptr_t s) {
  launch_fill<2, double>("random_normal_f64", out, n, a, NormalF64Op{loc, scale}, s);
}
void random_normal_f32(uintptr_t out, size_t n, StreamArgs a, double loc, double scale,
                       uintptr_t s) {
  launch_fill<1, float>("random_normal_f32", out, n, a,
                        NormalF32Op{static_cast<float>(loc), static_cast<float>(scale)}, s);
}
void random_integers_i64(uintptr_t out, size_t n, StreamArgs a, int64_t low, uint64_t range,
                         uintptr_t s) {
  launch_fill<kWordsPerInteger, int64_t>("random_integers_i64", out, n, a,
                                         IntegersOp<int64_t>{low, range}, s);
}
void random_integers_i32(uintptr_t out, size_t n, StreamArgs a, int64_t low, uint64_t range,
                         uintptr_t s) {
  launch_fill<kWordsPerInteger, int32_t>("random_integers_i32", out, n, a,
                                         IntegersOp<int32_t>{low, range}, s);
}

RuntimeInfo runtime_info() {
  RuntimeInfo info{0, 0, 0};
  cudaRuntimeGetVersion(&info.runtime_version);
  if (cudaDriverGetVersion(&info.driver_version) != cudaSuccess) info.driver_version = 0;
  if (info.driver_version == 0 || cudaGetDeviceCount(&info.device_count) != cudaSuccess)
    info.device_count = 0;
  cudaGetLastError();  // clear the sticky error of a machine without a driver
  return info;
}

}  // namespace synthcore::cuda
