// Output buffers that are reused after their arrays die. A sampler's output of a
// million rows is tens of MB; taken fresh from the OS each call, every page is
// faulted in and zeroed by the kernel, which cost about a fifth of a copula
// sample call. Here a buffer goes back to a bounded free list when the last array
// (or view, DataFrame, Arrow array) using it is gone, and the next request of a
// similar size takes it back, already mapped. All state is touched only with the
// GIL held (requests come from Python, releases from a capsule's destructor).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdlib>
#include <list>
#include <new>
#include <stdexcept>
#include <unordered_map>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace py = pybind11;

namespace synthcore::bindings {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kHugePage = size_t{2} << 20;

struct FreeBlock {
  void* block;
  size_t bytes;
};

struct Pool {
  std::list<FreeBlock> free;  // oldest first
  std::unordered_map<void*, size_t> in_use;  // block -> its size
  size_t free_bytes = 0;
  size_t max_free_bytes = size_t{256} << 20;
};

// Never destroyed: arrays alive at interpreter exit still release into it.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

void drop_oldest_until(Pool& p, size_t limit) {
  while (p.free_bytes > limit && !p.free.empty()) {
    p.free_bytes -= p.free.front().bytes;
    std::free(p.free.front().block);
    p.free.pop_front();
  }
}

void* new_block(size_t bytes) {
  void* block = nullptr;
  const size_t align = bytes >= kHugePage ? kHugePage : kAlign;
  if (posix_memalign(&block, align, bytes) != 0) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (align == kHugePage) madvise(block, bytes, MADV_HUGEPAGE);  // as NumPy does; a hint
#endif
  return block;
}

// A block of exactly `bytes` (sizes are rounded, so repeated requests match).
void* take_block(size_t bytes) {
  Pool& p = pool();
  for (auto it = p.free.begin(); it != p.free.end(); ++it)
    if (it->bytes == bytes) {
      void* block = it->block;
      p.free_bytes -= bytes;
      p.free.erase(it);
      return block;
    }
  return new_block(bytes);
}

void give_back(void* block) {
  Pool& p = pool();
  const auto it = p.in_use.find(block);
  if (it == p.in_use.end()) return;  // cannot happen: every block was registered
  const size_t bytes = it->second;
  p.in_use.erase(it);
  if (bytes > p.max_free_bytes) {
    std::free(block);
    return;
  }
  p.free.push_back(FreeBlock{block, bytes});
  p.free_bytes += bytes;
  drop_oldest_until(p, p.max_free_bytes);
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
    pool().in_use.emplace(block, bytes);
  } catch (...) {
    std::free(block);
    throw;
  }
  py::capsule owner(block, [](void* b) { give_back(b); });
  return py::array(dtype, {n}, {static_cast<py::ssize_t>(dtype.itemsize())}, block, owner);
}

}  // namespace

void register_buffers(py::module_& m) {
  m.def("pooled_empty", &pooled_empty, py::arg("n"), py::arg("dtype"),
        "An uninitialised 1-d array whose memory returns to synthcore's buffer pool when "
        "the array and every view of it are gone.");
  m.def("buffer_pool_limit", [](py::ssize_t max_free_bytes) {
    if (max_free_bytes < 0) throw std::invalid_argument("the limit must be >= 0");
    pool().max_free_bytes = static_cast<size_t>(max_free_bytes);
    drop_oldest_until(pool(), pool().max_free_bytes);
  }, py::arg("max_free_bytes"));
  m.def("buffer_pool_free_bytes", [] { return pool().free_bytes; });
}

}  // namespace synthcore::bindings
