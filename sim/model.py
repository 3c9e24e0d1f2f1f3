"""One replication of the SimPy model: reporters are the processes, exams are data.

The per-exam hot loop is in :func:`Engine._reporter`. It costs one SimPy event per exam read
and at most one wake-up per arrival (only when an eligible reporter is idle); everything else
(routing, statistics) is done once before or after the run with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from sim.demand import ExamTable, generate_exams
from sim.policies import interventions_for, routing_for
from sim.scenario import Scenario
from sim.streams import stream
from sim.worklist import ROUTE_CODE, Worklists
from sim.workforce import Reporter, build_workforce


@dataclass(frozen=True)
class RawRun:
    """What one replication produced, before any statistics.

    Per exam (ExamTable order): left_at (hours; reading started or sent out, NaN if still waiting),
    done_at (hours; report available, may lie past the horizon), reader (reporter index or -1),
    route (code into sim.worklist.ROUTES).
    """

    scenario: Scenario
    seed: int
    replication: int
    exams: ExamTable
    reporters: list[Reporter]
    left_at: np.ndarray
    done_at: np.ndarray
    reader: np.ndarray
    route: np.ndarray
    events: int  # SimPy events processed, for the benchmark


class Engine:
    """Holds the state of one replication while it runs; policies act on it through its attributes."""

    def __init__(self, scn: Scenario, seed: int, replication: int,
                 exams: ExamTable | None = None, reporters: list[Reporter] | None = None):
        self.scenario = scn
        self.seed = seed
        self.replication = replication
        self.exams = exams if exams is not None else generate_exams(scn, seed, replication)
        self.reporters = reporters if reporters is not None else build_workforce(scn, seed, replication)
        self.worklists = Worklists(self.exams, self.reporters, len(scn.urgencies))
        self.env = simpy.Environment()
        self.routing = routing_for(scn)
        self.interventions = interventions_for(scn)

    def stream(self, *name: object) -> np.random.Generator:
        return stream(self.seed, self.replication, *name)

    def run(self) -> RawRun:
        for index, reporter in enumerate(self.reporters):
            groups = self.routing.candidate_queues(self, index)
            if groups and reporter.intervals:
                self.env.process(self._reporter(index, groups, reporter.intervals, 1.0 / reporter.speed))
        for intervention in self.interventions:
            intervention.start(self)
        self.env.run(until=self.scenario.horizon_hours)
        return RawRun(self.scenario, self.seed, self.replication, self.exams, self.reporters,
                      events=self.events_scheduled(), **self.worklists.outcome_arrays())

    def events_scheduled(self) -> int:
        """SimPy events scheduled so far (read from SimPy's event-id counter, which is not public API)."""
        counter = getattr(self.env, "_eid", None)
        return next(counter) if counter is not None else -1

    def _reporter(self, index: int, groups: list[list[int]], intervals, inv_speed: float):
        """Walk the on-duty intervals; in each, read exam after exam until the interval ends.

        The next exam is the oldest ready one in the first preference group that has one. With
        none ready, the reporter commits to the earliest not-yet-assigned arrival it may read
        (if it comes before the interval ends) and starts it on arrival. Every earlier arrival in
        its queues is already assigned, so on arrival it would pick exactly that exam: committing
        early changes nothing but saves the wake-up event. Among idle reporters, the one idle
        longest gets the next arrival. One SimPy event per exam read; the exam in hand is always
        finished, even past the interval's end.
        """
        env = self.env
        wl = self.worklists
        times, work, ptr = wl.times, wl.work, wl.ptr
        left_at, done_at, reader, route = wl.left_at, wl.done_at, wl.reader, wl.route
        core = ROUTE_CODE["core"]
        timeout = env.timeout
        for start, end in intervals:
            if env.now < start:
                yield timeout(start - env.now)
            while True:
                now = env.now
                if now >= end:
                    break
                best = -1
                first_arrival = end
                first_queue = -1
                for group in groups:
                    oldest = now
                    for q in group:
                        t = times[ptr[q]]
                        if t <= oldest:
                            oldest = t
                            best = q
                        elif t < first_arrival:
                            first_arrival = t
                            first_queue = q
                    if best >= 0:
                        break
                if best >= 0:
                    begin = now
                elif first_queue >= 0:
                    best = first_queue
                    begin = first_arrival
                else:
                    yield timeout(end - now)
                    break
                p = ptr[best]
                ptr[best] = p + 1
                done = begin + work[p] * inv_speed
                left_at[p] = begin
                done_at[p] = done
                reader[p] = index
                route[p] = core
                yield timeout(done - now)


def simulate(scn: Scenario, seed: int, replication: int) -> RawRun:
    """Run one replication and return its raw per-exam outcome."""
    return Engine(scn, seed, replication).run()
