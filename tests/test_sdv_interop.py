"""``GaussianCopula.from_sdv``: a fitted SDV GaussianCopulaSynthesizer, sampled by synthcore.

SDV is the test oracle only: its own samples are compared with the converted
model's column by column (KS for numbers and datetimes, total variation for
categories and booleans, null rates, Spearman correlation, dtypes), and the
per-latent mapping is checked point by point against the plain-data decoder
in synthcore._sdv_import.
"""
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sdv")

from _sdv_helpers import (fit_sdv, make_mixed_table, numeric, sdv_sample,  # noqa: E402
                          total_variation)
stats = pytest.importorskip("scipy.stats")

from sdv.metadata import Metadata  # noqa: E402
from sdv.single_table import GaussianCopulaSynthesizer  # noqa: E402

import synthcore  # noqa: E402
from synthcore import _sdv_import  # noqa: E402
from synthcore._reference import copula as _ref  # noqa: E402

TABLE = "t"
N_FIT = 3000
N_SAMPLE = 30000
SEEDS = (0, 1)
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
COLUMNS = {
    "x1": {"sdtype": "numerical"},
    "x2": {"sdtype": "numerical"},
    "count": {"sdtype": "numerical"},
    "cat": {"sdtype": "categorical"},
    "flag": {"sdtype": "boolean"},
    "when": {"sdtype": "datetime", "datetime_format": DATETIME_FORMAT},
    "sparse": {"sdtype": "numerical"},
}
DISCRETE = ("cat", "flag")


def _make_table(n=N_FIT, seed=0):
    return make_mixed_table(n, seed)


def _metadata(columns):
    """Explicit sdtypes, so nothing is detected as an id or PII."""
    return Metadata.load_from_dict({"tables": {TABLE: {"columns": columns}}})


def _fit(df, columns, **kwargs):
    return fit_sdv(df, _metadata(columns), **kwargs)


@pytest.fixture(scope="module")
def table():
    return _make_table()


@pytest.fixture(scope="module")
def synthesizer(table):
    return _fit(table, COLUMNS)


@pytest.fixture(scope="module")
def model(synthesizer):
    return synthcore.GaussianCopula.from_sdv(synthesizer)


@pytest.fixture(scope="module")
def theirs(synthesizer):
    return sdv_sample(synthesizer, N_SAMPLE)


@pytest.fixture(scope="module")
def ours(model):
    return {seed: model.sample(N_SAMPLE, seed=seed, backend="cpu") for seed in SEEDS}


def _compare(ours, theirs, discrete=DISCRETE):
    assert list(ours.columns) == list(theirs.columns)
    for name in theirs.columns:
        a, b = ours[name], theirs[name]
        assert str(a.dtype) == str(b.dtype), f"{name}: {a.dtype} vs SDV's {b.dtype}"
        assert abs(a.isna().mean() - b.isna().mean()) < 0.02, name
        if name in discrete:
            tv = total_variation(a, b)
            assert tv < 0.03, f"{name}: total variation {tv:.4f}"
        else:
            p = stats.ks_2samp(numeric(a), numeric(b)).pvalue
            assert p > 1e-6, f"{name}: KS p={p:.3g}"


# ----------------------------------------------------------------------------
# the converted model samples SDV's distribution
# ----------------------------------------------------------------------------
def test_columns_and_dtypes_match_sdv(ours, theirs, table):
    assert list(theirs.columns) == list(table.columns)
    for frame in ours.values():
        assert len(frame) == N_SAMPLE
        assert frame.dtypes.astype(str).to_dict() == theirs.dtypes.astype(str).to_dict()
    assert str(theirs["count"].dtype) == "int64"
    assert str(theirs["cat"].dtype) == "object"
    assert str(theirs["flag"].dtype) == "bool"
    assert str(theirs["when"].dtype) == "datetime64[ns]"
    assert str(theirs["sparse"].dtype) == "float64"


@pytest.mark.parametrize("seed", SEEDS)
def test_marginals_and_nulls_match_sdv(ours, theirs, seed):
    _compare(ours[seed], theirs)


def test_spearman_of_correlated_floats(ours, theirs):
    rho_sdv = stats.spearmanr(theirs["x1"], theirs["x2"]).statistic
    assert rho_sdv > 0.5
    for frame in ours.values():
        rho = stats.spearmanr(frame["x1"], frame["x2"]).statistic
        assert abs(rho - rho_sdv) < 0.05, (rho, rho_sdv)


def test_post_processing(ours, table):
    """SDV's clipping to the fitted range, rounding, categories and datetime format."""
    for frame in ours.values():
        for name in ("x1", "x2", "count", "sparse", "when"):
            col = frame[name].dropna()
            assert col.min() >= table[name].min() and col.max() <= table[name].max(), name
        np.testing.assert_array_equal(frame["x1"], frame["x1"].round(3))
        np.testing.assert_array_equal(frame["x2"], frame["x2"].round(2))
        sparse = frame["sparse"].dropna()
        np.testing.assert_array_equal(sparse, sparse.round(1))
        # the format has whole seconds: SDV writes and re-parses it, dropping the rest
        assert (frame["when"].astype("int64") % 10**9 == 0).all()
        assert set(frame["cat"].unique()) == {"a", "b", "c", "d"}


def test_cpu_and_numpy_backends_identical(model):
    for seed in (0, 7):
        a = model.sample(5000, seed=seed, backend="cpu")
        b = model.sample(5000, seed=seed, backend="numpy")
        pd.testing.assert_frame_equal(a, b)
    assert not model.sample(100, seed=1, backend="cpu").equals(
        model.sample(100, seed=2, backend="cpu"))


# ----------------------------------------------------------------------------
# the model's structure
# ----------------------------------------------------------------------------
def test_model_structure(model, synthesizer, table):
    state = _sdv_import.read_sdv_gaussian_copula(synthesizer)
    by_name = {m.name: m for m in model.columns}
    assert [m.name for m in model.columns] == list(table.columns)
    assert model.n_rows_fitted == N_FIT
    d = model.correlation.shape[0]
    assert d == len(state["latent"]) + 1   # one independent null indicator added

    # null indicators first, then value dims in column order
    null_dims = [m.null_dim for m in model.columns if m.null_dim is not None]
    value_dims = [m.value_dim for m in model.columns if m.value_dim is not None]
    assert null_dims == [0] and value_dims == list(range(1, d))
    sparse = by_name["sparse"]
    assert sparse.null_rate == pytest.approx(table["sparse"].isna().mean())
    # missing_value_generation="random": independent of everything
    np.testing.assert_array_equal(model.correlation[0], np.eye(d)[0])

    sdv_names = [spec["name"] for spec in state["latent"]]
    for a in model.columns:
        for b in model.columns:
            i = sdv_names.index(a.name)
            j = sdv_names.index(b.name)
            assert model.correlation[a.value_dim, b.value_dim] == \
                pytest.approx(state["correlation"][i, j], abs=1e-12)
    np.testing.assert_allclose(model.cholesky, np.linalg.cholesky(model.correlation))

    assert by_name["cat"].encoding == "levels" and by_name["flag"].encoding == "levels"
    assert by_name["cat"].levels.tolist() == state["columns"][3]["categories"]
    assert by_name["flag"].levels.dtype == bool
    for name in ("x1", "x2", "count", "when", "sparse"):
        m = by_name[name]
        assert m.encoding == "table" and m.table.size == synthcore.copula.DEFAULT_KNOTS
        assert np.all(np.diff(m.table) >= 0)
    assert (by_name["when"].round_mode, by_name["when"].round_q) == (2, 1e9)
    assert (by_name["x1"].round_mode, by_name["x1"].round_q) == (1, 1e3)


def _sdv_decoded(state, col, z):
    """SDV's value for latent z of one column (nulls off), from the plain state."""
    from scipy.special import ndtr
    col = dict(col, null=dict(col["null"], has_nulls=False)) if "null" in col else col
    spec = next(spec for spec in state["latent"] if spec["name"] == col["latent"][0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lat = {spec["name"]: _sdv_import._marginal_ppf(spec, ndtr(z))}
    decoded = _sdv_import._DECODERS[col["transformer"]](col, lat, z.size, None)
    return _sdv_import._finalise(col, decoded).to_numpy()


def _synthcore_mapped(model, m, z):
    """synthcore's value for latent z of one column's value dim (the NumPy reference)."""
    plan = model.plan()
    j = m.value_dim
    knots = plan.knots[plan.knot_offsets[j]:plan.knot_offsets[j + 1]]
    if m.encoding == "levels":
        return m.levels[_ref.threshold_codes(z, knots)]
    v = _ref.round_values(_ref.table_lookup(z, plan.z_lo[j], plan.z_scale[j], knots),
                          m.round_mode, m.round_q)
    if m.kind == "datetime":
        return np.rint(v).astype(np.int64).view("datetime64[ns]")
    return v


def test_knots_reproduce_sdv_exactly(model, synthesizer):
    """At the grid's knots the lookup is exact: clipping, rounding, the datetime
    format's floor and the category intervals must then give SDV's values."""
    state = _sdv_import.read_sdv_gaussian_copula(synthesizer)
    z = np.linspace(-8.3, 8.3, synthcore.copula.DEFAULT_KNOTS)
    for col in state["columns"]:
        m = next(m for m in model.columns if m.name == col["name"])
        got = _synthcore_mapped(model, m, z)
        expected = _sdv_decoded(state, col, z)
        if m.kind == "float":
            np.testing.assert_allclose(got, expected.astype(np.float64), rtol=0,
                                       atol=1e-9, err_msg=m.name)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=m.name)


def test_pointwise_mapping_matches_sdv_decoding(model, synthesizer):
    """Each latent dim pushed through synthcore's lookup agrees with F^-1(Phi(z)) and
    SDV's reverse transforms (decoded independently from the plain state)."""
    state = _sdv_import.read_sdv_gaussian_copula(synthesizer)
    plan = model.plan()
    by_name = {m.name: m for m in model.columns}
    z = np.random.default_rng(5).standard_normal(50000) * 1.5
    for col in state["columns"]:
        expected = _sdv_decoded(state, col, z)
        m = by_name[col["name"]]
        j = m.value_dim
        knots = plan.knots[plan.knot_offsets[j]:plan.knot_offsets[j + 1]]
        if m.encoding == "levels":
            got = m.levels[_ref.threshold_codes(z, knots)]
            np.testing.assert_array_equal(got, expected, err_msg=m.name)
            continue
        v = _ref.round_values(_ref.table_lookup(z, plan.z_lo[j], plan.z_scale[j], knots),
                              m.round_mode, m.round_q)
        # the true quantile and the interpolated one lie in the same knot interval, so
        # they differ by at most that interval's width plus one rounding step
        x = np.clip((z - m.z_lo) * plan.z_scale[j], 0, knots.size - 1)
        i = np.minimum(x.astype(np.int64), knots.size - 2)
        gap = knots[i + 1] - knots[i]
        if m.kind == "datetime":
            step = m.round_q
            got = np.rint(v).astype(np.int64).astype(np.float64)
            diff = np.abs(got - expected.astype("datetime64[ns]").astype(np.int64))
        else:
            step = 1.0 / m.round_q
            diff = np.abs(v - expected.astype(np.float64))
            # interpolation moves only a few values to the neighbouring rounding step
            assert np.mean(diff > step / 2) < 0.01, m.name
        assert np.all(diff <= gap + step * 1.000001), m.name


# ----------------------------------------------------------------------------
# persistence
# ----------------------------------------------------------------------------
def test_save_load_roundtrip(model, tmp_path):
    path = tmp_path / "from_sdv.synthcore"
    model.save(path)
    loaded = synthcore.load(path)
    assert loaded.n_rows_fitted == model.n_rows_fitted
    np.testing.assert_array_equal(loaded.correlation, model.correlation)
    np.testing.assert_array_equal(loaded.cholesky, model.cholesky)
    assert len(loaded.columns) == len(model.columns)
    for a, b in zip(model.columns, loaded.columns):
        for field in ("name", "kind", "dtype", "null_rate", "value_dim", "null_dim", "encoding",
                      "marginal", "params", "z_lo", "z_hi", "tz", "round_mode", "round_q",
                      "constant"):
            assert getattr(a, field) == getattr(b, field), (a.name, field)
        for field in ("table", "thresholds", "levels"):
            x, y = getattr(a, field), getattr(b, field)
            assert (x is None) == (y is None), (a.name, field)
            if x is not None:
                assert x.dtype == y.dtype or x.dtype == object, (a.name, field)
                np.testing.assert_array_equal(x, y)
    for backend in ("cpu", "numpy"):
        pd.testing.assert_frame_equal(model.sample(3000, seed=3, backend=backend),
                                      loaded.sample(3000, seed=3, backend=backend))


# ----------------------------------------------------------------------------
# other SDV settings: parametric marginals, from_column nulls, a constant column
# ----------------------------------------------------------------------------
def test_other_marginals_from_column_nulls_and_constant(table):
    from rdt.transformers import FloatFormatter

    df = table.head(2000).copy()
    df["const"] = 7.0
    columns = dict(COLUMNS, const={"sdtype": "numerical"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = GaussianCopulaSynthesizer(
            _metadata(columns), default_distribution="truncnorm",
            numerical_distributions={"x2": "gamma", "count": "norm", "cat": "uniform"})
        synthesizer.auto_assign_transformers({TABLE: df})
        synthesizer.update_transformers({"sparse": FloatFormatter(
            missing_value_generation="from_column", learn_rounding_scheme=True,
            enforce_min_max_values=True)})
        synthesizer.fit({TABLE: df})
    model = synthcore.GaussianCopula.from_sdv(synthesizer)
    by_name = {m.name: m for m in model.columns}
    assert by_name["const"].encoding == "constant" and by_name["const"].constant == 7.0
    assert by_name["x2"].marginal == "sdv:gamma"

    # the '<col>.is_null' latent keeps its correlation with the value dims
    state = _sdv_import.read_sdv_gaussian_copula(synthesizer)
    names = [spec["name"] for spec in state["latent"]]
    sparse = by_name["sparse"]
    assert sparse.null_dim == 0
    for m in model.columns:
        if m.value_dim is not None:
            assert model.correlation[0, m.value_dim] == pytest.approx(
                state["correlation"][names.index("sparse.is_null"), names.index(m.name)],
                abs=1e-12)

    theirs = sdv_sample(synthesizer, 10000)
    ours = model.sample(N_SAMPLE, seed=11, backend="cpu")
    _compare(ours, theirs)
    assert (ours["const"] == 7.0).all()


# ----------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------
def test_unfitted_synthesizer_raises():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = GaussianCopulaSynthesizer(_metadata(COLUMNS))
    with pytest.raises(TypeError, match="not fitted"):
        synthcore.GaussianCopula.from_sdv(synthesizer)


def test_wrong_object_raises():
    with pytest.raises(TypeError, match="GaussianCopulaSynthesizer"):
        synthcore.GaussianCopula.from_sdv(pd.DataFrame({"a": [1.0]}))


def test_null_category_is_imported_as_a_null_level(table, tmp_path):
    """SDV's default for a categorical with nulls samples the nulls as one more category;
    the import keeps it as a null level: null rates, frequencies and the link to x1 match
    SDV's own samples, conditioning on null works, and save/load keeps it."""
    df = table[["x1", "cat"]].head(3000).copy()
    df.loc[df["x1"] > 11.5, "cat"] = np.nan        # nulls tied to high x1
    synthesizer = _fit(df, {"x1": COLUMNS["x1"], "cat": COLUMNS["cat"]})
    model = synthcore.GaussianCopula.from_sdv(synthesizer)
    theirs = sdv_sample(synthesizer, 40_000)
    ours = model.sample(40_000, seed=3, backend="cpu")
    assert str(ours["cat"].dtype) == str(theirs["cat"].dtype)
    assert abs(ours["cat"].isna().mean() - theirs["cat"].isna().mean()) < 0.01
    assert total_variation(ours["cat"], theirs["cat"]) < 0.02
    hi_ours = ours.loc[ours["cat"].isna(), "x1"].mean()
    hi_theirs = theirs.loc[theirs["cat"].isna(), "x1"].mean()
    assert abs(hi_ours - hi_theirs) < 0.1
    cond = model.sample(2000, seed=4, conditions={"cat": None}, backend="cpu")
    assert cond["cat"].isna().all() and cond["x1"].mean() > ours["x1"].mean()
    cond = model.sample(2000, seed=4, conditions={"cat": "a"}, backend="cpu")
    assert (cond["cat"] == "a").all()
    model.save(tmp_path / "m.synth")
    again = synthcore.load(tmp_path / "m.synth").sample(5000, seed=3, backend="cpu")
    pd.testing.assert_frame_equal(again, ours.head(5000))


# ----------------------------------------------------------------------------
# time zones and calendar formats
# ----------------------------------------------------------------------------
def _datetime_table(tz, n=3000, seed=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    # about three years of instants, tied to x so that the correlation is visible
    offset = np.clip(stats.norm.cdf(0.8 * x + 0.6 * rng.normal(size=n)), 0, 1) * 9.4e16
    when = pd.Series(pd.to_datetime(1.58e18 + offset.astype(np.int64), unit="ns"))
    if tz:
        when = when.dt.tz_localize("UTC").dt.tz_convert(tz)
    return pd.DataFrame({"x": np.round(x, 3), "when": when})


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_time_zone_aware_datetimes(tz, tmp_path):
    """A zone-aware column comes back in its zone (UTC offsets differing across daylight
    saving included): same dtype and instants distributed as SDV's, whole microseconds."""
    df = _datetime_table(tz)
    synthesizer = _fit(df, {"x": {"sdtype": "numerical"}, "when": {"sdtype": "datetime"}})
    model = synthcore.GaussianCopula.from_sdv(synthesizer)
    theirs = sdv_sample(synthesizer, 20_000)
    ours = model.sample(20_000, seed=2, backend="cpu")
    assert str(ours["when"].dtype) == str(theirs["when"].dtype) == f"datetime64[ns, {tz}]"
    _compare(ours, theirs, discrete=())
    # SDV writes the format '%Y-%m-%d %H:%M:%S.%f%z': whole microseconds, which float64
    # cannot hold at today's instants, so the output is snapped in int64
    assert (theirs["when"].dt.nanosecond == 0).all() and (ours["when"].dt.nanosecond == 0).all()
    rho = [stats.spearmanr(f["x"], f["when"].astype("int64")).statistic for f in (ours, theirs)]
    assert rho[0] > 0.5 and abs(rho[0] - rho[1]) < 0.03
    model.save(tmp_path / "tz.synth")
    pd.testing.assert_frame_equal(synthcore.load(tmp_path / "tz.synth").sample(
        500, seed=2, backend="cpu"), ours.head(500))


@pytest.mark.parametrize("fmt,unit", [("%Y-%m", "M"), ("%Y", "Y")])
def test_calendar_datetime_formats(fmt, unit):
    """Formats keeping only the month or the year floor to calendar starts: levels, one
    per start, with SDV's frequencies."""
    df = _datetime_table(None)
    synthesizer = _fit(df, {"x": {"sdtype": "numerical"},
                            "when": {"sdtype": "datetime", "datetime_format": fmt}})
    model = synthcore.GaussianCopula.from_sdv(synthesizer)
    when = {m.name: m for m in model.columns}["when"]
    assert when.encoding == "levels"
    starts = pd.Series(when.levels.view("datetime64[ns]"))
    assert (starts == starts.dt.to_period(unit).dt.start_time).all()
    theirs = sdv_sample(synthesizer, 40_000)
    ours = model.sample(40_000, seed=4, backend="cpu")
    assert str(ours["when"].dtype) == str(theirs["when"].dtype) == "datetime64[ns]"
    assert set(ours["when"].unique()) <= set(starts)
    assert set(theirs["when"].unique()) <= set(starts)
    assert total_variation(ours["when"], theirs["when"]) < 0.03
    rho = [stats.spearmanr(f["x"], f["when"].astype("int64")).statistic for f in (ours, theirs)]
    assert rho[0] > 0.5 and abs(rho[0] - rho[1]) < 0.03
    # the reference decoder of the plain state agrees with SDV on the same format
    ref = _sdv_import.sample_from_state(_sdv_import.read_sdv_gaussian_copula(synthesizer),
                                        40_000, seed=1)
    assert total_variation(ref["when"], theirs["when"]) < 0.03


def test_zone_aware_month_format_is_refused():
    """'%Y-%m %z' re-parses to the month's first midnight at the *sample's* UTC offset,
    an hour off the month start across daylight saving: not a calendar floor."""
    df = _datetime_table("America/New_York", n=400)
    synthesizer = _fit(df, {"x": {"sdtype": "numerical"},
                            "when": {"sdtype": "datetime", "datetime_format": "%Y-%m %z"}})
    with pytest.raises(ValueError, match="'when'.*'%Y-%m %z'"):
        synthcore.GaussianCopula.from_sdv(synthesizer)


def test_mixed_time_zones_are_refused():
    df = _datetime_table(None, n=400)
    df["when"] = [t.tz_localize("UTC") if i % 2 else t.tz_localize("Asia/Tokyo")
                  for i, t in enumerate(df["when"])]
    assert df["when"].dtype == object
    synthesizer = _fit(df, {"x": {"sdtype": "numerical"}, "when": {"sdtype": "datetime"}})
    with pytest.raises(ValueError, match="'when'"):
        synthcore.GaussianCopula.from_sdv(synthesizer)


# ----------------------------------------------------------------------------
# key columns
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("key_meta,values,pattern", [
    ({"sdtype": "id"}, np.arange(10, 410), None),                        # random_int
    ({"sdtype": "id"}, [f"u{i}" for i in range(400)], r"sdv-id-\d{6}"),    # bothify
    ({"sdtype": "id", "regex_format": "C[0-9]{5}"}, [f"C{i:05d}" for i in range(400)],
     r"C\d{5}"),
])
def test_primary_keys_are_generated_unique(key_meta, values, pattern, tmp_path):
    """A primary key is generated from the row index in SDV's key format (not SDV's
    draws): unique, with the rest of the model unchanged."""
    df = _datetime_table(None, n=400)[["x"]].assign(k=values)
    metadata = Metadata.load_from_dict({"tables": {TABLE: {
        "columns": {"x": {"sdtype": "numerical"}, "k": key_meta}, "primary_key": "k"}}})
    synthesizer = fit_sdv(df, metadata)
    model = synthcore.GaussianCopula.from_sdv(synthesizer)
    ours = model.sample(5000, seed=1, backend="cpu")
    theirs = sdv_sample(synthesizer, 5000)
    assert ours["k"].is_unique and theirs["k"].is_unique
    assert str(ours["k"].dtype) == str(theirs["k"].dtype)
    if pattern:
        assert ours["k"].str.fullmatch(pattern).all() and theirs["k"].str.len().eq(
            ours["k"].str.len()).all()
    _compare(ours[["x"]], theirs[["x"]], discrete=())
    ref = _sdv_import.sample_from_state(_sdv_import.read_sdv_gaussian_copula(synthesizer),
                                        5000, seed=2)
    assert ref["k"].is_unique and ref["k"].tolist()[:3] == ours["k"].tolist()[:3]
    model.save(tmp_path / "k.synth")
    pd.testing.assert_frame_equal(synthcore.load(tmp_path / "k.synth").sample(
        100, seed=1, backend="cpu"), ours.head(100))


def test_key_with_an_unsupported_regex_is_refused():
    df = _datetime_table(None, n=300)[["x"]].assign(k=[f"{i:03d}-AB" for i in range(300)])
    metadata = Metadata.load_from_dict({"tables": {TABLE: {
        "columns": {"x": {"sdtype": "numerical"},
                    "k": {"sdtype": "id", "regex_format": "[0-9]{3}-[A-Z]{2}"}},
        "primary_key": "k"}}})
    with pytest.raises(ValueError, match="'k'.*RegexGenerator"):
        synthcore.GaussianCopula.from_sdv(fit_sdv(df, metadata))


def test_generated_pii_columns_are_refused_or_omitted():
    df = _datetime_table(None, n=400)[["x"]].assign(
        email=[f"user{i}@example.com" for i in range(400)], plan=["a", "b"] * 200)
    metadata = Metadata.load_from_dict({"tables": {TABLE: {"columns": {
        "x": {"sdtype": "numerical"}, "email": {"sdtype": "email", "pii": True},
        "plan": {"sdtype": "categorical"}}}}})
    synthesizer = fit_sdv(df, metadata)
    with pytest.raises(ValueError, match="'email'.*omit_generated"):
        synthcore.GaussianCopula.from_sdv(synthesizer)
    with pytest.warns(UserWarning, match="email"):
        model = synthcore.GaussianCopula.from_sdv(synthesizer, omit_generated=True)
    ours = model.sample(4000, seed=1, backend="cpu")
    theirs = sdv_sample(synthesizer, 4000)
    assert list(ours.columns) == ["x", "plan"]
    _compare(ours, theirs[["x", "plan"]], discrete=("plan",))
