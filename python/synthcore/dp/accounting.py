"""Privacy accounting: noise calibration, zCDP conversions and a budget ledger.

Everything here is pure Python plus NumPy/SciPy and is re-derived from the
papers cited next to each function (nothing is copied from another library).

Conventions
-----------
* ``sensitivity`` (Δ) is the L1 sensitivity for Laplace-type noise and the L2
  sensitivity for Gaussian-type noise; it must be finite and > 0.
* ``epsilon`` must be finite and > 0 when it calibrates noise; ``delta`` must
  lie in (0, 1) wherever a formula needs it to (``0 <= delta < 1`` for budget
  totals). Every invalid argument raises :class:`ValueError` whose message
  starts with the argument's name (non-numbers and NaN included).
* **Outward rounding.** Every noise scale is rounded *up* and every privacy
  cost (ρ, ε) is rounded *up* (and an admissible ρ budget *down*), so float
  rounding never makes a release look cheaper than it is. Scales computed by a
  plain quotient (Laplace, ρ-calibrated Gaussian) are checked exactly with
  :class:`fractions.Fraction` and bumped by one ulp when the quotient rounded
  down.

References
----------
[DR14]  C. Dwork, A. Roth. The Algorithmic Foundations of Differential Privacy,
        2014 (Thm 3.6 Laplace, Thm A.1 classical Gaussian, Thm 3.16 basic
        composition).
[BW18]  B. Balle, Y.-X. Wang. Improving the Gaussian Mechanism for Differential
        Privacy: Analytical Calibration and Optimal Denoising. ICML 2018,
        arXiv:1805.06530 (Thm 8, Alg. 1).
[BS16]  M. Bun, T. Steinke. Concentrated Differential Privacy: Simplifications,
        Extensions, and Lower Bounds. TCC 2016, arXiv:1605.02065 (Prop 1.3
        zCDP -> (ε,δ), Prop 1.4 pure -> zCDP, Prop 1.6 Gaussian; composition:
        ρ adds up).
[CKS20] C. Canonne, G. Kamath, T. Steinke. The Discrete Gaussian for
        Differential Privacy. NeurIPS 2020, arXiv:2004.00010 (§2.3 Prop 12 /
        Cor 13: tight zCDP -> (ε,δ); Thm 4: discrete Gaussian is
        Δ²/(2σ²)-zCDP for integer-valued queries; discrete Laplace).
"""
from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any, Callable, Dict, List, Mapping, Optional

from scipy.optimize import brentq
from scipy.special import log_ndtr

__all__ = [
    "Accountant",
    "BudgetExceededError",
    "LedgerEntry",
    "PrivacyCost",
    "Receipt",
    "Reservation",
    "RELATIVE_TOLERANCE",
    "approx_dp_to_zcdp",
    "analytic_gaussian_delta",
    "discrete_laplace_scale",
    "gaussian_sigma_analytic",
    "gaussian_sigma_classical",
    "gaussian_sigma_for_rho",
    "laplace_scale",
    "pure_to_zcdp",
    "zcdp_delta_for_epsilon",
    "zcdp_rho_discrete_gaussian",
    "zcdp_rho_gaussian",
    "zcdp_to_approx_dp",
    "zcdp_to_approx_dp_simple",
]

_EPS = 2.0 ** -52          # float64 machine epsilon
_INF = float("inf")

#: Relative slack allowed when comparing spent budget with the total (see
#: :class:`Accountant`): a charge is accepted when
#: ``fsum(spent + reserved + cost) <= total * (1 + RELATIVE_TOLERANCE)``.
RELATIVE_TOLERANCE = 1e-12


# ---------------------------------------------------------------------------
# argument validation
# ---------------------------------------------------------------------------


def _geometric_bisection(switched, lo: float, hi: float, rel: float = 1e-13):
    """Narrow 0 < lo < hi, where ``switched`` is False at lo and True at hi, by geometric
    midpoints to a relative width ``rel``; returns the final (lo, hi)."""
    while hi / lo - 1.0 > rel:
        mid = math.sqrt(lo * hi)
        if not (lo < mid < hi):
            break
        if switched(mid):
            hi = mid
        else:
            lo = mid
    return lo, hi

def _as_float(x: Any, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {x!r} ({type(x).__name__})")
    v = float(x)
    if math.isnan(v):
        raise ValueError(f"{name} must not be NaN")
    return v


def _positive(x: Any, name: str) -> float:
    v = _as_float(x, name)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be finite and > 0, got {x!r}")
    return v


def _nonnegative(x: Any, name: str) -> float:
    v = _as_float(x, name)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"{name} must be finite and >= 0, got {x!r}")
    return v


def _delta_open(x: Any, name: str = "delta") -> float:
    v = _as_float(x, name)
    if not (0.0 < v < 1.0):
        raise ValueError(f"{name} must satisfy 0 < {name} < 1, got {x!r}")
    return v


def _delta_halfopen(x: Any, name: str = "delta") -> float:
    v = _as_float(x, name)
    if not (0.0 <= v < 1.0):
        raise ValueError(f"{name} must satisfy 0 <= {name} < 1, got {x!r}")
    return v


# ---------------------------------------------------------------------------
# outward-rounding helpers
# ---------------------------------------------------------------------------

def _up(x: float, ulps: int = 4) -> float:
    """x moved up by a few ulps (for results of short float computations)."""
    for _ in range(ulps):
        x = math.nextafter(x, _INF)
    return x


def _quotient_up(num: float, den: float) -> float:
    """Smallest float q with q >= num/den exactly (num, den > 0)."""
    q = num / den
    if Fraction(q) * Fraction(den) < Fraction(num):
        q = math.nextafter(q, _INF)
    return q


# ---------------------------------------------------------------------------
# Laplace
# ---------------------------------------------------------------------------

def laplace_scale(sensitivity: float, epsilon: float) -> float:
    """Laplace scale b = Δ₁/ε for ε-DP ([DR14] Thm 3.6), rounded up.

    ``sensitivity`` is the L1 sensitivity of the (real-valued) query. The
    returned float b satisfies b >= Δ/ε exactly.
    """
    d = _positive(sensitivity, "sensitivity")
    e = _positive(epsilon, "epsilon")
    return _quotient_up(d, e)


def discrete_laplace_scale(sensitivity: float, epsilon: float) -> float:
    """Scale t of the discrete Laplace P[Z=z] ∝ exp(−|z|/t) for ε-DP.

    For an integer-valued query with L1 sensitivity Δ, adding discrete Laplace
    noise of scale t is (Δ/t)-DP (the privacy-loss ratio of neighbouring
    outputs is at most exp(|q(x) − q(x')|/t); see [CKS20] §4 / the geometric
    mechanism). Hence the same formula as Laplace, t = Δ/ε, rounded up. Δ need
    not be an integer (an upper bound on the integer sensitivity is valid),
    but the *query* must be integer valued; use a granularity/integerisation
    step for floats.
    """
    return laplace_scale(sensitivity, epsilon)


# ---------------------------------------------------------------------------
# Gaussian
# ---------------------------------------------------------------------------

def gaussian_sigma_classical(sensitivity: float, epsilon: float, delta: float) -> float:
    """Classical Gaussian σ = Δ₂·√(2 ln(1.25/δ))/ε ([DR14] Thm A.1), ε < 1 only.

    The theorem is proved only for 0 < ε < 1; for ε >= 1 a ValueError is
    raised (use :func:`gaussian_sigma_analytic`, which is valid for every ε
    and always gives a smaller σ).
    """
    d = _positive(sensitivity, "sensitivity")
    e = _positive(epsilon, "epsilon")
    dl = _delta_open(delta, "delta")
    if not e < 1.0:
        raise ValueError(
            f"epsilon must be < 1 for the classical Gaussian mechanism (Dwork-Roth "
            f"Thm A.1 assumes 0 < epsilon < 1), got {epsilon!r}; use "
            f"gaussian_sigma_analytic(), which is exact for any epsilon")
    return _up(d * math.sqrt(2.0 * math.log(1.25 / dl)) / e)


def _log_delta_upper(u: float, epsilon: float) -> float:
    """Upper bound on log δ(σ) of [BW18] Thm 8, with u = σ/Δ.

    δ = Φ(a) − e^ε Φ(b), a = 1/(2u) − εu, b = −1/(2u) − εu. Computed as
    log δ = log Φ(a) + log(−expm1(x)), x = ε + log Φ(b) − log Φ(a) < 0, all in
    log space (``log_ndtr``), so nothing overflows for large ε and nothing
    underflows for small δ. The rounding error of x and log Φ(a) is bounded
    generously (16 ulps of the magnitudes involved) and added outward, so the
    result errs on the side of a larger δ (hence a larger, safer σ).
    """
    a = 0.5 / u - epsilon * u
    b = -0.5 / u - epsilon * u
    la = float(log_ndtr(a))
    lpb = float(log_ndtr(b))
    x = epsilon + lpb - la
    err = 16.0 * _EPS * (abs(la) + abs(lpb) + epsilon + 1.0)
    x_low = x - err                          # δ is decreasing in x
    if x_low >= 0.0:                         # cannot happen for exact values
        x_low = -err
    return la + 16.0 * _EPS * (abs(la) + 1.0) + math.log(-math.expm1(x_low))


def analytic_gaussian_delta(sensitivity: float, sigma: float, epsilon: float) -> float:
    """δ(σ) = Φ(Δ/(2σ) − εσ/Δ) − e^ε Φ(−Δ/(2σ) − εσ/Δ) ([BW18] Thm 8).

    The exact (tight) δ of the Gaussian mechanism with noise σ at ε. Returned
    as an upper bound that includes a bound on its own rounding error; the
    excess over the exact value is below ~1e-10 relative for ε >= 0.1, ~1e-9
    at ε = 0.01 and ~1e-7 at ε = 1e-4 (cancellation in Φ(a) − e^ε Φ(b)).
    """
    d = _positive(sensitivity, "sensitivity")
    s = _positive(sigma, "sigma")
    e = _nonnegative(epsilon, "epsilon")
    return min(1.0, math.exp(_log_delta_upper(s / d, e)))


def gaussian_sigma_analytic(sensitivity: float, epsilon: float, delta: float) -> float:
    """Analytic Gaussian σ ([BW18] Thm 8 / Alg. 1): the smallest σ with δ(σ) <= δ.

    δ(σ) (see :func:`analytic_gaussian_delta`) is strictly decreasing in σ and
    depends on σ/Δ only. We solve on u = σ/Δ by bracketing (doubling from the
    classical value) and bisection in log u to a relative width of 1e-13,
    always keeping the upper end, whose *upper bound* on δ(u) is <= δ; so the
    returned σ is rounded up and verified. This is equivalent to BW18
    Algorithm 1 (which solves the same equation through an auxiliary variable)
    but needs no case split on δ vs δ₀ = Φ(0) − e^ε Φ(−√(2ε)).

    Valid for every ε > 0 (no ε < 1 restriction). Accuracy: the log-space
    evaluation (``scipy.special.log_ndtr``) computes δ to ~1e-13 relative for
    ε in [0.1, 50] and δ down to 1e-12 (checked against 60-digit mpmath),
    ~1e-10 for ε down to 1e-4 (cancellation in Φ(a) − e^ε Φ(b)). A rounding
    error bound is added to δ before comparing (see
    :func:`analytic_gaussian_delta`), so σ is never too small; the exact δ at
    the returned σ is below the target by at most ~1e-10 relative for
    ε >= 0.1 (~3e-8 at ε = 1e-4), and 1e-6 less σ always violates it.
    """
    d = _positive(sensitivity, "sensitivity")
    e = _positive(epsilon, "epsilon")
    dl = _delta_open(delta, "delta")
    log_target = math.log(dl)

    def ok(u: float) -> bool:
        return _log_delta_upper(u, e) <= log_target

    u0 = math.sqrt(2.0 * math.log(1.25 / dl)) / e
    if not (u0 > 0.0 and math.isfinite(u0)):
        u0 = 1.0
    lo = hi = u0
    if ok(u0):
        for _ in range(4200):
            lo = hi / 2.0
            if lo == 0.0 or not ok(lo):
                break
            hi = lo
        else:  # pragma: no cover - δ(u) -> 1 as u -> 0
            raise ArithmeticError("gaussian_sigma_analytic: no lower bracket")
    else:
        for _ in range(4200):
            lo, hi = hi, hi * 2.0
            if not math.isfinite(hi):
                raise ValueError(
                    f"epsilon/delta: no finite sigma reaches delta={delta!r} at "
                    f"epsilon={epsilon!r}")
            if ok(hi):
                break
    lo, hi = _geometric_bisection(ok, lo, hi)
    sigma = math.nextafter(d * hi, _INF)
    return sigma


# ---------------------------------------------------------------------------
# zCDP
# ---------------------------------------------------------------------------

def zcdp_rho_gaussian(sensitivity: float, sigma: float) -> float:
    """ρ = Δ₂²/(2σ²): the Gaussian mechanism is ρ-zCDP ([BS16] Prop 1.6), rounded up."""
    d = _positive(sensitivity, "sensitivity")
    s = _positive(sigma, "sigma")
    exact = Fraction(d) ** 2 / (2 * Fraction(s) ** 2)
    rho = float(exact)
    if Fraction(rho) < exact:
        rho = math.nextafter(rho, _INF)
    if rho == 0.0:      # underflow: report the smallest positive cost
        rho = math.nextafter(0.0, _INF)
    return rho


def zcdp_rho_discrete_gaussian(sensitivity: float, sigma: float) -> float:
    """ρ = Δ₂²/(2σ²) for the discrete Gaussian N_Z(0, σ²) ([CKS20] Thm 4).

    σ here is the *parameter* σ of N_Z(0, σ²) (P[Y=y] ∝ exp(−y²/(2σ²)), y in
    Z), not its standard deviation (which is slightly smaller). CKS20 Thm 4
    shows that adding N_Z(0, σ²) to an integer-valued query with sensitivity
    Δ is (Δ²/(2σ²))-zCDP — exactly the continuous Gaussian's ρ. For
    vector queries with independent N_Z(0, σ²) per coordinate and integer
    L2 sensitivity Δ₂, the per-coordinate Rényi divergences (each at most
    α·d_j²/(2σ²), the bound proved for Thm 4) add, giving ρ = Δ₂²/(2σ²).
    """
    return zcdp_rho_gaussian(sensitivity, sigma)


def gaussian_sigma_for_rho(sensitivity: float, rho: float) -> float:
    """σ = Δ₂/√(2ρ), the smallest σ for ρ-zCDP ([BS16] Prop 1.6), rounded up.

    The returned float satisfies Δ²/(2σ²) <= ρ exactly. Also valid for the
    discrete Gaussian parameter ([CKS20] Thm 4).
    """
    d = _positive(sensitivity, "sensitivity")
    r = _positive(rho, "rho")
    s = d / math.sqrt(2.0 * r)
    fd, fr = Fraction(d), Fraction(r)
    while fd * fd > 2 * Fraction(s) ** 2 * fr:
        s = math.nextafter(s, _INF)
    return s


def pure_to_zcdp(epsilon: float) -> float:
    """ρ = ε²/2: an ε-DP mechanism is (ε²/2)-zCDP ([BS16] Prop 1.4), rounded up."""
    e = _nonnegative(epsilon, "epsilon")
    exact = Fraction(e) ** 2 / 2
    rho = float(exact)
    if Fraction(rho) < exact:
        rho = math.nextafter(rho, _INF)
    return rho


def zcdp_to_approx_dp_simple(rho: float, delta: float) -> float:
    """ε = ρ + 2√(ρ ln(1/δ)) ([BS16] Prop 1.3). Looser than :func:`zcdp_to_approx_dp`."""
    r = _nonnegative(rho, "rho")
    dl = _delta_open(delta, "delta")
    if r == 0.0:
        return 0.0
    return _up(r + 2.0 * math.sqrt(r * -math.log(dl)))


def _cks_eps_at(t: float, rho: float, L: float) -> float:
    """ε bound of [CKS20] Prop 12 at Rényi order α = 1 + t (valid for any t > 0).

    ρ-zCDP is (α, αρ)-RDP for every α > 1; CKS20 Prop 12 turns (α, τ)-RDP into
    (ε, δ)-DP with ε = τ + (ln(1/δ) − ln α)/(α − 1) + ln(1 − 1/α). With
    α = 1 + t and L = ln(1/δ):  ε(t) = ρ(1+t) + (L − log1p(t))/t − log1p(1/t).
    """
    a = rho * (1.0 + t)
    b = (L - math.log1p(t)) / t
    c = math.log1p(1.0 / t)
    # add a generous bound on the rounding error (outward rounding)
    return a + b - c + 16.0 * _EPS * (abs(a) + abs(b) + abs(c))


def _cks_best_t(rho: float, L: float) -> float:
    """argmin over t > 0 of :func:`_cks_eps_at`.

    dε/dα = ρ − (L − ln α)/(α − 1)², so the optimum solves
    g(t) = ρt² + log1p(t) − L = 0; g is increasing, g(0) = −L < 0 and
    g(√(L/ρ)) >= log1p(√(L/ρ)) > 0, so the root is unique and bracketed.
    """
    hi = math.sqrt(L / rho)
    def g(t):
        return rho * t * t + math.log1p(t) - L
    lo = hi
    while g(lo) > 0.0:           # positive lower end, found by halving
        lo /= 2.0
        if lo < 1e-300:
            return lo
    if lo == hi:
        return hi
    return brentq(g, lo, hi, xtol=1e-300, rtol=4 * _EPS, maxiter=500)


def zcdp_to_approx_dp(rho: float, delta: float) -> float:
    """Tight ρ-zCDP → (ε, δ)-DP conversion of [CKS20] Cor 13 (via Prop 12).

    ε(ρ, δ) = inf over α > 1 of  αρ + (ln(1/δ) − ln α)/(α − 1) + ln(1 − 1/α),

    which is the inverse in ε of CKS20's
    δ = inf_α exp((α−1)(αρ−ε)) / α · (1 − 1/α)^(α−1).
    The minimiser solves ρ(α−1)² = ln(1/δ) − ln α (unique root, found with
    Brent's method); since the bound holds at *every* α, an inexact α only
    makes ε larger (sound). A bound on the float rounding error of the final
    expression is added (outward rounding) and the result is clamped at 0.
    Never larger than :func:`zcdp_to_approx_dp_simple`.
    """
    r = _nonnegative(rho, "rho")
    dl = _delta_open(delta, "delta")
    if r == 0.0:
        return 0.0
    L = -math.log(dl)
    t = _cks_best_t(r, L)
    eps = _cks_eps_at(t, r, L)
    if not eps > 0.0:
        return 0.0
    return eps


def zcdp_delta_for_epsilon(rho: float, epsilon: float) -> float:
    """Tight δ(ρ, ε) of [CKS20] Cor 13: the smallest δ with ρ-zCDP ⇒ (ε, δ)-DP.

    δ = inf over α > 1 of exp((α−1)(αρ−ε) + α ln(1 − 1/α)) / (α − 1).
    The log of the bracket is minimised where (2α−1)ρ − ε + ln(1 − 1/α) = 0
    (increasing in α: unique root). Any α gives a valid δ, so an inexact root
    only errs upward. Result rounded up and capped at 1.
    """
    r = _nonnegative(rho, "rho")
    e = _nonnegative(epsilon, "epsilon")
    if r == 0.0:
        return 0.0

    def dlog(t):   # derivative of log δ w.r.t. α, with α = 1 + t
        return (2.0 * t + 1.0) * r - e - math.log1p(1.0 / t)

    hi = (e + 1.0) / (2.0 * r) + 1.0
    lo = min(1.0, hi) / 2.0
    while dlog(lo) > 0.0 and lo > 1e-300:
        lo /= 2.0
    if dlog(lo) > 0.0:
        t = lo
    else:
        t = brentq(dlog, lo, hi, xtol=1e-300, rtol=4 * _EPS, maxiter=500)
    a = t * ((1.0 + t) * r - e)
    b = (1.0 + t) * math.log1p(1.0 / t)
    c = math.log(t)
    # log δ plus a generous bound on its rounding error (outward rounding)
    ld = a - b - c + 16.0 * _EPS * (abs(a) + abs(b) + abs(c) + 1.0)
    if ld >= 0.0:
        return 1.0
    return min(1.0, _up(math.exp(ld)))


def approx_dp_to_zcdp(epsilon: float, delta: float) -> float:
    """Largest ρ whose tight conversion gives at most (ε, δ), i.e.
    ρ* = max{ρ : :func:`zcdp_to_approx_dp` (ρ, δ) <= ε}.

    Used to calibrate a zCDP budget from an (ε, δ) target (as in MST/AIM).
    ε(ρ, δ) is continuous and strictly increasing in ρ; we bracket from the
    inverse of the simple bound, ρ₀ = (√(L+ε) − √L)², L = ln(1/δ) (a lower
    bound since the tight conversion is never larger), and bisect in log ρ to a
    relative width of 1e-13, returning the lower (verified) end: the result
    is rounded down, so spending it never exceeds (ε, δ).
    """
    e = _positive(epsilon, "epsilon")
    dl = _delta_open(delta, "delta")
    L = -math.log(dl)

    def ok(r: float) -> bool:
        return zcdp_to_approx_dp(r, dl) <= e

    lo = (math.sqrt(L + e) - math.sqrt(L)) ** 2
    if not lo > 0.0:                 # ε << L: same quantity without cancellation
        lo = e * e / (4.0 * (L + e))
    while not ok(lo):
        lo /= 2.0
        if lo < 1e-300:  # pragma: no cover
            raise ArithmeticError("approx_dp_to_zcdp: no lower bracket")
    hi = lo * 2.0
    while ok(hi):
        lo, hi = hi, hi * 2.0
        if not math.isfinite(hi):  # pragma: no cover
            raise ArithmeticError("approx_dp_to_zcdp: no upper bracket")
    lo, hi = _geometric_bisection(lambda x: not ok(x), lo, hi)
    return lo


# ---------------------------------------------------------------------------
# Accountant
# ---------------------------------------------------------------------------

class BudgetExceededError(RuntimeError):
    """A charge or reservation would overspend the budget; nothing was recorded.

    Attributes: ``name`` (the release), ``requested`` and ``remaining``
    (:class:`PrivacyCost`).
    """

    def __init__(self, message: str, name: str, requested: "PrivacyCost",
                 remaining: "PrivacyCost"):
        super().__init__(message)
        self.name = name
        self.requested = requested
        self.remaining = remaining


@dataclass(frozen=True)
class PrivacyCost:
    """A privacy amount: (epsilon, delta) for approximate DP or rho for zCDP.

    Fields that do not apply are None.
    """
    epsilon: Optional[float] = None
    delta: Optional[float] = None
    rho: Optional[float] = None

    def as_dict(self) -> Dict[str, float]:
        return {k: v for k, v in (("epsilon", self.epsilon), ("delta", self.delta),
                                  ("rho", self.rho)) if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PrivacyCost":
        unknown = set(d) - {"epsilon", "delta", "rho"}
        if unknown:
            raise ValueError(f"cost: unknown keys {sorted(unknown)}")
        return cls(**{k: float(v) for k, v in d.items()})

    def __str__(self) -> str:
        return ", ".join(f"{k}={v:.6g}" for k, v in self.as_dict().items()) or "-"


@dataclass(frozen=True)
class LedgerEntry:
    """One recorded release (also the receipt returned by :meth:`Accountant.charge`).

    ``cost`` is in the accountant's unit (ε, δ or ρ); ``requested`` is what the
    caller passed (e.g. ``epsilon=1`` in a zCDP accountant, charged as
    ``rho=0.5``). ``params`` is a JSON-compatible dict of mechanism parameters
    (σ, scale, sensitivity, ...). ``time`` is an ISO-8601 UTC timestamp.
    """
    index: int
    name: str
    time: str
    cost: PrivacyCost
    requested: PrivacyCost
    mechanism: Optional[str] = None
    params: Dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> Dict[str, Any]:
        return {"index": self.index, "name": self.name, "time": self.time,
                "cost": self.cost.as_dict(), "requested": self.requested.as_dict(),
                "mechanism": self.mechanism, "params": self.params}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "LedgerEntry":
        return cls(index=int(d["index"]), name=str(d["name"]), time=str(d["time"]),
                   cost=PrivacyCost.from_dict(d["cost"]),
                   requested=PrivacyCost.from_dict(d["requested"]),
                   mechanism=d.get("mechanism"), params=dict(d.get("params") or {}))


#: The receipt returned by :meth:`Accountant.charge` is the ledger entry.
Receipt = LedgerEntry


class Reservation:
    """Budget held by :meth:`Accountant.reserve` but not yet spent.

    Reserved budget counts against :meth:`Accountant.remaining` (so concurrent
    charges cannot take it) but not against :meth:`Accountant.spent` and is not
    saved. Finish with :meth:`commit` (records a ledger entry) or
    :meth:`release` (returns it). As a context manager it commits on normal
    exit (unless already finished) and releases if the block raises.
    """

    def __init__(self, accountant: "Accountant", key: int, name: str,
                 cost: PrivacyCost, requested: PrivacyCost,
                 mechanism: Optional[str], params: Dict[str, Any]):
        self._acc = accountant
        self._key = key
        self.name = name
        self.cost = cost
        self.requested = requested
        self.mechanism = mechanism
        self.params = params
        self.entry: Optional[LedgerEntry] = None
        self.released = False

    @property
    def active(self) -> bool:
        return self.entry is None and not self.released

    def commit(self, params: Optional[Mapping[str, Any]] = None) -> LedgerEntry:
        """Record the reserved cost in the ledger; ``params`` update the stored ones."""
        return self._acc._commit(self, params)

    def release(self) -> None:
        """Give the reserved budget back without recording anything."""
        self._acc._release(self)

    def __enter__(self) -> "Reservation":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.active:
            if exc_type is None:
                self.commit()
            else:
                self.release()

    def __repr__(self) -> str:
        state = "committed" if self.entry else "released" if self.released else "active"
        return f"Reservation({self.name!r}, {self.cost}, {state})"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _check_params(params: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping, got {type(params).__name__}")
    out = dict(params)
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"params must be JSON-serialisable (finite numbers, "
                         f"strings, lists, dicts): {exc}") from None
    return json.loads(json.dumps(out))  # deep copy, normalised (tuples -> lists)


class Accountant:
    """A privacy budget with a ledger of releases.

    Two modes, fixed at construction:

    * ``Accountant(epsilon=E, delta=D)`` — approximate DP with **basic
      composition** ([DR14] Thm 3.16): costs (ε_i, δ_i) add up, and a release
      is accepted while Σε_i <= E and Σδ_i <= D. ``delta`` defaults to 0
      (pure DP). zCDP costs are refused (convert them yourself with
      :func:`zcdp_to_approx_dp`, choosing their δ).
    * ``Accountant(rho=R)`` — zero-concentrated DP ([BS16] composition): ρ_i add
      up. A pure ε release is charged as ρ = ε²/2 ([BS16] Prop 1.4);
      approximate-DP (δ > 0) releases are refused (they are not zCDP).
      :meth:`epsilon_at` converts spent ρ to (ε, δ) with the tight
      [CKS20] conversion.
    * ``Accountant(rho=R, delta=D)`` — *approximate* zCDP ([BS16] Def 8.1): a
      cost is (ρ_i, δ_i), both add up under composition. This is what exact
      samplers need: a sampler within total variation η of a ρ-zCDP mechanism is
      η-approximately ρ-zCDP, so ``charge(rho=ρ, delta=η)`` is accepted. Generic
      (ε, δ > 0) costs are still refused. :meth:`epsilon_at` subtracts Σδ_i.

    **Tolerance.** Sums use :func:`math.fsum` (correctly rounded), and a
    charge is accepted when ``fsum(spent + reserved + cost) <= total * (1 +
    RELATIVE_TOLERANCE)`` with ``RELATIVE_TOLERANCE = 1e-12``, applied
    separately to ε, δ and ρ. This absorbs float rounding when a budget is
    split into parts (e.g. 10 × 0.1 == 1.0000000000000002 in naive sums); it
    allows at most a 1e-12 relative overspend, never more. A zero total (e.g.
    δ = 0) admits only zero costs.

    The check and the recording happen under one lock, so concurrent charges
    from many threads can never overspend. :class:`BudgetExceededError` is
    raised *before* anything is recorded.
    """

    _FORMAT = "synthcore.dp.Accountant"
    _VERSION = 1

    def __init__(self, epsilon: Optional[float] = None, delta: Optional[float] = None,
                 *, rho: Optional[float] = None,
                 clock: Optional[Callable[[], datetime]] = None):
        if rho is not None:
            if epsilon is not None:
                raise ValueError("rho: give either rho (zCDP budget) or "
                                 "epsilon/delta (approximate-DP budget), not both")
            self._mode = "zcdp"
            if delta is None:
                self._total = PrivacyCost(rho=_positive(rho, "rho"))
            else:  # approximate zCDP: the delta part absorbs samplers' total variation
                self._total = PrivacyCost(rho=_positive(rho, "rho"),
                                          delta=_delta_halfopen(delta, "delta"))
        else:
            if epsilon is None:
                raise ValueError("epsilon: a budget is required: Accountant(epsilon=..., "
                                 "delta=...) or Accountant(rho=...)")
            e = _positive(epsilon, "epsilon")
            d = 0.0 if delta is None else _delta_halfopen(delta, "delta")
            self._mode = "approx"
            self._total = PrivacyCost(epsilon=e, delta=d)
        if clock is not None and not callable(clock):
            raise ValueError("clock must be callable returning a datetime")
        self._clock = clock or _utcnow
        self._lock = threading.RLock()
        self._ledger: List[LedgerEntry] = []
        self._reserved: Dict[int, Reservation] = {}
        self._next_key = 0

    # -- properties ---------------------------------------------------------
    @property
    def mode(self) -> str:
        """``"approx"`` (ε, δ with basic composition) or ``"zcdp"`` (ρ)."""
        return self._mode

    @property
    def total(self) -> PrivacyCost:
        return self._total

    @property
    def ledger(self) -> List[LedgerEntry]:
        """A copy of the recorded entries, in charge order."""
        with self._lock:
            return list(self._ledger)

    @property
    def _keys(self):
        if self._mode == "zcdp":
            return ("rho",) if self._total.delta is None else ("rho", "delta")
        return ("epsilon", "delta")

    # -- cost normalisation -------------------------------------------------
    def _prepare(self, name, mechanism, params, epsilon, delta, rho):
        """Validated (name, mechanism, params, cost, requested) of a release, before locking."""
        name = self._check_name(name)
        mechanism = self._check_mechanism(mechanism)
        params = _check_params(params)
        cost, req = self._normalise(epsilon, delta, rho)
        return name, mechanism, params, cost, req

    def _normalise(self, epsilon, delta, rho):
        """Validate a release's cost; return (cost in our unit, as requested)."""
        if epsilon is None and delta is None and rho is None:
            raise ValueError("epsilon: give the release's cost (epsilon[, delta] or rho)")
        if self._mode == "approx":
            if rho is not None:
                raise ValueError(
                    "rho: this accountant uses approximate DP (epsilon, delta); convert "
                    "a zCDP cost first, e.g. epsilon = zcdp_to_approx_dp(rho, delta)")
            if epsilon is None:
                raise ValueError("epsilon: required (use epsilon=0 for a delta-only cost)")
            e = _nonnegative(epsilon, "epsilon")
            d = 0.0 if delta is None else _delta_halfopen(delta, "delta")
            c = PrivacyCost(epsilon=e, delta=d)
            return c, c
        # zCDP; approximate zCDP when the accountant keeps a delta budget
        approximate = self._total.delta is not None

        def cost(r, d=0.0):
            return PrivacyCost(rho=r, delta=d) if approximate else PrivacyCost(rho=r)
        if rho is not None:
            if epsilon is not None:
                raise ValueError("rho: give either rho or a pure epsilon, not both")
            r = _nonnegative(rho, "rho")
            d = 0.0 if delta is None else _delta_halfopen(delta, "delta")
            if d > 0.0 and not approximate:
                raise ValueError(
                    "delta: this zCDP accountant has no delta budget for an approximate-zCDP "
                    "cost (rho, delta); create it as Accountant(rho=..., delta=...)")
            return cost(r, d), cost(r, d) if delta is not None else PrivacyCost(rho=r)
        if delta is not None and _delta_halfopen(delta, "delta") > 0.0:
            raise ValueError(
                "delta: an (epsilon, delta>0) release is not zCDP and cannot be charged "
                "to a zCDP accountant; calibrate it in rho instead")
        if epsilon is None:
            raise ValueError("epsilon: required together with delta=0 (or give rho)")
        e = _nonnegative(epsilon, "epsilon")
        req = PrivacyCost(epsilon=e) if delta is None else PrivacyCost(epsilon=e, delta=0.0)
        return cost(pure_to_zcdp(e)), req

    # -- sums (call with the lock held) -------------------------------------
    def _sum(self, key: str, include_reserved: bool, extra: float = 0.0) -> float:
        vals = [getattr(en.cost, key) for en in self._ledger]
        if include_reserved:
            vals += [getattr(r.cost, key) for r in self._reserved.values()]
        vals.append(extra)
        return math.fsum(vals)

    def _fits(self, cost: PrivacyCost) -> bool:
        for k in self._keys:
            total = getattr(self._total, k)
            if self._sum(k, True, getattr(cost, k)) > total * (1.0 + RELATIVE_TOLERANCE):
                return False
        return True

    def _remaining_locked(self) -> PrivacyCost:
        return PrivacyCost(**{k: max(0.0, getattr(self._total, k) - self._sum(k, True))
                              for k in self._keys})

    def _refuse(self, name, cost):
        rem = self._remaining_locked()
        raise BudgetExceededError(
            f"release {name!r} costs {cost} but only {rem} remains of {self._total}; "
            f"nothing was recorded", name, cost, rem)

    # -- public API ---------------------------------------------------------
    def check(self, *, epsilon: Optional[float] = None, delta: Optional[float] = None,
              rho: Optional[float] = None) -> bool:
        """True if a release of this cost would be accepted now; spends nothing."""
        cost, _ = self._normalise(epsilon, delta, rho)
        with self._lock:
            return self._fits(cost)

    def charge(self, name: str, *, epsilon: Optional[float] = None,
               delta: Optional[float] = None, rho: Optional[float] = None,
               mechanism: Optional[str] = None,
               params: Optional[Mapping[str, Any]] = None) -> LedgerEntry:
        """Record a release and return its receipt (the new :class:`LedgerEntry`).

        Raises :class:`BudgetExceededError` — before recording anything — if the
        release would overspend, and ValueError for invalid arguments.
        """
        name, mechanism, params, cost, req = self._prepare(name, mechanism, params, epsilon,
                                                           delta, rho)
        with self._lock:
            if not self._fits(cost):
                self._refuse(name, cost)
            return self._record(name, cost, req, mechanism, params)

    def reserve(self, name: str, *, epsilon: Optional[float] = None,
                delta: Optional[float] = None, rho: Optional[float] = None,
                mechanism: Optional[str] = None,
                params: Optional[Mapping[str, Any]] = None) -> Reservation:
        """Hold budget for a release without spending it (see :class:`Reservation`).

        Raises :class:`BudgetExceededError` if it does not fit.
        """
        name, mechanism, params, cost, req = self._prepare(name, mechanism, params, epsilon,
                                                           delta, rho)
        with self._lock:
            if not self._fits(cost):
                self._refuse(name, cost)
            key = self._next_key
            self._next_key += 1
            res = Reservation(self, key, name, cost, req, mechanism, params)
            self._reserved[key] = res
            return res

    def spent(self) -> PrivacyCost:
        """Total recorded cost (reservations excluded)."""
        with self._lock:
            return PrivacyCost(**{k: self._sum(k, False) for k in self._keys})

    def reserved(self) -> PrivacyCost:
        """Total held by active reservations."""
        with self._lock:
            return PrivacyCost(**{k: math.fsum(getattr(r.cost, k)
                                               for r in self._reserved.values())
                                  for k in self._keys})

    def remaining(self) -> PrivacyCost:
        """total − spent − reserved, clamped at 0."""
        with self._lock:
            return self._remaining_locked()

    def epsilon_at(self, delta: float, *, which: str = "spent") -> float:
        """ε of the ``"spent"`` (default) or ``"total"`` budget at the given δ.

        zCDP mode: the tight [CKS20] conversion of Σρ. Approximate-DP mode: Σε,
        valid only if Σδ <= delta (else ValueError).
        """
        if which not in ("spent", "total"):
            raise ValueError(f"which must be 'spent' or 'total', got {which!r}")
        dl = _delta_open(delta, "delta")
        amount = self.spent() if which == "spent" else self._total
        if self._mode == "zcdp":
            if amount.delta:  # approximate zCDP: the conversion gets what delta remains
                if amount.delta >= dl:
                    raise ValueError(f"delta: the {which} approximate-zCDP delta "
                                     f"{amount.delta:g} is not below {dl:g}")
                return zcdp_to_approx_dp(amount.rho, dl - amount.delta)
            return zcdp_to_approx_dp(amount.rho, dl)
        if amount.delta > dl:
            raise ValueError(f"delta: the {which} delta {amount.delta:g} exceeds {dl:g}")
        return amount.epsilon

    # -- reservations (internal) --------------------------------------------
    def _commit(self, res: Reservation, params) -> LedgerEntry:
        extra = _check_params(params)
        with self._lock:
            if not res.active or self._reserved.get(res._key) is not res:
                raise RuntimeError(f"reservation {res.name!r} is no longer active")
            del self._reserved[res._key]
            merged = dict(res.params)
            merged.update(extra)
            entry = self._record(res.name, res.cost, res.requested, res.mechanism, merged)
            res.entry = entry
            return entry

    def _release(self, res: Reservation) -> None:
        with self._lock:
            if not res.active or self._reserved.get(res._key) is not res:
                raise RuntimeError(f"reservation {res.name!r} is no longer active")
            del self._reserved[res._key]
            res.released = True

    def _record(self, name, cost, req, mechanism, params) -> LedgerEntry:
        now = self._clock()
        if not isinstance(now, datetime):
            raise TypeError("clock() must return a datetime")
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        entry = LedgerEntry(index=len(self._ledger), name=name,
                            time=now.astimezone(timezone.utc).isoformat(),
                            cost=cost, requested=req, mechanism=mechanism, params=params)
        self._ledger.append(entry)
        return entry

    @staticmethod
    def _check_name(name) -> str:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        return name

    @staticmethod
    def _check_mechanism(mechanism) -> Optional[str]:
        if mechanism is not None and not isinstance(mechanism, str):
            raise ValueError(f"mechanism must be a string or None, got {mechanism!r}")
        return mechanism

    # -- persistence --------------------------------------------------------
    def to_json(self) -> Dict[str, Any]:
        """JSON-compatible dict of the budget and ledger (reservations are not saved)."""
        with self._lock:
            return {"format": self._FORMAT, "version": self._VERSION, "mode": self._mode,
                    "total": self._total.as_dict(),
                    "ledger": [e.to_json() for e in self._ledger]}

    def save(self, path: "os.PathLike[str] | str") -> None:
        """Write the budget and ledger as JSON (atomic replace; no pickle)."""
        data = json.dumps(self.to_json(), indent=2, allow_nan=False)
        path = os.fspath(path)
        d = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".accountant-", suffix=".json", dir=d)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *,
                  clock: Optional[Callable[[], datetime]] = None) -> "Accountant":
        """Rebuild from :meth:`to_json` output; validates every entry."""
        try:
            if data.get("format") != cls._FORMAT:
                raise ValueError(f"not a {cls._FORMAT} file")
            if data.get("version") != cls._VERSION:
                raise ValueError(f"unsupported version {data.get('version')!r}")
            mode, total = data["mode"], data["total"]
            if mode == "zcdp":
                acc = cls(rho=total["rho"], delta=total.get("delta"), clock=clock)
            elif mode == "approx":
                acc = cls(epsilon=total["epsilon"], delta=total.get("delta", 0.0),
                          clock=clock)
            else:
                raise ValueError(f"unknown mode {mode!r}")
            for i, raw in enumerate(data["ledger"]):
                entry = LedgerEntry.from_json(raw)
                if entry.index != i:
                    raise ValueError(f"ledger entry {i} has index {entry.index}")
                if set(entry.cost.as_dict()) != set(acc._keys):
                    raise ValueError(f"ledger entry {i} has cost keys "
                                     f"{sorted(entry.cost.as_dict())}")
                for k, v in entry.cost.as_dict().items():
                    _nonnegative(v, f"ledger[{i}].cost.{k}")
                _check_params(entry.params)
                acc._ledger.append(entry)
            for k in acc._keys:
                if acc._sum(k, False) > getattr(acc._total, k) * (1.0 + RELATIVE_TOLERANCE):
                    raise ValueError(f"ledger overspends the {k} budget")
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"path: malformed accountant JSON ({exc!r})") from None
        return acc

    @classmethod
    def load(cls, path: "os.PathLike[str] | str", *,
             clock: Optional[Callable[[], datetime]] = None) -> "Accountant":
        """Read a file written by :meth:`save`. Malformed files raise ValueError."""
        with open(os.fspath(path), "r", encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as exc:
                raise ValueError(f"path: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError("path: malformed accountant JSON (top level is not an object)")
        return cls.from_json(data, clock=clock)

    # -- reporting ----------------------------------------------------------
    def report(self, delta: Optional[float] = None) -> str:
        """A text table of the ledger and totals.

        In zCDP mode, pass ``delta`` to also show spent/total ρ as (ε, δ)
        (tight [CKS20] conversion).
        """
        with self._lock:
            entries = list(self._ledger)
            spent = PrivacyCost(**{k: self._sum(k, False) for k in self._keys})
            reserved = PrivacyCost(**{k: math.fsum(getattr(r.cost, k)
                                                   for r in self._reserved.values())
                                      for k in self._keys})
            remaining = self._remaining_locked()
        keys = self._keys
        head = ["#", "name", "mechanism"] + list(keys) + ["requested", "time"]
        rows = [[str(e.index), e.name, e.mechanism or "-"]
                + [f"{getattr(e.cost, k):.6g}" for k in keys]
                + [str(e.requested), e.time] for e in entries]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                  for i, h in enumerate(head)]

        def line(cells):
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        label = "zCDP" if self._mode == "zcdp" else "approximate DP, basic composition"
        out = [f"Accountant ({label}); budget {self._total}",
               line(head), line(["-" * w for w in widths])]
        out += [line(r) for r in rows] or ["(no releases)"]
        frac = ", ".join(
            f"{k} {100.0 * getattr(spent, k) / getattr(self._total, k):.1f}%"
            for k in keys if getattr(self._total, k) > 0)
        out.append(f"spent: {spent}" + (f" ({frac})" if frac else ""))
        if any(getattr(reserved, k) > 0 for k in keys):
            out.append(f"reserved: {reserved}")
        out.append(f"remaining: {remaining}")
        if delta is not None and self._mode == "zcdp":
            dl = _delta_open(delta, "delta")
            out.append(f"as (epsilon, delta={dl:g}): spent epsilon="
                       f"{zcdp_to_approx_dp(spent.rho, dl):.6g}, total epsilon="
                       f"{zcdp_to_approx_dp(self._total.rho, dl):.6g}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.report()

    def __repr__(self) -> str:
        return (f"Accountant(mode={self._mode!r}, total={self._total}, "
                f"spent={self.spent()}, entries={len(self._ledger)})")
