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
