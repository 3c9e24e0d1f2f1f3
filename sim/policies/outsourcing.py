"""Threshold outsourcing: old exams, or a trust's excess backlog, go to a private company.

Every `check_every_hours` the company takes, per trust and oldest first, exams of the allowed
urgencies that have waited longer than `age_threshold_hours`, then (if set) enough of the oldest
to bring that trust's waiting exams of those urgencies down to `backlog_threshold_exams`, never
more than the trust's daily cap (`daily_cap_by_trust`, else `daily_cap`) per calendar day. Sent exams come back reported after a draw
from `turnaround_hours`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np

from sim.scenario import Outsourcing
from sim.worklist import ROUTE_CODE

if TYPE_CHECKING:
    from sim.model import Engine


class ThresholdOutsourcing:
    name = "outsourcing"

    def __init__(self, config: Outsourcing):
        self.config = config

    def start(self, engine: "Engine") -> None:
        engine.env.process(self._run(engine))

    def _turnarounds(self, engine: "Engine", trust: int) -> Iterator[float]:
        """One stream per trust, so one trust's outsourcing never shifts another's draws."""
        rng = engine.stream("outsourcing-turnaround", engine.scenario.trust_codes[trust])
        while True:
            yield from self.config.turnaround_hours.sample(rng, 1024).tolist()

    def _run(self, engine: "Engine"):
        cfg, env, worklists = self.config, engine.env, engine.worklists
        allowed = {i for i, u in enumerate(engine.scenario.urgencies) if u.code in cfg.urgencies}
        queues_of_trust = [[q for q in range(worklists.n_queues)
                            if worklists.q_trust[q] == t and worklists.q_urgency[q] in allowed]
                           for t in range(len(engine.scenario.trusts))]
        turnaround = [self._turnarounds(engine, t) for t in range(len(queues_of_trust))]
        # each trust's queues share the engine's lower bound on their earliest head (Engine.group_floor, kept
        # valid when a head moves back): an hourly check skips a trust with nothing old enough to send
        # without reading its queue heads (most checks, with a broker or in a quiet year)
        floor, floor_of_trust = engine.group_floor, [engine.group_ids([queues], None)[0] if queues else -1
                                                      for queues in queues_of_trust]
        route = ROUTE_CODE["outsourced"]
        head = worklists.head
        sent_today = np.zeros(len(queues_of_trust), dtype=int)
        caps = [cfg.daily_cap_by_trust.get(code, cfg.daily_cap) for code in engine.scenario.trust_codes]
        today = None
        while True:
            now = env.now
            if today != now // 24:
                today = now // 24
                sent_today[:] = 0
            for trust, queues in enumerate(queues_of_trust):
                if not queues:
                    continue
                room = caps[trust] - sent_today[trust]
                to_send = 0
                if cfg.backlog_threshold_exams is not None:
                    to_send = sum(worklists.waiting(q, now) for q in queues) - cfg.backlog_threshold_exams
                cutoff = now - cfg.age_threshold_hours if cfg.age_threshold_hours is not None else -np.inf
                if room > 0 and floor[floor_of_trust[trust]] <= (now if to_send > 0 else cutoff):
                    heads = [head[q] for q in queues]
                    while room > 0:
                        # exams acquired by `limit` may go: old ones always, any while the backlog is over its level
                        limit = now if to_send > 0 else cutoff
                        arrived = min(heads)
                        if arrived > limit:
                            break
                        k = heads.index(arrived)
                        worklists.send_out(queues[k], now, next(turnaround[trust]), route)
                        heads[k] = head[queues[k]]  # only the sent queue's head moved
                        room -= 1
                        to_send -= 1
                    floor[floor_of_trust[trust]] = min(heads)
                sent_today[trust] = caps[trust] - room
            yield env.timeout(cfg.check_every_hours)
