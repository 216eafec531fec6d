"""The ``synthcore`` command line: ``synthcore info``, ``synthcore demo``,
``synthcore generate``."""
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


def _copula_demo(args) -> int:
    """Fit a Gaussian copula on the shipped customers table and write rows to Parquet."""
    import importlib.resources
    import os

    import pandas as pd
    import pyarrow.parquet as pq

    from .copula import GaussianCopula
    from .evaluate import quality_score

    if args.rows < 1:
        print("synthcore demo: --rows must be positive", file=sys.stderr)
        return 2
    source = importlib.resources.files("synthcore") / "data" / "customers.parquet"
    real = pd.read_parquet(source)
    print(f"synthcore demo: fitting a Gaussian copula on the shipped customers table "
          f"({len(real):,} rows x {real.shape[1]} columns)")
    t0 = time.perf_counter()
    model = GaussianCopula().fit(real)
    fit_s = time.perf_counter() - t0
    backend = args.backend or _backend.resolve(None)
    if backend == "cuda":
        backend = "cpu"  # the CUDA copula kernel has not been validated on a GPU yet
    t0 = time.perf_counter()
    table = model.sample(args.rows, seed=args.seed, backend=backend, output="arrow")
    sample_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tmp = f"{args.out}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, args.out)  # atomic: an interrupted run leaves no half-written file
    write_s = time.perf_counter() - t0
    check = table.slice(0, min(args.rows, 100_000)).to_pandas()
    quality = quality_score(real, check)
    print(f"  fit:    {fit_s * 1e3:8.1f} ms")
    print(f"  sample: {args.rows:,} rows in {sample_s * 1e3:.1f} ms on {backend} "
          f"({args.rows / sample_s / 1e6:.1f} M rows/s, {_backend.get_num_threads()} threads)")
    print(f"  write:  {args.out} in {write_s * 1e3:.1f} ms "
          f"({args.rows / write_s / 1e6:.1f} M rows/s, {os.path.getsize(args.out) / 1e6:.1f} MB)")
    print(f"  quality score {quality['score']:.3f} (column shapes "
          f"{quality['column_shapes']:.3f}, column pair trends "
          f"{quality['column_pair_trends']:.3f}; SDMetrics' QualityReport definitions)")
    return 0


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


def _parse_rows(values):
    """--rows N (every table) or --rows TABLE=N (repeatable)."""
    every, per = None, {}
    for v in values or ():
        name, sep, count = v.rpartition("=")
        try:
            n = int(count)
        except ValueError:
            raise ValueError(f"--rows takes N or TABLE=N, got {v!r}") from None
        if n < 0:
            raise ValueError(f"--rows must be >= 0, got {v!r}")
        if sep:
            per[name] = n
        else:
            every = n
    return every, per


def _write_parquet(spec, table, n, rows, path, seed, backend, chunk_rows):
    """Rows of one table in windows of chunk_rows, to a temporary file renamed at the end."""
    import os

    import pyarrow.parquet as pq

    from .generation import generate
    tmp = f"{path}.tmp-{os.getpid()}"
    writer = schema = None
    try:
        for start in range(0, max(n, 1), chunk_rows):
            part = generate(spec, min(chunk_rows, n - start), table=table, seed=seed,
                            row_offset=start, rows=rows, backend=backend, output="arrow")
            if writer is None:
                schema = part.schema
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(part.cast(schema))
        writer.close()
        writer = None
        os.replace(tmp, path)  # an interrupted run leaves no half-written file
    finally:
        if writer is not None:
            writer.close()
        if os.path.exists(tmp):
            os.remove(tmp)


def _generate(args) -> int:
    """Tables from a spec (no real data) to Parquet."""
    import os

    from .generation import _grouping_key, load_spec
    if args.chunk_rows < 1:
        raise ValueError("--chunk-rows must be positive")
    spec = load_spec(args.spec)
    every, per = _parse_rows(args.rows)
    for name in per:
        if name not in spec.tables:
            raise ValueError(f"--rows names table {name!r}, which is not in the spec")
    seed = args.seed if args.seed is not None else spec.seed
    if seed is None:
        seed = 0
    backend = args.backend or _backend.resolve(None)
    given = dict(per)
    for name, t in spec.tables.items():   # a table with rows per parent has its own count
        if name not in per and every is not None and _grouping_key(t) is None:
            given[name] = every
    missing = [name for name, t in spec.tables.items() if name not in given
               and t.rows is None and _grouping_key(t) is None]
    if missing:
        raise ValueError(f"give the number of rows of table {missing[0]!r} with --rows")
    rows = spec.row_counts(given, seed=seed, backend=backend)
    names = [args.table] if args.table else list(spec.order)
    if args.table and args.table not in spec.tables:
        raise ValueError(f"table {args.table!r} is not in the spec")
    single = len(spec.tables) == 1 or args.table
    if not single:
        os.makedirs(args.out, exist_ok=True)
    for name in names:
        path = args.out if single else os.path.join(args.out, f"{name}.parquet")
        t0 = time.perf_counter()
        _write_parquet(spec, name, rows[name], rows, path, seed, backend, args.chunk_rows)
        dt = time.perf_counter() - t0
        print(f"synthcore generate: {name}: {rows[name]:,} rows -> {path} in {dt:.2f} s "
              f"({backend}, seed {seed})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="synthcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="version, backends, GPU, threads, build flags")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_info.set_defaults(func=_print_info)
    p_copula = sub.add_parser("demo", help="fit a copula on the shipped table, write rows to "
                                           "Parquet, print rows/s and the quality score")
    p_copula.add_argument("--rows", type=int, default=1_000_000)
    p_copula.add_argument("--out", default="synthcore_demo.parquet")
    p_copula.add_argument("--seed", type=int, default=2026)
    p_copula.add_argument("--backend", choices=("cpu", "numpy"), default=None)
    p_copula.set_defaults(func=_copula_demo)
    p_demo = sub.add_parser("random-demo",
                            help="generate correlated random columns on each backend")
    p_demo.add_argument("--rows", type=int, default=2_000_000)
    p_demo.add_argument("--columns", type=int, default=8)
    p_demo.add_argument("--seed", type=int, default=2026)
    p_demo.add_argument("--repeat", type=int, default=3)
    p_demo.add_argument("--backend", choices=_backend.BACKENDS, default=None)
    p_demo.set_defaults(func=_demo)
    p_gen = sub.add_parser("generate", help="generate tables from a spec (YAML/JSON) with no "
                                             "real data, to Parquet")
    p_gen.add_argument("spec", help="a .yaml, .yml or .json table spec")
    p_gen.add_argument("--rows", action="append",
                       help="N for every table, or TABLE=N (repeatable); default: the spec's")
    p_gen.add_argument("--out", required=True,
                       help="a .parquet file (one table) or a directory (several tables)")
    p_gen.add_argument("--table", default=None, help="only this table of the spec")
    p_gen.add_argument("--seed", type=int, default=None, help="default: the spec's, else 0")
    p_gen.add_argument("--chunk-rows", type=int, default=1_000_000,
                       help="rows per window (the output does not depend on it)")
    p_gen.add_argument("--backend", choices=_backend.BACKENDS, default=None)
    p_gen.set_defaults(func=_generate)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, _backend.BackendUnavailableError) as exc:
        print(f"synthcore {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
