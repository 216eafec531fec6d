// Output buffers that are reused after their arrays die. A sampler's output of a
// million rows is tens of MB; taken fresh from the OS each call, every page is
// faulted in and zeroed by the kernel, which cost about a fifth of a copula
// sample call. Here a buffer goes back to a bounded free list when the last array
// (or view, DataFrame, Arrow array) using it is gone, and the next request of a
// similar size takes it back, already mapped. A buffer sized for the most rows a
// call can produce (a filter's n) is trimmed to the rows it kept: the pages past
// them go back to the OS (madvise), the block keeps its size for reuse, and the
// pool counts only the bytes still mapped against its limit; the free blocks' whole
// sizes (address space, mapped or not) are held within kSpanFactor times the limit, so
// many trimmed blocks of sizes never asked for again cannot pile up. All state is touched only with the GIL
// held (requests come from Python, releases from a capsule's destructor).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <list>
#include <new>
#include <stdexcept>
#include <unordered_map>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace py = pybind11;

namespace synthcore::bindings {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kSpanFactor = 4;

struct Block {
  size_t bytes;     // its size
  size_t resident;  // the bytes that may still be mapped: all of them unless trimmed
};

struct FreeBlock {
  void* block;
  Block size;
};

struct Pool {
  std::list<FreeBlock> free;  // oldest first
  std::unordered_map<void*, Block> in_use;
  size_t free_bytes = 0;  // resident bytes of the free blocks
  size_t free_span = 0;   // whole sizes of the free blocks
  size_t max_free_bytes = size_t{256} << 20;
  size_t max_free_span() const {
    return max_free_bytes > SIZE_MAX / kSpanFactor ? SIZE_MAX : max_free_bytes * kSpanFactor;
  }
};

// Never destroyed: arrays alive at interpreter exit still release into it.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

// Blocks are mapped from the OS, not taken from malloc: glibc serves requests below
// its dynamic mmap threshold (raised up to 32 MiB by every large free) from its heap,
// where free() keeps the pages, so blocks dropped from the pool or by release() stayed
// resident. A mapped block is unmapped when dropped, and trimming it touches no
// allocator's metadata.
void* new_block(size_t bytes) {
#if defined(__linux__)
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t align = bytes >= kHugePage ? kHugePage : page;
  const size_t span = bytes + (align > page ? align : 0);  // room to align the start
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t lo = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (lo + align - 1) / align * align;
  const uintptr_t end = start + (bytes + page - 1) / page * page;
  if (start > lo) munmap(raw, start - lo);
  if (lo + span > end) munmap(reinterpret_cast<void*>(end), lo + span - end);
  void* block = reinterpret_cast<void*>(start);
#if defined(MADV_HUGEPAGE)
  if (align == kHugePage) madvise(block, bytes, MADV_HUGEPAGE);  // as NumPy does; a hint
#endif
  return block;
#else
  void* block = nullptr;
  const size_t align = bytes >= kHugePage ? kHugePage : kAlign;
  if (posix_memalign(&block, align, bytes) != 0) throw std::bad_alloc();
  return block;
#endif
}

void free_block(void* block, size_t bytes) {
#if defined(__linux__)
  munmap(block, bytes);
#else
  (void)bytes;
  std::free(block);
#endif
}

// Frees the oldest free blocks until the pool is within its limits; a limit of 0
// frees them all (a block trimmed to nothing mapped counts 0 resident bytes).
void drop_oldest_until_within_limits(Pool& p) {
  while (!p.free.empty() && (p.max_free_bytes == 0 || p.free_bytes > p.max_free_bytes ||
                             p.free_span > p.max_free_span())) {
    p.free_bytes -= p.free.front().size.resident;
    p.free_span -= p.free.front().size.bytes;
    free_block(p.free.front().block, p.free.front().size.bytes);
    p.free.pop_front();
  }
}

// A block of exactly `bytes` (sizes are rounded, so repeated requests match).
void* take_block(size_t bytes) {
  Pool& p = pool();
  for (auto it = p.free.begin(); it != p.free.end(); ++it)
    if (it->size.bytes == bytes) {
      void* block = it->block;
      p.free_bytes -= it->size.resident;
      p.free_span -= it->size.bytes;
      p.free.erase(it);
      return block;
    }
  return new_block(bytes);
}

void give_back(void* block) {
  Pool& p = pool();
  const auto it = p.in_use.find(block);
  if (it == p.in_use.end()) return;  // cannot happen: every block was registered
  const Block size = it->second;
  p.in_use.erase(it);
  if (p.max_free_bytes == 0 || size.resident > p.max_free_bytes ||
      size.bytes > p.max_free_span()) {
    free_block(block, size.bytes);
    return;
  }
  p.free.push_back(FreeBlock{block, size});
  p.free_bytes += size.resident;
  p.free_span += size.bytes;
  drop_oldest_until_within_limits(p);
}

size_t round_bytes(size_t bytes) {
  const size_t quantum = bytes >= kHugePage ? kHugePage : size_t{1} << 16;
  return std::max(quantum, (bytes + quantum - 1) / quantum * quantum);
}

py::array pooled_empty(py::ssize_t n, py::dtype dtype) {
  if (n < 0) throw std::invalid_argument("n must be >= 0");
  if (dtype.kind() == 'O')  // NumPy must own object arrays to drop their references
    throw std::invalid_argument("object arrays cannot come from the buffer pool");
  const size_t bytes = round_bytes(static_cast<size_t>(n) * static_cast<size_t>(dtype.itemsize()));
  void* block = take_block(bytes);
  try {
    pool().in_use.emplace(block, Block{bytes, bytes});
  } catch (...) {
    free_block(block, bytes);
    throw;
  }
  py::capsule owner(block, [](void* b) { give_back(b); });
  return py::array(dtype, {n}, {static_cast<py::ssize_t>(dtype.itemsize())}, block, owner);
}

// Gives back the pages of a pooled array's block past its first `used` bytes; false
// (nothing done) when the array's memory is not a pooled block. The range is cut to
// whole pages inside the block (huge pages for a huge-page block, so none is split).
bool pooled_trim(const py::array& array, size_t used) {
  Pool& p = pool();
  void* block = const_cast<void*>(array.data());
  const auto it = p.in_use.find(block);
  if (it == p.in_use.end()) return false;
  Block& size = it->second;
  used = std::min(used, size.bytes);
#if defined(__linux__) && defined(MADV_DONTNEED)
  const size_t page = size.bytes >= kHugePage ? kHugePage
                                                : static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t start = reinterpret_cast<uintptr_t>(block);
  const uintptr_t from = (start + used + page - 1) / page * page;
  const uintptr_t to = (start + size.bytes) / page * page;
  if (to > from && madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED) == 0)
    size.resident = std::min(size.resident, from - start);
#endif
  return true;
}

}  // namespace

void register_buffers(py::module_& m) {
  m.def("pooled_empty", &pooled_empty, py::arg("n"), py::arg("dtype"),
        "An uninitialised 1-d array whose memory returns to synthcore's buffer pool when "
        "the array and every view of it are gone.");
  m.def("pooled_trim", &pooled_trim, py::arg("array"), py::arg("used_bytes"),
        "Returns the pages of a pooled array's block past used_bytes to the system; the "
        "block keeps its size for reuse. False when the array is not pooled.");
  m.def("buffer_pool_limit", [](py::ssize_t max_free_bytes) {
    if (max_free_bytes < 0) throw std::invalid_argument("the limit must be >= 0");
    pool().max_free_bytes = static_cast<size_t>(max_free_bytes);
    drop_oldest_until_within_limits(pool());
  }, py::arg("max_free_bytes"));
  m.def("buffer_pool_free_bytes", [] { return pool().free_bytes; });
  m.def("buffer_pool_free_blocks", [] {
    return py::make_tuple(pool().free.size(), pool().free_span);
  }, "(number of free blocks, their whole sizes in bytes, mapped or not)");
}

}  // namespace synthcore::bindings
