// CPU exact integer noise (synthcore/dp_noise.hpp). Per chunk of values: the ChaCha20
// words, then for 16 values side by side each segment's guided search over its 96-bit
// survival thresholds. Fixed work per value: the same words, steps and loads whatever
// the data or the values drawn (which table entries are loaded does depend on the
// noise; batching many values per call is what hides that from a timing observer).
#include "synthcore/dp_noise.hpp"
#include "synthcore/dispatch.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "synthcore/parallel.hpp"


namespace synthcore {
namespace {

constexpr size_t kValues = 256;  // per chunk of keystream
constexpr size_t kLanes = 16;    // values searched side by side

// The guide bucket of a 96-bit uniform. m > 0: sh 2^m + (U >> sh), sh = max(log2 U - m, 0)
// (2^m buckets per octave); m < 0: the top -m bits of U (linear buckets).
SC_ALWAYS_INLINE uint64_t bucket_index(uint64_t u_hi, uint32_t u_lo, int m) {
  if (m < 0) return u_hi >> (64 + m);
  const int o = u_hi ? 95 - __builtin_clzll(u_hi) : (u_lo ? 31 - __builtin_clz(u_lo) : 0);
  const int sh = o > m ? o - m : 0;
  const unsigned __int128 u = (static_cast<unsigned __int128>(u_hi) << 32) | u_lo;
  return (static_cast<uint64_t>(sh) << m) + static_cast<uint64_t>(u >> sh);
}

// One segment's guided search for kLanes uniforms: the same index arithmetic, one guide
// load and W binary-search steps for every value; lanes interleave so loads overlap.
SC_ALWAYS_INLINE void search_segment(const uint64_t* th, const uint32_t* tl,
                                     const int32_t* guide, int m, int w, const uint64_t* u_hi,
                                     const uint32_t* u_lo, int64_t* pos) {
  uint64_t p[kLanes];
  for (size_t l = 0; l < kLanes; ++l)
    p[l] = static_cast<uint64_t>(guide[bucket_index(u_hi[l], u_lo[l], m)]);
  for (uint64_t step = uint64_t{1} << (w - 1); step; step >>= 1) {
    for (size_t l = 0; l < kLanes; ++l) {
      const uint64_t idx = p[l] + step - 1;
      const uint64_t h = th[idx];
      const uint64_t above = (h > u_hi[l]) | ((h == u_hi[l]) & (tl[idx] > u_lo[l]));
      p[l] += step & (0 - above);
    }
  }
  for (size_t l = 0; l < kLanes; ++l) pos[l] = static_cast<int64_t>(p[l]);
}

// Either integers (x, out) or floats on the grid r (xf, outf: out = (rint(x / r) + Z) r,
// the rounding and scaling fused here so a float release is one pass; r is a power of
// two, so x / r and the product are exact and rint rounds half to even like NumPy's).
struct NoiseIo {
  const int64_t* x;
  int64_t* out;
  const double* xf;
  double* outf;
  double r;
};

SC_CLONES void noise_range(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                           const NoiseTables& tb, const NoiseIo& io, size_t first, size_t n) {
  const size_t per = 1 + 3 * static_cast<size_t>(tb.segments);
  std::vector<uint32_t> words(kValues * per);
  for (size_t c = 0; c < n; c += kValues) {
    const size_t m = std::min(kValues, n - c);
    secure_random_fill(key, stream, word_offset + (first + c) * per, words.data(), m * per);
    for (size_t v0 = 0; v0 < m; v0 += kLanes) {
      const size_t lanes = std::min(kLanes, m - v0);
      int64_t head[kLanes], higher[kLanes], count[kLanes];
      for (size_t l = 0; l < kLanes; ++l) higher[l] = 0;
      for (int s = 0; s < tb.segments; ++s) {
        uint64_t u_hi[kLanes] = {};
        uint32_t u_lo[kLanes] = {};
        for (size_t l = 0; l < lanes; ++l) {
          const uint32_t* w = words.data() + (v0 + l) * per + 1 + 3 * s;
          u_hi[l] = (static_cast<uint64_t>(w[0]) << 32) | w[1];
          u_lo[l] = w[2];
        }
        search_segment(tb.t_hi + tb.starts[s], tb.t_lo + tb.starts[s],
                       tb.guide + tb.guide_starts[s], tb.guide_bits[s], tb.window_log2[s], u_hi,
                       u_lo, count);
        if (s == 0) {
          for (size_t l = 0; l < kLanes; ++l) head[l] = count[l];
        } else {
          const int64_t mult = tb.multipliers[s];
          for (size_t l = 0; l < kLanes; ++l) higher[l] += mult * count[l];
        }
      }
      for (size_t l = 0; l < lanes; ++l) {
        const int64_t a = head[l] + (head[l] > 0) * higher[l];
        const int64_t negative = words[(v0 + l) * per] & 1u;
        const int64_t z = (a ^ -negative) + negative;  // branch-free sign
        const size_t i = first + c + v0 + l;
        if (io.xf) {
          const int64_t grid = static_cast<int64_t>(std::nearbyint(io.xf[i] / io.r));
          io.outf[i] = static_cast<double>(grid + z) * io.r;
        } else {
          io.out[i] = io.x[i] + z;
        }
      }
    }
  }
}

}  // namespace

void integer_noise(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                   const NoiseTables& tables, const int64_t* x, int64_t* out, size_t n,
                   int num_threads) {
  const NoiseIo io{x, out, nullptr, nullptr, 0.0};
  parallel_for(n, num_threads, 1 << 14, [&](size_t b, size_t e) {
    noise_range(key, stream, word_offset, tables, io, b, e - b);
  });
}

void grid_float_noise(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                      const NoiseTables& tables, const double* x, double granularity,
                      double* out, size_t n, int num_threads) {
  const NoiseIo io{nullptr, nullptr, x, out, granularity};
  parallel_for(n, num_threads, 1 << 14, [&](size_t b, size_t e) {
    noise_range(key, stream, word_offset, tables, io, b, e - b);
  });
}

}  // namespace synthcore

namespace synthcore {
namespace {

void rr_range(const ChachaKey& key, uint64_t stream, uint64_t word_offset, const int64_t* codes,
              int64_t* out, size_t first, size_t n, unsigned __int128 keep,
              unsigned __int128 other) {
  constexpr size_t kValues = 1024;
  std::vector<uint32_t> words(3 * kValues);
  for (size_t c = 0; c < n; c += kValues) {
    const size_t m = std::min(kValues, n - c);
    secure_random_fill(key, stream, word_offset + 3 * (first + c), words.data(), 3 * m);
    for (size_t i = 0; i < m; ++i) {
      const uint32_t* w = words.data() + 3 * i;
      const unsigned __int128 u = (static_cast<unsigned __int128>(w[0]) << 64) |
                                  (static_cast<unsigned __int128>(w[1]) << 32) | w[2];
      const int64_t x = codes[c + i];
      // the same arithmetic whether or not the code is kept (no branch on u)
      const unsigned __int128 excess = u >= keep ? u - keep : 0;
      const int64_t j = static_cast<int64_t>(excess / other);
      const int64_t moved = j < x ? j : j + 1;
      out[c + i] = u < keep ? x : moved;
    }
  }
}

}  // namespace

void randomized_response(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                         const int64_t* codes, int64_t* out, size_t n, uint64_t keep_hi,
                         uint32_t keep_lo, uint64_t other_hi, uint32_t other_lo,
                         int num_threads) {
  const unsigned __int128 keep = (static_cast<unsigned __int128>(keep_hi) << 32) | keep_lo;
  const unsigned __int128 other = (static_cast<unsigned __int128>(other_hi) << 32) | other_lo;
  parallel_for(n, num_threads, 1 << 14, [&](size_t b, size_t e) {
    rr_range(key, stream, word_offset, codes + b, out + b, b, e - b, keep, other);
  });
}

}  // namespace synthcore
