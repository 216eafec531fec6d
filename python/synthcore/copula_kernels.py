"""The Gaussian copula's sampling stages as public kernels on caller buffers.

For library authors who keep their own marginals or their own model: each
stage is what ``GaussianCopula.sample`` runs inside its fused pass, with the
same bits on the ``cpu`` and ``numpy`` backends.

1. ``correlated_normals(chol, n, seed=...)``: z = L z_raw, z_raw the Philox
   normals of latent dim j at stream ``(stream << 20) + j``, element = row.
2. ``normal_cdf(z)``: uniforms u = Phi(z), for marginals of your own.
3. ``table_lookup(z, table, z_lo, z_hi)``: a marginal's inverse CDF as a table
   over a uniform z-grid (linear interpolation, clamped; optional rounding).
4. ``threshold_codes(z, thresholds)``: a discrete marginal: the number of
   sorted thresholds <= z (category codes with exact frequencies).

Arrays are C-contiguous float64 (codes int32); ``out=`` fills a buffer in place.
"""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np

from . import _backend
from ._reference import copula as _ref
from ._seeding import Seed, philox_key

__all__ = ["correlated_normals", "normal_cdf", "table_lookup", "threshold_codes", "latent_stream"]

latent_stream = _ref.latent_stream


def _backend_for(backend, *arrays):
    name = _backend.resolve(backend, arrays=[a for a in arrays if a is not None])
    if name == "cuda":
        raise _backend.BackendUnavailableError(
            "the copula stage kernels run on the cpu and numpy backends; GaussianCopula.sample "
            "has the fused CUDA pass")
    return name


def _float_array(x, name):
    a = np.asarray(x)
    if a.dtype != np.float64:
        raise ValueError(f"{name} must be float64, got {a.dtype}")
    return np.ascontiguousarray(a)


def _out(out, shape, dtype, name="out"):
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray) or out.dtype != dtype or out.shape != tuple(shape) or \
            not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous {np.dtype(dtype)} array of "
                         f"shape {tuple(shape)}")
    return out


def correlated_normals(chol, n: int, *, seed: Seed = None, stream: int = 0, row_offset: int = 0,
                       out=None, backend: Optional[str] = None) -> np.ndarray:
    """Latent normals z (d x n) for rows row_offset .. row_offset + n - 1."""
    chol = _float_array(chol, "chol")
    if chol.ndim != 2 or chol.shape[0] != chol.shape[1]:
        raise ValueError("chol must be a square (d x d) lower-triangular matrix")
    if not np.allclose(chol, np.tril(chol)):
        raise ValueError("chol must be lower triangular (a Cholesky factor)")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    for name, v, top in (("stream", stream, 2**44), ("row_offset", row_offset, 2**62)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= v < top:
            raise ValueError(f"{name} must be an integer in [0, {top})")
    d = chol.shape[0]
    z = _out(out, (d, n), np.float64)
    name = _backend_for(backend, out)
    key = philox_key(seed)
    if name == "numpy":
        z[...] = _ref.correlated_normals(_Plan(d, chol), key, int(stream), int(row_offset), n)
        return z
    from . import random as sr
    raw = np.empty((d, n))
    for j in range(d):
        sr.normal(out=raw[j], seed=key, stream=latent_stream(int(stream), j), offset=row_offset,
                  backend="cpu")
    _backend.core_module().copula_correlate(chol, raw, z, _backend.get_num_threads())
    return z


class _Plan:
    def __init__(self, d, chol):
        self.d, self.chol = d, chol


def normal_cdf(z, *, out=None) -> np.ndarray:
    """u = Phi(z) (SciPy's ndtr: correctly handles both tails)."""
    from scipy.special import ndtr
    z = _float_array(z, "z")
    return ndtr(z, out=_out(out, z.shape, np.float64))


def table_lookup(z, table, z_lo: float, z_hi: float, *, round_decimals: Optional[int] = None,
                 round_to: Optional[float] = None, out=None,
                 backend: Optional[str] = None) -> np.ndarray:
    """Values of a marginal given as a table over the uniform z-grid z_lo .. z_hi.

    ``round_decimals`` rounds to that many decimals, ``round_to`` to multiples of
    that quantum (e.g. 100, or 1e9 ns for whole seconds).
    """
    z = _float_array(z, "z")
    table = _float_array(table, "table")
    if table.ndim != 1 or table.size < 2:
        raise ValueError("table must be 1-d with at least 2 knots")
    if np.any(np.diff(table) < 0) or not np.all(np.isfinite(table)):
        raise ValueError("table must be finite and non-decreasing")
    if not (np.isfinite(z_lo) and np.isfinite(z_hi) and z_lo < z_hi):
        raise ValueError("z_lo < z_hi must be finite")
    if round_decimals is not None and round_to is not None:
        raise ValueError("give round_decimals or round_to, not both")
    mode, q = 0, 0.0
    if round_decimals is not None:
        mode, q = 1, 10.0 ** int(round_decimals)
    elif round_to is not None:
        if not round_to > 0:
            raise ValueError("round_to must be positive")
        mode, q = 2, float(round_to)
    res = _out(out, z.shape, np.float64)
    scale = (table.size - 1) / (z_hi - z_lo)
    name = _backend_for(backend, out)
    if name == "numpy":
        res[...] = _ref.round_values(_ref.table_lookup(z, z_lo, scale, table), mode, q)
    else:
        _backend.core_module().copula_table_lookup(z.reshape(-1), float(z_lo), scale, table,
                                                   mode, q, res.reshape(-1),
                                                   _backend.get_num_threads())
    return res


def threshold_codes(z, thresholds, *, out=None, backend: Optional[str] = None) -> np.ndarray:
    """int32 codes: the number of (sorted) thresholds <= z."""
    z = _float_array(z, "z")
    thresholds = _float_array(thresholds, "thresholds")
    if thresholds.ndim != 1 or np.any(np.diff(thresholds) < 0):
        raise ValueError("thresholds must be 1-d and sorted ascending")
    res = _out(out, z.shape, np.int32)
    name = _backend_for(backend, out)
    if name == "numpy":
        res[...] = _ref.threshold_codes(z, thresholds)
    else:
        _backend.core_module().copula_threshold_codes(z.reshape(-1), thresholds,
                                                      res.reshape(-1),
                                                      _backend.get_num_threads())
    return res
