"""Parametric and empirical marginals for the Gaussian copula.

The copula samples a column by interpolating a monotone lookup table over the
normal score z: ``T_k = F^{-1}(Phi(z_k))`` on the uniform grid
``z_k = z_lo + k * (z_hi - z_lo) / (K - 1)``, linear in z between knots and
clamped outside ``[z_lo, z_hi]``. No per-value SciPy ``ppf`` runs on the
sampling path; SciPy is used here, once per column, to fit a family and to
tabulate it.

Parameters are plain dicts of floats in SciPy's parameterisation:

=========  ======================  ==========================================
family     scipy.stats             keys
=========  ======================  ==========================================
normal     ``norm``                loc, scale
truncnorm  ``truncnorm``           a, b (standardised bounds), loc, scale
uniform    ``uniform``             loc, scale
beta       ``beta``                a, b, loc, scale
gamma      ``gamma``               a, loc, scale
lognormal  ``lognorm``             s, loc (always 0), scale
=========  ======================  ==========================================

Fitting (``fit_family``):

* normal, lognormal: closed-form MLE (lognormal with loc = 0, needs x > 0).
* uniform: closed-form minimum-variance unbiased end points.
* truncnorm: MLE of (mu, sigma) with the truncation points one spacing outside
  the extreme values; the likelihood needs only a few moments of the data.
* gamma: three-parameter MLE, the location profiled on a deterministic
  subsample and kept at least one spacing below the minimum.
* beta: four-parameter MLE on a deterministic subsample, support end points
  at least one spacing and at most three data ranges outside the data.

The iterative fits use small dedicated solvers (Brent, damped Newton with
analytic or finite-difference Hessians) instead of ``scipy.stats.<dist>.fit``
or ``scipy.optimize.minimize``: the generic fits are slow and fragile on these
problems (unbounded likelihoods at the support end points, ridges to
infinity), and SciPy's L-BFGS-B makes small BLAS calls that on a machine with
busy cores and a threaded OpenBLAS cost milliseconds each (measured here: 60 ms
for a 2-parameter fit that takes 1 ms single-threaded).
"""
from __future__ import annotations

import math
from typing import Iterable, Tuple

import numpy as np
from scipy import optimize, special, stats

__all__ = ["FAMILIES", "fit_family", "family_table", "select_family", "empirical_table"]

FAMILIES = ("normal", "truncnorm", "uniform", "beta", "gamma", "lognormal")

# scipy.stats distribution and parameter keys per family.
_SCIPY_NAME = {"normal": "norm", "truncnorm": "truncnorm", "uniform": "uniform",
               "beta": "beta", "gamma": "gamma", "lognormal": "lognorm"}
_PARAM_KEYS = {"normal": ("loc", "scale"), "truncnorm": ("a", "b", "loc", "scale"),
               "uniform": ("loc", "scale"), "beta": ("a", "b", "loc", "scale"),
               "gamma": ("a", "loc", "scale"), "lognormal": ("s", "loc", "scale")}

# select_family: free parameters per family (bounds placed from the data
# count). A family with more parameters replaces one with fewer only if its KS
# statistic is smaller by more than _KS_TIE / sqrt(n), which is about the KS
# statistic's own sampling spread (its mean is 0.87 / sqrt(n) for a correct,
# known model): nested fits such as truncnorm on normal data, beta on uniform
# data or beta on gamma data otherwise win by fitting noise. Measured on 12
# seeds x 6 families at n = 2k and 50k: those spurious advantages reached
# 0.9 / sqrt(n), while families that do not (nearly) contain the true one
# were worse than it by more than 1.7 / sqrt(n).
_N_PARAMS = {"normal": 2, "uniform": 2, "lognormal": 2, "gamma": 3, "truncnorm": 4, "beta": 4}
_KS_TIE = 1.0
_KS_MAX_POINTS = 20_000      # KS statistic on at most this many (stratified) values
_PROFILE_MAX_POINTS = 20_000  # gamma/beta support searches on at most this many values
# beta: support end points at most this many data ranges outside the data.
# Farther out the data carry no information about a bound (the fit is a
# normal or gamma shape), and the search would walk a flat ridge.
_BETA_MAX_D = 3.0


# ---- input checks ------------------------------------------------------------------

def _check_family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"unknown marginal family {family!r}; expected one of {FAMILIES}")
    return family


def _as_sample(x, family: str) -> np.ndarray:
    """x as a 1-D float64 array with >= 2 distinct finite values, or ValueError."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{family}: data must be convertible to float64 ({exc})") from None
    if arr.ndim != 1:
        raise ValueError(f"{family}: data must be 1-D, got shape {arr.shape}")
    if arr.size < 2:
        raise ValueError(f"{family}: need at least 2 values to fit, got {arr.size}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{family}: data contain NaN or infinite values "
                         "(remove nulls before fitting)")
    lo, hi = float(arr.min()), float(arr.max())
    if not lo < hi:
        raise ValueError(f"{family}: need at least 2 distinct values to fit, "
                         f"all {arr.size} values equal {lo!r}")
    if not np.isfinite(hi - lo):
        raise ValueError(f"{family}: data range overflows float64")
    return arr


def _stratified(sorted_x: np.ndarray, m: int) -> np.ndarray:
    """At most m values of a sorted array at evenly spaced ranks, first and last kept.

    The ECDF of the result is within about 1/m of the full ECDF, and the result
    does not depend on the order of the rows: a deterministic subsample.
    """
    n = sorted_x.size
    if n <= m:
        return sorted_x
    idx = np.rint(np.linspace(0.0, n - 1.0, m)).astype(np.intp)
    return sorted_x[idx]


def _edge_gaps(x: np.ndarray) -> Tuple[float, float, float, float]:
    """(min, gap above min, max, gap below max), gaps between distinct values."""
    lo, hi = float(x.min()), float(x.max())
    lo2 = float(x[x > lo].min())
    hi2 = float(x[x < hi].max())
    return lo, lo2 - lo, hi, hi - hi2


# ---- fitting -------------------------------------------------------------------------

def _fit_normal(x):
    # MLE: mean and (ddof=0) standard deviation, the latter computed on data
    # divided by their range so that it neither underflows nor overflows.
    loc = float(x.mean())
    r = float(x.max() - x.min())
    return {"loc": loc, "scale": r * float(((x - loc) / r).std())}


def _fit_uniform(x):
    # Minimum-variance unbiased estimate of the end points (MLE is [min, max],
    # which is biased inwards by range / (n - 1)).
    n = x.size
    lo, hi = float(x.min()), float(x.max())
    r = hi - lo
    return {"loc": lo - r / (n - 1), "scale": r * (n + 1) / (n - 1)}


def _fit_lognormal(x):
    # MLE with loc = 0: normal MLE of log(x).
    if float(x.min()) <= 0.0:
        raise ValueError("lognormal: data must be strictly positive "
                         f"(minimum is {float(x.min())!r})")
    y = np.log(x)
    s = float(y.std())
    if not s > 0.0:
        raise ValueError("lognormal: log(data) has zero spread")
    return {"s": s, "loc": 0.0, "scale": float(math.exp(y.mean()))}


def _gamma_shape(s: float) -> float:
    """The a > 0 with log(a) - digamma(a) = s (> 0): the gamma shape MLE, fixed loc.

    1/(2a) < log(a) - digamma(a) < 1/a brackets the root in [1/(2s), 1/s].
    """
    if not (s > 0.0 and math.isfinite(s)):
        raise ValueError("gamma: data have no spread about the location")

    def f(log_a):
        a = math.exp(log_a)
        return math.log(a) - float(special.digamma(a)) - s

    lo, hi = math.log(0.5 / s) - 1e-3, math.log(1.0 / s) + 1e-3
    return math.exp(optimize.brentq(f, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps))


def _gamma_fixed_loc(ybar: float, mean_log: float):
    """(shape, scale, mean negative log-likelihood) of the gamma MLE for y = x - loc."""
    a = _gamma_shape(math.log(ybar) - mean_log)
    scale = ybar / a
    nll = float(special.gammaln(a)) + a * math.log(scale) - (a - 1.0) * mean_log + a
    return a, scale, nll


def _fit_gamma(x):
    # Three-parameter MLE, profiled over the location. For a given loc the
    # shape/scale MLE is a 1-D root (_gamma_shape). The location is searched
    # below the minimum in [min - 20 * range, min - gap], gap being the distance
    # from the minimum to the next distinct value: the likelihood is unbounded
    # as loc -> min when the shape is < 1, and for shapes near 1 the true loc
    # lies within about one spacing of the minimum anyway, so "one spacing
    # below the minimum" is where the search ends when the profile keeps
    # rising towards the minimum (for larger shapes it has an interior
    # maximum). The profile search (~30 evaluations of mean(log(x - loc)))
    # runs on a deterministic subsample: at most 20k values at evenly spaced
    # ranks of the sorted data, minimum included. Shape and scale are then
    # refitted on all values for the chosen loc.
    xs = np.sort(x)
    lo = float(xs[0])
    gap = float(xs[np.searchsorted(xs, lo, side="right")] - lo)
    r = float(xs[-1] - lo)
    s0 = _stratified(xs, _PROFILE_MAX_POINTS) - lo   # >= 0, exact at the minimum
    s0_mean = float(s0.mean())

    def profile(log_d):
        d = math.exp(log_d)
        return _gamma_fixed_loc(s0_mean + d, float(np.log(s0 + d).mean()))[2]

    t_lo, t_hi = math.log(gap), math.log(20.0 * r)
    res = optimize.minimize_scalar(profile, bounds=(t_lo, t_hi), method="bounded",
                                   options={"xatol": 1e-5})
    t = float(res.x)
    # minimize_scalar(bounded) never evaluates the end points; the profile is
    # often monotone towards one of them, so compare with both.
    best = min((profile(v), v) for v in (t, t_lo, t_hi))[1]
    d = math.exp(best)
    y = (x - lo) + d
    a, scale, _ = _gamma_fixed_loc(float(y.mean()), float(np.log(y).mean()))
    return {"a": a, "loc": lo - d, "scale": scale}


def _beta_shapes(l1: float, l2: float, y: np.ndarray):
    """Beta shape MLE (a, b) for data y in (0, 1) with log-moments l1, l2.

    The negative log-likelihood betaln(a, b) - (a-1) l1 - (b-1) l2 is convex in
    (a, b): damped Newton from the method-of-moments start.
    """
    def nll(a, b):
        return float(special.betaln(a, b)) - (a - 1.0) * l1 - (b - 1.0) * l2

    m, v = float(y.mean()), float(y.var())
    common = m * (1.0 - m) / v - 1.0 if v > 0 else 1.0
    if not common > 0.0:
        common = 1.0
    a, b = max(m * common, 1e-3), max((1.0 - m) * common, 1e-3)
    f = nll(a, b)
    for _ in range(200):
        dab = float(special.digamma(a + b))
        ga = float(special.digamma(a)) - dab - l1
        gb = float(special.digamma(b)) - dab - l2
        tab = float(special.polygamma(1, a + b))
        haa = float(special.polygamma(1, a)) - tab
        hbb = float(special.polygamma(1, b)) - tab
        det = haa * hbb - tab * tab             # Hessian [[haa, -tab], [-tab, hbb]], PD
        # Newton step -H^{-1} g by Cramer's rule (plain floats: no LAPACK call).
        sa = -(hbb * ga + tab * gb) / det
        sb = -(tab * ga + haa * gb) / det
        decrement = -(ga * sa + gb * sb)        # Newton decrement^2 >= 0
        if not decrement > 1e-24 * max(1.0, abs(f)):
            break
        t = 1.0
        while t >= 1e-12:
            na, nb = a + t * sa, b + t * sb
            if na > 0.0 and nb > 0.0:
                nf = nll(na, nb)
                if nf <= f - 0.25 * t * decrement:
                    break
            t *= 0.5
        if t < 1e-12:
            break
        a, b, f = na, nb, nf
    dab = float(special.digamma(a + b))
    grad = (float(special.digamma(a)) - dab - l1, float(special.digamma(b)) - dab - l2)
    if not (math.isfinite(f) and a > 0 and b > 0
            and max(abs(grad[0]), abs(grad[1])) <= 1e-6 * (1.0 + abs(l1) + abs(l2))):
        raise ValueError("beta: shape MLE did not converge")
    return a, b


def _beta4_terms(th, s0, s1, r):
    """Mean negative log-likelihood, gradient and Hessian of the four-parameter beta.

    th = (a, b, dl, dh): shapes and the distances of the support end points
    below the minimum / above the maximum; s0 = x - min and s1 = max - x (>= 0,
    exact), r = max - min. The support is [min - dl, max + dh].
    """
    a, b, dl, dh = th
    u = s0 + dl
    w = s1 + dh
    ru, rw = 1.0 / u, 1.0 / w
    lu, lw = float(np.log(u).mean()), float(np.log(w).mean())
    iu, iw = float(ru.mean()), float(rw.mean())
    iu2, iw2 = float((ru * ru).mean()), float((rw * rw).mean())
    sp = r + dl + dh
    ls = math.log(sp)
    c = a + b - 1.0
    dab = float(special.digamma(a + b))
    tab = float(special.polygamma(1, a + b))
    f = float(special.betaln(a, b)) - (a - 1.0) * lu - (b - 1.0) * lw + c * ls
    g = np.array([float(special.digamma(a)) - dab - lu + ls,
                  float(special.digamma(b)) - dab - lw + ls,
                  -(a - 1.0) * iu + c / sp,
                  -(b - 1.0) * iw + c / sp])
    q = 1.0 / sp
    q2 = q * q
    h = np.array([
        [float(special.polygamma(1, a)) - tab, -tab, q - iu, q],
        [-tab, float(special.polygamma(1, b)) - tab, q, q - iw],
        [q - iu, q, (a - 1.0) * iu2 - c * q2, -c * q2],
        [q, q - iw, -c * q2, (b - 1.0) * iw2 - c * q2]])
    return f, g, h


def _newton_step(g, h, free):
    """Levenberg-Marquardt regularised Newton step on the free variables."""
    step = np.zeros_like(g)
    hf = h[np.ix_(free, free)]
    d = np.sqrt(np.maximum(np.abs(np.diag(hf)), 1e-300))
    hs = hf / np.outer(d, d)              # the Hessian's own diagonal scaling
    gs = g[free] / d
    lam = 0.0
    for _ in range(40):
        if not np.isfinite(hs).all():
            return None
        try:
            chol = np.linalg.cholesky(hs + lam * np.eye(hs.shape[0]))
            break
        except np.linalg.LinAlgError:
            lam = 1e-8 if lam == 0.0 else 10.0 * lam
    else:
        return None
    step[free] = -np.linalg.solve(chol.T, np.linalg.solve(chol, gs)) / d
    return step if np.isfinite(step).all() else None


def _box_newton(fun, x0, lower, upper, ftol=1e-10, max_iter=100):
    """Minimise fun (returning f, gradient, Hessian) over a box: damped Newton.

    Variables at a bound are held there while the gradient, or the Newton
    step, points out of the box; the Hessian of the others is regularised
    (Levenberg-Marquardt) until positive definite; the step is shortened to
    stay inside the box (never clipped coordinate-wise, which would break the
    coupling between variables) and backtracked until f decreases. Stops when
    the predicted or the achieved decrease of f falls below ftol (f is a mean
    negative log-likelihood: 1e-10 is far below what the data can resolve and
    above its rounding noise) or the line search fails. Small dense algebra in
    NumPy only (a handful of variables).
    """
    x = np.clip(np.asarray(x0, dtype=np.float64), lower, upper)
    f, g, h = fun(x)
    if not np.isfinite(f):
        return x, f
    n = x.size
    for _ in range(max_iter):
        at_lo = x <= lower + 1e-12 * np.abs(lower)
        at_hi = x >= upper - 1e-12 * np.abs(upper)
        active = (at_lo & (g > 0.0)) | (at_hi & (g < 0.0))
        step = None
        for _ in range(n):
            if active.all():
                break
            step = _newton_step(g, h, ~active)
            if step is None:
                break
            blocking = (at_lo & (step < 0.0)) | (at_hi & (step > 0.0))
            if not blocking.any():
                break
            active |= blocking
            step = None
        if step is None:
            break
        if -float(g @ step) < 2.0 * ftol:
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(step > 0.0, (upper - x) / step,
                            np.where(step < 0.0, (lower - x) / step, np.inf))
        t = min(1.0, float(room.min()))
        accepted = False
        while t > 1e-10:
            xn = np.clip(x + t * step, lower, upper)
            fn, gn, hn = fun(xn)
            if np.isfinite(fn) and fn <= f + 1e-4 * t * float(g @ step):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        done = f - fn < ftol
        x, f, g, h = xn, fn, gn, hn
        if done:
            break
    return x, f


def _fit_beta(x):
    # Four-parameter MLE. The support end points are searched outside the
    # data, lo in [min - 3 * range, min - gap_lo] and hi in [max + gap_hi,
    # max + 3 * range], gaps being the distances to the next distinct values:
    # the likelihood is unbounded as an end point approaches the extreme value
    # when that shape is < 1, and then the end point stays one spacing outside
    # the data. (A support fixed at the data range is badly biased for shapes
    # above ~2: for beta(2, 5) and 50k values the maximum lies ~10% of the range
    # below the upper end point.) The joint search (damped Newton with the
    # analytic Hessian, started from the shapes fitted for the support one
    # spacing outside the data) runs on a deterministic subsample: at most 20k
    # values at evenly spaced ranks of the sorted data, minimum and maximum
    # included. The shapes are then refitted on all values for the chosen
    # support (convex, Newton).
    xs = np.sort(x)
    lo = float(xs[0])
    hi = float(xs[-1])
    r = hi - lo
    # Work in units of the data range (1/u**2 over/underflows for data near
    # 1e+-300 otherwise): s0 = (x - min) / r, s1 = (max - x) / r.
    g_lo = float(xs[np.searchsorted(xs, lo, side="right")] - lo) / r
    g_hi = float(hi - xs[np.searchsorted(xs, hi, side="left") - 1]) / r
    sub = _stratified(xs, _PROFILE_MAX_POINTS)
    s0, s1 = (sub - lo) / r, (hi - sub) / r

    def fixed_support(u0, u1, d_lo, d_hi):
        width = 1.0 + d_lo + d_hi
        y = (u0 + d_lo) / width
        l1 = float(np.log(y).mean())
        l2 = float(np.log((u1 + d_hi) / width).mean())
        return _beta_shapes(l1, l2, y)

    a0, b0 = fixed_support(s0, s1, g_lo, g_hi)
    lower = np.log([1e-4, 1e-4, g_lo, g_hi])
    upper = np.log([1e7, 1e7, max(_BETA_MAX_D, g_lo), max(_BETA_MAX_D, g_hi)])

    def in_logs(phi):
        # Newton in the logarithms of all four parameters: with normal-like
        # data the optimum runs off along log a ~ log b ~ 2 log d + const,
        # a straight line in these coordinates and a curved valley otherwise.
        th = np.exp(phi)
        f, g, h = _beta4_terms(th, s0, s1, 1.0)
        return f, g * th, h * np.outer(th, th) + np.diag(g * th)

    phi, _ = _box_newton(in_logs, np.log([a0, b0, g_lo, g_hi]), lower, upper)
    d_lo, d_hi = float(math.exp(phi[2])), float(math.exp(phi[3]))
    a, b = fixed_support((x - lo) / r, (hi - x) / r, d_lo, d_hi)
    return {"a": a, "b": b, "loc": lo - d_lo * r, "scale": r * (1.0 + d_lo + d_hi)}


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = math.sqrt(0.5)


def _truncnorm_upper(mu, s, m1, e1, e2):
    """Truncated-normal mean negative log-likelihood and its gradient in
    (mu, log s) for support [-1, 1] when alpha = (-1 - mu) / s >= 0.

    m1 = mean(t), e1 = mean(t + 1), e2 = mean((t + 1)**2). Written with
    erfcx and with the data measured from the lower bound, so that the
    alpha**2 / 2 terms cancel analytically rather than in floating point
    (mu far below the support, as for exponential-like data).
    """
    al, be = (-1.0 - mu) / s, (1.0 - mu) / s
    k = math.exp(-0.5 * (be - al) * (be + al))            # phi(be) / phi(al) <= 1
    # bracket = 2 exp(al**2 / 2) (Phi(be) - Phi(al)) > 0
    bracket = float(special.erfcx(al * _INV_SQRT_2) - k * special.erfcx(be * _INV_SQRT_2))
    if not bracket > 0.0:
        return math.inf, np.zeros(2)
    f = math.log(s) + e2 / (2.0 * s * s) + e1 * al / s + math.log(0.5 * bracket)
    pa = _SQRT_2_OVER_PI / bracket                        # phi(al) / mass
    pb = k * pa                                           # phi(be) / mass
    g_mu = -e1 / (s * s) + (pa - al - pb) / s
    g_ls = 1.0 - e2 / (s * s) - 2.0 * e1 * al / s + al * (pa - al) - pb * be
    return f, np.array([g_mu, g_ls])


def _truncnorm_nll(p, m1, m2, e1, e2, d1, d2):
    """Mean negative log-likelihood of N(mu, s) truncated to [-1, 1], with gradient."""
    mu, log_s = float(p[0]), float(p[1])
    s = math.exp(log_s)
    al, be = (-1.0 - mu) / s, (1.0 - mu) / s
    if al >= 0.0:
        return _truncnorm_upper(mu, s, m1, e1, e2)
    if be <= 0.0:                     # mirror image t -> -t of the case above
        f, g = _truncnorm_upper(-mu, s, -m1, d1, d2)
        return f, np.array([-g[0], g[1]])
    # al < 0 < be: the mass is at least Phi(1/s) - Phi(-1/s), no cancellation.
    mass = 1.0 - float(special.ndtr(al)) - float(special.ndtr(-be))
    lz = math.log(mass)
    ss = m2 - 2.0 * mu * m1 + mu * mu
    f = log_s + ss / (2.0 * s * s) + lz
    pa = math.exp(-0.5 * al * al) / (math.sqrt(2.0 * math.pi) * mass)
    pb = math.exp(-0.5 * be * be) / (math.sqrt(2.0 * math.pi) * mass)
    g_mu = -(m1 - mu) / (s * s) + (pa - pb) / s
    g_ls = 1.0 - ss / (s * s) + pa * al - pb * be
    return f, np.array([g_mu, g_ls])


def _truncnorm_tilted(p, moments):
    """Mean negative log-likelihood, gradient and Hessian in p = (k, log s),
    k = mu / s**2 the density's log-slope at the centre of the support.

    Exponential-like data send the MLE to mu -> -inf, s -> inf with k fixed:
    a straight ray in these coordinates (in (mu, log s) an exponential curve).
    Gradient by the chain rule from _truncnorm_nll; Hessian by central
    differences of that gradient (two parameters, O(1) per evaluation).
    """
    def fg(k, ls):
        s2 = math.exp(2.0 * ls)
        mu = k * s2
        f, g = _truncnorm_nll((mu, ls), *moments)
        return f, np.array([g[0] * s2, g[1] + 2.0 * mu * g[0]])

    k, ls = float(p[0]), float(p[1])
    f, g = fg(k, ls)
    h1 = 1e-6 * max(abs(k), math.exp(-ls))
    h2 = 1e-6
    c1 = (fg(k + h1, ls)[1] - fg(k - h1, ls)[1]) / (2.0 * h1)
    c2 = (fg(k, ls + h2)[1] - fg(k, ls - h2)[1]) / (2.0 * h2)
    off = 0.5 * (c1[1] + c2[0])
    return f, g, np.array([[c1[0], off], [off, c2[1]]])


def _fit_truncnorm(x):
    # MLE of (mu, sigma) with the truncation points fixed one spacing outside
    # the data: [min - gap_lo, max + gap_hi], gaps to the next distinct values
    # (for a density that is positive at the bound, the expected distance from
    # the bound to the extreme value equals the expected spacing next to it).
    # The likelihood depends on the data only through a few moments (one pass
    # over all values), so each Newton step is O(1). Units: the support is
    # [-1, 1]; sigma in [1e-6, 1e3]. Exponential-like data send the MLE to
    # mu -> -inf, sigma -> inf; the search then ends on sigma = 1e3, where the
    # truncated normal is an exponential to well within the sampling error.
    lo, gap_lo, hi, gap_hi = _edge_gaps(x)
    lo, hi = lo - gap_lo, hi + gap_hi
    center, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    t = (x - center) / half
    m1 = float(t.mean())
    m2 = float((t * t).mean())
    u = t + 1.0
    w = 1.0 - t
    moments = (m1, m2, float(u.mean()), float((u * u).mean()),
               float(w.mean()), float((w * w).mean()))
    s_min, s_max = 1e-6, 1e3
    sd0 = min(max(math.sqrt(max(m2 - m1 * m1, 0.0)), 10.0 * s_min), 0.1 * s_max)
    p0 = np.array([m1 / sd0 ** 2, math.log(sd0)])
    lower = np.array([-1e15, math.log(s_min)])
    upper = np.array([1e15, math.log(s_max)])
    try:
        with np.errstate(all="ignore"):
            p, f = _box_newton(lambda p: _truncnorm_tilted(p, moments), p0, lower, upper,
                               ftol=1e-14)
    except (ArithmeticError, ValueError) as exc:
        raise ValueError(f"truncnorm: MLE failed ({exc})") from None
    if not math.isfinite(f):
        raise ValueError("truncnorm: MLE failed (non-finite likelihood)")
    s = math.exp(float(p[1]))
    mu = float(p[0]) * s * s
    loc, scale = center + mu * half, s * half
    return {"a": (lo - loc) / scale, "b": (hi - loc) / scale, "loc": loc, "scale": scale}


_FITTERS = {"normal": _fit_normal, "truncnorm": _fit_truncnorm, "uniform": _fit_uniform,
            "beta": _fit_beta, "gamma": _fit_gamma, "lognormal": _fit_lognormal}


def fit_family(x: np.ndarray, family: str) -> dict:
    """Fit ``family`` to the sample ``x``; a dict of floats in SciPy's parameterisation.

    ``x`` is 1-D, finite (nulls already removed) with at least 2 distinct
    values; see the module docstring for the method per family. beta and
    gamma search their support on a deterministic subsample (at most 20k
    values at evenly spaced ranks of the sorted data), so the result does not
    depend on the order of the rows and 100k values fit in milliseconds.

    Raises ValueError, its message starting with the family name, when ``x``
    cannot be fitted: non-finite values, fewer than 2 distinct values, data
    outside the family's support (lognormal needs x > 0), or a failed solver.
    """
    _check_family(family)
    arr = _as_sample(x, family)
    try:
        with np.errstate(all="ignore"):
            params = _FITTERS[family](arr)
    except ValueError as exc:
        if str(exc).startswith(f"{family}:"):
            raise
        raise ValueError(f"{family}: fit failed ({exc})") from None
    except (ArithmeticError, np.linalg.LinAlgError) as exc:
        raise ValueError(f"{family}: fit failed ({type(exc).__name__}: {exc})") from None
    params = {k: float(params[k]) for k in _PARAM_KEYS[family]}
    if not all(math.isfinite(v) for v in params.values()):
        raise ValueError(f"{family}: fit produced non-finite parameters {params}")
    return params


def _frozen(family: str, params: dict):
    _check_family(family)
    keys = _PARAM_KEYS[family]
    if not isinstance(params, dict) or set(params) != set(keys):
        raise ValueError(f"{family}: parameters must be a dict with keys {keys}, "
                         f"got {params!r}")
    p = {k: float(params[k]) for k in keys}
    if not all(math.isfinite(v) for v in p.values()) or not p["scale"] > 0.0:
        raise ValueError(f"{family}: invalid parameters {p}")
    for k in ("a", "b", "s"):
        if k in p and family != "truncnorm" and not p[k] > 0.0:
            raise ValueError(f"{family}: parameter {k} must be > 0, got {p[k]}")
    if family == "truncnorm" and not p["a"] < p["b"]:
        raise ValueError(f"truncnorm: need a < b, got a={p['a']}, b={p['b']}")
    return getattr(stats, _SCIPY_NAME[family])(**p), p


# ---- tables ------------------------------------------------------------------------------

def _z_grid(z_lo: float, z_hi: float, knots: int) -> np.ndarray:
    z_lo, z_hi = float(z_lo), float(z_hi)
    if not (math.isfinite(z_lo) and math.isfinite(z_hi) and z_lo < z_hi):
        raise ValueError(f"need finite z_lo < z_hi, got z_lo={z_lo}, z_hi={z_hi}")
    if isinstance(knots, bool) or int(knots) != knots or int(knots) < 2:
        raise ValueError(f"knots must be an integer >= 2, got {knots!r}")
    k = int(knots)
    return z_lo + np.arange(k, dtype=np.float64) * (z_hi - z_lo) / (k - 1)


def family_table(family: str, params: dict, z_lo: float, z_hi: float,
                 knots: int) -> np.ndarray:
    """T_k = F^{-1}(Phi(z_k)) for ``family`` with ``params`` on the uniform z grid.

    Float64, monotone non-decreasing, finite and within the support. Closed
    forms for normal, lognormal and uniform; otherwise ``ppf(Phi(z))`` for
    z <= 0 and ``isf(Phi(-z))`` for z > 0, so both tails keep full relative
    accuracy in the probability. Raises ValueError when the table would not
    be finite (only possible for |z| far beyond 8.3).
    """
    dist, p = _frozen(family, params)
    z = _z_grid(z_lo, z_hi, knots)
    with np.errstate(all="ignore"):
        if family == "normal":
            t = p["loc"] + p["scale"] * z
        elif family == "lognormal":
            t = p["loc"] + p["scale"] * np.exp(p["s"] * z)
        elif family == "uniform":
            t = p["loc"] + p["scale"] * special.ndtr(z)
        else:
            t = np.empty_like(z)
            low = z <= 0.0
            t[low] = dist.ppf(special.ndtr(z[low]))
            t[~low] = dist.isf(special.ndtr(-z[~low]))
        lo, hi = dist.support()
        t = np.clip(t, lo, hi)
    t = np.maximum.accumulate(t)   # remove last-ulp wiggles of ppf/isf
    if not np.isfinite(t).all():
        raise ValueError(f"{family}: table not finite over z in [{z_lo}, {z_hi}] "
                         f"with parameters {p}")
    return t.astype(np.float64, copy=False)


def empirical_table(x, z_lo: float, z_hi: float, knots: int,
                    discrete: bool = False) -> np.ndarray:
    """T_k = empirical quantile of x at Phi(z_k), within [min(x), max(x)].

    ``discrete=False`` interpolates linearly between order statistics
    (numpy method "linear"); ``discrete=True`` uses "inverted_cdf", so only
    observed values appear. A constant column gives a constant table.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"empirical: data must be convertible to float64 ({exc})") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"empirical: need a non-empty 1-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("empirical: data contain NaN or infinite values "
                         "(remove nulls before tabulating)")
    z = _z_grid(z_lo, z_hi, knots)
    q = special.ndtr(z)
    # Sort once and index: np.quantile with thousands of probabilities partitions the
    # data once per probability, ~50x slower for the same numbers.
    xs = np.sort(arr)
    n = xs.size
    if discrete:  # "inverted_cdf": the smallest x with ECDF(x) >= q
        idx = np.clip(np.ceil(q * n).astype(np.int64) - 1, 0, n - 1)
        t = xs[idx]
    else:  # "linear": interpolate between order statistics at h = (n - 1) q
        h = (n - 1) * q
        lo = np.clip(np.floor(h).astype(np.int64), 0, n - 1)
        hi = np.minimum(lo + 1, n - 1)
        t = xs[lo] + (h - lo) * (xs[hi] - xs[lo])
    t = np.clip(np.maximum.accumulate(t), xs[0], xs[-1])
    return np.asarray(t, dtype=np.float64)


# ---- selection ------------------------------------------------------------------------

def _ks_statistic(sorted_x: np.ndarray, cdf_values: np.ndarray) -> float:
    m = sorted_x.size
    i = np.arange(m, dtype=np.float64)
    d_plus = np.max((i + 1.0) / m - cdf_values)
    d_minus = np.max(cdf_values - i / m)
    return float(max(d_plus, d_minus))


def select_family(x, candidates: Iterable[str] = FAMILIES) -> Tuple[str, dict, float]:
    """The ``auto`` marginal: (family, params, ks_statistic) of the best candidate.

    Each candidate is fitted on all of x; candidates that raise ValueError (do
    not apply to the data) are skipped. The Kolmogorov-Smirnov statistic
    against the data is computed on a deterministic subsample: at most 20k
    values at evenly spaced ranks of the sorted data (its ECDF is within
    1/20k of the full one). The smallest statistic wins, except that a family
    with more parameters (normal, uniform, lognormal: 2; gamma: 3; truncnorm,
    beta: 4, bounds included) must beat one with fewer by more than
    1 / sqrt(n): nested fits such as truncnorm on normal data, beta on
    uniform data or beta on gamma data otherwise win by fitting noise.
    Raises ValueError if no candidate fits.
    """
    candidates = tuple(candidates)
    if not candidates:
        raise ValueError("select_family: no candidate families given")
    for fam in candidates:
        _check_family(fam)
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"select_family: data must be convertible to float64 ({exc})") \
            from None
    xs = None
    results = {}
    errors = []
    for fam in candidates:
        try:
            params = fit_family(arr, fam)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if xs is None:
            xs = _stratified(np.sort(arr), _KS_MAX_POINTS)
        dist, _ = _frozen(fam, params)
        with np.errstate(all="ignore"):
            ks = _ks_statistic(xs, dist.cdf(xs))
        if math.isfinite(ks):
            results[fam] = (params, ks)
    if not results:
        raise ValueError("select_family: no candidate family fits the data: "
                         + "; ".join(errors))
    best_ks = min(ks for _, ks in results.values())
    margin = _KS_TIE / math.sqrt(arr.size)
    fewest = min(_N_PARAMS[f] for f, (_, ks) in results.items() if ks <= best_ks + margin)
    fam = min((ks, f) for f, (_, ks) in results.items() if _N_PARAMS[f] == fewest)[1]
    params, ks = results[fam]
    return fam, params, ks
