"""Discrete Laplace noise from ChaCha20 words, in NumPy (mirrors cpp/src/dp_noise.cpp).

Z = G1 - G2 with G1, G2 independent geometrics, P(G = g) = (1 - q) q^g, q = e^(-1/t):
exactly the discrete Laplace distribution P(Z = z) ∝ q^|z|, with no rejection.

A geometric is written in base 64, G = sum_l d_l 64^l: by memorylessness the digits
are independent, digit l a geometric of ratio q^(64^l) truncated to [0, 64) (the last
digit's own tail beyond 64 has mass <= 2^-100 and is dropped). Each digit is read
from one 96-bit uniform U against 64 decreasing thresholds floor(P(d >= k) 2^96)
(zero-padded: U < 0 never counts), so every level is the same fixed 64-way count.
With L levels a sample reads 6 L words: geometric 1's levels, then geometric 2's,
three words per uniform, U = w0 2^64 + w1 2^32 + w2.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNIFORM_BITS = 96
TRUNCATION_BITS = 100  # the last level's tail mass is <= 2^-100
BASE = 64              # thresholds per level (a power of two: digits are bit fields)
LOG2_BASE = 6
MAX_LEVELS = 8
MAX_SCALE = float(BASE ** MAX_LEVELS) / (TRUNCATION_BITS * 0.6931471805599453)


@dataclass(frozen=True)
class GeometricTables:
    scale: float
    levels: int
    t_hi: np.ndarray         # uint64 [levels * 64]: bits 95..32 of the thresholds
    t_lo: np.ndarray         # uint32 [levels * 64]: bits 31..0
    tv_per_geometric: float  # total-variation bound of one geometric draw

    @property
    def words_per_sample(self) -> int:
        return 6 * self.levels


def geometric_tables(scale: float) -> GeometricTables:
    """Thresholds for P(G = g) = (1 - q) q^g, q = exp(-1/scale), computed with mpmath."""
    import mpmath
    mpmath.mp.prec = 256
    t = mpmath.mpf(float(scale))  # the float scale, exactly
    need = TRUNCATION_BITS * mpmath.log(2) * t  # 64^L >= 69.3 t: tail mass <= 2^-100
    levels = 1
    while mpmath.mpf(BASE) ** levels < need:
        levels += 1
    if levels > MAX_LEVELS:
        raise ValueError(f"scale {scale} is larger than the discrete Laplace sampler supports "
                         f"({MAX_SCALE:g})")
    two96 = mpmath.mpf(2) ** UNIFORM_BITS
    q = mpmath.exp(-1 / t)
    values = []
    for level in range(levels):
        r = q ** (BASE ** level)
        powers = [mpmath.mpf(1)]
        for _ in range(BASE):
            powers.append(powers[-1] * r)
        last = level == levels - 1
        r_top = mpmath.mpf(0) if last else powers[BASE]  # the last level is not renormalised
        for k in range(1, BASE + 1):
            if k < BASE:
                p = (powers[k] - r_top) / (1 - r_top)
                values.append(int(mpmath.floor(p * two96)))
            else:
                values.append(0)  # pad: 64 entries per level, U < 0 never counts
    hi = np.array([v >> 32 for v in values], dtype=np.uint64)
    lo = np.array([v & 0xFFFFFFFF for v in values], dtype=np.uint32)
    tv = float(levels * (BASE - 1) * 2.0 ** -UNIFORM_BITS + 2.0 ** -TRUNCATION_BITS)
    return GeometricTables(float(scale), levels, hi, lo, tv)


def _count_below(u_hi, u_lo, t_hi, t_lo):
    """The number of thresholds T_k with U < T_k (96-bit comparisons)."""
    count = np.zeros(u_hi.shape, dtype=np.int64)
    for th, tl in zip(t_hi.tolist(), t_lo.tolist()):
        th, tl = np.uint64(th), np.uint32(tl)
        count += (u_hi < th) | ((u_hi == th) & (u_lo < tl))
    return count


def geometric(tables: GeometricTables, words, first_word) -> np.ndarray:
    """One geometric per sample from words [first_word, first_word + 3 L) of each sample."""
    w = words.reshape(-1, tables.words_per_sample).astype(np.uint64)
    g = np.zeros(w.shape[0], dtype=np.int64)
    for level in range(tables.levels):
        c = first_word + 3 * level
        u_hi = (w[:, c] << np.uint64(32)) | w[:, c + 1]
        u_lo = w[:, c + 2].astype(np.uint32)
        sl = slice(BASE * level, BASE * (level + 1))
        g += _count_below(u_hi, u_lo, tables.t_hi[sl], tables.t_lo[sl]) << (LOG2_BASE * level)
    return g


def discrete_laplace_noise(tables: GeometricTables, words) -> np.ndarray:
    """int64 noise, one sample per 6 L words."""
    return geometric(tables, words, 0) - geometric(tables, words, 3 * tables.levels)


# ---- k-ary randomized response -----------------------------------------------------------

RR_WORDS_PER_VALUE = 3


def rr_intervals(k: int, epsilon: float):
    """(keep, other): lengths of the keep interval and of each other value's interval in
    [0, 2^96), with other = ceil(2^96 / (e^eps + k - 1)) and keep = 2^96 - (k - 1) other,
    so that keep / other <= e^eps exactly (pure epsilon-DP, no delta)."""
    import mpmath
    mpmath.mp.prec = 256
    two96 = 1 << UNIFORM_BITS
    other = int(mpmath.ceil(mpmath.mpf(two96) / (mpmath.exp(mpmath.mpf(float(epsilon))) + k - 1)))
    keep = two96 - (k - 1) * other
    if keep < other:  # cannot happen for epsilon > 0; guards the invariant
        raise AssertionError("randomized response intervals")
    return keep, other


def randomized_response(codes, k: int, keep: int, other: int, words) -> np.ndarray:
    """Each code kept when U < keep, else the j-th other code, j = (U - keep) // other."""
    w = words.reshape(-1, RR_WORDS_PER_VALUE).astype(object)
    u = (w[:, 0] << 64) | (w[:, 1] << 32) | w[:, 2]  # exact 96-bit Python integers
    codes = np.asarray(codes, dtype=np.int64)
    out = codes.copy()
    moved = u >= keep
    j = np.array([(int(v) - keep) // other for v in u[moved]], dtype=np.int64)
    x = codes[moved]
    out[moved] = np.where(j < x, j, j + 1)
    return out
