"""A stochastic DP tester in the style of Google's (cc/testing, Wilson et al. 2019 §5.3):
run a mechanism many times on two neighbouring inputs, histogram the outputs, and try
to falsify (epsilon, delta)-DP. Passing does not prove DP; failing disproves it (up to
the test's own error probability, kept tiny by the confidence padding)."""
import math

import numpy as np


def histogram_pair(y0, y1, bins=40):
    """Counts of two samples over common bins: equal-mass bins of the pooled sample for
    many distinct values, one bin per value otherwise."""
    pooled = np.concatenate([y0, y1])
    values = np.unique(pooled)
    if values.size <= bins:
        edges = np.concatenate([values - 0.5, [values[-1] + 0.5]])
    else:
        edges = np.unique(np.quantile(pooled, np.linspace(0, 1, bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
    c0, _ = np.histogram(y0, edges)
    c1, _ = np.histogram(y1, edges)
    return c0, c1


def dp_violation(c0, c1, n0, n1, epsilon, delta, z=6.0):
    """The largest excess of sum_B max(0, P0(B) - e^eps P1(B)) - delta over its confidence
    padding, both directions (Google's VerifyApproximateDp, with a normal-approximation
    padding of z standard errors per bin). <= 0 means "no violation found"."""
    worst = -np.inf
    for a, b, na, nb in ((c0, c1, n0, n1), (c1, c0, n1, n0)):
        pa, pb = a / na, b / nb
        excess = pa - math.exp(epsilon) * pb
        pad = z * np.sqrt(pa * (1 - pa) / na + math.exp(2 * epsilon) * pb * (1 - pb) / nb)
        pad = np.maximum(pad, z / min(na, nb))
        worst = max(worst, float(np.sum(np.maximum(0.0, excess - pad))) - delta)
    return worst


def largest_log_ratio(c0, c1, n0, n1, min_count=2000):
    """max |log(P0(B) / P1(B))| over well-populated bins: the loss the test can see."""
    keep = (c0 >= min_count) & (c1 >= min_count)
    if not keep.any():
        return 0.0
    return float(np.max(np.abs(np.log((c0[keep] / n0) / (c1[keep] / n1)))))
