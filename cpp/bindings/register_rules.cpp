// Bindings for synthcore/rules.hpp (programs compiled and columns encoded in
// python/synthcore/_rules_compile.py and rules.py; validated again here).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "spans.hpp"
#include "synthcore/rules.hpp"

namespace py = pybind11;

namespace synthcore::bindings {

namespace {

// A program and its columns, mask, counts and derived outputs, checked and validated.
struct BoundProgram {
  std::vector<py::array> keep, arrays_read, arrays_written;
  std::vector<const void*> cols;
  std::vector<void*> outs;
  rules::RuleProgram program;
  rules::RuleData data;
  uint8_t* mask;
  int64_t* counts;

  BoundProgram(py::array_t<int32_t, py::array::c_style>& code, int n_registers,
               py::array_t<double, py::array::c_style>& const_f64,
               py::array_t<int64_t, py::array::c_style>& const_i64, py::list& columns,
               py::array_t<int32_t, py::array::c_style>& column_types, size_t n,
               py::array_t<uint8_t, py::array::c_style>& mask_arr,
               py::array_t<int64_t, py::array::c_style>& counts_arr, py::list& outputs,
               py::array_t<int32_t, py::array::c_style>& output_types) {
    if (code.ndim() != 2 || code.shape(1) != 5)
      throw std::invalid_argument("code must be an (n, 5) int32 array");
    if (static_cast<size_t>(column_types.size()) != columns.size() ||
        static_cast<size_t>(output_types.size()) != outputs.size())
      throw std::invalid_argument("column / output type lists do not match");
    if (static_cast<size_t>(mask_arr.size()) != n || !mask_arr.writeable())
      throw std::invalid_argument("mask must be a writable uint8 array of n rows");
    if (!counts_arr.writeable()) throw std::invalid_argument("counts is read-only");
    const size_t itemsize[4] = {8, 8, 4, 1};
    for (size_t k = 0; k < columns.size(); ++k) {
      py::array a = columns[k].cast<py::array>();
      const int t = column_types.data()[k];
      if (t < 0 || t > 3) throw std::invalid_argument("unknown column type");
      if (!(a.flags() & py::array::c_style) || a.ndim() != 1 ||
          static_cast<size_t>(a.itemsize()) != itemsize[t] ||
          static_cast<size_t>(a.size()) != n)
        throw std::invalid_argument("column " + std::to_string(k) +
                                    " must be a contiguous 1-d array of n values of its type");
      cols.push_back(a.data());
      keep.push_back(a);
      arrays_read.push_back(a);
    }
    for (size_t k = 0; k < outputs.size(); ++k) {
      py::array a = outputs[k].cast<py::array>();
      const int t = output_types.data()[k];
      const size_t want = t == 3 ? 1 : 8;
      if (!(a.flags() & py::array::c_style) || !a.writeable() || a.ndim() != 1 ||
          static_cast<size_t>(a.itemsize()) != want || static_cast<size_t>(a.size()) != n)
        throw std::invalid_argument("output " + std::to_string(k) + " has the wrong shape");
      outs.push_back(a.mutable_data());
      keep.push_back(a);
      arrays_written.push_back(a);
    }
    keep.push_back(mask_arr);
    arrays_written.push_back(mask_arr);
    program = rules::RuleProgram{code.data(), static_cast<size_t>(code.shape(0)), n_registers,
                                 const_f64.data(), static_cast<size_t>(const_f64.size()),
                                 const_i64.data(), static_cast<size_t>(const_i64.size()),
                                 static_cast<int>(counts_arr.size())};
    data = rules::RuleData{cols.data(), column_types.data(), static_cast<int>(cols.size()),
                           outs.data(), output_types.data(), static_cast<int>(outs.size())};
    rules::validate_rule_program(program, data, 1 << 16);
    mask = mask_arr.mutable_data();
    counts = counts_arr.mutable_data();
  }
};

}  // namespace

void register_rules(py::module_& m) {
  namespace R = synthcore::rules;
  m.def("rules_opcode_names", [] {
    std::vector<std::string> names(R::kOpNames, R::kOpNames + R::kNumOps);
    return names;
  });
  m.def(
      "rules_evaluate",
      [](py::array_t<int32_t, py::array::c_style> code, int n_registers,
         py::array_t<double, py::array::c_style> const_f64,
         py::array_t<int64_t, py::array::c_style> const_i64, py::list columns,
         py::array_t<int32_t, py::array::c_style> column_types, size_t n,
         py::array_t<uint8_t, py::array::c_style> mask,
         py::array_t<int64_t, py::array::c_style> counts, py::list outputs,
         py::array_t<int32_t, py::array::c_style> output_types, int num_threads) {
        BoundProgram b(code, n_registers, const_f64, const_i64, columns, column_types, n, mask,
                       counts, outputs, output_types);
        py::gil_scoped_release release;
        R::rules_evaluate(b.program, b.data, n, b.mask, b.counts, num_threads);
      },
      py::arg("code").noconvert(), py::arg("n_registers"), py::arg("const_f64").noconvert(),
      py::arg("const_i64").noconvert(), py::arg("columns"), py::arg("column_types").noconvert(),
      py::arg("n"), py::arg("mask").noconvert(), py::arg("counts").noconvert(),
      py::arg("outputs"), py::arg("output_types").noconvert(), py::arg("num_threads"));
  m.def(
      "rules_filter",
      [](py::array_t<int32_t, py::array::c_style> code, int n_registers,
         py::array_t<double, py::array::c_style> const_f64,
         py::array_t<int64_t, py::array::c_style> const_i64, py::list columns,
         py::array_t<int32_t, py::array::c_style> column_types, size_t n,
         py::array_t<uint8_t, py::array::c_style> mask,
         py::array_t<int64_t, py::array::c_style> counts, py::list outputs,
         py::array_t<int32_t, py::array::c_style> output_types, py::list keep_columns,
         py::list keep_outputs, py::object positions, int64_t base, int num_threads) {
        BoundProgram b(code, n_registers, const_f64, const_i64, columns, column_types, n, mask,
                       counts, outputs, output_types);
        if (keep_columns.size() != keep_outputs.size())
          throw std::invalid_argument("keep_columns and keep_outputs differ in length");
        std::vector<const void*> ins;
        std::vector<void*> outs;
        std::vector<int> sizes;
        std::vector<Span> reads, writes;  // writes must touch nothing else
        for (size_t k = 0; k < keep_columns.size(); ++k) {
          py::array a = keep_columns[k].cast<py::array>();
          py::array o = keep_outputs[k].cast<py::array>();
          const int s = check_gather_pair(a, o, n, n, "keep column " + std::to_string(k),
                                          "n rows");
          ins.push_back(a.data());
          outs.push_back(o.mutable_data());
          sizes.push_back(s);
          reads.push_back(span_of(a));
          writes.push_back(span_of(o));
          b.keep.push_back(a);
          b.keep.push_back(o);
        }
        int64_t* pos = checked_positions(positions, n, "n rows");
        if (pos != nullptr) {
          const py::array p = positions.cast<py::array>();
          writes.push_back(span_of(p));
          b.keep.push_back(p);
        }
        for (const py::array& a : b.arrays_read) reads.push_back(span_of(a));
        for (const py::array& a : b.arrays_written) writes.push_back(span_of(a));
        for (size_t k = 0; k < writes.size(); ++k) {
          for (size_t j = 0; j < writes.size(); ++j)
            if (j != k && overlap(writes[k], writes[j]))
              throw std::invalid_argument("rules_filter: outputs overlap each other");
          for (const Span& r : reads)
            if (overlap(writes[k], r))
              throw std::invalid_argument("rules_filter: an output overlaps an input");
        }
        compact::CompactColumns keep{ins.data(), outs.data(), sizes.data(),
                                     static_cast<int>(ins.size())};
        py::gil_scoped_release release;
        return R::rules_filter(b.program, b.data, n, b.mask, b.counts, keep, pos, base,
                               num_threads);
      },
      py::arg("code").noconvert(), py::arg("n_registers"), py::arg("const_f64").noconvert(),
      py::arg("const_i64").noconvert(), py::arg("columns"), py::arg("column_types").noconvert(),
      py::arg("n"), py::arg("mask").noconvert(), py::arg("counts").noconvert(),
      py::arg("outputs"), py::arg("output_types").noconvert(), py::arg("keep_columns"),
      py::arg("keep_outputs"), py::arg("positions"), py::arg("base"), py::arg("num_threads"));
}

}  // namespace synthcore::bindings
