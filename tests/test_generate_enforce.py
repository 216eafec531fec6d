"""Enforced table constraints (``constraints:``, docs/generate.md): a row that breaks one
is redrawn from the attempt's own Philox streams at the same row index, so every
constraint holds on every row, the rows are a function of (seed, table, row) at any
window, in generate_at and in children that read the parent's attributes, rows that
pass at the first attempt keep their values, and the rows follow the distribution of
the plain spec conditioned on the constraints."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from synthcore import Rules, SpecError, generate, generate_at, generate_tables, load_spec

P_MIN = 1e-3

CUSTOMER_RULES = ["credit >= 2000 or vip", "score is null or score > -1",
                  "if tier = 'gold' then signup < date '2022-01-01'"]
ORDER_RULES = ["amount <= cust.credit", "order_date < date '2025-01-01'",
               "if by_uid.vip then qty >= 3"]

SPEC = {"seed": 5, "tables": {
    "customers": {"rows": 3000, "columns": {
        "customer_id": {"type": "sequence", "start": 10, "format": "C{:06d}"},
        "uid": {"type": "uuid"},
        "signup": {"type": "date", "start": "2020-01-01", "end": "2024-12-31"},
        "credit": {"type": "uniform", "low": 0, "high": 10000, "decimals": 2},
        "vip": {"type": "boolean", "p": 0.2},
        "tier": "when vip then 'gold' else 'basic'",
        "score": {"type": "normal", "mean": 0, "std": 1, "nulls": 0.1}},
        "rules": ["credit >= 0"],
        "constraints": CUSTOMER_RULES},
    "orders": {"rows": 6000, "columns": {
        "order_id": {"type": "sequence"},
        "cust": {"type": "foreign_key", "table": "customers", "column": "customer_id",
                 "distribution": "zipf", "s": 1.1},
        "by_uid": {"type": "foreign_key", "table": "customers", "column": "uid"},
        "amount": {"type": "lognormal", "mean": 7.5, "sigma": 1.0, "decimals": 2},
        "days": {"type": "integer", "low": 0, "high": 400, "hidden": True},
        "order_date": "cust.signup + days * 1 day",
        "cust_credit": {"type": "parent", "key": "cust", "column": "credit"},
        "vip": "by_uid.vip",
        "qty": {"type": "integer", "low": 1, "high": 5}},
        "rules": ["qty between 1 and 5"],
        "constraints": ORDER_RULES}}}


def _copy(x):
    return json.loads(json.dumps(x))


def _plain(spec: dict) -> dict:
    """The same spec with its constraints made plain rules (checked, not enforced)."""
    out = _copy(spec)
    tables = out["tables"] if "tables" in out else {"t": out}
    for t in tables.values():
        t["rules"] = t.get("rules", []) + t.pop("constraints", [])
        t.pop("max_attempts", None)
    return out


def _by_key(parent: pd.DataFrame, key: str, values) -> pd.DataFrame:
    return parent.set_index(key).loc[list(values)].reset_index()


# ---- every row holds; children see the redrawn parents ------------------------------

def test_every_constraint_holds_and_children_read_the_redrawn_parent(backend):
    spec = load_spec(SPEC)
    t = generate_tables(spec, backend=backend)
    cust, orders = t["customers"], t["orders"]
    assert len(cust) == 3000 and len(orders) == 6000
    for name in t:   # check counts the constraints too: none is broken
        report = spec.tables[name].check(t[name])
        assert report.n_valid == report.n_rows, str(report)
        assert len(report.rules) == len(spec.tables[name].all_rules)
    assert ((cust["credit"] >= 2000) | cust["vip"]).all()
    assert (cust["score"].isna() | (cust["score"] > -1)).all()
    # the plain spec breaks them often, so enforcement did redraw rows
    plain = generate_tables(_plain(SPEC), backend=backend)
    assert (~((plain["customers"]["credit"] >= 2000) | plain["customers"]["vip"])).sum() > 300
    # join: the order's customer (by the formatted key and by the uuid) is the redrawn one
    j = _by_key(cust, "customer_id", orders["cust"])
    assert (orders["amount"].to_numpy() <= j["credit"].to_numpy()).all()
    np.testing.assert_array_equal(orders["cust_credit"].to_numpy(), j["credit"].to_numpy())
    pd.testing.assert_series_equal(
        orders["order_date"], j["signup"] + pd.to_timedelta(
            (orders["order_date"] - j["signup"]).dt.days, unit="D"), check_names=False)
    assert (orders["order_date"] < pd.Timestamp("2025-01-01")).all()
    ju = _by_key(cust, "uid", orders["by_uid"])
    np.testing.assert_array_equal(orders["vip"].to_numpy(), ju["vip"].to_numpy())
    assert (orders["qty"][ju["vip"].to_numpy()] >= 3).all()
    # the rules over the join, with the plain Rules engine, agree
    joined = orders.assign(**{"cust.credit": j["credit"].to_numpy(),
                              "by_uid.vip": ju["vip"].to_numpy()})
    assert Rules(ORDER_RULES).report(joined).n_valid == len(orders)


def test_backends_give_the_same_rows(native_backend):
    base = generate_tables(SPEC, backend="numpy")
    other = generate_tables(SPEC, backend=native_backend)
    for name in base:
        pd.testing.assert_frame_equal(base[name], other[name])


# ---- determinism: any window, generate_at, a child alone ----------------------------

@pytest.mark.parametrize("table, windows", [
    ("customers", [(0, 1), (1, 999), (999, 2500), (2500, 3000)]),
    ("orders", [(0, 4096), (4096, 4097), (4097, 6000)]),
])
def test_same_rows_at_any_window_and_generate_at(table, windows):
    rows = {"customers": 3000, "orders": 6000}
    whole = generate_tables(SPEC, rows=rows)[table]
    parts = [generate(SPEC, b - a, table=table, row_offset=a, rows=rows) for a, b in windows]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True).astype(object),
                                  whole.astype(object))
    idx = np.random.default_rng(0).integers(0, len(whole), 300)
    at = generate_at(SPEC, idx, table=table, rows=rows)
    pd.testing.assert_frame_equal(at.astype(object),
                                  whole.iloc[idx].reset_index(drop=True).astype(object))


def test_sparse_parent_rows_read_far_into_the_child():
    """A child window far away: its customers come back row by row (_RowSet), with the
    constraints enforced there as in the whole parent."""
    rows = {"customers": 400_000, "orders": 10**12}
    far = generate(SPEC, 300, table="orders", row_offset=10**11, rows=rows)
    cust_rows = far["cust"].str[1:].astype(np.int64).to_numpy() - 10
    cust = generate_at(SPEC, cust_rows, table="customers", rows=rows)
    assert (far["amount"].to_numpy() <= cust["credit"].to_numpy()).all()
    np.testing.assert_array_equal(far["cust_credit"].to_numpy(), cust["credit"].to_numpy())
    window = generate(SPEC, int(cust_rows.max()) - int(cust_rows.min()) + 1, table="customers",
                      row_offset=int(cust_rows.min()), rows=rows)
    got = window.iloc[cust_rows - cust_rows.min()].reset_index(drop=True)
    pd.testing.assert_frame_equal(got.astype(object), cust.astype(object))


def test_rows_that_pass_at_the_first_attempt_keep_their_values():
    one = {"seed": 9, "rows": 5000, "columns": {
        "id": {"type": "sequence"},
        "x": {"type": "uniform", "low": 0, "high": 1},
        "c": {"type": "categorical", "values": ["a", "b", "c"], "weights": [0.2, 0.3, 0.5]},
        "y": {"type": "normal", "mean": 0, "std": 1, "nulls": 0.2},
        "s": "x * 2"},
        "constraints": ["x < 0.6 or c = 'a'", "y is null or y < 1"]}
    enforced = generate(one, output="pandas")
    plain = generate(_plain(one))
    passed = Rules(one["constraints"]).evaluate(plain).mask
    assert 0.3 < passed.mean() < 0.7
    pd.testing.assert_frame_equal(enforced[passed], plain[passed])
    assert not (enforced["x"][~passed].to_numpy() == plain["x"][~passed].to_numpy()).all()
    np.testing.assert_array_equal(enforced["id"], plain["id"])   # sequences stay
    assert Rules(one["constraints"]).evaluate(enforced).mask.all()
    # in the two-table spec: the root table's rows that pass keep their values
    cust = generate_tables(SPEC)["customers"]
    cust_plain = generate_tables(_plain(SPEC))["customers"]
    ok = Rules(CUSTOMER_RULES).evaluate(cust_plain).mask
    pd.testing.assert_frame_equal(cust[ok], cust_plain[ok])


# ---- the distribution is the conditional one ----------------------------------------

def test_one_column_constraint_gives_the_truncated_uniform():
    spec = {"seed": 1, "rows": 20_000, "columns": {"x": {"type": "uniform", "low": 0,
                                                        "high": 1}},
            "constraints": ["x < 0.3"]}
    x = generate(spec)["x"].to_numpy()
    assert x.max() < 0.3 and x.min() >= 0
    assert stats.kstest(x / 0.3, "uniform").pvalue > P_MIN
    # not only the first draws: most rows were redrawn
    first = generate(_plain(spec))["x"].to_numpy()
    assert (x != first).mean() > 0.6


def test_null_masks_are_redrawn_too():
    spec = {"seed": 8, "rows": 20_000, "columns": {
        "x": {"type": "normal", "mean": 0, "std": 1, "nulls": 0.4}},
        "constraints": ["x is not null and x > 0"]}
    x = generate(spec)["x"]
    assert not x.isna().any() and (x > 0).all()
    assert stats.kstest(x, stats.halfnorm.cdf).pvalue > P_MIN


def test_two_column_constraint_gives_the_conditional_distribution():
    cols = {"x": {"type": "uniform", "low": 0, "high": 1},
            "y": {"type": "normal", "mean": 0, "std": 1},
            "c": {"type": "categorical", "values": ["a", "b"], "weights": [0.3, 0.7]}}
    rule = "x + y > 0.5 or c = 'a'"
    enforced = generate({"seed": 2, "rows": 20_000, "columns": cols, "constraints": [rule]})
    assert Rules([rule]).evaluate(enforced).mask.all()
    # rejection sampling a large plain sample with another seed
    big = generate({"seed": 3, "rows": 200_000, "columns": cols})
    ref = Rules([rule]).filter(big)
    assert len(ref) < 0.75 * len(big)
    for col in ("x", "y"):
        assert stats.ks_2samp(enforced[col], ref[col]).pvalue > P_MIN, col
    assert stats.ks_2samp(enforced["x"] + enforced["y"], ref["x"] + ref["y"]).pvalue > P_MIN
    table = [[(enforced["c"] == v).sum() for v in "ab"], [(ref["c"] == v).sum() for v in "ab"]]
    assert stats.chi2_contingency(table).pvalue > P_MIN
    # and differs from the unconditioned law, so the test can fail
    assert stats.ks_2samp(enforced["y"], big["y"]).pvalue < 1e-6


# ---- keys: per_parent, 'earlier' self keys ------------------------------------------

def test_per_parent_keys_stay_and_the_counts_are_the_enforced_ones():
    spec = {"seed": 4, "tables": {
        "customers": {"rows": 500, "columns": {
            "customer_id": {"type": "sequence"},
            "vip": {"type": "boolean", "p": 0.3},
            "n_orders": {"type": "integer", "low": 0, "high": 6}},
            "constraints": ["if vip then n_orders >= 4"]},
        "orders": {"columns": {
            "customer_id": {"type": "foreign_key", "table": "customers",
                            "column": "customer_id", "per_parent": "n_orders"},
            "amount": {"type": "uniform", "low": 0, "high": 100},
            "vip": "customer_id.vip"},
            "constraints": ["if customer_id.vip then amount >= 50"]}}}
    t = generate_tables(spec)
    cust, orders = t["customers"], t["orders"]
    counts = orders["customer_id"].value_counts().reindex(cust["customer_id"], fill_value=0)
    np.testing.assert_array_equal(counts.to_numpy(), cust["n_orders"].to_numpy())
    assert (cust["n_orders"][cust["vip"]] >= 4).all()
    assert (orders["amount"][orders["vip"]] >= 50).all()
    assert orders["customer_id"].is_monotonic_increasing
    for name in t:
        assert load_spec(spec).tables[name].check(t[name], seed=4).n_valid == len(t[name])
    part = generate(spec, 100, table="orders", row_offset=700)
    pd.testing.assert_frame_equal(part, orders.iloc[700:800].reset_index(drop=True))


def test_earlier_self_keys_are_redrawn_and_read_through():
    spec = {"seed": 6, "rows": 4000, "columns": {
        "id": {"type": "sequence", "start": 0},
        "manager": {"type": "foreign_key", "table": "table", "distribution": "earlier"},
        "x": {"type": "uniform", "low": 0, "high": 1},
        "boss_x": "manager.x"},
        "constraints": ["manager is null or manager >= (id - 1) / 2", "x < 0.5"]}
    df = generate(spec)
    assert df["manager"].isna().sum() == 1
    m = df["manager"].dropna().astype(np.int64)
    assert (m.to_numpy() >= (df["id"][m.index].to_numpy() - 1) / 2).all()
    np.testing.assert_array_equal(df["boss_x"][m.index].to_numpy(),
                                  df["x"].to_numpy()[m.to_numpy()])
    assert (df["boss_x"].dropna() < 0.5).all()
    parts = pd.concat([generate(spec, 1500), generate(spec, 2500, row_offset=1500)],
                      ignore_index=True)
    pd.testing.assert_frame_equal(parts, df)


# ---- errors -----------------------------------------------------------------------

def test_max_attempts_error_names_table_constraint_and_row():
    spec = {"seed": 1, "name": "things", "rows": 1000, "max_attempts": 3, "columns": {
        "x": {"type": "uniform", "low": 0, "high": 1},
        "y": {"type": "uniform", "low": 0, "high": 1}},
        "constraints": ["y < 0.9", "x > 0.999"]}
    with pytest.raises(SpecError, match=r"max_attempts=3 .*row \d+ first.*'x > 0.999' "
                                        r"rejected the most") as info:
        generate(spec)
    assert (info.value.table, info.value.field, info.value.rule) == ("things", "constraints", 1)
    # a window where every row passes within the attempts is fine; raising the limit helps
    spec["max_attempts"] = 20_000
    assert (generate(spec, 5)["x"] > 0.999).all()


@pytest.mark.parametrize("columns, constraint, text", [
    ({"id": {"type": "sequence"}, "x": {"type": "uniform", "low": 0, "high": 1}},
     "id > 5", "'id' is a sequence"),
    ({"u": {"type": "uuid"}, "k": {"type": "integer", "low": 3, "high": 3}},
     "k > 3 or u is null", "'k' is a distribution with a single value"),
    ({"id": {"type": "sequence"}, "d": "id * 2 + 1"},
     "d < 0", "'d' is an expression of fixed columns"),
    ({"x": {"type": "uniform", "low": 0, "high": 1}}, "1 > 2", "reads no column"),
])
def test_constraints_redrawing_cannot_change_are_refused_at_load(columns, constraint, text):
    with pytest.raises(SpecError, match="redrawing a row cannot change|reads no column") as info:
        load_spec({"name": "t", "columns": {**columns, "r": {"type": "normal", "mean": 0,
                                                            "std": 1}},
                   "rules": ["true"], "constraints": ["r < 9", constraint]})
    assert text in str(info.value)
    assert (info.value.table, info.value.field, info.value.rule) == ("t", "constraints", 1)


def test_a_per_parent_key_read_is_fixed():
    spec = {"tables": {
        "p": {"rows": 5, "columns": {"pid": {"type": "sequence"},
                                     "n": {"type": "integer", "low": 1, "high": 3},
                                     "flag": {"type": "boolean"}}},
        "c": {"columns": {"pid": {"type": "foreign_key", "table": "p", "column": "pid",
                                  "per_parent": "n"}},
              "constraints": ["pid.flag"]}}}
    with pytest.raises(SpecError, match="per_parent key"):
        load_spec(spec)


@pytest.mark.parametrize("constraint, text", [
    ("h < 3", "column 'h' is hidden"),
    ("nope < 3", "unknown column 'nope'"),
    ("z := x + 1", "not a derived column"),
    ("mgr.x < 0.5", "reads the table's own rows"),
    ("x < 'a'", "cannot compare a string with float"),   # types, checked at load
])
def test_bad_constraints_are_refused_at_load(constraint, text):
    spec = {"name": "t", "columns": {
        "x": {"type": "uniform", "low": 0, "high": 1},
        "h": {"type": "integer", "low": 0, "high": 9, "hidden": True},
        "mgr": {"type": "foreign_key", "table": "t"}},
        "constraints": [constraint]}
    with pytest.raises(SpecError, match=text) as info:
        load_spec(spec)
    assert info.value.field == "constraints"


def test_max_attempts_field_and_round_trip():
    with pytest.raises(SpecError, match="max_attempts"):
        load_spec({"columns": {"x": {"type": "uniform", "low": 0, "high": 1}},
                   "max_attempts": 5})
    with pytest.raises(SpecError, match=">= 1"):
        load_spec({"columns": {"x": {"type": "uniform", "low": 0, "high": 1}},
                   "constraints": ["x < 1"], "max_attempts": 0})
    spec = load_spec(SPEC)
    again = load_spec(spec.to_yaml())
    assert again.to_dict() == spec.to_dict()
    assert again.tables["orders"].constraints == ORDER_RULES
    assert again.tables["orders"].max_attempts == 100


def test_the_shipped_inventory_log_enforces_its_constraint():
    import importlib.resources
    import yaml
    path = importlib.resources.files("synthcore") / "data" / "specs" / "inventory_log.yaml"
    spec = load_spec(str(path))
    assert spec.tables["inventory_log"].constraints
    df = generate(spec)
    assert not ((df["event"] == "adjust") & (df["quantity"] == 0)).any()
    raw = yaml.safe_load(path.read_text())
    raw["rules"] += raw.pop("constraints")
    plain = generate(raw)
    broke = ((plain["event"] == "adjust") & (plain["quantity"] == 0)).to_numpy()
    assert broke.sum() > 20
    pd.testing.assert_frame_equal(df[~broke], plain[~broke])


def test_a_constraint_on_an_expression_of_fixed_columns_sharing_a_dependency_is_refused():
    # c reads x twice (through a and b): still a function of the row index
    spec = {"seed": 1, "columns": {"id": {"type": "sequence"}, "x": "id + 1", "a": "x * 2",
                                   "b": "x * 3", "c": "a + b",
                                   "u": {"type": "uniform", "low": 0, "high": 1}},
            "constraints": ["u < 2", "c > 20"]}
    with pytest.raises(SpecError, match="redrawing a row cannot change") as e:
        load_spec(spec)
    assert (e.value.field, e.value.rule) == ("constraints", 1)


def test_a_constraint_on_a_long_chain_of_expressions_loads():
    columns = {"u": {"type": "uniform", "low": 0, "high": 1}, "c0": "u"}
    for i in range(1, 1500):   # deeper than Python's recursion limit
        columns[f"c{i}"] = f"c{i - 1} + 0"
    spec = {"seed": 1, "columns": columns, "constraints": ["c1499 < 0.5"]}
    got = generate(spec, 50, backend="numpy")
    assert (got["c1499"] < 0.5).all() and (got["u"] == got["c1499"]).all()


@pytest.mark.parametrize("distribution", ["earlier", "uniform", "zipf"])
@pytest.mark.parametrize("key", [{"type": "sequence", "start": 100},
                                 {"type": "sequence", "format": "E{:05d}"}, {"type": "uuid"}])
def test_self_keys_with_a_key_column_under_constraints(distribution, key):
    # the key's value is the id of the row it points to: looking it up must not enforce
    # the constraints (which read the key) on the pointed-to rows over and over
    boss = {"type": "foreign_key", "table": "emp", "column": "id",
            "distribution": distribution}
    if distribution == "zipf":
        boss["s"] = 1.2
    spec = {"seed": 2, "tables": {"emp": {"rows": 300, "columns": {
        "id": key, "boss": boss, "x": {"type": "uniform", "low": 0, "high": 1},
        "boss_x": "boss.x"}, "constraints": ["boss != id", "x < 0.7"]}}}
    df = generate(spec, table="emp")
    assert (df["boss"].dropna() != df["id"][df["boss"].notna()]).all()
    at = df.set_index("id")
    has = df["boss"].notna()
    np.testing.assert_array_equal(df["boss_x"][has].to_numpy(),
                                  at["x"].loc[df["boss"][has]].to_numpy())
    pd.testing.assert_frame_equal(pd.concat([generate(spec, 120, table="emp", rows={"emp": 300}),
                                             generate(spec, 180, table="emp", row_offset=120,
                                                      rows={"emp": 300})], ignore_index=True),
                                  df)


@pytest.mark.parametrize("constraint, position", [("x > 0 and mgr.x < 0.5", 10),
                                                  ("mgr < 1 and y > 2", 12)])
def test_a_constraint_reading_the_own_rows_names_where(constraint, position):
    spec = {"name": "t", "columns": {
        "x": {"type": "uniform", "low": 0, "high": 1}, "y": "mgr.x",
        "mgr": {"type": "foreign_key", "table": "t"}}, "constraints": ["x < 1", constraint]}
    with pytest.raises(SpecError, match="reads the table's own rows") as info:
        load_spec(spec)
    assert (info.value.table, info.value.field, info.value.rule, info.value.position) == \
        ("t", "constraints", 1, position)


def test_rows_between_the_rows_asked_for_are_not_enforced():
    # row 1 can never hold (its only earlier row is 0); rows 0 and 3000 can: asking for
    # them together (generate_at, or a child's keys: the same path) must not depend on
    # the rows in between, which a dense set of rows is generated with
    spec = {"seed": 4, "columns": {
        "id": {"type": "sequence", "start": 0},
        "manager": {"type": "foreign_key", "table": "table", "distribution": "earlier"},
        "x": {"type": "uniform", "low": 0, "high": 1}},
        "constraints": ["manager >= id / 2"]}
    one = [generate(spec, 1, row_offset=r) for r in (0, 3000, 3002)]
    at = generate_at(spec, [3000, 0, 3002, 3000])
    pd.testing.assert_frame_equal(at, pd.concat([one[1], one[0], one[2], one[1]],
                                                ignore_index=True))
    with pytest.raises(SpecError, match="row 1 first"):
        generate(spec, 3)
