"""Local routing: reporters read their own trust's worklists (EMRAD before brokerage), plus the
work of any named cross-trust agreement they belong to (e.g. paediatrics from another trust)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.policies.base import queues_by_priority, readable_queues

if TYPE_CHECKING:
    from sim.model import Engine


class LocalRouting:
    """Own trust and agreement work, strictly by urgency priority then age."""

    name = "local"

    def candidate_queues(self, engine: "Engine", reporter_index: int) -> list[list[int]]:
        reporter = engine.reporters[reporter_index]
        trusts = {reporter.home_trust, *(t for t, _ in reporter.agreements)}
        return queues_by_priority(engine, readable_queues(engine, reporter_index, trusts))
