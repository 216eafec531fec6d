// CPU implementation of the counter-based random kernels (declared in
// synthcore/random.hpp). Work is done in chunks of kChunk elements that stay in
// L1: Philox words for the chunk, then the transform, then the store. Each hot
// loop is written so that GCC vectorises it, and the functions holding them are
// cloned for x86-64-v4 (AVX-512), x86-64-v3 (AVX2+FMA) and baseline, picked at
// load time by the CPU, so one portable build runs at full width everywhere.
#include "synthcore/random.hpp"
#include "synthcore/dispatch.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <type_traits>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

#include "synthcore/parallel.hpp"


namespace synthcore {

using detail::CompressIsa;

namespace {

constexpr size_t kChunk = 512;           // elements per in-cache chunk
constexpr size_t kMinPerThread = 1 << 15;  // below this a thread costs more than it saves
constexpr int kLanes = 64;               // Philox blocks computed side by side

// kLanes consecutive blocks starting at `block`, written as 4 * kLanes words.
SC_ALWAYS_INLINE void philox_lanes(RandomStream rs, uint64_t block, uint32_t* out) {
  uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const uint64_t b = block + static_cast<uint64_t>(l);
    c0[l] = static_cast<uint32_t>(b);
    c1[l] = static_cast<uint32_t>(b >> 32);
    c2[l] = static_cast<uint32_t>(rs.stream);
    c3[l] = static_cast<uint32_t>(rs.stream >> 32);
  }
  uint32_t k0 = rs.key.k0, k1 = rs.key.k1;
  for (int round = 0; round < rng::kPhiloxRounds; ++round) {
    if (round > 0) {
      k0 += rng::kPhiloxW0;
      k1 += rng::kPhiloxW1;
    }
    for (int l = 0; l < kLanes; ++l) {
      const uint64_t p0 = static_cast<uint64_t>(rng::kPhiloxM0) * c0[l];
      const uint64_t p1 = static_cast<uint64_t>(rng::kPhiloxM1) * c2[l];
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[l] ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = static_cast<uint32_t>(p1);
      c3[l] = static_cast<uint32_t>(p0);
      c0[l] = n0;
      c2[l] = n2;
    }
  }
  for (int l = 0; l < kLanes; ++l) {
    out[4 * l + 0] = c0[l];
    out[4 * l + 1] = c1[l];
    out[4 * l + 2] = c2[l];
    out[4 * l + 3] = c3[l];
  }
}

// Words [first, first + count) of the stream into out.
SC_ALWAYS_INLINE void fill_words(RandomStream rs, uint64_t first, size_t count, uint32_t* out) {
  uint32_t block_words[4 * kLanes];
  size_t done = 0;
  while (done < count) {
    const uint64_t w = first + done;
    const uint64_t block = w / 4;
    const size_t skip = static_cast<size_t>(w % 4);
    if (skip == 0 && count - done >= 4 * static_cast<size_t>(kLanes)) {
      philox_lanes(rs, block, out + done);  // aligned: straight into the output
      done += 4 * kLanes;
      continue;
    }
    rng::philox_stream_block(rs.key, rs.stream, block, block_words);
    const size_t take = std::min<size_t>(4 - skip, count - done);
    for (size_t j = 0; j < take; ++j) out[done + j] = block_words[skip + j];
    done += take;
  }
}

// Gathering the tail lanes (~15%) of a chunk: (p, index) of each lane with
// ndtri_is_tail(p), in order; returns how many. Compilers do not vectorise a
// compaction, and the scalar loop cost more than the tail arithmetic itself, so
// x86 gets it by hand: AVX-512's compress in register form (the memory form is
// microcoded on Zen 4) and AVX2 with a permutation table. The outputs need
// kCompressSlack spare elements because whole vectors are stored.
constexpr size_t kCompressSlack = 8;

SC_ALWAYS_INLINE size_t gather_tails_scalar(const double* p, size_t begin, size_t m,
                                            double* tail_p, uint32_t* tail_at, size_t nt) {
  for (size_t i = begin; i < m; ++i) {
    tail_p[nt] = p[i];
    tail_at[nt] = static_cast<uint32_t>(i);
    nt += ndtri_is_tail(p[i]) ? 1 : 0;
  }
  return nt;
}

#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx512f,avx512vl"))) size_t gather_tails_avx512(const double* p,
                                                                         size_t m,
                                                                         double* tail_p,
                                                                         uint32_t* tail_at) {
  const __m512d half = _mm512_set1_pd(0.5), split = _mm512_set1_pd(-math::kNdtriSplit1);
  __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i eight = _mm256_set1_epi32(8);
  size_t nt = 0, i = 0;
  for (; i + 8 <= m; i += 8) {
    const __m512d v = _mm512_loadu_pd(p + i);
    const __mmask8 tail = _mm512_cmp_pd_mask(_mm512_sub_pd(v, half), split, _CMP_LT_OQ);
    _mm512_storeu_pd(tail_p + nt, _mm512_maskz_compress_pd(tail, v));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(tail_at + nt),
                        _mm256_maskz_compress_epi32(tail, index));
    nt += static_cast<size_t>(__builtin_popcount(tail));
    index = _mm256_add_epi32(index, eight);
  }
  return gather_tails_scalar(p, i, m, tail_p, tail_at, nt);
}

// For each 4-bit mask, the 32-bit lanes that move the chosen doubles to the front.
alignas(32) constexpr int32_t kCompress4x64[16][8] = {
    {0, 1, 2, 3, 4, 5, 6, 7}, {0, 1, 2, 3, 4, 5, 6, 7}, {2, 3, 0, 1, 4, 5, 6, 7},
    {0, 1, 2, 3, 4, 5, 6, 7}, {4, 5, 0, 1, 2, 3, 6, 7}, {0, 1, 4, 5, 2, 3, 6, 7},
    {2, 3, 4, 5, 0, 1, 6, 7}, {0, 1, 2, 3, 4, 5, 6, 7}, {6, 7, 0, 1, 2, 3, 4, 5},
    {0, 1, 6, 7, 2, 3, 4, 5}, {2, 3, 6, 7, 0, 1, 4, 5}, {0, 1, 2, 3, 6, 7, 4, 5},
    {4, 5, 6, 7, 0, 1, 2, 3}, {0, 1, 4, 5, 6, 7, 2, 3}, {2, 3, 4, 5, 6, 7, 0, 1},
    {0, 1, 2, 3, 4, 5, 6, 7}};

__attribute__((target("avx2"))) size_t gather_tails_avx2(const double* p, size_t m,
                                                         double* tail_p, uint32_t* tail_at) {
  const __m256d half = _mm256_set1_pd(0.5), split = _mm256_set1_pd(-math::kNdtriSplit1);
  size_t nt = 0, i = 0;
  for (; i + 4 <= m; i += 4) {
    const __m256d v = _mm256_loadu_pd(p + i);
    const int tail = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_sub_pd(v, half), split, _CMP_LT_OQ));
    const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress4x64[tail]));
    _mm256_storeu_pd(tail_p + nt, _mm256_castsi256_pd(
                                      _mm256_permutevar8x32_epi32(_mm256_castpd_si256(v), perm)));
    // Indices: the even 32-bit lanes of the same permutation, halved, are the lanes chosen.
    const __m256i lanes = _mm256_srli_epi32(perm, 1);
    const __m256i picked = _mm256_add_epi32(lanes, _mm256_set1_epi32(static_cast<int>(i)));
    const __m256i even = _mm256_permutevar8x32_epi32(picked, _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(tail_at + nt), _mm256_castsi256_si128(even));
    nt += static_cast<size_t>(__builtin_popcount(tail));
  }
  return gather_tails_scalar(p, i, m, tail_p, tail_at, nt);
}
#endif

CompressIsa detect_compress_isa() {
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
    return CompressIsa::kAvx512;
  if (__builtin_cpu_supports("avx2")) return CompressIsa::kAvx2;
#endif
  return CompressIsa::kScalar;
}
const CompressIsa kCompressIsa = detect_compress_isa();

SC_ALWAYS_INLINE size_t gather_tails_isa(CompressIsa isa, const double* p, size_t m,
                                         double* tail_p, uint32_t* tail_at) {
#if defined(__GNUC__) && defined(__x86_64__)
  if (isa == CompressIsa::kAvx512) return gather_tails_avx512(p, m, tail_p, tail_at);
  if (isa == CompressIsa::kAvx2) return gather_tails_avx2(p, m, tail_p, tail_at);
#endif
  return gather_tails_scalar(p, 0, m, tail_p, tail_at, 0);
}

SC_ALWAYS_INLINE size_t gather_tails(const double* p, size_t m, double* tail_p,
                                     uint32_t* tail_at) {
  return gather_tails_isa(kCompressIsa, p, m, tail_p, tail_at);
}

// p[k] <- ndtri(p[k]) for tail probabilities p < 0.075: the near-tail rational
// for every lane, vectorised; the far tail (p < 1.4e-11, probability 2.8e-11
// per draw) is patched afterwards in scalar code instead of costing every lane.
SC_ALWAYS_INLINE void tail_z_lower(double* p, size_t nt) {
  double r[kChunk];
  int any_far = 0;
  for (size_t k = 0; k < nt; ++k) {
    r[k] = std::sqrt(-math::log_positive_normal(p[k]));
    any_far |= r[k] > math::kNdtriSplit2 ? 1 : 0;
    p[k] = -math::ndtri_tail_near_f64(r[k]);
  }
  if (any_far)
    for (size_t k = 0; k < nt; ++k)
      if (r[k] > math::kNdtriSplit2) p[k] = -math::ndtri_tail_far_f64(r[k]);
}

// z = ndtri(p) for p in (0, 1/2]: a branch-free central pass over all lanes,
// then the tail lanes (~15%) gathered, evaluated together and scattered back.
SC_ALWAYS_INLINE void ndtri_lower_chunk_f64(const double* p, double* z, size_t m) {
  double tail_p[kChunk + kCompressSlack];
  uint32_t tail_at[kChunk + kCompressSlack];
  for (size_t i = 0; i < m; ++i)
    z[i] = math::ndtri_central_f64(std::max(p[i] - 0.5, -math::kNdtriSplit1));
  const size_t nt = gather_tails(p, m, tail_p, tail_at);
  tail_z_lower(tail_p, nt);
  for (size_t k = 0; k < nt; ++k) z[tail_at[k]] = tail_p[k];
}

SC_CLONES void raw_range(RandomStream rs, uint64_t offset, uint32_t* out, size_t n) {
  fill_words(rs, offset, n, out);
}

SC_CLONES void uniform_f64_range(RandomStream rs, uint64_t offset, double* out, size_t n,
                                 double low, double width) {
  alignas(64) uint32_t words[2 * kChunk];
  for (size_t c = 0; c < n; c += kChunk) {
    const size_t m = std::min(kChunk, n - c);
    fill_words(rs, (offset + c) * 2, 2 * m, words);
    for (size_t i = 0; i < m; ++i)
      out[c + i] = low + width * uniform01_f64(words_to_u64(words[2 * i], words[2 * i + 1]));
  }
}

SC_CLONES void uniform_f32_range(RandomStream rs, uint64_t offset, float* out, size_t n,
                                 float low, float width) {
  alignas(64) uint32_t words[kChunk];
  for (size_t c = 0; c < n; c += kChunk) {
    const size_t m = std::min(kChunk, n - c);
    fill_words(rs, offset + c, m, words);
    for (size_t i = 0; i < m; ++i) out[c + i] = low + width * uniform01_f32(words[i]);
  }
}

SC_CLONES void normal_f64_range(RandomStream rs, uint64_t offset, double* out, size_t n,
                                double loc, double scale) {
  alignas(64) uint32_t words[2 * kChunk];
  alignas(64) double p[kChunk];
  alignas(64) double z[kChunk];
  for (size_t c = 0; c < n; c += kChunk) {
    const size_t m = std::min(kChunk, n - c);
    fill_words(rs, (offset + c) * 2, 2 * m, words);
    for (size_t i = 0; i < m; ++i)
      p[i] = normal_lower_p_f64(words_to_u64(words[2 * i], words[2 * i + 1]));
    ndtri_lower_chunk_f64(p, z, m);
    for (size_t i = 0; i < m; ++i) {
      const bool negative = normal_sign_f64(words_to_u64(words[2 * i], words[2 * i + 1]));
      out[c + i] = loc + scale * (negative ? -z[i] : z[i]);
    }
  }
}

SC_CLONES void normal_f32_range(RandomStream rs, uint64_t offset, float* out, size_t n,
                                float loc, float scale) {
  alignas(64) uint32_t words[kChunk];
  alignas(64) double p[kChunk];
  alignas(64) double z[kChunk];
  for (size_t c = 0; c < n; c += kChunk) {
    const size_t m = std::min(kChunk, n - c);
    fill_words(rs, offset + c, m, words);
    for (size_t i = 0; i < m; ++i) p[i] = normal_lower_p_f32(words[i]);
    ndtri_lower_chunk_f64(p, z, m);
    for (size_t i = 0; i < m; ++i) {
      const float zf = static_cast<float>(z[i]);
      out[c + i] = loc + scale * (normal_sign_f32(words[i]) ? -zf : zf);
    }
  }
}

template <class T>
SC_CLONES void integers_range(RandomStream rs, uint64_t offset, T* out, size_t n, int64_t low,
                              uint64_t range) {
  alignas(64) uint32_t words[2 * kChunk];
  for (size_t c = 0; c < n; c += kChunk) {
    const size_t m = std::min(kChunk, n - c);
    fill_words(rs, (offset + c) * 2, 2 * m, words);
    for (size_t i = 0; i < m; ++i) {
      const uint64_t v = static_cast<uint64_t>(low) +
                         bounded_u64(words_to_u64(words[2 * i], words[2 * i + 1]), range);
      out[c + i] = static_cast<T>(static_cast<int64_t>(v));
    }
  }
}

SC_CLONES void ndtri_lower_range(const double* p, double* out, size_t n) {
  for (size_t c = 0; c < n; c += kChunk)
    ndtri_lower_chunk_f64(p + c, out + c, std::min(kChunk, n - c));
}

}  // namespace

namespace detail {
CompressIsa best_compress_isa() { return kCompressIsa; }

size_t gather_tails_with(CompressIsa isa, const double* p, size_t m, double* tail_p,
                         uint32_t* tail_at) {
  if (static_cast<int>(isa) > static_cast<int>(kCompressIsa))
    throw std::invalid_argument("this CPU does not support the requested instruction set");
  size_t nt = 0;
  for (size_t c = 0; c < m; c += kChunk) {
    double chunk_p[kChunk + kCompressSlack];
    uint32_t chunk_at[kChunk + kCompressSlack];
    const size_t got = gather_tails_isa(isa, p + c, std::min(kChunk, m - c), chunk_p, chunk_at);
    for (size_t k = 0; k < got; ++k) {
      tail_p[nt + k] = chunk_p[k];
      tail_at[nt + k] = static_cast<uint32_t>(c) + chunk_at[k];
    }
    nt += got;
  }
  return nt;
}
}  // namespace detail

void normal_f64_fill(RandomStream rs, uint64_t offset, double* out, size_t n) {
  normal_f64_range(rs, offset, out, n, 0.0, 1.0);
}

void philox4x32_10_blocks(const uint32_t* counters, PhiloxKey key, uint32_t* out,
                          size_t n_blocks) {
  for (size_t b = 0; b < n_blocks; ++b) {
    uint32_t c0 = counters[4 * b], c1 = counters[4 * b + 1], c2 = counters[4 * b + 2],
             c3 = counters[4 * b + 3];
    rng::philox4x32_10(c0, c1, c2, c3, key.k0, key.k1);
    out[4 * b] = c0;
    out[4 * b + 1] = c1;
    out[4 * b + 2] = c2;
    out[4 * b + 3] = c3;
  }
}

void random_raw(RandomStream rs, uint64_t offset, uint32_t* out, size_t n, int num_threads) {
  parallel_for(n, num_threads, 2 * kMinPerThread,
               [&](size_t b, size_t e) { raw_range(rs, offset + b, out + b, e - b); });
}

template <class T>
void random_uniform(RandomStream rs, uint64_t offset, T* out, size_t n, double low, double width,
                    int num_threads) {
  parallel_for(n, num_threads, kMinPerThread, [&](size_t b, size_t e) {
    if constexpr (std::is_same_v<T, double>)
      uniform_f64_range(rs, offset + b, out + b, e - b, low, width);
    else
      uniform_f32_range(rs, offset + b, out + b, e - b, static_cast<float>(low),
                        static_cast<float>(width));
  });
}
template void random_uniform<double>(RandomStream, uint64_t, double*, size_t, double, double, int);
template void random_uniform<float>(RandomStream, uint64_t, float*, size_t, double, double, int);

template <class T>
void random_normal(RandomStream rs, uint64_t offset, T* out, size_t n, double loc, double scale,
                   int num_threads) {
  parallel_for(n, num_threads, kMinPerThread, [&](size_t b, size_t e) {
    if constexpr (std::is_same_v<T, double>)
      normal_f64_range(rs, offset + b, out + b, e - b, loc, scale);
    else
      normal_f32_range(rs, offset + b, out + b, e - b, static_cast<float>(loc),
                       static_cast<float>(scale));
  });
}
template void random_normal<double>(RandomStream, uint64_t, double*, size_t, double, double, int);
template void random_normal<float>(RandomStream, uint64_t, float*, size_t, double, double, int);

template <class T>
void random_integers(RandomStream rs, uint64_t offset, T* out, size_t n, int64_t low,
                     uint64_t range, int num_threads) {
  parallel_for(n, num_threads, kMinPerThread, [&](size_t b, size_t e) {
    integers_range<T>(rs, offset + b, out + b, e - b, low, range);
  });
}
template void random_integers<int64_t>(RandomStream, uint64_t, int64_t*, size_t, int64_t,
                                       uint64_t, int);
template void random_integers<int32_t>(RandomStream, uint64_t, int32_t*, size_t, int64_t,
                                       uint64_t, int);

void ndtri_lower(const double* p, double* out, size_t n, int num_threads) {
  parallel_for(n, num_threads, kMinPerThread,
               [&](size_t b, size_t e) { ndtri_lower_range(p + b, out + b, e - b); });
}

}  // namespace synthcore
