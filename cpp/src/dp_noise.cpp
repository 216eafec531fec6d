// CPU discrete Laplace noise (synthcore/dp_noise.hpp). Per chunk of samples: the
// ChaCha20 words, then for 16 samples side by side each level's 64-way threshold
// count (lanes innermost, so the compares vectorise). Fixed work per sample: the
// same number of words and compares whatever the data or the values drawn.
#include "synthcore/dp_noise.hpp"
#include "synthcore/dispatch.hpp"

#include <algorithm>
#include <vector>

#include "synthcore/parallel.hpp"


namespace synthcore {
namespace {

constexpr size_t kSamples = 256;  // per chunk
constexpr size_t kLanes = 16;

SC_CLONES void noise_range(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                           const GeometricTables& tb, int64_t* out, size_t first, size_t n) {
  const size_t words_per_sample = 6 * static_cast<size_t>(tb.levels);
  std::vector<uint32_t> words(kSamples * words_per_sample);
  for (size_t c = 0; c < n; c += kSamples) {
    const size_t m = std::min(kSamples, n - c);
    secure_random_fill(key, stream, word_offset + (first + c) * words_per_sample, words.data(),
                       m * words_per_sample);
    for (size_t s0 = 0; s0 < m; s0 += kLanes) {
      const size_t lanes = std::min(kLanes, m - s0);
      int64_t g[2][kLanes] = {};
      for (int which = 0; which < 2; ++which) {
        for (int level = 0; level < tb.levels; ++level) {
          uint64_t u_hi[kLanes] = {};
          uint32_t u_lo[kLanes] = {};
          for (size_t l = 0; l < lanes; ++l) {
            const uint32_t* w = words.data() + (s0 + l) * words_per_sample +
                                3 * (static_cast<size_t>(which) * tb.levels + level);
            u_hi[l] = (static_cast<uint64_t>(w[0]) << 32) | w[1];
            u_lo[l] = w[2];
          }
          // Count on the high 64 bits; a lane whose high bits equal a threshold's
          // (probability < 2^-58) is recounted with all 96 bits. That recount is the
          // only place where the work depends on a value drawn.
          int64_t count[kLanes] = {};
          uint64_t tie[kLanes] = {};
          const uint64_t* th = tb.t_hi + kGeometricBase * level;
          const uint32_t* tl = tb.t_lo + kGeometricBase * level;
          for (int k = 0; k < kGeometricBase; ++k) {
            const uint64_t h = th[k];
            for (size_t l = 0; l < kLanes; ++l) {
              count[l] += u_hi[l] < h;
              tie[l] |= u_hi[l] == h;
            }
          }
          for (size_t l = 0; l < kLanes; ++l) {
            if (tie[l]) {
              count[l] = 0;
              for (int k = 0; k < kGeometricBase; ++k)
                count[l] += (u_hi[l] < th[k]) | ((u_hi[l] == th[k]) & (u_lo[l] < tl[k]));
            }
            g[which][l] += count[l] << (6 * level);
          }
        }
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
