// Bindings for synthcore/dp_noise.hpp (tables built and arguments validated in
// synthcore/dp/mechanisms.py).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <stdexcept>

#include "synthcore/dp_noise.hpp"

namespace py = pybind11;

namespace synthcore::bindings {

void register_dp_noise(py::module_& m) {
  using U64 = py::array_t<uint64_t, py::array::c_style>;
  using U32 = py::array_t<uint32_t, py::array::c_style>;
  using I32 = py::array_t<int32_t, py::array::c_style>;
  using I64 = py::array_t<int64_t, py::array::c_style>;
  using F64 = py::array_t<double, py::array::c_style>;
  // every index a search can form must stay inside the arrays
  auto tables_of = [](I64& multipliers, I64& starts,
                      I32& window_log2, I32& guide_bits, I64& guide_starts, I32& guide,
                      U64& t_hi, U32& t_lo) {
    const py::ssize_t segments = multipliers.size();
    if (segments < 1 || starts.size() != segments || window_log2.size() != segments ||
        guide_bits.size() != segments || guide_starts.size() != segments ||
        t_lo.size() != t_hi.size())
      throw std::invalid_argument("inconsistent noise tables");
    for (py::ssize_t s = 0; s < segments; ++s) {
      const int32_t w = window_log2.data()[s], m = guide_bits.data()[s];
      if (w < 1 || w > 30 || m == 0 || m < -16 || m > 16 || starts.data()[s] < 0 ||
          guide_starts.data()[s] < 0)
        throw std::invalid_argument("noise table segment out of range");
      const int64_t buckets = m > 0 ? int64_t{97 - m} << m : int64_t{1} << -m;
      if (guide_starts.data()[s] + buckets > guide.size())
        throw std::invalid_argument("noise table segment out of range");
      const int32_t* g = guide.data() + guide_starts.data()[s];
      for (int64_t b = 0; b < buckets; ++b)
        if (g[b] < 0 || starts.data()[s] + g[b] + (int64_t{1} << w) > t_hi.size())
          throw std::invalid_argument("noise table guide out of range");
    }
    return NoiseTables{static_cast<int>(segments), multipliers.data(),
                       starts.data(), window_log2.data(), guide_bits.data(),
                       guide_starts.data(), guide.data(), t_hi.data(), t_lo.data()};
  };
  auto key_of = [](U32& key) {
    if (key.size() != 8) throw std::invalid_argument("a ChaCha20 key is 8 uint32 words");
    ChachaKey k{};
    for (int i = 0; i < 8; ++i) k.words[i] = key.data()[i];
    return k;
  };
  m.def("integer_noise",
        [tables_of, key_of](U32 key, uint64_t stream, uint64_t word_offset,
                            I64 multipliers, I64 starts, I32 window_log2,
                            I32 guide_bits, I64 guide_starts, I32 guide, U64 t_hi, U32 t_lo,
                            I64 x, I64 out, int num_threads) {
          const ChachaKey k = key_of(key);
          const NoiseTables tb = tables_of(multipliers, starts, window_log2,
                                           guide_bits, guide_starts, guide, t_hi, t_lo);
          if (!out.writeable() || out.size() != x.size())
            throw std::invalid_argument("out must be writable and match x");
          const int64_t* xs = x.data();
          int64_t* o = out.mutable_data();
          const size_t n = static_cast<size_t>(out.size());
          py::gil_scoped_release release;
          integer_noise(k, stream, word_offset, tb, xs, o, n, num_threads);
        },
        py::arg("key").noconvert(), py::arg("stream"), py::arg("word_offset"),
        py::arg("multipliers").noconvert(),
        py::arg("starts").noconvert(), py::arg("window_log2").noconvert(),
        py::arg("guide_bits").noconvert(), py::arg("guide_starts").noconvert(),
        py::arg("guide").noconvert(), py::arg("t_hi").noconvert(), py::arg("t_lo").noconvert(),
        py::arg("x").noconvert(), py::arg("out").noconvert(), py::arg("num_threads"));
  m.def("grid_float_noise",
        [tables_of, key_of](U32 key, uint64_t stream, uint64_t word_offset,
                            I64 multipliers, I64 starts, I32 window_log2,
                            I32 guide_bits, I64 guide_starts, I32 guide, U64 t_hi, U32 t_lo,
                            F64 x, double granularity, F64 out, int num_threads) {
          const ChachaKey k = key_of(key);
          const NoiseTables tb = tables_of(multipliers, starts, window_log2,
                                           guide_bits, guide_starts, guide, t_hi, t_lo);
          if (!out.writeable() || out.size() != x.size())
            throw std::invalid_argument("out must be writable and match x");
          int exponent = 0;
          if (!(granularity > 0) || std::frexp(granularity, &exponent) != 0.5)
            throw std::invalid_argument("granularity must be a power of two");
          const double* xs = x.data();
          double* o = out.mutable_data();
          const size_t n = static_cast<size_t>(out.size());
          py::gil_scoped_release release;
          grid_float_noise(k, stream, word_offset, tb, xs, granularity, o, n, num_threads);
        },
        py::arg("key").noconvert(), py::arg("stream"), py::arg("word_offset"),
        py::arg("multipliers").noconvert(),
        py::arg("starts").noconvert(), py::arg("window_log2").noconvert(),
        py::arg("guide_bits").noconvert(), py::arg("guide_starts").noconvert(),
        py::arg("guide").noconvert(), py::arg("t_hi").noconvert(), py::arg("t_lo").noconvert(),
        py::arg("x").noconvert(), py::arg("granularity"), py::arg("out").noconvert(),
        py::arg("num_threads"));
  m.def("randomized_response",
        [](U32 key, uint64_t stream, uint64_t word_offset,
           py::array_t<int64_t, py::array::c_style> codes,
           py::array_t<int64_t, py::array::c_style> out, uint64_t keep_hi, uint32_t keep_lo,
           uint64_t other_hi, uint32_t other_lo, int num_threads) {
          if (key.size() != 8) throw std::invalid_argument("a ChaCha20 key is 8 uint32 words");
          if (out.size() != codes.size() || !out.writeable())
            throw std::invalid_argument("out must be writable and match codes");
          if (other_hi == 0 && other_lo == 0) throw std::invalid_argument("empty interval");
          ChachaKey k{};
          for (int i = 0; i < 8; ++i) k.words[i] = key.data()[i];
          const int64_t* c = codes.data();
          int64_t* o = out.mutable_data();
          const size_t n = static_cast<size_t>(codes.size());
          py::gil_scoped_release release;
          randomized_response(k, stream, word_offset, c, o, n, keep_hi, keep_lo, other_hi,
                              other_lo, num_threads);
        },
        py::arg("key").noconvert(), py::arg("stream"), py::arg("word_offset"),
        py::arg("codes").noconvert(), py::arg("out").noconvert(), py::arg("keep_hi"),
        py::arg("keep_lo"), py::arg("other_hi"), py::arg("other_lo"), py::arg("num_threads"));
}

}  // namespace synthcore::bindings
