"""GaussianCopula(rules=, fixed_combinations=): constraints fitted into the model
(python/synthcore/_constraints.py, docs/copula.md "Constraints")."""
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import synthcore
from synthcore import GaussianCopula
from synthcore.rules import RuleError

N_REAL = 3000
CITIES = {"US": ["NY", "SF", "LA"], "CA": ["TO", "VA"], "FR": ["PA", "LY"]}


def _table(seed=0, n=N_REAL):
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(0, 10, n), 3)
    # b - a is small against the spread of a: an unconstrained copula often puts b below a
    b = np.round(a + 0.01 + rng.gamma(2.0, 0.5, n), 3)
    c = np.round(b + rng.exponential(2.0, n) + 0.001, 3)
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    end = start + pd.to_timedelta(30 + rng.integers(0, 10, n), unit="D")
    country = rng.choice(list(CITIES), n, p=[0.5, 0.3, 0.2])
    city = np.array([CITIES[x][rng.integers(0, len(CITIES[x]))] for x in country])
    lo = rng.integers(0, 100, n)
    return pd.DataFrame({"a": a, "b": b, "c": c, "start": start, "end": end,
                         "country": country, "city": city, "lo": lo,
                         "hi": lo + 5 + rng.integers(0, 40, n),
                         "smoker": rng.random(n) < 0.3, "size": rng.integers(1, 4, n)})


RULES = ["a < b < c", "end - start >= 30 days", "hi >= lo + 5"]


@pytest.fixture(scope="module")
def real():
    return _table()


@pytest.fixture(scope="module")
def model(real):
    return GaussianCopula(rules=RULES, fixed_combinations=[("country", "city")]).fit(real)


def _check_rules(frame, real):
    assert (frame.a < frame.b).all() and (frame.b < frame.c).all()
    assert ((frame.end - frame.start) >= pd.Timedelta(days=30)).all()
    assert (frame.hi >= frame.lo + 5).all()
    seen = set(zip(real.country, real.city))
    assert set(zip(frame.country, frame.city)) <= seen


def test_every_inequality_is_reparameterised(model):
    plan = model._constraints
    assert [(r.lo, r.hi) for r in plan.reparams] == [("a", "b"), ("b", "c"), ("start", "end"),
                                                      ("lo", "hi")]
    assert plan.skipped == []
    names = [m.name for m in model.columns]
    assert "b" not in names and "<b - a>" in names and "<country, city>" in names
    assert "city" not in names


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_every_row_satisfies_the_rules(model, real, backend):
    frame = model.sample(4000, seed=3, backend=backend)
    assert len(frame) == 4000 and list(frame.columns) == list(real.columns)
    assert (frame.dtypes == real.dtypes).all()
    _check_rules(frame, real)
    info = model.last_sample_info
    assert info["acceptance_rate"] > 0.99, info


def test_acceptance_beats_plain_rejection(real):
    plain = GaussianCopula().fit(real)
    plain.sample(4000, seed=3, rules=["a < b"])
    plain_rate = plain.last_sample_info["acceptance_rate"]
    constrained = GaussianCopula(rules=["a < b"]).fit(real)
    constrained.sample(4000, seed=3)
    rate = constrained.last_sample_info["acceptance_rate"]
    assert plain_rate < 0.9, plain_rate          # the data is hard for plain rejection
    assert rate > 0.995, rate


def test_marginals_of_b_and_of_the_difference(model, real):
    frame = model.sample(N_REAL, seed=11)
    for got, want in ((frame.b, real.b), (frame.b - frame.a, real.b - real.a),
                      (frame.c - frame.b, real.c - real.b), (frame.a, real.a),
                      ((frame.end - frame.start).dt.days, (real.end - real.start).dt.days),
                      (frame.hi - frame.lo, real.hi - real.lo)):
        p = stats.ks_2samp(got, want).pvalue
        assert p > 1e-3, (got.name, p)
    # the dependence between a and b survives
    assert abs(np.corrcoef(frame.a, frame.b)[0, 1] - np.corrcoef(real.a, real.b)[0, 1]) < 0.01


def test_rounding_and_dtypes_of_reconstructed_columns(model):
    frame = model.sample(2000, seed=5)
    assert np.array_equal(np.round(frame.b, 3), frame.b)
    assert frame.hi.dtype == np.int64
    assert ((frame.end - frame.end.dt.normalize()) == pd.Timedelta(0)).all()   # whole days


def test_fixed_combinations_only_seen_with_their_frequencies(model, real):
    frame = model.sample(20000, seed=7)
    want = real.groupby(["country", "city"]).size()
    got = frame.groupby(["country", "city"]).size().reindex(want.index, fill_value=0)
    assert got.sum() == len(frame)              # no unseen combination
    chi2 = stats.chisquare(got.to_numpy(), want.to_numpy() / want.sum() * len(frame))
    assert chi2.pvalue > 1e-3, chi2


def test_conditions_on_members(model, real):
    us = model.sample(3000, seed=2, conditions={"country": "US"})
    assert (us.country == "US").all()
    assert set(us.city) == set(CITIES["US"])
    want = real[real.country == "US"].city.value_counts()
    got = us.city.value_counts().reindex(want.index)
    assert stats.chisquare(got, want / want.sum() * len(us)).pvalue > 1e-3
    sf = model.sample(200, seed=2, conditions={"city": "SF", "a": (0, 5)})
    assert (sf.city == "SF").all() and (sf.country == "US").all()
    assert sf.a.between(0, 5).all()
    with pytest.raises(synthcore.ImpossibleConditionError, match="country"):
        model.sample(10, seed=2, conditions={"country": "US", "city": "PA"})
    with pytest.raises(ValueError, match="'b'.*reconstructs"):
        model.sample(10, seed=2, conditions={"b": 1.0})
    with pytest.raises(ValueError, match=r"per-row conditions name \['city'\]"):
        model.sample(None, seed=2, conditions=pd.DataFrame({"city": ["SF", "NY"]}))
    with pytest.raises(ValueError, match="per-row conditions cannot combine|a table of per-row"):
        model.sample(None, seed=2, conditions=pd.DataFrame({"a": [1.0, 2.0]}))
    rows = GaussianCopula(fixed_combinations=[("country", "city")]).fit(real).sample(
        None, seed=2, conditions=pd.DataFrame({"a": [1.0, -2.0]}))
    assert len(rows) == 2 and {(x, y) for x, y in zip(rows.country, rows.city)} <= \
        set(zip(real.country, real.city))


def test_condition_on_a_member_whose_levels_are_not_adjacent(real):
    # (smoker, size) is no hierarchy: the levels with size 2 are spread over both
    # smoker groups, so the condition adds a rule that rejects the others in between
    m = GaussianCopula(fixed_combinations=[("smoker", "size")]).fit(real)
    frame = m.sample(6000, seed=4, conditions={"size": 2})
    assert (frame["size"] == 2).all()
    # the only condition: each row picks one run of the allowed levels by its mass
    assert m.last_sample_info["violations"]['"size" = 2'] == 0
    want = real[real["size"] == 2].smoker.mean()
    assert abs(frame.smoker.mean() - want) < 4 * np.sqrt(want * (1 - want) / len(frame))
    assert frame.equals(m.sample(6000, seed=4, conditions={"size": 2}, backend="numpy"))
    assert frame.head(999).equals(m.sample(999, seed=4, conditions={"size": 2}))
    # with another condition: the interval over all of them, the others rejected
    both = m.sample(3000, seed=4, conditions={"size": 2, "a": (-30, 0)})
    assert (both["size"] == 2).all() and (both.a <= 0).all()
    assert m.last_sample_info["violations"]['"size" = 2'] > 0
    want = real[(real["size"] == 2) & (real.a <= 0)].smoker.mean()
    assert abs(both.smoker.mean() - want) < 4 * np.sqrt(want * (1 - want) / len(both))
    # without stored rules and on the first member: plain conditional sampling
    first = m.sample(100, seed=4, conditions={"smoker": True})
    assert first.smoker.all()


def test_same_seed_same_rows_any_batch_thread_or_backend(model):
    full = model.sample(3000, seed=9, backend="cpu")
    assert full.equals(model.sample(3000, seed=9, backend="cpu"))
    assert full.head(700).equals(model.sample(700, seed=9, backend="cpu"))
    assert full.equals(model.sample(3000, seed=9, backend="numpy"))
    before = synthcore.get_num_threads()
    try:
        synthcore.set_num_threads(1)
        assert full.equals(model.sample(3000, seed=9, backend="cpu"))
    finally:
        synthcore.set_num_threads(before)
    assert not full.equals(model.sample(3000, seed=10, backend="cpu"))


@pytest.mark.parametrize("output", ["arrow", "polars", "numpy"])
def test_every_output_type(model, real, output):
    got = model.sample(500, seed=6, output=output)
    frame = pd.DataFrame(got) if output == "numpy" else got.to_pandas()
    want = model.sample(500, seed=6)
    for name in real.columns:
        assert np.array_equal(np.asarray(frame[name]), np.asarray(want[name])), name


def test_sample_time_rules_combine_with_stored_ones(model):
    frame = model.sample(1000, seed=8, rules=["a > 0", "total := a + b"])
    assert (frame.a > 0).all() and (frame.a < frame.b).all()
    assert np.allclose(frame.total, frame.a + frame.b)
    assert set(model.last_sample_info["violations"]) >= {"a > 0", "a < b < c"}


def test_save_load_round_trip(model, tmp_path):
    path = tmp_path / "m.sc"
    model.save(path)
    loaded = synthcore.load(path)
    assert loaded._constraints.to_json() == model._constraints.to_json()
    assert loaded.sample(2000, seed=12).equals(model.sample(2000, seed=12))
    assert loaded.sample(50, seed=1, conditions={"country": "CA"}).country.eq("CA").all()
    with zipfile.ZipFile(path) as zf:
        header = json.loads(zf.read("model.json"))
    assert header["version"] == 2 and header["settings"]["rules"] == RULES


def test_files_without_constraints_still_load(real, tmp_path):
    plain = GaussianCopula().fit(real[["a", "b", "country"]])
    path = tmp_path / "old.sc"
    plain.save(path)
    # a file written before the constraint settings existed
    with zipfile.ZipFile(path) as zf:
        header = json.loads(zf.read("model.json"))
        arrays = zf.read("arrays.npz")
    assert header["version"] == 1
    for k in ("rules", "fixed_combinations"):
        del header["settings"][k]
    old = tmp_path / "older.sc"
    with zipfile.ZipFile(old, "w") as zf:
        zf.writestr("model.json", json.dumps(header))
        zf.writestr("arrays.npz", arrays)
    loaded = synthcore.load(old)
    assert loaded._constraints is None
    assert loaded.sample(100, seed=1).equals(plain.sample(100, seed=1))


def test_nulls_follow_the_rule_language(real):
    df = real[["a", "b", "country"]].copy()
    rng = np.random.default_rng(1)
    gone = rng.random(len(df)) < 0.2
    df.loc[gone, "b"] = np.nan                                  # b null: the rule is null
    df.loc[gone & (rng.random(len(df)) < 0.5), "a"] = np.nan    # a null only with b null
    m = GaussianCopula(rules=["a < b"]).fit(df)
    assert [r.hi for r in m._constraints.reparams] == ["b"]
    frame = m.sample(4000, seed=1)
    both = frame.a.notna() & frame.b.notna()
    assert (frame.a[both] < frame.b[both]).all()
    assert not (frame.a.isna() & frame.b.notna()).any()         # b needs a, as in the data
    assert abs(frame.b.isna().mean() - df.b.isna().mean()) < 0.03
    # b without a in the data: not reparameterised, still enforced by rejection
    df2 = df.copy()
    df2.loc[df2.a.isna().to_numpy().nonzero()[0][:5], "b"] = 1.0
    m2 = GaussianCopula(rules=["a < b"]).fit(df2)
    assert m2._constraints.reparams == [] and "without 'a'" in m2._constraints.skipped[0][1]
    frame2 = m2.sample(2000, seed=1)
    ok = frame2.a.notna() & frame2.b.notna()
    assert (frame2.a[ok] < frame2.b[ok]).all()


def test_rule_violated_by_the_real_data_is_named(real):
    with pytest.raises(ValueError, match=r"rule 1 'b < a' is false on 3000 of 3000 rows"):
        GaussianCopula(rules=["a < b", "b < a"]).fit(real)


def test_unknown_column_and_incompatible_types_are_named(real):
    with pytest.raises(RuleError, match="nope"):
        GaussianCopula(rules=["a < nope"]).fit(real)
    with pytest.raises(RuleError) as err:
        GaussianCopula(rules=["start < a"]).fit(real)
    assert err.value.rule == "start < a"
    with pytest.raises(ValueError, match="'nope'"):
        GaussianCopula(fixed_combinations=[("country", "nope")]).fit(real)
    with pytest.raises(ValueError, match="column 'a' is float"):
        GaussianCopula(fixed_combinations=[("country", "a")]).fit(real)
    with pytest.raises(ValueError, match="fixed_combinations\\[1\\]"):
        GaussianCopula(fixed_combinations=[("country", "city"), ("city", "size")])
    with pytest.raises(ValueError, match="derived column 'total'"):
        GaussianCopula(rules=["total := a + b"]).fit(real)


def test_rules_that_are_not_inequalities_are_enforced(real):
    df = real[~((real.country == "US") & (real.a <= -5))]
    m = GaussianCopula(rules=["if country = 'US' then a > -5", "a < b"]).fit(df)
    assert [r.hi for r in m._constraints.reparams] == ["b"]
    frame = m.sample(2000, seed=3)
    assert (frame.a[frame.country == "US"] > -5).all()
    assert m.last_sample_info["violations"]["if country = 'US' then a > -5"] > 0


def test_a_column_gets_one_parent_and_cycles_are_skipped(real):
    m = GaussianCopula(rules=["a < c", "b < c", "a <= b"]).fit(real)
    assert [(r.lo, r.hi) for r in m._constraints.reparams] == [("a", "b"), ("a", "c")] or \
        [(r.lo, r.hi) for r in m._constraints.reparams] == [("a", "c"), ("a", "b")]
    assert any("already reconstructed" in why for _, why in m._constraints.skipped)
    frame = m.sample(2000, seed=2)
    assert ((frame.a < frame.c) & (frame.b < frame.c) & (frame.a <= frame.b)).all()


@pytest.mark.gpu
@pytest.mark.skipif(not synthcore._backend.cuda_usable(), reason="needs CuPy, a GPU and _cuda")
def test_cuda_fixed_combinations_match_cpu(real):
    m = GaussianCopula(fixed_combinations=[("country", "city")]).fit(
        real[["a", "country", "city", "smoker"]])
    dev = m.sample(5000, seed=1, backend="cuda", output="cupy")
    host = m.sample(5000, seed=1, backend="cpu")
    cats = m.categories("city")
    assert np.array_equal(cats[dev["city"].get()], host.city.to_numpy())
    assert np.array_equal(m.categories("country")[dev["country"].get()],
                          host.country.to_numpy())
    assert m.sample(5000, seed=1, backend="cuda").equals(host)
    constrained = GaussianCopula(rules=["a < b"]).fit(real[["a", "b"]])
    assert constrained.sample(100, seed=1, backend="cuda").equals(
        constrained.sample(100, seed=1, backend="cpu"))
    with pytest.raises(ValueError, match="host output"):
        constrained.sample(100, seed=1, backend="cuda", output="cupy")


def test_fully_reparameterised_rules_skip_reject_and_refill(model, real, monkeypatch):
    # every stored rule is held by construction: the plain sample, checked, is the
    # result, and equals what reject and refill gives (its first n candidates)
    from synthcore import _rules_sampling
    assert model._constraints.all_reparameterised()
    want = model.sample(3000, seed=5, rules=["a > -1e9"])   # forces reject and refill
    calls = []
    monkeypatch.setattr(_rules_sampling, "sample_with_rules",
                        lambda *a, **k: calls.append(1) or pytest.fail("rules path taken"))
    for backend in ("numpy", "cpu"):
        got = model.sample(3000, seed=5, backend=backend)
        pd.testing.assert_frame_equal(got, want[list(real.columns)])
        info = model.last_sample_info
        assert info["candidates"] == 3000 and info["acceptance_rate"] == 1.0
        assert set(info["violations"]) == set(RULES) and not any(info["violations"].values())
    assert not calls


def test_a_row_breaking_a_reparameterised_rule_takes_the_rules_path(model, monkeypatch):
    # should the reconstruction ever break a rule (float rounding), the sample is the
    # reject-and-refill one, not a short or invalid one
    from synthcore import rules as rules_module
    real_evaluate = rules_module.Rules.evaluate
    state = {"first": True}

    def evaluate_failing_once(self, table, **kw):
        result = real_evaluate(self, table, **kw)
        if state.pop("first", False):
            result.mask[7] = False
        return result
    monkeypatch.setattr(rules_module.Rules, "evaluate", evaluate_failing_once)
    got = model.sample(2000, seed=4, backend="cpu")
    monkeypatch.undo()
    assert len(got) == 2000 and not state
    want = model.sample(2000, seed=4, backend="cpu", rules=["a > -1e9"])
    pd.testing.assert_frame_equal(got, want[list(got.columns)])


def test_rules_with_other_conjuncts_are_not_fully_reparameterised(real):
    m = GaussianCopula(rules=["a < b and c > -1e9"]).fit(real)
    assert [r.hi for r in m._constraints.reparams] == ["b"]
    assert not m._constraints.all_reparameterised()
    assert GaussianCopula(rules=["a < b", "b < c"]).fit(real)._constraints.all_reparameterised()


def test_rules_compile_against_the_columns_as_the_model_reads_them(real):
    # y is a float in the table but categorical for the model: 'x < y' passes on the
    # table, yet no sample could evaluate it, so fit must say so, not every sample()
    df = real[["a", "b"]]
    with pytest.raises(RuleError) as err:
        GaussianCopula(column_kinds={"b": "categorical"}, rules=["a < b"]).fit(df)
    assert err.value.rule == "a < b"


def test_differences_that_int64_or_float64_cannot_hold_are_not_reparameterised():
    rng = np.random.default_rng(3)
    lo = rng.integers(0, 100, 500)
    df = pd.DataFrame({"lo": lo, "hi": lo + rng.integers(0, 50, 500),
                       "x": rng.normal(size=500)})
    df["y"] = df.x + rng.exponential(1.0, 500)
    # an offset beyond int64: was an OverflowError out of fit
    m = GaussianCopula(rules=["hi <= lo + 1e30"]).fit(df[["lo", "hi"]])
    assert m._constraints.reparams == [] and "int64" in m._constraints.skipped[0][1]
    # float64 cannot hold y - x + 1e30: y would come back as x (the rule holds anyway)
    m = GaussianCopula(rules=["y <= x + 1e30"]).fit(df[["x", "y"]])
    assert m._constraints.reparams == [] and "float64" in m._constraints.skipped[0][1]
    assert np.std(m.sample(500, seed=1).eval("y - x")) > 0.5
    # hi - lo beyond int64: the difference wrapped round at fit
    big = pd.DataFrame({"lo": rng.integers(-2**62 - 2**61, -2**62, 500),
                        "hi": rng.integers(2**62, 2**62 + 2**61, 500)})
    m = GaussianCopula(rules=["lo < hi"]).fit(big)
    assert m._constraints.reparams == [] and "int64" in m._constraints.skipped[0][1]
    f = m.sample(1000, seed=1)
    assert (f.lo < f.hi).all()
    # hi is modelled itself, within float64's knots of the observed range (was up to 2**63)
    assert f.hi.min() >= big.hi.min() * (1 - 1e-12) and f.hi.max() <= big.hi.max() * (1 + 1e-12)


def test_reconstructed_columns_keep_their_own_rounding_without_breaking_the_rule(tmp_path):
    rng = np.random.default_rng(5)
    n = 2000
    # whole-day ends after starts at any second: end = start + d is rounded to whole days
    start = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n),
                                                                    unit="s"))
    end = start.dt.ceil("D") + pd.to_timedelta(rng.integers(0, 20, n), unit="D")
    m = GaussianCopula(rules=["start <= end"]).fit(pd.DataFrame({"start": start, "end": end}))
    f = m.sample(3000, seed=1)
    assert (f.end == f.end.dt.normalize()).all()          # was 0% at midnight
    assert (f.start <= f.end).all() and m.last_sample_info["acceptance_rate"] == 1.0
    path = tmp_path / "days.sc"
    m.save(path)
    assert synthcore.load(path).sample(3000, seed=1).equals(f)
    # integer-valued b strictly above a with decimals: rounding b to the nearest whole
    # number could put it at or below a (those rows were rejected, ~3%)
    a = np.round(rng.normal(0, 10, n), 3)
    b = np.floor(a) + 1 + rng.integers(0, 3, n)
    for rules, shift, decimals in ((["a < b"], 0.0, 0), (["b > a + 0.5"], 0.5, 1)):
        m = GaussianCopula(rules=rules).fit(pd.DataFrame({"a": a, "b": b + shift}))
        f = m.sample(3000, seed=2)
        assert m.last_sample_info["acceptance_rate"] == 1.0, rules
        assert np.array_equal(np.round(f.b, decimals), f.b)
    # a float a below an integer b
    m = GaussianCopula(rules=["a < k"]).fit(pd.DataFrame({"a": a, "k": b.astype(np.int64)}))
    f = m.sample(3000, seed=2)
    assert m.last_sample_info["acceptance_rate"] == 1.0 and (f.a < f.k).all()
    # unrounded b >= a + 0.1: b - a - 0.1 is an ulp below 0 on some real rows, so d's
    # table starts below 0 and b = a + 0.1 + d could fall below a + 0.1
    x = np.round(rng.normal(0, 10, n), 2)
    y = np.round(x + 0.1 + rng.exponential(1, n), 1)
    y = np.where(y >= x + 0.1, y, y + 0.1)
    m = GaussianCopula(rules=["y >= x + 0.1"]).fit(pd.DataFrame({"x": x, "y": y}))
    f = m.sample(3000, seed=1)
    assert m.last_sample_info["acceptance_rate"] == 1.0 and (f.y >= f.x + 0.1).all()


def test_shortcut_equals_reject_and_refill_in_windows_streams_and_keys(real):
    df = real.assign(id=np.arange(len(real)) * 3 + 7)
    m = GaussianCopula(rules=RULES, fixed_combinations=[("country", "city")],
                       column_kinds={"id": "key"}).fit(df)
    assert m._constraints.all_reparameterised()
    full = m.sample(1500, seed=5, stream=3)
    tail = m.sample(900, seed=5, stream=3, row_offset=600)
    assert full.iloc[600:].reset_index(drop=True).equals(tail)
    want = m.sample(900, seed=5, stream=3, row_offset=600, rules=["a > -1e9"])
    pd.testing.assert_frame_equal(tail, want[list(tail.columns)])
    assert tail.id.iloc[0] == 607
    # the shortcut checks its arguments as reject and refill does
    with pytest.raises(ValueError, match="min_acceptance"):
        m.sample(10, seed=5, min_acceptance=2.0)


def test_a_reversed_range_on_a_member_is_a_bad_argument_as_on_other_columns(real):
    m = GaussianCopula(fixed_combinations=[("smoker", "size")]).fit(real[["smoker", "size"]])
    for name in ("size", "smoker"):
        with pytest.raises(ValueError, match=r"conditions\['%s'\]" % name) as err:
            m.sample(10, seed=1, conditions={name: (3, 2)})
        assert not isinstance(err.value, synthcore.ImpossibleConditionError)


def test_any_null_scalar_conditions_a_member_on_null():
    rng = np.random.default_rng(2)
    size = pd.array(rng.integers(1, 4, 1000), dtype="Int64")
    size[rng.random(1000) < 0.2] = pd.NA
    m = GaussianCopula(fixed_combinations=[("smoker", "size")]).fit(
        pd.DataFrame({"smoker": rng.random(1000) < 0.3, "size": size}))
    for null in (None, np.nan, pd.NA, pd.NaT):      # pd.NA was a UFuncTypeError
        assert m.sample(50, seed=1, conditions={"size": null})["size"].isna().all(), null
