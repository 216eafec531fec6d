// Bindings for synthcore/rules.hpp (programs compiled and columns encoded in
// python/synthcore/_rules_compile.py and rules.py; validated again here).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <vector>

#include "synthcore/rules.hpp"

namespace py = pybind11;

namespace synthcore::bindings {

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
        if (code.ndim() != 2 || code.shape(1) != 5)
          throw std::invalid_argument("code must be an (n, 5) int32 array");
        if (static_cast<size_t>(column_types.size()) != columns.size() ||
            static_cast<size_t>(output_types.size()) != outputs.size())
          throw std::invalid_argument("column / output type lists do not match");
        if (static_cast<size_t>(mask.size()) != n || !mask.writeable())
          throw std::invalid_argument("mask must be a writable uint8 array of n rows");
        if (!counts.writeable()) throw std::invalid_argument("counts is read-only");
        const size_t itemsize[4] = {8, 8, 4, 1};
        std::vector<py::array> keep;
        std::vector<const void*> cols;
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
        }
        std::vector<void*> outs;
        for (size_t k = 0; k < outputs.size(); ++k) {
          py::array a = outputs[k].cast<py::array>();
          const int t = output_types.data()[k];
          const size_t want = t == 3 ? 1 : 8;
          if (!(a.flags() & py::array::c_style) || !a.writeable() || a.ndim() != 1 ||
              static_cast<size_t>(a.itemsize()) != want || static_cast<size_t>(a.size()) != n)
            throw std::invalid_argument("output " + std::to_string(k) + " has the wrong shape");
          outs.push_back(a.mutable_data());
          keep.push_back(a);
        }
        R::RuleProgram p{code.data(), static_cast<size_t>(code.shape(0)), n_registers,
                         const_f64.data(), static_cast<size_t>(const_f64.size()),
                         const_i64.data(), static_cast<size_t>(const_i64.size()),
                         static_cast<int>(counts.size())};
        R::RuleData d{cols.data(), column_types.data(), static_cast<int>(cols.size()),
                      outs.data(), output_types.data(), static_cast<int>(outs.size())};
        R::validate_rule_program(p, d, 1 << 16);
        uint8_t* mk = mask.mutable_data();
        int64_t* ct = counts.mutable_data();
        py::gil_scoped_release release;
        R::rules_evaluate(p, d, n, mk, ct, num_threads);
      },
      py::arg("code").noconvert(), py::arg("n_registers"), py::arg("const_f64").noconvert(),
      py::arg("const_i64").noconvert(), py::arg("columns"), py::arg("column_types").noconvert(),
      py::arg("n"), py::arg("mask").noconvert(), py::arg("counts").noconvert(),
      py::arg("outputs"), py::arg("output_types").noconvert(), py::arg("num_threads"));
}

}  // namespace synthcore::bindings
