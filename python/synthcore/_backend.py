"""Backend selection: ``cuda`` | ``cpu`` | ``numpy``.

Precedence, first set wins: the call's ``backend=`` argument, the innermost
``use_backend`` context, ``set_backend``, the ``SYNTHCORE_BACKEND`` environment
variable, then ``"auto"``. ``auto`` picks ``cuda`` when CuPy imports, a GPU is
present and ``_cuda`` was built, else ``cpu`` when ``_core`` was built, else
``numpy``. Array arguments narrow the choice: NumPy in gives NumPy out, CuPy
in gives CuPy out, a mix is an error and nothing is ever copied between host
and device behind the caller's back.

CuPy is imported only when a CUDA path is considered, never by ``import synthcore``.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import importlib.util
import os
from typing import Iterator, Optional

BACKENDS = ("cuda", "cpu", "numpy")
_CHOICES = ("auto",) + BACKENDS
ENV_VAR = "SYNTHCORE_BACKEND"

_process_backend: Optional[str] = None
_context_backend: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
    "synthcore_backend", default=None)


class BackendUnavailableError(RuntimeError):
    """The requested backend was not built or cannot run on this machine."""


@functools.lru_cache(maxsize=None)
def core_module():
    """The C++ module ``synthcore._core``, or None if it was not built."""
    try:
        return importlib.import_module("synthcore._core")
    except ImportError:
        return None


@functools.lru_cache(maxsize=None)
def cuda_module():
    """The CUDA module ``synthcore._cuda``, or None if it was not built."""
    try:
        return importlib.import_module("synthcore._cuda")
    except ImportError:
        return None


@functools.lru_cache(maxsize=None)
def _cuda_status() -> tuple[bool, str]:
    """(usable, reason or GPU name). Imports CuPy, so only called for CUDA paths."""
    if cuda_module() is None:
        return False, "synthcore was built without the CUDA module (no nvcc at build time)"
    if importlib.util.find_spec("cupy") is None:
        return False, "CuPy is not installed (pip install 'synthcore[gpu]')"
    try:
        import cupy
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, broken install: CuPy raises its own types
        return False, f"CuPy cannot reach a GPU: {exc}"
    if count == 0:
        return False, "no CUDA device is visible"
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    return True, name.decode() if isinstance(name, bytes) else str(name)


def cuda_usable() -> bool:
    return _cuda_status()[0]


def gpu_name() -> Optional[str]:
    usable, detail = _cuda_status()
    return detail if usable else None


def built_backends() -> tuple[str, ...]:
    """Backends compiled into this install (numpy is always there)."""
    built = []
    if cuda_module() is not None:
        built.append("cuda")
    if core_module() is not None:
        built.append("cpu")
    built.append("numpy")
    return tuple(built)


def available_backends() -> tuple[str, ...]:
    """Backends that can run now, best first."""
    return tuple(b for b in BACKENDS if _usable(b))


def _usable(name: str) -> bool:
    if name == "cuda":
        return cuda_usable()
    if name == "cpu":
        return core_module() is not None
    return True


def _check_name(name, what: str) -> str:
    if not isinstance(name, str) or name.lower() not in _CHOICES:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, _CHOICES))}, got {name!r}")
    return name.lower()


def _require(name: str) -> str:
    if not _usable(name):
        if name == "cuda":
            reason = _cuda_status()[1]
        else:
            reason = "synthcore._core was not built or failed to import"
        raise BackendUnavailableError(f"backend {name!r} is not available: {reason}")
    return name


def set_backend(name: Optional[str]) -> None:
    """Set the process-wide backend ("auto", "cuda", "cpu" or "numpy").

    None clears it, so that SYNTHCORE_BACKEND (or "auto") applies again.
    """
    global _process_backend
    if name is None:
        _process_backend = None
        return
    name = _check_name(name, "backend")
    if name != "auto":
        _require(name)
    _process_backend = name


def get_backend() -> str:
    """The backend setting in force here (may be "auto"), before array inputs narrow it."""
    configured = _context_backend.get() or _process_backend
    if configured is not None:
        return configured
    env = os.environ.get(ENV_VAR)
    if env:
        return _check_name(env, f"the environment variable {ENV_VAR}")
    return "auto"


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Context manager: use ``name`` inside the block (thread- and task-local)."""
    name = _check_name(name, "backend")
    if name != "auto":
        _require(name)
    token = _context_backend.set(name)
    try:
        yield name
    finally:
        _context_backend.reset(token)


def array_kind(a) -> Optional[str]:
    """"numpy", "cupy" or None (not an array), without importing CuPy."""
    if a is None:
        return None
    module = type(a).__module__
    if module.startswith("cupy"):
        return "cupy"
    if module.startswith("numpy"):
        return "numpy"
    return None


def resolve(backend: Optional[str] = None, arrays=()) -> str:
    """The concrete backend for one call, given its ``backend=`` and array arguments."""
    name = get_backend() if backend is None else _check_name(backend, "backend")
    kinds = {k for k in (array_kind(a) for a in arrays) if k is not None}
    if len(kinds) > 1:
        raise TypeError("NumPy and CuPy arrays were mixed in one call; move them to one "
                        "device first (synthcore never copies between host and device silently)")
    kind = kinds.pop() if kinds else None
    if name == "auto":
        if kind == "cupy":
            return _require("cuda")
        if kind == "numpy":
            return "cpu" if _usable("cpu") else "numpy"
        for candidate in BACKENDS:
            if _usable(candidate):
                return candidate
    _require(name)
    if name == "cuda" and kind == "numpy":
        raise TypeError("backend 'cuda' was asked for with NumPy arrays; pass CuPy arrays "
                        "(synthcore never copies between host and device silently)")
    if name != "cuda" and kind == "cupy":
        raise TypeError(f"backend {name!r} was asked for with CuPy arrays; pass NumPy arrays "
                        "or use backend='cuda'")
    return name


_num_threads: Optional[int] = None
THREADS_ENV_VAR = "SYNTHCORE_NUM_THREADS"


def _default_threads() -> int:
    env = os.environ.get(THREADS_ENV_VAR)
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"{THREADS_ENV_VAR} must be a positive integer, got {env!r}")
        return value
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_num_threads(n: Optional[int]) -> None:
    """Threads the cpu backend uses per call; None restores the default (all cores)."""
    global _num_threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"num_threads must be a positive integer or None, got {n!r}")
    _num_threads = n


def get_num_threads() -> int:
    """Threads the cpu backend uses per call (SYNTHCORE_NUM_THREADS or the cores available)."""
    return _num_threads if _num_threads is not None else _default_threads()
