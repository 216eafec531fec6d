// Checks shared by the bindings that gather rows into caller outputs: byte ranges of
// NumPy arrays (outputs must not overlap each other or their inputs; a native pass
// writing into its own input is undefined) and the shape of each (column, output) pair.
#pragma once

#include <pybind11/numpy.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace synthcore::bindings {

struct Span {
  uintptr_t lo, hi;
};

inline Span span_of(const pybind11::array& a) {
  const auto lo = reinterpret_cast<uintptr_t>(a.data());
  return {lo, lo + static_cast<uintptr_t>(a.nbytes())};
}

inline bool overlap(Span a, Span b) { return a.lo < b.hi && b.lo < a.hi; }

// Item size of a column ``a`` of n values gathered into ``o``, which needs ``room`` rows
// (described by ``room_words``, e.g. "the kept rows"); throws naming ``which``.
inline int check_gather_pair(const pybind11::array& a, const pybind11::array& o, size_t n,
                             size_t room, const std::string& which, const char* room_words) {
  namespace py = pybind11;
  if (a.ndim() != 1 || !(a.flags() & py::array::c_style) || static_cast<size_t>(a.size()) != n)
    throw std::invalid_argument(which + " must be a contiguous 1-d array of n values");
  const int s = static_cast<int>(a.itemsize());
  if (s != 1 && s != 2 && s != 4 && s != 8)
    throw std::invalid_argument(which + ": item size must be 1, 2, 4 or 8 bytes");
  if (o.ndim() != 1 || !(o.flags() & py::array::c_style) || !o.writeable() ||
      o.itemsize() != a.itemsize() || static_cast<size_t>(o.size()) < room)
    throw std::invalid_argument(which + ": output must be a writable contiguous 1-d array of "
                                "the same item size with room for " + room_words);
  return s;
}

// The optional int64 row-position output, with room for ``room`` rows; nullptr for None.
inline int64_t* checked_positions(const pybind11::object& positions, size_t room,
                                  const char* room_words) {
  namespace py = pybind11;
  if (positions.is_none()) return nullptr;
  auto p = positions.cast<py::array_t<int64_t, py::array::c_style>>();
  if (p.ndim() != 1 || !p.writeable() || static_cast<size_t>(p.size()) < room ||
      !positions.is(p))
    throw std::invalid_argument(std::string("positions must be a writable int64 array with "
                                            "room for ") + room_words);
  return p.mutable_data();
}

}  // namespace synthcore::bindings
