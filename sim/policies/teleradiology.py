"""Out-of-hours teleradiology: the night contract most NHS trusts buy (~80% of out-of-hours scans
are outsourced nationally, facts §1d).

Work the contract covers (its urgencies x modalities) acquired inside a weekly cover window goes
to the company on acquisition: it never joins a worklist, so it costs no event (routed before the
run). At the start of each window the company also takes the covered work still waiting (the
evening's unread stroke and ED scans). Covered work sits in queues of its own (a queue tag), so the
window-start sweep takes whole queues. Reports come back after a draw from `turnaround_hours`,
from one stream per trust.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np

from sim.demand import ExamTable
from sim.scenario import HOURS_PER_WEEK, Scenario, Teleradiology
from sim.workforce import merge, weekly_spans
from sim.worklist import ROUTE_CODE

if TYPE_CHECKING:
    from sim.model import Engine


def weekly_windows(config: Teleradiology) -> list[tuple[float, float]]:
    """The cover windows as merged (start, end) hours within one week, Monday 00:00 = 0.

    A window ending at Sunday 24:00 and one starting Monday 00:00 are one night: the week wraps.
    """
    return merge(weekly_spans(config.windows))


def window_starts(config: Teleradiology, horizon_hours: float) -> list[float]:
    """Absolute start hours of the cover windows over the horizon (a window open at Monday 00:00
    that continues Sunday night's cover is not a new start, except at time 0)."""
    week = weekly_windows(config)
    wraps = bool(week) and week[0][0] == 0 and week[-1][1] == HOURS_PER_WEEK
    n_weeks = int(np.ceil(horizon_hours / HOURS_PER_WEEK))
    starts = [w * HOURS_PER_WEEK + s for w in range(n_weeks) for s, _ in week
              if not (wraps and s == 0 and w > 0)]
    return [t for t in starts if t < horizon_hours]


def covered_tag(scn: Scenario, exams: ExamTable) -> np.ndarray:
    """1 for exams of an urgency and modality the contract covers, else 0 (bit 0 of the queue tag)."""
    cfg = scn.teleradiology
    urgent = np.array([u.code in cfg.urgencies for u in scn.urgencies])
    modal = np.array([m.code in cfg.modalities for m in scn.modalities])
    return (urgent[exams.urgency] & modal[exams.modality]).astype(np.int8)


def in_windows(config: Teleradiology, times: np.ndarray) -> np.ndarray:
    """Whether each absolute time lies inside a cover window (negative times never do)."""
    week = weekly_windows(config)
    if not week:
        return np.zeros(times.shape, dtype=bool)
    starts = np.array([s for s, _ in week])
    ends = np.array([e for _, e in week])
    hour = np.mod(times, HOURS_PER_WEEK)
    k = np.searchsorted(starts, hour, side="right") - 1
    return (times >= 0) & (k >= 0) & (hour < ends[np.maximum(k, 0)])


def enabled(scn: Scenario) -> bool:
    return scn.teleradiology is not None and scn.teleradiology.enabled


class NightTeleradiology:
    """The contract as an intervention: routes covered arrivals up front, sweeps at each window start."""

    name = "teleradiology"

    def __init__(self, config: Teleradiology):
        self.config = config

    def _turnarounds(self, engine: "Engine", trust: int) -> Iterator[float]:
        rng = engine.stream("teleradiology-turnaround-sweep", engine.scenario.trust_codes[trust])
        while True:
            yield from self.config.turnaround_hours.sample(rng, 256).tolist()

    def queue_filter(self, engine: "Engine") -> np.ndarray:
        """The urgencies and modalities the contract covers: their queues are swept whole."""
        return covered_tag(engine.scenario, engine.exams) == 1

    def parked(self, engine: "Engine") -> np.ndarray:
        """Covered exams acquired inside a cover window go to the company on acquisition."""
        parked = self.queue_filter(engine)
        covered = np.flatnonzero(parked)  # the window test only where it matters (~15% of exams by default)
        parked[covered] = in_windows(self.config, engine.exams.arrival[covered])
        return parked

    def route_parked(self, engine: "Engine", direct: np.ndarray) -> None:
        """Record the outcome of the exams routed to the company on acquisition (`direct` mask)."""
        exams = engine.exams
        rows = np.flatnonzero(direct)
        done = np.empty(rows.size)
        for t, code in enumerate(engine.scenario.trust_codes):
            mine = exams.trust[rows] == t
            rng = engine.stream("teleradiology-turnaround", code)
            done[mine] = self.config.turnaround_hours.sample(rng, int(mine.sum()))
        arrival = exams.arrival[rows]
        engine.worklists.record(rows, arrival, arrival + done, ROUTE_CODE["teleradiology"])

    def start(self, engine: "Engine") -> None:
        engine.env.process(self._sweep(engine))

    def _sweep(self, engine: "Engine"):
        env, wl = engine.env, engine.worklists
        covered = [q for q in range(wl.n_queues) if wl.q_tag[q] & self.tag]
        turnaround = {t: self._turnarounds(engine, t) for t in set(wl.q_trust[q] for q in covered)}
        route = ROUTE_CODE["teleradiology"]
        head = wl.head
        for start in window_starts(self.config, engine.scenario.horizon_hours):
            if env.now < start:
                yield env.timeout(start - env.now)
            for q in covered:
                while head[q] <= start:
                    wl.send_out(q, start, next(turnaround[wl.q_trust[q]]), route)
