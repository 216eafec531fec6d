"""Tables in and out: pandas, pyarrow, polars or a dict of arrays.

Inside, a table is a list of ``TableColumn``: contiguous NumPy values plus a
separate null mask, with one of the kinds float, int, bool, categorical,
datetime. Output columns are built from typed NumPy buffers without per-row
Python work.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Optional

import numpy as np

KINDS = ("float", "int", "bool", "categorical", "datetime")
OUTPUTS = ("pandas", "arrow", "polars", "numpy", "cupy")


@dataclass
class TableColumn:
    name: str
    kind: str
    values: np.ndarray          # float64 | int64 | bool | object (categories) | int64 (datetime ns)
    null: np.ndarray            # bool, True where the value is missing
    dtype: str                  # the dtype to give back: "float32", "int32", "datetime64[ns]", "date" ...
    tz: Optional[str] = None    # time zone of a datetime column


def _to_pandas(table):
    import pandas as pd
    if isinstance(table, pd.DataFrame):
        return table
    module = type(table).__module__
    if module.startswith("pyarrow"):
        return _arrow_to_pandas(table)
    if module.startswith("polars"):
        return _arrow_to_pandas(table.to_arrow())
    if isinstance(table, dict):
        lengths = {k: len(v) for k, v in table.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns of the dict have different lengths: {lengths}")
        return pd.DataFrame(table)
    raise TypeError("table must be a pandas DataFrame, a pyarrow Table, a polars DataFrame or a "
                    f"dict of arrays, got {type(table).__name__}")


def _arrow_to_pandas(table):
    """Arrow to pandas keeping integers and booleans with nulls as such (not float/object)."""
    import pandas as pd
    import pyarrow as pa
    nullable = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(),
                pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
                pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
                pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(),
                pa.bool_(): pd.BooleanDtype()}
    return table.to_pandas(types_mapper=nullable.get)


def _object_kind(name, values: np.ndarray) -> str:
    """Kind of an object column from its non-null values; mixed types are an error."""
    types = {type(v) for v in values}
    if not types:
        return "categorical"
    if types <= {bool, np.bool_}:
        return "bool"
    if types <= {str}:
        return "categorical"
    if types <= {_dt.date}:
        return "date"
    if all(issubclass(t, (_dt.datetime, np.datetime64)) for t in types):
        return "datetime"
    names = sorted(t.__name__ for t in types)
    raise ValueError(f"column {name!r} mixes value types {names}; cast it to one type or "
                     f"declare it with column_kinds={{{name!r}: 'categorical'}} (values are "
                     "then compared as strings)")


def read_table(table, column_kinds: Optional[dict] = None) -> list[TableColumn]:
    """Columns of ``table`` with kinds detected, or taken from ``column_kinds``."""
    import pandas as pd
    df = _to_pandas(table)
    column_kinds = dict(column_kinds or {})
    unknown = set(column_kinds) - set(map(str, df.columns))
    if unknown:
        raise ValueError(f"column_kinds names columns not in the table: {sorted(unknown)}")
    for name, kind in column_kinds.items():
        if kind not in KINDS:
            raise ValueError(f"column_kinds[{name!r}] must be one of {KINDS}, got {kind!r}")
    if len(set(map(str, df.columns))) != df.shape[1]:
        raise ValueError("column names must be unique strings")
    columns = []
    for name in df.columns:
        series = df[name]
        name = str(name)
        null = series.isna().to_numpy(dtype=bool)
        forced = column_kinds.get(name)
        columns.append(_read_column(name, series, null, forced, pd))
    return columns


def _read_column(name, series, null, forced, pd) -> TableColumn:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) and forced in (None, "categorical"):
        values = series.astype(object).to_numpy()
        return TableColumn(name, "categorical", values, null, "category")
    if pd.api.types.is_bool_dtype(dtype) and forced in (None, "bool"):
        values = series.fillna(False).to_numpy(dtype=bool)
        return TableColumn(name, "bool", values, null, "bool")
    if pd.api.types.is_datetime64_any_dtype(dtype) and forced in (None, "datetime"):
        tz = None
        if getattr(dtype, "tz", None) is not None:
            tz = str(dtype.tz)
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        ns = series.astype("datetime64[ns]").to_numpy().view(np.int64).copy()
        return TableColumn(name, "datetime", ns, null, "datetime64[ns]", tz)
    if pd.api.types.is_integer_dtype(dtype) and forced in (None, "int", "float"):
        kind = forced or "int"
        values = series.to_numpy(dtype=np.float64 if kind == "float" else np.int64,
                                 na_value=0)
        out = "float64" if kind == "float" else str(np.dtype(dtype.numpy_dtype
                                                             if hasattr(dtype, "numpy_dtype")
                                                             else dtype))
        return TableColumn(name, kind, values, null, out)
    if pd.api.types.is_float_dtype(dtype) and forced in (None, "float", "int"):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(values).any():
            raise ValueError(f"column {name!r} contains infinite values; replace them with "
                             "nulls or finite bounds before fitting")
        if forced == "int":
            if not np.all(np.equal(np.mod(values[~null], 1), 0)):
                raise ValueError(f"column {name!r} was declared int but has fractional values")
            return TableColumn(name, "int", np.where(null, 0, values).astype(np.int64), null,
                               "int64")
        out = "float32" if dtype == np.float32 else "float64"
        return TableColumn(name, "float", np.where(null, 0.0, values), null, out)
    # object, string and everything else
    raw = series.to_numpy(dtype=object)
    present = raw[~null]
    kind = forced or _object_kind(name, present)
    if kind == "categorical":
        values = raw.copy()
        if forced == "categorical":
            values[~null] = [str(v) for v in present] if len(set(map(type, present))) > 1 \
                else present
        return TableColumn(name, "categorical", values, null, "object")
    if kind == "bool":
        values = np.zeros(len(raw), dtype=bool)
        values[~null] = present.astype(bool)
        return TableColumn(name, "bool", values, null, "bool")
    if kind in ("date", "datetime"):
        ns = pd.to_datetime(pd.Series(raw)).astype("datetime64[ns]").to_numpy().view(np.int64)
        return TableColumn(name, "datetime", ns.copy(), null,
                           "date" if kind == "date" else "datetime64[ns]")
    if kind == "float":
        values = pd.to_numeric(pd.Series(raw), errors="raise").to_numpy(dtype=np.float64)
        return TableColumn(name, "float", np.where(null, 0.0, values), null, "float64")
    if kind == "int":
        values = pd.to_numeric(pd.Series(raw), errors="raise").to_numpy(dtype=np.float64)
        return TableColumn(name, "int", np.where(null, 0, values).astype(np.int64), null, "int64")
    raise ValueError(f"column {name!r}: cannot read it as {kind!r}")


# ---- output -------------------------------------------------------------------

@dataclass
class OutputColumn:
    """A sampled column: typed values, and a null mask (None: no nulls)."""
    name: str
    kind: str
    values: np.ndarray           # float, int, bool, int32 codes (categorical), int64 ns
                                 # (datetime), object str (string: generated keys)
    null: Optional[np.ndarray]
    dtype: str
    categories: Optional[np.ndarray] = None
    tz: Optional[str] = None


def build_output(columns: list[OutputColumn], output: str):
    if output == "pandas":
        return _to_pandas_frame(columns)
    if output == "arrow":
        return _to_arrow(columns)
    if output == "polars":
        import polars as pl
        return pl.from_arrow(_to_arrow(columns))
    if output == "numpy":
        return {c.name: _to_numpy(c) for c in columns}
    raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")


def _to_pandas_frame(columns):
    import pandas as pd
    data = {}
    for c in columns:
        data[c.name] = _to_pandas_series(c, pd)
    return pd.DataFrame(data, copy=False)


def _to_pandas_series(c: OutputColumn, pd):
    null = c.null
    if c.kind == "categorical":
        codes = c.values  # -1 already marks nulls
        if c.dtype == "category":
            return _categorical_from_codes(codes, pd.CategoricalDtype(pd.Index(c.categories)), pd)
        return _take_levels(c.categories, codes)
    if c.kind in ("float", "string"):
        return c.values  # NaN marks float nulls; strings (generated keys) have none
    if c.kind == "int":
        if null is None:
            return c.values
        return pd.arrays.IntegerArray(c.values, null)
    if c.kind == "bool":
        if null is None:
            return c.values
        return pd.arrays.BooleanArray(c.values, null)
    if c.kind == "datetime":
        values = c.values.view("datetime64[ns]")  # NaT (int64 min) marks nulls
        if c.dtype == "date":
            s = pd.Series(values).dt.date
            return s.where(~pd.isna(values), None).to_numpy(dtype=object)
        s = pd.Series(values)
        if c.tz:
            s = s.dt.tz_localize("UTC").dt.tz_convert(c.tz)
        return s.array
    raise ValueError(f"unknown column kind {c.kind!r}")


def _take_levels(categories, codes):
    """Object array of each row's level; code -1 (null) gives NaN."""
    levels = np.empty(len(categories), dtype=object)
    levels[:] = categories
    from ._backend import core_module
    core = core_module()
    if core is not None and codes.dtype in (np.int8, np.int32):
        out = np.empty(codes.size, dtype=object)
        core.take_levels(levels, np.ascontiguousarray(codes), np.nan, out)
        return out
    with_null = np.append(levels, np.nan)  # -1 picks the last
    return with_null.take(codes.astype(np.intp, copy=False))


def _categorical_from_codes(codes, dtype, pd):
    """A pandas Categorical on our codes (-1 .. k - 1 by construction), without pandas
    checking their range again where it can skip that (pandas >= 2.1)."""
    if _FROM_CODES_VALIDATES is None:
        _check_from_codes(pd)
    if _FROM_CODES_VALIDATES:
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
    return pd.Categorical.from_codes(codes, dtype=dtype)


_FROM_CODES_VALIDATES = None


def _check_from_codes(pd):
    global _FROM_CODES_VALIDATES
    import inspect
    _FROM_CODES_VALIDATES = "validate" in inspect.signature(pd.Categorical.from_codes).parameters


def _to_arrow(columns):
    import pyarrow as pa
    arrays, names = [], []
    for c in columns:
        mask = c.null
        if c.kind == "categorical":
            indices = pa.array(np.where(c.values < 0, 0, c.values).astype(np.int32),
                               mask=c.values < 0 if mask is not None else None)
            arr = pa.DictionaryArray.from_arrays(indices, pa.array(c.categories))
        elif c.kind == "datetime":
            typ = pa.timestamp("ns", tz=c.tz)
            arr = pa.array(c.values, type=pa.int64(), mask=mask).cast(typ)
            if c.dtype == "date":
                arr = arr.cast(pa.date32())
        elif c.kind == "string":
            arr = pa.array(c.values, type=pa.string(), mask=mask)
        else:
            arr = pa.array(c.values, mask=mask)
        arrays.append(arr)
        names.append(c.name)
    return pa.Table.from_arrays(arrays, names=names)


def _to_numpy(c: OutputColumn):
    if c.kind == "categorical":
        out = np.asarray(c.categories, dtype=object)[np.where(c.values < 0, 0, c.values)]
        if c.null is not None:
            out[c.null] = None
        return out
    if c.kind == "datetime":
        return c.values.view("datetime64[ns]")
    if c.null is not None and c.kind in ("int", "bool"):
        return np.ma.MaskedArray(c.values, mask=c.null)
    return c.values
