"""Gaussian-copula quality on real public tables: synthcore against SDV, scored by SDMetrics.

    python benchmarks/copula_quality.py [--seeds 3] [--datasets iris,wine,...]

For each table: fit SDV's ``GaussianCopulaSynthesizer`` with its DEFAULT
settings (metadata detected by ``Metadata.detect_from_dataframes``) and
synthcore's ``GaussianCopula()`` with its defaults, sample as many rows as the
real table from each with seeds 1..--seeds (SDV: ``_set_random_state(seed)``
before ``sample``; synthcore: ``sample(n, seed=seed)``), and score every sample
with SDMetrics' ``QualityReport`` (``sdmetrics.reports.QualityReport``, given
the same detected metadata for both) and with ``synthcore.evaluate.quality_score``.
Scores are means over the seeds; fit times are medians of --fit-repeat fits
(default 5, SDV's and synthcore's interleaved).

Noise: for each table, the seed-to-seed standard deviation of the SDMetrics
score, pooled over the two synthesizers (sqrt of the mean of their variances).
The script exits 1 when synthcore's mean SDMetrics score is below SDV's by more
than that noise on any table.

Data: real public tables shipped inside PyPI packages (no network at run time).

- scikit-learn (BSD-3-Clause) ships, in ``sklearn/datasets/data``:
  - ``iris`` (150 x 5): Fisher (1936), UCI Machine Learning Repository, CC BY 4.0.
    4 floats + ``species`` categorical.
  - ``wine`` (178 x 14): Forina et al., UCI, CC BY 4.0. 13 floats + ``cultivar``
    categorical.
  - ``breast_cancer`` (569 x 31): Wisconsin Diagnostic Breast Cancer (Wolberg,
    Street, Mangasarian), UCI, CC BY 4.0. 30 floats + ``diagnosis`` categorical.
  - ``diabetes`` (442 x 11, ``scaled=False``): Efron, Hastie, Johnstone and
    Tibshirani (2004), "Least Angle Regression", Annals of Statistics 32(2);
    data published with the paper and redistributed in scikit-learn. ``age`` and
    ``target`` as int64, ``sex`` as a categorical ("sex1"/"sex2"; the coding is
    not documented), 8 floats.
- statsmodels (BSD-3-Clause), used when it is installed (``pip install
  statsmodels``; otherwise these tables are skipped with a note):
  - ``anes96`` (944 x 11): 1996 American National Election Study, "This is
    public domain" (statsmodels' COPYRIGHT). Mixed types: ``PID`` categorical
    (7 party-identification labels), ``vote_dole`` bool, ``TVnews``, ``selfLR``,
    ``ClinLR``, ``DoleLR``, ``age``, ``educ``, ``income`` int64 (ordinal codes),
    ``popul`` and ``logpopul`` float.
  - ``grunfeld`` (220 x 5): Grunfeld (1950) investment data as recreated by
    Kleiber and Zeileis (2008), "This is public domain". ``firm`` as a string
    (object) column, ``year`` int64, 3 floats.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np


# ---- datasets -------------------------------------------------------------------

def _sklearn_frame(loader, target_name, **kw):
    import pandas as pd
    d = loader(as_frame=True, **kw)
    df = d.data.copy()
    df[target_name] = pd.Categorical.from_codes(d.target.to_numpy(), list(d.target_names))
    return df


def load_iris():
    from sklearn.datasets import load_iris
    return _sklearn_frame(load_iris, "species")


def load_wine():
    from sklearn.datasets import load_wine
    return _sklearn_frame(load_wine, "cultivar")


def load_breast_cancer():
    from sklearn.datasets import load_breast_cancer
    return _sklearn_frame(load_breast_cancer, "diagnosis")


def load_diabetes():
    import pandas as pd
    from sklearn.datasets import load_diabetes
    df = load_diabetes(as_frame=True, scaled=False).frame.copy()
    df["age"] = df["age"].astype(np.int64)
    df["sex"] = pd.Categorical(df["sex"].map({1.0: "sex1", 2.0: "sex2"}))
    df["target"] = df["target"].astype(np.int64)
    return df


def load_anes96():
    import pandas as pd
    from statsmodels.datasets import anes96
    df = anes96.load_pandas().data.copy()
    pid = ["Strong Democrat", "Weak Democrat", "Independent-Democrat",
           "Independent-Independent", "Independent-Republican", "Weak Republican",
           "Strong Republican"]
    df["PID"] = pd.Categorical.from_codes(df["PID"].astype(int).to_numpy(), pid)
    df["vote_dole"] = df.pop("vote").astype(bool)
    for c in ("TVnews", "selfLR", "ClinLR", "DoleLR", "age", "educ", "income"):
        df[c] = df[c].astype(np.int64)
    return df


def load_grunfeld():
    from statsmodels.datasets import grunfeld
    df = grunfeld.load_pandas().data.copy()
    df["firm"] = df["firm"].astype(str).astype(object)
    df["year"] = df["year"].astype(np.int64)
    return df


DATASETS = {
    "iris": (load_iris, "sklearn"),
    "wine": (load_wine, "sklearn"),
    "breast_cancer": (load_breast_cancer, "sklearn"),
    "diabetes": (load_diabetes, "sklearn"),
    "anes96": (load_anes96, "statsmodels"),
    "grunfeld": (load_grunfeld, "statsmodels"),
}


def load_datasets(names, datasets, skipped):
    """(name, table) for each name whose package is installed; the others are noted in
    ``skipped``."""
    for name in names:
        loader, package = datasets[name]
        try:
            df = loader()
        except ImportError as exc:
            skipped.append(f"{name} ({package} not installed: {exc.name})")
            continue
        yield name, df


# ---- SDV / SDMetrics glue ----------------------------------------------------------

def sdv_frame(out):
    """SDV 2.0 returns {"table": df} for a single table; older versions a DataFrame."""
    return out["table"] if isinstance(out, dict) else out


def sdmetrics_score(real, synth, metadata_dict, thresholds=True):
    """QualityReport score; ``thresholds=False`` zeroes the real-association thresholds.

    SDMetrics 0.32 averages Column Pair Trends only over pairs whose real |Pearson r|
    exceeds 0.5 (numeric pairs) or whose real Cramer's V exceeds 0.3 (other pairs);
    with both at 0 every pair counts, as in ``synthcore.evaluate.quality_score``.
    """
    from sdmetrics.reports import QualityReport
    report = QualityReport()
    if not thresholds:
        report.real_correlation_threshold = 0
        report.real_association_threshold = 0
    report.generate({"table": real}, {"table": synth}, metadata_dict, verbose=False)
    return float(report.get_score())


def median_fits(makers, df, repeat):
    """Fit each maker ``repeat`` times, interleaved (a burst of load from other processes
    then hits both alike); the last models and the median seconds of each."""
    models, times = {}, {name: [] for name in makers}
    for _ in range(repeat):
        for name, make in makers.items():
            t0 = time.perf_counter()
            models[name] = make(df)
            times[name].append(time.perf_counter() - t0)
    return models, {name: statistics.median(ts) for name, ts in times.items()}


def evaluate(name, df, seeds, fit_repeat):
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    import synthcore
    from synthcore.evaluate import quality_score

    metadata = Metadata.detect_from_dataframes({"table": df})
    md = metadata.to_dict()

    def fit_sdv(data):
        s = GaussianCopulaSynthesizer(metadata)
        s.fit({"table": data})
        return s

    models, fit_s = median_fits({"sdv": fit_sdv,
                                 "synthcore": lambda d: synthcore.GaussianCopula().fit(d)},
                                df, fit_repeat)
    sdv_model, sc_model = models["sdv"], models["synthcore"]
    sdv_fit, sc_fit = fit_s["sdv"], fit_s["synthcore"]
    n = len(df)
    res = {"sdm_sdv": [], "sdm_sc": [], "qs_sdv": [], "qs_sc": [], "sdm0_sdv": [], "sdm0_sc": [],
           "qs0_sdv": [], "qs0_sc": []}
    for seed in seeds:
        sdv_model._set_random_state(seed)
        s_sdv = sdv_frame(sdv_model.sample(n))
        s_sc = sc_model.sample(n, seed=seed, backend="cpu")
        res["sdm_sdv"].append(sdmetrics_score(df, s_sdv, md))
        res["sdm_sc"].append(sdmetrics_score(df, s_sc, md))
        res["qs_sdv"].append(quality_score(df, s_sdv)["score"])
        res["qs_sc"].append(quality_score(df, s_sc)["score"])
        res["sdm0_sdv"].append(sdmetrics_score(df, s_sdv, md, thresholds=False))
        res["sdm0_sc"].append(sdmetrics_score(df, s_sc, md, thresholds=False))
        for who, frame in (("sdv", s_sdv), ("sc", s_sc)):
            res[f"qs0_{who}"].append(quality_score(df, frame, correlation_threshold=0,
                                                   association_threshold=0)["score"])
    out = {k: float(np.mean(v)) for k, v in res.items()}
    var = [np.var(res[k], ddof=1) if len(seeds) > 1 else 0.0 for k in ("sdm_sdv", "sdm_sc")]
    out["noise"] = float(np.sqrt(np.mean(var)))
    out["diff"] = out["sdm_sc"] - out["sdm_sdv"]
    out["fit_sdv"], out["fit_sc"] = sdv_fit, sc_fit
    qs = res["qs_sdv"] + res["qs_sc"]
    out["track"] = max(abs(a - b) for a, b in zip(res["sdm_sdv"] + res["sdm_sc"], qs))
    qs0 = res["qs0_sdv"] + res["qs0_sc"]
    out["track0"] = max(abs(a - b) for a, b in zip(res["sdm0_sdv"] + res["sdm0_sc"], qs0))
    out["ordinal"] = sorted(c for c, v in md["tables"]["table"]["columns"].items()
                            if v["sdtype"] == "ordinal")
    out["shape"] = f"{df.shape[0]} x {df.shape[1]}"
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="sampling seeds 1..N")
    parser.add_argument("--fit-repeat", type=int, default=5)
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"comma-separated, from {', '.join(DATASETS)}")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import logging
    logging.disable(logging.WARNING)   # SDV logs every detection and fit

    import sdmetrics
    import sdv

    import synthcore

    seeds = list(range(1, args.seeds + 1))
    print(f"SDV {sdv.__version__} GaussianCopulaSynthesizer (defaults) vs synthcore "
          f"{synthcore.__version__} GaussianCopula (defaults); SDMetrics "
          f"{sdmetrics.__version__} QualityReport; scores are means over seeds {seeds}, "
          f"fit times medians of {args.fit_repeat}\n")
    header = (f"{'dataset':<14}{'rows x cols':>12} | {'SDMetrics: SDV':>14}{'synthcore':>10}"
              f"{'diff':>9}{'noise':>8} | {'quality_score: SDV':>18}{'synthcore':>10} | "
              f"{'|qs-SDM|':>8}{'thr=0':>7} | {'fit s: SDV':>10}{'synthcore':>10}{'ratio':>7} | "
              "verdict")
    print(header)
    print("-" * len(header))
    failed, rows, skipped, names = [], [], [], []
    for name, df in load_datasets(args.datasets.split(","), DATASETS, skipped):
        r = evaluate(name, df, seeds, args.fit_repeat)
        rows.append(r)
        names.append(name)
        bad = r["diff"] < -r["noise"]
        if bad:
            failed.append(name)
        verdict = "WORSE" if bad else ("better" if r["diff"] > r["noise"] else "within noise")
        print(f"{name:<14}{r['shape']:>12} | {r['sdm_sdv']:>14.4f}{r['sdm_sc']:>10.4f}"
              f"{r['diff']:>+9.4f}{r['noise']:>8.4f} | {r['qs_sdv']:>18.4f}{r['qs_sc']:>10.4f}"
              f"{r['track']:>8.4f}{r['track0']:>7.4f} | "
              f"{r['fit_sdv']:>10.3f}{r['fit_sc']:>10.4f}{r['fit_sdv'] / r['fit_sc']:>6.0f}x "
              f"| {verdict}", flush=True)
    if skipped:
        print(f"\nskipped: {'; '.join(skipped)}")
    if rows:
        print(f"\nmean SDMetrics score: SDV {np.mean([r['sdm_sdv'] for r in rows]):.4f}, "
              f"synthcore {np.mean([r['sdm_sc'] for r in rows]):.4f}; "
              f"quality_score vs SDMetrics on the same sample: largest gap "
              f"{max(r['track'] for r in rows):.4f} (default report), "
              f"{max(r['track0'] for r in rows):.4f} (pair thresholds 0)")
        ordinal = {n: r["ordinal"] for n, r in zip(names, rows) if r["ordinal"]}
        if ordinal:
            print("SDV's metadata calls these int columns 'ordinal' (SDMetrics scores them as "
                  f"categories, quality_score as numbers): {ordinal}")
    print("noise = seed-to-seed std of the SDMetrics score, pooled over both synthesizers; "
          "WORSE = synthcore below SDV by more than it.\n|qs-SDM| = largest |quality_score - "
          "SDMetrics score| over the samples of a row, both with the default pair thresholds "
          "(|r| > 0.5, Cramer's V > 0.3); thr=0: both with every pair counted")
    if failed:
        print(f"FAIL: synthcore scores below SDV beyond the noise on: {', '.join(failed)}")
        return 1
    print("OK: synthcore is not below SDV beyond the noise on any dataset")
    return 0


if __name__ == "__main__":
    sys.exit(main())
