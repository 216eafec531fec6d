"""GAN/VAE generator inference in NumPy: the fallback and the test oracle.

Mirrors ``cpp/src/gan.cpp`` (and ``cuda/gan.cu``). A row block runs the MLP
on one activation buffer of width ``S = E + sum(hidden widths)``: z sits at the
tail, each hidden layer writes its output just before its input, and every
layer reads a contiguous column range of the buffer (CTGAN's residual
``concat([new, input])`` is then a suffix, with no copy). The condition one-hot
is never materialised: each layer adds the weight row of the row's condition
index (a gather-add).

Randomness (docs/gan.md): z, the condition choice, the Gumbel noise and
TVAE's alpha noise come from distinct Philox streams keyed by (seed, row).
"""
from __future__ import annotations

import numpy as np

from . import random as _rand
from .ndtri import log_positive_normal as _log

# Philox streams, one per purpose ("gan" + purpose number).
STREAM_Z = 0x67616E00
STREAM_COND = 0x67616E01
STREAM_GUMBEL = 0x67616E02
STREAM_ALPHA_NOISE = 0x67616E03
STREAM_NULLS = 0x67616E10  # + column position (SDV null injection)

# Decode kinds of an output column.
COL_CONT_F64 = 0   # continuous, float64
COL_CONT_I64 = 1   # continuous, rounded half-to-even into int64
COL_DISCRETE = 2   # int32 category code


def draw_z(key, row_begin, n, E):
    """z[r, e] = float32 normal, element (row_begin + r) * E + e of STREAM_Z."""
    return _rand.normal(key, STREAM_Z, row_begin * E, n * E, np.float32, 0.0, 1.0).reshape(n, E)


def draw_cond(key, row_begin, n, cond_cum):
    """Condition index per row: the first i with u < cum[i], u a float64 uniform."""
    u = _rand.uniform(key, STREAM_COND, row_begin, n, np.float64, 0.0, 1.0)
    idx = np.searchsorted(cond_cum, u, side="right")
    return np.minimum(idx, len(cond_cum) - 1).astype(np.int32)


def gumbel_from_words(words):
    """g = -log(-log(u)), u = ((w >> 8) + 1/2) 2^-24 in (0, 1), in float64 with the
    shared fdlibm log (math/log.hpp): bit-identical on every backend."""
    u = ((words >> np.uint32(8)).astype(np.float64) + 0.5) * 2.0**-24
    return -_log(-_log(u))


def draw_gumbel(key, row_begin, n, D):
    """Gumbel noise for output position d of row r: word (row_begin + r) * D + d."""
    w = _rand.raw(key, STREAM_GUMBEL, row_begin * D, n * D)
    return gumbel_from_words(w).reshape(n, D)


def draw_alpha_noise(key, row_begin, n, D):
    return _rand.normal(key, STREAM_ALPHA_NOISE, row_begin * D, n * D, np.float32, 0.0,
                        1.0).reshape(n, D)


# Eval-mode GEMMs run on row blocks of this size aligned to absolute row
# indices: BLAS results for a row can depend on the matrix's row count, so a
# fixed block shape is what makes the NumPy backend's rows chunk-invariant.
EVAL_BLOCK = 1024


def _matmul(x, wt, block):
    if block is None:
        return x @ wt
    n = x.shape[0]
    return (x.reshape(n // block, block, x.shape[1]) @ wt).reshape(n, wt.shape[1])


def forward(plan, z, cond_idx, mode, block=None):
    """Pre-activation output (n x D, float32) of the generator for z (n x E).

    cond_idx: int array (n,), -1 for no condition, or None. mode "eval" uses the
    folded layers; "compat" normalises each layer by the batch statistics of
    all n rows (CTGAN's train-mode BatchNorm: biased variance, eps).
    """
    n = z.shape[0]
    S, E = plan["S"], plan["E"]
    buf = np.empty((n, S), dtype=np.float32)
    buf[:, S - E:] = z
    has_cond = cond_idx is not None and plan["C"] > 0
    if has_cond:
        cond_idx = np.asarray(cond_idx)
        use = cond_idx >= 0
        safe = np.where(use, cond_idx, 0)
    for layer in plan["layers"]:
        x = buf[:, layer["in_off"]:layer["in_off"] + layer["in_w"]]
        wt, b, wc = (layer["wt"], layer["b"], layer["wc"]) if mode == "eval" or not \
            layer["bn"] else (layer["wt_raw"], layer["b_raw"], layer["wc_raw"])
        h = _matmul(x, wt, block) + b
        if has_cond:
            h += np.where(use[:, None], wc[safe], np.float32(0))
        if mode == "compat" and layer["bn"] and n:
            h64 = h.astype(np.float64)
            mean = h64.mean(axis=0)
            var = ((h64 - mean) ** 2).mean(axis=0)
            scale = layer["gamma"].astype(np.float64) / np.sqrt(var + layer["eps"])
            h = ((h64 - mean) * scale + layer["beta"]).astype(np.float32)
        if layer["relu"]:
            np.maximum(h, np.float32(0), out=h)
        buf[:, layer["out_off"]:layer["out_off"] + layer["out_w"]] = h
    fin = plan["final"]
    out = _matmul(buf[:, fin["in_off"]:fin["in_off"] + fin["in_w"]], fin["wt"], block) + fin["b"]
    if has_cond:
        out += np.where(use[:, None], fin["wc"][safe], np.float32(0))
    return out


def decode(plan, out, gumbel, alpha_noise):
    """Typed columns from pre-activations: tanh alphas, argmax(logit + Gumbel) spans.

    gumbel None: plain argmax (TVAE). alpha_noise (n x D) scaled by plan["sigma"]
    is added to tanh(alpha) and clipped to [-1, 1] (TVAE), or None.
    Returns a list with one array per output column (float64, int64 or int32 codes).
    """
    cols = []
    means, stds = plan["means"], plan["stds"]
    for c in plan["columns"]:
        kind, at, width = c["decode"], c["at"], c["width"]
        if kind == COL_DISCRETE:
            logits = out[:, at:at + width].astype(np.float64)
            if gumbel is not None:
                logits = logits + gumbel[:, at:at + width]
            cols.append(np.argmax(logits, axis=1).astype(np.int32))
            continue
        alpha = np.tanh(out[:, at]).astype(np.float32)
        if alpha_noise is not None:
            alpha = alpha + plan["sigma"][at] * alpha_noise[:, at]
            alpha = np.clip(alpha, np.float32(-1), np.float32(1))
        logits = out[:, at + 1:at + 1 + width].astype(np.float64)
        if gumbel is not None:
            logits = logits + gumbel[:, at + 1:at + 1 + width]
        k = np.argmax(logits, axis=1) + c["mode_off"]
        x = alpha.astype(np.float64) * (4.0 * stds[k]) + means[k]
        if kind == COL_CONT_I64:
            x = np.round(x).astype(np.int64)
        cols.append(x)
    return cols


def sample_block(plan, key, row_begin, n, mode, cond_fixed):
    """Rows [row_begin, row_begin + n): decoded columns.

    cond_fixed: -1 draws each row's condition from the model's distribution;
    >= 0 uses that condition index for every row. In compat mode the rows are
    one BatchNorm batch (the caller passes batch-aligned blocks).
    """
    if mode == "eval" and n:
        first = row_begin - row_begin % EVAL_BLOCK
        last = -(-(row_begin + n) // EVAL_BLOCK) * EVAL_BLOCK
        cols = _sample_rows(plan, key, first, last - first, mode, cond_fixed, EVAL_BLOCK)
        return [c[row_begin - first:row_begin - first + n] for c in cols]
    return _sample_rows(plan, key, row_begin, n, mode, cond_fixed, None)


def _sample_rows(plan, key, row_begin, n, mode, cond_fixed, block):
    E, D = plan["E"], plan["D"]
    z = draw_z(key, row_begin, n, E)
    cond = None
    if plan["C"] > 0:
        if cond_fixed >= 0:
            cond = np.full(n, cond_fixed, dtype=np.int32)
        else:
            cond = draw_cond(key, row_begin, n, plan["cond_cum"])
    out = forward(plan, z, cond, mode, block)
    if plan["tvae"]:
        return decode(plan, out, None, draw_alpha_noise(key, row_begin, n, D))
    return decode(plan, out, draw_gumbel(key, row_begin, n, D), None)
