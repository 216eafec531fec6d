// synthcore._core: the CPU kernels. One register_<topic>.cpp per topic.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <thread>

namespace py = pybind11;

namespace synthcore::bindings {
void register_random(py::module_& m);
void register_copula(py::module_& m);
void register_secure_random(py::module_& m);
void register_dp_noise(py::module_& m);
void register_rules(py::module_& m);
void register_gan(py::module_& m);
void register_compact(py::module_& m);
void register_buffers(py::module_& m);
}

namespace {

// Which of the target_clones variants the loader picks on this CPU.
const char* cpu_dispatch_level() {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512)";
  if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2, FMA)";
  return "x86-64 baseline (SSE2)";
#else
  return "compiler default (no runtime dispatch)";
#endif
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "synthcore CPU kernels (C++). Use the public API in synthcore, not this module.";
  m.def("build_info", [] {
    py::dict info;
    info["version"] = SYNTHCORE_VERSION;
    info["compiler"] = SYNTHCORE_CXX_COMPILER;
    info["build_type"] = SYNTHCORE_BUILD_TYPE;
    info["cpu_dispatch"] = cpu_dispatch_level();
    info["hardware_threads"] = std::thread::hardware_concurrency();
    return info;
  });
  synthcore::bindings::register_random(m);
  synthcore::bindings::register_copula(m);
  synthcore::bindings::register_secure_random(m);
  synthcore::bindings::register_dp_noise(m);
  synthcore::bindings::register_rules(m);
  synthcore::bindings::register_gan(m);
  synthcore::bindings::register_compact(m);
  synthcore::bindings::register_buffers(m);
}
