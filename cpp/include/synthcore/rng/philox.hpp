// Philox4x32-10 (Salmon et al., SC'11; Random123), shared by C++ and CUDA and
// mirrored bit for bit by python/synthcore/_reference/philox.py.
#pragma once
#include <cstdint>

#include "synthcore/hd.hpp"

namespace synthcore::rng {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1
constexpr int kPhiloxRounds = 10;

struct PhiloxKey {
  uint32_t k0, k1;
};

// One block: counter (c0..c3) is replaced by the four output words.
SC_HD void philox4x32_10(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3,
                         uint32_t k0, uint32_t k1) {
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int round = 0; round < kPhiloxRounds; ++round) {
    if (round > 0) {  // the key schedule bumps before rounds 2..10
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
  }
}

// synthcore's counter layout. Word w of the stream (key, stream) is output word
// w % 4 of the block with counter (lo(w/4), hi(w/4), lo(stream), hi(stream)).
// The value of a word depends on nothing else: not on chunking, threads or device.
SC_HD void philox_stream_block(PhiloxKey key, uint64_t stream, uint64_t block,
                               uint32_t out[4]) {
  uint32_t c0 = static_cast<uint32_t>(block), c1 = static_cast<uint32_t>(block >> 32);
  uint32_t c2 = static_cast<uint32_t>(stream), c3 = static_cast<uint32_t>(stream >> 32);
  philox4x32_10(c0, c1, c2, c3, key.k0, key.k1);
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

}  // namespace synthcore::rng
