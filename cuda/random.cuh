// CUDA launchers for the counter-based random kernels (synthcore/random.hpp).
// Pointers are device pointers and `stream` is a cudaStream_t (CuPy's current
// stream), both passed as integers so that callers need no CUDA headers.
// Every launcher is asynchronous on `stream` and throws std::runtime_error if
// the launch fails.
#pragma once
#include <cstddef>
#include <cstdint>

namespace synthcore::cuda {

struct StreamArgs {
  uint32_t key0, key1;
  uint64_t stream;  // the Philox stream, not the CUDA stream
  uint64_t offset;  // element offset
};

void philox4x32_10_blocks(uintptr_t counters, uint32_t key0, uint32_t key1, uintptr_t out,
                          size_t n_blocks, uintptr_t cuda_stream);
void random_raw(uintptr_t out, size_t n, StreamArgs args, uintptr_t cuda_stream);
void random_uniform_f64(uintptr_t out, size_t n, StreamArgs args, double low, double width,
                        uintptr_t cuda_stream);
void random_uniform_f32(uintptr_t out, size_t n, StreamArgs args, double low, double width,
                        uintptr_t cuda_stream);
void random_normal_f64(uintptr_t out, size_t n, StreamArgs args, double loc, double scale,
                       uintptr_t cuda_stream);
void random_normal_f32(uintptr_t out, size_t n, StreamArgs args, double loc, double scale,
                       uintptr_t cuda_stream);
void random_integers_i64(uintptr_t out, size_t n, StreamArgs args, int64_t low, uint64_t range,
                         uintptr_t cuda_stream);
void random_integers_i32(uintptr_t out, size_t n, StreamArgs args, int64_t low, uint64_t range,
                         uintptr_t cuda_stream);

struct RuntimeInfo {
  int runtime_version;  // CUDA runtime linked into the module
  int driver_version;   // 0 when no driver is installed
  int device_count;     // 0 when no driver or no device
};
RuntimeInfo runtime_info();

}  // namespace synthcore::cuda
