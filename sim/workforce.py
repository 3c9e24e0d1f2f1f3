"""The workforce made concrete: staff groups expanded into individual reporters.

Each reporter gets absolute on-duty intervals over the horizon (weekly timetable minus leave
weeks, back-to-back sessions merged so that a 24/7 rota never stops mid-exam) and an eligibility
rule. Leave weeks are drawn from the reporter's own named stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.scenario import DAYS, HOURS_PER_WEEK, Scenario, StaffGroup
from sim.streams import stream


@dataclass(frozen=True)
class Reporter:
    """One radiologist or reporting radiographer. Trust/modality/... are 0-based scenario indices."""

    reporter_id: str
    group: str
    role: str
    home_trust: int
    credentialed_trusts: frozenset[int]
    modalities: frozenset[int]
    max_band: int  # 1-based, as in the scenario
    subspecialties: frozenset[int]
    speed: float
    hourly_cost: float
    intervals: tuple[tuple[float, float], ...]  # on-duty (start, end) hours, sorted, disjoint

    def may_read(self, modality: int, band: int, subspecialty: int) -> bool:
        """Whether this reporter may report an exam of that kind (band 0-based, as in ExamTable)."""
        return modality in self.modalities and band < self.max_band and subspecialty in self.subspecialties

    @property
    def session_hours(self) -> float:
        return sum(end - start for start, end in self.intervals)


def weekly_intervals(group: StaffGroup) -> list[tuple[float, float]]:
    """The group's timetable as (start, end) hours within one week, Monday 00:00 = 0."""
    spans = []
    for session in group.sessions:
        for day in session.days:
            offset = DAYS.index(day) * 24
            spans.append((offset + session.start_hour, offset + session.end_hour))
    return sorted(spans)


def merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Union of intervals; touching intervals become one."""
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _on_duty(group: StaffGroup, n_weeks: int, leave: set[int], horizon: float) -> tuple[tuple[float, float], ...]:
    week = weekly_intervals(group)
    spans = [(w * HOURS_PER_WEEK + s, w * HOURS_PER_WEEK + e)
             for w in range(n_weeks) if w not in leave for s, e in week]
    return tuple((s, min(e, horizon)) for s, e in merge(spans) if s < horizon)


def build_workforce(scn: Scenario, seed: int, replication: int) -> list[Reporter]:
    """Every reporter of the scenario, in staff-group order."""
    trust_index = {code: i for i, code in enumerate(scn.trust_codes)}
    modality_index = {m.code: i for i, m in enumerate(scn.modalities)}
    sub_index = {code: i for i, code in enumerate(scn.subspecialties)}
    n_weeks = int(np.ceil(scn.horizon_weeks))
    reporters = []
    for group in scn.staff:
        home = trust_index[group.trust]
        leave_weeks = int(round(group.leave_weeks_per_year * scn.horizon_weeks / 52))
        for k in range(group.count):
            reporter_id = f"{group.trust}-{group.name}-{k + 1:03d}"
            leave: set[int] = set()
            if leave_weeks:
                rng = stream(seed, replication, "leave", reporter_id)
                leave = set(rng.choice(n_weeks, size=min(leave_weeks, n_weeks), replace=False).tolist())
            reporters.append(Reporter(
                reporter_id=reporter_id,
                group=group.name,
                role=group.role,
                home_trust=home,
                credentialed_trusts=frozenset({home, *(trust_index[c] for c in group.credentialed_trusts)}),
                modalities=frozenset(modality_index[c] for c in group.modalities),
                max_band=group.max_band,
                subspecialties=frozenset(sub_index[c] for c in group.subspecialties),
                speed=group.speed,
                hourly_cost=group.hourly_cost,
                intervals=_on_duty(group, n_weeks, leave, scn.horizon_hours),
            ))
    return reporters


def eligibility_table(scn: Scenario, reporters: list[Reporter]) -> pd.DataFrame:
    """One row per reporter x credentialed trust x modality x subspecialty, with the highest band."""
    rows = []
    for r in reporters:
        for t in sorted(r.credentialed_trusts):
            for m in sorted(r.modalities):
                for s in sorted(r.subspecialties):
                    rows.append((r.reporter_id, r.group, r.role, scn.trust_codes[r.home_trust], scn.trust_codes[t],
                                 scn.modalities[m].code, scn.subspecialties[s], r.max_band))
    return pd.DataFrame(rows, columns=["reporter_id", "group", "role", "home_trust", "trust", "modality",
                                       "subspecialty", "max_band"])
