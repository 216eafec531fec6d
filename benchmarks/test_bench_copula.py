"""pytest-benchmark suite for the Gaussian copula (not part of the default test run).

    pytest benchmarks/test_bench_copula.py --benchmark-columns=median,ops

Groups:

- ``copula-fit``: fit on ``_baselines.make_mixed_table(50_000)`` (10 mixed columns):
  synthcore ``GaussianCopula()`` against the NumPy/SciPy baseline.
- ``copula-sample-100k``: 100k rows from the fitted models: synthcore
  ``backend="cpu"`` (pandas and arrow output, all threads), ``backend="numpy"``
  and the NumPy/SciPy baseline (pandas output, one thread).

SDV is left out (one fit takes seconds); ``benchmarks/copula_speed.py`` times it.
"""
import os
import sys

import pytest

import synthcore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _baselines import NumpyGaussianCopula, make_mixed_table  # noqa: E402

FIT_ROWS = 50_000
SAMPLE_ROWS = 100_000
SAMPLERS = [("cpu", "pandas"), ("cpu", "arrow"), ("numpy", "pandas")]


@pytest.fixture(scope="module")
def table():
    return make_mixed_table(FIT_ROWS)


@pytest.fixture(scope="module")
def models(table):
    return synthcore.GaussianCopula().fit(table), NumpyGaussianCopula().fit(table)


def test_fit_numpy_baseline(benchmark, table):
    benchmark.group = "copula-fit"
    benchmark(lambda: NumpyGaussianCopula().fit(table))


def test_fit_synthcore(benchmark, table):
    benchmark.group = "copula-fit"
    benchmark(lambda: synthcore.GaussianCopula().fit(table))


def test_sample_numpy_baseline(benchmark, models):
    benchmark.group = "copula-sample-100k"
    out = benchmark(models[1].sample, SAMPLE_ROWS, seed=1)
    assert len(out) == SAMPLE_ROWS


@pytest.mark.parametrize("backend,output", SAMPLERS, ids=[f"{b}-{o}" for b, o in SAMPLERS])
def test_sample_synthcore(benchmark, models, backend, output):
    if backend not in synthcore.available_backends():
        pytest.skip(f"backend {backend} is not usable here")
    benchmark.group = "copula-sample-100k"
    out = benchmark(models[0].sample, SAMPLE_ROWS, seed=1, backend=backend, output=output)
    assert len(out) == SAMPLE_ROWS
