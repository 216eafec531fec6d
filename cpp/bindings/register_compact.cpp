// Bindings for synthcore/compact.hpp. Sizes, item sizes and overlaps are checked here
// so that no call can write outside its outputs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "spans.hpp"
#include "synthcore/compact.hpp"

namespace py = pybind11;

namespace synthcore::bindings {

void register_compact(py::module_& m) {
  namespace C = synthcore::compact;
  m.def(
      "compact_rows",
      [](py::array_t<uint8_t, py::array::c_style> mask, py::list columns, py::list outputs,
         int64_t limit, py::object positions, int64_t base, int num_threads) {
        if (mask.ndim() != 1) throw std::invalid_argument("mask must be one-dimensional");
        const size_t n = static_cast<size_t>(mask.size());
        if (columns.size() != outputs.size())
          throw std::invalid_argument("columns and outputs differ in length");
        const uint8_t* mk = mask.data();
        size_t kept;
        {
          py::gil_scoped_release release;
          kept = C::count_mask(mk, n, num_threads);
        }
        if (limit >= 0 && static_cast<size_t>(limit) < kept) kept = static_cast<size_t>(limit);
        std::vector<py::array> keep;
        std::vector<const void*> ins;
        std::vector<void*> outs;
        std::vector<int> sizes;
        std::vector<Span> in_spans, out_spans;
        for (size_t k = 0; k < columns.size(); ++k) {
          py::array a = columns[k].cast<py::array>();
          py::array o = outputs[k].cast<py::array>();
          const int s = check_gather_pair(a, o, n, kept, "column " + std::to_string(k),
                                          "the kept rows");
          ins.push_back(a.data());
          outs.push_back(o.mutable_data());
          sizes.push_back(s);
          in_spans.push_back(span_of(a));
          out_spans.push_back(span_of(o));
          keep.push_back(a);
          keep.push_back(o);
        }
        int64_t* pos = checked_positions(positions, kept, "the kept rows");
        if (pos != nullptr) {
          const py::array p = positions.cast<py::array>();
          out_spans.push_back(span_of(p));
          in_spans.push_back({0, 0});
          keep.push_back(p);
        }
        // an output may be its own input (in place), but must not touch anything else
        for (size_t k = 0; k < out_spans.size(); ++k) {
          if (overlap(out_spans[k], Span{reinterpret_cast<uintptr_t>(mk),
                                         reinterpret_cast<uintptr_t>(mk) + n}))
            throw std::invalid_argument("an output overlaps the mask");
          for (size_t j = 0; j < out_spans.size(); ++j) {
            if (j != k && overlap(out_spans[k], out_spans[j]))
              throw std::invalid_argument("outputs overlap each other");
            if (j < ins.size() && overlap(out_spans[k], in_spans[j]) &&
                !(j == k && outs[k] == ins[k]))
              throw std::invalid_argument("output " + std::to_string(k) +
                                          " overlaps an input other than its own column");
          }
        }
        C::CompactColumns cols{ins.data(), outs.data(), sizes.data(),
                               static_cast<int>(ins.size())};
        py::gil_scoped_release release;
        return C::compact_rows(mk, n, limit < 0 ? SIZE_MAX : static_cast<size_t>(limit), cols,
                               pos, base, num_threads);
      },
      py::arg("mask").noconvert(), py::arg("columns"), py::arg("outputs"), py::arg("limit"),
      py::arg("positions"), py::arg("base"), py::arg("num_threads"));
  // test hook: one block compacted with the instruction set named
  m.def("compact_block_isas", [] {
    py::list isas;
    isas.append("scalar");
    if (C::compact_block_has_avx512()) isas.append("avx512");
    return isas;
  });
  m.def(
      "compact_block",
      [](py::array_t<uint8_t, py::array::c_style> mask, py::array column, py::array out,
         py::array_t<int64_t, py::array::c_style> positions, int64_t first,
         const std::string& isa) {
        if (isa != "scalar" && isa != "avx512")
          throw std::invalid_argument("isa must be scalar or avx512");
        const size_t m = static_cast<size_t>(mask.size());
        const int s = static_cast<int>(column.itemsize());
        if (mask.ndim() != 1 || column.ndim() != 1 || !(column.flags() & py::array::c_style) ||
            static_cast<size_t>(column.size()) != m || (s != 1 && s != 2 && s != 4 && s != 8))
          throw std::invalid_argument("column must be a contiguous 1-d array of the mask's "
                                      "length, 1, 2, 4 or 8 bytes a value");
        size_t kept = 0;
        for (size_t i = 0; i < m; ++i) kept += mask.data()[i] != 0;
        if (out.ndim() != 1 || !(out.flags() & py::array::c_style) || !out.writeable() ||
            out.itemsize() != column.itemsize() || static_cast<size_t>(out.size()) < kept ||
            positions.ndim() != 1 || !positions.writeable() ||
            static_cast<size_t>(positions.size()) < kept ||
            overlap(span_of(out), span_of(column)) || overlap(span_of(out), span_of(positions)))
          throw std::invalid_argument("out and positions need room for the kept rows");
        const bool simd = isa == "avx512";
        const size_t a = C::compact_block_with(simd, mask.data(), m, kept, column.data(),
                                               out.mutable_data(), s);
        const size_t b = C::compact_block_positions_with(simd, mask.data(), m, kept, first,
                                                         positions.mutable_data());
        if (a != kept || b != kept) throw std::runtime_error("compact_block: count mismatch");
        return kept;
      },
      py::arg("mask").noconvert(), py::arg("column"), py::arg("out"),
      py::arg("positions").noconvert(), py::arg("first"), py::arg("isa"));
}

}  // namespace synthcore::bindings
