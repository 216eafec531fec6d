"""Seeds to Philox keys.

A seed is an int >= 0, a ``numpy.random.SeedSequence`` or None (fresh OS
entropy). Keys come from ``SeedSequence(seed).generate_state(2, uint32)``,
whose hashing makes nearby seeds give unrelated keys. A ``PhiloxKey`` passes
a key through unchanged, for embedders who must match the C++/CUDA API.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple, Union

import numpy as np


class PhiloxKey(NamedTuple):
    """A raw Philox4x32 key (two uint32 words), used as given."""
    k0: int
    k1: int


Seed = Union[None, int, np.random.SeedSequence, PhiloxKey]


def philox_key(seed: Seed, argument: str = "seed") -> PhiloxKey:
    """The Philox key that ``seed`` stands for."""
    if isinstance(seed, PhiloxKey):
        for part in seed:
            if isinstance(part, bool) or not isinstance(part, numbers.Integral) or \
                    not 0 <= int(part) <= 0xFFFFFFFF:
                raise ValueError(f"{argument}: PhiloxKey words must be integers in [0, 2**32), "
                                 f"got {tuple(seed)!r}")
        return PhiloxKey(int(seed.k0), int(seed.k1))
    if isinstance(seed, np.random.SeedSequence):
        sequence = seed
    elif seed is None:
        sequence = np.random.SeedSequence()
    elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if int(seed) < 0:
            raise ValueError(f"{argument} must be a non-negative integer, got {seed!r}")
        sequence = np.random.SeedSequence(int(seed))
    else:
        raise TypeError(f"{argument} must be an int >= 0, a numpy.random.SeedSequence, "
                        f"a synthcore.random.PhiloxKey or None, got {type(seed).__name__}")
    k0, k1 = sequence.generate_state(2, dtype=np.uint32)
    return PhiloxKey(int(k0), int(k1))
