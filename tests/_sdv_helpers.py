"""Helpers shared by the tests that run SDV (sdv 2.x API)."""
import warnings


def fit_sdv(df, metadata, **kwargs):
    """A GaussianCopulaSynthesizer fitted on df (SDV's warnings silenced)."""
    from sdv.single_table import GaussianCopulaSynthesizer
    table = next(iter(metadata.tables))  # single-table metadata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = GaussianCopulaSynthesizer(metadata, **kwargs)
        synthesizer.fit({table: df})
    return synthesizer


def sdv_sample(synthesizer, n):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = synthesizer.sample(n)
    # SDV 2 returns {table: frame}
    return next(iter(out.values())) if isinstance(out, dict) else out
