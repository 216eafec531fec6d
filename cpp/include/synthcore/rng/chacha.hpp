// ChaCha20 block function (Bernstein 2008; RFC 8439 section 2.3), the generator
// behind every differential-privacy release. Shared by C++ and CUDA, mirrored by
// python/synthcore/_reference/secure_random.py. synthcore uses the original
// 64-bit-counter layout as a counter-based generator: state words 12-13 are the
// block index, 14-15 the stream (the nonce); word w of a stream is output word
// w % 16 of block w / 16.
#pragma once
#include <cstdint>

#include "synthcore/hd.hpp"

namespace synthcore::rng {

constexpr uint32_t kChachaConstants[4] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u};

SC_HD uint32_t rotl32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

SC_HD void chacha_quarter_round(uint32_t& a, uint32_t& b, uint32_t& c, uint32_t& d) {
  a += b; d ^= a; d = rotl32(d, 16);
  c += d; b ^= c; b = rotl32(b, 12);
  a += b; d ^= a; d = rotl32(d, 8);
  c += d; b ^= c; b = rotl32(b, 7);
}

// out = ChaCha20(key, state words 12..15) (20 rounds, then the input added back).
SC_HD void chacha20_block(const uint32_t key[8], uint32_t w12, uint32_t w13, uint32_t w14,
                          uint32_t w15, uint32_t out[16]) {
  uint32_t x[16] = {kChachaConstants[0], kChachaConstants[1], kChachaConstants[2],
                    kChachaConstants[3], key[0], key[1], key[2], key[3], key[4], key[5], key[6],
                    key[7], w12, w13, w14, w15};
  uint32_t s[16];
  for (int i = 0; i < 16; ++i) s[i] = x[i];
  for (int round = 0; round < 10; ++round) {  // 10 double rounds
    chacha_quarter_round(x[0], x[4], x[8], x[12]);
    chacha_quarter_round(x[1], x[5], x[9], x[13]);
    chacha_quarter_round(x[2], x[6], x[10], x[14]);
    chacha_quarter_round(x[3], x[7], x[11], x[15]);
    chacha_quarter_round(x[0], x[5], x[10], x[15]);
    chacha_quarter_round(x[1], x[6], x[11], x[12]);
    chacha_quarter_round(x[2], x[7], x[8], x[13]);
    chacha_quarter_round(x[3], x[4], x[9], x[14]);
  }
  for (int i = 0; i < 16; ++i) out[i] = x[i] + s[i];
}

SC_HD void chacha_stream_block(const uint32_t key[8], uint64_t stream, uint64_t block,
                               uint32_t out[16]) {
  chacha20_block(key, static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                 static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32), out);
}

}  // namespace synthcore::rng
