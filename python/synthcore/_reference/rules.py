"""Rule programs in NumPy: the fallback and the oracle for cpp/src/rules.cpp and cuda/rules.cu.

Runs the bytecode of ``synthcore._rules_compile`` over blocks of rows, one NumPy
operation per instruction, with the same IEEE operations as the C++ and CUDA
evaluators (so the floats are the same bits). Value encodings: float64 with NaN
as null; int64 with -2**63 as null (ints, datetimes, durations); int64 category
codes with -1 as null; uint8 booleans 0 false, 1 null, 2 true.
"""
from __future__ import annotations

import numpy as np

from .._rules_compile import OPS, OP_REGS, INT_NULL

BLOCK = 1 << 16
_NULL = np.int64(INT_NULL)


def _cmp3(result, null):
    out = result.astype(np.uint8) * np.uint8(2)
    out[null] = 1
    return out


def _fmod_floor(a, b):
    # NumPy's float remainder (npy_divmod): sign of the divisor, NaN for b == 0
    mod = np.fmod(a, b)
    fix = (mod != 0) & ((b < 0) != (mod < 0))
    mod = np.where(fix, mod + b, mod)
    return np.where(mod == 0, np.copysign(0.0, b), mod)


def _int_binary(a, b, f):
    null = (a == _NULL) | (b == _NULL)
    with np.errstate(over="ignore"):
        r = f(a.view(np.uint64), b.view(np.uint64)).view(np.int64)
    return np.where(null, _NULL, r)


def run_block(program, columns, r0, r1, mask, counts, outputs):
    code = program.code
    cf, ci = program.const_f64, program.const_i64
    m = r1 - r0
    regs = {}
    for op, dst, a, b, c in code.tolist():
        name = OPS[op][0]
        if name == "LOAD_F64":
            regs[dst] = columns[b][r0:r1]
        elif name == "LOAD_I64":
            regs[dst] = columns[b][r0:r1]
        elif name == "LOAD_I32":
            regs[dst] = columns[b][r0:r1].astype(np.int64)
        elif name == "LOAD_B":
            regs[dst] = columns[b][r0:r1]
        elif name == "CONST_F":
            regs[dst] = np.full(m, cf[b])
        elif name == "CONST_I":
            regs[dst] = np.full(m, ci[b], dtype=np.int64)
        elif name == "CONST_B":
            regs[dst] = np.full(m, b, dtype=np.uint8)
        elif name == "I2F":
            x = regs[a]
            regs[dst] = np.where(x == _NULL, np.nan, x.astype(np.float64))
        elif name.endswith("_F") and OP_REGS[op] == "ab":
            x, y = regs[a], regs[b]
            kind = name[:-2]
            if kind in ("EQ", "NE", "LT", "LE", "GT", "GE"):
                f = {"EQ": np.equal, "NE": np.not_equal, "LT": np.less, "LE": np.less_equal,
                     "GT": np.greater, "GE": np.greater_equal}[kind]
                regs[dst] = _cmp3(f(x, y), np.isnan(x) | np.isnan(y))
                continue
            with np.errstate(all="ignore"):
                if kind == "ADD":
                    r = x + y
                elif kind == "SUB":
                    r = x - y
                elif kind == "MUL":
                    r = x * y
                elif kind == "DIV":
                    r = x / y
                elif kind == "MOD":
                    r = _fmod_floor(x, y)
                elif kind == "MIN":
                    r = np.where(np.isnan(x) | np.isnan(y), np.nan, np.where(x < y, x, y))
                elif kind == "MAX":
                    r = np.where(np.isnan(x) | np.isnan(y), np.nan, np.where(x > y, x, y))
                else:
                    raise AssertionError(name)
            regs[dst] = r
        elif name in ("NEG_F", "ABS_F", "FLOOR_F", "CEIL_F", "RINT_F"):
            f = {"NEG_F": np.negative, "ABS_F": np.abs, "FLOOR_F": np.floor,
                 "CEIL_F": np.ceil, "RINT_F": np.rint}[name]
            regs[dst] = f(regs[a])
        elif name in ("ADD_I", "SUB_I", "MUL_I"):
            f = {"ADD_I": np.add, "SUB_I": np.subtract, "MUL_I": np.multiply}[name]
            regs[dst] = _int_binary(regs[a], regs[b], f)
        elif name == "MOD_I":
            x, y = regs[a], regs[b]
            null = (x == _NULL) | (y == _NULL) | (y == 0)
            ys = np.where(null, 1, y)
            xs = np.where(null, 0, x)
            r = np.fmod(xs, ys)
            r = np.where((r != 0) & ((r < 0) != (ys < 0)), r + ys, r)
            regs[dst] = np.where(null, _NULL, r)
        elif name in ("MIN_I", "MAX_I"):
            x, y = regs[a], regs[b]
            null = (x == _NULL) | (y == _NULL)
            r = np.minimum(x, y) if name == "MIN_I" else np.maximum(x, y)
            regs[dst] = np.where(null, _NULL, r)
        elif name == "NEG_I":
            x = regs[a]
            regs[dst] = np.where(x == _NULL, _NULL, -np.where(x == _NULL, 0, x))
        elif name == "ABS_I":
            x = regs[a]
            regs[dst] = np.where(x == _NULL, _NULL, np.abs(np.where(x == _NULL, 0, x)))
        elif name in ("EQ_I", "NE_I", "LT_I", "LE_I", "GT_I", "GE_I"):
            x, y = regs[a], regs[b]
            f = {"EQ": np.equal, "NE": np.not_equal, "LT": np.less, "LE": np.less_equal,
                 "GT": np.greater, "GE": np.greater_equal}[name[:-2]]
            regs[dst] = _cmp3(f(x, y), (x == _NULL) | (y == _NULL))
        elif name in ("EQ_B", "NE_B"):
            x, y = regs[a], regs[b]
            f = np.equal if name == "EQ_B" else np.not_equal
            regs[dst] = _cmp3(f(x, y), (x == 1) | (y == 1))
        elif name == "AND":
            regs[dst] = np.minimum(regs[a], regs[b])
        elif name == "OR":
            regs[dst] = np.maximum(regs[a], regs[b])
        elif name == "NOT":
            regs[dst] = np.uint8(2) - regs[a]
        elif name == "ISNULL_F":
            regs[dst] = np.isnan(regs[a]).astype(np.uint8) * np.uint8(2)
        elif name == "ISNULL_I":
            regs[dst] = (regs[a] == _NULL).astype(np.uint8) * np.uint8(2)
        elif name == "ISNULL_B":
            regs[dst] = (regs[a] == 1).astype(np.uint8) * np.uint8(2)
        elif name == "ISNULL_C":
            regs[dst] = (regs[a] < 0).astype(np.uint8) * np.uint8(2)
        elif name == "IN_F":
            x = regs[a]
            regs[dst] = _cmp3(np.isin(x, cf[b:b + c]), np.isnan(x))
        elif name == "IN_I":
            x = regs[a]
            regs[dst] = _cmp3(np.isin(x, ci[b:b + c]), x == _NULL)
        elif name in ("LUT_B", "LUT_I", "LUT_C"):
            x = regs[a]
            table = ci[b:b + c]
            null = (x < 0) | (x >= c)
            got = table[np.where(null, 0, x)]
            fill = {"LUT_B": 1, "LUT_I": INT_NULL, "LUT_C": -1}[name]
            r = np.where(null, np.int64(fill), got)
            regs[dst] = r.astype(np.uint8) if name == "LUT_B" else r
        elif name in ("SEL_8", "SEL_B"):
            regs[dst] = np.where(regs[a] == 2, regs[b], regs[c])
        elif name == "RULE":
            v = regs[a]
            violated = v == 0
            counts[c] += int(np.count_nonzero(violated))
            mask[r0:r1] &= ~violated
        elif name in ("STORE_8", "STORE_B"):
            outputs[c][r0:r1] = regs[a]
        else:
            raise AssertionError(name)


def evaluate(program, columns, n, mask, counts, outputs, block: int = BLOCK):
    """Fill ``mask`` (bool, all rules pass), ``counts`` (int64 per rule: rows where the
    rule is false) and ``outputs`` (derived columns) for rows 0 .. n-1."""
    mask[:] = True
    counts[:] = 0
    for r0 in range(0, n, block):
        run_block(program, columns, r0, min(n, r0 + block), mask, counts, outputs)
