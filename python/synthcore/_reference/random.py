"""The counter-based distributions in NumPy, mirroring ``synthcore/random.hpp``.

Every function takes the Philox key, the stream, the element offset and the
element count and returns a flat array; element i depends only on
(key, stream, offset + i). Work is done in chunks to bound temporaries.
"""
from __future__ import annotations

import numpy as np

from . import ndtri
from .philox import stream_words

_CHUNK = 1 << 20  # elements per chunk
_U64_SHIFT11 = np.uint64(11)
_MASK52 = np.uint64((1 << 52) - 1)
_MASK31 = np.uint32(0x7FFFFFFF)


def _words_u64(words: np.ndarray) -> np.ndarray:
    pairs = words.reshape(-1, 2).astype(np.uint64)
    return pairs[:, 0] | (pairs[:, 1] << np.uint64(32))


def _chunked(n, offset, dtype, fill):
    out = np.empty(n, dtype=dtype)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        out[start:stop] = fill(offset + start, stop - start)
    return out


def raw(key, stream, offset, n, dtype=np.uint32):
    return stream_words(key, stream, offset, n)


def uniform(key, stream, offset, n, dtype, low, width):
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        def fill(off, m):
            u = _words_u64(stream_words(key, stream, 2 * off, 2 * m))
            return low + width * ((u >> _U64_SHIFT11).astype(np.float64) * 2.0**-53)
    else:
        lo32, w32 = np.float32(low), np.float32(width)

        def fill(off, m):
            w = stream_words(key, stream, off, m)
            return lo32 + w32 * ((w >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24))
    return _chunked(n, offset, dtype, fill)


def normal(key, stream, offset, n, dtype, loc, scale):
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        def fill(off, m):
            u = _words_u64(stream_words(key, stream, 2 * off, 2 * m))
            p = ((u >> _U64_SHIFT11) & _MASK52).astype(np.float64) * 2.0**-53 + 2.0**-54
            z = ndtri.ndtri_lower_f64(p)
            return loc + scale * np.where((u >> np.uint64(63)) != 0, -z, z)
    else:
        loc32, scale32 = np.float32(loc), np.float32(scale)

        def fill(off, m):
            w = stream_words(key, stream, off, m)
            p = (w & _MASK31).astype(np.float64) * 2.0**-32 + 2.0**-33
            z = ndtri.ndtri_lower_f64(p).astype(np.float32)
            return loc32 + scale32 * np.where((w >> np.uint32(31)) != 0, -z, z)
    return _chunked(n, offset, dtype, fill)


def _mulhi_u64(a: np.ndarray, b: int) -> np.ndarray:
    """High 64 bits of a * b for uint64 array a and 0 <= b < 2**64, in 32-bit pieces."""
    mask = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    a_lo, a_hi = a & mask, a >> s32
    b_lo, b_hi = np.uint64(b & 0xFFFFFFFF), np.uint64(b >> 32)
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    lo_hi = a_lo * b_hi
    hi_hi = a_hi * b_hi
    cross = (lo_lo >> s32) + (hi_lo & mask) + lo_hi  # < 3 * 2**32: no overflow
    return hi_hi + (hi_lo >> s32) + (cross >> s32)


def integers(key, stream, offset, n, dtype, low, range_):
    """Integers in [low, low + range_); range_ == 0 means 2**64."""
    dtype = np.dtype(dtype)
    low_u = np.uint64(low & 0xFFFFFFFFFFFFFFFF)

    def fill(off, m):
        u = _words_u64(stream_words(key, stream, 2 * off, 2 * m))
        v = u if range_ == 0 else _mulhi_u64(u, range_)
        return (v + low_u).view(np.int64).astype(dtype)
    return _chunked(n, offset, dtype, fill)
