"""Rule-based table generation with no real data (docs/generate.md).

    spec = synthcore.load_spec("customers.yaml")           # or a dict, or JSON text
    df = synthcore.generate(spec, 1_000_000, seed=7)         # pandas | arrow | polars | numpy
    tables = synthcore.generate_tables(spec, rows={"customers": 1000, "transactions": 50_000})

A spec names tables; a table has columns, each a distribution (uniform, normal,
lognormal, integer, boolean, categorical with weights, Zipf), a sequence or uuid, a
date or timestamp range, a foreign key to a parent table (or to the table itself), a
copy of the parent row's attribute, or an expression in the rule language
(docs/rules.md), with ``when <cond> then <value> ... else <value>`` for conditional
values and ``key.column`` for the parent row's attributes. Every random cell comes from
the counter-based Philox stream keyed by (seed, stream of (table, column), row index),
so rows ``a..b`` are the same whether generated in one call or in windows
(``row_offset``), on any backend, and a parent's columns can be regenerated at exactly
the rows that children's keys point to (``_parent_columns``) without the parent table.
A table's ``rules`` are checked (``TableSpec.check``); its ``constraints`` are enforced
where rows are generated (``_generate_columns``): a row that breaks one is redrawn from
attempt-numbered streams at the same row index, so it stays a function of the row.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
import re
import string
import threading
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import _backend
from . import random as _random
from ._reference import philox as _ref_philox
from ._reference import random as _ref_random
from ._rules_compile import (INT_NULL, Node, RuleError, _parse_datetime, parse, tokenize)
from ._seeding import philox_key
from ._table import OUTPUTS, OutputColumn, build_output

__all__ = ["SpecError", "TableSpec", "Spec", "load_spec", "generate", "generate_at",
           "generate_tables"]

MAX_ZIPF_SUPPORT = 50_000_000
GROUP_BLOCK = 1 << 20   # parents per block of a per_parent key's totals (_GroupIndex)

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
    "uuid": ((), ()),
    "date": (("start", "end"), ()),
    "timestamp": (("start", "end"), ("resolution",)),
    "foreign_key": (("table",), ("column", "distribution", "s", "per_parent")),
    "parent": (("key", "column"), ()),
    "expression": (("expr",), ()),
}
UNIQUE_TYPES = ("sequence", "uuid")   # unique by construction: what a foreign key may refer to
COMMON_FIELDS = ("type", "nulls", "hidden")
RESOLUTIONS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
               "h": 3600 * 10**9, "D": 86400 * 10**9}
DAY_NS = 86400 * 10**9
TABLE_FIELDS = ("columns", "rows", "rules", "constraints", "max_attempts")
MAX_ATTEMPTS = 100   # default attempts per row of a table with constraints


class SpecError(ValueError):
    """A table spec is invalid. ``table``, ``column``, ``field`` say where."""

    def __init__(self, message: str, table: Optional[str] = None,
                 column: Optional[str] = None, field: Optional[str] = None, *,
                 rule: Optional[int] = None, position: Optional[int] = None):
        self.table, self.column, self.field = table, column, field
        self.rule, self.position = rule, position   # a table rule: its index, where in it
        where = []
        if table is not None:
            where.append(f"table {table!r}")
        if column is not None:
            where.append(f"column {column!r}")
        if field is not None:
            where.append(f"field {field!r}")
        if rule is not None:
            where.append(f"rule {rule}")
        if position is not None:
            where.append(f"position {position}")
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


def _stream(table: str, column: str, purpose: str, attempt: int = 0) -> int:
    """A 64-bit Philox stream per (table, column, purpose): independent of column order.
    Attempt k >= 1 of a row that breaks a constraint draws from the stream of purpose
    ``"<purpose>\\0<k>"`` (attempt 0 is the plain stream, so rows that pass keep it)."""
    if attempt:
        purpose = f"{purpose}\x00{attempt}"
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
    depends: tuple = ()               # columns an expression reads ('fk.col': a parent's)
    refs: dict = field(default_factory=dict)   # 'key.col' -> (key, col) given explicitly
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
    elif kind == "uuid":
        if nulls:
            raise err("a uuid is a key: it cannot have nulls", "nulls")
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
        if dist not in ("uniform", "zipf", "earlier"):
            raise err(f"unknown distribution {dist!r}; one of uniform, zipf, earlier",
                      "distribution")
        p["distribution"] = dist
        if dist == "zipf":
            p["s"] = _real(raw.get("s", 1.0), err, "s", positive=True)
        elif "s" in raw:
            raise err("only a zipf foreign key takes 's'", "s")
        if "per_parent" in raw:   # the parent's column says how many rows each parent has
            if "distribution" in raw:
                raise err("a key with per_parent takes no distribution: its rows come "
                          "grouped by parent", "distribution")
            if not isinstance(raw["per_parent"], str) or not raw["per_parent"]:
                raise err(f"must be a column of the parent, got {raw['per_parent']!r}",
                          "per_parent")
            p["distribution"] = "per_parent"
            p["per_parent"] = raw["per_parent"]
    elif kind == "parent":
        for f in ("key", "column"):
            if not isinstance(raw[f], str) or not raw[f]:
                raise err(f"must be a column name, got {raw[f]!r}", f)
        p["key"], p["column"] = raw["key"], raw["column"]
        ref = f"{p['key']}.{p['column']}"
        col.depends = (ref,)
        col.refs = {ref: (p["key"], p["column"])}
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


def _name_position(text: str, name: str) -> Optional[int]:
    """Where a rule first reads column ``name``, or None when it does not."""
    parsed = parse(text)
    found = [parsed.target_pos] if parsed.target == name else []
    stack = [parsed.expr]
    while stack:
        node = stack.pop()
        if node.kind == "col" and node.value == name:
            found.append(node.pos)
        stack.extend(node.args)
    return min(found) if found else None


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

def _depth_first(starts, edges):
    """(post-order of the nodes reachable from ``starts``, None) or (partial order, the
    first cycle found as a path [a, ..., a]); ``edges(node)`` lists a node's successors.
    Iterative, so deep chains do not hit Python's recursion limit."""
    order, state = [], {}
    for start in starts:
        if state.get(start):
            continue
        stack, path = [(start, iter(edges(start)))], [start]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                path.pop()
                state[node] = 2
                order.append(node)
            elif state.get(nxt) == 1:
                return order, path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(edges(nxt))))
    return order, None


def _named_columns(parsed) -> list:
    """(name, position) of every column a parsed rule names (its target first, if
    any), in the order they appear."""
    found = [] if parsed.target is None else [(parsed.target, parsed.target_pos)]
    stack = [parsed.expr]
    while stack:
        node = stack.pop()
        if node.kind == "col":
            found.append((node.value, node.pos))
        stack.extend(node.args)
    return sorted(found, key=lambda x: x[1])


class TableSpec:
    """One table: ``columns`` {name: column spec}, optional ``rows``, ``rules`` (checked),
    ``constraints`` (enforced by redrawing rows) and ``max_attempts`` (per row, 100)."""

    def __init__(self, columns: dict, *, name: str = "table", rows: Optional[int] = None,
                 rules=None, constraints=None, max_attempts: Optional[int] = None):
        if not isinstance(name, str) or not name:
            raise SpecError(f"a table name must be a non-empty string, got {name!r}")
        self.name = name
        if not isinstance(columns, dict) or not columns:
            raise SpecError("'columns' must be a non-empty mapping of column name to spec",
                            name, field="columns")
        self.columns = {str(k): _parse_column(name, k, v) for k, v in columns.items()}
        self.rows = None if rows is None else _int(
            rows, lambda m, f: SpecError(m, name, field=f), "rows", low=0)
        self.rules = self._rule_list(rules, "rules")            # checked
        self.constraints = self._rule_list(constraints, "constraints")   # enforced
        self._max_attempts = None if max_attempts is None else _int(
            max_attempts, lambda m, f: SpecError(m, name, field=f), "max_attempts", low=1)
        if max_attempts is not None and not self.constraints:
            raise SpecError("max_attempts is for a table with constraints", name,
                            field="max_attempts")
        self.max_attempts = MAX_ATTEMPTS if max_attempts is None else self._max_attempts
        self.refs: dict = {}   # 'key.col' read by a column -> (foreign key column, parent column)
        self.order = self._dependency_order()
        self._programs: dict = {}
        self._spec = None      # the Spec this table is part of (set by Spec)
        self._fixed_why: Optional[dict] = None   # column -> why redrawing cannot change it
        self.rule_reads = self._rule_reads()
        self.constraint_names = self._constraint_names()

    def _rule_list(self, rules, fld) -> list:
        rules = [] if rules is None else ([rules] if isinstance(rules, str) else rules)
        if not isinstance(rules, (list, tuple)):
            raise SpecError(f"must be a list of strings, got {type(rules).__name__}", self.name,
                            field=fld)
        for r in rules:
            if not isinstance(r, str):
                raise SpecError(f"{fld} must be strings, got {r!r}", self.name, field=fld)
        return list(rules)

    @property
    def all_rules(self) -> list:
        """The rules, then the constraints: what ``check`` reports (indices as here)."""
        return self.rules + self.constraints

    def _rule_error(self, index: int, message: str, position: Optional[int]) -> SpecError:
        """An error in rule ``index`` of ``all_rules``: field 'rules' or 'constraints' and
        the index in that list."""
        text = self.all_rules[index]
        fld, local = ("rules", index) if index < len(self.rules) else \
            ("constraints", index - len(self.rules))
        caret = f"\n    {text}\n    {' ' * position}^" \
            if position is not None and len(text) <= 200 else ""
        return SpecError(f"{text!r}: {message}{caret}", self.name, field=fld, rule=local,
                         position=position)

    def _rule_reads(self) -> dict:
        """{name: (rule index, position)} of the parent attributes the rules read (dotted
        names that are not columns: ``customer_id.signup_date``, ``customers.vip``,
        ``order_id.customer_id.signup_date``); each must read through a visible foreign
        key, since ``check`` takes the key's values from the checked table."""
        reads: dict = {}
        for i, text in enumerate(self.all_rules):
            try:
                parsed = parse(text, i)
            except RuleError as e:
                raise self._rule_error(i, e.message, e.position) from None
            for name, pos in _named_columns(parsed):
                if name in self.columns or "." not in name or name in reads:
                    continue
                ref, problem = self._resolve_ref(name)
                if ref is None:
                    raise self._rule_error(i, problem, pos)
                if self.columns[ref[0]].hidden:
                    raise self._rule_error(i, f"{name!r} reads the parent row through the "
                                           f"hidden foreign key {ref[0]!r}; check takes the "
                                           "key from the checked table, which has no hidden "
                                           "columns (make the key visible)", pos)
                reads[name] = (i, pos)
        return reads

    def _constraint_names(self) -> list:
        """The columns and parent attributes the constraints read. Each constraint is a
        condition over columns of the table (visible ones: ``check`` reads them from the
        output) or parent attributes, and must read something that redrawing a row
        changes; otherwise a row that breaks it would break it at every attempt."""
        names: list = []
        base = len(self.rules)
        for j, text in enumerate(self.constraints):
            i = base + j
            parsed = parse(text, i)
            if parsed.target is not None and parsed.assign_op == ":=":
                raise self._rule_error(i, "a constraint is a condition, not a derived column "
                                       "(a column of the table is an expression under "
                                       "'columns')", parsed.target_pos)
            found = _named_columns(parsed)
            for name, pos in found:
                if name in self.columns:
                    if self.columns[name].hidden:
                        raise self._rule_error(i, f"column {name!r} is hidden; check reads "
                                               "a constraint's columns from the generated "
                                               "table, so a constraint names visible columns "
                                               "(or parent attributes)", pos)
                elif name not in self.rule_reads:
                    raise self._rule_error(i, f"unknown column {name!r}; the table has "
                                           f"{', '.join(map(repr, self.columns))}", pos)
            fixed = [(name, self._fixed(name)) for name, _ in found]
            if found and all(why for _, why in fixed):
                what = "; ".join(f"{name!r} is {why}" for name, why in dict(fixed).items())
                raise self._rule_error(i, "redrawing a row cannot change what this constraint "
                                       f"reads ({what}), so a row that breaks it would break "
                                       "it at every attempt; make it a rule (checked, not "
                                       "enforced) or constrain a random column", None)
            if not found:
                raise self._rule_error(i, "the constraint reads no column, so redrawing a row "
                                       "cannot change it; make it a rule (checked, not "
                                       "enforced)", None)
            for name, _ in found:
                if name not in names:
                    names.append(name)
        return names

    def _fixed(self, name: str) -> Optional[str]:
        """None when redrawing a row can change column (or parent read) ``name``, else
        why not: sequences, uuids and per_parent keys are functions of the row index, a
        distribution with one possible value is a constant, and an expression or a
        parent read is fixed when everything it reads is."""
        if name not in self.columns:   # a parent attribute: it moves with its key
            key = self.parent_ref(name)[0]
            why = self._fixed(key)
            return None if why is None else f"read through {key!r}, {why}"
        if self._fixed_why is None:   # once per table, dependencies first (no recursion)
            self._fixed_why = {}      # filled in order: _fixed_column reads earlier entries
            for col in self.order:
                self._fixed_why[col] = self._fixed_column(self.columns[col])
        return self._fixed_why[name]

    def _fixed_column(self, c: ColumnSpec) -> Optional[str]:
        """``_fixed`` of column ``c``, the columns before it in ``order`` known."""
        p = c.params
        if c.nulls:
            return None   # the null mask is redrawn
        if c.type in ("sequence", "uuid"):
            return f"a {c.type} (a function of the row index)"
        if c.type == "foreign_key":
            return "a per_parent key (a function of the row index)" \
                if p["distribution"] == "per_parent" else None
        one = {"uniform": lambda: p["low"] == p["high"],
               "normal": lambda: p["std"] == 0,
               "lognormal": lambda: p["sigma"] == 0,
               "integer": lambda: p["low"] == p["high"],
               "boolean": lambda: p["p"] in (0.0, 1.0),
               "categorical": lambda: int(np.count_nonzero(np.diff(p["cdf"], prepend=0.0)))
               == 1,
               "zipf": lambda: p["n"] == 1,
               "date": lambda: -(-p["start"] // p["unit"]) == p["end"] // p["unit"],
               "timestamp": lambda: -(-p["start"] // p["unit"]) == p["end"] // p["unit"]}
        if c.type in one:
            return "a distribution with a single value" if one[c.type]() else None
        if all(self._fixed(d) for d in c.depends):
            return "an expression of fixed columns" if c.type == "expression" else \
                f"read through {p['key']!r}, which is fixed"
        return None

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
        return cls(data["columns"], name=name, rows=data.get("rows"), rules=data.get("rules"),
                   constraints=data.get("constraints"), max_attempts=data.get("max_attempts"))

    def to_dict(self) -> dict:
        out: dict = {"columns": {n: dict(c.source) for n, c in self.columns.items()}}
        if self.rows is not None:
            out["rows"] = self.rows
        if self.rules:
            out["rules"] = list(self.rules)
        if self.constraints:
            out["constraints"] = list(self.constraints)
        if self._max_attempts is not None:
            out["max_attempts"] = self._max_attempts
        return out

    def __repr__(self):
        return f"TableSpec({self.name!r}, columns={list(self.columns)})"

    def parent_ref(self, name: str):
        """(foreign key column, parent column) for a name that reads a parent row, or None."""
        return self._resolve_ref(name)[0]

    def _resolve_ref(self, name: str):
        """((key, parent column) or None, why not): ``<key column>.<parent column>``, or
        ``<parent table>.<parent column>`` when one foreign key of this table refers to
        that table."""
        if name in self.refs:
            return self.refs[name], None
        dots = [i for i, ch in enumerate(name) if ch == "."]
        problem = None
        for i in dots:
            prefix, rest = name[:i], name[i + 1:]
            c = self.columns.get(prefix)
            if c is not None and c.type == "foreign_key":
                self.refs[name] = (prefix, rest)
                return self.refs[name], None
            if c is not None and problem is None:
                problem = (f"{name!r}: column {prefix!r} is a {c.type} column, not a foreign "
                           "key; a parent attribute is read through a foreign key, as "
                           "<key column>.<parent column>")
        for i in dots:
            prefix, rest = name[:i], name[i + 1:]
            keys = [k for k, c in self.columns.items()
                    if c.type == "foreign_key" and c.params["table"] == prefix]
            if len(keys) == 1:
                self.refs[name] = (keys[0], rest)
                return self.refs[name], None
            if len(keys) > 1 and problem is None:
                problem = (f"{name!r}: several foreign keys refer to table {prefix!r} "
                           f"({', '.join(keys)}); say which, as {keys[0]}.{rest}")
        if dots and problem is None:
            problem = (f"unknown column {name!r}: {name[:dots[0]]!r} is neither a column nor "
                       "the parent table of a foreign key of this table; a parent attribute "
                       "is read through a foreign key, as <key column>.<parent column> (or "
                       "<parent table>.<parent column> when one foreign key refers to that "
                       "table)")
        return None, problem

    def _dependency_order(self) -> list:
        deps = {}   # the local columns each column needs first
        for c in self.columns.values():
            need = []
            for f, (key, _) in c.refs.items():
                k = self.columns.get(key)
                if k is None or k.type != "foreign_key":
                    what = "no such column" if k is None else f"a {k.type} column"
                    raise SpecError(f"{key!r} must be a foreign key column of this table "
                                    f"({what})", self.name, c.name, "key")
                self.refs[f] = c.refs[f]
            fld = "expr" if c.type == "expression" else "column"
            for d in c.depends:
                if d == c.name:
                    raise SpecError("the expression refers to its own column", self.name,
                                    c.name, "expr")
                if d in self.columns:
                    need.append(d)
                    continue
                ref, problem = self._resolve_ref(d)
                if ref is None:
                    raise SpecError(problem or
                                    f"unknown column {d!r} in the expression; the table has "
                                    f"{', '.join(map(repr, self.columns))}", self.name, c.name,
                                    fld)
                need.append(ref[0])
            deps[c.name] = tuple(dict.fromkeys(need))
        order, cycle = _depth_first(self.columns, lambda name: deps[name])
        if cycle:
            raise SpecError("expressions form a cycle: " + " -> ".join(cycle),
                            self.name, cycle[0], "expr")
        return order

    def rule_set(self):
        from .rules import Rules
        return Rules(self.all_rules)

    def check(self, table, *, seed=None, rows: Optional[dict] = None,
              backend: Optional[str] = None):
        """The rules report of ``table`` (rows of this table, as ``generate`` gives them)
        against this spec's ``rules``. Rules that read parent attributes
        (``customer_id.signup_date``) get them as ``generate`` does: the parent's columns
        regenerated at the rows the table's key values point to, from ``seed`` (default:
        the spec's) and ``rows`` (the parents' row counts, as for ``generate``)."""
        rules = self.rule_set()
        if not self.rule_reads:
            return rules.report(table, backend=backend)
        spec = self._spec if self._spec is not None else load_spec(self)
        return rules.report(_rule_reads_view(spec, self, table, seed, rows, backend),
                            backend=backend)


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
            if isinstance(t, TableSpec) and t._spec is not None:
                # already a table of a spec (this one, under another name, or another):
                # a copy, so its name, its parents (check) and its caches stay that spec's
                t = TableSpec.from_dict(t.to_dict(), name)
            self.tables[name] = t if isinstance(t, TableSpec) else TableSpec.from_dict(t, name)
            self.tables[name].name = name
            self.tables[name]._spec = self
        self.seed = seed
        self._token = object()   # this spec, in the tags of caches kept on its columns
        self._check_keys()
        self.order = self._table_order()
        # types of every expression, checked now (0 rows); the parents' zero-row columns
        # are kept while loading, so a chain of n tables costs O(n), not O(n^2)
        self._empty_reads: Optional[dict] = {}
        try:
            for name in self.order:
                _generate_columns(self, self.tables[name], _Window(0, 0), philox_key(0),
                                  "numpy", {})
        finally:
            self._empty_reads = None

    def row_counts(self, rows: Optional[dict] = None, *, seed=None, key=None,
                   backend: Optional[str] = None) -> dict:
        """{table: rows} for every table: ``rows[table]``, else the table's ``rows``, and
        for a table whose key sets its rows per parent, the sum of the parent's counts
        (which depends on the seed)."""
        rows = _rows_arg(rows)
        key = key if key is not None else philox_key(self.seed if seed is None else seed)
        backend = backend if backend in ("numpy", "cpu", "cuda") else _resolve_backend(backend)
        counts: dict = {}
        for name in self.order:
            n = _table_rows(self, name, {**rows, **counts}, key, backend)
            if n is None:
                raise ValueError(f"give the number of rows of table {name!r}: "
                                 f"rows={{{name!r}: N}} or 'rows' in its spec")
            counts[name] = n
        return counts

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
                if c.params["distribution"] == "per_parent":
                    grouped = [k for k, o in t.columns.items() if o.type == "foreign_key"
                               and o.params["distribution"] == "per_parent"]
                    if parent is t:
                        raise SpecError("per_parent is for a key to another table", t.name,
                                        c.name, "per_parent")
                    if len(grouped) > 1:
                        raise SpecError("one key per table can set its rows per parent; "
                                        f"{', '.join(grouped)} both do", t.name, grouped[1],
                                        "per_parent")
                    if c.params["per_parent"] not in parent.columns:
                        raise SpecError(f"parent table {parent.name!r} has no column "
                                        f"{c.params['per_parent']!r}", t.name, c.name,
                                        "per_parent")
                    if t.rows is not None:
                        raise SpecError(f"the rows of {t.name!r} are the sum of "
                                        f"{parent.name}.{c.params['per_parent']}; remove "
                                        "'rows'", t.name, field="rows")
                if c.params["distribution"] == "earlier" and parent is not t:
                    raise SpecError("'earlier' (a row before this one) is for a key to the "
                                    f"same table, not to {parent.name!r}", t.name, c.name,
                                    "distribution")
                key = c.params["column"]
                if key is not None:
                    pc = parent.columns.get(key)
                    if pc is None:
                        raise SpecError(f"parent table {parent.name!r} has no column {key!r}",
                                        t.name, c.name, "column")
                    if pc.type not in UNIQUE_TYPES:
                        raise SpecError(f"parent column {parent.name}.{key} is a {pc.type} "
                                        "column, which is not unique by construction; a "
                                        "foreign key refers to a column of type "
                                        f"{' or '.join(UNIQUE_TYPES)} (or, with no column, to "
                                        "the parent row index)", t.name, c.name, "column")
        for t in self.tables.values():
            for c in t.columns.values():
                for d in c.depends:
                    if d not in t.columns:
                        problem = self._ref_problem(t, d)
                        if problem:
                            raise SpecError(problem, t.name, c.name,
                                            "expr" if c.type == "expression" else "column")
            for d, (i, pos) in t.rule_reads.items():
                problem = self._ref_problem(t, d)
                if problem:
                    raise t._rule_error(i, problem, pos)
            self._check_constraint_reads(t)
            self._check_self_reads(t)

    def _check_constraint_reads(self, t: TableSpec):
        """Constraints must not read the table's own rows (through a key to the table
        itself): the other row's values would first need its own constraints enforced,
        which read further rows, and a uniform or Zipf key may lead back to the row."""
        if not t.constraints:
            return
        for d in _needed(t, t.constraint_names):
            if d in t.columns:
                continue
            k = t.parent_ref(d)[0]
            if t.columns[k].params["table"] == t.name:
                reader = next(n for n in t.constraint_names
                              if d in _needed(t, [n]))
                j, pos = next((j, pos) for j, text in enumerate(t.constraints)
                              for pos in [_name_position(text, reader)] if pos is not None)
                raise t._rule_error(len(t.rules) + j, f"{reader!r} reads the table's own rows "
                                    f"through {k!r} ({d!r}); a constraint reads the row "
                                    "itself and other tables' rows only (enforcing it would "
                                    "need the other row's constraints enforced first)", pos)

    def _check_self_reads(self, t: TableSpec):
        """Reads through a key to the table itself must not come back to the column that
        reads (``level: manager_id.level + 1`` would need every ancestor's row)."""
        if not any(c.type == "foreign_key" and c.params["table"] == t.name
                   for c in t.columns.values()):
            return

        def edges(name):
            if name in t.columns:
                return t.columns[name].depends
            key, col = t.parent_ref(name)
            same = t.columns[key].params["table"] == t.name
            return (key, col) if same else (key,)

        _, cycle = _depth_first(t.columns, edges)
        if cycle:
            first = next(x for x in cycle if x in t.columns)
            raise SpecError("reading the table's own rows forms a cycle: " + " -> ".join(cycle),
                            t.name, first,
                            "expr" if t.columns[first].type == "expression" else "column")

    def _ref_problem(self, table: TableSpec, name: str) -> Optional[str]:
        """None if the parent column that ``name`` reads exists (maybe through the
        parent's own foreign keys: ``order_id.customer_id.country``), else why not."""
        path = name
        while True:
            key, col = table.parent_ref(name)
            parent = self.tables[table.columns[key].params["table"]]
            if col in parent.columns:
                return None
            if parent.parent_ref(col) is None:
                return (f"{path!r}: parent table {parent.name!r} has no column {col!r}; it "
                        f"has {', '.join(map(repr, parent.columns))}")
            table, name = parent, col

    def _table_order(self) -> list:
        deps = {n: [c.params["table"] for c in t.columns.values()   # a key to itself is fine
                    if c.type == "foreign_key" and c.params["table"] != n]
                for n, t in self.tables.items()}
        order, cycle = _depth_first(self.tables, lambda n: deps[n])   # parents first
        if cycle:
            raise SpecError("foreign keys form a cycle: " + " -> ".join(cycle), cycle[0])
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
        made = source._spec
        if made is not None and made.seed is None and list(made.tables.values()) == [source]:
            return made   # the same as the one-table spec made before, with its caches
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
#
# Rows of a table read their parents' rows, which read theirs, and so on: a chain of
# parent reads (``k.k.k.v`` through a key to the table itself, or through chained
# tables, per_parent counts, constraints) is as deep as the spec makes it. The functions
# on that path (``_generate_columns_g`` and the ones it reaches) are generators that
# ``yield`` the sub-call whose result they need; ``_drive`` runs them on an explicit
# stack, so a chain of any depth costs memory, not Python frames, and works from a
# thread with a small stack or deep inside a caller's own recursion. The plain names
# (``_generate_columns``, ``_parent_columns``, ...) run the generators to completion.


def _drive(call):
    """The value ``call`` (a generator) returns, running the sub-calls it yields
    (generators too, nested to any depth) one at a time on an explicit stack."""
    stack = [call]
    value = error = None
    while True:
        top = stack[-1]
        thrown, error = error, None
        try:
            sub = top.send(value) if thrown is None else top.throw(thrown)
        except StopIteration as done:
            stack.pop()
            if not stack:
                return done.value
            value = done.value
            continue
        except BaseException as e:   # noqa: B036 - handed to the caller, as a call would
            stack.pop()
            if not stack:
                raise
            error, value = e, None
            continue
        stack.append(sub)
        value = None


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


class _Window:
    """Rows ``offset .. offset + n - 1`` of a table: the random kernels run over them.
    ``attempt``: which redraw of the rows (0: the first draw; docs/generate.md)."""

    def __init__(self, offset: int, n: int, attempt: int = 0):
        self.offset, self.n, self.attempt = offset, n, attempt

    def index(self) -> np.ndarray:
        return np.arange(self.offset, self.offset + self.n, dtype=np.int64)

    def uniform(self, key, stream, backend):
        return _uniform(key, stream, self.offset, self.n, backend)

    def normal(self, key, stream, backend, loc, scale):
        return _normal(key, stream, self.offset, self.n, backend, loc, scale)

    def integers(self, key, stream, backend, low, high):
        return _integers(key, stream, self.offset, self.n, backend, low, high)


_ROWSET_CHUNK = 1 << 20


class _RowSet:
    """Distinct row indices of a table, in any order (the parent rows children refer to):
    each value is the one the row has in any window, from the same element of the same
    Philox stream (the block function on the cpu backend, else NumPy's), transformed
    by the NumPy reference's functions, which the native kernels match bit for bit."""

    def __init__(self, rows: np.ndarray, attempt: int = 0):
        self.rows = np.asarray(rows, dtype=np.int64)
        self.n = len(self.rows)
        self.attempt = attempt

    def index(self) -> np.ndarray:
        return self.rows

    def _u64(self, key, stream, backend):
        if backend == "numpy" or not self.n:
            block = _ref_philox.philox4x32_10
        else:
            def block(counters, k0, k1):
                return _random.philox4x32_10(counters, key, backend="cpu")
        out = np.empty(self.n, dtype=np.uint64)
        for start in range(0, self.n, _ROWSET_CHUNK):   # bounded temporaries
            part = self.rows[start:start + _ROWSET_CHUNK]
            out[start:start + len(part)] = _ref_random.element_u64((key.k0, key.k1), stream,
                                                                   part, block)
        return out

    def uniform(self, key, stream, backend):
        return _ref_random.uniform_from_u64(self._u64(key, stream, backend), 0.0, 1.0)

    def normal(self, key, stream, backend, loc, scale):
        return _ref_random.normal_from_u64(self._u64(key, stream, backend), loc, scale)

    def integers(self, key, stream, backend, low, high):
        return _ref_random.integers_from_u64(self._u64(key, stream, backend), low,
                                             (high - low + 1) % 2**64)


def _zipf_ranks(col_params, key, stream, sel, backend):
    if col_params.get("cdf") is None:
        col_params["cdf"] = _zipf_cdf(col_params["s"], col_params["n"])
    return _from_cdf(col_params["cdf"], sel.uniform(key, stream, backend))


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


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_ROWS = 2**62


def _uuid_values(key, table: str, column: str, sel, backend):
    """Version-4-style UUID text, unique by construction: the 62 bits after the variant
    are a keyed bijection of the row index (a 4-round Feistel network on two 31-bit
    halves), the other 60 free bits come from the column's Philox stream."""
    rows = sel.index()
    if len(rows) and int(rows.max()) >= _UUID_ROWS:
        raise ValueError(f"table {table!r}, column {column!r}: uuid rows must be below 2**62")
    mask31 = np.uint64(2**31 - 1)
    round_keys = _ref_random.element_u64((key.k0, key.k1), _stream(table, column, "uuid"),
                                         np.arange(4))
    x = rows.astype(np.uint64)
    left, right = x >> np.uint64(31), x & mask31
    with np.errstate(over="ignore"):
        for k in round_keys:
            h = (right ^ k) * np.uint64(0x9E3779B97F4A7C15)
            left, right = right, left ^ ((h >> np.uint64(29)) & mask31)
    low = (np.uint64(2) << np.uint64(62)) | (left << np.uint64(31)) | right
    free = sel.integers(key, _stream(table, column, "values"), backend, 0, 2**60 - 1)
    free = free.astype(np.uint64)
    high = ((free >> np.uint64(12)) << np.uint64(16)) | np.uint64(0x4000) | \
        (free & np.uint64(0xFFF))
    text = np.empty((len(rows), 36), dtype=np.uint8)
    text[:, [8, 13, 18, 23]] = ord("-")
    at = [i for i in range(36) if i not in (8, 13, 18, 23)]
    for j in range(32):
        word = high if j < 16 else low
        shift = np.uint64(4 * (15 - j % 16))
        text[:, at[j]] = _HEX[((word >> shift) & np.uint64(15)).astype(np.intp)]
    values = text.view("S36").reshape(-1).astype(str).astype(object)
    return OutputColumn("", "categorical", np.arange(len(values), dtype=np.int32), None,
                        "object", categories=values)


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


def _needed(table: TableSpec, wanted) -> set:
    """The columns (and 'key.col' parent reads) that ``wanted`` needs, itself included."""
    need, stack = set(), list(wanted)
    while stack:
        name = stack.pop()
        if name in need:
            continue
        need.add(name)
        if name in table.columns:
            stack.extend(table.columns[name].depends)
        else:
            stack.append(table.parent_ref(name)[0])
    return need


def _generate_plain_g(spec: Spec, table: TableSpec, sel, key, backend: str, rows: dict,
                      wanted=None):
    """{name: OutputColumn} at the rows of ``sel`` (a _Window or a _RowSet) at its
    attempt, constraints not applied: every column, or only those in ``wanted`` (columns
    or 'key.col' parent reads) and what they need, together with the parent reads
    ('key.col') the columns and constraints read."""
    n = sel.n
    attempt = sel.attempt
    need = None if wanted is None else _needed(table, wanted)
    if need is None:
        refs = {d for c in table.columns.values() for d in c.depends if d not in table.columns}
        refs.update(d for d in table.constraint_names if d not in table.columns)
    else:
        refs = {d for d in need if d not in table.columns}
    reads: dict = {}   # foreign key -> the 'key.col' names read through it
    for name in sorted(refs):
        reads.setdefault(table.parent_ref(name)[0], []).append(name)
    out: dict = {}
    for name in table.order:
        if need is not None and name not in need:
            continue
        c = table.columns[name]
        p = c.params
        stream = _stream(table.name, name, "values", attempt)
        parent_rows = got = None
        if c.type == "uniform":
            v = sel.uniform(key, stream, backend)
            col = OutputColumn(name, "float", p["low"] + (p["high"] - p["low"]) * v, None,
                               "float64")
        elif c.type == "normal":
            col = OutputColumn(name, "float", sel.normal(key, stream, backend, p["mean"],
                                                         p["std"]), None, "float64")
        elif c.type == "lognormal":
            z = sel.normal(key, stream, backend, p["mean"], p["sigma"])
            col = OutputColumn(name, "float", np.exp(z), None, "float64")
        elif c.type == "integer":
            col = OutputColumn(name, "int", sel.integers(key, stream, backend, p["low"],
                                                         p["high"]), None, "int64")
        elif c.type == "boolean":
            col = OutputColumn(name, "bool", sel.uniform(key, stream, backend) < p["p"], None,
                               "bool")
        elif c.type == "categorical":
            codes = _from_cdf(p["cdf"], sel.uniform(key, stream, backend))
            col = _category_column(p["values"], codes)
        elif c.type == "zipf":
            ranks = _zipf_ranks(p, key, stream, sel, backend)
            if "values" in p:
                col = _category_column(p["values"], ranks)
            else:
                col = OutputColumn(name, "int", ranks.astype(np.int64) + 1, None, "int64")
        elif c.type == "sequence":
            col = _sequence_values(p, sel.index())
        elif c.type == "uuid":
            col = _uuid_values(key, table.name, name, sel, backend)
        elif c.type in ("date", "timestamp"):
            unit = p["unit"]
            lo, hi = -(-p["start"] // unit), p["end"] // unit
            ticks = sel.integers(key, stream, backend, lo, hi)
            col = OutputColumn(name, "datetime", ticks * np.int64(unit), None, "datetime64[ns]")
        elif c.type == "foreign_key":
            parent_rows = yield _foreign_key_rows_g(spec, table, c, key, stream, sel,
                                                    backend, rows)
            wanted = [table.refs[r][1] for r in reads.get(name, ())]
            if p["column"] is not None:
                wanted.append(p["column"])
            if wanted:   # the key and what the columns read of the parent rows, in one go
                got = yield _parent_columns_g(spec, spec.tables[p["table"]], parent_rows,
                                              wanted, key, backend, rows)
            if p["column"] is None:
                col = OutputColumn(name, "int", parent_rows, None, "int64")
            else:
                col = dataclasses.replace(got[p["column"]])
            if p["distribution"] == "earlier":   # the first row has no earlier row
                root = sel.index() == 0
                if root.any():
                    _apply_nulls(col, root)
        elif c.type == "parent":
            col = dataclasses.replace(out[c.depends[0]])
        elif c.type == "expression":
            col = _expression(table, c, out, n, backend)
        else:  # pragma: no cover - COLUMN_TYPES is checked at parse time
            raise AssertionError(c.type)
        col.name = name
        if "decimals" in p:
            col.values = np.round(col.values, p["decimals"])
        if c.nulls:
            _apply_nulls(col, sel.uniform(key, _stream(table.name, name, "nulls", attempt),
                                          backend) < c.nulls)
        out[name] = col
        if parent_rows is not None:   # the parent reads; a null key reads nulls
            for r in reads.get(name, ()):
                v = dataclasses.replace(got[table.refs[r][1]], name=r)
                if col.null is not None:
                    _apply_nulls(v, col.null)
                out[r] = v
    return out


def _generate_columns(spec: Spec, table: TableSpec, sel, key, backend: str, rows: dict,
                      wanted=None, only=None) -> dict:
    """``_generate_columns_g`` run to completion."""
    return _drive(_generate_columns_g(spec, table, sel, key, backend, rows, wanted, only))


def _generate_columns_g(spec: Spec, table: TableSpec, sel, key, backend: str, rows: dict,
                        wanted=None, only=None):
    """``_generate_plain`` with the table's constraints enforced: every row of ``sel``
    that breaks one is redrawn (attempt 1, 2, ...: every random column from the
    attempt's streams, at the same row index; sequences, uuids and per_parent keys stay)
    until all hold, so each row's values depend only on (seed, table, row). Every path
    that generates rows of a table (windows, parent rows read by children, per_parent
    counts, generate_at) comes here. ``only``: the positions in ``sel`` of the rows
    asked for (sorted, distinct; None: all), when ``sel`` is a window over rows between
    them: the others are left as first drawn (whether they could hold is no concern of
    the caller, who does not read them)."""
    if not table.constraints or (wanted is not None and
                                 all(table._fixed(name) for name in _needed(table, wanted))):
        # nothing asked for changes when a row is redrawn (a key column looked up by a
        # child or by the table's own keys, per_parent counts of constants): no attempts,
        # which for a key to the table itself would look the key up again, and again
        return (yield _generate_plain_g(spec, table, sel, key, backend, rows, wanted))
    full = None if wanted is None else list(wanted) + table.constraint_names
    out = yield _generate_plain_g(spec, table, sel, key, backend, rows, full)
    if only is None:
        asked = sel.n
        ok, rejected = _constraints_hold(table, out, asked, backend)
        bad = np.flatnonzero(~ok)
    else:
        asked = len(only)
        ok, rejected = _constraints_hold(
            table, {name: _take(out[name], only) for name in table.constraint_names}, asked,
            backend)
        bad = only[~ok]
    if not len(bad):
        return out
    index = sel.index()
    redrawn = [name for name in out if table._fixed(name) is None]
    # the attempts draw only what the constraints read; the other columns are drawn once,
    # at each row's final attempt (unless the constraints read about everything)
    tested = _needed(table, table.constraint_names)
    probe = table.constraint_names if len(tested) < len(out) else full
    tried = len(bad)
    settled: list = []   # (positions, attempt, {name: column there} or None)
    for attempt in range(1, table.max_attempts):
        sub_sel, positions = _rows_selection(index[bad], attempt)
        sub = yield _generate_plain_g(spec, table, sub_sel, key, backend, rows, probe)
        sub = {name: _take(sub[name], positions) for name in sub}
        ok, counts = _constraints_hold(table, sub, len(bad), backend)
        rejected += counts
        tried += len(bad)
        good = np.flatnonzero(ok)
        if len(good):
            settled.append((bad[good], attempt, None if probe is not full else
                            {name: _take(sub[name], good) for name in redrawn}))
        bad = bad[~ok]
        if not len(bad):
            pieces = []
            for at, k, cols in settled:
                if cols is None:   # the whole rows at their final attempt
                    sub_sel, positions = _rows_selection(index[at], k)
                    sub = yield _generate_plain_g(spec, table, sub_sel, key, backend, rows,
                                                  full)
                    cols = {name: _take(sub[name], positions) for name in redrawn}
                pieces.append((at, cols))
            for name in redrawn:
                _put(out[name], [(at, cols[name]) for at, cols in pieces])
            return out
    worst = int(np.argmax(rejected))
    raise SpecError(f"{len(bad):,} of the {asked:,} rows generated still break the "
                    f"constraints after max_attempts={table.max_attempts} attempts (row "
                    f"{int(index[bad[0]]):,} first); constraint {worst} "
                    f"{table.constraints[worst]!r} rejected the most attempts "
                    f"({int(rejected[worst]):,} of {tried:,}): loosen it, widen the columns "
                    "it reads or raise max_attempts", table.name, field="constraints",
                    rule=worst)


def _constraints_hold(table: TableSpec, cols: dict, n: int, backend: str):
    """(rows where every constraint holds, violations per constraint) over ``cols``
    (the table's columns and parent reads at some rows): a constraint is broken only
    where it is false, as in ``check``."""
    from .rules import Rules, _TableView, run_program
    rules = table._programs.get(("constraints",))
    if rules is None:
        rules = table._programs[("constraints",)] = Rules(table.constraints)
    view = _TableView([dataclasses.replace(cols[name], name=name)
                       for name in table.constraint_names])
    view.n = n
    try:
        program, columns, _ = rules.bind(view)
    except RuleError as e:
        j = e.rule_index if e.rule_index is not None else 0
        raise table._rule_error(len(table.rules) + j, e.message, e.position) from None
    mask, counts, _ = run_program(program, columns, n, "numpy" if backend == "numpy" else "cpu")
    return np.asarray(mask, dtype=bool), np.asarray(counts, dtype=np.int64)


def _put(col: OutputColumn, pieces: list):
    """Write each ``(positions, new)`` of ``pieces`` (``new``: the same column at other
    draws) into ``col`` at ``positions``."""
    values = col.values.copy()
    null = None if col.null is None else col.null.copy()
    for positions, new in pieces:
        values, null = _put_piece(col, values, null, positions, new)
    col.values = values
    col.null = null if null is not None and null.any() else None


def _put_piece(col, values, null, positions, new):
    new_values = new.values
    if col.kind == "categorical" and not (
            col.categories is new.categories or
            (len(col.categories) == len(new.categories) and
             np.array_equal(col.categories, new.categories))):
        if col.dtype == "category":   # keep the categories' order: append new ones
            at = {v: k for k, v in enumerate(col.categories)}
            extra = [v for v in new.categories if v not in at]
            cats = np.empty(len(col.categories) + len(extra), dtype=object)
            cats[:len(col.categories)] = col.categories
            cats[len(col.categories):] = extra
            at.update((v, len(col.categories) + k) for k, v in enumerate(extra))
            remap = np.array([at[v] for v in new.categories] + [-1], dtype=np.int64)
        else:                         # text read as categories[codes]: just append
            cats = np.concatenate([np.asarray(col.categories, dtype=object),
                                   np.asarray(new.categories, dtype=object)])
            remap = np.append(np.arange(len(new.categories), dtype=np.int64) +
                              len(col.categories), -1)
        col.categories = cats
        new_values = remap[new.values.astype(np.int64)].astype(values.dtype)
    values[positions] = new_values
    if null is not None or new.null is not None:
        null = np.zeros(len(values), dtype=bool) if null is None else null
        null[positions] = False if new.null is None else new.null
    return values, null


DENSE_SPAN = 3   # rows spanning at most this many times their number are read as a window
REDRAW_SPAN = 3  # the same for rows redrawn for a constraint


def _rows_selection(rows: np.ndarray, attempt: int = 0):
    """(selection, positions): a _Window over the span of ``rows`` when they are dense
    (span at most about three times their number, plus 4096), else a _RowSet of the
    distinct rows; ``positions`` picks each of ``rows`` from the selection's output."""
    used, inverse = np.unique(rows, return_inverse=True)
    inverse = inverse.reshape(-1)
    span = DENSE_SPAN if not attempt else REDRAW_SPAN
    if len(used) and used[-1] - used[0] < span * len(used) + 4096:
        sel, positions = _Window(int(used[0]), int(used[-1] - used[0]) + 1), \
            (used - used[0])[inverse]
    else:
        sel, positions = _RowSet(used), inverse
    sel.attempt = attempt
    return sel, positions


def _take(col: OutputColumn, positions: np.ndarray) -> OutputColumn:
    return dataclasses.replace(col, values=col.values[positions],
                               null=None if col.null is None else col.null[positions])


def _parent_columns(spec: Spec, parent: TableSpec, parent_rows: np.ndarray, names: list,
                    key, backend: str, rows: dict) -> dict:
    """``_parent_columns_g`` run to completion."""
    return _drive(_parent_columns_g(spec, parent, parent_rows, names, key, backend, rows))


def _parent_columns_g(spec: Spec, parent: TableSpec, parent_rows: np.ndarray, names: list,
                      key, backend: str, rows: dict):
    """Columns ``names`` of ``parent`` at rows ``parent_rows`` (any order, repeats): the
    values the parent table has there, regenerated from (seed, table, row) with only the
    columns they need. A dense set of rows is generated as one window and gathered,
    a sparse one row by row."""
    names = list(dict.fromkeys(names))
    memo = spec._empty_reads   # while the spec loads: zero-row columns, by (table, names)
    tag = (parent.name, tuple(names)) if memo is not None and not len(parent_rows) else None
    if tag is not None and tag in memo:
        return {name: dataclasses.replace(col) for name, col in memo[tag].items()}
    sel, positions = _rows_selection(parent_rows)
    only = None   # the rows of a window that are asked for (its constraints hold there)
    if parent.constraints and isinstance(sel, _Window):
        asked = np.zeros(sel.n, dtype=bool)
        asked[positions] = True
        only = None if asked.all() else np.flatnonzero(asked)
    got = yield _generate_columns_g(spec, parent, sel, key, backend, rows, wanted=names,
                                    only=only)
    got = {name: _take(got[name], positions) for name in names}
    if tag is not None:
        memo[tag] = {name: dataclasses.replace(col) for name, col in got.items()}
    return got


def _uuid_rows(key, table: str, column: str, text: np.ndarray) -> np.ndarray:
    """The row whose uuid has these low 62 bits (the Feistel network run backwards), or
    -1 where ``text`` is not a uuid; whether the whole text matches is checked by the
    caller, by regenerating the column at that row."""
    mask31 = np.uint64(2**31 - 1)
    out = np.full(len(text), -1, dtype=np.int64)
    ok = np.array([isinstance(t, str) and len(t) == 36 for t in text], dtype=bool)
    if not ok.any():
        return out
    low = np.zeros(len(text), dtype=np.uint64)
    for i in np.flatnonzero(ok):
        try:
            low[i] = int(text[i][19:23] + text[i][24:], 16) & (2**62 - 1)
        except ValueError:
            ok[i] = False
    round_keys = _ref_random.element_u64((key.k0, key.k1), _stream(table, column, "uuid"),
                                         np.arange(4))
    left, right = low >> np.uint64(31), low & mask31
    with np.errstate(over="ignore"):
        for k in round_keys[::-1]:   # (l, r) -> (r, l ^ f(r)) undone: r = l', l = r' ^ f(l')
            h = (left ^ k) * np.uint64(0x9E3779B97F4A7C15)
            left, right = right ^ ((h >> np.uint64(29)) & mask31), left
    rows = ((left << np.uint64(31)) | right).astype(np.int64)
    out[ok] = rows[ok]
    return out


def _key_rows(parent: TableSpec, c: ColumnSpec, values: np.ndarray, null: np.ndarray,
              key) -> np.ndarray:
    """The parent row each key value names (-1 where none can): the value itself for a
    key without column, else the inverse of the parent's sequence (formatted or not) or
    uuid. A candidate only: the caller regenerates the key there and compares."""
    col = c.params["column"]
    if col is not None and parent.columns[col].type == "uuid":
        return np.where(null, -1, _uuid_rows(key, parent.name, col, values))
    fmt = None if col is None else parent.columns[col].params["format"]
    ints = np.full(len(values), -1, dtype=np.int64)
    ok = np.zeros(len(values), dtype=bool)
    if fmt is not None or values.dtype == object:   # text: the number inside the format
        prefix, suffix = (fmt[0], fmt[3]) if fmt is not None else ("", "")
        for i in np.flatnonzero(~null):
            v = values[i]
            if fmt is None or not isinstance(v, str) or not v.startswith(prefix) or \
                    not v.endswith(suffix):
                continue
            try:
                x = int(v[len(prefix):len(v) - len(suffix)])
            except ValueError:
                continue
            if -(2**63) < x < 2**63:
                ints[i], ok[i] = x, True
    elif values.dtype.kind == "f":
        ok = ~null & np.isfinite(values) & (values == np.floor(values)) & \
            (np.abs(values) < 2.0**63)
        ints[ok] = values[ok].astype(np.int64)
    else:
        ok = ~null
        ints[ok] = values[ok]
    if col is None:
        return np.where(ok, ints, -1)
    p = parent.columns[col].params
    with np.errstate(over="ignore"):   # a wrapped value fails the comparison afterwards
        shifted = ints - np.int64(p["start"])
        row = shifted // np.int64(p["step"])
        ok &= row * np.int64(p["step"]) == shifted
    return np.where(ok, row, -1)


def _rule_reads_view(spec: Spec, t: TableSpec, table, seed, rows, backend):
    """A rules view of ``table`` with the parent attributes its rules read added: each
    key's values are turned back into parent rows, the key is regenerated there (a value
    that is not the key the parent has there is an error), and the attributes are read
    as a generated column reads them (``_parent_columns``); a null key reads nulls."""
    from .rules import _TableView
    if seed is None and spec.seed is None:
        raise ValueError(f"table {t.name!r}: its rules read parent attributes, which are "
                         "regenerated from the seed the table was generated with: give "
                         "seed=...")
    key = philox_key(spec.seed if seed is None else seed)
    rows = _rows_arg(rows)
    name_b = _resolve_backend(backend)
    base = _TableView(table)
    by_key: dict = {}
    for name in t.rule_reads:
        k, col = t.parent_ref(name)
        by_key.setdefault(k, []).append((name, col))
    extra = []
    for k, reads in by_key.items():
        c = t.columns[k]
        parent = spec.tables[c.params["table"]]
        if k not in base.names:
            i, pos = t.rule_reads[reads[0][0]]
            raise ValueError(f"table {t.name!r}, rule {i} {t.all_rules[i]!r}: it reads "
                             f"{reads[0][0]!r} through the foreign key {k!r}, which the "
                             "checked table does not have")
        kc = base.column(k)
        values = kc.values
        if kc.info.kind == "categorical":
            cats = np.empty(len(kc.info.categories) + 1, dtype=object)
            cats[:-1] = kc.info.categories
            cats[-1] = None
            values = cats[np.asarray(values)]          # code -1 (null) -> None
            null = np.asarray(kc.values) < 0
        elif kc.info.kind == "int":
            null = values == INT_NULL
        elif kc.info.kind == "float":
            null = np.isnan(values)
        else:
            raise ValueError(f"table {t.name!r}, column {k!r}: a foreign key holds integers "
                             f"or key text, got a {kc.info.kind} column")
        m = _parent_rows(spec, parent.name, rows, key, name_b)
        if kc.info.kind == "categorical":   # text keys: each distinct value once
            text = cats[:-1]
            at = _key_rows(parent, c, text, np.zeros(len(text), dtype=bool), key)
            at = np.where(null, -1, np.append(at, -1)[np.asarray(kc.values)])
        else:
            at = _key_rows(parent, c, values, null, key)
        bad = ~null & ((at < 0) | (at >= m))
        at = np.where(null | bad, 0, at)
        wanted = [col for _, col in reads]
        if c.params["column"] is not None:
            wanted.append(c.params["column"])
        got = _parent_columns(spec, parent, at, wanted, key, name_b, rows)
        if c.params["column"] is not None:   # the key the parent has at that row
            kv = got[c.params["column"]]
            regenerated = kv.categories[kv.values] if kv.kind == "categorical" else kv.values
            bad |= ~null & (regenerated != values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"table {t.name!r}, column {k!r}, row {i}: {values[i]!r} is not a "
                             f"key of parent table {parent.name!r} ({m:,} rows with the seed "
                             "given); check a table with the seed and row counts it was "
                             "generated with")
        for name, col in reads:
            v = dataclasses.replace(got[col], name=name)
            if null.any():
                _apply_nulls(v, null)
            extra.append(v)

    class _WithReads(_TableView):
        def __init__(self):
            super().__init__(table)
            self.reads = _TableView(extra)
            self.names = self.names + [n for n in self.reads.names if n not in self.names]

        def column(self, name):
            return self.reads.column(name) if name in t.rule_reads else super().column(name)

    return _WithReads()


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


def _grouping_key(t: TableSpec) -> Optional[ColumnSpec]:
    """The foreign key whose parent column gives this table's rows per parent, or None."""
    for c in t.columns.values():
        if c.type == "foreign_key" and c.params["distribution"] == "per_parent":
            return c
    return None


class _GroupIndex:
    """Child row -> parent row for a per_parent key without the running total over every
    parent: only the totals at the ends of blocks of GROUP_BLOCK parents are kept, computed
    from the start as far as the rows asked for need (so a window near the start of the
    child does not count the whole parent); a window's rows find their block by binary
    search over those totals, and only the blocks they touch are regenerated (their
    counts, then a binary search inside the block). Memory: O(parents / block + block)."""

    def __init__(self, parents: int, block: int):
        self.parents, self.block = parents, block
        self.blocks = -(-parents // block)
        self.ends: list = []      # running total at the end of each block counted so far
        self.recent: dict = {}    # block -> running totals inside it (the last two used)
        self.lock = threading.RLock()   # calls on one spec from several threads share it

    def _local_ends_g(self, b, spec, table, c, key, backend, rows):
        """The running total of the counts at each parent of block ``b``."""
        got = self.recent.get(b)
        if got is None:
            p = c.params
            parent = spec.tables[p["table"]]
            start = b * self.block
            n = min(self.block, self.parents - start)
            counts = (yield _generate_columns_g(spec, parent, _Window(start, n), key, backend,
                                                rows, wanted=[p["per_parent"]])
                      )[p["per_parent"]]
            _check_counts(table, c, parent, counts)
            got = np.cumsum(counts.values, dtype=np.int64)
            if b:
                got += self.ends[b - 1]
            while len(self.recent) >= 2:
                self.recent.pop(next(iter(self.recent)))
            self.recent[b] = got
        return got

    def cover(self, row: int, *args) -> bool:
        """Count blocks until the child row ``row`` is inside them (True) or every
        block is counted and the child has no such row (False)."""
        return _drive(self.cover_g(row, *args))

    def cover_g(self, row: int, *args):
        with self.lock:
            return (yield self._cover_g(row, *args))

    def _cover_g(self, row: int, *args):
        while (not self.ends or self.ends[-1] <= row) and len(self.ends) < self.blocks:
            local = yield self._local_ends_g(len(self.ends), *args)
            self.ends.append(int(local[-1]))
        return bool(self.ends) and row < self.ends[-1]

    def total(self, *args) -> int:
        return _drive(self.total_g(*args))

    def total_g(self, *args):
        yield self.cover_g(2**63 - 1, *args)
        return self.ends[-1] if self.ends else 0

    def parent_rows_g(self, own: np.ndarray, *args):
        """The parent row of each child row in ``own`` (any order, repeats)."""
        if not len(own):
            return np.zeros(0, dtype=np.int64)
        with self.lock:
            return (yield self._parent_rows_g(own, *args))

    def _parent_rows_g(self, own: np.ndarray, *args):
        if not (yield self._cover_g(int(own.max()), *args)):
            return None
        block_of = np.searchsorted(np.asarray(self.ends, dtype=np.int64), own, side="right")
        out = np.empty(len(own), dtype=np.int64)
        for b in np.unique(block_of):
            at = block_of == b
            local = yield self._local_ends_g(int(b), *args)
            out[at] = int(b) * self.block + np.searchsorted(local, own[at], side="right")
        return out


def _group_index(spec: Spec, table: TableSpec, c: ColumnSpec, key, backend: str,
                 rows: dict) -> _GroupIndex:
    """``_group_index_g`` run to completion."""
    return _drive(_group_index_g(spec, table, c, key, backend, rows))


def _group_index_g(spec: Spec, table: TableSpec, c: ColumnSpec, key, backend: str,
                   rows: dict):
    """The _GroupIndex of a per_parent key, kept on the column for the last (spec, seed,
    block size, row counts of the parent and of every table its rows read through
    foreign keys: the counts may be expressions of grandparent attributes)."""
    p = c.params
    m = yield _parent_rows_g(spec, p["table"], rows, key, backend, empty=True)
    tag = (spec._token, key.k0, key.k1, m, GROUP_BLOCK,
           tuple((a, rows.get(a, spec.tables[a].rows)) for a in _ancestors(spec, p["table"])))
    got = p.get("_groups")   # (tag, index), replaced whole: another thread may replace it
    if got is None or got[0] != tag:
        got = p["_groups"] = (tag, _GroupIndex(m, GROUP_BLOCK))
    return got[1]


def _ancestors(spec: Spec, name: str) -> list:
    """Table ``name`` and every table its foreign keys lead to, directly or not."""
    out, stack = [], [name]
    while stack:
        n = stack.pop()
        if n in out:
            continue
        out.append(n)
        stack.extend(c.params["table"] for c in spec.tables[n].columns.values()
                     if c.type == "foreign_key")
    return sorted(out)


def _check_counts(table, c, parent, counts: OutputColumn):
    col = c.params["per_parent"]
    if counts.kind != "int":
        raise SpecError(f"per_parent column {parent.name}.{col} is {counts.kind}; it must "
                        "be a whole number of rows", table.name, c.name, "per_parent")
    if counts.null is not None or (len(counts.values) and counts.values.min() < 0):
        raise SpecError(f"per_parent column {parent.name}.{col} has nulls or negative "
                        "counts; it must be a whole number >= 0 in every row", table.name,
                        c.name, "per_parent")


def _table_rows(spec: Spec, name: str, rows: dict, key, backend: str) -> Optional[int]:
    """``_table_rows_g`` run to completion."""
    return _drive(_table_rows_g(spec, name, rows, key, backend))


def _table_rows_g(spec: Spec, name: str, rows: dict, key, backend: str):
    """The rows of table ``name``: the sum of the parent's counts when a key sets them
    (a given count must agree), else ``rows[name]``, else its ``rows``."""
    t = spec.tables[name]
    c = _grouping_key(t)
    if c is None:
        return rows.get(name, t.rows)
    index = yield _group_index_g(spec, t, c, key, backend, rows)
    total = yield index.total_g(spec, t, c, key, backend, rows)
    if rows.get(name, total) != total:
        raise ValueError(f"table {name!r} has {total:,} rows, the sum of "
                         f"{c.params['table']}.{c.params['per_parent']}; rows[{name!r}] = "
                         f"{rows[name]:,} disagrees")
    return total


def _parent_rows(spec: Spec, parent: str, rows: dict, key=None, backend="numpy", *,
                 empty=False) -> int:
    """``_parent_rows_g`` run to completion."""
    return _drive(_parent_rows_g(spec, parent, rows, key, backend, empty=empty))


def _parent_rows_g(spec: Spec, parent: str, rows: dict, key=None, backend="numpy", *,
                   empty=False):
    """The row count of a parent table; at least 1 unless ``empty`` (a per_parent key:
    no parents, no rows)."""
    n = rows.get(parent)
    if n is None and key is not None and _grouping_key(spec.tables[parent]) is not None:
        n = rows[parent] = yield _table_rows_g(spec, parent, rows, key, backend)
    if n is None:
        n = spec.tables[parent].rows
    if n is None:
        raise SpecError(f"the number of rows of parent table {parent!r} is needed: give "
                        f"rows={{{parent!r}: N}} or 'rows' in its spec")
    if n < 1 and not empty:
        raise SpecError(f"parent table {parent!r} has {n} rows; a foreign key needs at least 1")
    return n


def _foreign_key_rows_g(spec, table, c, key, stream, sel, backend, rows):
    """The parent row index each row refers to: uniform or Zipf over [0, rows of parent),
    or ('earlier') uniform over the rows of the same table before this one (row 0: 0,
    and the key is null there)."""
    p = c.params
    parent = spec.tables[p["table"]]
    n = sel.n
    if p["distribution"] == "earlier":
        own = sel.index()
        u = sel.uniform(key, stream, backend)
        return np.minimum(np.floor(u * own).astype(np.int64), np.maximum(own - 1, 0))
    if p["distribution"] == "per_parent":
        if not n:   # checked once at load time: the counts are integers
            counts = (yield _generate_columns_g(spec, parent, _Window(0, 0), key, backend,
                                                rows, wanted=[p["per_parent"]])
                      )[p["per_parent"]]
            _check_counts(table, c, parent, counts)
            return np.zeros(0, dtype=np.int64)
        args = (spec, table, c, key, backend, rows)
        index = yield _group_index_g(*args)
        own = sel.index()
        got = yield index.parent_rows_g(own, *args)
        if got is None:
            total = yield index.total_g(*args)
            raise ValueError(f"table {table.name!r} has {total:,} rows (the sum "
                             f"of {parent.name}.{p['per_parent']}); row {int(own.max()):,} "
                             "was asked for")
        return got
    m = (yield _parent_rows_g(spec, parent.name, rows, key, backend)) if n else \
        max(rows.get(parent.name) or 1, 1)
    if p["distribution"] == "zipf":
        if m > MAX_ZIPF_SUPPORT:
            raise SpecError(f"a zipf foreign key draws from at most {MAX_ZIPF_SUPPORT:,} parent "
                            f"rows (its table is built once); parent table {parent.name!r} has "
                            f"{m:,}", table.name, c.name, "distribution")
        zp = p.get("_zipf")   # replaced whole for another n: calls from several threads
        if zp is None or zp["n"] != m:
            zp = p["_zipf"] = {"s": p["s"], "n": m, "cdf": None}   # built on first use
        idx = _zipf_ranks(zp, key, stream, sel, backend)
    else:
        idx = sel.integers(key, stream, backend, 0, m - 1)
    return idx.astype(np.int64)


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
    draw parent row indices in ``[0, rows[parent])``; a key to the table itself uses
    ``rows[table]``, else ``n`` when ``row_offset`` is 0, else the table's ``rows``).
    Parent attributes that columns read are regenerated at the rows the keys point to,
    so no parent table is needed. ``seed`` defaults to the spec's. The same spec and
    seed give the same rows whatever the windows, on every backend.
    """
    spec = load_spec(spec)
    t = _pick_table(spec, table)
    rows = _rows_arg(rows)
    if isinstance(row_offset, bool) or not isinstance(row_offset, numbers.Integral) or \
            not 0 <= row_offset < 2**62:
        raise ValueError(f"row_offset must be an integer in [0, 2**62), got {row_offset!r}")
    _check_output(output)
    name = _resolve_backend(backend)
    key = philox_key(spec.seed if seed is None else seed)
    group = _grouping_key(t)
    if group is not None and (n is None or t.name in rows):
        # rows per parent: the table's size is the sum of the counts (a given one must agree)
        rows[t.name] = _table_rows(spec, t.name, rows, key, name)
    if n is None:
        n = rows.get(t.name, t.rows)
        if n is None:
            raise ValueError(f"give the number of rows: n=... (table {t.name!r} has no 'rows')")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if group is not None and n:   # counts the parents' blocks only as far as the window
        args = (spec, t, group, key, name, rows)
        index = _group_index(*args)
        if not index.cover(row_offset + n - 1, *args):
            raise ValueError(f"table {t.name!r} has {index.total(*args):,} rows (rows per "
                             f"parent); rows {row_offset:,}..{row_offset + n - 1:,} were "
                             "asked for")
    if t.name not in rows and row_offset == 0 and group is None:
        rows[t.name] = n   # this call makes the whole table (for keys to the table itself)
    cols = _generate_columns(spec, t, _Window(int(row_offset), int(n)), key, name, rows)
    return build_output([cols[c] for c in t.columns if not t.columns[c].hidden], output)


def generate_at(spec, row_indices, *, table: Optional[str] = None, columns=None, seed=None,
                rows: Optional[dict] = None, backend: Optional[str] = None,
                output: str = "pandas"):
    """The rows of one table at ``row_indices`` (any order, repeats allowed): exactly the
    rows ``generate`` gives at those positions, computed without the rows in between,
    with only ``columns`` (default: the visible ones; hidden ones may be named) and what
    they need. ``rows`` gives the row counts of parent tables, as for ``generate``."""
    spec = load_spec(spec)
    t = _pick_table(spec, table)
    rows = _rows_arg(rows)
    idx = np.asarray(row_indices)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise ValueError("row_indices must be a 1-d array of integers, got "
                         f"{idx.dtype} with shape {idx.shape}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= 2**62):
        bad = idx[(idx < 0) | (idx >= 2**62)][0]
        raise ValueError(f"row_indices must be in [0, 2**62), got {bad}")
    if columns is None:
        columns = [c for c in t.columns if not t.columns[c].hidden]
    columns = [columns] if isinstance(columns, str) else list(columns)
    for c in columns:
        if c not in t.columns:
            raise ValueError(f"table {t.name!r} has no column {c!r}; it has "
                             f"{', '.join(map(repr, t.columns))}")
    _check_output(output)
    name = _resolve_backend(backend)
    key = philox_key(spec.seed if seed is None else seed)
    got = _parent_columns(spec, t, idx, columns, key, name, rows)
    return build_output([dataclasses.replace(got[c], name=c) for c in dict.fromkeys(columns)],
                        output)


def generate_tables(spec, rows: Optional[dict] = None, *, seed=None,
                    backend: Optional[str] = None, output: str = "pandas") -> dict:
    """Every table of ``spec`` ({name: table}, parents first), with ``rows[name]`` rows
    (default: each table's ``rows``)."""
    spec = load_spec(spec)
    rows = _rows_arg(rows)
    for k in rows:
        if k not in spec.tables:
            raise ValueError(f"rows names table {k!r}, which is not in the spec")
    key = philox_key(spec.seed if seed is None else seed)
    _check_output(output)
    name_b = _resolve_backend(backend)
    counts = spec.row_counts(rows, key=key, backend=name_b)
    out = {}
    for name in spec.order:
        t = spec.tables[name]
        cols = _generate_columns(spec, t, _Window(0, counts[name]), key, name_b, counts)
        out[name] = build_output([cols[c] for c in t.columns if not t.columns[c].hidden],
                                 output)
    return out
