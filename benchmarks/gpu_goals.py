"""The GPU goals of the issues, measured on device data in one run.

    python benchmarks/gpu_goals.py [--repeat 7] [--rules-rows 200000000]
                                   [--copula-rows 100000000] [--dp-values 500000000]
                                   [--gan-model PATH] [--gan-rows 10000000]

Each part times the synthcore ``cuda`` backend on CuPy arrays already on the device
(inputs made before timing, outputs left on the device; a stream synchronize ends
every timed call) and prints the median against its goal:

- rules: the 5-rule set of ``rules_vs_numpy.py`` over --rules-rows rows of 5
  columns, ``Rules.evaluate``: goal >= 50 G rows/s;
- copula: ``GaussianCopula.sample(n, backend="cuda", output="cupy")`` of a
  10-column float32 numeric table: goal >= 10 G rows/s;
- DP: ``synthcore.dp.discrete_gaussian`` (sigma 10) of --dp-values int64 values,
  secure generator: goal >= 20 G samples/s;
- GAN (with --gan-model, a model saved by ``GanModel.save``, e.g. a default-size
  CTGAN imported with ``synthcore.gan.from_ctgan``): ``sample(n, backend="cuda")``:
  goal >= 500 M rows/s.

Each result is first checked against the cpu backend on a slice (rules: the mask;
copula: the first rows within a few ulps; DP: the noise words are those of the cpu
backend, tested in tests/test_dp*.py, so here only the shape and dtype), so a part
is never fast by being wrong. A part that fails prints its error and the others
still run; exit status 1 when any part failed or missed its goal. Without a GPU it
says so and exits 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback

import numpy as np

import synthcore
from synthcore import _backend

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import timings  # noqa: E402
from rules_vs_numpy import RULES  # noqa: E402


def report(name, n, unit, median, lo, hi, goal):
    rate = n / median
    met = rate >= goal
    print(f"  {name:8s} {n:>13,} {unit} median {median * 1e3:9.3f} ms "
          f"(range {lo * 1e3:.3f} .. {hi * 1e3:.3f})  {rate / 1e9:8.2f} G {unit}/s  "
          f"goal {goal / 1e9:g} G/s: {'met' if met else 'NOT met'}")
    return met


def rules_part(args, cupy, sync):
    n = args.rules_rows
    rng = cupy.random.default_rng(7)
    t = {"a": rng.random(n), "b": rng.random(n), "c": rng.random(n),
         "d": rng.integers(0, 10, n), "e": rng.random(n)}
    rules = synthcore.Rules(RULES)
    head = 1_000_000
    cpu = rules.evaluate({k: cupy.asnumpy(v[:head]) for k, v in t.items()}, backend="cpu")
    gpu = rules.evaluate({k: v[:head] for k, v in t.items()}, backend="cuda")
    assert np.array_equal(cupy.asnumpy(gpu.mask), cpu.mask), "rules: mask differs from cpu"
    med, lo, hi = timings(lambda: rules.evaluate(t, backend="cuda"), args.repeat, sync=sync)
    return report("rules", n, "rows", med, lo, hi, 50e9)


def copula_part(args, cupy, sync):
    rng = np.random.default_rng(3)
    d = 10
    cov = 0.5 * np.eye(d) + 0.5
    z = rng.multivariate_normal(np.zeros(d), cov, size=20_000)
    table = {f"x{j}": (np.exp(z[:, j]) if j % 2 else z[:, j] * 3 + j).astype(np.float32)
             for j in range(d)}
    model = synthcore.GaussianCopula().fit(table)
    n = args.copula_rows
    probe = 100_000
    cpu = model.sample(probe, seed=1, backend="cpu", output="numpy")
    gpu = model.sample(probe, seed=1, backend="cuda", output="cupy")
    for k in table:
        want, got = np.asarray(cpu[k], np.float64), cupy.asnumpy(gpu[k]).astype(np.float64)
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), f"copula: {k} differs from cpu"
    med, lo, hi = timings(lambda: model.sample(n, seed=1, backend="cuda", output="cupy"),
                          args.repeat, sync=sync)
    return report("copula", n, "rows", med, lo, hi, 10e9)


def dp_part(args, cupy, sync):
    from synthcore import dp
    n = args.dp_values
    x = cupy.zeros(n, dtype=cupy.int64)
    out = dp.discrete_gaussian(x[:1000], sigma=10.0, backend="cuda")
    assert out.values.shape == (1000,) and out.values.dtype == np.int64
    med, lo, hi = timings(lambda: dp.discrete_gaussian(x, sigma=10.0, backend="cuda"),
                          args.repeat, sync=sync)
    return report("dp", n, "values", med, lo, hi, 20e9)


def gan_part(args, cupy, sync):
    from synthcore import gan
    model = gan.load(args.gan_model)
    n = args.gan_rows
    cpu = model.sample(10_000, seed=1, backend="cpu")
    gpu = model.sample(10_000, seed=1, backend="cuda")
    assert list(gpu.columns) == list(cpu.columns)
    med, lo, hi = timings(lambda: model.sample(n, seed=1, backend="cuda"), args.repeat,
                          sync=sync)
    return report("gan", n, "rows", med, lo, hi, 500e6)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rules-rows", type=int, default=200_000_000)
    parser.add_argument("--copula-rows", type=int, default=100_000_000)
    parser.add_argument("--dp-values", type=int, default=500_000_000)
    parser.add_argument("--gan-model", default=None)
    parser.add_argument("--gan-rows", type=int, default=10_000_000)
    args = parser.parse_args(argv)
    if not _backend.cuda_usable():
        print("no usable GPU (CuPy, a device and the _cuda module are needed): nothing "
              "measured")
        return 0
    import cupy
    sync = cupy.cuda.get_current_stream().synchronize
    dev = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    print(f"device: {dev['name'].decode()}, repeat {args.repeat}")
    parts = [("rules", rules_part), ("copula", copula_part), ("dp", dp_part)]
    if args.gan_model:
        parts.append(("gan", gan_part))
    else:
        print("  gan: skipped (no --gan-model)")
    ok = True
    for name, part in parts:
        try:
            ok &= bool(part(args, cupy, sync))
        except Exception:
            ok = False
            print(f"  {name}: FAILED")
            traceback.print_exc(limit=6)
        finally:
            cupy.get_default_memory_pool().free_all_blocks()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
