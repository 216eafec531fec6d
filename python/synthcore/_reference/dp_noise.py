"""Discrete Laplace noise from ChaCha20 words, in NumPy (mirrors cpp/src/dp_noise.cpp).

Z = G1 - G2 with G1, G2 independent geometrics, P(G = g) = (1 - q) q^g, q = e^(-1/t):
exactly the discrete Laplace distribution P(Z = z) ∝ q^|z|, with no rejection.
Each geometric is G = a + M b (memorylessness): a in [0, M) from one 96-bit uniform
against the thresholds floor(P(a >= k) 2^96), b from one 96-bit uniform against
floor(q^(M j) 2^96). Element i reads words [12 i, 12 i + 12) of the stream: three
words per uniform, in the order a1, b1, a2, b2; a uniform is
w0 * 2^64 + w1 * 2^32 + w2.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORDS_PER_SAMPLE = 12
UNIFORM_BITS = 96
TRUNCATION_BITS = 100  # P(b > J) <= 2^-100
MAX_LOG2_M = 14        # the a-table has at most 2^14 - 1 thresholds
MAX_J = 1 << 16        # the b-table at most 2^16: scale <= MAX_SCALE
MAX_SCALE = (1 << 16) * (1 << 14) / (100 * 0.6931471805599453)


@dataclass(frozen=True)
class GeometricTables:
    scale: float
    m: int                  # M = 2^m
    a_hi: np.ndarray        # uint64: bits 95..32 of floor(P(a >= k) 2^96), k = 1 .. M-1 (decreasing)
    a_lo: np.ndarray        # uint32: bits 31..0
    b_hi: np.ndarray        # uint64, for floor(q^(M j) 2^96), j = 1 .. J
    b_lo: np.ndarray
    tv_per_geometric: float  # total-variation bound of one geometric draw


def geometric_tables(scale: float) -> GeometricTables:
    """Thresholds for P(G = g) = (1 - q) q^g, q = exp(-1/scale), computed with mpmath."""
    import mpmath
    mpmath.mp.prec = 200
    t = mpmath.mpf(float(scale))  # the float scale, exactly
    q = mpmath.exp(-1 / t)
    m = int(min(max(0, int(mpmath.ceil(mpmath.log(8 * t, 2)))), MAX_LOG2_M))
    M = 1 << m
    J = int(mpmath.ceil(TRUNCATION_BITS * mpmath.log(2) / (M / t)))
    if J > MAX_J:
        raise ValueError(f"scale {scale} is larger than the discrete Laplace sampler supports "
                         f"({MAX_SCALE:g})")
    two96 = mpmath.mpf(2) ** UNIFORM_BITS
    powers = [mpmath.mpf(1)]
    for _ in range(M):
        powers.append(powers[-1] * q)  # q^0 .. q^M, 200-bit products
    qM = powers[M]
    a = [int(mpmath.floor((powers[k] - qM) / (1 - qM) * two96)) for k in range(1, M)]
    b, rj = [], mpmath.mpf(1)
    for _ in range(J):
        rj *= qM
        b.append(int(mpmath.floor(rj * two96)))

    def split(values):
        hi = np.array([v >> 32 for v in values], dtype=np.uint64)
        lo = np.array([v & 0xFFFFFFFF for v in values], dtype=np.uint32)
        return hi, lo

    a_hi, a_lo = split(a)
    b_hi, b_lo = split(b)
    # each threshold is low by < 2^-96; the tail beyond J has mass < 2^-100
    tv = float((M - 1 + J) * 2.0 ** -UNIFORM_BITS + 2.0 ** -TRUNCATION_BITS)
    return GeometricTables(float(scale), m, a_hi, a_lo, b_hi, b_lo, tv)


def _uniforms(words, which):
    """The 96-bit uniforms number `which` (0..3) of each sample: (hi 64 bits, lo 32 bits)."""
    w = words.reshape(-1, WORDS_PER_SAMPLE)[:, 3 * which:3 * which + 3].astype(np.uint64)
    return (w[:, 0] << np.uint64(32)) | w[:, 1], w[:, 2].astype(np.uint32)


def _count_below(u_hi, u_lo, t_hi, t_lo):
    """For decreasing thresholds T_1 > T_2 > ...: the number of k with U < T_k."""
    if t_hi.size == 0:
        return np.zeros(u_hi.shape, dtype=np.int64)
    # ascending order for searchsorted; compare on the high 64 bits first
    asc_hi = t_hi[::-1]
    count = t_hi.size - np.searchsorted(asc_hi, u_hi, side="right")  # T_k_hi > U_hi
    ties = np.flatnonzero(np.isin(u_hi, t_hi))
    for i in ties:  # probability ~ size * 2^-64: exact 96-bit comparison, scalar
        u = (int(u_hi[i]) << 32) | int(u_lo[i])
        count[i] = sum(1 for th, tl in zip(t_hi.tolist(), t_lo.tolist())
                       if u < ((th << 32) | tl))
    return count


def geometric_pair(tables: GeometricTables, words, first_uniform):
    """a + M b for the uniform pair (first_uniform, first_uniform + 1) of each sample."""
    a = _count_below(*_uniforms(words, first_uniform), tables.a_hi, tables.a_lo)
    b = _count_below(*_uniforms(words, first_uniform + 1), tables.b_hi, tables.b_lo)
    return a + (b << tables.m)


def discrete_laplace_noise(tables: GeometricTables, words) -> np.ndarray:
    """int64 noise, one sample per 12 words."""
    return geometric_pair(tables, words, 0) - geometric_pair(tables, words, 2)
