"""The rule language: lexer, recursive-descent parser, type checker and bytecode compiler.

Text -> tokens (with positions) -> AST (``Node``) -> typed code for one table
schema -> a flat register program (``Program``) that every backend runs: the
NumPy reference (_reference/rules.py), the fused CPU evaluator (cpp/src/rules.cpp)
and the CUDA kernel (cuda/rules.cu). Nothing here calls ``eval``.

Values inside a program (docs/rules.md has the full table):

- float: float64, NaN is null (an operation whose IEEE result is NaN gives null);
- int, datetime (ns since the epoch), duration (ns): int64, -2**63 is null;
- categorical: int64 codes into a dictionary known at compile time, -1 is null;
- bool: uint8 three-valued: 0 false, 1 null, 2 true (so and = min, or = max,
  not = 2 - x: SQL's Kleene logic).
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

INT_NULL = -(2 ** 63)
MAX_DEPTH = 64          # nesting deeper than this is refused (no recursion errors)
MAX_TREE_DEPTH = 256    # operator chains deeper than this too
MAX_RULE_LENGTH = 100_000


class RuleError(ValueError):
    """A rule could not be parsed or typed. ``rule_index``, ``position``, ``rule``."""

    def __init__(self, message: str, rule_index: Optional[int] = None,
                 position: Optional[int] = None, rule: Optional[str] = None):
        self.message = message
        self.rule_index = rule_index
        self.position = position
        self.rule = rule
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.rule_index is not None:
            where.append(f"rule {self.rule_index}")
        if self.position is not None:
            where.append(f"position {self.position}")
        head = ", ".join(where)
        text = ""
        if self.rule is not None:
            shown = self.rule if len(self.rule) <= 200 else self.rule[:200] + "..."
            text = f"\n    {shown}"
            if self.position is not None and self.position <= 200:
                text += "\n    " + " " * self.position + "^"
        return (f"{head}: {self.message}" if head else self.message) + text

    def located(self, rule_index: int, rule: str) -> "RuleError":
        return type(self)(self.message, rule_index, self.position, rule)


class RuleSyntaxError(RuleError):
    """The rule text does not follow the grammar."""


class RuleTypeError(RuleError):
    """The rule is well formed but its types do not fit the table's columns."""


# ---- lexer --------------------------------------------------------------------

KEYWORDS = {"and", "or", "not", "in", "between", "is", "null", "true", "false", "if", "then",
            "else", "date", "timestamp"}
UNITS = {"week": 7 * 86400 * 10**9, "weeks": 7 * 86400 * 10**9,
         "day": 86400 * 10**9, "days": 86400 * 10**9,
         "hour": 3600 * 10**9, "hours": 3600 * 10**9,
         "minute": 60 * 10**9, "minutes": 60 * 10**9,
         "second": 10**9, "seconds": 10**9,
         "millisecond": 10**6, "milliseconds": 10**6}
SYMBOLS = ("<=", ">=", "!=", "<>", "==", ":=", "<", ">", "=", "+", "-", "*", "/", "%", "(", ")",
           ",")


DIGITS = frozenset("0123456789")


@dataclass
class Token:
    kind: str       # "num" "str" "ident" "kw" "op" "end"
    value: object
    pos: int


def _quoted(text: str, i: int, quote: str) -> tuple[str, int]:
    """The quoted text starting at text[i] (a doubled quote escapes it), and the index
    after the closing quote."""
    start, n = i, len(text)
    i += 1
    parts = []
    while True:
        if i >= n:
            what = "string" if quote == "'" else "quoted column name"
            raise RuleSyntaxError(f"unterminated {what}: expected a closing {quote}",
                                  position=start)
        if text[i] == quote:
            if i + 1 < n and text[i + 1] == quote:
                parts.append(quote)
                i += 2
                continue
            return "".join(parts), i + 1
        parts.append(text[i])
        i += 1


def tokenize(text: str) -> list[Token]:
    tokens = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        start = i
        if ch in DIGITS or (ch == "." and i + 1 < n and text[i + 1] in DIGITS):
            while i < n and text[i] in DIGITS:
                i += 1
            is_float = False
            if i < n and text[i] == "." and (i + 1 >= n or text[i + 1] in DIGITS
                                             or not text[i + 1].isalpha()):
                is_float = True
                i += 1
                while i < n and text[i] in DIGITS:
                    i += 1
            if i < n and text[i] in "eE":
                j = i + 1
                if j < n and text[j] in "+-":
                    j += 1
                if j < n and text[j] in DIGITS:
                    is_float = True
                    i = j
                    while i < n and text[i] in DIGITS:
                        i += 1
            lexeme = text[start:i]
            if is_float:
                value = float(lexeme)
                if not math.isfinite(value):
                    raise RuleSyntaxError(f"number {lexeme} is out of the float64 range",
                                          position=start)
            else:
                value = int(lexeme)
                if value >= 2**63:
                    raise RuleSyntaxError(f"integer {lexeme} does not fit in int64",
                                          position=start)
            if i < n and (text[i].isalpha() or text[i] == "_"):
                raise RuleSyntaxError("expected an operator or a space after the number",
                                      position=i)
            tokens.append(Token("num", value, start))
            continue
        if ch == "'":
            value, i = _quoted(text, i, "'")
            tokens.append(Token("str", value, start))
            continue
        if ch.isalpha() or ch == "_" or ch in "\"`":
            # a name: word or "quoted name" / `quoted name`, and 'a.b' parts joined by dots
            # (a.b is the column named 'a.b'; generation specs read parent attributes so)
            parts = []
            while True:
                if text[i] in "\"`":
                    part, i = _quoted(text, i, text[i])
                    if not part:
                        raise RuleSyntaxError("empty quoted column name", position=start)
                else:
                    j = i
                    while i < n and (text[i].isalnum() or text[i] == "_"):
                        i += 1
                    part = text[j:i]
                parts.append(part)
                if not (i + 1 < n and text[i] == "." and (text[i + 1].isalpha() or
                                                          text[i + 1] in "_\"`")):
                    break
                if len(parts) == 1 and ch not in "\"`" and part.lower() in KEYWORDS:
                    break
                i += 1
            if len(parts) == 1 and ch not in "\"`" and parts[0].lower() in KEYWORDS:
                tokens.append(Token("kw", parts[0].lower(), start))
            else:
                tokens.append(Token("ident", ".".join(parts), start))
            continue
        for sym in SYMBOLS:
            if text.startswith(sym, i):
                tokens.append(Token("op", sym, start))
                i += len(sym)
                break
        else:
            raise RuleSyntaxError(f"unexpected character {ch!r}", position=i)
    tokens.append(Token("end", None, n))
    return tokens


# ---- parser -------------------------------------------------------------------

@dataclass
class Node:
    kind: str                   # see Parser; "col" "num" "str" "bool" "null" "dur" "dt" ...
    pos: int
    args: list = field(default_factory=list)
    value: object = None

    def __repr__(self):
        inner = ", ".join(map(repr, self.args))
        return f"{self.kind}({self.value!r}{'; ' + inner if inner else ''})"


COMPARISONS = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "=": "eq", "==": "eq",
               "!=": "ne", "<>": "ne"}
FUNCTIONS = {"abs": (1, 1), "min": (2, 64), "max": (2, 64), "round": (1, 2), "floor": (1, 1),
             "ceil": (1, 1), "len": (1, 1)}


@dataclass
class ParsedRule:
    text: str
    target: Optional[str]       # "name = expr" / "name := expr": a derived-column candidate
    assign_op: Optional[str]
    target_pos: int
    expr: Node


class Parser:
    def __init__(self, text: str):
        if not isinstance(text, str):
            raise RuleSyntaxError(f"a rule must be a string, got {type(text).__name__}")
        if len(text) > MAX_RULE_LENGTH:
            raise RuleSyntaxError(f"rule is longer than {MAX_RULE_LENGTH} characters")
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        t = self.tokens[self.i]
        if t.kind != "end":
            self.i += 1
        return t

    def at(self, kind, value=None) -> bool:
        t = self.tok
        return t.kind == kind and (value is None or t.value == value)

    def accept(self, kind, value=None) -> Optional[Token]:
        if self.at(kind, value):
            return self.advance()
        return None

    def describe(self, t: Token) -> str:
        if t.kind == "end":
            return "the end of the rule"
        if t.kind == "str":
            return f"string '{t.value}'"
        return f"{t.value!r}" if t.kind != "num" else f"number {t.value}"

    def expect(self, kind, value, what: str) -> Token:
        if not self.at(kind, value):
            raise RuleSyntaxError(f"expected {what}, found {self.describe(self.tok)}",
                                  position=self.tok.pos)
        return self.advance()

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleSyntaxError(f"expression nested more than {MAX_DEPTH} levels deep",
                                  position=self.tok.pos)

    # grammar
    def parse_rule(self) -> ParsedRule:
        if self.at("end"):
            raise RuleSyntaxError("empty rule: expected an expression", position=0)
        target = op = None
        target_pos = 0
        t0, t1 = self.tokens[0], self.tokens[1]
        if t0.kind == "ident" and t1.kind == "op" and t1.value in ("=", ":="):
            target, op, target_pos = t0.value, t1.value, t0.pos
            self.i = 2
        expr = self.parse_expr()
        if not self.at("end"):
            raise RuleSyntaxError(f"expected an operator or the end of the rule, found "
                                  f"{self.describe(self.tok)}", position=self.tok.pos)
        _check_depth(expr)
        return ParsedRule(self.text, target, op, target_pos, expr)

    def parse_expr(self) -> Node:
        self.enter()
        try:
            if self.at("kw", "if"):
                return self.parse_if()
            return self.parse_or()
        finally:
            self.depth -= 1

    def parse_if(self) -> Node:
        t = self.advance()
        cond = self.parse_expr()
        self.expect("kw", "then", "'then'")
        then = self.parse_expr()
        if self.accept("kw", "else"):
            other = self.parse_expr()
            return Node("ifelse", t.pos, [cond, then, other])
        return Node("implies", t.pos, [cond, then])

    def parse_or(self) -> Node:
        left = self.parse_and()
        while self.at("kw", "or"):
            t = self.advance()
            left = Node("or", t.pos, [left, self.parse_and()])
        return left

    def parse_and(self) -> Node:
        left = self.parse_not()
        while self.at("kw", "and"):
            t = self.advance()
            left = Node("and", t.pos, [left, self.parse_not()])
        return left

    def parse_not(self) -> Node:
        if self.at("kw", "not"):
            t = self.advance()
            self.enter()
            try:
                return Node("not", t.pos, [self.parse_not()])
            finally:
                self.depth -= 1
        return self.parse_predicate()

    def parse_predicate(self) -> Node:
        left = self.parse_sum()
        t = self.tok
        if t.kind == "op" and t.value in COMPARISONS:
            self.advance()
            right = self.parse_sum()
            node = Node("cmp", t.pos, [left, right], COMPARISONS[t.value])
            nt = self.tok
            if nt.kind == "op" and nt.value in COMPARISONS:
                # a <= x <= b: a chain means both comparisons
                self.advance()
                third = self.parse_sum()
                node = Node("and", nt.pos, [node, Node("cmp", nt.pos, [right, third],
                                                       COMPARISONS[nt.value])])
                if self.tok.kind == "op" and self.tok.value in COMPARISONS:
                    raise RuleSyntaxError("at most two comparisons may be chained",
                                          position=self.tok.pos)
            return node
        negate = None
        if self.at("kw", "not") and self.tokens[self.i + 1].kind == "kw" and \
                self.tokens[self.i + 1].value in ("in", "between"):
            negate = self.advance()
        if self.at("kw", "in"):
            t = self.advance()
            self.expect("op", "(", "'(' after 'in'")
            items = [self.parse_sum()]
            while self.accept("op", ","):
                items.append(self.parse_sum())
            self.expect("op", ")", "',' or ')' in the list")
            node = Node("in", t.pos, [left] + items)
        elif self.at("kw", "between"):
            t = self.advance()
            low = self.parse_sum()
            self.expect("kw", "and", "'and' in 'between ... and ...'")
            high = self.parse_sum()
            node = Node("between", t.pos, [left, low, high])
        elif self.at("kw", "is"):
            t = self.advance()
            neg = self.accept("kw", "not")
            self.expect("kw", "null", "'null' after 'is'" if not neg else "'null' after 'is not'")
            node = Node("isnull", t.pos, [left])
            return Node("not", t.pos, [node]) if neg else node
        else:
            if negate is not None:
                raise RuleSyntaxError("expected 'in' or 'between' after 'not'",
                                      position=self.tok.pos)
            return left
        return Node("not", negate.pos, [node]) if negate is not None else node

    def parse_sum(self) -> Node:
        left = self.parse_term()
        while self.tok.kind == "op" and self.tok.value in ("+", "-"):
            t = self.advance()
            left = Node("arith", t.pos, [left, self.parse_term()], t.value)
        return left

    def parse_term(self) -> Node:
        left = self.parse_unary()
        while self.tok.kind == "op" and self.tok.value in ("*", "/", "%"):
            t = self.advance()
            left = Node("arith", t.pos, [left, self.parse_unary()], t.value)
        return left

    def parse_unary(self) -> Node:
        if self.at("op", "-") or self.at("op", "+"):
            t = self.advance()
            self.enter()
            try:
                operand = self.parse_unary()
            finally:
                self.depth -= 1
            return Node("neg", t.pos, [operand]) if t.value == "-" else operand
        return self.parse_primary()

    def parse_primary(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.advance()
            u = self.tok
            if u.kind == "ident" and u.value.lower() in UNITS:
                self.advance()
                ns = t.value * UNITS[u.value.lower()]
                if isinstance(ns, float):
                    if not abs(ns) < 2**63:
                        raise RuleSyntaxError("duration out of range", position=t.pos)
                    ns = int(round(ns))
                if ns >= 2**63:
                    raise RuleSyntaxError("duration out of range", position=t.pos)
                return Node("dur", t.pos, value=ns)
            return Node("num", t.pos, value=t.value)
        if t.kind == "str":
            self.advance()
            return Node("str", t.pos, value=t.value)
        if t.kind == "kw":
            if t.value in ("true", "false"):
                self.advance()
                return Node("bool", t.pos, value=t.value == "true")
            if t.value == "null":
                self.advance()
                return Node("null", t.pos)
            if t.value in ("date", "timestamp"):
                self.advance()
                s = self.expect("str", None, f"a string after '{t.value}', like "
                                             f"{t.value} '2024-01-31'")
                return Node("dt", t.pos, value=_parse_datetime(s.value, s.pos, t.value))
            if t.value == "if":
                self.enter()
                try:
                    return self.parse_if()
                finally:
                    self.depth -= 1
        if t.kind == "ident":
            self.advance()
            if self.at("op", "("):
                name = t.value.lower()
                if name not in FUNCTIONS:
                    raise RuleSyntaxError(f"unknown function {t.value!r}; known: "
                                          f"{', '.join(sorted(FUNCTIONS))}", position=t.pos)
                self.advance()
                args = []
                self.enter()
                try:
                    if not self.at("op", ")"):
                        args.append(self.parse_expr())
                        while self.accept("op", ","):
                            args.append(self.parse_expr())
                finally:
                    self.depth -= 1
                self.expect("op", ")", "',' or ')' after the function's arguments")
                lo, hi = FUNCTIONS[name]
                if not lo <= len(args) <= hi:
                    count = f"{lo}" if lo == hi else f"{lo} to {hi}"
                    raise RuleSyntaxError(f"{name}() takes {count} arguments, got {len(args)}",
                                          position=t.pos)
                return Node("call", t.pos, args, name)
            return Node("col", t.pos, value=t.value)
        if t.kind == "op" and t.value == "(":
            self.advance()
            inner = self.parse_expr()
            self.expect("op", ")", "')'")
            return inner
        raise RuleSyntaxError(f"expected a value, a column or '(', found {self.describe(t)}",
                              position=t.pos)


def _check_depth(root: Node):
    """Refuse trees deeper than MAX_TREE_DEPTH (long operator chains), iteratively, so
    that checking and compiling never recurse too deep."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            raise RuleSyntaxError(f"expression nested more than {MAX_TREE_DEPTH} levels deep "
                                  "(split it into several rules or derived columns)",
                                  position=node.pos)
        stack.extend((a, depth + 1) for a in node.args)


def _parse_datetime(text: str, pos: int, what: str) -> int:
    try:
        value = np.datetime64(text, "ns")
    except (ValueError, TypeError, OverflowError):
        value = None
    if value is None or np.isnat(value):
        raise RuleSyntaxError(f"{what} literal {text!r} is not an ISO date or datetime "
                              "(like '2024-01-31' or '2024-01-31 12:30:00')", position=pos)
    return int(value.astype(np.int64))


def parse(text: str, rule_index: Optional[int] = None) -> ParsedRule:
    try:
        return Parser(text).parse_rule()
    except RuleError as e:
        raise e.located(rule_index, text if isinstance(text, str) else None) from None


# ---- schema -----------------------------------------------------------------------

@dataclass
class ColumnInfo:
    """What the compiler needs to know of a table column."""
    name: str
    kind: str                           # float int bool categorical datetime
    categories: Optional[tuple] = None  # categorical: values in code order


# ---- bytecode -------------------------------------------------------------------

# Opcodes. Fields of an instruction: (op, dst, a, b, c). "R" = register operand.
OPS = [
    # name, register fields among (a, b, c)
    ("LOAD_F64", ""), ("LOAD_I64", ""), ("LOAD_I32", ""), ("LOAD_B", ""),   # b = column
    ("CONST_F", ""), ("CONST_I", ""), ("CONST_B", ""),   # b = pool index / value
    ("I2F", "a"),
    ("ADD_F", "ab"), ("SUB_F", "ab"), ("MUL_F", "ab"), ("DIV_F", "ab"), ("MOD_F", "ab"),
    ("MIN_F", "ab"), ("MAX_F", "ab"), ("NEG_F", "a"), ("ABS_F", "a"), ("FLOOR_F", "a"),
    ("CEIL_F", "a"), ("RINT_F", "a"),
    ("ADD_I", "ab"), ("SUB_I", "ab"), ("MUL_I", "ab"), ("MOD_I", "ab"), ("MIN_I", "ab"),
    ("MAX_I", "ab"), ("NEG_I", "a"), ("ABS_I", "a"),
    ("EQ_F", "ab"), ("NE_F", "ab"), ("LT_F", "ab"), ("LE_F", "ab"), ("GT_F", "ab"),
    ("GE_F", "ab"),
    ("EQ_I", "ab"), ("NE_I", "ab"), ("LT_I", "ab"), ("LE_I", "ab"), ("GT_I", "ab"),
    ("GE_I", "ab"),
    ("EQ_B", "ab"), ("NE_B", "ab"), ("AND", "ab"), ("OR", "ab"), ("NOT", "a"),
    ("ISNULL_F", "a"), ("ISNULL_I", "a"), ("ISNULL_B", "a"), ("ISNULL_C", "a"),
    ("IN_F", "a"), ("IN_I", "a"),           # b = offset, c = count in the f64 / i64 pool
    ("LUT_B", "a"), ("LUT_I", "a"), ("LUT_C", "a"),   # b = offset, c = size in the i64 pool
    ("SEL_8", "abc"), ("SEL_B", "abc"),     # a = condition, b = then, c = else
    ("RULE", "a"),                          # c = rule index
    ("STORE_8", "a"), ("STORE_B", "a"),     # c = output index
]
OP = {name: i for i, (name, _) in enumerate(OPS)}
OP_REGS = [regs for _, regs in OPS]
NO_DST = {OP["RULE"], OP["STORE_8"], OP["STORE_B"]}
CONST_OPS = {OP["CONST_F"], OP["CONST_I"], OP["CONST_B"]}
LOAD_OPS = {OP["LOAD_F64"], OP["LOAD_I64"], OP["LOAD_I32"], OP["LOAD_B"]}
# opcodes whose result is a uint8 (three-valued bool) register; the rest are 8 bytes wide
BYTE_RESULT_OPS = {OP[name] for name in (
    "LOAD_B", "CONST_B", "EQ_F", "NE_F", "LT_F", "LE_F", "GT_F", "GE_F", "EQ_I", "NE_I", "LT_I",
    "LE_I", "GT_I", "GE_I", "EQ_B", "NE_B", "AND", "OR", "NOT", "ISNULL_F", "ISNULL_I",
    "ISNULL_B", "ISNULL_C", "IN_F", "IN_I", "LUT_B", "SEL_B")}

# column storage types handed to the backends
COL_F64, COL_I64, COL_I32, COL_B = 0, 1, 2, 3


@dataclass
class Output:
    """A derived column: its name, kind and, for categoricals, the dictionary."""
    name: str
    kind: str                       # float int bool categorical datetime duration
    storage: str                    # "f64" "i64" "b3"
    categories: Optional[tuple] = None


@dataclass
class Program:
    code: np.ndarray                # int32 (n_instructions, 5): op, dst, a, b, c
    n_registers: int
    const_f64: np.ndarray
    const_i64: np.ndarray
    columns: list                   # [(column name, COL_* storage)] in load order
    n_rules: int
    outputs: list                   # [Output]
    rule_texts: list

    def disassemble(self) -> str:
        lines = []
        for op, dst, a, b, c in self.code.tolist():
            name, regs = OPS[op]
            parts = [name]
            if op not in NO_DST:
                parts.append(f"r{dst} <-")
            for f, v in zip("abc", (a, b, c)):
                if f in regs:
                    parts.append(f"r{v}")
            if op in LOAD_OPS:
                parts.append(repr(self.columns[b][0]))
            elif op == OP["CONST_F"]:
                parts.append(repr(float(self.const_f64[b])))
            elif op == OP["CONST_I"]:
                parts.append(str(int(self.const_i64[b])))
            elif op == OP["CONST_B"]:
                parts.append({0: "false", 1: "null", 2: "true"}[b])
            elif op in (OP["IN_F"], OP["IN_I"], OP["LUT_B"], OP["LUT_I"], OP["LUT_C"]):
                parts.append(f"pool[{b}:{b + c}]")
            elif op == OP["RULE"]:
                parts.append(f"rule {c}")
            elif op in (OP["STORE_8"], OP["STORE_B"]):
                parts.append(f"-> {self.outputs[c].name}")
            lines.append(" ".join(parts))
        return "\n".join(lines)


@dataclass
class Val:
    """A typed value during compilation: a register, or a literal not yet loaded."""
    kind: str                       # float int bool categorical str datetime duration null
    reg: Optional[int] = None
    lit: object = None
    cats: Optional[tuple] = None    # categorical dictionary (code order)
    pos: int = 0

    @property
    def is_lit(self):
        return self.reg is None


NUMERIC = ("float", "int")
STORAGE = {"float": "f64", "int": "i64", "datetime": "i64", "duration": "i64",
           "categorical": "i64", "bool": "b3"}


class Compiler:
    def __init__(self, schema: dict, table_columns=None):
        self.schema = dict(schema)          # name -> ColumnInfo
        self.table_columns = list(table_columns) if table_columns is not None else None
        self.code: list[list[int]] = []
        self.memo: dict = {}
        self.vreg_count = 0
        self.const_f: dict = {}
        self.flat_f: list = []
        self.const_i: list = []
        self.const_i_memo: dict = {}
        self.columns: list = []
        self.column_index: dict = {}
        self.derived: dict = {}             # name -> Val (registers of derived columns)
        self.outputs: list[Output] = []
        self.rule_texts: list[str] = []
        self.n_rules = 0
        self.rule_index = 0

    # -- emission
    def emit(self, op: str, a=0, b=0, c=0) -> int:
        key = (op, a, b, c)
        if key in self.memo:
            return self.memo[key]
        dst = self.vreg_count
        self.vreg_count += 1
        self.code.append([OP[op], dst, a, b, c])
        self.memo[key] = dst
        return dst

    def emit_sink(self, op: str, a: int, c: int):
        self.code.append([OP[op], -1, a, 0, c])

    def pool_f(self, values) -> int:
        key = tuple(np.float64(v).view(np.int64).item() for v in values)  # bits: NaN, -0.0
        if key not in self.const_f:
            self.const_f[key] = len(self.flat_f)
            self.flat_f.extend(float(v) for v in values)
        return self.const_f[key]

    def pool_i(self, values) -> int:
        key = tuple(int(v) for v in values)
        if key not in self.const_i_memo:
            self.const_i_memo[key] = len(self.const_i)
            self.const_i.extend(key)
        return self.const_i_memo[key]

    # -- errors
    def type_error(self, message, pos):
        return RuleTypeError(message, position=pos)

    # -- rules
    def add_rule(self, parsed: ParsedRule):
        target = parsed.target
        if target is not None:
            is_column = target in self.schema or target in self.derived
            if parsed.assign_op == ":=" or not is_column:
                if target in self.schema:
                    raise self.type_error(f"{target!r} is a column of the table; a derived "
                                          "column needs a new name", parsed.target_pos)
                if target in self.derived:
                    raise self.type_error(f"derived column {target!r} is defined twice",
                                          parsed.target_pos)
                value = self.gen(parsed.expr)
                if value.kind in ("null", "str"):
                    raise self.type_error("a derived column needs a typed expression (a column,"
                                          " a number, a date ...), not a bare "
                                          f"{'null' if value.kind == 'null' else 'string'}",
                                          parsed.expr.pos)
                value = self.materialize(value)
                self.derived[target] = value
                index = len(self.outputs)
                self.outputs.append(Output(target, value.kind, STORAGE[value.kind], value.cats))
                self.emit_sink("STORE_B" if value.kind == "bool" else "STORE_8", value.reg, index)
                return
            expr = Node("cmp", parsed.target_pos,
                        [Node("col", parsed.target_pos, value=target), parsed.expr], "eq")
        else:
            expr = parsed.expr
        value = self.gen(expr)
        if value.kind != "bool":
            raise self.type_error(f"a rule must be true or false, but this is a {value.kind} "
                                  "expression (a comparison is missing?)", expr.pos)
        value = self.materialize(value)
        self.emit_sink("RULE", value.reg, self.n_rules)
        self.rule_texts.append(parsed.text)
        self.n_rules += 1

    # -- values
    def materialize(self, v: Val) -> Val:
        if not v.is_lit:
            return v
        if v.kind == "float":
            reg = self.emit("CONST_F", 0, self.pool_f([v.lit]), 0)
        elif v.kind in ("int", "datetime", "duration"):
            reg = self.emit("CONST_I", 0, self.pool_i([v.lit]), 0)
        elif v.kind == "bool":
            reg = self.emit("CONST_B", 0, 2 if v.lit else 0, 0)
        else:
            raise self.type_error(f"a {v.kind} literal cannot stand here", v.pos)
        return Val(v.kind, reg, cats=v.cats, pos=v.pos)

    def as_float(self, v: Val) -> Val:
        if v.kind == "float":
            return self.materialize(v)
        if v.is_lit:
            return self.materialize(Val("float", lit=float(v.lit), pos=v.pos))
        return Val("float", self.emit("I2F", v.reg), pos=v.pos)

    def load(self, name: str, pos: int) -> Val:
        if name in self.derived:
            return self.derived[name]
        info = self.schema.get(name)
        if info is None:
            known = (self.table_columns if self.table_columns is not None
                     else sorted(self.schema)) + sorted(self.derived)
            shown = ", ".join(map(repr, known[:20])) + (" ..." if len(known) > 20 else "")
            raise self.type_error(f"unknown column {name!r}; the table has {shown}", pos)
        if name not in self.column_index:
            storage = {"float": COL_F64, "int": COL_I64, "datetime": COL_I64,
                       "duration": COL_I64, "bool": COL_B, "categorical": COL_I32}[info.kind]
            self.column_index[name] = len(self.columns)
            self.columns.append((name, storage))
        col = self.column_index[name]
        op = {"float": "LOAD_F64", "int": "LOAD_I64", "datetime": "LOAD_I64",
              "duration": "LOAD_I64", "bool": "LOAD_B", "categorical": "LOAD_I32"}[info.kind]
        return Val(info.kind, self.emit(op, 0, col, 0), cats=info.categories, pos=pos)

    def gen(self, node: Node) -> Val:
        method = getattr(self, "gen_" + node.kind)
        return method(node)

    def gen_num(self, n):
        return Val("float" if isinstance(n.value, float) else "int", lit=n.value, pos=n.pos)

    def gen_str(self, n):
        return Val("str", lit=n.value, pos=n.pos)

    def gen_bool(self, n):
        return Val("bool", lit=n.value, pos=n.pos)

    def gen_null(self, n):
        return Val("null", pos=n.pos)

    def gen_dur(self, n):
        return Val("duration", lit=n.value, pos=n.pos)

    def gen_dt(self, n):
        return Val("datetime", lit=n.value, pos=n.pos)

    def gen_col(self, n):
        return self.load(n.value, n.pos)

    def gen_neg(self, n):
        v = self.gen(n.args[0])
        if v.kind not in ("float", "int", "duration"):
            raise self.type_error(f"unary minus needs a number or a duration, got {v.kind}",
                                  n.pos)
        if v.is_lit:
            if v.kind != "float" and v.lit == INT_NULL:
                raise self.type_error("integer -2**63 is reserved for null", n.pos)
            return Val(v.kind, lit=-v.lit, pos=n.pos)
        return Val(v.kind, self.emit("NEG_F" if v.kind == "float" else "NEG_I", v.reg),
                   pos=n.pos)

    def gen_arith(self, n):
        a, b = self.gen(n.args[0]), self.gen(n.args[1])
        op = n.value
        ka, kb = a.kind, b.kind
        names = {"+": "ADD", "-": "SUB", "*": "MUL", "/": "DIV", "%": "MOD"}
        if "null" in (ka, kb):
            raise self.type_error(f"'{op}' with a null literal is always null; test for null "
                                  "with 'is null'", n.pos)
        if ka in NUMERIC and kb in NUMERIC:
            if ka == kb == "int" and op != "/":
                return self.int_op(names[op] + "_I", a, b, "int", n.pos)
            return Val("float", self.emit(names[op] + "_F", self.as_float(a).reg,
                                          self.as_float(b).reg), pos=n.pos)
        # dates and durations
        if op == "-" and ka == kb == "datetime":
            return self.int_op("SUB_I", a, b, "duration", n.pos)
        if op in "+-" and ka == "datetime" and kb == "duration":
            return self.int_op(names[op] + "_I", a, b, "datetime", n.pos)
        if op == "+" and ka == "duration" and kb == "datetime":
            return self.int_op("ADD_I", a, b, "datetime", n.pos)
        if op in "+-" and ka == kb == "duration":
            return self.int_op(names[op] + "_I", a, b, "duration", n.pos)
        if op == "*" and {ka, kb} == {"duration", "int"}:
            return self.int_op("MUL_I", a, b, "duration", n.pos)
        if op == "/" and ka == kb == "duration":
            return Val("float", self.emit("DIV_F", self.as_float(a).reg, self.as_float(b).reg),
                       pos=n.pos)
        hint = ""
        if {ka, kb} & {"datetime", "duration"}:
            hint = (" (dates take '+'/'-' with durations like 30 days, and subtract to a "
                    "duration)")
        raise self.type_error(f"'{op}' is not defined for {ka} and {kb}{hint}", n.pos)

    def int_op(self, op, a, b, kind, pos):
        a, b = self.materialize(a), self.materialize(b)
        return Val(kind, self.emit(op, a.reg, b.reg), pos=pos)

    def gen_call(self, n):
        name = n.value
        args = [self.gen(x) for x in n.args]
        if name == "len":
            (v,) = args
            if v.kind == "str" and v.is_lit:
                return Val("int", lit=len(v.lit), pos=n.pos)
            if v.kind != "categorical":
                raise self.type_error(f"len() needs a string or categorical column, got {v.kind}",
                                      n.pos)
            lengths = [len(str(c)) for c in v.cats] or [0]
            return Val("int", self.emit("LUT_I", v.reg, self.pool_i(lengths), len(lengths)),
                       pos=n.pos)
        for v, node in zip(args, n.args):
            if v.kind not in NUMERIC and not (name in ("min", "max", "abs")
                                              and v.kind in ("duration", "datetime")):
                raise self.type_error(f"{name}() needs numbers, got {v.kind}", node.pos)
        if name == "abs":
            (v,) = args
            if v.kind == "datetime":
                raise self.type_error("abs() of a datetime is not defined", n.pos)
            if v.is_lit:
                return Val(v.kind, lit=abs(v.lit), pos=n.pos)
            return Val(v.kind, self.emit("ABS_F" if v.kind == "float" else "ABS_I", v.reg),
                       pos=n.pos)
        if name in ("min", "max"):
            kinds = {v.kind for v in args}
            if kinds <= set(NUMERIC):
                kind = "float" if "float" in kinds else "int"
            elif len(kinds) == 1:
                kind = kinds.pop()
            else:
                raise self.type_error(f"{name}() arguments mix {sorted(kinds)}", n.pos)
            suffix = "_F" if kind == "float" else "_I"
            conv = self.as_float if kind == "float" else self.materialize
            acc = conv(args[0])
            for v in args[1:]:
                acc = Val(kind, self.emit(name.upper() + suffix, acc.reg, conv(v).reg), pos=n.pos)
            return acc
        if name in ("floor", "ceil"):
            (v,) = args
            if v.kind == "int":
                return v
            v = self.as_float(v)
            return Val("float", self.emit(name.upper() + "_F", v.reg), pos=n.pos)
        if name == "round":
            v = args[0]
            digits = 0
            if len(args) == 2:
                d = args[1]
                if not (d.is_lit and d.kind == "int") or not -15 <= d.lit <= 15:
                    raise self.type_error("round()'s second argument must be an integer "
                                          "literal between -15 and 15", n.args[1].pos)
                digits = d.lit
            if v.kind == "int" and digits >= 0:
                return v
            v = self.as_float(v)
            if digits == 0:
                return Val("float", self.emit("RINT_F", v.reg), pos=n.pos)
            # NumPy's np.round: rint(x * 10**d) / 10**d (or * and / swapped for d < 0)
            scale = self.materialize(Val("float", lit=float(10.0 ** abs(digits))))
            if digits > 0:
                t = self.emit("RINT_F", self.emit("MUL_F", v.reg, scale.reg))
                return Val("float", self.emit("DIV_F", t, scale.reg), pos=n.pos)
            t = self.emit("RINT_F", self.emit("DIV_F", v.reg, scale.reg))
            return Val("float", self.emit("MUL_F", t, scale.reg), pos=n.pos)
        raise AssertionError(name)

    # -- logic
    def as_bool(self, v: Val, pos) -> Val:
        if v.kind == "null":
            return Val("bool", self.emit("CONST_B", 0, 1, 0), pos=pos)
        if v.kind != "bool":
            raise self.type_error(f"expected a true/false condition, got a {v.kind} expression",
                                  v.pos)
        return self.materialize(v)

    def gen_and(self, n):
        a, b = self.as_bool(self.gen(n.args[0]), n.pos), self.as_bool(self.gen(n.args[1]), n.pos)
        return Val("bool", self.emit("AND", a.reg, b.reg), pos=n.pos)

    def gen_or(self, n):
        a, b = self.as_bool(self.gen(n.args[0]), n.pos), self.as_bool(self.gen(n.args[1]), n.pos)
        return Val("bool", self.emit("OR", a.reg, b.reg), pos=n.pos)

    def gen_not(self, n):
        a = self.as_bool(self.gen(n.args[0]), n.pos)
        return Val("bool", self.emit("NOT", a.reg), pos=n.pos)

    def gen_implies(self, n):
        a, b = self.as_bool(self.gen(n.args[0]), n.pos), self.as_bool(self.gen(n.args[1]), n.pos)
        return Val("bool", self.emit("OR", self.emit("NOT", a.reg), b.reg), pos=n.pos)

    def gen_isnull(self, n):
        v = self.gen(n.args[0])
        if v.is_lit:
            return Val("bool", lit=v.kind == "null", pos=n.pos)
        op = {"float": "ISNULL_F", "bool": "ISNULL_B", "categorical": "ISNULL_C"}.get(
            v.kind, "ISNULL_I")
        return Val("bool", self.emit(op, v.reg), pos=n.pos)

    def gen_between(self, n):
        x, lo, hi = n.args
        return self.gen(Node("and", n.pos, [Node("cmp", n.pos, [lo, x], "le"),
                                            Node("cmp", n.pos, [x, hi], "le")]))

    def gen_ifelse(self, n):
        cond = self.as_bool(self.gen(n.args[0]), n.pos)
        a, b = self.gen(n.args[1]), self.gen(n.args[2])
        kinds = {a.kind, b.kind}
        if kinds <= {"categorical", "str", "null"} and kinds & {"categorical", "str"}:
            union = self.union_categories([a, b])
            ra, rb = (self.to_union_codes(v, union) for v in (a, b))
            return Val("categorical", self.emit("SEL_8", cond.reg, ra, rb), cats=union,
                       pos=n.pos)
        if "null" in kinds and len(kinds) == 2:
            kind = (kinds - {"null"}).pop()
            a = self.null_of(kind, n.pos) if a.kind == "null" else a
            b = self.null_of(kind, n.pos) if b.kind == "null" else b
        kinds = {a.kind, b.kind}
        if kinds <= set(NUMERIC) and len(kinds) == 2:
            a, b = self.as_float(a), self.as_float(b)
        elif len(kinds) != 1 or kinds == {"null"}:
            raise self.type_error(f"the branches of 'if ... then ... else' have different types:"
                                  f" {a.kind} and {b.kind}", n.pos)
        a, b = self.materialize(a), self.materialize(b)
        op = "SEL_B" if a.kind == "bool" else "SEL_8"
        return Val(a.kind, self.emit(op, cond.reg, a.reg, b.reg), pos=n.pos)

    def null_of(self, kind, pos) -> Val:
        if kind == "float":
            return Val("float", self.emit("CONST_F", 0, self.pool_f([math.nan]), 0), pos=pos)
        if kind == "bool":
            return Val("bool", self.emit("CONST_B", 0, 1, 0), pos=pos)
        if kind in ("int", "datetime", "duration"):
            return Val(kind, self.emit("CONST_I", 0, self.pool_i([INT_NULL]), 0), pos=pos)
        raise self.type_error(f"no null of kind {kind}", pos)

    @staticmethod
    def union_categories(values) -> tuple:
        seen = {}
        for v in values:
            items = v.cats if v.kind == "categorical" else ((v.lit,) if v.kind == "str" else ())
            for c in items:
                seen.setdefault(c, len(seen))
        return tuple(seen)

    def to_union_codes(self, v: Val, union: tuple) -> int:
        where = {c: i for i, c in enumerate(union)}
        if v.kind == "null":
            return self.emit("CONST_I", 0, self.pool_i([-1]), 0)
        if v.kind == "str":
            return self.emit("CONST_I", 0, self.pool_i([where[v.lit]]), 0)
        table = [where[c] for c in v.cats] or [-1]
        if list(table) == list(range(len(v.cats))):
            return v.reg
        return self.emit("LUT_C", v.reg, self.pool_i(table), len(table))

    def gen_in(self, n):
        x = self.gen(n.args[0])
        items = [self.gen(a) for a in n.args[1:]]
        for v, node in zip(items, n.args[1:]):
            if not v.is_lit:
                raise self.type_error("the list after 'in' must hold literals (numbers, "
                                      "strings, dates)", node.pos)
            if v.kind == "null":
                raise self.type_error("null in an 'in' list never matches; test for null with "
                                      "'is null'", node.pos)
        if x.kind == "categorical":
            table = [0] * len(x.cats)
            for v, node in zip(items, n.args[1:]):
                for code, cat in enumerate(x.cats):
                    if _cat_equals(cat, v):
                        table[code] = 2
            table = table or [0]
            return Val("bool", self.emit("LUT_B", x.reg, self.pool_i(table), len(table)),
                       pos=n.pos)
        if x.kind in NUMERIC:
            kinds = {v.kind for v in items}
            if not kinds <= set(NUMERIC):
                raise self.type_error(f"'in' compares {x.kind} with {sorted(kinds - set(NUMERIC))}"
                                      " values", n.pos)
            if x.kind == "int" and kinds == {"int"}:
                x = self.materialize(x)
                values = sorted(set(v.lit for v in items))
                return Val("bool", self.emit("IN_I", x.reg, self.pool_i(values), len(values)),
                           pos=n.pos)
            xf = self.as_float(x)
            values = sorted(set(float(v.lit) for v in items))
            return Val("bool", self.emit("IN_F", xf.reg, self.pool_f(values), len(values)),
                       pos=n.pos)
        if x.kind in ("datetime", "duration"):
            x = self.materialize(x)
            values = []
            for v, node in zip(items, n.args[1:]):
                values.append(self.coerce_literal(v, x.kind, node.pos).lit)
            values = sorted(set(values))
            return Val("bool", self.emit("IN_I", x.reg, self.pool_i(values), len(values)),
                       pos=n.pos)
        if x.kind == "bool":
            x = self.materialize(x)
            out = None
            for v, node in zip(items, n.args[1:]):
                if v.kind != "bool":
                    raise self.type_error(f"'in' compares bool with {v.kind}", node.pos)
                eq = self.emit("EQ_B", x.reg, self.materialize(v).reg)
                out = eq if out is None else self.emit("OR", out, eq)
            return Val("bool", out, pos=n.pos)
        raise self.type_error(f"'in' is not defined for {x.kind}", n.pos)

    def coerce_literal(self, v: Val, kind: str, pos) -> Val:
        if v.kind == kind:
            return v
        if kind == "datetime" and v.kind == "str":
            return Val("datetime", lit=_parse_datetime(v.lit, pos, "date"), pos=pos)
        raise self.type_error(f"expected a {kind} value, got {v.kind}", pos)

    def gen_cmp(self, n):
        a, b = self.gen(n.args[0]), self.gen(n.args[1])
        op = n.value
        ka, kb = a.kind, b.kind
        if "null" in (ka, kb):
            raise self.type_error("comparing with null is always null; use 'is null' or "
                                  "'is not null'", n.pos)
        if ka == "categorical" or kb == "categorical":
            return self.cat_compare(op, a, b, n.pos)
        if ka == "str" or kb == "str":
            other = b if ka == "str" else a
            if other.kind == "datetime":
                lit = a if ka == "str" else b
                lit = self.coerce_literal(lit, "datetime", lit.pos)
                a, b = (lit, b) if ka == "str" else (a, lit)
                ka = kb = "datetime"
            else:
                raise self.type_error(f"cannot compare a string with {other.kind}", n.pos)
        if ka in NUMERIC and kb in NUMERIC:
            if ka == kb == "int":
                return self.int_cmp(op, a, b, n.pos)
            return Val("bool", self.emit(op.upper() + "_F", self.as_float(a).reg,
                                         self.as_float(b).reg), pos=n.pos)
        if ka == kb and ka in ("datetime", "duration"):
            return self.int_cmp(op, a, b, n.pos)
        if ka == kb == "bool":
            if op not in ("eq", "ne"):
                raise self.type_error("booleans can only be compared with = and !=", n.pos)
            a, b = self.materialize(a), self.materialize(b)
            return Val("bool", self.emit(op.upper() + "_B", a.reg, b.reg), pos=n.pos)
        hint = ""
        if {ka, kb} == {"duration", "int"} or {ka, kb} == {"duration", "float"}:
            hint = " (write the number with a unit, like 30 days)"
        raise self.type_error(f"cannot compare {ka} with {kb}{hint}", n.pos)

    def int_cmp(self, op, a, b, pos):
        a, b = self.materialize(a), self.materialize(b)
        return Val("bool", self.emit(op.upper() + "_I", a.reg, b.reg), pos=pos)

    def cat_compare(self, op, a, b, pos):
        if a.kind == "categorical" and b.kind == "categorical":
            union = self.union_categories([a, b])
            if op in ("eq", "ne"):
                rank = {c: i for i, c in enumerate(union)}
            else:
                try:
                    rank = {c: i for i, c in enumerate(sorted(union))}
                except TypeError:
                    raise self.type_error("these categories have no common order", pos) from None
            ra = self.emit("LUT_I", a.reg, *self.lut([rank[c] for c in a.cats], INT_NULL))
            rb = self.emit("LUT_I", b.reg, *self.lut([rank[c] for c in b.cats], INT_NULL))
            return Val("bool", self.emit(op.upper() + "_I", ra, rb), pos=pos)
        cat, lit, flipped = (a, b, False) if a.kind == "categorical" else (b, a, True)
        if not lit.is_lit:
            raise self.type_error(f"cannot compare a categorical column with a {lit.kind} "
                                  "expression", pos)
        if flipped:
            op = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}.get(op, op)
        table = []
        for c in cat.cats:
            if op in ("eq", "ne"):
                r = _cat_equals(c, lit)
                table.append(2 if r == (op == "eq") else 0)
            else:
                try:
                    r = {"lt": c < lit.lit, "le": c <= lit.lit, "gt": c > lit.lit,
                         "ge": c >= lit.lit}[op]
                except TypeError:
                    raise self.type_error(f"categories like {c!r} cannot be ordered against "
                                          f"{lit.lit!r}", pos) from None
                table.append(2 if r else 0)
        table = table or [0]
        return Val("bool", self.emit("LUT_B", cat.reg, self.pool_i(table), len(table)), pos=pos)

    def lut(self, table, empty):
        table = table or [empty]
        return self.pool_i(table), len(table)

    # -- finish
    def finish(self) -> Program:
        code = self.allocate()
        const_f = np.array(self.flat_f, dtype=np.float64)
        return Program(code, self.n_physical, const_f,
                       np.array(self.const_i, dtype=np.int64), list(self.columns),
                       self.n_rules, list(self.outputs), list(self.rule_texts))

    def allocate(self) -> np.ndarray:
        """Virtual registers -> as few physical ones as liveness allows. Constants get
        registers of their own (filled once per thread), the rest are reused once dead."""
        code = [list(i) for i in self.code]
        last_use = {}
        for pc, (op, dst, a, b, c) in enumerate(code):
            for f, v in zip("abc", (a, b, c)):
                if f in OP_REGS[op]:
                    last_use[v] = pc
        phys = {}
        n_const = 0
        for op, dst, *_ in code:
            if op in CONST_OPS:
                phys[dst] = n_const
                n_const += 1
        free: list[int] = []
        widths: dict = {}
        top = n_const
        out = []
        for pc, (op, dst, a, b, c) in enumerate(code):
            regs = OP_REGS[op]
            fields = [a, b, c]
            for k, f in enumerate("abc"):
                if f in regs:
                    fields[k] = phys[fields[k]]
            # registers whose last use is here are free for this instruction's result,
            # but only when their element width is the result's: an in-place loop that
            # widens (uint8 condition -> int64 value) would overwrite operands not yet read
            width = 1 if op in BYTE_RESULT_OPS else 8
            later = []
            for k, f in enumerate("abc"):
                if f in regs:
                    v = (a, b, c)[k]
                    if last_use.get(v) == pc and phys[v] >= n_const and phys[v] not in free \
                            and phys[v] not in later:
                        (free if widths.get(v, 8) == width else later).append(phys[v])
            if op in NO_DST:
                pdst = 0
            elif op in CONST_OPS:
                pdst = phys[dst]
                widths[dst] = width
            else:
                if free:
                    pdst = free.pop()
                else:
                    pdst = top
                    top += 1
                phys[dst] = pdst
                widths[dst] = width
                if dst not in last_use and op not in NO_DST:
                    free.append(pdst)
            free.extend(later)
            out.append([op, pdst] + fields)
        self.n_physical = max(top, 1)
        return np.array(out, dtype=np.int32).reshape(-1, 5)


def _cat_equals(category, lit: Val) -> bool:
    """Does a category equal a literal? Strings, numbers and bools compare by value."""
    value = lit.lit
    if isinstance(category, (bool, np.bool_)) != isinstance(value, bool):
        return False
    if isinstance(category, (_dt.date, np.datetime64)) and lit.kind == "str":
        try:
            return np.datetime64(category, "ns") == np.datetime64(value, "ns")
        except (ValueError, TypeError):
            return False
    try:
        return bool(category == value)
    except Exception:
        return False


def compile_rules(texts, schema: dict, table_columns=None) -> Program:
    """Parse, type-check against ``schema`` (name -> ColumnInfo) and compile ``texts``.
    ``table_columns`` (all the table's names) only makes error messages complete."""
    compiler = Compiler(schema, table_columns)
    for index, text in enumerate(texts):
        parsed = parse(text, index)
        try:
            compiler.add_rule(parsed)
        except RuleError as e:
            raise e.located(index, text) from None
    return compiler.finish()
