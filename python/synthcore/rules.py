"""Rules over table columns: constraints, filters and derived columns (docs/rules.md).

    rules = synthcore.Rules(["age >= 18", "end - start <= 30 days",
                             "country in ('US', 'CA')", "total = price * qty"])
    result = rules.evaluate(table)      # .mask, .violations, .derived
    kept = rules.filter(table)          # rows where every rule holds (+ derived columns)
    print(rules.report(table))

Rules are parsed once, type-checked and compiled per table schema into a bytecode
program that the ``cpu`` backend runs in one fused, threaded pass over row blocks,
``cuda`` in one kernel and ``numpy`` as the reference. A constraint holds unless
it is false: a rule that is null on a row (a null in a comparison) does not count
as violated, as in SQL CHECK constraints. ``name = expr`` with a name that is not
a column of the table (or ``name := expr``) defines a derived column.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from . import _backend, _buffers
from ._rules_compile import (INT_NULL, ColumnInfo, Node, Program, RuleError, RuleSyntaxError,
                             RuleTypeError, compile_rules, parse)
from ._reference import rules as _ref

__all__ = ["Rules", "RuleResult", "RuleReport", "RuleError", "RuleSyntaxError",
           "RuleTypeError"]


# ---- columns ----------------------------------------------------------------------

@dataclass
class RuleColumn:
    """A column as the evaluators read it: ``values`` in the storage of its kind."""
    info: ColumnInfo
    values: object       # f64 (NaN null) | i64 (INT_NULL null) | i32 codes (-1) | u8 0/1/2


def _encode_numpy(name: str, values: np.ndarray, null: Optional[np.ndarray] = None):
    """One column of NumPy values (and an optional null mask) in rule storage."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"column {name!r} must be one-dimensional, got shape {values.shape}")
    k = values.dtype.kind
    if k == "f":
        v = np.ascontiguousarray(values, dtype=np.float64)
        if null is not None and null.any():
            v = np.where(null, np.nan, v)
        return RuleColumn(ColumnInfo(name, "float"), v)
    if k in "iu":
        if k == "u" and values.dtype.itemsize == 8 and values.size and \
                values.max() >= 2**63:
            raise ValueError(f"column {name!r} holds unsigned integers above 2**63 - 1")
        v = np.ascontiguousarray(values, dtype=np.int64)
        if null is not None and null.any():
            v = np.where(null, np.int64(INT_NULL), v)
        return RuleColumn(ColumnInfo(name, "int"), v)
    if k == "b":
        v = values.astype(np.uint8) * np.uint8(2)
        if null is not None:
            v[null] = 1
        return RuleColumn(ColumnInfo(name, "bool"), v)
    if k == "M":
        v = values.astype("datetime64[ns]", copy=False).view(np.int64)
        if null is not None and null.any():
            v = np.where(null, np.int64(INT_NULL), v)
        return RuleColumn(ColumnInfo(name, "datetime"), np.ascontiguousarray(v))
    if k == "m":
        v = values.astype("timedelta64[ns]").view(np.int64)
        return RuleColumn(ColumnInfo(name, "duration"), np.ascontiguousarray(v))
    if k in "OUS":
        return _encode_categorical(name, values, null)
    raise ValueError(f"column {name!r} has dtype {values.dtype}, which rules cannot read")


def _encode_categorical(name, values, null=None, categories=None):
    import pandas as pd
    if categories is None:
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
        categories = tuple(u.item() if isinstance(u, np.generic) else u for u in uniques)
    else:
        codes = np.asarray(values)
    codes = codes.astype(np.int32, copy=False)
    if null is not None and null.any():
        codes = np.where(null, np.int32(-1), codes)
    return RuleColumn(ColumnInfo(name, "categorical", tuple(categories)),
                      np.ascontiguousarray(codes))


def _encode_series(name, series):
    import pandas as pd
    from ._table import _read_column
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = tuple(c.item() if isinstance(c, np.generic) else c for c in dtype.categories)
        return _encode_categorical(name, series.cat.codes.to_numpy(), None, cats)
    if isinstance(dtype, np.dtype) and dtype.kind in "fiubMm":
        return _encode_numpy(name, series.to_numpy())
    null = series.isna().to_numpy(dtype=bool)
    col = _read_column(name, series, null, None, pd)
    if col.kind == "categorical":
        return _encode_categorical(name, col.values, null)
    if col.kind == "datetime":
        return _encode_numpy(name, col.values.view("datetime64[ns]"), null)
    return _encode_numpy(name, col.values, null)


class _TableView:
    """Column access for pandas, pyarrow, polars, a dict of arrays or a list of
    ``_table.OutputColumn`` (the synthesizers' sampled columns), converting only the
    columns a program reads."""

    def __init__(self, table, sentinel_nulls=frozenset()):
        self.table = table
        # names of OutputColumns whose null rows already hold the null of their storage
        # (NaN, INT64_MIN, code -1: the copula kernel writes these), read without a merge
        self.sentinel_nulls = sentinel_nulls
        module = type(table).__module__
        if isinstance(table, dict):
            self.kind = "dict"
            self.names = [str(k) for k in table]
            lengths = {len(v) for v in table.values()}
            if len(lengths) > 1:
                raise ValueError("columns of the dict have different lengths: "
                                 f"{ {k: len(v) for k, v in table.items()} }")
            self.n = lengths.pop() if lengths else 0
        elif isinstance(table, list):
            self.kind = "output"
            self.names = [c.name for c in table]
            self.n = len(table[0].values) if table else 0
        elif module.startswith("pandas"):
            self.kind = "pandas"
            self.names = [str(c) for c in table.columns]
            self.n = len(table)
        elif module.startswith("pyarrow"):
            self.kind = "arrow"
            self.names = list(table.column_names)
            self.n = table.num_rows
        elif module.startswith("polars"):
            self.kind = "polars"
            self.names = list(table.columns)
            self.n = table.height
        else:
            raise TypeError("table must be a pandas DataFrame, a pyarrow Table, a polars "
                            f"DataFrame or a dict of arrays, got {type(table).__name__}")
        self.cache: dict = {}

    def column(self, name) -> RuleColumn:
        if name in self.cache:
            return self.cache[name]
        t = self.table
        if self.kind == "dict":
            key = name if name in t else next(k for k in t if str(k) == name)
            v = t[key]
            if _backend.array_kind(v) == "cupy":
                col = _encode_cupy(name, v)
            elif type(v).__module__.startswith("pandas"):
                col = _encode_series(name, v)
            elif isinstance(v, np.ma.MaskedArray):
                col = _encode_numpy(name, v.data, np.ma.getmaskarray(v))
            else:
                col = _encode_numpy(name, np.asarray(v))
        elif self.kind == "output":
            c = next(c for c in t if c.name == name)
            null = c.null
            if name in self.sentinel_nulls and (c.kind == "categorical" or c.values.dtype in
                                                (np.float64, np.float32, np.int64)):
                null = None
            if c.kind == "categorical":
                col = _encode_categorical(name, c.values, null, tuple(c.categories))
            elif c.kind == "string":      # generated string keys
                col = _encode_categorical(name, c.values, c.null)
            elif c.kind == "datetime":
                col = _encode_numpy(name, c.values.view("datetime64[ns]"), null)
            else:
                col = _encode_numpy(name, c.values, null)
        elif self.kind == "pandas":
            col = _encode_series(name, t[next(c for c in t.columns if str(c) == name)])
        else:
            import pyarrow as pa
            from ._table import _arrow_to_pandas
            arrow = t.select([name]) if self.kind == "arrow" else t.select(name).to_arrow()
            series = _arrow_to_pandas(pa.table(arrow))[name]
            col = _encode_series(name, series)
        self.cache[name] = col
        return col


def _encode_cupy(name, v):
    import cupy
    if v.ndim != 1:
        raise ValueError(f"column {name!r} must be one-dimensional, got shape {v.shape}")
    k = v.dtype.kind
    if k == "u" and v.dtype.itemsize == 8 and v.size and int(v.max()) >= 2**63:
        raise ValueError(f"column {name!r} holds unsigned integers above 2**63 - 1")
    if k == "f":
        return RuleColumn(ColumnInfo(name, "float"), cupy.ascontiguousarray(v, dtype=cupy.float64))
    if k in "iu":
        return RuleColumn(ColumnInfo(name, "int"), cupy.ascontiguousarray(v, dtype=cupy.int64))
    if k == "b":
        return RuleColumn(ColumnInfo(name, "bool"), v.astype(cupy.uint8) * 2)
    raise ValueError(f"column {name!r}: CuPy columns must be float, int or bool, got {v.dtype}")


def _column_names(node: Node, out: set):
    if node.kind == "col":
        out.add(node.value)
    for a in node.args:
        _column_names(a, out)


# ---- results ---------------------------------------------------------------------

@dataclass
class RuleResult:
    """``mask[i]``: row i satisfies every rule; ``violations[rule]``: rows where it is false;
    ``derived``: derived columns (NumPy; NaN / NaT / masked entries are nulls)."""
    mask: object
    counts: np.ndarray
    rules: list
    derived: dict

    @property
    def violations(self) -> dict:
        return {r: int(c) for r, c in zip(self.rules, self.counts)}

    @property
    def n_valid(self) -> int:
        return int(self.mask.sum())


@dataclass
class RuleReport:
    n_rows: int
    n_valid: int
    rules: list
    counts: list

    def to_dict(self) -> dict:
        return {"n_rows": self.n_rows, "n_valid": self.n_valid,
                "rules": [{"rule": r, "violations": c,
                           "violation_rate": c / self.n_rows if self.n_rows else 0.0}
                          for r, c in zip(self.rules, self.counts)]}

    def __str__(self) -> str:
        lines = [f"{self.n_valid} of {self.n_rows} rows satisfy all {len(self.rules)} rules"]
        width = max([len(r) for r in self.rules] + [4])
        for r, c in zip(self.rules, self.counts):
            rate = c / self.n_rows if self.n_rows else 0.0
            lines.append(f"  {r:<{width}}  {c:>12} violations ({rate:.2%})")
        return "\n".join(lines)


# ---- Rules ----------------------------------------------------------------------

class Rules:
    """A set of rules compiled per table schema. See the module docstring."""

    def __init__(self, rules: Sequence[str]):
        if isinstance(rules, str):
            rules = [rules]
        rules = list(rules)
        for i, r in enumerate(rules):
            if not isinstance(r, str):
                raise RuleSyntaxError(f"a rule must be a string, got {type(r).__name__}", i)
        self.texts = rules
        self.parsed = [parse(text, i) for i, text in enumerate(rules)]
        names: set = set()
        for p in self.parsed:
            _column_names(p.expr, names)
            if p.target is not None:
                names.add(p.target)
        self._referenced = names
        self._programs: dict = {}

    def __repr__(self):
        return f"Rules({self.texts!r})"

    def __len__(self):
        return len(self.texts)

    def compile(self, schema: dict, table_columns=None) -> Program:
        """The program for a schema {name: ColumnInfo} (cached per schema)."""
        key = tuple(sorted((n, c.kind, c.categories) for n, c in schema.items()))
        program = self._programs.get(key)
        if program is None:
            program = compile_rules(self.texts, schema, table_columns)
            self._programs[key] = program
        return program

    def bind(self, table):
        """(program, columns in load order, n rows) for ``table``."""
        view = table if isinstance(table, _TableView) else _TableView(table)
        schema = {}
        for name in self._referenced:
            if name in view.names:
                schema[name] = view.column(name).info
        program = self.compile(schema, view.names)
        columns = [view.column(name).values for name, _ in program.columns]
        return program, columns, view.n

    def evaluate(self, table, *, backend: Optional[str] = None) -> RuleResult:
        program, columns, n = self.bind(table)
        raw_mask, counts, outputs = run_program(program, columns, n, backend)
        derived = {o.name: _derived_values(o, v) for o, v in zip(program.outputs, outputs)}
        return RuleResult(raw_mask, counts, program.rule_texts, derived)

    def filter(self, table, *, backend: Optional[str] = None):
        """The rows of ``table`` where every rule holds, in the same table type, with the
        derived columns appended."""
        if type(table).__module__.startswith("pandas"):
            fused = _filter_pandas_fused(self, table, backend)
            if fused is not None:
                return fused
        result = self.evaluate(table, backend=backend)
        mask = result.mask
        if hasattr(mask, "get"):
            if isinstance(table, dict):   # CuPy columns stay CuPy; derived are NumPy
                host_columns = [k for k, v in table.items()
                                if not hasattr(v, "__cuda_array_interface__")]
                if host_columns:
                    raise TypeError(f"columns {host_columns} are not CuPy arrays while the "
                                    "rules ran on the device: a table's columns must all be "
                                    "NumPy or all CuPy")
                out = {k: v[mask] for k, v in table.items()}
                host = mask.get()
                out.update((k, v[host]) for k, v in result.derived.items())
                return out
            mask = mask.get()
        derived = {k: v[mask] for k, v in result.derived.items()}
        module = type(table).__module__
        if isinstance(table, dict):
            out = {k: np.asarray(v)[mask] for k, v in table.items()}
            out.update(derived)
            return out
        if module.startswith("pandas"):
            out = _filter_pandas(table, mask)
            for k, v in derived.items():
                out[k] = v
            return out
        if module.startswith("pyarrow"):
            import pyarrow as pa
            out = table.filter(pa.array(mask))
            for k, v in derived.items():
                out = out.append_column(k, _arrow_array(v))
            return out
        if module.startswith("polars"):
            import polars as pl
            out = table.filter(pl.Series(mask))
            if derived:
                out = out.with_columns([pl.Series(k, _arrow_array(v)) for k, v in
                                        derived.items()])
            return out
        raise TypeError(f"cannot filter a {type(table).__name__}")

    def report(self, table, *, backend: Optional[str] = None) -> RuleReport:
        result = self.evaluate(table, backend=backend)
        n = len(result.mask)
        return RuleReport(n, result.n_valid, list(result.rules), [int(c) for c in result.counts])


def _native_pandas_columns(table):
    """(positions j of the NumPy-backed plain-dtype columns, their contiguous arrays)."""
    native, arrays = [], []
    for j in range(table.shape[1]):
        dtype = table.dtypes.iloc[j]
        if isinstance(dtype, np.dtype) and dtype.kind in "biufMm" and dtype.itemsize in (1, 2, 4, 8):
            v = table._ixs(j, axis=1)._values
            if isinstance(v, np.ndarray) and v.ndim == 1:
                native.append(j)
                arrays.append(v if v.flags.c_contiguous else np.ascontiguousarray(v))
    return native, arrays


def _range_index(table):
    import pandas as pd
    index = table.index
    return isinstance(index, pd.RangeIndex) and index.step == 1


def _assemble_pandas(table, values, positions):
    """The frame of the kept rows: ``values`` {column position: kept values} for the
    columns gathered natively, ``positions`` the kept rows (+ index.start for a
    RangeIndex); the other columns are taken by pandas."""
    import pandas as pd
    index = table.index
    range_index = _range_index(table)
    if len(values) < table.shape[1]:
        rows = positions - index.start if range_index else positions
        for j in range(table.shape[1]):
            if j not in values:
                values[j] = table._ixs(j, axis=1).take(rows)._values
    if range_index:
        new_index = pd.Index(positions, dtype=np.int64, name=index.name, copy=False)
    else:
        new_index = index.take(positions)
    out = pd.DataFrame({j: values[j] for j in range(table.shape[1])}, index=new_index,
                       copy=False)
    out.columns = table.columns
    return out.__finalize__(table, method="take")


def _filter_pandas(table, mask):
    """The general path (other backends, DataFrame subclasses): pandas' own take."""
    return table.take(np.flatnonzero(mask))


def _filter_pandas_fused(rules, table, backend):
    """Rules.filter of a pandas DataFrame on the cpu backend in one native pass
    (rules_filter in cpp/src/rules.cpp): each block of rows is evaluated and its kept
    rows of every NumPy-backed column, and their row numbers, are compacted while the
    block is in cache. The outputs are allocated for n rows from the buffer pool and
    shrunk to the kept rows afterwards (``_buffers.shrink``): only the pages the kept
    rows fill stay mapped, and the next filter of n rows reuses them without page
    faults. The frame equals
    ``table.take(np.flatnonzero(mask))`` (columns, dtypes, index, attrs) with the
    derived columns appended; None when the cpu backend does not apply (the caller
    takes the general path)."""
    import pandas as pd
    # a DataFrame's rule columns are NumPy arrays: resolve as for them, before binding
    if type(table) is not pd.DataFrame or \
            _backend.resolve(backend, arrays=(np.empty(0),)) != "cpu":
        return None
    program, columns, n = rules.bind(table)
    core = _backend.core_module()
    native, arrays = _native_pandas_columns(table)
    base = table.index.start if _range_index(table) else 0
    outs = [_buffers.empty(n, a.dtype) for a in arrays]
    positions = _buffers.empty(n, np.int64)
    mask = _buffers.empty(n, np.uint8)
    counts = np.zeros(program.n_rules, dtype=np.int64)
    outputs = [np.empty(n, dtype=_OUT_DTYPE[o.storage]) for o in program.outputs]
    kept = core.rules_filter(program.code, program.n_registers, program.const_f64,
                             program.const_i64, columns, _column_types(program), n, mask,
                             counts, outputs, _output_types(program), arrays, outs, positions,
                             int(base), _backend.get_num_threads())
    outs = [_buffers.shrink(o, kept) for o in outs]
    positions = _buffers.shrink(positions, kept)
    out = _assemble_pandas(table, dict(zip(native, outs)), positions)
    if program.outputs:
        keep = mask.view(bool)
        for o, v in zip(program.outputs, outputs):
            out[o.name] = _derived_values(o, v)[keep]
    return out


def _arrow_array(v):
    import pyarrow as pa
    if isinstance(v, np.ma.MaskedArray):
        return pa.array(v.data, mask=np.ma.getmaskarray(v))
    if v.dtype == object:
        return pa.array(list(v))
    return pa.array(v, from_pandas=True)


def _derived_values(output, raw):
    if hasattr(raw, "get"):
        raw = raw.get()
    kind = output.kind
    if kind == "float":
        return raw
    if kind == "bool":
        null = raw == 1
        values = raw == 2
        return np.ma.MaskedArray(values, mask=null) if null.any() else values
    if kind == "int":
        null = raw == INT_NULL
        return np.ma.MaskedArray(raw, mask=null) if null.any() else raw
    if kind == "datetime":
        return raw.view("datetime64[ns]")
    if kind == "duration":
        return raw.view("timedelta64[ns]")
    if kind == "categorical":
        cats = np.empty(len(output.categories) + 1, dtype=object)
        cats[:-1] = output.categories
        cats[-1] = None
        return cats[np.where(raw < 0, len(output.categories), raw)]
    raise AssertionError(kind)


# ---- running a program ---------------------------------------------------------------

_OUT_DTYPE = {"f64": np.float64, "i64": np.int64, "b3": np.uint8}


def run_program(program: Program, columns: list, n: int, backend: Optional[str] = None):
    """(mask, violation counts, derived outputs) of ``program`` over ``columns``."""
    name = _backend.resolve(backend, arrays=tuple(columns))
    if name == "cuda":
        return _run_cuda(program, columns, n)
    counts = np.zeros(program.n_rules, dtype=np.int64)
    if name == "numpy":
        outputs = [np.empty(n, dtype=_OUT_DTYPE[o.storage]) for o in program.outputs]
        mask = np.empty(n, dtype=bool)
        _ref.evaluate(program, columns, n, mask, counts, outputs)
        return mask, counts, outputs
    # pooled: a repeated evaluation writes into pages already mapped
    outputs = [_buffers.empty(n, _OUT_DTYPE[o.storage]) for o in program.outputs]
    mask = _buffers.empty(n, np.uint8)
    core = _backend.core_module()
    core.rules_evaluate(program.code, program.n_registers, program.const_f64, program.const_i64,
                        columns, _column_types(program), n, mask, counts, outputs,
                        _output_types(program), _backend.get_num_threads())
    return mask.view(bool), counts, outputs


def _column_types(program):
    return np.array([t for _, t in program.columns], dtype=np.int32)


def _output_types(program):
    return np.array([{"f64": 0, "i64": 1, "b3": 3}[o.storage] for o in program.outputs],
                    dtype=np.int32)


def _run_cuda(program, columns, n):
    import cupy
    cuda = _backend.cuda_module()
    if program.n_registers > cuda.rules_max_registers():
        raise ValueError(f"this rule set needs {program.n_registers} registers; the CUDA kernel "
                         f"has {cuda.rules_max_registers()}: use backend='cpu'")
    code = cupy.asarray(program.code)
    cf = cupy.asarray(program.const_f64 if program.const_f64.size else np.zeros(1))
    ci = cupy.asarray(program.const_i64 if program.const_i64.size else np.zeros(1, np.int64))
    col_ptrs = cupy.asarray([c.data.ptr for c in columns] or [0], dtype=cupy.uint64)
    outputs = [cupy.empty(n, dtype=_OUT_DTYPE[o.storage]) for o in program.outputs]
    out_ptrs = cupy.asarray([o.data.ptr for o in outputs] or [0], dtype=cupy.uint64)
    mask = cupy.empty(n, dtype=cupy.uint8)
    counts = cupy.zeros(max(program.n_rules, 1), dtype=cupy.int64)
    cuda.rules_evaluate(code.data.ptr, int(program.code.shape[0]), cf.data.ptr, ci.data.ptr,
                        col_ptrs.data.ptr, out_ptrs.data.ptr, n, mask.data.ptr, counts.data.ptr,
                        cupy.cuda.get_current_stream().ptr)
    return mask.view(cupy.bool_), counts[:program.n_rules].get(), outputs
