"""The randomness behind every DP release: ChaCha20 as a counter-based generator.

``SecureGenerator()`` keys itself with 256 bits from the operating system
(``secrets``), and a random 64-bit stream; the key cannot be read back. Each
draw reserves the next words of its stream under a lock, so no word is ever
used twice, from any thread. Word w of (key, stream) is word w % 16 of the
ChaCha20 block with counter w // 16 and nonce = stream, the same on the numpy,
cpu and cuda backends.

A generator with a chosen key exists for tests only and says so:
``insecure_generator_for_tests(key)``. Mechanisms record in their receipts
which kind produced their noise.
"""
from __future__ import annotations

import numbers
import secrets
import threading
from typing import Optional

import numpy as np

from .. import _backend
from .._reference import secure_random as _ref

_U64 = 1 << 64


class SecureGenerator:
    """ChaCha20 keystream words for DP noise, keyed from the operating system."""

    insecure = False

    def __init__(self):
        self._key = np.frombuffer(secrets.token_bytes(32), dtype="<u4").astype(np.uint32)
        self._stream = secrets.randbits(64)
        self._next = 0
        self._lock = threading.Lock()
        self._device_keys = {}

    def __repr__(self):
        return f"{type(self).__name__}(words used: {self._next})"

    def __reduce__(self):
        raise TypeError("a SecureGenerator cannot be pickled or copied: its key must not "
                        "leave the process")

    def _reserve(self, n: int) -> int:
        with self._lock:
            first = self._next
            if first + n > _U64:
                raise RuntimeError("this generator's stream is exhausted; create a new one")
            self._next = first + n
            return first

    def random_raw(self, n: int, *, out=None, backend: Optional[str] = None):
        """The next ``n`` uint32 words of this generator's stream (never reused)."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        n = int(n)
        name = _backend.resolve(backend, arrays=(out,))
        if out is not None and (out.dtype != np.uint32 or out.size != n or
                                not out.flags.c_contiguous):
            raise ValueError(f"out must be a C-contiguous uint32 array of {n} elements")
        first = self._reserve(n)
        return _words(self._key, self._stream, first, n, out, name, self._device_keys)


class InsecureTestGenerator(SecureGenerator):
    """A ChaCha20 generator with a caller-chosen key: reproducible, NOT secure.

    Anyone who knows the key can recompute the noise and remove it. Use only in
    tests and for cross-backend checks.
    """

    insecure = True

    def __init__(self, key, stream: int = 0):
        self._key = _key_words(key)
        if isinstance(stream, bool) or not isinstance(stream, numbers.Integral) or \
                not 0 <= stream < _U64:
            raise ValueError("stream must be an integer in [0, 2**64)")
        self._stream = int(stream)
        self._next = 0
        self._lock = threading.Lock()
        self._device_keys = {}

    def __reduce__(self):
        return (InsecureTestGenerator, (self._key.tobytes(), self._stream))

    def words_at(self, offset: int, n: int, *, backend: Optional[str] = None, out=None):
        """Words offset .. offset + n - 1 of the stream, without moving the cursor."""
        if offset < 0 or n < 0 or offset + n > _U64:
            raise ValueError("offset and n must lie in [0, 2**64)")
        name = _backend.resolve(backend, arrays=(out,))
        return _words(self._key, self._stream, int(offset), int(n), out, name, self._device_keys)


def insecure_generator_for_tests(key, stream: int = 0) -> InsecureTestGenerator:
    """A ChaCha20 generator with a fixed key (32 bytes, or an int < 2**256): for tests
    only. Its noise is reproducible by anyone who knows the key."""
    return InsecureTestGenerator(key, stream)


def _key_words(key) -> np.ndarray:
    if isinstance(key, (bytes, bytearray)):
        if len(key) != 32:
            raise ValueError(f"key must be 32 bytes, got {len(key)}")
        return np.frombuffer(bytes(key), dtype="<u4").astype(np.uint32)
    if isinstance(key, numbers.Integral) and not isinstance(key, bool) and 0 <= key < 1 << 256:
        return np.frombuffer(int(key).to_bytes(32, "little"), dtype="<u4").astype(np.uint32)
    raise ValueError("key must be 32 bytes or an integer in [0, 2**256)")


def _words(key, stream, first, n, out, backend, device_keys):
    if backend == "numpy":
        words = _ref.stream_words(key, stream, first, n)
        if out is None:
            return words
        out.reshape(-1)[...] = words
        return out
    if backend == "cpu":
        result = np.empty(n, dtype=np.uint32) if out is None else out
        if n:
            _backend.core_module().secure_random_raw(key, stream, first, result.reshape(-1),
                                                     _backend.get_num_threads())
        return result
    import cupy
    dev = cupy.cuda.Device().id
    if dev not in device_keys:
        device_keys[dev] = cupy.asarray(key)
    result = cupy.empty(n, dtype=cupy.uint32) if out is None else out
    if n:
        _backend.cuda_module().secure_random_raw(device_keys[dev].data.ptr, stream, first,
                                                 result.data.ptr, n,
                                                 cupy.cuda.get_current_stream().ptr)
    return result
