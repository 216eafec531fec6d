"""The native modules were built: _core always, _cuda wherever nvcc exists."""
import shutil

import pytest

from synthcore import _backend


def test_cpu_core_is_built():
    assert _backend.core_module() is not None, "synthcore._core did not build or import"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc on this machine")
def test_cuda_module_built_and_imports_without_gpu():
    # The CUDA runtime is linked statically: importing needs no driver and no GPU.
    cuda = _backend.cuda_module()
    assert cuda is not None, "nvcc is on PATH but synthcore._cuda was not built"
    info = cuda.build_info()
    assert info["runtime_version"] >= 11000
    for arch in ("75", "80", "86", "89", "90"):
        assert arch in info["architectures"]


# ---- SYNTHCORE_CUDA=AUTO|ON|OFF, checked by configuring (not building) the project ----

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def _path_without_nvcc():
    import os
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not os.path.exists(os.path.join(d, "nvcc"))]
    return os.pathsep.join(keep)


def _configure(tmp_path, value, hide_nvcc):
    import os
    import subprocess
    import sys

    import pybind11
    cmake = shutil.which("cmake")
    assert cmake, "cmake is a test requirement"
    env = dict(os.environ)
    env.pop("CUDACXX", None)
    if hide_nvcc:
        env["PATH"] = _path_without_nvcc()
    args = [cmake, "-S", str(REPO), "-B", str(tmp_path / "build"),
            f"-DSYNTHCORE_CUDA={value}", "-DSKBUILD_PROJECT_VERSION=0.0.0",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DPython_EXECUTABLE={sys.executable}"]
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    cache = tmp_path / "build" / "CMakeCache.txt"
    return proc, cache.read_text() if cache.exists() else ""


def test_cuda_on_without_nvcc_fails_loudly(tmp_path):
    proc, _ = _configure(tmp_path, "ON", hide_nvcc=True)
    assert proc.returncode != 0
    assert "SYNTHCORE_CUDA=ON but no CUDA compiler (nvcc) was found" in proc.stderr


def test_cuda_off_never_looks_for_nvcc(tmp_path):
    proc, cache = _configure(tmp_path, "OFF", hide_nvcc=False)
    assert proc.returncode == 0, proc.stderr
    assert "CUDA module OFF" in proc.stdout
    assert "CMAKE_CUDA_COMPILER" not in cache


def test_cuda_auto_without_nvcc_builds_cpu_only(tmp_path):
    proc, _ = _configure(tmp_path, "AUTO", hide_nvcc=True)
    assert proc.returncode == 0, proc.stderr
    assert "nvcc not found, building without the CUDA module" in proc.stdout
    assert "CUDA module OFF" in proc.stdout


def test_cuda_option_rejects_unknown_values(tmp_path):
    proc, _ = _configure(tmp_path, "MAYBE", hide_nvcc=False)
    assert proc.returncode != 0 and "must be AUTO, ON or OFF" in proc.stderr
