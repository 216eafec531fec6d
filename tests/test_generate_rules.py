"""Table rules that read parent attributes through foreign keys (``cust.signup``, by
table name, several hops, keys to the table itself): ``TableSpec.check`` counts the same
violations as the rules over a join with the generated parent tables, for any window of
the child, any output type, and names table, rule and position for a bad name."""
import json

import numpy as np
import pandas as pd
import pytest

from synthcore import Rules, SpecError, generate, generate_tables, load_spec

RULES = [
    "order_date >= cust.signup",                          # holds by construction
    "order_date >= cust.signup + 30 days",                 # about half the rows
    "by_uid.country = 'US'",                              # through a uuid key
    "row.score > 0",                                      # a key without column, nulls
    "if cust.country = 'US' then lag < 30",
    "order_date >= cust.regions.launch + 100 days",       # two hops, by table name
    "cust.customer_id = cust",                            # the key read back
    "by_num.score < 1 and by_num.num = by_num",           # an integer sequence, step < 0
]

SPEC = {"seed": 3, "tables": {
    "regions": {"rows": 7, "columns": {
        "rid": {"type": "sequence", "format": "R{}"},
        "launch": {"type": "date", "start": "2010-01-01", "end": "2012-12-31"}}},
    "customers": {"rows": 3000, "columns": {
        "customer_id": {"type": "sequence", "start": 1000, "step": 3, "format": "C{:06d}"},
        "uid": {"type": "uuid"},
        "num": {"type": "sequence", "start": 5, "step": -2},
        "region": {"type": "foreign_key", "table": "regions", "column": "rid"},
        "signup": "region.launch + 100 days",
        "country": {"type": "categorical", "values": ["US", "CA", "MX"],
                    "weights": [0.6, 0.3, 0.1]},
        "score": {"type": "normal", "mean": 0, "std": 1, "nulls": 0.1}}},
    "orders": {"rows": 5000, "columns": {
        "order_id": {"type": "sequence"},
        "cust": {"type": "foreign_key", "table": "customers", "column": "customer_id",
                 "distribution": "zipf", "s": 1.1, "nulls": 0.05},
        "by_uid": {"type": "foreign_key", "table": "customers", "column": "uid"},
        "row": {"type": "foreign_key", "table": "customers"},
        "by_num": {"type": "foreign_key", "table": "customers", "column": "num"},
        "lag": {"type": "integer", "low": 0, "high": 60},
        "order_date": "cust.signup + lag * 1 day"},
        "rules": RULES}}}


def _copy(x):
    return json.loads(json.dumps(x))


def _joined(tables) -> pd.DataFrame:
    """The orders with the parent attributes the rules name, by joins on the keys."""
    regions = tables["regions"].set_index("rid")
    cust = tables["customers"].copy()
    cust["regions.launch"] = regions["launch"].reindex(cust["region"].to_numpy()).to_numpy()
    orders = tables["orders"].copy()
    for key, by in [("cust", "customer_id"), ("by_uid", "uid"), ("row", None),
                    ("by_num", "num")]:
        parent = cust.set_index(by) if by else cust
        got = parent.reindex(orders[key].to_numpy()).reset_index()
        if by:
            got[by] = got[by].where(orders[key].notna().to_numpy())
        for col in ["customer_id", "signup", "country", "score", "regions.launch", "num"]:
            orders[f"{key}.{col}"] = got[col].to_numpy() if col in got else None
    return orders


def test_rules_reading_parents_count_what_a_join_counts(backend):
    spec = load_spec(SPEC)
    tables = generate_tables(spec, seed=11, backend=backend)
    want = Rules(RULES).report(_joined(tables))
    got = spec.tables["orders"].check(tables["orders"], seed=11, backend=backend)
    assert str(got) == str(want)
    counts = want.to_dict()
    assert got.to_dict() == counts
    per_rule = [r["violations"] for r in counts["rules"]]
    assert per_rule[0] == 0 and per_rule[5] == 0 and per_rule[6] == 0
    assert 200 < per_rule[7] < 4800
    assert all(200 < v < 4800 for v in per_rule[1:5]), per_rule   # the reads matter
    # another seed's parents are other rows: the check names the key that does not fit
    with pytest.raises(ValueError, match="column 'by_uid', row 0: .* is not a key of parent "
                                         "table 'customers'"):
        spec.tables["orders"].check(tables["orders"], seed=12, backend=backend)


@pytest.mark.parametrize("output", ["pandas", "arrow", "polars"])
def test_rules_reading_parents_at_any_chunking(output):
    spec = load_spec(SPEC)
    rows = {"customers": 2500, "regions": 5}
    whole = generate(spec, 3000, table="orders", rows=rows, output=output)
    want = spec.tables["orders"].check(whole, rows=rows)
    tables = generate_tables(spec, rows={**rows, "orders": 3000})
    assert want.to_dict() == Rules(RULES).report(_joined(tables)).to_dict()
    for cuts in ([0, 1, 3000], [0, 777, 1554, 2331, 3000], [0, 2999, 3000]):
        total = np.zeros(len(RULES), dtype=np.int64)
        valid = 0
        for a, b in zip(cuts, cuts[1:]):
            part = generate(spec, b - a, table="orders", row_offset=a, rows=rows, output=output)
            rep = spec.tables["orders"].check(part, rows=rows).to_dict()
            total += [r["violations"] for r in rep["rules"]]
            valid += rep["n_valid"]
        assert list(total) == [r["violations"] for r in want.to_dict()["rules"]]
        assert valid == want.to_dict()["n_valid"]


def test_rules_reading_rows_of_the_same_table_and_grouped_children(monkeypatch):
    import synthcore.generation as gen
    spec = load_spec({"seed": 2, "tables": {"emp": {"rows": 4000, "columns": {
        "emp_id": {"type": "sequence", "start": 1, "format": "E{:05d}"},
        "manager_id": {"type": "foreign_key", "table": "emp", "column": "emp_id",
                       "distribution": "earlier"},
        "salary": {"type": "uniform", "low": 1, "high": 10}},
        "rules": ["salary <= manager_id.salary * 2", "manager_id.manager_id is null"]}}})
    emp = generate(spec, table="emp")
    boss = emp.set_index("emp_id").reindex(emp["manager_id"].to_numpy()).reset_index()
    joined = emp.assign(**{"manager_id.salary": boss["salary"].to_numpy(),
                           "manager_id.manager_id": boss["manager_id"].to_numpy()})
    want = Rules(spec.tables["emp"].rules).report(joined).to_dict()
    assert spec.tables["emp"].check(emp).to_dict() == want
    assert 0 < want["rules"][0]["violations"] < 4000 and want["rules"][1]["violations"] > 3000

    grouped = {"seed": 4, "tables": {
        "customers": {"rows": 300, "columns": {
            "customer_id": {"type": "sequence", "format": "C{:05d}"},
            "n_orders": {"type": "integer", "low": 0, "high": 4},
            "signup": {"type": "date", "start": "2020-01-01", "end": "2020-12-31"}}},
        "orders": {"columns": {
            "customer_id": {"type": "foreign_key", "table": "customers",
                            "column": "customer_id", "per_parent": "n_orders"},
            "d": "customer_id.signup + 1 day"},
            "rules": ["d = customer_id.signup + 1 day", "customer_id.n_orders >= 1"]}}}
    orders = generate(grouped, table="orders")
    monkeypatch.setattr(gen, "GROUP_BLOCK", 16)   # the same reads with small blocks
    report = load_spec(grouped).tables["orders"].check(orders).to_dict()
    assert report["n_valid"] == report["n_rows"] == len(orders) > 0


@pytest.mark.parametrize("rule, position, text", [
    ("order_date >= lag.signup", 14, "column 'lag' is a integer column, not a foreign key"),
    ("order_date >= cust.nope", 14, "'cust.nope': parent table 'customers' has no column "
                                    "'nope'"),
    ("lag > 0 and order_date >= cust.regions.nope", 26,
     "'cust.regions.nope': parent table 'regions' has no column 'nope'"),
    ("customers.score > 0", 0, "several foreign keys refer to table 'customers'"),
    ("order_date >= nobody.signup", 14, "'nobody' is neither a column nor the parent table"),
    ("order_date >= hid.signup", 14, "hidden foreign key 'hid'"),
    ("order_date >= (cust.signup", 26, "expected ')'"),
])
def test_bad_names_in_rules_name_table_rule_and_position(rule, position, text):
    spec = _copy(SPEC)
    spec["tables"]["orders"]["columns"]["hid"] = {"type": "foreign_key", "table": "customers",
                                                  "hidden": True}
    spec["tables"]["orders"]["rules"] = ["lag >= 0", rule]
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    e = info.value
    assert (e.table, e.field, e.rule, e.position) == ("orders", "rules", 1, position), str(e)
    assert text in str(e) and "rule 1" in str(e) and rule in str(e)


def test_checking_rules_that_read_parents_needs_the_keys_and_the_seed():
    spec = load_spec(SPEC)
    orders = generate(spec, 50, table="orders")
    with pytest.raises(ValueError, match="rule 0 .* through the foreign key 'cust', which "
                                         "the checked table does not have"):
        spec.tables["orders"].check(orders.drop(columns=["cust"]))
    for row, value in [(3, "C999999"), (4, "C001001"), (5, "X001000")]:
        bad = orders.copy()   # beyond the parent's rows, not start + step * row, not a key
        bad["cust"] = bad["cust"].astype(object)
        bad.loc[row, "cust"] = value
        with pytest.raises(ValueError, match=f"column 'cust', row {row}: '{value}' is not a key"):
            spec.tables["orders"].check(bad)
    unseeded = _copy(SPEC)
    del unseeded["seed"]
    with pytest.raises(ValueError, match="give seed="):
        load_spec(unseeded).tables["orders"].check(orders)
    assert load_spec(unseeded).tables["orders"].check(orders, seed=3).n_rows == 50
