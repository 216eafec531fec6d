"""What a rule set adds to Gaussian-copula sampling when acceptance is high, in one run.

    python benchmarks/rules_copula_overhead.py [--n 1000000] [--repeat 5] [--derived]

Fits the packaged customers table, then times ``sample(n)`` and ``sample(n, rules=...)``
(4 rules, ~97% acceptance, so ~3% extra candidates are drawn) on the cpu backend and
prints medians and the overhead ratio (target: <= 15%). ``--derived`` also times the
same rules plus a derived column (``annual_spend = monthly_spend * 12``), computed in
the fused kernel, and the same set on the unfused path (batch evaluation, then
compaction: what rule sets with derived columns took before), in the same rounds.
"""
from __future__ import annotations

import argparse
import sys
import os
import importlib.resources

import pandas as pd

import synthcore
from synthcore import _rules_sampling

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import round_robin_stats  # noqa: E402

RULES = ["age >= 19", "monthly_spend >= 0", "income > 0", "rating is null or rating <= 5"]
DERIVED = ["annual_spend = monthly_spend * 12"]


def _unfused(fn):
    """fn run with the fused kernel path turned off (the path rule sets with derived
    columns took before they were fused)."""
    def run():
        fused = _rules_sampling.fused_program
        _rules_sampling.fused_program = lambda *a, **k: None
        try:
            return fn()
        finally:
            _rules_sampling.fused_program = fused
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--derived", action="store_true",
                        help="also time the rules plus a derived column, fused and unfused")
    args = parser.parse_args(argv)
    path = importlib.resources.files("synthcore") / "data" / "customers.parquet"
    model = synthcore.GaussianCopula().fit(pd.read_parquet(path))
    rules = synthcore.Rules(RULES)
    derived = synthcore.Rules(RULES + DERIVED)

    def ruled(r):
        return lambda: model.sample(args.n, seed=1, backend="cpu", output="arrow", rules=r)
    fns = {"sample": lambda: model.sample(args.n, seed=1, backend="cpu", output="arrow"),
           "sample with rules": ruled(rules)}
    if args.derived:
        plan = model.plan()
        sampled = frozenset(m.name for m in model.columns if m.value_dim is not None)
        fused = _rules_sampling.fused_program(model, plan, derived, sampled) is not None
        fns["+ derived, fused" if fused else "+ derived (NOT fused)"] = ruled(derived)
        fns["+ derived, unfused"] = _unfused(ruled(derived))
    # interleaved rounds: a burst of load from other processes hits them all alike
    res = round_robin_stats(fns, args.repeat)
    ruled(rules)()
    info = model.last_sample_info
    print(f"{args.n} rows, threads {synthcore.get_num_threads()}, rules {RULES}"
          + (f", derived {DERIVED}" if args.derived else ""))
    print(f"acceptance rate {info['acceptance_rate']:.3f}")
    plain = res["sample"]
    for name, (med, lo, hi) in res.items():
        extra = "" if name == "sample" else f"  overhead {med / plain[0] - 1:+.1%}"
        print(f"  {name:20s} median {med * 1e3:8.1f} ms (range {lo * 1e3:.1f} .. "
              f"{hi * 1e3:.1f}){extra}")
    print(f"overhead of the rules: {res['sample with rules'][0] / plain[0] - 1:+.1%} "
          f"(target <= 15%)")


if __name__ == "__main__":
    main()
