"""What a rule set adds to Gaussian-copula sampling when acceptance is high, in one run.

    python benchmarks/rules_copula_overhead.py [--n 1000000] [--repeat 5]

Fits the packaged customers table, then times ``sample(n)`` and ``sample(n, rules=...)``
(4 rules, ~97% acceptance, so ~3% extra candidates are drawn) on the cpu backend and
prints medians and the overhead ratio (target: <= 15%).
"""
from __future__ import annotations

import argparse
import sys
import os
import importlib.resources

import pandas as pd

import synthcore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import round_robin_stats  # noqa: E402

RULES = ["age >= 19", "monthly_spend >= 0", "income > 0", "rating is null or rating <= 5"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args(argv)
    path = importlib.resources.files("synthcore") / "data" / "customers.parquet"
    model = synthcore.GaussianCopula().fit(pd.read_parquet(path))
    rules = synthcore.Rules(RULES)
    # interleaved rounds: a burst of load from other processes hits both alike
    res = round_robin_stats({
        "sample": lambda: model.sample(args.n, seed=1, backend="cpu", output="arrow"),
        "sample with rules": lambda: model.sample(args.n, seed=1, backend="cpu",
                                                  output="arrow", rules=rules)}, args.repeat)
    plain, ruled = res["sample"], res["sample with rules"]
    info = model.last_sample_info
    print(f"{args.n} rows, threads {synthcore.get_num_threads()}, rules {RULES}")
    print(f"acceptance rate {info['acceptance_rate']:.3f}")
    for name, (med, lo, hi) in (("sample", plain), ("sample with rules", ruled)):
        print(f"  {name:20s} median {med * 1e3:8.1f} ms (range {lo * 1e3:.1f} .. {hi * 1e3:.1f})")
    print(f"overhead: {ruled[0] / plain[0] - 1:+.1%} (target <= 15%)")


if __name__ == "__main__":
    main()
