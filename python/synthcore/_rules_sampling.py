"""Sampling under rules: reparameterisation of bounds, then reject and refill,
counter-based (docs/rules.md).

Bounds first, when they would reject at least half of the plain candidates (judged
from the model's marginals): a conjunct at the top level of a rule (``x >= 3``, ``a <= x <= b``,
``x between a and b``, ``x = 5``, ``plan = 'pro'``) on a column the model never samples
as null is a necessary condition of that rule, so the candidates are drawn from the
model conditioned on it (exact Gaussian conditioning, synthcore/_conditional.py) and the
rule then rejects nothing for it: sampling from P( . | A) and keeping the rows where the
rule R holds gives P( . | R) exactly, since R implies A. Strict inequalities and
nullable columns are left to rejection (a null makes the rule pass, which a condition
could not express).

Candidates are the rows ``row_offset, row_offset + 1, ...`` of the synthesizer's
(seed, stream) sequence (conditioned on the bounds, if any); the result is the first
``n`` that satisfy every rule, in row-index order. Batches only decide how many
candidates are looked at per step, never which rows are kept, so the output is the same
whatever the batch sizes.
"""
from __future__ import annotations

import math

import numpy as np

from . import _buffers
from ._table import OutputColumn, build_output

PILOT = 10_000
MAX_BATCH = 1 << 22


class RuleAcceptanceError(ValueError):
    """Too few sampled rows satisfy the rules to deliver the rows asked for."""


def _as_rules(rules):
    from .rules import Rules
    return rules if isinstance(rules, Rules) else Rules(list(rules) if not isinstance(rules, str)
                                                        else [rules])


def _derived_column(name, output, raw) -> OutputColumn:
    from ._rules_compile import INT_NULL
    kind = output.kind
    if kind == "float":
        return OutputColumn(name, "float", raw, None, "float64")
    if kind in ("int", "datetime", "duration"):
        null = raw == INT_NULL
        if kind == "int":
            return OutputColumn(name, "int", raw, null if null.any() else None, "int64")
        # durations are returned as their nanosecond count
        if kind == "duration":
            return OutputColumn(name, "int", raw, null if null.any() else None, "int64")
        return OutputColumn(name, "datetime", raw, null if null.any() else None,
                            "datetime64[ns]")
    if kind == "bool":
        null = raw == 1
        return OutputColumn(name, "bool", raw == 2, null if null.any() else None, "bool")
    if kind == "categorical":
        cats = np.empty(len(output.categories), dtype=object)
        cats[:] = output.categories
        codes = raw.astype(np.int32)
        return OutputColumn(name, "categorical", codes, codes < 0 if (codes < 0).any() else None,
                            "object", cats)
    raise AssertionError(kind)


def _literal(node):
    """The value of a numeric or string literal node (with unary minus), else None."""
    if node.kind == "num":
        return float(node.value)
    if node.kind == "neg" and node.args and node.args[0].kind == "num":
        return -float(node.args[0].value)
    if node.kind == "str":
        return node.value
    return None


def _conjuncts(node):
    if node.kind == "and":
        for a in node.args:
            yield from _conjuncts(a)
    else:
        yield node


_FLIP = {"le": "ge", "ge": "le", "eq": "eq"}


def _bound_of(node):
    """(column, op, value) of a foldable conjunct: col <= v, col >= v, col = v, or
    (column, "between", (a, b)); None otherwise."""
    if node.kind == "cmp" and node.value in _FLIP:
        left, right = node.args
        if left.kind == "col" and _literal(right) is not None:
            return left.value, node.value, _literal(right)
        if right.kind == "col" and _literal(left) is not None:
            return right.value, _FLIP[node.value], _literal(left)
    if node.kind == "between" and node.args[0].kind == "col":
        a, b = _literal(node.args[1]), _literal(node.args[2])
        if isinstance(a, float) and isinstance(b, float):
            return node.args[0].value, "between", (a, b)
    return None


def bound_conditions(model, rules) -> dict:
    """Conditions implied by the rules' top-level bounds (see the module docstring)."""
    by_name = {m.name: m for m in model.columns}
    ranges, values = {}, {}
    from ._rules_compile import Node
    for parsed in rules.parsed:
        expr = parsed.expr
        if parsed.target is not None:
            if parsed.assign_op != "=" or parsed.target not in by_name:
                continue                       # a derived column, not a constraint
            # "plan = 'pro'" on an existing column is the comparison
            expr = Node("cmp", parsed.target_pos,
                        [Node("col", parsed.target_pos, [], parsed.target), expr], "eq")
        for node in _conjuncts(expr):
            found = _bound_of(node)
            if found is None:
                continue
            name, op, v = found
            m = by_name.get(name)
            if m is None or m.null_rate > 0.0 or m.encoding == "null":
                continue
            if m.kind == "categorical":
                if op == "eq" and isinstance(v, str):
                    values.setdefault(name, set()).add(v)
                continue
            if m.kind not in ("float", "int") or isinstance(v, str):
                continue
            lo, hi = ranges.get(name, (-math.inf, math.inf))
            if op == "between":
                lo, hi = max(lo, min(v)), min(hi, max(v))
            elif op == "ge":
                lo = max(lo, v)
            elif op == "le":
                hi = min(hi, v)
            else:
                lo, hi = max(lo, v), min(hi, v)
            ranges[name] = (lo, hi)
    conditions = {}
    for name, (lo, hi) in ranges.items():
        if lo > hi:
            from ._conditional import ImpossibleConditionError
            raise ImpossibleConditionError(f"the rules bound column {name!r} to an empty range "
                                           f"[{lo}, {hi}]")
        conditions[name] = (lo, hi)
    for name, vs in values.items():
        if len(vs) == 1:
            conditions[name] = next(iter(vs))
    return conditions


#: fold the bounds only when they would reject at least this share of plain candidates:
#: conditional sampling is exact either way, but slower per row than the fused kernel
FOLD_BELOW = 0.5


def bounds_probability(model, conditions) -> float:
    """The model's probability of the folded bounds, each column's marginal probability
    multiplied (an estimate of the joint one, used only to choose the strategy)."""
    from scipy.special import ndtr
    from ._conditional import column_constraints
    by_name = {m.name: m for m in model.columns}
    p = 1.0
    for name, cond in conditions.items():
        m = by_name[name]
        is_range = isinstance(cond, tuple)
        for lo, hi in column_constraints(m, [cond], is_range).values():
            p *= float(ndtr(hi[0]) - ndtr(lo[0])) if not np.isnan(lo[0]) else 1.0
    return p


def _check_request(n, min_acceptance):
    import numbers
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not 0 < min_acceptance <= 1:
        raise ValueError(f"min_acceptance must be in (0, 1], got {min_acceptance!r}")
    return int(n)


def _row_of_kept(mask, want, total) -> int:
    """The row of the ``want``-th kept row of ``mask`` (1-based count; ``total`` rows are
    kept in all, ``total >= want``), found by scanning only a tail of the mask."""
    after = total - want                   # kept rows that follow it
    tail = max(4096, 4 * after)
    while True:
        tail = min(tail, len(mask))
        rows = np.flatnonzero(mask[len(mask) - tail:])
        if len(rows) > after:
            return len(mask) - tail + int(rows[len(rows) - after - 1])
        tail *= 4


def reject_and_refill(n, row_offset, min_acceptance, evaluate_batch, step=1):
    """The kept parts and the acceptance record of reject and refill: the first ``n``
    candidate rows, in row order, that satisfy every rule. ``evaluate_batch(count,
    offset)`` returns (mask, violation counts, rule texts, keep) for candidates
    ``offset .. offset + count - 1``, ``keep(limit)`` the part made of the first
    ``limit`` rows of those where the mask is true. Batches are multiples of ``step``;
    they decide how many candidates are drawn per step, never which are kept."""
    parts, total_kept, seen, counts, texts, rate = [], 0, 0, None, [], 1.0
    offset = int(row_offset)
    while total_kept < n:
        want = n - total_kept
        batch = min(MAX_BATCH, max(1024, int(math.ceil(want / max(rate, min_acceptance) * 1.03))))
        if seen == 0:
            batch = max(batch, min(PILOT, 16 * n))
        batch = -(-batch // step) * step
        mask, c, texts, keep = evaluate_batch(batch, offset)
        counts = c if counts is None else counts + c
        passed = int(np.count_nonzero(mask))
        got = min(passed, want)
        parts.append(keep(got))
        # candidates actually consumed: up to the last kept row when the batch finished n
        seen += batch if got < want or got == 0 else _row_of_kept(mask, want, passed) + 1
        total_kept += got
        offset += batch
        rate = (total_kept if total_kept else passed) / seen
        if total_kept < n and seen >= PILOT and total_kept / seen < min_acceptance:
            worst = int(np.argmax(counts))
            raise RuleAcceptanceError(
                f"only {total_kept} of {seen} sampled rows ({total_kept / seen:.3%}) satisfy "
                f"the rules, below min_acceptance={min_acceptance}; the rule that rejects most "
                f"is rule {worst} {texts[worst]!r} ({int(counts[worst])} rows "
                f"rejected, {counts[worst] / seen:.1%})")
        if offset - row_offset > 2**62:
            raise RuleAcceptanceError("ran out of candidate rows")
    info = {"rows": n, "candidates": seen, "acceptance_rate": n / seen,
            "violations": {t: int(v) for t, v in zip(texts, counts)}}
    return parts, info


class _CandidateBuffers:
    """The copula kernel's raw output buffers (one per latent dim), filled batch after
    batch: a batch is sampled into the rows after those already kept, its accepted rows
    are compacted in place (synthcore/_compact.py) right behind them, so the kept rows
    are never gathered into new arrays or concatenated."""

    def __init__(self, dtypes):
        self.dtypes = dtypes
        self.arrays = [np.empty(0, dt) for dt in dtypes]
        self.filled = 0

    def batch(self, count):
        """Views of the ``count`` rows after the kept ones (grown when needed)."""
        need = self.filled + count
        if self.arrays and need > len(self.arrays[0]):
            size = need if self.filled == 0 else max(need, len(self.arrays[0]) * 3 // 2)
            grown = [_buffers.empty(size, dt) for dt in self.dtypes]   # pooled, as plain samples
            for g, a in zip(grown, self.arrays):
                g[:self.filled] = a[:self.filled]
            self.arrays = grown
        return [a[self.filled:need] for a in self.arrays]


def _fusable(m, plan) -> bool:
    """Whether the copula kernel can hand column ``m`` to the rules straight from its
    output buffer, as the storage the rules read it in (copula_sample_rules in
    cpp/include/synthcore/copula.hpp): the output columns make no further change to it."""
    from ._conditional import null_level
    from ._reference import copula as _ref
    from .copula import _quantum_is_exact
    if m.value_dim is None or m.kind == "key" or m.encoding == "null" or \
            null_level(m) is not None:
        return False
    k = int(plan.out_kind[m.value_dim])
    if m.kind == "float":
        return k in (_ref.OUT_F64, _ref.OUT_F32, _ref.OUT_LEVEL_F64)
    if m.kind == "int":
        try:
            dt = np.dtype(m.dtype)
        except TypeError:
            return False
        return (k in (_ref.OUT_I64_ROUND, _ref.OUT_LEVEL_I64) and dt == np.int64) or \
            (k == _ref.OUT_I32_ROUND and dt == np.int32)
    if m.kind == "datetime":
        return k in (_ref.OUT_I64_ROUND, _ref.OUT_LEVEL_I64) and _quantum_is_exact(m)
    if m.kind == "categorical":
        return k in (_ref.OUT_CODE_I8, _ref.OUT_CODE_I32)
    if m.kind == "bool":
        return k == _ref.OUT_CODE_U8
    return False


def fused_program(model, plan, rules, sampled):
    """(program, output dim of each program column, their storage, the derived columns'
    storage) when the cpu kernel can evaluate ``rules`` on its chunks
    (copula_sample_rules), derived columns included; None otherwise (a rule reads a
    column the kernel does not write as the rules read it). The program is the one the
    unfused path binds, compiled from the same columns."""
    cached = getattr(rules, "_fused_for", None)    # (plan, sampled, result): per model plan
    if cached is not None and cached[0] is plan and cached[1] == sampled:
        return cached[2]
    result = _fused_program(model, plan, rules, sampled)
    rules._fused_for = (plan, sampled, result)
    return result


def _fused_program(model, plan, rules, sampled):
    from .rules import _TableView, _output_types
    empty = [np.empty(0, dt) for dt in plan.out_dtype]
    program, _, _ = rules.bind(_TableView(model._output_columns(empty, 0, 0),
                                          sentinel_nulls=sampled))
    by_name = {m.name: m for m in model.columns}
    dims = []
    for name, _ in program.columns:
        m = by_name.get(name)
        if m is None or not _fusable(m, plan):
            return None
        dims.append(m.value_dim)
    return (program, np.array(dims, dtype=np.int32),
            np.array([t for _, t in program.columns], dtype=np.int32), _output_types(program))


def sample_with_rules(model, n, rules, *, seed, stream, row_offset, backend, output,
                      min_acceptance, conditions=None):
    from ._backend import resolve
    from ._compact import compact_rows
    from ._conditional import parse_conditions
    from ._seeding import philox_key
    from .rules import _OUT_DTYPE, _TableView, run_program
    if conditions is not None and not isinstance(conditions, dict):
        raise ValueError("with rules, conditions must be a dict for all rows (a table of "
                         "per-row conditions has no meaning once rows are rejected)")
    n = _check_request(n, min_acceptance)
    rules = _as_rules(rules)
    folded = bound_conditions(model, rules)
    if folded and bounds_probability(model, folded) >= FOLD_BELOW:
        folded = {}     # they reject little: plain candidates from the fused kernel are cheaper
    merged = dict(conditions or {})
    for name, cond in folded.items():
        merged.setdefault(name, cond)          # the caller's own condition is kept as given
    merged = merged or None
    from .copula import _check_rows
    hosts = ("pandas", "arrow", "polars", "numpy")
    if output not in hosts:
        raise ValueError(f"with rules, output must be one of {hosts}, got {output!r}")
    _check_rows(stream, row_offset, n)
    if merged:
        parse_conditions(model.columns, merged, 1)     # bad conditions fail before sampling
    # the candidates are sampled and checked on the host (backend='cuda' included)
    name = resolve("cpu" if backend == "cuda" else backend, arrays=(np.empty(0),))
    key = philox_key(seed)
    plan = model.plan()
    derived_parts = []
    has_keys = any(m.kind == "key" for m in model.columns)
    kept_rows = []
    program_of = {}
    # columns read straight from the kernel's buffers, whose nulls hold the sentinels
    sampled = frozenset(m.name for m in model.columns if m.value_dim is not None)

    def note_kept_rows(mask, offset, limit):
        if has_keys:      # key columns are made from the kept rows' indices
            kept_rows.append(offset + np.flatnonzero(mask)[:limit])

    fused = fused_program(model, plan, rules, sampled) \
        if name == "cpu" and not merged and plan.d else None
    # the fused kernel writes and compacts the derived columns behind the plan's outputs
    derived_dtypes = [_OUT_DTYPE[o.storage] for o in fused[0].outputs] if fused else []
    buffers = _CandidateBuffers(list(plan.out_dtype) + derived_dtypes)
    d = len(plan.out_dtype)

    def evaluate_fused(count, offset):
        # sampled, checked and compacted in one kernel pass (no mask-wide second pass)
        from ._backend import core_module, get_num_threads
        from .copula import _plan_arrays
        program, dims, types, derived_types = fused
        views = buffers.batch(count)
        mask = np.empty(count, dtype=np.uint8)
        counts = np.zeros(program.n_rules, dtype=np.int64)
        core_module().copula_sample_rules(
            *_plan_arrays(plan), views[:d], key.k0, key.k1, int(stream), offset, program.code,
            program.n_registers, program.const_f64, program.const_i64, dims, types,
            views[d:], derived_types, mask, counts, n - buffers.filled, get_num_threads())
        program_of["p"] = program

        def keep(limit):
            buffers.filled += limit
            note_kept_rows(mask, offset, limit)
            return limit
        return mask.view(bool), counts, program.rule_texts, keep

    def evaluate_batch(count, offset):
        views = buffers.batch(count)
        per_column = parse_conditions(model.columns, merged, count)[1] if merged else None
        model._fill_buffers(plan, name, views, count, key, int(stream), offset, per_column)
        cols = model._output_columns(views, count, offset)
        program, columns, m = rules.bind(_TableView(cols, sentinel_nulls=sampled))
        program_of["p"] = program
        mask, c, derived = run_program(program, columns, m, name)

        def keep(limit):
            kept, _ = compact_rows(mask, views + derived, limit=limit, in_place=True,
                                   backend=name)
            buffers.filled += limit
            derived_parts.append(kept[len(views):])
            note_kept_rows(mask, offset, limit)
            return limit
        return mask, c, program.rule_texts, keep

    _, info = reject_and_refill(n, row_offset, min_acceptance,
                                evaluate_fused if fused is not None else evaluate_batch)
    info["conditions_from_rules"] = folded
    model.last_sample_info = info
    # the buffers were sized for the candidates: the pages past the n rows returned go
    # back to the system (the result's columns view these buffers)
    arrays = [_buffers.trim(a, n) for a in buffers.arrays]
    columns = model._output_columns(arrays[:d], n, np.concatenate(kept_rows) if has_keys else 0)
    program = program_of["p"]
    for k, o in enumerate(program.outputs):
        if fused is not None:
            raw = arrays[d + k]
        else:
            parts = [p[k] for p in derived_parts]
            # one part: a view of the start of the batch's pooled output, trimmed as above
            raw = _buffers.trim(parts[0], n) if len(parts) == 1 else np.concatenate(parts)
        columns.append(_derived_column(o.name, o, raw))
    return build_output(columns, output)


def sample_frames_with_rules(draw, n, rules, *, row_offset, min_acceptance, step=1):
    """Reject and refill for any synthesizer whose rows depend only on (seed, row index):
    ``draw(count, offset)`` returns the pandas DataFrame of candidate rows
    ``offset .. offset + count - 1``; the result is the first ``n`` that satisfy every
    rule, in row order (derived columns appended), and the acceptance information.
    Candidate batches are multiples of ``step`` (e.g. a GAN's BatchNorm batch)."""
    import pandas as pd
    n = _check_request(n, min_acceptance)
    rules = _as_rules(rules)

    def evaluate_batch(count, offset):
        frame = draw(count, offset)
        result = rules.evaluate(frame)
        mask = np.asarray(result.mask.get() if hasattr(result.mask, "get") else result.mask)

        def keep(limit):
            index = np.flatnonzero(mask)[:limit]
            kept = frame.iloc[index].copy()
            for name, values in result.derived.items():
                kept[name] = values[index]
            return kept
        return mask, result.counts, result.rules, keep

    parts, info = reject_and_refill(n, row_offset, min_acceptance, evaluate_batch, step)
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else \
        parts[0].reset_index(drop=True)
    return frame, info
