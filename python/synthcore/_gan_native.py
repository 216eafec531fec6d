"""GanModel plans for the native kernels (cpu: _core.gan_sample, cuda: _cuda).

The plan is the reference plan (synthcore.gan._build_plan) with each layer's
output width padded to a multiple of 32 (the GEMM tile), in the tuple layout the
bindings take. Built once per model and mode, and cached on the model.
"""
from __future__ import annotations

import numpy as np

from . import _backend
from ._reference import gan as _ref

PANEL = 32
EVAL_BLOCK_ROWS = 64


def _pad(a, ld):
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 1:
        out = np.zeros(ld, np.float32)
        out[:a.shape[0]] = a
    else:
        out = np.zeros((a.shape[0], ld), np.float32)
        out[:, :a.shape[1]] = a
    return out


def _layer(entry, C, compat):
    raw = compat and entry.get("bn", False)
    wt, b, wc = (entry["wt_raw"], entry["b_raw"], entry["wc_raw"]) if raw else \
        (entry["wt"], entry["b"], entry["wc"])
    out_w = wt.shape[1]
    ld = -(-out_w // PANEL) * PANEL
    return (entry["in_off"], entry["in_w"], entry.get("out_off", 0), out_w, _pad(wt, ld),
            _pad(b, ld), _pad(wc, ld) if C else None, bool(raw),
            entry["gamma"] if raw else None, entry["beta"] if raw else None,
            float(entry.get("eps", 0.0)))


def native_plan(model, mode):
    cache = model.__dict__.setdefault("_native_plans", {})
    if mode not in cache:
        plan = model.plan()
        compat = mode == "compat"
        C = plan["C"]
        cache[mode] = {
            "layers": [_layer(e, C, compat) for e in plan["layers"]],
            "final": _layer(plan["final"], C, False),
            "columns": [(c["decode"], c["at"], c["width"], c["mode_off"]) for c in plan["columns"]],
            "plan": plan,
        }
    return cache[mode]


def _outputs(plan, n, xp=np):
    dtypes = {_ref.COL_CONT_F64: np.float64, _ref.COL_CONT_I64: np.int64,
              _ref.COL_DISCRETE: np.int32}
    return [xp.empty(n, dtype=dtypes[c["decode"]]) for c in plan["columns"]]


def cpu_sample_block(model, key, row_begin, n, mode, cond_fixed, block_rows=None):
    np_plan = native_plan(model, mode)
    plan = np_plan["plan"]
    outs = _outputs(plan, n)
    if block_rows is None:
        block_rows = model.batch_size if mode == "compat" else EVAL_BLOCK_ROWS
    cols = [c + (o,) for c, o in zip(np_plan["columns"], outs)]
    _backend.core_module().gan_sample(
        np_plan["layers"], np_plan["final"], cols, plan["cond_cum"], plan["means"],
        plan["stds"], plan["sigma"], plan["E"], plan["C"], plan["D"], plan["S"], plan["tvae"],
        key.k0, key.k1, row_begin, n, block_rows, mode == "compat", int(cond_fixed),
        _backend.get_num_threads())
    return outs


def cuda_sample_block(model, key, row_begin, n, mode, cond_fixed):
    raise NotImplementedError("the CUDA GAN kernel is not wired yet")
