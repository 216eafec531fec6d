"""GaussianCopula: fit on mixed types, sample on every backend, persistence, bad input."""
import importlib.resources
import zipfile

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import synthcore
from synthcore import GaussianCopula


@pytest.fixture(scope="module")
def customers():
    path = importlib.resources.files("synthcore") / "data" / "customers.parquet"
    return pd.read_parquet(path)


@pytest.fixture(scope="module")
def model(customers):
    return GaussianCopula().fit(customers)


@pytest.fixture(scope="module")
def synthetic(model):
    return model.sample(100_000, seed=7, backend="cpu")


def test_types_nulls_and_bounds_are_kept(customers, synthetic):
    assert list(synthetic.columns) == list(customers.columns)
    assert len(synthetic) == 100_000
    for col in customers.columns:
        assert synthetic[col].dtype == customers[col].dtype, col
        assert abs(synthetic[col].isna().mean() - customers[col].isna().mean()) < 0.01, col
    for col in ["age", "income", "monthly_spend", "orders", "rating", "signup"]:
        real, syn = customers[col].dropna(), synthetic[col].dropna()
        assert syn.min() >= real.min() and syn.max() <= real.max(), col
    # learnt rounding: income in hundreds, spend in cents, signup in whole seconds
    assert (synthetic["income"] % 100 == 0).all()
    assert np.allclose(synthetic["monthly_spend"].dropna() * 100,
                       np.round(synthetic["monthly_spend"].dropna() * 100))
    assert (synthetic["signup"].astype("int64") % 10**9 == 0).all()


@pytest.mark.parametrize("quantum", [10**3, 10**6])
def test_sub_second_datetimes_keep_their_quantum_exactly(quantum, backend):
    """Whole micro- or milliseconds of present-day instants are not float64 numbers; the
    output is snapped in int64, with nulls kept, on every backend."""
    rng = np.random.default_rng(3)
    ns = (17 * 10**17 // quantum + rng.integers(0, 10**16 // quantum, 2000)) * quantum
    when = pd.Series(pd.to_datetime(ns, unit="ns")).astype("datetime64[ns]")
    when[rng.random(2000) < 0.1] = pd.NaT
    model = GaussianCopula().fit(pd.DataFrame({"when": when, "x": rng.normal(size=2000)}))
    out = model.sample(20_000, seed=1, backend=backend)["when"]
    assert 0.05 < out.isna().mean() < 0.15
    assert (out.dropna().astype("int64") % quantum == 0).all()
    assert out.min() >= when.min() and out.max() <= when.max()
    if backend == "cuda":     # and the device output
        device = model.sample(20_000, seed=1, backend="cuda", output="cupy")["when"].get()
        assert np.array_equal(device[~out.isna().to_numpy()],
                              out.dropna().astype("int64").to_numpy())


def test_marginals_match(customers, synthetic):
    for col in ["age", "income", "monthly_spend", "orders", "rating"]:
        real, syn = customers[col].dropna().astype(float), synthetic[col].dropna().astype(float)
        assert stats.ks_2samp(real, syn).statistic < 0.03, col
    real_t = customers["signup"].astype("int64").astype(float)
    syn_t = synthetic["signup"].astype("int64").astype(float)
    assert stats.ks_2samp(real_t, syn_t).statistic < 0.03
    for col in ["plan", "churned", "region"]:
        p = customers[col].value_counts(normalize=True)
        q = synthetic[col].value_counts(normalize=True).reindex(p.index, fill_value=0)
        assert 0.5 * np.abs(p - q).sum() < 0.02, col
    # the spike of zero spend survives the table
    assert abs((synthetic["monthly_spend"] == 0).mean() - (customers["monthly_spend"] == 0).mean()) < 0.02


def test_dependence_is_kept(customers, synthetic):
    cols = ["age", "income", "monthly_spend", "orders", "rating"]
    real = customers[cols].corr("spearman").to_numpy()
    syn = synthetic[cols].corr("spearman").to_numpy()
    assert np.abs(real - syn).max() < 0.08
    # a categorical related to a number keeps the direction of the relation
    by_plan = synthetic.groupby("plan", observed=True)["income"].mean()
    assert by_plan["basic"] < by_plan["plus"] < by_plan["pro"]


def test_rows_depend_only_on_seed_and_row_index(model):
    whole = model.sample(50_000, seed=11, backend="cpu")
    parts = pd.concat([model.sample(17_000, seed=11, backend="cpu"),
                       model.sample(33_000, seed=11, row_offset=17_000, backend="cpu")],
                      ignore_index=True)
    pd.testing.assert_frame_equal(whole, parts)
    try:
        synthcore.set_num_threads(1)
        single = model.sample(50_000, seed=11, backend="cpu")
    finally:
        synthcore.set_num_threads(None)
    pd.testing.assert_frame_equal(whole, single)
    assert not whole.equals(model.sample(50_000, seed=12, backend="cpu"))


def test_cpu_matches_numpy_oracle_bit_for_bit(model):
    a = model.sample(20_001, seed=3, stream=5, row_offset=999, backend="numpy")
    b = model.sample(20_001, seed=3, stream=5, row_offset=999, backend="cpu")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


@pytest.mark.parametrize("kind", ["pyarrow", "polars", "dict"])
def test_every_input_format_gives_the_same_model(customers, kind):
    if kind == "pyarrow":
        import pyarrow as pa
        table = pa.Table.from_pandas(customers, preserve_index=False)
    elif kind == "polars":
        pl = pytest.importorskip("polars")
        table = pl.from_pandas(customers)
    else:
        table = {c: customers[c].to_numpy() for c in customers.columns}
        table["plan"] = customers["plan"].astype(object).to_numpy()
        table["rating"] = customers["rating"]
    other = GaussianCopula().fit(table).sample(5000, seed=1, backend="cpu")
    ref = GaussianCopula().fit(customers).sample(5000, seed=1, backend="cpu")
    for col in ref.columns:
        pd.testing.assert_series_equal(other[col].astype(object), ref[col].astype(object),
                                       check_names=False, obj=col)


def test_every_output_format(model):
    ref = model.sample(1000, seed=2, backend="cpu")
    arrow = model.sample(1000, seed=2, backend="cpu", output="arrow")
    assert arrow.num_rows == 1000 and arrow.column_names == list(ref.columns)
    back = arrow.to_pandas()
    for col in ref.columns:
        pd.testing.assert_series_equal(back[col].astype(object), ref[col].astype(object),
                                       check_names=False, obj=col)
    arrays = model.sample(1000, seed=2, backend="cpu", output="numpy")
    np.testing.assert_array_equal(arrays["income"], ref["income"].to_numpy())
    assert list(arrays["region"][:5]) == list(ref["region"][:5])
    pl = pytest.importorskip("polars")
    frame = model.sample(1000, seed=2, backend="cpu", output="polars")
    assert isinstance(frame, pl.DataFrame) and frame.height == 1000


def test_save_and_load_round_trip(model, tmp_path):
    path = tmp_path / "model.synthcore"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["arrays.npz", "model.json"]
    loaded = synthcore.load(path)
    pd.testing.assert_frame_equal(loaded.sample(5000, seed=4, backend="cpu"),
                                  model.sample(5000, seed=4, backend="cpu"))


def test_load_refuses_pickles_and_foreign_files(model, tmp_path):
    path = tmp_path / "evil.synthcore"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        header = zf.read("model.json")
    import io
    buf = io.BytesIO()
    np.savez(buf, correlation=np.array([{"x": 1}], dtype=object), cholesky=np.eye(1))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model.json", header)
        zf.writestr("arrays.npz", buf.getvalue())
    with pytest.raises(ValueError, match="allow_pickle"):
        synthcore.load(path)
    other = tmp_path / "other.synthcore"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("model.json", '{"format": "something-else"}')
        zf.writestr("arrays.npz", b"")
    with pytest.raises(ValueError, match="not a synthcore Gaussian copula model"):
        synthcore.load(other)


def test_small_and_degenerate_tables():
    one = pd.DataFrame({"a": [1.5], "b": ["x"]})
    s = GaussianCopula().fit(one).sample(10, seed=1, backend="cpu")
    assert (s["a"] == 1.5).all() and (s["b"] == "x").all()
    df = pd.DataFrame({"const": [3.0] * 50, "all_null": [np.nan] * 50,
                       "x": np.arange(50, dtype=float), "c": ["u", None] * 25,
                       "n": pd.array([1, None] * 25, dtype="Int64")})
    out = GaussianCopula().fit(df).sample(2000, seed=1, backend="cpu")
    assert (out["const"] == 3.0).all()
    assert out["all_null"].isna().all()
    assert out["x"].between(0, 49).all()
    assert abs(out["c"].isna().mean() - 0.5) < 0.05
    assert out["n"].dtype == "Int64" and abs(out["n"].isna().mean() - 0.5) < 0.05


@pytest.mark.parametrize("table,match", [
    (pd.DataFrame({"a": []}), "no rows"),
    (pd.DataFrame(), "no columns"),
    (pd.DataFrame({"a": [1.0, np.inf]}), "infinite"),
    (pd.DataFrame({"a": [1, "x", 2.5]}), "mixes value types"),
    ([1, 2, 3], "must be a pandas DataFrame"),
])
def test_bad_tables(table, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GaussianCopula().fit(table)


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        model.sample(0)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        model.sample(-5)
    with pytest.raises(ValueError, match="output must be one of"):
        model.sample(3, output="excel")
    with pytest.raises(ValueError, match="row_offset"):
        model.sample(3, row_offset=-1)
    with pytest.raises(RuntimeError, match="not fitted"):
        GaussianCopula().sample(3)
    with pytest.raises(ValueError, match="column_kinds names columns not in the table"):
        GaussianCopula(column_kinds={"nope": "float"}).fit(pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="marginals"):
        GaussianCopula(marginals={"a": "cauchy"})
    with pytest.raises(ValueError, match="declared int but has fractional"):
        GaussianCopula(column_kinds={"a": "int"}).fit(pd.DataFrame({"a": [1.5, 2.0]}))


def test_column_kind_override_makes_a_categorical(customers):
    m = GaussianCopula(column_kinds={"orders": "categorical"}).fit(customers[["orders", "age"]])
    out = m.sample(1000, seed=1, backend="cpu")
    assert set(out["orders"].unique()) <= set(customers["orders"].unique())


# ---- GPU: the CPU result is the oracle -------------------------------------------

def _cuda_usable():
    return synthcore._backend.cuda_usable()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_usable(), reason="needs CuPy, a GPU and the _cuda module")
def test_gpu_sample_equals_cpu(model):
    for kw in (dict(seed=1), dict(seed=2**40 + 3, stream=7, row_offset=2**33 + 1)):
        gpu = model.sample(200_001, backend="cuda", **kw)
        cpu = model.sample(200_001, backend="cpu", **kw)
        pd.testing.assert_frame_equal(gpu, cpu, check_exact=True)


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_usable(), reason="needs CuPy, a GPU and the _cuda module")
def test_gpu_device_output_stays_on_device(model):
    import cupy
    cols = model.sample(10_000, seed=3, backend="cuda", output="cupy")
    assert all(isinstance(v, cupy.ndarray) for v in cols.values())
    cpu = model.sample(10_000, seed=3, backend="cpu", output="numpy")
    np.testing.assert_array_equal(cols["income"].get(), cpu["income"])
    codes = cols["plan"].get()
    np.testing.assert_array_equal(model.categories("plan")[codes], cpu["plan"])


def test_cupy_output_needs_the_cuda_backend(model):
    with pytest.raises(ValueError, match="output='cupy' needs backend='cuda'"):
        model.sample(10, seed=1, backend="cpu", output="cupy")


def test_cuda_backend_without_gpu_is_a_clear_error(model):
    if _cuda_usable():
        pytest.skip("a GPU is usable here")
    with pytest.raises(synthcore.BackendUnavailableError, match="cuda"):
        model.sample(10, seed=1, backend="cuda")


# ---- the stage kernels ----------------------------------------------------------------

def test_stage_kernels_reproduce_the_fused_pass(model):
    from synthcore import copula_kernels as ck
    plan = model.plan()
    n = 30_001
    for backend in ("numpy", "cpu"):
        z = ck.correlated_normals(plan.chol, n, seed=5, stream=2, row_offset=17, backend=backend)
        fused = model.sample(n, seed=5, stream=2, row_offset=17, backend="cpu", output="numpy")
        inc = next(c for c in model.columns if c.name == "income")
        values = ck.table_lookup(z[inc.value_dim], inc.table, inc.z_lo, inc.z_hi,
                                 round_to=inc.round_q, backend=backend)
        np.testing.assert_array_equal(values, fused["income"])
        plan_col = next(c for c in model.columns if c.name == "plan")
        codes = ck.threshold_codes(z[plan_col.value_dim], plan_col.thresholds, backend=backend)
        np.testing.assert_array_equal(plan_col.levels[codes], fused["plan"])
    u = ck.normal_cdf(z[0])
    assert u.min() > 0 and u.max() < 1


def test_stage_kernels_check_their_arguments():
    from synthcore import copula_kernels as ck
    with pytest.raises(ValueError, match="lower triangular"):
        ck.correlated_normals(np.ones((2, 2)), 10, seed=1)
    with pytest.raises(ValueError, match="non-decreasing"):
        ck.table_lookup(np.zeros(3), np.array([1.0, 0.0]), -1.0, 1.0)
    with pytest.raises(ValueError, match="sorted"):
        ck.threshold_codes(np.zeros(3), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="float64"):
        ck.table_lookup(np.zeros(3, np.float32), np.array([0.0, 1.0]), -1.0, 1.0)
    with pytest.raises(ValueError, match="writable C-contiguous"):
        ck.threshold_codes(np.zeros(3), np.array([0.0]), out=np.zeros(3, np.int64))


@pytest.mark.parametrize("n_thresholds", [0, 1, 5, 64, 65, 200, 5000])
def test_threshold_codes_match_the_reference_for_every_size(n_thresholds):
    from synthcore import copula_kernels as ck
    rng = np.random.default_rng(n_thresholds)
    t = np.sort(rng.normal(size=n_thresholds))
    z = np.concatenate([rng.normal(size=10_007), t, [-np.inf, np.inf]])  # ties on the thresholds
    want = np.searchsorted(t, z, side="right")
    np.testing.assert_array_equal(ck.threshold_codes(z, t, backend="cpu"), want)
    np.testing.assert_array_equal(ck.threshold_codes(z, t, backend="numpy"), want)
    # NaN is <= no threshold: code 0 on every backend
    nan = np.full(37, np.nan)
    for backend in ("cpu", "numpy"):
        assert not ck.threshold_codes(nan, t, backend=backend).any(), backend


# ---- key columns ----------------------------------------------------------------

def _keyed_table(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": np.arange(100, 100 + n, dtype=np.int32),
                         "code": [f"C-{i:06d}" for i in rng.permutation(n) + 7],
                         "x": rng.normal(size=n), "plan": rng.choice(["a", "b"], n)})


def test_key_columns_are_unique_sequences_at_any_split(tmp_path):
    table = _keyed_table()
    model = GaussianCopula(column_kinds={"id": "key", "code": "key"}).fit(table)
    whole = model.sample(50_000, seed=3, backend="cpu")
    assert list(whole.columns) == list(table.columns)
    assert whole["id"].dtype == np.int32 and whole["id"].is_unique
    assert whole["id"].tolist() == list(range(100, 50_100))
    assert whole["code"].is_unique and whole["code"].str.fullmatch(r"C-\d{6}").all()
    assert whole["code"].iloc[0] == "C-000007"
    parts = pd.concat([model.sample(20_000, seed=3, backend="cpu", row_offset=r)
                       for r in (0, 20_000, 40_000)]).head(50_000).reset_index(drop=True)
    pd.testing.assert_frame_equal(parts.iloc[:50_000], whole)
    # keys take no latent dimension: the rest of the model is that of the table without them
    plain = GaussianCopula().fit(table.drop(columns=["id", "code"]))
    np.testing.assert_array_equal(model.correlation, plain.correlation)
    pd.testing.assert_frame_equal(whole.drop(columns=["id", "code"]),
                                  plain.sample(50_000, seed=3, backend="cpu"))
    for output in ("arrow", "polars", "numpy"):
        out = model.sample(10, seed=3, backend="numpy", output=output, row_offset=5)
        codes = out["code"].to_pylist() if output == "arrow" else list(out["code"])
        assert codes[:2] == ["C-000012", "C-000013"], output
    model.save(tmp_path / "keys.synth")
    pd.testing.assert_frame_equal(synthcore.load(tmp_path / "keys.synth").sample(
        1000, seed=3, backend="numpy"), whole.head(1000))


def test_key_columns_with_rules_and_conditions():
    model = GaussianCopula(column_kinds={"id": "key", "code": "key"}).fit(_keyed_table())
    plain = model.sample(4000, seed=1, backend="cpu")
    kept = model.sample(1000, seed=1, backend="cpu", rules=["x > 0", "code != 'C-000010'"])
    expected = plain[(plain["x"] > 0) & (plain["code"] != "C-000010")].head(1000)
    pd.testing.assert_frame_equal(kept, expected.reset_index(drop=True))
    conditioned = model.sample(500, seed=1, backend="cpu", conditions={"plan": "a"})
    assert (conditioned["plan"] == "a").all() and conditioned["id"].is_unique
    with pytest.raises(ValueError, match="key column 'id'"):
        model.sample(10, seed=1, conditions={"id": 150})
    import pyarrow as pa
    for table in (pd.DataFrame({"id": [150, 151]}), pa.table({"id": [150, 151]})):
        with pytest.raises(ValueError, match="key column 'id'"):
            model.sample(None, seed=1, conditions=table)


@pytest.mark.parametrize("values,match", [
    ([1, 2, 2], "repeated"), ([1.0, None, 3.0], "nulls"), (["a1", "b2", "a3"], "one prefix"),
    (["x", "y", "z"], "one prefix"), ([True, False, True], "integers or strings")])
def test_bad_key_columns(values, match):
    table = pd.DataFrame({"k": values, "x": [0.1, 0.5, 0.9]})
    with pytest.raises(ValueError, match=f"key column 'k'.*{match}|{match}.*'k'|'k'.*{match}"):
        GaussianCopula(column_kinds={"k": "key"}).fit(table)


def test_integer_keys_that_overflow_their_dtype_are_an_error():
    table = pd.DataFrame({"k": np.array([0, 1, 2], dtype=np.int8), "x": [0.1, 0.5, 0.9]})
    model = GaussianCopula(column_kinds={"k": "key"}).fit(table)
    assert model.sample(128, seed=0)["k"].tolist() == list(range(128))
    with pytest.raises(ValueError, match="key column 'k'.*overflow.*int8"):
        model.sample(129, seed=0)


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_usable(), reason="needs CuPy, a GPU and the _cuda module")
def test_gpu_integer_keys_on_device_equal_the_host_keys():
    model = GaussianCopula(column_kinds={"id": "key"}).fit(_keyed_table().drop(columns="code"))
    device = model.sample(5000, seed=1, backend="cuda", output="cupy", row_offset=9)
    host = model.sample(5000, seed=1, backend="cpu", output="numpy", row_offset=9)
    assert device["id"].dtype == host["id"].dtype == np.int32
    np.testing.assert_array_equal(device["id"].get(), host["id"])
    with_strings = GaussianCopula(column_kinds={"code": "key"}).fit(_keyed_table())
    with pytest.raises(ValueError, match="key column 'code'"):
        with_strings.sample(10, seed=1, backend="cuda", output="cupy")
