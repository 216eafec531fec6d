"""Tests for synthcore.dp.accounting: calibration, zCDP conversions, Accountant.

Reference values are computed independently here with mpmath at 60 digits
(straight from the formulas in Balle & Wang 2018 and Canonne, Kamath &
Steinke 2020), and the zCDP -> (eps, delta) conversion is compared with
OpenDP's ``make_zCDP_to_approxDP`` when opendp is installed.
"""
from __future__ import annotations

import json
import math
import re
import sys
import threading
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import mpmath as mp
import pytest

from synthcore.dp import accounting as A
from synthcore.dp.accounting import (
    Accountant,
    BudgetExceededError,
    PrivacyCost,
    analytic_gaussian_delta,
    approx_dp_to_zcdp,
    discrete_laplace_scale,
    gaussian_sigma_analytic,
    gaussian_sigma_classical,
    gaussian_sigma_for_rho,
    laplace_scale,
    pure_to_zcdp,
    zcdp_delta_for_epsilon,
    zcdp_rho_discrete_gaussian,
    zcdp_rho_gaussian,
    zcdp_to_approx_dp,
    zcdp_to_approx_dp_simple,
)

MP_DPS = 60


# ---------------------------------------------------------------------------
# independent high-precision references (mpmath)
# ---------------------------------------------------------------------------

def mp_bw_delta(sigma, epsilon, sensitivity=1.0):
    """Balle & Wang 2018 Thm 8: exact delta of the Gaussian mechanism."""
    with mp.workdps(MP_DPS):
        s, e, d = mp.mpf(sigma), mp.mpf(epsilon), mp.mpf(sensitivity)
        return (mp.ncdf(d / (2 * s) - e * s / d)
                - mp.exp(e) * mp.ncdf(-d / (2 * s) - e * s / d))


def mp_cks_delta(rho, epsilon):
    """CKS20 Cor 13: inf over alpha of exp((a-1)(a rho - eps)) (1-1/a)^a / (a-1)."""
    with mp.workdps(MP_DPS):
        r, e = mp.mpf(rho), mp.mpf(epsilon)
        f = lambda a: (2 * a - 1) * r - e + mp.log(1 - 1 / a)  # d/da of log delta
        lo, hi = mp.mpf(1) + mp.mpf(10) ** -40, (e + 1) / (2 * r) + 2
        for _ in range(400):                                    # plain bisection
            mid = (lo + hi) / 2
            if f(mid) < 0:
                lo = mid
            else:
                hi = mid
        a = (lo + hi) / 2
        return mp.exp((a - 1) * (a * r - e) + a * mp.log(1 - 1 / a)) / (a - 1)


def mp_cks_epsilon(rho, delta):
    """CKS20 Prop 12 with (alpha, alpha*rho)-RDP, minimised over alpha."""
    with mp.workdps(MP_DPS):
        r, L = mp.mpf(rho), -mp.log(mp.mpf(delta))
        g = lambda a: r * (a - 1) ** 2 - L + mp.log(a)           # derivative root
        lo, hi = mp.mpf(1), 1 + mp.sqrt(L / r) + 1
        for _ in range(400):
            mid = (lo + hi) / 2
            if g(mid) < 0:
                lo = mid
            else:
                hi = mid
        a = (lo + hi) / 2
        return max(mp.mpf(0), a * r + (L - mp.log(a)) / (a - 1) + mp.log(1 - 1 / a))


# ---------------------------------------------------------------------------
# Laplace
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [laplace_scale, discrete_laplace_scale])
def test_laplace_scale_values_and_outward_rounding(fn):
    assert fn(1.0, 1.0) == 1.0
    assert fn(2.0, 0.5) == 4.0
    assert fn(3, 2) == 1.5
    for d, e in [(1.0, 3.0), (0.1, 0.7), (7.0, 0.3), (1.0, 1e-3), (5.5, 11.0)]:
        b = fn(d, e)
        assert Fraction(b) * Fraction(e) >= Fraction(d)        # b >= d/e exactly
        smaller = math.nextafter(b, 0.0)
        assert Fraction(smaller) * Fraction(e) < Fraction(d)   # and b is the smallest
        assert b == pytest.approx(d / e, rel=1e-15)


# ---------------------------------------------------------------------------
# Gaussian calibration
# ---------------------------------------------------------------------------

def test_classical_gaussian_value():
    # Dwork-Roth Thm A.1: sigma = sqrt(2 ln(1.25/delta)) * Delta / eps
    sigma = gaussian_sigma_classical(1.0, 0.5, 1e-5)
    with mp.workdps(MP_DPS):
        ref = mp.sqrt(2 * mp.log(mp.mpf(1.25) / mp.mpf("1e-5"))) / mp.mpf(0.5)
    assert sigma == pytest.approx(9.689610525210785, rel=1e-14)
    assert sigma >= ref and sigma <= ref * (1 + 1e-14)
    assert gaussian_sigma_classical(2.0, 0.5, 1e-5) == pytest.approx(2 * sigma, rel=1e-15)


def test_classical_gaussian_rejects_eps_ge_1():
    with pytest.raises(ValueError, match=r"^epsilon.*analytic"):
        gaussian_sigma_classical(1.0, 1.0, 1e-5)
    with pytest.raises(ValueError, match=r"^epsilon"):
        gaussian_sigma_classical(1.0, 3.0, 1e-5)


def test_analytic_gaussian_published_example():
    # Balle & Wang 2018: Delta = 1, eps = 1, delta = 1e-5 -> sigma ~ 3.73
    # (classical formula does not even apply at eps = 1).
    sigma = gaussian_sigma_analytic(1.0, 1.0, 1e-5)
    assert round(sigma, 2) == 3.73
    assert sigma == pytest.approx(3.7306316348, rel=1e-9)


@pytest.mark.parametrize("sensitivity", [1.0, 3.5])
@pytest.mark.parametrize("epsilon", [1e-3, 0.1, 0.5, 1.0, 5.0, 20.0, 50.0])
@pytest.mark.parametrize("delta", [0.1, 1e-5, 1e-8, 1e-12])
def test_analytic_gaussian_is_smallest_sigma(sensitivity, epsilon, delta):
    sigma = gaussian_sigma_analytic(sensitivity, epsilon, delta)
    # sound: the exact delta at sigma is at most the target ...
    assert mp_bw_delta(sigma, epsilon, sensitivity) <= delta
    # ... and tight: 1e-6 less noise already violates it
    assert mp_bw_delta(sigma * (1 - 1e-6), epsilon, sensitivity) > delta
    # analytic_gaussian_delta is an accurate upper bound of the exact delta
    got = analytic_gaussian_delta(sensitivity, sigma, epsilon)
    ref = mp_bw_delta(sigma, epsilon, sensitivity)
    assert got >= ref
    # slack from the built-in rounding-error bound (cancellation grows as eps -> 0)
    slack = 1e-7 if epsilon < 0.01 else 1e-9 if epsilon < 0.1 else 1e-10
    assert got <= ref * (1 + slack)


def test_analytic_beats_classical():
    for eps in [0.05, 0.2, 0.5, 0.9]:
        for delta in [1e-3, 1e-6, 1e-10]:
            assert gaussian_sigma_analytic(1, eps, delta) < gaussian_sigma_classical(1, eps, delta)


def test_analytic_gaussian_monotone_and_linear():
    eps_grid = [1e-3, 0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 50]
    for delta in [1e-3, 1e-6, 1e-12]:
        s = [gaussian_sigma_analytic(1.0, e, delta) for e in eps_grid]
        assert all(a > b for a, b in zip(s, s[1:])), s
    delta_grid = [1e-12, 1e-9, 1e-6, 1e-3, 0.1, 0.5]
    for eps in [0.1, 1.0, 10.0]:
        s = [gaussian_sigma_analytic(1.0, eps, d) for d in delta_grid]
        assert all(a > b for a, b in zip(s, s[1:])), s
    # sigma scales linearly with the sensitivity
    base = gaussian_sigma_analytic(1.0, 0.7, 1e-6)
    assert gaussian_sigma_analytic(250.0, 0.7, 1e-6) == pytest.approx(250 * base, rel=1e-12)


# ---------------------------------------------------------------------------
# zCDP basics
# ---------------------------------------------------------------------------

def test_zcdp_gaussian_formulas():
    assert zcdp_rho_gaussian(1.0, 2.0) == 0.125
    assert zcdp_rho_gaussian(3.0, 1.5) == 2.0
    assert gaussian_sigma_for_rho(1.0, 0.125) == 2.0
    assert gaussian_sigma_for_rho(3.0, 2.0) == 1.5
    assert pure_to_zcdp(1.0) == 0.5
    assert pure_to_zcdp(0.0) == 0.0
    # discrete Gaussian (CKS20 Thm 4): same rho as the continuous one
    assert zcdp_rho_discrete_gaussian(1.0, 2.0) == zcdp_rho_gaussian(1.0, 2.0)
    assert zcdp_rho_discrete_gaussian(2.0, 7.3) == zcdp_rho_gaussian(2.0, 7.3)
    for d, r in [(1.0, 0.1), (0.3, 0.017), (2.0, 1e-4), (1.0, 3.3)]:
        s = gaussian_sigma_for_rho(d, r)
        # exact: Delta^2/(2 sigma^2) <= rho, and sigma is the smallest such float
        assert Fraction(d) ** 2 <= 2 * Fraction(s) ** 2 * Fraction(r)
        s_less = math.nextafter(s, 0.0)
        assert Fraction(d) ** 2 > 2 * Fraction(s_less) ** 2 * Fraction(r)
        rho_back = zcdp_rho_gaussian(d, s)
        assert rho_back <= r * (1 + 1e-15)
        assert Fraction(rho_back) >= Fraction(d) ** 2 / (2 * Fraction(s) ** 2)  # rounded up
    for e in [0.1, 0.3, 1.7]:
        assert Fraction(pure_to_zcdp(e)) >= Fraction(e) ** 2 / 2


# ---------------------------------------------------------------------------
# zCDP -> (eps, delta): CKS20
# ---------------------------------------------------------------------------

RHOS = [1e-4, 1e-3, 0.01, 0.1, 0.5, 2.0, 10.0]
DELTAS = [1e-12, 1e-9, 1e-6, 1e-3, 0.05]


@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("delta", DELTAS)
def test_cks_epsilon_against_mpmath(rho, delta):
    eps = zcdp_to_approx_dp(rho, delta)
    ref = mp_cks_epsilon(rho, delta)
    assert eps >= ref                                   # never optimistic
    assert eps <= ref * (1 + 1e-12) + 1e-300
    assert eps <= zcdp_to_approx_dp_simple(rho, delta)  # tight <= BS16 bound
    if ref > 0:
        assert eps < zcdp_to_approx_dp_simple(rho, delta)


@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("epsilon", [0.1, 1.0, 3.0, 10.0])
def test_cks_delta_against_mpmath(rho, epsilon):
    got = zcdp_delta_for_epsilon(rho, epsilon)
    ref = mp_cks_delta(rho, epsilon)
    if ref < 1e-300:
        assert got <= 1e-300
        return
    ref = min(ref, 1)
    assert got >= ref
    assert got <= ref * (1 + 1e-12)


@pytest.mark.parametrize("rho", [1e-3, 0.1, 0.5, 2.0])
@pytest.mark.parametrize("delta", [1e-12, 1e-6, 1e-3])
def test_cks_epsilon_and_delta_are_inverse(rho, delta):
    eps = zcdp_to_approx_dp(rho, delta)
    assert zcdp_delta_for_epsilon(rho, eps) == pytest.approx(delta, rel=1e-9)


def test_simple_conversion_value():
    # BS16 Prop 1.3: rho + 2 sqrt(rho ln(1/delta))
    assert zcdp_to_approx_dp_simple(0.5, 1e-6) == pytest.approx(
        0.5 + 2 * math.sqrt(0.5 * math.log(1e6)), rel=1e-15)
    assert zcdp_to_approx_dp_simple(0.0, 1e-6) == 0.0
    assert zcdp_to_approx_dp(0.0, 1e-6) == 0.0
    assert zcdp_delta_for_epsilon(0.0, 1.0) == 0.0


def _opendp_profile(rho):
    opendp = pytest.importorskip("opendp")  # noqa: F841
    import opendp.prelude as dp
    dp.enable_features("contrib", "honest-but-curious")
    meas = dp.m.make_user_measurement(
        dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float),
        dp.zero_concentrated_divergence(), lambda x: x, lambda d_in: rho)
    return dp.c.make_zCDP_to_approxDP(meas).map(1.0)


@pytest.mark.parametrize("rho", RHOS)
def test_cks_against_opendp(rho):
    pytest.importorskip("opendp")
    profile = _opendp_profile(rho)
    for delta in DELTAS:
        ours, theirs = zcdp_to_approx_dp(rho, delta), profile.epsilon(delta)
        assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-12), (rho, delta)
    for eps in [0.1, 0.5, 1.0, 3.0, 10.0]:
        ours, theirs = zcdp_delta_for_epsilon(rho, eps), profile.delta(eps)
        # OpenDP searches alpha >= 1.01 only, so it can be looser (larger);
        # where its optimum is interior both must agree.
        assert ours <= theirs * (1 + 1e-6) + 1e-300, (rho, eps)
        if 1e-250 < theirs < 0.5:
            assert ours == pytest.approx(theirs, rel=1e-6), (rho, eps)


# ---------------------------------------------------------------------------
# (eps, delta) -> rho
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("rho", [1e-4, 0.01, 0.3, 1.0, 5.0])
@pytest.mark.parametrize("delta", [1e-12, 1e-6, 1e-3])
def test_round_trip_rho(rho, delta):
    eps = zcdp_to_approx_dp(rho, delta)
    back = approx_dp_to_zcdp(eps, delta)
    assert back == pytest.approx(rho, rel=1e-9)


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 3.0, 10.0])
@pytest.mark.parametrize("delta", [1e-10, 1e-6, 1e-3])
def test_approx_dp_to_zcdp_is_largest_admissible(epsilon, delta):
    rho = approx_dp_to_zcdp(epsilon, delta)
    assert zcdp_to_approx_dp(rho, delta) <= epsilon               # admissible
    assert zcdp_to_approx_dp(rho * (1 + 1e-9), delta) > epsilon  # maximal
    assert mp_cks_epsilon(rho, delta) <= epsilon
    # never below the inverse of the simple bound (the tight one is better)
    L = math.log(1 / delta)
    assert rho >= (math.sqrt(L + epsilon) - math.sqrt(L)) ** 2 * (1 - 1e-12)


def test_approx_dp_to_zcdp_value():
    # (1, 1e-6) -> rho ~ 0.02436: mpmath check of the definition
    rho = approx_dp_to_zcdp(1.0, 1e-6)
    assert rho == pytest.approx(0.0243559703595, rel=1e-9)
    assert float(mp_cks_epsilon(rho, 1e-6)) == pytest.approx(1.0, rel=1e-11)


# ---------------------------------------------------------------------------
# Accountant
# ---------------------------------------------------------------------------

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def make_clock():
    state = {"n": 0}

    def clock():
        state["n"] += 1
        return T0 + timedelta(seconds=state["n"])
    return clock


def test_approx_accountant_refuses_before_recording():
    acc = Accountant(epsilon=1.0, delta=1e-6, clock=make_clock())
    r1 = acc.charge("q1", epsilon=0.4, delta=4e-7, mechanism="gaussian",
                    params={"sigma": 3.0, "sensitivity": 1.0})
    assert acc.spent() == PrivacyCost(epsilon=0.4, delta=4e-7)
    with pytest.raises(BudgetExceededError) as exc:
        acc.charge("too-much", epsilon=0.7)
    assert isinstance(exc.value, RuntimeError)
    assert exc.value.name == "too-much"
    assert exc.value.requested == PrivacyCost(epsilon=0.7, delta=0.0)
    assert exc.value.remaining.epsilon == pytest.approx(0.6)
    with pytest.raises(BudgetExceededError):
        acc.charge("too-much-delta", epsilon=0.1, delta=7e-7)
    assert len(acc.ledger) == 1 and acc.ledger[0] is r1
    assert acc.spent() == PrivacyCost(epsilon=0.4, delta=4e-7)
    r2 = acc.charge("q2", epsilon=0.6, delta=6e-7, mechanism="laplace")
    assert r2.index == 1
    # exactly exhausted (within the 1e-12 relative tolerance)
    assert acc.spent().epsilon == 1.0
    assert acc.remaining().epsilon == 0.0
    assert not acc.check(epsilon=1e-6)
    assert acc.check(epsilon=0.0)
    assert [e.name for e in acc.ledger] == ["q1", "q2"]


def test_exact_ledger_contents():
    acc = Accountant(epsilon=2.0, delta=1e-5, clock=make_clock())
    acc.charge("counts", epsilon=0.5, mechanism="laplace",
               params={"scale": laplace_scale(1, 0.5), "sensitivity": 1})
    acc.charge("means", epsilon=1.0, delta=1e-6, mechanism="gaussian",
               params={"sigma": 4.5, "cols": ("a", "b")})
    got = [e.to_json() for e in acc.ledger]
    assert got == [
        {"index": 0, "name": "counts", "time": "2026-01-02T03:04:06+00:00",
         "cost": {"epsilon": 0.5, "delta": 0.0}, "requested": {"epsilon": 0.5, "delta": 0.0},
         "mechanism": "laplace", "params": {"scale": 2.0, "sensitivity": 1}},
        {"index": 1, "name": "means", "time": "2026-01-02T03:04:07+00:00",
         "cost": {"epsilon": 1.0, "delta": 1e-6}, "requested": {"epsilon": 1.0, "delta": 1e-6},
         "mechanism": "gaussian", "params": {"sigma": 4.5, "cols": ["a", "b"]}},
    ]
    assert acc.ledger[1].cost == PrivacyCost(epsilon=1.0, delta=1e-6)
    text = str(acc)
    assert "counts" in text and "means" in text and "gaussian" in text
    assert "remaining: epsilon=0.5, delta=9e-06" in text
    assert text == acc.report()


def test_tolerance_is_1e_12_relative():
    acc = Accountant(epsilon=1.0)
    for i in range(10):
        acc.charge(f"tenth{i}", epsilon=0.1)       # naive sum would be 0.9999999999999999
    assert acc.spent().epsilon == 1.0
    acc.charge("rounding", epsilon=5e-13)           # inside the tolerance
    with pytest.raises(BudgetExceededError):
        acc.charge("beyond", epsilon=1e-12)         # 1 + 1.5e-12 > 1 + 1e-12
    assert len(acc.ledger) == 11
    zero = Accountant(epsilon=1.0)                  # delta total 0: any delta refused
    with pytest.raises(BudgetExceededError):
        zero.charge("gauss", epsilon=0.1, delta=1e-300)


def test_zcdp_accountant_totals_and_conversion():
    acc = Accountant(rho=1.0, clock=make_clock())
    g = acc.charge("marginal", rho=zcdp_rho_gaussian(1.0, 2.0), mechanism="gaussian",
                   params={"sigma": 2.0})
    p = acc.charge("select", epsilon=1.0, mechanism="exponential")
    assert g.cost == PrivacyCost(rho=0.125)
    assert p.cost == PrivacyCost(rho=0.5) and p.requested == PrivacyCost(epsilon=1.0)
    assert acc.spent() == PrivacyCost(rho=0.625)
    assert acc.remaining() == PrivacyCost(rho=0.375)
    assert acc.epsilon_at(1e-6) == zcdp_to_approx_dp(0.625, 1e-6)
    assert acc.epsilon_at(1e-6, which="total") == zcdp_to_approx_dp(1.0, 1e-6)
    with pytest.raises(BudgetExceededError):
        acc.charge("big", rho=0.4)
    with pytest.raises(BudgetExceededError):
        acc.charge("big-pure", epsilon=0.9)            # 0.405 > 0.375
    acc.charge("fits-pure", epsilon=0.5, delta=0.0)    # 0.125
    assert acc.spent() == PrivacyCost(rho=0.75)
    assert len(acc.ledger) == 3
    rep = acc.report(delta=1e-6)
    assert "as (epsilon, delta=1e-06)" in rep and "marginal" in rep


def test_approx_accountant_epsilon_at():
    acc = Accountant(epsilon=3.0, delta=1e-6)
    acc.charge("a", epsilon=1.0, delta=1e-7)
    assert acc.epsilon_at(1e-7) == 1.0
    with pytest.raises(ValueError, match=r"^delta"):
        acc.epsilon_at(1e-8)


def test_reserve_and_check(tmp_path):
    acc = Accountant(rho=1.0, clock=make_clock())
    assert acc.check(rho=1.0) and not acc.check(rho=1.1)
    assert acc.ledger == [] and acc.spent() == PrivacyCost(rho=0.0)     # check spends nothing
    res = acc.reserve("held", rho=0.6, mechanism="gaussian", params={"sigma": 1.0})
    assert acc.remaining() == PrivacyCost(rho=0.4)
    assert acc.reserved() == PrivacyCost(rho=0.6)
    assert acc.spent() == PrivacyCost(rho=0.0)
    assert not acc.check(rho=0.5)
    with pytest.raises(BudgetExceededError):
        acc.charge("other", rho=0.5)
    with pytest.raises(BudgetExceededError):
        acc.reserve("other", rho=0.5)
    entry = res.commit(params={"noise_sum": 1.5})
    assert entry.params == {"sigma": 1.0, "noise_sum": 1.5}
    assert acc.spent() == PrivacyCost(rho=0.6) and acc.reserved() == PrivacyCost(rho=0.0)
    with pytest.raises(RuntimeError):
        res.release()
    # context manager: released on error, committed on success
    with pytest.raises(KeyError):
        with acc.reserve("fails", rho=0.3):
            raise KeyError("boom")
    assert acc.remaining() == PrivacyCost(rho=pytest.approx(0.4))
    with acc.reserve("ok", rho=0.3) as r:
        assert r.active
    assert r.entry is not None and [e.name for e in acc.ledger] == ["held", "ok"]
    # reservations are not saved
    acc.reserve("pending", rho=0.05)
    acc.save(tmp_path / "a.json")
    assert [e["name"] for e in json.loads((tmp_path / "a.json").read_text())["ledger"]] == [
        "held", "ok"]


def test_save_load_round_trip(tmp_path):
    acc = Accountant(rho=0.5, clock=make_clock())
    acc.charge("m1", rho=0.1, mechanism="discrete_gaussian",
               params={"sigma": gaussian_sigma_for_rho(1, 0.1), "shape": [3, 4]})
    acc.charge("m2", epsilon=0.3, mechanism="exponential", params={"n": 17})
    path = tmp_path / "ledger.json"
    acc.save(path)
    raw = json.loads(path.read_text())             # plain JSON, no pickle
    assert raw["format"] == "synthcore.dp.Accountant" and raw["mode"] == "zcdp"
    loaded = Accountant.load(path)
    assert loaded.to_json() == acc.to_json()
    assert loaded.ledger == acc.ledger
    assert loaded.spent() == acc.spent() and loaded.remaining() == acc.remaining()
    assert loaded.total == PrivacyCost(rho=0.5)
    with pytest.raises(BudgetExceededError):
        loaded.charge("m3", rho=0.4)
    loaded.charge("m3", rho=0.3)
    assert len(loaded.ledger) == 3 and len(acc.ledger) == 2

    approx = Accountant(epsilon=1.0, delta=1e-6)
    approx.charge("x", epsilon=0.25, delta=1e-7)
    approx.save(tmp_path / "approx.json")
    again = Accountant.load(tmp_path / "approx.json")
    assert again.mode == "approx" and again.ledger == approx.ledger
    assert again.remaining() == PrivacyCost(epsilon=0.75, delta=9e-7)


def test_load_rejects_bad_files(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("not json")
    with pytest.raises(ValueError):
        Accountant.load(p)
    p.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError):
        Accountant.load(p)
    acc = Accountant(rho=1.0)
    acc.charge("a", rho=0.5)
    data = acc.to_json()
    data["ledger"][0]["cost"]["rho"] = 2.0          # overspends the budget
    p.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="overspends"):
        Accountant.load(p)
    data = acc.to_json()
    data["ledger"][0]["cost"] = {"epsilon": 0.1, "delta": 0.0}   # wrong unit
    p.write_text(json.dumps(data))
    with pytest.raises(ValueError):
        Accountant.load(p)
    data = acc.to_json()
    del data["ledger"][0]["name"]
    p.write_text(json.dumps(data))
    with pytest.raises(ValueError):
        Accountant.load(p)


def _hammer(acc, n_threads, per_thread, kwargs_for):
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)       # switch threads as often as possible
    try:
        return _hammer_inner(acc, n_threads, per_thread, kwargs_for)
    finally:
        sys.setswitchinterval(old_interval)


def _hammer_inner(acc, n_threads, per_thread, kwargs_for):
    barrier = threading.Barrier(n_threads)
    ok, refused, errors = [], [], []

    def worker(tid):
        barrier.wait()
        for i in range(per_thread):
            try:
                acc.charge(f"t{tid}-{i}", **kwargs_for(tid, i))
                ok.append((tid, i))
            except BudgetExceededError:
                refused.append((tid, i))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    return ok, refused


def test_thread_safety_never_overspends():
    acc = Accountant(rho=1.0)
    ok, refused = _hammer(acc, 16, 25, lambda t, i: {"rho": 0.01})
    assert len(ok) == 100 and len(refused) == 300       # exactly the budget, no more
    ledger = acc.ledger
    assert [e.index for e in ledger] == list(range(100))
    assert len({e.name for e in ledger}) == 100
    assert acc.spent().rho == math.fsum([0.01] * 100) <= 1.0 * (1 + 1e-12)

    acc2 = Accountant(epsilon=2.0, delta=1e-5)
    ok, refused = _hammer(acc2, 8, 60, lambda t, i: {
        "epsilon": 0.003 * (1 + (t * 7 + i) % 5), "delta": 1e-8 * (1 + i % 3)})
    assert len(ok) + len(refused) == 480 and refused
    spent = acc2.spent()
    assert spent.epsilon <= 2.0 * (1 + 1e-12) and spent.delta <= 1e-5 * (1 + 1e-12)
    assert spent.epsilon == math.fsum(e.cost.epsilon for e in acc2.ledger)
    assert len(acc2.ledger) == len(ok)


# ---------------------------------------------------------------------------
# argument validation: every bad argument -> ValueError naming it
# ---------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")

BAD_CALLS = [
    (laplace_scale, (0, 1), "sensitivity"),
    (laplace_scale, (-1, 1), "sensitivity"),
    (laplace_scale, (NAN, 1), "sensitivity"),
    (laplace_scale, (INF, 1), "sensitivity"),
    (laplace_scale, ("1", 1), "sensitivity"),
    (laplace_scale, (True, 1), "sensitivity"),
    (laplace_scale, (1, 0), "epsilon"),
    (laplace_scale, (1, -0.5), "epsilon"),
    (laplace_scale, (1, INF), "epsilon"),
    (laplace_scale, (1, NAN), "epsilon"),
    (laplace_scale, (1, None), "epsilon"),
    (discrete_laplace_scale, (0, 1), "sensitivity"),
    (discrete_laplace_scale, (1, 0), "epsilon"),
    (gaussian_sigma_classical, (0, 0.5, 1e-5), "sensitivity"),
    (gaussian_sigma_classical, (1, 0, 1e-5), "epsilon"),
    (gaussian_sigma_classical, (1, 1.0, 1e-5), "epsilon"),
    (gaussian_sigma_classical, (1, 0.5, 0), "delta"),
    (gaussian_sigma_classical, (1, 0.5, 1), "delta"),
    (gaussian_sigma_classical, (1, 0.5, NAN), "delta"),
    (gaussian_sigma_analytic, (-1, 1, 1e-5), "sensitivity"),
    (gaussian_sigma_analytic, (1, 0, 1e-5), "epsilon"),
    (gaussian_sigma_analytic, (1, INF, 1e-5), "epsilon"),
    (gaussian_sigma_analytic, (1, 1, 0), "delta"),
    (gaussian_sigma_analytic, (1, 1, 1), "delta"),
    (gaussian_sigma_analytic, (1, 1, -1e-5), "delta"),
    (analytic_gaussian_delta, (1, 0, 1), "sigma"),
    (analytic_gaussian_delta, (0, 1, 1), "sensitivity"),
    (analytic_gaussian_delta, (1, 1, -1), "epsilon"),
    (zcdp_rho_gaussian, (0, 1), "sensitivity"),
    (zcdp_rho_gaussian, (1, 0), "sigma"),
    (zcdp_rho_gaussian, (1, INF), "sigma"),
    (zcdp_rho_discrete_gaussian, (1, -2), "sigma"),
    (gaussian_sigma_for_rho, (0, 1), "sensitivity"),
    (gaussian_sigma_for_rho, (1, 0), "rho"),
    (gaussian_sigma_for_rho, (1, INF), "rho"),
    (pure_to_zcdp, (-1,), "epsilon"),
    (pure_to_zcdp, (NAN,), "epsilon"),
    (zcdp_to_approx_dp, (-0.1, 1e-6), "rho"),
    (zcdp_to_approx_dp, (INF, 1e-6), "rho"),
    (zcdp_to_approx_dp, (0.1, 0), "delta"),
    (zcdp_to_approx_dp, (0.1, 1), "delta"),
    (zcdp_to_approx_dp_simple, (-0.1, 1e-6), "rho"),
    (zcdp_to_approx_dp_simple, (0.1, 1.5), "delta"),
    (zcdp_delta_for_epsilon, (-1, 1), "rho"),
    (zcdp_delta_for_epsilon, (0.1, -1), "epsilon"),
    (approx_dp_to_zcdp, (0, 1e-6), "epsilon"),
    (approx_dp_to_zcdp, (INF, 1e-6), "epsilon"),
    (approx_dp_to_zcdp, (1, 0), "delta"),
    (approx_dp_to_zcdp, (1, 1), "delta"),
]


@pytest.mark.parametrize("fn,args,name", BAD_CALLS,
                         ids=[f"{f.__name__}{a!r}" for f, a, _ in BAD_CALLS])
def test_bad_arguments_raise_value_error(fn, args, name):
    with pytest.raises(ValueError) as exc:
        fn(*args)
    assert re.match(rf"^{name}\b", str(exc.value)), str(exc.value)


BAD_ACCOUNTANTS = [
    ({}, "epsilon"),
    ({"epsilon": 0}, "epsilon"),
    ({"epsilon": -1}, "epsilon"),
    ({"epsilon": INF}, "epsilon"),
    ({"epsilon": 1, "delta": 1}, "delta"),
    ({"epsilon": 1, "delta": -1e-9}, "delta"),
    ({"rho": 0}, "rho"),
    ({"rho": NAN}, "rho"),
    ({"rho": 1, "epsilon": 1}, "rho"),
    ({"epsilon": 1, "clock": 3}, "clock"),
]


@pytest.mark.parametrize("kwargs,name", BAD_ACCOUNTANTS)
def test_bad_accountant_budget(kwargs, name):
    with pytest.raises(ValueError) as exc:
        Accountant(**kwargs)
    assert re.match(rf"^{name}\b", str(exc.value)), str(exc.value)


BAD_CHARGES = [
    ("approx", ("",), {"epsilon": 0.1}, "name"),
    ("approx", (None,), {"epsilon": 0.1}, "name"),
    ("approx", ("q",), {}, "epsilon"),
    ("approx", ("q",), {"epsilon": -0.1}, "epsilon"),
    ("approx", ("q",), {"epsilon": NAN}, "epsilon"),
    ("approx", ("q",), {"delta": 1e-7}, "epsilon"),
    ("approx", ("q",), {"epsilon": 0.1, "delta": 1.0}, "delta"),
    ("approx", ("q",), {"rho": 0.1}, "rho"),
    ("approx", ("q",), {"epsilon": 0.1, "params": {"x": object()}}, "params"),
    ("approx", ("q",), {"epsilon": 0.1, "params": {"x": NAN}}, "params"),
    ("approx", ("q",), {"epsilon": 0.1, "params": [1, 2]}, "params"),
    ("approx", ("q",), {"epsilon": 0.1, "mechanism": 3}, "mechanism"),
    ("zcdp", ("q",), {"rho": -1}, "rho"),
    ("zcdp", ("q",), {"rho": 0.1, "epsilon": 0.1}, "rho"),
    ("zcdp", ("q",), {"epsilon": 0.1, "delta": 1e-6}, "delta"),
    ("zcdp", ("q",), {"delta": 0.0}, "epsilon"),
    ("zcdp", ("q",), {"epsilon": INF}, "epsilon"),
]


BAD_CHARGE_CASES = [(method,) + case for method in ("charge", "reserve", "check")
                    for case in BAD_CHARGES
                    # check() takes only the cost
                    if not (method == "check" and case[3] in ("name", "params", "mechanism"))]


@pytest.mark.parametrize("method,mode,args,kwargs,name", BAD_CHARGE_CASES)
def test_bad_charge_arguments(method, mode, args, kwargs, name):
    acc = Accountant(epsilon=1.0, delta=1e-6) if mode == "approx" else Accountant(rho=1.0)
    if method == "check":
        call = lambda: acc.check(**kwargs)
    else:
        call = lambda: getattr(acc, method)(*args, **kwargs)
    with pytest.raises(ValueError) as exc:
        call()
    assert re.match(rf"^{name}\b", str(exc.value)), str(exc.value)
    assert acc.ledger == [] and acc.remaining() == acc.total


def test_bad_epsilon_at_and_report_arguments():
    acc = Accountant(rho=1.0)
    with pytest.raises(ValueError, match=r"^delta"):
        acc.epsilon_at(0.0)
    with pytest.raises(ValueError, match=r"^which"):
        acc.epsilon_at(1e-6, which="everything")
    with pytest.raises(ValueError, match=r"^delta"):
        acc.report(delta=2.0)


def test_module_exports():
    for name in A.__all__:
        assert hasattr(A, name), name
