"""Rules evaluated and rows compacted inside the cpu copula kernel (copula_sample_rules,
synthcore/_rules_sampling.py): the rows, their order, the derived columns and the
acceptance record equal the unfused path and filtering the plain sample (then
evaluating the derived columns), whatever the batches and threads."""
import numpy as np
import pandas as pd
import pytest

import synthcore
from synthcore import _backend, _rules_sampling
from synthcore.rules import Rules


@pytest.fixture(scope="module")
def mixed_model():
    rng = np.random.default_rng(7)
    n = 4000
    x = rng.normal(size=n)
    x[rng.random(n) < 0.1] = np.nan
    cat = rng.choice(np.array(["a", "b", "c", "d"], dtype=object), n)
    cat[rng.random(n) < 0.05] = None
    rating = pd.array(rng.integers(1, 6, n), dtype="Int64")
    rating[rng.random(n) < 0.2] = pd.NA
    table = pd.DataFrame({
        "id": np.arange(n) + 1000,
        "x": x,
        "f32": rng.normal(size=n).astype(np.float32),
        "i64": rng.integers(-1000, 1000, n),
        "lvl": rng.integers(0, 4, n),
        "i32": rng.integers(-500, 500, n).astype(np.int32),
        "rating": rating,
        "cat": cat,
        "big": pd.Categorical([f"L{v}" for v in rng.integers(0, 200, n)]),
        "flag": rng.random(n) < 0.6,
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365 * 86400, n),
                                                              unit="s"),
    })
    return synthcore.GaussianCopula(column_kinds={"id": "key"}).fit(table)


RULE_SETS = {
    "comparisons": ["x > -1", "i64 <= 600", "f32 >= -1.5"],
    "in_and_null": ["cat in ('a', 'b', 'c')", "rating is null or rating >= 2", "lvl != 2"],
    "columns": ["x < f32 + 1", "i32 >= i64 - 900", "lvl <= rating"],
    "categorical_bool": ["(cat = 'a') or flag", "big != 'L7'", "not flag or x is not null"],
    "datetime": ["when >= '2020-06-01'", "when < timestamp '2022-10-01 12:00'"],
    "low_acceptance": ["x > 0.8", "i64 > -200"],
    # derived columns, one output kind each (nulls included), some read by later rules
    "derived_float": ["x < f32 + 1", "ratio = x / (abs(f32) + 1)", "ratio > -2"],
    "derived_int": ["i64 <= 600", "s = i64 + i32 * 2", "r2 = rating * lvl", "s % 7 != 3",
                    "one := 1"],
    "derived_bool": ["big_x = x > 0.5 or flag", "i64 > -900", "both = flag and rating >= 3"],
    "derived_categorical": ["label = if flag then 'yes' else cat", "lvl != 2", "b2 := big"],
    "derived_time": ["later = when + 30 days", "gap = when - timestamp '2020-01-01'",
                     "gap < 900 days", "span = 1 day * rating",
                     "maybe = if x > 0 then when else null"],
    "derived_only": ["total = i64 * lvl"],
}
DERIVED = {"derived_float": ["ratio"], "derived_int": ["s", "r2", "one"],
           "derived_bool": ["big_x", "both"], "derived_categorical": ["label", "b2"],
           "derived_time": ["later", "gap", "span", "maybe"], "derived_only": ["total"]}
NULLABLE_DERIVED = {"ratio", "r2", "big_x", "both", "label", "span", "maybe"}


def _values_and_nulls(x):
    """(values, null mask) of a sampled or evaluated derived column, comparable across
    the representations (datetimes and durations as int64 ns, nulls zeroed / None)."""
    if isinstance(x, pd.Series):
        x = x.array
    if isinstance(x, np.ma.MaskedArray):
        null, v = np.ma.getmaskarray(x), np.asarray(x.data)
    elif isinstance(x, pd.api.extensions.ExtensionArray) and \
            hasattr(x.dtype, "numpy_dtype"):                # Int64 / boolean
        null = np.asarray(x.isna())
        v = x.to_numpy(dtype=x.dtype.numpy_dtype, na_value=0)
    else:
        v = np.asarray(x)
        null = np.asarray(pd.isna(v))
    if v.dtype.kind in "mM":
        v = v.view("i8")
    v = v.copy()
    v[null] = None if v.dtype == object else 0
    return v, null


def _unfused(monkeypatch):
    monkeypatch.setattr(_rules_sampling, "fused_program", lambda *a, **k: None)


def _plan_inputs(model, rules):
    plan = model.plan()
    sampled = frozenset(m.name for m in model.columns if m.value_dim is not None)
    return plan, _rules_sampling.fused_program(model, plan, Rules(rules), sampled)


@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_every_column_kind_is_fused(mixed_model, name):
    _, fused = _plan_inputs(mixed_model, RULE_SETS[name])
    assert fused is not None


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_fused_equals_unfused_and_filtering(mixed_model, monkeypatch, name, threads):
    rules = RULE_SETS[name]
    synthcore.set_num_threads(threads)
    try:
        n = 60_000 if name != "low_acceptance" else 20_000
        got = mixed_model.sample(n, seed=3, row_offset=11, rules=rules, backend="cpu")
        info = mixed_model.last_sample_info
        with monkeypatch.context() as m:
            _unfused(m)
            want = mixed_model.sample(n, seed=3, row_offset=11, rules=rules, backend="cpu")
            assert mixed_model.last_sample_info == info
        pd.testing.assert_frame_equal(got, want)
        assert len(got) == n
        if name == "low_acceptance":
            assert info["acceptance_rate"] < 0.3
        else:
            assert info["acceptance_rate"] > 0.3
        # the first n accepted candidates of rows 11, 12, ... in row order
        plain = mixed_model.sample(info["candidates"], seed=3, row_offset=11, backend="cpu")
        derived = DERIVED.get(name, [])
        kept = Rules(rules).filter(plain)[list(plain.columns)].reset_index(drop=True)
        assert list(got.columns) == list(plain.columns) + derived
        pd.testing.assert_frame_equal(kept, got[list(plain.columns)].reset_index(drop=True))
        # the derived columns as evaluating the rules on the plain sample gives them
        res = Rules(rules).evaluate(plain, backend="numpy")
        assert sorted(res.derived) == sorted(derived)
        for col in derived:
            assert got[col].isna().any() == (col in NULLABLE_DERIVED), col
            v, null = _values_and_nulls(got[col])
            w, wnull = _values_and_nulls(res.derived[col][res.mask])
            assert np.array_equal(null, wnull), col
            assert np.array_equal(v, w), col
    finally:
        synthcore.set_num_threads(None)


@pytest.mark.parametrize("batch", [1024, 5000, 33_333])
def test_fused_does_not_depend_on_batching(mixed_model, monkeypatch, batch):
    rules = RULE_SETS["in_and_null"] + ["x > -0.5"] + RULE_SETS["derived_categorical"] + \
        ["d = x * 3", "t = when + 1 day * lvl"]
    want = mixed_model.sample(50_000, seed=8, rules=rules, backend="cpu")
    monkeypatch.setattr(_rules_sampling, "PILOT", 100)
    monkeypatch.setattr(_rules_sampling, "MAX_BATCH", batch)
    for threads in (1, 3):
        synthcore.set_num_threads(threads)
        try:
            got = mixed_model.sample(50_000, seed=8, rules=rules, backend="cpu")
        finally:
            synthcore.set_num_threads(None)
        pd.testing.assert_frame_equal(got, want)   # keys (from kept row indices) included
    numpy = mixed_model.sample(5_000, seed=8, rules=rules, backend="numpy")
    pd.testing.assert_frame_equal(numpy, want.iloc[:5000])


def test_kernel_mask_counts_and_rows_equal_rules_evaluate(mixed_model):
    """copula_sample_rules against copula_sample + rules_evaluate on the same rows, with
    several pieces per thread and a limit below the kept count."""
    from synthcore._seeding import philox_key
    from synthcore.copula import _plan_arrays
    from synthcore.rules import _OUT_DTYPE, _TableView, run_program
    rules = RULE_SETS["categorical_bool"] + RULE_SETS["columns"] + \
        RULE_SETS["derived_bool"] + RULE_SETS["derived_time"] + RULE_SETS["derived_float"]
    plan, (program, dims, types, derived_types) = _plan_inputs(mixed_model, rules)
    assert len(program.outputs) == 7
    core, key, n = _backend.core_module(), philox_key(5), 150_001
    plain = [np.empty(n, dt) for dt in plan.out_dtype]
    core.copula_sample(*_plan_arrays(plan), plain, key.k0, key.k1, 2, 77, 1)
    table = mixed_model.sample(n, seed=5, stream=2, row_offset=77, backend="cpu")
    want = Rules(rules).evaluate(table, backend="numpy")
    # the raw derived values (registers' encoding) of the same program on the same rows
    sampled = frozenset(m.name for m in mixed_model.columns if m.value_dim is not None)
    bound, columns, _ = Rules(rules).bind(_TableView(
        mixed_model._output_columns(plain, n, 77), sentinel_nulls=sampled))
    want_mask, _, want_derived = run_program(bound, columns, n, "numpy")
    assert np.array_equal(want_mask, want.mask)
    for threads in (1, 2, 3):
        for limit in (n, 1000):
            outs = [np.full(n, 0x55, dt) for dt in plan.out_dtype]
            derived = [np.full(n, 0x55, _OUT_DTYPE[o.storage]) for o in program.outputs]
            mask = np.empty(n, np.uint8)
            counts = np.zeros(program.n_rules, np.int64)
            kept = core.copula_sample_rules(
                *_plan_arrays(plan), outs, key.k0, key.k1, 2, 77, program.code,
                program.n_registers, program.const_f64, program.const_i64, dims, types,
                derived, derived_types, mask, counts, limit, threads)
            assert np.array_equal(mask.view(bool), want.mask)
            assert np.array_equal(counts, want.counts)
            assert kept == int(want.mask.sum())
            take = min(kept, limit)
            for o, p in zip(outs + derived, plain + want_derived):   # bitwise (NaN nulls too)
                bits = f"u{o.itemsize}"
                assert np.array_equal(o[:take].view(bits), p[want.mask][:take].view(bits))


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_derived_columns_take_the_fused_path(mixed_model, monkeypatch, name):
    """The kernel computes and compacts the derived columns: neither the batch
    evaluation nor the whole-batch compaction of the unfused path runs."""
    from synthcore import _compact, rules as rules_module
    core = _backend.core_module()
    calls = []
    kernel = core.copula_sample_rules

    def spy(*args, **kwargs):
        calls.append(len(args[-6]))   # the derived columns handed to the kernel (6th from last)
        return kernel(*args, **kwargs)

    def unfused(*args, **kwargs):
        raise AssertionError("the unfused path ran")
    monkeypatch.setattr(core, "copula_sample_rules", spy)
    monkeypatch.setattr(rules_module, "run_program", unfused)
    monkeypatch.setattr(_compact, "compact_rows", unfused)
    out = mixed_model.sample(20_000, seed=4, rules=RULE_SETS[name], backend="cpu")
    assert len(out) == 20_000 and list(out.columns[-len(DERIVED[name]):]) == DERIVED[name]
    assert calls and all(c == len(DERIVED[name]) for c in calls)


def test_derived_values_follow_the_rows(mixed_model):
    out = mixed_model.sample(3000, seed=1, rules=["x > 0", "y = x * 2"], backend="cpu")
    assert (out["x"].dropna() > 0).all() and np.allclose(out["y"], out["x"] * 2, equal_nan=True)


def test_conditions_take_the_unfused_path(mixed_model, monkeypatch):
    calls = []
    core = _backend.core_module()
    kernel = core.copula_sample_rules
    monkeypatch.setattr(core, "copula_sample_rules",
                        lambda *a, **k: calls.append(1) or kernel(*a, **k))
    out = mixed_model.sample(3000, seed=1, rules=["x > 0", "y = x + lvl"],
                             conditions={"lvl": 1}, backend="cpu")
    assert not calls
    assert (out["lvl"] == 1).all() and (out["x"].dropna() > 0).all()
    assert np.allclose(out["y"], out["x"] + 1, equal_nan=True)


def test_bad_program_inputs_raise(mixed_model):
    from synthcore._seeding import philox_key
    from synthcore.copula import _plan_arrays
    plan, (program, dims, types, derived_types) = _plan_inputs(mixed_model,
                                                                ["x > 0", "y = x * 2"])
    core, key, n = _backend.core_module(), philox_key(5), 100
    outs = [np.empty(n, dt) for dt in plan.out_dtype]
    y = np.empty(n)

    def args(d=dims, t=types, derived=(y,), dt=derived_types):
        return (*_plan_arrays(plan), outs, key.k0, key.k1, 0, 0, program.code,
                program.n_registers, program.const_f64, program.const_i64, d, t,
                list(derived), dt, np.empty(n, np.uint8), np.zeros(1, np.int64), n, 1)
    core.copula_sample_rules(*args())
    with pytest.raises(ValueError, match="no output dim"):
        core.copula_sample_rules(*args(d=np.array([99], np.int32)))
    with pytest.raises(ValueError, match="cannot be read"):
        core.copula_sample_rules(*args(t=np.array([3], np.int32)))
    with pytest.raises(ValueError, match="output index out of range"):
        core.copula_sample_rules(*args(derived=(), dt=np.zeros(0, np.int32)))
    with pytest.raises(ValueError, match="output storage mismatch"):
        core.copula_sample_rules(*args(derived=(np.empty(n, np.uint8),),
                                       dt=np.array([3], np.int32)))
    with pytest.raises(ValueError, match="storage must be"):
        core.copula_sample_rules(*args(dt=np.array([2], np.int32)))
    with pytest.raises(ValueError, match="n values"):
        core.copula_sample_rules(*args(derived=(np.empty(n - 1),)))
    with pytest.raises(ValueError, match="differ in length"):
        core.copula_sample_rules(*args(dt=np.zeros(2, np.int32)))
    with pytest.raises(ValueError, match="overlaps"):
        core.copula_sample_rules(*args(derived=(outs[dims[0]],)))


def test_widened_nullable_columns(monkeypatch):
    """Nullable int32, boolean and float32 columns: widened per chunk, their null
    indicator read as null, as the unfused path encodes them."""
    rng = np.random.default_rng(1)
    n = 3000
    v = pd.array(rng.integers(-500, 500, n).astype(np.int32), dtype="Int32")
    v[rng.random(n) < 0.2] = pd.NA
    b = pd.array(rng.random(n) < 0.5, dtype="boolean")
    b[rng.random(n) < 0.2] = pd.NA
    f = rng.normal(size=n).astype(np.float32)
    f[rng.random(n) < 0.1] = np.nan
    model = synthcore.GaussianCopula().fit(pd.DataFrame({"v": v, "b": b, "f": f}))
    for rules in (["v > -200", "b or f > 0"], ["v is null or not b", "f is not null"],
                  ["b is null", "v < 100"]):
        assert _plan_inputs(model, rules)[1] is not None
        got = model.sample(40_000, seed=2, rules=rules, backend="cpu")
        info = model.last_sample_info
        with monkeypatch.context() as m:
            _unfused(m)
            want = model.sample(40_000, seed=2, rules=rules, backend="cpu")
        pd.testing.assert_frame_equal(got, want)
        plain = model.sample(info["candidates"], seed=2, backend="cpu")
        kept = Rules(rules).filter(plain).reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, got.reset_index(drop=True))
