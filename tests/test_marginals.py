"""synthcore._marginals: family fits, lookup tables, auto selection, bad input."""
import math
import time

import numpy as np
import pytest
from scipy import special, stats

try:
    from synthcore import _marginals as M
except ImportError:  # an installed synthcore built before this module: use the source tree
    import importlib.util
    import pathlib

    _SRC = pathlib.Path(__file__).resolve().parents[1] / "python" / "synthcore" / "_marginals.py"
    _SPEC = importlib.util.spec_from_file_location("synthcore._marginals", _SRC)
    M = importlib.util.module_from_spec(_SPEC)
    _SPEC.loader.exec_module(M)

ALPHA = 1e-6  # fixed seeds: a failure means a bug, not bad luck, at this level
Z_LO, Z_HI, KNOTS = -8.3, 8.3, 1025
N_FIT = 50_000
SEED = 20240517

# (family, true scipy distribution, true parameters, absolute tolerance per parameter).
# Tolerances are about 6 standard deviations of the estimator at n = 50k,
# measured by refitting 40 independent samples (sd in the comment), rounded up:
# loose enough never to trip on sampling noise, tight enough to catch a biased
# or broken fit (e.g. a beta support fixed at the data range gives b = 4.5 for
# b = 5, a gamma location fixed at the minimum gives a shape off by > 0.2).
FIT_CASES = [
    # sd: loc .0076, scale .0059
    ("normal", stats.norm(loc=3.0, scale=2.0), {"loc": 3.0, "scale": 2.0},
     {"loc": 0.05, "scale": 0.04}),
    # sd: a .015, b .012, loc .015, scale .017
    ("truncnorm", stats.truncnorm(-1.0, 2.0, loc=1.0, scale=2.0),
     {"a": -1.0, "b": 2.0, "loc": 1.0, "scale": 2.0},
     {"a": 0.1, "b": 0.08, "loc": 0.1, "scale": 0.1}),
    # sd: loc .00011, scale .00012
    ("uniform", stats.uniform(loc=-2.0, scale=5.0), {"loc": -2.0, "scale": 5.0},
     {"loc": 1e-3, "scale": 1e-3}),
    # sd: a .023, b .11, loc .0017, scale .029
    ("beta", stats.beta(2.0, 5.0, loc=1.0, scale=3.0),
     {"a": 2.0, "b": 5.0, "loc": 1.0, "scale": 3.0},
     {"a": 0.15, "b": 0.7, "loc": 0.012, "scale": 0.18}),
    # sd: a .0026, b .0027, loc and scale < 1e-6 (end points one spacing outside the data)
    ("beta", stats.beta(0.5, 0.5, loc=-1.0, scale=2.0),
     {"a": 0.5, "b": 0.5, "loc": -1.0, "scale": 2.0},
     {"a": 0.02, "b": 0.02, "loc": 1e-3, "scale": 2e-3}),
    # sd: a .023, loc .0082, scale .013
    ("gamma", stats.gamma(2.5, loc=1.0, scale=1.5), {"a": 2.5, "loc": 1.0, "scale": 1.5},
     {"a": 0.15, "loc": 0.05, "scale": 0.08}),
    # sd: a .0036, loc < 1e-6, scale .016 (shape < 1: loc one spacing below the minimum)
    ("gamma", stats.gamma(0.7, loc=0.0, scale=2.0), {"a": 0.7, "loc": 0.0, "scale": 2.0},
     {"a": 0.025, "loc": 1e-3, "scale": 0.1}),
    # sd: s .0018, scale .0038
    ("lognormal", stats.lognorm(0.6, scale=math.exp(0.5)),
     {"s": 0.6, "loc": 0.0, "scale": math.exp(0.5)},
     {"s": 0.012, "loc": 0.0, "scale": 0.025}),
]
FIT_IDS = [f"{fam}-{i}" for i, (fam, *_rest) in enumerate(FIT_CASES)]


def _z_grid(z_lo=Z_LO, z_hi=Z_HI, knots=KNOTS):
    return z_lo + np.arange(knots) * (z_hi - z_lo) / (knots - 1)


def _sample_table(table, n=200_000):
    """What the copula does: z ~ N(0, 1), linear interpolation in z, clamped."""
    z = np.random.default_rng(1).standard_normal(n)
    return np.interp(z, _z_grid(), table)


def _draw(dist, n=N_FIT, seed=SEED):
    return dist.rvs(n, random_state=seed)


# ---- fit + table reproduce the true distribution ----------------------------------

@pytest.mark.parametrize("family, dist, truth, tol", FIT_CASES, ids=FIT_IDS)
def test_fit_recovers_parameters(family, dist, truth, tol):
    params = M.fit_family(_draw(dist), family)
    assert set(params) == set(truth)
    assert all(type(v) is float for v in params.values())
    for key, value in truth.items():
        assert abs(params[key] - value) <= tol[key], (key, params, truth)


@pytest.mark.parametrize("family, dist, truth, tol", FIT_CASES, ids=FIT_IDS)
def test_fitted_table_reproduces_true_distribution(family, dist, truth, tol):
    params = M.fit_family(_draw(dist), family)
    table = M.family_table(family, params, Z_LO, Z_HI, KNOTS)
    values = _sample_table(table)
    assert stats.kstest(values, dist.cdf).pvalue > ALPHA


@pytest.mark.parametrize("family, dist, truth, tol", FIT_CASES, ids=FIT_IDS)
def test_true_parameter_table_is_exact(family, dist, truth, tol):
    # The table alone, free of fitting error: sampling it matches the
    # distribution it was built from, and its knots are the exact quantiles.
    table = M.family_table(family, truth, Z_LO, Z_HI, KNOTS)
    assert stats.kstest(_sample_table(table), dist.cdf).pvalue > ALPHA
    z = _z_grid()
    mid = np.abs(z) <= 5.0
    np.testing.assert_allclose(table[mid], dist.ppf(special.ndtr(z[mid])), rtol=1e-9,
                               atol=1e-12)


def test_fit_is_independent_of_row_order():
    x = _draw(stats.gamma(1.7, loc=-2.0, scale=0.5), n=60_000)
    shuffled = np.random.default_rng(3).permutation(x)
    for family in M.FAMILIES:
        if family == "lognormal":
            continue
        a, b = M.fit_family(x, family), M.fit_family(shuffled, family)
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), (family, key)


def test_fit_is_equivariant_under_affine_maps():
    x = _draw(stats.beta(2.0, 3.0), n=20_000)
    for family in ("normal", "uniform", "truncnorm", "beta", "gamma"):
        base = M.fit_family(x, family)
        moved = M.fit_family(1e6 + 1e3 * x, family)
        assert moved["loc"] == pytest.approx(1e6 + 1e3 * base["loc"], rel=1e-9), family
        assert moved["scale"] == pytest.approx(1e3 * base["scale"], rel=1e-5), family


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e150, 1e300])
def test_fit_handles_extreme_magnitudes(scale):
    x = scale * _draw(stats.gamma(3.0), n=5_000)
    ref = {f: M.fit_family(x / scale, f) for f in M.FAMILIES}
    for family in M.FAMILIES:
        params = M.fit_family(x, family)
        assert all(math.isfinite(v) for v in params.values())
        assert params["scale"] == pytest.approx(scale * ref[family]["scale"], rel=1e-4)


# ---- tables -------------------------------------------------------------------------

TABLE_CASES = [
    ("normal", {"loc": -1.0, "scale": 3.0}),
    ("normal", {"loc": 1e9, "scale": 1e-3}),
    ("truncnorm", {"a": -1.0, "b": 2.0, "loc": 1.0, "scale": 2.0}),
    ("truncnorm", {"a": 5.0, "b": 6.0, "loc": 0.0, "scale": 1.0}),       # far upper tail
    ("truncnorm", {"a": -40.0, "b": -39.0, "loc": 0.0, "scale": 1.0}),   # far lower tail
    ("truncnorm", {"a": -1e-3, "b": 1e-3, "loc": 0.0, "scale": 1.0}),    # nearly uniform
    ("uniform", {"loc": -2.0, "scale": 5.0}),
    ("beta", {"a": 2.0, "b": 5.0, "loc": 1.0, "scale": 3.0}),
    ("beta", {"a": 0.05, "b": 0.05, "loc": 0.0, "scale": 1.0}),
    ("beta", {"a": 500.0, "b": 0.3, "loc": -1.0, "scale": 2.0}),
    ("gamma", {"a": 2.5, "loc": 1.0, "scale": 1.5}),
    ("gamma", {"a": 0.05, "loc": 0.0, "scale": 1.0}),
    ("gamma", {"a": 1e4, "loc": -5.0, "scale": 1e-3}),
    ("lognormal", {"s": 0.6, "loc": 0.0, "scale": 1.6}),
    ("lognormal", {"s": 3.0, "loc": 0.0, "scale": 1.0}),
]


@pytest.mark.parametrize("family, params", TABLE_CASES,
                         ids=[f"{f}-{i}" for i, (f, _) in enumerate(TABLE_CASES)])
@pytest.mark.parametrize("knots", [2, 257, 4097])
def test_table_is_monotone_finite_and_within_support(family, params, knots):
    table = M.family_table(family, params, Z_LO, Z_HI, knots)
    assert table.dtype == np.float64 and table.shape == (knots,)
    assert np.isfinite(table).all()
    assert (np.diff(table) >= 0.0).all()
    lo, hi = getattr(stats, M._SCIPY_NAME[family])(**params).support()
    assert lo <= table[0] and table[-1] <= hi


def test_table_closed_forms_and_grid():
    z = _z_grid(-3.0, 5.0, 81)
    np.testing.assert_array_equal(
        M.family_table("normal", {"loc": 0.0, "scale": 1.0}, -3.0, 5.0, 81), z)
    np.testing.assert_allclose(
        M.family_table("normal", {"loc": 2.0, "scale": 0.5}, -3.0, 5.0, 81), 2.0 + 0.5 * z,
        rtol=1e-15)
    np.testing.assert_allclose(
        M.family_table("lognormal", {"s": 0.7, "loc": 0.0, "scale": 3.0}, -3.0, 5.0, 81),
        3.0 * np.exp(0.7 * z), rtol=1e-14)
    np.testing.assert_allclose(
        M.family_table("uniform", {"loc": -1.0, "scale": 4.0}, -3.0, 5.0, 81),
        -1.0 + 4.0 * special.ndtr(z), rtol=1e-14)


@pytest.mark.parametrize("family, params", [
    ("gamma", {"a": 2.5, "loc": 0.0, "scale": 1.0}),
    ("truncnorm", {"a": -1.0, "b": 50.0, "loc": 0.0, "scale": 1.0}),
    ("beta", {"a": 2.0, "b": 3.0, "loc": 0.0, "scale": 1.0}),
])
def test_table_upper_tail_keeps_resolution(family, params):
    # Phi(z) rounds to 1 for z > 8.3, so ppf(Phi(z)) would be flat (or inf)
    # in the upper tail; the table uses isf(Phi(-z)) there.
    table = M.family_table(family, params, 6.0, 8.3, 24)
    assert np.isfinite(table).all()
    assert (np.diff(table) > 0.0).all()
    dist = getattr(stats, M._SCIPY_NAME[family])(**params)
    np.testing.assert_allclose(table, dist.isf(special.ndtr(-_z_grid(6.0, 8.3, 24))),
                               rtol=1e-12)


# ---- empirical tables ------------------------------------------------------------------

def test_empirical_table_continuous():
    x = _draw(stats.lognorm(1.2), n=30_000)
    table = M.empirical_table(x, Z_LO, Z_HI, 513)
    z = _z_grid(Z_LO, Z_HI, 513)
    np.testing.assert_allclose(table, np.quantile(x, special.ndtr(z), method="linear"),
                               rtol=1e-14)
    assert table.dtype == np.float64
    assert (np.diff(table) >= 0.0).all()
    assert x.min() <= table[0] <= table[-1] <= x.max()
    # Phi(-8.3) * n << 1: the end knots sit within a hair of the extremes.
    assert table[0] == pytest.approx(x.min(), rel=1e-9)
    assert table[-1] == pytest.approx(x.max(), rel=1e-9)
    values = _sample_table(M.empirical_table(x, Z_LO, Z_HI, KNOTS))
    assert stats.ks_2samp(values, x).pvalue > ALPHA


def test_empirical_table_discrete_uses_observed_values_only():
    x = np.random.default_rng(5).poisson(3.5, 20_000).astype(np.float64) * 0.5
    table = M.empirical_table(x, Z_LO, Z_HI, 257, discrete=True)
    assert np.isin(table, np.unique(x)).all()
    assert (np.diff(table) >= 0.0).all()
    z = _z_grid(Z_LO, Z_HI, 257)
    np.testing.assert_array_equal(
        table, np.quantile(x, special.ndtr(z), method="inverted_cdf"))
    # Stepping through the knots, each observed value takes (close to) its share.
    uniq, counts = np.unique(x, return_counts=True)
    knot_mass = np.diff(special.ndtr(np.r_[-np.inf, 0.5 * (z[1:] + z[:-1]), np.inf]))
    mass = np.array([knot_mass[table == u].sum() for u in uniq])
    np.testing.assert_allclose(mass, counts / counts.sum(), atol=0.02)


def test_empirical_table_constant_and_bad_input():
    np.testing.assert_array_equal(M.empirical_table(np.full(10, 7.5), -3, 3, 5), 7.5)
    with pytest.raises(ValueError, match="empirical"):
        M.empirical_table(np.array([1.0, np.nan]), -3, 3, 5)
    with pytest.raises(ValueError, match="empirical"):
        M.empirical_table(np.array([]), -3, 3, 5)
    with pytest.raises(ValueError, match="knots"):
        M.empirical_table(np.arange(5.0), -3, 3, 1)


# ---- auto selection --------------------------------------------------------------------

@pytest.mark.parametrize("family, dist", [
    ("normal", stats.norm(loc=10.0, scale=3.0)),
    ("gamma", stats.gamma(2.0, scale=1.5)),
    ("uniform", stats.uniform(loc=-1.0, scale=3.0)),
    ("beta", stats.beta(0.5, 0.5)),
    ("lognormal", stats.lognorm(0.5, scale=2.0)),
    ("truncnorm", stats.truncnorm(-0.5, 1.5)),
])
@pytest.mark.parametrize("n", [5_000, 50_000])
def test_select_family_picks_the_true_family(family, dist, n):
    x = _draw(dist, n=n)
    chosen, params, ks = M.select_family(x)
    assert chosen == family
    assert params == M.fit_family(x, family)
    assert 0.0 < ks < 2.0 / math.sqrt(n)   # a correct model: KS ~ 0.87 / sqrt(n)


def test_select_family_skips_families_that_do_not_apply():
    x = _draw(stats.norm(), n=5_000)   # negative values: no lognormal
    chosen, _, _ = M.select_family(x, candidates=("lognormal", "uniform"))
    assert chosen == "uniform"
    with pytest.raises(ValueError, match="lognormal"):
        M.select_family(x, candidates=("lognormal",))
    with pytest.raises(ValueError, match="no candidate"):
        M.select_family(np.full(100, 3.0))
    with pytest.raises(ValueError, match="unknown"):
        M.select_family(x, candidates=("normal", "weibull"))


# ---- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("family", M.FAMILIES)
@pytest.mark.parametrize("bad", [
    np.array([1.0, 2.0, np.nan, 3.0]),
    np.array([1.0, np.inf, 3.0]),
    np.full(1000, 2.5),
    np.array([4.0]),
    np.array([]),
    np.ones((10, 2)),
], ids=["nan", "inf", "constant", "single", "empty", "2d"])
def test_bad_input_raises_value_error_naming_family(family, bad):
    with pytest.raises(ValueError, match=family):
        M.fit_family(bad, family)


def test_lognormal_needs_positive_data():
    with pytest.raises(ValueError, match="lognormal.*positive"):
        M.fit_family(np.array([-1.0, 2.0, 3.0]), "lognormal")
    with pytest.raises(ValueError, match="lognormal.*positive"):
        M.fit_family(np.array([0.0, 2.0, 3.0]), "lognormal")


def test_unknown_family_and_bad_table_arguments():
    with pytest.raises(ValueError, match="weibull"):
        M.fit_family(np.arange(10.0), "weibull")
    with pytest.raises(ValueError, match="gamma"):
        M.family_table("gamma", {"a": 2.0, "scale": 1.0}, -3, 3, 5)       # missing loc
    with pytest.raises(ValueError, match="beta"):
        M.family_table("beta", {"a": -1.0, "b": 1.0, "loc": 0.0, "scale": 1.0}, -3, 3, 5)
    with pytest.raises(ValueError, match="normal"):
        M.family_table("normal", {"loc": 0.0, "scale": 0.0}, -3, 3, 5)
    with pytest.raises(ValueError, match="truncnorm"):
        M.family_table("truncnorm", {"a": 1.0, "b": 1.0, "loc": 0.0, "scale": 1.0}, -3, 3, 5)
    with pytest.raises(ValueError, match="z_lo"):
        M.family_table("normal", {"loc": 0.0, "scale": 1.0}, 3, -3, 5)
    with pytest.raises(ValueError, match="knots"):
        M.family_table("normal", {"loc": 0.0, "scale": 1.0}, -3, 3, 1)


@pytest.mark.parametrize("family", M.FAMILIES)
def test_awkward_data_fits_or_raises_value_error(family):
    # Whatever the data, a fit returns finite parameters whose table is usable,
    # or raises ValueError: never another exception.
    rng = np.random.default_rng(9)
    datasets = [
        np.array([1.0, 2.0]),
        np.array([1.0, 1.0, 1.0, 2.0]),
        rng.standard_cauchy(20_000),
        np.r_[rng.normal(-5, 1, 5_000), rng.normal(5, 1, 5_000)],
        rng.poisson(2.0, 10_000).astype(np.float64) + 1.0,
        -rng.gamma(2.0, size=10_000),
        np.r_[np.zeros(9_990), rng.uniform(1, 2, 10)] + 1.0,
    ]
    for x in datasets:
        try:
            params = M.fit_family(x, family)
        except ValueError as exc:
            assert family in str(exc)
            continue
        table = M.family_table(family, params, Z_LO, Z_HI, 129)
        assert np.isfinite(table).all() and (np.diff(table) >= 0).all()


# ---- speed (loose sanity bound; the target is ~50 ms per 100k values) -------------

def test_fit_time_is_bounded():
    x_pos = _draw(stats.gamma(2.0, loc=0.5), n=100_000)
    x_norm = _draw(stats.norm(), n=100_000)
    for family in M.FAMILIES:
        for x in (x_pos, x_norm):
            if family == "lognormal" and x.min() <= 0:
                continue
            M.fit_family(x[:1000], family)   # warm-up (imports, caches)
            t0 = time.perf_counter()
            M.fit_family(x, family)
            assert time.perf_counter() - t0 < 0.5, family
    t0 = time.perf_counter()
    M.select_family(x_pos)
    assert time.perf_counter() - t0 < 2.0
