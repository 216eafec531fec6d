"""Helpers shared by the tests that run SDV (sdv 2.x API)."""
import warnings

import numpy as np
import pandas as pd


def make_mixed_table(n, seed=0):
    """Two correlated floats, an int, a 4-level categorical, a boolean, a datetime and a
    float with 10% nulls."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.7], [0.7, 1.0]], size=n)
    sparse = np.round(rng.gamma(2.0, 3.0, n), 1)
    sparse[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({
        "x1": np.round(z[:, 0] * 2.0 + 10.0, 3),
        "x2": np.round(np.exp(z[:, 1] * 0.5) * 100.0, 2),
        "count": rng.poisson(5, n).astype("int64"),
        "cat": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "flag": rng.random(n) < 0.3,
        "when": pd.Timestamp("2020-01-01")
        + pd.to_timedelta(rng.integers(0, 365 * 24 * 3600, n), unit="s"),
        "sparse": sparse,
    })


def fit_sdv(df, metadata, **kwargs):
    """A GaussianCopulaSynthesizer fitted on df (SDV's warnings silenced)."""
    from sdv.single_table import GaussianCopulaSynthesizer
    table = next(iter(metadata.tables))  # single-table metadata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = GaussianCopulaSynthesizer(metadata, **kwargs)
        synthesizer.fit({table: df})
    return synthesizer


def sdv_sample(synthesizer, n):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = synthesizer.sample(n)
    # SDV 2 returns {table: frame}
    return next(iter(out.values())) if isinstance(out, dict) else out


def numeric(series):
    """The non-null values as float64 (datetimes as int64 nanoseconds)."""
    s = series.dropna()
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.astype("int64").to_numpy().astype(np.float64)
    return s.to_numpy(dtype=np.float64)


def total_variation(a, b):
    """Total-variation distance between the non-null value frequencies of two series."""
    pa = a.dropna().value_counts(normalize=True)
    pb = b.dropna().value_counts(normalize=True)
    keys = pa.index.union(pb.index)
    gap = pa.reindex(keys, fill_value=0) - pb.reindex(keys, fill_value=0)
    return 0.5 * float(np.abs(gap).sum())
