"""Enforced constraints in generated tables (``constraints:``, docs/generate.md), in
one run: the same columns with no constraint, with enforcement at a high and a low
acceptance rate, and the usual alternative, rejection by hand (generate 1/p as many
plain rows plus a margin, filter with ``Rules``, keep the first n: neither exactly n
rows when unlucky nor the same rows in another window).

    python benchmarks/generate_constraints.py [--rows 1000000] [--repeat 5]

Prints medians (min-max) on the cpu backend and the ratios against no constraint and
against rejection by hand at the same acceptance rate.
"""
from __future__ import annotations

import argparse
import os
import sys

import synthcore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import round_robin_stats  # noqa: E402

COLUMNS = {"id": {"type": "sequence"},
           "x": {"type": "uniform", "low": 0, "high": 1},
           "y": {"type": "normal", "mean": 0, "std": 1},
           "c": {"type": "categorical", "values": ["a", "b", "c"]}}
CASES = {"x < 0.9": 0.9, "x < 0.3": 0.3}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    n = args.rows
    plain = synthcore.load_spec({"seed": 1, "columns": COLUMNS})
    fns = {"no constraint": lambda: synthcore.generate(plain, n, backend="cpu",
                                                       output="numpy")}
    for rule, p in CASES.items():
        spec = synthcore.load_spec({"seed": 1, "columns": COLUMNS, "constraints": [rule]})
        rules = synthcore.Rules([rule])
        got = synthcore.generate(spec, n, backend="cpu")
        assert len(got) == n and rules.evaluate(got).mask.all()

        def by_hand(rules=rules, p=p):
            m = int(n / p * 1.01) + 1000
            out = rules.filter(synthcore.generate(plain, m, backend="cpu"))
            return out.iloc[:n]

        fns[f"enforced {rule}"] = (lambda spec=spec: synthcore.generate(
            spec, n, backend="cpu", output="numpy"))
        fns[f"by hand {rule}"] = by_hand
    stats = round_robin_stats(fns, args.repeat)
    print(f"{n:,} rows of 4 columns, cpu backend, median (min-max) of {args.repeat}:")
    for name, (med, lo, hi) in stats.items():
        print(f"  {name:24s} {med * 1e3:9.1f} ms ({lo * 1e3:.1f}-{hi * 1e3:.1f})")
    base = stats["no constraint"][0]
    for rule in CASES:
        enforced = stats[f"enforced {rule}"][0]
        print(f"  {rule}: enforced / no constraint {enforced / base:.2f}x, "
              f"by hand / enforced {stats[f'by hand {rule}'][0] / enforced:.2f}x")


if __name__ == "__main__":
    main()
