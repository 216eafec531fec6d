// CUDA kernels around the cuBLAS GEMMs of CTGAN / TVAE inference (gan.cuh).
// The random numbers and the decode follow cpp/src/gan.cpp element for element:
// the same Philox words, the shared fdlibm log for the Gumbel noise, the same
// operation order (compiled with --fmad=false). Only the GEMMs differ (cuBLAS
// accumulation order, optionally TF32), so results agree with the CPU to float32
// GEMM rounding, not bit for bit (docs/gan.md).
#include <cuda_runtime.h>

#include <cmath>

#include "gan.cuh"
#include "launch.cuh"
#include "synthcore/gan.hpp"
#include "synthcore/math/log.hpp"
#include "synthcore/random.hpp"

namespace synthcore::cuda {
namespace {

constexpr int kThreads = 256;

__device__ uint32_t stream_word(rng::PhiloxKey key, uint64_t stream, uint64_t w) {
  uint32_t o[4];
  rng::philox_stream_block(key, stream, w >> 2, o);
  return o[w & 3];
}

// One thread per Philox block of the z stream: up to 4 float32 normals each.
__global__ void z_kernel(float* buf, int S, int E, uint64_t n, rng::PhiloxKey key, uint64_t row0) {
  const uint64_t first = row0 * E, count = n * E;
  const uint64_t first_block = first / 4, n_blocks = (first + count - 1) / 4 - first_block + 1;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t t = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; t < n_blocks;
       t += stride) {
    uint32_t w[4];
    rng::philox_stream_block(key, kGanStreamZ, first_block + t, w);
    for (int e = 0; e < 4; ++e) {
      const uint64_t j = (first_block + t) * 4 + e;
      if (j < first || j - first >= count) continue;
      const uint64_t r = (j - first) / E, c = (j - first) % E;
      buf[r * S + (S - E) + c] = normal_f32(w[e]);
    }
  }
}

__global__ void cond_kernel(int32_t* cond, uint64_t n, rng::PhiloxKey key, uint64_t row0,
                            const double* cum, int C, int cond_fixed) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t r = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; r < n;
       r += stride) {
    if (cond_fixed >= 0) {
      cond[r] = cond_fixed;
      continue;
    }
    uint32_t w[4];
    const uint64_t j = row0 + r;  // float64 uniform element j: words 2j, 2j + 1
    rng::philox_stream_block(key, kGanStreamCond, (2 * j) >> 2, w);
    const int o = static_cast<int>((2 * j) & 3);
    const double u = uniform01_f64(words_to_u64(w[o], w[o + 1]));
    int lo = 0, hi = C;  // first i with cum[i] > u
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (cum[mid] > u) hi = mid; else lo = mid + 1;
    }
    cond[r] = lo < C ? lo : C - 1;
  }
}

// h = y + b (+ wc[cond]); eval: buf = relu(h). Compat: h kept in y for the stats.
__global__ void bias_kernel(float* y, int ld, const float* b, const float* wc,
                            const int32_t* cond, uint64_t n, int w, float* buf, int S,
                            int out_off, bool write_buf) {
  const uint64_t total = n * w, stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < total;
       i += stride) {
    const uint64_t r = i / w;
    const int j = static_cast<int>(i % w);
    float h = y[r * ld + j] + b[j];
    if (wc && cond[r] >= 0) h = h + wc[static_cast<uint64_t>(cond[r]) * ld + j];
    if (write_buf)
      buf[r * S + out_off + j] = h > 0.0f ? h : 0.0f;
    else
      y[r * ld + j] = h;
  }
}

// One thread per (batch, column): mean and biased variance in double, stored as
// (mean, gamma / sqrt(var + eps)).
__global__ void bn_stats_kernel(const float* y, int ld, uint64_t n_batches, uint64_t batch_rows,
                                int w, const float* gamma, double eps, double* stats) {
  const uint64_t total = n_batches * w, stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < total;
       i += stride) {
    const uint64_t g = i / w;
    const int j = static_cast<int>(i % w);
    const float* col = y + g * batch_rows * ld + j;
    double mean = 0.0;
    for (uint64_t r = 0; r < batch_rows; ++r) mean += static_cast<double>(col[r * ld]);
    mean /= static_cast<double>(batch_rows);
    double var = 0.0;
    for (uint64_t r = 0; r < batch_rows; ++r) {
      const double d = static_cast<double>(col[r * ld]) - mean;
      var += d * d;
    }
    stats[2 * i] = mean;
    stats[2 * i + 1] = static_cast<double>(gamma[j]) /
                       sqrt(var / static_cast<double>(batch_rows) + eps);
  }
}

__global__ void bn_apply_kernel(const float* y, int ld, uint64_t n, uint64_t batch_rows, int w,
                                const double* stats, const float* beta, float* buf, int S,
                                int out_off) {
  const uint64_t total = n * w, stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < total;
       i += stride) {
    const uint64_t r = i / w;
    const int j = static_cast<int>(i % w);
    const double* s = stats + 2 * ((r / batch_rows) * w + j);
    const float v = static_cast<float>((static_cast<double>(y[r * ld + j]) - s[0]) * s[1] +
                                       static_cast<double>(beta[j]));
    buf[r * S + out_off + j] = v > 0.0f ? v : 0.0f;
  }
}

__device__ float out_at(const float* yr, const float* b, const float* wcr, int i) {
  float v = yr[i] + b[i];
  if (wcr) v = v + wcr[i];
  return v;
}

__device__ int span_argmax(const float* yr, const float* b, const float* wcr, int at, int width,
                           bool gumbel, rng::PhiloxKey key, uint64_t word0) {
  int best = 0;
  double best_v = -INFINITY;
  for (int i = 0; i < width; ++i) {
    double v = static_cast<double>(out_at(yr, b, wcr, at + i));
    if (gumbel) {
      const double u = gan_u01_open(stream_word(key, kGanStreamGumbel, word0 + at + i));
      v = v + -math::log_positive_normal(-math::log_positive_normal(u));
    }
    if (v > best_v) { best_v = v; best = i; }
  }
  return best;
}

__global__ void decode_kernel(const float* y, int ld, const float* b, const float* wc,
                              const int32_t* cond, uint64_t n, int D, const int32_t* columns,
                              int n_columns, void* const* outputs, const double* means,
                              const double* stds, const float* sigma, bool tvae,
                              rng::PhiloxKey key, uint64_t row0) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t r = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; r < n;
       r += stride) {
    const float* yr = y + r * ld;
    const float* wcr = (wc && cond[r] >= 0) ? wc + static_cast<uint64_t>(cond[r]) * ld : nullptr;
    const uint64_t word0 = (row0 + r) * static_cast<uint64_t>(D);
    for (int c = 0; c < n_columns; ++c) {
      const int kind = columns[4 * c], at = columns[4 * c + 1], width = columns[4 * c + 2];
      if (kind == kGanDiscrete) {
        static_cast<int32_t*>(outputs[c])[r] =
            span_argmax(yr, b, wcr, at, width, !tvae, key, word0);
        continue;
      }
      float alpha = tanhf(out_at(yr, b, wcr, at));
      if (tvae) {
        alpha = alpha + sigma[at] * normal_f32(stream_word(key, kGanStreamAlphaNoise, word0 + at));
        alpha = fminf(1.0f, fmaxf(-1.0f, alpha));
      }
      const int k = columns[4 * c + 3] + span_argmax(yr, b, wcr, at + 1, width, !tvae, key, word0);
      const double x = static_cast<double>(alpha) * (4.0 * stds[k]) + means[k];
      if (kind == kGanContI64)
        static_cast<int64_t*>(outputs[c])[r] = static_cast<int64_t>(nearbyint(x));
      else
        static_cast<double*>(outputs[c])[r] = x;
    }
  }
}

cudaStream_t as_stream(uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }
template <class T>
T* ptr(uintptr_t p) { return reinterpret_cast<T*>(p); }

}  // namespace

void gan_prologue(uintptr_t buf, int S, int E, size_t n, uint32_t key0, uint32_t key1,
                  uint64_t row0, uintptr_t cond_cum, int C, int cond_fixed, uintptr_t cond,
                  uintptr_t cuda_stream) {
  if (n == 0) return;
  const rng::PhiloxKey key{key0, key1};
  z_kernel<<<grid_for(static_cast<uint64_t>(n) * E / 4 + 1, kThreads), kThreads, 0,
             as_stream(cuda_stream)>>>(
      ptr<float>(buf), S, E, n, key, row0);
  check_launch("gan z");
  if (C > 0) {
    cond_kernel<<<grid_for(n, kThreads), kThreads, 0, as_stream(cuda_stream)>>>(
        ptr<int32_t>(cond), n, key, row0, ptr<const double>(cond_cum), C, cond_fixed);
    check_launch("gan cond");
  }
}

void gan_hidden_epilogue(uintptr_t y, int ld, uintptr_t b, uintptr_t wc, uintptr_t cond,
                         size_t n, int w, uintptr_t buf, int S, int out_off, size_t batch_rows,
                         uintptr_t gamma, uintptr_t beta, double eps, uintptr_t scratch,
                         uintptr_t cuda_stream) {
  if (n == 0) return;
  const cudaStream_t s = as_stream(cuda_stream);
  const bool eval = batch_rows == 0;
  bias_kernel<<<grid_for(static_cast<uint64_t>(n) * w, kThreads), kThreads, 0, s>>>(
      ptr<float>(y), ld, ptr<const float>(b), ptr<const float>(wc), ptr<const int32_t>(cond), n,
      w, ptr<float>(buf), S, out_off, eval);
  check_launch("gan bias");
  if (eval) return;
  const uint64_t n_batches = n / batch_rows;
  bn_stats_kernel<<<grid_for(n_batches * w, kThreads), kThreads, 0, s>>>(
      ptr<const float>(y), ld, n_batches, batch_rows, w, ptr<const float>(gamma), eps,
      ptr<double>(scratch));
  check_launch("gan bn stats");
  bn_apply_kernel<<<grid_for(static_cast<uint64_t>(n) * w, kThreads), kThreads, 0, s>>>(
      ptr<const float>(y), ld, n, batch_rows, w, ptr<const double>(scratch),
      ptr<const float>(beta), ptr<float>(buf), S, out_off);
  check_launch("gan bn apply");
}

void gan_decode(uintptr_t y, int ld, uintptr_t b, uintptr_t wc, uintptr_t cond, size_t n,
                int D, uintptr_t columns, int n_columns, uintptr_t outputs, uintptr_t means,
                uintptr_t stds, uintptr_t sigma, bool tvae, uint32_t key0, uint32_t key1,
                uint64_t row0, uintptr_t cuda_stream) {
  if (n == 0) return;
  decode_kernel<<<grid_for(n, kThreads), kThreads, 0, as_stream(cuda_stream)>>>(
      ptr<const float>(y), ld, ptr<const float>(b), ptr<const float>(wc),
      ptr<const int32_t>(cond), n, D, ptr<const int32_t>(columns), n_columns,
      ptr<void* const>(outputs), ptr<const double>(means), ptr<const double>(stds),
      ptr<const float>(sigma), tvae, rng::PhiloxKey{key0, key1}, row0);
  check_launch("gan decode");
}

}  // namespace synthcore::cuda
