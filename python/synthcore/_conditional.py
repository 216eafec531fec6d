"""Conditional sampling for the Gaussian copula, in latent space.

A condition on a column becomes a set of latent values for its dims:

- equality on a continuous (table) column: the z where the table takes that
  value, a point, or an interval where the table is flat (an atom, such as a
  spike at zero) or where the learnt rounding maps values to it;
- equality on a level column (categorical, boolean, integers with few levels):
  the level's interval between two thresholds;
- a (low, high) range: the interval where the table, or the levels, fall in it;
- None / NaN: the null indicator's null interval; any value also requires
  "not null".

Rows are grouped by signature (which dims are points, which are intervals),
not by value, so a million distinct conditions are one vectorised pass. In a
group, with P the points, I the intervals and F the free dims:
z_I | z_P is sampled exactly as a truncated normal (inverse CDF for one
interval dim; for several, rejection on counter-indexed attempts, then a
deterministic Gibbs sweep for rows still outside after many attempts), and
z_F | z_P, z_I is the exact Gaussian conditional. Every random number is a
Philox normal indexed by the row, so conditioned rows are reproducible and
partition-invariant like unconditioned ones.
"""
from __future__ import annotations

import numpy as np
from scipy import special

from . import _backend
from ._reference import copula as _ref
from ._reference import random as _random

FREE, POINT, INTERVAL = 0, 1, 2
REJECTION_ATTEMPTS = 256
GIBBS_SWEEPS = 64


class ImpossibleConditionError(ValueError):
    """A condition asks for values the model gives probability zero."""


def _null_threshold(m):
    return float(special.ndtri(1.0 - m.null_rate))


def _table_interval(m, v1, v2):
    """Latent interval [za, zb] where the column's table takes values in [v1, v2] (arrays)."""
    t = m.table
    k = t.size
    dz = (m.z_hi - m.z_lo) / (k - 1)
    za = np.full(v1.shape, -np.inf)
    zb = np.full(v2.shape, np.inf)
    inside_lo = v1 > t[0]
    i = np.clip(np.searchsorted(t, v1, side="left"), 1, k - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(t[i] > t[i - 1], (v1 - t[i - 1]) / (t[i] - t[i - 1]), 0.0)
    za = np.where(inside_lo, m.z_lo + (i - 1 + frac) * dz, za)
    inside_hi = v2 < t[-1]
    j = np.clip(np.searchsorted(t, v2, side="right") - 1, 0, k - 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(t[j + 1] > t[j], (v2 - t[j]) / (t[j + 1] - t[j]), 0.0)
    zb = np.where(inside_hi, m.z_lo + (j + frac) * dz, zb)
    impossible = (v1 > t[-1]) | (v2 < t[0]) | (v1 > v2)
    return za, zb, impossible


def _half_quantum(m):
    if m.round_mode == 1:
        return 0.5 / m.round_q
    if m.round_mode == 2:
        return 0.5 * m.round_q
    if m.kind in ("int", "datetime"):
        return 0.5
    return 0.0


def _to_number(m, values):
    """Condition values of a table column as float64 (datetimes as ns)."""
    if m.kind == "datetime":
        import pandas as pd
        ts = pd.to_datetime(pd.Series(values))
        if ts.dt.tz is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        return ts.astype("datetime64[ns]").astype("int64").to_numpy(dtype=np.float64)
    return np.asarray(values, dtype=np.float64)


def _is_missing(v):
    return v is None or (isinstance(v, float) and np.isnan(v))


def column_constraints(m, values, is_range, missing_is_free=False):
    """Per-row latent bounds for one column's conditions.

    Returns {dim: (lo, hi)} with NaN where a row is unconstrained, after
    checking that no row asks for something impossible. A missing value asks
    for null, or, with ``missing_is_free``, sets no condition on that row.
    The work is done once per distinct value, then broadcast to the rows.
    """
    import pandas as pd
    if is_range:
        codes = np.zeros(len(values), dtype=np.int64)
        uniques = [values[0]] if len(set(map(tuple, values))) == 1 else None
        if uniques is None:
            codes = np.arange(len(values))
            uniques = list(values)
    else:
        codes, uniq = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
        uniques = list(uniq)
        if (codes < 0).any():  # missing values get their own code at the end
            codes = np.where(codes < 0, len(uniques), codes)
            uniques.append(None)
    per_value = _constraints_of_values(m, uniques, is_range, missing_is_free)
    return {dim: (lo[codes], hi[codes]) for dim, (lo, hi) in per_value.items()}


def _constraints_of_values(m, values, is_range, missing_is_free):
    n = len(values)
    out = {}
    present = np.array([not _is_missing(v) for v in values], dtype=bool) if not is_range \
        else np.ones(n, dtype=bool)
    want_null = np.zeros(n, dtype=bool) if missing_is_free else ~present
    if want_null.any() and m.null_rate == 0.0:
        raise ImpossibleConditionError(f"column {m.name!r} is never null in the model, but a "
                                       "condition asks for null")
    if present.any() and m.null_rate == 1.0:
        raise ImpossibleConditionError(f"column {m.name!r} is always null in the model, but a "
                                       "condition asks for a value")
    if m.null_dim is not None:
        t = _null_threshold(m)
        constrained = want_null | present
        out[m.null_dim] = (np.where(want_null, t, np.where(constrained, -np.inf, np.nan)),
                           np.where(want_null, np.inf, np.where(constrained, t, np.nan)))
    if not present.any() or m.encoding == "null":
        return out
    idx = np.flatnonzero(present)
    given = [values[i] for i in idx]
    if m.encoding == "constant":
        bad = [v for v in given if (v[0] > m.constant or v[1] < m.constant) if is_range] \
            if is_range else [v for v in given if v != m.constant]
        if bad:
            raise ImpossibleConditionError(f"column {m.name!r} is constant ({m.constant!r}) in "
                                           f"the model; condition {bad[0]!r} cannot hold")
        return out
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    if m.encoding == "levels":
        bounds = np.concatenate([[-np.inf], m.thresholds, [np.inf]])
        if is_range:
            if m.kind == "categorical":
                raise ValueError(f"column {m.name!r} is categorical: a range condition has no "
                                 "meaning; give a value")
            levels = m.levels.astype(np.float64)
            for i, (a, b) in zip(idx, given):
                inside = np.flatnonzero((levels >= a) & (levels <= b))
                if inside.size == 0:
                    raise ImpossibleConditionError(
                        f"column {m.name!r}: no value of the model lies in [{a}, {b}]")
                lo[i], hi[i] = bounds[inside.min()], bounds[inside.max() + 1]
        else:
            lookup = {v: k for k, v in enumerate(m.levels.tolist())}
            for i, v in zip(idx, given):
                key = v.item() if hasattr(v, "item") else v
                k = lookup.get(key)
                if k is None:
                    raise ImpossibleConditionError(
                        f"column {m.name!r}: value {v!r} never appears in the model "
                        f"(it knows {len(m.levels)} values)")
                lo[i], hi[i] = bounds[k], bounds[k + 1]
    else:
        if is_range:
            v1 = _to_number(m, [a for a, _ in given])
            v2 = _to_number(m, [b for _, b in given])
        else:
            v = _to_number(m, given)
            h = _half_quantum(m)
            v1, v2 = v - h, v + h
        za, zb, impossible = _table_interval(m, v1, v2)
        if impossible.any():
            bad = given[int(np.flatnonzero(impossible)[0])]
            raise ImpossibleConditionError(
                f"column {m.name!r}: condition {bad!r} is outside the values the model can "
                f"produce [{m.table[0]}, {m.table[-1]}]")
        lo[idx], hi[idx] = za, zb
        if not is_range and _half_quantum(m) == 0.0:
            # a point where the table is strictly increasing, an interval on an atom
            point = np.isclose(za, zb, rtol=0, atol=1e-12)
            hi[idx] = np.where(point, za, zb)
    out[m.value_dim] = (lo, hi)
    return out


def _truncated_normal(mu, sigma, a, b, u):
    """Inverse-CDF draw from N(mu, sigma^2) truncated to [a, b], u in (0, 1); stable in tails."""
    alpha = (a - mu) / sigma
    beta = (b - mu) / sigma
    upper = alpha > 0  # both bounds in the upper tail: work with survival functions
    pa, pb = special.ndtr(alpha), special.ndtr(beta)
    qa, qb = special.ndtr(-alpha), special.ndtr(-beta)
    with np.errstate(invalid="ignore"):
        x_lower = special.ndtri(pa + u * (pb - pa))
        x_upper = -special.ndtri(qa - u * (qa - qb))
    x = np.where(upper, x_upper, x_lower)
    x = np.where(np.isfinite(x), x, np.where(np.isfinite(alpha), alpha, beta))
    return mu + sigma * np.clip(x, alpha, beta)


def _raw_normals(key, stream, rows, dims, attempt=None, d=0):
    """Philox normals for (row, dim); attempts use streams beyond the model's dims."""
    out = np.empty((len(dims), rows.size))
    for i, j in enumerate(dims):
        s = j if attempt is None else d + attempt * len(dims) + i
        out[i] = _gather_rows(key, _ref.latent_stream(stream, s), rows)
    return out


def _gather_rows(key, stream, rows):
    """Normals at the given row indices: one contiguous generation over their span."""
    if rows.size == 0:
        return np.empty(0)
    first = int(rows.min())
    return _normals(key, stream, first, int(rows.max()) - first + 1)[rows - first]


def _normals(key, stream, offset, n):
    # the native kernel when built: the same bits as the reference, 20x faster
    core = _backend.core_module()
    if core is None:
        return _random.normal(key, stream, offset, n, np.float64, 0.0, 1.0)
    out = np.empty(n)
    core.random_normal_f64(out, key.k0, key.k1, stream, offset, 0.0, 1.0,
                           _backend.get_num_threads())
    return out


def _safe_cholesky(a):
    a = (a + a.T) / 2
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(a)
        return v * np.sqrt(np.maximum(w, 0.0))


def conditional_latents(corr, lo, hi, key, stream, rows):
    """z (d x m) for rows constrained to lo <= z <= hi (NaN: free; lo == hi: a point)."""
    d, m = lo.shape
    state = np.where(np.isnan(lo), FREE, np.where(lo == hi, POINT, INTERVAL)).astype(np.int8)
    z = np.empty((d, m))
    for signature, cols in _signature_groups(state):
        P = np.flatnonzero(signature == POINT)
        I = np.flatnonzero(signature == INTERVAL)
        F = np.flatnonzero(signature == FREE)
        r = rows[cols]
        zg = np.empty((d, cols.size))
        zg[P] = lo[P][:, cols]
        if I.size:
            zg[I] = _sample_intervals(corr, P, I, zg[P], lo[I][:, cols], hi[I][:, cols], key,
                                      stream, r)
        S = np.concatenate([P, I])
        if F.size:
            zr = _raw_normals(key, stream, r, F)
            if S.size:
                sss = corr[np.ix_(S, S)]
                sfs = corr[np.ix_(F, S)]
                gain = np.linalg.solve(sss, sfs.T).T
                cov = corr[np.ix_(F, F)] - gain @ sfs.T
                zg[F] = gain @ zg[S] + _safe_cholesky(cov) @ zr
            else:
                # no condition: the unconditioned kernel's sum, in its order, so that
                # these rows are the very rows sample() gives without conditions
                chol = np.linalg.cholesky(corr)
                for i in range(d):
                    acc = chol[i, 0] * zr[0]
                    for j in range(1, i + 1):
                        acc = acc + chol[i, j] * zr[j]
                    zg[i] = acc
        z[:, cols] = zg
    return z


def _signature_groups(state):
    """(signature, rows) for each distinct column of state (d x m, values 0..2)."""
    d, m = state.shape
    if d <= 39:  # one int64 per row in base 3: a 1-d sort instead of a row-wise one
        code = np.zeros(m, dtype=np.int64)
        for j in range(d):
            code = code * 3 + state[j]
    else:
        code = np.ascontiguousarray(state.T).view(np.dtype((np.void, d))).reshape(-1)
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    for g, cols in enumerate(np.split(order, bounds)):
        yield state[:, first[g]], cols


def _sample_intervals(corr, P, I, zP, lo, hi, key, stream, rows):
    if P.size:
        gain = np.linalg.solve(corr[np.ix_(P, P)], corr[np.ix_(I, P)].T).T
        mu = gain @ zP
        cov = corr[np.ix_(I, I)] - gain @ corr[np.ix_(I, P)].T
    else:
        mu = np.zeros((I.size, rows.size))
        cov = corr[np.ix_(I, I)]
    raw = _raw_normals(key, stream, rows, I)
    if I.size == 1:
        u = special.ndtr(raw[0])
        sigma = np.sqrt(max(cov[0, 0], 0.0))
        if sigma == 0.0:
            return np.clip(mu, lo, hi)
        return _truncated_normal(mu[0], sigma, lo[0], hi[0], u)[None, :]
    chol = _safe_cholesky(cov)
    out = np.full((I.size, rows.size), np.nan)
    todo = np.arange(rows.size)
    d_total = corr.shape[0]
    for attempt in range(REJECTION_ATTEMPTS):
        if todo.size == 0:
            break
        n = raw[:, todo] if attempt == 0 else _raw_normals(key, stream, rows[todo], I,
                                                          attempt=attempt, d=d_total)
        cand = mu[:, todo] + chol @ n
        ok = np.all((cand >= lo[:, todo]) & (cand <= hi[:, todo]), axis=0)
        out[:, todo[ok]] = cand[:, ok]
        todo = todo[~ok]
    if todo.size:
        out[:, todo] = _gibbs(mu[:, todo], cov, lo[:, todo], hi[:, todo], key, stream,
                              rows[todo], d_total + REJECTION_ATTEMPTS * I.size)
    return out


def _gibbs(mu, cov, lo, hi, key, stream, rows, first_stream):
    """Coordinate-wise truncated-normal sweeps for rows rejection could not place."""
    k, m = mu.shape
    x = np.clip(mu, lo, hi)
    prec = np.linalg.inv(cov)
    for sweep in range(GIBBS_SWEEPS):
        for i in range(k):
            others = [j for j in range(k) if j != i]
            cond_var = 1.0 / prec[i, i]
            cond_mu = mu[i] - cond_var * (prec[i, others] @ (x[others] - mu[others]))
            u = special.ndtr(_gather_rows(key, _ref.latent_stream(stream, first_stream +
                                                                  sweep * k + i), rows))
            x[i] = _truncated_normal(cond_mu, np.sqrt(cond_var), lo[i], hi[i], u)
    return x


def parse_conditions(columns, conditions, n):
    """(n, per-row lists per column, is_range per column) from a dict or a DataFrame."""
    by_name = {m.name: m for m in columns}
    import pandas as pd
    if isinstance(conditions, dict):
        unknown = [c for c in conditions if c not in by_name]
        if unknown:
            raise ValueError(f"conditions name columns not in the model: {unknown}")
        if n is None:
            raise ValueError("n is required with a dict of conditions")
        per_column = {}
        for name, v in conditions.items():
            is_range = isinstance(v, (tuple, list)) and len(v) == 2
            if isinstance(v, (tuple, list)) and not is_range:
                raise ValueError(f"conditions[{name!r}]: a range is a (low, high) pair")
            if is_range and not (v[0] <= v[1]):
                raise ValueError(f"conditions[{name!r}]: low must be <= high, got {v}")
            per_column[name] = ([v] * n, is_range, False)
        return n, per_column
    if isinstance(conditions, pd.DataFrame) or type(conditions).__module__.startswith(
            ("pyarrow", "polars")):
        from ._table import _to_pandas
        frame = _to_pandas(conditions)
        unknown = [c for c in frame.columns if c not in by_name]
        if unknown:
            raise ValueError(f"conditions name columns not in the model: {unknown}")
        rows = len(frame)
        if n is not None and n != rows:
            raise ValueError(f"n = {n} but the conditions table has {rows} rows (one per "
                             "sampled row); pass n=None or the same number")
        per_column = {}
        for name in frame.columns:
            col = frame[name].astype(object).where(frame[name].notna(), None).tolist()
            per_column[name] = (col, False, True)  # a missing cell: no condition
        return rows, per_column
    raise TypeError("conditions must be a dict {column: value or (low, high)} or a table of "
                    f"per-row values, got {type(conditions).__name__}")
