// Bindings for synthcore/secure_random.hpp (validated in synthcore/dp/_generator.py).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "synthcore/secure_random.hpp"

namespace py = pybind11;

namespace synthcore::bindings {
namespace {

template <class T>
using Array = py::array_t<T, py::array::c_style>;

ChachaKey key_of(Array<uint32_t>& key) {
  if (key.size() != 8) throw std::invalid_argument("a ChaCha20 key is 8 uint32 words");
  ChachaKey k{};
  for (int i = 0; i < 8; ++i) k.words[i] = key.data()[i];
  return k;
}

}  // namespace

void register_secure_random(py::module_& m) {
  m.def("chacha20_blocks",
        [](Array<uint32_t> key, Array<uint32_t> counters, Array<uint32_t> out) {
          if (counters.size() % 4 != 0 || out.size() != counters.size() * 4 || !out.writeable())
            throw std::invalid_argument("counters must be n x 4 and out n x 16 words");
          chacha20_blocks(key_of(key), counters.data(), out.mutable_data(),
                          static_cast<size_t>(counters.size() / 4));
        },
        py::arg("key").noconvert(), py::arg("counters").noconvert(), py::arg("out").noconvert());
  m.def("secure_random_raw",
        [](Array<uint32_t> key, uint64_t stream, uint64_t offset, Array<uint32_t> out,
           int num_threads) {
          if (!out.writeable()) throw std::invalid_argument("out is read-only");
          const ChachaKey k = key_of(key);
          uint32_t* data = out.mutable_data();
          const size_t n = static_cast<size_t>(out.size());
          py::gil_scoped_release release;
          secure_random_raw(k, stream, offset, data, n, num_threads);
        },
        py::arg("key").noconvert(), py::arg("stream"), py::arg("offset"),
        py::arg("out").noconvert(), py::arg("num_threads"));
}

}  // namespace synthcore::bindings
