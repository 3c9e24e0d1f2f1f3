"""Analytic queueing results for quick capacity checks and for verifying the simulation.

These are the textbook steady-state formulas for Poisson arrivals, exponential reading times
and ``c`` identical reporters on duty around the clock (M/M/c). They ignore everything the
simulation adds (timetables, leave, eligibility, several trusts), so use them as a sanity check
or lower bound, not as a forecast.

Units: rates are *per unit time* and times come back in the *reciprocal* of that unit, so pass
both rates per hour to get waits in hours (the simulation's unit). For a reporter who needs a
mean of 6 minutes per exam, ``service_rate = 60 / 6 = 10`` exams per hour. The *offered load*
``a = arrival_rate / service_rate`` is dimensionless (in Erlangs: the mean number of busy
reporters); utilisation is ``rho = a / servers``.
"""

from __future__ import annotations

from collections.abc import Sequence


def _check_servers(servers: int) -> None:
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
        raise ValueError(f"servers must be a positive integer, got {servers!r}")


def erlang_b(servers: int, offered_load: float) -> float:
    """Blocking probability of M/M/c/c (Erlang B) for `offered_load` Erlangs, any load >= 0.

    Uses the recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)), which stays in [0, 1] and
    never forms a^c or c!, so it is stable for hundreds of servers.
    """
    _check_servers(servers)
    if offered_load < 0:
        raise ValueError(f"offered_load must be >= 0, got {offered_load!r}")
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return b


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival must wait in a stable M/M/c queue (Erlang C), in [0, 1).

    `offered_load` is a = lambda / mu in Erlangs and must satisfy 0 <= a < servers (otherwise
    the queue grows without bound and ValueError is raised). Computed from Erlang B:
    C = c B / (c - a (1 - B)).
    """
    _check_servers(servers)
    if not 0 <= offered_load < servers:
        raise ValueError(f"offered_load must satisfy 0 <= a < servers = {servers}; got a = {offered_load!r}")
    b = erlang_b(servers, offered_load)
    return servers * b / (servers - offered_load * (1 - b))


def _load(arrival_rate: float, service_rate: float) -> float:
    if service_rate <= 0:
        raise ValueError(f"service_rate must be > 0, got {service_rate!r}")
    if arrival_rate < 0:
        raise ValueError(f"arrival_rate must be >= 0, got {arrival_rate!r}")
    return arrival_rate / service_rate


def mmc_mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean time in queue (before reading starts), Wq = C(c, a) / (c mu - lambda), of FCFS M/M/c.

    `arrival_rate` (lambda) is exams per unit time, `service_rate` (mu) exams per unit time per
    reporter; the result is in the matching time unit (hours for rates per hour). Requires
    lambda < c mu. Holds for any work-conserving order that ignores reading times, since
    all of them have the same mean wait when reading times are i.i.d. exponential.
    """
    a = _load(arrival_rate, service_rate)
    return erlang_c(servers, a) / (servers * service_rate - arrival_rate)


def priority_mmc_waits(arrival_rates: Sequence[float], service_rate: float, servers: int) -> list[float]:
    """Mean time in queue per class for non-preemptive priority M/M/c (Cobham 1954).

    `arrival_rates[k]` is class k's rate (class 0 most urgent), all classes sharing one
    exponential reading rate `service_rate` per reporter; units as in :func:`mmc_mean_wait`.
    With sigma_k = sum_{i<=k} lambda_i / (c mu) (sigma_{-1} = 0) and lambda the total rate,

        W_k = C(c, lambda/mu) / (c mu) / ((1 - sigma_{k-1}) (1 - sigma_k)).

    Within a class exams are read oldest first. Requires the total load to be below c.
    """
    if not arrival_rates:
        raise ValueError("need at least one class")
    if any(rate < 0 for rate in arrival_rates):
        raise ValueError(f"arrival rates must be >= 0, got {list(arrival_rates)!r}")
    total = float(sum(arrival_rates))
    c_wait = erlang_c(servers, _load(total, service_rate))
    capacity = servers * service_rate
    waits = []
    sigma_before = 0.0
    for rate in arrival_rates:
        sigma = sigma_before + rate / capacity
        waits.append(c_wait / capacity / ((1 - sigma_before) * (1 - sigma)))
        sigma_before = sigma
    return waits
