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
EVAL_BLOCK_ROWS = 96  # a multiple of the CPU GEMM's 6-row tile


def pack_panels(wt):
    """(k, ld) -> the CPU GEMM's layout: panels of 32 columns, each k rows of 32, and a
    last panel of 16 when ld % 32 == 16 (flat, k * ld floats)."""
    k, ld = wt.shape
    main = ld // PANEL * PANEL
    parts = [wt[:, :main].reshape(k, main // PANEL, PANEL).transpose(1, 0, 2).reshape(-1)]
    if ld > main:
        parts.append(wt[:, main:].reshape(-1))
    return np.ascontiguousarray(np.concatenate(parts)).reshape(k, ld)


def _pad(a, ld):
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 1:
        out = np.zeros(ld, np.float32)
        out[:a.shape[0]] = a
    else:
        out = np.zeros((a.shape[0], ld), np.float32)
        out[:, :a.shape[1]] = a
    return out


def _layer(entry, C, compat, packed):
    raw = compat and entry.get("bn", False)
    wt, b, wc = (entry["wt_raw"], entry["b_raw"], entry["wc_raw"]) if raw else \
        (entry["wt"], entry["b"], entry["wc"])
    out_w = wt.shape[1]
    ld = -(-out_w // 16) * 16
    wt = _pad(wt, ld)
    return (entry["in_off"], entry["in_w"], entry.get("out_off", 0), out_w,
            pack_panels(wt) if packed else wt,
            _pad(b, ld), _pad(wc, ld) if C else None, bool(raw),
            entry["gamma"] if raw else None, entry["beta"] if raw else None,
            float(entry.get("eps", 0.0)))


def native_plan(model, mode, packed=True):
    """packed: weights in the CPU GEMM's panel layout; False: row-major (cuBLAS)."""
    cache = model.__dict__.setdefault("_native_plans", {})
    if (mode, packed) not in cache:
        plan = model.plan()
        compat = mode == "compat"
        C = plan["C"]
        cache[(mode, packed)] = {
            "layers": [_layer(e, C, compat, packed) for e in plan["layers"]],
            "final": _layer(plan["final"], C, False, packed),
            "columns": [(c["decode"], c["at"], c["width"], c["mode_off"]) for c in plan["columns"]],
            "plan": plan,
        }
    return cache[(mode, packed)]


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


def _device_plan(model, mode):
    """The native plan's arrays on the current GPU (cached per device and mode)."""
    import cupy
    cache = model.__dict__.setdefault("_device_plans", {})
    k = (cupy.cuda.Device().id, mode)
    if k not in cache:
        p = native_plan(model, mode, packed=False)
        plan = p["plan"]
        dev = lambda a: None if a is None else cupy.asarray(a)  # noqa: E731
        layers = [tuple(dev(v) if isinstance(v, np.ndarray) else v for v in layer)
                  for layer in p["layers"]]
        final = tuple(dev(v) if isinstance(v, np.ndarray) else v for v in p["final"])
        cache[k] = {"layers": layers, "final": final,
                    "columns": cupy.asarray(np.array(p["columns"], np.int32).reshape(-1, 4)),
                    "cond_cum": cupy.asarray(plan["cond_cum"]),
                    "means": cupy.asarray(plan["means"]),
                    "stds": cupy.asarray(plan["stds"]),
                    "sigma": dev(plan["sigma"]), "plan": plan}
    return cache[k]


# cuBLAS / CUDA enum values (cublas_api.h, library_types.h)
_CUDA_R_32F = 0
_CUBLAS_COMPUTE_32F_FAST_16BF = 75
_CUBLAS_GEMM_DEFAULT = -1


def _ptr(a):
    return 0 if a is None else a.data.ptr


def _sgemm(x_ptr, ldx, rows, k, wt, y, precision):
    """y (rows x ld, row-major) = x (rows x k, row stride ldx) @ wt (k x ld): cuBLAS
    in column-major terms, y^T = wt^T x^T, reading the activation buffer in place."""
    import cupy
    from cupy_backends.cuda.libs import cublas
    handle = cupy.cuda.device.get_cublas_handle()
    ld = wt.shape[1]
    one = np.array(1.0, np.float32)
    zero = np.array(0.0, np.float32)
    # cuBLAS enum values (cublas_api.h), in case this CuPy does not export the names.
    op_n = getattr(cublas, "CUBLAS_OP_N", 0)
    host = getattr(cublas, "CUBLAS_POINTER_MODE_HOST", 0)
    if precision == "bf16":
        # cublasGemmEx with float32 data and compute type CUBLAS_COMPUTE_32F_FAST_16BF:
        # inputs rounded to bfloat16 (8-bit mantissas) on tensor cores, fp32 accumulation
        cublas.gemmEx(handle, op_n, op_n, ld, rows, k, one.ctypes.data, wt.data.ptr,
                      _CUDA_R_32F, ld, x_ptr, _CUDA_R_32F, ldx, zero.ctypes.data, y.data.ptr,
                      _CUDA_R_32F, ld, _CUBLAS_COMPUTE_32F_FAST_16BF, _CUBLAS_GEMM_DEFAULT)
        return
    mode = getattr(cublas, "CUBLAS_TF32_TENSOR_OP_MATH", 3) if precision == "tf32" else \
        getattr(cublas, "CUBLAS_DEFAULT_MATH", 0)
    # CuPy shares this handle: restore its modes afterwards.
    old_math, old_pointer = cublas.getMathMode(handle), cublas.getPointerMode(handle)
    cublas.setMathMode(handle, mode)
    cublas.setPointerMode(handle, host)
    try:
        cublas.sgemm(handle, op_n, op_n, ld, rows, k,
                     one.ctypes.data, wt.data.ptr, ld, x_ptr, ldx, zero.ctypes.data,
                     y.data.ptr, ld)
    finally:
        cublas.setMathMode(handle, old_math)
        cublas.setPointerMode(handle, old_pointer)


def cuda_sample_block(model, key, row_begin, n, mode, cond_fixed, precision="fp32"):
    """Rows [row_begin, row_begin + n) on the GPU: CuPy arrays, one per column.

    GEMMs in cuBLAS (fp32, or TF32 tensor cores with precision="tf32"), the
    rest in synthcore's kernels (cuda/gan.cu), all on CuPy's current stream.
    """
    import cupy
    cu = _backend.cuda_module()
    d = _device_plan(model, mode)
    plan = d["plan"]
    E, C, D, S = plan["E"], plan["C"], plan["D"], plan["S"]
    stream = cupy.cuda.get_current_stream().ptr
    outs = _outputs(plan, n, cupy)
    if n == 0:
        return outs
    buf = cupy.empty((n, S), dtype=cupy.float32)
    cond = cupy.empty(max(n, 1) if C else 1, dtype=cupy.int32)
    cu.gan_prologue(buf.data.ptr, S, E, n, key.k0, key.k1, row_begin, _ptr(d["cond_cum"]), C,
                    int(cond_fixed), cond.data.ptr, stream)
    ld_max = max(layer[4].shape[1] for layer in d["layers"] + [d["final"]])
    y = cupy.empty((n, ld_max), dtype=cupy.float32)
    B = model.batch_size
    scratch = None
    for layer in d["layers"]:
        in_off, in_w, out_off, out_w, wt, b, wc, bn, gamma, beta, eps = layer
        ld = wt.shape[1]
        yv = y.ravel()[:n * ld].reshape(n, ld)
        _sgemm(buf.data.ptr + 4 * in_off, S, n, in_w, wt, yv, precision)
        batch_rows = B if (mode == "compat" and bn) else 0
        if batch_rows and scratch is None:
            widest = max(layer_[3] for layer_ in d["layers"])
            scratch = cupy.empty(2 * (n // B) * widest, dtype=cupy.float64)
        cu.gan_hidden_epilogue(yv.data.ptr, ld, b.data.ptr, _ptr(wc), cond.data.ptr, n, out_w,
                               buf.data.ptr, S, out_off, batch_rows, _ptr(gamma), _ptr(beta),
                               float(eps), _ptr(scratch), stream)
    in_off, in_w, _, _, wt, b, wc = d["final"][:7]
    ld = wt.shape[1]
    yv = y.ravel()[:n * ld].reshape(n, ld)
    _sgemm(buf.data.ptr + 4 * in_off, S, n, in_w, wt, yv, precision)
    ptrs = cupy.asarray(np.array([o.data.ptr for o in outs], dtype=np.uint64))
    cu.gan_decode(yv.data.ptr, ld, b.data.ptr, _ptr(wc), cond.data.ptr, n, D,
                  d["columns"].data.ptr, len(outs), ptrs.data.ptr, d["means"].data.ptr,
                  d["stds"].data.ptr, _ptr(d["sigma"]), plan["tvae"], key.k0, key.k1,
                  row_begin, stream)
    return outs
