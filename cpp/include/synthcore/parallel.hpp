// parallel_for over [0, n) with short-lived std::threads. No persistent pool:
// a pool (or OpenMP's) left behind in a process that later forks, as
// multiprocessing, Dask and Spark workers do, can hang the child.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace synthcore {

// Calls fn(begin, end) on contiguous pieces of [0, n). Threads take pieces from
// a shared counter rather than one fixed share each, so a core that the host
// slows down (shared VMs) delays the call by one piece, not by half the work.
// Ranges smaller than min_per_thread elements get no thread of their own. Every
// kernel's output depends only on the element index, so the split never shows.
template <class Fn>
void parallel_for(size_t n, int num_threads, size_t min_per_thread, Fn&& fn) {
  size_t threads = num_threads > 1 ? static_cast<size_t>(num_threads) : 1;
  threads = std::min(threads, std::max<size_t>(1, n / std::max<size_t>(1, min_per_thread)));
  if (threads <= 1) {
    fn(size_t{0}, n);
    return;
  }
  const size_t piece = std::max<size_t>(min_per_thread / 4, (n + 16 * threads - 1) / (16 * threads));
  std::atomic<size_t> next{0};
  std::vector<std::exception_ptr> errors(threads);
  auto run = [&](size_t t) {
    try {
      for (size_t begin = next.fetch_add(piece); begin < n; begin = next.fetch_add(piece))
        fn(begin, std::min(n, begin + piece));
    } catch (...) {
      errors[t] = std::current_exception();
      next.store(n);  // the others stop at their next piece
    }
  };
  std::vector<std::thread> workers;
  workers.reserve(threads - 1);
  for (size_t t = 1; t < threads; ++t) workers.emplace_back(run, t);
  run(0);
  for (auto& w : workers) w.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace synthcore
