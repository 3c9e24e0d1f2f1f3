"""Pooled routing: one consortium worklist. Any reporter reads any trust it is credentialed for
(and agreement work), either own trust first or strictly by urgency then age across trusts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.policies.base import queues_by_priority, readable_queues

if TYPE_CHECKING:
    from sim.model import Engine


class PooledRouting:
    name = "pooled"

    def __init__(self, order: str = "own_trust_first"):
        if order not in ("own_trust_first", "urgency_then_age"):
            raise ValueError(f"unknown pooled order {order!r}")
        self.order = order

    def candidate_queues(self, engine: "Engine", reporter_index: int) -> list[list[int]]:
        reporter = engine.reporters[reporter_index]
        trusts = set(reporter.credentialed_trusts) | {t for t, _ in reporter.agreements}
        queues = readable_queues(engine, reporter_index, trusts)
        if self.order == "urgency_then_age":
            return queues_by_priority(engine, queues)
        own = [q for q in queues if engine.worklists.q_trust[q] == reporter.home_trust]
        others = [q for q in queues if engine.worklists.q_trust[q] != reporter.home_trust]
        return queues_by_priority(engine, own) + queues_by_priority(engine, others)
