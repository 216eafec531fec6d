// Bindings for synthcore/gan.hpp. The plan is built in Python (synthcore/_gan_native.py);
// here every size is checked so that a wrong call cannot read or write out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "synthcore/gan.hpp"

namespace py = pybind11;

namespace synthcore::bindings {
namespace {

template <class T>
using Array = py::array_t<T, py::array::c_style>;

const float* f32(const py::handle& h, py::ssize_t size, const std::string& what) {
  if (h.is_none()) {
    if (size == 0) return nullptr;
    throw std::invalid_argument(what + " is missing");
  }
  auto a = py::cast<py::array>(h);
  if (!(a.flags() & py::array::c_style) || a.dtype().kind() != 'f' || a.itemsize() != 4 ||
      a.size() != size)
    throw std::invalid_argument(what + " must be a contiguous float32 array of " +
                                std::to_string(size) + " values");
  return static_cast<const float*>(a.data());
}

GanLayer parse_layer(const py::tuple& t, int C, int S, bool hidden, const std::string& what) {
  if (t.size() != 11) throw std::invalid_argument(what + ": expected 11 fields");
  GanLayer L{};
  L.in_off = t[0].cast<int>();
  L.in_w = t[1].cast<int>();
  L.out_off = t[2].cast<int>();
  L.out_w = t[3].cast<int>();
  L.ld = (L.out_w + 15) / 16 * 16;
  if (L.in_off < 0 || L.in_w < 1 || L.in_off + L.in_w > S || L.out_w < 1 ||
      (hidden && (L.out_off < 0 || L.out_off + L.out_w > S)))
    throw std::invalid_argument(what + ": layer ranges outside the buffer");
  L.wt = f32(t[4], static_cast<py::ssize_t>(L.in_w) * L.ld, what + ".wt");
  L.b = f32(t[5], L.ld, what + ".b");
  L.wc = t[6].is_none() ? nullptr : f32(t[6], static_cast<py::ssize_t>(C) * L.ld, what + ".wc");
  L.batch_norm = t[7].cast<bool>();
  L.gamma = L.batch_norm ? f32(t[8], L.out_w, what + ".gamma") : nullptr;
  L.beta = L.batch_norm ? f32(t[9], L.out_w, what + ".beta") : nullptr;
  L.eps = t[10].cast<double>();
  return L;
}

void sample(py::list layers, py::tuple final_layer, py::list columns, Array<double> cond_cum,
            Array<double> means, Array<double> stds, py::object sigma, int E, int C, int D,
            int S, bool tvae, uint32_t key0, uint32_t key1, uint64_t row_begin, int64_t n,
            int64_t block_rows, bool compat, int cond_fixed, int num_threads) {
  if (E < 1 || C < 0 || D < 1 || S < E) throw std::invalid_argument("bad E, C, D or S");
  if (n < 0 || block_rows < 1) throw std::invalid_argument("n and block_rows must be positive");
  if (compat && n % block_rows) throw std::invalid_argument("compat mode: n % block_rows != 0");
  if (cond_fixed >= C || cond_fixed < -1) throw std::invalid_argument("cond_fixed out of range");
  if (cond_cum.size() != C) throw std::invalid_argument("cond_cum must have C values");
  if (means.size() != stds.size()) throw std::invalid_argument("means and stds differ in size");
  GanPlan P;
  P.E = E; P.C = C; P.D = D; P.S = S; P.tvae = tvae;
  P.cond_cum = cond_cum.data();
  P.means = means.data();
  P.stds = stds.data();
  P.sigma = tvae ? f32(sigma, D, "sigma") : nullptr;
  for (size_t i = 0; i < layers.size(); ++i)
    P.hidden.push_back(parse_layer(py::cast<py::tuple>(layers[i]), C, S, true,
                                   "layer " + std::to_string(i)));
  P.final_layer = parse_layer(final_layer, C, S, false, "output layer");
  if (P.final_layer.out_w != D) throw std::invalid_argument("output layer width must be D");
  for (size_t i = 0; i < columns.size(); ++i) {
    auto t = py::cast<py::tuple>(columns[i]);
    const std::string what = "column " + std::to_string(i);
    if (t.size() != 5) throw std::invalid_argument(what + ": expected 5 fields");
    GanColumn c{t[0].cast<int32_t>(), t[1].cast<int32_t>(), t[2].cast<int32_t>(),
                t[3].cast<int32_t>(), nullptr};
    const bool cont = c.kind != kGanDiscrete;
    if (c.kind < 0 || c.kind > 2 || c.width < 1 || c.at < 0 ||
        c.at + c.width + (cont ? 1 : 0) > D ||
        (cont && (c.mode_off < 0 || c.mode_off + c.width > means.size())))
      throw std::invalid_argument(what + ": span outside the output");
    auto out = py::cast<py::array>(t[4]);
    const char want = c.kind == kGanContF64 ? 'f' : 'i';
    const py::ssize_t size = c.kind == kGanDiscrete ? 4 : 8;
    if (!(out.flags() & py::array::c_style) || !out.writeable() || out.dtype().kind() != want ||
        out.itemsize() != size || out.ndim() != 1 || out.shape(0) < n)
      throw std::invalid_argument(what + ": output must be a writable 1-d array of n values "
                                  "(float64, int64 or int32 by kind)");
    c.out = out.mutable_data();
    P.columns.push_back(c);
  }
  py::gil_scoped_release release;
  gan_sample(P, rng::PhiloxKey{key0, key1}, row_begin, static_cast<size_t>(n),
             static_cast<size_t>(block_rows), compat, cond_fixed, num_threads);
}

}  // namespace

void register_gan(py::module_& m) {
  m.def("gan_sample", &sample, py::arg("layers"), py::arg("final_layer"), py::arg("columns"),
        py::arg("cond_cum").noconvert(), py::arg("means").noconvert(),
        py::arg("stds").noconvert(), py::arg("sigma"), py::arg("E"), py::arg("C"), py::arg("D"),
        py::arg("S"), py::arg("tvae"), py::arg("key0"), py::arg("key1"), py::arg("row_begin"),
        py::arg("n"), py::arg("block_rows"), py::arg("compat"), py::arg("cond_fixed"),
        py::arg("num_threads"));
  m.def("gan_gemm",
        [](Array<float> x, Array<float> wt, Array<float> b, Array<float> y) {
          if (x.ndim() != 2 || wt.ndim() != 2 || y.ndim() != 2 || wt.shape(0) != x.shape(1) ||
              wt.shape(1) % 16 || b.size() != wt.shape(1) || y.shape(0) != x.shape(0) ||
              y.shape(1) != wt.shape(1) || !y.writeable())
            throw std::invalid_argument("gan_gemm: x (m, k), wt (k, ld), b (ld), y (m, ld), "
                                        "ld a multiple of 16");
          const float *xp = x.data(), *wp = wt.data(), *bp = b.data();
          float* yp = y.mutable_data();
          const size_t m = x.shape(0), k = x.shape(1), ld = wt.shape(1);
          py::gil_scoped_release release;
          gan_gemm(xp, k, m, k, wp, bp, ld, yp);
        },
        py::arg("x").noconvert(), py::arg("wt").noconvert(), py::arg("b").noconvert(),
        py::arg("y").noconvert());
}

}  // namespace synthcore::bindings
