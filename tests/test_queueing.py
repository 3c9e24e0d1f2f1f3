"""Unit tests of sim.queueing against independently known results (not the same formulas)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.queueing import erlang_b, erlang_c, mmc_mean_wait, priority_mmc_waits


def erlang_c_by_sums(servers: int, a: float) -> float:
    """The textbook closed form with powers and factorials (fine for small c), as an independent oracle."""
    top = a**servers / math.factorial(servers) * servers / (servers - a)
    return top / (sum(a**k / math.factorial(k) for k in range(servers)) + top)


# -- Erlang C ------------------------------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_erlang_c_single_server_is_utilisation(rho):
    # M/M/1: an arrival waits exactly when the server is busy, probability rho.
    assert erlang_c(1, rho) == pytest.approx(rho, abs=1e-15)


def test_erlang_c_textbook_value():
    # Two servers, one Erlang: C = 1/3 (e.g. Kleinrock vol. 1; M/M/2 gives 2 rho^2 / (1 + rho) at rho = 1/2).
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)


@pytest.mark.parametrize("servers, a", [(2, 1.5), (3, 2.1), (5, 4.5), (10, 8.0), (20, 17.3)])
def test_erlang_c_matches_factorial_formula(servers, a):
    assert erlang_c(servers, a) == pytest.approx(erlang_c_by_sums(servers, a), rel=1e-12)


def test_erlang_b_textbook_value():
    # B(2, 1) = (1/2) / (1 + 1 + 1/2) = 0.2
    assert erlang_b(2, 1.0) == pytest.approx(0.2, rel=1e-12)


def test_erlang_c_is_stable_for_many_servers():
    # a**c / c! would overflow a float here; the recursion must not.
    value = erlang_c(1000, 990.0)
    assert 0 < value < 1 and math.isfinite(value)
    # More servers at the same utilisation means less waiting (economies of scale).
    assert erlang_c(1000, 900.0) < erlang_c(100, 90.0) < erlang_c(10, 9.0)


@pytest.mark.parametrize("servers, a", [(1, 1.0), (3, 3.0), (3, 4.5), (2, -0.1)])
def test_erlang_c_rejects_unstable_or_negative_load(servers, a):
    with pytest.raises(ValueError):
        erlang_c(servers, a)


@pytest.mark.parametrize("servers", [0, -1, 2.0, True])
def test_erlang_c_rejects_bad_server_counts(servers):
    with pytest.raises(ValueError):
        erlang_c(servers, 0.5)


# -- mean waits ----------------------------------------------------------------------------------
@pytest.mark.parametrize("lam, mu", [(0.5, 1.0), (9.0, 10.0), (3.0, 12.0)])
def test_mm1_mean_wait(lam, mu):
    rho = lam / mu
    assert mmc_mean_wait(lam, mu, 1) == pytest.approx(rho / (mu - lam), rel=1e-12)


@pytest.mark.parametrize("lam, mu", [(1.0, 1.0), (15.0, 10.0), (19.0, 10.0)])
def test_mm2_mean_wait(lam, mu):
    # M/M/2 closed form: Wq = rho^2 / (mu (1 - rho^2)), rho = lam / (2 mu).
    rho = lam / (2 * mu)
    assert mmc_mean_wait(lam, mu, 2) == pytest.approx(rho**2 / (mu * (1 - rho**2)), rel=1e-12)


def test_mean_wait_units_hours():
    # 36 exams/h, 6-minute reads (10/h per reporter), 4 reporters: rho = 0.9.
    wq = mmc_mean_wait(36.0, 10.0, 4)
    assert wq == pytest.approx(erlang_c(4, 3.6) / 4.0, rel=1e-12)
    assert 0.15 < wq < 0.25  # about 12 minutes, in hours


def test_mean_wait_rejects_overload():
    with pytest.raises(ValueError):
        mmc_mean_wait(40.0, 10.0, 4)


# -- non-preemptive priority (Cobham) ------------------------------------------------------------
@pytest.mark.parametrize("lam, mu, c", [(0.7, 1.0, 1), (28.0, 10.0, 4), (45.0, 2.0, 30)])
def test_one_priority_class_is_fcfs(lam, mu, c):
    (wait,) = priority_mmc_waits([lam], mu, c)
    assert wait == pytest.approx(mmc_mean_wait(lam, mu, c), rel=1e-12)


def test_priority_mm1_known_values():
    # M/M/1 non-preemptive, mu = 1: residual work W0 = sum(lam_i E[S^2]) / 2 = 0.7, so
    # W_1 = 0.7 / (1 - 0.2) = 0.875 and W_2 = 0.7 / ((1 - 0.2)(1 - 0.7)) = 2.916...
    w1, w2 = priority_mmc_waits([0.2, 0.5], 1.0, 1)
    assert w1 == pytest.approx(0.875, rel=1e-12)
    assert w2 == pytest.approx(0.7 / (0.8 * 0.3), rel=1e-12)


def test_priority_rejects_bad_input():
    with pytest.raises(ValueError):
        priority_mmc_waits([], 1.0, 2)
    with pytest.raises(ValueError):
        priority_mmc_waits([1.0, -0.1], 1.0, 2)
    with pytest.raises(ValueError):
        priority_mmc_waits([1.0, 1.0], 1.0, 2)  # total load = c


def _weighted_average(rates, waits):
    return sum(r * w for r, w in zip(rates, waits)) / sum(rates)


def test_conservation_law_example():
    rates = [6.8, 10.2, 17.0]  # 20/30/50 % of 34 exams/h; 4 reporters at 10/h: rho = 0.85
    waits = priority_mmc_waits(rates, 10.0, 4)
    assert _weighted_average(rates, waits) == pytest.approx(mmc_mean_wait(34.0, 10.0, 4), rel=1e-12)


@given(
    servers=st.integers(min_value=1, max_value=60),
    rho=st.floats(min_value=0.01, max_value=0.99),
    weights=st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1, max_size=6),
    mu=st.floats(min_value=0.1, max_value=100.0),
)
def test_conservation_law_property(servers, rho, weights, mu):
    """Kleinrock's conservation law: with equal service rates, priorities only redistribute waiting,
    so the rate-weighted mean of the class waits equals the FCFS M/M/c wait; and more urgent
    classes never wait longer."""
    total = rho * servers * mu
    rates = [total * w / sum(weights) for w in weights]
    waits = priority_mmc_waits(rates, mu, servers)
    fcfs = mmc_mean_wait(sum(rates), mu, servers)
    assert _weighted_average(rates, waits) == pytest.approx(fcfs, rel=1e-9)
    assert all(a <= b * (1 + 1e-12) for a, b in zip(waits, waits[1:]))
