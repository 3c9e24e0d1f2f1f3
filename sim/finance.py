"""Money per exam: what its route cost the owning trust, and what outsourcing it would have cost.

Who pays what (all £):
    core        reading hours x the reporter's salaried hourly cost
    home        the insourcing tariff (modality x band) x home_reporting.tariff_multiplier
    brokered    the inter-trust charge, paid by the owning trust to the reading trust
    outsourced  the company's price list (modality x band x urgency factor)
The counterfactual prices every reported exam at the outsourcing price list, so
`counterfactual - actual` is the saving against sending everything out. Inter-trust charges are
transfers inside the consortium: the consortium's own cost of a brokered read is the charge
its owner pays (the reading trust is reimbursed its salaried time by that charge). A scenario
without an inter-trust tariff charges nothing for agreement work.
"""

from __future__ import annotations

import numpy as np

from sim.scenario import Scenario
from sim.worklist import ROUTE_CODE


def price_table(scn: Scenario, prices: dict[str, tuple[float, ...]]) -> np.ndarray:
    """(modality, band) array of £ per exam; NaN where the table has no price."""
    table = np.full((len(scn.modalities), scn.n_bands), np.nan)
    for i, m in enumerate(scn.modalities):
        row = prices.get(m.code, ())[: scn.n_bands]
        table[i, : len(row)] = row
    return table


def outsourcing_price(scn: Scenario, modality: np.ndarray, band: np.ndarray, urgency: np.ndarray) -> np.ndarray:
    """£ per exam at the outsourcing price list (NaN where the scenario has no price list)."""
    out = scn.outsourcing
    if out is None:
        return np.full(modality.shape, np.nan)
    factor = np.array([out.urgency_price_factor.get(u.code, 1.0) for u in scn.urgencies])
    return price_table(scn, out.price)[modality, band] * factor[urgency]


def tariff(scn: Scenario, name: str, modality: np.ndarray, band: np.ndarray) -> np.ndarray:
    """£ per exam from finance.<name> (insourcing_tariff, inter_trust_charge, commissioner_income); 0 if unset."""
    prices = getattr(scn.finance, name)
    if not prices:
        return np.zeros(modality.shape)
    multiplier = scn.home_reporting.tariff_multiplier if name == "insourcing_tariff" and scn.home_reporting else 1.0
    return np.nan_to_num(price_table(scn, prices)[modality, band]) * multiplier


def route_cost(scn: Scenario, route: np.ndarray, reading_hours: np.ndarray, reader: np.ndarray,
               hourly_cost: np.ndarray, modality: np.ndarray, band: np.ndarray, price: np.ndarray) -> np.ndarray:
    """£ the owning trust pays for each exam's report by its route (0 while unreported)."""
    cost = np.zeros(route.shape)
    core = np.flatnonzero(route == ROUTE_CODE["core"])
    cost[core] = reading_hours[core] * hourly_cost[reader[core]]
    home = route == ROUTE_CODE["home"]
    cost[home] = tariff(scn, "insourcing_tariff", modality[home], band[home])
    brokered = route == ROUTE_CODE["brokered"]
    cost[brokered] = tariff(scn, "inter_trust_charge", modality[brokered], band[brokered])
    outsourced = route == ROUTE_CODE["outsourced"]
    cost[outsourced] = price[outsourced]
    return cost
