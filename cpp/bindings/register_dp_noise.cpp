// Bindings for synthcore/dp_noise.hpp (tables built and arguments validated in
// synthcore/dp/mechanisms.py).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "synthcore/dp_noise.hpp"

namespace py = pybind11;

namespace synthcore::bindings {

void register_dp_noise(py::module_& m) {
  using U64 = py::array_t<uint64_t, py::array::c_style>;
  using U32 = py::array_t<uint32_t, py::array::c_style>;
  m.def("discrete_laplace_noise",
        [](U32 key, uint64_t stream, uint64_t word_offset, int m_log2, U64 a_hi, U32 a_lo,
           U64 b_hi, U32 b_lo, py::array_t<int64_t, py::array::c_style> out, int num_threads) {
          if (key.size() != 8) throw std::invalid_argument("a ChaCha20 key is 8 uint32 words");
          if (a_hi.size() != a_lo.size() || b_hi.size() != b_lo.size() ||
              a_hi.size() != (int64_t{1} << m_log2) - 1 || m_log2 < 0 || m_log2 > 20)
            throw std::invalid_argument("inconsistent geometric tables");
          if (!out.writeable()) throw std::invalid_argument("out is read-only");
          ChachaKey k{};
          for (int i = 0; i < 8; ++i) k.words[i] = key.data()[i];
          const GeometricTables tb{m_log2, a_hi.data(), a_lo.data(), a_hi.size(),
                                   b_hi.data(), b_lo.data(), b_hi.size()};
          int64_t* o = out.mutable_data();
          const size_t n = static_cast<size_t>(out.size());
          py::gil_scoped_release release;
          discrete_laplace_noise(k, stream, word_offset, tb, o, n, num_threads);
        },
        py::arg("key").noconvert(), py::arg("stream"), py::arg("word_offset"), py::arg("m"),
        py::arg("a_hi").noconvert(), py::arg("a_lo").noconvert(), py::arg("b_hi").noconvert(),
        py::arg("b_lo").noconvert(), py::arg("out").noconvert(), py::arg("num_threads"));
}

}  // namespace synthcore::bindings
