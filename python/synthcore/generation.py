"""Rule-based table generation with no real data (docs/generate.md).

    spec = synthcore.load_spec("customers.yaml")           # or a dict, or JSON text
    df = synthcore.generate(spec, 1_000_000, seed=7)         # pandas | arrow | polars | numpy
    tables = synthcore.generate_tables(spec, rows={"customers": 1000, "transactions": 50_000})

A spec names tables; a table has columns, each a distribution (uniform, normal,
lognormal, integer, boolean, categorical with weights, Zipf), a sequence, a date or
timestamp range, a foreign key to a parent table, or an expression in the rule
language (docs/rules.md), with ``when <cond> then <value> ... else <value>`` for
conditional values. Every random cell comes from the counter-based Philox stream
keyed by (seed, stream of (table, column), row index), so rows ``a..b`` are the same
whether generated in one call or in windows (``row_offset``), on any backend.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
import string
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import _backend
from . import random as _random
from ._rules_compile import (INT_NULL, Node, RuleError, _parse_datetime, parse, tokenize)
from ._seeding import philox_key
from ._table import OUTPUTS, OutputColumn, build_output

__all__ = ["SpecError", "TableSpec", "Spec", "load_spec", "generate", "generate_tables"]

MAX_ZIPF_SUPPORT = 50_000_000

# type -> (required fields, optional fields); "nulls" and "hidden" are allowed on every column
COLUMN_TYPES = {
    "uniform": (("low", "high"), ("decimals",)),
    "normal": (("mean", "std"), ("decimals",)),
    "lognormal": (("mean", "sigma"), ("decimals",)),
    "integer": (("low", "high"), ()),
    "boolean": ((), ("p",)),
    "categorical": (("values",), ("weights",)),
    "zipf": (("s", "n"), ("values",)),
    "sequence": ((), ("start", "step", "format")),
    "date": (("start", "end"), ()),
    "timestamp": (("start", "end"), ("resolution",)),
    "foreign_key": (("table",), ("column", "distribution", "s")),
    "expression": (("expr",), ()),
}
COMMON_FIELDS = ("type", "nulls", "hidden")
RESOLUTIONS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
               "h": 3600 * 10**9, "D": 86400 * 10**9}
DAY_NS = 86400 * 10**9
TABLE_FIELDS = ("columns", "rows", "rules")


class SpecError(ValueError):
    """A table spec is invalid. ``table``, ``column``, ``field`` say where."""

    def __init__(self, message: str, table: Optional[str] = None,
                 column: Optional[str] = None, field: Optional[str] = None):
        self.table, self.column, self.field = table, column, field
        where = []
        if table is not None:
            where.append(f"table {table!r}")
        if column is not None:
            where.append(f"column {column!r}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


# ---- checks of field values ---------------------------------------------------------

def _real(value, err, name, *, positive=False, nonneg=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise err(f"must be a number, got {value!r}", name)
    value = float(value)
    if not math.isfinite(value):
        raise err(f"must be finite, got {value}", name)
    if positive and not value > 0:
        raise err(f"must be > 0, got {value}", name)
    if nonneg and value < 0:
        raise err(f"must be >= 0, got {value}", name)
    return value


def _int(value, err, name, *, low=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise err(f"must be an integer, got {value!r}", name)
    value = int(value)
    if not -(2**63) < value < 2**63:
        raise err(f"must fit in int64, got {value}", name)
    if low is not None and value < low:
        raise err(f"must be >= {low}, got {value}", name)
    return value


def _instant(value, err, name, resolution_ns=1) -> int:
    """A date / timestamp field (ISO text, datetime.date(time)) as int64 ns."""
    import datetime as dt
    if isinstance(value, (dt.date, dt.datetime, np.datetime64)):
        value = str(np.datetime64(value, "ns"))
    if not isinstance(value, str):
        raise err(f"must be an ISO date or datetime like '2024-01-31', got {value!r}", name)
    try:
        ns = _parse_datetime(value, 0, name)
    except RuleError:
        raise err(f"{value!r} is not an ISO date or datetime like '2024-01-31' or "
                  "'2024-01-31 12:30:00'", name) from None
    return ns


def _stream(table: str, column: str, purpose: str) -> int:
    """A 64-bit Philox stream per (table, column, purpose): independent of column order."""
    digest = hashlib.blake2b(f"{table}\x00{column}\x00{purpose}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little")


# ---- sequence formats -----------------------------------------------------------------

_FORMAT_SPEC = re.compile(r"^(0?)(\d*)d?$")


def _parse_format(fmt, err):
    """'C{:06d}' -> (prefix, zero_pad, width, suffix): exactly one integer field."""
    if not isinstance(fmt, str):
        raise err(f"must be a string like 'C{{:06d}}', got {fmt!r}", "format")
    try:
        parts = list(string.Formatter().parse(fmt))
    except ValueError as e:
        raise err(f"{fmt!r} is not a format string: {e}", "format") from None
    fields = [p for p in parts if p[1] is not None]
    if len(fields) != 1 or fields[0][1] != "" or fields[0][3]:
        raise err(f"{fmt!r} must contain exactly one field '{{}}' or '{{:0Nd}}'", "format")
    m = _FORMAT_SPEC.match(fields[0][2] or "")
    if m is None:
        raise err(f"{fmt!r}: the field must be '{{}}', '{{:d}}', '{{:Nd}}' or '{{:0Nd}}'",
                  "format")
    index = parts.index(fields[0])
    prefix = "".join(p[0] for p in parts[:index + 1])
    suffix = "".join(p[0] for p in parts[index + 1:])
    return prefix, m.group(1) == "0", int(m.group(2) or 0), suffix


def _format_ints(values: np.ndarray, fmt) -> np.ndarray:
    prefix, zero, width, suffix = fmt
    text = values.astype(np.int64).astype(str)
    if width and len(text):
        text = np.char.zfill(text, width) if zero else np.char.rjust(text, width)
    if prefix:
        text = np.char.add(prefix, text)
    if suffix:
        text = np.char.add(text, suffix)
    return text.astype(object)


# ---- 'when ... then ... else' --------------------------------------------------------

def _rewrite_when(text: str):
    """``when c1 then v1 when c2 then v2 else v3`` as the rule language's
    ``if c1 then v1 else if c2 then v2 else v3`` (``else null`` when no else is
    given), and a map from positions in the rewritten text back to ``text``."""
    tokens = tokenize(text)
    if not tokens or tokens[0].kind != "ident" or tokens[0].value.lower() != "when":
        return text, [(0, 0)]
    depth, whens, elses = 0, [], 0
    for t in tokens:
        if t.kind == "op" and t.value == "(":
            depth += 1
        elif t.kind == "op" and t.value == ")":
            depth -= 1
        elif depth == 0 and t.kind == "ident" and t.value.lower() == "when":
            whens.append(t.pos)
        elif depth == 0 and t.kind == "kw" and t.value == "else":
            elses += 1
    out, segments, last = [], [], 0
    for i, pos in enumerate(whens):
        out.append(text[last:pos])
        segments.append((sum(map(len, out)), pos))
        out.append("if  " if i == 0 else "else if")
        segments.append((sum(map(len, out)), pos + 4))
        last = pos + 4
    out.append(text[last:])
    if elses == 0:
        out.append(" else null")
    return "".join(out), segments


def _map_position(pos, segments):
    if pos is None:
        return None
    best = (0, 0)
    for out_start, orig_start in segments:
        if out_start <= pos:
            best = (out_start, orig_start)
    return best[1] + (pos - best[0])


# ---- columns --------------------------------------------------------------------

@dataclass
class ColumnSpec:
    name: str
    type: str
    params: dict
    nulls: float = 0.0
    hidden: bool = False
    depends: tuple = ()               # columns an expression reads
    rule_text: Optional[str] = None   # expression: 'name := <rewritten expr>'
    segments: list = field(default_factory=list)
    offset: int = 0                   # where the expression starts in rule_text
    source: dict = field(default_factory=dict)


def _column_names(node: Node, out: list):
    stack = [node]
    while stack:
        n = stack.pop()
        if n.kind == "col" and n.value not in out:
            out.append(n.value)
        stack.extend(n.args)


def _parse_column(table: str, name, raw) -> ColumnSpec:
    if not isinstance(name, str) or not name:
        raise SpecError(f"column names must be non-empty strings, got {name!r}", table)

    def err(message, fld=None):
        return SpecError(message, table, name, fld)

    if isinstance(raw, str):
        raw = {"type": "expression", "expr": raw}
    if not isinstance(raw, dict):
        raise err(f"a column is a mapping with a 'type' (or an expression string), got "
                  f"{type(raw).__name__}")
    kind = raw.get("type")
    if kind is None:
        raise err(f"missing; one of {', '.join(COLUMN_TYPES)}", "type")
    if kind not in COLUMN_TYPES:
        raise err(f"unknown distribution {kind!r}; known: {', '.join(COLUMN_TYPES)}", "type")
    required, optional = COLUMN_TYPES[kind]
    for key in raw:
        if key not in required + optional + COMMON_FIELDS:
            allowed = ", ".join(required + optional + COMMON_FIELDS)
            raise err(f"unknown field for a {kind} column; allowed: {allowed}", str(key))
    for key in required:
        if key not in raw:
            raise err(f"missing (a {kind} column needs {', '.join(required)})", key)
    nulls = _real(raw.get("nulls", 0.0), err, "nulls")
    if not 0 <= nulls < 1:
        raise err(f"a null rate must be in [0, 1), got {nulls}", "nulls")
    hidden = raw.get("hidden", False)
    if not isinstance(hidden, bool):
        raise err(f"must be true or false, got {hidden!r}", "hidden")
    p: dict = {}
    col = ColumnSpec(name, kind, p, nulls, hidden, source=dict(raw))

    if kind in ("uniform", "normal", "lognormal"):
        a, b = {"uniform": ("low", "high"), "normal": ("mean", "std"),
                "lognormal": ("mean", "sigma")}[kind]
        p[a] = _real(raw[a], err, a)
        p[b] = _real(raw[b], err, b, nonneg=True)
        if kind == "uniform" and not p["low"] <= p["high"]:
            raise err(f"low must be <= high, got low={p['low']}, high={p['high']}", "high")
        if "decimals" in raw:
            p["decimals"] = _int(raw["decimals"], err, "decimals", low=0)
    elif kind == "integer":
        p["low"] = _int(raw["low"], err, "low")
        p["high"] = _int(raw["high"], err, "high")
        if p["high"] < p["low"]:
            raise err(f"high must be >= low (the range is inclusive), got low={p['low']}, "
                      f"high={p['high']}", "high")
    elif kind == "boolean":
        p["p"] = _real(raw.get("p", 0.5), err, "p")
        if not 0 <= p["p"] <= 1:
            raise err(f"a probability must be in [0, 1], got {p['p']}", "p")
    elif kind == "categorical":
        values = raw["values"]
        if not isinstance(values, (list, tuple)) or not values:
            raise err("must be a non-empty list", "values")
        if len(set(values)) != len(values):
            raise err("values must be distinct", "values")
        if not all(isinstance(v, str) for v in values) and \
                not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
            raise err("values must be all strings or all numbers", "values")
        p["values"] = list(values)
        weights = raw.get("weights")
        if weights is None:
            weights = [1.0 / len(values)] * len(values)
        if not isinstance(weights, (list, tuple)) or len(weights) != len(values):
            raise err(f"must be a list of {len(values)} numbers, one per value", "weights")
        w = np.array([_real(x, err, "weights") for x in weights])
        if (w < 0).any():
            raise err(f"weights must not be negative, got {list(weights)}", "weights")
        if abs(w.sum() - 1.0) > 1e-6:
            raise err(f"weights must sum to 1, they sum to {w.sum():.9g}", "weights")
        p["cdf"] = _cdf(w)
    elif kind == "zipf":
        p["s"] = _real(raw["s"], err, "s", positive=True)
        p["n"] = _int(raw["n"], err, "n", low=1)
        if p["n"] > MAX_ZIPF_SUPPORT:
            raise err(f"the support is at most {MAX_ZIPF_SUPPORT:,} values, got {p['n']:,}",
                      "n")
        values = raw.get("values")
        if values is not None:
            if not isinstance(values, (list, tuple)) or len(values) != p["n"] or \
                    len(set(values)) != len(values):
                raise err(f"must be a list of {p['n']} distinct values (rank 1 first)", "values")
            p["values"] = list(values)
        p["cdf"] = None  # built on first use (can be large)
    elif kind == "sequence":
        p["start"] = _int(raw.get("start", 1), err, "start")
        p["step"] = _int(raw.get("step", 1), err, "step")
        if p["step"] == 0:
            raise err("must not be 0", "step")
        p["format"] = _parse_format(raw["format"], err) if "format" in raw else None
        if nulls:
            raise err("a sequence is a key: it cannot have nulls", "nulls")
    elif kind in ("date", "timestamp"):
        res = raw.get("resolution", "D" if kind == "date" else "s")
        if res not in RESOLUTIONS:
            raise err(f"unknown resolution {res!r}; one of {', '.join(RESOLUTIONS)}",
                      "resolution")
        p["unit"] = RESOLUTIONS[res]
        p["start"] = _instant(raw["start"], err, "start")
        p["end"] = _instant(raw["end"], err, "end")
        if p["end"] < p["start"]:
            raise err(f"end {raw['end']!r} is before start {raw['start']!r}", "end")
        if kind == "date" and (p["start"] % DAY_NS or p["end"] % DAY_NS):
            raise err("a date range takes dates without a time of day", "start")
    elif kind == "foreign_key":
        if not isinstance(raw["table"], str):
            raise err(f"must be a table name, got {raw['table']!r}", "table")
        p["table"] = raw["table"]
        p["column"] = raw.get("column")
        dist = raw.get("distribution", "uniform")
        if dist not in ("uniform", "zipf"):
            raise err(f"unknown distribution {dist!r}; one of uniform, zipf", "distribution")
        p["distribution"] = dist
        if dist == "zipf":
            p["s"] = _real(raw.get("s", 1.0), err, "s", positive=True)
        elif "s" in raw:
            raise err("only a zipf foreign key takes 's'", "s")
    elif kind == "expression":
        expr = raw["expr"]
        if not isinstance(expr, str):
            raise err(f"must be a string, got {type(expr).__name__}", "expr")
        body, segments = _rewrite_when(expr)
        head = f"{_quote(name)} := "
        col.rule_text = head + body
        col.offset = len(head)
        col.segments = segments
        try:
            parsed = parse(col.rule_text)
        except RuleError as e:
            raise _expr_error(col, e) from None
        deps: list = []
        _column_names(parsed.expr, deps)
        col.depends = tuple(deps)
    return col


def _quote(name: str) -> str:
    return "`" + name + "`" if "`" not in name else '"' + name.replace('"', '""') + '"'


def _expr_error(col: ColumnSpec, e: RuleError, table: Optional[str] = None) -> SpecError:
    pos = e.position
    text = col.source.get("expr", "")
    if pos is not None:
        pos = _map_position(max(pos - col.offset, 0), col.segments)
        pos = min(pos, len(text))
    caret = f"\n    {text}\n    {' ' * pos}^" if pos is not None and len(text) <= 200 else ""
    where = f" at position {pos}" if pos is not None else ""
    return SpecError(f"{e.message}{where}{caret}", table, col.name, "expr")


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return cdf


def _zipf_cdf(s: float, n: int) -> np.ndarray:
    k = np.arange(1, n + 1, dtype=np.float64)
    w = k ** -s
    # sum smallest first for accuracy, then normalise
    total = w[::-1].sum()
    return _cdf(w / total)


# ---- tables -----------------------------------------------------------------------

class TableSpec:
    """One table: ``columns`` {name: column spec}, optional ``rows`` and ``rules``."""

    def __init__(self, columns: dict, *, name: str = "table", rows: Optional[int] = None,
                 rules=None):
        if not isinstance(name, str) or not name:
            raise SpecError(f"a table name must be a non-empty string, got {name!r}")
        self.name = name
        if not isinstance(columns, dict) or not columns:
            raise SpecError("'columns' must be a non-empty mapping of column name to spec",
                            name, field="columns")
        self.columns = {str(k): _parse_column(name, k, v) for k, v in columns.items()}
        self.rows = None if rows is None else _int(
            rows, lambda m, f: SpecError(m, name, field=f), "rows", low=0)
        rules = [] if rules is None else ([rules] if isinstance(rules, str) else list(rules))
        for r in rules:
            if not isinstance(r, str):
                raise SpecError(f"rules must be strings, got {r!r}", name, field="rules")
        self.rules = rules
        self.order = self._dependency_order()
        self._programs: dict = {}

    @classmethod
    def from_dict(cls, data: dict, name: str = "table") -> "TableSpec":
        if not isinstance(data, dict):
            raise SpecError(f"a table spec is a mapping, got {type(data).__name__}", name)
        for key in data:
            if key not in TABLE_FIELDS:
                raise SpecError(f"unknown field; a table has {', '.join(TABLE_FIELDS)}", name,
                                field=str(key))
        if "columns" not in data:
            raise SpecError("missing", name, field="columns")
        return cls(data["columns"], name=name, rows=data.get("rows"), rules=data.get("rules"))

    def to_dict(self) -> dict:
        out: dict = {"columns": {n: dict(c.source) for n, c in self.columns.items()}}
        if self.rows is not None:
            out["rows"] = self.rows
        if self.rules:
            out["rules"] = list(self.rules)
        return out

    def __repr__(self):
        return f"TableSpec({self.name!r}, columns={list(self.columns)})"

    def _dependency_order(self) -> list:
        for c in self.columns.values():
            for d in c.depends:
                if d not in self.columns:
                    raise SpecError(f"unknown column {d!r} in the expression; the table has "
                                    f"{', '.join(map(repr, self.columns))}", self.name, c.name,
                                    "expr")
                if d == c.name:
                    raise SpecError("the expression refers to its own column", self.name,
                                    c.name, "expr")
        order, state = [], {}

        for start in self.columns:
            if state.get(start):
                continue
            stack = [(start, iter(self.columns[start].depends))]
            state[start] = 1
            path = [start]
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    path.pop()
                    state[node] = 2
                    order.append(node)
                elif state.get(nxt) == 1:
                    cycle = path[path.index(nxt):] + [nxt]
                    raise SpecError("expressions form a cycle: " + " -> ".join(cycle),
                                    self.name, cycle[0], "expr")
                elif not state.get(nxt):
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(self.columns[nxt].depends)))
        return order

    def rule_set(self):
        from .rules import Rules
        return Rules(self.rules)

    def check(self, table, *, backend: Optional[str] = None):
        """The rules report of ``table`` against this spec's ``rules``."""
        return self.rule_set().report(table, backend=backend)


class Spec:
    """Several tables; foreign keys refer to tables of the same spec."""

    def __init__(self, tables: dict, *, seed=None):
        if not isinstance(tables, dict) or not tables:
            raise SpecError("'tables' must be a non-empty mapping of table name to table spec",
                            field="tables")
        self.tables = {}
        for name, t in tables.items():
            if not isinstance(name, str) or not name:
                raise SpecError(f"table names must be non-empty strings, got {name!r}",
                                field="tables")
            self.tables[name] = t if isinstance(t, TableSpec) else TableSpec.from_dict(t, name)
            self.tables[name].name = name
        self.seed = seed
        self._check_keys()
        self.order = self._table_order()
        for name in self.order:   # types of every expression, checked now (0 rows)
            _generate_columns(self, self.tables[name], 0, philox_key(0), 0, "numpy", {})

    def _check_keys(self):
        for t in self.tables.values():
            for c in t.columns.values():
                if c.type != "foreign_key":
                    continue
                parent = self.tables.get(c.params["table"])
                if parent is None:
                    raise SpecError(f"missing parent table {c.params['table']!r}; the spec has "
                                    f"{', '.join(map(repr, self.tables))}", t.name, c.name,
                                    "table")
                key = c.params["column"]
                if key is not None:
                    pc = parent.columns.get(key)
                    if pc is None:
                        raise SpecError(f"parent table {parent.name!r} has no column {key!r}",
                                        t.name, c.name, "column")
                    if pc.type != "sequence":
                        raise SpecError(f"parent column {parent.name}.{key} is a {pc.type}; a "
                                        "foreign key refers to a sequence column (or, with no "
                                        "column, to the parent row index)", t.name, c.name,
                                        "column")

    def _table_order(self) -> list:
        deps = {n: [c.params["table"] for c in t.columns.values() if c.type == "foreign_key"]
                for n, t in self.tables.items()}
        order, state = [], {}

        def visit(n, path):
            if state.get(n) == 2:
                return
            if state.get(n) == 1:
                raise SpecError("foreign keys form a cycle: " + " -> ".join(path + [n]), n)
            state[n] = 1
            for d in deps[n]:
                visit(d, path + [n])
            state[n] = 2
            order.append(n)

        for n in self.tables:
            visit(n, [])
        return order

    @classmethod
    def from_dict(cls, data) -> "Spec":
        if not isinstance(data, dict):
            raise SpecError(f"a spec is a mapping, got {type(data).__name__}")
        if "tables" in data:
            extra = set(data) - {"tables", "seed"}
            if extra:
                raise SpecError("unknown field; a spec has 'tables' and 'seed'",
                                field=sorted(map(str, extra))[0])
            return cls(data["tables"], seed=data.get("seed"))
        if "columns" in data:
            rest = {k: v for k, v in data.items() if k not in ("name", "seed")}
            name = data.get("name", "table")
            return cls({name: TableSpec.from_dict(rest, name)}, seed=data.get("seed"))
        raise SpecError("a spec has 'tables' (several tables) or 'columns' (one table)")

    def to_dict(self) -> dict:
        out: dict = {"tables": {n: t.to_dict() for n, t in self.tables.items()}}
        if self.seed is not None:
            out["seed"] = self.seed
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_yaml(self) -> str:
        import yaml
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def __repr__(self):
        return f"Spec(tables={list(self.tables)})"


def load_spec(source) -> Spec:
    """A ``Spec`` from a dict, a ``TableSpec``, a path to a .yaml/.yml/.json file, or
    YAML / JSON text. YAML is read with ``yaml.safe_load`` (no tags, no code)."""
    if isinstance(source, Spec):
        return source
    if isinstance(source, TableSpec):
        return Spec({source.name: source})
    if isinstance(source, dict):
        return Spec.from_dict(source)
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source
                                           and source.rstrip().endswith(
                                               (".yaml", ".yml", ".json"))):
        path = os.fspath(source)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return _load_text(text, path.endswith(".json"), path)
    if isinstance(source, str):
        return _load_text(source, source.lstrip().startswith("{"), "spec text")
    raise TypeError(f"a spec is a dict, a Spec, a TableSpec, a path or YAML/JSON text, got "
                    f"{type(source).__name__}")


def _load_text(text: str, is_json: bool, where: str) -> Spec:
    if is_json:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"{where}: invalid JSON: {e}") from None
    else:
        import yaml
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SpecError(f"{where}: invalid YAML: {e}") from None
    return Spec.from_dict(data)


# ---- generation ----------------------------------------------------------------------

def _uniform(key, stream, offset, n, backend):
    out = _random.uniform(n, seed=key, stream=stream, offset=offset, backend=backend)
    return out.get() if hasattr(out, "get") else out


def _normal(key, stream, offset, n, backend, loc, scale):
    out = _random.normal(n, loc=loc, scale=scale, seed=key, stream=stream, offset=offset,
                         backend=backend)
    return out.get() if hasattr(out, "get") else out


def _integers(key, stream, offset, n, backend, low, high):
    out = _random.integers(low, high, n, endpoint=True, dtype=np.int64, seed=key, stream=stream,
                           offset=offset, backend=backend)
    return out.get() if hasattr(out, "get") else out


def _zipf_ranks(col_params, key, stream, offset, n, backend):
    if col_params.get("cdf") is None:
        col_params["cdf"] = _zipf_cdf(col_params["s"], col_params["n"])
    return _from_cdf(col_params["cdf"], _uniform(key, stream, offset, n, backend))


def _from_cdf(cdf, u):
    """Index k with cdf[k-1] <= u < cdf[k]: the exact inverse CDF on u's 2**-53 grid."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def _sequence_values(p, rows: np.ndarray):
    values = np.int64(p["start"]) + np.int64(p["step"]) * rows.astype(np.int64)
    if p["format"] is None:
        return OutputColumn("", "int", values, None, "int64")
    text = _format_ints(values, p["format"])
    return OutputColumn("", "categorical", np.arange(len(text), dtype=np.int32), None, "object",
                        categories=text)


def _category_column(values: list, codes: np.ndarray, dtype="category"):
    if all(isinstance(v, str) for v in values):
        cats = np.empty(len(values), dtype=object)
        cats[:] = values
        return OutputColumn("", "categorical", codes.astype(np.int32), None, dtype,
                            categories=cats)
    arr = np.asarray(values)[codes]
    kind = "int" if arr.dtype.kind in "iu" else "float"
    return OutputColumn("", kind, arr.astype(np.int64 if kind == "int" else np.float64), None,
                        str(np.dtype(np.int64 if kind == "int" else np.float64)))


def _generate_columns(spec: Spec, table: TableSpec, n: int, key, row_offset: int, backend: str,
                      rows: dict) -> dict:
    """{name: OutputColumn} of rows ``row_offset .. row_offset + n - 1``."""
    out: dict = {}
    for name in table.order:
        c = table.columns[name]
        p = c.params
        stream = _stream(table.name, name, "values")
        if c.type == "uniform":
            v = _uniform(key, stream, row_offset, n, backend)
            col = OutputColumn(name, "float", p["low"] + (p["high"] - p["low"]) * v, None,
                               "float64")
        elif c.type == "normal":
            col = OutputColumn(name, "float", _normal(key, stream, row_offset, n, backend,
                                                      p["mean"], p["std"]), None, "float64")
        elif c.type == "lognormal":
            z = _normal(key, stream, row_offset, n, backend, p["mean"], p["sigma"])
            col = OutputColumn(name, "float", np.exp(z), None, "float64")
        elif c.type == "integer":
            col = OutputColumn(name, "int", _integers(key, stream, row_offset, n, backend,
                                                      p["low"], p["high"]), None, "int64")
        elif c.type == "boolean":
            col = OutputColumn(name, "bool", _uniform(key, stream, row_offset, n, backend) < p["p"],
                               None, "bool")
        elif c.type == "categorical":
            codes = _from_cdf(p["cdf"], _uniform(key, stream, row_offset, n, backend))
            col = _category_column(p["values"], codes)
        elif c.type == "zipf":
            ranks = _zipf_ranks(p, key, stream, row_offset, n, backend)
            if "values" in p:
                col = _category_column(p["values"], ranks)
            else:
                col = OutputColumn(name, "int", ranks.astype(np.int64) + 1, None, "int64")
        elif c.type == "sequence":
            col = _sequence_values(p, np.arange(row_offset, row_offset + n, dtype=np.int64))
        elif c.type in ("date", "timestamp"):
            unit = p["unit"]
            lo, hi = -(-p["start"] // unit), p["end"] // unit
            ticks = _integers(key, stream, row_offset, n, backend, lo, hi)
            col = OutputColumn(name, "datetime", ticks * np.int64(unit), None, "datetime64[ns]")
        elif c.type == "foreign_key":
            col = _foreign_key(spec, table, c, key, stream, row_offset, n, backend, rows)
        elif c.type == "expression":
            col = _expression(table, c, out, n, backend)
        else:  # pragma: no cover - COLUMN_TYPES is checked at parse time
            raise AssertionError(c.type)
        col.name = name
        if "decimals" in p:
            col.values = np.round(col.values, p["decimals"])
        if c.nulls:
            _apply_nulls(col, _uniform(key, _stream(table.name, name, "nulls"), row_offset, n,
                                       backend) < c.nulls)
        out[name] = col
    return out


def _apply_nulls(col: OutputColumn, null: np.ndarray):
    if col.null is not None:
        null = null | col.null
    if col.kind == "float":
        col.values = np.where(null, np.nan, col.values)
    elif col.kind == "categorical":
        col.values = np.where(null, np.int32(-1), col.values).astype(np.int32)
    elif col.kind == "datetime":
        col.values = np.where(null, np.int64(INT_NULL), col.values)
    col.null = null if null.any() else None


def _parent_rows(spec: Spec, parent: str, rows: dict) -> int:
    n = rows.get(parent)
    if n is None:
        n = spec.tables[parent].rows
    if n is None:
        raise SpecError(f"the number of rows of parent table {parent!r} is needed: give "
                        f"rows={{{parent!r}: N}} or 'rows' in its spec")
    if n < 1:
        raise SpecError(f"parent table {parent!r} has {n} rows; a foreign key needs at least 1")
    return n


def _foreign_key(spec, table, c, key, stream, row_offset, n, backend, rows):
    p = c.params
    parent = spec.tables[p["table"]]
    m = _parent_rows(spec, parent.name, rows) if n else max(rows.get(parent.name) or 1, 1)
    if p["distribution"] == "zipf":
        zp = p.setdefault("_zipf", {})
        if zp.get("n") != m:
            zp.clear()
            zp.update(s=p["s"], n=m, cdf=None)
        idx = _zipf_ranks(zp, key, stream, row_offset, n, backend)
    else:
        idx = _integers(key, stream, row_offset, n, backend, 0, m - 1)
    if p["column"] is None:
        return OutputColumn(c.name, "int", idx.astype(np.int64), None, "int64")
    target = parent.columns[p["column"]].params
    if target["format"] is None:
        return _sequence_values(target, idx)
    # formatted keys: a dictionary of the parents referred to, codes into it
    used, codes = np.unique(idx, return_inverse=True)
    keys = _sequence_values(target, used)
    return OutputColumn(c.name, "categorical", codes.astype(np.int32).reshape(-1), None,
                        "object", categories=keys.categories)


def _expression(table: TableSpec, c: ColumnSpec, done: dict, n: int, backend: str):
    from .rules import Rules, _TableView, run_program
    rules = table._programs.get(c.name)
    if rules is None:
        rules = table._programs[c.name] = Rules([c.rule_text])
    view = _TableView([done[d] for d in c.depends])
    view.n = n
    try:
        program, columns, _ = rules.bind(view)
    except RuleError as e:
        raise _expr_error(c, e, table.name) from None
    out = program.outputs[0]
    if out.kind == "duration":
        raise SpecError("the expression is a duration; divide by a unit (like / 1 day) for a "
                        "number", table.name, c.name, "expr")
    _, _, (raw,) = run_program(program, columns, n, "numpy" if backend == "numpy" else "cpu")
    if out.kind == "float":
        return OutputColumn(c.name, "float", raw, None, "float64")
    if out.kind == "bool":
        null = raw == 1
        return OutputColumn(c.name, "bool", raw == 2, null if null.any() else None, "bool")
    if out.kind in ("int", "datetime"):
        null = raw == INT_NULL
        return OutputColumn(c.name, out.kind, raw, null if null.any() else None,
                            "int64" if out.kind == "int" else "datetime64[ns]")
    if out.kind == "categorical":
        cats = np.empty(len(out.categories), dtype=object)
        cats[:] = out.categories
        codes = raw.astype(np.int32)
        null = codes < 0
        return OutputColumn(c.name, "categorical", codes, null if null.any() else None,
                            "category", categories=cats)
    raise AssertionError(out.kind)


def _resolve_backend(backend):
    name = _backend.resolve(backend)
    return name


def _check_output(output):
    if output not in OUTPUTS or output == "cupy":
        raise ValueError(f"output must be one of pandas, arrow, polars, numpy, got {output!r}")


def _pick_table(spec: Spec, table: Optional[str]) -> TableSpec:
    if table is None:
        if len(spec.tables) != 1:
            raise ValueError(f"the spec has tables {', '.join(map(repr, spec.tables))}: say "
                             "which with table=... (or use generate_tables)")
        return next(iter(spec.tables.values()))
    if table not in spec.tables:
        raise ValueError(f"table {table!r} is not in the spec; it has "
                         f"{', '.join(map(repr, spec.tables))}")
    return spec.tables[table]


def _rows_arg(rows) -> dict:
    if rows is None:
        return {}
    if not isinstance(rows, dict):
        raise TypeError(f"rows must be a dict {{table: n}}, got {type(rows).__name__}")
    for k, v in rows.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
            raise ValueError(f"rows[{k!r}] must be an integer >= 0, got {v!r}")
    return dict(rows)


def generate(spec, n: Optional[int] = None, *, table: Optional[str] = None, seed=None,
             row_offset: int = 0, rows: Optional[dict] = None,
             backend: Optional[str] = None, output: str = "pandas"):
    """Rows ``row_offset .. row_offset + n - 1`` of one table of ``spec``.

    ``spec``: a ``Spec``, ``TableSpec``, dict, path or YAML/JSON text. ``n`` defaults to
    the table's ``rows``. ``rows`` gives the row counts of parent tables (foreign keys
    draw parent row indices in ``[0, rows[parent])``). ``seed`` defaults to the spec's.
    The same spec and seed give the same rows whatever the windows, on every backend.
    """
    spec = load_spec(spec)
    t = _pick_table(spec, table)
    rows = _rows_arg(rows)
    if n is None:
        n = rows.get(t.name, t.rows)
        if n is None:
            raise ValueError(f"give the number of rows: n=... (table {t.name!r} has no 'rows')")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if isinstance(row_offset, bool) or not isinstance(row_offset, numbers.Integral) or \
            not 0 <= row_offset < 2**62:
        raise ValueError(f"row_offset must be an integer in [0, 2**62), got {row_offset!r}")
    _check_output(output)
    name = _resolve_backend(backend)
    key = philox_key(spec.seed if seed is None else seed)
    cols = _generate_columns(spec, t, int(n), key, int(row_offset), name, rows)
    return build_output([cols[c] for c in t.columns if not t.columns[c].hidden], output)


def generate_tables(spec, rows: Optional[dict] = None, *, seed=None,
                    backend: Optional[str] = None, output: str = "pandas") -> dict:
    """Every table of ``spec`` ({name: table}, parents first), with ``rows[name]`` rows
    (default: each table's ``rows``)."""
    spec = load_spec(spec)
    rows = _rows_arg(rows)
    for k in rows:
        if k not in spec.tables:
            raise ValueError(f"rows names table {k!r}, which is not in the spec")
    counts = {}
    for name in spec.order:
        n = rows.get(name, spec.tables[name].rows)
        if n is None:
            raise ValueError(f"give the number of rows of table {name!r}: rows={{{name!r}: N}} "
                             "or 'rows' in its spec")
        counts[name] = n
    key = philox_key(spec.seed if seed is None else seed)
    _check_output(output)
    name_b = _resolve_backend(backend)
    out = {}
    for name in spec.order:
        t = spec.tables[name]
        cols = _generate_columns(spec, t, counts[name], key, 0, name_b, counts)
        out[name] = build_output([cols[c] for c in t.columns if not t.columns[c].hidden],
                                 output)
    return out
