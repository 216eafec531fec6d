// Byte ranges of NumPy arrays, for the bindings' checks that outputs do not overlap
// each other or their inputs (a native pass writing into its own input is undefined).
#pragma once

#include <pybind11/numpy.h>

#include <cstdint>

namespace synthcore::bindings {

struct Span {
  uintptr_t lo, hi;
};

inline Span span_of(const pybind11::array& a) {
  const auto lo = reinterpret_cast<uintptr_t>(a.data());
  return {lo, lo + static_cast<uintptr_t>(a.nbytes())};
}

inline bool overlap(Span a, Span b) { return a.lo < b.hi && b.lo < a.hi; }

}  // namespace synthcore::bindings
