"""Key columns: unique ids generated from the row index, outside the copula.

A key (primary key, id) carries no statistics worth copying and must be unique,
which a copula marginal cannot promise. A key column is therefore generated,
not sampled: row r of the (seed, stream) sequence gets ``start + r`` (integer
keys) or ``prefix + zero-padded (start + r) + suffix`` (string keys). Rows are
unique within any split by ``row_offset`` and equal under any chunking, like
every other column; rows of different seeds share keys (sample disjoint
``row_offset`` ranges to combine them).

The parameters live in ``ColumnModel.params``: ``{"start": int, "prefix":
str or None, "width": int, "suffix": str}``; ``prefix`` None means integer keys.
"""
from __future__ import annotations

import re

import numpy as np

_NUMBERED = re.compile(r"^(.*?)(\d+)$", re.DOTALL)


def fit_key(column) -> dict:
    """Key parameters from a fitted table column (a ``_table.TableColumn``)."""
    name = column.name
    if column.null.any():
        raise ValueError(f"key column {name!r} has nulls")
    values = column.values
    if column.kind == "int":
        if np.unique(values).size != values.size:
            raise ValueError(f"key column {name!r} has repeated values; a key is unique")
        return {"start": int(values.min()) if values.size else 0, "prefix": None, "width": 0,
                "suffix": ""}
    if column.kind != "categorical" or not all(isinstance(v, str) for v in values):
        raise ValueError(f"key column {name!r} must hold integers or strings, not "
                         f"{column.kind} values")
    if len(set(values)) != len(values):
        raise ValueError(f"key column {name!r} has repeated values; a key is unique")
    parts = [_NUMBERED.match(v) for v in values]
    bad = next((v for v, p in zip(values, parts) if p is None), None)
    prefixes = {p.group(1) for p in parts if p is not None}
    if bad is not None or len(prefixes) != 1:
        example = bad if bad is not None else sorted(prefixes)[:2]
        raise ValueError(f"key column {name!r}: string keys must share one prefix followed by "
                         f"a number (like 'C00017'), got {example!r}")
    digits = [p.group(2) for p in parts]
    widths = {len(d) for d in digits}
    padded = len(widths) == 1 and any(d.startswith("0") for d in digits)
    return {"start": min(int(d) for d in digits), "prefix": prefixes.pop(),
            "width": widths.pop() if padded else 0, "suffix": ""}


def key_values(name: str, params: dict, dtype: str, rows: np.ndarray):
    """(kind, values) of a key column at the given int64 row indices (NumPy, or CuPy for
    integer keys): integers of ``dtype``, or an object array of strings (formatted by
    pyarrow's string kernels, not a Python loop)."""
    if params.get("prefix") is None:
        info = np.iinfo(np.dtype(dtype))
        if rows.size and (int(rows.max()) + params["start"] > info.max
                          or int(rows.min()) + params["start"] < info.min):
            raise ValueError(f"key column {name!r}: keys from {params['start']} at rows up to "
                             f"{int(rows.max())} overflow its dtype {dtype}")
        return "int", (rows + params["start"]).astype(dtype, copy=False)
    numbers = np.asarray(rows, dtype=np.int64) + np.int64(params["start"])
    import pyarrow as pa
    import pyarrow.compute as pc
    text = pc.cast(pa.array(numbers), pa.string())
    if params.get("width"):
        text = pc.utf8_lpad(text, width=int(params["width"]), padding="0")
    text = pc.binary_join_element_wise(str(params["prefix"]), text,
                                       str(params.get("suffix") or ""), "")
    return "string", text.to_numpy(zero_copy_only=False)


def check_key_params(name: str, params: dict) -> dict:
    """The key parameters of a loaded or imported model, validated."""
    start = params.get("start")
    prefix, suffix = params.get("prefix"), params.get("suffix", "")
    width = params.get("width", 0)
    if isinstance(start, bool) or not isinstance(start, int) or not -2**62 <= start < 2**62:
        raise ValueError(f"key column {name!r}: start must be an integer, got {start!r}")
    if prefix is not None and not isinstance(prefix, str):
        raise ValueError(f"key column {name!r}: prefix must be a string or None")
    if not isinstance(suffix, str) or isinstance(width, bool) or not isinstance(width, int) \
            or not 0 <= width <= 64:
        raise ValueError(f"key column {name!r}: suffix must be a string and width in [0, 64]")
    return {"start": start, "prefix": prefix, "width": width, "suffix": suffix}
