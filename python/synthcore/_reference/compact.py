"""Row compaction in NumPy: the fallback and the oracle for cpp/src/compact.cpp."""
from __future__ import annotations

import numpy as np


def compact_rows(mask, columns, limit=None, base=0):
    """(the kept rows of each column, their row numbers + base): the rows where
    ``mask`` is non-zero, in row order, the first ``limit`` of them when given."""
    index = np.flatnonzero(mask)
    if limit is not None:
        index = index[:limit]
    return [np.asarray(c)[index] for c in columns], index.astype(np.int64) + np.int64(base)
