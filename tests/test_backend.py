"""Backend selection, array-type rules, info() and the command line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import synthcore
from synthcore import _backend
from synthcore import random as sr


class FakeCupyArray:
    """Stands in for a CuPy array in type checks (only its module name is read)."""
    __module__ = "cupy._core.core"


def test_per_call_setting_and_context_precedence(monkeypatch):
    monkeypatch.setenv("SYNTHCORE_BACKEND", "numpy")
    assert _backend.resolve() == "numpy"
    synthcore.set_backend("cpu")
    try:
        assert synthcore.get_backend() == "cpu"
        assert _backend.resolve() == "cpu"
        with synthcore.use_backend("numpy"):
            assert _backend.resolve() == "numpy"
            assert _backend.resolve("cpu") == "cpu"
        assert _backend.resolve() == "cpu"
    finally:
        synthcore.set_backend(None)


def test_environment_variable(monkeypatch):
    monkeypatch.setenv("SYNTHCORE_BACKEND", "numpy")
    assert synthcore.get_backend() == "numpy"
    monkeypatch.setenv("SYNTHCORE_BACKEND", "gpu")
    with pytest.raises(ValueError, match="SYNTHCORE_BACKEND"):
        sr.normal(3, seed=1)


def test_auto_prefers_cpu_for_numpy_arrays_and_without_gpu():
    out = np.empty(3)
    assert _backend.resolve("auto", arrays=(out,)) == "cpu"
    if not _backend.cuda_usable():
        assert _backend.resolve("auto") == "cpu"
        assert "cuda" not in synthcore.available_backends()


def test_unavailable_backend_is_a_clear_error():
    if _backend.cuda_usable():
        pytest.skip("a GPU is usable here")
    with pytest.raises(synthcore.BackendUnavailableError, match="backend 'cuda' is not available"):
        sr.normal(3, seed=1, backend="cuda")
    with pytest.raises(synthcore.BackendUnavailableError):
        synthcore.set_backend("cuda")
    with pytest.raises(synthcore.BackendUnavailableError):
        with synthcore.use_backend("cuda"):
            pass


def test_mixed_or_misplaced_arrays_raise():
    with pytest.raises(TypeError, match="mixed"):
        _backend.resolve(None, arrays=(np.empty(2), FakeCupyArray()))
    with pytest.raises(TypeError, match="CuPy arrays"):
        _backend.resolve("cpu", arrays=(FakeCupyArray(),))
    if _backend.cuda_usable():
        with pytest.raises(TypeError, match="NumPy arrays"):
            sr.normal(out=np.empty(3), seed=1, backend="cuda")


def test_numpy_in_numpy_out(backend):
    if backend == "cuda":
        pytest.skip("covered by the cupy case")
    out = sr.normal(out=np.empty(5), seed=1, backend=backend)
    assert type(out) is np.ndarray


def test_num_threads_setting(monkeypatch):
    synthcore.set_num_threads(3)
    assert synthcore.get_num_threads() == 3
    synthcore.set_num_threads(None)
    monkeypatch.setenv("SYNTHCORE_NUM_THREADS", "5")
    assert synthcore.get_num_threads() == 5
    monkeypatch.setenv("SYNTHCORE_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="SYNTHCORE_NUM_THREADS"):
        synthcore.get_num_threads()
    with pytest.raises(ValueError, match="num_threads"):
        synthcore.set_num_threads(0)


def _run_python(code, env=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=True).stdout


def test_import_does_not_import_cupy():
    out = _run_python("import sys, synthcore; synthcore.random.normal(4, seed=1, backend='cpu'); "
                      "print('cupy' in sys.modules)")
    assert out.strip() == "False"


def test_info_reports_build_and_usable_backends():
    data = synthcore.info()
    assert data["version"] == synthcore.__version__
    assert "cpu" in data["backends_built"] and "numpy" in data["backends_built"]
    assert data["backends_usable"][-1] == "numpy"
    assert data["num_threads"] >= 1
    assert data["cpu_build"]["build_type"] == "Release"
    assert data["cpu_build"]["cpu_dispatch"]
    if data["cuda_build"] is not None:
        assert "90" in data["cuda_build"]["architectures"]
        if not _backend.cuda_usable():
            assert data["gpu"] is None and data["cuda_unusable_because"]


def test_cli_info_json():
    out = subprocess.run([sys.executable, "-m", "synthcore.cli", "info", "--json"],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    assert data["version"] == synthcore.__version__


def test_cli_demo_runs_each_backend_and_agrees():
    out = subprocess.run([sys.executable, "-m", "synthcore.cli", "random-demo", "--rows", "20000",
                          "--columns", "4", "--repeat", "1"],
                         capture_output=True, text=True, check=True).stdout
    assert "M rows/s" in out
    for name in synthcore.available_backends():
        assert f"  {name} " in out
    diffs = [float(line.rsplit(":", 1)[1]) for line in out.splitlines() if "max |diff| vs" in line]
    assert len(diffs) == len(synthcore.available_backends()) - 1
    assert max(diffs) <= 1e-12


def test_cli_bad_argument_exits_nonzero():
    proc = subprocess.run([sys.executable, "-m", "synthcore.cli", "random-demo", "--rows", "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--rows" in proc.stderr


def test_cli_copula_demo_writes_parquet(tmp_path):
    import pyarrow.parquet as pq
    out_file = tmp_path / "demo.parquet"
    out = subprocess.run([sys.executable, "-m", "synthcore.cli", "demo", "--rows", "30000",
                          "--out", str(out_file)], capture_output=True, text=True,
                         check=True).stdout
    table = pq.read_table(out_file)
    assert table.num_rows == 30000 and "income" in table.column_names
    assert not (tmp_path / "demo.parquet.tmp").exists()
    score = float(out.split("quality score ")[1].split()[0])
    assert 0.85 < score <= 1.0
    assert "M rows/s" in out
