"""Read the fitted state of an SDV ``GaussianCopulaSynthesizer`` as plain data.

``read_sdv_gaussian_copula(synthesizer)`` returns a dict made only of Python
scalars, strings, lists, dicts and NumPy arrays that describes the sampling
distribution of a fitted ``sdv.single_table.GaussianCopulaSynthesizer``.
``sample_from_state(state, n, seed)`` is an independent NumPy/SciPy/pandas
sampler that works from that dict alone; it exists to show the dict is
complete.

Licensing note: SDV, RDT and Copulas are under the Business Source License.
Nothing here is derived from their code. This module only reads numeric and
plain attributes (numbers, arrays, strings and dicts of them) off an object
the caller passes in; it never pickles, unpickles or calls SDV to sample.
The sampler below is written from the documented behaviour (Gaussian copula,
SciPy marginals, interval decoding of categories, rounding, clipping, nulls).

Attribute paths read (SDV 2.0.0, RDT 2.0.0, Copulas 0.14.1), with
``S = synthesizer``, ``DP = S._data_processor``, ``HT = DP._hyper_transformer``
and ``M = S._model`` (a ``copulas.multivariate.GaussianMultivariate``):

* fitted flag: ``S._fitted``; model: ``S._model`` (``None`` if not fitted).
* settings: ``S.enforce_min_max_values``, ``S.enforce_rounding``,
  ``S.default_distribution``, ``S.numerical_distributions``, ``S._num_rows``,
  ``S._fitted_sdv_version``.
* unsupported features checked: ``S._chained_constraints``,
  ``S._reject_sampling_constraints``, ``S._composite_keys``,
  ``DP.grouped_columns_to_transformers``, ``DP._primary_key``, ``DP._keys``.
* table columns, order and sdtypes: ``DP.metadata.columns`` (dict, insertion
  order is the output order) and ``[col]['sdtype']``; output dtypes:
  ``DP._dtypes[col]``.
* transformers: ``HT.field_transformers[col]``; latent columns each one
  produces: ``transformer.output_columns``.
* FloatFormatter: ``_dtype``, ``learn_rounding_scheme``, ``_rounding_digits``,
  ``enforce_min_max_values``, ``_min_value``, ``_max_value``,
  ``computer_representation``, ``missing_value_replacement``,
  ``missing_value_generation``, ``null_transformer``.
* NullTransformer (``transformer.null_transformer``):
  ``_missing_value_generation``, ``nulls``, ``_null_percentage``,
  ``_missing_value_replacement``.
* UniformEncoder / OrderedUniformEncoder: ``intervals`` (dict category ->
  [start, end], insertion order = bin order), ``frequencies``, ``dtype``,
  ``missing_value_encoding``.
* BinaryEncoder: ``missing_value_replacement``, ``null_transformer``.
* UnixTimestampEncoder / OptimizedTimestampEncoder: ``datetime_format``,
  ``_dtype``, ``enforce_min_max_values``, ``_min_value``, ``_max_value``,
  ``_has_multiple_timezones``, ``_timezone_offset`` (with ``_dtype.tz``, the
  output time zone), ``null_transformer``,
  and ``divider`` (optimized only).
* post-processing formatters: ``DP.formatters[col]``; NumericalFormatter:
  ``enforce_rounding``, ``enforce_min_max_values``, ``_rounding_digits``,
  ``_min_value``, ``_max_value``, ``_dtype``; DatetimeFormatter:
  ``datetime_format``, ``_dtype``.
* copula: ``M.columns`` (latent order), ``M.correlation`` (DataFrame),
  ``M.univariates[i]``; for each univariate its class name, ``_params``
  (SciPy keyword parameters), ``_constant_value`` (degenerate column), the
  selected ``_instance`` when it is a ``copulas.univariate.Univariate``
  selector, and for GaussianKDE ``_params['dataset']``, ``bw_method``,
  ``_model.covariance`` and ``_model.weights``.
"""
from __future__ import annotations

import math
import numbers
import re

import numpy as np

__all__ = ["read_sdv_gaussian_copula", "sample_from_state"]

STATE_FORMAT_VERSION = 1

# copulas.univariate class name -> (normalised family, scipy.stats name, parameter names)
_FAMILIES = {
    "GaussianUnivariate": ("norm", "norm", ("loc", "scale")),
    "BetaUnivariate": ("beta", "beta", ("a", "b", "loc", "scale")),
    "TruncatedGaussian": ("truncnorm", "truncnorm", ("a", "b", "loc", "scale")),
    "GammaUnivariate": ("gamma", "gamma", ("a", "loc", "scale")),
    "UniformUnivariate": ("uniform", "uniform", ("loc", "scale")),
    "StudentTUnivariate": ("student_t", "t", ("df", "loc", "scale")),
    "LogLaplace": ("loglaplace", "loglaplace", ("c", "loc", "scale")),
    "GaussianKDE": ("gaussian_kde", None, ()),
}
# normalised family -> scipy.stats distribution name
_SCIPY_NAME = {fam: sp for fam, sp, _ in _FAMILIES.values() if sp is not None}

# Copulas clips nothing on the sampling path except inside its KDE inverse,
# which maps u <= eps to -inf and u >= 1 - eps to +inf (eps = float32 eps).
_KDE_EPS = float(np.finfo(np.float32).eps)

_INT_BOUNDS = {
    "Int8": (-(2 ** 7), 2 ** 7 - 1),
    "Int16": (-(2 ** 15), 2 ** 15 - 1),
    "Int32": (-(2 ** 31), 2 ** 31 - 1),
    "Int64": (-(2 ** 63), 2 ** 63 - 1),
    "UInt8": (0, 2 ** 8 - 1),
    "UInt16": (0, 2 ** 16 - 1),
    "UInt32": (0, 2 ** 32 - 1),
    "UInt64": (0, 2 ** 64 - 1),
}


# --------------------------------------------------------------------------
# plain-value helpers
# --------------------------------------------------------------------------
def _is_missing(value):
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT
    except Exception:  # noqa: BLE001 - arrays, odd objects
        return False


def _scalar(value, column, what):
    """Convert a numeric/str/bool scalar (NumPy or Python) to a Python scalar."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise ValueError(
        f"column {column!r}: cannot represent {what} of type {type(value).__name__} "
        "as plain data"
    )


def _float_or_none(value, column, what):
    if value is None or _is_missing(value):
        return None
    v = _scalar(value, column, what)
    if isinstance(v, str):
        raise ValueError(f"column {column!r}: {what} is a string ({v!r}), expected a number")
    return float(v)


def _dtype_str(dtype):
    return None if dtype is None else str(dtype)


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------
def _check_synthesizer(synthesizer):
    try:
        from sdv.single_table import GaussianCopulaSynthesizer
    except Exception as exc:  # pragma: no cover - sdv missing
        raise TypeError(
            "read_sdv_gaussian_copula needs SDV installed and an "
            "sdv.single_table.GaussianCopulaSynthesizer; could not import SDV: "
            f"{exc}"
        ) from exc
    if not isinstance(synthesizer, GaussianCopulaSynthesizer):
        raise TypeError(
            "expected a fitted sdv.single_table.GaussianCopulaSynthesizer, got "
            f"{type(synthesizer).__module__}.{type(synthesizer).__qualname__}"
        )
    if getattr(type(synthesizer), "_sample", None) is not GaussianCopulaSynthesizer._sample:
        raise TypeError(
            f"{type(synthesizer).__qualname__} overrides GaussianCopulaSynthesizer "
            "sampling; only GaussianCopulaSynthesizer itself can be read"
        )
    if not getattr(synthesizer, "_fitted", False):
        raise TypeError(
            "the GaussianCopulaSynthesizer is not fitted; call fit() before "
            "read_sdv_gaussian_copula"
        )
    model = getattr(synthesizer, "_model", None)
    if model is None or getattr(model, "columns", None) is None:
        raise TypeError(
            "the GaussianCopulaSynthesizer has no fitted copula model "
            "(was it fitted on an empty table?)"
        )


def _read_null(transformer, column):
    nt = getattr(transformer, "null_transformer", None)
    if nt is None:
        raise ValueError(f"column {column!r}: transformer has no fitted null_transformer")
    generation = getattr(nt, "_missing_value_generation", None)
    if generation not in (None, "random", "from_column"):
        raise ValueError(
            f"column {column!r}: unknown missing_value_generation {generation!r}"
        )
    has_nulls = bool(nt.nulls) if getattr(nt, "nulls", None) is not None else False
    rate = getattr(nt, "_null_percentage", None)
    replacement = getattr(nt, "_missing_value_replacement", None)
    out = {
        "missing_value_generation": generation,
        "has_nulls": has_nulls,
        "null_rate": _float_or_none(rate, column, "null rate"),
        # value the nulls were replaced with before fitting (informational:
        # it shapes the fitted marginal, it is not used when sampling)
        "fill_value": (
            None if replacement is None or isinstance(replacement, str)
            else _float_or_none(replacement, column, "missing value replacement")
        ),
        "is_null_latent": None,
    }
    outputs = list(transformer.output_columns)
    if generation == "from_column" and has_nulls:
        if len(outputs) != 2:
            raise ValueError(
                f"column {column!r}: expected a '<col>.is_null' output column, got {outputs}"
            )
        out["is_null_latent"] = outputs[1]
    return out


def _read_float_formatter(t, column):
    rep = str(t.computer_representation)
    if not rep.startswith("Float") and rep not in _INT_BOUNDS:
        raise ValueError(f"column {column!r}: unknown computer_representation {rep!r}")
    digits = getattr(t, "_rounding_digits", None)
    return {
        "dtype": _dtype_str(t._dtype),
        "learn_rounding_scheme": bool(t.learn_rounding_scheme),
        "rounding_digits": None if digits is None else int(digits),
        "enforce_min_max_values": bool(t.enforce_min_max_values),
        "min_value": _float_or_none(t._min_value, column, "min value"),
        "max_value": _float_or_none(t._max_value, column, "max value"),
        "computer_representation": rep,
        "integer_bounds": (
            None if rep.startswith("Float") else [int(b) for b in _INT_BOUNDS[rep]]
        ),
        "null": _read_null(t, column),
    }


def _read_uniform_encoder(t, column):
    intervals = getattr(t, "intervals", None)
    if intervals is None:
        raise ValueError(f"column {column!r}: UniformEncoder is not fitted (no intervals)")
    frequencies = getattr(t, "frequencies", None) or {}
    categories, bounds, freqs = [], [], []
    for key, interval in intervals.items():
        cat = None if _is_missing(key) else _scalar(key, column, "category")
        start, end = (float(interval[0]), float(interval[1]))
        categories.append(cat)
        bounds.append([start, end])
        f = frequencies.get(key, None) if frequencies else None
        freqs.append(end - start if f is None else float(f))
    return {
        "dtype": _dtype_str(getattr(t, "dtype", None)),
        "missing_value_encoding": getattr(t, "missing_value_encoding", None),
        "categories": categories,  # None stands for the missing-value category
        "intervals": np.asarray(bounds, dtype=np.float64).reshape(-1, 2),
        "frequencies": np.asarray(freqs, dtype=np.float64),
        # decoding: u is clipped to [0, 1]; category i owns (end[i-1], end[i]],
        # the first one also owns 0
        "interval_closed": "right",
    }


def _read_binary_encoder(t, column):
    return {"null": _read_null(t, column)}


def _read_timestamp_encoder(t, column, optimized):
    # A time-zone-aware column has one zone in its dtype (its UTC offsets may still
    # differ, e.g. across daylight saving time, which RDT calls multiple time zones);
    # the latent values are UTC instants either way. Zone-aware values without one zone
    # in the dtype (an object column of mixed offsets) have no single output type.
    tz = getattr(getattr(t, "_dtype", None), "tz", None)
    if tz is None and (getattr(t, "_has_multiple_timezones", False)
                       or getattr(t, "_timezone_offset", None) is not None):
        raise ValueError(
            f"column {column!r}: time-zone-aware datetimes of dtype {t._dtype} (not one "
            "time zone) are not representable"
        )
    fmt = getattr(t, "datetime_format", None)
    out = {
        "dtype": _dtype_str(t._dtype),
        "tz": None if tz is None else str(tz),
        "datetime_format": None if fmt is None else str(fmt),
        # latent values are integer nanoseconds since the Unix epoch
        # (the reverse transform reads them with pandas' default unit)
        "unit": "ns",
        "divider": 1,
        "enforce_min_max_values": bool(t.enforce_min_max_values),
        "min_value": _float_or_none(t._min_value, column, "min value"),
        "max_value": _float_or_none(t._max_value, column, "max value"),
        "null": _read_null(t, column),
    }
    if optimized:
        divider = getattr(t, "divider", None)
        if divider is None:
            raise ValueError(f"column {column!r}: OptimizedTimestampEncoder has no divider")
        out["divider"] = int(divider)
    return out


def _read_transformer(t, column):
    """Return the reverse-transform parameters of a supported RDT transformer."""
    from rdt.transformers import (
        BinaryEncoder,
        FloatFormatter,
        OptimizedTimestampEncoder,
        OrderedUniformEncoder,
        UniformEncoder,
        UnixTimestampEncoder,
    )

    cls = type(t)
    if cls is FloatFormatter:
        return _read_float_formatter(t, column)
    if cls is UniformEncoder or cls is OrderedUniformEncoder:
        return _read_uniform_encoder(t, column)
    if cls is BinaryEncoder:
        return _read_binary_encoder(t, column)
    if cls is UnixTimestampEncoder:
        return _read_timestamp_encoder(t, column, optimized=False)
    if cls is OptimizedTimestampEncoder:
        return _read_timestamp_encoder(t, column, optimized=True)
    raise ValueError(
        f"column {column!r}: transformer {cls.__name__} is not supported "
        "(supported: FloatFormatter, UniformEncoder, OrderedUniformEncoder, "
        "BinaryEncoder, UnixTimestampEncoder, OptimizedTimestampEncoder)"
    )


_KEY_LITERAL = re.compile(r"[A-Za-z0-9_\-:./ ]*")
_KEY_REGEX = re.compile(r"^([A-Za-z0-9_\-:./ ]*)(?:\[0-9\]|\\d)\{(\d+)\}$")


def _read_key(t, column):
    """The generator of a key column as synthcore key parameters (synthcore/_keys.py):
    unique values from the row index in SDV's format, not SDV's draws. Read: the class
    name, ``function_name`` and ``function_kwargs`` (AnonymizedFaker) or
    ``regex_format`` (RegexGenerator)."""
    cls = type(t).__name__
    if cls == "AnonymizedFaker":
        fn, kw = getattr(t, "function_name", None), dict(getattr(t, "function_kwargs", {}) or {})
        if fn == "random_int":
            return {"start": int(kw.get("min", 0)), "prefix": None, "width": 0, "suffix": ""}
        text = str(kw.get("text", ""))
        if fn == "bothify" and text:
            prefix = text.rstrip("?#")
            width = len(text) - len(prefix)
            if width and _KEY_LITERAL.fullmatch(prefix):
                return {"start": 0, "prefix": prefix, "width": width, "suffix": ""}
    if cls == "RegexGenerator":
        match = _KEY_REGEX.match(str(getattr(t, "regex_format", "")))
        if match:
            return {"start": 0, "prefix": match.group(1), "width": int(match.group(2)),
                    "suffix": ""}
    what = cls if t is None else f"{cls}({getattr(t, 'function_name', '') or ''}" \
        f"{getattr(t, 'regex_format', '') or ''})"
    raise ValueError(
        f"column {column!r}: key column generated by {what} is not representable (keys "
        "from AnonymizedFaker random_int or bothify '<prefix>???', or RegexGenerator "
        "'<prefix>[0-9]{w}' are)")


def _read_formatter(fmt, column):
    if fmt is None:
        return None
    name = type(fmt).__name__
    if name == "NumericalFormatter":
        digits = getattr(fmt, "_rounding_digits", None)
        return {
            "kind": "numerical",
            "dtype": _dtype_str(getattr(fmt, "_dtype", None)),
            "enforce_rounding": bool(fmt.enforce_rounding),
            "rounding_digits": None if digits is None else int(digits),
            "enforce_min_max_values": bool(fmt.enforce_min_max_values),
            "min_value": _float_or_none(getattr(fmt, "_min_value", None), column, "min"),
            "max_value": _float_or_none(getattr(fmt, "_max_value", None), column, "max"),
        }
    if name == "DatetimeFormatter":
        dfmt = getattr(fmt, "datetime_format", None)
        return {
            "kind": "datetime",
            "dtype": _dtype_str(getattr(fmt, "_dtype", None)),
            "datetime_format": None if dfmt is None else str(dfmt),
        }
    raise ValueError(f"column {column!r}: post-processing formatter {name} is not supported")


def _read_univariate(univariate, latent, column):
    where = f"column {column!r}" + ("" if latent == column else f" (latent {latent!r})")
    # A copulas.univariate.Univariate selector holds the chosen model in _instance.
    inner = getattr(univariate, "_instance", None)
    if type(univariate).__name__ == "Univariate" and inner is not None:
        univariate = inner
    cls_name = type(univariate).__name__
    if cls_name not in _FAMILIES:
        raise ValueError(
            f"{where}: univariate distribution {cls_name} is not supported"
        )
    family, _, names = _FAMILIES[cls_name]
    raw = getattr(univariate, "_params", None)
    if raw is None:
        raise ValueError(f"{where}: univariate {cls_name} has no parameters")

    constant = getattr(univariate, "_constant_value", None)
    if constant is not None:
        return {
            "name": latent,
            "distribution": "constant",
            "fitted_family": family,
            "params": {"loc": _float_or_none(constant, latent, "constant value")},
        }

    if family == "gaussian_kde":
        dataset = np.asarray(raw["dataset"], dtype=np.float64).ravel()
        kde = getattr(univariate, "_model", None)
        if kde is None:
            raise ValueError(f"{where}: GaussianKDE has no fitted model")
        cov = np.asarray(kde.covariance, dtype=np.float64)
        weights = np.asarray(kde.weights, dtype=np.float64).ravel()
        spread = float(np.std(dataset))
        return {
            "name": latent,
            "distribution": "gaussian_kde",
            "params": {
                "bandwidth": float(math.sqrt(cov.reshape(-1)[0])),
                "lower": float(dataset.min() - 5.0 * spread),
                "upper": float(dataset.max() + 5.0 * spread),
            },
            "sample_points": dataset,
            "weights": weights,
        }

    params = {}
    for key in names:
        if key not in raw:
            raise ValueError(
                f"{where}: {cls_name} parameters lack {key!r}: {sorted(raw)}"
            )
        params[key] = _float_or_none(raw[key], latent, f"parameter {key}")
        if params[key] is None:
            raise ValueError(f"{where}: parameter {key} is NaN")
    return {"name": latent, "distribution": family, "params": params}


def _distribution_setting(value):
    if isinstance(value, str):
        return value
    if isinstance(value, type):
        return value.__name__
    return type(value).__name__


def read_sdv_gaussian_copula(synthesizer, omit_generated: bool = False) -> dict:
    """Return the sampling state of a fitted SDV GaussianCopulaSynthesizer as plain data.

    ``omit_generated``: leave out non-key columns that SDV generates without modelling
    them (PII through Faker), listed in ``state["omitted_columns"]``, instead of raising.

    Raises:
        TypeError: ``synthesizer`` is not a fitted
            ``sdv.single_table.GaussianCopulaSynthesizer``.
        ValueError: a column uses a transformer, key generator, constraint or
            marginal distribution this format cannot represent; the message
            names the column.
    """
    _check_synthesizer(synthesizer)
    import copulas
    import rdt
    import sdv

    for attr in ("_chained_constraints", "_reject_sampling_constraints"):
        if getattr(synthesizer, attr, None):
            names = [type(c).__name__ for c in getattr(synthesizer, attr)]
            raise ValueError(f"constraints are not representable: {names}")
    if getattr(synthesizer, "_composite_keys", None):
        raise ValueError("composite keys are not representable")

    dp = synthesizer._data_processor
    ht = dp._hyper_transformer
    grouped = getattr(dp, "grouped_columns_to_transformers", None) or {}
    if grouped:
        cols = [list(k) for k in grouped]
        raise ValueError(f"multi-column transformers are not representable: columns {cols}")

    keys = set(getattr(dp, "_keys", None) or [])
    if getattr(dp, "_primary_key", None):
        pk = dp._primary_key
        keys.update(pk if isinstance(pk, (list, tuple)) else [pk])

    model = synthesizer._model
    latent_names = [str(c) for c in model.columns]
    if len(set(latent_names)) != len(latent_names):
        raise ValueError(f"duplicate latent column names: {latent_names}")

    table_meta = dp.metadata.columns
    dtypes = dp._dtypes
    formatters = getattr(dp, "formatters", None) or {}
    field_transformers = ht.field_transformers

    columns = []
    omitted = []
    claimed = {}
    for name, meta in table_meta.items():
        sdtype = meta.get("sdtype")
        if name in keys:
            dtype = _dtype_str(dtypes[name]) if name in dtypes.index else None
            columns.append({"name": str(name), "sdtype": sdtype, "output_dtype": dtype,
                            "transformer": "key", "latent": [], "formatter": None,
                            "key": _read_key(field_transformers.get(name), name)})
            continue
        if name not in field_transformers:
            raise ValueError(f"column {name!r}: no transformer was fitted for it")
        transformer = field_transformers[name]
        dtype = _dtype_str(dtypes[name]) if name in dtypes.index else None
        # output_dtype: the dtype the data processor casts the column back to
        entry = {"name": str(name), "sdtype": sdtype, "output_dtype": dtype}
        if transformer is None:
            if dtype is None or dtype not in ("bool", "int8", "int16", "int32", "int64",
                                          "uint8", "uint16", "uint32", "uint64",
                                          "float32", "float64"):
                raise ValueError(
                    f"column {name!r}: column without a transformer and non-numeric "
                    f"dtype {dtype!r} is not representable"
                )
            entry.update({"transformer": None, "latent": [str(name)]})
        else:
            from rdt.transformers import BaseTransformer

            if not isinstance(transformer, BaseTransformer):
                raise ValueError(
                    f"column {name!r}: unexpected transformer object "
                    f"{type(transformer).__name__}"
                )
            tname = type(transformer).__name__
            outputs = [str(c) for c in (transformer.output_columns or [])]
            if not outputs and omit_generated:
                omitted.append(str(name))
                continue
            if not outputs:
                raise ValueError(
                    f"column {name!r}: transformer {tname} produces no modelled column "
                    "(generated columns are not representable; omit_generated=True leaves "
                    "them out)"
                )
            params = _read_transformer(transformer, name)
            entry.update({"transformer": tname, **params, "latent": outputs})
        for latent in entry["latent"]:
            if latent not in latent_names:
                raise ValueError(
                    f"column {name!r}: latent column {latent!r} is not in the copula model"
                )
            if latent in claimed:
                raise ValueError(
                    f"latent column {latent!r} is claimed by both {claimed[latent]!r} "
                    f"and {name!r}"
                )
            claimed[latent] = name
        entry["formatter"] = _read_formatter(formatters.get(name), name)
        columns.append(entry)

    unclaimed = [c for c in latent_names if c not in claimed]
    if unclaimed:
        raise ValueError(f"latent columns not produced by any table column: {unclaimed}")

    latent = [
        _read_univariate(u, str(c), claimed[str(c)])
        for c, u in zip(model.columns, model.univariates)
    ]
    corr_frame = model.correlation
    if hasattr(corr_frame, "loc"):
        corr = corr_frame.loc[list(model.columns), list(model.columns)].to_numpy()
    else:
        corr = corr_frame
    corr = np.array(corr, dtype=np.float64, copy=True)
    k = len(latent_names)
    if corr.shape != (k, k) or not np.all(np.isfinite(corr)):
        raise ValueError(f"copula correlation has shape {corr.shape} or non-finite values")

    num_rows = getattr(synthesizer, "_num_rows", None)
    # SDV renames non-string (e.g. integer) column names to str for fitting and
    # back on output; None when the names were strings already
    original = getattr(synthesizer, "_original_columns", None)
    original = list(original) if original is not None and len(original) else None
    if original is not None:
        original = [_scalar(c, c, "column name") for c, name in zip(original, table_meta)
                    if str(name) not in omitted]
        if len(original) != len(columns):
            raise ValueError(
                f"original column names {original} do not match the modelled columns"
            )
    return {
        "format": "sdv.GaussianCopulaSynthesizer",
        "format_version": STATE_FORMAT_VERSION,
        "sdv_version": str(getattr(synthesizer, "_fitted_sdv_version", None) or sdv.__version__),
        "sdv_installed_version": str(sdv.__version__),
        "rdt_version": str(rdt.__version__),
        "copulas_version": str(copulas.__version__),
        "table_name": None if getattr(synthesizer, "_table_name", None) is None
        else str(synthesizer._table_name),
        "enforce_min_max_values": bool(synthesizer.enforce_min_max_values),
        "enforce_rounding": bool(synthesizer.enforce_rounding),
        "default_distribution": _distribution_setting(synthesizer.default_distribution),
        "numerical_distributions": {
            str(k): _distribution_setting(v)
            for k, v in (synthesizer.numerical_distributions or {}).items()
        },
        "num_rows": None if num_rows is None else int(num_rows),
        "columns": columns,
        "omitted_columns": omitted,
        "output_column_names": original,
        "latent": latent,
        "correlation": corr,
    }


# --------------------------------------------------------------------------
# sampling (independent re-implementation)
# --------------------------------------------------------------------------
def _kde_ppf(u, points, weights, bandwidth, lower, upper):
    """Inverse of the kernel-mixture CDF used by the KDE marginal, vectorised."""
    from scipy.special import ndtr

    u = np.asarray(u, dtype=np.float64)
    w = weights / weights.sum() if weights.sum() > 0 else weights
    # mass below the lower search bound is subtracted, as the fitted marginal does
    offset = float(ndtr((lower - points) / bandwidth) @ w)

    def cdf(x):
        out = np.empty(x.shape)
        step = max(1, 4_000_000 // max(1, points.size))
        for i in range(0, x.size, step):
            out[i:i + step] = ndtr((x[i:i + step, None] - points[None, :]) / bandwidth) @ w
        return out - offset

    def pdf(x):
        out = np.empty(x.shape)
        step = max(1, 4_000_000 // max(1, points.size))
        for i in range(0, x.size, step):
            d = (x[i:i + step, None] - points[None, :]) / bandwidth
            out[i:i + step] = (np.exp(-0.5 * d * d) @ w) / (bandwidth * math.sqrt(2 * math.pi))
        return out

    x = np.zeros(u.shape)
    hi_mask = u >= 1.0 - _KDE_EPS
    lo_mask = u <= _KDE_EPS
    x[hi_mask] = np.inf
    x[lo_mask] = -np.inf
    valid = ~(hi_mask | lo_mask)
    if not valid.any():
        return x
    target = u[valid]
    # bracket on a grid, start from linear interpolation, then a few
    # safeguarded Newton steps inside the bracket
    grid = np.linspace(lower, upper, 4097)
    gcdf = np.maximum.accumulate(cdf(grid))
    idx = np.clip(np.searchsorted(gcdf, target, side="left"), 1, grid.size - 1)
    a, b = grid[idx - 1], grid[idx]
    fa, fb = gcdf[idx - 1] - target, gcdf[idx] - target
    denom = np.where(fb != fa, fb - fa, 1.0)
    xs = np.clip(a - fa * (b - a) / denom, a, b)
    tol = 1e-12 * max(1.0, abs(lower), abs(upper))
    todo = np.arange(xs.size)
    for _ in range(8):
        x0 = xs[todo]
        f = cdf(x0) - target[todo]
        d = pdf(x0)
        a[todo] = np.where(f < 0, x0, a[todo])
        b[todo] = np.where(f >= 0, x0, b[todo])
        newton = x0 - f / np.where(d > 0, d, np.inf)
        ok = (d > 0) & (newton >= a[todo]) & (newton <= b[todo])
        x1 = np.where(ok, newton, 0.5 * (a[todo] + b[todo]))
        xs[todo] = x1
        todo = todo[np.abs(x1 - x0) > tol]
        if todo.size == 0:
            break
    x[valid] = xs
    return x


def _marginal_ppf(spec, u):
    from scipy import stats

    family = spec["distribution"]
    p = spec["params"]
    if family == "constant":
        return np.full(u.shape, float(p["loc"]))
    if family == "gaussian_kde":
        return _kde_ppf(
            u,
            np.asarray(spec["sample_points"], dtype=np.float64),
            np.asarray(
                spec.get("weights", np.full(len(spec["sample_points"]), 1.0)),
                dtype=np.float64,
            ),
            float(p["bandwidth"]),
            float(p["lower"]),
            float(p["upper"]),
        )
    if family not in _SCIPY_NAME:
        raise ValueError(f"latent column {spec['name']!r}: unknown distribution {family!r}")
    dist = getattr(stats, _SCIPY_NAME[family])
    return dist.ppf(u, **{k: float(v) for k, v in p.items()})


def _pandas_dtype(dtype):
    import pandas as pd

    return pd.api.types.pandas_dtype(dtype)


def _is_int_dtype(dtype):
    import pandas as pd

    return dtype is not None and pd.api.types.is_integer_dtype(_pandas_dtype(dtype))


def _is_numpy_int(dtype):
    """Integer dtype that cannot hold NaN (NumPy int, not pandas' nullable Int)."""
    return _is_int_dtype(dtype) and isinstance(_pandas_dtype(dtype), np.dtype)


def _null_mask(null, latent_values, n, rng):
    gen = null["missing_value_generation"]
    if not null["has_nulls"]:
        return np.zeros(n, dtype=bool)
    if gen == "from_column":
        return np.asarray(latent_values[null["is_null_latent"]]) > 0.5
    if gen == "random":
        return rng.random(n) < float(null["null_rate"] or 0.0)
    return np.zeros(n, dtype=bool)


def _cast_numeric(values, dtype):
    """values (float ndarray, maybe NaN) -> pandas Series of dtype, or float64 if
    an integer NumPy dtype cannot hold the NaNs."""
    import pandas as pd

    s = pd.Series(values)
    if _is_numpy_int(dtype) and s.isna().any():
        return s.astype("float64")
    return s.astype(dtype)


def _decode_float_formatter(col, lat, n, rng):
    x = np.array(lat[col["latent"][0]], dtype=np.float64)
    x[_null_mask(col["null"], lat, n, rng)] = np.nan
    if col["enforce_min_max_values"]:
        x = np.clip(x, col["min_value"], col["max_value"])
    elif col["integer_bounds"] is not None:
        x = np.clip(x, *col["integer_bounds"])
    if col["learn_rounding_scheme"] and col["rounding_digits"] is not None:
        x = np.round(x, col["rounding_digits"])
    elif _is_int_dtype(col["dtype"]):
        x = np.round(x)
    return _cast_numeric(x, col["dtype"])


def _decode_uniform(col, lat, n, rng):
    import pandas as pd

    u = np.clip(np.asarray(lat[col["latent"][0]], dtype=np.float64), 0.0, 1.0)
    ends = np.asarray(col["intervals"], dtype=np.float64)[:, 1]
    idx = np.clip(np.searchsorted(ends, u, side="left"), 0, len(ends) - 1)
    cats = col["categories"]
    has_missing = any(c is None for c in cats)
    lookup = np.empty(len(cats), dtype=object)
    for i, c in enumerate(cats):
        lookup[i] = np.nan if c is None else c
    values = pd.Series(lookup[idx], dtype=object)
    dtype = col["dtype"]
    if dtype is None or dtype == "object":
        return values
    try:
        if has_missing and values.isna().any() and _is_numpy_int(dtype):
            return values.astype("float64")
        return values.astype(dtype)
    except (TypeError, ValueError):
        if _is_int_dtype(dtype):
            return values.astype("float64")
        return values


def _decode_binary(col, lat, n, rng):
    import pandas as pd

    x = np.array(lat[col["latent"][0]], dtype=np.float64)
    isna = _null_mask(col["null"], lat, n, rng)
    b = np.clip(np.round(x), 0, 1) > 0.5
    out = pd.Series(b.tolist(), dtype=object)
    out[isna] = np.nan
    return out


def _decode_datetime(col, lat, n, rng):
    import pandas as pd

    x = np.array(lat[col["latent"][0]], dtype=np.float64)
    x[_null_mask(col["null"], lat, n, rng)] = np.nan
    x = np.round(x) * int(col.get("divider", 1))
    if col["enforce_min_max_values"]:
        x = np.clip(x, col["min_value"], col["max_value"])
    stamps = pd.Series(pd.to_datetime(x, unit=col.get("unit", "ns")))
    if col.get("tz"):
        stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(col["tz"])
    fmt = col["datetime_format"]
    dtype = col["dtype"]
    if fmt:
        text = stamps.dt.strftime(fmt)
        if dtype is not None and dtype.startswith("datetime64") and ".%f" not in fmt:
            # the text round trip drops everything finer than the format shows
            parsed = pd.Series(pd.to_datetime(text, format=fmt, utc=bool(col.get("tz"))))
            return parsed.dt.tz_convert(col["tz"]) if col.get("tz") else parsed
        return text.astype(dtype)
    if dtype is not None and np.dtype(dtype).kind in "iuf":
        return pd.to_numeric(stamps.astype("object"), errors="coerce").astype(dtype)
    return stamps


def _finalise(col, series):
    """Output dtype restoration and the post-processing formatter."""
    import pandas as pd

    dtype = col["output_dtype"]
    if dtype is not None:
        if _is_int_dtype(dtype) and pd.api.types.is_float_dtype(series.dtype):
            series = series.round()
        try:
            if not (_is_numpy_int(dtype) and series.isna().any()):
                series = series.astype(dtype)
        except (TypeError, ValueError):
            pass
    fmt = col.get("formatter")
    if fmt is None:
        return series
    if fmt["kind"] == "numerical":
        if fmt["enforce_min_max_values"]:
            series = series.clip(fmt["min_value"], fmt["max_value"])
        if fmt["enforce_rounding"] and fmt["rounding_digits"] is not None:
            series = series.round(fmt["rounding_digits"])
        elif _is_int_dtype(fmt["dtype"]):
            series = series.round(0)
        fdtype = fmt["dtype"]
        if _is_numpy_int(fdtype) and series.isna().any():
            return series.astype("float64")
        return series.astype(fdtype)
    if fmt["kind"] == "datetime":
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            return series
        if fmt["datetime_format"]:
            parsed = pd.to_datetime(series, format=fmt["datetime_format"], errors="coerce")
            text = parsed.dt.strftime(fmt["datetime_format"])
            text[series.isna()] = np.nan
            return text.astype(fmt["dtype"]) if fmt["dtype"] else text
        return series
    raise ValueError(f"column {col['name']!r}: unknown formatter {fmt['kind']!r}")


def _decode_key(col, lat, n, rng):
    import pandas as pd
    key = col["key"]
    numbers = np.arange(n, dtype=np.int64) + int(key["start"])
    if key["prefix"] is None:
        return pd.Series(numbers)
    width = int(key.get("width") or 0)
    return pd.Series([f"{key['prefix']}{k:0{width}d}{key.get('suffix', '')}" for k in numbers],
                     dtype=object)


_DECODERS = {
    "key": _decode_key,
    "FloatFormatter": _decode_float_formatter,
    "UniformEncoder": _decode_uniform,
    "OrderedUniformEncoder": _decode_uniform,
    "BinaryEncoder": _decode_binary,
    "UnixTimestampEncoder": _decode_datetime,
    "OptimizedTimestampEncoder": _decode_datetime,
}


def sample_from_state(state, n, seed=None):
    """Draw ``n`` rows from a state returned by :func:`read_sdv_gaussian_copula`.

    z ~ N(0, correlation) from ``numpy.random.default_rng(seed)``,
    u = Phi(z), x = ppf of each latent marginal, then each table column is
    decoded (nulls, clipping, rounding, category intervals, datetimes,
    dtypes) from the plain state only. The draws are not the same as SDV's:
    only the distribution is.
    """
    import pandas as pd
    from scipy.special import ndtr

    n = int(n)
    if n < 0:
        raise ValueError("n must be non-negative")
    rng = np.random.default_rng(seed)
    latent_specs = state["latent"]
    corr = np.asarray(state["correlation"], dtype=np.float64)
    k = len(latent_specs)
    if corr.shape != (k, k):
        raise ValueError(f"correlation shape {corr.shape} does not match {k} latent columns")
    z = rng.multivariate_normal(np.zeros(k), corr, size=n, method="eigh") if k else \
        np.zeros((n, 0))
    u = ndtr(z)
    lat = {}
    for j, spec in enumerate(latent_specs):
        lat[spec["name"]] = _marginal_ppf(spec, u[:, j])

    out = {}
    for col in state["columns"]:
        tname = col["transformer"]
        if tname is None:
            series = pd.Series(np.asarray(lat[col["latent"][0]], dtype=np.float64))
        elif tname in _DECODERS:
            series = _DECODERS[tname](col, lat, n, rng)
        else:
            raise ValueError(f"column {col['name']!r}: unknown transformer {tname!r}")
        out[col["name"]] = _finalise(col, series.reset_index(drop=True))
    frame = pd.DataFrame(out, columns=[c["name"] for c in state["columns"]])
    if state.get("output_column_names"):
        frame.columns = list(state["output_column_names"])
    return frame
