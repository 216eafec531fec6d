"""Shared fixtures: ``backend`` runs a test on every backend present.

The cuda parameter carries the ``gpu`` marker and is skipped cleanly where
CuPy, a GPU or the _cuda module is missing. The cpu backend is never skipped:
a missing _core is a build failure, reported by test_build.py.
"""
import numpy as np
import pytest

from synthcore import _backend


def _cuda_skip_reason():
    return None if _backend.cuda_usable() else _backend._cuda_status()[1]


BACKEND_PARAMS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not _backend.cuda_usable(), reason=str(_cuda_skip_reason())),
    ]),
]
NATIVE_PARAMS = BACKEND_PARAMS[1:]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request):
    return request.param


@pytest.fixture(params=NATIVE_PARAMS)
def native_backend(request):
    """cpu and cuda: the backends checked against the NumPy oracle."""
    return request.param


@pytest.fixture
def xp(backend):
    if backend == "cuda":
        import cupy
        return cupy
    return np


def to_host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def ulp_distance(a, b):
    """Distance in units in the last place between same-dtype float arrays."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype
    itype = np.int64 if a.dtype == np.float64 else np.int32
    ai = a.view(itype).astype(np.int64)
    bi = b.view(itype).astype(np.int64)
    low = np.iinfo(itype).min
    ai = np.where(ai < 0, low - ai, ai)
    bi = np.where(bi < 0, low - bi, bi)
    return np.abs(ai - bi)
