"""The ``synthcore`` command line: ``synthcore info``, ``synthcore demo``."""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from . import _backend, info, random


def _print_info(args) -> int:
    data = info()
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        else:
            print(f"{key}: {value}")
    return 0


def _demo_correlation(d: int) -> np.ndarray:
    """A fixed, valid correlation matrix: AR(1) with rho = 0.8."""
    idx = np.arange(d)
    return 0.8 ** np.abs(idx[:, None] - idx[None, :])


def _demo(args) -> int:
    """Correlated normal columns, X = Z L^T, timed on each usable backend."""
    rows, cols = args.rows, args.columns
    if rows < 1 or cols < 1:
        print("synthcore demo: --rows and --columns must be positive", file=sys.stderr)
        return 2
    corr = _demo_correlation(cols)
    chol = np.linalg.cholesky(corr)
    backends = [args.backend] if args.backend else list(_backend.available_backends())
    print(f"synthcore demo: {rows:,} rows x {cols} correlated normal columns "
          f"(AR(1), rho=0.8), seed {args.seed}, {_backend.get_num_threads()} CPU threads")
    reference = None
    for name in backends:
        if name == "cuda":
            import cupy as xp
            chol_b = xp.asarray(chol)
        else:
            xp, chol_b = np, chol
        best = float("inf")
        for _ in range(args.repeat):
            if name == "cuda":
                xp.cuda.get_current_stream().synchronize()
            t0 = time.perf_counter()
            z = random.normal((rows, cols), seed=args.seed, backend=name)
            x = z @ chol_b.T
            if name == "cuda":
                xp.cuda.get_current_stream().synchronize()
            best = min(best, time.perf_counter() - t0)
        x_host = x.get() if name == "cuda" else x
        sample_corr = np.corrcoef(x_host[: min(rows, 200_000)].T)
        err = float(np.abs(sample_corr - corr).max())
        same = "" if reference is None else \
            f", max |diff| vs {backends[0]}: {float(np.abs(x_host - reference).max()):.1e}"
        reference = x_host if reference is None else reference
        print(f"  {name:6s} {rows / best / 1e6:10.1f} M rows/s "
              f"({rows * cols / best / 1e6:8.1f} M values/s), "
              f"max |corr error| {err:.3f}{same}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="synthcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="version, backends, GPU, threads, build flags")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_info.set_defaults(func=_print_info)
    p_demo = sub.add_parser("demo", help="generate correlated random columns on each backend")
    p_demo.add_argument("--rows", type=int, default=2_000_000)
    p_demo.add_argument("--columns", type=int, default=8)
    p_demo.add_argument("--seed", type=int, default=2026)
    p_demo.add_argument("--repeat", type=int, default=3)
    p_demo.add_argument("--backend", choices=_backend.BACKENDS, default=None)
    p_demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, _backend.BackendUnavailableError) as exc:
        print(f"synthcore {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
