// CPU discrete Laplace noise (synthcore/dp_noise.hpp). Per chunk of samples: the
// ChaCha20 words, then four branch-free binary searches per sample over the
// threshold tables, 16 samples side by side so that their loads overlap. The
// work per sample depends only on the tables (that is, on the scale), never on
// the data or on the values drawn.
#include "synthcore/dp_noise.hpp"

#include <algorithm>
#include <vector>

#include "synthcore/parallel.hpp"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SC_CLONES
#endif

namespace synthcore {
namespace {

constexpr size_t kSamples = 256;  // per chunk
constexpr size_t kWords = 12;     // per sample
constexpr size_t kLanes = 16;

// 96-bit U < T, with U = (hi, lo) and T = (t_hi, t_lo), as one 128-bit compare: no
// branch, so random data cannot mispredict it.
inline bool below(uint64_t hi, uint32_t lo, uint64_t t_hi, uint32_t t_lo) {
  using u128 = unsigned __int128;
  return ((static_cast<u128>(hi) << 32) | lo) < ((static_cast<u128>(t_hi) << 32) | t_lo);
}

// For decreasing thresholds the test U < T_k holds for a prefix of k; its length,
// for kLanes uniforms at once: every lane takes the same steps (the copula's
// threshold search, cpp/src/copula.cpp, in the other direction).
inline __attribute__((always_inline)) void count_below(const uint64_t* u_hi,
                                                       const uint32_t* u_lo,
                                                       const uint64_t* t_hi,
                                                       const uint32_t* t_lo, int64_t size,
                                                       int64_t* count) {
  if (size <= 64) {  // small tables: test every threshold, lanes innermost (vectorised)
    for (size_t l = 0; l < kLanes; ++l) count[l] = 0;
    for (int64_t k = 0; k < size; ++k) {
      const uint64_t th = t_hi[k];
      const uint32_t tl = t_lo[k];
      for (size_t l = 0; l < kLanes; ++l)
        count[l] += (u_hi[l] < th) | ((u_hi[l] == th) & (u_lo[l] < tl));
    }
    return;
  }
  int64_t base[kLanes] = {};
  for (int64_t len = size; len > 1;) {
    const int64_t half = len / 2;
    for (size_t l = 0; l < kLanes; ++l) {
      const int64_t k = base[l] + half - 1;
      base[l] += below(u_hi[l], u_lo[l], t_hi[k], t_lo[k]) ? half : 0;
    }
    len -= half;
  }
  for (size_t l = 0; l < kLanes; ++l)
    count[l] = base[l] + (below(u_hi[l], u_lo[l], t_hi[base[l]], t_lo[base[l]]) ? 1 : 0);
}

SC_CLONES void noise_range(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                           const GeometricTables& tb, int64_t* out, size_t first, size_t n) {
  std::vector<uint32_t> words(kSamples * kWords);
  for (size_t c = 0; c < n; c += kSamples) {
    const size_t m = std::min(kSamples, n - c);
    secure_random_fill(key, stream, word_offset + (first + c) * kWords, words.data(), m * kWords);
    for (size_t s0 = 0; s0 < m; s0 += kLanes) {
      const size_t lanes = std::min(kLanes, m - s0);
      int64_t g[2][kLanes] = {};
      for (int which = 0; which < 2; ++which) {
        uint64_t ua_hi[kLanes] = {}, ub_hi[kLanes] = {};
        uint32_t ua_lo[kLanes] = {}, ub_lo[kLanes] = {};
        for (size_t l = 0; l < lanes; ++l) {
          const uint32_t* w = words.data() + (s0 + l) * kWords + 6 * which;
          ua_hi[l] = (static_cast<uint64_t>(w[0]) << 32) | w[1];
          ua_lo[l] = w[2];
          ub_hi[l] = (static_cast<uint64_t>(w[3]) << 32) | w[4];
          ub_lo[l] = w[5];
        }
        int64_t a[kLanes], b[kLanes];
        count_below(ua_hi, ua_lo, tb.a_hi, tb.a_lo, tb.a_size, a);
        count_below(ub_hi, ub_lo, tb.b_hi, tb.b_lo, tb.b_size, b);
        for (size_t l = 0; l < kLanes; ++l) g[which][l] = a[l] + (b[l] << tb.m);
      }
      for (size_t l = 0; l < lanes; ++l) out[c + s0 + l] = g[0][l] - g[1][l];
    }
  }
}

}  // namespace

void discrete_laplace_noise(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                            const GeometricTables& tables, int64_t* out, size_t n,
                            int num_threads) {
  parallel_for(n, num_threads, 1 << 14, [&](size_t b, size_t e) {
    noise_range(key, stream, word_offset, tables, out + b, b, e - b);
  });
}

}  // namespace synthcore
