// synthcore._cuda: launchers for the CUDA kernels. Takes device pointers and
// the CUDA stream as integers (CuPy's `.data.ptr` and current stream `.ptr`);
// the Python side (synthcore/random.py) validates and allocates.
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "copula.cuh"
#include "dp_noise.cuh"
#include "gan.cuh"
#include "random.cuh"
#include "rules.cuh"
#include "secure_random.cuh"

namespace py = pybind11;
namespace sc = synthcore::cuda;

namespace {
sc::StreamArgs args(uint32_t key0, uint32_t key1, uint64_t stream, uint64_t offset) {
  return sc::StreamArgs{key0, key1, stream, offset};
}
}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "synthcore CUDA kernels. Use the public API in synthcore, not this module.";
  m.def("build_info", [] {
    const sc::RuntimeInfo rt = sc::runtime_info();
    py::dict info;
    info["compiler"] = SYNTHCORE_CUDA_COMPILER;
    info["architectures"] = SYNTHCORE_CUDA_ARCHS;
    info["runtime_version"] = rt.runtime_version;
    info["driver_version"] = rt.driver_version;
    info["device_count"] = rt.device_count;
    return info;
  });
  m.def("philox4x32_10", &sc::philox4x32_10_blocks, py::arg("counters"), py::arg("key0"),
        py::arg("key1"), py::arg("out"), py::arg("n_blocks"), py::arg("cuda_stream"));
  m.def("random_raw",
        [](uintptr_t out, size_t n, uint32_t k0, uint32_t k1, uint64_t stream, uint64_t offset,
           uintptr_t s) { sc::random_raw(out, n, args(k0, k1, stream, offset), s); });
#define SC_DEF_FLOAT(name)                                                                 \
  m.def(#name, [](uintptr_t out, size_t n, uint32_t k0, uint32_t k1, uint64_t stream,     \
                  uint64_t offset, double a, double b, uintptr_t s) {                     \
    sc::name(out, n, args(k0, k1, stream, offset), a, b, s);                              \
  })
  SC_DEF_FLOAT(random_uniform_f64);
  SC_DEF_FLOAT(random_uniform_f32);
  SC_DEF_FLOAT(random_normal_f64);
  SC_DEF_FLOAT(random_normal_f32);
#undef SC_DEF_FLOAT
  m.def("secure_random_raw", &sc::secure_random_raw, py::arg("key"), py::arg("stream"),
        py::arg("offset"), py::arg("out"), py::arg("n"), py::arg("cuda_stream"));
  m.def("integer_noise_from_words", &sc::integer_noise_from_words, py::arg("words"),
        py::arg("segments"), py::arg("multipliers"),
        py::arg("starts"), py::arg("window_log2"), py::arg("guide_bits"),
        py::arg("guide_starts"), py::arg("guide"), py::arg("t_hi"), py::arg("t_lo"),
        py::arg("x"), py::arg("out"), py::arg("n"), py::arg("cuda_stream"));
  m.def("randomized_response_from_words", &sc::randomized_response_from_words,
        py::arg("words"), py::arg("codes"), py::arg("out"), py::arg("n"), py::arg("keep_hi"),
        py::arg("keep_lo"), py::arg("other_hi"), py::arg("other_lo"), py::arg("cuda_stream"));
  m.def("copula_max_dims", [] { return sc::kCopulaMaxDims; });
  m.def("rules_max_registers", [] { return sc::kRulesMaxRegisters; });
  m.def("rules_evaluate", &sc::rules_evaluate, py::arg("code"), py::arg("n_instr"),
        py::arg("const_f64"), py::arg("const_i64"), py::arg("columns"), py::arg("outputs"),
        py::arg("n"), py::arg("mask"), py::arg("counts"), py::arg("cuda_stream"));
  auto plan_of = [](int d, py::tuple a) {
    if (a.size() != 13) throw std::invalid_argument("a device plan has 13 pointers");
    auto u = [&](int i) { return a[i].cast<uintptr_t>(); };
    return sc::DevicePlan{d, u(0), u(1), u(2), u(3), u(4), u(5), u(6), u(7), u(8), u(9),
                          u(10), u(11), u(12)};
  };
  m.def("copula_sample",
        [plan_of](int d, py::tuple plan, uintptr_t outputs, size_t n, uint32_t k0, uint32_t k1,
                  uint64_t stream, uint64_t row_offset, uintptr_t s) {
          sc::copula_sample(plan_of(d, plan), outputs, n, k0, k1, stream, row_offset, s);
        });
  m.def("copula_map", [plan_of](int d, py::tuple plan, uintptr_t z, uintptr_t outputs, size_t n,
                                uintptr_t s) { sc::copula_map(plan_of(d, plan), z, outputs, n, s); });
#define SC_DEF_INT(name)                                                                   \
  m.def(#name, [](uintptr_t out, size_t n, uint32_t k0, uint32_t k1, uint64_t stream,     \
                  uint64_t offset, int64_t low, uint64_t range, uintptr_t s) {            \
    sc::name(out, n, args(k0, k1, stream, offset), low, range, s);                        \
  })
  SC_DEF_INT(random_integers_i64);
  SC_DEF_INT(random_integers_i32);
#undef SC_DEF_INT
  m.def("gan_prologue", &sc::gan_prologue, py::arg("buf"), py::arg("S"), py::arg("E"),
        py::arg("n"), py::arg("key0"), py::arg("key1"), py::arg("row0"), py::arg("cond_cum"),
        py::arg("C"), py::arg("cond_fixed"), py::arg("cond"), py::arg("cuda_stream"));
  m.def("gan_hidden_epilogue", &sc::gan_hidden_epilogue, py::arg("y"), py::arg("ld"),
        py::arg("b"), py::arg("wc"), py::arg("cond"), py::arg("n"), py::arg("w"),
        py::arg("buf"), py::arg("S"), py::arg("out_off"), py::arg("batch_rows"),
        py::arg("gamma"), py::arg("beta"), py::arg("eps"), py::arg("scratch"),
        py::arg("cuda_stream"));
  m.def("gan_decode", &sc::gan_decode, py::arg("y"), py::arg("ld"), py::arg("b"), py::arg("wc"),
        py::arg("cond"), py::arg("n"), py::arg("D"), py::arg("columns"), py::arg("n_columns"),
        py::arg("outputs"), py::arg("means"), py::arg("stds"), py::arg("sigma"),
        py::arg("tvae"), py::arg("key0"), py::arg("key1"), py::arg("row0"),
        py::arg("cuda_stream"));
}
