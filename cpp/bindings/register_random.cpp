// Bindings for synthcore/random.hpp. Arguments are validated in Python
// (synthcore/random.py); these checks only keep a wrong call from the inside
// from touching memory it does not own.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "synthcore/random.hpp"

namespace py = pybind11;

namespace synthcore::bindings {
namespace {

template <class T>
using Array = py::array_t<T, py::array::c_style>;

template <class T>
T* writable(Array<T>& a, const char* name) {
  if (!a.writeable()) throw std::invalid_argument(std::string(name) + " is read-only");
  return a.mutable_data();
}

RandomStream make_stream(uint32_t key0, uint32_t key1, uint64_t stream) {
  return RandomStream{PhiloxKey{key0, key1}, stream};
}

template <class T>
void def_float_kernels(py::module_& m, const char* suffix) {
  m.def((std::string("random_uniform_") + suffix).c_str(),
        [](Array<T> out, uint32_t key0, uint32_t key1, uint64_t stream, uint64_t offset,
           double low, double width, int num_threads) {
          T* data = writable(out, "out");
          const size_t n = static_cast<size_t>(out.size());
          py::gil_scoped_release release;
          random_uniform<T>(make_stream(key0, key1, stream), offset, data, n, low, width,
                            num_threads);
        },
        py::arg("out").noconvert(), py::arg("key0"), py::arg("key1"), py::arg("stream"),
        py::arg("offset"), py::arg("low"), py::arg("width"), py::arg("num_threads"));
  m.def((std::string("random_normal_") + suffix).c_str(),
        [](Array<T> out, uint32_t key0, uint32_t key1, uint64_t stream, uint64_t offset,
           double loc, double scale, int num_threads) {
          T* data = writable(out, "out");
          const size_t n = static_cast<size_t>(out.size());
          py::gil_scoped_release release;
          random_normal<T>(make_stream(key0, key1, stream), offset, data, n, loc, scale,
                           num_threads);
        },
        py::arg("out").noconvert(), py::arg("key0"), py::arg("key1"), py::arg("stream"),
        py::arg("offset"), py::arg("loc"), py::arg("scale"), py::arg("num_threads"));
}

template <class T>
void def_integer_kernel(py::module_& m, const char* suffix) {
  m.def((std::string("random_integers_") + suffix).c_str(),
        [](Array<T> out, uint32_t key0, uint32_t key1, uint64_t stream, uint64_t offset,
           int64_t low, uint64_t range, int num_threads) {
          T* data = writable(out, "out");
          const size_t n = static_cast<size_t>(out.size());
          py::gil_scoped_release release;
          random_integers<T>(make_stream(key0, key1, stream), offset, data, n, low, range,
                             num_threads);
        },
        py::arg("out").noconvert(), py::arg("key0"), py::arg("key1"), py::arg("stream"),
        py::arg("offset"), py::arg("low"), py::arg("range"), py::arg("num_threads"));
}

}  // namespace

void register_random(py::module_& m) {
  m.def("philox4x32_10",
        [](Array<uint32_t> counters, uint32_t key0, uint32_t key1, Array<uint32_t> out) {
          if (counters.size() % 4 != 0 || out.size() != counters.size())
            throw std::invalid_argument("counters and out must hold n x 4 words");
          uint32_t* dst = writable(out, "out");
          philox4x32_10_blocks(counters.data(), PhiloxKey{key0, key1}, dst,
                               static_cast<size_t>(counters.size() / 4));
        },
        py::arg("counters").noconvert(), py::arg("key0"), py::arg("key1"),
        py::arg("out").noconvert());
  m.def("random_raw",
        [](Array<uint32_t> out, uint32_t key0, uint32_t key1, uint64_t stream, uint64_t offset,
           int num_threads) {
          uint32_t* data = writable(out, "out");
          const size_t n = static_cast<size_t>(out.size());
          py::gil_scoped_release release;
          random_raw(make_stream(key0, key1, stream), offset, data, n, num_threads);
        },
        py::arg("out").noconvert(), py::arg("key0"), py::arg("key1"), py::arg("stream"),
        py::arg("offset"), py::arg("num_threads"));
  def_float_kernels<double>(m, "f64");
  def_float_kernels<float>(m, "f32");
  def_integer_kernel<int64_t>(m, "i64");
  def_integer_kernel<int32_t>(m, "i32");
  m.def("tail_gather_isas", [] {
    py::list isas;
    const int best = static_cast<int>(detail::best_compress_isa());
    const char* names[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i <= best; ++i) isas.append(names[i]);
    return isas;
  });
  m.def("gather_tails",
        [](Array<double> p, const std::string& isa) {
          detail::CompressIsa which;
          if (isa == "scalar") which = detail::CompressIsa::kScalar;
          else if (isa == "avx2") which = detail::CompressIsa::kAvx2;
          else if (isa == "avx512") which = detail::CompressIsa::kAvx512;
          else throw std::invalid_argument("isa must be scalar, avx2 or avx512");
          const size_t n = static_cast<size_t>(p.size());
          Array<double> tail_p(static_cast<py::ssize_t>(n));
          Array<uint32_t> tail_at(static_cast<py::ssize_t>(n));
          const size_t nt = detail::gather_tails_with(which, p.data(), n, tail_p.mutable_data(),
                                                      tail_at.mutable_data());
          return py::make_tuple(tail_p[py::slice(0, static_cast<py::ssize_t>(nt), 1)],
                                tail_at[py::slice(0, static_cast<py::ssize_t>(nt), 1)]);
        },
        py::arg("p").noconvert(), py::arg("isa"));
  m.def("ndtri_lower",
        [](Array<double> p, Array<double> out, int num_threads) {
          if (out.size() != p.size()) throw std::invalid_argument("p and out differ in size");
          double* dst = writable(out, "out");
          const double* src = p.data();
          const size_t n = static_cast<size_t>(p.size());
          py::gil_scoped_release release;
          ndtri_lower(src, dst, n, num_threads);
        },
        py::arg("p").noconvert(), py::arg("out").noconvert(), py::arg("num_threads"));
}

}  // namespace synthcore::bindings
