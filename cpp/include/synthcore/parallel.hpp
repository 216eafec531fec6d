// parallel_for over [0, n) with short-lived std::threads. No persistent pool:
// a pool (or OpenMP's) left behind in a process that later forks, as
// multiprocessing, Dask and Spark workers do, can hang the child.
#pragma once
#include <algorithm>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace synthcore {

// Calls fn(begin, end) on contiguous ranges. Ranges smaller than min_per_thread
// elements are not given their own thread, so small calls stay on the caller.
template <class Fn>
void parallel_for(size_t n, int num_threads, size_t min_per_thread, Fn&& fn) {
  size_t threads = num_threads > 1 ? static_cast<size_t>(num_threads) : 1;
  threads = std::min(threads, std::max<size_t>(1, n / std::max<size_t>(1, min_per_thread)));
  if (threads <= 1) {
    fn(size_t{0}, n);
    return;
  }
  std::vector<std::thread> workers;
  std::vector<std::exception_ptr> errors(threads);
  workers.reserve(threads - 1);
  const size_t per = (n + threads - 1) / threads;
  auto run = [&](size_t t) {
    const size_t begin = std::min(n, t * per), end = std::min(n, begin + per);
    try {
      if (begin < end) fn(begin, end);
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  for (size_t t = 1; t < threads; ++t) workers.emplace_back(run, t);
  run(0);
  for (auto& w : workers) w.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace synthcore
