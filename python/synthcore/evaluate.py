"""Quality of synthetic data against the real table.

``quality_score`` follows the metric definitions of SDMetrics' single-table
QualityReport (re-implemented from its documented behaviour, vectorised), with
every column pair counted:

- Column shapes: 1 - KS statistic for numeric and datetime columns, 1 - total
  variation distance of the category frequencies for categorical and boolean
  columns (nulls excluded, as SDMetrics does), averaged over columns.
- Column pair trends: for two numeric/datetime columns 1 - |r_real - r_synth| / 2
  with Pearson's r; otherwise 1 - total variation distance between the two
  joint frequency tables, numeric columns cut into 10 equal-width bins of the
  real data's range. Averaged over pairs.
- Score: the mean of the two.

SDMetrics 0.32's default report leaves pairs with weak real association out
(|r| < 0.5, Cramer's V < 0.3), scores SDV's "ordinal" integers as categories and
bins each side with its own edges, so its number can differ (by up to 0.08 on
the benchmark tables; within 0.011 against a report with both thresholds at 0,
except for a table with ordinal integers). ``benchmarks/copula_quality.py``
prints both.
"""
from __future__ import annotations

import numpy as np


def _kinds(real):
    import pandas as pd
    kinds = {}
    for name in real.columns:
        s = real[name]
        if pd.api.types.is_bool_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype) or \
                pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype):
            kinds[name] = "categorical"
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            kinds[name] = "datetime"
        else:
            kinds[name] = "numeric"
    return kinds


def _numeric(s):
    import pandas as pd
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.dropna().astype("int64").to_numpy(dtype=np.float64)
    return s.dropna().to_numpy(dtype=np.float64)


def _ks_complement(a, b):
    from scipy.stats import ks_2samp
    if a.size == 0 or b.size == 0:
        return 0.0
    return 1.0 - float(ks_2samp(a, b).statistic)


def _tv_complement(a, b):
    import pandas as pd
    p = pd.Series(a).value_counts(normalize=True)
    q = pd.Series(b).value_counts(normalize=True)
    p, q = p.align(q, fill_value=0.0)
    return 1.0 - 0.5 * float(np.abs(p - q).sum())


def _discretise(real_s, synth_s, kind):
    """Bin codes (nulls as their own bin) for the contingency tables."""
    import pandas as pd
    if kind == "categorical":
        cats = pd.Index(pd.concat([real_s, synth_s]).astype(object).dropna().unique())
        return (pd.Categorical(real_s.astype(object), categories=cats).codes,
                pd.Categorical(synth_s.astype(object), categories=cats).codes)
    r = real_s.astype("int64").astype(float) if kind == "datetime" else real_s.astype(float)
    s = synth_s.astype("int64").astype(float) if kind == "datetime" else synth_s.astype(float)
    lo, hi = np.nanmin(r.to_numpy()), np.nanmax(r.to_numpy())
    edges = np.linspace(lo, hi, 11)[1:-1] if hi > lo else np.array([])

    def codes(x):
        v = x.to_numpy(dtype=float)
        c = np.searchsorted(edges, v, side="right")
        return np.where(np.isnan(v), -1, c)
    return codes(r), codes(s)


def quality_score(real, synthetic) -> dict:
    """{"score", "column_shapes", "column_pair_trends", "columns": {...}} for two DataFrames."""
    import pandas as pd
    real = real if isinstance(real, pd.DataFrame) else pd.DataFrame(real)
    synthetic = synthetic if isinstance(synthetic, pd.DataFrame) else pd.DataFrame(synthetic)
    missing = [c for c in real.columns if c not in synthetic.columns]
    if missing:
        raise ValueError(f"synthetic data lacks columns {missing}")
    kinds = _kinds(real)
    shapes = {}
    for name, kind in kinds.items():
        if kind == "categorical":
            shapes[name] = _tv_complement(real[name].dropna().astype(object),
                                          synthetic[name].dropna().astype(object))
        else:
            shapes[name] = _ks_complement(_numeric(real[name]), _numeric(synthetic[name]))
    names = list(kinds)
    binned = {n: _discretise(real[n], synthetic[n], kinds[n]) for n in names}
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if kinds[a] != "categorical" and kinds[b] != "categorical":
                ra = real[[a, b]].dropna()
                sa = synthetic[[a, b]].dropna()
                if len(ra) < 2 or len(sa) < 2:
                    continue
                cr = np.corrcoef(_as_float(ra[a]), _as_float(ra[b]))[0, 1]
                cs = np.corrcoef(_as_float(sa[a]), _as_float(sa[b]))[0, 1]
                if np.isfinite(cr) and np.isfinite(cs):
                    pairs.append(1.0 - abs(cr - cs) / 2.0)
                continue
            (ra, sa), (rb, sb) = binned[a], binned[b]
            p = pd.crosstab(ra, rb, normalize=True).stack()
            q = pd.crosstab(sa, sb, normalize=True).stack()
            p, q = p.align(q, fill_value=0.0)
            pairs.append(1.0 - 0.5 * float(np.abs(p - q).sum()))
    column_shapes = float(np.mean(list(shapes.values())))
    pair_trends = float(np.mean(pairs)) if pairs else float("nan")
    score = float(np.nanmean([column_shapes, pair_trends]))
    return {"score": score, "column_shapes": column_shapes, "column_pair_trends": pair_trends,
            "columns": shapes}


def _as_float(s):
    import pandas as pd
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.astype("int64").to_numpy(dtype=np.float64)
    return s.to_numpy(dtype=np.float64)
