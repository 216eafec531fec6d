"""synthcore.evaluate.quality_score against SDMetrics' QualityReport (run in CI)."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sdmetrics")

from _sdv_helpers import make_mixed_table  # noqa: E402

import synthcore  # noqa: E402
from synthcore.evaluate import quality_score  # noqa: E402

METADATA = {"columns": {"x1": {"sdtype": "numerical"}, "x2": {"sdtype": "numerical"},
                        "count": {"sdtype": "numerical"}, "cat": {"sdtype": "categorical"},
                        "flag": {"sdtype": "boolean"},
                        "when": {"sdtype": "datetime",
                                 "datetime_format": "%Y-%m-%d %H:%M:%S"},
                        "sparse": {"sdtype": "numerical"}}}


def _sdmetrics(real, synthetic, thresholds):
    import warnings

    from sdmetrics.reports import QualityReport
    report = QualityReport()
    if not thresholds:
        report.real_correlation_threshold = 0
        report.real_association_threshold = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate({"t": real}, {"t": synthetic}, {"tables": {"t": METADATA}},
                        verbose=False)
    return report.get_score(), report.get_properties().set_index("Property")["Score"]


@pytest.fixture(scope="module")
def tables():
    real = make_mixed_table(3000, seed=0)
    # a weakly associated pair (|r| < 0.5) that only the thresholds leave out
    real["x2"] = real["x2"] + np.random.default_rng(9).normal(0, 40, len(real))
    good = synthcore.GaussianCopula().fit(real).sample(3000, seed=1)
    # a worse synthesizer: every column shuffled on its own (shapes kept, pairs lost)
    rng = np.random.default_rng(2)
    shuffled = pd.DataFrame({c: real[c].to_numpy()[rng.permutation(len(real))]
                             for c in real.columns})
    return real, {"copula": good, "shuffled": shuffled}


@pytest.mark.parametrize("which", ["copula", "shuffled"])
@pytest.mark.parametrize("thresholds", [True, False])
def test_quality_score_tracks_sdmetrics(tables, which, thresholds):
    real, synthetic = tables[0], tables[1][which]
    kwargs = {} if thresholds else {"correlation_threshold": 0, "association_threshold": 0}
    ours = quality_score(real, synthetic, **kwargs)
    score, props = _sdmetrics(real, synthetic, thresholds)
    # the same definitions, so the same numbers up to rounding
    assert ours["column_shapes"] == pytest.approx(props["Column Shapes"], abs=1e-9)
    assert ours["column_pair_trends"] == pytest.approx(props["Column Pair Trends"], abs=1e-9)
    assert ours["score"] == pytest.approx(score, abs=1e-9)


def test_thresholds_leave_weak_pairs_out(tables):
    real, synthetic = tables[0], tables[1]["shuffled"]
    every = quality_score(real, synthetic, correlation_threshold=0, association_threshold=0)
    strong = quality_score(real, synthetic)
    # shuffling destroys association; weak pairs lose little, so counting them inflates
    assert strong["column_pair_trends"] < every["column_pair_trends"] - 0.01


def test_ignore_leaves_columns_out(tables):
    real, synthetic = tables[0], tables[1]["copula"]
    keyed_real = real.assign(id=np.arange(len(real)))
    keyed_synth = synthetic.assign(id=np.arange(10**6, 10**6 + len(synthetic)))
    assert quality_score(keyed_real, keyed_synth, ignore=["id"]) == quality_score(real, synthetic)
    assert quality_score(keyed_real, keyed_synth)["columns"]["id"] == 0.0
    with pytest.raises(ValueError, match="ignore.*'nope'"):
        quality_score(real, synthetic, ignore=["nope"])
