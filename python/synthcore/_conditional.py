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
interval dim; for several, rejection from the conditional normal on a few
counter-indexed attempts, then Botev's minimax-tilting rejection sampler for
rows still outside, which stays efficient for rare regions), and
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
REJECTION_ATTEMPTS = 16     # plain attempts from the conditional normal
TILTED_ATTEMPTS = 64        # then minimax-tilted attempts (acceptance typically > 0.3)


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


def null_level(m):
    """Index of a categorical's null level (SDV's missing-value category), or None.
    Only such a column has nulls without a null dim, so others skip the scan of levels."""
    if (m.encoding != "levels" or m.kind != "categorical" or m.levels is None
            or m.null_dim is not None or m.null_rate == 0.0):
        return None
    levels = m.levels.tolist()
    return levels.index(None) if None in levels else None


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
    k_null = null_level(m)
    if want_null.any() and k_null is not None:
        # a null level (imported from SDV): null is that level's interval of the value dim
        bounds = np.concatenate([[-np.inf], m.thresholds, [np.inf]])
        lo = np.where(want_null, bounds[k_null], np.nan)
        hi = np.where(want_null, bounds[k_null + 1], np.nan)
        if present.any():
            sub = _constraints_of_values(m, [values[i] if present[i] else None
                                             for i in range(n)], is_range, True)
            if m.value_dim in sub:
                lo = np.where(present, sub[m.value_dim][0], lo)
                hi = np.where(present, sub[m.value_dim][1], hi)
        out[m.value_dim] = (lo, hi)
        return out
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
        first = d_total + REJECTION_ATTEMPTS * I.size
        out[:, todo] = _tilted(chol, mu[:, todo], lo[:, todo], hi[:, todo], key, stream,
                               rows[todo], first)
    return out


# ---- Botev's minimax-tilting sampler (J. R. Stat. Soc. B 79, 2017) -------------------------
# X = mu + L z, z ~ N(0, I) restricted to lo <= mu + L z <= hi. Proposal: z_k drawn in
# order from N(m_k, 1) truncated to the interval that z_<k leave for it; the weight of a
# proposal is exp(psi(z; m)). With (x*, m*) the saddle point of psi (concave in z, convex
# in m), psi(z; m*) <= psi(x*; m*) for every z, so accepting with probability
# exp(psi(z; m*) - psi(x*; m*)) is exact rejection sampling, with high acceptance even
# where the region has tiny probability.

def _log_mass(a, b):
    """log(Phi(b) - Phi(a)) for a <= b, stable in both tails."""
    flip = a > 0
    a2, b2 = np.where(flip, -b, a), np.where(flip, -a, b)
    la, lb = special.log_ndtr(a2), special.log_ndtr(b2)
    with np.errstate(divide="ignore"):
        return lb + np.log1p(-np.exp(la - lb))


def _psi_terms(z, m, L, lo, hi):
    """(lower, upper, log mass, (phi(a) - phi(b)) / mass) of each coordinate's interval."""
    diag = np.diag(L)
    shift = (np.tril(L, -1) @ z)
    lower, upper = (lo - shift) / diag[:, None], (hi - shift) / diag[:, None]
    a, b = lower - m, upper - m
    lp = _log_mass(a, b)
    half_log_2pi = 0.5 * np.log(2 * np.pi)
    with np.errstate(over="ignore", invalid="ignore"):
        pa = np.where(np.isfinite(a), np.exp(-0.5 * a * a - half_log_2pi - lp), 0.0)
        pb = np.where(np.isfinite(b), np.exp(-0.5 * b * b - half_log_2pi - lp), 0.0)
    return lower, upper, lp, pa - pb


def _psi(z, m, L, lo, hi):
    lp = _psi_terms(z, m, L, lo, hi)[2]
    return np.sum(0.5 * m * m - z * m + lp, axis=0)


def _saddle_point(L, lo, hi):
    """(m*, psi*) for one condition (lo, hi of L z); None when the solver fails."""
    from scipy import optimize
    k = L.shape[0]
    diag = np.diag(L)
    strict = np.tril(L, -1)
    # a feasible start: each z_k the point of its interval nearest 0
    z0 = np.zeros(k)
    for i in range(k):
        shift = strict[i] @ z0
        z0[i] = np.clip(0.0, (lo[i] - shift) / diag[i], (hi[i] - shift) / diag[i])

    def grad(v):
        z = np.append(v[:k - 1], 0.0)[:, None]
        m = np.append(v[k - 1:], 0.0)[:, None]
        r = _psi_terms(z, m, L, lo[:, None], hi[:, None])[3][:, 0]
        g_m = m[:, 0] - z[:, 0] + r
        g_z = -m[:, 0] + strict.T @ (r / diag)
        return np.concatenate([g_z[:k - 1], g_m[:k - 1]])

    start = np.concatenate([z0[:k - 1], z0[:k - 1]])
    sol = optimize.root(grad, start, method="hybr")
    if not (sol.success and np.all(np.isfinite(sol.x)) and np.max(np.abs(grad(sol.x))) < 1e-8):
        return None
    z = np.append(sol.x[:k - 1], 0.0)[:, None]
    m = np.append(sol.x[k - 1:], 0.0)
    psi_star = float(_psi(z, m[:, None], L, lo[:, None], hi[:, None])[0])
    if not np.isfinite(psi_star):
        return None
    return m, psi_star + 1e-9 * (1.0 + abs(psi_star))   # a margin for rounding: still a bound


def _tilted(L, mu, lo, hi, key, stream, rows, first_stream):
    """Exact draws of z_I for rows plain rejection did not place (see above)."""
    k, n = mu.shape
    lo_c, hi_c = lo - mu, hi - mu               # constraints on L z
    key_rows = np.ascontiguousarray(np.concatenate([lo_c, hi_c]).T)
    _, first_of, group = np.unique(key_rows, axis=0, return_index=True, return_inverse=True)
    group = group.reshape(-1)
    out = np.full((k, n), np.nan)
    for g, f in enumerate(first_of):
        cols = np.flatnonzero(group == g)
        found = _saddle_point(L, lo_c[:, f], hi_c[:, f])
        if found is None:
            raise ImpossibleConditionError(
                "a combination of range conditions has (numerically) zero probability "
                "under the model; widen the ranges")
        m, psi_star = found
        lo_g, hi_g = lo_c[:, f][:, None], hi_c[:, f][:, None]
        todo = cols
        for attempt in range(TILTED_ATTEMPTS):
            if todo.size == 0:
                break
            base = first_stream + attempt * (k + 1)
            z = np.zeros((k, todo.size))
            for i in range(k):
                shift = L[i, :i] @ z[:i]
                u = special.ndtr(_gather_rows(key, _ref.latent_stream(stream, base + i),
                                              rows[todo]))
                z[i] = _truncated_normal(m[i], 1.0, (lo_g[i] - shift) / L[i, i],
                                         (hi_g[i] - shift) / L[i, i], u)
            log_u = special.log_ndtr(_gather_rows(key, _ref.latent_stream(stream, base + k),
                                                  rows[todo]))
            accept = log_u <= _psi(z, m[:, None], L, lo_g, hi_g) - psi_star
            x = L @ z
            x = np.clip(x, lo_g, hi_g)          # rounding at the boundary only
            out[:, todo[accept]] = x[:, accept] + mu[:, todo[accept]]
            todo = todo[~accept]
        if todo.size:
            raise ImpossibleConditionError(
                f"{todo.size} rows could not be placed in their range conditions after "
                f"{TILTED_ATTEMPTS} tilted attempts; the region is too unlikely under the "
                "model")
    return out


def parse_conditions(columns, conditions, n):
    """(n, per-row lists per column, is_range per column) from a dict or a DataFrame."""
    by_name = {m.name: m for m in columns}
    import pandas as pd
    def refuse_unknown_and_keys(names):
        unknown = [c for c in names if c not in by_name]
        if unknown:
            raise ValueError(f"conditions name columns not in the model: {unknown}")
        for name in names:
            if by_name[name].kind == "key":
                raise ValueError(f"conditions name key column {name!r}: keys are generated "
                                 "from the row index, not sampled, so they cannot be "
                                 "conditioned on")

    if isinstance(conditions, dict):
        refuse_unknown_and_keys(list(conditions))
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
        refuse_unknown_and_keys(list(frame.columns))
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
