"""DP noise speed in one run: synthcore against OpenDP and NumPy.

    python benchmarks/dp_noise_vs_opendp.py [--n 1000000 10000000] [--quick]

- Exact integer noise: ``dp.discrete_laplace`` against OpenDP's vectorised
  ``make_laplace`` on an int vector, and ``dp.discrete_gaussian`` against OpenDP's
  ``make_gaussian`` on an int vector (OpenDP is timed on 20,000 values, median of 3, and
  scaled per element: it takes microseconds per element). Goal: >= 1000x. Laplace
  scales 1 .. 1e5 cover both of its regimes (one table up to ~940, then digits).
- Grid-safe float noise: ``dp.laplace`` / ``dp.gaussian`` against NumPy's
  ``Generator.laplace`` / ``normal`` (floats, not DP-safe). Goal: within 2x.
synthcore on 1 thread and on all cores: medians of --repeat (default 5) rounds, each
round timing every thread count once, so a burst of load from other processes hits both
alike (the VM is shared). The integer rows also give process CPU time per value and its
ratio: CPU time counts only while this process runs, so it is not inflated when other
jobs time-slice the cores (for a multi-threaded call it is the sum over threads, i.e.
the work per value).
"""
import argparse
import functools
import os
import statistics
import sys
import time

import numpy as np

import synthcore
from synthcore import dp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import median_time  # noqa: E402


def wall_and_cpu(fns, repeat):
    """{name: (median wall seconds, median process CPU seconds)} over interleaved rounds
    after one warm-up call of each."""
    for fn in fns.values():
        fn()
    wall, cpu = {k: [] for k in fns}, {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}


def opendp_per_value(kind, scale, odp, n=20_000):
    """(wall, CPU) seconds per value."""
    space = (odp.vector_domain(odp.atom_domain(T=int)),
             odp.l1_distance(T=int) if kind == "laplace" else odp.l2_distance(T=int))
    maker = odp.m.then_laplace if kind == "laplace" else odp.m.then_gaussian
    meas = space >> maker(scale=scale)
    data = [0] * n
    wall, cpu = wall_and_cpu({"odp": lambda: meas(data)}, 3)["odp"]
    return wall / n, cpu / n


def row(label, n, what, t, base, cpu=None, cpu_base=None):
    ratio = f"{base / t:9.0f}x" if base else "-"
    extra = ""
    if cpu is not None:
        extra = f" {cpu * 1e9:10.1f} " + (f"{cpu_base / cpu:9.0f}x" if cpu_base else f"{'-':>10}")
    print(f"{label:>16} {n:11,} {what:36} {t * 1e9:10.1f} {ratio:>10}{extra}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--quick", action="store_true", help="fewer scales")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds per timing")
    args = parser.parse_args()
    try:
        import opendp.prelude as odp
        odp.enable_features("contrib")
    except ImportError:
        odp = None
        print("opendp not installed: pip install opendp")
    cores = synthcore.get_num_threads()
    gen = dp.insecure_generator_for_tests(1)   # same work as an OS-keyed generator
    print(f"{'noise':>16} {'n':>11} {'implementation':36} {'ns/value':>10} {'vs base':>10}"
          f" {'cpu ns/val':>10} {'cpu vs base':>10}")
    scales = {"laplace": [1.0, 100.0] if args.quick else [1.0, 10.0, 100.0, 1e3, 1e4, 1e5],
              "gaussian": [1.0, 100.0] if args.quick else [1.0, 10.0, 100.0, 1e4]}
    for kind in ("laplace", "gaussian"):
        f = dp.discrete_laplace if kind == "laplace" else dp.discrete_gaussian
        for scale in scales[kind]:
            label = f"d{kind[:3]} {scale:g}"
            base, cpu_base = opendp_per_value(kind, scale, odp) if odp is not None else (None, None)
            if base:
                row(label, 20_000, f"OpenDP make_{kind} (int)", base, base, cpu_base, cpu_base)
            for n in args.n:
                x = np.zeros(n, dtype=np.int64)
                kw = {"scale": scale} if kind == "laplace" else {"sigma": scale}
                def call(threads, x=x, kw=kw):
                    synthcore.set_num_threads(threads)
                    f(x, generator=gen, backend="cpu", **kw)
                times = wall_and_cpu({th: functools.partial(call, th)
                                      for th in sorted({1, cores})}, args.repeat)
                for threads, (t, c) in times.items():
                    row(label, n, f"synthcore cpu, {threads} thread(s)", t / n, base, c / n,
                        cpu_base)
                synthcore.set_num_threads(None)
    rng = np.random.default_rng(1)
    for kind in ("laplace", "gaussian"):
        for n in args.n:
            x = np.zeros(n)
            if kind == "laplace":
                base = median_time(lambda: x + rng.laplace(0.0, 1.0, size=n)) / n
                fn = lambda: dp.laplace(x, epsilon=1.0, generator=gen, backend="cpu")  # noqa
            else:
                base = median_time(lambda: x + rng.normal(0.0, 1.0, size=n)) / n
                fn = lambda: dp.gaussian(x, rho=0.5, generator=gen, backend="cpu")  # noqa
            row(f"float {kind}", n, f"NumPy {kind} (insecure)", base, base)
            for threads in sorted({1, cores}):
                synthcore.set_num_threads(threads)
                t = median_time(fn) / n
                row(f"float {kind}", n, f"synthcore safe, {threads} thread(s)", t, base)
            synthcore.set_num_threads(None)


if __name__ == "__main__":
    main()
