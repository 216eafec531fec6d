"""DP Gaussian copula quality on real public tables: SDMetrics QualityReport of
``synthcore.DPGaussianCopula`` at epsilon = 0.1, 1 and 10 next to the non-private
``synthcore.GaussianCopula``.

    python benchmarks/dp_copula_quality.py [--fits 3] [--epsilons 0.1,1,10] [--datasets fair,...]
                                           [--delta 1e-6]

For each table and epsilon: --fits DP fits (noise from ``insecure_generator_for_tests(k)``
for k = 1..--fits, so that the figures are reproducible; the noise has the same
distribution as with the OS-keyed generator), each sampled once (as many rows as the
table, seed = k) and scored with SDMetrics' ``QualityReport`` against the real table
(metadata detected by SDV's ``Metadata.detect_from_dataframes``). The non-private copula
is sampled with the same seeds. Printed: mean score over the fits and the min-max range.

Public inputs. DP needs the bounds of numeric columns and the category lists as inputs
that are not read from the data. Here they stand in for what a codebook would give:
category lists are the documented codes (the sorted distinct values; numeric columns
with at most 10 distinct values count as coded and are listed too), and numeric
bounds are the data range widened outwards to round numbers (to a multiple of 10^k,
10^k <= range < 10^(k+1)). Strictly, taking them from the data is outside the DP
guarantee; the guarantee covers the fit given these bounds.

Data (shipped inside installed packages; no network):

- ``fair`` (6366 x 9), statsmodels: Fair (1978), "A Theory of Extramarital Affairs",
  Journal of Political Economy 86(1); the 1974 Redbook survey as redistributed by
  statsmodels ("Included with permission of the author"). Ordinal codes as int64.
- ``anes96`` (944 x 11), ``breast_cancer`` (569 x 31), ``diabetes`` (442 x 11): as in
  benchmarks/copula_quality.py (whose loaders and SDMetrics glue this script reuses).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

import numpy as np

from copula_quality import DATASETS as _BASE_DATASETS
from copula_quality import load_datasets, sdmetrics_score


def load_fair():
    from statsmodels.datasets import fair
    df = fair.load_pandas().data.copy()
    for c in ("rate_marriage", "religious", "educ", "occupation", "occupation_husb"):
        df[c] = df[c].astype(np.int64)
    return df


DATASETS = {"fair": (load_fair, "statsmodels"),
            **{k: _BASE_DATASETS[k] for k in ("anes96", "breast_cancer", "diabetes")}}


CODED_MAX = 10   # numeric columns with at most this many values are codes: listed


def public_inputs(df):
    """(bounds, categories): see the module docstring."""
    import pandas as pd
    bounds, categories = {}, {}
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
            categories[c] = sorted(map(str, s.dropna().unique())) \
                if s.dtype == object else list(s.cat.categories)
        elif s.dtype == bool:
            continue
        elif s.nunique() <= CODED_MAX:
            categories[c] = sorted(s.dropna().unique().tolist())
        else:
            lo, hi = float(s.min()), float(s.max())
            step = 10.0 ** math.floor(math.log10(hi - lo)) if hi > lo else 1.0
            lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
            if pd.api.types.is_integer_dtype(s.dtype):
                lo, hi = int(math.floor(lo)), int(math.ceil(hi))
            bounds[c] = (lo, hi if hi > lo else lo + step)
    return bounds, categories


def evaluate(df, epsilons, fits, delta=0.0):
    from sdv.metadata import Metadata

    import synthcore
    from synthcore import dp

    md = Metadata.detect_from_dataframes({"table": df}).to_dict()
    bounds, categories = public_inputs(df)
    n = len(df)
    base = synthcore.GaussianCopula().fit(df)
    out = {"non-private": [sdmetrics_score(df, base.sample(n, seed=k, backend="cpu"), md)
                           for k in range(1, fits + 1)]}
    fit_s = {}
    for eps in epsilons:
        scores, times = [], []
        for k in range(1, fits + 1):
            t0 = time.perf_counter()
            model = synthcore.DPGaussianCopula(
                epsilon=eps, delta=delta, bounds=bounds, categories=categories,
                generator=dp.insecure_generator_for_tests(k)).fit(df)
            times.append(time.perf_counter() - t0)
            assert model.accountant.spent().epsilon <= eps * (1 + 1e-12)
            scores.append(sdmetrics_score(df, model.sample(n, seed=k, backend="cpu"), md))
        out[f"eps={eps:g}"] = scores
        fit_s[f"eps={eps:g}"] = float(np.median(times))
    return out, fit_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=3)
    parser.add_argument("--epsilons", default="0.1,1,10")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--delta", type=float, default=0.0,
                        help="> 0: (epsilon, delta)-DP, Gaussian noise on the Kendall vector "
                             "when the table has 15 or more column pairs")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import logging
    logging.disable(logging.WARNING)
    import sdmetrics

    import synthcore

    epsilons = [float(e) for e in args.epsilons.split(",")]
    print(f"synthcore {synthcore.__version__} DPGaussianCopula (delta={args.delta:g}; split "
          f"0.5/0.5, bins auto) vs GaussianCopula (defaults); SDMetrics {sdmetrics.__version__} "
          f"QualityReport, mean [min, max] over {args.fits} fits (DP noise keys and sampling "
          "seeds 1..fits)\n")
    cols = ["non-private"] + [f"eps={e:g}" for e in epsilons]
    header = f"{'dataset':<14}{'rows x cols':>12} | " + "".join(f"{c:>22}" for c in cols)
    print(header)
    print("-" * len(header))
    skipped = []
    for name, df in load_datasets(args.datasets.split(","), DATASETS, skipped):
        res, fit_s = evaluate(df, epsilons, args.fits, args.delta)
        cells = "".join(f"{np.mean(res[c]):>8.4f} [{min(res[c]):.3f},{max(res[c]):.3f}]"
                        for c in cols)
        print(f"{name:<14}{f'{df.shape[0]} x {df.shape[1]}':>12} | {cells}   "
              f"(DP fit s: {', '.join(f'{v:.2f}' for v in fit_s.values())})", flush=True)
    if skipped:
        print(f"\nskipped: {'; '.join(skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
