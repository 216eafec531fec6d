"""pytest-benchmark suite for synthcore.random (not part of the default test run).

    pytest benchmarks/ --benchmark-columns=median,ops

Each group holds the NumPy baseline and synthcore on every usable backend.
"""
import numpy as np
import pytest

import synthcore
from synthcore import random as sr

N = 4_000_000
BACKENDS = [b for b in synthcore.available_backends() if b != "numpy"]


def _sync(backend):
    if backend == "cuda":
        import cupy
        return cupy.cuda.get_current_stream().synchronize
    return lambda: None


def _out(backend, dtype):
    if backend == "cuda":
        import cupy
        return cupy.empty(N, dtype=dtype)
    return np.empty(N, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numpy_standard_normal_baseline(benchmark, dtype):
    benchmark.group = f"normal-{dtype}"
    rng = np.random.default_rng(1)
    out = np.empty(N, dtype=dtype)
    benchmark(rng.standard_normal, out=out, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_synthcore_normal(benchmark, backend, dtype):
    benchmark.group = f"normal-{dtype}"
    out, sync = _out(backend, dtype), _sync(backend)

    def run():
        sr.normal(out=out, seed=1, backend=backend)
        sync()
    benchmark(run)


def test_numpy_random_baseline(benchmark):
    benchmark.group = "uniform-float64"
    rng = np.random.default_rng(1)
    out = np.empty(N)
    benchmark(rng.random, out=out)


@pytest.mark.parametrize("backend", BACKENDS)
def test_synthcore_uniform(benchmark, backend):
    benchmark.group = "uniform-float64"
    out, sync = _out(backend, "float64"), _sync(backend)

    def run():
        sr.uniform(out=out, seed=1, backend=backend)
        sync()
    benchmark(run)


@pytest.mark.parametrize("backend", BACKENDS)
def test_synthcore_raw_words(benchmark, backend):
    benchmark.group = "raw-uint32"
    out, sync = _out(backend, "uint32"), _sync(backend)

    def run():
        sr.random_raw(out=out, seed=1, backend=backend)
        sync()
    benchmark(run)
