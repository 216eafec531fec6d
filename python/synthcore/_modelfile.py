"""The model file format shared by every synthcore model: a zip of ``model.json`` (the
header: format, version and plain data) and ``arrays.npz`` (NumPy arrays). Writing is
atomic (temporary file, then rename); reading never unpickles and never runs code."""
from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np


def write_model(path, header: dict, arrays: dict, *, json_default=None) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.json", json.dumps(header, indent=1, default=json_default))
        zf.writestr("arrays.npz", buf.getvalue())
    os.replace(tmp, path)


def read_model(path, fmt: str, version: int, what: str):
    """(header, arrays) of a model file of format ``fmt``; a clear error otherwise."""
    with zipfile.ZipFile(path) as zf:
        header = json.loads(zf.read("model.json"))
        if header.get("format") != fmt:
            raise ValueError(f"{path}: not a synthcore {what} model")
        accepted = version if isinstance(version, tuple) else (version,)
        if header.get("version") not in accepted:
            raise ValueError(f"{path}: {what} model format version {header.get('version')} "
                             f"is not supported (this synthcore reads version "
                             f"{' and '.join(map(str, accepted))})")
        arrays = dict(np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False))
    return header, arrays
