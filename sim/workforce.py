"""The workforce made concrete: staff groups expanded into individual reporters.

Each reporter gets absolute on-duty intervals over the horizon (weekly timetable minus leave
weeks, bank holidays and the spells its post is vacant, back-to-back sessions merged so that a
24/7 rota never stops mid-exam) and an eligibility rule.

Leave is a rate, not a count of weeks: leave comes in blocks of LEAVE_BLOCK_WEEKS, and block j of
a reporter is leave when frac(j x rate + phase) < rate, rate = leave_weeks_per_year / 52. Phases
are spread evenly over a group (one random offset per group), as a department's leave rota keeps
the share away steady: the expected share of weeks on leave is the annual rate for any horizon,
and the realised share in any week is within one reporter per group of it.

A staff group's `count` is its posts (establishment). With a vacancy rate v each post alternates
filled and vacant spells, exponential with means F (1 - v) / v and F (F = months_to_fill), so it
is vacant a share v of the time; posts added by annual_growth open vacant and are recruited to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.scenario import DAYS, HOURS_PER_WEEK, Scenario, StaffGroup
from sim.streams import stream

LEAVE_BLOCK_WEEKS = 2
"""ESTIMATE: consultants take annual leave mostly as one- or two-week blocks (no source read)."""
HOURS_PER_MONTH = 365.25 * 24 / 12
HOURS_PER_YEAR = 365.25 * 24


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
    home_profile: Profile | None = None  # what it may read at its own trust in extra home sessions, if set apart

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


def weekly_spans(sessions) -> list[tuple[float, float]]:
    """Weekly sessions (days x start-end) as sorted (start, end) hours within one week, Monday 00:00 = 0."""
    return sorted((DAYS.index(day) * 24 + s.start_hour, DAYS.index(day) * 24 + s.end_hour)
                  for s in sessions for day in s.days)


def weekly_intervals(group: StaffGroup) -> list[tuple[float, float]]:
    """The group's timetable as (start, end) hours within one week, Monday 00:00 = 0."""
    return weekly_spans(group.sessions)


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


def leave_weeks(rate: float, phase: float, n_weeks: int) -> set[int]:
    """Weeks on leave for a reporter with leave `rate` (share of weeks) and `phase` in [0, 1)."""
    if rate <= 0:
        return set()
    blocks = np.arange(n_weeks) // LEAVE_BLOCK_WEEKS
    return set(np.flatnonzero(np.mod(blocks * rate + phase, 1.0) < rate).tolist())


def group_leave_phases(seed: int, replication: int, group: StaffGroup, n_posts: int) -> np.ndarray:
    """Leave phases of a group's posts: evenly spread, with one random offset for the whole group."""
    offset = stream(seed, replication, "leave", group.trust, group.name).random()
    return np.mod(offset + np.arange(n_posts) / max(n_posts, 1), 1.0)


def bank_holiday_spans(scn: Scenario) -> list[tuple[float, float]]:
    """(start, end) hours of each bank holiday inside the horizon."""
    return [(d * 24.0, d * 24.0 + 24) for d in scn.bank_holiday_days if 0 <= d * 24 < scn.horizon_hours]


def n_posts(group: StaffGroup, horizon_hours: float) -> int:
    """Posts the group has by the horizon: its count grown at annual_growth."""
    if group.annual_growth == 0 or group.count == 0:
        return group.count
    return int(np.floor(group.count * (1 + group.annual_growth) ** (horizon_hours / HOURS_PER_YEAR) + 1e-9))


def vacant_spans(group: StaffGroup, post: int, reporter_id: str, seed: int, replication: int,
                 horizon: float, v: float) -> list[tuple[float, float]]:
    """When post number `post` (0-based) of the group is vacant over the horizon (vacancy rate `v`)."""
    if post < group.count:
        opens = 0.0
    else:  # the establishment reaches post + 1 at this time
        opens = HOURS_PER_YEAR * np.log((post + 1) / group.count) / np.log(1 + group.annual_growth)
    spans = [(0.0, opens)] if opens > 0 else []
    if v == 0:
        if opens > 0:  # a new post with no vacancy rate is filled as it opens
            return spans
        return []
    rng = stream(seed, replication, "post", reporter_id)
    mean_vacant = group.months_to_fill * HOURS_PER_MONTH
    mean_filled = mean_vacant * (1 - v) / v
    # an existing post starts in its long-run state (vacant with probability v); a new one opens vacant
    vacant = opens > 0 or rng.random() < v
    t = opens
    while t < horizon:
        length = rng.exponential(mean_vacant if vacant else mean_filled)
        if vacant:
            spans.append((t, min(t + length, horizon)))
        t += length
        vacant = not vacant
    return merge(spans)


def _on_duty(group: StaffGroup, n_weeks: int, leave: set[int], horizon: float,
             cuts: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    week = weekly_intervals(group)
    spans = [(w * HOURS_PER_WEEK + s, w * HOURS_PER_WEEK + e)
             for w in range(n_weeks) if w not in leave for s, e in week]
    on = tuple((s, min(e, horizon)) for s, e in merge(spans) if s < horizon)
    return subtract(on, merge(cuts)) if cuts else on


def build_workforce(scn: Scenario, seed: int, replication: int) -> list[Reporter]:
    """Every reporter of the scenario, in staff-group order."""
    trust_index = {code: i for i, code in enumerate(scn.trust_codes)}
    modality_index = {m.code: i for i, m in enumerate(scn.modalities)}
    sub_index = {code: i for i, code in enumerate(scn.subspecialties)}
    n_weeks = int(np.ceil(scn.horizon_weeks))
    everywhere = frozenset(range(len(scn.trusts)))
    holidays = bank_holiday_spans(scn)
    reporters = []
    home_rights = _home_credentials(scn)
    for group in scn.staff:
        if not scn.simulates(group.trust):
            continue
        home = trust_index[group.trust]
        agreements = tuple(
            (trust_index[a.trust], Profile(frozenset(modality_index[c] for c in a.modalities), a.max_band,
                                           frozenset(sub_index[c] for c in a.subspecialties)))
            for a in scn.agreements if a.readers == group.name and a.reader_trust == group.trust)
        posts = n_posts(group, scn.horizon_hours)
        phases = group_leave_phases(seed, replication, group, posts)
        rate = group.leave_weeks_per_year / 52
        vacancy = scn.vacancy_rate(group)
        for k in range(posts):
            reporter_id = f"{group.trust}-{group.name}-{k + 1:03d}"
            leave = leave_weeks(rate, phases[k], n_weeks)
            cuts = [] if group.works_bank_holidays else list(holidays)
            cuts += vacant_spans(group, k, reporter_id, seed, replication, scn.horizon_hours, vacancy)
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
                intervals=_on_duty(group, n_weeks, leave, scn.horizon_hours, cuts),
                home_workstation=group.home_workstation,
                leave_weeks=frozenset(leave),
                agreements=agreements,
                home_profile=home_rights if home_rights and _takes_part(scn, group, reporter_id) else None,
            ))
    return reporters


def _home_credentials(scn: Scenario) -> Profile | None:
    """home_reporting.credentials as a Profile (None: extra sessions read under core rights)."""
    home = scn.home_reporting
    if home is None or not home.enabled or home.credentials is None:
        return None
    rights = home.credentials
    return Profile(frozenset(i for i, m in enumerate(scn.modalities) if m.code in rights.modalities), rights.max_band,
                   frozenset(i for i, c in enumerate(scn.subspecialties) if c in rights.subspecialties))


def _takes_part(scn: Scenario, group: StaffGroup, reporter_id: str) -> bool:
    """Whether the reporter is offered extra sessions (as sim.policies.home.HomeSessions decides)."""
    named = scn.home_reporting.participants
    return group.name in named or reporter_id in named if named else group.home_workstation


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
