"""Discrete Laplace noise: synthcore against OpenDP's make_laplace on integers, in one run.

    python benchmarks/dp_noise_vs_opendp.py [--n 1000000 10000000] [--scales 1 5 100]

OpenDP (vector_domain(atom_domain(T=int)) >> then_laplace(scale)) is timed on
100,000 values and scaled per element (it is ~6 us per element). NumPy's
Generator.laplace (floats, not DP-safe) is printed for scale only.
"""
import argparse
import statistics
import time

import numpy as np

import synthcore
from synthcore import dp


def median_time(fn, repeat=3):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 5.0, 100.0])
    args = parser.parse_args()
    try:
        import opendp.prelude as odp
        odp.enable_features("contrib")
    except ImportError:
        odp = None
        print("opendp not installed: pip install opendp")
    cores = synthcore.get_num_threads()
    print(f"{'scale':>7} {'n':>11} {'implementation':34} {'ns/value':>10} {'vs OpenDP':>10}")
    for scale in args.scales:
        base = None
        if odp is not None:
            meas = (odp.vector_domain(odp.atom_domain(T=int)), odp.l1_distance(T=int)) \
                >> odp.m.then_laplace(scale=scale)
            data = [0] * 100_000
            base = median_time(lambda: meas(data), repeat=1) / len(data)
            print(f"{scale:7g} {'1e5':>11} {'OpenDP make_laplace (int)':34} {base * 1e9:10.1f} "
                  f"{1.0:9.1f}x")
        for n in args.n:
            x = np.zeros(n, dtype=np.int64)
            for threads in sorted({1, cores}):
                synthcore.set_num_threads(threads)
                t = median_time(lambda: dp.discrete_laplace(x, scale=scale, backend="cpu")) / n
                ratio = f"{base / t:9.0f}x" if base else "-"
                print(f"{scale:7g} {n:11,} {f'synthcore cpu, {threads} thread(s)':34} "
                      f"{t * 1e9:10.1f} {ratio:>10}")
            synthcore.set_num_threads(None)
            rng = np.random.default_rng(1)
            out = np.empty(n)
            t = median_time(lambda: rng.laplace(0.0, scale, size=n)) / n
            print(f"{scale:7g} {n:11,} {'NumPy laplace (floats, insecure)':34} {t * 1e9:10.1f}")


if __name__ == "__main__":
    main()
