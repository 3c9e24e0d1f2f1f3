"""Money per exam: what its route cost, and what it would have cost had it been outsourced.

Core reads cost the reporter's salaried hourly cost x the hours spent reading; outsourced exams
cost the price list (modality x band, x an urgency factor). The counterfactual prices every
exam at the outsourcing price list, so `counterfactual - actual` is the saving against sending
everything out. All amounts in £.
"""

from __future__ import annotations

import numpy as np

from sim.scenario import Scenario


def outsourcing_price(scn: Scenario, modality: np.ndarray, band: np.ndarray, urgency: np.ndarray) -> np.ndarray:
    """£ per exam at the outsourcing price list (NaN where the scenario has no price list)."""
    out = scn.outsourcing
    if out is None:
        return np.full(modality.shape, np.nan)
    n_bands = scn.n_bands
    table = np.full((len(scn.modalities), n_bands), np.nan)
    for i, m in enumerate(scn.modalities):
        prices = out.price.get(m.code, [])
        table[i, : min(len(prices), n_bands)] = prices[:n_bands]
    factor = np.array([out.urgency_price_factor.get(u.code, 1.0) for u in scn.urgencies])
    return table[modality, band] * factor[urgency]


def route_cost(reading_hours: np.ndarray, reader: np.ndarray, hourly_cost: np.ndarray,
               is_core: np.ndarray, is_outsourced: np.ndarray, price: np.ndarray) -> np.ndarray:
    """£ actually spent per exam: salaried reading time for core reads, the price for outsourced ones."""
    cost = np.zeros(reading_hours.shape)
    core_rows = np.flatnonzero(is_core)
    cost[core_rows] = reading_hours[core_rows] * hourly_cost[reader[core_rows]]
    cost[is_outsourced] = price[is_outsourced]
    return cost
