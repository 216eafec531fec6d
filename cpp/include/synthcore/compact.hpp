// Row compaction by a mask: the rows i with mask[i] != 0 of several columns, in row
// order, written contiguously. Used by Rules.filter (a gather into new columns) and by
// sampling under rules (the candidates' own buffers compacted in place). The NumPy
// oracle is python/synthcore/_reference/compact.py (a boolean index).
#pragma once
#include <cstddef>
#include <cstdint>

namespace synthcore {
namespace compact {

struct CompactColumns {
  const void* const* in;   // n rows each
  void* const* out;        // room for the kept rows; out[k] == in[k] compacts in place
  const int* itemsize;     // 1, 2, 4 or 8 bytes per value
  int n_columns;
};

// Keeps the first `limit` rows (in row order) whose mask byte is non-zero and returns
// how many that is. Column k's kept rows go to out[k][0 .. kept); when `positions` is
// not null, positions[j] = base + (row of the j-th kept row). The result does not
// depend on num_threads. Columns where out == in are compacted in place; no column may
// otherwise overlap another.
size_t compact_rows(const uint8_t* mask, size_t n, size_t limit, const CompactColumns& cols,
                    int64_t* positions, int64_t base, int num_threads);

// One block of rows, one thread: the rows i < m with mask[i] != 0 (`kept` of them,
// counted by the caller) of a column of `itemsize` (1, 2, 4 or 8) bytes, in order, to
// out[0 .. kept); returns kept. Nothing is written past out[kept - 1], so other threads
// may be writing the rows right after. AVX-512 compress where the CPU has it (8 or 16
// rows per instruction), else scalar.
size_t compact_block(const uint8_t* mask, size_t m, size_t kept, const void* in, void* out,
                     int itemsize);

// Same for row numbers: out[j] = first + (the j-th kept i).
size_t compact_block_positions(const uint8_t* mask, size_t m, size_t kept, int64_t first,
                               int64_t* out);

// The same with the instruction set chosen (avx512 = false: the scalar code that CPUs
// without AVX-512 run), for tests; whether this CPU has the AVX-512 path.
size_t compact_block_with(bool avx512, const uint8_t* mask, size_t m, size_t kept,
                          const void* in, void* out, int itemsize);
size_t compact_block_positions_with(bool avx512, const uint8_t* mask, size_t m, size_t kept,
                                    int64_t first, int64_t* out);
bool compact_block_has_avx512();

// `bytes` from src to dst, the whole 16-byte units of dst by non-temporal stores: for
// outputs far larger than the caches, which are not read again soon, this saves the
// read-for-ownership of every line and leaves the caches to the inputs. Plain memcpy
// where the CPU has no such stores. Call streaming_fence() before another thread reads
// dst (the stores are weakly ordered).
void copy_streaming(void* dst, const void* src, size_t bytes);
void streaming_fence();

// Rows with a non-zero mask byte, counted with num_threads threads.
size_t count_mask(const uint8_t* mask, size_t n, int num_threads);

}  // namespace compact
}  // namespace synthcore
