// The ChaCha20 word stream for differential privacy (rng/chacha.hpp): CPU entry
// points. Word w of (key, stream) depends only on (key, stream, w).
#pragma once
#include <cstddef>
#include <cstdint>

namespace synthcore {

struct ChachaKey {
  uint32_t words[8];
};

void chacha20_blocks(const ChachaKey& key, const uint32_t* counters, uint32_t* out,
                     size_t n_blocks);
void secure_random_raw(const ChachaKey& key, uint64_t stream, uint64_t offset, uint32_t* out,
                       size_t n, int num_threads);

}  // namespace synthcore

namespace synthcore {
// Single-threaded fill of words [first, first + count), for other kernels' chunks.
void secure_random_fill(const ChachaKey& key, uint64_t stream, uint64_t first, uint32_t* out,
                        size_t count);
}  // namespace synthcore
