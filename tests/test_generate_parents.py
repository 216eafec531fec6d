"""Foreign keys and parent attributes in generated tables: a parent's columns regenerated
at the rows children refer to equal the parent table's (exact joins, at any chunking, on
every backend), the distributions stay exact, and bad references name table and column."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from synthcore import (Rules, RuleSyntaxError, SpecError, generate, generate_at, generate_tables,
                       load_spec)
from synthcore._seeding import philox_key
from synthcore.generation import _generate_columns, _RowSet, _Window

P_MIN = 1e-4   # fixed seeds: a test fails only if the sampler is wrong, or 1 in 10,000

EVERY_TYPE = {
    "id": {"type": "sequence", "start": 7, "step": 3},
    "code": {"type": "sequence", "format": "P{:06d}"},
    "u": {"type": "uniform", "low": -1, "high": 4, "decimals": 3},
    "z": {"type": "normal", "mean": 2, "std": 3, "nulls": 0.1},
    "ln": {"type": "lognormal", "mean": 1, "sigma": 0.5},
    "k": {"type": "integer", "low": -5, "high": 2**40},
    "b": {"type": "boolean", "p": 0.3, "nulls": 0.2},
    "cat": {"type": "categorical", "values": ["x", "y", "w"], "weights": [0.2, 0.5, 0.3]},
    "num": {"type": "categorical", "values": [1.5, 2.5]},
    "zr": {"type": "zipf", "s": 1.3, "n": 40},
    "zv": {"type": "zipf", "s": 1.3, "n": 3, "values": ["a", "b", "c"]},
    "d": {"type": "date", "start": "2020-01-01", "end": "2020-12-31", "nulls": 0.05},
    "ts": {"type": "timestamp", "start": "2021-01-01", "end": "2021-01-02", "resolution": "ms"},
    "e": "when cat = 'y' then u * 2 else z",
    "hid": {"type": "integer", "low": 0, "high": 9, "hidden": True},
    "f": "hid + k % 7",
}


def _frame(cols):
    from synthcore._table import build_output
    return build_output(list(cols.values()), "pandas")


@pytest.mark.parametrize("rows_kind", ["sorted", "shuffled"])
def test_rows_regenerated_anywhere_equal_the_window(backend, rows_kind):
    spec = load_spec({"tables": {"p": {"columns": EVERY_TYPE}}})
    t = spec.tables["p"]
    key = philox_key(11)
    n = 3000
    whole = _frame(_generate_columns(spec, t, _Window(0, n), key, backend, {}))
    rng = np.random.default_rng(0)
    rows = rng.choice(n, 500, replace=False)
    rows = np.sort(rows) if rows_kind == "sorted" else rows   # distinct rows, any order
    got = _frame(_generate_columns(spec, t, _RowSet(rows), key, backend, {}))
    want = whole.iloc[rows].reset_index(drop=True)
    pd.testing.assert_frame_equal(got.astype(object), want.astype(object))
    # only what a column needs: 'f' needs 'hid' and 'k', nothing else
    part = _generate_columns(spec, t, _RowSet(rows), key, backend, {}, wanted=["f"])
    assert set(part) == {"f", "hid", "k"}
    np.testing.assert_array_equal(part["f"].values, got["f"].to_numpy())


SHOP = {"seed": 5, "tables": {
    "regions": {"rows": 7, "columns": {
        "rid": {"type": "sequence", "format": "R{}"},
        "launch": {"type": "date", "start": "2010-01-01", "end": "2012-12-31"}}},
    "customers": {"rows": 3000, "columns": {
        "customer_id": {"type": "sequence", "start": 1000, "format": "C{:06d}"},
        "region": {"type": "foreign_key", "table": "regions", "column": "rid"},
        "signup": "region.launch + 100 days",
        "country": {"type": "categorical", "values": ["US", "CA", "MX"],
                    "weights": [0.6, 0.3, 0.1]},
        "score": {"type": "normal", "mean": 0, "std": 1, "nulls": 0.1},
        "tier": {"type": "integer", "low": 1, "high": 3, "hidden": True}}},
    "orders": {"rows": 20000, "columns": {
        "order_id": {"type": "sequence"},
        "cust": {"type": "foreign_key", "table": "customers", "column": "customer_id",
                 "distribution": "zipf", "s": 1.1, "nulls": 0.05},
        "row": {"type": "foreign_key", "table": "customers"},
        "lag": {"type": "integer", "low": 0, "high": 30},
        "order_date": "cust.signup + lag * 1 day",
        "country": {"type": "parent", "key": "cust", "column": "country"},
        "score": {"type": "parent", "key": "cust", "column": "score"},
        "tier10": "cust.tier * 10",
        "launch": "cust.region.launch",
        "other_country": "row.country",
    }}}}


def _by_key(parent: pd.DataFrame, key_col: str, keys: pd.Series) -> pd.DataFrame:
    """The parent rows of ``keys`` (a left join), nulls where the key is null."""
    return parent.set_index(key_col).reindex(keys.to_numpy()).reset_index(drop=True)


def test_parent_reads_equal_a_join_against_the_generated_parent(backend):
    spec = load_spec(SHOP)
    everything = dict(SHOP)
    everything["tables"] = dict(SHOP["tables"])
    everything["tables"]["customers"] = {**SHOP["tables"]["customers"], "columns": {
        **SHOP["tables"]["customers"]["columns"],
        "tier": {"type": "integer", "low": 1, "high": 3}}}   # visible, to join on it
    t = generate_tables(everything, backend=backend)
    reg, cust, orders = t["regions"], t["customers"], t["orders"]
    # the hidden parent column gives the same values as the visible one
    pd.testing.assert_frame_equal(orders, generate_tables(spec, backend=backend)["orders"])
    # integrity: every key exists; null keys read nulls
    null = orders["cust"].isna()
    assert 0.03 < null.mean() < 0.07
    assert set(orders["cust"][~null]) <= set(cust["customer_id"])
    j = _by_key(cust, "customer_id", orders["cust"])
    assert (orders["country"].astype(object)[~null] == j["country"].astype(object)[~null]).all()
    assert orders["country"][null].isna().all()
    np.testing.assert_array_equal(orders["score"].to_numpy(), j["score"].to_numpy())
    want_date = j["signup"] + pd.to_timedelta(orders["lag"], unit="D")
    pd.testing.assert_series_equal(orders["order_date"], want_date, check_names=False)
    np.testing.assert_array_equal(orders["tier10"].astype("Int64")[~null],
                                  (j["tier"] * 10).astype("Int64")[~null])
    assert orders["tier10"][null].isna().all()
    # two hops: the order's customer's region's launch date
    jr = _by_key(reg, "rid", j["region"].where(~null, None))
    pd.testing.assert_series_equal(orders["launch"][~null], jr["launch"][~null],
                                   check_names=False)
    # a key with no column: the row index
    other = cust["country"].astype(object).to_numpy()[orders["row"].to_numpy()]
    assert (orders["other_country"].astype(object).to_numpy() == other).all()


@pytest.mark.parametrize("parent_rows", [3000, 400_000])   # dense (windowed) and sparse reads
def test_a_child_alone_equals_the_child_of_generate_tables_at_any_chunking(parent_rows,
                                                                          monkeypatch):
    import synthcore.generation as g
    sparse = []
    monkeypatch.setattr(g, "_RowSet", lambda rows: sparse.append(len(rows)) or _RowSet(rows))
    rows = {"regions": 7, "customers": parent_rows, "orders": 6000}
    whole = generate_tables(SHOP, rows=rows)["orders"]
    windows = [(0, 1), (1, 700), (700, 3001), (3001, 6000)]
    parts = [generate(SHOP, b - a, table="orders", row_offset=a, rows=rows) for a, b in windows]
    joined = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(joined.astype(object), whole.astype(object))
    # far into a large child: the parent rows come back one by one, never the whole parent
    far = generate(SHOP, 50, table="orders", row_offset=10**12, rows=rows)
    cust = generate(SHOP, None, table="customers", rows=rows)
    j = _by_key(cust, "customer_id", far["cust"])
    ok = far["cust"].notna()
    assert (far["country"].astype(object)[ok] == j["country"].astype(object)[ok]).all()
    assert (max(sparse, default=0) > 1000) == (parent_rows > 10_000)


def test_reading_parents_leaves_the_key_draws_and_their_distribution_unchanged():
    plain = {"tables": {"p": SHOP["tables"]["customers"], "regions": SHOP["tables"]["regions"],
                        "c": {"rows": 40_000, "columns": {
                            "k": {"type": "foreign_key", "table": "p", "column": "customer_id"},
                            "lag": {"type": "integer", "low": 0, "high": 30}}}}}
    reading = {"tables": dict(plain["tables"])}
    reading["tables"]["c"] = {"rows": 40_000, "columns": {
        **plain["tables"]["c"]["columns"], "country": {"type": "parent", "key": "k",
                                                       "column": "country"},
        "d": "k.signup + lag * 1 day"}}
    a = generate_tables(plain, seed=3)
    b = generate_tables(reading, seed=3)
    pd.testing.assert_series_equal(a["c"]["k"], b["c"]["k"])
    pd.testing.assert_series_equal(a["c"]["lag"], b["c"]["lag"])
    # the lag after the parent's date is exactly the uniform integer column
    j = _by_key(b["p"], "customer_id", b["c"]["k"])
    lag = (b["c"]["d"] - j["signup"]).dt.days.to_numpy()
    counts = np.bincount(lag, minlength=31)
    assert len(counts) == 31
    assert stats.chisquare(counts).pvalue > P_MIN
    # a uniform key: the child's copy of a parent attribute follows the parent's frequencies
    parent_freq = b["p"]["country"].value_counts(normalize=True).reindex(["US", "CA", "MX"])
    obs = b["c"]["country"].value_counts().reindex(["US", "CA", "MX"]).to_numpy()
    assert stats.chisquare(obs, parent_freq.to_numpy() * obs.sum()).pvalue > P_MIN


def test_example_shop_orders_after_signup():
    import importlib.resources
    spec = load_spec(str(importlib.resources.files("synthcore") / "data" / "specs" /
                         "shop_orders.yaml"))
    rows = {"customers": 300, "orders": 2000, "lines": 5000}
    t = generate_tables(spec, rows=rows)
    cust, orders, lines = t["customers"], t["orders"], t["lines"]
    j = _by_key(cust, "customer_id", orders["customer_id"])
    assert (orders["order_date"] >= j["signup_date"]).all()
    assert ((orders["order_date"] - j["signup_date"]).dt.days <= 90).all()
    jo = _by_key(orders, "order_id", lines["order_id"])
    pd.testing.assert_series_equal(lines["order_date"], jo["order_date"], check_names=False)
    assert (lines["customer_id"].to_numpy() == jo["customer_id"].to_numpy()).all()
    for name, df in t.items():
        report = spec.tables[name].check(df, rows=rows)   # rules read parents
        assert report.n_valid == report.n_rows, str(report)


def test_keys_to_hidden_and_formatted_sequences():
    spec = {"tables": {
        "p": {"rows": 50, "columns": {"pk": {"type": "sequence", "start": 10, "step": 5,
                                             "hidden": True},
                                      "code": {"type": "sequence", "format": "X{:03d}"},
                                      "v": {"type": "uniform", "low": 0, "high": 1}}},
        "c": {"rows": 500, "columns": {"a": {"type": "foreign_key", "table": "p",
                                             "column": "pk"},
                                       "b": {"type": "foreign_key", "table": "p",
                                             "column": "code"},
                                       "av": "a.v", "bv": "b.v"}}}}
    t = generate_tables(spec, seed=1)
    assert t["c"]["a"].isin(range(10, 10 + 5 * 50, 5)).all()
    assert set(t["c"]["b"]) <= set(t["p"]["code"])
    want = t["p"]["v"].to_numpy()[(t["c"]["a"].to_numpy() - 10) // 5]
    np.testing.assert_array_equal(t["c"]["av"].to_numpy(), want)
    jb = _by_key(t["p"], "code", t["c"]["b"])
    np.testing.assert_array_equal(t["c"]["bv"].to_numpy(), jb["v"].to_numpy())


# ---- errors ------------------------------------------------------------------------

def _two(child_cols, parent_cols=None):
    parent_cols = parent_cols or {"id": {"type": "sequence"},
                                  "v": {"type": "uniform", "low": 0, "high": 1},
                                  "cat": {"type": "categorical", "values": ["a", "b"]}}
    return {"tables": {"p": {"rows": 10, "columns": parent_cols},
                       "c": {"columns": child_cols}}}


FK = {"type": "foreign_key", "table": "p", "column": "id"}


@pytest.mark.parametrize("spec, table, column, field, text", [
    (_two({"k": {"type": "foreign_key", "table": "p", "column": "v"}}), "c", "k", "column",
     "p.v is a uniform column, which is not unique by construction"),
    (_two({"k": {"type": "foreign_key", "table": "p", "column": "nope"}}), "c", "k", "column",
     "parent table 'p' has no column 'nope'"),
    (_two({"k": FK, "x": "k.nope + 1"}), "c", "x", "expr",
     "'k.nope': parent table 'p' has no column 'nope'"),
    (_two({"k": FK, "x": {"type": "parent", "key": "k", "column": "nope"}}), "c", "x",
     "column", "parent table 'p' has no column 'nope'"),
    (_two({"k": {"type": "integer", "low": 0, "high": 3}, "x": "k.v"}), "c", "x", "expr",
     "column 'k' is a integer column, not a foreign key"),
    (_two({"k": {"type": "integer", "low": 0, "high": 3},
           "x": {"type": "parent", "key": "k", "column": "v"}}), "c", "x", "key",
     "'k' must be a foreign key column of this table"),
    (_two({"x": "p.v * 2"}), "c", "x", "expr",
     "'p' is neither a column nor the parent table of a foreign key of this table"),
    (_two({"a": FK, "b": FK, "x": "p.v"}), "c", "x", "expr",
     "several foreign keys refer to table 'p' (a, b)"),
    (_two({"k": FK, "x": "k.cat.v"}), "c", "x", "expr",
     "'k.cat.v': parent table 'p' has no column 'cat.v'"),
    (_two({"k": FK, "x": "k.v + y", "y": "x - 1"}), "c", "x", "expr", "cycle: x -> y -> x"),
])
def test_bad_parent_references_name_table_column_and_field(spec, table, column, field, text):
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    e = info.value
    assert (e.table, e.column, e.field) == (table, column, field), str(e)
    assert text in str(e)


def test_cycles_through_parent_references_and_parent_rows_are_errors():
    with pytest.raises(SpecError, match="foreign keys form a cycle: a -> b -> a"):
        load_spec({"tables": {
            "a": {"columns": {"id": {"type": "sequence"},
                              "k": {"type": "foreign_key", "table": "b", "column": "id"},
                              "x": "k.y"}},
            "b": {"columns": {"id": {"type": "sequence"},
                              "k": {"type": "foreign_key", "table": "a", "column": "id"},
                              "y": "k.x"}}}})
    spec = _two({"k": FK, "x": "k.v"})
    spec["tables"]["p"].pop("rows")
    with pytest.raises(SpecError, match="rows of parent table 'p'"):
        generate(spec, 10, table="c")
    assert len(generate(spec, 10, table="c", rows={"p": 3})) == 10


def test_dotted_names_in_the_rule_language():
    df = pd.DataFrame({"a.b": [1, 2, 3], "c d.e": [3, 2, 1]})
    res = Rules(["a.b < `c d`.e", "\"a.b\" >= 2", "`a`.\"b\" <= 3"]).evaluate(df)
    assert list(res.mask) == [False, False, False]
    assert list(res.violations.values()) == [2, 1, 0]
    with pytest.raises(RuleSyntaxError, match="position 1"):
        Rules(["a.5 > 1"]).evaluate(df)


def test_uuid_keys_are_unique_by_construction_and_keys_can_point_at_them(backend):
    import uuid
    spec = {"tables": {
        "p": {"rows": 200_000, "columns": {"uid": {"type": "uuid"},
                                           "v": {"type": "integer", "low": 0, "high": 10**9}}},
        "c": {"rows": 20_000, "columns": {"k": {"type": "foreign_key", "table": "p",
                                                "column": "uid"},
                                          "v": {"type": "parent", "key": "k", "column": "v"}}}}}
    t = generate_tables(spec, seed=8, backend=backend)
    p, c = t["p"], t["c"]
    assert p["uid"].is_unique
    parsed = [uuid.UUID(u) for u in p["uid"][:2000]]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == s
               for u, s in zip(parsed, p["uid"][:2000]))
    j = _by_key(p, "uid", c["k"])
    np.testing.assert_array_equal(c["v"].to_numpy(), j["v"].to_numpy())
    # windows and the far end of the row range: the same ids, still distinct
    w = generate(spec, 1000, table="p", seed=8, row_offset=123_456, backend=backend)
    assert (w["uid"].to_numpy() == p["uid"].to_numpy()[123_456:124_456]).all()
    end = generate(spec, 5000, table="p", seed=8, row_offset=2**62 - 5000)
    assert end["uid"].is_unique and not set(end["uid"]) & set(p["uid"])
    with pytest.raises(ValueError, match="below 2\\*\\*62"):
        generate(spec, 2, table="p", seed=8, row_offset=2**62 - 1)
    # another seed, other ids
    assert not set(generate(spec, 1000, table="p", seed=9)["uid"]) & set(p["uid"][:1000])


def test_zipf_keys_to_huge_parents_are_refused_and_uniform_keys_read_them():
    spec = _two({"k": dict(FK, distribution="zipf", s=1.1), "x": "k.v"})
    with pytest.raises(SpecError, match="at most 50,000,000 parent rows") as info:
        generate(spec, 10, table="c", rows={"p": 10**9})
    assert (info.value.table, info.value.column) == ("c", "k")
    spec = _two({"k": FK, "x": "k.v", "c": "k.cat"})
    out = generate(spec, 2000, table="c", rows={"p": 10**15}, row_offset=10**14, seed=2)
    assert out["k"].between(1, 10**15).all() and out["k"].nunique() == 2000
    one = generate(spec, 1, table="p", row_offset=int(out["k"][7]) - 1, seed=2)   # id = row + 1
    assert one["v"][0] == out["x"][7] and one["cat"][0] == out["c"][7]


EMPLOYEES = {"tables": {"emp": {"rows": 3000, "columns": {
    "emp_id": {"type": "sequence", "start": 100},
    "name": {"type": "categorical", "values": ["ann", "bob", "cy", "di"]},
    "hired": {"type": "date", "start": "2000-01-01", "end": "2020-12-31"},
    "manager_id": {"type": "foreign_key", "table": "emp", "column": "emp_id",
                   "distribution": "earlier"},
    "manager_name": "manager_id.name",
    "grand": "manager_id.manager_id.emp_id",
    "buddy": {"type": "foreign_key", "table": "emp", "column": "emp_id"},
    "buddy_hired": {"type": "parent", "key": "buddy", "column": "hired"}}}}}


def test_keys_to_the_same_table_form_a_tree_and_read_other_rows(backend):
    t = generate_tables(EMPLOYEES, seed=1, backend=backend)["emp"]
    m = t["manager_id"]
    assert m.isna().tolist()[:2] == [True, False] and m[1:].notna().all()
    assert (m[1:] < t["emp_id"][1:]).all()            # a tree: the manager came earlier
    rows = m[1:].to_numpy(dtype=np.int64) - 100
    # uniform over the earlier rows: the relative position u = manager row / own row
    u = rows / np.arange(1, len(t))
    assert stats.kstest(u[100:], "uniform").pvalue > P_MIN
    j = _by_key(t, "emp_id", m)
    assert (t["manager_name"].astype(object)[1:] == j["name"].astype(object)[1:]).all()
    np.testing.assert_array_equal(t["grand"].astype("Int64")[1:],
                                  j["manager_id"].astype("Int64")[1:])
    jb = _by_key(t, "emp_id", t["buddy"])
    pd.testing.assert_series_equal(t["buddy_hired"], jb["hired"], check_names=False)
    # a window needs no other rows in memory and gives the same rows
    w = generate(EMPLOYEES, 300, row_offset=1700, seed=1, backend=backend)
    pd.testing.assert_frame_equal(w.astype(object),
                                  t.iloc[1700:2000].reset_index(drop=True).astype(object))


def test_reads_of_the_same_table_must_not_come_back_and_earlier_is_for_self_keys():
    cols = {"id": {"type": "sequence"},
            "m": {"type": "foreign_key", "table": "emp", "distribution": "earlier"},
            "level": "m.level + 1"}
    with pytest.raises(SpecError, match="own rows forms a cycle: level -> m.level -> level") \
            as info:
        load_spec({"tables": {"emp": {"columns": cols}}})
    assert (info.value.table, info.value.column) == ("emp", "level")
    cols = {"id": {"type": "sequence"},
            "m": {"type": "foreign_key", "table": "emp", "column": "id"},
            "a": {"type": "parent", "key": "m", "column": "b"}, "b": "m.a"}
    with pytest.raises(SpecError, match="cycle: a -> m.b -> b -> m.a -> a"):
        load_spec({"tables": {"emp": {"columns": cols}}})
    with pytest.raises(SpecError, match="'earlier'") as info:
        load_spec(_two({"k": dict(FK, distribution="earlier")}))
    assert (info.value.column, info.value.field) == ("k", "distribution")


@settings(max_examples=25, deadline=None)
@given(parents=st.integers(1, 20_000), offset=st.integers(0, 10**6), n=st.integers(0, 300),
       dist=st.sampled_from(["uniform", "zipf"]), seed=st.integers(0, 2**32))
def test_any_window_reads_what_the_parent_has(parents, offset, n, dist, seed):
    spec = _two({"k": dict(FK, distribution=dist), "x": "k.v * 2", "c": {
        "type": "parent", "key": "k", "column": "cat"}})
    rows = {"p": parents}
    child = generate(spec, n, table="c", row_offset=offset, rows=rows, seed=seed)
    parent = generate(spec, parents, table="p", seed=seed)
    assert len(child) == n
    j = _by_key(parent, "id", child["k"])
    np.testing.assert_array_equal(child["x"].to_numpy(), j["v"].to_numpy() * 2)
    assert (child["c"].astype(object).to_numpy() == j["cat"].astype(object).to_numpy()).all()


def test_cli_writes_children_in_chunks_equal_to_generate_tables(tmp_path):
    import importlib.resources

    import pyarrow.parquet as pq

    from synthcore.cli import main as cli_main
    path = str(importlib.resources.files("synthcore") / "data" / "specs" / "shop_orders.yaml")
    rows = {"customers": 100, "orders": 1000, "lines": 2500}
    args = ["generate", path, "--out", str(tmp_path / "shop"), "--chunk-rows", "700"]
    for k, v in rows.items():
        args += ["--rows", f"{k}={v}"]
    assert cli_main(args) == 0
    want = generate_tables(path, rows=rows)
    for name in rows:
        got = pq.read_table(tmp_path / "shop" / f"{name}.parquet").to_pandas()
        pd.testing.assert_frame_equal(got.astype(object), want[name].astype(object))


def test_generate_at_gives_the_rows_generate_gives(backend):
    import importlib.resources

    from synthcore import generate_at
    path = str(importlib.resources.files("synthcore") / "data" / "specs" / "shop_orders.yaml")
    whole = generate(path, table="lines", backend=backend)
    idx = np.array([5, 119_999, 0, 5, 77_777, 3])          # any order, repeats
    got = generate_at(path, idx, table="lines", backend=backend)
    pd.testing.assert_frame_equal(got.astype(object),
                                  whole.iloc[idx].reset_index(drop=True).astype(object))
    idx = np.array([39_999, 2, 2, 17_000])
    only = generate_at(path, idx, table="orders", columns=["order_date", "days_after_signup"],
                       backend=backend)
    orders = generate(path, table="orders", backend=backend)
    assert list(only.columns) == ["order_date", "days_after_signup"]   # hidden, when named
    pd.testing.assert_series_equal(only["order_date"],
                                   orders["order_date"].iloc[idx].reset_index(drop=True))
    assert len(generate_at(path, [], table="lines")) == 0
    with pytest.raises(ValueError, match="no column 'nope'"):
        generate_at(path, idx, table="lines", columns=["nope"])
    with pytest.raises(ValueError, match=r"\[0, 2\*\*62\), got -1"):
        generate_at(path, [3, -1], table="lines")
    with pytest.raises(ValueError, match="integers"):
        generate_at(path, [0.5], table="lines")


PER_PARENT = {"seed": 4, "tables": {
    "customers": {"rows": 1000, "columns": {
        "customer_id": {"type": "sequence", "format": "C{:05d}"},
        "n_orders": {"type": "integer", "low": 0, "high": 5},
        "signup": {"type": "date", "start": "2020-01-01", "end": "2020-12-31"}}},
    "orders": {"columns": {
        "order_id": {"type": "sequence"},
        "customer_id": {"type": "foreign_key", "table": "customers", "column": "customer_id",
                        "per_parent": "n_orders"},
        "d": "customer_id.signup + 1 day"}},
    "items": {"columns": {"order": {"type": "foreign_key", "table": "orders",
                                    "column": "order_id"},
                          "c": "order.customer_id"}}}}


def test_rows_per_parent_come_from_a_parent_column(backend, tmp_path):
    t = generate_tables(PER_PARENT, rows={"items": 3000}, backend=backend)
    cust, orders, items = t["customers"], t["orders"], t["items"]
    assert len(orders) == cust["n_orders"].sum()
    per = orders["customer_id"].value_counts().reindex(cust["customer_id"], fill_value=0)
    np.testing.assert_array_equal(per.to_numpy(), cust["n_orders"].to_numpy())
    assert orders["customer_id"].is_monotonic_increasing          # grouped by parent, in order
    j = _by_key(cust, "customer_id", orders["customer_id"])
    pd.testing.assert_series_equal(orders["d"], j["signup"] + pd.Timedelta(days=1),
                                   check_names=False)
    # alone, in windows, and a grandchild whose parent's size comes from the counts
    alone = pd.concat([generate(PER_PARENT, b - a, table="orders", row_offset=a,
                                backend=backend)
                       for a, b in [(0, 1), (1, 999), (999, len(orders))]], ignore_index=True)
    pd.testing.assert_frame_equal(alone.astype(object), orders.astype(object))
    pd.testing.assert_frame_equal(generate(PER_PARENT, table="items", rows={"items": 3000},
                                           backend=backend), items)
    assert load_spec(PER_PARENT).row_counts({"items": 5})["orders"] == len(orders)
    with pytest.raises(ValueError, match="rows per parent"):
        generate(PER_PARENT, 10, table="orders", row_offset=len(orders) - 5)
    with pytest.raises(ValueError, match="disagrees"):
        generate_tables(PER_PARENT, rows={"orders": 10, "items": 5})


def test_cli_counts_rows_per_parent(tmp_path):
    import pyarrow.parquet as pq

    from synthcore.cli import main as cli_main
    path = tmp_path / "spec.json"
    import json
    path.write_text(json.dumps(PER_PARENT))
    assert cli_main(["generate", str(path), "--rows", "400", "--out", str(tmp_path / "o"),
                     "--chunk-rows", "300"]) == 0
    want = generate_tables(PER_PARENT, rows={"customers": 400, "items": 400})
    for name in want:
        got = pq.read_table(tmp_path / "o" / f"{name}.parquet").to_pandas()
        pd.testing.assert_frame_equal(got.astype(object), want[name].astype(object))


@pytest.mark.parametrize("change, column, field, text", [
    ({"distribution": "zipf"}, "customer_id", "distribution", "takes no distribution"),
    ({"per_parent": "nope"}, "customer_id", "per_parent", "has no column 'nope'"),
    ({"per_parent": "signup"}, "customer_id", "per_parent", "is datetime"),
])
def test_bad_rows_per_parent(change, column, field, text):
    spec = json_copy(PER_PARENT)
    spec["tables"]["orders"]["columns"]["customer_id"].update(change)
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert (info.value.table, info.value.column, info.value.field) == ("orders", column, field)
    assert text in str(info.value)


def test_rows_per_parent_must_be_counts_and_set_the_size():
    spec = json_copy(PER_PARENT)
    spec["tables"]["orders"]["rows"] = 10
    with pytest.raises(SpecError, match="remove 'rows'"):
        load_spec(spec)
    spec = json_copy(PER_PARENT)
    spec["tables"]["customers"]["columns"]["n_orders"]["low"] = -1
    with pytest.raises(SpecError, match="negative"):
        generate_tables(spec, rows={"items": 3})
    spec = json_copy(PER_PARENT)
    spec["tables"]["orders"]["columns"]["again"] = dict(
        spec["tables"]["orders"]["columns"]["customer_id"])
    with pytest.raises(SpecError, match="one key per table"):
        load_spec(spec)
    spec = json_copy(PER_PARENT)   # a bad count in a block a window needs: the same error
    spec["tables"]["customers"]["columns"]["n_orders"] = "when customer_id = 'C00700' " \
        "then -1 else 2"
    with pytest.raises(SpecError, match="negative"):
        generate(spec, 5, table="orders", row_offset=1500)


def _old_parent_rows(counts, child_rows):
    """The running total over every parent (the implementation before blocks)."""
    return np.searchsorted(np.cumsum(counts, dtype=np.int64), child_rows, side="right")


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_rows_per_parent_blocks_give_the_same_rows(monkeypatch, block):
    import synthcore.generation as gen
    want = generate_tables(PER_PARENT, rows={"items": 2000})
    monkeypatch.setattr(gen, "GROUP_BLOCK", block)
    got = generate_tables(PER_PARENT, rows={"items": 2000})
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name])
    counts = want["customers"]["n_orders"].to_numpy()
    parents = _old_parent_rows(counts, np.arange(len(want["orders"])))
    np.testing.assert_array_equal(want["customers"]["customer_id"].to_numpy()[parents],
                                  got["orders"]["customer_id"].to_numpy())
    # windows that start and end inside blocks, rows in any order, empty blocks (zeros)
    spec = json_copy(PER_PARENT)
    spec["tables"]["customers"]["columns"]["n_orders"]["high"] = 1
    whole = generate(spec, table="orders")
    for a, b in [(0, 1), (3, 40), (17, len(whole))]:
        pd.testing.assert_frame_equal(generate(spec, b - a, table="orders", row_offset=a),
                                      whole.iloc[a:b].reset_index(drop=True))
    idx = np.random.default_rng(block).integers(0, len(whole), 300)
    pd.testing.assert_frame_equal(generate_at(spec, idx, table="orders"),
                                  whole.iloc[idx].reset_index(drop=True))


def test_rows_per_parent_over_a_billion_parents_count_only_the_blocks_a_window_needs():
    import tracemalloc

    import synthcore.generation as gen
    m = 10**9
    spec = load_spec(PER_PARENT)
    tracemalloc.start()
    try:
        got = generate(spec, 500, table="orders", row_offset=3_000_000,
                       rows={"customers": m})
        at = generate_at(spec, [2, 2_999_999, 10, 2_600_000], table="orders",
                         columns=["customer_id", "d"], rows={"customers": m})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20      # per-parent memory would be 8 bytes x 10**9
    index = spec.tables["orders"].columns["customer_id"].params["_groups"][1]
    assert index.blocks == -(-m // gen.GROUP_BLOCK) and len(index.ends) <= 3
    # independently: the counts of just the first parents, their running total
    need = 2 * gen.GROUP_BLOCK
    cust = generate(PER_PARENT, need, table="customers", rows={"customers": m})
    ends = np.cumsum(cust["n_orders"].to_numpy())
    assert ends[-1] > 3_000_500
    for rows_, frame in [(np.arange(3_000_000, 3_000_500), got),
                         (np.array([2, 2_999_999, 10, 2_600_000]), at)]:
        parents = np.searchsorted(ends, rows_, side="right")
        np.testing.assert_array_equal(frame["customer_id"].to_numpy(),
                                      cust["customer_id"].to_numpy()[parents])
        pd.testing.assert_series_equal(frame["d"], (cust["signup"].iloc[parents] + pd.Timedelta(
            days=1)).reset_index(drop=True), check_names=False)
    np.testing.assert_array_equal(got["order_id"].to_numpy(), np.arange(3_000_001, 3_000_501))


def json_copy(x):
    import json
    return json.loads(json.dumps(x))


def test_rows_per_parent_follow_the_grandparent_row_count_in_one_process():
    # the counts read a grandparent attribute: the grandparent's row count changes them,
    # so the kept block totals must not be reused across calls that differ in it
    spec = {"seed": 3, "tables": {
        "regions": {"columns": {"region_id": {"type": "sequence"},
                                "base": {"type": "integer", "low": 0, "high": 5}}},
        "customers": {"columns": {
            "customer_id": {"type": "sequence"},
            "region_id": {"type": "foreign_key", "table": "regions", "column": "region_id"},
            "n_orders": "region_id.base"}},
        "orders": {"columns": {
            "order_id": {"type": "sequence"},
            "customer_id": {"type": "foreign_key", "table": "customers",
                            "column": "customer_id", "per_parent": "n_orders"}}}}}
    loaded = load_spec(spec)
    for regions in (3, 40, 3):
        rows = {"customers": 50, "regions": regions}
        want = generate(spec, table="orders", rows=rows)   # a fresh spec each time
        got = generate(loaded, table="orders", rows=rows)
        pd.testing.assert_frame_equal(got, want)
        assert loaded.row_counts(rows)["orders"] == len(want)
        counts = generate_tables(spec, rows=rows)["customers"]["n_orders"]
        assert len(want) == counts.sum()


def test_a_table_spec_placed_in_two_specs_belongs_to_each():
    from synthcore import Spec, TableSpec
    orders = TableSpec({"order_id": {"type": "sequence"},
                        "customer_id": {"type": "foreign_key", "table": "customers",
                                        "per_parent": "n"},
                        "v": {"type": "uniform", "low": 0, "high": 1}},
                       name="orders", rules=["v < customer_id.lim"])
    few = {"columns": {"n": {"type": "integer", "low": 0, "high": 2},
                       "lim": {"type": "uniform", "low": 0, "high": 1}}}
    many = {"columns": {"n": {"type": "integer", "low": 3, "high": 6},
                        "lim": {"type": "uniform", "low": 0, "high": 0.01}}}
    rows = {"customers": 40}
    s1 = Spec({"customers": few, "orders": orders}, seed=1)
    s2 = Spec({"customers": many, "orders": orders}, seed=1)
    fresh = Spec({"customers": few, "orders": orders.to_dict()}, seed=1)
    got, want = generate_tables(s1, rows=rows), generate_tables(fresh, rows=rows)
    pd.testing.assert_frame_equal(got["orders"], want["orders"])
    report = s1.tables["orders"].check(got["orders"], rows=rows)   # s1's customers
    assert report.counts == fresh.tables["orders"].check(want["orders"],
                                                        rows=rows).counts
    assert 0 < report.counts[0] < len(got["orders"])
    assert len(generate_tables(s2, rows=rows)["orders"]) >= 3 * 40
    # the same TableSpec twice in one spec: two tables with their own names and streams
    a = load_spec({"columns": {"x": {"type": "uniform", "low": 0, "high": 1}}}).tables["table"]
    both = Spec({"a": a, "b": a}, seed=1)
    assert [both.tables[n].name for n in "ab"] == ["a", "b"]
    g = generate_tables(both, rows={"a": 5, "b": 5})
    assert not np.array_equal(g["a"]["x"], g["b"]["x"])


def test_rows_per_parent_from_several_threads_on_one_spec(monkeypatch):
    # the kept block totals are shared by the calls on one spec: threads must not count
    # a block twice or read another call's index (other seed, other parent count)
    import threading

    import synthcore.generation as gen
    monkeypatch.setattr(gen, "GROUP_BLOCK", 4)
    spec = {"seed": 3, "tables": {
        "customers": {"columns": {"customer_id": {"type": "sequence"},
                                  "n_orders": {"type": "integer", "low": 0, "high": 3}}},
        "orders": {"columns": {"order_id": {"type": "sequence"},
                               "customer_id": {"type": "foreign_key", "table": "customers",
                                               "column": "customer_id",
                                               "per_parent": "n_orders"}}}}}
    calls = [(seed, m) for seed in (1, 2) for m in (1500, 2500)] * 2
    want = [generate(spec, table="orders", seed=s, rows={"customers": m}) for s, m in calls]
    for _ in range(2):
        loaded, got = load_spec(spec), [None] * len(calls)

        def run(i):
            try:
                s, m = calls[i]
                got[i] = generate(loaded, table="orders", seed=s, rows={"customers": m},
                                  backend="cpu")
            except Exception as e:   # noqa: BLE001 - compared below
                got[i] = e
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for g, w in zip(got, want):
            assert isinstance(g, pd.DataFrame), g
            pd.testing.assert_frame_equal(g, w)


def test_rows_per_parent_of_no_parents_is_an_empty_table():
    rows = {"customers": 0, "items": 0}
    tables = generate_tables(PER_PARENT, rows=rows)
    assert len(tables["customers"]) == 0 and len(tables["orders"]) == 0
    assert list(tables["orders"].columns) == list(generate(PER_PARENT, 0, table="orders",
                                                           rows=rows).columns)
    assert load_spec(PER_PARENT).row_counts(rows)["orders"] == 0
    with pytest.raises(ValueError, match="has 0 rows"):
        generate(PER_PARENT, 1, table="orders", rows=rows)
