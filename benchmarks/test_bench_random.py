"""pytest-benchmark suite for synthcore.random (not part of the default test run).

    pytest benchmarks/ --benchmark-columns=median,ops

Each group holds the NumPy baseline and synthcore on every usable native backend,
filling a preallocated array of N elements.
"""
import numpy as np
import pytest

import synthcore
from synthcore import random as sr

N = 4_000_000
BACKENDS = [b for b in synthcore.available_backends() if b != "numpy"]
# group -> (dtype, synthcore kernel, NumPy Generator method doing the same job)
GROUPS = {
    "normal-float64": ("float64", sr.normal, "standard_normal"),
    "normal-float32": ("float32", sr.normal, "standard_normal"),
    "uniform-float64": ("float64", sr.uniform, "random"),
    "raw-uint32": ("uint32", sr.random_raw, None),
}


@pytest.mark.parametrize("group", [g for g, v in GROUPS.items() if v[2]])
def test_numpy_baseline(benchmark, group):
    dtype, _, method = GROUPS[group]
    benchmark.group = group
    out = np.empty(N, dtype=dtype)
    fill = getattr(np.random.default_rng(1), method)
    benchmark(fill, out=out, dtype=dtype)


@pytest.mark.parametrize("group", list(GROUPS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_synthcore(benchmark, backend, group):
    dtype, kernel, _ = GROUPS[group]
    benchmark.group = group
    if backend == "cuda":
        import cupy
        out, sync = cupy.empty(N, dtype=dtype), cupy.cuda.get_current_stream().synchronize
    else:
        out, sync = np.empty(N, dtype=dtype), (lambda: None)

    def run():
        kernel(out=out, seed=1, backend=backend)
        sync()
    benchmark(run)
