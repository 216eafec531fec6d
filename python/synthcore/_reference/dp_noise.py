"""Exact integer DP noise from ChaCha20 words, in NumPy (mirrors cpp/src/dp_noise.cpp).

Every sampler here is an inverse-CDF search: a 95-bit uniform V is compared against a
table of decreasing 95-bit *survival thresholds* floor(P(X >= k) 2^95), k = 1 .. len, and
X = #{k : V < floor(P(X >= k) 2^95)}. P(X >= k) is then within 2^-95 of the exact value,
so one search is within total variation len * 2^-95 of the exact distribution. The
thresholds are computed in exact fixed-point integer arithmetic (Python ints, 256
fractional bits), never in floats.

The tables hold them doubled, T_k = 2 floor(P(X >= k) 2^95) (even 96-bit numbers), and
the search compares the 96-bit number U = 2 V + sign bit: U < T_k exactly when V <
T_k / 2, so the sign bit, U's lowest, never changes a comparison. The search is guided
(Chen and Asau's guide table, made fixed-work): the top bits of U pick a bucket, b = sh
2^m + (U >> sh) with sh = max(bitlength(U) - 1 - m, 0) (a float-like index: 2^m buckets
per octave of U, so linear near U ~ 1 and logarithmic in the tails where geometric and
Gaussian survivals live); a per-bucket table holds the count of thresholds above the
bucket, and a branch-free binary search of exactly W steps finishes inside a window of
2^W entries, W = ceil(log2(largest bucket range + 1)). The table is padded with 2^W
zeros (near-uniform tables, the low digits of a large-scale geometric, use linear
buckets instead: the top bits of U). Every value does the same index arithmetic, one
guide load and W steps, whatever U is.

A noise value is built from *segments* (one search each). Each value reads per = 1 + 2 S
words: word 0 is shared, c (its bit 0 the sign, its bits 31..1 the low 31 bits of every
segment's V), and segment s has its own 64 bits, words 1 + 2 s and 2 + 2 s:

    U_s = (w[1 + 2 s] 2^32 + w[2 + 2 s]) 2^32 + c      (= 2 V_s + sign)
    |Z| = X_0 + [X_0 > 0] * sum_{s >= 1} multiplier_s * X_s
    Z   = -|Z| if c is odd, else |Z|

Sharing c makes the segments' searches dependent only when two or more of them hit a
threshold's top 64 bits exactly: X_s depends on c only if w_s equals the top 64 bits of
one of its e_s thresholds (probability <= e_s 2^-64), so the joint law differs from that
of independent 95-bit uniforms by at most sum_{s < t} e_s e_t 2^-128 in total variation
(given the 64-bit parts, the laws agree unless two segments tie). The sign (bit 0) is
independent of bits 31..1.

Values go in groups of GROUP = 16, word-interleaved: word k of value i = 16 g + j is
stream word (g per + k) 16 + j, so that each keystream block holds one word of sixteen
consecutive values (the CPU loads them as one vector, no gathers).

* Discrete Laplace, P(Z = z) ∝ q^|z|, q = exp(-1/t). Scales up to ~940: one segment,
  the survival of |Z|, P(|Z| >= k) = 2 q^k / (1 + q), cut below 2^-100 (3 words). Larger
  scales: |Z| - 1, given Z != 0 (probability 2q / (1 + q)), is geometric with ratio q,
  written in digits with multipliers 1, 2^9, 2^9 4096, ... (memorylessness: the digits
  are independent): the lowest is a geometric of ratio q truncated to [0, 2^9), the
  middle ones of ratio q^multiplier truncated to [0, 4096), the top one untruncated but
  cut where its survival falls below 2^-100 (a tail of mass <= 2^-100, dropped; it has at
  most 2^16 entries, which sets the number of digits). The head segment X_0 is 0 for
  Z = 0 and 1 + digit 0 otherwise, so the zero test and the lowest digit share one
  uniform; higher digits count only when X_0 > 0. Two segments (5 words) up to scale
  ~4.8e5; the small head (513 entries) keeps both searches' guides in L1 up to ~1e5.
* Discrete Gaussian, P(Z = z) ∝ exp(-z^2 / (2 sigma^2)) (Canonne-Kamath-Steinke): one
  segment, the survival of |Z| (P(|Z| >= k) = 2 sum_{z >= k} p_z / S), cut at the k
  where it falls below 2^-100.

Each table's total-variation bound (sum_s e_s 2^-95, plus the dropped tail, plus the
shared-word term above), computed exactly and rounded up, is returned with it;
mechanisms.py charges it as delta.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

UNIFORM_BITS = 96      # randomized response and permute-and-flip: 96-bit uniforms
THRESHOLD_BITS = 95    # noise tables: 95-bit survival thresholds (stored doubled)
TAIL_BITS = 100        # tails of mass <= 2^-100 are cut
DIGIT_BITS = 12        # discrete Laplace digits are base 2^12 ...
HEAD_DIGIT_BITS = 9    # ... but the lowest, which shares the head table, is base 2^9
FRACTION_BITS = 256    # fixed-point precision of the threshold computation
MAX_LAPLACE_SCALE = 2.0 ** 52
MAX_GAUSSIAN_SIGMA = 1.0e5
MAX_TABLE_ENTRIES = 1 << 21
SINGLE_TABLE_ENTRIES = 1 << 16   # discrete Laplace scales up to ~940 use one table over |Z|
GROUP = 16                       # values per word-interleaved group (see the module docstring)


@dataclass(frozen=True)
class NoiseTables:
    """Survival-threshold tables of one sampler (see the module docstring)."""
    kind: str                  # "discrete_laplace" or "discrete_gaussian"
    scale: float               # t for the Laplace, sigma for the Gaussian
    multipliers: np.ndarray    # int64 [segments]
    starts: np.ndarray         # int64 [segments]: start of each segment in t_hi / t_lo
    window_log2: np.ndarray    # int32 [segments]: W, the binary-search steps
    guide_bits: np.ndarray     # int32 [segments]: m (> 0: 2^m buckets per octave of U;
                               # < 0: 2^-m linear buckets, the top -m bits of U)
    guide_starts: np.ndarray   # int64 [segments]: start of each segment's buckets in guide
    guide: np.ndarray          # int32: thresholds above each bucket (the search's start)
    t_hi: np.ndarray           # uint64: bits 95..32 of the thresholds (zero padded)
    t_lo: np.ndarray           # uint32: bits 31..0
    tv_bound: float            # total variation from the exact distribution, per value

    @property
    def segments(self) -> int:
        return int(self.multipliers.size)

    @property
    def words_per_value(self) -> int:
        return 1 + 2 * self.segments

    def words_for(self, n: int) -> int:
        """Keystream words that n values take: whole groups of GROUP values."""
        return -(-int(n) // GROUP) * GROUP * self.words_per_value


def _fixed(x) -> int:
    """floor(x 2^FRACTION_BITS) for an mpmath number x in [0, 1]."""
    import mpmath
    return int(mpmath.floor(x * mpmath.mpf(2) ** FRACTION_BITS))


def _fixed_powers(start: int, ratio: int, count: int) -> list:
    """[start, start r, start r^2, ...] (count terms) in FRACTION_BITS fixed point."""
    out, p = [], start
    for _ in range(count):
        out.append(p)
        p = p * ratio >> FRACTION_BITS
    return out


def _split96(values):
    """(hi uint64, lo uint32): bits 95..32 and 31..0 of 96-bit integers."""
    hi = np.array([v >> 32 for v in values], dtype=np.uint64)
    lo = np.array([v & 0xFFFFFFFF for v in values], dtype=np.uint32)
    return hi, lo


def _pack(survivals, one: int):
    """Thresholds 2 floor(s 2^95) (95-bit, doubled) of fixed-point survivals s / one, cut
    at the first 0. Returns (hi uint64, lo uint32)."""
    values = []
    for s in survivals:
        v = (s << THRESHOLD_BITS) // one
        if v == 0:
            break
        values.append(2 * min(v, (1 << THRESHOLD_BITS) - 1))
    return _split96(values)


def noise_tv_bound(entries) -> float:
    """Total variation of a sampler with tables of ``entries`` thresholds per segment from
    the exact law: each 95-bit floor moves a survival by < 2^-95, the cut tail is <=
    2^-100, and the shared low word costs sum_{s < t} e_s e_t 2^-128 (module docstring).
    Computed exactly, rounded up to a float."""
    e = [int(v) for v in entries]
    exact = Fraction(sum(e), 1 << THRESHOLD_BITS) + Fraction(1, 1 << TAIL_BITS)
    exact += Fraction(sum(e[i] * e[j] for i in range(len(e)) for j in range(i + 1, len(e))),
                      1 << 128)
    tv = float(exact)
    return tv if Fraction(tv) >= exact else math.nextafter(tv, math.inf)


MAX_GUIDE_BITS = 10


def bit_length_minus_one(u):
    """floor(log2(u)) of uint64 values (0 for u = 0), exactly, in integer steps."""
    o = np.zeros(u.shape, dtype=np.int64)
    v = u.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        t = v >> np.uint64(shift)
        nz = t != 0
        v = np.where(nz, t, v)
        o += nz * shift
    return o


def bucket_index(u_hi, u_lo, m: int):
    """b = sh 2^m + (U >> sh), sh = max(floor(log2 U) - m, 0), for the 96-bit U =
    u_hi 2^32 + u_lo: 2^m buckets per octave, monotone in U; b < (97 - m) 2^m."""
    u_hi = np.asarray(u_hi, dtype=np.uint64)
    u_lo = np.asarray(u_lo, dtype=np.uint64)
    o = np.where(u_hi != 0, 32 + bit_length_minus_one(u_hi), bit_length_minus_one(u_lo))
    sh = np.maximum(o - m, 0)
    high = u_hi >> np.maximum(sh - 32, 0).astype(np.uint64)
    low = (u_hi << (32 - np.minimum(sh, 32)).astype(np.uint64)) | (u_lo >> np.minimum(sh, 31).astype(np.uint64))
    top = np.where(sh >= 32, high, low)
    return (sh << m) + top.astype(np.int64)


def linear_bucket_index(u_hi, u_lo, m: int):
    """The top m bits of U: linear buckets, for near-uniform tables."""
    return (np.asarray(u_hi, dtype=np.uint64) >> np.uint64(64 - m)).astype(np.int64)


def guide_buckets(m: int) -> int:
    return (97 - m) << m if m > 0 else 1 << -m


def guide_index(u_hi, u_lo, m: int):
    return bucket_index(u_hi, u_lo, m) if m > 0 else linear_bucket_index(u_hi, u_lo, -m)


def _guide(hi, lo, m: int):
    """(guide, W) for decreasing thresholds: guide[b] = #{k : bucket(T_k) > b}, W = steps
    covering the largest #{k : bucket(T_k) == b} + 1 (the bucket of a threshold is the
    bucket of U = T_k; every U in bucket b then has exactly guide[b] thresholds above
    its bucket, and the thresholds inside it are searched)."""
    f = guide_index(hi, lo, m) if hi.size else np.zeros(0, np.int64)
    per_bucket = np.bincount(f, minlength=guide_buckets(m))
    above = np.concatenate([np.cumsum(per_bucket[::-1])[::-1][1:], [0]]).astype(np.int32)
    # a threshold equal to its bucket's lowest U is below or equal to every U of the
    # bucket, so it never counts there: only thresholds with nonzero low bits are searched
    if m > 0:
        sh = np.maximum(f >> m, 1) - 1 if hi.size else f
    else:
        sh = np.full(f.shape, 96 + m, dtype=np.int64)
    lo64, hi64 = lo.astype(np.uint64), hi.astype(np.uint64)
    low_mask_lo = np.where(sh >= 32, np.uint64(0xFFFFFFFF),
                           (np.uint64(1) << np.minimum(sh, 32).astype(np.uint64)) - np.uint64(1))
    low_mask_hi = np.where(sh > 32, (np.uint64(1) << np.maximum(sh - 32, 0).astype(np.uint64))
                           - np.uint64(1), np.uint64(0))
    inside = ((lo64 & low_mask_lo) != 0) | ((hi64 & low_mask_hi) != 0)
    searched = np.bincount(f[inside], minlength=guide_buckets(m)) if hi.size else per_bucket
    widest = int(searched.max()) if hi.size else 0
    return above, max(1, int(widest).bit_length())


def _segment(multiplier, hi, lo):
    """A segment with the guide size that keeps the search shortest (few loads)."""
    best = None
    for m in list(range(2, MAX_GUIDE_BITS + 1, 2)) + [-8, -10, -12, -14]:
        guide, w = _guide(hi, lo, m)
        cost = w + 1e-5 * guide.size   # prefer small guides when the steps tie
        if best is None or cost < best[0]:
            best = (cost, m, guide, w)
    _, m, guide, w = best
    pad = 1 << w
    hi = np.concatenate([hi, np.zeros(pad, np.uint64)])
    lo = np.concatenate([lo, np.zeros(pad, np.uint32)])
    return (multiplier, hi, lo, w, m, guide, int(hi.size - pad))


def _assemble(kind, scale, segments, tv):
    multipliers = np.array([sg[0] for sg in segments], dtype=np.int64)
    starts = np.cumsum([0] + [sg[1].size for sg in segments[:-1]]).astype(np.int64)
    guide_starts = np.cumsum([0] + [sg[5].size for sg in segments[:-1]]).astype(np.int64)
    return NoiseTables(kind, float(scale), multipliers, starts,
                       np.array([sg[3] for sg in segments], dtype=np.int32),
                       np.array([sg[4] for sg in segments], dtype=np.int32), guide_starts,
                       np.concatenate([sg[5] for sg in segments]),
                       np.concatenate([sg[1] for sg in segments]),
                       np.concatenate([sg[2] for sg in segments]), float(tv))


def laplace_tables(scale: float) -> NoiseTables:
    """Tables for P(Z = z) ∝ exp(-|z| / scale), computed exactly from the float ``scale``."""
    import mpmath
    scale = float(scale)
    if not (0 < scale <= MAX_LAPLACE_SCALE):
        raise ValueError(f"discrete Laplace scale must be in (0, {MAX_LAPLACE_SCALE:g}], "
                         f"got {scale}")
    mpmath.mp.prec = FRACTION_BITS + 64
    one = 1 << FRACTION_BITS
    t = mpmath.mpf(scale)
    q = mpmath.exp(-1 / t)
    need = TAIL_BITS * mpmath.log(2) * t   # entries until the survival is <= 2^-100
    if need + 2 <= SINGLE_TABLE_ENTRIES:
        # small scales: one table over |Z|, P(|Z| >= k) = 2 q^k / (1 + q) for k >= 1
        survivals = _fixed_powers(_fixed(2 * q / (1 + q)), _fixed(q), int(need) + 2)
        hi, lo = _pack(survivals, one)
        return _assemble("discrete_laplace", scale, [_segment(1, hi, lo)],
                         noise_tv_bound([hi.size]))
    parts = []
    head_base, base = 1 << HEAD_DIGIT_BITS, 1 << DIGIT_BITS
    # multipliers 1, 2^9, 2^9 4096, ...: the head digit, then base-4096 digits, the top one
    # untruncated, with count = need / multiplier + 2 <= SINGLE_TABLE_ENTRIES entries
    # (its ratio r = q^multiplier has r^count < 2^-100: the tail beyond it is cut)
    multipliers = [1, head_base]
    while need / multipliers[-1] + 2 > SINGLE_TABLE_ENTRIES:
        multipliers.append(multipliers[-1] * base)
    entries = []
    nonzero = _fixed(2 * q / (1 + q))            # P(Z != 0)
    for level, mult in enumerate(multipliers):
        ratio = _fixed(mpmath.exp(-mpmath.mpf(mult) / t))
        if level == len(multipliers) - 1:   # P(D >= k) = r^k
            survivals = _fixed_powers(ratio, ratio, int(need / mult) + 2)
        else:  # truncated to [0, d): P(D >= k) = (r^k - r^d) / (1 - r^d)
            digit = head_base if level == 0 else base
            powers = _fixed_powers(one, ratio, digit + 1)
            r_top = powers[digit]
            survivals = [((p - r_top) << FRACTION_BITS) // (one - r_top) for p in powers[1:digit]]
        if level == 0:
            # the head: X = 0 for Z = 0, else 1 + digit 0, so P(X >= j) = P(Z != 0)
            # P(d0 >= j - 1); the zero test and the lowest digit share one uniform
            survivals = [nonzero] + [nonzero * s_k >> FRACTION_BITS for s_k in survivals]
        hi, lo = _pack(survivals, one)
        entries.append(hi.size)
        parts.append(_segment(mult, hi, lo))
    return _assemble("discrete_laplace", scale, parts, noise_tv_bound(entries))


def _gaussian_cut(sigma) -> float:
    """sigma sqrt(2 (TAIL_BITS + 8) ln 2): beyond it the one-sided tail is < 2^-100 of S."""
    return math.sqrt(2 * (TAIL_BITS + 8) * math.log(2)) * float(sigma)


def gaussian_tv_bound(sigma: float) -> float:
    """An upper bound on ``gaussian_tables(sigma).tv_bound``, known before the table is
    built (it grows with sigma): for calibrating delta."""
    return noise_tv_bound([math.ceil(_gaussian_cut(sigma)) + 4])


def gaussian_tables(sigma: float) -> NoiseTables:
    """Tables for P(Z = z) ∝ exp(-z^2 / (2 sigma^2)), computed exactly from the float sigma.

    p_z = exp(-z^2 / (2 sigma^2)) by the recurrence p_{z+1} = p_z a_z, a_z =
    exp(-(2z + 1) / (2 sigma^2)), a_{z+1} = a_z exp(-1 / sigma^2), in 256-bit fixed point
    (the accumulated rounding, < entries * 2^-250, is far below the 2^-95 resolution).
    """
    import mpmath
    sigma = float(sigma)
    if not (0 < sigma <= MAX_GAUSSIAN_SIGMA):
        raise ValueError(f"discrete Gaussian sigma must be in (0, {MAX_GAUSSIAN_SIGMA:g}], "
                         f"got {sigma}")
    mpmath.mp.prec = FRACTION_BITS + 64
    one = 1 << FRACTION_BITS
    s2 = mpmath.mpf(sigma) ** 2
    # beyond z_max = sigma sqrt(2 (TAIL_BITS + 8) ln 2) the one-sided tail is < 2^-100 of S
    z_max = int(mpmath.ceil(mpmath.sqrt(2 * (TAIL_BITS + 8) * mpmath.log(2)) * sigma)) + 2
    if z_max > MAX_TABLE_ENTRIES:
        raise ValueError(f"sigma {sigma:g} needs a table of {z_max} entries")
    a = _fixed(mpmath.exp(-1 / (2 * s2)))
    r = _fixed(mpmath.exp(-1 / s2))
    p = [one]
    for _ in range(z_max):
        p.append(p[-1] * a >> FRACTION_BITS)
        a = a * r >> FRACTION_BITS
    # suffix sums: tail[k] = sum_{z >= k} p_z
    tail = [0] * (len(p) + 1)
    acc = 0
    for z in range(len(p) - 1, -1, -1):
        acc += p[z]
        tail[z] = acc
    total = 2 * tail[0] - p[0]             # S = p_0 + 2 sum_{z >= 1} p_z (up to the cut)
    survivals = [2 * tail[k] for k in range(1, len(p))]
    hi, lo = _pack(survivals, total)
    # the cut tail beyond z_max is < 2^-100; the table's floors cost entries * 2^-95
    return _assemble("discrete_gaussian", sigma, [_segment(1, hi, lo)],
                     noise_tv_bound([hi.size]))


def survival_search(u_hi, u_lo, t_hi, t_lo, guide, m: int, w: int) -> np.ndarray:
    """#{k : U < T_k} for decreasing thresholds: guide bucket, then W branch-free steps."""
    pos = guide[guide_index(u_hi, u_lo, m)].astype(np.int64)
    step = 1 << (w - 1)
    while step:
        idx = pos + (step - 1)
        th = t_hi[idx]
        above = (th > u_hi) | ((th == u_hi) & (t_lo[idx] > u_lo))
        pos += np.int64(step) * above
        step >>= 1
    return pos


def noise(tables: NoiseTables, words, n: int) -> np.ndarray:
    """n int64 noise values from ``tables.words_for(n)`` words (groups of GROUP values,
    word-interleaved)."""
    per = tables.words_per_value
    w = np.asarray(words, dtype=np.uint32).reshape(-1, per, GROUP).transpose(0, 2, 1)
    w = w.reshape(-1, per)[:n].astype(np.uint64)
    head = None
    higher = np.zeros(w.shape[0], dtype=np.int64)
    u_lo = w[:, 0].astype(np.uint32)   # shared: the sign and every V's low 31 bits
    for s in range(tables.segments):
        c = 1 + 2 * s
        u_hi = (w[:, c] << np.uint64(32)) | w[:, c + 1]
        start = int(tables.starts[s])
        m = int(tables.guide_bits[s])
        g0 = int(tables.guide_starts[s])
        guide = tables.guide[g0:g0 + guide_buckets(m)]
        x = survival_search(u_hi, u_lo, tables.t_hi[start:], tables.t_lo[start:], guide, m,
                            int(tables.window_log2[s]))
        if s == 0:
            head = x
        else:
            higher += tables.multipliers[s] * x
    magnitude = head + (head > 0) * higher
    negative = (w[:, 0] & np.uint64(1)).astype(bool)
    return np.where(negative, -magnitude, magnitude)


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


# ---- permute-and-flip (report noisy max) ---------------------------------------------------

@dataclass(frozen=True)
class FlipTables:
    """Coins Bernoulli(exp(-lam d)) for integer gaps d = max - score in [0, max_gap]:
    exp(-lam d) = prod_l exp(-lam d_l 2^(12 l)) over the base-2^12 digits d_l of d, so the
    coin is the AND of one independent coin per digit, each a 96-bit uniform against
    floor(exp(-lam d_l 2^(12 l)) 2^96) (capped at 2^96 - 1)."""
    lam: float
    max_gap: int
    levels: int
    t_hi: np.ndarray   # uint64 [levels * 4096]
    t_lo: np.ndarray   # uint32 [levels * 4096]
    tv_per_coin: float

    @property
    def words_per_candidate(self) -> int:
        return 3 + 3 * self.levels   # a 96-bit priority, then one uniform per level


def flip_tables(lam: float, max_gap: int) -> FlipTables:
    import mpmath
    mpmath.mp.prec = FRACTION_BITS + 64
    base = 1 << DIGIT_BITS
    levels = 1
    while base ** levels <= max_gap:
        levels += 1
    l = mpmath.mpf(float(lam))
    cap = (1 << UNIFORM_BITS) - 1
    values = []
    for level in range(levels):
        powers = _fixed_powers(1 << FRACTION_BITS, _fixed(mpmath.exp(-l * base ** level)), base)
        values += [min(cap, p >> (FRACTION_BITS - UNIFORM_BITS)) for p in powers]
    hi, lo = _split96(values)
    tv = (levels + 1) * 2.0 ** -UNIFORM_BITS + 2.0 ** -TAIL_BITS
    return FlipTables(float(lam), int(max_gap), levels, hi, lo, tv)


def permute_and_flip(scores, tables: FlipTables, words, xp=np):
    """Row-wise permute-and-flip on int64 scores (m, k) with words [m * k * per]: the
    accepted candidate with the smallest 96-bit priority wins (ties: lowest index; if no
    coin succeeds, probability < k 2^-96, the first maximum)."""
    m, k = scores.shape
    per = tables.words_per_candidate
    w = words.reshape(m, k, per).astype(xp.uint64)
    gap = scores.max(axis=1, keepdims=True) - scores
    accepted = gap <= tables.max_gap
    d = xp.minimum(gap, tables.max_gap)
    t_hi, t_lo = xp.asarray(tables.t_hi), xp.asarray(tables.t_lo)
    mask = (1 << DIGIT_BITS) - 1
    for level in range(tables.levels):
        idx = (level << DIGIT_BITS) + ((d >> (DIGIT_BITS * level)) & mask)
        u_hi = (w[:, :, 3 + 3 * level] << xp.uint64(32)) | w[:, :, 4 + 3 * level]
        u_lo = w[:, :, 5 + 3 * level]
        th, tl = t_hi[idx], t_lo[idx].astype(xp.uint64)
        accepted &= (u_hi < th) | ((u_hi == th) & (u_lo < tl))
    p_hi = (w[:, :, 0] << xp.uint64(32)) | w[:, :, 1]
    p_lo = w[:, :, 2]
    top = xp.uint64(0xFFFFFFFFFFFFFFFF)
    p_hi = xp.where(accepted, p_hi, top)
    best_hi = p_hi.min(axis=1, keepdims=True)
    tied = accepted & (p_hi == best_hi)
    p_lo = xp.where(tied, p_lo, top)
    best_lo = p_lo.min(axis=1, keepdims=True)
    winner = tied & (p_lo == best_lo)
    chosen = xp.argmax(winner, axis=1)
    none = ~winner.any(axis=1)
    return xp.where(none, xp.argmax(scores, axis=1), chosen).astype(xp.int64)
