"""Expected reading demand against reporting capacity, per trust and skill, from a scenario alone.

A planner's first question about a scenario, answered without simulating: in a year, how many
reading hours does each trust's work need, and how many session hours do its reporters offer?
Demand leaves out work the night teleradiology contract takes on acquisition. Work is split by
skill: "radiographer" work is what some reporting radiographer at the trust may read; the rest
is consultant-only. Capacity counts posts x (1 - vacancy rate) x weekly session hours x the
share of weeks at work (leave; bank holidays for groups that stop on them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.demand import subspecialty_mix
from sim.scenario import HOURS_PER_WEEK, Scenario
from sim.workforce import weekly_intervals

WEEKS_PER_YEAR = 52.0


def _mean_minutes(scn: Scenario, mi: int) -> np.ndarray:
    """Mean reading minutes per band (NaN for bands without a distribution)."""
    m = scn.modalities[mi]
    return np.array([m.reading_minutes[str(b + 1)].mean_value if str(b + 1) in m.reading_minutes else np.nan
                     for b in range(len(m.band_mix))])


def _share_outside_night_contract(scn: Scenario, urgency: str, modality: str) -> float:
    """Share of a stream's weekly arrivals that the night contract does NOT take on acquisition."""
    from sim.policies.teleradiology import enabled, in_windows

    if not enabled(scn) or urgency not in scn.teleradiology.urgencies or modality not in scn.teleradiology.modalities:
        return 1.0
    profile_name = next(u.profile for u in scn.urgencies if u.code == urgency)
    weights = np.asarray(scn.demand.profiles[profile_name], dtype=float)
    covered = in_windows(scn.teleradiology, np.arange(HOURS_PER_WEEK) + 0.5)
    return float(weights[~covered].sum() / weights.sum())


def demand_capacity_table(scn: Scenario) -> pd.DataFrame:
    """One row per trust (and "ALL"): reading hours a year needed and offered, overall and by skill.

    Columns: demand_h, capacity_h, ratio (demand / capacity), consultant_only_demand_h,
    consultant_capacity_h, consultant_ratio. Demand is at the start-of-horizon volumes (no growth).
    """
    population = np.array([t.population for t in scn.trusts], dtype=float)
    share = population / population.sum() * np.array([t.demand_multiplier for t in scn.trusts])
    rows = []
    for ti, trust in enumerate(scn.trusts):
        radiographers = [g for g in scn.staff if g.trust == trust.code and g.role == "radiographer"]
        demand = consultant_only = 0.0
        for mi, modality in enumerate(scn.modalities):
            minutes = _mean_minutes(scn, mi)
            subs = subspecialty_mix(scn, ti, mi)
            volume = modality.annual_volume * share[ti] * trust.modality_multiplier.get(modality.code, 1.0)
            for code, mix in modality.urgency_mix.items():
                n = volume * mix * _share_outside_night_contract(scn, code, modality.code)
                for b, band_share in enumerate(modality.band_mix):
                    for sub, sub_share in subs.items():
                        hours = n * band_share * sub_share * np.nan_to_num(minutes[b]) / 60
                        demand += hours
                        if not any(modality.code in g.modalities and b < g.max_band and sub in g.subspecialties
                                   for g in radiographers):
                            consultant_only += hours
        capacity = {"consultant": 0.0, "radiographer": 0.0}
        for g in scn.staff:
            if g.trust != trust.code:
                continue
            vacancy = scn.vacancy_rate(g)
            weekly = sum(e - s for s, e in weekly_intervals(g))
            holiday_weeks = 0.0 if g.works_bank_holidays else _bank_holidays_per_year(scn) / 5
            weeks = WEEKS_PER_YEAR - g.leave_weeks_per_year - holiday_weeks
            capacity[g.role] += g.count * (1 - vacancy) * weekly * max(weeks, 0.0)
        rows.append((trust.code, demand, sum(capacity.values()), consultant_only, capacity["consultant"]))
    table = pd.DataFrame(rows, columns=["trust", "demand_h", "capacity_h", "consultant_only_demand_h",
                                        "consultant_capacity_h"])
    total = table.drop(columns="trust").sum()
    table = pd.concat([table, pd.DataFrame([{"trust": "ALL", **total.to_dict()}])], ignore_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        table.insert(3, "ratio", table.demand_h / table.capacity_h.where(table.capacity_h > 0))
        table["consultant_ratio"] = table.consultant_only_demand_h / table.consultant_capacity_h.where(
            table.consultant_capacity_h > 0)
    return table


def _bank_holidays_per_year(scn: Scenario) -> float:
    """Weekday bank holidays inside the horizon, per 52 weeks (each removes a weekday's sessions)."""
    weekday = (scn.start_date.weekday() + np.array(scn.bank_holiday_days, dtype=int)) % 7 < 5
    inside = sum(1 for d, w in zip(scn.bank_holiday_days, weekday) if w and 0 <= d * 24 < scn.horizon_hours)
    return inside * WEEKS_PER_YEAR / scn.horizon_weeks


def table_text(table: pd.DataFrame) -> str:
    """The table as fixed-width text (the form in the params header)."""
    lines = ["trust   demand h/yr  capacity h/yr  demand/capacity | consultant-only  consultant capacity  ratio"]
    for row in table.itertuples():
        lines.append(f"{row.trust:<6} {row.demand_h:>12,.0f} {row.capacity_h:>14,.0f} {row.ratio:>16.2f} |"
                     f" {row.consultant_only_demand_h:>15,.0f} {row.consultant_capacity_h:>20,.0f}"
                     f" {row.consultant_ratio:>6.2f}")
    return "\n".join(lines)
