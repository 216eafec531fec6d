"""Counter-based random kernels: ``random_raw``, ``uniform``, ``normal``, ``integers``.

Element i of a call depends only on (seed, stream, offset + i): generating
10M values in one call equals generating them in any number of chunks (with
matching offsets), on any backend, with any thread count. Raw 32-bit words
are bit-identical on all backends; floats agree to a few ulps (see README,
"Reproducibility"). Philox4x32-10 underlies everything; normals come from an
inverse CDF (Wichura AS 241), never from rejection.

This generator is for sampling. It is not cryptographically secure and must
not drive differential-privacy noise.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from . import _backend
from ._reference import philox as _ref_philox
from ._reference import random as _ref
from ._seeding import PhiloxKey, Seed, philox_key

__all__ = ["PhiloxKey", "philox_key", "philox4x32_10", "random_raw", "uniform", "normal",
           "integers"]

_U64 = 1 << 64
_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))
_INTS = (np.dtype(np.int64), np.dtype(np.int32))
_SUFFIX = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32",
           np.dtype(np.int64): "i64", np.dtype(np.int32): "i32"}


# ---- argument checks (all before any native code runs) ---------------------

def _check_u64(value, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argument} must be an integer, got {type(value).__name__}")
    value = int(value)
    if not 0 <= value < _U64:
        raise ValueError(f"{argument} must be in [0, 2**64), got {value}")
    return value


def _check_dtype(dtype, allowed, out=None) -> np.dtype:
    """``dtype``; None means out's dtype, or the first allowed one."""
    if dtype is None:
        dtype = out.dtype if out is not None and hasattr(out, "dtype") else allowed[0]
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in allowed:
        names = ", ".join(str(a) for a in allowed)
        raise ValueError(f"dtype must be one of {names}, got {dtype!r}")
    return dt


def _check_shape(size) -> tuple:
    if size is None:
        return ()
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size,)
    try:
        dims = tuple(size)
    except TypeError:
        raise TypeError(f"size must be an int or a tuple of ints, got {type(size).__name__}") \
            from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"size must contain integers, got {size!r}")
        if d < 0:
            raise ValueError(f"size must not be negative, got {size!r}")
    return tuple(int(d) for d in dims)


def _check_out(out, size, dtype: np.dtype) -> tuple:
    """The output shape, checking ``out`` against ``size`` and ``dtype``."""
    if out is None:
        return _check_shape(size)
    if _backend.array_kind(out) is None:
        raise TypeError(f"out must be a NumPy or CuPy array, got {type(out).__name__}")
    if out.dtype != dtype:
        raise ValueError(f"out has dtype {out.dtype}, expected {dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if _backend.array_kind(out) == "numpy" and not out.flags.writeable:
        raise ValueError("out is read-only")
    if size is not None and _check_shape(size) != tuple(out.shape):
        raise ValueError(f"size {size!r} does not match out.shape {tuple(out.shape)}")
    return tuple(out.shape)


def _check_real(value, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{argument} must be finite, got {value}")
    return value


def _check_budget(offset: int, n: int, words_per_element: int) -> None:
    if (offset + n) * words_per_element > _U64:
        raise ValueError(f"offset + size = {offset + n} elements exceeds the stream "
                         f"({_U64 // words_per_element} elements of this kind per stream); "
                         "use another stream")


# ---- dispatch ---------------------------------------------------------------

def _generate(kernel: str, dtype: np.dtype, shape: tuple, out, seed, stream, offset, backend,
              words_per_element: int, params: tuple):
    key = philox_key(seed)
    stream = _check_u64(stream, "stream")
    offset = _check_u64(offset, "offset")
    n = math.prod(shape)
    _check_budget(offset, n, words_per_element)
    name = _backend.resolve(backend, arrays=(out,))
    native = "random_raw" if kernel == "raw" else f"random_{kernel}_{_SUFFIX[dtype]}"

    if name == "numpy":
        flat = getattr(_ref, kernel)(key, stream, offset, n, dtype, *params)
        if out is None:
            return flat.reshape(shape)
        out.reshape(-1)[...] = flat
        return out

    if name == "cpu":
        result = np.empty(shape, dtype=dtype) if out is None else out
        if n:
            getattr(_backend.core_module(), native)(
                result.reshape(-1), key.k0, key.k1, stream, offset, *params,
                _backend.get_num_threads())
        return result

    import cupy  # name == "cuda": resolve() checked that CuPy and a GPU are there
    if out is not None and out.device.id != cupy.cuda.Device().id:
        raise ValueError(f"out is on GPU {out.device.id} but the current device is "
                         f"{cupy.cuda.Device().id}")
    result = cupy.empty(shape, dtype=dtype) if out is None else out
    if n:
        getattr(_backend.cuda_module(), native)(
            result.data.ptr, n, key.k0, key.k1, stream, offset, *params,
            cupy.cuda.get_current_stream().ptr)
    return result


# ---- public kernels -----------------------------------------------------------

def random_raw(size=None, *, seed: Seed = None, stream: int = 0, offset: int = 0, out=None,
               backend: Optional[str] = None):
    """Raw uint32 words ``offset .. offset + n - 1`` of the Philox stream.

    Word w is output word ``w % 4`` of Philox4x32-10 with counter
    ``(lo(w // 4), hi(w // 4), lo(stream), hi(stream))`` and the seed's key.
    Bit-identical on every backend.
    """
    dtype = np.dtype(np.uint32)
    shape = _check_out(out, size, dtype)
    return _generate("raw", dtype, shape, out, seed, stream, offset, backend, 1, ())


def uniform(size=None, *, low: float = 0.0, high: float = 1.0, seed: Seed = None,
            stream: int = 0, offset: int = 0, dtype=None, out=None,
            backend: Optional[str] = None):
    """Uniform floats ``low + (high - low) * u`` with u in [0, 1).

    u is on a grid of 2**-53 (float64, two words per element) or 2**-24
    (float32, one word per element), like ``numpy.random.Generator.random``.
    """
    dt = _check_dtype(dtype, _FLOATS, out)
    low, high = _check_real(low, "low"), _check_real(high, "high")
    if not low <= high:
        raise ValueError(f"low must be <= high, got low={low}, high={high}")
    width = high - low
    if not math.isfinite(width):
        raise ValueError("high - low overflows")
    shape = _check_out(out, size, dt)
    return _generate("uniform", dt, shape, out, seed, stream, offset, backend,
                     2 if dt == np.float64 else 1, (low, width))


def normal(size=None, *, loc: float = 0.0, scale: float = 1.0, seed: Seed = None,
           stream: int = 0, offset: int = 0, dtype=None, out=None,
           backend: Optional[str] = None):
    """Normal floats ``loc + scale * z`` by the inverse normal CDF.

    float64 uses two words per element, |z| <= 8.3; float32 uses one word,
    |z| <= 5.9, computed in float64 and rounded once. The quantile function is
    Wichura's AS 241 (PPND16, relative error about 1e-15). The sign is one
    random bit, so the distribution is exactly symmetric.
    """
    dt = _check_dtype(dtype, _FLOATS, out)
    loc, scale = _check_real(loc, "loc"), _check_real(scale, "scale")
    if scale < 0:
        raise ValueError(f"scale must be >= 0, got {scale}")
    shape = _check_out(out, size, dt)
    return _generate("normal", dt, shape, out, seed, stream, offset, backend,
                     2 if dt == np.float64 else 1, (loc, scale))


def integers(low: int, high: Optional[int] = None, size=None, *, dtype=None,
             endpoint: bool = False, seed: Seed = None, stream: int = 0, offset: int = 0,
             out=None, backend: Optional[str] = None):
    """Integers in [low, high) (or [low, high] with ``endpoint=True``), like
    ``numpy.random.Generator.integers``; ``integers(k)`` draws from [0, k).

    Each element uses 64 random bits and the high half of a 64x64-bit product
    with the range, without rejection: each value's probability differs from
    1/range by less than 2**-64.
    """
    dt = _check_dtype(dtype, _INTS, out)
    if high is None:
        low, high = 0, low
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    low, high = int(low), int(high)
    top = high if endpoint else high - 1
    if top < low:
        raise ValueError(f"empty range: low={low}, high={high}, endpoint={endpoint}")
    info = np.iinfo(dt)
    if low < info.min or top > info.max:
        raise ValueError(f"[{low}, {top}] does not fit dtype {dt}")
    range_ = (top - low + 1) % _U64  # 0 stands for 2**64
    shape = _check_out(out, size, dt)
    return _generate("integers", dt, shape, out, seed, stream, offset, backend, 2,
                     (low, range_))


def philox4x32_10(counters, key: PhiloxKey, *, backend: Optional[str] = None):
    """The Philox4x32-10 block function on each row of ``counters`` (n x 4 uint32).

    Exposed for known-answer tests and for embedders that lay out counters
    themselves.
    """
    key = philox_key(key if isinstance(key, PhiloxKey) else PhiloxKey(*key), "key")
    kind = _backend.array_kind(counters)
    if kind is None:
        counters = np.asarray(counters)
    if counters.dtype != np.uint32 or counters.ndim != 2 or counters.shape[1] != 4:
        raise ValueError("counters must be an (n, 4) uint32 array")
    name = _backend.resolve(backend, arrays=(counters,))
    if name == "numpy":
        return _ref_philox.philox4x32_10(counters, key.k0, key.k1)
    if name == "cpu":
        c = np.ascontiguousarray(counters)
        out = np.empty_like(c)
        _backend.core_module().philox4x32_10(c, key.k0, key.k1, out)
        return out
    import cupy
    c = cupy.ascontiguousarray(counters)
    out = cupy.empty_like(c)
    _backend.cuda_module().philox4x32_10(c.data.ptr, key.k0, key.k1, out.data.ptr, c.shape[0],
                                         cupy.cuda.get_current_stream().ptr)
    return out

