// CPU exact integer noise (synthcore/dp_noise.hpp). Per chunk of values: the ChaCha20
// words, then for 16 values side by side each segment's guided search over its
// survival thresholds (95-bit, stored doubled; U = 2 V + sign). Fixed work per value: the same words, steps and loads whatever
// the data or the values drawn (which table entries are loaded does depend on the
// noise; batching many values per call is what hides that from a timing observer).
#include "synthcore/dp_noise.hpp"
#include "synthcore/dispatch.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "synthcore/parallel.hpp"


namespace synthcore {
namespace {

constexpr size_t kValues = 256;  // per chunk of keystream
constexpr size_t kLanes = 16;    // values searched side by side
constexpr size_t kGroup = 16;    // values per word-interleaved group (dp_noise.py GROUP)
constexpr size_t kStreamingValues = size_t{1} << 17;  // 1 MiB of int64 output
static_assert(kLanes == kGroup && kValues % kGroup == 0, "chunks of whole groups");

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
  bool stream_out;  // integer output larger than the caches: streaming stores (AVX-512)
};

// Values first .. first + n - 1 (first a multiple of kGroup): word k of value 16 g + j
// is stream word (g per + k) 16 + j, so a chunk of whole groups is one contiguous range.
SC_CLONES void noise_range(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                           const NoiseTables& tb, const NoiseIo& io, size_t first, size_t n) {
  const size_t per = 1 + 2 * static_cast<size_t>(tb.segments);
  std::vector<uint32_t> words(kValues * per);
  for (size_t c = 0; c < n; c += kValues) {
    const size_t m = std::min(kValues, n - c);
    const size_t groups = (m + kGroup - 1) / kGroup;
    secure_random_fill(key, stream, word_offset + (first + c) * per, words.data(),
                       groups * kGroup * per);
    for (size_t v0 = 0; v0 < m; v0 += kLanes) {
      const size_t lanes = std::min(kLanes, m - v0);
      const uint32_t* group = words.data() + v0 * per;  // kLanes == kGroup
      int64_t head[kLanes], higher[kLanes], count[kLanes];
      for (size_t l = 0; l < kLanes; ++l) higher[l] = 0;
      for (int s = 0; s < tb.segments; ++s) {
        uint64_t u_hi[kLanes] = {};
        uint32_t u_lo[kLanes] = {};
        for (size_t l = 0; l < lanes; ++l) {
          const uint32_t* w = group + kGroup * (1 + 2 * s) + l;
          u_hi[l] = (static_cast<uint64_t>(w[0]) << 32) | w[kGroup];
          u_lo[l] = group[l];  // word 0, shared: the sign and the low bits of every U
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
        const int64_t negative = group[l] & 1u;
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

#if defined(__GNUC__) && defined(__x86_64__)
#define SC_AVX512_NOISE 1
#define SC_AVX512 __attribute__((target("avx512f,avx512cd,avx512vl,avx512dq,avx512bw")))

// The AVX-512 kernel: the same arithmetic as noise_range, eight values per vector
// (64-bit lanes), the words, guide entries and thresholds fetched by gathers. Two
// vectors per iteration so that the gathers of one overlap the other's compares.
struct Uniform8 {
  __m512i hi;  // bits 95..32 of U
  __m512i lo;  // bits 31..0
};

// U of eight values from the segment's two words and the shared word 0 (one vector of
// each: the group layout).
SC_AVX512 SC_ALWAYS_INLINE Uniform8 load_uniforms(__m256i w0, __m256i w1, __m512i shared) {
  return {_mm512_or_si512(_mm512_slli_epi64(_mm512_cvtepu32_epi64(w0), 32),
                          _mm512_cvtepu32_epi64(w1)),
          shared};
}

SC_AVX512 SC_ALWAYS_INLINE __m256i half_of(const uint32_t* group_word, int k) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(group_word + 8 * k));
}

SC_AVX512 SC_ALWAYS_INLINE __m512i bucket_index8(const Uniform8& u, int m) {
  if (m < 0) return _mm512_srl_epi64(u.hi, _mm_cvtsi32_si128(64 + m));
  // o = floor(log2 U) (-1 for U = 0, which the max below maps like 0), sh = max(o - m, 0)
  const __mmask8 hi_nonzero = _mm512_test_epi64_mask(u.hi, u.hi);
  const __m512i o_lo = _mm512_sub_epi64(_mm512_set1_epi64(63), _mm512_lzcnt_epi64(u.lo));
  const __m512i o = _mm512_mask_sub_epi64(o_lo, hi_nonzero, _mm512_set1_epi64(95),
                                          _mm512_lzcnt_epi64(u.hi));
  const __m512i sh = _mm512_max_epi64(_mm512_sub_epi64(o, _mm512_set1_epi64(m)),
                                      _mm512_setzero_si512());
  // U >> sh from the two parts; variable shifts by >= 64 (or negative) give 0
  const __m512i c32 = _mm512_set1_epi64(32);
  const __m512i top = _mm512_or_si512(
      _mm512_or_si512(_mm512_srlv_epi64(u.hi, _mm512_sub_epi64(sh, c32)),
                      _mm512_sllv_epi64(u.hi, _mm512_sub_epi64(c32, sh))),
      _mm512_srlv_epi64(u.lo, sh));
  return _mm512_add_epi64(_mm512_sllv_epi64(sh, _mm512_set1_epi64(m)), top);
}

SC_AVX512 SC_ALWAYS_INLINE __m512i search8(const uint64_t* th, const uint32_t* tl,
                                           const uint64_t* fused, int m, int w,
                                           const Uniform8& u) {
  // the bucket's record: the first probed threshold and the search start, one line
  const __m512i b2 = _mm512_slli_epi64(bucket_index8(u, m), 1);
  const __m512i h0 = _mm512_i64gather_epi64(b2, fused, 8);
  const __m512i r1 = _mm512_i64gather_epi64(b2, fused + 1, 8);
  const __m512i l0 = _mm512_and_si512(r1, _mm512_set1_epi64(0xFFFFFFFF));
  __m512i p = _mm512_srli_epi64(r1, 32);
  {
    const int64_t step = int64_t{1} << (w - 1);
    const __mmask8 above = _mm512_cmpgt_epu64_mask(h0, u.hi) |
                           (_mm512_cmpeq_epi64_mask(h0, u.hi) & _mm512_cmpgt_epu64_mask(l0, u.lo));
    p = _mm512_mask_add_epi64(p, above, p, _mm512_set1_epi64(step));
  }
  for (int64_t step = (int64_t{1} << (w - 1)) >> 1; step; step >>= 1) {
    const __m512i idx = _mm512_add_epi64(p, _mm512_set1_epi64(step - 1));
    const __m512i h = _mm512_i64gather_epi64(idx, th, 8);
    const __m512i l = _mm512_cvtepu32_epi64(_mm512_i64gather_epi32(idx, tl, 4));
    const __mmask8 above = _mm512_cmpgt_epu64_mask(h, u.hi) |
                           (_mm512_cmpeq_epi64_mask(h, u.hi) & _mm512_cmpgt_epu64_mask(l, u.lo));
    p = _mm512_mask_add_epi64(p, above, p, _mm512_set1_epi64(step));
  }
  return p;
}

constexpr int kVectors = 2;  // vectors of eight values: one group
static_assert(8 * kVectors == kGroup, "a group per iteration");

SC_AVX512 void noise_range_avx512(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                                  const NoiseTables& tb, const uint64_t* fused,
                                  const NoiseIo& io, size_t first, size_t n) {
  const size_t per = 1 + 2 * static_cast<size_t>(tb.segments);
  std::vector<uint32_t> words(kValues * per);
  alignas(64) int64_t z[kValues];
  for (size_t c = 0; c < n; c += kValues) {
    const size_t m = std::min(kValues, n - c);
    const size_t groups = (m + kGroup - 1) / kGroup;
    secure_random_fill(key, stream, word_offset + (first + c) * per, words.data(),
                       groups * kGroup * per);
    for (size_t g = 0; g < groups; ++g) {
      const uint32_t* group = words.data() + g * kGroup * per;
      __m512i head[kVectors], higher[kVectors], shared[kVectors];
      for (int k = 0; k < kVectors; ++k) {
        higher[k] = _mm512_setzero_si512();
        shared[k] = _mm512_cvtepu32_epi64(half_of(group, k));
      }
      for (int s = 0; s < tb.segments; ++s) {
        const uint64_t* th = tb.t_hi + tb.starts[s];
        const uint32_t* tl = tb.t_lo + tb.starts[s];
        const uint64_t* guide = fused + 2 * tb.guide_starts[s];
        const int gm = tb.guide_bits[s], w = tb.window_log2[s];
        const __m512i mult = _mm512_set1_epi64(tb.multipliers[s]);
        const uint32_t* sw = group + kGroup * (1 + 2 * s);
        for (int k = 0; k < kVectors; ++k) {
          const Uniform8 u = load_uniforms(half_of(sw, k), half_of(sw + kGroup, k), shared[k]);
          const __m512i x = search8(th, tl, guide, gm, w, u);
          if (s == 0) head[k] = x;
          else higher[k] = _mm512_add_epi64(higher[k], _mm512_mullo_epi64(mult, x));
        }
      }
      for (int k = 0; k < kVectors; ++k) {
        const __mmask8 nonzero = _mm512_test_epi64_mask(head[k], head[k]);
        const __m512i a = _mm512_mask_add_epi64(head[k], nonzero, head[k], higher[k]);
        const __mmask8 negative = _mm512_test_epi64_mask(shared[k], _mm512_set1_epi64(1));
        _mm512_store_si512(z + g * kGroup + 8 * k,
                           _mm512_mask_sub_epi64(a, negative, _mm512_setzero_si512(), a));
      }
    }
    const size_t i0 = first + c;
    if (io.xf) {
      for (size_t i = 0; i < m; ++i) {
        const int64_t grid = static_cast<int64_t>(std::nearbyint(io.xf[i0 + i] / io.r));
        io.outf[i0 + i] = static_cast<double>(grid + z[i]) * io.r;
      }
    } else if (io.stream_out) {
      // a large output: streaming stores, no read-for-ownership of lines about to be
      // overwritten (and no eviction of the tables for them)
      int64_t* o = io.out + i0;
      const int64_t* xi = io.x + i0;
      size_t i = 0;
      for (; i < m && (reinterpret_cast<uintptr_t>(o + i) & 63); ++i) o[i] = xi[i] + z[i];
      for (; i + 8 <= m; i += 8)
        _mm512_stream_si512(reinterpret_cast<__m512i*>(o + i),
                            _mm512_add_epi64(_mm512_loadu_si512(xi + i), _mm512_load_si512(z + i)));
      for (; i < m; ++i) o[i] = xi[i] + z[i];
    } else {
      for (size_t i = 0; i < m; ++i) io.out[i0 + i] = io.x[i0 + i] + z[i];
    }
  }
  _mm_sfence();
}

bool use_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw");
}
const bool kUseAvx512 = use_avx512();
#endif

void noise_any(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
               const NoiseTables& tb, const uint64_t* fused, const NoiseIo& io, size_t first,
               size_t n) {
#ifdef SC_AVX512_NOISE
  if (fused) return noise_range_avx512(key, stream, word_offset, tb, fused, io, first, n);
#endif
  noise_range(key, stream, word_offset, tb, io, first, n);
}


// Per guide bucket b of each segment, {T_hi[i], T_lo[i] | guide[b] << 32} with
// i = guide[b] + 2^(W-1) - 1, the threshold the search compares first: the bucket's start
// and its first comparison come from one cache line. Empty where the kernel is scalar.
std::vector<uint64_t> fused_guide(const NoiseTables& tb, size_t n) {
#ifdef SC_AVX512_NOISE
  if (!kUseAvx512 || n < 4096) return {};
  const int last = tb.segments - 1;
  const int m = tb.guide_bits[last];
  const size_t total = static_cast<size_t>(tb.guide_starts[last]) +
                       (m > 0 ? static_cast<size_t>(97 - m) << m : size_t{1} << -m);
  std::vector<uint64_t> fused(2 * total);
  for (int s = 0; s < tb.segments; ++s) {
    const int gm = tb.guide_bits[s];
    const size_t buckets = gm > 0 ? static_cast<size_t>(97 - gm) << gm : size_t{1} << -gm;
    const int64_t first_step = (int64_t{1} << (tb.window_log2[s] - 1)) - 1;
    for (size_t b = 0; b < buckets; ++b) {
      const size_t g = static_cast<size_t>(tb.guide_starts[s]) + b;
      const int64_t i = tb.starts[s] + tb.guide[g] + first_step;
      fused[2 * g] = tb.t_hi[i];
      fused[2 * g + 1] = tb.t_lo[i] | (static_cast<uint64_t>(tb.guide[g]) << 32);
    }
  }
  return fused;
#else
  (void)tb;
  (void)n;
  return {};
#endif
}

// Threads take whole groups, so every piece starts on a group.
void noise_groups(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                  const NoiseTables& tb, const std::vector<uint64_t>& fused, const NoiseIo& io,
                  size_t n, int num_threads) {
  const size_t groups = (n + kGroup - 1) / kGroup;
  parallel_for(groups, num_threads, (1 << 14) / kGroup, [&](size_t b, size_t e) {
    const size_t first = b * kGroup, last = std::min(n, e * kGroup);
    noise_any(key, stream, word_offset, tb, fused.empty() ? nullptr : fused.data(), io, first,
              last - first);
  });
}

}  // namespace

void integer_noise(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                   const NoiseTables& tables, const int64_t* x, int64_t* out, size_t n,
                   int num_threads) {
  const NoiseIo io{x, out, nullptr, nullptr, 0.0, n >= kStreamingValues};
  const std::vector<uint64_t> fused = fused_guide(tables, n);
  noise_groups(key, stream, word_offset, tables, fused, io, n, num_threads);
}

void grid_float_noise(const ChachaKey& key, uint64_t stream, uint64_t word_offset,
                      const NoiseTables& tables, const double* x, double granularity,
                      double* out, size_t n, int num_threads) {
  const NoiseIo io{nullptr, nullptr, x, out, granularity, false};
  const std::vector<uint64_t> fused = fused_guide(tables, n);
  noise_groups(key, stream, word_offset, tables, fused, io, n, num_threads);
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
