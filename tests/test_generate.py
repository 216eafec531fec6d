"""Rule-based table generation: distributions against exact CDFs / PMFs, null rates,
chunk and backend invariance, foreign keys, spec loading, validation errors, the CLI."""
import importlib.resources
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from synthcore import SpecError, generate, generate_tables, load_spec
from synthcore.cli import main as cli_main

P_MIN = 1e-4   # fixed seeds: a test fails only if the sampler is wrong, or 1 in 10,000
N = 40_000

SPEC_DIR = importlib.resources.files("synthcore") / "data" / "specs"
EXAMPLES = ["customers.yaml", "bank_transactions.yaml", "inventory_log.yaml",
            "shop_orders.yaml"]


def one(columns, n=N, seed=5, **kw):
    return generate({"columns": columns}, n, seed=seed, **kw)


# ---- distributions ----------------------------------------------------------------

@pytest.mark.parametrize("column, cdf", [
    ({"type": "uniform", "low": -2.0, "high": 5.0}, stats.uniform(-2, 7).cdf),
    ({"type": "normal", "mean": 3.0, "std": 2.0}, stats.norm(3, 2).cdf),
    ({"type": "lognormal", "mean": 1.0, "sigma": 0.5}, stats.lognorm(0.5, scale=np.e).cdf),
])
def test_continuous_columns_follow_their_cdf(column, cdf):
    x = one({"x": column})["x"].to_numpy()
    assert stats.kstest(x, cdf).pvalue > P_MIN
    # and a different seed gives different values
    assert not np.array_equal(x[:100], one({"x": column}, n=100, seed=6)["x"].to_numpy())


def _chi2(observed, probs):
    expected = probs * observed.sum()
    return stats.chisquare(observed, expected).pvalue


def test_integer_column_is_uniform_on_the_inclusive_range():
    x = one({"x": {"type": "integer", "low": -3, "high": 7}})["x"].to_numpy()
    assert x.min() == -3 and x.max() == 7
    counts = np.bincount(x + 3, minlength=11)
    assert _chi2(counts, np.full(11, 1 / 11)) > P_MIN


def test_categorical_weights_and_zero_weight():
    w = [0.5, 0.3, 0.0, 0.2]
    df = one({"c": {"type": "categorical", "values": ["a", "b", "z", "d"], "weights": w}})
    counts = df["c"].value_counts().reindex(["a", "b", "z", "d"]).to_numpy()
    assert counts[2] == 0
    assert _chi2(counts[[0, 1, 3]], np.array([0.5, 0.3, 0.2])) > P_MIN
    assert isinstance(df["c"].dtype, pd.CategoricalDtype)


def test_numeric_categorical_gives_numbers():
    x = one({"k": {"type": "categorical", "values": [1, 2, 10], "weights": [0.2, 0.3, 0.5]}})["k"]
    assert x.dtype == np.int64 and set(x.unique()) == {1, 2, 10}


@pytest.mark.parametrize("s, n", [(1.1, 50), (2.0, 10), (0.7, 1000)])
def test_zipf_follows_its_exact_pmf(s, n):
    x = one({"z": {"type": "zipf", "s": s, "n": n}})["z"].to_numpy()
    assert x.min() >= 1 and x.max() <= n
    pmf = np.arange(1, n + 1, dtype=float) ** -s
    pmf /= pmf.sum()
    counts = np.bincount(x, minlength=n + 1)[1:]
    # pool the tail so every bin expects at least 20 (pmf decreases: a prefix is kept)
    keep = max(1, int((pmf * N >= 20).sum()))
    obs = np.append(counts[:keep], counts[keep:].sum())
    exp = np.append(pmf[:keep], pmf[keep:].sum())
    obs, exp = obs[exp > 0], exp[exp > 0]
    assert _chi2(obs, exp / exp.sum()) > P_MIN
    # the table sampler equals scipy's distribution: same support, same mean within noise
    mean = (np.arange(1, n + 1) * pmf).sum()
    sd = np.sqrt(((np.arange(1, n + 1) - mean) ** 2 * pmf).sum())
    assert abs(x.mean() - mean) < 5 * sd / np.sqrt(N)
    np.testing.assert_allclose(stats.zipfian(s, n).pmf(np.arange(1, n + 1)), pmf, rtol=1e-9)


def test_zipf_with_values_maps_ranks_to_values():
    x = one({"z": {"type": "zipf", "s": 2.0, "n": 3, "values": ["hi", "mid", "lo"]}})["z"]
    counts = x.value_counts()
    assert counts["hi"] > counts["mid"] > counts["lo"] > 0


def test_boolean_dates_and_timestamps():
    df = one({"b": {"type": "boolean", "p": 0.3},
              "d": {"type": "date", "start": "2024-01-01", "end": "2024-01-10"},
              "t": {"type": "timestamp", "start": "2024-01-01", "end": "2024-01-01 00:00:59"}})
    assert stats.binomtest(int(df["b"].sum()), N, 0.3).pvalue > P_MIN
    days = (df["d"] - pd.Timestamp("2024-01-01")).dt.days.to_numpy()
    assert days.min() == 0 and days.max() == 9 and (df["d"].dt.floor("D") == df["d"]).all()
    assert _chi2(np.bincount(days, minlength=10), np.full(10, 0.1)) > P_MIN
    secs = (df["t"] - pd.Timestamp("2024-01-01")).dt.total_seconds().to_numpy().astype(int)
    assert secs.min() == 0 and secs.max() == 59


@pytest.mark.parametrize("column", [
    {"type": "normal", "mean": 0, "std": 1},
    {"type": "integer", "low": 0, "high": 9},
    {"type": "categorical", "values": ["a", "b"]},
    {"type": "date", "start": "2020-01-01", "end": "2020-12-31"},
    {"type": "boolean"},
    {"type": "expression", "expr": "1.5"},
])
def test_null_rates(column):
    df = one({"x": dict(column, nulls=0.2)}, output="arrow")
    nulls = df.column("x").null_count
    assert stats.binomtest(nulls, N, 0.2).pvalue > P_MIN


def test_sequences_and_formats():
    df = one({"a": {"type": "sequence"}, "b": {"type": "sequence", "start": 10, "step": -2},
              "c": {"type": "sequence", "start": 7, "format": "ID-{:05d}x"}}, n=4, row_offset=3)
    assert df["a"].tolist() == [4, 5, 6, 7]
    assert df["b"].tolist() == [4, 2, 0, -2]
    assert df["c"].tolist() == ["ID-00010x", "ID-00011x", "ID-00012x", "ID-00013x"]


def test_expressions_and_when_conditions():
    df = one({"country": {"type": "categorical", "values": ["US", "CA", "MX"]},
              "x": {"type": "uniform", "low": 0, "high": 10},
              "y": "x * 2 + 1",
              "tax": "when country = 'US' then x * 0.1 when country = 'CA' then 0.0",
              "label": "when y > 11 then 'high' else 'low'",
              "big": "y > 15"}, n=2000)
    np.testing.assert_array_equal(df["y"], df["x"] * 2 + 1)
    us, ca, mx = (df["country"] == v for v in ("US", "CA", "MX"))
    np.testing.assert_array_equal(df["tax"][us], df["x"][us] * 0.1)
    assert (df["tax"][ca] == 0).all() and df["tax"][mx].isna().all()
    assert ((df["label"] == "high") == (df["y"] > 11)).all()
    assert (df["big"] == (df["y"] > 15)).all()


def test_columns_evaluate_in_dependency_order_and_hidden_columns_drop():
    df = one({"c": "b + 1", "b": "a * 2", "a": {"type": "integer", "low": 0, "high": 5,
                                                  "hidden": True}}, n=100)
    assert list(df.columns) == ["c", "b"]
    assert (df["c"] == df["b"] + 1).all() and (df["b"] % 2 == 0).all()


# ---- reproducibility --------------------------------------------------------------

def _example(name):
    return load_spec(str(SPEC_DIR / name))


@pytest.mark.parametrize("name", EXAMPLES)
def test_windows_give_the_same_rows_as_one_call(name):
    spec = _example(name)
    table = list(spec.tables)[-1]
    n = 3000
    rows = {t: 500 for t in spec.tables}
    whole = generate(spec, n, table=table, seed=3, rows=rows, output="arrow")
    parts = [generate(spec, b - a, table=table, seed=3, row_offset=a, rows=rows, output="arrow")
             for a, b in [(0, 1), (1, 1000), (1000, 1000), (1000, 2047), (2047, 3000)]]
    import pyarrow as pa
    joined = pa.concat_tables([p.cast(whole.schema) for p in parts])
    assert whole.to_pandas().equals(joined.to_pandas())


@pytest.mark.parametrize("name", EXAMPLES)
def test_native_backend_equals_numpy(name, native_backend):
    spec = _example(name)
    a = generate_tables(spec, seed=9, backend="numpy")
    b = generate_tables(spec, seed=9, backend=native_backend)
    for t in a:
        pd.testing.assert_frame_equal(a[t], b[t])


def test_same_seed_same_rows_and_column_streams_do_not_depend_on_order():
    cols = {"x": {"type": "normal", "mean": 0, "std": 1}, "k": {"type": "integer", "low": 0,
                                                                "high": 99}}
    a = one(cols, n=500)
    b = one(dict(reversed(list(cols.items())), extra={"type": "boolean"}), n=500)
    assert a["x"].equals(b["x"]) and a["k"].equals(b["k"])


# ---- foreign keys -------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(parents=st.integers(1, 300), children=st.integers(0, 2000),
       zipf=st.booleans(), fmt=st.booleans(), seed=st.integers(0, 2**32))
def test_foreign_keys_always_resolve(parents, children, zipf, fmt, seed):
    key = {"type": "sequence", "start": 5, "step": 3}
    if fmt:
        key["format"] = "P{}"
    fk = {"type": "foreign_key", "table": "p", "column": "id"}
    if zipf:
        fk.update(distribution="zipf", s=1.2)
    spec = {"tables": {"p": {"columns": {"id": key, "v": {"type": "uniform", "low": 0,
                                                          "high": 1}}},
                       "c": {"columns": {"pid": fk, "row": {"type": "foreign_key",
                                                            "table": "p"}}}}}
    out = generate_tables(spec, rows={"p": parents, "c": children}, seed=seed)
    assert len(out["c"]) == children
    assert set(out["c"]["pid"]) <= set(out["p"]["id"])
    assert out["c"]["row"].between(0, parents - 1).all()


def test_zipf_foreign_keys_favour_the_first_parents():
    spec = {"tables": {"p": {"rows": 100, "columns": {"id": {"type": "sequence"}}},
                       "c": {"rows": N, "columns": {"pid": {
                           "type": "foreign_key", "table": "p", "distribution": "zipf",
                           "s": 1.5}}}}}
    pid = generate_tables(spec, seed=1)["c"]["pid"].to_numpy()
    pmf = np.arange(1, 101, dtype=float) ** -1.5
    pmf /= pmf.sum()
    counts = np.bincount(pid, minlength=100)
    assert _chi2(np.append(counts[:30], counts[30:].sum()),
                 np.append(pmf[:30], pmf[30:].sum())) > P_MIN


# ---- specs: files, round trips, examples ------------------------------------------------

@pytest.mark.parametrize("name", EXAMPLES)
def test_example_specs_generate_and_pass_their_rules(name):
    spec = _example(name)
    tables = generate_tables(spec)
    for t, df in tables.items():
        assert len(df) == spec.tables[t].rows
        report = spec.tables[t].check(df)
        assert report.n_valid == report.n_rows, str(report)
        assert spec.tables[t].rules


@pytest.mark.parametrize("name", EXAMPLES)
def test_yaml_and_json_round_trip(name, tmp_path):
    spec = _example(name)
    base = generate_tables(spec, seed=4)
    for text in (spec.to_yaml(), spec.to_json()):
        again = load_spec(text)
        assert again.to_dict() == spec.to_dict()
        out = generate_tables(again, seed=4)
        for t in base:
            pd.testing.assert_frame_equal(base[t], out[t])
    path = tmp_path / "spec.json"
    path.write_text(spec.to_json())
    assert load_spec(str(path)).to_dict() == spec.to_dict()


def test_yaml_is_loaded_safely():
    with pytest.raises(SpecError, match="invalid YAML"):
        load_spec("columns: !!python/object/apply:os.system ['true']\n")


# ---- errors ------------------------------------------------------------------------

@pytest.mark.parametrize("spec, column, field, text", [
    ({"columns": {"a": {"type": "gamma"}}}, "a", "type", "unknown distribution 'gamma'"),
    ({"columns": {"a": {"type": "categorical", "values": ["x", "y"],
                        "weights": [0.5, 0.6]}}}, "a", "weights", "sum to 1"),
    ({"columns": {"a": {"type": "categorical", "values": ["x", "y"],
                        "weights": [1.5, -0.5]}}}, "a", "weights", "negative"),
    ({"columns": {"a": {"type": "normal", "mean": 0}}}, "a", "std", "missing"),
    ({"columns": {"a": {"type": "normal", "mean": 0, "std": 1, "sd": 2}}}, "a", "sd",
     "unknown field"),
    ({"columns": {"a": {"type": "uniform", "low": 2, "high": 1}}}, "a", "high", "low"),
    ({"columns": {"a": {"type": "integer", "low": 0, "high": 1, "nulls": 1.5}}}, "a",
     "nulls", "[0, 1)"),
    ({"columns": {"a": {"type": "zipf", "s": -1, "n": 5}}}, "a", "s", "> 0"),
    ({"columns": {"a": {"type": "date", "start": "2024-13-01", "end": "2025-01-01"}}}, "a",
     "start", "ISO"),
    ({"columns": {"a": "b + 1", "b": "a * 2"}}, "a", "expr", "cycle: a -> b -> a"),
    ({"columns": {"a": "a + 1"}}, "a", "expr", "its own column"),
    ({"columns": {"a": "q + 1"}}, "a", "expr", "unknown column 'q'"),
    ({"columns": {"a": {"type": "sequence", "format": "{}-{}"}}}, "a", "format", "exactly one"),
    ({"columns": {"a": {"type": "foreign_key", "table": "nope"}}}, "a", "table",
     "missing parent table 'nope'"),
])
def test_bad_specs_name_column_and_field(spec, column, field, text):
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    e = info.value
    assert (e.column, e.field) == (column, field)
    assert text in str(e) and repr(column) in str(e)


def test_bad_expressions_give_the_position_in_the_users_text():
    with pytest.raises(SpecError) as info:
        load_spec({"columns": {"x": {"type": "integer", "low": 0, "high": 3},
                               "y": "when x > 1 then x + * 2 else 0"}})
    assert info.value.field == "expr" and "position 20" in str(info.value)
    with pytest.raises(SpecError) as info:
        load_spec({"columns": {"c": {"type": "categorical", "values": ["a"]},
                               "y": "c * 2"}})
    assert info.value.column == "y" and "position" in str(info.value)


def test_foreign_key_needs_a_sequence_and_parent_rows():
    with pytest.raises(SpecError, match="sequence"):
        load_spec({"tables": {"p": {"columns": {"v": {"type": "uniform", "low": 0, "high": 1}}},
                              "c": {"columns": {"k": {"type": "foreign_key", "table": "p",
                                                      "column": "v"}}}}})
    spec = {"tables": {"p": {"columns": {"id": {"type": "sequence"}}},
                       "c": {"columns": {"k": {"type": "foreign_key", "table": "p"}}}}}
    with pytest.raises(SpecError, match="rows of parent table 'p'"):
        generate(spec, 10, table="c")
    with pytest.raises(SpecError, match="cycle"):
        load_spec({"tables": {"a": {"columns": {"k": {"type": "foreign_key", "table": "b"}}},
                              "b": {"columns": {"k": {"type": "foreign_key", "table": "a"}}}}})


# ---- outputs and the CLI ----------------------------------------------------------------

@pytest.mark.parametrize("output", ["pandas", "arrow", "polars", "numpy"])
def test_outputs(output):
    t = generate(_example("customers.yaml"), 50, seed=1, output=output)
    if output == "numpy":
        assert set(t) >= {"customer_id", "country", "income"} and len(t["age"]) == 50
    else:
        assert len(t) == 50


def test_cli_writes_parquet_atomically(tmp_path, capsys):
    import pyarrow.parquet as pq
    out = tmp_path / "c.parquet"
    spec = str(SPEC_DIR / "customers.yaml")
    assert cli_main(["generate", spec, "--rows", "2500", "--out", str(out), "--seed", "3",
                     "--chunk-rows", "1000"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["c.parquet"]
    got = pq.read_table(out).to_pandas()
    want = generate(spec, 2500, seed=3, output="arrow").to_pandas()
    assert got.astype(object).equals(want.astype(object))
    outdir = tmp_path / "bank"
    assert cli_main(["generate", str(SPEC_DIR / "bank_transactions.yaml"), "--rows",
                     "customers=50", "--rows", "transactions=300", "--out", str(outdir)]) == 0
    txn = pq.read_table(outdir / "transactions.parquet").to_pandas()
    cust = pq.read_table(outdir / "customers.parquet").to_pandas()
    assert len(txn) == 300 and set(txn["customer_id"]) <= set(cust["customer_id"])
    assert cli_main(["generate", spec, "--rows", "-1", "--out", str(out)]) == 2
    assert "rows" in capsys.readouterr().err


@pytest.mark.gpu
def test_cuda_equals_cpu():
    from synthcore import _backend
    if not _backend.cuda_usable():
        pytest.skip(str(_backend._cuda_status()[1]))
    spec = _example("bank_transactions.yaml")
    a = generate_tables(spec, seed=2, backend="cpu")
    b = generate_tables(spec, seed=2, backend="cuda")
    for t in a:
        pd.testing.assert_frame_equal(a[t], b[t])
