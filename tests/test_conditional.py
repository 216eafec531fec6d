"""Conditional sampling: exact Gaussian conditioning in latent space."""
import importlib.resources

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from synthcore import GaussianCopula, ImpossibleConditionError


@pytest.fixture(scope="module")
def customers():
    return pd.read_parquet(importlib.resources.files("synthcore") / "data" / "customers.parquet")


@pytest.fixture(scope="module")
def model(customers):
    return GaussianCopula().fit(customers)


def test_conditions_hold_on_every_row(model):
    s = model.sample(20_000, seed=1, conditions={"plan": "pro", "age": (30, 40),
                                                 "rating": None}, backend="cpu")
    assert len(s) == 20_000
    assert (s["plan"] == "pro").all()
    assert s["age"].between(30, 40).all()
    assert s["rating"].isna().all()
    assert (model.sample(5_000, seed=1, conditions={"monthly_spend": 0.0})["monthly_spend"]
            == 0.0).all()  # an atom of the marginal
    assert (model.sample(5_000, seed=1, conditions={"income": 33300.0})["income"]
            == 33300.0).all()  # a value on the learnt rounding grid


def test_point_condition_follows_the_gaussian_conditional(model):
    # Independent check in latent space: z_income fixed at z*, then another
    # table column's latent is N(rho z*, 1 - rho^2).
    m_income = next(c for c in model.columns if c.name == "income")
    m_spend = next(c for c in model.columns if c.name == "monthly_spend")
    value = 40_000.0
    s = model.sample(50_000, seed=3, conditions={"income": value, "monthly_spend": (1.0, 800.0)},
                     backend="cpu")
    assert (s["income"] == value).all()
    # compare the conditional distribution of spend with a direct simulation
    i, j = m_income.value_dim, m_spend.value_dim
    rho = model.correlation[i, j]
    grid = np.linspace(m_income.z_lo, m_income.z_hi, m_income.table.size)
    lo_z = np.interp(value - 50.0, m_income.table, grid)
    hi_z = np.interp(value + 50.0, m_income.table, grid)
    rng = np.random.default_rng(0)
    z_income = stats.truncnorm.rvs(lo_z, hi_z, size=400_000, random_state=rng)
    z_spend = rho * z_income + np.sqrt(1 - rho**2) * rng.standard_normal(z_income.size)
    spend_grid = np.linspace(m_spend.z_lo, m_spend.z_hi, m_spend.table.size)
    spend = np.round(np.interp(z_spend, spend_grid, m_spend.table), 2)
    spend = spend[(spend >= 1.0) & (spend <= 800.0)]
    # nulls: the condition on spend requires it to be present
    assert s["monthly_spend"].notna().all()
    assert stats.ks_2samp(s["monthly_spend"], spend).pvalue > 1e-6


def test_category_condition_matches_the_models_own_conditional(model):
    # sampling unconditionally and keeping plan == "plus" must agree with conditioning
    plain = model.sample(300_000, seed=5, backend="cpu")
    kept = plain[plain["plan"] == "plus"]
    cond = model.sample(len(kept), seed=6, conditions={"plan": "plus"}, backend="cpu")
    for col in ["income", "age", "monthly_spend"]:
        assert stats.ks_2samp(kept[col].dropna(), cond[col].dropna()).pvalue > 1e-6, col
    tv = 0.5 * (kept["region"].value_counts(normalize=True)
                - cond["region"].value_counts(normalize=True)).abs().sum()
    assert tv < 0.02


def test_two_interval_conditions_match_rejection_from_the_model(model):
    plain = model.sample(400_000, seed=8, backend="cpu")
    kept = plain[(plain["plan"] == "basic") & plain["income"].between(50_000, 60_000)]
    cond = model.sample(len(kept), seed=9, backend="cpu",
                        conditions={"plan": "basic", "income": (50_000, 60_000)})
    assert (cond["plan"] == "basic").all() and cond["income"].between(50_000, 60_000).all()
    for col in ["income", "age", "orders"]:
        assert stats.ks_2samp(kept[col].dropna(), cond[col].dropna()).pvalue > 1e-6, col


def test_per_row_conditions_and_free_rows(model, customers):
    cond = pd.DataFrame({"plan": ["pro", None, "basic"] * 400,
                         "age": [30, None, None] * 400})
    s = model.sample(None, seed=2, conditions=cond, backend="cpu")
    assert len(s) == 1200
    assert (s["plan"].iloc[0::3] == "pro").all() and (s["age"].iloc[0::3] == 30).all()
    assert (s["plan"].iloc[2::3] == "basic").all()
    # rows with no condition are exactly the rows plain sampling gives
    plain = model.sample(1200, seed=2, backend="cpu")
    pd.testing.assert_frame_equal(s.iloc[1::3], plain.iloc[1::3])


def test_conditional_rows_are_reproducible_and_partitionable(model):
    cond = {"plan": "plus", "income": (20_000, 90_000)}
    whole = model.sample(6000, seed=4, conditions=cond, backend="cpu")
    parts = pd.concat([model.sample(2500, seed=4, conditions=cond, backend="cpu"),
                       model.sample(3500, seed=4, conditions=cond, row_offset=2500,
                                    backend="cpu")], ignore_index=True)
    pd.testing.assert_frame_equal(whole, parts)
    pd.testing.assert_frame_equal(whole, model.sample(6000, seed=4, conditions=cond,
                                                      backend="numpy"))


@pytest.mark.parametrize("conditions,exc,match", [
    ({"plan": "platinum"}, ImpossibleConditionError, "never appears"),
    ({"income": 1e9}, ImpossibleConditionError, "outside the values"),
    ({"age": (200, 300)}, ImpossibleConditionError, "no value of the model"),
    ({"age": None}, ImpossibleConditionError, "never null"),
    ({"plan": ("a", "b")}, ValueError, "range condition has no meaning"),
    ({"nope": 1}, ValueError, "not in the model"),
    ({"age": (40, 30)}, ValueError, "low must be <= high"),
    ([1, 2], TypeError, "conditions must be"),
])
def test_bad_conditions(model, conditions, exc, match):
    with pytest.raises(exc, match=match):
        model.sample(10, seed=1, conditions=conditions, backend="cpu")


def test_table_conditions_need_matching_n(model):
    with pytest.raises(ValueError, match="one per sampled row"):
        model.sample(5, seed=1, conditions=pd.DataFrame({"plan": ["pro"] * 3}))


def test_conditions_beyond_one_chunk(model):
    # more rows than one conditional pass (CONDITION_CHUNK): chunking never shows
    from synthcore.copula import CONDITION_CHUNK
    n = 2 * CONDITION_CHUNK + 12_345
    cond = {"plan": "plus", "age": (25, 60)}
    whole = model.sample(n, seed=13, conditions=cond, backend="cpu")
    cut = CONDITION_CHUNK + 777
    parts = pd.concat([model.sample(cut, seed=13, conditions=cond, backend="cpu"),
                       model.sample(n - cut, seed=13, conditions=cond, row_offset=cut,
                                    backend="cpu")], ignore_index=True)
    pd.testing.assert_frame_equal(whole, parts)
    pd.testing.assert_frame_equal(whole.iloc[-5000:].reset_index(drop=True),
                                  model.sample(5000, seed=13, conditions=cond,
                                               row_offset=n - 5000, backend="numpy"))


def test_rare_two_interval_region_is_sampled_exactly():
    """Botev's minimax tilting takes over from plain rejection for rare regions: the
    marginal of z1 under N(0, [[1, .5], [.5, 1]]) restricted to [2.5, 3.5]^2 (probability
    ~5e-4) against its exact CDF by quadrature."""
    from scipy import integrate
    from synthcore import _conditional
    from synthcore._seeding import philox_key
    rho, n = 0.5, 20_000
    corr = np.array([[1.0, rho], [rho, 1.0]])
    lo, hi = np.full((2, n), 2.5), np.full((2, n), 3.5)
    z = _conditional.conditional_latents(corr, lo, hi, philox_key(3), 0, np.arange(n))
    assert ((z >= 2.5) & (z <= 3.5)).all()
    s = np.sqrt(1 - rho ** 2)

    def dens(t):
        return stats.norm.pdf(t) * (stats.norm.cdf((3.5 - rho * t) / s)
                                    - stats.norm.cdf((2.5 - rho * t) / s))
    total = integrate.quad(dens, 2.5, 3.5, epsabs=1e-14)[0]

    def cdf(t):
        return np.array([integrate.quad(dens, 2.5, min(max(v, 2.5), 3.5), epsabs=1e-14)[0]
                         for v in np.atleast_1d(t)]) / total
    for i in range(2):
        assert stats.kstest(z[i], cdf).pvalue > 1e-6


def test_three_interval_region_matches_brute_force_and_partitions():
    from synthcore import _conditional
    from synthcore._seeding import philox_key
    a = np.random.default_rng(0).normal(size=(3, 3))
    cov = a @ a.T + np.eye(3)
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    n = 20_000
    lo = np.tile([[1.5], [-0.5], [1.0]], (1, n))
    hi = np.tile([[2.5], [0.0], [np.inf]], (1, n))
    key = philox_key(5)
    z = _conditional.conditional_latents(corr, lo, hi, key, 0, np.arange(n))
    big = np.linalg.cholesky(corr) @ np.random.default_rng(1).standard_normal((3, 12_000_000))
    ref = big[:, np.all((big >= lo[:, :1]) & (big <= hi[:, :1]), axis=0)]
    assert ref.shape[1] > 5000
    for i in range(3):
        assert stats.ks_2samp(z[i], ref[i]).pvalue > 1e-6
    parts = np.concatenate([
        _conditional.conditional_latents(corr, lo[:, :700], hi[:, :700], key, 0, np.arange(700)),
        _conditional.conditional_latents(corr, lo[:, :1300], hi[:, :1300], key, 0,
                                         np.arange(700, 2000))], axis=1)
    np.testing.assert_array_equal(parts, z[:, :2000])


def test_rare_range_conditions_through_the_model(model):
    cond = {"income": (150_000, 400_000), "age": (18, 22), "monthly_spend": (0, 5)}
    s = model.sample(3000, seed=3, conditions=cond, backend="cpu")
    assert len(s) == 3000
    assert s["income"].between(150_000, 400_000).all() and s["age"].between(18, 22).all()
    assert s["monthly_spend"].between(0, 5).all()
