"""Local routing: reporters read their own trust's worklists only (EMRAD before brokerage)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.policies.base import queues_by_priority

if TYPE_CHECKING:
    from sim.model import Engine


class LocalRouting:
    """Own trust, eligible skill classes, strictly by urgency priority then age."""

    name = "local"

    def candidate_queues(self, engine: "Engine", reporter_index: int) -> list[list[int]]:
        worklists = engine.worklists
        home = engine.reporters[reporter_index].home_trust
        mine = [q for q in range(worklists.n_queues)
                if worklists.q_trust[q] == home and worklists.readable_by(reporter_index, q)]
        return queues_by_priority(engine, mine)
