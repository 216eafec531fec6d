"""Output buffers for the samplers, reused across calls.

A million sampled rows are tens of MB of output; memory fresh from the OS is
faulted in and zeroed page by page, which cost about a fifth of a copula sample
call. With the ``_core`` module built, buffers of 1 MiB and more come from its
pool (cpp/bindings/register_buffers.cpp): when the arrays using a buffer (views,
DataFrames and Arrow arrays built on it included) are all gone, it is kept for
the next request of the same size instead of going back to the OS.

``SYNTHCORE_BUFFER_POOL_MB`` (default 256) caps the memory kept that way, per
process (the mapped bytes; the kept blocks' whole sizes, trimmed pages included, stay
within 4 times it); 0 turns the reuse off. ``release()`` gives the kept memory back
to the system now (blocks are mmap'ed, so freeing one unmaps it).
"""
from __future__ import annotations

import os

import numpy as np

from . import _backend

DEFAULT_POOL_MB = 256
_MIN_POOLED_BYTES = 1 << 20   # below this malloc's own reuse does as well
_pool = None                  # the _core module once configured; False: no pool
_limit = 0                    # bytes


def _configured_pool():
    global _pool, _limit
    if _pool is None:
        core = _backend.core_module()
        raw = os.environ.get("SYNTHCORE_BUFFER_POOL_MB", str(DEFAULT_POOL_MB))
        try:
            mb = float(raw)
        except ValueError:
            raise ValueError(f"SYNTHCORE_BUFFER_POOL_MB must be a number of MiB, got {raw!r}")
        if not 0 <= mb < 1 << 40:     # NaN and inf fail too
            raise ValueError(f"SYNTHCORE_BUFFER_POOL_MB must be a number of MiB >= 0 "
                             f"(and below 2**40), got {raw!r}")
        if core is None or mb == 0:
            _pool = False
        else:
            _limit = int(mb * (1 << 20))
            core.buffer_pool_limit(_limit)
            _pool = core
    return _pool


def empty(n: int, dtype) -> np.ndarray:
    """An uninitialised 1-d array of n elements (like ``np.empty``)."""
    dtype = np.dtype(dtype)
    pool = _configured_pool()
    if not pool or dtype.hasobject or n * dtype.itemsize < _MIN_POOLED_BYTES:
        return np.empty(n, dtype)
    return pool.pooled_empty(n, dtype)


def _trim_pooled(array: np.ndarray, n: int) -> bool:
    """For an array from the pool: give back the pages past its first n elements (its
    block keeps its size) and True; False for any other array."""
    pool = _configured_pool()
    return bool(pool) and array.base is not None and \
        bool(pool.pooled_trim(array, n * array.itemsize))


def shrink(array: np.ndarray, n: int) -> np.ndarray:
    """The first n elements of a 1-d array from ``empty`` that was sized for more (a
    filter's outputs, sized for every row): a pooled array becomes a view of its first
    n, and the pages past them go back to the system while its block keeps its size
    for the next request of that size; any other array is resized in place
    (realloc, which shrinks without copying)."""
    if _trim_pooled(array, n):
        return array[:n]
    array.resize(n, refcheck=False)
    return array


def trim(array: np.ndarray, n: int) -> np.ndarray:
    """The first n elements of a 1-d array from ``empty`` as a view; for a pooled
    array the pages past them go back to the system (its block keeps its size). For
    buffers sized for more rows than a call returns (candidates under rules): nothing
    may read past the first n elements afterwards (they read as zeros). Unlike
    ``shrink``, never resizes, so views of the array elsewhere stay valid."""
    _trim_pooled(array, n)
    return array[:n]


def release() -> None:
    """Give the memory kept for reuse back to the system (buffers in use stay)."""
    pool = _configured_pool()
    if pool:
        pool.buffer_pool_limit(0)
        pool.buffer_pool_limit(_limit)


def kept_bytes() -> int:
    """Bytes kept for reuse now (0 without the pool)."""
    pool = _configured_pool()
    return int(pool.buffer_pool_free_bytes()) if pool else 0
