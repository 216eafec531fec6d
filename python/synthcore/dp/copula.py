"""A differentially private Gaussian copula (DPCopula-style, Li, Xiong and Jiang, EDBT 2014).

``DPGaussianCopula(epsilon=1.0, bounds={...}, categories={...}).fit(table)`` releases,
through ``synthcore.dp.discrete_laplace`` on integers and an ``Accountant``:

1. one noisy histogram per column (bins over the public bounds, or the public
   categories, plus a null bin), with epsilon_marginals / m each for m columns;
2. one noisy vector of Kendall statistics S_ij = sum over row pairs of
   sign(x_a - x_b) sign(y_a - y_b), one per pair of value dimensions, with
   epsilon_correlation.

Everything after that is post-processing of the noisy integers: marginals become the
same quantile tables and level thresholds ``GaussianCopula`` uses, the correlation is
sin(pi tau / 2) repaired to the nearest correlation matrix, and sampling runs the
existing copula kernels unchanged.

Neighbouring relation: **replace one row** (bounded DP). The number of rows n is
public (it is recorded in the model, as for every GaussianCopula). Under it

- a histogram's L1 sensitivity is 2 (one count down, one up; a null is a bin);
- S_ij changes by at most 2 (n_s - 1) when one of the n_s rows it reads is replaced
  (n_s - 1 pairs, each sign product moving by at most 2), so the vector of all P pairs
  has L1 sensitivity 2 P (n_s - 1). S_ij is read on a uniformly random subset of public
  size n_s = min(n, tau_rows) (the subset is drawn from the generator, independently of
  the data; no amplification is claimed).

Composition is basic (the accountant adds epsilons and deltas). docs/dp.md has the rest.
"""
from __future__ import annotations

import math
import numbers
from typing import Mapping, Optional

import numpy as np

from ..copula import DEFAULT_KNOTS, Z_LIMIT, ColumnModel, GaussianCopula, \
    _nearest_correlation, _normal_cdf, _normal_ppf, _read_fit_table
from .._table import TableColumn
from . import accounting
from ._generator import SecureGenerator
from .accounting import Accountant, BudgetExceededError, PrivacyCost

KIND = "dp_gaussian_copula"
NEIGHBOURING = "replace-one-row"
DEFAULT_SPLIT = {"marginals": 0.5, "correlation": 0.5}
DEFAULT_TAU_ROWS = 50_000
GAUSSIAN_MIN_PAIRS = 15         # "auto": Gaussian correlation noise from this many pairs
HISTOGRAM_SENSITIVITY = 2       # replace one row: one count -1, one count +1
NULL_THRESHOLD = 5.0            # a noisy null count under 5 noise scales is taken as 0
THRESHOLD_Z = 9.0               # zero-probability levels: thresholds beyond any float64 normal
BOOL_CATEGORIES = [False, True]
_MIN_BINS, _MAX_BINS = 4, 100


def auto_bins(n: int, epsilon_column: float) -> int:
    """Bins of a numeric column's histogram: round(sqrt(2 n eps_c)) clipped to [4, 100].

    A histogram with B bins of noise scale t = 2 / eps_c has L1 noise about B t / n and a
    bias about 1 / B (piecewise-uniform within bins); B ~ sqrt(n / t) balances them."""
    return int(min(_MAX_BINS, max(_MIN_BINS, round(math.sqrt(2.0 * n * epsilon_column)))))


def kendall_s(x: np.ndarray, y: np.ndarray) -> int:
    """S = sum over pairs a < b of sign(x_a - x_b) * sign(y_a - y_b), exactly, in
    O(n log n) (Knight 1966): S = n0 - n1 - n2 + n3 - 2 * swaps, with n0 all pairs, n1 / n2
    the pairs tied in x / y, n3 tied in both, swaps the discordant pairs (inversions of y
    after sorting by x, then y)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.size
    if n < 2:
        return 0
    order = np.lexsort((y, x))
    xs, ys = x[order], y[order]

    def tied_pairs(change):
        # change[i]: a new group starts at sorted position i + 1
        starts = np.flatnonzero(np.concatenate([[True], change, [True]]))
        t = np.diff(starts).astype(np.int64)
        return int((t * (t - 1) // 2).sum())

    n0 = n * (n - 1) // 2
    n1 = tied_pairs(xs[1:] != xs[:-1])
    n3 = tied_pairs((xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1]))
    y_sorted = np.sort(ys)
    n2 = tied_pairs(y_sorted[1:] != y_sorted[:-1])
    ranks = np.searchsorted(y_sorted, ys, side="left").astype(np.int64)  # dense enough
    swaps = _count_inversions(ranks)
    return n0 - n1 - n2 + n3 - 2 * swaps


def _count_inversions(a: np.ndarray) -> int:
    """Pairs i < j with a[i] > a[j], for integers 0 <= a < len(a): bottom-up merge sort,
    each level vectorised (sorted runs of width w are merged pairwise)."""
    a = np.asarray(a, dtype=np.int64).copy()
    n = a.size
    span = n + 1
    idx = np.arange(n, dtype=np.int64)
    total = 0
    w = 1
    while w < n:
        block = idx // (2 * w)
        left = (idx % (2 * w)) < w
        key = block * span + a
        lk = key[left]                               # ascending: sorted runs, blocks in order
        rk, rb = key[~left], block[~left]
        end = np.searchsorted(lk, (rb + 1) * span, side="left")
        at_most = np.searchsorted(lk, rk, side="right")
        total += int((end - at_most).sum())          # left elements of the block greater
        a = np.sort(key, kind="stable") - block * span
        w *= 2
    return total


def _sampler_delta(n: int, epsilon: float, sensitivity: float) -> float:
    """The delta ``discrete_laplace`` will charge for n values at this cost (its sampler's
    total-variation bound; the same function ``discrete_laplace`` uses)."""
    from .mechanisms import discrete_laplace_cost
    return discrete_laplace_cost(n, sensitivity, epsilon=epsilon)[2]


def _json_scalar(v, where):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, str):
        return v
    raise TypeError(f"{where}: category {v!r} is not a str, int, float or bool")


class _Release:
    """One planned noisy release: what it reads and what it costs. Discrete Laplace
    (delta: its sampler's bound) or, with ``delta`` given, the float Gaussian mechanism
    calibrated to (epsilon, delta) (sensitivity then in L2)."""

    def __init__(self, name, size, epsilon, sensitivity, delta=None):
        self.name, self.size = name, int(size)
        self.epsilon, self.sensitivity = float(epsilon), float(sensitivity)
        self.mechanism = "discrete_laplace" if delta is None else "gaussian"
        self.delta = (_sampler_delta(self.size, self.epsilon, self.sensitivity)
                      if delta is None else float(delta))


class DPGaussianCopula(GaussianCopula):
    """A Gaussian copula fitted with differential privacy (replace-one-row, n public).

    Parameters
    ----------
    epsilon : float
        The fit's total epsilon (basic composition of its releases).
    delta : float
        Approximate-DP budget beyond the samplers' own. With delta = 0 (default) every
        release is discrete Laplace (pure epsilon) except for the sampler's
        total-variation bound, computed before any noise is drawn and charged as delta
        (about 1e-20 per fit). With delta > 0 and ``correlation_noise`` "gaussian" (the
        "auto" choice for 15 or more pairs), the Kendall vector gets Gaussian noise
        calibrated to (epsilon_correlation, delta): its L2 sensitivity grows like
        sqrt(P) where the L1 one grows like P, so wide tables get far less noise. An
        accountant created by ``fit`` holds (epsilon, delta + the samplers' bounds).
    correlation_noise : "auto", "laplace" or "gaussian"
        The mechanism of the correlation release ("gaussian" needs delta > 0).
    bounds : dict
        ``{column: (low, high)}`` for every float, int and datetime column: public
        bounds, never read from the data. Values outside are clipped to them.
        Datetimes take anything ``pandas.Timestamp`` reads (naive means UTC).
    categories : dict
        ``{column: [values]}`` for every categorical column (bool columns default to
        [False, True]; int/float columns listed here are modelled by level). A value not
        in its list is counted, and sampled, as null.
    accountant : synthcore.dp.Accountant, optional
        An approximate-DP accountant to charge; it must have room for the whole fit,
        which is checked before any noise is drawn. Default: a new one holding the
        fit's budget (``self.accountant`` after fit).
    generator : synthcore.dp.SecureGenerator, optional
        ChaCha20 noise source; default: a fresh OS-keyed one per fit.
    budget_split : dict
        ``{"marginals": a, "correlation": b}``, a + b = 1 (default 0.5 / 0.5). The
        marginal share is split evenly over the columns; with fewer than two value
        dimensions (or fewer than two rows) all of epsilon goes to the marginals.
    bins : "auto", int or dict
        Histogram bins per numeric column ("auto": ``auto_bins``). Integer columns
        whose range has at most that many values get one bin per value (exact levels).
    tau_rows : int
        At most this many rows (a uniform random subset of public size) enter the
        Kendall statistics: time O(P n_s log^2 n_s), noise on tau ~ 4 P / (eps n_s).
    column_kinds, knots : as for ``GaussianCopula``.
    """

    _SAVED_KIND = KIND

    def __init__(self, epsilon: float, delta: float = 0.0, *, bounds: Optional[Mapping] = None,
                 categories: Optional[Mapping] = None,
                 accountant: Optional[Accountant] = None,
                 generator: Optional[SecureGenerator] = None,
                 budget_split: Optional[Mapping[str, float]] = None, bins="auto",
                 tau_rows: int = DEFAULT_TAU_ROWS, column_kinds: Optional[dict] = None,
                 knots: int = DEFAULT_KNOTS, correlation_noise: str = "auto"):
        super().__init__(column_kinds=column_kinds, knots=knots)
        self.epsilon = accounting._positive(epsilon, "epsilon")
        self.delta = accounting._delta_halfopen(delta, "delta")
        if correlation_noise not in ("auto", "laplace", "gaussian"):
            raise ValueError(f"correlation_noise must be 'auto', 'laplace' or 'gaussian', got "
                             f"{correlation_noise!r}")
        if correlation_noise == "gaussian" and self.delta == 0.0:
            raise ValueError("correlation_noise: 'gaussian' needs delta > 0")
        self.correlation_noise = correlation_noise
        if bounds is not None and not isinstance(bounds, Mapping):
            raise TypeError("bounds must be a dict {column: (low, high)}")
        if categories is not None and not isinstance(categories, Mapping):
            raise TypeError("categories must be a dict {column: [values]}")
        self.bounds = {str(k): v for k, v in (bounds or {}).items()}
        self.category_lists = {str(k): v for k, v in (categories or {}).items()}
        if accountant is not None:
            if not isinstance(accountant, Accountant):
                raise TypeError("accountant must be a synthcore.dp.Accountant")
            if accountant.mode != "approx":
                raise ValueError("accountant: DPGaussianCopula charges (epsilon, delta) "
                                 "releases; pass an Accountant(epsilon=..., delta=...)")
        self._accountant_arg = accountant   # charged by every fit; None: a new one per fit
        self.accountant = accountant
        if generator is not None and not isinstance(generator, SecureGenerator):
            raise TypeError("generator must be a synthcore.dp.SecureGenerator (or the "
                            "insecure test generator)")
        self.generator = generator
        split = dict(DEFAULT_SPLIT if budget_split is None else budget_split)
        if set(split) != {"marginals", "correlation"}:
            raise ValueError("budget_split must have exactly the keys 'marginals' and "
                             f"'correlation', got {sorted(split)}")
        for k, v in split.items():
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v <= 1:
                raise ValueError(f"budget_split[{k!r}] must be a number in [0, 1], got {v!r}")
        if abs(split["marginals"] + split["correlation"] - 1.0) > 1e-9 or \
                split["marginals"] <= 0:
            raise ValueError("budget_split: 'marginals' must be > 0 and the shares must add "
                             f"up to 1, got {split}")
        self.budget_split = {k: float(v) for k, v in split.items()}
        if not (bins == "auto" or isinstance(bins, Mapping) or
                (isinstance(bins, numbers.Integral) and not isinstance(bins, bool))):
            raise ValueError(f"bins must be 'auto', an integer or a dict, got {bins!r}")
        self.bins = dict(bins) if isinstance(bins, Mapping) else bins
        for name, b in (self.bins.items() if isinstance(self.bins, dict) else
                        [("bins", self.bins)]):
            if b != "auto" and (isinstance(b, bool) or not isinstance(b, numbers.Integral)
                                or b < 1):
                raise ValueError(f"bins[{name!r}] must be 'auto' or a positive integer, "
                                 f"got {b!r}")
        if isinstance(tau_rows, bool) or not isinstance(tau_rows, numbers.Integral) or \
                tau_rows < 2:
            raise ValueError(f"tau_rows must be an integer >= 2, got {tau_rows!r}")
        self.tau_rows = int(tau_rows)
        self.privacy: dict = {}       # what the fit spent, and how (also saved)

    # ---- fit ------------------------------------------------------------------

    def fit(self, table) -> "DPGaussianCopula":
        """Fit with differential privacy; see the class docstring for what is released."""
        cols, n = _read_fit_table(table, self.column_kinds)
        specs = self._column_specs(cols)
        m = len(cols)
        value_cols = [s for s in specs if s["n_values"] >= 2]
        pairs = len(value_cols) * (len(value_cols) - 1) // 2
        n_tau = min(n, self.tau_rows)
        use_corr = pairs > 0 and n_tau >= 2 and self.budget_split["correlation"] > 0
        eps_marg = self.epsilon * (self.budget_split["marginals"] if use_corr else 1.0)
        eps_corr = self.epsilon * self.budget_split["correlation"] if use_corr else 0.0
        eps_col = eps_marg / m
        for s in specs:
            s["bins"] = self._bins_for(s, n, eps_col)
        releases = [_Release(f"marginal:{s['name']}", self._cells(s) + 1, eps_col,
                             HISTOGRAM_SENSITIVITY) for s in specs]
        gaussian_corr = use_corr and self.delta > 0 and (
            self.correlation_noise == "gaussian"
            or (self.correlation_noise == "auto" and pairs >= GAUSSIAN_MIN_PAIRS))
        if gaussian_corr:   # each S_ij moves by 2 (n_s - 1): L2 norm 2 (n_s - 1) sqrt(P)
            releases.append(_Release("correlation:kendall", pairs, eps_corr,
                                     2 * (n_tau - 1) * math.sqrt(pairs), delta=self.delta))
        elif use_corr:
            releases.append(_Release("correlation:kendall", pairs, eps_corr,
                                     2 * pairs * (n_tau - 1)))
        planned = PrivacyCost(epsilon=math.fsum(r.epsilon for r in releases),
                              delta=math.fsum(r.delta for r in releases))
        sampler_delta = math.fsum(r.delta for r in releases if r.mechanism != "gaussian")
        if planned.delta >= 1.0 or sampler_delta + self.delta >= 1.0:
            worst = max(releases, key=lambda r: r.epsilon)
            raise ValueError(f"epsilon: release {worst.name!r} at epsilon={worst.epsilon:g} makes "
                             "the sampler's delta bound (grows like e^epsilon) reach 1; use a "
                             "smaller epsilon (per release below ~60)")
        accountant = self._accountant_arg
        if accountant is None:
            accountant = Accountant(epsilon=self.epsilon, delta=self.delta + sampler_delta)
        elif not accountant.check(epsilon=planned.epsilon, delta=planned.delta):
            rem = accountant.remaining()
            raise BudgetExceededError(
                f"DPGaussianCopula.fit needs {planned} but the accountant has {rem} left; "
                "no noise was drawn", "DPGaussianCopula.fit", planned, rem)
        generator = self.generator if self.generator is not None else SecureGenerator()
        first_entry = len(accountant.ledger)

        from .mechanisms import discrete_laplace
        models = []
        for s, rel in zip(specs, releases):
            counts = self._histogram(s)
            noisy = discrete_laplace(counts, epsilon=rel.epsilon, sensitivity=rel.sensitivity,
                                     generator=generator, accountant=accountant, name=rel.name)
            models.append(self._marginal_model(s, noisy.values, noisy.scale))
        # latent order: null indicators first (the kernels rely on it), then values
        d = 0
        for mdl in models:
            if 0.0 < mdl.null_rate < 1.0:
                mdl.null_dim, d = d, d + 1
        for s, mdl in zip(specs, models):
            if mdl.encoding in ("table", "levels"):
                mdl.value_dim, d = d, d + 1
        corr = np.eye(d)
        tau_record = None
        if use_corr:
            rows = self._tau_rows(n, n_tau, generator)
            keys = [self._rank_key(s, mdl, rows) for s, mdl in zip(specs, models)
                    if s["n_values"] >= 2]
            stats = np.array([kendall_s(*self._complete(keys[i], keys[j]))
                              for i in range(len(keys)) for j in range(i + 1, len(keys))],
                             dtype=np.int64)
            rel = releases[-1]
            if rel.mechanism == "gaussian":
                from .mechanisms import gaussian
                noisy = gaussian(stats.astype(np.float64), epsilon=rel.epsilon, delta=rel.delta,
                                 sensitivity=rel.sensitivity, changed_coordinates=pairs,
                                 generator=generator, accountant=accountant, name=rel.name)
            else:
                noisy = discrete_laplace(stats, epsilon=rel.epsilon,
                                         sensitivity=rel.sensitivity, generator=generator,
                                         accountant=accountant, name=rel.name)
            corr = self._correlation_from_s(noisy.values, value_cols, specs, models, n_tau, d)
            tau_record = {"rows": n_tau, "pairs": pairs, "scale": noisy.scale,
                          "mechanism": rel.mechanism}
        entries = accountant.ledger[first_entry:]
        spent = PrivacyCost(epsilon=math.fsum(e.cost.epsilon for e in entries),
                            delta=math.fsum(e.cost.delta for e in entries))
        self.columns = models
        self.n_rows_fitted = n
        self.correlation = corr
        self.cholesky = np.linalg.cholesky(corr) if d else np.zeros((0, 0))
        self._plan = None
        self.accountant = accountant
        self.privacy = {
            "epsilon": self.epsilon, "delta": self.delta,
            "spent": spent.as_dict(), "neighbouring": NEIGHBOURING,
            "budget_split": {"marginals": eps_marg / self.epsilon,
                             "correlation": eps_corr / self.epsilon},
            "epsilon_per_column": eps_col, "epsilon_correlation": eps_corr,
            "bins": {s["name"]: s["bins"] for s in specs if s["encoding"] == "table"},
            "kendall": tau_record,
            "bounds": {s["name"]: [s["lo"], s["hi"]] for s in specs if "lo" in s},
            "categories": {s["name"]: [_json_scalar(v, s["name"]) for v in s["categories"]]
                           for s in specs if "categories" in s},
            "insecure_generator": bool(generator.insecure),
            "ledger": [e.to_json() for e in entries],
        }
        return self

    # ---- public inputs ------------------------------------------------------

    def _column_specs(self, cols: list[TableColumn]) -> list[dict]:
        names = {c.name for c in cols}
        for what, given in (("bounds", self.bounds), ("categories", self.category_lists)):
            unknown = sorted(set(given) - names)
            if unknown:
                raise ValueError(f"{what} names columns not in the table: {unknown}")
        both = sorted(set(self.bounds) & set(self.category_lists))
        if both:
            raise ValueError(f"columns {both} are in both bounds and categories; give one")
        return [self._spec(c) for c in cols]

    def _spec(self, c: TableColumn) -> dict:
        s = {"name": c.name, "kind": c.kind, "dtype": c.dtype, "tz": c.tz, "column": c}
        if c.name in self.category_lists or c.kind in ("categorical", "bool"):
            if c.name in self.bounds:
                raise ValueError(f"column {c.name!r} is {c.kind}: give its values in "
                                 "categories=, not bounds=")
            cats = self.category_lists.get(c.name)
            if cats is None and c.kind == "bool":
                cats = BOOL_CATEGORIES
            if cats is None:
                raise ValueError(f"column {c.name!r} is categorical: its categories are a public "
                                 f"input, give categories={{{c.name!r}: [...]}}")
            if isinstance(cats, (str, bytes)) or not hasattr(cats, "__iter__"):
                raise ValueError(f"categories[{c.name!r}] must be a list of values")
            cats = list(cats)
            if not cats:
                raise ValueError(f"categories[{c.name!r}] is empty")
            for v in cats:
                _json_scalar(v, f"categories[{c.name!r}]")
            if c.kind == "bool":
                bad = [v for v in cats if not isinstance(v, (bool, np.bool_))]
                if bad:
                    raise ValueError(f"categories[{c.name!r}]: a bool column takes True/False, "
                                     f"got {bad}")
                cats = [bool(v) for v in cats]
            elif c.kind in ("int", "float"):
                bad = [v for v in cats if isinstance(v, (bool, str, np.bool_)) or
                       not isinstance(v, numbers.Real) or
                       (c.kind == "int" and float(v) != int(v))]
                if bad:
                    raise ValueError(f"categories[{c.name!r}]: an {c.kind} column takes "
                                     f"numbers, got {bad}")
                cats = sorted(int(v) if c.kind == "int" else float(v) for v in cats)
            elif c.kind == "datetime":
                raise ValueError(f"column {c.name!r} is a datetime: give bounds=, not "
                                 "categories=")
            if len(set(cats)) != len(cats):
                raise ValueError(f"categories[{c.name!r}] has repeated values")
            s.update(encoding="levels", categories=cats, n_values=len(cats))
            return s
        if c.name not in self.bounds:
            raise ValueError(f"column {c.name!r} is {c.kind}: its range is a public input, "
                             f"give bounds={{{c.name!r}: (low, high)}}")
        b = self.bounds[c.name]
        if isinstance(b, (str, bytes)) or not hasattr(b, "__len__") or len(b) != 2:
            raise ValueError(f"bounds[{c.name!r}] must be a (low, high) pair, got {b!r}")
        lo, hi = (self._bound(c, v, i) for i, v in enumerate(b))
        if not lo < hi:
            raise ValueError(f"bounds[{c.name!r}]: need low < high, got ({b[0]!r}, {b[1]!r})")
        s.update(lo=lo, hi=hi, n_values=2)
        if c.kind == "int":
            s["encoding"] = "int"      # levels or table, once the bins are known
        else:
            s["encoding"] = "table"
        return s

    @staticmethod
    def _bound(c: TableColumn, v, i):
        where = f"bounds[{c.name!r}][{i}]"
        if c.kind == "datetime":
            import pandas as pd
            if isinstance(v, numbers.Integral) and not isinstance(v, bool):
                return int(v)
            try:
                ts = pd.Timestamp(v)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}: not a datetime ({exc})") from None
            if ts is pd.NaT:
                raise ValueError(f"{where}: not a datetime ({v!r})")
            if ts.tzinfo is not None:
                ts = ts.tz_convert("UTC").tz_localize(None)
            return int(ts.as_unit("ns").value)
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"{where} must be a finite number, got {v!r}")
        if c.kind == "int":
            if float(v) != int(v):
                raise ValueError(f"{where}: an int column needs integer bounds, got {v!r}")
            return int(v)
        return float(v)

    def _bins_for(self, s: dict, n: int, eps_col: float) -> int:
        if s["encoding"] == "levels":
            return s["n_values"]
        b = self.bins.get(s["name"], "auto") if isinstance(self.bins, dict) else self.bins
        b = auto_bins(n, eps_col) if b == "auto" else int(b)
        if s["encoding"] == "int":
            width = s["hi"] - s["lo"] + 1
            if width <= b:               # one bin per integer: exact levels
                s["encoding"] = "levels"
                s["categories"] = list(range(s["lo"], s["hi"] + 1))
                s["n_values"] = width
                return width
            s["encoding"] = "table"
        return b

    # ---- histograms -------------------------------------------------------------

    def _codes(self, s: dict) -> np.ndarray:
        """Per row: the bin (0 .. bins - 1) or -1 for null (and unseen categories)."""
        c = s["column"]
        codes = np.full(c.values.shape[0], -1, dtype=np.int64)
        present = ~c.null
        if s["encoding"] == "levels":
            import pandas as pd
            vals = c.values[present]
            if c.kind == "categorical":
                index = pd.Index(s["categories"], dtype=object)
                idx = index.get_indexer(pd.Index(vals, dtype=object))
            else:
                index = pd.Index(np.asarray(s["categories"]))
                idx = index.get_indexer(pd.Index(np.asarray(vals)))
            codes[present] = idx
            return codes
        x = self._clipped(s)
        lo, hi, b = float(s["lo"]), float(s["hi"]), s["bins"]
        if s["kind"] == "int":
            lo, hi = lo - 0.5, hi + 0.5
        k = np.clip(np.floor((x[present] - lo) / (hi - lo) * b).astype(np.int64), 0, b - 1)
        if self._spikes(s):   # cell 0: exactly the low bound, cell b + 1: exactly the high
            xp = x[present]
            k = np.where(xp <= lo, 0, np.where(xp >= hi, b + 1, k + 1))
        codes[present] = k
        return codes

    @staticmethod
    def _spikes(s: dict) -> bool:
        """Float and datetime columns get a point mass at each bound (zero-inflated data,
        values clipped to a bound); int columns have their bins aligned to the integers."""
        return s["encoding"] == "table" and s["kind"] in ("float", "datetime")

    def _cells(self, s: dict) -> int:
        return s["bins"] + (2 if self._spikes(s) else 0)

    @staticmethod
    def _clipped(s: dict) -> np.ndarray:
        """The column's values clipped to its public bounds, as float64 (nulls arbitrary)."""
        c = s["column"]
        if c.kind in ("int", "datetime"):
            return np.clip(c.values, s["lo"], s["hi"]).astype(np.float64)
        return np.clip(c.values.astype(np.float64), s["lo"], s["hi"])

    def _histogram(self, s: dict) -> np.ndarray:
        """Counts per bin, then the null count (last)."""
        codes = self._codes(s)
        s["codes"] = codes
        counts = np.bincount(codes[codes >= 0], minlength=self._cells(s))
        return np.concatenate([counts, [int((codes < 0).sum())]]).astype(np.int64)

    # ---- marginals (post-processing) ------------------------------------------

    @staticmethod
    def _denoise(noisy: np.ndarray, scale: float, spikes: bool = False) -> np.ndarray:
        """Noisy counts to non-negative counts: a value bin under t max(ln K, 3) is set to 0
        (an empty bin passes with probability about min(1 / (2K), 0.025)), the null bin
        (last) and the point masses at the bounds (``spikes``: first and last value cells)
        under 5 t (a column without nulls gets some with probability ~0.3%); if no
        value bin is left, the bins (not the point masses) are clamped at 0 instead, and if
        still none, made uniform."""
        k = noisy.size
        cut = np.full(k, scale * max(math.log(k), 3.0))
        cut[-1] = NULL_THRESHOLD * scale
        if spikes:
            cut[0] = cut[-2] = NULL_THRESHOLD * scale
        kept = np.where(noisy >= cut, noisy, 0).astype(np.int64)
        bins = slice(1, k - 2) if spikes else slice(0, k - 1)
        if kept[:-1].sum() == 0:
            kept[bins] = np.maximum(noisy[bins], 0)
        if kept[:-1].sum() == 0:
            kept[bins] = 1
        return kept

    def _marginal_model(self, s: dict, noisy: np.ndarray, scale: float) -> ColumnModel:
        counts = self._denoise(np.asarray(noisy, dtype=np.int64), scale, self._spikes(s))
        values, null_count = counts[:-1], int(counts[-1])
        total = int(counts.sum())
        null_rate = null_count / total
        m = ColumnModel(s["name"], s["kind"], s["dtype"], null_rate, None, None, "levels",
                        tz=s["tz"])
        m.params = {}
        if s["encoding"] == "levels":
            cats = s["categories"]
            if s["kind"] == "categorical":   # most frequent first (noisy counts: free)
                order = np.argsort(-values, kind="stable")
                levels = np.empty(len(cats), dtype=object)
                levels[:] = [cats[i] for i in order]
            else:
                order = np.arange(len(cats))
                levels = np.asarray(cats, dtype=bool if s["kind"] == "bool" else
                                    np.int64 if s["kind"] in ("int", "bool") else np.float64)
            s["level_order"] = order
            freq = values[order]
            s["ties"] = float(np.sum((freq / freq.sum()) ** 2))
            m.levels = levels
            if np.count_nonzero(freq) == 1:
                m.encoding, m.constant = "constant", levels[int(np.flatnonzero(freq)[0])]
                if hasattr(m.constant, "item"):
                    m.constant = m.constant.item()
                m.levels = None
                return m
            cum = np.cumsum(freq)[:-1] / freq.sum()
            with np.errstate(divide="ignore"):
                m.thresholds = np.clip(_normal_ppf(cum), -THRESHOLD_Z, THRESHOLD_Z)
            return m
        m.encoding, m.marginal = "table", "dp_histogram"
        lo, hi = float(s["lo"]), float(s["hi"])
        edge_lo, edge_hi = (lo - 0.5, hi + 0.5) if s["kind"] == "int" else (lo, hi)
        edges = edge_lo + (edge_hi - edge_lo) * np.arange(s["bins"] + 1) / s["bins"]
        edges[-1] = edge_hi
        s["ties"] = 0.0
        if self._spikes(s):       # zero-width cells at the bounds
            edges = np.concatenate([[edge_lo], edges, [edge_hi]])
            p = values / values.sum()
            s["ties"] = float(p[0] ** 2 + p[-1] ** 2)
        m.z_lo, m.z_hi = -Z_LIMIT, Z_LIMIT
        z = m.z_lo + np.arange(self.knots) * (m.z_hi - m.z_lo) / (self.knots - 1)
        m.table = _quantile_table(values, edges, _normal_cdf(z))
        if s["kind"] == "int":   # inside (lo - 1/2, hi + 1/2): rint keeps samples in [lo, hi]
            m.table = np.clip(m.table, lo - 0.5 + max(1e-3, 4 * np.spacing(abs(lo) + 1.0)),
                              hi + 0.5 - max(1e-3, 4 * np.spacing(abs(hi) + 1.0)))
        elif s["kind"] == "datetime":
            lo_f, hi_f = float(s["lo"]), float(s["hi"])
            if int(lo_f) < s["lo"]:
                lo_f = float(np.nextafter(lo_f, np.inf))
            if int(hi_f) > s["hi"]:
                hi_f = float(np.nextafter(hi_f, -np.inf))
            m.table = np.clip(m.table, lo_f, hi_f)
        return m

    # ---- correlation ------------------------------------------------------------

    @staticmethod
    def _tau_rows(n: int, n_tau: int, generator: SecureGenerator) -> Optional[np.ndarray]:
        """All rows, or a uniform random subset of n_tau rows (64-bit keys from the
        generator; independent of the data)."""
        if n_tau >= n:
            return None
        from .. import _backend
        words = generator.random_raw(
            2 * n, backend="cpu" if "cpu" in _backend.available_backends() else "numpy")
        keys = np.asarray(words).astype(np.uint64)
        keys = (keys[0::2] << np.uint64(32)) | keys[1::2]
        return np.sort(np.argpartition(keys, n_tau - 1)[:n_tau])

    @staticmethod
    def _rank_key(s: dict, m: ColumnModel, rows) -> np.ndarray:
        """What the Kendall statistic ranks, NaN where null: the clipped value, or the
        level's position in the model's order."""
        codes = s["codes"]
        if s["encoding"] == "levels":
            pos = np.empty(len(s["categories"]), dtype=np.float64)
            pos[s["level_order"]] = np.arange(len(s["categories"]), dtype=np.float64)
            key = np.where(codes >= 0, pos[np.maximum(codes, 0)], np.nan)
        else:
            key = np.where(codes >= 0, DPGaussianCopula._clipped(s), np.nan)
        return key if rows is None else key[rows]

    @staticmethod
    def _complete(x, y):
        ok = ~(np.isnan(x) | np.isnan(y))
        return x[ok], y[ok]

    @staticmethod
    def _correlation_from_s(s_noisy, value_cols, specs, models, n_tau, d):
        """tau_b ~ S / (P g_i g_j), g = (1 - null rate) sqrt(1 - tie rate), both from the
        noisy histograms; rho solves latent_tau_b(rho) = tau_b (sin(pi tau / 2) between
        binned columns); nearest correlation matrix."""
        by_name = {mdl.name: mdl for mdl in models}
        pairs_total = n_tau * (n_tau - 1) / 2.0
        g = [(1.0 - by_name[s["name"]].null_rate) * math.sqrt(max(1.0 - s["ties"], 1e-12))
             for s in value_cols]
        dims = [by_name[s["name"]].value_dim for s in value_cols]
        cuts = [by_name[s["name"]].thresholds if by_name[s["name"]].encoding == "levels"
                else None for s in value_cols]
        corr = np.eye(d)
        k = 0
        for i in range(len(value_cols)):
            for j in range(i + 1, len(value_cols)):
                if dims[i] is not None and dims[j] is not None:
                    tau = float(s_noisy[k]) / (pairs_total * g[i] * g[j])
                    rho = tau_to_rho(tau, cuts[i], cuts[j])
                    corr[dims[i], dims[j]] = corr[dims[j], dims[i]] = rho
                k += 1
        return _nearest_correlation(corr) if d else corr

    # ---- persistence ------------------------------------------------------------

    def _saved_settings(self) -> dict:
        return {"epsilon": self.epsilon, "delta": self.delta,
                "budget_split": self.budget_split,
                "correlation_noise": self.correlation_noise,
                "bins": self.bins, "tau_rows": self.tau_rows,
                "column_kinds": self.column_kinds, "knots": self.knots}

    def _saved_extra(self) -> dict:
        return {"dp": self.privacy}

    @classmethod
    def _from_header(cls, header: dict) -> "DPGaussianCopula":
        st = header["settings"]
        model = cls(st["epsilon"], st["delta"], budget_split=st["budget_split"],
                    bins=st["bins"], tau_rows=st["tau_rows"],
                    column_kinds=st["column_kinds"], knots=st["knots"],
                    correlation_noise=st.get("correlation_noise", "laplace"))
        model.privacy = dict(header.get("dp") or {})
        model.bounds = dict(model.privacy.get("bounds", {}))
        model.category_lists = dict(model.privacy.get("categories", {}))
        return model

    def privacy_report(self) -> str:
        """The fit's budget, split and ledger as text."""
        if not self.privacy:
            return "not fitted"
        p = self.privacy
        lines = [f"DPGaussianCopula: ({p['epsilon']:g}, {p['delta']:g})-DP budget, "
                 f"{p['neighbouring']} neighbours; spent epsilon="
                 f"{p['spent']['epsilon']:.6g}, delta={p['spent']['delta']:.3g}",
                 f"split: marginals {p['budget_split']['marginals']:.3g}, correlation "
                 f"{p['budget_split']['correlation']:.3g}"]
        for e in p["ledger"]:
            lines.append(f"  {e['name']}: epsilon={e['cost']['epsilon']:.6g} "
                         f"delta={e['cost']['delta']:.3g} scale={e['params'].get('scale')}")
        return "\n".join(lines)


def _quantile_table(counts: np.ndarray, edges: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Q(u) of the piecewise-uniform distribution with these bin counts: within bin k,
    linear from edges[k] at F_k to edges[k + 1] at F_{k+1}; empty bins are jumped over.
    Q(0) and Q(1) are the outer edges of the first and last non-empty bins."""
    counts = np.asarray(counts, dtype=np.float64)
    cdf = np.concatenate([[0.0], np.cumsum(counts)]) / counts.sum()
    cdf[-1] = 1.0
    nz = np.flatnonzero(counts)
    b = counts.size
    k = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, b - 1)
    # u on a flat stretch's right end (or u = 1): the last non-empty bin at or before k
    last_nz = np.maximum.accumulate(np.where(counts > 0, np.arange(b), -1))
    k = np.where(counts[k] > 0, k, np.maximum(last_nz[k], nz[0]))
    width = cdf[k + 1] - cdf[k]
    frac = np.clip((u - cdf[k]) / width, 0.0, 1.0)
    t = edges[k] + frac * (edges[k + 1] - edges[k])
    t[u <= 0.0] = edges[nz[0]]
    t[u >= 1.0] = edges[nz[-1] + 1]
    return np.maximum.accumulate(t)


_RHO_MAX = 0.999
_CONTINUOUS_CELLS = 64
_X_GRID = np.linspace(-9.0, 9.0, 901)


def latent_tau_b(rho: float, cuts_x: Optional[np.ndarray], cuts_y: Optional[np.ndarray]) -> float:
    """Kendall's tau-b of (level(Z1), level(Z2)) for (Z1, Z2) standard bivariate normal with
    correlation rho, cut at the given thresholds (None: continuous, taken as 64
    equiprobable cells). Cell probabilities from Phi2(a, b) = int_-inf^a phi(x)
    Phi((b - rho x) / sqrt(1 - rho^2)) dx (trapezoid on a 0.02 grid); then
    tau_a = sum p_kl (concordant_kl - discordant_kl), divided by sqrt((1 - ties_x)(1 - ties_y))."""
    from scipy.special import ndtr, ndtri
    if cuts_x is None and cuts_y is None:
        return 2.0 / math.pi * math.asin(rho)
    even = ndtri(np.arange(1, _CONTINUOUS_CELLS) / _CONTINUOUS_CELLS)
    a = even if cuts_x is None else np.asarray(cuts_x, dtype=np.float64)
    b = even if cuts_y is None else np.asarray(cuts_y, dtype=np.float64)
    x = _X_GRID
    s = math.sqrt(1.0 - rho * rho)
    dens = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    inner = dens[:, None] * ndtr((b[None, :] - rho * x[:, None]) / s)       # [x, b]
    inner = np.concatenate([inner, dens[:, None]], axis=1)                   # b = +inf
    h = x[1] - x[0]
    cum = np.concatenate([np.zeros((1, inner.shape[1])),
                          np.cumsum((inner[1:] + inner[:-1]) * (h / 2.0), axis=0)])
    # Phi2 at (a_k, b_l), a = +inf as the last row; rows and columns start at -inf (0)
    at = np.clip(np.append(a, x[-1]), x[0], x[-1])
    i1 = np.clip(np.searchsorted(x, at, side="right"), 1, x.size - 1)
    w = ((at - x[i1 - 1]) / h)[:, None]
    grid = cum[i1 - 1] * (1.0 - w) + cum[i1] * w                            # [a, b]
    grid = np.vstack([np.zeros((1, grid.shape[1])), grid])
    grid = np.hstack([np.zeros((grid.shape[0], 1)), grid])
    p = np.maximum(np.diff(np.diff(grid, axis=0), axis=1), 0.0)             # cells [K, L]
    p /= p.sum()
    c = np.cumsum(np.cumsum(p, axis=0), axis=1)            # P(X <= k, Y <= l)
    pad = np.zeros((p.shape[0] + 1, p.shape[1] + 1))
    pad[1:, 1:] = c
    below = pad[:-1, :-1]                                   # X < k, Y < l
    px, py = p.sum(axis=1), p.sum(axis=0)
    cx_lt = np.concatenate([[0.0], np.cumsum(px)[:-1]])    # P(X < k)
    cy_lt = np.concatenate([[0.0], np.cumsum(py)[:-1]])
    cx_le, cy_le = cx_lt + px, cy_lt + py
    above = 1.0 - cx_le[:, None] - cy_le[None, :] + c       # X > k, Y > l
    lt_gt = cx_lt[:, None] - pad[:-1, 1:]                   # X < k, Y > l
    gt_lt = cy_lt[None, :] - pad[1:, :-1]                   # X > k, Y < l
    tau_a = float(np.sum(p * (below + above - lt_gt - gt_lt)))
    ties = (1.0 - float(np.sum(px ** 2))) * (1.0 - float(np.sum(py ** 2)))
    return tau_a / math.sqrt(max(ties, 1e-300))


def tau_to_rho(tau: float, cuts_x=None, cuts_y=None) -> float:
    """The latent correlation whose tau-b (``latent_tau_b``) equals tau, in
    [-0.999, 0.999]: sin(pi tau / 2) between continuous columns, else a root search."""
    tau = min(1.0, max(-1.0, tau))
    if cuts_x is None and cuts_y is None:
        return min(_RHO_MAX, max(-_RHO_MAX, math.sin(math.pi / 2.0 * tau)))
    from scipy.optimize import brentq
    f_lo = latent_tau_b(-_RHO_MAX, cuts_x, cuts_y)
    f_hi = latent_tau_b(_RHO_MAX, cuts_x, cuts_y)
    if tau <= f_lo:
        return -_RHO_MAX
    if tau >= f_hi:
        return _RHO_MAX
    return float(brentq(lambda r: latent_tau_b(r, cuts_x, cuts_y) - tau, -_RHO_MAX, _RHO_MAX,
                        xtol=1e-5))
