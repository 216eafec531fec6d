"""synthcore.gan: importing CTGAN / TVAE models and sampling them without torch.

Models are trained here for a couple of epochs on a small table (quality does
not matter: every check compares against the same trained model).
"""
import copy
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
ctgan = pytest.importorskip("ctgan")
from scipy import stats  # noqa: E402

import synthcore  # noqa: E402
from synthcore import gan  # noqa: E402
from synthcore._reference import gan as ref  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _sdv_helpers import make_mixed_table  # noqa: E402

DISCRETE = ["plan", "churned", "region"]


def _table(n=1000):
    from importlib.resources import files
    d = pd.read_parquet(files("synthcore") / "data" / "customers.parquet")
    t = d[["age", "income", "plan", "churned", "orders", "region"]].iloc[:n].copy()
    t["plan"] = t["plan"].astype(str)
    return t


@pytest.fixture(scope="module")
def table():
    return _table()


@pytest.fixture(scope="module")
def ctgan_model(table):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = ctgan.CTGAN(epochs=2, verbose=False)
        m.fit(table, discrete_columns=DISCRETE)
    return m


@pytest.fixture(scope="module")
def tvae_model(table):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = ctgan.TVAE(epochs=3)
        m.fit(table, discrete_columns=DISCRETE)
    return m


@pytest.fixture(scope="module")
def ours(ctgan_model):
    return gan.from_ctgan(ctgan_model)


@pytest.fixture(scope="module")
def ours_tvae(tvae_model):
    return gan.from_tvae(tvae_model)


def _ctgan_sample(model, n, seed, **kwargs):
    """ctgan's own sample on a copy (its sampling mutates BatchNorm running stats)."""
    m = copy.deepcopy(model)
    m.set_random_state(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return m.sample(n, **kwargs)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _inputs(model, n, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, model.net["E"])).astype(np.float32)
    ci = rng.integers(0, model.net["C"], n).astype(np.int32)
    onehot = np.zeros((n, model.net["C"]), np.float32)
    onehot[np.arange(n), ci] = 1
    return z, ci, onehot


# ---- forward pass against torch ----------------------------------------------------

def test_eval_forward_matches_torch(ctgan_model, ours):
    z, ci, onehot = _inputs(ours, 700)
    gen = copy.deepcopy(ctgan_model._generator).eval()
    with torch.no_grad():
        expected = gen(torch.from_numpy(np.concatenate([z, onehot], 1))).numpy()
    assert _rel(ours.forward(z, ci, mode="eval"), expected) <= 1e-5


def test_compat_forward_matches_torch_train_mode(ctgan_model, ours):
    z, ci, onehot = _inputs(ours, ours.batch_size, seed=1)
    gen = copy.deepcopy(ctgan_model._generator).train()
    with torch.no_grad():
        expected = gen(torch.from_numpy(np.concatenate([z, onehot], 1))).numpy()
    got = ours.forward(z, ci, mode="compat")
    assert _rel(got, expected) <= 1e-5
    # and batch statistics really differ from the running ones
    assert _rel(ours.forward(z, ci, mode="eval"), expected) > 1e-3


def test_tvae_forward_matches_torch(tvae_model, ours_tvae):
    z = np.random.default_rng(2).standard_normal((400, ours_tvae.net["E"])).astype(np.float32)
    with torch.no_grad():
        expected = tvae_model.decoder(torch.from_numpy(z))[0].numpy()
    assert _rel(ours_tvae.forward(z), expected) <= 1e-5


def test_gumbel_argmax_head_equals_gumbel_softmax_argmax(ours):
    """argmax(l + g) is what argmax(softmax((l + g) / 0.2)) picks, span by span."""
    z, ci, _ = _inputs(ours, 500, seed=3)
    out = ours.forward(z, ci)
    plan = ours.plan()
    g = ref.draw_gumbel(synthcore.random.philox_key(5), 0, 500, plan["D"])
    cols = ref.decode(plan, out, g, None)
    logits = torch.from_numpy(out.astype(np.float64) + g)
    for c, spec, values in zip(ours.columns, plan["columns"], cols):
        if c["kind"] != "discrete":
            continue
        span = logits[:, spec["at"]:spec["at"] + spec["width"]]
        expected = torch.softmax(span / 0.2, dim=1).argmax(dim=1).numpy()
        np.testing.assert_array_equal(values, expected)


def test_gumbel_noise_is_gumbel():
    g = ref.draw_gumbel(synthcore.random.philox_key(1), 0, 20000, 1).ravel()
    assert stats.kstest(g, stats.gumbel_r.cdf).pvalue > 1e-3


# ---- sampling ----------------------------------------------------------------------

def test_sample_exact_rows_and_dtypes(ours, ctgan_model, table):
    theirs = _ctgan_sample(ctgan_model, 10, 0)
    for n in (0, 1, 499, 1001):
        for mode in gan.MODES:
            s = ours.sample(n, seed=1, mode=mode, backend="numpy")
            assert len(s) == n
            assert list(s.columns) == list(table.columns)
            assert dict(s.dtypes) == dict(theirs.dtypes)
    s = ours.sample(300, seed=1, backend="numpy")
    for col in DISCRETE:
        assert set(s[col]) <= set(table[col])


def _compare_distributions(a, b, discrete, alpha=1e-3):
    for col in a.columns:
        if col in discrete:
            cats = sorted(set(a[col]) | set(b[col]), key=str)
            ca = a[col].value_counts().reindex(cats, fill_value=0).to_numpy()
            cb = b[col].value_counts().reindex(cats, fill_value=0).to_numpy()
            keep = (ca + cb) > 0
            if keep.sum() < 2:
                continue
            p = stats.chi2_contingency(np.stack([ca[keep], cb[keep]])).pvalue
        else:
            p = stats.ks_2samp(a[col].astype(float), b[col].astype(float)).pvalue
        assert p > alpha, (col, p)


def test_compat_distribution_matches_ctgan_sample(ours, ctgan_model):
    n = 4000
    theirs = _ctgan_sample(ctgan_model, n, 7)
    mine = ours.sample(n, seed=7, mode="compat", backend="numpy")
    _compare_distributions(mine, theirs, DISCRETE)


def test_tvae_distribution_matches_tvae_sample(ours_tvae, tvae_model):
    n = 4000
    theirs = _ctgan_sample(tvae_model, n, 8)
    mine = ours_tvae.sample(n, seed=8, backend="numpy")
    _compare_distributions(mine, theirs, DISCRETE)


def test_condition_on_first_column_matches_ctgan(ours, ctgan_model):
    """exact=False only steers the generator, as ctgan's condition_column does."""
    n = 3000
    theirs = _ctgan_sample(ctgan_model, n, 9, condition_column="plan", condition_value="pro")
    mine = ours.sample(n, seed=9, mode="compat", conditions={"plan": "pro"}, exact=False,
                       backend="numpy")
    _compare_distributions(mine, theirs, DISCRETE)


def test_condition_bug_flag_reproduces_ctgan(ours, ctgan_model):
    """ctgan puts region's bit inside plan's block; the flag does the same."""
    n = 3000
    theirs = _ctgan_sample(ctgan_model, n, 10, condition_column="region",
                           condition_value="south")
    mine = ours.sample(n, seed=10, mode="compat", conditions={"region": "south"}, exact=False,
                       ctgan_condition_bug=True, backend="numpy")
    _compare_distributions(mine, theirs, DISCRETE)


@pytest.mark.parametrize("column,value", [("plan", "plus"), ("churned", True),
                                          ("region", "islands")])
def test_conditional_sampling_any_discrete_column(ours, column, value):
    s = ours.sample(777, seed=11, conditions={column: value}, backend="numpy")
    assert len(s) == 777
    assert (s[column] == value).all()
    other = ("region", "east") if column != "region" else ("plan", "pro")
    s2 = ours.sample(200, seed=11, mode="compat", conditions={column: value, other[0]: other[1]},
                     backend="numpy")
    assert len(s2) == 200
    assert (s2[column] == value).all() and (s2[other[0]] == other[1]).all()


def test_condition_errors(ours):
    with pytest.raises(KeyError, match="nope"):
        ours.sample(5, seed=0, conditions={"nope": 1})
    with pytest.raises(ValueError, match="continuous"):
        ours.sample(5, seed=0, conditions={"age": 30})
    with pytest.raises(synthcore.ImpossibleConditionError, match="region"):
        ours.sample(5, seed=0, conditions={"region": "mars"})


def test_eval_mode_chunk_invariant(ours):
    full = ours.sample(3000, seed=4, backend="numpy")
    chunked = ours.sample(3000, seed=4, backend="numpy", chunk_size=317)
    pd.testing.assert_frame_equal(full, chunked)
    part = ours.sample(1000, seed=4, backend="numpy", row_offset=1500)
    pd.testing.assert_frame_equal(part, full.iloc[1500:2500].reset_index(drop=True))


def test_compat_mode_batch_aligned(ours):
    full = ours.sample(1600, seed=4, mode="compat", backend="numpy")
    part = ours.sample(500, seed=4, mode="compat", backend="numpy", row_offset=1000)
    pd.testing.assert_frame_equal(part, full.iloc[1000:1500].reset_index(drop=True))
    with pytest.raises(ValueError, match="multiple of batch_size"):
        ours.sample(10, seed=4, mode="compat", row_offset=7)


def test_save_load_round_trip(ours, ours_tvae, tmp_path):
    for model in (ours, ours_tvae):
        path = tmp_path / f"{model.kind}.synthcore"
        model.save(path)
        back = gan.load(path)
        pd.testing.assert_frame_equal(back.sample(300, seed=2, backend="numpy"),
                                      model.sample(300, seed=2, backend="numpy"))
        import zipfile, io
        with zipfile.ZipFile(path) as zf:
            assert sorted(zf.namelist()) == ["arrays.npz", "model.json"]
            np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False)
    with pytest.raises(ValueError, match="not a synthcore GAN model"):
        bad = tmp_path / "bad.zip"
        import zipfile
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("model.json", '{"format": "other"}')
            zf.writestr("arrays.npz", b"")
        gan.load(bad)


def test_sampling_needs_no_torch(ours, tmp_path):
    import subprocess
    path = tmp_path / "m.synthcore"
    ours.save(path)
    code = ("import sys; sys.modules['torch'] = None; sys.modules['ctgan'] = None\n"
            "import synthcore.gan as g\n"
            f"print(len(g.load({str(path)!r}).sample(100, seed=1, backend='numpy')))")
    env = {"PYTHONPATH": str(__import__('pathlib').Path(synthcore.__file__).parents[1])}
    import os
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "100"


# ---- bad models --------------------------------------------------------------------

def test_bad_models(ctgan_model, tvae_model):
    with pytest.raises(gan.GanImportError, match="ctgan.CTGAN"):
        gan.from_ctgan(tvae_model)
    with pytest.raises(gan.GanImportError, match="ctgan.TVAE"):
        gan.from_tvae(object())
    with pytest.raises(gan.GanImportError, match="not fitted"):
        gan.from_ctgan(ctgan.CTGAN(epochs=1))
    broken = copy.deepcopy(ctgan_model)
    del broken._transformer
    with pytest.raises(gan.GanImportError, match="_transformer"):
        gan.from_ctgan(broken)
    odd = copy.deepcopy(ctgan_model)
    odd._generator.seq.append(torch.nn.Tanh())
    with pytest.raises(gan.GanImportError, match="unsupported architecture"):
        gan.from_ctgan(odd)
    odd = copy.deepcopy(tvae_model)
    odd.decoder.seq[1] = torch.nn.Tanh()
    with pytest.raises(gan.GanImportError, match="unsupported architecture"):
        gan.from_tvae(odd)


def test_bad_arguments(ours):
    with pytest.raises(ValueError, match="mode"):
        ours.sample(5, mode="train")
    with pytest.raises(ValueError, match="n must be >= 0"):
        ours.sample(-1)
    with pytest.raises(TypeError, match="n must be an integer"):
        ours.sample(2.5)
    with pytest.raises(ValueError, match=r"z must have shape"):
        ours.forward(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="gpu_precision must be 'fp32', 'tf32' or 'bf16'"):
        ours.sample(5, gpu_precision="fp16")


# ---- SDV ---------------------------------------------------------------------------

SDV_COLUMNS = {
    "x1": {"sdtype": "numerical"}, "x2": {"sdtype": "numerical"},
    "count": {"sdtype": "numerical"}, "cat": {"sdtype": "categorical"},
    "flag": {"sdtype": "boolean"},
    "when": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d %H:%M:%S"},
    "sparse": {"sdtype": "numerical"},
}


@pytest.mark.parametrize("family", ["ctgan", "tvae"])
def test_sdv_synthesizers(family):
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, TVAESynthesizer
    data = make_mixed_table(600)
    md = Metadata.load_from_dict({"tables": {"t": {"columns": SDV_COLUMNS}}})
    cls = CTGANSynthesizer if family == "ctgan" else TVAESynthesizer
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth = cls(md, epochs=1)
        synth.fit({"t": data})
        theirs = synth.sample(300)
    theirs = theirs["t"] if isinstance(theirs, dict) else theirs
    model = (gan.from_ctgan if family == "ctgan" else gan.from_tvae)(synth)
    mine = model.sample(2000, seed=0, backend="numpy")
    assert list(mine.columns) == list(data.columns)
    assert dict(mine.dtypes) == dict(theirs.dtypes)
    # null injection at the learnt rate; rounding and clipping as learnt
    assert abs(mine["sparse"].isna().mean() - data["sparse"].isna().mean()) < 0.03
    assert (mine["x2"].round(2) == mine["x2"]).all()
    assert mine["x1"].min() >= data["x1"].min() and mine["x1"].max() <= data["x1"].max()


# ---- native backends against the NumPy reference --------------------------------------

def _assert_close_frames(a, b, model, min_agree=0.999):
    """Same rows up to float32 GEMM rounding: categories and modes agree except at
    near-ties, continuous values to a tolerance relative to the column's scale."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    assert dict(a.dtypes) == dict(b.dtypes)
    for c in model.columns:
        x, y = a[c["name"]].to_numpy(), b[c["name"]].to_numpy()
        if c["kind"] == "discrete":
            assert (x == y).mean() >= min_agree, c["name"]
        else:
            off, m = c["mode_off"], c["n_modes"]
            scale = 4 * model.stds[off:off + m].max()
            close = np.abs(x.astype(float) - y.astype(float)) <= 1e-3 * scale + 1.0
            assert close.mean() >= min_agree, c["name"]


@pytest.mark.parametrize("mode", gan.MODES)
def test_cpu_matches_numpy(ours, ours_tvae, mode):
    for model in (ours, ours_tvae):
        a = model.sample(3000, seed=12, mode=mode, backend="numpy")
        b = model.sample(3000, seed=12, mode=mode, backend="cpu")
        _assert_close_frames(a, b, model)
    a = ours.sample(1000, seed=13, mode=mode, conditions={"region": "coast"}, backend="numpy")
    b = ours.sample(1000, seed=13, mode=mode, conditions={"region": "coast"}, backend="cpu")
    # (a near-tie that flips one row's acceptance shifts the rows after it: compare the
    # conditioned rows' distribution, not row by row)
    assert (b["region"] == "coast").all() and len(b) == 1000 and len(a) == 1000
    assert stats.ks_2samp(a["income"], b["income"]).pvalue > 1e-3


def test_cpu_eval_identical_under_chunking_threads_and_blocks(ours):
    from synthcore import _gan_native
    full = ours.sample(5000, seed=14, backend="cpu")
    pd.testing.assert_frame_equal(full, ours.sample(5000, seed=14, backend="cpu",
                                                    chunk_size=333))
    with synthcore.use_backend("cpu"):
        synthcore.set_num_threads(1)
        try:
            one = ours.sample(5000, seed=14)
        finally:
            synthcore.set_num_threads(None)
    pd.testing.assert_frame_equal(full, one)
    key = synthcore.random.philox_key(14)
    base = _gan_native.cpu_sample_block(ours, key, 100, 900, "eval", -1, block_rows=64)
    for rows in (1, 7, 64, 500):
        other = _gan_native.cpu_sample_block(ours, key, 100, 900, "eval", -1, block_rows=rows)
        for u, v in zip(base, other):
            np.testing.assert_array_equal(u, v)
    for u, v in zip(base, ref.sample_block(ours.plan(), key, 100, 900, "eval", -1)):
        assert u.dtype == v.dtype


def test_cpu_gemm_matches_numpy():
    core = synthcore._backend.core_module()
    rng = np.random.default_rng(0)
    for m, k, n in [(1, 5, 32), (7, 141, 256), (65, 653, 64), (13, 40, 48), (6, 9, 16)]:
        x = rng.standard_normal((m, k)).astype(np.float32)
        wt = rng.standard_normal((k, n)).astype(np.float32)
        b = rng.standard_normal(n).astype(np.float32)
        y = np.empty((m, n), np.float32)
        from synthcore._gan_native import pack_panels
        core.gan_gemm(x, pack_panels(wt), b, y)
        expected = x.astype(np.float64) @ wt + b
        assert np.abs(y - expected).max() <= 1e-5 * np.abs(x).sum(1).max() * np.abs(wt).max()


def test_native_plan_errors(ours):
    from synthcore import _gan_native
    core = synthcore._backend.core_module()
    p = _gan_native.native_plan(ours, "eval")
    plan = p["plan"]
    cols = [c + (np.empty(10, np.int32 if c[0] == 2 else
                          (np.int64 if c[0] == 1 else np.float64)),) for c in p["columns"]]
    args = (p["layers"], p["final"], cols, plan["cond_cum"], plan["means"], plan["stds"], None,
            plan["E"], plan["C"], plan["D"], plan["S"], False, 1, 2, 0)
    core.gan_sample(*args, 10, 64, False, -1, 1)
    with pytest.raises(ValueError, match="output must be"):
        core.gan_sample(*args, 11, 64, False, -1, 1)
    with pytest.raises(ValueError, match="cond_fixed"):
        core.gan_sample(*args, 10, 64, False, plan["C"], 1)
    bad = list(p["layers"])
    bad[0] = bad[0][:4] + (bad[0][4][:-1],) + bad[0][5:]
    with pytest.raises(ValueError, match="layer 0.wt"):
        core.gan_sample(bad, *args[1:], 10, 64, False, -1, 1)


# ---- CUDA against the CPU ----------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not synthcore._backend.cuda_usable(), reason="no usable CUDA backend")
@pytest.mark.parametrize("mode", gan.MODES)
def test_cuda_matches_cpu(ours, ours_tvae, mode):
    for model in (ours, ours_tvae):
        a = model.sample(5000, seed=21, mode=mode, backend="cpu")
        b = model.sample(5000, seed=21, mode=mode, backend="cuda")
        _assert_close_frames(a, b, model)
    b = ours.sample(1000, seed=22, mode=mode, conditions={"region": "coast"}, backend="cuda")
    assert len(b) == 1000 and (b["region"] == "coast").all()
    t = ours.sample(5000, seed=21, mode=mode, backend="cuda", gpu_precision="tf32")
    _assert_close_frames(ours.sample(5000, seed=21, mode=mode, backend="cpu"), t, ours,
                         min_agree=0.99)
    h = ours.sample(5000, seed=21, mode=mode, backend="cuda", gpu_precision="bf16")
    c = ours.sample(5000, seed=21, mode=mode, backend="cpu")
    for col in DISCRETE:
        assert (h[col] == c[col]).mean() >= 0.95, col
    for col in ("age", "income"):
        assert stats.ks_2samp(h[col], c[col]).pvalue > 1e-3, col


@pytest.mark.gpu
@pytest.mark.skipif(not synthcore._backend.cuda_usable(), reason="no usable CUDA backend")
def test_cuda_eval_chunk_invariant(ours):
    full = ours.sample(4000, seed=23, backend="cuda")
    pd.testing.assert_frame_equal(full, ours.sample(4000, seed=23, backend="cuda",
                                                    chunk_size=999))


@pytest.mark.parametrize("mode", ["eval", "compat"])
def test_sampling_with_rules(ours, mode):
    """The rules issue applies to GAN sampling: exactly n rows that satisfy every rule,
    equal to filtering the plain sample of the same candidate rows, derived columns."""
    rules = ["age >= 30", "plan != 'basic'", "ratio = income / (age + 1)"]
    out = ours.sample(1500, seed=3, mode=mode, rules=rules, backend="cpu")
    assert len(out) == 1500 and (out["age"] >= 30).all() and (out["plan"] != "basic").all()
    np.testing.assert_allclose(out["ratio"], out["income"] / (out["age"] + 1))
    info = ours.last_sample_info
    assert 0 < info["acceptance_rate"] < 1 and info["candidates"] >= 1500
    plain = ours.sample(info["candidates"] + 2 * ours.batch_size, seed=3, mode=mode,
                        backend="cpu")
    kept = synthcore.Rules(rules).filter(plain).reset_index(drop=True).iloc[:1500]
    pd.testing.assert_frame_equal(kept, out, check_dtype=False)
    with pytest.raises(synthcore.RuleAcceptanceError, match="age > 500"):
        ours.sample(100, seed=1, rules=["age > 500"], backend="cpu")
    with pytest.raises(ValueError, match="express the conditions as rules"):
        ours.sample(100, seed=1, rules=["age > 5"], conditions={"plan": "pro"})
