"""Load + generate the last table of 400 chained tables (tests/test_generate_depth.py's
spec), with no constrained level and with two: prints min-max seconds of two runs.
    PYTHONPATH=python python benchmarks/generate_depth.py"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from test_generate_depth import _table_chain  # noqa: E402

from synthcore import generate, load_spec  # noqa: E402

for at in [(), (200, 399)]:
    ts = []
    for _ in range(2):
        t0 = time.perf_counter()
        spec = load_spec(_table_chain(400, constraint_at=at))
        generate(spec, table="t399", backend="numpy")
        ts.append(time.perf_counter() - t0)
    print(f"400 chained tables, {len(at)} constrained levels: {min(ts):.2f}-{max(ts):.2f} s")
