"""Row compaction by a mask for several columns at once (cpp/src/compact.cpp): the
kept rows of sampling under rules, gathered in one threaded pass per piece of rows
instead of one NumPy fancy index per column. (Rules.filter on pandas compacts inside
the rule evaluation pass instead: rules_filter in cpp/src/rules.cpp.)

The rows kept are those where ``mask`` is non-zero, in row order (the first ``limit``
of them when given), exactly what ``column[mask]`` gives; the thread count never
changes the result. Columns of 1, 2, 4 or 8-byte plain dtypes run natively; anything
else (object, strings, complex, non-contiguous) goes through NumPy.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import _backend
from ._reference import compact as _ref


def _native_ok(a) -> bool:
    return (isinstance(a, np.ndarray) and a.ndim == 1 and a.flags.c_contiguous
            and a.dtype.kind in "biufMm" and a.dtype.itemsize in (1, 2, 4, 8))


def _check(mask, columns, limit):
    if not isinstance(mask, np.ndarray) or mask.ndim != 1 or mask.dtype not in (np.bool_,
                                                                                np.uint8):
        raise ValueError("mask must be a one-dimensional bool or uint8 NumPy array, got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)} with shape "
                         f"{getattr(mask, 'shape', None)}")
    n = mask.shape[0]
    for k, c in enumerate(columns):
        if not isinstance(c, np.ndarray) or c.ndim != 1 or c.shape[0] != n:
            raise ValueError(f"column {k} must be a one-dimensional NumPy array of "
                             f"{n} rows (the mask's length), got shape "
                             f"{getattr(c, 'shape', None)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")


def compact_rows(mask, columns, *, limit: Optional[int] = None, in_place: bool = False,
                 positions: bool = False, base: int = 0, backend: Optional[str] = None):
    """(kept columns, kept row numbers + ``base`` or None).

    ``in_place=True`` compacts each column inside its own buffer and returns views of
    its first rows (the rows after them are left unspecified); otherwise new arrays
    of exactly the kept rows are returned and the inputs are untouched."""
    _check(mask, columns, limit)
    columns = list(columns)
    name = _backend.resolve(backend, arrays=(mask,))
    core = _backend.core_module() if name == "cpu" else None
    native = [k for k, c in enumerate(columns) if core is not None and _native_ok(c)
              and (not in_place or c.flags.writeable)]
    if core is None or (not native and not positions):
        kept, pos = _ref.compact_rows(mask, columns, limit, base)
        if in_place:
            for c, v in zip(columns, kept):
                c[:len(v)] = v
            kept = [c[:len(v)] for c, v in zip(columns, kept)]
        return kept, (pos if positions else None)
    m = mask.view(np.uint8)
    lim = -1 if limit is None else int(limit)
    count = int(np.count_nonzero(m)) if lim < 0 else min(lim, int(np.count_nonzero(m)))
    ins = [columns[k] for k in native]
    outs = ins if in_place else [np.empty(count, dtype=c.dtype) for c in ins]
    pos = np.empty(count, np.int64) if positions else None
    got = core.compact_rows(m, ins, outs, lim, pos, int(base), _backend.get_num_threads())
    if got != count:
        raise AssertionError(f"compact_rows kept {got} rows, expected {count}")
    result = [None] * len(columns)
    for k, o in zip(native, outs):
        result[k] = o[:count]
    rest = [k for k in range(len(columns)) if result[k] is None]
    if rest:
        index = np.flatnonzero(m)[:count]
        for k in rest:
            v = np.asarray(columns[k])[index]
            if in_place:
                columns[k][:count] = v
                v = columns[k][:count]
            result[k] = v
    return result, pos
