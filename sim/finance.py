"""Money as a finance director reads it: the cost of capacity, marginal spend per exam, transfers, income.

Cost of capacity: salaried reporters are paid by the session hour, read or idle (session hours
x hourly cost, booked to the reporter's home trust; see sim.metrics). A core or brokered read
adds nothing to it: its marginal cost is £0 (`cost_core` / `cost_brokered` show the share of
the capacity cost spent reading, for information).
Marginal spend per exam (all £), booked to the owning trust:
    home           the insourcing tariff (modality x band) x home_reporting.tariff_multiplier
    outsourced     the company's price list (modality x band x urgency factor)
    teleradiology  the night contract's price list (modality x band)
Inter-trust charges (finance.inter_trust_charge per brokered exam) are transfers inside the
consortium: the owning trust pays, the reading trust receives (its reader's salary stays in its
own cost of capacity), and they net to zero. Commissioner income is booked on every reported exam.
The all-outsourced counterfactual prices only work a company would take (exams with a price),
at the night contract's price where it covers the urgency and modality, else at the routine
price list (with its urgency factors).
"""

from __future__ import annotations

import numpy as np

from sim.scenario import Scenario
from sim.worklist import ROUTE_CODE


def price_kinds(scn: Scenario, ex) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per exam, the index of its modality x band x urgency combination; and each combination's codes.

    Every price depends on these three only, so it is computed once per combination (a few hundred)
    and expanded with one take, instead of a 2-D fancy index over every exam.
    """
    n_b, n_u = scn.n_bands, len(scn.urgencies)
    kind = (ex.modality.astype(np.int32) * n_b + ex.band) * n_u + ex.urgency
    if len(scn.modalities) * n_b * n_u < 2**15:  # kept per exam in sim.metrics.Outcome: half the memory
        kind = kind.astype(np.int16)
    return kind, kind_codes(scn)


def kind_codes(scn: Scenario) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Modality, band and urgency code of each modality x band x urgency combination (see price_kinds)."""
    n_b, n_u = scn.n_bands, len(scn.urgencies)
    codes = np.arange(len(scn.modalities) * n_b * n_u)
    return codes // n_u // n_b, codes // n_u % n_b, codes % n_u


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


def teleradiology_price(scn: Scenario, modality: np.ndarray, band: np.ndarray, urgency: np.ndarray) -> np.ndarray:
    """£ per exam at the night contract's prices, NaN where it does not cover the exam (or there is none)."""
    tele = scn.teleradiology
    if tele is None:
        return np.full(modality.shape, np.nan)
    covered_urgency = np.array([u.code in tele.urgencies for u in scn.urgencies])
    prices = price_table(scn, {m: p for m, p in tele.price.items() if m in tele.modalities})[modality, band]
    return np.where(covered_urgency[urgency], prices, np.nan)


def counterfactual_price(scn: Scenario, modality: np.ndarray, band: np.ndarray, urgency: np.ndarray) -> np.ndarray:
    """£ per exam had a company reported it: night-contract price for the work it covers, else routine list."""
    night = teleradiology_price(scn, modality, band, urgency)
    return np.where(np.isnan(night), outsourcing_price(scn, modality, band, urgency), night)


def route_cost(scn: Scenario, route: np.ndarray, reading_hours: np.ndarray, reader: np.ndarray,
               hourly_cost: np.ndarray, kind: np.ndarray, price_by_kind: np.ndarray,
               night_price_by_kind: np.ndarray) -> np.ndarray:
    """£ per exam by route: marginal spend for home, outsourced and teleradiology; for core and
    brokered reads the salaried reading time (part of the cost of capacity, not extra spend).
    Prices come per modality x band x urgency combination (`kind`, price_kinds)."""
    cost = np.zeros(route.shape)
    salaried = (route == ROUTE_CODE["core"]) | (route == ROUTE_CODE["brokered"])
    # masked, in place: no index arrays the length of the year's exams
    np.multiply(reading_hours, hourly_cost[reader], out=cost, where=salaried)
    del salaried
    modality, band, _ = kind_codes(scn)
    home = route == ROUTE_CODE["home"]
    cost[home] = tariff(scn, "insourcing_tariff", modality, band)[kind[home]]
    outsourced = route == ROUTE_CODE["outsourced"]
    cost[outsourced] = price_by_kind[kind[outsourced]]
    night = route == ROUTE_CODE["teleradiology"]
    cost[night] = np.nan_to_num(night_price_by_kind[kind[night]])
    return cost


def inter_trust_charge(scn: Scenario, route: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """£ the owning trust pays the reading trust per brokered exam (0 for every other route)."""
    charge = np.zeros(route.shape)
    brokered = route == ROUTE_CODE["brokered"]
    modality, band, _ = kind_codes(scn)
    charge[brokered] = tariff(scn, "inter_trust_charge", modality, band)[kind[brokered]]
    return charge
