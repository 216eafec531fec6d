"""Normals per second: synthcore on each backend against NumPy, in one run.

    python benchmarks/normals_vs_numpy.py [--n 20000000] [--repeat 7]

Baseline: ``numpy.random.default_rng().standard_normal`` (ziggurat, PCG64,
single-threaded; NumPy has no multi-threaded normal fill). Reports the median
of --repeat runs into a preallocated array (no page faults timed) and the
ratio to the baseline. On a GPU it also times ``cupy.random.standard_normal``
and our CUDA kernel into device memory.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import median_time  # noqa: E402

import synthcore
from synthcore import random as sr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    n = args.n
    cores = synthcore.get_num_threads()
    info = synthcore.info()
    print(f"synthcore {info['version']}, NumPy {np.__version__}, {cores} threads available, "
          f"CPU dispatch: {info['cpu_build']['cpu_dispatch'] if info['cpu_build'] else 'none'}")
    print(f"n = {n:,} per call, median of {args.repeat}\n")
    rows = []
    for dtype in (np.float64, np.float32):
        rng = np.random.default_rng(12345)
        base_out = np.empty(n, dtype=dtype)
        base = median_time(lambda: rng.standard_normal(out=base_out, dtype=dtype), args.repeat)
        rows.append((dtype, "numpy standard_normal (1 thread, baseline)", base, base))
        out = np.empty(n, dtype=dtype)
        if "cpu" in synthcore.available_backends():
            for threads in sorted({1, cores}):
                synthcore.set_num_threads(threads)
                t = median_time(lambda: sr.normal(out=out, seed=1, backend="cpu"), args.repeat)
                rows.append((dtype, f"synthcore cpu ({threads} thread{'s' * (threads > 1)})",
                             t, base))
            synthcore.set_num_threads(None)
        small = max(1, n // 20)  # the reference is ~20x slower: time a slice, scale up
        out_small = np.empty(small, dtype=dtype)
        t = median_time(lambda: sr.normal(out=out_small, seed=1, backend="numpy"),
                           max(3, args.repeat // 2)) * (n / small)
        rows.append((dtype, "synthcore numpy backend (reference)", t, base))
        if "cuda" in synthcore.available_backends():
            import cupy
            dev = cupy.empty(n, dtype=dtype)
            sync = cupy.cuda.get_current_stream().synchronize
            t = median_time(lambda: sr.normal(out=dev, seed=1, backend="cuda"), args.repeat,
                               sync)
            rows.append((dtype, "synthcore cuda (into device memory)", t, base))
            crng = cupy.random.default_rng(1)
            t = median_time(lambda: crng.standard_normal(n, dtype=dtype), args.repeat, sync)
            rows.append((dtype, "cupy default_rng standard_normal (device)", t, base))
    print(f"{'dtype':8s} {'implementation':44s} {'M normals/s':>12s} {'ns/normal':>10s} "
          f"{'vs numpy':>9s}")
    for dtype, name, t, base in rows:
        print(f"{np.dtype(dtype).name:8s} {name:44s} {n / t / 1e6:12.1f} {t / n * 1e9:10.3f} "
              f"{base / t:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
