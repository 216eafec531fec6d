// CUDA exact integer noise and randomized response: one thread per value, the same
// guided searches over 95-bit survival thresholds (stored doubled) as the CPU kernel
// (cpp/src/dp_noise.cpp), on keystream words produced by secure_random.cu, so the
// output is the CPU's bit for bit.
#include <cuda_runtime.h>

#include "dp_noise.cuh"
#include "launch.cuh"

namespace synthcore::cuda {
namespace {

constexpr int kThreads = 128;
constexpr uint64_t kGroup = 16;  // values per word-interleaved group (dp_noise.py GROUP)

struct Tables {
  int segments;
  const int64_t* multipliers;
  const int64_t* starts;
  const int32_t* window_log2;
  const int32_t* guide_bits;
  const int64_t* guide_starts;
  const int32_t* guide;
  const uint64_t* t_hi;
  const uint32_t* t_lo;
};

__device__ uint64_t bucket_index(uint64_t u_hi, uint32_t u_lo, int m) {
  if (m < 0) return u_hi >> (64 + m);
  const int o = u_hi ? 95 - __clzll(static_cast<long long>(u_hi))
                     : (u_lo ? 31 - __clz(static_cast<int>(u_lo)) : 0);
  const int sh = o > m ? o - m : 0;
  const unsigned __int128 u = (static_cast<unsigned __int128>(u_hi) << 32) | u_lo;
  return (static_cast<uint64_t>(sh) << m) + static_cast<uint64_t>(u >> sh);
}

__device__ int64_t search(const uint64_t* th, const uint32_t* tl, const int32_t* guide, int m,
                          int w, uint64_t u_hi, uint32_t u_lo) {
  uint64_t pos = static_cast<uint64_t>(guide[bucket_index(u_hi, u_lo, m)]);
  for (uint64_t step = uint64_t{1} << (w - 1); step; step >>= 1) {
    const uint64_t idx = pos + step - 1;
    const uint64_t h = th[idx];
    const uint64_t above = (h > u_hi) | ((h == u_hi) & (tl[idx] > u_lo));
    pos += step & (0 - above);
  }
  return static_cast<int64_t>(pos);
}

__global__ void noise_kernel(const uint32_t* words, Tables tb, const int64_t* x, int64_t* out,
                             uint64_t n) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  const uint64_t per = 1 + 2 * static_cast<uint64_t>(tb.segments);
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    // groups of kGroup values, word-interleaved: word k of value i at w[kGroup k]
    const uint32_t* w = words + per * (i - i % kGroup) + i % kGroup;
    // word 0 is shared: the sign (bit 0) and the low bits of every segment's U
    int64_t head = 0, higher = 0;
    for (int s = 0; s < tb.segments; ++s) {
      const uint32_t* u = w + kGroup * (1 + 2 * s);
      const int64_t c = search(tb.t_hi + tb.starts[s], tb.t_lo + tb.starts[s],
                               tb.guide + tb.guide_starts[s], tb.guide_bits[s],
                               tb.window_log2[s],
                               (static_cast<uint64_t>(u[0]) << 32) | u[kGroup], w[0]);
      if (s == 0) head = c;
      else higher += tb.multipliers[s] * c;
    }
    const int64_t a = head + (head > 0) * higher;
    const int64_t negative = w[0] & 1u;
    out[i] = x[i] + ((a ^ -negative) + negative);
  }
}

__global__ void rr_kernel(const uint32_t* words, const int64_t* codes, int64_t* out, uint64_t n,
                          uint64_t keep_hi, uint32_t keep_lo, uint64_t other_hi,
                          uint32_t other_lo) {
  const unsigned __int128 keep = (static_cast<unsigned __int128>(keep_hi) << 32) | keep_lo;
  const unsigned __int128 other = (static_cast<unsigned __int128>(other_hi) << 32) | other_lo;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const uint32_t* w = words + 3 * i;
    const unsigned __int128 u = (static_cast<unsigned __int128>(w[0]) << 64) |
                                (static_cast<unsigned __int128>(w[1]) << 32) | w[2];
    const int64_t x = codes[i];
    const unsigned __int128 excess = u >= keep ? u - keep : 0;
    const int64_t j = static_cast<int64_t>(excess / other);
    const int64_t moved = j < x ? j : j + 1;
    out[i] = u < keep ? x : moved;
  }
}

}  // namespace

void integer_noise_from_words(uintptr_t words, int segments, uintptr_t multipliers,
                              uintptr_t starts, uintptr_t window_log2, uintptr_t guide_bits,
                              uintptr_t guide_starts, uintptr_t guide, uintptr_t t_hi,
                              uintptr_t t_lo, uintptr_t x, uintptr_t out,
                              size_t n, uintptr_t cuda_stream) {
  if (n == 0) return;
  const Tables tb{segments, reinterpret_cast<const int64_t*>(multipliers),
                  reinterpret_cast<const int64_t*>(starts),
                  reinterpret_cast<const int32_t*>(window_log2),
                  reinterpret_cast<const int32_t*>(guide_bits),
                  reinterpret_cast<const int64_t*>(guide_starts),
                  reinterpret_cast<const int32_t*>(guide),
                  reinterpret_cast<const uint64_t*>(t_hi), reinterpret_cast<const uint32_t*>(t_lo)};
  noise_kernel<<<grid_for(n, kThreads), kThreads, 0,
      reinterpret_cast<cudaStream_t>(cuda_stream)>>>(
      reinterpret_cast<const uint32_t*>(words), tb, reinterpret_cast<const int64_t*>(x),
      reinterpret_cast<int64_t*>(out), n);
  check_launch("integer_noise");
}

void randomized_response_from_words(uintptr_t words, uintptr_t codes, uintptr_t out, size_t n,
                                    uint64_t keep_hi, uint32_t keep_lo, uint64_t other_hi,
                                    uint32_t other_lo, uintptr_t cuda_stream) {
  if (n == 0) return;
  rr_kernel<<<grid_for(n, kThreads), kThreads, 0,
      reinterpret_cast<cudaStream_t>(cuda_stream)>>>(
      reinterpret_cast<const uint32_t*>(words), reinterpret_cast<const int64_t*>(codes),
      reinterpret_cast<int64_t*>(out), n, keep_hi, keep_lo, other_hi, other_lo);
  check_launch("randomized_response");
}

}  // namespace synthcore::cuda
