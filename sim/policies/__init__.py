"""Policies: routing (which queues a reporter reads) and interventions (processes acting on worklists)."""

from __future__ import annotations

from sim.policies.base import Intervention, Routing
from sim.policies.local import LocalRouting
from sim.policies.outsourcing import ThresholdOutsourcing
from sim.scenario import Scenario

ROUTINGS: dict[str, type] = {"local": LocalRouting}


def routing_for(scn: Scenario) -> Routing:
    return ROUTINGS[scn.policy.kind]()


def interventions_for(scn: Scenario) -> list[Intervention]:
    interventions: list[Intervention] = []
    if scn.outsourcing is not None and scn.outsourcing.enabled:
        interventions.append(ThresholdOutsourcing(scn.outsourcing))
    return interventions


__all__ = ["Intervention", "Routing", "LocalRouting", "ThresholdOutsourcing", "routing_for", "interventions_for"]
