"""Convert a fitted SDV ``GaussianCopulaSynthesizer`` into a synthcore ``GaussianCopula``.

``GaussianCopula.from_sdv(synthesizer)`` (or :func:`from_sdv`) gives a model
that samples SDV's distribution through synthcore's own kernels. The SDV
object is only *read*, by :func:`synthcore._sdv_import.read_sdv_gaussian_copula`,
which returns plain data; everything below works from that dict
(:func:`model_from_state`). Nothing here is derived from SDV, RDT or Copulas
code (they are under the Business Source License): the mapping is written
from the documented sampling semantics, which are

    z ~ N(0, R),  u = Phi(z),  x = F^-1(u) per latent column,

followed by each column's reverse transform and the data processor's
post-processing. How each piece lands in the synthcore model:

* **Latent order.** synthcore wants null-indicator dims first, then value
  dims, each in table-column order. SDV's correlation is permuted to that
  order; latents that become constant or all-null are dropped (marginalising
  a Gaussian is exact).
* **Numerical columns (FloatFormatter, or no transformer).** A table over a
  uniform z-grid on [-8.3, 8.3] (4097 knots): T_k = F^-1(Phi(z_k)), with the
  transformer's and the formatter's min/max clipping (or the integer
  representation's bounds) applied to the knots, and the rounding both apply
  (learnt decimals, or whole numbers for integer dtypes) as
  ``round_mode``/``round_q``. Integer output dtypes give int columns; a
  NumPy-integer column that can be null comes back as float64, as SDV's does.
* **Categorical / boolean columns (UniformEncoder, OrderedUniformEncoder).**
  Category k owns (end_{k-1}, end_k] of F^-1(u), so it is drawn when
  t_{k-1} <= z < t_k with t_k = Phi^-1(F(end_k)): ``levels`` encoding,
  exact, no table. BinaryEncoder: True when F^-1(u) > 0.5, one threshold.
* **Datetimes (UnixTimestampEncoder, OptimizedTimestampEncoder).** A table
  in nanoseconds (x times the divider), clipped to [min, max]. SDV rounds to
  the divider, then writes and re-parses the datetime format, which floors to
  the finest field the format keeps (found by a round trip of probe
  timestamps: whole seconds for ``%Y-%m-%d %H:%M:%S``). A floor to quantum Q
  after a rounding to d is rint((v - (Q - d)/2) / Q) * Q; the shift is folded
  into the knots (except knots on a clipped bound, which are multiples of Q
  and stay in the middle of their cell) and the rounding is
  ``round_mode=2, round_q=Q``. Formats that keep only the month or the year
  (``%Y-%m``, ``%Y``) floor to calendar starts, which are not a fixed quantum:
  they become ``levels`` (one per month or year start within the clipped range,
  threshold t_k = Phi^-1(F(b_k)) at the start b_k), exact. Time-zone-aware
  columns keep their zone: the latent is the UTC instant, the output is
  converted to the column's zone, and calendar floors follow its wall clock.
* **Nulls.** ``missing_value_generation="random"``: an independent null
  indicator (zero correlation with every other dim) with SDV's null rate.
  ``"from_column"``: the ``<col>.is_null`` latent, with SDV's correlation,
  null when F^-1(Phi(z)) > 0.5, i.e. null rate 1 - F(0.5).
* **Constant marginals** become ``encoding="constant"`` after the same
  post-processing; all-null columns ``encoding="null"``.

Not representable (a ``ValueError`` names the column): a categorical or
boolean missing-value *category* with non-zero probability (one threshold per
null indicator cannot pick a middle interval), boolean columns with nulls
(SDV returns them as object), datetimes returned as strings or in units other
than ns, datetimes of object dtype holding several time zones, and datetime
formats that floor to something other than a fixed quantum, a calendar month
or a calendar year.
"""
from __future__ import annotations

import math
import warnings
from typing import Optional

import numpy as np

from ._reference.copula import round_values as _round_values

__all__ = ["from_sdv", "model_from_state"]

_THRESHOLD_LIMIT = 1e3       # stands for +-inf thresholds (probability exactly 0 or 1 in z)
_INT64_SAFE = 9.2e18          # |ns| kept inside int64 after rounding
_KDE_EPS = float(np.finfo(np.float32).eps)
_QUANTA = (1, 1_000, 1_000_000, 1_000_000_000, 60 * 10**9, 3600 * 10**9, 86400 * 10**9)


def from_sdv(synthesizer, *, knots: Optional[int] = None, cls=None,
             omit_generated: bool = False):
    """A synthcore ``GaussianCopula`` sampling the distribution of a fitted SDV
    ``GaussianCopulaSynthesizer``.

    ``omit_generated=True`` leaves out the non-key columns SDV generates without
    modelling them (PII through Faker), with a warning naming them.

    Raises TypeError if ``synthesizer`` is not a fitted GaussianCopulaSynthesizer,
    ValueError (naming the column) for anything the model cannot represent.
    """
    from ._sdv_import import read_sdv_gaussian_copula
    state = read_sdv_gaussian_copula(synthesizer, omit_generated=omit_generated)
    if state["omitted_columns"]:
        warnings.warn(f"from_sdv: columns {state['omitted_columns']} are generated by SDV "
                      "without a model (PII) and are left out", stacklevel=3)
    return model_from_state(state, knots=knots, cls=cls)


# ---------------------------------------------------------------------------
# marginals (SciPy at conversion time only)
# ---------------------------------------------------------------------------
def _z_grid(knots):
    from .copula import Z_LIMIT
    return -Z_LIMIT, Z_LIMIT, np.linspace(-Z_LIMIT, Z_LIMIT, knots)


def _ppf_of_z(spec, z):
    """x = F^-1(Phi(z)) of an SDV latent marginal, as SDV evaluates it."""
    from scipy.special import ndtr

    from ._sdv_import import _marginal_ppf
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # SciPy's root-finding notes
        return np.asarray(_marginal_ppf(spec, ndtr(z)), dtype=np.float64)


def _cdf_sf(spec, x):
    """(F(x), 1 - F(x)) of an SDV latent marginal, for thresholds in z."""
    from scipy import stats
    from scipy.special import ndtr

    from ._sdv_import import _SCIPY_NAME
    x = np.asarray(x, dtype=np.float64)
    family, p = spec["distribution"], spec["params"]
    if family == "gaussian_kde":
        points = np.asarray(spec["sample_points"], dtype=np.float64)
        w = np.asarray(spec.get("weights", np.ones(points.size)), dtype=np.float64)
        w = w / w.sum() if w.sum() > 0 else w
        bw = float(p["bandwidth"])
        offset = float(ndtr((float(p["lower"]) - points) / bw) @ w)
        cdf = np.array([float(ndtr((v - points) / bw) @ w) for v in np.atleast_1d(x)]) - offset
        # the fitted inverse maps u <= eps to -inf and u >= 1 - eps to +inf
        cdf = np.clip(cdf, _KDE_EPS, 1.0 - _KDE_EPS).reshape(x.shape)
        return cdf, 1.0 - cdf
    if family not in _SCIPY_NAME:
        raise ValueError(f"latent column {spec['name']!r}: unknown distribution {family!r}")
    dist = getattr(stats, _SCIPY_NAME[family])
    kw = {k: float(v) for k, v in p.items()}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return dist.cdf(x, **kw), dist.sf(x, **kw)


def _z_of_cdf(cdf, sf):
    """Phi^-1(F) computed from whichever tail is more precise, clamped finite."""
    from scipy.special import ndtri
    cdf, sf = np.asarray(cdf, np.float64), np.asarray(sf, np.float64)
    with np.errstate(all="ignore"):
        z = np.where(cdf <= 0.5, ndtri(cdf), -ndtri(sf))
    return np.clip(np.nan_to_num(z, nan=0.0, posinf=_THRESHOLD_LIMIT, neginf=-_THRESHOLD_LIMIT),
                   -_THRESHOLD_LIMIT, _THRESHOLD_LIMIT)


def _finite_table(values, where):
    """Replace non-finite knots by the nearest finite one; keep the table monotone."""
    t = np.array(values, dtype=np.float64)
    ok = np.isfinite(t)
    if not ok.any():
        raise ValueError(f"{where}: the marginal has no finite quantile on the z-grid")
    if not ok.all():
        idx = np.arange(t.size)
        last = np.maximum.accumulate(np.where(ok, idx, -1))    # last finite knot at or before
        first = int(np.flatnonzero(ok)[0])
        t = np.where(last < 0, t[first], t[np.maximum(last, 0)])
    return np.maximum.accumulate(t)


# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------
def _np_dtype(dtype):
    import pandas as pd
    if dtype is None:
        return None
    try:
        return pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return None


def _numeric_kind(name, dtype_str, can_be_null):
    """(kind, dtype) of a numeric output column as SDV returns it."""
    import pandas as pd
    dt = _np_dtype(dtype_str)
    if dt is None:
        return "float", "float64"
    if pd.api.types.is_bool_dtype(dt):
        raise ValueError(f"column {name!r}: a boolean column modelled as a number is not "
                         "representable")
    if pd.api.types.is_float_dtype(dt):
        if isinstance(dt, np.dtype) and dt in (np.float32, np.float64):
            return "float", str(dt)
        return "float", "float64"   # nullable Float64, float16: closest NumPy float
    if pd.api.types.is_integer_dtype(dt):
        numpy_dt = np.dtype(dt.numpy_dtype) if hasattr(dt, "numpy_dtype") else np.dtype(dt)
        if isinstance(dt, np.dtype) and can_be_null:
            return "float", "float64"   # SDV casts an integer column holding NaN to float64
        return "int", str(numpy_dt)
    raise ValueError(f"column {name!r}: numerical column with dtype {dtype_str!r} is not "
                     "representable")


def _int_bounds(dtype):
    info = np.iinfo(np.dtype(dtype))
    # float64 bounds that round-trip into the integer type
    return float(max(info.min, -(2**63) + 2**11)), float(min(info.max, 2**63 - 2**11))


def _round_params(digits):
    if digits is None:
        return 0, 0.0
    if digits >= 0:
        return 1, float(10.0 ** digits)
    return 2, float(10.0 ** (-digits))


# ---------------------------------------------------------------------------
# nulls
# ---------------------------------------------------------------------------
class _Null:
    """Where a column's nulls come from: rate, and the SDV latent (None: independent)."""

    def __init__(self, rate, latent=None):
        self.rate = float(rate)
        self.latent = latent


def _null_source(col, specs):
    null = col.get("null")
    if not null or not null["has_nulls"]:
        return None
    gen = null["missing_value_generation"]
    if gen == "random":
        rate = float(null["null_rate"] or 0.0)
        return _Null(min(max(rate, 0.0), 1.0)) if rate > 0 else None
    if gen == "from_column":
        spec = specs[null["is_null_latent"]]
        if spec["distribution"] == "constant":
            return _Null(1.0) if float(spec["params"]["loc"]) > 0.5 else None
        _, sf = _cdf_sf(spec, np.array([0.5]))
        rate = float(sf[0])
        if rate <= 0.0:
            return None
        return _Null(min(rate, 1.0), null["is_null_latent"])
    return None  # nulls were filled in and are never generated


# ---------------------------------------------------------------------------
# columns
# ---------------------------------------------------------------------------
def _base(name, kind, dtype, null):
    from .copula import ColumnModel
    rate = 0.0 if null is None else null.rate
    return ColumnModel(name, kind, dtype, rate, None, None, "null")


def _float_formatter(col, specs, knots, transformer=True):
    name = col["name"]
    null = _null_source(col, specs)
    fmt = col.get("formatter")
    final_dtype = (fmt or {}).get("dtype") or col.get("output_dtype") or col.get("dtype")
    kind, dtype = _numeric_kind(name, final_dtype, null is not None)
    m = _base(name, kind, dtype, null)
    value_latent = col["latent"][0]
    if null is not None and null.rate >= 1.0:
        return m, None, null

    clips = []
    digits = []
    if transformer:
        if col["enforce_min_max_values"]:
            clips.append((col["min_value"], col["max_value"]))
        elif col.get("integer_bounds") is not None:
            clips.append(tuple(float(b) for b in col["integer_bounds"]))
        if col["learn_rounding_scheme"] and col["rounding_digits"] is not None:
            digits.append(int(col["rounding_digits"]))
        elif _is_int(col.get("dtype")):
            digits.append(0)
    if _is_int(col.get("output_dtype")):
        digits.append(0)
    if fmt is not None and fmt["kind"] == "numerical":
        if fmt["enforce_min_max_values"]:
            clips.append((fmt["min_value"], fmt["max_value"]))
        if fmt["enforce_rounding"] and fmt["rounding_digits"] is not None:
            digits.append(int(fmt["rounding_digits"]))
        elif _is_int(fmt["dtype"]):
            digits.append(0)
    if kind == "int":
        digits.append(0)
        clips.append(_int_bounds(dtype))
    # successive roundings: the coarsest one decides (up to double-rounding ties)
    m.round_mode, m.round_q = _round_params(min(digits) if digits else None)

    def post(x):
        for lo, hi in clips:
            x = np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
        return x

    spec = specs[value_latent]
    if spec["distribution"] == "constant":
        v = float(_round_values(post(np.array([spec["params"]["loc"]])), m.round_mode,
                                  m.round_q)[0])
        m.encoding = "constant"
        m.constant = int(round(v)) if kind == "int" else (float(np.float32(v)) if
                                                          dtype == "float32" else v)
        return m, None, null
    m.z_lo, m.z_hi, z = _z_grid(knots)
    m.table = _finite_table(post(_ppf_of_z(spec, z)), f"column {name!r}")
    m.encoding = "table"
    m.marginal = f"sdv:{spec['distribution']}"
    m.params = _plain_params(spec)
    return m, value_latent, null


def _plain_params(spec):
    return {str(k): float(v) for k, v in spec["params"].items()}


def _is_int(dtype):
    import pandas as pd
    dt = _np_dtype(dtype)
    return dt is not None and pd.api.types.is_integer_dtype(dt)


def _level_thresholds(spec, ends):
    """t_k = Phi^-1(F(end_k)): F^-1(Phi(z)) <= end_k exactly when z <= t_k."""
    cdf, sf = _cdf_sf(spec, np.asarray(ends, dtype=np.float64))
    return np.maximum.accumulate(_z_of_cdf(cdf, sf))


def _uniform_encoder(col, specs, knots):
    import pandas as pd
    name = col["name"]
    cats = list(col["categories"])
    ends = np.asarray(col["intervals"], dtype=np.float64)[:, 1]
    spec = specs[col["latent"][0]]
    out_dtype = col.get("output_dtype") or col.get("dtype") or "object"
    dt = _np_dtype(out_dtype)

    if spec["distribution"] == "constant":
        u = min(max(float(spec["params"]["loc"]), 0.0), 1.0)
        k = min(int(np.searchsorted(ends, u, side="left")), len(cats) - 1)
        present, thresholds = [k], np.zeros(0)
    else:
        t = _level_thresholds(spec, ends[:-1])
        lower = np.concatenate([[-np.inf], t])
        upper = np.concatenate([t, [np.inf]])
        # a level is drawn with positive probability when its z-interval is not empty
        present = [k for k in range(len(cats)) if upper[k] > lower[k]
                   and upper[k] > -_THRESHOLD_LIMIT and lower[k] < _THRESHOLD_LIMIT]
        # drop zero-width levels: their neighbours' thresholds coincide
        thresholds = upper[present][:-1]
    levels = [cats[k] for k in present]
    null_level_rate = 0.0
    if any(c is None for c in levels):
        # SDV samples nulls of a categorical as one more category (an interval of the
        # latent): kept as a null level of a categorical column, which outputs null
        if len(levels) == 1:
            raise ValueError(f"column {name!r}: the model always samples the missing-value "
                             "category, which is not representable")
        is_cat = not (dt is not None and isinstance(dt, np.dtype) and dt.kind in "biuf") \
            and not (dt is not None and pd.api.types.is_bool_dtype(dt))
        if not is_cat:
            raise ValueError(f"column {name!r}: SDV samples nulls of this {out_dtype} column as "
                             "a category; synthcore keeps null levels on categorical columns "
                             "only")
        from scipy.special import ndtr
        k0 = levels.index(None)
        lower_present = np.concatenate([[-np.inf], thresholds])
        upper_present = np.concatenate([thresholds, [np.inf]])
        null_level_rate = float(ndtr(upper_present[k0]) - ndtr(lower_present[k0]))

    if dt is not None and pd.api.types.is_bool_dtype(dt):
        kind, dtype, arr = "bool", "bool", np.array([bool(c) for c in levels], dtype=bool)
    elif dt is not None and isinstance(dt, np.dtype) and dt.kind in "iu":
        kind, dtype, arr = "int", str(dt), np.array(levels, dtype=np.int64)
    elif dt is not None and isinstance(dt, np.dtype) and dt.kind == "f":
        kind, dtype, arr = "float", str(dt) if dt in (np.float32, np.float64) else "float64", \
            np.array(levels, dtype=np.float64)
    else:
        kind = "categorical"
        dtype = "category" if str(out_dtype) == "category" else "object"
        arr = np.empty(len(levels), dtype=object)
        arr[:] = levels
    m = _base(name, kind, dtype, None)
    m.null_rate = null_level_rate
    if len(levels) == 1:
        m.encoding = "constant"
        c = arr[0]
        m.constant = c.item() if hasattr(c, "item") else c
        return m, None, None
    m.encoding = "levels"
    m.levels = arr
    m.thresholds = np.ascontiguousarray(thresholds, dtype=np.float64)
    m.marginal = f"sdv:{spec['distribution']}"
    m.params = _plain_params(spec) if spec["distribution"] != "gaussian_kde" else {}
    return m, col["latent"][0], None


def _binary_encoder(col, specs, knots):
    name = col["name"]
    null = _null_source(col, specs)
    if null is not None:
        raise ValueError(f"column {name!r}: a boolean column with generated nulls comes back "
                         "from SDV as object values, which is not representable")
    spec = specs[col["latent"][0]]
    m = _base(name, "bool", "bool", None)
    if spec["distribution"] == "constant":
        m.encoding, m.constant = "constant", bool(float(spec["params"]["loc"]) > 0.5)
        return m, None, None
    m.encoding = "levels"
    m.levels = np.array([False, True])
    m.thresholds = _level_thresholds(spec, [0.5])   # True when F^-1(u) > 0.5
    m.marginal = f"sdv:{spec['distribution']}"
    return m, col["latent"][0], None


def _probe_stamps(lo, hi):
    """Probe instants (ns since the epoch): inside [lo, hi] and across 1970-2096."""
    rng = np.random.default_rng(20240607)
    span_lo = int(lo) if lo is not None else 0
    span_hi = int(hi) if hi is not None else 4 * 10**18
    if span_hi <= span_lo:
        span_hi = span_lo + 10**15
    return np.concatenate([
        rng.integers(span_lo, span_hi, 200, dtype=np.int64),
        rng.integers(0, 4 * 10**18, 200, dtype=np.int64),
        np.array([span_lo, span_hi], dtype=np.int64),
    ])


def _utc_ns(stamps):
    """int64 UTC nanoseconds of a naive (UTC) or zone-aware datetime Series."""
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.astype("datetime64[ns]").astype("int64").to_numpy()


def _calendar_floor(ns, unit, tz):
    """Start (UTC ns) of the calendar month ("M") or year ("Y") holding each instant,
    on the wall clock of ``tz`` (naive: UTC)."""
    import pandas as pd
    stamps = pd.Series(pd.to_datetime(np.asarray(ns, dtype=np.int64), unit="ns"))
    if tz:
        stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    start = stamps.dt.to_period(unit).dt.start_time
    if tz:
        # a month or year never starts inside a daylight-saving gap or overlap in
        # practice; "shift_forward"/True pick the instant the wall clock shows it
        start = start.dt.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
    return _utc_ns(start)


def _format_floor(name, fmt, lo, hi, tz):
    """What writing and re-parsing with ``fmt`` does to an instant: ("fixed", Q) floors
    to a multiple of Q ns, ("calendar", "M" or "Y") to the start of its month or year."""
    import pandas as pd
    probes = _probe_stamps(lo, hi)
    stamps = pd.Series(pd.to_datetime(probes, unit="ns"))
    if tz:
        stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(tz)
    try:
        text = stamps.dt.strftime(fmt)
        parsed = _utc_ns(pd.Series(pd.to_datetime(text, format=fmt, utc=bool(tz))))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"column {name!r}: datetime format {fmt!r} does not round-trip "
                         f"({exc})") from exc
    for q in _QUANTA:
        if np.array_equal(parsed, probes // q * q):
            return "fixed", q
    for unit in ("M", "Y"):
        if np.array_equal(parsed, _calendar_floor(probes, unit, tz)):
            return "calendar", unit
    raise ValueError(f"column {name!r}: datetime format {fmt!r} does not floor to a fixed "
                     "quantum, a month or a year, which is not representable")


def _timestamp_encoder(col, specs, knots):
    import pandas as pd
    name = col["name"]
    fmt_post = col.get("formatter") or {}
    final = fmt_post.get("dtype") or col.get("output_dtype") or col.get("dtype")
    dt = _np_dtype(final)
    tz = col.get("tz")
    expected = "datetime64[ns]" if not tz else str(pd.DatetimeTZDtype("ns", tz))
    if dt is None or not pd.api.types.is_datetime64_any_dtype(dt) or str(dt) != expected:
        raise ValueError(f"column {name!r}: datetimes returned as {final!r} are not "
                         f"representable (synthcore returns {expected})")
    null = _null_source(col, specs)
    m = _base(name, "datetime", "datetime64[ns]", null)
    m.tz = tz
    if null is not None and null.rate >= 1.0:
        return m, None, null
    d = int(col.get("divider", 1) or 1)
    lo = col["min_value"] if col["enforce_min_max_values"] else None
    hi = col["max_value"] if col["enforce_min_max_values"] else None
    fmt = col.get("datetime_format")
    floor, q = _format_floor(name, fmt, lo, hi, tz) if fmt else ("fixed", 1)
    spec = specs[col["latent"][0]]
    if floor == "calendar":
        return _calendar_levels(m, spec, knots, d, lo, hi, q, tz), \
            (None if spec["distribution"] == "constant" else col["latent"][0]), null
    if q % d == 0:
        step = q                # round to d, then floor to q
    elif d % q == 0:
        step, q = d, d          # multiples of d are kept by the format
    else:
        raise ValueError(f"column {name!r}: divider {d} and format quantum {q} do not nest")
    # floor(clip(y)) = clip(floor(y)) with floored bounds
    flo = None if lo is None else float(math.floor(lo / step) * step)
    fhi = None if hi is None else float(math.floor(hi / step) * step)
    bound_lo = -_INT64_SAFE if flo is None else flo
    bound_hi = _INT64_SAFE if fhi is None else fhi

    def post(x):
        return np.clip(x * d, bound_lo, bound_hi)

    if spec["distribution"] == "constant":
        x = float(spec["params"]["loc"])
        v = min(max(round(x) * d, bound_lo), bound_hi)
        m.encoding, m.constant = "constant", int(v // step * step)
        return m, None, null
    m.z_lo, m.z_hi, z = _z_grid(knots)
    table = _finite_table(post(_ppf_of_z(spec, z)), f"column {name!r}")
    if step > d:
        # floor(rint(v/d)*d / step)*step == rint((v - (step - d)/2) / step)*step; knots on a
        # clipped bound (a multiple of step) stay unshifted, in the middle of their cell
        inside = (table > bound_lo) & (table < bound_hi)
        table = np.where(inside, table - (step - d) / 2.0, table)
    m.table = np.maximum.accumulate(table)
    m.round_mode, m.round_q = (2, float(step)) if step > 1 else (0, 0.0)
    m.encoding = "table"
    m.marginal = f"sdv:{spec['distribution']}"
    m.params = _plain_params(spec) if spec["distribution"] != "gaussian_kde" else {}
    return m, col["latent"][0], null


def _calendar_levels(m, spec, knots, d, lo, hi, unit, tz):
    """A datetime floored to calendar months or years: one level per month (year) start,
    drawn when the rounded, clipped value reaches it (v = rint(y) * d >= b exactly when
    y >= ceil(b / d) - 1/2), so t_k = Phi^-1(F(ceil(b_k / d) - 1/2))."""
    if spec["distribution"] == "constant":
        v = float(round(float(spec["params"]["loc"])) * d)
        v = min(max(v, -_INT64_SAFE if lo is None else lo), _INT64_SAFE if hi is None else hi)
        m.encoding, m.constant = "constant", int(_calendar_floor([int(v)], unit, tz)[0])
        return m
    if lo is None or hi is None:     # the span the marginal reaches on the z-grid
        _, _, z = _z_grid(knots)
        reach = _finite_table(_ppf_of_z(spec, z) * d, f"column {m.name!r}")
        lo = float(reach[0]) if lo is None else lo
        hi = float(reach[-1]) if hi is None else hi
    lo, hi = max(lo, -_INT64_SAFE), min(hi, _INT64_SAFE)
    first, last = _calendar_floor([int(lo), int(hi)], unit, tz)
    starts = _calendar_starts(int(first), int(last), unit, tz)
    if starts.size > 1_000_000:
        raise ValueError(f"column {m.name!r}: {starts.size} calendar levels between the "
                         "marginal's bounds; too many to represent")
    cuts = np.ceil(starts[1:].astype(np.float64) / d) - 0.5
    m.encoding = "levels"
    m.levels = starts
    m.thresholds = _level_thresholds(spec, cuts)
    m.marginal = f"sdv:{spec['distribution']}"
    return m


def _calendar_starts(first, last, unit, tz):
    """UTC ns of every month (year) start from ``first`` to ``last``, both starts."""
    import pandas as pd
    freq = "MS" if unit == "M" else "YS"
    stamps = pd.Series(pd.to_datetime(np.array([first, last], dtype=np.int64), unit="ns"))
    if tz:
        stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    wall = pd.Series(pd.date_range(stamps.iloc[0], stamps.iloc[1], freq=freq))
    if tz:
        wall = wall.dt.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
    return _utc_ns(wall)


def _key(col, specs, knots):
    """A key column: generated from the row index (synthcore/_keys.py)."""
    from ._keys import check_key_params
    from .copula import ColumnModel
    params = check_key_params(col["name"], col["key"])
    dtype = "object" if params["prefix"] is not None else (col.get("output_dtype") or "int64")
    if params["prefix"] is None and not _is_int(dtype):
        raise ValueError(f"column {col['name']!r}: integer keys returned as {dtype!r} are not "
                         "representable")
    m = ColumnModel(col["name"], "key", dtype, 0.0, None, None, "key", marginal="key",
                    params=params)
    return m, None, None


_CONVERTERS = {
    "key": _key,
    "FloatFormatter": _float_formatter,
    "UniformEncoder": _uniform_encoder,
    "OrderedUniformEncoder": _uniform_encoder,
    "BinaryEncoder": _binary_encoder,
    "UnixTimestampEncoder": _timestamp_encoder,
    "OptimizedTimestampEncoder": _timestamp_encoder,
}


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------
def model_from_state(state, *, knots: Optional[int] = None, cls=None):
    """A synthcore GaussianCopula from the plain dict of ``read_sdv_gaussian_copula``."""
    from .copula import DEFAULT_KNOTS, GaussianCopula, _nearest_correlation
    cls = cls or GaussianCopula
    knots = DEFAULT_KNOTS if knots is None else knots
    model = cls(knots=knots)   # validates knots
    knots = model.knots
    specs = {spec["name"]: spec for spec in state["latent"]}
    sdv_index = {spec["name"]: i for i, spec in enumerate(state["latent"])}
    names = state.get("output_column_names") or [c["name"] for c in state["columns"]]

    converted = []
    for col, out_name in zip(state["columns"], names):
        tname = col["transformer"]
        if tname is None:
            m, latent, null = _float_formatter(col, specs, knots, transformer=False)
        elif tname in _CONVERTERS:
            m, latent, null = _CONVERTERS[tname](col, specs, knots)
        else:
            raise ValueError(f"column {col['name']!r}: transformer {tname} is not supported")
        m.name = out_name
        if null is not None and null.rate >= 1.0:
            m.encoding, m.null_rate, latent, null = "null", 1.0, None, None
            m.value_dim = None
        converted.append((m, latent, null))

    # null indicators first, then values (the kernels rely on this order)
    sources = []
    for m, _, null in converted:
        if null is not None:
            m.null_rate = null.rate
            m.null_dim = len(sources)
            sources.append(None if null.latent is None else sdv_index[null.latent])
    for m, latent, _ in converted:
        if latent is not None:
            m.value_dim = len(sources)
            sources.append(sdv_index[latent])

    r = np.asarray(state["correlation"], dtype=np.float64)
    d = len(sources)
    corr = np.eye(d)
    for i, si in enumerate(sources):
        for j, sj in enumerate(sources):
            if i != j and si is not None and sj is not None:
                corr[i, j] = r[si, sj]
    corr = np.clip((corr + corr.T) / 2.0, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    if d:
        try:
            chol = np.linalg.cholesky(corr)
        except np.linalg.LinAlgError:
            corr = _nearest_correlation(corr)   # SDV's matrix is only semi-definite
            chol = np.linalg.cholesky(corr)
    else:
        chol = np.zeros((0, 0))

    model.columns = [m for m, _, _ in converted]
    model.correlation = corr
    model.cholesky = chol
    model.n_rows_fitted = int(state.get("num_rows") or 0)
    model._plan = None
    return model
