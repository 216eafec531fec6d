"""Fast-path inference for CTGAN and TVAE generators, without PyTorch at sample time.

``from_ctgan(model)`` and ``from_tvae(model)`` read the numeric state of a
trained ``ctgan.CTGAN`` / ``ctgan.TVAE`` or SDV ``CTGANSynthesizer`` /
``TVAESynthesizer`` (weights, BatchNorm parameters and running statistics,
mode means and standard deviations, category lists, condition probabilities,
dtypes) through the user's installed packages, and return a :class:`GanModel`.
Nothing of ctgan, SDV or RDT is copied (BUSL): only numbers, strings and lists
are read off objects the caller passes in. ``GanModel.save`` writes JSON + npz
(no pickle); ``synthcore.gan.load`` reads it back and sampling then needs
neither torch nor ctgan.

Sampling runs the generator in one fused pass per row block (cpu: C++,
cuda: CUDA, numpy: the reference): z, the condition choice and the Gumbel
noise come from Philox keyed by (seed, row), each head is decoded straight
into typed columns. Two modes (docs/gan.md):

* ``mode="eval"``: BatchNorm with the running statistics, folded into the
  Linear layers. Each row depends only on (seed, row): output is identical
  under any chunking.
* ``mode="compat"``: BatchNorm with the statistics of each batch of
  ``batch_size`` rows, as ``ctgan.CTGAN.sample`` does (the generator stays in
  train mode there), for users who need ctgan's exact sampling distribution.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from . import _backend
from ._conditional import ImpossibleConditionError
from ._modelfile import read_model, write_model
from ._reference import gan as _ref
from ._seeding import Seed, philox_key

__all__ = ["GanModel", "GanImportError", "from_ctgan", "from_tvae", "load", "MODES"]

FORMAT = "synthcore-gan"
FORMAT_VERSION = 1
MODES = ("eval", "compat")
_STD_MULTIPLIER = 4.0  # ClusterBasedNormalizer: alpha = (x - mean) / (4 std)
_CHUNK_ROWS = {"numpy": 16384, "cpu": 1 << 18, "cuda": 1 << 20}


class GanImportError(TypeError):
    """The object passed to from_ctgan / from_tvae cannot be imported."""


# ---------------------------------------------------------------------------
# import: reading numeric state only
# ---------------------------------------------------------------------------

def _np(t) -> np.ndarray:
    """A tensor (or array) as a float NumPy array, without keeping torch objects."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().numpy()
    return np.array(t)


def _attr(obj, name, what):
    if not hasattr(obj, name):
        raise GanImportError(f"{what}: missing attribute {name!r} (unsupported ctgan version "
                             "or not a fitted model)")
    return getattr(obj, name)


def _plain(value):
    """A category or scalar as a JSON-able Python value (None for NaN)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    try:
        import pandas as pd
        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    raise GanImportError(f"category {value!r} of type {type(value).__name__} cannot be stored")


def _unwrap(model, family):
    """(ctgan model, SDV synthesizer or None) for a ctgan or SDV object."""
    cls = type(model)
    names = {"ctgan": ("CTGAN", "CTGANSynthesizer"), "tvae": ("TVAE", "TVAESynthesizer")}[family]
    if cls.__name__ == names[1] and cls.__module__.startswith("sdv"):
        if not getattr(model, "_fitted", False):
            raise GanImportError(f"the {names[1]} is not fitted; call fit() first")
        inner = getattr(model, "_model", None)
        if inner is None:
            raise GanImportError(f"the {names[1]} has no fitted model (_model is None)")
        return inner, model
    if cls.__name__ == names[0] and cls.__module__.startswith("ctgan"):
        return model, None
    raise GanImportError(f"from_{family} expects a ctgan.{names[0]} or an SDV {names[1]}, "
                         f"got {cls.__module__}.{cls.__qualname__}")


def _read_transformer(transformer, what):
    """Columns (name, kind, dtype, spans, mixture / categories) of ctgan's DataTransformer."""
    infos = _attr(transformer, "_column_transform_info_list", what)
    raw_dtypes = _attr(transformer, "_column_raw_dtypes", what)
    columns, means, stds = [], [], []
    at = 0
    for info in infos:
        name = str(info.column_name)
        spans = [(int(s.dim), str(s.activation_fn)) for s in info.output_info]
        dtype = str(raw_dtypes[info.column_name]) if info.column_name in raw_dtypes else None
        if info.column_type == "continuous":
            if len(spans) != 2 or spans[0] != (1, "tanh") or spans[1][1] != "softmax":
                raise GanImportError(f"column {name!r}: continuous spans {spans} are not "
                                     "[(1, tanh), (m, softmax)]")
            tf = info.transform
            bgm = _attr(tf, "_bgm_transformer", f"column {name!r} transformer")
            valid = np.asarray(_attr(tf, "valid_component_indicator", f"column {name!r}"),
                               dtype=bool)
            mu = np.asarray(bgm.means_, dtype=np.float64).reshape(-1)[valid]
            sd = np.sqrt(np.asarray(bgm.covariances_, dtype=np.float64).reshape(-1)[valid])
            if len(mu) != spans[1][0]:
                raise GanImportError(f"column {name!r}: {len(mu)} valid modes but a mode span of "
                                     f"{spans[1][0]}")
            mult = float(getattr(tf, "STD_MULTIPLIER", _STD_MULTIPLIER))
            if mult != _STD_MULTIPLIER:
                raise GanImportError(f"column {name!r}: STD_MULTIPLIER {mult} is not 4")
            if getattr(tf, "enforce_min_max_values", False) or \
                    getattr(tf, "learn_rounding_scheme", False):
                raise GanImportError(f"column {name!r}: min/max enforcement or learnt rounding "
                                     "inside ctgan's normaliser is not supported")
            columns.append({"name": name, "kind": "continuous", "dtype": dtype, "at": at,
                            "n_modes": len(mu), "mode_off": sum(len(m) for m in means),
                            "transform_dtype": str(getattr(tf, "_dtype", dtype))})
            means.append(mu)
            stds.append(sd)
        elif info.column_type == "discrete":
            if len(spans) != 1 or spans[0][1] != "softmax":
                raise GanImportError(f"column {name!r}: discrete spans {spans} are not one softmax")
            cats = [_plain(c) for c in _attr(info.transform, "dummies", f"column {name!r}")]
            if len(cats) != spans[0][0]:
                raise GanImportError(f"column {name!r}: {len(cats)} categories but a span of "
                                     f"{spans[0][0]}")
            columns.append({"name": name, "kind": "discrete", "dtype": dtype, "at": at,
                            "categories": cats})
        else:
            raise GanImportError(f"column {name!r}: unknown column type {info.column_type!r}")
        at += sum(s[0] for s in spans)
    D = int(_attr(transformer, "output_dimensions", what))
    if at != D:
        raise GanImportError(f"{what}: spans cover {at} outputs, output_dimensions is {D}")
    return columns, means, stds, D, bool(getattr(transformer, "dataframe", True))


def _linear(state, prefix, what):
    for suffix in ("weight", "bias"):
        if f"{prefix}.{suffix}" not in state:
            raise GanImportError(f"{what}: state_dict has no {prefix}.{suffix} "
                                 "(unsupported architecture)")
    return (_np(state[f"{prefix}.weight"]).astype(np.float32),
            _np(state[f"{prefix}.bias"]).astype(np.float32))


def _check_modules(seq, expected, what):
    """Module class names of a Sequential against the architecture we implement."""
    got = [type(m).__name__ for m in seq]
    if len(got) != len(expected) or any(g != e for g, e in zip(got, expected)):
        raise GanImportError(f"{what}: unsupported architecture {got}, expected {expected}")


def from_ctgan(model) -> "GanModel":
    """A GanModel from a trained ``ctgan.CTGAN`` or SDV ``CTGANSynthesizer``."""
    inner, synth = _unwrap(model, "ctgan")
    what = "CTGAN"
    gen = getattr(inner, "_generator", None)
    if gen is None:
        raise GanImportError("the CTGAN has no generator: it is not fitted")
    seq = _attr(gen, "seq", "CTGAN generator")
    dims = tuple(int(d) for d in _attr(inner, "_generator_dim", what))
    _check_modules(seq, ["Residual"] * len(dims) + ["Linear"], "CTGAN generator")
    E = int(_attr(inner, "_embedding_dim", what))
    B = int(_attr(inner, "_batch_size", what))
    state = gen.state_dict()
    layers = []
    for i, block in enumerate(list(seq)[:-1]):
        for sub in ("fc", "bn", "relu"):
            if not hasattr(block, sub):
                raise GanImportError(f"CTGAN generator block {i} has no {sub!r}")
        bn = block.bn
        if type(bn).__name__ != "BatchNorm1d" or not bn.affine or not bn.track_running_stats:
            raise GanImportError(f"CTGAN generator block {i}: BatchNorm must be an affine "
                                 "BatchNorm1d with running statistics")
        w, b = _linear(state, f"seq.{i}.fc", what)
        p = f"seq.{i}.bn"
        layers.append({"weight": w, "bias": b, "gamma": _np(state[f"{p}.weight"]),
                       "beta": _np(state[f"{p}.bias"]),
                       "running_mean": _np(state[f"{p}.running_mean"]),
                       "running_var": _np(state[f"{p}.running_var"]), "eps": float(bn.eps)})
    fw, fb = _linear(state, f"seq.{len(dims)}", what)
    transformer = _attr(inner, "_transformer", what)
    columns, means, stds, D, dataframe = _read_transformer(transformer, "CTGAN transformer")
    sampler = _attr(inner, "_data_sampler", what)
    K = int(_attr(sampler, "_n_discrete_columns", "CTGAN data sampler"))
    C = int(_attr(sampler, "_n_categories", "CTGAN data sampler"))
    prob = np.asarray(_attr(sampler, "_discrete_column_category_prob", "CTGAN data sampler"),
                      dtype=np.float64).reshape(K, -1) if K else np.zeros((0, 0))
    n_cat = np.asarray(_attr(sampler, "_discrete_column_n_category", "CTGAN data sampler"),
                       dtype=np.int64)[:K]
    discrete = [c for c in columns if c["kind"] == "discrete"]
    if len(discrete) != K or sum(len(c["categories"]) for c in discrete) != C:
        raise GanImportError("CTGAN data sampler does not match the transformer's discrete "
                             "columns")
    cond_prob = np.concatenate([prob[j, :n_cat[j]] for j in range(K)]) if K else np.zeros(0)
    net = {"kind": "ctgan", "E": E, "C": C, "D": D, "batch_size": B, "hidden": list(dims),
           "log_frequency": bool(getattr(inner, "_log_frequency", True))}
    m = GanModel(net, layers, (fw, fb), columns, means, stds, cond_prob=cond_prob,
                 dataframe=dataframe)
    _check_shapes(m)
    if synth is not None:
        m.sdv = _read_sdv(synth, columns)
    return m


def from_tvae(model) -> "GanModel":
    """A GanModel from a trained ``ctgan.TVAE`` or SDV ``TVAESynthesizer``."""
    inner, synth = _unwrap(model, "tvae")
    what = "TVAE"
    dec = getattr(inner, "decoder", None)
    if dec is None:
        raise GanImportError("the TVAE has no decoder: it is not fitted")
    dims = tuple(int(d) for d in _attr(inner, "decompress_dims", what))
    seq = _attr(dec, "seq", "TVAE decoder")
    _check_modules(seq, ["Linear", "ReLU"] * len(dims) + ["Linear"], "TVAE decoder")
    state = dec.state_dict()
    layers = []
    for i in range(len(dims)):
        w, b = _linear(state, f"seq.{2 * i}", what)
        layers.append({"weight": w, "bias": b})
    fw, fb = _linear(state, f"seq.{2 * len(dims)}", what)
    if "sigma" not in state:
        raise GanImportError("TVAE decoder has no sigma parameter")
    sigma = _np(state["sigma"]).astype(np.float32)
    columns, means, stds, D, dataframe = _read_transformer(_attr(inner, "transformer", what),
                                                           "TVAE transformer")
    E = int(_attr(inner, "embedding_dim", what))
    net = {"kind": "tvae", "E": E, "C": 0, "D": D, "batch_size": int(getattr(inner, "batch_size",
                                                                             500)),
           "hidden": list(dims)}
    m = GanModel(net, layers, (fw, fb), columns, means, stds, sigma=sigma, dataframe=dataframe)
    _check_shapes(m)
    if synth is not None:
        m.sdv = _read_sdv(synth, columns)
    return m


def _read_sdv(synth, columns):
    """SDV's reverse transform per table column, applied after ctgan's decode."""
    from . import _sdv_import as si
    dp = _attr(synth, "_data_processor", "SDV synthesizer")
    for attr in ("_chained_constraints", "_reject_sampling_constraints"):
        if getattr(synth, attr, None):
            raise GanImportError("SDV synthesizers with constraints are not supported")
    ht = dp._hyper_transformer
    dtypes = dp._dtypes
    formatters = getattr(dp, "formatters", None) or {}
    latent = {c["name"] for c in columns}
    keys = set(getattr(dp, "_keys", None) or [])
    out = []
    for name, meta in dp.metadata.columns.items():
        if name in keys or getattr(dp, "_primary_key", None) == name:
            raise GanImportError(f"column {name!r}: key columns (generated by SDV) are not "
                                 "supported")
        t = ht.field_transformers.get(name)
        entry = {"name": str(name), "sdtype": meta.get("sdtype"),
                 "output_dtype": str(dtypes[name]) if name in dtypes.index else None}
        try:
            entry["formatter"] = si._read_formatter(formatters.get(name), name)
            if t is None:
                entry["transformer"] = None
                entry["latent"] = [str(name)]
            else:
                entry["transformer"] = type(t).__name__
                entry.update(si._read_transformer(t, name))
                entry["latent"] = [str(c) for c in t.output_columns]
        except ValueError as exc:
            raise GanImportError(str(exc)) from None
        if entry["transformer"] not in (None, "FloatFormatter", "UnixTimestampEncoder",
                                        "OptimizedTimestampEncoder"):
            raise GanImportError(f"column {name!r}: SDV transformer {entry['transformer']} is "
                                 "not supported with CTGAN/TVAE")
        missing = [c for c in entry["latent"] if c not in latent]
        if missing:
            raise GanImportError(f"column {name!r}: model has no column {missing}")
        out.append(entry)
    return out


def _check_shapes(m: "GanModel"):
    E, C, D = m.net["E"], m.net["C"], m.net["D"]
    d = E + C
    for i, layer in enumerate(m.layers):
        w = layer["weight"]
        want = (m.net["hidden"][i], d)
        if w.shape != want:
            raise GanImportError(f"layer {i}: weight shape {w.shape}, expected {want}")
        d = d + w.shape[0] if m.residual else w.shape[0]
    if m.final[0].shape != (D, d):
        raise GanImportError(f"output layer: weight shape {m.final[0].shape}, expected {(D, d)}")


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------

class GanModel:
    """An imported CTGAN or TVAE generator with its output decoding (see module doc)."""

    def __init__(self, net, layers, final, columns, means, stds, *, cond_prob=None,
                 sigma=None, dataframe=True, sdv=None):
        self.net = dict(net)
        self.layers = layers
        self.final = final
        self.columns = columns
        self.means = np.concatenate(means).astype(np.float64) if len(means) else np.zeros(0)
        self.stds = np.concatenate(stds).astype(np.float64) if len(stds) else np.zeros(0)
        self.cond_prob = np.zeros(0) if cond_prob is None else np.asarray(cond_prob, np.float64)
        self.sigma = sigma
        self.dataframe = dataframe
        self.sdv = sdv
        self._plan = None

    @property
    def kind(self) -> str:
        return self.net["kind"]

    @property
    def residual(self) -> bool:
        return self.net["kind"] == "ctgan"

    @property
    def batch_size(self) -> int:
        return self.net["batch_size"]

    def __repr__(self):
        return (f"GanModel({self.kind}, E={self.net['E']}, hidden={self.net['hidden']}, "
                f"C={self.net['C']}, D={self.net['D']}, columns={len(self.columns)})")

    # ---- the plan: layouts and folded weights shared by all backends ----------

    def plan(self) -> dict:
        if self._plan is None:
            self._plan = _build_plan(self)
        return self._plan

    # ---- low-level entry points (tests, embedders) ----------------------------

    def forward(self, z, cond_index=None, *, mode: str = "eval") -> np.ndarray:
        """Pre-activation generator output (n x D, float32) for z (n x E).

        cond_index: int array (n,) of global condition indices (-1: none), or None.
        mode "compat" uses the batch statistics of these n rows.
        """
        _check_mode(mode)
        z = np.ascontiguousarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.net["E"]:
            raise ValueError(f"z must have shape (n, {self.net['E']}), got {z.shape}")
        if cond_index is not None:
            cond_index = np.asarray(cond_index, dtype=np.int32)
            if cond_index.shape != (z.shape[0],) or (cond_index >= self.net["C"]).any():
                raise ValueError("cond_index must be (n,) ints in [-1, C)")
        return _ref.forward(self.plan(), z, cond_index, mode)

    # ---- sampling ---------------------------------------------------------------

    def sample(self, n: int, seed: Seed = None, *, mode: str = "eval", conditions=None,
               exact: bool = True, ctgan_condition_bug: bool = False, row_offset: int = 0,
               backend: Optional[str] = None, chunk_size: Optional[int] = None,
               gpu_precision: str = "fp32", rules=None, min_acceptance: float = 1e-3):
        """Exactly ``n`` rows as a pandas DataFrame with the training table's dtypes.

        rules: a ``synthcore.Rules`` or rule strings (docs/rules.md): the first ``n``
        candidate rows ``row_offset, row_offset + 1, ...`` that satisfy every rule, in
        row order, derived columns appended; ``self.last_sample_info`` has the
        acceptance rate, and ``synthcore.RuleAcceptanceError`` names the rule that rejects
        most when fewer than ``min_acceptance`` pass. Express conditions as rules here.

        conditions: ``{column: value}`` on discrete columns. The first condition
        sets the generator's condition vector (at the correct offset for any
        discrete column; ``ctgan_condition_bug=True`` reproduces ctgan's offset
        bug, for parity tests only). With ``exact=True`` (default) only rows that
        meet every condition are kept, generating until there are n; with
        ``exact=False`` the condition only steers the generator, as in ctgan.
        row_offset: the first row index (rows depend only on (seed, row));
        in compat mode it must be a multiple of batch_size.
        gpu_precision: "fp32" (default), "tf32" (cuBLAS on tensor cores, inputs
        rounded to 10-bit mantissas) or "bf16" (inputs rounded to bfloat16, 8-bit
        mantissas, fp32 accumulation; docs/gan.md) for backend="cuda".
        """
        if rules is not None:
            from ._rules_sampling import sample_frames_with_rules
            if conditions:
                raise ValueError("rules and conditions cannot be combined on a GAN; express "
                                 "the conditions as rules (e.g. \"plan = 'pro'\")")

            def draw(count, offset):
                return self.sample(count, seed, mode=mode, row_offset=offset, backend=backend,
                                   chunk_size=chunk_size, gpu_precision=gpu_precision)
            frame, self.last_sample_info = sample_frames_with_rules(
                draw, n, rules, row_offset=_check_count(row_offset, "row_offset"),
                min_acceptance=min_acceptance,
                step=self.batch_size if mode == "compat" else 1)
            return frame
        _check_mode(mode)
        if gpu_precision not in ("fp32", "tf32", "bf16"):
            raise ValueError(f"gpu_precision must be 'fp32', 'tf32' or 'bf16', got "
                             f"{gpu_precision!r}")
        n = _check_count(n, "n")
        row_offset = _check_count(row_offset, "row_offset")
        B = self.batch_size
        if mode == "compat" and row_offset % B:
            raise ValueError(f"row_offset must be a multiple of batch_size ({B}) in compat mode, "
                             f"got {row_offset}")
        name = _backend.resolve(backend)
        key = philox_key(seed)
        if chunk_size is None:
            chunk_size = _CHUNK_ROWS[name]
        chunk_size = _check_count(chunk_size, "chunk_size")
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        if mode == "compat":
            chunk_size = max(B, chunk_size // B * B)
        cond_fixed, filters = self._conditions(conditions, ctgan_condition_bug)
        if filters and exact:
            cols = self._sample_filtered(n, key, mode, cond_fixed, filters, row_offset, name,
                                         chunk_size, gpu_precision)
        else:
            cols = self._sample_rows(key, row_offset, n, mode, cond_fixed, name, chunk_size,
                                     gpu_precision)
        return self._finish(cols, n, key, row_offset)

    def _conditions(self, conditions, bug):
        if not conditions:
            return -1, []
        if not isinstance(conditions, dict):
            raise TypeError(f"conditions must be a dict {{column: value}}, got "
                            f"{type(conditions).__name__}")
        by_name = {c["name"]: (i, c) for i, c in enumerate(self.columns)}
        filters, cond_fixed = [], -1
        disc_offset, offsets = 0, {}
        for c in self.columns:
            if c["kind"] == "discrete":
                offsets[c["name"]] = disc_offset
                disc_offset += len(c["categories"])
        for col, value in conditions.items():
            if col not in by_name:
                raise KeyError(f"conditions: no column {col!r} in the model (columns: "
                               f"{[c['name'] for c in self.columns]})")
            i, c = by_name[col]
            if c["kind"] != "discrete":
                raise ValueError(f"conditions: column {col!r} is continuous; only discrete "
                                 "columns can be conditioned")
            cats = c["categories"]
            code = _category_index(cats, value)
            if code is None:
                raise ImpossibleConditionError(f"conditions: column {col!r} has no category "
                                               f"{value!r} (categories: {cats})")
            filters.append((i, code))
            if cond_fixed < 0 and self.net["C"] > 0:
                cond_fixed = code if bug else offsets[col] + code
                if cond_fixed >= self.net["C"]:  # ctgan itself fails here too
                    raise ValueError(f"conditions: with ctgan_condition_bug the index {code} "
                                     f"falls outside the condition vector")
        return cond_fixed, filters

    def _sample_rows(self, key, row_begin, n, mode, cond_fixed, name, chunk, precision):
        parts = []
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            if mode == "compat":
                m_gen = -(-m // self.batch_size) * self.batch_size
            else:
                m_gen = m
            cols = _run_block(self, name, key, row_begin + start, m_gen, mode, cond_fixed,
                              precision)
            parts.append([c[:m] for c in cols])
        if not parts:
            return _run_block(self, "numpy", key, row_begin, 0, mode, cond_fixed, precision)
        return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]

    def _sample_filtered(self, n, key, mode, cond_fixed, filters, row_offset, name, chunk,
                         precision):
        kept, have, cand = [], 0, row_offset
        tried = 0
        B = self.batch_size
        while have < n:
            m = max(1024, min(chunk, 2 * (n - have)))
            if mode == "compat":
                m = -(-m // B) * B
            cols = _run_block(self, name, key, cand, m, mode, cond_fixed, precision)
            ok = np.ones(m, dtype=bool)
            for i, code in filters:
                ok &= cols[i] == code
            kept.append([c[ok] for c in cols])
            have += int(ok.sum())
            cand += m
            tried += m
            if have == 0 and tried >= 1_000_000:
                raise ImpossibleConditionError(
                    f"conditions {[(self.columns[i]['name'], code) for i, code in filters]}: no "
                    f"row met them in {tried} generated rows")
        return [np.concatenate([k[j] for k in kept])[:n] for j in range(len(kept[0]))]

    def _finish(self, cols, n, key, row_offset):
        import pandas as pd
        data = {}
        for c, values in zip(self.columns, cols):
            values = values[:n]
            if c["kind"] == "discrete":
                cats = c["categories"]
                dtype = c["dtype"]
                if dtype in ("bool", "int64", "int32", "float64") and None not in cats:
                    lut = np.asarray(cats, dtype=dtype)
                    data[c["name"]] = lut[values]
                else:
                    lut = np.empty(len(cats), dtype=object)
                    lut[:] = [np.nan if v is None else v for v in cats]
                    s = pd.Series(lut[values], copy=False)
                    data[c["name"]] = s.astype(dtype) if dtype not in (None, "object") else s
            else:
                dtype = c["dtype"] or "float64"
                data[c["name"]] = values if values.dtype == np.dtype(dtype) else \
                    pd.Series(values).astype(dtype)
        frame = pd.DataFrame(data, copy=False)
        if self.sdv is not None:
            frame = _sdv_reverse(self.sdv, frame, key, row_offset)
        return frame

    # ---- persistence ------------------------------------------------------------

    def save(self, path) -> None:
        """Write the model as a zip of model.json + arrays.npz (no pickle, no code)."""
        arrays = {"final.weight": self.final[0], "final.bias": self.final[1],
                  "means": self.means, "stds": self.stds, "cond_prob": self.cond_prob}
        if self.sigma is not None:
            arrays["sigma"] = self.sigma
        layers_meta = []
        for i, layer in enumerate(self.layers):
            meta = {}
            for k, v in layer.items():
                if isinstance(v, np.ndarray):
                    arrays[f"layer{i}.{k}"] = v
                else:
                    meta[k] = v
            layers_meta.append(meta)
        header = {"format": FORMAT, "version": FORMAT_VERSION, "net": self.net,
                  "layers": layers_meta, "columns": self.columns, "dataframe": self.dataframe,
                  "sdv": self.sdv}
        write_model(path, header, arrays, json_default=_json_default)

    @classmethod
    def load(cls, path) -> "GanModel":
        """Read a model written by save(). Never unpickles and never runs code."""
        header, arrays = read_model(path, FORMAT, FORMAT_VERSION, "GAN")
        layers = []
        for i, meta in enumerate(header["layers"]):
            layer = dict(meta)
            prefix = f"layer{i}."
            for k, v in arrays.items():
                if k.startswith(prefix):
                    layer[k[len(prefix):]] = v
            layers.append(layer)
        m = cls(header["net"], layers, (arrays["final.weight"], arrays["final.bias"]),
                header["columns"], [arrays["means"]], [arrays["stds"]],
                cond_prob=arrays["cond_prob"], sigma=arrays.get("sigma"),
                dataframe=header["dataframe"], sdv=header["sdv"])
        _check_shapes(m)
        return m


def load(path) -> GanModel:
    """Load a model saved with ``GanModel.save``."""
    return GanModel.load(path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot store {type(o).__name__} in model.json")


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _check_count(v, name):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return int(v)


def _category_index(cats, value):
    for i, c in enumerate(cats):
        if c is None:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return i
        elif value is not None and type(c) is bool:
            if isinstance(value, (bool, np.bool_)) and bool(value) == c:
                return i
        elif value is not None and not isinstance(value, (bool, np.bool_)) and c == value:
            return i
    return None


# ---------------------------------------------------------------------------
# plan: buffer layout, folded weights, decode tables
# ---------------------------------------------------------------------------

def _build_plan(m: GanModel) -> dict:
    E, C, D = m.net["E"], m.net["C"], m.net["D"]
    hidden = m.net["hidden"]
    S = E + sum(hidden)
    layers = []
    # Buffer: [r_L | ... | r_1 | z]; block i writes r_i just before its input.
    in_off, in_w = S - E, E
    for i, layer in enumerate(m.layers):
        w = layer["weight"].astype(np.float64)
        b = layer["bias"].astype(np.float64)
        wo = w.shape[0]
        out_off = in_off - wo
        main, cond = w[:, :in_w], w[:, in_w:]
        entry = {"in_off": in_off, "in_w": in_w, "out_off": out_off, "out_w": wo, "relu": True,
                 "bn": "gamma" in layer}
        if entry["bn"]:
            scale = layer["gamma"].astype(np.float64) / np.sqrt(
                layer["running_var"].astype(np.float64) + layer["eps"])
            wf = main * scale[:, None]
            bf = (b - layer["running_mean"]) * scale + layer["beta"]
            cf = cond * scale[:, None]
            entry.update(wt_raw=_f32(main.T), b_raw=_f32(b), wc_raw=_f32(cond.T),
                         gamma=_f32(layer["gamma"]), beta=_f32(layer["beta"]), eps=layer["eps"])
        else:
            wf, bf, cf = main, b, cond
        entry.update(wt=_f32(wf.T), b=_f32(bf), wc=_f32(cf.T))
        layers.append(entry)
        if m.residual:
            in_off, in_w = out_off, in_w + wo
        else:
            in_off, in_w = out_off, wo
    fw = m.final[0].astype(np.float32)
    final = {"in_off": in_off, "in_w": in_w, "wt": _f32(fw[:, :in_w].T), "b": _f32(m.final[1]),
             "wc": _f32(fw[:, in_w:].T)}
    columns = []
    for c in m.columns:
        if c["kind"] == "discrete":
            columns.append({"decode": _ref.COL_DISCRETE, "at": c["at"],
                            "width": len(c["categories"]), "mode_off": 0})
        else:
            dt = c["transform_dtype"] or c["dtype"] or "float64"
            is_int = np.dtype(dt).kind in "iu" if dt not in ("Int64", "category", "object") \
                else dt == "Int64"
            columns.append({"decode": _ref.COL_CONT_I64 if is_int else _ref.COL_CONT_F64,
                            "at": c["at"], "width": c["n_modes"], "mode_off": c["mode_off"]})
    cum = np.cumsum(m.cond_prob / m.cond_prob.sum()) if C else np.zeros(0)
    if C:
        cum[-1] = 1.0
    return {"E": E, "C": C, "D": D, "S": S, "layers": layers, "final": final,
            "columns": columns, "means": m.means, "stds": m.stds, "cond_cum": cum,
            "tvae": m.kind == "tvae",
            "sigma": None if m.sigma is None else m.sigma.astype(np.float32)}


def _f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


# ---------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------

def _run_block(m: GanModel, name, key, row_begin, n, mode, cond_fixed, precision="fp32"):
    plan = m.plan()
    if name == "numpy" or n == 0:
        if mode == "compat" and n:
            B = m.batch_size
            parts = [_ref.sample_block(plan, key, row_begin + s, B, mode, cond_fixed)
                     for s in range(0, n, B)]
            return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]
        return _ref.sample_block(plan, key, row_begin, n, mode, cond_fixed)
    if name == "cpu":
        from ._gan_native import cpu_sample_block
        return cpu_sample_block(m, key, row_begin, n, mode, cond_fixed)
    from ._gan_native import cuda_sample_block
    return [c.get() for c in cuda_sample_block(m, key, row_begin, n, mode, cond_fixed,
                                                precision)]


def _sdv_reverse(specs, frame, key, row_offset):
    """SDV's reverse transform (nulls at the learnt rate, clip, round, datetimes, dtypes)."""
    import pandas as pd
    from . import _sdv_import as si
    n = len(frame)
    out = {}
    for j, col in enumerate(specs):
        lat = {name: frame[name].to_numpy() for name in col["latent"]}
        rng = _PhiloxUniform(key, _ref.STREAM_NULLS + j, row_offset)
        t = col["transformer"]
        if t is None:
            series = pd.Series(lat[col["latent"][0]])
        elif t == "FloatFormatter":
            series = si._decode_float_formatter(col, lat, n, rng)
        else:
            series = si._decode_datetime(col, lat, n, rng)
        out[col["name"]] = si._finalise(col, series).reset_index(drop=True)
    return pd.DataFrame(out)


class _PhiloxUniform:
    """``.random(n)``: float64 uniforms of one Philox stream from row_offset (null injection)."""

    def __init__(self, key, stream, row_offset):
        self.key, self.stream, self.row_offset = key, stream, row_offset

    def random(self, n):
        from ._reference import random as _rand
        return _rand.uniform(self.key, self.stream, self.row_offset, n, np.float64, 0.0, 1.0)
