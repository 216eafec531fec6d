"""Row compaction (synthcore/_compact.py, cpp/src/compact.cpp) against NumPy's boolean
index, and Rules.filter on pandas frames against DataFrame.take."""
import numpy as np
import pandas as pd
import pytest

import synthcore
from synthcore import Rules
from synthcore._compact import compact_rows


def _columns(rng, n):
    return [rng.random(n), rng.random(n).astype(np.float32),
            rng.integers(-2**62, 2**62, n), rng.integers(-9, 9, n).astype(np.int32),
            rng.integers(0, 300, n).astype(np.int16), rng.integers(0, 3, n).astype(np.uint8),
            rng.random(n) < 0.5,
            rng.integers(0, 2**60, n).astype("datetime64[ns]"),
            rng.integers(0, 2**40, n).astype("timedelta64[ns]"),
            np.array([f"s{i}" for i in range(n)], dtype=object)]


@pytest.fixture(params=[1, 2, 3])
def threads(request):
    synthcore.set_num_threads(request.param)
    yield request.param
    synthcore.set_num_threads(None)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("n", [0, 1, 65_535, 65_536, 200_003])
@pytest.mark.parametrize("density", [0.0, 0.02, 0.5, 0.98, 1.0])
def test_compact_rows_equals_boolean_index(backend, threads, n, density):
    rng = np.random.default_rng(n + int(density * 100))
    mask = rng.random(n) < density
    if density == 0.5 and n > 100_000:
        mask[70_000:140_000] = False          # whole pieces without a kept row
    cols = _columns(rng, n)
    for limit in (None, 0, 7, int(mask.sum()) // 2, n + 5):
        index = np.flatnonzero(mask)[:limit]
        got, pos = compact_rows(mask, cols, limit=limit, positions=True, base=11,
                                backend=backend)
        for c, g in zip(cols, got):
            assert g.dtype == c.dtype and np.array_equal(g, c[index])
        assert np.array_equal(pos, index + 11)
        copies = [c.copy() for c in cols]
        got, pos = compact_rows(mask.view(np.uint8), copies, limit=limit, in_place=True,
                                backend=backend)
        assert pos is None
        for c, g, buf in zip(cols, got, copies):
            assert np.array_equal(g, c[index]) and (len(g) == 0 or np.shares_memory(g, buf))
        # fewer in-place columns than threads: pieces compacted, then moved together
        one = cols[0].copy()
        got, _ = compact_rows(mask, [one], limit=limit, in_place=True, backend=backend)
        assert np.array_equal(got[0], cols[0][index])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_compact_rows_nonzero_bytes_count_as_kept(backend):
    mask = np.array([0, 3, 255, 0, 1], dtype=np.uint8)
    got, _ = compact_rows(mask, [np.arange(5.0)], backend=backend)
    assert got[0].tolist() == [1.0, 2.0, 4.0]


def test_compact_rows_bad_input():
    with pytest.raises(ValueError, match="mask must be"):
        compact_rows(np.ones(3, dtype=np.int64), [np.arange(3)])
    with pytest.raises(ValueError, match="column 1 must be"):
        compact_rows(np.ones(3, bool), [np.arange(3), np.arange(4)])
    with pytest.raises(ValueError, match="limit"):
        compact_rows(np.ones(3, bool), [np.arange(3)], limit=-1)


def test_native_compact_refuses_overlapping_outputs():
    core = synthcore._backend.core_module()
    if core is None:
        pytest.skip("the native module was not built")
    a = np.arange(10.0)
    mask = np.ones(10, np.uint8)
    with pytest.raises(ValueError, match="overlaps"):
        core.compact_rows(mask, [a], [a[1:]], 9, None, 0, 1)
    with pytest.raises(ValueError, match="room"):
        core.compact_rows(mask, [a], [np.empty(3)], -1, None, 0, 1)
    assert core.compact_rows(mask, [a], [np.empty(3)], 3, None, 0, 1) == 3


# ---- Rules.filter on pandas ----------------------------------------------------------

def _frame(n, rng, index=None):
    return pd.DataFrame({
        "x": rng.random(n), "i": rng.integers(0, 10, n),
        "i32": rng.integers(0, 10, n).astype(np.int32), "f32": rng.random(n).astype(np.float32),
        "b": rng.random(n) < 0.5,
        "t": pd.to_datetime(rng.integers(0, 2**50, n)),
        "tz": pd.to_datetime(rng.integers(0, 2**50, n)).tz_localize("UTC"),
        "cat": pd.Categorical(rng.choice(["a", "b", None], n)),
        "s": rng.choice(["u", "v"], n).astype(object),
        "ni": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 5, n)),
                       dtype="Int64"),
    }, index=index)


@pytest.mark.parametrize("index", ["range", "range5", "labels", "step"])
@pytest.mark.parametrize("rules", [["x > 0.3", "i != 4"], ["x >= 0"], ["x > 2"]])
def test_filter_pandas_equals_take(threads, index, rules):
    rng = np.random.default_rng(3)
    n = 150_000
    idx = {"range": None, "range5": pd.RangeIndex(5, 5 + n, name="row"),
           "labels": pd.Index(rng.permutation(n).astype(str)),
           "step": pd.RangeIndex(0, 2 * n, 2)}[index]
    df = _frame(n, rng, idx)
    df.attrs["source"] = "test"
    r = Rules(rules)
    mask = r.evaluate(df, backend="numpy").mask
    want = df.take(np.flatnonzero(mask))
    got = r.filter(df, backend="cpu")
    pd.testing.assert_frame_equal(got, want, check_index_type=True, check_column_type=True)
    assert got.attrs == {"source": "test"}
    got.iloc[:, 0] = -1.0                       # a frame of its own
    assert not (df["x"] == -1.0).any()


def test_filter_pandas_duplicate_and_non_string_column_names():
    df = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["a", 0, "a"])
    df.columns = pd.Index(["x", 0, "x"], dtype=object)
    got = Rules(["x2 > 4"]).filter(df.set_axis(["x2", 0, "x"], axis=1), backend="cpu")
    assert got.columns.tolist() == ["x2", 0, "x"] and got.index.tolist() == [2, 3]
    assert got.to_numpy().tolist() == [[6.0, 7.0, 8.0], [9.0, 10.0, 11.0]]


# ---- Rules.filter's fused native pass (rules_filter in cpp/src/rules.cpp) -------------

def _typed_frame(rng, n, u):
    return pd.DataFrame({
        "u": u, "f32": rng.random(n).astype(np.float32),
        "i64": rng.integers(-2**62, 2**62, n), "i32": rng.integers(-9, 9, n).astype(np.int32),
        "i16": rng.integers(0, 300, n).astype(np.int16),
        "u8": rng.integers(0, 3, n).astype(np.uint8), "b": rng.random(n) < 0.5,
        "t": rng.integers(0, 2**60, n).astype("datetime64[ns]"),
        "d": rng.integers(0, 2**40, n).astype("timedelta64[ns]"),
        "s": np.array([f"s{i}" for i in range(n)], dtype=object)})


def _assert_filter_equals_take(rules, df, threads):
    want = df.take(np.flatnonzero(rules.evaluate(df, backend="numpy").mask))
    for t in threads:
        synthcore.set_num_threads(t)
        try:
            got = rules.filter(df, backend="cpu")
        finally:
            synthcore.set_num_threads(None)
        pd.testing.assert_frame_equal(got, want, check_index_type=True)
        del got


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 8_191, 8_192, 8_193, 3 * 8_192 + 77, 200_003])
@pytest.mark.parametrize("density", [0.0, 0.03, 0.5, 1.0])
def test_filter_fused_pass_equals_take(n, density):
    rng = np.random.default_rng(n * 7 + int(density * 100))
    u = rng.random(n)
    if n > 100_000 and 0 < density < 1:
        u[8_192:3 * 8_192] = 2.0               # whole blocks rejected
        u[5 * 8_192 + 3:7 * 8_192 - 5] = -1.0  # runs of blocks kept
    df = _typed_frame(rng, n, u)
    rules = Rules([f"u < {density}" if density < 1 else "u <= 1", "i16 >= 0"])
    _assert_filter_equals_take(rules, df, (1, 2, 3, 5))


def test_filter_fused_pass_large_output_streamed_and_reused():
    # n rows x 44 bytes (8 NumPy columns and the row numbers; pandas keeps the datetime
    # columns) are past rules_filter's streaming threshold (kStreamOutBytes, 64 MiB):
    # blocks are staged and streamed out. The second and third filters take the first
    # one's pooled outputs back (trimmed to its kept rows, then written past them)
    rng = np.random.default_rng(11)
    n = 2_000_001
    df = _typed_frame(rng, 10, rng.random(10)).drop(columns="s").sample(n, replace=True,
                                                                        random_state=1)
    df["u"], df["v"] = rng.random(n), rng.random(n)
    df = df.reset_index(drop=True)
    for density, threads in ((0.3, 2), (0.9, 3), (0.05, 1)):
        _assert_filter_equals_take(Rules([f"u < {density}"]), df, (threads,))


def test_filter_fused_pass_derived_columns_and_index(threads):
    rng = np.random.default_rng(5)
    n = 50_000
    df = pd.DataFrame({"x": rng.random(n), "k": rng.integers(0, 9, n)},
                      index=pd.RangeIndex(7, 7 + n, name="row"))
    rules = Rules(["x > 0.3", "y := x * 2", "big := k > 4"])
    res = rules.evaluate(df, backend="numpy")
    want = df.take(np.flatnonzero(res.mask))
    want["y"] = res.derived["y"][res.mask]
    want["big"] = res.derived["big"][res.mask]
    got = rules.filter(df, backend="cpu")
    pd.testing.assert_frame_equal(got, want, check_index_type=True)
    assert got.index.name == "row" and got.index[0] == 7 + int(np.flatnonzero(res.mask)[0])


def test_native_rules_filter_checks_its_outputs():
    core = synthcore._backend.core_module()
    if core is None:
        pytest.skip("the native module was not built")
    from synthcore.rules import _column_types, _output_types
    n = 100
    df = pd.DataFrame({"x": np.arange(n, dtype=np.float64)})
    rules = Rules(["x >= 50"])
    program, columns, _ = rules.bind(df)
    x = columns[0]

    def call(keep, outs, positions=None):
        return core.rules_filter(program.code, program.n_registers, program.const_f64,
                                 program.const_i64, columns, _column_types(program), n,
                                 np.empty(n, np.uint8), np.zeros(1, np.int64), [],
                                 _output_types(program), keep, outs, positions, 0, 2)
    with pytest.raises(ValueError, match="room for n rows"):
        call([x], [np.empty(n - 1)])
    with pytest.raises(ValueError, match="overlaps an input"):
        call([x], [x])
    big = np.empty(2 * n)
    with pytest.raises(ValueError, match="overlap each other"):
        call([x, x], [big[:n], big[n // 2:n // 2 + n]])
    out, pos = np.full(n, -1.0), np.full(n, -1, np.int64)
    assert call([x], [out], pos) == 50
    assert out[:50].tolist() == list(range(50, 100)) and pos[:50].tolist() == list(range(50, 100))
    assert (out[50:] == -1).all() and (pos[50:] == -1).all()   # nothing past the kept rows


@pytest.mark.parametrize("m", [0, 1, 7, 63, 64, 65, 130, 1000, 8192])
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_compact_block_each_isa_and_dtype(m, density):
    core = synthcore._backend.core_module()
    if core is None:
        pytest.skip("the native module was not built")
    rng = np.random.default_rng(m + int(density * 10))
    mask = (rng.random(m) < density).astype(np.uint8) * rng.integers(1, 256, m).astype(np.uint8)
    if m >= 130 and 0 < density < 1:
        mask[:64] = 1                            # a run all kept, then one all rejected
        mask[64:128] = 0
    index = np.flatnonzero(mask)
    for dtype in (np.float64, np.int64, np.float32, np.int32, np.int16, np.uint8, np.bool_):
        col = (rng.random(m) * 100).astype(dtype)
        for isa in core.compact_block_isas():
            out = np.full(m + 8, 7, dtype=dtype)
            pos = np.full(m + 8, -5, dtype=np.int64)
            assert core.compact_block(mask, col, out, pos, 1000, isa) == len(index)
            assert np.array_equal(out[:len(index)], col[index]), (dtype, isa)
            assert np.array_equal(pos[:len(index)], index + 1000), isa
            # nothing written past the kept rows: other threads own what follows
            assert (out[len(index):] == np.array(7, dtype=dtype)).all(), (dtype, isa)
            assert (pos[len(index):] == -5).all(), isa


def test_filter_fused_pass_streamed_threads_1_to_5_and_block_edges():
    # 3M rows x 24 bytes (float64, uint8, int16, float32, bool and the row numbers) are
    # past kStreamOutBytes (64 MiB): staged and streamed. Single kept rows at the last and
    # first rows of blocks, whole blocks rejected, and 1-byte columns starting at odd
    # output offsets (head and tail of copy_streaming), for every thread count 1..5
    rng = np.random.default_rng(1)
    n = 3_000_017
    df = pd.DataFrame({"u": rng.random(n), "u8": rng.integers(0, 255, n).astype(np.uint8),
                       "i16": rng.integers(-300, 300, n).astype(np.int16),
                       "f32": rng.random(n).astype(np.float32), "b": rng.random(n) < 0.5})
    u = df["u"].to_numpy()
    u[8192 * 3:8192 * 5] = 2.0
    u[[8192 * 7 - 1, 8192 * 7, 8192 * 9 - 1, 8192 * 10, n - 1]] = -1.0
    for density in (0.0, 1e-5, 0.37, 1.0):
        _assert_filter_equals_take(Rules([f"u < {density}" if density < 1 else "u <= 1"]),
                                   df, (1, 2, 3, 4, 5))
