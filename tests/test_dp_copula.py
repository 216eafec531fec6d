"""DPGaussianCopula: accounting, refusal before noise, public-input validation, accuracy at
large epsilon, determinism under the test key, bounds, persistence, shared kernels."""
import importlib.resources
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import synthcore
from synthcore import dp
from synthcore.dp.copula import DPGaussianCopula, _count_inversions, _sampler_delta, kendall_s, \
    tau_to_rho

BOUNDS = {"age": (18, 90), "income": (0, 250_000), "monthly_spend": (0, 1000),
          "orders": (0, 30), "rating": (1, 5), "signup": ("2019-01-01", "2025-01-01")}
CATEGORIES = {"plan": ["basic", "plus", "pro"],
              "region": ["east", "south", "central", "coast", "west", "north", "islands",
                         "mountain"]}


@pytest.fixture(scope="module")
def customers():
    path = importlib.resources.files("synthcore") / "data" / "customers.parquet"
    return pd.read_parquet(path)


def _fit(df, epsilon=1.0, key=1, **kw):
    kw.setdefault("bounds", BOUNDS)
    kw.setdefault("categories", CATEGORIES)
    return DPGaussianCopula(epsilon=epsilon, generator=dp.insecure_generator_for_tests(key),
                            **kw).fit(df)


@pytest.fixture(scope="module")
def model(customers):
    return _fit(customers)


def _named_correlation(m):
    idx = {c.name: c.value_dim for c in m.columns if c.value_dim is not None}
    names = sorted(idx)
    sel = [idx[k] for k in names]
    return names, m.correlation[np.ix_(sel, sel)]


# ---- the Kendall statistic ---------------------------------------------------------

def _brute_s(x, y):
    return sum(int(np.sign(x[a] - x[b]) * np.sign(y[a] - y[b]))
               for a, b in itertools.combinations(range(len(x)), 2))


def test_latent_tau_inversion_recovers_the_correlation_of_discretised_normals():
    rng = np.random.default_rng(11)
    z = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], 100_000)
    cuts_x, cuts_y = np.array([-0.3]), np.array([-1.2, -0.25, 0.8])
    x, y = np.searchsorted(cuts_x, z[:, 0]), np.searchsorted(cuts_y, z[:, 1])
    for cx, cy, a, b in [(cuts_x, cuts_y, x, y), (cuts_x, None, x, z[:, 1]),
                         (None, None, z[:, 0], z[:, 1])]:
        tau_b = stats.kendalltau(a, b).statistic
        assert tau_to_rho(tau_b, cx, cy) == pytest.approx(0.6, abs=0.015)
    assert tau_to_rho(1.0, cuts_x, cuts_y) == 0.999


@pytest.mark.parametrize("n,levels", [(1, 3), (2, 2), (57, 4), (300, 1000), (513, 7)])
def test_kendall_statistic_is_exact(n, levels):
    rng = np.random.default_rng(n)
    x = rng.integers(0, levels, n).astype(float)
    y = x + rng.integers(0, levels, n)          # ties in x, in y and in both
    assert kendall_s(x, y) == _brute_s(x, y)
    a = rng.integers(0, n, n)
    assert _count_inversions(a) == sum(int(a[i] > a[j]) for i, j in
                                       itertools.combinations(range(n), 2))


def test_kendall_statistic_matches_scipy_tau_b():
    rng = np.random.default_rng(3)
    x = rng.normal(size=20_000)
    y = np.round(0.6 * x + rng.normal(size=20_000), 1)
    s = kendall_s(x, y)
    _, counts = np.unique(y, return_counts=True)
    n0 = 20_000 * 19_999 // 2
    n2 = int((counts * (counts - 1) // 2).sum())
    assert s / math.sqrt(n0 * (n0 - n2)) == pytest.approx(stats.kendalltau(x, y).statistic,
                                                          abs=1e-12)


# ---- accounting ------------------------------------------------------------------

def test_accounting_is_the_sum_of_the_charges(customers, model):
    acc = model.accountant
    ledger = acc.ledger
    m = customers.shape[1]
    assert [e.name for e in ledger] == [f"marginal:{c}" for c in customers.columns] + \
        ["correlation:kendall"]
    eps = [e.cost.epsilon for e in ledger]
    assert eps[:-1] == [0.5 / m] * m and eps[-1] == 0.5
    spent = acc.spent()
    assert spent.epsilon == math.fsum(eps) and spent.epsilon <= 1.0 * (1 + 1e-12)
    assert spent.delta == math.fsum(e.cost.delta for e in ledger)
    # the created accountant holds exactly epsilon and delta + the planned sampler delta
    assert acc.total.epsilon == 1.0 and acc.total.delta == pytest.approx(spent.delta, rel=1e-9)
    assert 0 < spent.delta < 1e-20
    # each charged delta is what the plan computed before any noise was drawn
    for e in ledger:
        assert e.cost.delta == _sampler_delta(e.params["n"], e.cost.epsilon,
                                              e.params["sensitivity"])
    # sensitivities of the replace-one relation
    assert {e.params["sensitivity"] for e in ledger[:-1]} == {2.0}
    pairs = model.privacy["kendall"]["pairs"]
    assert ledger[-1].params["sensitivity"] == 2 * pairs * (len(customers) - 1)
    assert model.privacy["spent"] == spent.as_dict()


def test_each_fit_without_an_accountant_gets_its_own(customers):
    m = DPGaussianCopula(epsilon=1.0, bounds=BOUNDS, categories=CATEGORIES,
                         generator=dp.insecure_generator_for_tests(6))
    first = m.fit(customers).accountant
    second = m.fit(customers).accountant
    assert first is not second
    assert first.spent().epsilon == second.spent().epsilon == pytest.approx(1.0, rel=1e-12)


def test_a_shared_accountant_is_charged_exactly(customers):
    acc = dp.Accountant(epsilon=3.0, delta=1e-9)
    _fit(customers, epsilon=1.0, accountant=acc)
    _fit(customers, epsilon=1.5, accountant=acc, budget_split={"marginals": 0.7,
                                                                "correlation": 0.3})
    assert acc.spent().epsilon == pytest.approx(2.5, rel=1e-12)
    assert acc.spent().epsilon <= 2.5 * (1 + 1e-12)
    assert len(acc.ledger) == 2 * (customers.shape[1] + 1)
    assert acc.ledger[-1].cost.epsilon == pytest.approx(1.5 * 0.3)


@pytest.mark.parametrize("budget", [dict(epsilon=0.5, delta=1e-9), dict(epsilon=5.0)])
def test_too_small_a_budget_is_refused_before_any_noise(customers, budget):
    acc = dp.Accountant(**budget)   # too little epsilon; or delta = 0 (no room for the sampler)
    gen = dp.insecure_generator_for_tests(4)
    with pytest.raises(dp.BudgetExceededError, match="no noise was drawn"):
        DPGaussianCopula(epsilon=1.0, bounds=BOUNDS, categories=CATEGORIES, accountant=acc,
                         generator=gen).fit(customers)
    assert acc.ledger == [] and gen._next == 0


def test_an_epsilon_the_sampler_cannot_account_for_is_refused(customers):
    gen = dp.insecure_generator_for_tests(4)
    with pytest.raises(ValueError, match="epsilon: release 'correlation:kendall'"):
        DPGaussianCopula(epsilon=300.0, bounds=BOUNDS, categories=CATEGORIES,
                         generator=gen).fit(customers)
    assert gen._next == 0


def test_zcdp_accountant_is_refused():
    with pytest.raises(ValueError, match="accountant"):
        DPGaussianCopula(epsilon=1.0, accountant=dp.Accountant(rho=1.0))


# ---- public inputs -----------------------------------------------------------------

@pytest.mark.parametrize("bounds,categories,match", [
    ({k: v for k, v in BOUNDS.items() if k != "income"}, CATEGORIES, "'income'.*bounds"),
    (BOUNDS, {"plan": CATEGORIES["plan"]}, "'region'.*categories"),
    ({**BOUNDS, "plan": (0, 1)}, CATEGORIES, "'plan'"),
    ({**BOUNDS, "nope": (0, 1)}, CATEGORIES, "not in the table.*nope"),
    ({**BOUNDS, "age": (90, 18)}, CATEGORIES, r"bounds\['age'\].*low < high"),
    ({**BOUNDS, "age": (18.5, 90)}, CATEGORIES, r"bounds\['age'\].*integer"),
    ({**BOUNDS, "income": (0, float("inf"))}, CATEGORIES, r"bounds\['income'\]"),
    ({**BOUNDS, "income": 5}, CATEGORIES, r"bounds\['income'\]"),
    ({**BOUNDS, "signup": ("2019-01-01", "not a date")}, CATEGORIES, r"bounds\['signup'\]"),
    (BOUNDS, {**CATEGORIES, "churned": ["yes", "no"]}, r"categories\['churned'\]"),
    (BOUNDS, {**CATEGORIES, "plan": []}, r"categories\['plan'\].*empty"),
    (BOUNDS, {**CATEGORIES, "plan": ["a", "a"]}, r"categories\['plan'\].*repeated"),
    (BOUNDS, {**CATEGORIES, "age": [18, "x"]}, "'age'"),
])
def test_public_inputs_are_checked_by_column(customers, bounds, categories, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DPGaussianCopula(epsilon=1.0, bounds=bounds, categories=categories).fit(customers)


@pytest.mark.parametrize("kw,match", [
    (dict(epsilon=0), "epsilon"), (dict(epsilon=1, delta=1.0), "delta"),
    (dict(epsilon=1, budget_split={"marginals": 0.5}), "budget_split"),
    (dict(epsilon=1, budget_split={"marginals": 0.7, "correlation": 0.7}), "budget_split"),
    (dict(epsilon=1, bins=0), "bins"), (dict(epsilon=1, bins={"age": "x"}), "bins"),
    (dict(epsilon=1, tau_rows=1), "tau_rows"), (dict(epsilon=1, generator=object()),
                                                "generator"),
])
def test_bad_arguments(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DPGaussianCopula(**kw)


# ---- accuracy ----------------------------------------------------------------------

def test_large_epsilon_approaches_the_non_private_fit():
    rng = np.random.default_rng(7)
    n = 20_000
    cov = np.array([[1.0, 0.7, -0.4], [0.7, 1.0, -0.2], [-0.4, -0.2, 1.0]])
    z = rng.multivariate_normal(np.zeros(3), cov, size=n)
    df = pd.DataFrame({"a": z[:, 0], "b": np.exp(z[:, 1]), "c": np.round(10 * z[:, 2]) + 50,
                       "k": pd.Categorical(np.where(z[:, 0] > 0.5, "hi", "lo"))})
    df["c"] = df["c"].astype(np.int64)
    bounds = {"a": (-5, 5), "b": (0, 15), "c": (0, 100)}
    dpm = DPGaussianCopula(epsilon=50.0, bounds=bounds, categories={"k": ["lo", "hi"]},
                           generator=dp.insecure_generator_for_tests(9), bins=100).fit(df)
    ref = synthcore.GaussianCopula().fit(df)
    names, r_dp = _named_correlation(dpm)
    _, r_ref = _named_correlation(ref)
    cont = [names.index(c) for c in ("a", "b", "c")]
    assert np.abs(r_dp[np.ix_(cont, cont)] - r_ref[np.ix_(cont, cont)]).max() < 0.03
    # the binary column (a threshold of "a"): level orders may differ (sign); the latent
    # tau-b inversion undoes the ties
    k = names.index("k")
    assert np.abs(np.abs(r_dp[k]) - np.abs(r_ref[k])).max() < 0.03
    s = dpm.sample(n, seed=3, backend="cpu")
    for c in ("a", "b", "c"):
        assert stats.ks_2samp(df[c], s[c]).statistic < 0.03, c
    p, q = df["k"].value_counts(normalize=True), s["k"].value_counts(normalize=True)
    assert abs(p["hi"] - q["hi"]) < 0.01


def test_point_masses_at_the_bounds_survive():
    rng = np.random.default_rng(5)
    x = np.where(rng.random(10_000) < 0.4, 0.0, np.minimum(rng.exponential(2.0, 10_000), 8.0))
    m = DPGaussianCopula(epsilon=20.0, bounds={"x": (0.0, 8.0)},
                         generator=dp.insecure_generator_for_tests(3)).fit({"x": x})
    s = m.sample(50_000, seed=1, backend="cpu")["x"]
    assert (s == 0.0).mean() == pytest.approx((x == 0.0).mean(), abs=0.01)
    assert (s == 8.0).mean() == pytest.approx((x == 8.0).mean(), abs=0.01)
    assert s.min() == 0.0 and s.max() == 8.0
    assert m.accountant.ledger[0].params["n"] == m.privacy["bins"]["x"] + 3  # spikes + null


def test_fit_is_deterministic_under_the_test_key(customers, model):
    again = _fit(customers)
    np.testing.assert_array_equal(again.correlation, model.correlation)
    for a, b in zip(again.columns, model.columns):
        for f in ("table", "thresholds"):
            if getattr(a, f) is not None:
                np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    pd.testing.assert_frame_equal(again.sample(1000, seed=2, backend="numpy"),
                                  model.sample(1000, seed=2, backend="numpy"))
    other = _fit(customers, key=2)
    assert not np.array_equal(other.correlation, model.correlation)


def test_fit_subsamples_rows_for_kendall_deterministically(customers):
    a = _fit(customers, tau_rows=1000)
    b = _fit(customers, tau_rows=1000)
    np.testing.assert_array_equal(a.correlation, b.correlation)
    assert a.privacy["kendall"]["rows"] == 1000
    assert a.accountant.ledger[-1].params["sensitivity"] == 2 * a.privacy["kendall"]["pairs"] * 999


def test_samples_respect_bounds_and_categories(customers):
    df = customers.copy()
    df.loc[:99, "income"] = 1e7            # outside the bounds: clipped
    df.loc[:99, "age"] = -5
    df["region"] = df["region"].astype(object)
    df.loc[:499, "region"] = "atlantis"    # not a listed category: counted as null
    bounds = {**BOUNDS, "income": (10_000, 150_000), "age": (20, 70),
              "signup": (pd.Timestamp("2020-01-01"), pd.Timestamp("2023-06-30"))}
    m = _fit(df, epsilon=5.0, bounds=bounds)
    s = m.sample(50_000, seed=5, backend="cpu")
    assert s["income"].min() >= 10_000 and s["income"].max() <= 150_000
    assert s["age"].min() >= 20 and s["age"].max() <= 70
    assert pd.api.types.is_integer_dtype(s["age"].dtype)
    assert s["orders"].min() >= 0 and s["orders"].max() <= 30
    assert s["signup"].min() >= pd.Timestamp("2020-01-01")
    assert s["signup"].max() <= pd.Timestamp("2023-06-30")
    assert set(s["plan"].dropna()) <= set(CATEGORIES["plan"])
    assert set(s["region"].dropna()) <= set(CATEGORIES["region"])
    assert s["region"].isna().mean() == pytest.approx(0.1, abs=0.03)
    assert s["rating"].dropna().isin([1, 2, 3, 4, 5]).all()


def test_numeric_columns_in_categories_are_modelled_by_level(customers):
    df = customers.copy()
    df["score"] = np.random.default_rng(1).choice([0.5, 1.5, 2.5], size=len(df))
    cats = {**CATEGORIES, "orders": list(range(0, 31)), "score": [2.5, 0.5, 1.5]}
    bounds = {k: v for k, v in BOUNDS.items() if k != "orders"}
    m = _fit(df, epsilon=5.0, bounds=bounds, categories=cats)
    col = next(c for c in m.columns if c.name == "orders")
    assert col.encoding == "levels" and col.levels.dtype == np.int64
    s = m.sample(10_000, seed=1, backend="cpu")
    assert s["orders"].dtype == np.int64 and s["orders"].isin(range(31)).all()
    # float and integer levels in one plan: the kernels agree
    assert set(s["score"]) == {0.5, 1.5, 2.5}
    pd.testing.assert_frame_equal(s, m.sample(10_000, seed=1, backend="numpy"))


# ---- persistence and kernels --------------------------------------------------------

def test_save_and_load_keep_the_privacy_record(model, tmp_path):
    path = tmp_path / "dp.synthcore"
    model.save(path)
    back = synthcore.load(path)
    assert type(back) is DPGaussianCopula
    assert back.privacy == model.privacy
    assert back.privacy["neighbouring"] == "replace-one-row"
    assert back.epsilon == 1.0 and back.budget_split == model.budget_split
    assert len(back.privacy["ledger"]) == len(model.accountant.ledger)
    assert back.privacy["categories"]["plan"] == CATEGORIES["plan"]
    pd.testing.assert_frame_equal(back.sample(2000, seed=4, backend="numpy"),
                                  model.sample(2000, seed=4, backend="numpy"))
    assert type(synthcore.GaussianCopula.load(path)) is DPGaussianCopula
    plain = tmp_path / "plain.synthcore"
    synthcore.GaussianCopula().fit(pd.DataFrame({"x": [1.0, 2.0, 3.0]})).save(plain)
    with pytest.raises(ValueError, match="plain Gaussian copula"):
        DPGaussianCopula.load(plain)
    assert type(synthcore.load(plain)) is synthcore.GaussianCopula


def test_sampling_runs_the_copula_kernels_bit_for_bit(model, native_backend):
    a = model.sample(30_000, seed=8, backend="numpy", output="numpy")
    b = model.sample(30_000, seed=8, backend=native_backend, output="numpy")
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
    assert synthcore.DPGaussianCopula is DPGaussianCopula is dp.DPGaussianCopula


def test_gaussian_correlation_noise_with_delta(customers, tmp_path):
    """With delta > 0 and enough pairs the Kendall vector gets Gaussian noise calibrated to
    (epsilon_correlation, delta) with L2 sensitivity 2 (n_s - 1) sqrt(P); it is charged
    exactly that, and saved."""
    m = _fit(customers, epsilon=1.0, delta=1e-6)
    corr = [e for e in m.accountant.ledger if e.name == "correlation:kendall"][0]
    pairs = m.privacy["kendall"]["pairs"]
    assert pairs >= 15 and m.privacy["kendall"]["mechanism"] == "gaussian"
    assert corr.mechanism == "gaussian" and corr.cost.delta == 1e-6
    assert corr.cost.epsilon == pytest.approx(0.5)
    n_s = m.privacy["kendall"]["rows"]
    assert corr.params["sensitivity"] == pytest.approx(2 * (n_s - 1) * math.sqrt(pairs))
    spent = m.accountant.spent()
    assert spent.epsilon <= 1.0 * (1 + 1e-12) and 1e-6 <= spent.delta < 1e-6 * (1 + 1e-9)
    laplace = _fit(customers, epsilon=1.0, delta=1e-6, correlation_noise="laplace")
    assert laplace.privacy["kendall"]["mechanism"] == "discrete_laplace"
    # the Gaussian noise on the statistics is smaller here (L2 sqrt(P) against L1 P)
    lap_sd = math.sqrt(2) * laplace.privacy["kendall"]["scale"]
    assert m.privacy["kendall"]["scale"] < lap_sd / 1.5
    m.save(tmp_path / "g.synthcore")
    assert synthcore.load(tmp_path / "g.synthcore").correlation_noise == "auto"
    with pytest.raises(ValueError, match="needs delta > 0"):
        DPGaussianCopula(epsilon=1.0, correlation_noise="gaussian")
    with pytest.raises(ValueError, match="correlation_noise"):
        DPGaussianCopula(epsilon=1.0, correlation_noise="normal")
