"""CTGAN / TVAE sampling speed: synthcore.gan against ctgan's own sample.

    python benchmarks/gan_vs_ctgan.py [--rows 200000] [--repeat 5] [--epochs 1] [--strict]

Model: a default-size ``ctgan.CTGAN`` (embedding 128, generator (256, 256), batch
500) trained for --epochs epochs on the table that ships with synthcore
(``customers.parquet``: age, income, orders continuous; plan, churned, region
discrete; 5,000 rows), imported with ``synthcore.gan.from_ctgan``. Training is
not timed, and speed does not depend on how well the model is trained.

Timed, each the median of --repeat runs after one warm-up, round-robin (each
round runs every candidate once, so load from other processes hits them alike):

- ``ctgan.CTGAN.sample(rows)`` (on a copy: it mutates BatchNorm statistics),
  torch using every core;
- synthcore ``backend="cpu"`` in ``mode="eval"`` (folded BatchNorm) and
  ``mode="compat"`` (batch statistics, ctgan's distribution), all threads,
  pandas output with ctgan's dtypes; and ``backend="numpy"`` (the reference).
- the same three (without the NumPy reference) with one thread each
  (``torch.set_num_threads(1)``, ``synthcore.set_num_threads(1)``): the
  comparison least disturbed by other processes on a shared machine;
- TVAE likewise, for information.

Also the GEMM choice on CPU: synthcore's kernel (``_core.gan_gemm``, one
thread, 96-row blocks as the sampler runs it) against NumPy's BLAS sgemm
(``np.matmul`` with ``out=``) on the generator's three layer shapes, in GFLOP/s.

Goal: cpu >= 5x ``ctgan.CTGAN.sample`` (eval and compat reported separately).
A missed goal is printed; --strict makes it exit 1. The VM is shared and noisy:
the load average is printed.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import round_robin_stats  # noqa: E402

GOAL = 5.0


def gemm_table(model, repeat):
    from threadpoolctl import threadpool_limits

    from synthcore import _backend, _gan_native
    core = _backend.core_module()
    p = _gan_native.native_plan(model, "eval")
    rng = np.random.default_rng(0)
    print("\nGEMM per layer, 96-row block, one thread (GFLOP/s, median):")
    print(f"  {'shape (m x k x n)':<22} {'synthcore kernel':>17} {'numpy sgemm':>12}")
    for layer in p["layers"] + [p["final"]]:
        k, wt = layer[1], layer[4]  # (k, ld), packed panels (cpu layout)
        n = wt.shape[1]
        x = rng.standard_normal((96, k)).astype(np.float32)
        y = np.empty((96, n), np.float32)
        b = layer[5]
        reps = max(1, int(5e7 / (96 * k * n)))
        plain = np.ascontiguousarray(np.random.default_rng(1).standard_normal(wt.shape),
                                     dtype=np.float32)
        with threadpool_limits(1):  # one BLAS thread, as ours
            r = round_robin_stats({"ours": lambda: [core.gan_gemm(x, wt, b, y) for _ in range(reps)],
                             "numpy": lambda: [np.matmul(x, plain, out=y)
                                               for _ in range(reps)]}, repeat)
        flops = 2 * 96 * k * n * reps
        print(f"  {f'96 x {k} x {n}':<22} {flops / r['ours'][0] / 1e9:>17.1f} "
              f"{flops / r['numpy'][0] / 1e9:>12.1f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()

    import torch
    from ctgan import CTGAN, TVAE
    from importlib.resources import files

    import synthcore
    from synthcore import gan

    data = pd.read_parquet(files("synthcore") / "data" / "customers.parquet")
    table = data[["age", "income", "plan", "churned", "orders", "region"]].copy()
    table["plan"] = table["plan"].astype(str)
    discrete = ["plan", "churned", "region"]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CTGAN(epochs=args.epochs, verbose=False)
        model.fit(table, discrete_columns=discrete)
        tvae = TVAE(epochs=args.epochs)
        tvae.fit(table, discrete_columns=discrete)
    ours = gan.from_ctgan(model)
    ours_tvae = gan.from_tvae(tvae)
    n = args.rows
    print(f"synthcore {synthcore.__version__}, ctgan CTGAN {ours}; torch {torch.__version__} "
          f"threads {torch.get_num_threads()}; synthcore threads {synthcore.get_num_threads()}; "
          f"cpu dispatch {synthcore._backend.core_module().build_info()['cpu_dispatch']}")
    print(f"load average before: {os.getloadavg()}")

    def ctgan_sample(m):
        c = copy.deepcopy(m)

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c.sample(n)
        return run

    fns = {
        "ctgan.CTGAN.sample": ctgan_sample(model),
        "synthcore cpu eval": lambda: ours.sample(n, seed=1, backend="cpu"),
        "synthcore cpu compat": lambda: ours.sample(n, seed=1, backend="cpu", mode="compat"),
        "synthcore numpy eval": lambda: ours.sample(n, seed=1, backend="numpy"),
    }
    res = round_robin_stats(fns, args.repeat)
    # One thread each: much less sensitive to other processes on a shared machine
    # (torch's and OpenBLAS's spinning worker threads degrade badly when oversubscribed).
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    synthcore.set_num_threads(1)
    try:
        one = round_robin_stats({"ctgan.CTGAN.sample": fns["ctgan.CTGAN.sample"],
                           "synthcore cpu eval": fns["synthcore cpu eval"],
                           "synthcore cpu compat": fns["synthcore cpu compat"]}, args.repeat)
    finally:
        torch.set_num_threads(torch_threads)
        synthcore.set_num_threads(None)
    base = res["ctgan.CTGAN.sample"][0]
    print(f"\nCTGAN, {n} rows, median (min-max) of {args.repeat}:")
    missed = []
    for k, (med, lo, hi) in res.items():
        ratio = base / med
        print(f"  {k:<24} {med:8.3f} s ({lo:.3f}-{hi:.3f})  {n / med / 1e3:9.0f}k rows/s  "
              f"{ratio:6.2f}x ctgan")
        if k.startswith("synthcore cpu") and ratio < GOAL:
            missed.append(f"{k}: {ratio:.2f}x < {GOAL}x")
    print(f"\nCTGAN, {n} rows, ONE thread each (torch and synthcore), median (min-max):")
    for k, (med, lo, hi) in one.items():
        print(f"  {k:<24} {med:8.3f} s ({lo:.3f}-{hi:.3f})  {n / med / 1e3:9.0f}k rows/s  "
              f"{one['ctgan.CTGAN.sample'][0] / med:6.2f}x ctgan")
    tv = round_robin_stats({"ctgan.TVAE.sample": ctgan_sample(tvae),
                      "synthcore cpu (TVAE)": lambda: ours_tvae.sample(n, seed=1,
                                                                        backend="cpu")},
                     max(1, args.repeat // 2))
    print(f"\nTVAE, {n} rows:")
    for k, (med, lo, hi) in tv.items():
        print(f"  {k:<24} {med:8.3f} s ({lo:.3f}-{hi:.3f})  {n / med / 1e3:9.0f}k rows/s  "
              f"{tv['ctgan.TVAE.sample'][0] / med:6.2f}x ctgan")
    gemm_table(ours, args.repeat)
    print(f"\nload average after: {os.getloadavg()}")
    for m in missed:
        print("GOAL MISSED:", m)
    if not missed:
        print(f"goal met: cpu eval and compat >= {GOAL}x ctgan.CTGAN.sample")
    if missed and args.strict:
        sys.exit(1)


if __name__ == "__main__":
    main()
