"""The counter-based distributions in NumPy, mirroring ``synthcore/random.hpp``.

Every function takes the Philox key, the stream, the element offset and the
element count and returns a flat array; element i depends only on
(key, stream, offset + i). Work is done in chunks to bound temporaries.
"""
from __future__ import annotations

import numpy as np

from . import ndtri
from .philox import philox4x32_10, stream_words

_CHUNK = 1 << 20  # elements per chunk
_U64_SHIFT11 = np.uint64(11)
_MASK52 = np.uint64((1 << 52) - 1)
_MASK31 = np.uint32(0x7FFFFFFF)
_MASK32 = np.uint64(0xFFFFFFFF)


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


def element_u64(key, stream, elements: np.ndarray, block=philox4x32_10) -> np.ndarray:
    """The 64 random bits of each element index in ``elements`` (any order, any gaps)
    for the two-word kernels (float64 uniform and normal, integers): words 2j and 2j+1,
    i.e. half ``j % 2`` of Philox block ``j // 2``. ``block(counters, k0, k1)`` is the
    block function (the NumPy one here, or a native one with the same result)."""
    j = np.asarray(elements, dtype=np.uint64).reshape(-1)
    blocks = j >> np.uint64(1)
    counters = np.empty((j.size, 4), dtype=np.uint32)
    counters[:, 0] = (blocks & _MASK32).astype(np.uint32)
    counters[:, 1] = (blocks >> np.uint64(32)).astype(np.uint32)
    counters[:, 2] = stream & 0xFFFFFFFF
    counters[:, 3] = (stream >> 32) & 0xFFFFFFFF
    words = np.asarray(block(counters, key[0], key[1])).reshape(-1, 4)
    half = 2 * (j & np.uint64(1)).astype(np.intp)
    rows = np.arange(j.size)
    return (words[rows, half].astype(np.uint64)
            | (words[rows, half + 1].astype(np.uint64) << np.uint64(32)))


def uniform_from_u64(u, low, width):
    return low + width * ((u >> _U64_SHIFT11).astype(np.float64) * 2.0**-53)


def normal_from_u64(u, loc, scale):
    p = ((u >> _U64_SHIFT11) & _MASK52).astype(np.float64) * 2.0**-53 + 2.0**-54
    z = ndtri.ndtri_lower_f64(p)
    return loc + scale * np.where((u >> np.uint64(63)) != 0, -z, z)


def integers_from_u64(u, low, range_, dtype=np.int64):
    """Integers in [low, low + range_) (range_ == 0 means 2**64) from 64 random bits."""
    low_u = np.uint64(low & 0xFFFFFFFFFFFFFFFF)
    v = u if range_ == 0 else _mulhi_u64(u, range_)
    return (v + low_u).view(np.int64).astype(dtype)


def uniform(key, stream, offset, n, dtype, low, width):
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        def fill(off, m):
            return uniform_from_u64(_words_u64(stream_words(key, stream, 2 * off, 2 * m)),
                                    low, width)
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
            return normal_from_u64(_words_u64(stream_words(key, stream, 2 * off, 2 * m)),
                                   loc, scale)
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

    def fill(off, m):
        return integers_from_u64(_words_u64(stream_words(key, stream, 2 * off, 2 * m)), low,
                                 range_, dtype)
    return _chunked(n, offset, dtype, fill)
