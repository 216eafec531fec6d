"""A 5-predicate rule set over 10M rows x 5 columns: synthcore against NumPy, numexpr
and pandas, in one run.

    python benchmarks/rules_vs_numpy.py [--n 10000000] [--repeat 7]

Rules: two comparisons with constants, a column-vs-column inequality, an ``in`` set
on an integer column and an arithmetic expression. Baselines, each giving the same
row mask (checked): NumPy eager (one temporary per operation, single-threaded),
``numexpr.evaluate`` (blocked, all cores), ``pandas.DataFrame.query`` (numexpr
engine; it returns the kept rows, so it is compared with ``Rules.filter``).
Medians of --repeat rounds, each round running every candidate once (interleaved);
ratios are baseline time / synthcore time.
"""
from __future__ import annotations

import argparse
import sys
import os

import numpy as np
import pandas as pd

import synthcore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import round_robin_stats, timings  # noqa: E402

RULES = ["a > 0.1", "b < 0.95", "a < b + 0.5", "d in (1, 2, 3, 5, 8)", "(a + c) * 2 - e <= 3.5"]
NUMEXPR = ("(a > 0.1) & (b < 0.95) & (a < b + 0.5) & "
           "((d == 1) | (d == 2) | (d == 3) | (d == 5) | (d == 8)) & ((a + c) * 2 - e <= 3.5)")


def make_table(n, seed=7):
    rng = np.random.default_rng(seed)
    return {"a": rng.random(n), "b": rng.random(n), "c": rng.random(n),
            "d": rng.integers(0, 10, n), "e": rng.random(n)}


def numpy_eager(t):
    a, b, c, d, e = (t[k] for k in "abcde")
    return (a > 0.1) & (b < 0.95) & (a < b + 0.5) & np.isin(d, [1, 2, 3, 5, 8]) & \
        ((a + c) * 2 - e <= 3.5)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    t = make_table(args.n)
    df = pd.DataFrame(t)
    rules = synthcore.Rules(RULES)
    print(f"{args.n} rows x 5 columns, rules: {RULES}")
    print(f"threads: {synthcore.get_num_threads()}  backends: {synthcore.available_backends()}")
    want = numpy_eager(t)
    for backend in ("cpu", "numpy"):
        got = rules.evaluate(t, backend=backend).mask
        assert np.array_equal(got, want), backend
    fns = {"synthcore cpu evaluate": lambda: rules.evaluate(t, backend="cpu"),
           "synthcore cpu filter (pandas)": lambda: rules.filter(df, backend="cpu"),
           "numpy eager": lambda: numpy_eager(t)}
    try:
        import numexpr
        assert np.array_equal(numexpr.evaluate(NUMEXPR, local_dict=t), want)
        fns["numexpr"] = lambda: numexpr.evaluate(NUMEXPR, local_dict=t)
        print(f"numexpr {numexpr.__version__}, {numexpr.get_num_threads()} threads")
    except ImportError:
        print("numexpr not installed: pip install numexpr (or synthcore[bench])")
    assert len(df.query(NUMEXPR)) == int(want.sum())
    fns["pandas DataFrame.query"] = lambda: df.query(NUMEXPR)
    # rounds interleave every candidate, so load from other processes hits them alike
    results = round_robin_stats(fns, args.repeat)
    results["synthcore numpy evaluate"] = timings(
        lambda: rules.evaluate(t, backend="numpy"), max(1, args.repeat // 2))
    for name, (med, lo, hi) in results.items():
        print(f"  {name:32s} median {med * 1e3:9.1f} ms  (range {lo * 1e3:.1f} .. "
              f"{hi * 1e3:.1f})  {args.n / med / 1e6:8.1f} M rows/s")
    ours = results["synthcore cpu evaluate"][0]
    print(f"cpu vs NumPy eager:  {results['numpy eager'][0] / ours:5.2f}x  (target >= 3)")
    if "numexpr" in results:
        print(f"cpu vs numexpr:      {results['numexpr'][0] / ours:5.2f}x  (target >= 5)")
    print(f"cpu filter vs pandas query: "
          f"{results['pandas DataFrame.query'][0] / results['synthcore cpu filter (pandas)'][0]:5.2f}x"
          f"  (target >= 8; evaluate vs query: "
          f"{results['pandas DataFrame.query'][0] / ours:5.2f}x)")


if __name__ == "__main__":
    main()
