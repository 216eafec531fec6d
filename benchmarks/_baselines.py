"""Shared pieces of the copula benchmarks: a mixed-type table and a NumPy/SciPy copula.

``make_mixed_table(n, seed)``: 10 columns (float, int, categorical, bool,
datetime) with real dependence between them, from a fixed seed, no nulls.

``NumpyGaussianCopula``: the Gaussian copula one would write with NumPy and
SciPy in an afternoon, vectorised, with no deliberate slowness:

- fit: per column, normal scores ``ndtri((rank - 1/2) / n)`` of average ranks
  (categoricals ranked by their level code, levels ordered by frequency; bools
  and datetimes as numbers), ``np.corrcoef`` of the scores, Cholesky factor.
  Numeric marginals keep an empirical quantile table (``np.quantile`` at
  ``knots`` probabilities); categoricals keep cumulative level frequencies.
- sample: ``L @ rng.standard_normal((d, n))`` (PCG64, one thread; the Cholesky
  form of ``rng.multivariate_normal`` without its per-call SVD), ``u =
  scipy.special.ndtr(z)``, then per column ``np.interp(u, probs, quantiles)``
  (rounded for integers, viewed back as datetime64 for datetimes) or
  ``np.searchsorted(cumfreq, u)`` into the level codes, built into a pandas
  DataFrame of the same dtypes synthcore returns (categoricals as
  ``pd.Categorical.from_codes``: no per-row Python objects).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata


def make_mixed_table(n: int = 50_000, seed: int = 20240601) -> pd.DataFrame:
    """A ~10-column customer-like table with correlated mixed types (deterministic)."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 3))
    a, b, c = latent[:, 0], latent[:, 1], latent[:, 2]
    age = np.clip(np.rint(40 + 12 * (0.8 * a + 0.6 * rng.standard_normal(n))), 18, 90)
    income = np.exp(10.5 + 0.5 * (0.6 * a + 0.8 * b))                  # lognormal
    score = 600 + 80 * (0.5 * b + 0.5 * c) + 20 * rng.standard_normal(n)
    balance = np.rint(np.exp(8 + 1.2 * (0.7 * b + 0.7 * rng.standard_normal(n))))
    n_orders = rng.poisson(np.exp(1.0 + 0.4 * c))                       # few levels
    segments = np.array(["bronze", "silver", "gold", "platinum", "diamond"])
    seg_idx = np.searchsorted([-0.8, 0.3, 1.1, 1.8], 0.8 * b + 0.6 * rng.standard_normal(n))
    region_idx = (np.floor(50 * ndtr(0.5 * a + 0.87 * rng.standard_normal(n)))).astype(int)
    regions = np.array([f"region_{i:02d}" for i in range(50)])
    active = (0.7 * c + 0.7 * rng.standard_normal(n)) > -0.3
    start = np.datetime64("2015-01-01T00:00:00", "s").astype(np.int64)
    span = 9 * 365 * 86400
    signup = start + (span * ndtr(-0.6 * a + 0.8 * rng.standard_normal(n))).astype(np.int64)
    channel = np.array(["web", "mobile", "store"])[
        np.searchsorted([0.5, 0.85], ndtr(0.5 * c + 0.87 * rng.standard_normal(n)))]
    return pd.DataFrame({
        "age": age.astype(np.int64),
        "income": np.round(income, 2),
        "score": np.round(score, 1),
        "balance": balance.astype(np.int64),
        "n_orders": n_orders.astype(np.int64),
        "segment": pd.Categorical(segments[seg_idx], categories=segments),
        "region": regions[region_idx].astype(object),
        "channel": pd.Categorical(channel),
        "active": active,
        "signup": pd.to_datetime(signup, unit="s"),
    })


class NumpyGaussianCopula:
    """A plain NumPy/SciPy Gaussian copula (see the module docstring)."""

    def __init__(self, knots: int = 4097):
        self.knots = knots

    def fit(self, df: pd.DataFrame) -> "NumpyGaussianCopula":
        n = len(df)
        self.columns = []
        scores = np.empty((df.shape[1], n))
        probs = np.linspace(0.0, 1.0, self.knots)
        for j, name in enumerate(df.columns):
            s = df[name]
            if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
                cat = s.astype("category")
                counts = np.bincount(cat.cat.codes.to_numpy(), minlength=len(cat.cat.categories))
                order = np.argsort(-counts, kind="stable")           # most frequent first
                rank_of = np.empty_like(order)
                rank_of[order] = np.arange(order.size)
                key = rank_of[cat.cat.codes.to_numpy()]
                cum = np.cumsum(counts[order])[:-1] / n
                self.columns.append(("cat", name, cat.cat.categories[order],
                                     cum, s.dtype == object))
            elif s.dtype == bool:
                key = s.to_numpy(dtype=np.int8)
                self.columns.append(("bool", name, None, np.array([1.0 - key.mean()]), None))
            else:
                is_dt = pd.api.types.is_datetime64_any_dtype(s.dtype)
                x = s.to_numpy().astype("datetime64[ns]").view(np.int64) if is_dt else \
                    s.to_numpy()
                key = x
                q = np.quantile(x.astype(np.float64), probs)
                kind = "dt" if is_dt else ("int" if np.issubdtype(s.dtype, np.integer) else "float")
                self.columns.append((kind, name, probs, q, s.dtype))
            scores[j] = ndtri((rankdata(key) - 0.5) / n)
        self.corr = np.corrcoef(scores)
        self.chol = np.linalg.cholesky(self.corr)
        return self

    def sample(self, n: int, seed: int = 1) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        z = self.chol @ rng.standard_normal((self.chol.shape[0], n))   # (d, n): rows contiguous
        u = ndtr(z)                                    # one SciPy ufunc pass
        data = {}
        for j, (kind, name, a, b, extra) in enumerate(self.columns):
            uj = u[j]
            if kind == "cat":
                codes = np.searchsorted(b, uj, side="right").astype(np.int32)
                cat = pd.Categorical.from_codes(codes, categories=a)
                data[name] = cat.astype(object) if extra else cat
            elif kind == "bool":
                data[name] = uj >= b[0]
            else:
                v = np.interp(uj, a, b)
                if kind == "float":
                    data[name] = v
                elif kind == "int":
                    data[name] = np.rint(v).astype(extra)
                else:
                    data[name] = np.rint(v).astype(np.int64).view("datetime64[ns]")
        return pd.DataFrame(data, copy=False)
