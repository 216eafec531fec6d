"""Gaussian-copula sampling in NumPy, mirroring ``cpp/src/copula.cpp``.

One pass per chunk of rows: Philox normals (latent dim j uses Philox stream
``stream * 2**20 + j``, element = row index) -> z = L z_raw, accumulated in
column order -> each latent dim's output: a table lookup over a z-grid, or a
threshold count. Every expression is evaluated in the same order as the C++,
without FMA, so the outputs are the same bits.
"""
from __future__ import annotations

import numpy as np

from . import random as _random

CHUNK = 1 << 16

# output kinds (cpp/include/synthcore/copula.hpp)
OUT_F64, OUT_F32, OUT_I64_ROUND, OUT_I32_ROUND, OUT_CODE_I32, OUT_CODE_U8, OUT_LEVEL_I64, \
    OUT_LEVEL_F64, OUT_CODE_I8 = range(9)
DIM_TABLE, DIM_THRESHOLDS = 0, 1
DIM_STREAM_BITS = 20


def latent_stream(stream: int, dim: int) -> int:
    return (stream << DIM_STREAM_BITS) + dim


def correlated_normals(plan, key, stream, row_offset, m, fixed=None):
    """z (d x m) for rows row_offset .. row_offset + m - 1."""
    d = plan.d
    zr = np.empty((d, m))
    for j in range(d):
        zr[j] = _random.normal(key, latent_stream(stream, j), row_offset, m, np.float64, 0.0, 1.0)
    z = np.empty_like(zr)
    chol = plan.chol
    for i in range(d):
        acc = chol[i, 0] * zr[0]
        for j in range(1, i + 1):
            acc = acc + chol[i, j] * zr[j]
        z[i] = acc
    return z


def table_lookup(z, z_lo, z_scale, table):
    last = table.size - 1
    x = np.minimum(np.maximum((z - z_lo) * z_scale, 0.0), float(last))
    i = np.minimum(x.astype(np.int64), last - 1)
    f = x - i
    lo = table[i]
    return lo + f * (table[i + 1] - lo)


def round_values(v, mode, q):
    if mode == 1:
        return np.rint(v * q) / q
    if mode == 2:
        return np.rint(v / q) * q
    return v


def threshold_codes(z, thresholds):
    """The number of thresholds <= z: 0 for NaN, which is <= nothing (searchsorted alone
    would sort NaN last)."""
    if thresholds.size == 0:
        return np.zeros(z.shape, dtype=np.int32)
    codes = np.searchsorted(thresholds, z, side="right").astype(np.int32)
    return np.where(np.isnan(z), np.int32(0), codes) if np.isnan(z).any() else codes


def write_outputs(plan, z, outputs, r0, m):
    """Latent dims in order (null indicators come first in every plan)."""
    for j in range(plan.d):
        kind = plan.out_kind[j]
        a, b = plan.knot_offsets[j], plan.knot_offsets[j + 1]
        knots = plan.knots[a:b]
        if plan.dim_kind[j] == 0:
            v = round_values(table_lookup(z[j], plan.z_lo[j], plan.z_scale[j], knots),
                             plan.round_mode[j], plan.round_q[j])
        else:
            v = threshold_codes(z[j], knots)
        la, lb = plan.level_offsets[j], plan.level_offsets[j + 1]
        if kind == OUT_F64:
            col = v
        elif kind == OUT_F32:
            col = v.astype(np.float32)
        elif kind == OUT_I64_ROUND:
            col = np.rint(v).astype(np.int64)
        elif kind == OUT_I32_ROUND:
            col = np.rint(v).astype(np.int32)
        elif kind == OUT_CODE_I32:
            col = v
        elif kind == OUT_CODE_U8:
            col = v.astype(np.uint8)
        elif kind == OUT_CODE_I8:
            col = v.astype(np.int8)
        elif kind == OUT_LEVEL_I64:
            col = plan.levels_i64[la:lb][v]
        elif kind == OUT_LEVEL_F64:
            col = plan.levels_f64[la:lb][v]
        else:
            raise ValueError(f"unknown output kind {kind}")
        nd = plan.null_dim[j]
        if nd >= 0:
            null = outputs[nd][r0:r0 + m].view(np.bool_)
            col = np.where(null, _SENTINEL[kind], col).astype(col.dtype)
        outputs[j][r0:r0 + m] = col


_SENTINEL = {OUT_F64: np.nan, OUT_F32: np.float32(np.nan), OUT_I64_ROUND: np.iinfo(np.int64).min,
             OUT_I32_ROUND: np.iinfo(np.int32).min, OUT_CODE_I32: -1, OUT_CODE_U8: 0,
             OUT_LEVEL_I64: np.iinfo(np.int64).min, OUT_LEVEL_F64: np.nan, OUT_CODE_I8: -1}


def sample(plan, key, stream, row_offset, n, outputs):
    for r0 in range(0, n, CHUNK):
        m = min(CHUNK, n - r0)
        z = correlated_normals(plan, key, stream, row_offset + r0, m)
        write_outputs(plan, z, outputs, r0, m)
