// CPU ChaCha20 keystream as counter-based words. Sixteen blocks are computed side
// by side, one state word per array of lanes, so that the compiler keeps each
// state word in a vector register (AVX-512: one register, AVX2: two) and the
// rotations become vector shifts; the clones pick the best width at load time.
#include "synthcore/secure_random.hpp"
#include "synthcore/dispatch.hpp"

#include <algorithm>

#include "synthcore/parallel.hpp"
#include "synthcore/rng/chacha.hpp"


namespace synthcore {
namespace {

constexpr int kLanes = 16;
constexpr size_t kMinPerThread = 1 << 16;

inline __attribute__((always_inline)) void qr(uint32_t* a, uint32_t* b, uint32_t* c,
                                              uint32_t* d) {
  for (int l = 0; l < kLanes; ++l) {
    a[l] += b[l]; d[l] ^= a[l]; d[l] = rng::rotl32(d[l], 16);
    c[l] += d[l]; b[l] ^= c[l]; b[l] = rng::rotl32(b[l], 12);
    a[l] += b[l]; d[l] ^= a[l]; d[l] = rng::rotl32(d[l], 8);
    c[l] += d[l]; b[l] ^= c[l]; b[l] = rng::rotl32(b[l], 7);
  }
}

// Blocks first_block .. first_block + 15 of the stream, written as 256 words.
inline __attribute__((always_inline)) void chacha_lanes(const ChachaKey& key, uint64_t stream,
                                                        uint64_t first_block, uint32_t* out) {
  alignas(64) uint32_t x[16][kLanes];
  alignas(64) uint32_t s[16][kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const uint64_t block = first_block + static_cast<uint64_t>(l);
    for (int i = 0; i < 4; ++i) s[i][l] = rng::kChachaConstants[i];
    for (int i = 0; i < 8; ++i) s[4 + i][l] = key.words[i];
    s[12][l] = static_cast<uint32_t>(block);
    s[13][l] = static_cast<uint32_t>(block >> 32);
    s[14][l] = static_cast<uint32_t>(stream);
    s[15][l] = static_cast<uint32_t>(stream >> 32);
  }
  for (int i = 0; i < 16; ++i)
    for (int l = 0; l < kLanes; ++l) x[i][l] = s[i][l];
  for (int round = 0; round < 10; ++round) {
    qr(x[0], x[4], x[8], x[12]);
    qr(x[1], x[5], x[9], x[13]);
    qr(x[2], x[6], x[10], x[14]);
    qr(x[3], x[7], x[11], x[15]);
    qr(x[0], x[5], x[10], x[15]);
    qr(x[1], x[6], x[11], x[12]);
    qr(x[2], x[7], x[8], x[13]);
    qr(x[3], x[4], x[9], x[14]);
  }
  for (int l = 0; l < kLanes; ++l)
    for (int i = 0; i < 16; ++i) out[16 * l + i] = x[i][l] + s[i][l];
}

SC_CLONES void raw_range(const ChachaKey& key, uint64_t stream, uint64_t first, uint32_t* out,
                         size_t count) {
  uint32_t block_words[16 * kLanes];
  size_t done = 0;
  while (done < count) {
    const uint64_t w = first + done;
    const uint64_t block = w / 16;
    const size_t skip = static_cast<size_t>(w % 16);
    if (skip == 0 && count - done >= 16 * static_cast<size_t>(kLanes)) {
      chacha_lanes(key, stream, block, out + done);
      done += 16 * kLanes;
      continue;
    }
    rng::chacha_stream_block(key.words, stream, block, block_words);
    const size_t take = std::min<size_t>(16 - skip, count - done);
    for (size_t j = 0; j < take; ++j) out[done + j] = block_words[skip + j];
    done += take;
  }
}

}  // namespace

void chacha20_blocks(const ChachaKey& key, const uint32_t* counters, uint32_t* out,
                     size_t n_blocks) {
  for (size_t b = 0; b < n_blocks; ++b)
    rng::chacha20_block(key.words, counters[4 * b], counters[4 * b + 1], counters[4 * b + 2],
                        counters[4 * b + 3], out + 16 * b);
}

void secure_random_fill(const ChachaKey& key, uint64_t stream, uint64_t first, uint32_t* out,
                        size_t count) {
  raw_range(key, stream, first, out, count);
}

void secure_random_raw(const ChachaKey& key, uint64_t stream, uint64_t offset, uint32_t* out,
                       size_t n, int num_threads) {
  parallel_for(n, num_threads, kMinPerThread,
               [&](size_t b, size_t e) { raw_range(key, stream, offset + b, out + b, e - b); });
}

}  // namespace synthcore
