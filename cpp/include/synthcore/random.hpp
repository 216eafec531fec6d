// Counter-based random kernels: raw Philox words, uniforms, normals, integers.
//
// Element i of a call with element offset `offset` reads words
// [(offset + i) * W, (offset + i + 1) * W) of the (key, stream) word stream
// (rng/philox.hpp): W = 2 for float64 uniforms and normals and for integers of
// any width, W = 1 for float32 uniforms and normals and for raw words. So the
// value of an element depends only on (key, stream, offset + i).
//
// The element transforms below are the definition of each distribution; the
// CPU (cpp/src/random.cpp), CUDA (cuda/random.cu) and NumPy
// (python/synthcore/_reference/random.py) backends all compute them.
#pragma once
#include <cstddef>
#include <cstdint>

#include "synthcore/hd.hpp"
#include "synthcore/math/ndtri.hpp"
#include "synthcore/rng/philox.hpp"

namespace synthcore {

using rng::PhiloxKey;

template <class T>
constexpr int kWordsPerFloat = sizeof(T) == 8 ? 2 : 1;
constexpr int kWordsPerInteger = 2;  // 64 random bits, whatever the output width

SC_HD uint64_t words_to_u64(uint32_t lo, uint32_t hi) {
  return static_cast<uint64_t>(lo) | (static_cast<uint64_t>(hi) << 32);
}

// [0, 1) on a grid of 2^-53 (float64) or 2^-24 (float32), as numpy.random does.
SC_HD double uniform01_f64(uint64_t u) { return static_cast<double>(u >> 11) * 0x1p-53; }
SC_HD float uniform01_f32(uint32_t w) { return static_cast<float>(w >> 8) * 0x1p-24f; }

// Normals are sign * |z|: the top bit is the sign and the remaining bits give an
// exact lower-tail probability p in (0, 1/2), so the distribution is exactly
// symmetric. float64: p = (m + 1/2) 2^-53 with 52 bits m; |z| <= 8.3.
SC_HD double normal_lower_p_f64(uint64_t u) {
  return static_cast<double>(static_cast<int64_t>((u >> 11) & 0x000FFFFFFFFFFFFFull)) * 0x1p-53 +
         0x1p-54;
}
SC_HD bool normal_sign_f64(uint64_t u) { return (u >> 63) != 0; }
// float32: p = (m + 1/2) 2^-32 with 31 bits m (exact in double); |z| <= 5.9.
SC_HD double normal_lower_p_f32(uint32_t w) {
  return static_cast<double>(w & 0x7FFFFFFFu) * 0x1p-32 + 0x1p-33;
}
SC_HD bool normal_sign_f32(uint32_t w) { return (w >> 31) != 0; }
// The central/tail split, taken in double on every backend: q = p - 1/2 is exact.
SC_HD bool ndtri_is_tail(double p) { return p - 0.5 < -math::kNdtriSplit1; }

// Scalar transforms (the device path; the CPU path computes the same in blocks).
SC_HD double normal_f64(uint64_t u) {
  const double z = math::ndtri_lower_f64(normal_lower_p_f64(u));
  return normal_sign_f64(u) ? -z : z;
}
SC_HD float normal_f32(uint32_t w) {
  // Computed in double and rounded once: within half an ulp of the true quantile.
  const float z = static_cast<float>(math::ndtri_lower_f64(normal_lower_p_f32(w)));
  return normal_sign_f32(w) ? -z : z;
}

// Integers in [low, low + range) by the high half of a 64x64-bit product, no
// rejection (a rejection loop would break the counter map). Each value's
// probability differs from 1/range by less than 2^-64. range == 0 means 2^64.
SC_HD uint64_t mulhi_u64(uint64_t a, uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
#endif
}
SC_HD uint64_t bounded_u64(uint64_t u, uint64_t range) {
  return range == 0 ? u : mulhi_u64(u, range);
}

// ---- CPU entry points (cpp/src/random.cpp) -----------------------------------
// Each fills out[0..n) with elements offset .. offset + n - 1 using up to
// num_threads threads; the result does not depend on num_threads.
struct RandomStream {
  PhiloxKey key;
  uint64_t stream;
};

void philox4x32_10_blocks(const uint32_t* counters, PhiloxKey key, uint32_t* out, size_t n_blocks);
void random_raw(RandomStream rs, uint64_t offset, uint32_t* out, size_t n, int num_threads);
template <class T>
void random_uniform(RandomStream rs, uint64_t offset, T* out, size_t n, double low, double width,
                    int num_threads);
template <class T>
void random_normal(RandomStream rs, uint64_t offset, T* out, size_t n, double loc, double scale,
                   int num_threads);
template <class T>
void random_integers(RandomStream rs, uint64_t offset, T* out, size_t n, int64_t low,
                     uint64_t range, int num_threads);
// Single-threaded fill of float64 normals (loc 0, scale 1), for other kernels' chunks.
void normal_f64_fill(RandomStream rs, uint64_t offset, double* out, size_t n);
// Inverse normal CDF of p in (0, 1/2] (the block kernel's own path), for tests and embedders.
void ndtri_lower(const double* p, double* out, size_t n, int num_threads);

namespace detail {
// Exposed for tests: the CPU gathers the tail lanes of the inverse CDF with
// hand-written SIMD; each variant must give the scalar result.
enum class CompressIsa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
CompressIsa best_compress_isa();
// (p, index) of every p[i] in the tail region, in order; returns the count.
size_t gather_tails_with(CompressIsa isa, const double* p, size_t m, double* tail_p,
                         uint32_t* tail_at);
}  // namespace detail

}  // namespace synthcore
