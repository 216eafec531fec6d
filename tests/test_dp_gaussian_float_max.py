"""The discrete Gaussian, the grid-safe float mechanisms and permute-and-flip noisy max:
exact distributions, backends, a stochastic DP tester (with negative controls),
accounting and bad input."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats

from synthcore import _backend, dp
from synthcore.dp import accounting

from _dp_tester import dp_violation, histogram_pair, largest_log_ratio


def _gen(seed=11):
    return dp.insecure_generator_for_tests(seed)


def _discrete_gaussian_pmf(z, sigma):
    support = np.arange(-int(40 * sigma) - 10, int(40 * sigma) + 11)
    total = np.exp(-support.astype(float) ** 2 / (2 * sigma ** 2)).sum()
    return np.exp(-np.asarray(z, dtype=float) ** 2 / (2 * sigma ** 2)) / total


def _chi_square_pvalue(z, pmf, sigma):
    n = z.size
    lim = max(1, int(sigma * math.sqrt(2 * math.log(max(n * pmf(np.array([0]))[0] / 20, 2.0)))))
    vals = np.arange(-lim, lim + 1)
    counts = np.bincount(np.clip(z, -lim - 1, lim + 1) + lim + 1, minlength=2 * lim + 3)
    tail = 1 - pmf(vals).sum()
    expected = np.concatenate([[tail / 2], pmf(vals), [tail / 2]]) * n
    keep = expected >= 5
    chi = ((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    return stats.chi2.sf(chi, keep.sum() - 1)


# ---- discrete Gaussian ---------------------------------------------------------------------

@pytest.mark.parametrize("sigma", [0.6, 2.5, 30.0, 700.0])
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_discrete_gaussian_follows_the_exact_pmf(sigma, backend):
    n = 1_000_000
    z = dp.discrete_gaussian(np.zeros(n, np.int64), sigma=sigma, generator=_gen(),
                             backend=backend).values
    assert _chi_square_pvalue(z, lambda v: _discrete_gaussian_pmf(v, sigma), sigma) > 1e-6
    var = (np.arange(-int(40 * sigma) - 10, int(40 * sigma) + 11) ** 2 *
           _discrete_gaussian_pmf(np.arange(-int(40 * sigma) - 10, int(40 * sigma) + 11),
                                  sigma)).sum()
    assert abs(z.var() / var - 1) < 0.02


@pytest.mark.parametrize("sigma", [0.7, 13.0, 5000.0])
def test_discrete_gaussian_cpu_and_numpy_bit_identical(sigma):
    x = np.arange(-700, 50_003 - 700, dtype=np.int32)
    a = dp.discrete_gaussian(x, sigma=sigma, generator=_gen(5), backend="numpy")
    b = dp.discrete_gaussian(x, sigma=sigma, generator=_gen(5), backend="cpu")
    np.testing.assert_array_equal(a.values, b.values)
    assert a.values.dtype == np.int64 and a.values.shape == x.shape


def test_discrete_laplace_digit_tables_cpu_and_numpy_bit_identical():
    x = np.arange(30_003, dtype=np.int64).reshape(3, -1)
    for scale in (2000.0, 2.0 ** 35):   # gate + 2 and gate + 4 digit levels
        a = dp.discrete_laplace(x, scale=scale, generator=_gen(9), backend="numpy")
        b = dp.discrete_laplace(x, scale=scale, generator=_gen(9), backend="cpu")
        np.testing.assert_array_equal(a.values, b.values)


def test_discrete_gaussian_calibration_and_costs():
    rel = dp.discrete_gaussian(np.zeros(10, np.int64), rho=0.125, sensitivity=2.0)
    assert rel.scale == pytest.approx(4.0) and rel.rho == 0.125
    assert 0 < rel.delta < 1e-20            # n times the sampler's total variation
    rel = dp.discrete_gaussian(np.zeros(10, np.int64), sigma=3.0)
    assert rel.rho == pytest.approx(1 / 18)
    rel = dp.discrete_gaussian(np.zeros(1000, np.int64), epsilon=1.0, delta=1e-6)
    assert rel.epsilon == 1.0 and rel.delta == 1e-6
    # sigma is the smallest the tight conversion allows, up to the bisection tolerance
    rho = accounting.approx_dp_to_zcdp(1.0, 1e-6)
    assert rel.scale == pytest.approx(1 / math.sqrt(2 * rho), rel=1e-9)
    assert accounting.zcdp_to_approx_dp(rel.rho, 1e-6) <= 1.0 + 1e-9


# ---- accounting ----------------------------------------------------------------------------

def test_zcdp_accountant_with_delta_takes_the_samplers_total_variation():
    acct = dp.Accountant(rho=0.2, delta=1e-15)
    rel = dp.discrete_gaussian(np.zeros(1000, np.int64), sigma=2.0, accountant=acct,
                               generator=_gen())
    entry = acct.ledger[0]
    assert entry.cost.rho == pytest.approx(0.125) and entry.cost.delta == rel.delta > 0
    dp.discrete_laplace(np.zeros(10, np.int64), epsilon=0.3, accountant=acct, generator=_gen())
    assert acct.spent().rho == pytest.approx(0.125 + 0.045)
    gen = _gen()
    with pytest.raises(dp.BudgetExceededError):
        dp.discrete_gaussian(np.zeros(10, np.int64), sigma=1.0, accountant=acct, generator=gen)
    assert gen._next == 0                       # refused before any noise was drawn
    eps = acct.epsilon_at(1e-6)
    assert eps == pytest.approx(accounting.zcdp_to_approx_dp(0.17, 1e-6 - acct.spent().delta))


def test_pure_zcdp_accountant_refuses_a_sampler_delta_before_noise():
    acct = dp.Accountant(rho=1.0)
    gen = _gen()
    with pytest.raises(ValueError, match=r"Accountant\(rho=\.\.\., delta=\.\.\.\)"):
        dp.discrete_gaussian(np.zeros(10, np.int64), sigma=2.0, accountant=acct, generator=gen)
    assert gen._next == 0 and acct.ledger == []


def test_approx_accountant_needs_a_delta_for_a_zcdp_release():
    acct = dp.Accountant(epsilon=2.0, delta=1e-5)
    with pytest.raises(ValueError, match="delta"):
        dp.discrete_gaussian(np.zeros(10, np.int64), rho=0.1, accountant=acct)
    rel = dp.discrete_gaussian(np.zeros(10, np.int64), epsilon=1.0, delta=4e-6, accountant=acct)
    assert acct.spent().epsilon == 1.0 and acct.spent().delta == 4e-6
    rel2 = dp.discrete_gaussian(np.zeros(10, np.int64), rho=0.01, delta=5e-6, accountant=acct)
    assert rel2.epsilon == pytest.approx(accounting.zcdp_to_approx_dp(0.01, 5e-6 - 10 * 2**-70),
                                         rel=1e-6)
    with pytest.raises(dp.BudgetExceededError):
        dp.discrete_gaussian(np.zeros(10, np.int64), epsilon=0.1, delta=5e-6, accountant=acct)
    assert rel.receipt.index == 0


# ---- float mechanisms ----------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_float_laplace_noise_is_laplace_and_the_grid_comes_from_the_scale(backend):
    n = 1_000_000
    x = np.random.default_rng(0).normal(size=n) * 100
    rel = dp.laplace(x, epsilon=0.5, sensitivity=2.0, generator=_gen(), backend=backend)
    noise = (rel.values - x) / rel.scale
    assert stats.kstest(noise, "laplace").pvalue > 1e-6
    r = rel.granularity
    assert r == 2.0 ** math.ceil(math.log2(rel.scale * 2.0 ** -36))
    np.testing.assert_array_equal(rel.values / r, np.rint(rel.values / r))   # on the grid
    assert rel.sensitivity_used == 2.0 + n * r and rel.epsilon <= 0.5
    assert rel.sensitivity_used / rel.scale == pytest.approx(0.5, rel=1e-12)
    other = dp.laplace(np.zeros(n), epsilon=0.5, sensitivity=2.0)
    assert other.granularity == r          # the same grid whatever the data
    one = dp.laplace(x, epsilon=0.5, sensitivity=2.0, changed_coordinates=1)
    assert one.sensitivity_used == 2.0 + one.granularity < rel.sensitivity_used


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_float_gaussian_noise_is_normal_and_costs_what_it_says(backend):
    n = 1_000_000
    x = np.linspace(-1e3, 1e3, n).astype(np.float32)
    rel = dp.gaussian(x, rho=0.3, generator=_gen(), backend=backend)
    assert rel.values.dtype == np.float32
    noise = (rel.values.astype(np.float64) - x.astype(np.float64)) / rel.scale
    assert stats.kstest(noise, "norm").pvalue > 1e-6
    assert rel.rho <= 0.3 * (1 + 1e-12)
    assert rel.rho == pytest.approx(rel.sensitivity_used ** 2 / (2 * rel.scale ** 2))
    assert rel.sensitivity_used == pytest.approx(1.0 + math.sqrt(n) * rel.granularity)
    assert 2 ** 14 < rel.scale / rel.granularity <= 2 ** 15
    ed = dp.gaussian(x[:100], epsilon=1.0, delta=1e-7)
    assert ed.epsilon == 1.0 and ed.delta == 1e-7
    assert accounting.zcdp_to_approx_dp(ed.rho, 1e-7) <= 1.0 + 1e-9


@pytest.mark.parametrize("mech", ["laplace", "gaussian"])
def test_float_mechanisms_cpu_and_numpy_bit_identical(mech):
    x = np.random.default_rng(1).normal(size=20_001)
    f = getattr(dp, mech)
    kw = dict(epsilon=1.0) if mech == "laplace" else dict(rho=0.5)
    a = f(x, generator=_gen(3), backend="numpy", **kw)
    b = f(x, generator=_gen(3), backend="cpu", **kw)
    np.testing.assert_array_equal(a.values, b.values)


# ---- permute-and-flip ----------------------------------------------------------------------

def _pf_probabilities(scores, epsilon, sensitivity):
    q = np.asarray(scores, dtype=float)
    p = np.exp(epsilon * (q - q.max()) / (2 * sensitivity))
    k = len(q)
    out = np.zeros(k)
    for perm in itertools.permutations(range(k)):
        stay = 1.0
        for i in perm:
            out[i] += stay * p[i]
            stay *= 1 - p[i]
    return out / math.factorial(k)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_noisy_max_is_exact_permute_and_flip(backend):
    scores = np.array([3, 1, 1, 0, 2])
    m = 300_000
    rel = dp.noisy_max(np.tile(scores, (m, 1)), epsilon=2.0, generator=_gen(4),
                       backend=backend)
    assert rel.values.shape == (m,) and rel.epsilon == pytest.approx(2.0 * m)
    probs = _pf_probabilities(scores, 2.0, 1.0)
    counts = np.bincount(rel.values, minlength=5)
    assert stats.chisquare(counts, probs * m).pvalue > 1e-6


def test_noisy_max_float_scores_and_backends():
    scores = np.array([[0.5, 0.25, -1.0, 0.49]] * 50_000)
    a = dp.noisy_max(scores, epsilon=1.0, generator=_gen(2), backend="numpy")
    b = dp.noisy_max(scores, epsilon=1.0, generator=_gen(2), backend="cpu")
    np.testing.assert_array_equal(a.values, b.values)
    assert a.sensitivity_used == 1.0 + 2.0 ** -10
    probs = _pf_probabilities(np.rint(scores[0] * 1024) / 1024, 1.0, a.sensitivity_used)
    assert stats.chisquare(np.bincount(a.values, minlength=4), probs * 50_000).pvalue > 1e-6
    one = dp.noisy_max(np.array([1.0, 7.0, 3.0]), epsilon=50.0)
    assert int(one.values) == 1 and one.epsilon == 50.0


# ---- the stochastic DP tester, with negative controls -------------------------------------

def test_tester_discrete_and_float_laplace():
    n, eps = 1_000_000, 0.7
    y0 = dp.discrete_laplace(np.zeros(n, np.int64), epsilon=eps, generator=_gen(20)).values
    y1 = dp.discrete_laplace(np.ones(n, np.int64), epsilon=eps, generator=_gen(21)).values
    c0, c1 = histogram_pair(y0, y1)
    assert dp_violation(c0, c1, n, n, eps, 0.0) <= 0
    assert largest_log_ratio(c0, c1, n, n) >= 0.8 * eps     # the test can see the loss
    y2 = dp.discrete_laplace(np.full(n, 2, np.int64), epsilon=eps, generator=_gen(22)).values
    c0, c2 = histogram_pair(y0, y2)
    assert dp_violation(c0, c2, n, n, eps, 0.0) > 0          # sensitivity 2 claimed as 1
    f0 = dp.laplace(np.zeros(n), epsilon=eps, changed_coordinates=1, generator=_gen(23)).values
    f1 = dp.laplace(np.ones(n), epsilon=eps, changed_coordinates=1, generator=_gen(24)).values
    c0, c1 = histogram_pair(f0, f1)
    assert dp_violation(c0, c1, n, n, eps, 0.0) <= 0
    assert largest_log_ratio(c0, c1, n, n) >= 0.7 * eps


def test_tester_gaussians():
    n = 1_000_000
    for mech, x0, x1 in (("discrete_gaussian", np.zeros(n, np.int64), np.ones(n, np.int64)),
                         ("gaussian", np.zeros(n), np.ones(n))):
        f = getattr(dp, mech)
        kw = {} if mech == "discrete_gaussian" else {"changed_coordinates": 1}
        y0 = f(x0, sigma=3.0, generator=_gen(30), **kw).values
        y1 = f(x1, sigma=3.0, generator=_gen(31), **kw).values
        c0, c1 = histogram_pair(y0, y1)
        rho = 1 / 18 if mech == "discrete_gaussian" else (1 + 3.0 * 2.0 ** -15) ** 2 / 18
        eps = accounting.zcdp_to_approx_dp(rho, 1e-5)
        assert dp_violation(c0, c1, n, n, eps, 1e-5) <= 0
        assert dp_violation(c0, c1, n, n, 0.1, 1e-5) > 0      # far too small an epsilon


def test_tester_noisy_max():
    m, eps = 400_000, 1.0
    a = dp.noisy_max(np.tile([5, 4, 4, 0], (m, 1)), epsilon=eps, generator=_gen(40)).values
    b = dp.noisy_max(np.tile([4, 5, 4, 0], (m, 1)), epsilon=eps, generator=_gen(41)).values
    c0, c1 = np.bincount(a, minlength=4), np.bincount(b, minlength=4)
    assert dp_violation(c0, c1, m, m, eps, 0.0) <= 0
    assert dp_violation(c0, c1, m, m, 0.2, 0.0) > 0


# ---- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("call,exc,match", [
    (lambda: dp.discrete_gaussian(np.zeros(3), sigma=1.0), TypeError, "integer array"),
    (lambda: dp.discrete_gaussian(np.zeros(3, np.int64)), ValueError, "exactly one"),
    (lambda: dp.discrete_gaussian(np.zeros(3, np.int64), sigma=1.0, rho=1.0), ValueError,
     "exactly one"),
    (lambda: dp.discrete_gaussian(np.zeros(3, np.int64), epsilon=1.0), ValueError, "delta"),
    (lambda: dp.discrete_gaussian(np.zeros(3, np.int64), sigma=1e6), ValueError, "limit"),
    (lambda: dp.discrete_gaussian(np.zeros(3, np.int64), sigma=-1.0), ValueError, "sigma"),
    (lambda: dp.discrete_gaussian(np.zeros(3, np.int64), epsilon=1.0, delta=1.5), ValueError,
     "delta"),
    (lambda: dp.laplace(np.zeros(3, np.int64), epsilon=1.0), TypeError, "float array"),
    (lambda: dp.laplace(np.array([0.0, np.nan]), epsilon=1.0), ValueError, "NaN"),
    (lambda: dp.laplace(np.array([np.inf]), epsilon=1.0), ValueError, "infinity"),
    (lambda: dp.laplace(np.array([1e30]), epsilon=1.0), ValueError, "too large"),
    (lambda: dp.laplace(np.zeros(3), epsilon=1.0, changed_coordinates=0), ValueError,
     "changed_coordinates"),
    (lambda: dp.gaussian(np.zeros(3), rho=0.0), ValueError, "rho"),
    (lambda: dp.gaussian(np.zeros(3), sigma=1.0, rho=1.0), ValueError, "exactly one"),
    (lambda: dp.noisy_max(np.zeros((2, 2, 2)), epsilon=1.0), ValueError, "shape"),
    (lambda: dp.noisy_max(np.array([1.0, np.nan]), epsilon=1.0), ValueError, "NaN"),
    (lambda: dp.noisy_max(np.array(["a", "b"]), epsilon=1.0), TypeError, "numeric"),
    (lambda: dp.noisy_max(np.array([1, 2]), epsilon=0.0), ValueError, "epsilon"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---- GPU against CPU -----------------------------------------------------------------------

@pytest.mark.gpu
def test_gpu_mechanisms_equal_cpu():
    if not _backend.cuda_usable():
        pytest.skip(_backend._cuda_status()[1])
    import cupy
    xi = np.arange(-1000, 99_003, dtype=np.int64)
    xf = np.linspace(-5, 5, 100_003)
    cases = [
        (dp.discrete_gaussian, xi, dict(sigma=0.8)),
        (dp.discrete_gaussian, xi, dict(sigma=3000.0)),
        (dp.discrete_laplace, xi, dict(scale=2000.0)),
        (dp.laplace, xf, dict(epsilon=1.0)),
        (dp.gaussian, xf, dict(rho=0.5)),
    ]
    for f, x, kw in cases:
        cpu = f(x, generator=_gen(5), backend="cpu", **kw)
        gpu = f(cupy.asarray(x), generator=_gen(5), **kw)
        assert isinstance(gpu.values, cupy.ndarray)
        np.testing.assert_array_equal(gpu.values.get(), cpu.values)
    codes = np.random.default_rng(0).integers(0, 7, 50_001)
    cpu = dp.randomized_response(codes, 7, epsilon=1.0, generator=_gen(6), backend="cpu")
    gpu = dp.randomized_response(cupy.asarray(codes), 7, epsilon=1.0, generator=_gen(6))
    np.testing.assert_array_equal(gpu.values.get(), cpu.values)
    scores = np.random.default_rng(1).integers(0, 20, (1000, 30))
    cpu = dp.noisy_max(scores, epsilon=1.0, generator=_gen(7), backend="cpu")
    gpu = dp.noisy_max(cupy.asarray(scores), epsilon=1.0, generator=_gen(7))
    np.testing.assert_array_equal(gpu.values.get(), cpu.values)
