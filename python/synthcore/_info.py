"""``synthcore.info()``: what this install was built with and what can run now."""
from __future__ import annotations

import platform

import numpy as np

from . import _backend


def info() -> dict:
    """Version, built and usable backends, GPU, threads and build flags.

    Looks for a GPU (and so imports CuPy, if installed) only when the CUDA
    module was built.
    """
    from . import __version__

    core = _backend.core_module()
    cuda = _backend.cuda_module()
    result = {
        "version": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "backends_built": list(_backend.built_backends()),
        "backends_usable": list(_backend.available_backends()),
        "backend_setting": _backend.get_backend(),
        "num_threads": _backend.get_num_threads(),
        "gpu": _backend.gpu_name() if cuda is not None else None,
        "cpu_build": dict(core.build_info()) if core is not None else None,
        "cuda_build": dict(cuda.build_info()) if cuda is not None else None,
    }
    if cuda is not None and not _backend.cuda_usable():
        result["cuda_unusable_because"] = _backend._cuda_status()[1]
    return result
