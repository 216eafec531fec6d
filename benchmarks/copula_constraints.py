"""Acceptance and sampling time of a Gaussian copula fitted with constraints
(GaussianCopula(rules=..., fixed_combinations=...), docs/copula.md "Constraints") against
plain reject and refill of an unconstrained copula on the same data: a < b where b - a is
small against the spread of a, end - start >= 30 days, and (country, city) pairs.

    python benchmarks/copula_constraints.py [--rows 1000000] [--repeat 5]
"""
import argparse
import time

import numpy as np
import pandas as pd

from synthcore import GaussianCopula


def table(n, seed=0):
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(0, 10, n), 3)
    cities = {"US": ["NY", "SF", "LA"], "CA": ["TO", "VA"], "FR": ["PA", "LY"]}
    country = rng.choice(list(cities), n, p=[0.5, 0.3, 0.2])
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    return pd.DataFrame({
        "a": a, "b": np.round(a + 0.01 + rng.gamma(2.0, 0.5, n), 3), "start": start,
        "end": start + pd.to_timedelta(30 + rng.integers(0, 10, n), unit="D"),
        "country": country,
        "city": [cities[x][rng.integers(0, len(cities[x]))] for x in country]})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    real = table(20_000)
    rules = ["a < b", "end - start >= 30 days"]
    pairs = set(zip(real.country, real.city))
    plain = GaussianCopula().fit(real)
    fitted = GaussianCopula(rules=rules, fixed_combinations=[("country", "city")]).fit(real)
    results = {}
    for name, run in (("plain + sample(rules=)",
                       lambda s: plain.sample(args.rows, seed=s, rules=rules, output="arrow")),
                      ("constrained model",
                       lambda s: fitted.sample(args.rows, seed=s, output="arrow")),
                      ("plain, no rules",
                       lambda s: plain.sample(args.rows, seed=s, output="arrow"))):
        times = []
        for s in range(args.repeat):
            t = time.perf_counter()
            out = run(s)
            times.append(time.perf_counter() - t)
        model = fitted if name == "constrained model" else plain
        rate = model.last_sample_info["acceptance_rate"] if "no rules" not in name else 1.0
        frame = out.to_pandas()
        unseen = sum(1 for p in zip(frame.country, frame.city) if p not in pairs)
        results[name] = float(np.median(times))
        print(f"{name:24s} acceptance {rate:.4f}  median {np.median(times) * 1e3:8.1f} ms "
              f"(range {min(times) * 1e3:.1f}-{max(times) * 1e3:.1f})  unseen pairs {unseen}")
    print(f"constrained / plain+rules time: "
          f"{results['constrained model'] / results['plain + sample(rules=)']:.2f}")


if __name__ == "__main__":
    main()
