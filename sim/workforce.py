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
class Profile:
    """What a reporter may read at one trust."""

    modalities: frozenset[int]
    max_band: int  # 1-based, as in the scenario
    subspecialties: frozenset[int]

    def may_read(self, modality: int, band: int, subspecialty: int) -> bool:
        """Band is 0-based, as in ExamTable."""
        return modality in self.modalities and band < self.max_band and subspecialty in self.subspecialties


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
    home_workstation: bool = False
    leave_weeks: frozenset[int] = frozenset()
    agreements: tuple[tuple[int, Profile], ...] = ()  # (trust, what may be read there) from cross-trust agreements

    @property
    def profile(self) -> Profile:
        return Profile(self.modalities, self.max_band, self.subspecialties)

    def profile_at(self, trust: int) -> Profile | None:
        """What this reporter may read at `trust`: full rights where credentialed, else an agreement's, else None."""
        if trust in self.credentialed_trusts:
            return self.profile
        for agreed_trust, profile in self.agreements:
            if agreed_trust == trust:
                return profile
        return None

    def may_read(self, modality: int, band: int, subspecialty: int, trust: int | None = None) -> bool:
        """Whether this reporter may report an exam of that kind (band 0-based), at `trust` (default: home)."""
        profile = self.profile_at(self.home_trust if trust is None else trust)
        return profile is not None and profile.may_read(modality, band, subspecialty)

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


def subtract(spans, cuts) -> tuple[tuple[float, float], ...]:
    """`spans` minus the union of `cuts` (both sorted, disjoint (start, end) intervals)."""
    out: list[tuple[float, float]] = []
    cuts = list(cuts)
    k = 0
    for start, end in spans:
        while k < len(cuts) and cuts[k][1] <= start:
            k += 1
        j = k
        while start < end and j < len(cuts) and cuts[j][0] < end:
            if cuts[j][0] > start:
                out.append((start, cuts[j][0]))
            start = max(start, cuts[j][1])
            j += 1
        if start < end:
            out.append((start, end))
    return tuple(out)


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
    everywhere = frozenset(range(len(scn.trusts)))
    reporters = []
    for group in scn.staff:
        home = trust_index[group.trust]
        agreements = tuple(
            (trust_index[a.trust], Profile(frozenset(modality_index[c] for c in a.modalities), a.max_band,
                                           frozenset(sub_index[c] for c in a.subspecialties)))
            for a in scn.agreements if a.readers == group.name and a.reader_trust == group.trust)
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
                credentialed_trusts=everywhere if scn.policy.credential_all_trusts
                else frozenset({home, *(trust_index[c] for c in group.credentialed_trusts)}),
                modalities=frozenset(modality_index[c] for c in group.modalities),
                max_band=group.max_band,
                subspecialties=frozenset(sub_index[c] for c in group.subspecialties),
                speed=group.speed,
                hourly_cost=group.hourly_cost,
                intervals=_on_duty(group, n_weeks, leave, scn.horizon_hours),
                home_workstation=group.home_workstation,
                leave_weeks=frozenset(leave),
                agreements=agreements,
            ))
    return reporters


def eligibility_table(scn: Scenario, reporters: list[Reporter]) -> pd.DataFrame:
    """The radiologist eligibility dashboard's data: one row per reporter x trust x modality x
    subspecialty the reporter may read, with the highest band, how the right arises
    (home, credential or agreement) and whether the reporter has a home workstation."""
    rows = []
    for r in reporters:
        trusts = sorted(r.credentialed_trusts | {t for t, _ in r.agreements})
        for t in trusts:
            profile = r.profile_at(t)
            basis = "home" if t == r.home_trust else ("credential" if t in r.credentialed_trusts else "agreement")
            for m in sorted(profile.modalities):
                for s in sorted(profile.subspecialties):
                    rows.append((r.reporter_id, r.group, r.role, scn.trust_codes[r.home_trust], scn.trust_codes[t],
                                 basis, scn.modalities[m].code, scn.subspecialties[s], profile.max_band,
                                 r.home_workstation))
    return pd.DataFrame(rows, columns=["reporter_id", "group", "role", "home_trust", "trust", "basis", "modality",
                                       "subspecialty", "max_band", "home_workstation"])
