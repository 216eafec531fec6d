"""Deep chains of parent reads (docs/generate.md, "Deep chains"): a read through a key to
the table itself 1,000 hops long, 400 chained tables each reading its parent, per_parent
keys and constraints in the chain. They load and generate without RecursionError, from a
deep caller stack and from a thread with a small stack, and give the same rows in any
window and through generate_at."""
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from synthcore import SpecError, generate, generate_at, load_spec

HOPS = 1000
TABLES = 400


def _self_chain(hops, distribution):
    return {"seed": 3, "tables": {"e": {"rows": 300, "columns": {
        "k": {"type": "foreign_key", "table": "e", "distribution": distribution},
        "v": {"type": "uniform", "low": 0, "high": 1},
        "deep": ".".join(["k"] * hops + ["v"])}}}}


def _follow(k, v, hops, root_null):
    """``k.k. ... .v`` by hand over the whole table: ``k`` is each row's parent row."""
    at = np.arange(len(k))
    null = np.zeros(len(k), dtype=bool)
    for _ in range(hops):
        if root_null:   # an 'earlier' key is null at row 0: reads through it are null
            null |= at == 0
        at = k[at]
    return np.where(null, np.nan, v[at])


@pytest.mark.parametrize("distribution", ["uniform", "earlier"])
def test_a_thousand_hop_read_through_a_key_to_the_table_itself(distribution):
    spec = load_spec(_self_chain(HOPS, distribution))
    whole = generate(spec, 300, backend="numpy")
    k = whole["k"].to_numpy(dtype=float, na_value=0).astype(np.int64)
    want = _follow(k, whole["v"].to_numpy(), HOPS, distribution == "earlier")
    np.testing.assert_array_equal(whole["deep"].to_numpy(dtype=float), want)
    if distribution == "uniform":
        assert not np.isnan(want).any()
    part = generate(spec, 70, row_offset=111, rows={"e": 300}, backend="numpy")
    pd.testing.assert_frame_equal(part, whole.iloc[111:181].reset_index(drop=True),
                                  check_dtype=False)   # Int64 only where a null is
    rows = np.array([299, 0, 5, 5, 150])
    at = generate_at(spec, rows, columns=["deep"], rows={"e": 300}, backend="numpy")
    np.testing.assert_array_equal(at["deep"].to_numpy(dtype=float), want[rows])


def test_an_earlier_key_reads_an_attribute_several_levels_up_the_tree():
    spec = load_spec({"seed": 4, "tables": {"staff": {"rows": 5000, "columns": {
        "boss": {"type": "foreign_key", "table": "staff", "distribution": "earlier"},
        "dept": {"type": "integer", "low": 0, "high": 10**6},
        "up3": "boss.boss.boss.dept"}}}})
    whole = generate(spec, 5000, backend="numpy")
    k = whole["boss"].to_numpy(dtype=float, na_value=0).astype(np.int64)
    got = whole["up3"].to_numpy(dtype=float, na_value=np.nan)
    np.testing.assert_array_equal(got, _follow(k, whole["dept"].to_numpy(dtype=float), 3,
                                               True))
    assert (~np.isnan(got)).sum() > 1000   # most rows are at least 3 levels deep


def _table_chain(n, *, per_parent_every=0, constraint_at=(), rows=12):
    tables = {"t0": {"rows": rows, "columns": {
        "id": {"type": "sequence"},
        "x": {"type": "uniform", "low": 0, "high": 1},
        "one": {"type": "integer", "low": 1, "high": 2, "hidden": True}}}}
    for i in range(1, n):
        fk = {"type": "foreign_key", "table": f"t{i - 1}", "column": "id"}
        cols = {"id": {"type": "sequence"}, "p": fk, "x": "p.x + 1",
                "one": {"type": "integer", "low": 1, "high": 1, "hidden": True}}
        t = {"columns": cols}
        if per_parent_every and i % per_parent_every == 0:
            fk["per_parent"] = "one"     # as many rows as the parent (the counts read it)
        else:
            t["rows"] = rows
        if i in constraint_at:           # redraws y and the key, reads the parent's x
            cols["y"] = {"type": "uniform", "low": 0, "high": 1}
            t["constraints"] = ["y < 0.5 + (x - p.x - 1)"]
        tables[f"t{i}"] = t
    return {"seed": 9, "tables": tables}


def _check_chain(spec, n):
    last, before = f"t{n - 1}", f"t{n - 2}"
    total = spec.row_counts()[last]
    whole = generate(spec, table=last, backend="numpy")
    assert len(whole) == total
    # the last table's x is its parent row's x plus 1, and the root's x plus n - 1
    parent = generate(spec, table=before, backend="numpy")
    np.testing.assert_array_equal(whole["x"].to_numpy(),
                                  parent["x"].to_numpy()[whole["p"].to_numpy() - 1] + 1)
    assert ((whole["x"] >= n - 1) & (whole["x"] < n)).all()
    cut = total // 2
    part = generate(spec, total - cut, table=last, row_offset=cut, backend="numpy")
    pd.testing.assert_frame_equal(part, whole.iloc[cut:].reset_index(drop=True))
    rows = np.array([total - 1, 0, 3, 3])
    at = generate_at(spec, rows, table=last, backend="numpy")
    pd.testing.assert_frame_equal(at, whole.iloc[rows].reset_index(drop=True))
    return whole


def test_four_hundred_chained_tables_each_reading_its_parent():
    spec = load_spec(_table_chain(TABLES))
    _check_chain(spec, TABLES)


def test_four_hundred_chained_tables_with_per_parent_keys_in_the_chain():
    spec = load_spec(_table_chain(TABLES, per_parent_every=2))
    whole = _check_chain(spec, TABLES)
    assert len(whole) == 12   # one row per parent all the way up


def test_constraints_in_a_chain_of_four_hundred_tables():
    # every row of a constrained table holds its constraint, at any window
    # (each constrained level reads its parent rows again for the redrawn rows, so the
    # cost doubles per constrained level in the chain: two here)
    last = f"t{TABLES - 1}"
    spec = load_spec(_table_chain(TABLES, constraint_at=(200, TABLES - 1)))
    t = _check_chain(spec, TABLES)             # windows and generate_at agree
    assert (t["y"] < 0.5 + 1e-9).all()         # x - p.x - 1 is 0 up to rounding
    report = spec.tables[last].check(t)        # the parent reads regenerated, enforced
    assert report.n_valid == len(t) == 12 and report.counts == [0]
    # the constraints redrew rows: without them some y would be >= 0.5
    plain = _table_chain(TABLES, constraint_at=(200, TABLES - 1))
    del plain["tables"][last]["constraints"]
    assert (generate(load_spec(plain), table=last, backend="numpy")["y"] >= 0.5).any()


def test_a_constraint_failing_at_the_root_of_a_deep_chain_is_a_clean_spec_error():
    raw = _table_chain(TABLES)
    raw["tables"]["t0"]["columns"]["z"] = {"type": "uniform", "low": 0, "high": 1}
    raw["tables"]["t0"]["constraints"] = ["z > 0.999"]
    raw["tables"]["t0"]["max_attempts"] = 1
    spec = load_spec(raw)
    with pytest.raises(SpecError, match="max_attempts=1") as info:
        generate(spec, table=f"t{TABLES - 1}", backend="numpy")
    assert info.value.table == "t0"


def _at_depth(depth, fn):
    return fn() if depth <= 0 else _at_depth(depth - 1, fn)


def test_deep_chains_from_a_deep_caller_stack_and_a_thread_with_a_small_stack():
    raw = _self_chain(HOPS, "uniform")
    want = generate(load_spec(raw), 50, rows={"e": 300}, backend="numpy")
    # the caller has used nearly all of Python's recursion limit
    depth = sys.getrecursionlimit() - 150
    got = _at_depth(depth, lambda: generate(load_spec(raw), 50, rows={"e": 300},
                                            backend="numpy"))
    pd.testing.assert_frame_equal(got, want)
    out, old = {}, threading.stack_size()
    threading.stack_size(512 * 1024)
    try:
        def work():
            try:
                out["got"] = generate(load_spec(raw), 50, rows={"e": 300}, backend="numpy")
            except BaseException as e:   # reported below
                out["error"] = e
        th = threading.Thread(target=work)
        th.start()
        th.join()
    finally:
        threading.stack_size(old)
    assert "error" not in out, out.get("error")
    pd.testing.assert_frame_equal(out["got"], want)
