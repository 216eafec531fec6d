"""DP noise mechanisms over whole arrays.

Integers (exact up to a stated total variation, charged as delta):
  ``discrete_laplace`` (pure epsilon) and ``discrete_gaussian`` (zCDP).
Floats, made safe by an integer grid (OpenDP's and Google's approach, reference dp.md
section 2): ``laplace`` and ``gaussian`` round x to a grid of spacing 2^k chosen from the
noise scale (never from the data), inflate the sensitivity by the rounding, add exact
integer noise and scale back. Never the textbook ``x + b log(u)``.
Categories: ``randomized_response``. Selection: ``noisy_max`` (permute-and-flip).

All randomness comes from a ``SecureGenerator`` (ChaCha20); the algorithms and word
layouts are in python/synthcore/_reference/dp_noise.py. Every sampler does a fixed
amount of work per value, set by the scale alone. A sampler within total variation eta
per value of the exact mechanism makes an n-value release (eps, n (1 + e^eps) eta)-DP,
or n eta-approximately rho-zCDP; that delta is computed, returned and charged.
"""
from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import _backend
from .._reference import dp_noise as _ref
from .._reference import secure_random as _ref_words
from . import accounting
from ._generator import SecureGenerator, _words

#: float Laplace: the grid is 2^ceil(log2(scale 2^-LAPLACE_GRID_BITS)), so the integer
#: scale lies in (2^35, 2^36] and rounding inflates the L1 sensitivity by <= c 2^-35 scale
LAPLACE_GRID_BITS = 36
#: float Gaussian: the integer sigma lies in (2^14, 2^15] (tables of ~2^19 entries)
GAUSSIAN_GRID_SIGMA_LOG2 = 15


@dataclass(frozen=True)
class DPRelease:
    """A noisy array and what it cost."""
    values: Any              # the noisy array (NumPy or CuPy, like the input)
    mechanism: str
    epsilon: Optional[float]  # pure / approximate-DP epsilon (None for a zCDP-only release)
    delta: float             # the sampler's approximation (and the conversion's), as delta
    scale: float             # Laplace scale b, or Gaussian sigma, in the units of x
    sensitivity: float       # as given (L1 for Laplace, L2 for Gaussian)
    insecure_generator: bool  # True when the noise came from insecure_generator_for_tests
    receipt: Any = None      # the accountant's ledger entry, when one was given
    rho: Optional[float] = None          # zCDP cost (Gaussian; epsilon^2 / 2 for pure-DP ones)
    granularity: Optional[float] = None  # grid spacing of the float mechanisms
    sensitivity_used: Optional[float] = None  # after the rounding inflation (floats)


@functools.lru_cache(maxsize=64)
def _laplace_tables(scale: float) -> _ref.NoiseTables:
    return _ref.laplace_tables(scale)


@functools.lru_cache(maxsize=16)
def _gaussian_tables(sigma: float) -> _ref.NoiseTables:
    return _ref.gaussian_tables(sigma)


def _generator(generator) -> SecureGenerator:
    """The caller's generator, or a fresh OS-keyed one."""
    if generator is None:
        return SecureGenerator()
    if not isinstance(generator, SecureGenerator):
        raise TypeError("generator must be a synthcore.dp.SecureGenerator (or the insecure "
                        "test generator)")
    return generator


def _real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def _positive(value, name):
    value = _real(value, name)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value}")
    return value


def _up(x: float) -> float:
    return float(np.nextafter(x, np.inf)) if x > 0 else 0.0


def _integer_input(x, what="x"):
    kind = _backend.array_kind(x)
    arr = x if kind == "cupy" else np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what} must be an integer array (counts, sums of integers), got "
                        f"dtype {arr.dtype}; for floats use synthcore.dp.laplace / gaussian")
    if arr.size and (int(arr.max()) > 2**62 or int(arr.min()) < -2**62):
        raise ValueError(f"{what} has values beyond +/- 2**62: the noisy result could "
                         "overflow int64")
    return arr


def _float_input(x):
    """(the float array, max |x|), after checking it is finite (one pass each for max and
    min: NaN propagates through them, infinities show)."""
    kind = _backend.array_kind(x)
    arr = x if kind == "cupy" else np.asarray(x)
    if arr.dtype.kind != "f":
        raise TypeError(f"x must be a float array, got dtype {arr.dtype}; for integers use "
                        "discrete_laplace / discrete_gaussian")
    if not arr.size:
        return arr, 0.0
    hi, lo = float(arr.max()), float(arr.min())
    if not (math.isfinite(hi) and math.isfinite(lo)):
        raise ValueError("x contains NaN or infinity")
    return arr, max(abs(hi), abs(lo))


def _xp(arr):
    if _backend.array_kind(arr) == "cupy":
        import cupy
        return cupy
    return np


def _changed(changed_coordinates, n):
    if changed_coordinates is None:
        return max(n, 1)
    if (isinstance(changed_coordinates, bool) or
            not isinstance(changed_coordinates, numbers.Integral) or changed_coordinates < 1):
        raise ValueError(f"changed_coordinates must be a positive integer, got "
                         f"{changed_coordinates!r}")
    return int(min(changed_coordinates, max(n, 1)))


def _add_noise(flat, tables: _ref.NoiseTables, generator: SecureGenerator, name_b: str):
    """flat (int64, 1-D, NumPy or CuPy) + noise drawn with ``tables``: a new array."""
    n = int(flat.size)
    first = generator._reserve(tables.words_for(n))
    if name_b == "cuda":
        import cupy
        out = cupy.empty(n, dtype=cupy.int64)
        if n:
            words = _words(generator._key, generator._stream, first, tables.words_for(n),
                           None, "cuda", generator._device_keys)
            dev = [cupy.asarray(a) for a in (tables.multipliers, tables.starts,
                                             tables.window_log2, tables.guide_bits,
                                             tables.guide_starts, tables.guide, tables.t_hi,
                                             tables.t_lo)]
            _backend.cuda_module().integer_noise_from_words(
                words.data.ptr, tables.segments,
                *(a.data.ptr for a in dev), flat.data.ptr, out.data.ptr, n,
                cupy.cuda.get_current_stream().ptr)
        return out
    if name_b == "numpy":
        words = _ref_words.stream_words(generator._key, generator._stream, first,
                                        tables.words_for(n))
        return flat + _ref.noise(tables, words, n)
    out = np.empty(n, dtype=np.int64)
    if n:
        _backend.core_module().integer_noise(
            generator._key, generator._stream, first,
            tables.multipliers, tables.starts, tables.window_log2, tables.guide_bits,
            tables.guide_starts, tables.guide, tables.t_hi, tables.t_lo,
            np.ascontiguousarray(flat), out, _backend.get_num_threads())
    return out


def _charge(accountant, name, mechanism, params, *, epsilon=None, delta_dp=0.0, rho=None,
            delta_zcdp=0.0):
    """Charge a release in the accountant's own unit, before any noise is drawn."""
    if accountant is None:
        return None
    if accountant.mode == "zcdp":
        if rho is None:
            rho = accounting.pure_to_zcdp(epsilon)
        if delta_zcdp > 0.0 and accountant.total.delta is None:
            raise ValueError(
                f"accountant: this sampler is exact up to total variation {delta_zcdp:.3g}, "
                "an approximate-zCDP delta; create the accountant as "
                "Accountant(rho=..., delta=...) to admit it")
        return accountant.charge(name, rho=rho, delta=delta_zcdp, mechanism=mechanism,
                                 params=params)
    if epsilon is None:
        raise ValueError("delta: a zCDP release charged to an (epsilon, delta) accountant needs "
                         "the delta to convert at; pass delta=... (or use "
                         "Accountant(rho=..., delta=...))")
    return accountant.charge(name, epsilon=epsilon, delta=delta_dp, mechanism=mechanism,
                             params=params)


def _laplace_release_delta(n, epsilon, tv):
    return _up(n * (1.0 + math.exp(min(epsilon, 700.0))) * tv)


def discrete_laplace_cost(n: int, sensitivity: float = 1.0, *, epsilon: Optional[float] = None,
                          scale: Optional[float] = None):
    """(scale, epsilon, delta, tables) that ``discrete_laplace`` uses for n values: for
    callers that must check a budget before drawing (e.g. the DP copula)."""
    sensitivity = _positive(sensitivity, "sensitivity")
    if (epsilon is None) == (scale is None):
        raise ValueError("give exactly one of epsilon and scale")
    if epsilon is not None:
        epsilon = _positive(epsilon, "epsilon")
        scale = accounting.discrete_laplace_scale(sensitivity, epsilon)
    else:
        scale = _positive(scale, "scale")
        epsilon = _up(sensitivity / scale)  # never under-reported
    if scale > _ref.MAX_LAPLACE_SCALE:
        raise ValueError(f"scale {scale:g} exceeds this sampler's limit "
                         f"{_ref.MAX_LAPLACE_SCALE:g} (sensitivity / epsilon too large)")
    tables = _laplace_tables(float(scale))
    return float(scale), epsilon, _laplace_release_delta(int(n), epsilon, tables.tv_bound), tables


def discrete_laplace(x, *, epsilon: Optional[float] = None, scale: Optional[float] = None,
                     sensitivity: float = 1.0, generator: Optional[SecureGenerator] = None,
                     accountant: Optional[accounting.Accountant] = None,
                     name: str = "discrete_laplace", backend: Optional[str] = None) -> DPRelease:
    """x + discrete Laplace noise, for an integer array x with L1 sensitivity ``sensitivity``.

    P(Z = z) ∝ exp(-|z| / t). Give ``epsilon`` (t is then sensitivity / epsilon, rounded
    up) or ``scale`` t (the cost is then sensitivity / t, rounded up). With an
    ``accountant`` the cost is charged before any noise is drawn; an overspend raises
    ``synthcore.dp.BudgetExceededError`` and draws nothing.
    """
    arr = _integer_input(x)
    n = int(arr.size)
    scale, epsilon, delta, tables = discrete_laplace_cost(n, sensitivity, epsilon=epsilon,
                                                          scale=scale)
    sensitivity = float(sensitivity)
    generator = _generator(generator)
    name_b = _backend.resolve(backend, arrays=(arr,))
    receipt = _charge(accountant, name, "discrete_laplace",
                      {"scale": scale, "sensitivity": sensitivity, "n": n,
                       "insecure_generator": generator.insecure},
                      epsilon=epsilon, delta_dp=delta, delta_zcdp=_up(n * tables.tv_bound))
    flat = arr.reshape(-1).astype(_xp(arr).int64, copy=False)
    values = _add_noise(flat, tables, generator, name_b).reshape(arr.shape)
    return DPRelease(values, "discrete_laplace", epsilon, delta, float(scale), sensitivity,
                     bool(generator.insecure), receipt, rho=accounting.pure_to_zcdp(epsilon))


def _gaussian_sigma(sensitivity, rho, sigma, epsilon, delta, tv_delta):
    """(sigma, rho) from exactly one of rho, sigma, (epsilon, delta)."""
    given = [rho is not None, sigma is not None, epsilon is not None]
    if sum(given) != 1:
        raise ValueError("give exactly one of rho, sigma, or epsilon (with delta)")
    if epsilon is not None:
        epsilon = _positive(epsilon, "epsilon")
        if delta is None:
            raise ValueError("delta: required with epsilon for the Gaussian mechanism")
        delta = accounting._delta_open(delta, "delta")
        # the sampler's own total variation is taken out of delta before calibrating
        slack = tv_delta(epsilon)
        if slack >= delta / 2:
            raise ValueError(f"delta {delta:g} is too small for this many values "
                             f"(the sampler alone needs {slack:.3g})")
        rho = accounting.approx_dp_to_zcdp(epsilon, delta - slack)
        return accounting.gaussian_sigma_for_rho(sensitivity, rho), rho
    if rho is not None:
        rho = _positive(rho, "rho")
        return accounting.gaussian_sigma_for_rho(sensitivity, rho), rho
    sigma = _positive(sigma, "sigma")
    return sigma, accounting.zcdp_rho_gaussian(sensitivity, sigma)


def _gaussian_release(n, rho, tv, epsilon, delta):
    """(epsilon, delta_dp, delta_zcdp) of an n-value discrete Gaussian release."""
    delta_zcdp = _up(n * tv)
    if epsilon is None and delta is not None:   # rho or sigma given: convert at delta
        delta = accounting._delta_open(delta, "delta")
        if delta_zcdp >= delta:
            raise ValueError(f"delta {delta:g} is not above the sampler's {delta_zcdp:.3g}")
        epsilon = accounting.zcdp_to_approx_dp(rho, delta - delta_zcdp)
    elif epsilon is not None:
        epsilon = float(epsilon)
    return epsilon, (None if delta is None else float(delta)), delta_zcdp


def discrete_gaussian(x, *, rho: Optional[float] = None, sigma: Optional[float] = None,
                      epsilon: Optional[float] = None, delta: Optional[float] = None,
                      sensitivity: float = 1.0, generator: Optional[SecureGenerator] = None,
                      accountant: Optional[accounting.Accountant] = None,
                      name: str = "discrete_gaussian",
                      backend: Optional[str] = None) -> DPRelease:
    """x + discrete Gaussian noise N_Z(0, sigma^2), for an integer array x with L2
    sensitivity ``sensitivity`` (Canonne, Kamath, Steinke 2020).

    Give one of ``rho`` (zCDP; sigma = sensitivity / sqrt(2 rho)), ``sigma``, or
    ``epsilon`` and ``delta`` (the largest rho whose tight conversion fits, after the
    sampler's own total variation is set aside). The release is rho-zCDP up to the
    sampler's total variation (returned as ``delta`` for a zCDP accountant, folded into
    (epsilon, delta) otherwise). sigma is limited to 1e5 (the table's size); for larger
    noise on integers scale the data, or use ``gaussian`` on floats.
    """
    arr = _integer_input(x)
    sensitivity = _positive(sensitivity, "sensitivity")
    n = int(arr.size)
    def slack(eps):   # the sampler's share of delta, bounded at the largest sigma allowed
        return n * (1 + math.exp(min(eps, 700.0))) * _ref.gaussian_tv_bound(
            _ref.MAX_GAUSSIAN_SIGMA)

    sigma, rho = _gaussian_sigma(sensitivity, rho, sigma, epsilon, delta, slack)
    if sigma > _ref.MAX_GAUSSIAN_SIGMA:
        raise ValueError(f"sigma {sigma:g} exceeds the discrete Gaussian sampler's limit "
                         f"{_ref.MAX_GAUSSIAN_SIGMA:g}; scale the data down, or add float "
                         "noise with synthcore.dp.gaussian")
    generator = _generator(generator)
    name_b = _backend.resolve(backend, arrays=(arr,))
    tables = _gaussian_tables(float(sigma))
    eps_out, delta_out, delta_zcdp = _gaussian_release(n, rho, tables.tv_bound, epsilon, delta)
    receipt = _charge(accountant, name, "discrete_gaussian",
                      {"sigma": sigma, "sensitivity": sensitivity, "n": n,
                       "insecure_generator": generator.insecure},
                      epsilon=eps_out, delta_dp=delta_out or 0.0, rho=rho,
                      delta_zcdp=delta_zcdp)
    flat = arr.reshape(-1).astype(_xp(arr).int64, copy=False)
    values = _add_noise(flat, tables, generator, name_b).reshape(arr.shape)
    return DPRelease(values, "discrete_gaussian", eps_out,
                     delta_out if delta_out is not None else delta_zcdp, float(sigma),
                     sensitivity, bool(generator.insecure), receipt, rho=rho)


# ---- floats on an integer grid --------------------------------------------------------------

def _pow2_ceil(v: float) -> float:
    m, e = math.frexp(v)      # v = m 2^e, m in [0.5, 1)
    return math.ldexp(1.0, e - 1) if m == 0.5 else math.ldexp(1.0, e)


def _grid_noise(arr, max_abs, r, tables, generator, name_b):
    """(rint(x / r) + Z) r in x's dtype: r a power of two, so x / r and the product are
    exact; the cpu kernel does it in one pass, NumPy and CuPy as array code."""
    xp = _xp(arr)
    flat = arr.reshape(-1)
    if max_abs >= 2.0 ** 62 * r:
        raise ValueError(f"x has values too large for the noise grid {r:g} (|x| must stay "
                         f"below {2.0 ** 62 * r:g}); use a larger noise scale")
    if name_b == "cpu":
        x64 = np.ascontiguousarray(flat, dtype=np.float64)
        n = int(x64.size)
        out = np.empty(n, dtype=np.float64)
        first = generator._reserve(tables.words_for(n))
        if n:
            _backend.core_module().grid_float_noise(
                generator._key, generator._stream, first,
                tables.multipliers, tables.starts, tables.window_log2, tables.guide_bits,
                tables.guide_starts, tables.guide, tables.t_hi, tables.t_lo, x64, float(r),
                out, _backend.get_num_threads())
    else:
        grid = xp.rint(flat.astype(xp.float64) / r).astype(xp.int64)
        out = _add_noise(grid, tables, generator, name_b).astype(xp.float64) * r
    return out.astype(arr.dtype, copy=False).reshape(arr.shape)


def laplace(x, *, epsilon: Optional[float] = None, scale: Optional[float] = None,
            sensitivity: float = 1.0, changed_coordinates: Optional[int] = None,
            generator: Optional[SecureGenerator] = None,
            accountant: Optional[accounting.Accountant] = None, name: str = "laplace",
            backend: Optional[str] = None) -> DPRelease:
    """Float Laplace mechanism, safe against floating-point attacks.

    x is rounded to the grid r = 2^ceil(log2(b 2^-36)) (from the scale b, never from the
    data); rounding can move each changed coordinate by r/2 in each of two neighbouring
    inputs, so the L1 sensitivity becomes sensitivity + c r, with c =
    ``changed_coordinates`` (how many coordinates one person can change; default: all of
    x, as OpenDP assumes). Exact discrete Laplace noise of integer scale b / r is added
    and the result scaled back (post-processing). With ``epsilon`` the scale is chosen so
    that the inflated cost is epsilon; with ``scale`` the cost is reported.
    """
    arr, max_abs = _float_input(x)
    sensitivity = _positive(sensitivity, "sensitivity")
    n = int(arr.size)
    c = _changed(changed_coordinates, n)
    if (epsilon is None) == (scale is None):
        raise ValueError("give exactly one of epsilon and scale")

    def grid(b):
        return _pow2_ceil(b * 2.0 ** -LAPLACE_GRID_BITS)

    if epsilon is not None:
        epsilon = _positive(epsilon, "epsilon")
        b = sensitivity / epsilon
        for _ in range(8):  # the grid depends on b and b on the grid: a fixed point
            r = grid(b)
            b_next = _up((sensitivity + c * r) / epsilon)
            if grid(b_next) == r:
                b = b_next
                break
            b = b_next
        r = grid(b)
        b = max(b, _up((sensitivity + c * r) / epsilon))
    else:
        b = _positive(scale, "scale")
        r = grid(b)
    sens_used = sensitivity + c * r
    eps_used = _up(sens_used / b)
    if epsilon is not None and eps_used > epsilon * (1 + 1e-12):
        raise AssertionError("laplace calibration overspent")  # guards the fixed point
    generator = _generator(generator)
    name_b = _backend.resolve(backend, arrays=(arr,))
    tables = _laplace_tables(b / r)
    delta = _laplace_release_delta(n, eps_used, tables.tv_bound)
    receipt = _charge(accountant, name, "laplace",
                      {"scale": b, "granularity": r, "sensitivity": sensitivity,
                       "sensitivity_used": sens_used, "n": n,
                       "insecure_generator": generator.insecure},
                      epsilon=eps_used, delta_dp=delta, delta_zcdp=_up(n * tables.tv_bound))
    values = _grid_noise(arr, max_abs, r, tables, generator, name_b)
    return DPRelease(values, "laplace", eps_used, delta, b, sensitivity,
                     bool(generator.insecure), receipt, rho=accounting.pure_to_zcdp(eps_used),
                     granularity=r, sensitivity_used=sens_used)


def gaussian(x, *, rho: Optional[float] = None, sigma: Optional[float] = None,
             epsilon: Optional[float] = None, delta: Optional[float] = None,
             sensitivity: float = 1.0, changed_coordinates: Optional[int] = None,
             generator: Optional[SecureGenerator] = None,
             accountant: Optional[accounting.Accountant] = None, name: str = "gaussian",
             backend: Optional[str] = None) -> DPRelease:
    """Float Gaussian mechanism, safe against floating-point attacks.

    x is rounded to the grid r = 2^ceil(log2(sigma 2^-15)) (from sigma, never from the
    data), so the integer sigma / r lies in (2^14, 2^15]; rounding inflates the L2
    sensitivity to sensitivity + sqrt(c) r (c = ``changed_coordinates``, default all of
    x). Exact discrete Gaussian noise of sigma / r is added and the result scaled back.
    The cost is rho = sensitivity_used^2 / (2 sigma^2) (zCDP) up to the sampler's total
    variation. Give ``rho``, ``sigma``, or ``epsilon`` and ``delta``; with ``rho`` or
    ``epsilon`` sigma is calibrated for the inflated sensitivity.
    """
    arr, max_abs = _float_input(x)
    sensitivity = _positive(sensitivity, "sensitivity")
    n = int(arr.size)
    c = _changed(changed_coordinates, n)
    root_c = math.sqrt(c)

    def grid(s):
        return _pow2_ceil(s * 2.0 ** -GAUSSIAN_GRID_SIGMA_LOG2)

    def slack(eps):   # the sampler's share of delta: its integer sigma is at most 2^15
        return n * (1 + math.exp(min(eps, 700.0))) * _ref.gaussian_tv_bound(
            2.0 ** GAUSSIAN_GRID_SIGMA_LOG2)

    if sigma is not None:
        if rho is not None or epsilon is not None:
            raise ValueError("give exactly one of rho, sigma, or epsilon (with delta)")
        s = _positive(sigma, "sigma")
        r = grid(s)
        sens_used = sensitivity + root_c * r
        rho_used = accounting.zcdp_rho_gaussian(sens_used, s)
    else:
        _, rho_target = _gaussian_sigma(sensitivity, rho, None, epsilon, delta, slack)
        s = accounting.gaussian_sigma_for_rho(sensitivity, rho_target)
        for _ in range(8):
            r = grid(s)
            s_next = accounting.gaussian_sigma_for_rho(sensitivity + root_c * r, rho_target)
            if grid(s_next) == r:
                s = s_next
                break
            s = s_next
        r = grid(s)
        sens_used = sensitivity + root_c * r
        s = max(s, accounting.gaussian_sigma_for_rho(sens_used, rho_target))
        rho_used = accounting.zcdp_rho_gaussian(sens_used, s)
    generator = _generator(generator)
    name_b = _backend.resolve(backend, arrays=(arr,))
    tables = _gaussian_tables(s / r)
    eps_out, delta_out, delta_zcdp = _gaussian_release(n, rho_used, tables.tv_bound, epsilon,
                                                       delta)
    receipt = _charge(accountant, name, "gaussian",
                      {"sigma": s, "granularity": r, "sensitivity": sensitivity,
                       "sensitivity_used": sens_used, "n": n,
                       "insecure_generator": generator.insecure},
                      epsilon=eps_out, delta_dp=delta_out or 0.0, rho=rho_used,
                      delta_zcdp=delta_zcdp)
    values = _grid_noise(arr, max_abs, r, tables, generator, name_b)
    return DPRelease(values, "gaussian", eps_out,
                     delta_out if delta_out is not None else delta_zcdp, s, sensitivity,
                     bool(generator.insecure), receipt, rho=rho_used, granularity=r,
                     sensitivity_used=sens_used)


@functools.lru_cache(maxsize=256)
def _rr_intervals(k: int, epsilon: float):
    return _ref.rr_intervals(k, epsilon)


def randomized_response(codes, k: int, *, epsilon: float,
                        generator: Optional[SecureGenerator] = None,
                        accountant: Optional[accounting.Accountant] = None,
                        name: str = "randomized_response",
                        backend: Optional[str] = None) -> DPRelease:
    """k-ary randomized response on category codes 0 .. k-1 (local DP per value).

    Each code is kept with probability keep/2^96 and otherwise replaced by one of the
    other k - 1 codes, each with probability other/2^96, where keep/other <= e^epsilon
    exactly (the interval lengths are rounded so that the guarantee is pure
    epsilon-DP, with no delta). The work per value is fixed.
    """
    arr = _integer_input(codes, "codes")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    k = int(k)
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= k):
        raise ValueError(f"codes must lie in [0, {k}), got values in "
                         f"[{int(arr.min())}, {int(arr.max())}]")
    epsilon = _positive(epsilon, "epsilon")
    generator = _generator(generator)
    name_b = _backend.resolve(backend, arrays=(arr,))
    keep, other = _rr_intervals(k, epsilon)
    n = int(arr.size)
    receipt = _charge(accountant, name, "randomized_response",
                      {"k": k, "n": n, "insecure_generator": generator.insecure},
                      epsilon=epsilon)
    first = generator._reserve(_ref.RR_WORDS_PER_VALUE * n)
    xp = _xp(arr)
    flat = xp.ascontiguousarray(arr.astype(xp.int64).reshape(-1))
    out = xp.empty(n, dtype=xp.int64)
    args = (keep >> 32, keep & 0xFFFFFFFF, other >> 32, other & 0xFFFFFFFF)
    if n and name_b == "numpy":
        words = _ref_words.stream_words(generator._key, generator._stream, first,
                                        _ref.RR_WORDS_PER_VALUE * n)
        out[...] = _ref.randomized_response(flat, k, keep, other, words)
    elif n and name_b == "cpu":
        _backend.core_module().randomized_response(
            generator._key, generator._stream, first, flat, out, *args,
            _backend.get_num_threads())
    elif n:
        import cupy
        words = _words(generator._key, generator._stream, first, _ref.RR_WORDS_PER_VALUE * n,
                       None, "cuda", generator._device_keys)
        _backend.cuda_module().randomized_response_from_words(
            words.data.ptr, flat.data.ptr, out.data.ptr, n, *args,
            cupy.cuda.get_current_stream().ptr)
    return DPRelease(out.reshape(arr.shape), "randomized_response", epsilon, 0.0, float("nan"),
                     1.0, bool(generator.insecure), receipt, rho=accounting.pure_to_zcdp(epsilon))


@functools.lru_cache(maxsize=64)
def _flip_tables(lam: float, max_gap: int) -> _ref.FlipTables:
    return _ref.flip_tables(lam, max_gap)


def noisy_max(scores, *, epsilon: float, sensitivity: float = 1.0,
              generator: Optional[SecureGenerator] = None,
              accountant: Optional[accounting.Accountant] = None, name: str = "noisy_max",
              backend: Optional[str] = None) -> DPRelease:
    """The index of a high score, epsilon-DP: exact permute-and-flip (McKenna and
    Sheldon 2020), never a float softmax.

    ``scores``: shape (k,) or (m, k), one selection per row (m selections on the same
    data cost m epsilon, basic composition); each score has sensitivity
    ``sensitivity`` (the quality of every candidate changes by at most that much between
    neighbours). Candidate i of a row is accepted with probability
    exp(-epsilon (max - score_i) / (2 sensitivity)), and the accepted candidate that comes
    first in a uniformly random order wins (PF: epsilon-DP, and never worse in expectation
    than the exponential mechanism). Float scores are rounded to a grid of 2^-10 of the
    sensitivity, which is added to the sensitivity. Every candidate's coin is drawn
    (fixed work); the coins compare 96-bit uniforms against exact tables, so the
    selection is within a stated total variation (returned as ``delta``) of exact PF.
    """
    kind = _backend.array_kind(scores)
    arr = scores if kind == "cupy" else np.asarray(scores)
    xp = _xp(arr)
    if arr.ndim not in (1, 2) or arr.shape[-1] < 1:
        raise ValueError(f"scores must have shape (k,) or (m, k) with k >= 1, got {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"scores must be numeric, got dtype {arr.dtype}")
    epsilon = _positive(epsilon, "epsilon")
    sensitivity = _positive(sensitivity, "sensitivity")
    rows = arr.reshape(1, -1) if arr.ndim == 1 else arr
    if arr.dtype.kind == "f":
        if arr.size and not bool(xp.isfinite(arr).all()):
            raise ValueError("scores contain NaN or infinity")
        r = _pow2_ceil(sensitivity * 2.0 ** -10)
        grid = xp.rint(rows.astype(xp.float64) / r)
        sens_used = sensitivity + r
        if grid.size and float(xp.abs(grid).max()) >= 2.0 ** 62:
            raise ValueError("scores are too large for the selection grid")
        ints = grid.astype(xp.int64)
        lam = epsilon * r / (2 * sens_used)
    else:
        ints = rows.astype(xp.int64)
        sens_used = sensitivity
        lam = epsilon / (2 * sensitivity)
    m, k = ints.shape
    # gaps beyond max_gap have acceptance < 2^-100: treated as 0 (inside the tv bound)
    max_gap = int(math.ceil(_ref.TAIL_BITS * math.log(2) / lam)) + 1
    tables = _flip_tables(float(lam), max_gap)
    tv = _up(m * (k * tables.tv_per_coin + k * k * 2.0 ** -97))
    generator = _generator(generator)
    name_b = _backend.resolve(backend, arrays=(arr,))
    # each row is one selection from the same data: m selections compose to m epsilon
    eps_total = _up(m * epsilon) if m > 1 else epsilon
    delta = _laplace_release_delta(1, eps_total, tv)
    receipt = _charge(accountant, name, "noisy_max",
                      {"sensitivity": sensitivity, "sensitivity_used": sens_used,
                       "candidates": k, "rows": m, "insecure_generator": generator.insecure},
                      epsilon=eps_total, delta_dp=delta, delta_zcdp=tv)
    per = tables.words_per_candidate
    first = generator._reserve(per * m * k)
    if name_b == "numpy":
        words = _ref_words.stream_words(generator._key, generator._stream, first, per * m * k)
    else:
        words = _words(generator._key, generator._stream, first, per * m * k, None, name_b,
                       generator._device_keys)
    chosen = _ref.permute_and_flip(ints, tables, words, xp)
    values = chosen[0] if arr.ndim == 1 else chosen
    return DPRelease(values, "noisy_max", eps_total, delta, 2 * sens_used / epsilon, sensitivity,
                     bool(generator.insecure), receipt, sensitivity_used=sens_used)
