"""Gaussian-copula speed: synthcore against SDV and a plain NumPy/SciPy copula.

    python benchmarks/copula_speed.py [--rows 50000] [--sample 1000000] [--repeat 7]
                                      [--sdv-repeat 2] [--sdv-sample 1000000] [--strict]

Table: ``_baselines.make_mixed_table`` -- 10 columns made here from a fixed seed
(3 float, 3 int of which one has few levels, 2 pandas categoricals, 1 object
string column with 50 levels, 1 bool, 1 datetime; no nulls), --rows rows.

Timed, each the median of --repeat runs after one warm-up (SDV: --sdv-repeat; the
NumPy/SciPy copula and synthcore cpu runs are interleaved round-robin):

- fit: SDV ``GaussianCopulaSynthesizer(metadata)`` with default settings (beta
  marginals; the metadata detected from the table, not timed), synthcore
  ``GaussianCopula()`` with defaults, and the NumPy/SciPy baseline.
- sample --sample rows: SDV ``sample`` (a pandas DataFrame); synthcore
  ``backend="cpu"`` with pandas and with arrow output, on 1 thread and on all
  threads (``synthcore.set_num_threads``); synthcore ``backend="numpy"`` (the pure
  NumPy reference of the same Philox stream, the fallback); and
  ``_baselines.NumpyGaussianCopula`` (standard_normal @ L.T, ndtr, np.interp
  and searchsorted per column, a pandas DataFrame of the same dtypes). With
  --sdv-sample smaller than --sample, SDV's time is scaled linearly (it says so).

Ratios printed against the goals: synthcore cpu (pandas, all threads) sample vs
SDV >= 300x, vs the NumPy/SciPy copula >= 20x, fit vs SDV >= 50x. A missed goal
is reported; --strict makes it exit 1. Every output's quality_score against
the real table (a 50k-row sample) is printed too, so no path is fast by being
wrong. Timings on a shared machine are noisy: the load average is printed.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _baselines import NumpyGaussianCopula, make_mixed_table  # noqa: E402
from _timing import median_time, round_robin  # noqa: E402

GOALS = {"sample_vs_sdv": 300.0, "sample_vs_numpy_copula": 20.0, "fit_vs_sdv": 50.0}


def sdv_synthesizer(df):
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer
    metadata = Metadata.detect_from_dataframes({"table": df})
    return lambda: GaussianCopulaSynthesizer(metadata)


def sdv_frame(out):
    """SDV 2.0 returns {"table": df} for a single table; older versions a DataFrame."""
    return out["table"] if isinstance(out, dict) else out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the real table")
    parser.add_argument("--sample", type=int, default=1_000_000, help="rows sampled")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--fit-repeat", type=int, default=3)
    parser.add_argument("--sdv-repeat", type=int, default=2)
    parser.add_argument("--sdv-sample", type=int, default=None,
                        help="rows SDV samples (default --sample); time is scaled to --sample")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    import pandas as pd
    import sdv
    import synthcore
    from synthcore.evaluate import quality_score

    n = args.sample
    sdv_n = args.sdv_sample or n
    cores = synthcore.get_num_threads()
    info = synthcore.info()
    print(f"synthcore {info['version']} (CPU dispatch: "
          f"{info['cpu_build']['cpu_dispatch'] if info['cpu_build'] else 'none'}), SDV "
          f"{sdv.__version__}, NumPy {np.__version__}, pandas {pd.__version__}; "
          f"{cores} threads, load average {os.getloadavg()[0]:.2f} at start")
    df = make_mixed_table(args.rows)
    print(f"table: {len(df):,} rows x {df.shape[1]} columns "
          f"({', '.join(f'{c}:{t}' for c, t in df.dtypes.astype(str).items())})")
    print(f"medians: {args.repeat} runs (fit {args.fit_repeat}, SDV sample "
          f"{args.sdv_repeat}), after one warm-up\n")

    # ---- fit ------------------------------------------------------------------
    make_sdv = sdv_synthesizer(df)
    synthcore.GaussianCopula().fit(df)          # warm-up (imports, first touch)
    NumpyGaussianCopula().fit(df)
    fits = round_robin({"sdv": lambda: make_sdv().fit({"table": df}),
                        "synthcore": lambda: synthcore.GaussianCopula().fit(df),
                        "numpy": lambda: NumpyGaussianCopula().fit(df)},
                       args.fit_repeat, warmup=False)
    fit_sdv, fit_sc, fit_np = fits["sdv"], fits["synthcore"], fits["numpy"]
    sdv_model = make_sdv()
    sdv_model.fit({"table": df})
    sc_model = synthcore.GaussianCopula().fit(df)
    np_model = NumpyGaussianCopula().fit(df)

    # ---- sample ---------------------------------------------------------------
    rows = []   # (label, seconds for n rows, note)
    t = median_time(lambda: sdv_model.sample(sdv_n), args.sdv_repeat, warmup=False)
    note = "" if sdv_n == n else f"timed {sdv_n:,} rows, x{n / sdv_n:g}"
    rows.append(("SDV GaussianCopulaSynthesizer.sample (pandas)", t * n / sdv_n, note))
    sdv_t = rows[-1][1]
    def sc_sample(threads, output):
        def fn():
            synthcore.set_num_threads(threads)
            return sc_model.sample(n, seed=1, backend="cpu", output=output)
        return fn

    fns = {"numpy-copula": lambda: np_model.sample(n, seed=1)}
    for threads in sorted({1, cores}):
        for output in ("pandas", "arrow"):
            fns[(threads, output)] = sc_sample(threads, output)
    med = round_robin(fns, args.repeat)
    base_t = med.pop("numpy-copula")
    rows.append(("NumPy/SciPy Gaussian copula (pandas, 1 thread)", base_t, ""))
    sc = med
    for (threads, output), t in sc.items():
        rows.append((f"synthcore cpu, {output} output, {threads} thread"
                     f"{'s' if threads > 1 else ''}", t, ""))
    synthcore.set_num_threads(None)
    t = median_time(lambda: sc_model.sample(n, seed=1, backend="numpy"),
                    max(1, args.repeat // 2), warmup=False)
    rows.append(("synthcore numpy backend (reference), pandas", t, ""))

    print(f"fit on {len(df):,} rows                        seconds   vs synthcore")
    for label, t in (("SDV GaussianCopulaSynthesizer (default)", fit_sdv),
                     ("synthcore GaussianCopula (default)", fit_sc),
                     ("NumPy/SciPy Gaussian copula", fit_np)):
        print(f"  {label:<44} {t:8.3f}   {t / fit_sc:8.2f}x")
    print(f"\nsample {n:,} rows                                  seconds   M rows/s   "
          f"SDV time / this")
    for label, t, note in rows:
        print(f"  {label:<50} {t:8.3f}   {n / t / 1e6:8.2f}   {sdv_t / t:9.1f}x  {note}")

    best = sc[(cores, "pandas")]
    ratios = {"sample_vs_sdv": sdv_t / best, "sample_vs_numpy_copula": base_t / best,
              "fit_vs_sdv": fit_sdv / fit_sc}
    labels = {"sample_vs_sdv": "sample: SDV / synthcore cpu (pandas, all threads)",
              "sample_vs_numpy_copula": "sample: NumPy/SciPy copula / synthcore cpu",
              "fit_vs_sdv": "fit: SDV / synthcore"}
    print("\nratios (goal)")
    missed = []
    for key, value in ratios.items():
        ok = value >= GOALS[key]
        missed += [] if ok else [key]
        print(f"  {labels[key]:<52} {value:8.1f}x  (>= {GOALS[key]:g}x: "
              f"{'met' if ok else 'MISSED'})")
    one = sc[(1, "pandas")]
    print(f"  (1 thread: {sdv_t / one:.1f}x SDV, {base_t / one:.1f}x the NumPy/SciPy copula; "
          f"load average now {os.getloadavg()[0]:.2f})")

    # ---- the outputs are right, not just fast -----------------------------------
    m = min(len(df), 50_000)
    scores = {
        "SDV": quality_score(df, sdv_frame(sdv_model.sample(m)))["score"],
        "synthcore cpu": quality_score(df, sc_model.sample(m, seed=1, backend="cpu"))["score"],
        "synthcore numpy": quality_score(df, sc_model.sample(m, seed=1,
                                                             backend="numpy"))["score"],
        "NumPy/SciPy copula": quality_score(df, np_model.sample(m, seed=1))["score"],
    }
    print(f"\nquality_score vs the real table ({m:,} sampled rows): " +
          ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    if missed and args.strict:
        print(f"goals missed: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
