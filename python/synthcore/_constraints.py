"""Constraints fitted into the Gaussian copula (docs/copula.md "Constraints").

``GaussianCopula(rules=[...], fixed_combinations=[...])``:

- every rule is checked on the real table at fit (a rule false on some real row is an
  error naming it and the count; a null rule passes, docs/rules.md) and stored: every
  ``sample()`` enforces it by reject and refill (synthcore/_rules_sampling.py), so the
  guarantee never rests on the reconstruction's arithmetic;
- a top-level conjunct ``hi - lo >= off`` (any of ``a < b``, ``a <= b``, ``a > b``,
  ``a >= b``, ``b - a >= 30 days``, ``b >= a + 5``, ``x between a and b`` ...) over two
  numeric or two datetime columns is reparameterised: the model learns the column
  ``d = hi - lo - off`` (named ``<hi - lo>``) in place of ``hi``, and sampling
  reconstructs ``hi = lo + off + d``. Chains (``a < b < c``) reparameterise each link;
  a column gets at most one parent and cycles are skipped;
- a fixed combination (``("country", "city")``) is modelled as one categorical column
  (named ``<country, city>``) whose levels are the combinations seen in the data,
  split back into its member columns when sampling.

This module holds the fitted description (``ConstraintPlan``): how the table is
transformed before fitting, how the sampled inner columns become the user's columns,
how conditions on member columns are translated, and its JSON form for model files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ._table import OutputColumn, TableColumn

INT64_MIN = np.iinfo(np.int64).min
COMBINATION_KINDS = ("categorical", "bool", "int")


class ConstraintError(ValueError):
    """A constraint of a GaussianCopula does not hold on, or does not fit, its table."""


# ---- rule analysis ------------------------------------------------------------------------

def _linear(node):
    """(coefficients {column: int}, constant, constant is a duration) of a sum of columns and
    constants, or None when the expression is anything else."""
    k = node.kind
    if k == "col":
        return {node.value: 1}, 0, False
    if k == "num":
        return {}, node.value, False
    if k == "dur":
        return {}, int(node.value), True
    if k == "neg" and len(node.args) == 1:
        inner = _linear(node.args[0])
        if inner is None:
            return None
        return {c: -v for c, v in inner[0].items()}, -inner[1], inner[2]
    if k == "arith" and node.value in ("+", "-") and len(node.args) == 2:
        a, b = _linear(node.args[0]), _linear(node.args[1])
        if a is None or b is None:
            return None
        sign = 1 if node.value == "+" else -1
        coef = dict(a[0])
        for c, v in b[0].items():
            coef[c] = coef.get(c, 0) + sign * v
        return {c: v for c, v in coef.items() if v}, a[1] + sign * b[1], a[2] or b[2]
    return None


def _conjuncts(node):
    if node.kind == "and":
        for a in node.args:
            yield from _conjuncts(a)
    elif node.kind == "between" and len(node.args) == 3:
        from ._rules_compile import Node
        x, lo, hi = node.args
        yield Node("cmp", node.pos, [lo, x], "le")
        yield Node("cmp", node.pos, [x, hi], "le")
    else:
        yield node


def inequalities(parsed):
    """(hi, lo, offset, strict, offset is a duration) for each conjunct ``hi - lo >= off``
    (``>`` when strict) at the top level of a parsed rule."""
    out = []
    if parsed.target is not None:
        return out
    for node in _conjuncts(parsed.expr):
        if node.kind != "cmp" or node.value not in ("lt", "le", "gt", "ge"):
            continue
        left, right = _linear(node.args[0]), _linear(node.args[1])
        if left is None or right is None:
            continue
        coef = dict(left[0])
        for c, v in right[0].items():
            coef[c] = coef.get(c, 0) - v
        coef = {c: v for c, v in coef.items() if v}
        const = left[1] - right[1]               # left - right = sum(coef * col) + const
        if len(coef) != 2 or sorted(coef.values()) != [-1, 1]:
            continue
        plus = next(c for c, v in coef.items() if v == 1)
        minus = next(c for c, v in coef.items() if v == -1)
        strict = node.value in ("lt", "gt")
        if node.value in ("ge", "gt"):          # plus - minus + const >= 0
            out.append((plus, minus, -const, strict, left[2] or right[2]))
        else:                                   # minus - plus >= const
            out.append((minus, plus, const, strict, left[2] or right[2]))
    return out


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return "'" + str(value).replace("'", "''") + "'"


# ---- the fitted description --------------------------------------------------------------

@dataclass
class Reparam:
    """``hi = lo + offset + d``: the model's column ``inner`` holds d."""
    hi: str
    lo: str
    offset: float            # int for int/datetime pairs (ns for datetimes)
    strict: bool
    rule: str                # the rule text it comes from
    inner: str
    kind: str                # hi's kind: float | int | datetime
    dtype: str
    tz: Optional[str] = None
    round_mode: int = 0      # hi's learnt rounding (floats)
    round_q: float = 0.0


@dataclass
class Combination:
    """Member columns modelled as one categorical ``inner`` whose level ``str(k)`` is the
    k-th combination seen; ``values[j][k]``: member j's value in it (None: null)."""
    members: list
    inner: str
    kinds: list
    dtypes: list
    values: list             # per member: list over combinations
    _codes: Optional[list] = field(default=None, repr=False)
    _categories: Optional[list] = field(default=None, repr=False)

    def member_codes(self):
        """Per member: (codes over combinations: category index or -1, categories) for
        categoricals; (values, null) arrays for bool and int members."""
        if self._codes is None:
            codes, cats = [], []
            for kind, dtype, vals in zip(self.kinds, self.dtypes, self.values):
                null = np.array([v is None for v in vals], dtype=bool)
                if kind == "categorical":
                    seen = []
                    index = {}
                    for v in vals:
                        if v is not None and v not in index:
                            index[v] = len(seen)
                            seen.append(v)
                    # int8 codes below 127 levels, as the copula's own categoricals
                    c = np.array([-1 if v is None else index[v] for v in vals],
                                 dtype=np.int8 if len(seen) < 127 else np.int32)
                    cat = np.empty(len(seen), dtype=object)
                    cat[:] = seen
                    codes.append(c)
                    cats.append(cat)
                elif kind == "bool":
                    codes.append(np.array([bool(v) if v is not None else False for v in vals]))
                    cats.append(null)
                else:
                    codes.append(np.array([int(v) if v is not None else 0 for v in vals],
                                          dtype=np.int64))
                    cats.append(null)
            self._codes, self._categories = codes, cats
        return self._codes, self._categories


@dataclass
class ConstraintPlan:
    rule_texts: list                          # every rule, stored and enforced at sampling
    reparams: list = field(default_factory=list)       # in reconstruction order
    combinations: list = field(default_factory=list)
    order: list = field(default_factory=list)          # the user's column order
    skipped: list = field(default_factory=list)        # (rule, why) inequalities not used

    def all_reparameterised(self) -> bool:
        """Every stored rule is a conjunction of inequalities that are all
        reparameterised, so the model's plain sample satisfies the rules by construction
        (up to float rounding, which sampling still checks)."""
        cached = getattr(self, "_all_reparameterised", None)
        if cached is None:
            from .rules import Rules
            skipped = {rule for rule, _ in self.skipped}
            links = {}
            for r in self.reparams:
                links[r.rule] = links.get(r.rule, 0) + 1
            cached = bool(self.rule_texts) and all(
                p.text not in skipped and p.target is None and
                len(list(_conjuncts(p.expr))) == len(inequalities(p)) == links.get(p.text, 0)
                for p in Rules(self.rule_texts).parsed)
            self._all_reparameterised = cached
        return cached

    # -- names
    def inner_of(self) -> dict:
        """{user column: inner column} for reparameterised columns and combination members."""
        out = {r.hi: r.inner for r in self.reparams}
        for c in self.combinations:
            for m in c.members:
                out[m] = c.inner
        return out

    def alias_marginals(self, marginals: dict) -> dict:
        """The ``marginals`` setting keyed by inner names: hi's marginal models d."""
        out = dict(marginals)
        for r in self.reparams:
            if r.hi in out:
                out[r.inner] = out.pop(r.hi)
        return out

    def combination_of_inner(self, name):
        for c in self.combinations:
            if c.inner == name:
                return c
        return None

    # -- sampled inner columns -> user columns
    def outputs(self, inner: list) -> list:
        by_name = {c.name: c for c in inner}
        for comb in self.combinations:
            col = by_name.pop(comb.inner)
            # the combination of each of the inner column's levels; members are gathered
            # from per-level tables, straight by the sampled level codes
            level_comb = np.array([int(x) for x in col.categories], dtype=np.intp) \
                if len(col.categories) else np.zeros(1, np.intp)
            levels = np.asarray(col.values).astype(np.intp) if len(col.categories) \
                else np.zeros(len(col.values), np.intp)
            codes, cats = comb.member_codes()
            for j, name in enumerate(comb.members):
                kind, dtype = comb.kinds[j], comb.dtypes[j]
                if kind == "categorical":
                    c = codes[j][level_comb][levels]
                    null = c < 0 if (codes[j] < 0).any() else None   # no null combination
                    by_name[name] = OutputColumn(name, kind, c, null if null is not None and
                                                 null.any() else None, dtype, cats[j])
                else:
                    null = cats[j][level_comb][levels] if cats[j].any() else \
                        np.zeros(len(levels), bool)
                    v = codes[j][level_comb][levels]
                    if kind == "int":
                        v = v.astype(dtype, copy=False)
                    by_name[name] = OutputColumn(name, kind, v, null if null.any() else None,
                                                 dtype)
        for r in self.reparams:
            d = by_name.pop(r.inner)
            by_name[r.hi] = _reconstruct(r, by_name[r.lo], d)
        return [by_name[name] for name in self.order]

    # -- conditions
    def translate_conditions(self, conditions, level_order):
        """(conditions on the model's inner columns, rule texts to enforce) for the user's
        ``conditions``. A condition on a combination member becomes the set of combination
        levels that agree with it (GaussianCopula._conditional_latents conditions the
        latent on the interval from the first to the last of them, in the model's level
        order ``level_order(inner)``); when other levels lie in between, rules on the
        member reject them, so the result stays exact."""
        if conditions is None:
            return None, []
        children = {r.hi: r for r in self.reparams}
        members = {m: c for c in self.combinations for m in c.members}
        if not isinstance(conditions, dict):
            names = getattr(conditions, "column_names", None)      # pyarrow
            if names is None:
                names = getattr(conditions, "columns", ())          # pandas, polars
            names = [str(x) for x in names]
            bad = [n for n in names if n in children or n in members]
            if bad:
                raise ValueError(f"per-row conditions name {bad}, columns the model derives "
                                 "(reparameterised or in a fixed combination); give a dict "
                                 "of conditions for those")
            return conditions, []
        out, wanted = {}, {}
        for name, v in conditions.items():
            if name in children:
                r = children[name]
                raise ValueError(
                    f"conditions name column {name!r}, which the model reconstructs as "
                    f"{r.lo!r} plus a modelled difference (rule {r.rule!r}), so it cannot be "
                    f"conditioned on; pass it as a rule instead, e.g. rules=[\"{name} ...\"]")
            if name in members:
                wanted.setdefault(members[name].inner, []).append((name, v))
            else:
                out[name] = v
        rules = []
        for inner, conds in wanted.items():
            comb = self.combination_of_inner(inner)
            allowed = np.ones(len(comb.values[0]), dtype=bool)
            for name, v in conds:
                allowed &= _matches(comb, comb.members.index(name), name, v)
            if not allowed.any():
                from ._conditional import ImpossibleConditionError
                raise ImpossibleConditionError(
                    f"conditions {dict(conds)!r} on fixed combination {tuple(comb.members)}: "
                    "no combination seen in the data agrees with them")
            labels = frozenset(str(k) for k in np.flatnonzero(allowed))
            out[inner] = labels
            order = [str(x) for x in level_order(inner)]
            at = [i for i, x in enumerate(order) if x in labels]
            if at and at[-1] - at[0] + 1 != len(at):
                rules.extend(_condition_rule(comb, name, v) for name, v in conds)
        return out, rules

    # -- persistence
    def to_json(self) -> dict:
        return {"rules": list(self.rule_texts), "order": list(self.order),
                "reparams": [{k: getattr(r, k) for k in Reparam.__dataclass_fields__}
                             for r in self.reparams],
                "combinations": [{"members": c.members, "inner": c.inner, "kinds": c.kinds,
                                  "dtypes": c.dtypes, "values": c.values}
                                 for c in self.combinations],
                "skipped": [list(s) for s in self.skipped]}

    @classmethod
    def from_json(cls, e: dict) -> "ConstraintPlan":
        return cls(list(e["rules"]), [Reparam(**r) for r in e["reparams"]],
                   [Combination(c["members"], c["inner"], c["kinds"], c["dtypes"],
                                c["values"]) for c in e["combinations"]],
                   list(e["order"]), [tuple(s) for s in e.get("skipped", [])])


def _is_null(v) -> bool:
    """None, NaN, pd.NA, NaT: a condition asking for null."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return True
    if isinstance(v, (tuple, list, str, bytes)) or np.ndim(v) != 0:
        return False
    import pandas as pd
    return bool(pd.isna(v))


def _matches(comb, j, name, v):
    vals = comb.values[j]
    kind = comb.kinds[j]
    if _is_null(v):
        return np.array([x is None for x in vals])
    if isinstance(v, (tuple, list)):
        if kind != "int" or len(v) != 2:
            raise ValueError(f"conditions[{name!r}]: a range condition needs an integer "
                             "column and a (low, high) pair")
        if not v[0] <= v[1]:
            raise ValueError(f"conditions[{name!r}]: low must be <= high, got {tuple(v)}")
        return np.array([x is not None and v[0] <= x <= v[1] for x in vals])
    if hasattr(v, "item"):
        v = v.item()
    if kind == "bool":
        return np.array([x is not None and x == bool(v) for x in vals])
    return np.array([x is not None and x == v for x in vals])


def _condition_rule(comb, name, v) -> str:
    col = quote_name(name)
    if _is_null(v):
        return f"{col} is null"
    if isinstance(v, (tuple, list)):
        return f"{col} between {_literal(v[0])} and {_literal(v[1])}"
    return f"{col} = {_literal(v.item() if hasattr(v, 'item') else v)}"


def _int64_view(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind in "mM" and x.dtype.itemsize == 8:
        return x.view(np.int64)
    return x if x.dtype == np.int64 else x.astype(np.int64)


def _round_float(v: np.ndarray, r: Reparam) -> None:
    """hi's learnt rounding (floats) or the whole number (int hi from a float lo), in place."""
    if r.kind == "int":
        np.rint(v, out=v)
    elif r.round_mode == 1:
        v *= r.round_q
        np.rint(v, out=v)
        v /= r.round_q
    elif r.round_mode == 2:
        v /= r.round_q
        np.rint(v, out=v)
        v *= r.round_q


def _reconstruct(r: Reparam, lo: OutputColumn, d: OutputColumn) -> OutputColumn:
    """hi = lo + offset + d, with hi's dtype, rounding and null (null where d or lo is).
    Each step runs in place on one pooled buffer (a 1M-row sample pays a few ms here)."""
    from . import _buffers
    null = d.null if lo.null is None else (lo.null if d.null is None else d.null | lo.null)
    n = len(d.values)
    if r.kind == "datetime" or (r.kind == "int" and d.kind != "float" and lo.kind == "int"):
        lo_values = _int64_view(lo.values)
        v = np.add(lo_values, _int64_view(d.values), out=_buffers.empty(n, np.int64))
        if r.offset:
            v += np.int64(r.offset)
        if r.round_mode == 2:
            # hi's own quantum (whole days ...), to the nearest multiple; where that falls
            # below lo + offset (at it, for strict rules), the next one up
            q = np.int64(int(r.round_q))
            v += q // 2
            v //= q
            v *= q
            gap = v - lo_values - np.int64(r.offset)
            v[gap <= 0 if r.strict else gap < 0] += q
        if r.kind == "int":
            v = v.astype(r.dtype, copy=False)
    else:
        v = np.add(lo.values, d.values, out=_buffers.empty(n, np.float64), dtype=np.float64)
        if r.offset:
            v += float(r.offset)
        step = 1.0 if r.kind == "int" else \
            (1.0 / r.round_q if r.round_mode == 1 else r.round_q if r.round_mode == 2 else 0.0)
        _round_float(v, r)
        # rounding to the nearest, or d's own float error (d = hi - lo - offset can be an
        # ulp below 0 on real rows), may put hi below lo + offset (at it, for strict
        # rules): there hi is the next value up on its grid (or the least that keeps it)
        with np.errstate(invalid="ignore"):
            # compared as "hi >= lo + offset" is evaluated
            floor = np.add(lo.values, float(r.offset), dtype=np.float64) if r.offset \
                else lo.values
            broken = np.flatnonzero(v <= floor if r.strict else v < floor)
        if broken.size:
            if step:
                up = v[broken] + step
                _round_float(up, r)
            else:
                up = floor[broken]
                if r.strict:
                    up = np.nextafter(up, np.inf)
            v[broken] = up
        if r.kind == "int":
            if null is not None:
                v[null] = 0.0
            v = v.astype(r.dtype)
        elif r.dtype == "float32":
            v = v.astype(np.float32)
            with np.errstate(invalid="ignore"):
                broken = np.flatnonzero(v <= floor if r.strict else v < floor)
            if broken.size:         # rounded down to float32
                v[broken] = np.nextafter(v[broken], np.float32(np.inf))
    if null is not None:
        if not null.any():
            null = None
        elif v.dtype.kind == "f":
            v[null] = np.nan
        elif r.kind == "datetime":
            v[null] = INT64_MIN
        else:
            v[null] = np.iinfo(v.dtype).min
    return OutputColumn(r.hi, r.kind, v, null, r.dtype, None, r.tz)


# ---- fit ---------------------------------------------------------------------------------

def normalise_rules(rules):
    """A ``synthcore.Rules`` (or None) from a list of rule strings or Rules."""
    if rules is None:
        return None
    from .rules import Rules
    if isinstance(rules, Rules):
        return rules
    if isinstance(rules, str):
        rules = [rules]
    return Rules(list(rules))


def normalise_combinations(fixed_combinations) -> list:
    out = []
    seen = {}
    for i, combo in enumerate(fixed_combinations or []):
        if isinstance(combo, str) or not isinstance(combo, (tuple, list)):
            raise ValueError(f"fixed_combinations[{i}] must be a tuple of column names, got "
                             f"{combo!r}")
        names = list(combo)
        if len(names) < 2 or len(set(names)) != len(names) or \
                not all(isinstance(n, str) for n in names):
            raise ValueError(f"fixed_combinations[{i}] must name two or more distinct columns, "
                             f"got {combo!r}")
        for n in names:
            if n in seen:
                raise ValueError(f"column {n!r} is in fixed_combinations[{seen[n]}] and "
                                 f"fixed_combinations[{i}]; a column can be in one only")
            seen[n] = i
        out.append(names)
    return out


def check_rules_on_table(rules, table, n_rows: int) -> None:
    """Every rule must hold (or be null) on every real row."""
    program = rules.bind(table)[0]
    if program.outputs:
        o = program.outputs[0]
        raise ConstraintError(f"rules of a GaussianCopula are constraints; a rule defining the "
                              f"derived column {o.name!r} belongs in sample(rules=...)")
    result = rules.evaluate(table)
    for i, (text, count) in enumerate(zip(result.rules, result.counts)):
        if count:
            raise ConstraintError(
                f"rule {i} {text!r} is false on {int(count)} of {n_rows} rows of the table "
                "the model is fitted on; a constraint must hold on the real data (a null "
                "result passes, docs/rules.md)")


def _unique_name(base: str, taken: set) -> str:
    name = base
    k = 1
    while name in taken:
        name = f"{base}#{k}"
        k += 1
    taken.add(name)
    return name


def build_plan(rules, combinations, cols: list, key_columns: set, learn_rounding,
               max_levels: int = 256) -> tuple:
    """(ConstraintPlan, the columns to fit on) for the table columns ``cols``."""
    by_name = {c.name: c for c in cols}
    taken = set(by_name)
    plan = ConstraintPlan(list(rules.texts) if rules is not None else [],
                          order=[c.name for c in cols])
    members = set()
    replaced = {}                   # user column -> the inner TableColumn at its place
    dropped = set()
    for i, names in enumerate(combinations):
        for n in names:
            c = by_name.get(n)
            if c is None and n not in key_columns:
                raise ConstraintError(f"fixed_combinations[{i}] names column {n!r}, which is "
                                      "not in the table")
            if n in key_columns or c.kind not in COMBINATION_KINDS:
                kind = "key" if n in key_columns else c.kind
                raise ConstraintError(f"fixed_combinations[{i}]: column {n!r} is {kind}; fixed "
                                      f"combinations take {', '.join(COMBINATION_KINDS)} columns")
        members.update(names)
        parts = [by_name[n] for n in names]
        keys = list(zip(*[[None if nl else (v.item() if hasattr(v, "item") else v)
                           for v, nl in zip(p.values, p.null)] for p in parts]))
        index, values = {}, [[] for _ in names]
        ids = np.empty(len(keys), dtype=np.int64)
        for r, k in enumerate(keys):
            j = index.get(k)
            if j is None:
                j = index[k] = len(index)
                for m, v in enumerate(k):
                    values[m].append(_json_value(v, parts[m].kind))
            ids[r] = j
        inner = _unique_name("<" + ", ".join(names) + ">", taken)
        labels = np.array([str(j) for j in range(len(index))], dtype=object)
        replaced[names[0]] = TableColumn(inner, "categorical", labels[ids],
                                         np.zeros(len(ids), dtype=bool), "object")
        dropped.update(names[1:])
        plan.combinations.append(Combination(names, inner, [p.kind for p in parts],
                                             [p.dtype for p in parts], values))
    parent = {}
    if rules is not None:
        for parsed in rules.parsed:
            for hi, lo, off, strict, is_duration in inequalities(parsed):
                why = _edge_refusal(hi, lo, off, is_duration, by_name, members, key_columns,
                                    parent)
                if why:
                    plan.skipped.append((parsed.text, why))
                    continue
                a, b = by_name[lo], by_name[hi]
                inner = _unique_name(f"<{hi} - {lo}>", taken)
                dcol, offset, why = _difference(a, b, off, inner, max_levels)
                if why:
                    taken.discard(inner)
                    plan.skipped.append((parsed.text, why))
                    continue
                parent[hi] = lo
                r = Reparam(hi, lo, offset, bool(strict), parsed.text, inner, b.kind, b.dtype,
                            b.tz)
                if b.kind == "float":
                    r.round_mode, r.round_q = learn_rounding(b)
                elif dcol.kind != "float":
                    r.round_mode, r.round_q = _quantum_not_implied(a, b, dcol, offset,
                                                                   learn_rounding)
                plan.reparams.append(r)
                replaced[hi] = dcol
    # reconstruction order: a parent before its children
    order, done = [], set()

    def visit(r):
        if r.hi in done:
            return
        up = next((p for p in plan.reparams if p.hi == r.lo), None)
        if up is not None:
            visit(up)
        done.add(r.hi)
        order.append(r)
    for r in list(plan.reparams):
        visit(r)
    plan.reparams = order
    inner_cols = [replaced.get(c.name, c) for c in cols if c.name not in dropped]
    return plan, inner_cols


def _quantum_not_implied(a, b, dcol, offset, learn_rounding):
    """(2, q) when the int/datetime column b is a multiple of q (whole days, seconds, 10^k)
    but lo + offset + d need not be (b at whole days after starts at any second);
    (0, 0.0) when the sum keeps it anyway (lo, d and the offset are multiples of q, and
    sampled lo and d are multiples of their own, coarser, quanta)."""
    mode, q = learn_rounding(b)
    if mode != 2:
        return 0, 0.0
    qi = int(q)
    present = ~b.null
    if int(offset) % qi == 0 and not np.any(a.values[present] % qi) and \
            not np.any(dcol.values[present] % qi):
        return 0, 0.0
    return 2, float(q)


def _difference(a: TableColumn, b: TableColumn, off, inner: str, max_levels: int):
    """(the column d = b - a - off to model, the offset as stored, None), or (None, None,
    why) when d cannot be held exactly enough to give b back."""
    present = ~b.null
    if b.kind == "datetime" or (a.kind == "int" and b.kind == "int" and
                                float(off).is_integer()):
        off = int(off)
        if not INT64_MIN <= off <= np.iinfo(np.int64).max:
            return None, None, f"the offset {off} is beyond int64"
        with np.errstate(over="ignore"):
            dv = np.where(present, b.values - a.values - np.int64(off), 0).astype(np.int64)
        # the rule holds on these rows, so d >= 0 there unless it wrapped round
        wrapped = int(np.count_nonzero(dv[present] < 0))
        if wrapped:
            return None, None, f"{b.name} - {a.name} - offset is beyond int64 on {wrapped} rows"
        if b.kind != "datetime":
            return TableColumn(inner, "int", dv, b.null.copy(), "int64"), off, None
        distinct = np.unique(dv[present]).size
        # few distinct durations: exact levels; else a table rounded like datetimes
        kind = "int" if distinct <= max_levels else "datetime"
        return TableColumn(inner, kind, dv, b.null.copy(),
                           "int64" if kind == "int" else "datetime64[ns]"), off, None
    off = float(off)
    x, y = a.values.astype(np.float64), b.values.astype(np.float64)
    dv = np.where(present, y - x - off, 0.0)
    # float64 must carry b's information through d: an offset far above the values
    # would round it away (b = a + off + d would come back as a)
    err = np.abs((x + off + dv) - y)[present]
    scale = max(float(np.max(np.abs(x[present]), initial=0.0)),
                float(np.max(np.abs(y[present]), initial=0.0)))
    if err.size and float(err.max()) > 1e-9 * scale:
        return None, None, (f"float64 cannot hold {b.name} - {a.name} - {off!r} exactly "
                            f"enough to give {b.name!r} back")
    return TableColumn(inner, "float", dv, b.null.copy(), "float64"), off, None


def _json_value(v, kind):
    if v is None:
        return None
    if kind == "bool":
        return bool(v)
    if kind == "int":
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v)
    return v


def _edge_refusal(hi, lo, off, is_duration, by_name, members, key_columns, parent):
    """Why the edge lo -> hi cannot be reparameterised, or None."""
    for n in (hi, lo):
        if n in key_columns:
            return f"column {n!r} is a key column"
        if n not in by_name:
            return f"column {n!r} is not in the table"
        if n in members:
            return f"column {n!r} is in a fixed combination"
    a, b = by_name[lo], by_name[hi]
    numeric = ("float", "int")
    if not ((a.kind in numeric and b.kind in numeric and not is_duration) or
            (a.kind == b.kind == "datetime" and (is_duration or off == 0))):
        return f"columns {lo!r} ({a.kind}) and {hi!r} ({b.kind}) are not two numeric or two " \
               "datetime columns"
    if hi in parent:
        return f"column {hi!r} is already reconstructed from {parent[hi]!r}"
    x = lo
    while x in parent:                      # would hi become its own ancestor?
        x = parent[x]
        if x == hi:
            return "it would close a cycle"
    if lo == hi:
        return "one column"
    orphan = int(np.count_nonzero(a.null & ~b.null))
    if orphan:
        return f"{orphan} rows have {hi!r} without {lo!r}, which the difference cannot express"
    return None
