"""Home reporting (insourcing): extra non-core sessions when a trust's backlog is high.

At the start of each weekly non-core slot (e.g. weekday evenings), every trust whose waiting
exams exceed `backlog_threshold_exams` offers the slot to its reporters with a home
workstation (or to the named `participants`, as in a funded pilot) who are not on leave that
week. Each takes it with the uptake probability (from the
uptake curve at the scenario's tariff multiplier). Uptake draws are fixed per reporter and slot
in advance from the reporter's own stream, so two scenarios offering the same slot see the same
answer (common random numbers). A home session reads like a core one, at the home reading-time
factor, and its exams take the home route (paid at the insourcing tariff). VPN ("home") and
PACS ("all") outages are cut out of home sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.scenario import HOURS_PER_WEEK, HomeReporting
from sim.workforce import merge, subtract
from sim.worklist import ROUTE_CODE

if TYPE_CHECKING:
    from sim.model import Engine


def offer_slots(config: HomeReporting, horizon_hours: float) -> list[tuple[float, float]]:
    """Absolute (start, end) hours of every offered slot over the horizon."""
    from sim.scenario import DAYS

    week = merge([(DAYS.index(day) * 24 + s.start_hour, DAYS.index(day) * 24 + s.end_hour)
                  for s in config.sessions for day in s.days])
    n_weeks = int(np.ceil(horizon_hours / HOURS_PER_WEEK))
    return [(w * HOURS_PER_WEEK + s, min(w * HOURS_PER_WEEK + e, horizon_hours))
            for w in range(n_weeks) for s, e in week if w * HOURS_PER_WEEK + s < horizon_hours]


class HomeSessions:
    name = "home_reporting"

    def __init__(self, config: HomeReporting):
        self.config = config
        self.sessions: list[tuple[int, float, float]] = []  # (reporter index, start, end) taken

    def _takes_part(self, reporter) -> bool:
        """Named participants (group or reporter id) when the scenario lists any, else workstation holders."""
        named = self.config.participants
        if named:
            return reporter.group in named or reporter.reporter_id in named
        return reporter.home_workstation

    def start(self, engine: "Engine") -> None:
        engine.env.process(self._run(engine))

    def _run(self, engine: "Engine"):
        cfg, env, wl = self.config, engine.env, engine.worklists
        slots = offer_slots(cfg, engine.scenario.horizon_hours)
        uptake = cfg.uptake()
        n_trusts = len(engine.scenario.trusts)
        takers = [[i for i, r in enumerate(engine.reporters) if self._takes_part(r) and r.home_trust == t]
                  for t in range(n_trusts)]
        draws = {i: engine.stream("home-uptake", engine.reporters[i].reporter_id).random(len(slots))
                 for group in takers for i in group}
        queues_of = [[q for q in range(wl.n_queues) if wl.q_trust[q] == t] for t in range(n_trusts)]
        home, home_outages = ROUTE_CODE["home"], engine.outages["home"]
        for k, (start, end) in enumerate(slots):
            if env.now < start:
                yield env.timeout(start - env.now)
            week = int(start // HOURS_PER_WEEK)
            for t in range(n_trusts):
                if not takers[t] or sum(wl.waiting(q, start) for q in queues_of[t]) <= cfg.backlog_threshold_exams:
                    continue
                for i in takers[t]:
                    if week in engine.reporters[i].leave_weeks or draws[i][k] >= uptake:
                        continue
                    # one reporter, one exam at a time: after the core read in hand, outside core sessions
                    begin = max(start, engine.busy_until[i])
                    intervals = subtract(subtract(((begin, end),), engine.reporters[i].intervals), home_outages)
                    engine.start_session(i, intervals, home, home, cfg.reading_time_factor)
                    self.sessions.append((i, start, end))
