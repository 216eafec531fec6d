"""DP noise mechanisms over whole arrays. This release: the discrete Laplace mechanism.

``discrete_laplace(x, epsilon=..., sensitivity=...)`` adds to an integer array noise
with P(Z = z) ∝ exp(-|z| / t), t = sensitivity / epsilon, drawn from a
``SecureGenerator`` (python/synthcore/_reference/dp_noise.py has the algorithm):
Z = G1 - G2 from two geometrics written in base 64, each digit read from one 96-bit
ChaCha20 uniform against 64 exact thresholds. The work per element is fixed by the
scale, never by the data or the values drawn. The thresholds are floor-rounded and
the last digit's tail dropped: each sample is within total variation
2 * (63 L 2^-96 + 2^-100) of the exact distribution, so an n-element release is (epsilon, n (1 + e^epsilon) * that)-DP;
the delta is computed, returned and charged, never hidden.
"""
from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import _backend
from .._reference import dp_noise as _ref
from .._reference import secure_random as _ref_words
from . import accounting
from ._generator import SecureGenerator


@dataclass(frozen=True)
class DPRelease:
    """A noisy array and what it cost."""
    values: Any              # int64 array (NumPy)
    mechanism: str
    epsilon: float           # pure-DP cost of the mechanism
    delta: float             # the sampler's approximation, charged as delta
    scale: float             # noise scale t (P(z) ∝ exp(-|z| / t))
    sensitivity: float
    insecure_generator: bool  # True when the noise came from insecure_generator_for_tests
    receipt: Any = None      # the accountant's ledger entry, when one was given


@functools.lru_cache(maxsize=64)
def _tables(scale: float) -> _ref.GeometricTables:
    return _ref.geometric_tables(scale)


def _generator(generator) -> SecureGenerator:
    """The caller's generator, or a fresh OS-keyed one."""
    if generator is None:
        return SecureGenerator()
    if not isinstance(generator, SecureGenerator):
        raise TypeError("generator must be a synthcore.dp.SecureGenerator (or the insecure "
                        "test generator)")
    return generator


def _positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value}")
    return value


def discrete_laplace(x, *, epsilon: Optional[float] = None, scale: Optional[float] = None,
                     sensitivity: float = 1.0, generator: Optional[SecureGenerator] = None,
                     accountant: Optional[accounting.Accountant] = None,
                     name: str = "discrete_laplace", backend: Optional[str] = None) -> DPRelease:
    """x + discrete Laplace noise, for an integer array x with L1 sensitivity ``sensitivity``.

    Give ``epsilon`` (the scale is then sensitivity / epsilon, rounded up) or ``scale``
    (the cost is then sensitivity / scale, rounded up). With an ``accountant`` the cost
    is charged before any noise is drawn; an overspend raises
    ``synthcore.dp.BudgetExceededError`` and draws nothing.
    """
    kind = _backend.array_kind(x)
    arr = x if kind == "cupy" else np.asarray(x)
    if arr.dtype.kind not in "iu" or arr.dtype.kind == "b":
        raise TypeError(f"x must be an integer array (counts, sums of integers), got dtype "
                        f"{arr.dtype}; for floats use a grid-safe float mechanism")
    if arr.size and (int(arr.max()) > 2**62 or int(arr.min()) < -2**62):
        raise ValueError("x has values beyond +/- 2**62: the noisy result could overflow int64")
    sensitivity = _positive(sensitivity, "sensitivity")
    if (epsilon is None) == (scale is None):
        raise ValueError("give exactly one of epsilon and scale")
    if epsilon is not None:
        epsilon = _positive(epsilon, "epsilon")
        scale = accounting.discrete_laplace_scale(sensitivity, epsilon)
    else:
        scale = _positive(scale, "scale")
        epsilon = float(np.nextafter(sensitivity / scale, np.inf))  # never under-reported
    if scale > _ref.MAX_SCALE:
        raise ValueError(f"scale {scale:g} exceeds this sampler's limit {_ref.MAX_SCALE:g} "
                         "(sensitivity / epsilon too large)")
    generator = _generator(generator)
    name_b = _backend.resolve(backend, arrays=(arr,))
    tables = _tables(float(scale))
    n = int(arr.size)
    delta = n * (1.0 + math.exp(min(epsilon, 700.0))) * 2.0 * tables.tv_per_geometric
    delta = float(np.nextafter(delta, np.inf)) if delta > 0 else 0.0
    receipt = None
    if accountant is not None:
        receipt = accountant.charge(name, epsilon=epsilon, delta=delta,
                                    mechanism="discrete_laplace",
                                    params={"scale": scale, "sensitivity": sensitivity,
                                            "n": n, "insecure_generator": generator.insecure})
    first = generator._reserve(tables.words_per_sample * n)
    if name_b == "cuda":
        values = _laplace_cuda(arr, tables, generator, first, n)
        return DPRelease(values, "discrete_laplace", epsilon, delta, float(scale), sensitivity,
                         bool(generator.insecure), receipt)
    noise = np.empty(n, dtype=np.int64)
    if n and name_b == "numpy":
        words = _ref_words.stream_words(generator._key, generator._stream, first,
                                        tables.words_per_sample * n)
        noise[...] = _ref.discrete_laplace_noise(tables, words)
    elif n:
        _backend.core_module().discrete_laplace_noise(
            generator._key, generator._stream, first, tables.levels, tables.t_hi, tables.t_lo,
            noise, _backend.get_num_threads())
    values = arr.astype(np.int64).reshape(-1) + noise
    return DPRelease(values.reshape(arr.shape), "discrete_laplace", epsilon, delta, float(scale),
                     sensitivity, bool(generator.insecure), receipt)


def _laplace_cuda(arr, tables, generator, first, n):
    """CuPy in, CuPy out: keystream words on the GPU, then the digit counts."""
    import cupy
    from ._generator import _words
    flat = cupy.ascontiguousarray(arr.reshape(-1).astype(cupy.int64))
    out = cupy.empty(n, dtype=cupy.int64)
    if n:
        words = _words(generator._key, generator._stream, first, tables.words_per_sample * n,
                       None, "cuda", generator._device_keys)
        t_hi, t_lo = cupy.asarray(tables.t_hi), cupy.asarray(tables.t_lo)
        _backend.cuda_module().discrete_laplace_from_words(
            words.data.ptr, tables.levels, t_hi.data.ptr, t_lo.data.ptr, flat.data.ptr,
            out.data.ptr, n, cupy.cuda.get_current_stream().ptr)
    return out.reshape(arr.shape)


@functools.lru_cache(maxsize=256)
def _rr_intervals(k: int, epsilon: float):
    return _ref.rr_intervals(k, epsilon)


def randomized_response(codes, k: int, *, epsilon: float,
                        generator: Optional[SecureGenerator] = None,
                        accountant: Optional[accounting.Accountant] = None,
                        name: str = "randomized_response",
                        backend: Optional[str] = None) -> DPRelease:
    """k-ary randomized response on category codes 0 .. k-1 (local DP per value).

    Each code is kept with probability keep/2^96 and otherwise replaced by one of the
    other k - 1 codes, each with probability other/2^96, where keep/other <= e^epsilon
    exactly (the interval lengths are rounded so that the guarantee is pure
    epsilon-DP, with no delta). The work per value is fixed.
    """
    if _backend.array_kind(codes) == "cupy":
        raise _backend.BackendUnavailableError(
            "randomized_response has no CUDA kernel yet; pass a NumPy array")
    arr = np.asarray(codes)
    if arr.dtype.kind not in "iu" or arr.dtype.kind == "b":
        raise TypeError(f"codes must be an integer array of category codes, got {arr.dtype}")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    k = int(k)
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= k):
        raise ValueError(f"codes must lie in [0, {k}), got values in "
                         f"[{int(arr.min())}, {int(arr.max())}]")
    epsilon = _positive(epsilon, "epsilon")
    generator = _generator(generator)
    name_b = _backend.resolve(backend, arrays=(arr,))
    keep, other = _rr_intervals(k, epsilon)
    n = int(arr.size)
    receipt = None
    if accountant is not None:
        receipt = accountant.charge(name, epsilon=epsilon, delta=0.0,
                                    mechanism="randomized_response",
                                    params={"k": k, "n": n,
                                            "insecure_generator": generator.insecure})
    first = generator._reserve(_ref.RR_WORDS_PER_VALUE * n)
    flat = arr.astype(np.int64).reshape(-1)
    out = np.empty(n, dtype=np.int64)
    if n and name_b == "numpy":
        words = _ref_words.stream_words(generator._key, generator._stream, first,
                                        _ref.RR_WORDS_PER_VALUE * n)
        out[...] = _ref.randomized_response(flat, k, keep, other, words)
    elif n:
        _backend.core_module().randomized_response(
            generator._key, generator._stream, first, flat, out, keep >> 32, keep & 0xFFFFFFFF,
            other >> 32, other & 0xFFFFFFFF, _backend.get_num_threads())
    return DPRelease(out.reshape(arr.shape), "randomized_response", epsilon, 0.0, float("nan"),
                     1.0, bool(generator.insecure), receipt)
