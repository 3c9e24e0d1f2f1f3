"""Money per exam: what its route cost the owning trust, and what outsourcing it would have cost.

What each report costs the consortium (all £):
    core        reading hours x the reporter's salaried hourly cost
    brokered    the same salaried time, of a reporter from another trust
    home        the insourcing tariff (modality x band) x home_reporting.tariff_multiplier
    outsourced  the company's price list (modality x band x urgency factor)
Inter-trust charges (finance.inter_trust_charge per brokered exam) are transfers inside the
consortium: the owning trust pays, the reading trust receives, and they net to zero, so they are
reported per trust (inter_trust_paid / inter_trust_received) and never added to the cost. The
counterfactual prices every reported exam at the outsourcing price list, so
`counterfactual - cost` is the saving against sending everything out. A scenario without an
inter-trust tariff charges nothing for agreement work.
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
    """£ each exam's report costs the consortium by its route (0 while unreported)."""
    cost = np.zeros(route.shape)
    salaried = np.flatnonzero((route == ROUTE_CODE["core"]) | (route == ROUTE_CODE["brokered"]))
    cost[salaried] = reading_hours[salaried] * hourly_cost[reader[salaried]]
    home = route == ROUTE_CODE["home"]
    cost[home] = tariff(scn, "insourcing_tariff", modality[home], band[home])
    outsourced = route == ROUTE_CODE["outsourced"]
    cost[outsourced] = price[outsourced]
    return cost


def inter_trust_charge(scn: Scenario, route: np.ndarray, modality: np.ndarray, band: np.ndarray) -> np.ndarray:
    """£ the owning trust pays the reading trust per brokered exam (0 for every other route)."""
    charge = np.zeros(route.shape)
    brokered = route == ROUTE_CODE["brokered"]
    charge[brokered] = tariff(scn, "inter_trust_charge", modality[brokered], band[brokered])
    return charge
