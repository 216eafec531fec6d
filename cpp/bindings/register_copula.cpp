// Bindings for synthcore/copula.hpp. The plan is validated and built in Python
// (synthcore/copula.py); here the buffers' sizes and dtypes are checked so that
// a wrong call cannot write outside them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "spans.hpp"
#include "synthcore/copula.hpp"
#include "synthcore/rules.hpp"

namespace py = pybind11;

namespace synthcore::bindings {
namespace {

template <class T>
using Array = py::array_t<T, py::array::c_style>;

size_t out_itemsize(int8_t kind) {
  switch (kind) {
    case kOutF64: case kOutI64Round: case kOutLevelI64: case kOutLevelF64: return 8;
    case kOutF32: case kOutI32Round: case kOutCodeI32: return 4;
    case kOutCodeU8: case kOutCodeI8: return 1;
  }
  throw std::invalid_argument("unknown output kind " + std::to_string(kind));
}

struct ParsedPlan {
  CopulaPlan plan;
  std::vector<void*> outputs;
  py::ssize_t n;
};

ParsedPlan parse_plan(Array<double>& chol, Array<int8_t>& dim_kind, Array<double>& z_lo,
                      Array<double>& z_scale, Array<int64_t>& knot_offsets, Array<double>& knots,
                      Array<int8_t>& out_kind, Array<int64_t>& level_offsets,
                      Array<int64_t>& levels_i64, Array<double>& levels_f64,
                      Array<int32_t>& null_dim, Array<int8_t>& round_mode,
                      Array<double>& round_q, py::list& outputs) {
  const py::ssize_t d = dim_kind.size();
  if (chol.size() != d * d || z_lo.size() != d || z_scale.size() != d || out_kind.size() != d ||
      null_dim.size() != d || round_mode.size() != d || round_q.size() != d ||
      knot_offsets.size() != d + 1 || level_offsets.size() != d + 1 ||
      static_cast<py::ssize_t>(outputs.size()) != d)
    throw std::invalid_argument("copula plan arrays disagree on the number of latent dims");
  const int64_t* ko = knot_offsets.data();
  const int64_t* lo = level_offsets.data();
  if (ko[0] != 0 || ko[d] != knots.size() || lo[0] != 0)
    throw std::invalid_argument("copula plan offsets do not match the knots array");
  ParsedPlan parsed{CopulaPlan{static_cast<int>(d), chol.data(), dim_kind.data(), z_lo.data(),
                               z_scale.data(), ko, knots.data(), out_kind.data(), lo,
                               levels_i64.data(), levels_f64.data(), null_dim.data(),
                               round_mode.data(), round_q.data()},
                    std::vector<void*>(d), -1};
  for (py::ssize_t j = 0; j < d; ++j) {
    if (ko[j + 1] < ko[j] || lo[j + 1] < lo[j])
      throw std::invalid_argument("copula plan offsets must not decrease");
    const int8_t kind = out_kind.data()[j];
    const int64_t len = ko[j + 1] - ko[j];
    if (dim_kind.data()[j] == kDimTable ? len < 2 : len < 0)
      throw std::invalid_argument("latent dim " + std::to_string(j) + " has too few knots");
    if (kind == kOutLevelI64 && lo[j + 1] > levels_i64.size())
      throw std::invalid_argument("levels_i64 is too short");
    if (kind == kOutLevelF64 && lo[j + 1] > levels_f64.size())
      throw std::invalid_argument("levels_f64 is too short");
    if ((kind == kOutLevelI64 || kind == kOutLevelF64) && lo[j + 1] - lo[j] != len + 1)
      throw std::invalid_argument("latent dim " + std::to_string(j) +
                                  " needs one level per threshold interval");
    const int32_t nd = null_dim.data()[j];
    if (nd >= j || (nd >= 0 && out_kind.data()[nd] != kOutCodeU8))
      throw std::invalid_argument("null dims must precede the dims that use them");
    auto buf = py::cast<py::array>(outputs[static_cast<size_t>(j)]);
    if (!(buf.flags() & py::array::c_style) || !buf.writeable() || buf.ndim() != 1 ||
        static_cast<size_t>(buf.itemsize()) != out_itemsize(kind))
      throw std::invalid_argument("output " + std::to_string(j) +
                                  " must be a writable 1-d contiguous array of its kind's dtype");
    if (parsed.n < 0) parsed.n = buf.shape(0);
    if (buf.shape(0) != parsed.n) throw std::invalid_argument("outputs differ in length");
    parsed.outputs[j] = buf.mutable_data();
  }
  return parsed;
}

#define SC_PLAN_PARAMS                                                                      \
  Array<double> chol, Array<int8_t> dim_kind, Array<double> z_lo, Array<double> z_scale,    \
      Array<int64_t> knot_offsets, Array<double> knots, Array<int8_t> out_kind,             \
      Array<int64_t> level_offsets, Array<int64_t> levels_i64, Array<double> levels_f64,    \
      Array<int32_t> null_dim, Array<int8_t> round_mode, Array<double> round_q,             \
      py::list outputs
#define SC_PLAN_ARGS                                                                        \
  chol, dim_kind, z_lo, z_scale, knot_offsets, knots, out_kind, level_offsets, levels_i64, \
      levels_f64, null_dim, round_mode, round_q, outputs

void sample(SC_PLAN_PARAMS, uint32_t key0, uint32_t key1, uint64_t stream, uint64_t row_offset,
            int num_threads) {
  ParsedPlan p = parse_plan(SC_PLAN_ARGS);
  if (p.plan.d == 0 || p.n <= 0) return;
  py::gil_scoped_release release;
  copula_sample(p.plan, PhiloxKey{key0, key1}, stream, row_offset, static_cast<size_t>(p.n),
                p.outputs.data(), num_threads);
}

size_t sample_rules(SC_PLAN_PARAMS, uint32_t key0, uint32_t key1, uint64_t stream,
                    uint64_t row_offset, Array<int32_t> code, int n_registers,
                    Array<double> const_f64, Array<int64_t> const_i64,
                    Array<int32_t> column_dims, Array<int32_t> column_types,
                    py::list derived, Array<int32_t> derived_types, Array<uint8_t> mask,
                    Array<int64_t> counts, size_t limit, int num_threads) {
  ParsedPlan p = parse_plan(SC_PLAN_ARGS);
  if (code.ndim() != 2 || code.shape(1) != 5)
    throw std::invalid_argument("code must be an (n, 5) int32 array");
  if (column_dims.size() != column_types.size())
    throw std::invalid_argument("column_dims and column_types differ in length");
  if (p.plan.d == 0 || p.n < 0) throw std::invalid_argument("the plan has no output dims");
  if (mask.size() != p.n || !mask.writeable())
    throw std::invalid_argument("mask must be a writable uint8 array of n rows");
  if (!counts.writeable()) throw std::invalid_argument("counts is read-only");
  if (static_cast<size_t>(derived_types.size()) != derived.size())
    throw std::invalid_argument("derived and derived_types differ in length");
  // derived columns: n values each, apart from each other, the outputs and the mask
  std::vector<Span> written{span_of(mask)};
  for (size_t j = 0; j < p.outputs.size(); ++j)
    written.push_back(span_of(py::cast<py::array>(outputs[j])));
  std::vector<void*> derived_out;
  for (size_t k = 0; k < derived.size(); ++k) {
    auto a = py::cast<py::array>(derived[k]);
    const int32_t t = derived_types.data()[k];
    if (t != 0 && t != 1 && t != 3)
      throw std::invalid_argument("derived column " + std::to_string(k) +
                                  ": storage must be 0 (float64), 1 (int64) or 3 (uint8)");
    if (!(a.flags() & py::array::c_style) || !a.writeable() || a.ndim() != 1 ||
        static_cast<size_t>(a.itemsize()) != (t == 3 ? 1u : 8u) || a.shape(0) != p.n)
      throw std::invalid_argument("derived column " + std::to_string(k) +
                                  " must be a writable 1-d contiguous array of n values of "
                                  "its storage");
    const Span s = span_of(a);
    for (const Span& w : written)
      if (a.nbytes() > 0 && overlap(s, w))
        throw std::invalid_argument("derived column " + std::to_string(k) +
                                    " overlaps an output, the mask or another derived column");
    written.push_back(s);
    derived_out.push_back(a.mutable_data());
  }
  const rules::RuleProgram program{code.data(), static_cast<size_t>(code.shape(0)), n_registers,
                                   const_f64.data(), static_cast<size_t>(const_f64.size()),
                                   const_i64.data(), static_cast<size_t>(const_i64.size()),
                                   static_cast<int>(counts.size())};
  uint8_t* mk = mask.mutable_data();
  int64_t* ct = counts.mutable_data();
  py::gil_scoped_release release;
  return copula_sample_rules(p.plan, PhiloxKey{key0, key1}, stream, row_offset,
                             static_cast<size_t>(p.n), p.outputs.data(), program,
                             column_dims.data(), column_types.data(),
                             static_cast<int>(column_dims.size()), derived_out.data(),
                             derived_types.data(), static_cast<int>(derived_out.size()), mk, ct,
                             limit, num_threads);
}

void map(SC_PLAN_PARAMS, Array<double> z, int num_threads) {
  ParsedPlan p = parse_plan(SC_PLAN_ARGS);
  if (p.plan.d == 0 || p.n <= 0) return;
  if (z.size() != static_cast<py::ssize_t>(p.plan.d) * p.n)
    throw std::invalid_argument("z must hold d x n latent values");
  const double* zp = z.data();
  py::gil_scoped_release release;
  copula_map(p.plan, zp, static_cast<size_t>(p.n), p.outputs.data(), num_threads);
}

// out[i] = levels[codes[i]] in an object array, code -1 picking `null`: pointers
// written in one pass, then each level's reference count raised by its number of
// uses; NumPy's take raises a count per row and casts narrow codes on the way.
bool is_object_vector(const py::array& a) {
  return a.ndim() == 1 && a.dtype().kind() == 'O' && (a.flags() & py::array::c_style);
}

template <class Code>
void take_levels(py::array levels, Array<Code> codes, py::object null, py::array out) {
  if (!is_object_vector(levels) || !is_object_vector(out) || !out.writeable())
    throw std::invalid_argument("levels and out must be 1-d contiguous object arrays");
  const py::ssize_t k = levels.shape(0), n = codes.size();
  if (out.shape(0) != n) throw std::invalid_argument("out must have one element per code");
  PyObject* const* level = static_cast<PyObject* const*>(levels.data());
  const Code* c = codes.data();
  for (py::ssize_t i = 0; i < n; ++i)
    if (c[i] < -1 || c[i] >= k)
      throw std::invalid_argument("code " + std::to_string(c[i]) + " at row " +
                                  std::to_string(i) + " is outside -1 .. " +
                                  std::to_string(k - 1));
  std::vector<PyObject*> table(static_cast<size_t>(k) + 1);
  table[0] = null.ptr();
  for (py::ssize_t j = 0; j < k; ++j) table[static_cast<size_t>(j) + 1] = level[j];
  for (PyObject* o : table)
    if (o == nullptr) throw std::invalid_argument("levels must not hold NULL");
  PyObject** o = static_cast<PyObject**>(out.mutable_data());
  std::vector<py::ssize_t> uses(static_cast<size_t>(k) + 1, 0);
  // np.empty fills object arrays with None (or NULL): those references are dropped
  // in one count too; anything else one by one
  py::ssize_t nones = 0;
  std::vector<PyObject*> replaced;
  for (py::ssize_t i = 0; i < n; ++i) {
    const size_t at = static_cast<size_t>(static_cast<py::ssize_t>(c[i]) + 1);
    PyObject* old = o[i];
    if (old == Py_None)
      ++nones;
    else if (old != nullptr)
      replaced.push_back(old);
    o[i] = table[at];
    ++uses[at];
  }
  for (size_t j = 0; j < table.size(); ++j)
    for (py::ssize_t u = 0; u < uses[j]; ++u) Py_INCREF(table[j]);
  for (py::ssize_t u = 0; u < nones; ++u) Py_DECREF(Py_None);
  for (PyObject* r : replaced) Py_DECREF(r);
}

}  // namespace

void register_copula(py::module_& m) {
  m.def("take_levels", &take_levels<int8_t>, py::arg("levels"), py::arg("codes").noconvert(),
        py::arg("null"), py::arg("out"));
  m.def("take_levels", &take_levels<int32_t>, py::arg("levels"), py::arg("codes").noconvert(),
        py::arg("null"), py::arg("out"));
#define SC_PLAN_ARG_NAMES                                                                     \
  py::arg("chol").noconvert(), py::arg("dim_kind").noconvert(), py::arg("z_lo").noconvert(), \
      py::arg("z_scale").noconvert(), py::arg("knot_offsets").noconvert(),                  \
      py::arg("knots").noconvert(), py::arg("out_kind").noconvert(),                        \
      py::arg("level_offsets").noconvert(), py::arg("levels_i64").noconvert(),              \
      py::arg("levels_f64").noconvert(), py::arg("null_dim").noconvert(),                   \
      py::arg("round_mode").noconvert(), py::arg("round_q").noconvert(), py::arg("outputs")
  m.def("copula_sample", &sample, SC_PLAN_ARG_NAMES, py::arg("key0"), py::arg("key1"),
        py::arg("stream"), py::arg("row_offset"), py::arg("num_threads"));
  m.def("copula_sample_rules", &sample_rules, SC_PLAN_ARG_NAMES, py::arg("key0"),
        py::arg("key1"), py::arg("stream"), py::arg("row_offset"), py::arg("code").noconvert(),
        py::arg("n_registers"), py::arg("const_f64").noconvert(),
        py::arg("const_i64").noconvert(), py::arg("column_dims").noconvert(),
        py::arg("column_types").noconvert(), py::arg("derived"),
        py::arg("derived_types").noconvert(), py::arg("mask").noconvert(),
        py::arg("counts").noconvert(), py::arg("limit"), py::arg("num_threads"));
  m.def("copula_map", &map, SC_PLAN_ARG_NAMES, py::arg("z").noconvert(),
        py::arg("num_threads"));
  m.def("copula_correlate",
        [](Array<double> chol, Array<double> z_raw, Array<double> z, int num_threads) {
          const py::ssize_t d = chol.ndim() == 2 ? chol.shape(0) : -1;
          if (d < 0 || chol.shape(1) != d || z_raw.ndim() != 2 || z_raw.shape(0) != d ||
              z.ndim() != 2 || z.shape(0) != d || z.shape(1) != z_raw.shape(1))
            throw std::invalid_argument("chol must be d x d, z_raw and z d x n");
          if (!z.writeable()) throw std::invalid_argument("z is read-only");
          const size_t n = static_cast<size_t>(z_raw.shape(1));
          const double *l = chol.data(), *in = z_raw.data();
          double* out = z.mutable_data();
          py::gil_scoped_release release;
          copula_correlate(l, static_cast<int>(d), in, out, n, num_threads);
        },
        py::arg("chol").noconvert(), py::arg("z_raw").noconvert(), py::arg("z").noconvert(),
        py::arg("num_threads"));
  m.def("copula_table_lookup",
        [](Array<double> z, double z_lo, double z_scale, Array<double> table, int8_t round_mode,
           double round_q, Array<double> out, int num_threads) {
          if (out.size() != z.size() || table.size() < 2 || !out.writeable())
            throw std::invalid_argument("out must be writable and match z; table needs 2 knots");
          const double *zp = z.data(), *tp = table.data();
          double* op = out.mutable_data();
          const size_t n = static_cast<size_t>(z.size());
          const int64_t k = table.size();
          py::gil_scoped_release release;
          copula_table_lookup(zp, n, z_lo, z_scale, tp, k, round_mode, round_q, op, num_threads);
        },
        py::arg("z").noconvert(), py::arg("z_lo"), py::arg("z_scale"),
        py::arg("table").noconvert(), py::arg("round_mode"), py::arg("round_q"),
        py::arg("out").noconvert(), py::arg("num_threads"));
  m.def("copula_threshold_codes",
        [](Array<double> z, Array<double> thresholds, Array<int32_t> out, int num_threads) {
          if (out.size() != z.size() || !out.writeable())
            throw std::invalid_argument("out must be writable and match z");
          const double *zp = z.data(), *tp = thresholds.data();
          int32_t* op = out.mutable_data();
          const size_t n = static_cast<size_t>(z.size());
          const int64_t k = thresholds.size();
          py::gil_scoped_release release;
          copula_threshold_codes(zp, n, tp, k, op, num_threads);
        },
        py::arg("z").noconvert(), py::arg("thresholds").noconvert(), py::arg("out").noconvert(),
        py::arg("num_threads"));
}

}  // namespace synthcore::bindings
