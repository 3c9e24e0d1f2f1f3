"""Policies: routing (which queues a reporter reads) and interventions (processes acting on worklists).

Each is a small module behind the protocols in sim.policies.base; a scenario composes one
routing with any interventions it switches on.
"""

from __future__ import annotations

from sim.policies.base import Intervention, Routing
from sim.policies.brokered import BrokeredRouting, TheBroker
from sim.policies.home import HomeSessions
from sim.policies.local import LocalRouting
from sim.policies.outsourcing import ThresholdOutsourcing
from sim.policies.pooled import PooledRouting
from sim.policies.teleradiology import NightTeleradiology
from sim.scenario import Scenario


def routing_for(scn: Scenario) -> Routing:
    if scn.policy.kind == "pooled":
        return PooledRouting(scn.policy.pooled_order)
    if scn.policy.kind == "brokered":
        return BrokeredRouting()
    return LocalRouting()


def interventions_for(scn: Scenario) -> list[Intervention]:
    """In order of precedence at equal times: the night contract takes its work, the broker rebalances,
    home sessions start, outsourcing last."""
    interventions: list[Intervention] = []
    if scn.teleradiology is not None and scn.teleradiology.enabled:
        interventions.append(NightTeleradiology(scn.teleradiology))
    if scn.policy.kind == "brokered":
        interventions.append(TheBroker(scn.policy.broker))
    if scn.home_reporting is not None and scn.home_reporting.enabled:
        interventions.append(HomeSessions(scn.home_reporting))
    if scn.outsourcing is not None and scn.outsourcing.enabled:
        interventions.append(ThresholdOutsourcing(scn.outsourcing))
    return interventions


__all__ = ["Intervention", "Routing", "LocalRouting", "PooledRouting", "BrokeredRouting", "TheBroker",
           "HomeSessions", "ThresholdOutsourcing", "NightTeleradiology", "routing_for", "interventions_for"]
