"""The CPU copula kernel's fast paths give the reference's results: the threshold
searches (linear, bucket guide, binary), the narrow output kinds (int8 codes, one-byte
booleans), the object-level fill, and chunk / thread / offset invariance."""
import sys

import numpy as np
import pandas as pd
import pytest

import synthcore
from synthcore import GaussianCopula
from synthcore import copula_kernels as ck
from synthcore._reference import copula as ref

pytestmark = pytest.mark.skipif(synthcore.info()["cpu_build"] is None,
                                reason="needs the _core module")


def _threshold_sets():
    rng = np.random.default_rng(5)
    spread = np.sort(rng.normal(size=300))                        # guide, one per bucket
    ties = np.repeat(np.sort(rng.normal(size=20)), 3)             # equal thresholds
    # most thresholds packed into a sliver: no bucket grid separates them (binary search)
    packed = np.sort(np.concatenate([1e-9 * np.arange(40), [-3.0, 4.0]]))
    pairs = np.sort(np.concatenate([np.linspace(-2, 2, 30), np.linspace(-2, 2, 30) + 1e-12]))
    return {"spread": spread, "ties": ties, "packed": packed, "pairs": pairs,
            "twelve": np.sort(rng.normal(size=12)), "thirteen": np.sort(rng.normal(size=13)),
            "same": np.zeros(20), "wide": np.array([-1e300] + list(np.linspace(0, 1, 30)) +
                                                   [1e300])}


@pytest.mark.parametrize("name", sorted(_threshold_sets()))
def test_threshold_codes_match_searchsorted(name):
    t = _threshold_sets()[name]
    rng = np.random.default_rng(len(t))
    z = np.concatenate([rng.normal(size=20_011), 3 * rng.normal(size=5_000), t,
                        np.nextafter(t, -np.inf), np.nextafter(t, np.inf),
                        [-np.inf, np.inf, 0.0, -0.0, 1e308, -1e308]])
    want = np.searchsorted(t, z, side="right")
    np.testing.assert_array_equal(ck.threshold_codes(z, t, backend="cpu"), want)
    np.testing.assert_array_equal(ref.threshold_codes(z, t), want)


def _mixed_table(n=4_000, seed=3):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    skew = np.minimum(rng.geometric(0.05, size=n), 150)          # many rare levels
    flag = pd.array(a + rng.normal(size=n) > 0.3, dtype="boolean")
    flag[rng.random(n) < 0.1] = pd.NA
    cat126 = pd.Categorical([f"c{int(v) % 126}" for v in 40 * (a + 3) + rng.integers(0, 5, n)])
    cat127 = pd.Categorical([f"d{int(v) % 127}" for v in 40 * (a + 3) + rng.integers(0, 5, n)])
    words = np.array([f"w{i}" for i in range(60)], dtype=object)[rng.integers(0, 60, n)]
    words[rng.random(n) < 0.05] = None
    return pd.DataFrame({
        "x": a + 0.1 * rng.normal(size=n),
        "skew": skew.astype(np.int64),
        "flag": flag,
        "plain_bool": a > 0,
        "cat126": cat126,
        "cat127": cat127,
        "words": words,
    })


@pytest.fixture(scope="module")
def mixed_model():
    return GaussianCopula().fit(_mixed_table())


def test_narrow_output_kinds(mixed_model):
    plan = mixed_model.plan()
    kinds = {m.name: int(plan.out_kind[m.value_dim]) for m in mixed_model.columns}
    assert kinds["cat126"] == ref.OUT_CODE_I8 and kinds["cat127"] == ref.OUT_CODE_I32
    assert kinds["plain_bool"] == ref.OUT_CODE_U8 and kinds["flag"] == ref.OUT_CODE_U8
    out = mixed_model.sample(5_000, seed=2, backend="cpu")
    assert out["cat126"].dtype == "category" and out["cat126"].cat.codes.dtype == np.int8
    assert out["plain_bool"].dtype == bool and out["flag"].dtype == "boolean"
    assert out["flag"].isna().any() and out["words"].isna().any()
    assert out["cat127"].nunique() > 100


@pytest.mark.parametrize("n, offset", [(1, 0), (15, 3), (1_025, 0), (20_003, 5), (70_001, 999)])
def test_cpu_matches_numpy_at_any_size_and_thread_count(mixed_model, n, offset):
    want = mixed_model.sample(n, seed=9, stream=4, row_offset=offset, backend="numpy")
    try:
        for threads in (1, 2, 3):
            synthcore.set_num_threads(threads)
            got = mixed_model.sample(n, seed=9, stream=4, row_offset=offset, backend="cpu")
            pd.testing.assert_frame_equal(got, want, check_exact=True)
    finally:
        synthcore.set_num_threads(None)


def test_pieces_equal_the_whole(mixed_model):
    whole = mixed_model.sample(50_000, seed=1, backend="cpu")
    cuts = [0, 1, 17, 1_040, 16_400, 33_333, 50_000]
    parts = pd.concat([mixed_model.sample(b - a, seed=1, row_offset=a, backend="cpu")
                       for a, b in zip(cuts, cuts[1:])], ignore_index=True)
    pd.testing.assert_frame_equal(parts, whole, check_exact=True)


def test_take_levels_keeps_reference_counts():
    from synthcore._backend import core_module
    from synthcore._table import _take_levels
    levels = np.array([f"level-{i}" for i in range(5)], dtype=object)
    counts = [sys.getrefcount(v) for v in levels]
    for dtype in (np.int8, np.int32):
        codes = np.array([0, 4, -1, 2, 2, 4, -1], dtype=dtype)
        out = _take_levels(levels, codes)
        assert out.dtype == object
        assert list(out[[0, 1, 3, 4, 5]]) == ["level-0", "level-4", "level-2", "level-2",
                                              "level-4"]
        assert np.isnan(out[2]) and np.isnan(out[6])
        del out
        assert [sys.getrefcount(v) for v in levels] == counts
    with pytest.raises(ValueError, match="outside -1 .. 4"):
        core_module().take_levels(levels, np.array([0, 5], np.int8), None,
                                  np.empty(2, dtype=object))
    with pytest.raises(ValueError, match="one element per code"):
        core_module().take_levels(levels, np.array([0, 1], np.int8), None,
                                  np.empty(3, dtype=object))
