"""Gaussian copula synthesizer: ``GaussianCopula().fit(table).sample(n)``.

The model, in terms every backend shares:

- Each table column gets up to two latent standard-normal dimensions: a value
  dimension (unless the column is constant or all null) and a null indicator
  (when its null rate is strictly between 0 and 1). Null indicators come
  first in latent order.
- A value dimension maps the latent z to the column by a monotone lookup: a
  table of values on a uniform z-grid (floats, datetimes, integers with many
  levels; linear interpolation, clamped to the grid's ends) or thresholds in z
  (categoricals, booleans, integers with few levels: level k when exactly k
  thresholds are <= z, so each level keeps its frequency). A null indicator is
  one threshold, Phi^-1(null rate).
- Dependence: the correlation of the latent dims, estimated from normal scores
  of mid-ranks over pairwise-complete rows, corrected for the attenuation that
  ties and levels cause, shrunk towards the identity by
  d / (n + d) and repaired to the nearest correlation matrix (Higham 2002);
  its Cholesky factor L is computed once at fit time.
- Sampling: row r, latent dim j draws the normal at element r of Philox stream
  ``stream * 2**20 + j``; z = L z_raw; then each dim's lookup. A row depends only
  on (seed, stream, r), so any chunking or partitioning gives the same rows.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import _backend, _buffers
from ._conditional import null_level
from ._modelfile import read_model, write_model
from ._reference import copula as _ref
from ._seeding import Seed, philox_key
from ._table import OUTPUTS, OutputColumn, TableColumn, build_output, read_table

FORMAT = "synthcore.gaussian_copula"
FORMAT_VERSION = 1
CONSTRAINED_FORMAT_VERSION = 2   # files with constraints (older readers must refuse them)
Z_LIMIT = 8.3           # |z| our float64 normals can reach
DEFAULT_KNOTS = 4097
CONDITION_CHUNK = 1 << 16  # rows per conditional pass
MARGINALS = ("empirical", "auto", "normal", "truncnorm", "uniform", "beta", "gamma", "lognormal")


@dataclass
class ColumnModel:
    name: str
    kind: str                       # float | int | bool | categorical | datetime
    dtype: str                      # output dtype
    null_rate: float
    value_dim: Optional[int]        # latent index, None for constant or all-null columns
    null_dim: Optional[int]
    encoding: str                   # "table" | "levels" | "constant" | "null"
    marginal: str = "empirical"     # empirical | family name (table encoding)
    params: dict = field(default_factory=dict)
    z_lo: float = 0.0
    z_hi: float = 0.0
    table: Optional[np.ndarray] = None        # float64 knots (table encoding)
    thresholds: Optional[np.ndarray] = None   # float64 (levels encoding)
    levels: Optional[np.ndarray] = None       # the level values, in threshold order
    constant: object = None
    tz: Optional[str] = None
    round_mode: int = 0             # 0 none; 1: rint(v * q) / q (q = 10^decimals); 2: rint(v / q) * q
    round_q: float = 0.0


@dataclass
class SamplingPlan:
    """The flat arrays the kernels read (one entry per latent dim)."""
    d: int
    chol: np.ndarray
    dim_kind: np.ndarray       # int8: 0 table, 1 thresholds
    z_lo: np.ndarray
    z_scale: np.ndarray
    knot_offsets: np.ndarray   # int64 [d + 1] into knots
    knots: np.ndarray          # float64: tables and thresholds, concatenated
    out_kind: np.ndarray       # int8, _ref.OUT_*
    level_offsets: np.ndarray  # int64 [d + 1] into levels_i64 / levels_f64
    levels_i64: np.ndarray
    levels_f64: np.ndarray
    null_dim: np.ndarray       # int32, -1 for none
    round_mode: np.ndarray     # int8: 0 none, 1 decimals rint(v*q)/q, 2 quantum rint(v/q)*q
    round_q: np.ndarray        # float64
    out_dtype: list            # NumPy dtype of each dim's output buffer


def _normal_ppf(p):
    """Phi^-1 at fit time (SciPy; the sampling path never calls it)."""
    from scipy.special import ndtri
    return ndtri(p)


def _normal_cdf(z):
    from scipy.special import ndtr
    return ndtr(z)


def _quantum_is_exact(m: ColumnModel) -> bool:
    """Whether float64 holds every multiple of a datetime column's rounding quantum q
    in its range: k * q is exact while k * odd(q) < 2^53 (true for whole seconds up to
    2116, false for milli- and microseconds of present-day instants)."""
    if m.round_mode != 2 or m.round_q <= 1 or m.table is None:
        return True
    q = int(m.round_q)
    odd = q >> ((q & -q).bit_length() - 1)
    return float(np.max(np.abs(m.table))) / q * odd < 2.0 ** 53


def _snap_to_quantum(values: np.ndarray, q: int) -> None:
    """Round int64 nanoseconds (rounded to q in float64, so within an ulp of a multiple)
    to the exact multiple of q, in place; the null sentinel stays."""
    valid = values != np.iinfo(np.int64).min      # NumPy or CuPy
    values[valid] = ((values + q // 2) // q * q)[valid]


def _mid_rank_scores(x: np.ndarray) -> np.ndarray:
    """Normal scores Phi^-1((mid-rank - 1/2) / n) of x (ties share their mid-rank)."""
    from scipy.stats import rankdata
    n = x.size
    if n == 0:
        return x.astype(np.float64)
    return _normal_ppf((rankdata(x, method="average") - 0.5) / n)


def _unique_counts(values: np.ndarray):
    """Sorted distinct values and their counts; object columns through pandas' hash table
    (np.unique would sort Python objects)."""
    if values.dtype != object:
        return np.unique(values, return_counts=True)
    import pandas as pd
    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(uniques, dtype=object), np.bincount(codes, minlength=len(uniques))


def _score_attenuation(scores: np.ndarray, valid: np.ndarray) -> float:
    """corr(s(Z), Z) for a standard-normal Z and the step function s that maps Z to this
    dimension's normal scores: 1 for untied continuous data, < 1 with ties or levels.

    For a bivariate normal, corr(s(Z_i), Z_j) = rho * corr(s(Z_i), Z_i), so dividing a
    score correlation by both dimensions' factors undoes the attenuation that
    discreteness causes (exactly when one side is continuous, to first order when
    both are discrete).
    """
    from scipy.special import ndtri
    s = scores[valid]
    values, counts = np.unique(s, return_counts=True)  # sorted: scores rise with the level
    if values.size < 2:
        return 1.0
    p = counts / counts.sum()
    edges = ndtri(np.clip(np.cumsum(p)[:-1], 1e-300, 1 - 1e-16))
    phi = np.concatenate([[0.0], np.exp(-0.5 * edges**2) / np.sqrt(2 * np.pi), [0.0]])
    e_sz = float(np.sum(values * (phi[:-1] - phi[1:])))
    var = float(np.sum(p * values**2) - np.sum(p * values) ** 2)
    return e_sz / np.sqrt(var) if var > 0 else 1.0


def _principal_axis(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-row projection on the first principal component of the scores (invalid -> 0)."""
    s = np.where(valid, scores, 0.0)
    cov = (s @ s.T) / max(1, s.shape[1])
    w, v = np.linalg.eigh(cov)
    return v[:, -1] @ s


def _nearest_correlation(a: np.ndarray, tol=1e-12, max_iter=200) -> np.ndarray:
    """Higham's alternating projections with Dykstra's correction, then a PD floor."""
    y = a.copy()
    ds = np.zeros_like(a)
    for _ in range(max_iter):
        r = y - ds
        w, v = np.linalg.eigh((r + r.T) / 2)
        x = (v * np.maximum(w, 0.0)) @ v.T
        ds = x - r
        y_new = x.copy()
        np.fill_diagonal(y_new, 1.0)
        if np.linalg.norm(y_new - y) <= tol * max(1.0, np.linalg.norm(y)):
            y = y_new
            break
        y = y_new
    w, v = np.linalg.eigh((y + y.T) / 2)
    w = np.maximum(w, 1e-10)
    y = (v * w) @ v.T
    dinv = 1.0 / np.sqrt(np.diag(y))
    y = y * dinv[:, None] * dinv[None, :]
    np.fill_diagonal(y, 1.0)
    return y


_PLAN_FIELDS = ("chol", "dim_kind", "z_lo", "z_scale", "knot_offsets", "knots", "out_kind",
                "level_offsets", "levels_i64", "levels_f64", "null_dim", "round_mode", "round_q")
_SAVED_FIELDS = ("name", "kind", "dtype", "null_rate", "value_dim", "null_dim", "encoding",
                 "marginal", "params", "z_lo", "z_hi", "tz", "round_mode", "round_q")


def _read_fit_table(table, column_kinds):
    """(columns, rows) of a table to fit on; an empty table is an error."""
    cols = read_table(table, column_kinds)
    if not cols:
        raise ValueError("the table has no columns")
    n = cols[0].values.shape[0]
    if n == 0:
        raise ValueError("the table has no rows")
    return cols, n


def _null_level_codes(codes, levels, k0):
    """Codes of a categorical with a null level k0 (SDV's missing-value category): that
    level becomes null (-1), the levels after it move down by one."""
    codes = np.asarray(codes)
    null = codes == k0
    out = np.where(null, -1, codes - (codes > k0)).astype(codes.dtype, copy=False)
    return out, np.delete(levels, k0), null


class GaussianCopula:
    """A Gaussian copula over mixed-type tables.

    Parameters
    ----------
    column_kinds : dict, optional
        Override detected kinds: {"zip": "categorical", "score": "float", ...};
        kinds are float, int, bool, categorical, datetime, and "key": a unique id
        (integers, or strings of one prefix and a number like "C00017") that is
        generated from the row index instead of sampled, so keys stay unique
        (synthcore/_keys.py).
    marginals : dict, optional
        Marginal per float/int/datetime column: "empirical" (the default, an
        empirical quantile table that keeps spikes and bounds), "auto" (the
        parametric family with the best Kolmogorov-Smirnov fit), or one of
        normal, truncnorm, uniform, beta, gamma, lognormal.
    default_marginal : str
        Marginal for columns not named in ``marginals``.
    max_int_levels : int
        Integer columns with at most this many distinct values are sampled by
        level (each value keeps its frequency exactly); others by table + rounding.
    enforce_min_max : bool
        Keep sampled values within the observed [min, max] (parametric marginals).
    knots : int
        Size of each marginal's lookup table.
    rules : list of str or synthcore.Rules, optional
        Constraints (docs/rules.md) the real table must satisfy and every sample keeps:
        checked at ``fit`` (a rule false on a real row is an error), enforced by every
        ``sample()`` (reject and refill). Inequalities between two numeric or two
        datetime columns (``a < b``, ``end - start >= 30 days``, ``b >= a + 5``, chains)
        are reparameterised: the model learns the difference instead of the larger
        column, so they reject (almost) nothing (docs/copula.md "Constraints").
    fixed_combinations : list of tuples of column names, optional
        Columns (categorical, bool, int) whose combinations are modelled as one
        categorical: only combinations seen in the real data are sampled, with their
        frequencies.
    """

    def __init__(self, column_kinds: Optional[dict] = None, marginals: Optional[dict] = None,
                 default_marginal: str = "empirical", max_int_levels: int = 256,
                 enforce_min_max: bool = True, knots: int = DEFAULT_KNOTS, rules=None,
                 fixed_combinations=None):
        if default_marginal not in MARGINALS:
            raise ValueError(f"default_marginal must be one of {MARGINALS}, got "
                             f"{default_marginal!r}")
        for name, m in (marginals or {}).items():
            if m not in MARGINALS:
                raise ValueError(f"marginals[{name!r}] must be one of {MARGINALS}, got {m!r}")
        if isinstance(knots, bool) or not isinstance(knots, numbers.Integral) or knots < 3:
            raise ValueError(f"knots must be an integer >= 3, got {knots!r}")
        if isinstance(max_int_levels, bool) or not isinstance(max_int_levels, numbers.Integral) \
                or max_int_levels < 1:
            raise ValueError(f"max_int_levels must be a positive integer, got {max_int_levels!r}")
        self.column_kinds = dict(column_kinds or {})
        self.marginals = dict(marginals or {})
        self.default_marginal = default_marginal
        self.max_int_levels = int(max_int_levels)
        self.enforce_min_max = bool(enforce_min_max)
        self.knots = int(knots)
        from ._constraints import normalise_combinations, normalise_rules
        self.rules = normalise_rules(rules)
        self.fixed_combinations = normalise_combinations(fixed_combinations)
        self._constraints = None          # _constraints.ConstraintPlan once fitted
        self._fit_marginals = self.marginals
        self._combination_groups: dict = {}
        self._sampling_rules: dict = {}
        self.columns: list[ColumnModel] = []
        self.correlation: Optional[np.ndarray] = None
        self.cholesky: Optional[np.ndarray] = None
        self.n_rows_fitted = 0
        self._plan: Optional[SamplingPlan] = None

    # ---- fit ------------------------------------------------------------------

    def fit(self, table) -> "GaussianCopula":
        """Fit on a pandas/polars DataFrame, a pyarrow Table or a dict of arrays."""
        keys = {k for k, v in self.column_kinds.items() if v == "key"}
        cols, n = _read_fit_table(table, {k: v for k, v in self.column_kinds.items()
                                          if v != "key"})
        unknown = (set(self.marginals) | keys) - {c.name for c in cols}
        if unknown:
            raise ValueError(f"marginals or key kinds name columns not in the table: "
                             f"{sorted(unknown)}")
        self._constraints, self._fit_marginals, self._combination_groups = None, \
            self.marginals, {}
        self._sampling_rules = {}
        if self.rules is not None or self.fixed_combinations:
            cols = self._fit_constraints(table, cols, n, keys)
        models, scores, valid = [], [], []
        # null indicators first, then values (the kernels rely on this order)
        for c in cols:
            if c.name in keys:
                from ._keys import fit_key
                params = fit_key(c)
                models.append(ColumnModel(c.name, "key", "object" if params["prefix"] is not
                                          None else c.dtype, 0.0, None, None, "key",
                                          marginal="key", params=params))
                continue
            rate = float(c.null.mean())
            models.append(ColumnModel(c.name, c.kind, c.dtype, rate, None, None, "null",
                                      tz=c.tz))
            if 0.0 < rate < 1.0:
                models[-1].null_dim = len(scores)
                # null rows get the high scores: is_null = z >= Phi^-1(1 - rate)
                scores.append(_mid_rank_scores(c.null.astype(np.float64)))
                valid.append(np.ones(n, dtype=bool))
        for c, m in zip(cols, models):
            if m.null_rate < 1.0 and m.kind != "key":
                self._fit_values(c, m)
        # Ordered columns first; categoricals are then ordered along the main axis of
        # the others' scores, since a copula keeps only monotone association.
        categorical = [(c, m) for c, m in zip(cols, models)
                       if m.kind == "categorical" and m.encoding == "levels"]
        for c, m in zip(cols, models):
            if m.encoding in ("table", "levels") and m.kind != "categorical":
                self._add_scores(c, m, scores, valid, n)
        if categorical and scores:
            axis = _principal_axis(np.array(scores), np.array(valid))
            for c, m in categorical:
                self._order_categories(c, m, axis, self._combination_groups.get(m.name))
        for c, m in categorical:
            self._add_scores(c, m, scores, valid, n)
        self.columns = models
        self.n_rows_fitted = n
        self.correlation = self._correlation(np.array(scores), np.array(valid), n)
        self.cholesky = np.linalg.cholesky(self.correlation) if len(scores) else \
            np.zeros((0, 0))
        self._plan = None
        if self._constraints is not None and self._constraints.rule_texts:
            # the rules held on the table as given; samples are read with the model's
            # column kinds (column_kinds=), so the rules must compile against those too,
            # or every sample() would fail
            from .rules import _TableView
            empty = [np.empty(0, dt) for dt in self.plan().out_dtype]
            self._constrained_request(None, None, "pandas")[1].bind(
                _TableView(self._output_columns(empty, 0, 0)))
        return self

    def _fit_constraints(self, table, cols, n, keys):
        """Check the rules on the real table and transform its columns for the
        reparameterisations and fixed combinations (synthcore/_constraints.py)."""
        from ._constraints import build_plan, check_rules_on_table
        if self.rules is not None:
            check_rules_on_table(self.rules, table, n)
        plan, cols = build_plan(self.rules, self.fixed_combinations, cols, keys,
                                self._rounding_of, self.max_int_levels)
        self._constraints = plan
        self._fit_marginals = plan.alias_marginals(self.marginals)
        for comb in plan.combinations:
            # levels are grouped by the first member's value, so a condition on it is
            # one interval of the latent (see _order_categories)
            first = comb.values[0]
            index = {}
            self._combination_groups[comb.inner] = np.array(
                [index.setdefault((v is None, v), len(index)) for v in first], dtype=np.int64)
        return cols

    @staticmethod
    def _rounding_of(c: TableColumn):
        """(round_mode, round_q) learnt from a float column's values."""
        m = ColumnModel(c.name, c.kind, c.dtype, 0.0, None, None, "table")
        GaussianCopula._learn_rounding(c, m, c.values[~c.null].astype(np.float64))
        return m.round_mode, m.round_q

    def _add_scores(self, c, m, scores, valid, n):
        m.value_dim = len(scores)
        s = np.zeros(n)
        s[~c.null] = _mid_rank_scores(self._rank_key(c, m))
        scores.append(s)
        valid.append(~c.null)

    @staticmethod
    def _order_categories(c: TableColumn, m: ColumnModel, axis: np.ndarray,
                          groups=None) -> None:
        """Levels sorted by the mean of ``axis`` over their rows (ties keep frequency order);
        with ``groups`` (a group id per level label, for fixed combinations: the first
        member's value), the groups by their mean first, then the levels in each."""
        present = ~c.null
        index = GaussianCopula._level_index(m, c.values[present]).astype(np.int64)
        k = m.levels.size
        count = np.bincount(index, minlength=k)
        total = np.bincount(index, weights=axis[present], minlength=k)
        mean = total / np.maximum(count, 1)
        if groups is None:
            order = np.argsort(mean, kind="stable")
        else:
            g = groups[np.array([int(x) for x in m.levels], dtype=np.int64)]
            group_mean = (np.bincount(g, weights=total) / np.maximum(np.bincount(g, weights=count),
                                                                     1))[g]
            order = np.lexsort((mean, g, group_mean))
        freq = np.diff(np.concatenate([[0.0], _normal_cdf(m.thresholds), [1.0]]))[order]
        m.levels = m.levels[order]
        m.thresholds = _normal_ppf(np.cumsum(freq)[:-1])

    def _rank_key(self, c: TableColumn, m: ColumnModel) -> np.ndarray:
        """What is ranked for the normal scores: the value, or the level's index."""
        present = c.values[~c.null]
        if m.encoding == "levels":
            return self._level_index(m, present)
        return present.astype(np.float64)

    @staticmethod
    def _level_index(m: ColumnModel, present: np.ndarray) -> np.ndarray:
        levels = m.levels
        if levels.dtype == object:
            import pandas as pd
            return pd.Index(levels).get_indexer(present).astype(np.float64)
        order = np.argsort(levels, kind="stable")
        pos = np.searchsorted(levels[order], present)
        return order[pos].astype(np.float64)

    def _fit_values(self, c: TableColumn, m: ColumnModel) -> None:
        present = c.values[~c.null]
        uniq, counts = _unique_counts(present)
        if uniq.size == 1:
            m.encoding = "constant"
            m.constant = uniq[0]
            return
        if c.kind in ("categorical", "bool") or (c.kind == "int" and uniq.size <= self.max_int_levels):
            # ordered kinds keep value order; categoricals start most frequent first
            order = np.argsort(-counts, kind="stable") if c.kind == "categorical" else \
                np.arange(uniq.size)
            m.levels = uniq[order]
            freq = counts[order] / present.size
            m.thresholds = _normal_ppf(np.cumsum(freq)[:-1])
            m.encoding = "levels"
            return
        x = present.astype(np.float64)
        marginal = self._fit_marginals.get(c.name, self.default_marginal)
        m.encoding = "table"
        self._learn_rounding(c, m, x)
        if marginal == "empirical":
            from ._marginals import empirical_table
            m.marginal = "empirical"
            m.z_hi = float(-_normal_ppf(0.5 / x.size))
            m.z_lo = -m.z_hi
            m.table = empirical_table(x, m.z_lo, m.z_hi, self.knots)
            # the ends are the observed bounds, so that both can be sampled
            m.table[0], m.table[-1] = x.min(), x.max()
            return
        from ._marginals import family_table, fit_family, select_family
        if marginal == "auto":
            family, params, _ = select_family(x)
        else:
            family, params = marginal, fit_family(x, marginal)
        m.marginal, m.params = family, {k: float(v) for k, v in params.items()}
        m.z_lo, m.z_hi = -Z_LIMIT, Z_LIMIT
        table = family_table(family, m.params, m.z_lo, m.z_hi, self.knots)
        if self.enforce_min_max:
            table = np.clip(table, x.min(), x.max())
        m.table = table

    @staticmethod
    def _learn_rounding(c: TableColumn, m: ColumnModel, x: np.ndarray) -> None:
        """Round samples as coarsely as the data is: to d decimals for floats, to whole
        days, hours, minutes, seconds ... for datetimes, to 10^k for large integers."""
        if c.kind == "float":
            for decimals in range(0, 16):
                q = 10.0 ** decimals
                if np.array_equal(np.rint(x * q) / q, x):
                    m.round_mode, m.round_q = 1, q
                    break
            if m.round_mode == 1 and m.round_q == 1.0:
                for k in range(1, 10):  # whole numbers: perhaps multiples of 10, 100, ...
                    q = 10.0 ** k
                    if not np.array_equal(np.rint(x / q) * q, x):
                        break
                    m.round_mode, m.round_q = 2, q
            return
        quanta = [86400e9, 3600e9, 60e9, 1e9, 1e6, 1e3] if c.kind == "datetime" else \
            [10.0 ** k for k in range(9, 0, -1)]
        values = c.values[~c.null]
        for q in quanta:
            if np.all(values % int(q) == 0):
                m.round_mode, m.round_q = 2, q
                return

    @staticmethod
    def _correlation(scores: np.ndarray, valid: np.ndarray, n: int) -> np.ndarray:
        d = scores.shape[0]
        if d == 0:
            return np.zeros((0, 0))
        s = np.where(valid, scores, 0.0)
        w = valid.astype(np.float64)
        count = w @ w.T
        sum_a = s @ w.T                      # sum of a over rows where both are valid
        sum_ab = s @ s.T
        sum_aa = (s * s) @ w.T
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = sum_ab - sum_a * sum_a.T / count
            var_a = sum_aa - sum_a ** 2 / count
            corr = cov / np.sqrt(var_a * var_a.T)
        corr = np.where((count >= 2) & np.isfinite(corr), corr, 0.0)
        atten = np.array([_score_attenuation(scores[j], valid[j]) for j in range(d)])
        corr = np.clip(corr / np.outer(atten, atten), -1.0, 1.0)
        np.fill_diagonal(corr, 1.0)
        shrink = d / (n + d)
        corr = (1.0 - shrink) * corr + shrink * np.eye(d)
        return _nearest_correlation(np.clip(corr, -1.0, 1.0))

    # ---- sampling plan ------------------------------------------------------

    def _require_fitted(self):
        if self.correlation is None:
            raise RuntimeError("this GaussianCopula is not fitted; call fit(table) or "
                               "synthcore.load(path) first")

    def plan(self) -> SamplingPlan:
        """The flat arrays the sampling kernels read (built once, then cached)."""
        self._require_fitted()
        if self._plan is not None:
            return self._plan
        d = self.cholesky.shape[0]
        dim_kind = np.zeros(d, np.int8)
        z_lo, z_scale = np.zeros(d), np.zeros(d)
        knots, level_i64, level_f64 = [None] * d, [None] * d, [None] * d
        out_kind = np.zeros(d, np.int8)
        null_dim = np.full(d, -1, np.int32)
        round_mode, round_q = np.zeros(d, np.int8), np.zeros(d)
        out_dtype = [None] * d
        for m in self.columns:
            if m.null_dim is not None:
                j = m.null_dim
                dim_kind[j] = _ref.DIM_THRESHOLDS
                knots[j] = np.array([_normal_ppf(1.0 - m.null_rate)], dtype=np.float64)
                out_kind[j], out_dtype[j] = _ref.OUT_CODE_U8, np.uint8
            if m.value_dim is None:
                continue
            j = m.value_dim
            null_dim[j] = -1 if m.null_dim is None else m.null_dim
            if m.encoding == "table":
                dim_kind[j] = _ref.DIM_TABLE
                knots[j] = m.table
                z_lo[j] = m.z_lo
                z_scale[j] = (m.table.size - 1) / (m.z_hi - m.z_lo)
                round_mode[j], round_q[j] = m.round_mode, m.round_q
                if m.kind == "float":
                    out_kind[j] = _ref.OUT_F32 if m.dtype == "float32" else _ref.OUT_F64
                elif m.kind == "int" and np.dtype(m.dtype).itemsize <= 4:
                    out_kind[j] = _ref.OUT_I32_ROUND
                else:  # int64, datetime (ns)
                    out_kind[j] = _ref.OUT_I64_ROUND
            else:
                dim_kind[j] = _ref.DIM_THRESHOLDS
                knots[j] = m.thresholds
                if m.kind == "categorical":
                    # pandas keeps codes of fewer than 127 levels as int8: written so, not cast
                    out_kind[j] = _ref.OUT_CODE_I8 if m.levels.size < 127 else _ref.OUT_CODE_I32
                elif m.kind == "bool" and np.array_equal(m.levels.astype(np.int64), [0, 1]):
                    # levels (False, True): the code is the value, one byte viewed as bool
                    out_kind[j] = _ref.OUT_CODE_U8
                elif m.kind == "bool":
                    out_kind[j] = _ref.OUT_LEVEL_I64
                    level_i64[j] = m.levels.astype(np.int64)
                elif m.kind in ("int", "datetime"):
                    out_kind[j] = _ref.OUT_LEVEL_I64
                    level_i64[j] = m.levels.astype(np.int64)
                else:
                    out_kind[j] = _ref.OUT_LEVEL_F64
                    level_f64[j] = m.levels.astype(np.float64)
            out_dtype[j] = {_ref.OUT_F64: np.float64, _ref.OUT_F32: np.float32,
                            _ref.OUT_I64_ROUND: np.int64, _ref.OUT_I32_ROUND: np.int32,
                            _ref.OUT_CODE_I32: np.int32, _ref.OUT_CODE_U8: np.uint8,
                            _ref.OUT_LEVEL_I64: np.int64,
                            _ref.OUT_LEVEL_F64: np.float64,
                            _ref.OUT_CODE_I8: np.int8}[int(out_kind[j])]

        def concat(parts, dtype):
            sizes = [0 if p is None else p.size for p in parts]
            offsets = np.zeros(d + 1, np.int64)
            offsets[1:] = np.cumsum(sizes)
            data = np.concatenate([p for p in parts if p is not None]).astype(dtype) \
                if any(sizes) else np.zeros(0, dtype)
            return offsets, np.ascontiguousarray(data)

        knot_offsets, knot_data = concat(knots, np.float64)
        if any(p is not None for p in level_i64) and any(p is not None for p in level_f64):
            # one level_offsets indexes both arrays: pad each with zeros where the other
            # holds a dim's levels (float levels come from DPGaussianCopula's categories)
            for j in range(d):
                if level_i64[j] is not None:
                    level_f64[j] = np.zeros(level_i64[j].size)
                elif level_f64[j] is not None:
                    level_i64[j] = np.zeros(level_f64[j].size, np.int64)
        level_offsets, li64 = concat(level_i64, np.int64)
        f64_offsets, lf64 = concat(level_f64, np.float64)
        if lf64.size and li64.size and not np.array_equal(level_offsets, f64_offsets):
            raise AssertionError("integer and float levels are not aligned")
        if lf64.size and not li64.size:
            level_offsets = f64_offsets
        self._plan = SamplingPlan(d, np.ascontiguousarray(self.cholesky), dim_kind, z_lo,
                                  z_scale, knot_offsets, knot_data, out_kind, level_offsets,
                                  li64, lf64, null_dim, round_mode, round_q, out_dtype)
        return self._plan

    # ---- sample -------------------------------------------------------------

    def sample(self, n: Optional[int], *, seed: Seed = None, stream: int = 0,
               row_offset: int = 0, conditions=None, backend: Optional[str] = None,
               output: str = "pandas", rules=None, min_acceptance: float = 1e-3):
        """``n`` synthetic rows as pandas (default), arrow, polars or a dict of NumPy arrays.

        Rows ``row_offset .. row_offset + n - 1`` of the (seed, stream)
        sequence: sampling 1M rows at once equals any split into pieces with
        matching row offsets, on any backend.

        ``conditions`` fixes columns, by exact Gaussian conditioning in latent
        space (see synthcore/_conditional.py):

        - a dict for all rows: ``{"plan": "pro", "age": (30, 40), "rating": None}``
          (a value, a (low, high) range for ordered columns, None for null);
        - a table (pandas/pyarrow/polars) with one row of values per sampled row
          (``n`` may be None); a missing cell sets no condition on that row.

        A condition the model gives probability zero raises
        ``synthcore.ImpossibleConditionError`` naming the column.

        ``rules`` (a ``synthcore.Rules`` or a list of rule strings, docs/rules.md): the
        result is the first ``n`` rows, in row-index order, of the candidate rows
        ``row_offset, row_offset + 1, ...`` of the (seed, stream) sequence that satisfy
        every rule, so it does not depend on how candidates are batched. Bounds in the
        rules (``x >= 3``, ``a <= x <= b``, ``plan = 'pro'`` on never-null columns) are
        applied as conditions first, so they cost no rejections; a dict of
        ``conditions`` combines with rules. Derived columns of the rules are appended. ``self.last_sample_info`` reports the
        acceptance rate; below ``min_acceptance`` (measured on at least 10,000
        candidates) ``synthcore.RuleAcceptanceError`` names the rule that rejects most.
        """
        self._require_fitted()
        if self._constraints is not None:
            if rules is None and conditions is None and output != "cupy" and \
                    self._constraints.all_reparameterised():
                from ._rules_sampling import _check_request
                _check_request(n, min_acceptance)     # as reject and refill checks them
                sampled = self._sample_reparameterised(n, seed, stream, row_offset, backend,
                                                       output)
                if sampled is not None:
                    return sampled
            conditions, rules = self._constrained_request(conditions, rules, output)
        if rules is not None:
            from ._rules_sampling import sample_with_rules
            return sample_with_rules(self, n, rules, seed=seed, stream=stream,
                                     row_offset=row_offset, backend=backend, output=output,
                                     min_acceptance=min_acceptance, conditions=conditions)
        return self._sample_plain(n, seed, stream, row_offset, conditions, backend, output)

    def _sample_reparameterised(self, n, seed, stream, row_offset, backend, output):
        """A model whose stored rules are all reparameterised: its plain sample, when
        every row of it satisfies them (the reconstruction makes that all but certain;
        only hi = lo + off + d beyond a narrow integer dtype's range wraps round). That
        is the result of reject and refill too, since its first n candidates are these
        rows, without the rules path's batching. None when a row fails (the caller then
        takes that path)."""
        from .rules import _TableView
        columns = self._sample_plain(n, seed, stream, row_offset, None, backend, "columns")
        rules = self._constrained_request(None, None, output)[1]
        result = rules.evaluate(_TableView(columns))
        if not bool(np.all(result.mask)):
            return None
        self.last_sample_info = {
            "rows": int(n), "candidates": int(n), "acceptance_rate": 1.0,
            "violations": {t: 0 for t in result.rules}, "conditions_from_rules": {}}
        return columns if output == "columns" else build_output(columns, output)

    def _sample_plain(self, n, seed, stream, row_offset, conditions, backend, output):
        if conditions is not None:
            from ._conditional import parse_conditions
            n, per_column = parse_conditions(self.columns, conditions, n)
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if output not in OUTPUTS and output != "columns":
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        _check_rows(stream, row_offset, n)
        key = philox_key(seed)
        name = _backend.resolve(backend)
        if output == "cupy" and name != "cuda":
            raise ValueError("output='cupy' needs backend='cuda'")
        plan = self.plan()
        if name == "cuda":
            if conditions is not None:
                raise ValueError("conditional sampling runs on the cpu and numpy backends; "
                                 "pass backend='cpu'")
            return self._sample_cuda(plan, int(n), key, int(stream), int(row_offset), output)
        buffers = [_buffers.empty(int(n), dt) for dt in plan.out_dtype]
        self._fill_buffers(plan, name, buffers, int(n), key, int(stream), int(row_offset),
                           per_column if conditions is not None else None)
        if output == "columns":   # internal: typed columns
            return self._output_columns(buffers, int(n), int(row_offset))
        return build_output(self._output_columns(buffers, int(n), int(row_offset)), output)

    def _constrained_request(self, conditions, rules, output):
        """(conditions on the model's columns, rules to enforce) for a sample() of a model
        fitted with constraints: its stored rules, the caller's, and those that keep
        conditions on fixed-combination members exact."""
        plan = self._constraints
        conditions, extra = plan.translate_conditions(conditions, self._level_order)
        texts = list(plan.rule_texts) + extra
        if not texts:
            return conditions, rules
        if output == "cupy":
            raise ValueError("this model enforces rules at every sample (rules= or conditions "
                             "on a fixed combination), which runs on the host: use a host "
                             "output (pandas, arrow, polars, numpy)")
        if conditions is not None and not isinstance(conditions, dict):
            raise ValueError("this model enforces its rules at every sample (reject and "
                             "refill), which a table of per-row conditions cannot combine "
                             "with; give a dict of conditions for all rows")
        if rules is not None:
            from ._rules_sampling import _as_rules
            texts += list(_as_rules(rules).texts)
        key = tuple(texts)
        combined = self._sampling_rules.get(key)
        if combined is None:
            from .rules import Rules
            combined = self._sampling_rules[key] = Rules(texts)
        return conditions, combined

    def _level_order(self, name):
        """The labels of a categorical model column in latent order."""
        m = next(m for m in self.columns if m.name == name)
        return m.levels.tolist() if m.levels is not None else [m.constant]

    def _fill_buffers(self, plan, name, buffers, n, key, stream, row_offset, per_column=None):
        """Rows ``row_offset .. row_offset + n - 1`` into the plan's raw output buffers
        (``n`` rows each, e.g. slices of larger ones), on the cpu or numpy backend, under
        the parsed conditions ``per_column`` when given."""
        if not plan.d:
            return
        if per_column is not None:
            # chunk by rows: the latent matrix never exceeds d x CONDITION_CHUNK
            for r0 in range(0, n, CONDITION_CHUNK):
                r1 = min(n, r0 + CONDITION_CHUNK)
                part = {k: (v[r0:r1], rng, free) for k, (v, rng, free) in per_column.items()}
                z = self._conditional_latents(part, r1 - r0, key, stream, row_offset + r0)
                if name == "numpy":
                    _ref.write_outputs(plan, z, buffers, r0, r1 - r0)
                else:
                    _core_map(plan, z, [b[r0:r1] for b in buffers])
        elif name == "numpy":
            _ref.sample(plan, key, stream, row_offset, n, buffers)
        else:
            _core_sample(plan, key, stream, row_offset, n, buffers)

    def _device_plan(self, plan):
        """The plan's arrays on the current GPU (copied once per model and device)."""
        import cupy
        dev = cupy.cuda.Device().id
        cache = getattr(self, "_device_plans", None)
        if cache is None or cache[0] is not plan:
            cache = (plan, {})
            self._device_plans = cache
        if dev not in cache[1]:
            arrays = tuple(cupy.asarray(a) for a in _plan_arrays(plan))
            cache[1][dev] = arrays
        return cache[1][dev]

    def _sample_cuda(self, plan, n, key, stream, row_offset, output):
        import cupy
        cuda = _backend.cuda_module()
        if plan.d > cuda.copula_max_dims():
            raise ValueError(f"the model has {plan.d} latent dims; the CUDA kernel supports "
                             f"{cuda.copula_max_dims()}: use backend='cpu'")
        arrays = self._device_plan(plan)
        buffers = [cupy.empty(n, dtype=dt) for dt in plan.out_dtype]
        if plan.d:
            pointers = cupy.asarray([b.data.ptr for b in buffers], dtype=cupy.uint64)
            cuda.copula_sample(plan.d, tuple(a.data.ptr for a in arrays), pointers.data.ptr, n,
                               key.k0, key.k1, stream, row_offset,
                               cupy.cuda.get_current_stream().ptr)
        if output == "cupy":
            return self._device_columns(buffers, n, row_offset)
        # the caller asked for a host format: this copy is the one they asked for
        host = [b.get() for b in buffers]
        columns = self._output_columns(host, n, row_offset)
        return columns if output == "columns" else build_output(columns, output)

    def _device_columns(self, buffers, n, row_offset):
        """{column: CuPy array} on the GPU: values with NaN / INT64_MIN / -1 (categorical
        codes into ``self.categories(column)``) marking nulls (booleans as bool, their
        nulls only in the mask), and "<column>.is_null" masks."""
        import cupy
        out = {}
        for m in self.columns:
            if m.kind == "key":
                if m.params["prefix"] is not None:
                    raise ValueError(f"key column {m.name!r} holds strings, which CuPy output "
                                     "cannot; use a host output")
                from ._keys import key_values
                out[m.name] = key_values(m.name, m.params, m.dtype, cupy.arange(
                    row_offset, row_offset + n, dtype=cupy.int64))[1]
                continue
            if m.null_dim is not None:
                out[f"{m.name}.is_null"] = buffers[m.null_dim].view("bool")
            if m.value_dim is not None:
                values = buffers[m.value_dim]
                if m.kind == "datetime" and not _quantum_is_exact(m):
                    _snap_to_quantum(values, int(m.round_q))
                out[m.name] = values.view("bool") if values.dtype == "uint8" else values
        if self._constraints is not None:
            self._split_combinations_on_device(out, n)
        return out

    def _split_combinations_on_device(self, out, n):
        """Fixed combinations' member columns from the combination codes, on the GPU (a
        gather through small per-combination tables); reparameterised columns never get
        here, as their models sample under their stored rules on the host."""
        import cupy
        if self._constraints.reparams:
            raise AssertionError("reparameterised columns are sampled on the host")
        for comb in self._constraints.combinations:
            codes = out.pop(comb.inner, None)
            labels = self._level_order(comb.inner)
            ids_of = cupy.asarray(np.array([int(x) for x in labels], dtype=np.int64))
            ids = ids_of[codes.astype(cupy.int64)] if codes is not None else \
                cupy.full(n, ids_of[0].item(), dtype=cupy.int64)
            member_codes, extra = comb.member_codes()
            for j, name in enumerate(comb.members):
                if comb.kinds[j] == "categorical":
                    out[name] = cupy.asarray(member_codes[j])[ids]
                    continue
                null = extra[j]
                values = cupy.asarray(member_codes[j])[ids]
                if comb.kinds[j] == "int":
                    values = cupy.where(cupy.asarray(null)[ids], np.iinfo(np.int64).min, values)
                if null.any():
                    out[f"{name}.is_null"] = cupy.asarray(null)[ids]
                out[name] = values

    def categories(self, column: str):
        """The categories of a categorical column, in the order of its codes."""
        for comb in (self._constraints.combinations if self._constraints else ()):
            if column in comb.members and comb.kinds[comb.members.index(column)] == \
                    "categorical":
                return comb.member_codes()[1][comb.members.index(column)]
        for m in self.columns:
            if m.name == column and m.kind == "categorical":
                return m.levels
        raise KeyError(f"{column!r} is not a categorical column of this model")

    def _conditional_latents(self, per_column, n, key, stream, row_offset):
        from ._conditional import ImpossibleConditionError, column_constraints, \
            conditional_latents
        d = self.cholesky.shape[0]
        lo = np.full((d, n), np.nan)
        hi = np.full((d, n), np.nan)
        by_name = {m.name: m for m in self.columns}
        for name, (values, is_range, missing_is_free) in per_column.items():
            if len(values) and isinstance(values[0], frozenset):
                found = {by_name[name].value_dim: self._level_set_interval(
                    by_name[name], values[0], n, key, stream, row_offset,
                    alone=len(per_column) == 1)}
            else:
                found = column_constraints(by_name[name], values, is_range, missing_is_free)
            for dim, (l, h) in found.items():
                if dim is None:
                    continue
                set_ = ~np.isnan(l)
                both = set_ & ~np.isnan(lo[dim])
                lo[dim] = np.where(both, np.maximum(lo[dim], l), np.where(set_, l, lo[dim]))
                hi[dim] = np.where(both, np.minimum(hi[dim], h), np.where(set_, h, hi[dim]))
                if np.any(lo[dim][both] > hi[dim][both]):
                    raise ImpossibleConditionError(f"conditions on column {name!r} contradict "
                                                   "each other")
        rows = np.arange(row_offset, row_offset + n, dtype=np.int64)
        return conditional_latents(self.correlation, lo, hi, key, stream, rows)

    @staticmethod
    def _level_set_interval(m: ColumnModel, labels: frozenset, n: int, key, stream,
                            row_offset, alone=False):
        """Latent (lo, hi) rows for a fixed combination conditioned on a set of its levels.
        When it is the only condition and the levels form several runs in latent order,
        each row picks one run with probability proportional to its mass under N(0, 1)
        (the dim's marginal; Philox normal of the row at the last latent stream), which is
        exact; otherwise from the first to the last of them (levels in between are
        rejected by the rules the condition adds)."""
        from ._conditional import ImpossibleConditionError, _gather_rows
        if m.encoding != "levels":          # one combination: it is the only one allowed
            return np.full(n, np.nan), np.full(n, np.nan)
        at = np.array([k for k, x in enumerate(m.levels.tolist()) if x in labels])
        if not at.size:
            raise ImpossibleConditionError(f"no level of {m.name!r} meets the conditions")
        bounds = np.concatenate([[-np.inf], m.thresholds, [np.inf]])
        breaks = np.flatnonzero(np.diff(at) > 1)
        if not alone or not breaks.size:
            return np.full(n, bounds[at[0]]), np.full(n, bounds[at[-1] + 1])
        first = at[np.concatenate([[0], breaks + 1])]
        last = at[np.concatenate([breaks, [at.size - 1]])]
        mass = _normal_cdf(bounds[last + 1]) - _normal_cdf(bounds[first])
        cum = np.cumsum(mass) / mass.sum()
        rows = np.arange(row_offset, row_offset + n, dtype=np.int64)
        u = _normal_cdf(_gather_rows(key, _ref.latent_stream(stream, (1 << 20) - 1), rows))
        run = np.minimum(np.searchsorted(cum, u, side="right"), first.size - 1)
        return bounds[first[run]], bounds[last[run] + 1]

    def _output_columns(self, buffers, n, rows) -> list[OutputColumn]:
        """Typed columns of ``n`` sampled rows; ``rows``, their row indices (key columns
        are made from them): the first, when consecutive, or an array. The user's
        columns: reparameterised ones reconstructed, fixed combinations split."""
        out = self._inner_output_columns(buffers, n, rows)
        if self._constraints is not None:
            return self._constraints.outputs(out)
        return out

    def _inner_output_columns(self, buffers, n, rows) -> list[OutputColumn]:
        out = []
        for m in self.columns:
            if m.kind == "key":
                from ._keys import key_values
                index = np.arange(rows, rows + n) if isinstance(rows, numbers.Integral) \
                    else np.asarray(rows, dtype=np.int64)
                kind, values = key_values(m.name, m.params, m.dtype, index)
                out.append(OutputColumn(m.name, kind, values, None, m.dtype))
                continue
            null = None if m.null_dim is None else buffers[m.null_dim].view(np.bool_)
            if m.encoding == "null":
                null = np.ones(n, dtype=bool)
            if m.value_dim is not None:
                values = buffers[m.value_dim]
                if m.kind == "bool":
                    values = values.view(np.bool_) if values.dtype == np.uint8 else \
                        values.astype(bool)
                categories = m.levels if m.kind == "categorical" else None
                k_null = null_level(m)
                if k_null is not None:
                    values, categories, null = _null_level_codes(values, categories, k_null)
                if m.kind == "int":
                    values = values.astype(m.dtype, copy=False)
                elif m.kind == "datetime" and not _quantum_is_exact(m):
                    _snap_to_quantum(values, int(m.round_q))
            else:
                values, categories = self._constant_values(m, n, null)
            out.append(OutputColumn(m.name, m.kind, values, null, m.dtype, categories, m.tz))
        return out

    @staticmethod
    def _constant_values(m: ColumnModel, n: int, null):
        if m.kind == "categorical":
            if m.encoding == "null":
                return np.full(n, -1, np.int32), np.array([], dtype=object)
            codes = np.zeros(n, np.int32)
            if null is not None:
                codes[null] = -1
            return codes, np.array([m.constant], dtype=object)
        if m.kind == "float":
            values = np.full(n, np.nan if m.encoding == "null" else m.constant,
                             dtype=np.float32 if m.dtype == "float32" else np.float64)
            if null is not None:
                values[null] = np.nan
            return values, None
        if m.kind == "bool":
            return np.full(n, bool(m.constant) if m.encoding != "null" else False), None
        if m.kind == "datetime":
            values = np.full(n, np.iinfo(np.int64).min if m.encoding == "null" else m.constant,
                             dtype=np.int64)
            if null is not None:
                values[null] = np.iinfo(np.int64).min
            return values, None
        return np.full(n, 0 if m.encoding == "null" else m.constant, dtype=m.dtype), None

    # ---- persistence -----------------------------------------------------------

    def save(self, path) -> None:
        """Write the model as a zip of model.json + arrays.npz (no pickle, no code)."""
        self._require_fitted()
        arrays = {"correlation": self.correlation, "cholesky": self.cholesky}
        cols = []
        for i, m in enumerate(self.columns):
            entry = {k: getattr(m, k) for k in _SAVED_FIELDS}
            for field_name in ("table", "thresholds"):
                value = getattr(m, field_name)
                if value is not None:
                    arrays[f"{i}.{field_name}"] = value
            if m.levels is not None:
                if m.levels.dtype == object:   # None: a null level (imported from SDV)
                    entry["levels"] = [None if v is None else str(v) for v in m.levels.tolist()]
                else:
                    arrays[f"{i}.levels"] = m.levels
            if m.constant is not None:
                c = m.constant
                entry["constant"] = c.item() if hasattr(c, "item") else c
            cols.append(entry)
        version = FORMAT_VERSION if self._constraints is None else CONSTRAINED_FORMAT_VERSION
        header = {"format": FORMAT, "version": version, "kind": self._SAVED_KIND,
                  "settings": self._saved_settings(),
                  "n_rows_fitted": self.n_rows_fitted, "columns": cols}
        header.update(self._saved_extra())
        write_model(path, header, arrays)

    # what save() writes besides the columns; subclasses (the DP copula) extend these
    _SAVED_KIND = "gaussian_copula"

    def _saved_settings(self) -> dict:
        return {"column_kinds": self.column_kinds, "marginals": self.marginals,
                "default_marginal": self.default_marginal,
                "max_int_levels": self.max_int_levels,
                "enforce_min_max": self.enforce_min_max, "knots": self.knots,
                "rules": None if self.rules is None else list(self.rules.texts),
                "fixed_combinations": [list(c) for c in self.fixed_combinations]}

    def _saved_extra(self) -> dict:
        return {} if self._constraints is None else {"constraints": self._constraints.to_json()}

    @classmethod
    def _from_header(cls, header: dict) -> "GaussianCopula":
        return cls(**header["settings"])

    @classmethod
    def load(cls, path) -> "GaussianCopula":
        """Read a model written by save(). Never unpickles and never runs code.

        A file whose ``kind`` is ``dp_gaussian_copula`` gives a
        ``synthcore.DPGaussianCopula`` (same sampling, plus its privacy record)."""
        header, arrays = read_model(path, FORMAT, (FORMAT_VERSION, CONSTRAINED_FORMAT_VERSION),
                                    "Gaussian copula")
        kind = header.get("kind", "gaussian_copula")   # files before the kind field: plain
        if kind == "dp_gaussian_copula":
            from .dp.copula import DPGaussianCopula
            if not issubclass(DPGaussianCopula, cls):
                raise ValueError(f"{path}: a DP Gaussian copula; load it with synthcore.load "
                                 "or DPGaussianCopula.load")
            cls = DPGaussianCopula
        elif kind != "gaussian_copula":
            raise ValueError(f"{path}: unknown model kind {kind!r}")
        elif cls._SAVED_KIND != "gaussian_copula":
            raise ValueError(f"{path}: a plain Gaussian copula, not a {cls.__name__}")
        model = cls._from_header(header)
        model.n_rows_fitted = header["n_rows_fitted"]
        model.correlation = arrays["correlation"]
        model.cholesky = arrays["cholesky"]
        for i, e in enumerate(header["columns"]):
            m = ColumnModel(**{k: e[k] for k in _SAVED_FIELDS})
            m.table = arrays.get(f"{i}.table")
            m.thresholds = arrays.get(f"{i}.thresholds")
            if "levels" in e:
                m.levels = np.array(e["levels"], dtype=object)
            else:
                m.levels = arrays.get(f"{i}.levels")
            m.constant = e.get("constant")
            if m.kind == "key":
                from ._keys import check_key_params
                m.params = check_key_params(m.name, m.params)
            model.columns.append(m)
        if header.get("constraints") is not None:
            from ._constraints import ConstraintPlan
            model._constraints = ConstraintPlan.from_json(header["constraints"])
            model._fit_marginals = model._constraints.alias_marginals(model.marginals)
        return model

    @classmethod
    def from_sdv(cls, synthesizer, *, knots: int = DEFAULT_KNOTS,
                 omit_generated: bool = False) -> "GaussianCopula":
        """A model that samples the distribution of a fitted SDV
        ``GaussianCopulaSynthesizer`` with synthcore's kernels (see
        synthcore/_sdv_convert.py for what maps to what and what is not
        representable). SDV is only read, never called to sample.
        ``omit_generated=True`` leaves out the columns SDV generates without a model
        (PII through Faker) instead of refusing the synthesizer."""
        from ._sdv_convert import from_sdv
        return from_sdv(synthesizer, knots=knots, cls=cls, omit_generated=omit_generated)


def _check_rows(stream, row_offset, n):
    for name, v, top in (("stream", stream, 2**44), ("row_offset", row_offset, 2**62)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= v < top:
            raise ValueError(f"{name} must be an integer in [0, 2**{int(math.log2(top))}), "
                             f"got {v!r}")
    if row_offset + n > 2**62:
        raise ValueError("row_offset + n exceeds 2**62 rows")


def _plan_arrays(plan):
    """The plan's arrays in the order the kernels take them (_PLAN_FIELDS)."""
    return tuple(getattr(plan, f) for f in _PLAN_FIELDS)


def _core_sample(plan, key, stream, row_offset, n, buffers):
    _backend.core_module().copula_sample(*_plan_arrays(plan), buffers, key.k0, key.k1, stream,
                                         row_offset, _backend.get_num_threads())


def _core_map(plan, z, buffers):
    _backend.core_module().copula_map(*_plan_arrays(plan), buffers, np.ascontiguousarray(z),
                                      _backend.get_num_threads())


def load(path) -> GaussianCopula:
    """Load a model saved with ``GaussianCopula.save``."""
    return GaussianCopula.load(path)
