"""The scenario schema: what a planner can say about a consortium, validated and immutable.

Units are part of the field names or docstrings: hours since the scenario's start (a Monday
00:00) for simulated time, minutes for reading times, £ for money, fractions (0-1) for shares.
Cross-references between sections (a staff group naming a trust that does not exist, a mix
naming an unknown urgency) are checked by :func:`sim.scenario_checks.reference_problems`, so that every problem is
reported with its field path; :mod:`sim.loading` turns them into one readable error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, field_validator, model_validator

from sim.distributions import Distribution

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOURS_PER_WEEK = 168
MAX_EPISODE_SIZE = 20  # exams in one episode (a whole-body trauma series is well under this)
Fraction = Annotated[float, Field(ge=0, le=1)]


class Frozen(BaseModel):
    """Base for every scenario section: unknown keys are errors and nothing can be mutated.

    Sequences are tuples, so a section cannot be changed in place either (`scn.staff.append`
    fails); mappings are plain dicts by pydantic's design: treat them as read-only and make
    variants with Scenario.with_changes.
    """

    # inf and nan are refused in every float (issue 12); ranges beyond the fields' own: sim.scenario_bounds
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _clock_to_hours(text: str) -> float:
    """'HH:MM' (00:00-24:00) to hours after midnight."""
    try:
        hours, minutes = text.split(":")
        value = int(hours) + int(minutes) / 60
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a time of day in HH:MM form") from exc
    if not 0 <= int(minutes) < 60 or not 0 <= value <= 24:
        raise ValueError(f"{text!r} is not between 00:00 and 24:00")
    return value


class Trust(Frozen):
    """A member trust. Its demand for a modality is the consortium volume x its population share x
    demand_multiplier x modality_multiplier[modality]; its subspecialty mix is the modality's mix
    reweighted by subspecialty_weight (tertiary centres: more neuro, paediatric and trauma work)."""

    code: str = Field(description="ODS code, e.g. RX1")
    name: str
    population: PositiveFloat = Field(description="people served; sets the trust's share of demand")
    demand_multiplier: NonNegativeFloat = Field(1.0, description="scales this trust's demand (1 = by population)")
    modality_multiplier: dict[str, NonNegativeFloat] = Field(
        default_factory=dict, description="scales this trust's demand for a modality (default 1)")
    subspecialty_weight: dict[str, NonNegativeFloat] = Field(
        default_factory=dict, description="relative weight of a subspecialty in this trust's case mix (default 1); "
                                          "the modality's mix is multiplied by it and renormalised")
    vacancy_rate: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.0, description="share of the trust's posts unfilled, for staff groups that set none of their own")
    go_live: dt.date | None = Field(
        None, description="day the trust joins the shared system; before it, it neither posts nor receives brokered "
                          "work and its reporters cannot read from home (default: live before the start)")


class Urgency(Frozen):
    """A patient source / urgency class; lower priority numbers are read first."""

    code: str
    priority: Annotated[int, Field(ge=0)]
    target_hours: PositiveFloat = Field(description="turnaround target, acquisition to report, hours")
    profile: str = Field(description="name of the hour-of-week arrival profile in demand.profiles")


class Modality(Frozen):
    """Consortium-wide demand and reading-time model for one modality."""

    code: str
    annual_volume: NonNegativeFloat = Field(description="exams per year across the consortium at the start")
    annual_growth: float = Field(0.0, gt=-1, description="fractional growth per year, compounded continuously in time")
    urgency_mix: dict[str, Fraction] = Field(description="share of exams by urgency code; sums to 1")
    band_mix: tuple[Fraction, ...] = Field(description="share of exams by complexity band 1..n; sums to 1")
    subspecialty_mix: dict[str, Fraction] = Field(description="share of exams by subspecialty; sums to 1")
    reading_minutes: dict[str, Distribution] = Field(description="reading time per band ('1'..'n'), minutes at speed 1")
    episode_size: dict[str, tuple[Fraction, ...]] = Field(
        default_factory=dict,
        description="share of a patient's episodes (requests reported together, e.g. CT head + C-spine) with 1, 2, "
                    "... exams, by urgency code, or 'default' for the urgencies not listed; sums to 1 (none: every "
                    "exam is an episode of its own)")

    @field_validator("episode_size")
    @classmethod
    def _episode_sizes_sum_to_one(cls, sizes: dict[str, tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
        for shares in sizes.values():
            _check_sums_to_one(shares)
            if len(shares) > MAX_EPISODE_SIZE:
                raise ValueError(f"an episode of more than {MAX_EPISODE_SIZE} exams is not a request reported together")
        return sizes

    def episode_size_shares(self, urgency: str) -> tuple[float, ...]:
        """Shares of episodes with 1, 2, ... exams for one urgency (1.0: single-exam episodes)."""
        return self.episode_size.get(urgency, self.episode_size.get("default", (1.0,)))

    @field_validator("urgency_mix", "subspecialty_mix")
    @classmethod
    def _mix_sums_to_one(cls, mix: dict[str, float]) -> dict[str, float]:
        _check_sums_to_one(mix.values())
        return mix

    @field_validator("band_mix")
    @classmethod
    def _bands_sum_to_one(cls, mix: tuple[float, ...]) -> tuple[float, ...]:
        _check_sums_to_one(mix)
        return mix

    @model_validator(mode="after")
    def _reading_time_for_every_band(self) -> "Modality":
        needed = {str(band + 1) for band, share in enumerate(self.band_mix) if share > 0}
        missing = sorted(needed - set(self.reading_minutes))
        if missing:
            raise ValueError(f"reading_minutes has no distribution for band(s) {', '.join(missing)}")
        return self


def _expand_counts(entries: list[Any] | tuple[Any, ...]) -> list[Any]:
    """Entries with `counts` (trust -> count) become one entry per trust; others pass unchanged."""
    out: list[Any] = []
    for entry in entries:
        if isinstance(entry, dict) and "counts" in entry:
            counts = entry["counts"]
            if not isinstance(counts, dict) or not counts:
                raise ValueError("counts must be a non-empty table of trust code = count")
            if "trust" in entry or "count" in entry:
                raise ValueError("give either counts or trust and count, not both")
            template = {k: v for k, v in entry.items() if k != "counts"}
            out += [{**template, "trust": trust, "count": count} for trust, count in counts.items()]
        else:
            out.append(entry)
    return out


def _check_sums_to_one(values: Any) -> None:
    values = list(values)
    if not values:
        raise ValueError("a mix needs at least one entry")
    total = sum(values)
    if abs(total - 1) > 1e-6:
        raise ValueError(f"shares must sum to 1, got {total:.6g}")


class BacklogBlock(Frozen):
    """Unreported exams present at time zero, with ages spread uniformly over a range."""

    trust: str
    modality: str
    urgency: str
    count: Annotated[int, Field(ge=0)]
    min_age_days: NonNegativeFloat = 0.0
    max_age_days: NonNegativeFloat

    @model_validator(mode="after")
    def _ages_ordered(self) -> "BacklogBlock":
        if self.max_age_days < self.min_age_days:
            raise ValueError("max_age_days is less than min_age_days")
        return self


class Demand(Frozen):
    """How exams arrive: hour-of-week profiles, seasonality, episodes and an initial backlog.

    Exams arrive as patient episodes (sizes per modality x urgency: Modality.episode_size): the exams of
    an episode share patient, trust, modality, urgency and acquisition time, and their subspecialty
    with probability `episode_same_subspecialty` (else drawn from the mix, e.g. CT head + C-spine)."""

    profiles: dict[str, tuple[NonNegativeFloat, ...]] = Field(
        description="relative arrival weight for each of the 168 hours of the week, Monday 00:00 first"
    )
    seasonality: tuple[PositiveFloat, ...] = Field(
        default=(1.0,) * 12, description="relative volume by calendar month, January first"
    )
    episode_same_subspecialty: Fraction = Field(
        1.0, description="chance that a further exam of an episode has the first exam's subspecialty")
    initial_backlog: tuple[BacklogBlock, ...] = ()
    bank_holidays: tuple[dt.date, ...] = Field(
        (), description="public holidays (dates); dates outside the horizon are ignored")
    bank_holiday_factor: dict[str, Fraction] = Field(
        default_factory=dict, description="arrival rate on a bank holiday / an ordinary day of the same weekday, "
                                          "by profile name (default 1: acute demand does not stop)")

    @field_validator("profiles")
    @classmethod
    def _profiles_are_weeks(cls, profiles: dict[str, tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
        for name, weights in profiles.items():
            if len(weights) != HOURS_PER_WEEK:
                raise ValueError(f"profile {name!r} has {len(weights)} values; it needs {HOURS_PER_WEEK} (one per hour of the week)")
            if sum(weights) <= 0:
                raise ValueError(f"profile {name!r} is all zero")
        return profiles

    @field_validator("seasonality")
    @classmethod
    def _twelve_months(cls, factors: tuple[float, ...]) -> tuple[float, ...]:
        if len(factors) != 12:
            raise ValueError(f"seasonality has {len(factors)} values; it needs 12 (January to December)")
        return factors


class Session(Frozen):
    """A weekly reporting session, e.g. days = ["Mon", "Wed"], start = "09:00", end = "13:00"."""

    days: tuple[Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], ...] = Field(min_length=1)
    start: str = Field(description="HH:MM")
    end: str = Field(description="HH:MM, up to 24:00, after start")

    @field_validator("start", "end")
    @classmethod
    def _is_clock(cls, text: str) -> str:
        _clock_to_hours(text)
        return text

    @model_validator(mode="after")
    def _ends_after_start(self) -> "Session":
        if self.end_hour <= self.start_hour:
            raise ValueError(f"session ends ({self.end}) before it starts ({self.start})")
        return self

    @property
    def start_hour(self) -> float:
        return _clock_to_hours(self.start)

    @property
    def end_hour(self) -> float:
        return _clock_to_hours(self.end)


class StaffGroup(Frozen):
    """`count` reporters sharing one template: home trust, timetable, eligibility and speed."""

    name: str
    role: Literal["consultant", "radiographer"] = "consultant"
    trust: str = Field(description="home trust code")
    count: Annotated[int, Field(ge=0)]
    sessions: tuple[Session, ...] = Field(description="weekly reporting timetable (core hours on site)")
    modalities: tuple[str, ...] = Field(min_length=1)
    max_band: Annotated[int, Field(ge=1)] = Field(description="highest complexity band this group may report")
    subspecialties: tuple[str, ...] = Field(min_length=1)
    credentialed_trusts: tuple[str, ...] = Field((), description="other trusts this group may report for")
    speed: PositiveFloat = Field(1.0, description="reading speed relative to the reading-time distributions")
    leave_weeks_per_year: Annotated[float, Field(ge=0, lt=52)] = Field(
        0.0, description="weeks a year with no sessions (annual and study leave; bank holidays are on the calendar): "
                         "the expected share of weeks on leave is this / 52 over any horizon")
    works_bank_holidays: bool = Field(False, description="a rota (on-call) keeps its sessions on bank holidays")
    hourly_cost: NonNegativeFloat = Field(0.0, description="£ per reporting hour in core sessions (salaried)")
    home_workstation: bool = Field(False, description="may take extra non-core home sessions (home_reporting)")
    vacancy_rate: Annotated[float, Field(ge=0, lt=1)] | None = Field(
        None, description="share of the group's posts unfilled (each post is vacant this share of the time); "
                          "default: the trust's vacancy_rate")
    months_to_fill: PositiveFloat = Field(12.0, description="mean months a vacant post stays unfilled")
    annual_growth: Annotated[float, Field(ge=0, le=1)] = Field(
        0.0, description="posts added per post per year (new posts start vacant and are recruited to)")


class Outsourcing(Frozen):
    """Threshold outsourcing to a private teleradiology company."""

    enabled: bool = False
    age_threshold_hours: PositiveFloat | None = Field(None, description="send exams waiting longer than this")
    backlog_threshold_exams: Annotated[int, Field(ge=0)] | None = Field(
        None, description="per trust: send the oldest exams while more than this many are waiting"
    )
    urgencies: tuple[str, ...] = Field((), description="urgency codes that may be outsourced")
    check_every_hours: PositiveFloat = 1.0
    daily_cap: Annotated[int, Field(ge=0)] = Field(description="most exams sent per trust per calendar day")
    daily_cap_by_trust: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, description="a trust's own daily cap (its contract or budget), overriding daily_cap")
    price: dict[str, tuple[NonNegativeFloat, ...]] = Field(description="£ per exam by modality and band")
    urgency_price_factor: dict[str, PositiveFloat] = Field(default_factory=dict, description="price multiplier by urgency (default 1)")
    turnaround_hours: Distribution = Field(description="from sending to report returned, hours")

    @model_validator(mode="after")
    def _has_trigger(self) -> "Outsourcing":
        if self.enabled and self.age_threshold_hours is None and self.backlog_threshold_exams is None:
            raise ValueError("enabled outsourcing needs age_threshold_hours or backlog_threshold_exams")
        return self


class Teleradiology(Frozen):
    """Out-of-hours reporting bought from a teleradiology company (the NHS's night cover).

    Exams of the covered urgencies and modalities acquired inside a cover window go to the company
    at acquisition; at the start of each window it also takes those still waiting. They come back
    reported after a draw from `turnaround_hours`.
    """

    enabled: bool = False
    windows: tuple[Session, ...] = Field(description="weekly cover windows, e.g. nightly 20:00-24:00 and 00:00-08:00")
    urgencies: tuple[str, ...] = Field(min_length=1, description="urgency codes the contract covers")
    modalities: tuple[str, ...] = Field(min_length=1, description="modality codes the contract covers")
    price: dict[str, tuple[NonNegativeFloat, ...]] = Field(description="£ per exam by modality and band")
    turnaround_hours: Distribution = Field(description="from acquisition (or the window's start) to report, hours")


class Broker(Frozen):
    """The brokerage system: moves work from trusts in deficit to trusts with spare capacity."""

    cadence_hours: PositiveFloat = Field(1.0, description="how often the broker rebalances")
    lookahead_hours: PositiveFloat = Field(24.0, description="window of planned capacity compared with backlog")
    transfer_overhead_minutes: NonNegativeFloat = Field(1.0, description="extra reading time of a transferred exam")
    min_transfer_hours: NonNegativeFloat = Field(0.5, description="smaller imbalances are left alone")


class Policy(Frozen):
    """How reporters see worklists (see sim.policies).

    local: own trust (plus cross-trust agreements); pooled: every credentialed trust, ordered by
    `pooled_order`; brokered: own trust, plus work the broker moves from trusts in deficit.
    """

    kind: Literal["local", "pooled", "brokered"] = "local"
    pooled_order: Literal["own_trust_first", "urgency_then_age"] = "own_trust_first"
    credential_all_trusts: bool = Field(False, description="treat every reporter as credentialed for every trust")
    broker: Broker = Broker()


class HomeWorklist(Frozen):
    """One kind of extra session: the modalities it reads and the share of taken sessions that read it."""

    modalities: tuple[str, ...] = Field(min_length=1, description="modality codes this kind of session reads")
    share: Fraction = Field(description="share of taken sessions that are of this kind")


class HomeCredentials(Frozen):
    """What participants may read in extra sessions when it is wider than their core work (a pilot's contract)."""

    modalities: tuple[str, ...] = Field(min_length=1)
    max_band: Annotated[int, Field(ge=1)]
    subspecialties: tuple[str, ...] = Field(min_length=1)


class HomeReporting(Frozen):
    """Extra, tariff-paid non-core sessions (home insourcing, or the broker's offered sessions).

    Each session reads its own worklist: the exams of the listed urgencies and modalities (empty:
    all) at the reader's own trust (`reads = "own"`: insourcing) or at every trust that is live on
    the shared system and that the reader is credentialed for, limited to exams whose insourcing
    tariff is below the owning trust's outsourcing price (`reads = "posted"`: the broker's market,
    its financial dashboard), most urgent first, oldest first.
    """

    enabled: bool = False
    sessions: tuple[Session, ...] = Field(description="weekly non-core slots offered, e.g. weekday evenings")
    backlog_threshold_exams: Annotated[int, Field(ge=0)] | None = Field(
        None, description="offer when more exams than this are waiting in the session's own worklist (what this "
                          "reader may read there, in this kind of session, at the trusts it reads)")
    backlog_threshold_hours: NonNegativeFloat | None = Field(
        None, description="offer when at least this many reading hours (speed 1) that the session could read are "
                          "waiting (overrides backlog_threshold_exams); neither set: always offer")
    urgencies: tuple[str, ...] = Field((), description="urgency codes a session reads (empty: all)")
    modalities: tuple[str, ...] = Field((), description="modality codes a session reads (empty: all)")
    min_age_hours: NonNegativeFloat = Field(
        0.0, description="a session reads only exams that have waited at least this long (posted backlog, not "
                         "work core sessions will read anyway)")
    reads: Literal["own", "posted"] = Field(
        "own", description="own: the reader's own trust (insourcing); posted: work posted by any live trust the reader "
                           "is credentialed for, where the tariff beats that trust's outsourcing price (the broker's market)")
    uptake_probability: Fraction = Field(0.5, description="chance a reporter takes an offered session at tariff_multiplier 1")
    uptake_curve: tuple[tuple[PositiveFloat, Fraction], ...] = Field(
        (), description="(tariff multiplier, uptake probability) points, interpolated; overrides uptake_probability")
    tariff_multiplier: PositiveFloat = Field(1.0, description="scales finance.insourcing_tariff (tariff studies)")
    reading_time_factor: PositiveFloat = Field(1.0, description="home reading time / on-site reading time")
    participants: tuple[str, ...] = Field(
        (), description="staff group names or reporter ids offered sessions (a workstation is then implied, as in "
                        "a funded pilot); empty: every reporter whose group has home_workstation = true")
    credentials: HomeCredentials | None = Field(
        None, description="what readers may read in these sessions, at their own trust (default: their group's core rights)")
    worklists: tuple[HomeWorklist, ...] = Field(
        (), description="kinds of session by modality, each with its share of taken sessions (drawn per session); "
                        "shares sum to 1 (empty: every session reads all of `modalities`)")
    download_minutes: dict[str, NonNegativeFloat] = Field(
        default_factory=dict, description="image download time added to each home read, by modality (VPN; default 0)")

    @field_validator("worklists")
    @classmethod
    def _worklist_shares_sum_to_one(cls, worklists: tuple[HomeWorklist, ...]) -> tuple[HomeWorklist, ...]:
        if worklists:
            _check_sums_to_one(w.share for w in worklists)
        return worklists

    def uptake(self) -> float:
        """Probability that an offered session is taken, at this scenario's tariff multiplier."""
        if not self.uptake_curve:
            return self.uptake_probability
        xs, ys = zip(*sorted(self.uptake_curve))
        import numpy as np

        return float(np.interp(self.tariff_multiplier, xs, ys))


class Agreement(Frozen):
    """A named cross-trust flow: a staff group reads some of another trust's work (e.g. paediatrics)."""

    name: str
    readers: str = Field(description="staff group name")
    reader_trust: str = Field(description="the staff group's home trust")
    trust: str = Field(description="the trust whose work they read")
    modalities: tuple[str, ...] = Field(min_length=1)
    subspecialties: tuple[str, ...] = Field(min_length=1)
    max_band: Annotated[int, Field(ge=1)]


class Outage(Frozen):
    """IT downtime, alternating up and down with exponential times (MTBF, MTTR)."""

    name: str
    scope: Literal["home", "all"] = Field(description="'home': VPN (home sessions stop); 'all': PACS (all reporting stops)")
    mtbf_hours: PositiveFloat
    mttr_hours: PositiveFloat


class Finance(Frozen):
    """Tariffs (prices by modality are lists by band, £ per exam) and the one definition of WTE.

    1 WTE = `pas_per_wte_week` PAs a week (10, facts §6). A core PA is `core_pa_hours` (4 h); a PA in premium
    time (evenings, nights, weekends: every extra home session) is `premium_pa_hours`: 3 h under the 2003
    consultant contract (ops_facts §3 READ), 2 h for evening/weekend work on the BMA rate card (facts §4
    READ). Core WTE = core hours / (core PA x PAs x weeks); WTE from extra sessions = their hours / (premium
    PA x PAs x weeks).
    """

    pas_per_wte_week: PositiveFloat = Field(10.0, description="programmed activities (PAs) a week in one WTE")
    core_pa_hours: PositiveFloat = Field(4.0, description="hours of one PA in core (plain) time")
    premium_pa_hours: PositiveFloat = Field(
        3.0, description="hours of one PA in premium time (evenings, nights, weekends; extra home sessions)")
    insourcing_tariff: dict[str, tuple[NonNegativeFloat, ...]] = Field(
        default_factory=dict, description="£ per exam paid for home (insourced) reads, by modality and band")
    inter_trust_charge: dict[str, tuple[NonNegativeFloat, ...]] = Field(
        default_factory=dict, description="£ per exam the owning trust pays the reading trust, by modality and band")
    commissioner_income: dict[str, tuple[NonNegativeFloat, ...]] = Field(
        default_factory=dict, description="£ per reported exam (any route) the owning trust receives from commissioners")

    @model_validator(mode="before")
    @classmethod
    def _hours_per_wte_week_is_core_pas(cls, data: Any) -> Any:
        """Older files give `hours_per_wte_week`: it is the core PA length x PAs a week."""
        if isinstance(data, dict) and "hours_per_wte_week" in data:
            data = dict(data)
            hours = data.pop("hours_per_wte_week")
            if "core_pa_hours" in data:
                raise ValueError("give core_pa_hours or the older hours_per_wte_week, not both")
            if isinstance(hours, (int, float)) and not isinstance(hours, bool) and hours > 0:
                data["core_pa_hours"] = hours / data.get("pas_per_wte_week", 10.0)
            else:
                data["core_pa_hours"] = hours  # let the field's own check name the problem
        return data

    @property
    def hours_per_wte_week(self) -> float:
        """Core hours in one WTE-week (10 PAs x 4 h = 40)."""
        return self.pas_per_wte_week * self.core_pa_hours

    @property
    def premium_hours_per_wte_week(self) -> float:
        """Premium-time hours in one WTE-week (10 PAs x 3 h = 30 under the 2003 contract)."""
        return self.pas_per_wte_week * self.premium_pa_hours


class Scenario(Frozen):
    """A complete, validated, immutable scenario. Make variants with :meth:`with_changes`."""

    name: str
    description: str = ""
    start_date: dt.date = Field(description="a Monday; simulated hour 0 is its midnight")
    horizon_weeks: PositiveFloat
    warmup_weeks: NonNegativeFloat = Field(0.0, description="arrivals before this are excluded from statistics")
    backlog_interval_hours: PositiveFloat = Field(1.0, description="resolution of the backlog time series")
    trusts: tuple[Trust, ...] = Field(min_length=1)
    urgencies: tuple[Urgency, ...] = Field(min_length=1)
    subspecialties: tuple[str, ...] = Field(min_length=1)
    modalities: tuple[Modality, ...] = Field(min_length=1)
    demand: Demand
    staff: tuple[StaffGroup, ...] = ()
    policy: Policy = Policy()
    outsourcing: Outsourcing | None = None
    teleradiology: Teleradiology | None = None
    home_reporting: HomeReporting | None = None
    agreements: tuple[Agreement, ...] = ()
    outages: tuple[Outage, ...] = ()
    finance: Finance = Finance()
    simulate_trusts: tuple[str, ...] = Field(
        (), description="simulate only these trusts' demand and staff (others' shares of demand still count); only "
                        "without cross-trust levers, where trusts are independent (empty: every trust)")

    @model_validator(mode="before")
    @classmethod
    def _expand_per_trust_counts(cls, data: Any) -> Any:
        """A staff group or backlog block may give `counts = {RX1 = 20, ...}` instead of one trust and count:
        it stands for one entry per trust (same template), in the order given."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("staff"), (list, tuple)):
            data["staff"] = _expand_counts(data["staff"])
        demand = data.get("demand")
        if isinstance(demand, dict) and isinstance(demand.get("initial_backlog"), (list, tuple)):
            data["demand"] = {**demand, "initial_backlog": _expand_counts(demand["initial_backlog"])}
        return data

    @field_validator("start_date")
    @classmethod
    def _monday(cls, day: dt.date) -> dt.date:
        if day.weekday() != 0:
            raise ValueError(f"{day.isoformat()} is a {DAYS[day.weekday()]}; the scenario must start on a Monday")
        return day

    @model_validator(mode="after")
    def _warmup_inside_horizon(self) -> "Scenario":
        if self.warmup_weeks >= self.horizon_weeks:
            raise ValueError("warmup_weeks must be shorter than horizon_weeks")
        return self

    # -- derived views -------------------------------------------------------------------------
    @property
    def horizon_hours(self) -> float:
        return self.horizon_weeks * HOURS_PER_WEEK

    @property
    def warmup_hours(self) -> float:
        return self.warmup_weeks * HOURS_PER_WEEK

    @property
    def bank_holiday_days(self) -> list[int]:
        """Bank holidays as whole days after the start date (sorted; dates before the start are negative)."""
        return sorted((d - self.start_date).days for d in self.demand.bank_holidays)

    def vacancy_rate(self, group: StaffGroup) -> float:
        """A staff group's vacancy rate: its own, else its trust's."""
        if group.vacancy_rate is not None:
            return group.vacancy_rate
        return next(t.vacancy_rate for t in self.trusts if t.code == group.trust)

    @property
    def trust_codes(self) -> list[str]:
        return [t.code for t in self.trusts]

    def simulates(self, trust_code: str) -> bool:
        """Whether the trust's demand and staff are simulated (simulate_trusts; default every trust)."""
        return not self.simulate_trusts or trust_code in self.simulate_trusts

    @property
    def n_bands(self) -> int:
        return max(len(m.band_mix) for m in self.modalities)

    def canonical_json(self) -> str:
        """Sorted, compact JSON of the values that differ from the schema's defaults."""
        return json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True, separators=(",", ":"))

    @property
    def config_id(self) -> str:
        """sha256 of the canonical JSON: equal scenarios have equal ids whatever file they came from.

        Defaults are left out, so spelling a default out does not change the id, and adding a
        new field with a default to the schema leaves existing scenarios' ids (and regression
        references) valid; a changed default is caught by the exact regression tier instead.
        """
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def with_changes(self, changes: dict[str, Any]) -> "Scenario":
        """A validated copy with dotted-path changes, e.g. {"outsourcing.enabled": False, "staff.0.count": 3}."""
        from sim.loading import apply_changes

        return apply_changes(self, changes)
