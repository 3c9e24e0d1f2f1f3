"""Brokered routing and the broker: work moves from trusts in deficit to trusts with spare capacity.

Reporters read their own trust (and agreement work) first. Behind that, each has one group of
*borrowed* queues per other trust it is credentialed for; the groups are shared list objects
that the broker fills (opens) or empties (closes), so opening and closing costs the per-exam
loop nothing. Every `cadence_hours` the broker compares each trust's backlog in reading hours
with its planned session hours over `lookahead_hours`, pairs the largest deficits with the
largest spare capacities and grants each pair a quota of exams (hours / mean reading hours of
the donor's waiting work). A transferred exam costs `transfer_overhead_minutes` more to read,
is charged at the inter-trust tariff, and uses up one exam of its pair's quota; a used-up quota
closes the pair until the next rebalancing. Eligibility holds by construction: borrowed queues
are only those the reporter may read at the donor trust. A trust not yet live on the shared
system (`go_live`) neither gives nor receives work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.policies.base import own_and_agreement_queues, queues_by_priority, readable_queues
from sim.policies.home import go_live_hours
from sim.scenario import Broker

if TYPE_CHECKING:
    from sim.model import Engine


class BrokeredRouting:
    name = "brokered"

    def __init__(self) -> None:
        # (donor trust, receiving trust, reporter's profile at the donor) -> queue ids when open
        self.borrowable: dict[tuple[int, int, int], list[int]] = {}
        self.shared: dict[tuple[int, int, int], list[int]] = {}  # the same keys -> the live (open or empty) lists
        self.holders: dict[tuple[int, int, int], list[int]] = {}  # the same keys -> reporters reading that list
        self._n_own: dict[int, int] = {}

    def candidate_queues(self, engine: "Engine", reporter_index: int) -> list[list[int]]:
        reporter = engine.reporters[reporter_index]
        home = reporter.home_trust
        groups = queues_by_priority(engine, own_and_agreement_queues(engine, reporter_index))
        self._n_own[reporter_index] = len(groups)
        for donor in sorted(reporter.credentialed_trusts - {home}):
            profile = engine.worklists.reporter_profile[reporter_index][donor]
            key = (donor, home, profile)
            if key not in self.shared:
                self.borrowable[key] = [q for group in queues_by_priority(
                    engine, readable_queues(engine, reporter_index, {donor})) for q in group]
                self.shared[key] = []
                self.holders[key] = []
            groups.append(self.shared[key])
            self.holders[key].append(reporter_index)
        return groups

    def n_static_groups(self, engine: "Engine", reporter_index: int) -> int:
        """The reporter's own (and agreement) groups come first and never change; the rest are borrowed lists."""
        return self._n_own[reporter_index]

    def open(self, donor: int, receiver: int) -> list[int]:
        """Open the donor's work to the receiver's reporters; returns those whose lists were closed (to wake)."""
        woken: list[int] = []
        for (d, r, _), live in self.shared.items():
            if d == donor and r == receiver and not live:
                live.extend(self.borrowable[(d, r, _)])
                woken += self.holders[(d, r, _)]
        return woken

    def close(self, donor: int, receiver: int) -> None:
        for (d, r, _), live in self.shared.items():
            if d == donor and r == receiver:
                live.clear()


class TheBroker:
    """The brokerage intervention; works with BrokeredRouting (see the module docstring)."""

    name = "broker"

    def __init__(self, config: Broker):
        self.config = config
        self.quota: dict[tuple[int, int], int] = {}
        self.moves: list[tuple[float, int, int, int]] = []  # (time, donor, receiver, exams granted)

    def start(self, engine: "Engine") -> None:
        routing = engine.routing
        if not isinstance(routing, BrokeredRouting):
            raise TypeError("the broker needs policy.kind = 'brokered'")
        for index in range(len(engine.reporters)):  # build every reporter's groups before the broker opens any
            engine.candidate_queues(index)
        self.routing = routing
        engine.on_cross_read = self._cross_read
        engine.env.process(self._run(engine))

    def _cross_read(self, donor: int, receiver: int) -> None:
        if (donor, receiver) not in self.quota:  # agreement work, not a transfer the broker granted
            return
        left = self.quota[(donor, receiver)] - 1
        self.quota[(donor, receiver)] = left
        if left <= 0:
            self.routing.close(donor, receiver)

    def _run(self, engine: "Engine"):
        cfg = self.config
        n_trusts = len(engine.scenario.trusts)
        capacity = _PlannedCapacity(engine, n_trusts)
        backlog = _Backlog(engine, n_trusts)
        receivers_of = {d: {r for (dd, r, _) in self.routing.shared if dd == d} for d in range(n_trusts)}
        live_from = go_live_hours(engine.scenario)
        while True:
            now = engine.env.now
            live = live_from <= now
            hours, exams = backlog.at(now)
            balance = hours - capacity.between(now, now + cfg.lookahead_hours)  # > 0: deficit
            for pair in list(self.quota):
                self.routing.close(*pair)
            self.quota.clear()
            spare = {t: -balance[t] for t in range(n_trusts) if -balance[t] >= cfg.min_transfer_hours and live[t]}
            for donor in np.argsort(-balance):
                donor = int(donor)
                if not live[donor]:  # not yet on the shared system: it posts nothing
                    continue
                deficit = balance[donor]
                if deficit < cfg.min_transfer_hours or exams[donor] == 0:
                    break
                per_exam = hours[donor] / exams[donor]
                for receiver in sorted(spare, key=spare.get, reverse=True):
                    if receiver not in receivers_of[donor] or deficit < cfg.min_transfer_hours:
                        continue
                    moved = min(deficit, spare[receiver])
                    n = int(moved / per_exam)
                    if n < 1:
                        continue
                    self.quota[(donor, receiver)] = n
                    for index in self.routing.open(donor, receiver):
                        engine.wake(index)
                    self.moves.append((now, donor, receiver, n))
                    spare[receiver] -= moved
                    deficit -= moved
            yield engine.env.timeout(cfg.cadence_hours)


class _Backlog:
    """Per trust: reading hours (at speed 1) and count of exams waiting, at non-decreasing times.

    Each queue keeps an "arrived" pointer that only moves forward as time does, so a whole run's
    rebalancings cost one pass over the exams rather than a bisection per queue per cadence.
    """

    def __init__(self, engine: "Engine", n_trusts: int):
        self.wl = engine.worklists
        self.n_trusts = n_trusts
        self.arrived = list(self.wl.ptr)

    def at(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        wl, arrived = self.wl, self.arrived
        times, ptr, trust_of = wl.times, wl.ptr, wl.q_trust
        hours = np.zeros(self.n_trusts)
        exams = np.zeros(self.n_trusts, dtype=int)
        for q in range(wl.n_queues):
            a = arrived[q]
            while times[a] <= now:  # the +inf sentinel stops it
                a += 1
            arrived[q] = a
            start = ptr[q]
            if a > start:
                exams[trust_of[q]] += a - start
                hours[trust_of[q]] += wl.work_between(start, a)
        return hours, exams


class _PlannedCapacity:
    """Session hours each trust's reporters have planned in a window (from their timetables)."""

    def __init__(self, engine: "Engine", n_trusts: int):
        self.times, self.cumulative = [], []
        for t in range(n_trusts):
            starts = [s for r in engine.reporters if r.home_trust == t for s, _ in r.intervals]
            ends = [e for r in engine.reporters if r.home_trust == t for _, e in r.intervals]
            times = np.array(starts + ends, dtype=float)
            steps = np.array([1] * len(starts) + [-1] * len(ends), dtype=float)
            order = np.argsort(times, kind="stable")
            times, on_duty = times[order], np.cumsum(steps[order])
            hours = np.concatenate([[0.0], np.cumsum(on_duty[:-1] * np.diff(times))]) if len(times) else np.zeros(0)
            self.times.append(times)
            self.cumulative.append(hours)

    def between(self, start: float, end: float) -> np.ndarray:
        out = np.zeros(len(self.times))
        for t, (times, hours) in enumerate(zip(self.times, self.cumulative)):
            if len(times):
                out[t] = np.interp(end, times, hours) - np.interp(start, times, hours)
        return out
