"""Local routing: reporters read their own trust's worklists (EMRAD before brokerage), plus the
work of any named cross-trust agreement they belong to (e.g. paediatrics from another trust)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.policies.base import own_and_agreement_queues, queues_by_priority

if TYPE_CHECKING:
    from sim.model import Engine


class LocalRouting:
    """Own trust and agreement work, strictly by urgency priority then age."""

    name = "local"

    def candidate_queues(self, engine: "Engine", reporter_index: int) -> list[list[int]]:
        return queues_by_priority(engine, own_and_agreement_queues(engine, reporter_index))
