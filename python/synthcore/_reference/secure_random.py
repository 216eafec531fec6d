"""ChaCha20 keystream words in NumPy, bit for bit the same as ``rng/chacha.hpp``."""
from __future__ import annotations

import numpy as np

CONSTANTS = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
_QUARTER_ROUNDS = ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
                   (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14))


def _rotl(x, n):
    return (x << np.uint32(n)) | (x >> np.uint32(32 - n))


def chacha20_blocks(key, counters) -> np.ndarray:
    """ChaCha20 of each row of ``counters`` (state words 12..15, n x 4) -> n x 16 words."""
    key = np.asarray(key, dtype=np.uint32).reshape(8)
    counters = np.asarray(counters, dtype=np.uint32).reshape(-1, 4)
    n = counters.shape[0]
    s = [np.full(n, c, dtype=np.uint32) for c in CONSTANTS]
    s += [np.full(n, k, dtype=np.uint32) for k in key]
    s += [counters[:, i].copy() for i in range(4)]
    x = [v.copy() for v in s]
    with np.errstate(over="ignore"):
        for _ in range(10):
            for a, b, c, d in _QUARTER_ROUNDS:
                x[a] += x[b]; x[d] ^= x[a]; x[d] = _rotl(x[d], 16)
                x[c] += x[d]; x[b] ^= x[c]; x[b] = _rotl(x[b], 12)
                x[a] += x[b]; x[d] ^= x[a]; x[d] = _rotl(x[d], 8)
                x[c] += x[d]; x[b] ^= x[c]; x[b] = _rotl(x[b], 7)
        out = np.stack([x[i] + s[i] for i in range(16)], axis=1)
    return out.astype(np.uint32)


def stream_words(key, stream: int, first: int, count: int) -> np.ndarray:
    """Words [first, first + count) of the (key, stream) keystream."""
    if count == 0:
        return np.empty(0, dtype=np.uint32)
    first_block, last_block = first // 16, (first + count - 1) // 16
    blocks = np.arange(first_block, last_block + 1, dtype=np.uint64)
    counters = np.stack([blocks & np.uint64(0xFFFFFFFF), blocks >> np.uint64(32),
                         np.full_like(blocks, stream & 0xFFFFFFFF),
                         np.full_like(blocks, stream >> 32)], axis=1).astype(np.uint32)
    words = chacha20_blocks(key, counters).reshape(-1)
    skip = first - 16 * first_block
    return words[skip:skip + count]
