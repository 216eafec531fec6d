"""Quality of synthetic data against the real table.

``quality_score`` follows the metric definitions of SDMetrics' single-table
QualityReport (re-implemented from its documented behaviour, vectorised):

- Column shapes: 1 - KS statistic for numeric and datetime columns, 1 - total
  variation distance of the category frequencies for categorical and boolean
  columns (nulls excluded, as SDMetrics does), averaged over columns.
- Column pair trends: for two numeric/datetime columns 1 - |r_real - r_synth| / 2
  with Pearson's r; otherwise 1 - total variation distance between the two
  joint frequency tables, each side's numeric columns cut into 10 equal-width
  bins of that side's own range (as the report does). Averaged over the pairs
  the real data associates: |r| > 0.5, or Cramer's V > 0.3 (the report's
  defaults; both thresholds 0 count every pair).
- Score: the mean of the two.

It gives SDMetrics 0.32's report score to rounding on tables whose metadata
sdtypes match the kinds detected here (tests/test_evaluate.py;
``benchmarks/copula_quality.py`` prints both). It differs where SDV's metadata
calls integer columns "ordinal" (the report scores them as categories, this
function as numbers).
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
    def codes(x):
        # As SDMetrics' QualityReport does: each side cut into 10 equal-width bins of its
        # own range (np.digitize: the maximum and nulls land past the last edge).
        v = _as_float(x)
        present = v[~np.isnan(v)]
        if present.size == 0:
            return np.zeros(v.size, dtype=np.int64)
        return np.digitize(v, np.histogram_bin_edges(present, bins=10))
    return codes(real_s), codes(synth_s)


def quality_score(real, synthetic, ignore=(), correlation_threshold=0.5,
                  association_threshold=0.3) -> dict:
    """{"score", "column_shapes", "column_pair_trends", "columns": {...}} for two DataFrames.

    ``ignore``: columns left out, such as keys (ids are unique labels, not statistics;
    SDMetrics likewise skips columns whose sdtype is id).

    Column pair trends count, as SDMetrics' QualityReport does by default, only the
    pairs associated in the real data: two numeric columns when |Pearson r| exceeds
    ``correlation_threshold``, other pairs when Cramer's V of their real contingency
    table (numbers in 10 bins, nulls a bin) exceeds ``association_threshold``. Both at
    0 count every pair. With no pair counted, the score is the column shapes alone."""
    import pandas as pd
    real = real if isinstance(real, pd.DataFrame) else pd.DataFrame(real)
    synthetic = synthetic if isinstance(synthetic, pd.DataFrame) else pd.DataFrame(synthetic)
    ignore = [ignore] if isinstance(ignore, str) else list(ignore)
    unknown = [c for c in ignore if c not in real.columns]
    if unknown:
        raise ValueError(f"ignore names columns not in the real table: {unknown}")
    real = real.drop(columns=ignore)
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
                if correlation_threshold > 0 and not abs(cr) > correlation_threshold:
                    continue
                cs = np.corrcoef(_as_float(sa[a]), _as_float(sa[b]))[0, 1]
                if np.isfinite(cr) and np.isfinite(cs):
                    pairs.append(1.0 - abs(cr - cs) / 2.0)
                continue
            (ra, sa), (rb, sb) = binned[a], binned[b]
            if association_threshold > 0:
                from scipy.stats.contingency import association
                counts = pd.crosstab(ra, rb).to_numpy()
                if counts.sum() == 0 or min(counts.shape) < 2 or \
                        not association(counts, method="cramer") > association_threshold:
                    continue
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
