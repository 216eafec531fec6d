"""The discrete Laplace mechanism and randomized response: exact PMF, known-answer tables,
backends, privacy loss, accounting, bad input."""
import math

import numpy as np
import pytest
from scipy import stats

from synthcore import dp
from synthcore._reference import dp_noise

SCALES = [0.5, 3.7, 50.0, 2000.0, 3e5]   # one table (<= ~940), then head + digits


def _pmf(z, scale):
    q = math.exp(-1.0 / scale)
    return (1 - q) / (1 + q) * q ** np.abs(z)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_noise_follows_the_exact_pmf(scale, backend):
    n = 1_000_000
    rel = dp.discrete_laplace(np.zeros(n, dtype=np.int64), scale=scale,
                              generator=dp.insecure_generator_for_tests(11), backend=backend)
    z = rel.values
    # chi-square over values with expected count >= 20, plus the two tails pooled
    lim = int(scale * math.log(n * (1 - math.exp(-1 / scale)) / 20)) if scale > 0.3 else 3
    lim = max(lim, 1)
    vals = np.arange(-lim, lim + 1)
    counts = np.bincount(np.clip(z, -lim - 1, lim + 1) + lim + 1, minlength=2 * lim + 3)
    expected = np.concatenate([[_pmf(np.arange(lim + 1, 200 * int(scale) + 50), scale).sum()],
                               _pmf(vals, scale),
                               [_pmf(np.arange(lim + 1, 200 * int(scale) + 50), scale).sum()]])
    expected = expected / expected.sum() * n
    keep = expected >= 5
    chi = ((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert stats.chi2.sf(chi, keep.sum() - 1) > 1e-6
    q = math.exp(-1 / scale)
    assert abs(z.var() / (2 * q / (1 - q) ** 2) - 1) < 0.02


def _laplace_sf(k, q):
    """P(Z >= k) of the discrete Laplace for integer k (float64: enough for chi-square)."""
    k = np.asarray(k, dtype=np.float64)
    return np.where(k >= 1, q ** np.maximum(k, 1) / (1 + q), 1 - q ** np.maximum(1 - k, 1) / (1 + q))


@pytest.mark.parametrize("scale", [2000.0, 3e5, 1e6])   # head + top digit; head + 2 digits
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_large_scales_follow_the_exact_law_in_bins(scale, backend):
    # the value-by-value chi-square above pools almost everything at these scales: here
    # 1M draws in ~200 bins at quantiles of the exact law, and the head digit
    # (|Z| - 1) mod 512 given Z != 0, exactly a geometric of ratio q truncated to [0, 512)
    n = 1_000_000
    z = dp.discrete_laplace(np.zeros(n, np.int64), scale=scale,
                            generator=dp.insecure_generator_for_tests(12), backend=backend).values
    q = math.exp(-1 / scale)
    p = np.linspace(0.0025, 0.9975, 199)
    quantiles = np.where(p < 0.5, scale * np.log(2 * p), -scale * np.log(2 * (1 - p)))
    edges = np.unique(np.round(quantiles).astype(np.int64))
    probs = -np.diff(np.concatenate([[1.0], _laplace_sf(edges, q), [0.0]]))
    counts = np.bincount(np.searchsorted(edges, z, side="right"), minlength=edges.size + 1)
    chi = ((counts - n * probs) ** 2 / (n * probs)).sum()
    assert stats.chi2.sf(chi, edges.size) > 1e-6
    d = (np.abs(z[z != 0]) - 1) % 512
    pd = q ** np.arange(512) * (1 - q) / (1 - q ** 512)
    counts = np.bincount(d, minlength=512)
    chi = ((counts - d.size * pd) ** 2 / (d.size * pd)).sum()
    assert stats.chi2.sf(chi, 511) > 1e-6


@pytest.mark.parametrize("scale", [0.7, 5.0, 50.0, 2000.0, 1e6])
def test_cpu_and_numpy_give_the_same_noise(scale):
    x = np.arange(-500, 100_003 - 500, dtype=np.int64)
    a = dp.discrete_laplace(x, scale=scale, generator=dp.insecure_generator_for_tests(5),
                            backend="numpy")
    b = dp.discrete_laplace(x, scale=scale, generator=dp.insecure_generator_for_tests(5),
                            backend="cpu")
    np.testing.assert_array_equal(a.values, b.values)
    assert a.insecure_generator and b.insecure_generator


@pytest.mark.parametrize("n", [1, 15, 17, 1000, 4111])
@pytest.mark.parametrize("scale", [2.0, 3e5])
def test_cpu_and_numpy_agree_on_partial_groups(n, scale):
    # n < 4096 takes the portable kernel, larger n the vector one; values go in groups of
    # 16, and a partial last group still uses (and reserves) the whole group's words
    gens = [dp.insecure_generator_for_tests(9) for _ in range(2)]
    x = np.arange(n, dtype=np.int64)
    out = [dp.discrete_laplace(x, scale=scale, generator=g, backend=b).values
           for g, b in zip(gens, ["numpy", "cpu"])]
    np.testing.assert_array_equal(out[0], out[1])
    per = dp_noise.laplace_tables(scale).words_per_value
    assert gens[0]._next == gens[1]._next == -(-n // 16) * 16 * per


@pytest.mark.parametrize("offset", [0, 1, 3])
def test_cpu_large_output_matches_numpy_at_any_alignment(offset):
    # outputs of >= 2^17 values take streaming stores after a peel to a 64-byte boundary;
    # out shifted by 1 or 3 elements, and out aliasing x, give the same integers
    from synthcore import _backend
    n = (1 << 17) + 37
    tb = dp_noise.laplace_tables(2000.0)
    gen = dp.insecure_generator_for_tests(21)
    first = gen._reserve(tb.words_for(n))
    words = _stream_words(gen, first, tb.words_for(n))
    x = np.arange(n, dtype=np.int64) - 7
    want = x + dp_noise.noise(tb, words, n)
    buf = np.zeros(n + offset, np.int64)
    out = buf[offset:]
    args = (gen._key, gen._stream, first, tb.multipliers, tb.starts, tb.window_log2,
            tb.guide_bits, tb.guide_starts, tb.guide, tb.t_hi, tb.t_lo)
    _backend.core_module().integer_noise(*args, x, out, 2)
    np.testing.assert_array_equal(out, want)
    out[:] = x
    _backend.core_module().integer_noise(*args, out, out, 1)
    np.testing.assert_array_equal(out, want)


def _stream_words(gen, first, count):
    from synthcore._reference import secure_random
    return secure_random.stream_words(gen._key, gen._stream, first, count)


def test_values_are_word_interleaved_in_groups_of_16():
    # the definition: word k of value 16 g + j is stream word (g per + k) 16 + j
    tb = dp_noise.laplace_tables(5.0)
    per = tb.words_per_value
    words = np.random.default_rng(3).integers(0, 2**32, size=2 * 16 * per, dtype=np.uint32)
    z = dp_noise.noise(tb, words, 32)
    for i in (0, 5, 16, 31):
        g, j = divmod(i, 16)
        own = words[[(g * per + k) * 16 + j for k in range(per)]]
        single = np.zeros(16 * per, np.uint32)
        single[np.arange(per) * 16] = own
        assert dp_noise.noise(tb, single, 1)[0] == z[i]


def test_empirical_privacy_loss_within_epsilon():
    # Neighbouring counts 0 and 1 (sensitivity 1); estimate P(output in S) for the
    # events S = {y <= c} and check max |log ratio| <= epsilon (with a statistical margin).
    eps = 0.5
    n = 1_000_000
    gen = dp.insecure_generator_for_tests(2024)
    y0 = dp.discrete_laplace(np.zeros(n, np.int64), epsilon=eps, generator=gen,
                             backend="cpu").values
    y1 = dp.discrete_laplace(np.ones(n, np.int64), epsilon=eps, generator=gen,
                             backend="cpu").values
    worst = 0.0
    for c in range(-8, 9):
        p0, p1 = np.mean(y0 <= c), np.mean(y1 <= c)
        if min(p0, p1) * n > 2000:
            worst = max(worst, abs(math.log(p0 / p1)))
    assert worst <= eps * 1.05
    assert worst >= eps * 0.8  # the mechanism is not wildly over-noised either


def test_accountant_is_charged_before_noise_and_refuses_overspend():
    acct = dp.Accountant(epsilon=1.0, delta=1e-9)
    gen = dp.insecure_generator_for_tests(1)
    rel = dp.discrete_laplace(np.zeros(1000, np.int64), epsilon=0.6, accountant=acct,
                              generator=gen, name="first")
    assert rel.receipt is not None and acct.spent().epsilon >= 0.6
    assert 0 < rel.delta < 1e-15
    before = gen._next
    with pytest.raises(dp.BudgetExceededError):
        dp.discrete_laplace(np.zeros(1000, np.int64), epsilon=0.6, accountant=acct,
                            generator=gen, name="second")
    assert gen._next == before  # no noise was drawn for the refused release
    assert [e.name for e in acct.ledger] == ["first"]


def test_cost_and_scale_reported():
    rel = dp.discrete_laplace(np.zeros(10, np.int32), epsilon=0.25, sensitivity=2)
    assert rel.scale >= 8.0 and rel.epsilon == 0.25 and rel.values.dtype == np.int64
    rel = dp.discrete_laplace(np.zeros(10, np.int64), scale=4.0)
    assert rel.epsilon >= 0.25 and not rel.insecure_generator


@pytest.mark.parametrize("scale", [0.2, 1.0, 123.0, 5e5, 1e9, 2.0**40])
def test_laplace_tables_are_exact_known_answers(scale):
    """Every threshold is 2 floor(P 2^95) of the exact survival, recomputed here directly
    with mpmath (independent of the fixed-point recurrence in the reference)."""
    import mpmath
    mpmath.mp.prec = 400
    tb = dp_noise.laplace_tables(scale)
    assert tb.tv_bound < 2**-70
    q = mpmath.exp(-1 / mpmath.mpf(scale))
    full = [(int(h) << 32) | int(l) for h, l in zip(tb.t_hi, tb.t_lo)]
    ends = list(tb.starts[1:]) + [len(full)]
    for s in range(tb.segments):
        seg = full[int(tb.starts[s]):int(ends[s])]
        nz = [v for v in seg if v]
        assert all(a >= b for a, b in zip(nz, nz[1:])) and seg[len(nz):] == [0] * (len(seg) - len(nz))
        assert len(seg) - len(nz) >= 1 << int(tb.window_log2[s])   # padding for the window
    assert all(v % 2 == 0 for v in full)   # doubled 95-bit thresholds: the sign bit is free
    def floor96(p):   # the stored threshold 2 floor(p 2^95)
        return 2 * int(mpmath.floor(p * mpmath.mpf(2) ** 95))
    if tb.segments == 1:   # one table over |Z|: P(|Z| >= k) = 2 q^k / (1 + q)
        for k in (1, 2, 7, len([v for v in full if v])):
            assert abs(full[k - 1] - floor96(2 * q ** k / (1 + q))) <= 2
    else:   # the head: P(X >= 1) = P(Z != 0), P(X >= j) = P(Z != 0) P(d0 >= j - 1)
        nonzero = 2 * q / (1 + q)
        assert abs(full[0] - floor96(nonzero)) <= 2
        assert list(tb.multipliers) == [512 * 4096 ** (l - 1) if l else 1
                                        for l in range(tb.segments)]
        r = q  # level 0 digit, truncated to [0, 512)
        for j in (2, 3, 101, 512):
            exact = nonzero * (r ** (j - 1) - r ** 512) / (1 - r ** 512)
            if exact * mpmath.mpf(2) ** 96 >= 1:
                assert abs(full[j - 1] - floor96(exact)) <= 2
        r1 = q ** 512   # level 1 digit
        start = int(tb.starts[1])
        for k in (1, 2, 50):
            top = tb.segments == 2
            exact = r1 ** k if top else (r1 ** k - r1 ** 4096) / (1 - r1 ** 4096)
            if exact * mpmath.mpf(2) ** 96 >= 1:
                assert abs(full[start + k - 1] - floor96(exact)) <= 2


@pytest.mark.parametrize("scale", [3.0, 2000.0, 5e5])
def test_tv_bound_is_the_exact_sum(scale):
    # sum_s e_s 2^-95 (floors) + 2^-100 (cut tail) + sum_{s<t} e_s e_t 2^-128 (shared word),
    # rounded up, never down
    from fractions import Fraction
    tb = dp_noise.laplace_tables(scale)
    ends = list(tb.starts[1:]) + [tb.t_hi.size]
    e = [int(np.count_nonzero((tb.t_hi[a:b] != 0) | (tb.t_lo[a:b] != 0)))
         for a, b in zip(tb.starts, ends)]
    exact = Fraction(sum(e), 2**95) + Fraction(1, 2**100) + Fraction(
        sum(e[i] * e[j] for i in range(len(e)) for j in range(i + 1, len(e))), 2**128)
    assert Fraction(tb.tv_bound) >= exact
    assert Fraction(tb.tv_bound) <= exact * (1 + Fraction(1, 2**50))
    assert tb.words_per_value == 1 + 2 * tb.segments


def test_shared_word_decides_a_comparison_only_on_a_top_64_bit_tie():
    # U = (64 own bits) 2^32 + c against an even threshold T: c's bit 0 (the sign) never
    # matters, c's other bits only when the own bits equal T's top 64 bits
    tb = dp_noise.laplace_tables(2000.0)
    s1 = int(tb.starts[1])
    h, l = int(tb.t_hi[s1 + 2]), int(tb.t_lo[s1 + 2])
    m, w = int(tb.guide_bits[1]), int(tb.window_log2[1])
    g0 = int(tb.guide_starts[1])
    guide = tb.guide[g0:g0 + dp_noise.guide_buckets(m)]
    def x(u_hi, c):
        return int(dp_noise.survival_search(np.array([u_hi], np.uint64), np.array([c], np.uint32),
                                            tb.t_hi[s1:], tb.t_lo[s1:], guide, m, w)[0])
    assert x(h, l - 2) == x(h, l - 1) == 3 and x(h, l) == x(h, l + 1) == 2
    assert x(h - 1, 0xFFFFFFFF) == 3 and x(h + 1, 0) == 2


@pytest.mark.parametrize("sigma", [0.3, 2.5, 40.0, 1000.0])
def test_gaussian_tables_are_exact_known_answers(sigma):
    import mpmath
    mpmath.mp.prec = 400
    tb = dp_noise.gaussian_tables(sigma)
    full = [(int(h) << 32) | int(l) for h, l in zip(tb.t_hi, tb.t_lo)]
    s2 = 2 * mpmath.mpf(sigma) ** 2
    zmax = int(14 * sigma) + 10
    terms = [mpmath.exp(-mpmath.mpf(z) ** 2 / s2) for z in range(zmax + 1)]
    total = terms[0] + 2 * mpmath.fsum(terms[1:])
    for k in sorted({1, 2, max(1, int(sigma)), int(3 * sigma) + 1, int(8 * sigma) + 1}):
        exact = 2 * mpmath.fsum(terms[k:]) / total
        assert abs(full[k - 1] - 2 * int(mpmath.floor(exact * mpmath.mpf(2) ** 95))) <= 2
    assert tb.tv_bound < 2**-75
    # the bound known before building, used to calibrate delta, really is one
    assert tb.tv_bound <= dp_noise.gaussian_tv_bound(sigma)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(x=np.zeros(3), epsilon=1.0), TypeError, "integer array"),
    (dict(x=np.zeros(3, np.int64)), ValueError, "exactly one of epsilon and scale"),
    (dict(x=np.zeros(3, np.int64), epsilon=1.0, scale=1.0), ValueError, "exactly one"),
    (dict(x=np.zeros(3, np.int64), epsilon=0.0), ValueError, "epsilon must be positive"),
    (dict(x=np.zeros(3, np.int64), epsilon=float("nan")), ValueError, "epsilon"),
    (dict(x=np.zeros(3, np.int64), epsilon=1.0, sensitivity=-1), ValueError, "sensitivity"),
    (dict(x=np.zeros(3, np.int64), scale=1e17), ValueError, "exceeds this sampler's limit"),
    (dict(x=np.array([2**63 - 1]), epsilon=1.0), ValueError, "overflow"),
    (dict(x=np.zeros(3, np.int64), epsilon=1.0, generator=np.random.default_rng()),
     TypeError, "SecureGenerator"),
])
def test_bad_arguments(kwargs, exc, match):
    x = kwargs.pop("x")
    with pytest.raises(exc, match=match):
        dp.discrete_laplace(x, **kwargs)


# ---- k-ary randomized response ------------------------------------------------------------

@pytest.mark.parametrize("k,eps", [(2, 0.1), (5, 1.0), (37, 3.0), (1000, 8.0)])
def test_rr_intervals_give_pure_epsilon_exactly(k, eps):
    import mpmath
    keep, other = dp_noise.rr_intervals(k, eps)
    assert keep + (k - 1) * other == 2**96
    mpmath.mp.prec = 300
    assert mpmath.mpf(keep) / other <= mpmath.exp(mpmath.mpf(eps))   # exact, no delta
    assert mpmath.mpf(keep) / other > mpmath.exp(mpmath.mpf(eps)) * (1 - mpmath.mpf(10) ** -20)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_rr_output_frequencies_are_exact(backend):
    k, eps, n = 6, 0.8, 1_000_000
    codes = np.full(n, 2, dtype=np.int64)
    out = dp.randomized_response(codes, k, epsilon=eps,
                                 generator=dp.insecure_generator_for_tests(8),
                                 backend=backend).values
    keep, other = dp_noise.rr_intervals(k, eps)
    probs = np.full(k, other / 2**96)
    probs[2] = keep / 2**96
    counts = np.bincount(out, minlength=k)
    assert stats.chisquare(counts, probs * n).pvalue > 1e-6


def test_rr_backends_identical_and_privacy_loss_within_epsilon():
    k, eps, n = 4, 1.2, 400_000
    gen = dp.insecure_generator_for_tests(77)
    codes = np.random.default_rng(0).integers(0, k, 20_001)
    a = dp.randomized_response(codes, k, epsilon=eps,
                               generator=dp.insecure_generator_for_tests(3), backend="numpy")
    b = dp.randomized_response(codes, k, epsilon=eps,
                               generator=dp.insecure_generator_for_tests(3), backend="cpu")
    np.testing.assert_array_equal(a.values, b.values)
    y0 = dp.randomized_response(np.zeros(n, np.int64), k, epsilon=eps, generator=gen).values
    y1 = dp.randomized_response(np.ones(n, np.int64), k, epsilon=eps, generator=gen).values
    loss = max(abs(math.log(np.mean(y0 == v) / np.mean(y1 == v))) for v in range(k))
    assert eps * 0.95 < loss <= eps * 1.05


def test_rr_accounting_and_bad_input():
    acct = dp.Accountant(epsilon=1.0, delta=0.0)
    rel = dp.randomized_response(np.array([0, 1, 2]), 3, epsilon=1.0, accountant=acct)
    assert rel.epsilon == 1.0 and rel.delta == 0.0 and rel.receipt is not None
    with pytest.raises(dp.BudgetExceededError):
        dp.randomized_response(np.array([0]), 3, epsilon=0.1, accountant=acct)
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 3\)"):
        dp.randomized_response(np.array([0, 3]), 3, epsilon=1.0)
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        dp.randomized_response(np.array([0]), 1, epsilon=1.0)
    with pytest.raises(TypeError, match="integer array"):
        dp.randomized_response(np.array([0.5]), 3, epsilon=1.0)
    with pytest.raises(ValueError, match="epsilon"):
        dp.randomized_response(np.array([0]), 3, epsilon=-1.0)


@pytest.mark.gpu
def test_gpu_discrete_laplace_equals_cpu():
    import synthcore
    if not synthcore._backend.cuda_usable():
        pytest.skip(synthcore._backend._cuda_status()[1])
    import cupy
    x = np.arange(-1000, 99_003, dtype=np.int64)
    for scale in (0.7, 50.0, 3e5):
        cpu = dp.discrete_laplace(x, scale=scale, generator=dp.insecure_generator_for_tests(5),
                                  backend="cpu")
        gpu = dp.discrete_laplace(cupy.asarray(x), scale=scale,
                                  generator=dp.insecure_generator_for_tests(5))
        assert isinstance(gpu.values, cupy.ndarray)
        np.testing.assert_array_equal(gpu.values.get(), cpu.values)
