// Row compaction (synthcore/compact.hpp). Rows are cut into pieces of kPiece; the
// mask of a piece (64 KiB) stays in L2 while every column of the piece is gathered.
//   out of place: count each piece's kept rows, prefix sums, then each piece gathers
//     straight to its final offset (one pass over the columns, all threads);
//   in place:     each piece compacts itself to its own start (writes never pass the
//     reads of the same piece), then the pieces are moved down to their final
//     offsets in row order; a piece's destination never overlaps a piece not yet
//     moved, so each column's moves run in order, columns spread over the threads.
// The gather is branchless (write, then advance by the mask bit) up to the piece's
// last kept row, so it never writes past the piece's share of the output.
#include "synthcore/compact.hpp"

#include <algorithm>
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif
#include <cstring>
#include <stdexcept>
#include <vector>

#include "synthcore/dispatch.hpp"
#include "synthcore/parallel.hpp"

namespace synthcore {
namespace compact {
namespace {

constexpr size_t kPiece = 1 << 16;

size_t count_range(const uint8_t* m, size_t r0, size_t r1) {
  size_t k = 0;
  for (size_t i = r0; i < r1; ++i) k += m[i] != 0;
  return k;
}

// rows r0 .. `last` (inclusive; the last kept row of the range) of `in` to out[0 ..)
template <class T>
void gather(const uint8_t* m, size_t r0, size_t last, const T* in, T* out) {
  size_t k = 0;
  for (size_t i = r0; i <= last; ++i) {
    out[k] = in[i];
    k += m[i] != 0;
  }
}

void gather_column(int itemsize, const uint8_t* m, size_t r0, size_t last, const void* in,
                   void* out) {
  switch (itemsize) {
    case 8: gather(m, r0, last, static_cast<const uint64_t*>(in), static_cast<uint64_t*>(out)); break;
    case 4: gather(m, r0, last, static_cast<const uint32_t*>(in), static_cast<uint32_t*>(out)); break;
    case 2: gather(m, r0, last, static_cast<const uint16_t*>(in), static_cast<uint16_t*>(out)); break;
    case 1: gather(m, r0, last, static_cast<const uint8_t*>(in), static_cast<uint8_t*>(out)); break;
    default: throw std::invalid_argument("compact: itemsize must be 1, 2, 4 or 8");
  }
}

// the last row of [r0, r1) with a non-zero mask byte, or r1 when there is none
size_t last_kept(const uint8_t* m, size_t r0, size_t r1) {
  for (size_t i = r1; i > r0; --i)
    if (m[i - 1]) return i - 1;
  return r1;
}

// ---- one block, one thread (compact_block) -------------------------------------------
// AVX-512: 64 mask bytes become a 64-bit mask; each 8 (16) of its bits compress a vector
// of 8-byte (4-byte) values in a register (the memory form of compress is microcoded
// on Zen 4) and a masked store writes exactly the kept lanes. Runs of 64 rows all kept
// or all rejected take a copy or nothing.
#if defined(__GNUC__) && defined(__x86_64__)
#define SC_COMPACT_AVX512 1
// The first c lanes of v to out; `room` values from out on belong to this block. A
// whole-vector store is ~3x faster than a masked one on Zen 4; its extra lanes land
// where this block's next vector goes, so only the last vectors need the mask.
__attribute__((target("avx512f"))) SC_ALWAYS_INLINE void store8(void* out, unsigned c,
                                                                  size_t room, __m512i v) {
  if (room >= 8)
    _mm512_storeu_si512(out, v);
  else
    _mm512_mask_storeu_epi64(out, static_cast<__mmask8>((1u << c) - 1), v);
}
__attribute__((target("avx512f"))) SC_ALWAYS_INLINE void store4(void* out, unsigned c,
                                                                  size_t room, __m512i v) {
  if (room >= 16)
    _mm512_storeu_si512(out, v);
  else
    _mm512_mask_storeu_epi32(out, static_cast<__mmask16>((1u << c) - 1), v);
}

// The lanes of v whose bit in `bits` is set (8 of them for 8-byte values, 16 for
// 4-byte ones), in order, to out; returns how many.
__attribute__((target("avx512f"))) SC_ALWAYS_INLINE unsigned compress_store(
    uint64_t* out, uint64_t bits, size_t room, __m512i v) {
  const __mmask8 b = static_cast<__mmask8>(bits);
  const unsigned c = static_cast<unsigned>(__builtin_popcount(b));
  store8(out, c, room, _mm512_maskz_compress_epi64(b, v));
  return c;
}
__attribute__((target("avx512f"))) SC_ALWAYS_INLINE unsigned compress_store(
    uint32_t* out, uint64_t bits, size_t room, __m512i v) {
  const __mmask16 b = static_cast<__mmask16>(bits);
  const unsigned c = static_cast<unsigned>(__builtin_popcount(b));
  store4(out, c, room, _mm512_maskz_compress_epi32(b, v));
  return c;
}

// T: uint64_t or uint32_t
template <class T>
__attribute__((target("avx512f,avx512bw"))) size_t compact_avx512(const uint8_t* mk, size_t m,
                                                                    size_t kept, const T* in,
                                                                    T* out) {
  constexpr int kLanes = 64 / sizeof(T);
  size_t k = 0, i = 0;
  for (; i + 64 <= m; i += 64) {
    const __m512i mv = _mm512_loadu_si512(mk + i);
    uint64_t bits = _mm512_test_epi8_mask(mv, mv);
    if (bits == 0) continue;
    if (bits == ~uint64_t{0}) {
      std::memcpy(out + k, in + i, 64 * sizeof(T));
      k += 64;
      continue;
    }
    for (int j = 0; j < 64; j += kLanes, bits >>= kLanes)
      k += compress_store(out + k, bits, kept - k, _mm512_loadu_si512(in + i + j));
  }
  for (; i < m; ++i)
    if (mk[i]) out[k++] = in[i];
  return k;
}

__attribute__((target("avx512f,avx512bw"))) size_t positions_avx512(const uint8_t* mk, size_t m,
                                                                      size_t kept, int64_t first,
                                                                      int64_t* out) {
  size_t k = 0, i = 0;
  const __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  for (; i + 64 <= m; i += 64) {
    const __m512i mv = _mm512_loadu_si512(mk + i);
    uint64_t bits = _mm512_test_epi8_mask(mv, mv);
    if (bits == 0) continue;
    for (int j = 0; j < 64; j += 8, bits >>= 8)
      k += compress_store(reinterpret_cast<uint64_t*>(out + k), bits, kept - k,
                          _mm512_add_epi64(lanes, _mm512_set1_epi64(
                                                      first + static_cast<int64_t>(i) + j)));
  }
  for (; i < m; ++i)
    if (mk[i]) out[k++] = first + static_cast<int64_t>(i);
  return k;
}

bool detect_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}
const bool kAvx512 = detect_avx512();
#endif

}  // namespace

bool compact_block_has_avx512() {
#ifdef SC_COMPACT_AVX512
  return kAvx512;
#else
  return false;
#endif
}

size_t compact_block_with(bool avx512, const uint8_t* mask, size_t m, size_t kept,
                          const void* in, void* out, int itemsize) {
#ifdef SC_COMPACT_AVX512
  if (avx512 && kAvx512 && itemsize == 8)
    return compact_avx512(mask, m, kept, static_cast<const uint64_t*>(in),
                          static_cast<uint64_t*>(out));
  if (avx512 && kAvx512 && itemsize == 4)
    return compact_avx512(mask, m, kept, static_cast<const uint32_t*>(in),
                          static_cast<uint32_t*>(out));
#endif
  (void)avx512;
  (void)kept;
  const size_t last = last_kept(mask, 0, m);
  if (last == m) return 0;
  gather_column(itemsize, mask, 0, last, in, out);
  return count_range(mask, 0, last + 1);
}

size_t compact_block_positions_with(bool avx512, const uint8_t* mask, size_t m, size_t kept,
                                    int64_t first, int64_t* out) {
#ifdef SC_COMPACT_AVX512
  if (avx512 && kAvx512) return positions_avx512(mask, m, kept, first, out);
#endif
  (void)avx512;
  (void)kept;
  size_t k = 0;
  for (size_t i = 0; i < m; ++i)
    if (mask[i]) out[k++] = first + static_cast<int64_t>(i);
  return k;
}

size_t compact_block(const uint8_t* mask, size_t m, size_t kept, const void* in, void* out,
                     int itemsize) {
  return compact_block_with(true, mask, m, kept, in, out, itemsize);
}

size_t compact_block_positions(const uint8_t* mask, size_t m, size_t kept, int64_t first,
                               int64_t* out) {
  return compact_block_positions_with(true, mask, m, kept, first, out);
}

void copy_streaming(void* dst, const void* src, size_t bytes) {
#if defined(__x86_64__)
  char* d = static_cast<char*>(dst);
  const char* from = static_cast<const char*>(src);
  const size_t head = std::min(bytes, (16 - reinterpret_cast<uintptr_t>(d) % 16) % 16);
  std::memcpy(d, from, head);
  size_t i = head;
  for (; i + 64 <= bytes; i += 64) {  // SSE2: every x86-64 CPU has it
    const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + i));
    const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + i + 16));
    const __m128i v2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + i + 32));
    const __m128i v3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + i + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i), v0);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 16), v1);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 32), v2);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 48), v3);
  }
  for (; i + 16 <= bytes; i += 16)
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + i)));
  std::memcpy(d + i, from + i, bytes - i);
#else
  std::memcpy(dst, src, bytes);
#endif
}

void streaming_fence() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}

size_t count_mask(const uint8_t* mask, size_t n, int num_threads) {
  const size_t pieces = (n + kPiece - 1) / kPiece;
  std::vector<size_t> counts(pieces, 0);
  parallel_for(pieces, num_threads, 4, [&](size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; ++p)
      counts[p] = count_range(mask, p * kPiece, std::min(n, (p + 1) * kPiece));
  });
  size_t total = 0;
  for (size_t c : counts) total += c;
  return total;
}

size_t compact_rows(const uint8_t* mask, size_t n, size_t limit, const CompactColumns& cols,
                    int64_t* positions, int64_t base, int num_threads) {
  const size_t pieces = (n + kPiece - 1) / kPiece;
  std::vector<size_t> counts(pieces, 0), offsets(pieces + 1, 0);
  std::vector<char> in_place(cols.n_columns);
  bool any_in_place = false;
  for (int k = 0; k < cols.n_columns; ++k) {
    in_place[k] = cols.in[k] == cols.out[k];
    any_in_place |= in_place[k] != 0;
    const int s = cols.itemsize[k];
    if (s != 1 && s != 2 && s != 4 && s != 8)
      throw std::invalid_argument("compact: itemsize must be 1, 2, 4 or 8");
  }
  auto piece_rows = [&](size_t p, size_t& r0, size_t& r1) {
    r0 = p * kPiece;
    r1 = std::min(n, r0 + kPiece);
  };
  std::vector<int> which;  // the in-place columns
  for (int k = 0; k < cols.n_columns; ++k)
    if (in_place[k]) which.push_back(k);
  // in place, with a column or more per thread: each column compacted in one
  // sequential pass by one thread (one read and one write of every value)
  const bool by_column = any_in_place && which.size() >= static_cast<size_t>(std::max(1, num_threads));
  // 1. counts per piece; pieces compacted in place to their own start meanwhile
  parallel_for(pieces, num_threads, 4, [&](size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; ++p) {
      size_t r0, r1;
      piece_rows(p, r0, r1);
      counts[p] = count_range(mask, r0, r1);
      if (!any_in_place || by_column || counts[p] == 0) continue;
      const size_t last = last_kept(mask, r0, r1);
      for (int k = 0; k < cols.n_columns; ++k) {
        if (!in_place[k]) continue;
        const int s = cols.itemsize[k];
        char* data = static_cast<char*>(cols.out[k]);
        gather_column(s, mask, r0, last, data, data + r0 * s);
      }
    }
  });
  size_t total = 0;
  for (size_t p = 0; p < pieces; ++p) {
    offsets[p] = std::min(total, limit);
    total += counts[p];
  }
  offsets[pieces] = std::min(total, limit);
  const size_t kept = offsets[pieces];
  // 2. out-of-place columns and positions: each piece gathers to its final offset
  bool any_out = positions != nullptr;
  for (int k = 0; k < cols.n_columns; ++k) any_out |= !in_place[k];
  if (any_out && kept > 0) {
    parallel_for(pieces, num_threads, 4, [&](size_t p0, size_t p1) {
      for (size_t p = p0; p < p1; ++p) {
        const size_t take = offsets[p + 1] - offsets[p];
        if (take == 0) continue;
        size_t r0, r1;
        piece_rows(p, r0, r1);
        // the row of the take-th kept row of the piece bounds the gather (limit)
        size_t last = r0, seen = 0;
        if (take == counts[p]) {
          last = last_kept(mask, r0, r1);
        } else {
          for (size_t i = r0; i < r1; ++i)
            if (mask[i] && ++seen == take) { last = i; break; }
        }
        // rows r0 .. last hold exactly `take` kept rows
        for (int k = 0; k < cols.n_columns; ++k) {
          if (in_place[k]) continue;
          const int s = cols.itemsize[k];
          compact_block(mask + r0, last + 1 - r0, take,
                        static_cast<const char*>(cols.in[k]) + r0 * s,
                        static_cast<char*>(cols.out[k]) + offsets[p] * s, s);
        }
        if (positions)
          compact_block_positions(mask + r0, last + 1 - r0, take,
                                  base + static_cast<int64_t>(r0), positions + offsets[p]);
      }
    });
  }
  if (by_column && kept > 0) {
    // the row of the kept-th kept row bounds the pass; rows before the first
    // rejected one stay where they are
    size_t p = 0;
    while (offsets[p + 1] < kept) ++p;
    size_t r0, r1, last = 0, seen = offsets[p];
    piece_rows(p, r0, r1);
    for (size_t i = r0; i < r1; ++i)
      if (mask[i] && ++seen == kept) { last = i; break; }
    size_t first_gap = 0;
    while (first_gap <= last && mask[first_gap]) ++first_gap;
    if (first_gap <= last) {
      parallel_for(which.size(), num_threads, 1, [&](size_t c0, size_t c1) {
        for (size_t c = c0; c < c1; ++c) {
          const int k = which[c];
          const int s = cols.itemsize[k];
          char* data = static_cast<char*>(cols.out[k]);
          gather_column(s, mask, first_gap, last, data, data + first_gap * s);
        }
      });
    }
    return kept;
  }
  // 3. in-place columns: pieces moved down to their offsets, in row order per column
  if (any_in_place && kept > 0) {
    parallel_for(which.size(), num_threads, 1, [&](size_t c0, size_t c1) {
      for (size_t c = c0; c < c1; ++c) {
        const int k = which[c];
        const int s = cols.itemsize[k];
        char* data = static_cast<char*>(cols.out[k]);
        for (size_t p = 1; p < pieces; ++p) {
          const size_t take = offsets[p + 1] - offsets[p];
          if (take != 0 && offsets[p] != p * kPiece)
            std::memmove(data + offsets[p] * s, data + p * kPiece * s, take * s);
        }
      }
    });
  }
  return kept;
}

}  // namespace compact
}  // namespace synthcore
