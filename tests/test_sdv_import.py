"""Reading a fitted SDV GaussianCopulaSynthesizer into plain data, and sampling it.

SDV is only a test-time oracle: the state dict is compared with SDV's own
samples column by column (KS for numbers and datetimes, total variation for
categories and booleans, null rates, Spearman correlation).
"""
import importlib
import importlib.util
import pathlib
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


def _load_module():
    try:
        return importlib.import_module("synthcore._sdv_import")
    except ImportError:
        # An installed (non-editable) synthcore may predate this module: load
        # it from the source tree. It only needs numpy, scipy and pandas.
        path = pathlib.Path(__file__).resolve().parents[1] / "python/synthcore/_sdv_import.py"
        spec = importlib.util.spec_from_file_location("_synthcore_sdv_import", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


sdv_import = _load_module()
read_sdv_gaussian_copula = sdv_import.read_sdv_gaussian_copula
sample_from_state = sdv_import.sample_from_state

TABLE = "t"
N_FIT = 2000
N_SAMPLE = 20000
FAMILIES = {"norm", "truncnorm", "beta", "gamma", "uniform", "lognorm", "gaussian_kde",
            "student_t", "loglaplace", "constant"}
EXPECTED_SDTYPES = {"x1": "numerical", "x2": "numerical", "count": "numerical",
                    "cat": "categorical", "flag": "boolean", "when": "datetime",
                    "sparse": "numerical"}


def _make_table(n=N_FIT, seed=0):
    return make_mixed_table(n, seed)


def _metadata(df):
    """Detected metadata, with sdtypes pinned so nothing is taken for an id or PII."""
    metadata = Metadata.detect_from_dataframes({TABLE: df})
    detected = metadata.tables[TABLE].columns
    for column in df.columns:
        sdtype = EXPECTED_SDTYPES.get(column)
        if sdtype is not None and detected[column]["sdtype"] != sdtype:
            metadata.update_column(column, table_name=TABLE, sdtype=sdtype)
    return metadata


def _fit(df, **kwargs):
    return fit_sdv(df, _metadata(df), **kwargs)


@pytest.fixture(scope="module")
def table():
    return _make_table()


@pytest.fixture(scope="module")
def fitted(table):
    return _fit(table)


@pytest.fixture(scope="module")
def state(fitted):
    return read_sdv_gaussian_copula(fitted)


@pytest.fixture(scope="module")
def samples(fitted, state):
    return sdv_sample(fitted, N_SAMPLE), sample_from_state(state, N_SAMPLE, seed=12345)


def _assert_plain(obj, path="state"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, str), f"{path}: key {k!r} is not a str"
            _assert_plain(v, f"{path}[{k!r}]")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _assert_plain(v, f"{path}[{i}]")
    elif isinstance(obj, np.ndarray):
        assert obj.dtype.kind in "fiub", f"{path}: array dtype {obj.dtype}"
    else:
        assert obj is None or type(obj) in (bool, int, float, str), \
            f"{path}: {type(obj).__name__} is not plain data"


def _compare(ours, theirs, state):
    assert list(ours.columns) == list(theirs.columns)
    for column in state["columns"]:
        name = column["name"]
        a, b = ours[name], theirs[name]
        assert str(a.dtype) == str(b.dtype), name
        assert abs(a.isna().mean() - b.isna().mean()) < 0.02, name
        if column["sdtype"] in ("numerical", "datetime"):
            p = stats.ks_2samp(numeric(a), numeric(b)).pvalue
            assert p > 1e-6, f"{name}: KS p={p:.3g}"
        else:
            tv = total_variation(a, b)
            assert tv < 0.03, f"{name}: total variation {tv:.4f}"


# ----------------------------------------------------------------------------
# (1) structure
# ----------------------------------------------------------------------------
def test_state_is_plain_data(state):
    _assert_plain(state)


def test_state_top_level(state, fitted):
    assert state["sdv_version"] == "2.0.0" or state["sdv_version"].startswith("2.")
    assert state["enforce_min_max_values"] is True
    assert state["enforce_rounding"] is True
    assert state["default_distribution"] == "beta"
    assert state["numerical_distributions"] == {}
    assert state["num_rows"] == N_FIT


def test_state_columns(state, table):
    columns = state["columns"]
    assert [c["name"] for c in columns] == list(table.columns)
    by_name = {c["name"]: c for c in columns}
    for name, sdtype in EXPECTED_SDTYPES.items():
        assert by_name[name]["sdtype"] == sdtype
        assert isinstance(by_name[name]["transformer"], str)

    # latent columns: every model column belongs to exactly one table column
    latent_names = [spec["name"] for spec in state["latent"]]
    claimed = [lat for c in columns for lat in c["latent"]]
    assert sorted(claimed) == sorted(latent_names)
    assert len(set(latent_names)) == len(latent_names)

    for name in ("x1", "x2", "count", "sparse"):
        col = by_name[name]
        assert col["transformer"] == "FloatFormatter"
        assert col["enforce_min_max_values"] is True
        assert col["min_value"] == pytest.approx(table[name].min())
        assert col["max_value"] == pytest.approx(table[name].max())
    assert by_name["x1"]["rounding_digits"] == 3
    assert by_name["x2"]["rounding_digits"] == 2
    assert by_name["count"]["rounding_digits"] == 0
    assert by_name["count"]["output_dtype"] == "int64"

    cat = by_name["cat"]
    assert cat["transformer"] == "UniformEncoder"
    assert sorted(cat["categories"]) == ["a", "b", "c", "d"]
    iv = cat["intervals"]
    assert iv.shape == (4, 2) and iv[0, 0] == 0.0 and iv[-1, 1] == 1.0
    np.testing.assert_allclose(iv[1:, 0], iv[:-1, 1])
    freq = dict(zip(cat["categories"], cat["frequencies"]))
    observed = table["cat"].value_counts(normalize=True)
    for k, v in freq.items():
        assert v == pytest.approx(observed[k])

    flag = by_name["flag"]
    assert flag["transformer"] in ("UniformEncoder", "BinaryEncoder")
    if flag["transformer"] == "UniformEncoder":
        assert set(flag["categories"]) == {True, False}

    when = by_name["when"]
    assert when["transformer"] == "UnixTimestampEncoder"
    assert when["datetime_format"] == "%Y-%m-%d %H:%M:%S"
    assert when["min_value"] == pytest.approx(table["when"].min().value)
    assert when["max_value"] == pytest.approx(table["when"].max().value)

    null = by_name["sparse"]["null"]
    assert null["has_nulls"] is True
    if null["missing_value_generation"] == "random":
        assert null["null_rate"] == pytest.approx(table["sparse"].isna().mean())
        assert by_name["sparse"]["latent"] == ["sparse"]
    else:
        assert null["is_null_latent"] == "sparse.is_null"
    assert by_name["x1"]["null"]["has_nulls"] is False


def test_state_latent_and_correlation(state):
    latent = state["latent"]
    for spec in latent:
        assert spec["distribution"] in FAMILIES
        assert all(isinstance(v, float) and np.isfinite(v) for v in spec["params"].values())
        if spec["distribution"] == "beta":
            assert set(spec["params"]) == {"a", "b", "loc", "scale"}
    # SDV 2.0.0 default marginal is beta for every modelled column
    assert {spec["distribution"] for spec in latent} == {"beta"}

    corr = state["correlation"]
    k = len(latent)
    assert isinstance(corr, np.ndarray) and corr.dtype == np.float64 and corr.shape == (k, k)
    np.testing.assert_allclose(corr, corr.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(corr), 1.0, atol=1e-6)
    assert np.all(np.abs(corr) <= 1.0 + 1e-9)
    assert np.linalg.eigvalsh(corr).min() > -1e-9
    names = [spec["name"] for spec in latent]
    r = corr[names.index("x1"), names.index("x2")]
    assert 0.55 < r < 0.85


# ----------------------------------------------------------------------------
# (2) sampling from the dict agrees with SDV
# ----------------------------------------------------------------------------
def test_sampling_matches_sdv(samples, state):
    theirs, ours = samples
    assert len(ours) == len(theirs) == N_SAMPLE
    _compare(ours, theirs, state)


def test_spearman_of_correlated_floats(samples):
    theirs, ours = samples
    rho_ours = stats.spearmanr(ours["x1"], ours["x2"]).statistic
    rho_sdv = stats.spearmanr(theirs["x1"], theirs["x2"]).statistic
    assert abs(rho_ours - rho_sdv) < 0.05
    assert rho_ours > 0.5


def test_reverse_transforms(samples, table):
    theirs, ours = samples
    for frame in (ours, theirs):
        for name in ("x1", "x2", "count", "sparse"):
            col = frame[name].dropna()
            assert col.min() >= table[name].min() and col.max() <= table[name].max()
        np.testing.assert_array_equal(frame["x1"], frame["x1"].round(3))
        np.testing.assert_array_equal(frame["x2"].dropna(), frame["x2"].dropna().round(2))
        # datetimes come back on whole seconds (the format has no fraction)
        assert (frame["when"].astype("int64") % 10 ** 9 == 0).all()
        assert set(frame["cat"].unique()) <= {"a", "b", "c", "d"}
        assert frame["flag"].dtype == bool
    assert abs(ours["sparse"].isna().mean() - table["sparse"].isna().mean()) < 0.02


def test_sample_from_state_is_seeded(state):
    a = sample_from_state(state, 500, seed=7)
    b = sample_from_state(state, 500, seed=7)
    c = sample_from_state(state, 500, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert len(sample_from_state(state, 0, seed=1)) == 0


def test_other_marginals_and_null_column(table):
    """KDE, gamma, norm, uniform and truncnorm marginals, a '<col>.is_null'
    latent column and a constant (ordinal) column."""
    from rdt.transformers import FloatFormatter

    df = table.copy()
    df["const"] = 7.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = GaussianCopulaSynthesizer(
            _metadata(df),
            default_distribution="truncnorm",
            numerical_distributions={"x1": "gaussian_kde", "x2": "gamma",
                                     "count": "norm", "cat": "uniform"},
        )
        synthesizer.auto_assign_transformers({TABLE: df})
        synthesizer.update_transformers({"sparse": FloatFormatter(
            missing_value_generation="from_column", learn_rounding_scheme=True,
            enforce_min_max_values=True)})
        synthesizer.fit({TABLE: df})
    state = read_sdv_gaussian_copula(synthesizer)
    _assert_plain(state)
    families = {spec["name"]: spec["distribution"] for spec in state["latent"]}
    assert families["x1"] == "gaussian_kde"
    assert families["x2"] == "gamma"
    assert families["count"] == "norm"
    assert families["cat"] == "uniform"
    assert families["when"] == "truncnorm"
    kde = next(spec for spec in state["latent"] if spec["name"] == "x1")
    assert kde["sample_points"].shape == (N_FIT,)
    sparse = next(c for c in state["columns"] if c["name"] == "sparse")
    assert sparse["latent"] == ["sparse", "sparse.is_null"]
    assert sparse["null"]["is_null_latent"] == "sparse.is_null"
    assert state["numerical_distributions"]["x1"] == "gaussian_kde"

    # the KDE inverse CDF is numerical; check it against the fitted marginal
    u = np.linspace(0.001, 0.999, 201)
    univariate = synthesizer._model.univariates[list(synthesizer._model.columns).index("x1")]
    np.testing.assert_allclose(sdv_import._marginal_ppf(kde, u), univariate.percent_point(u),
                               rtol=0, atol=1e-8)

    n = 4000  # SDV's KDE inverse is slow
    theirs = sdv_sample(synthesizer, n)
    ours = sample_from_state(state, n, seed=3)
    _compare(ours, theirs, state)
    assert (ours["const"] == 7.0).all()


# ----------------------------------------------------------------------------
# (3) errors
# ----------------------------------------------------------------------------
def test_unfitted_synthesizer_raises(table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = GaussianCopulaSynthesizer(_metadata(table))
    with pytest.raises(TypeError, match="not fitted"):
        read_sdv_gaussian_copula(synthesizer)


@pytest.mark.parametrize("obj", [None, {"columns": []}, pd.DataFrame({"a": [1.0]}), object()])
def test_wrong_type_raises(obj):
    with pytest.raises(TypeError, match="GaussianCopulaSynthesizer"):
        read_sdv_gaussian_copula(obj)


def test_other_synthesizer_type_raises(table):
    from sdv.single_table import CTGANSynthesizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = CTGANSynthesizer(_metadata(table), epochs=1)
    with pytest.raises(TypeError, match="GaussianCopulaSynthesizer"):
        read_sdv_gaussian_copula(other)


def test_unsupported_transformer_names_column(table):
    from rdt.transformers import LabelEncoder

    df = table[["x1", "cat"]].head(300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = GaussianCopulaSynthesizer(_metadata(df))
        synthesizer.auto_assign_transformers({TABLE: df})
        synthesizer.update_transformers({"cat": LabelEncoder()})
        synthesizer.fit({TABLE: df})
    with pytest.raises(ValueError, match="'cat'.*LabelEncoder"):
        read_sdv_gaussian_copula(synthesizer)


def test_unsupported_distribution_names_column(table):
    df = table[["x1", "x2"]].head(300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = GaussianCopulaSynthesizer(_metadata(df), default_distribution="norm")
        synthesizer.fit({TABLE: df})

    class MysteryUnivariate:  # a marginal the reader does not know
        _params = {"loc": 0.0}

    synthesizer._model.univariates[1] = MysteryUnivariate()
    with pytest.raises(ValueError, match="'x2'.*MysteryUnivariate"):
        read_sdv_gaussian_copula(synthesizer)

