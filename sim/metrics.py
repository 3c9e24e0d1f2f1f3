"""One replication's numbers, from its raw per-exam outcome (no monitors in the hot loop).

Counting conventions (conservation holds exactly per trust):
    initial_backlog + arrivals = reported + outsourced + teleradiology + unreported_end
where `reported` are in-house reports finished by the horizon, `outsourced` exams sent to the
company by the threshold rule and `teleradiology` those taken by the night contract (whether or
not their report is back), and `unreported_end` everything else (waiting, or in a reporter's
hands at the horizon).

Money (see sim.finance): `cost_capacity` (salaried session hours, read or idle) exists per trust
and for the consortium only; `cost_home`, `cost_outsourced`, `cost_teleradiology` are marginal
spend per exam (`marginal_spend` their sum); `cost_total` = capacity + marginal spend;
`net_cost` adds inter-trust charges paid and subtracts those received (it equals `cost_total`
for the consortium: transfers net to zero). Counts cover the whole horizon; turnaround statistics
cover exams acquired after the warm-up. Missing values are NaN, never sentinels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from sim import market
from sim.finance import counterfactual_price, inter_trust_charge, outsourcing_price, route_cost, tariff, \
    teleradiology_price
from sim.worklist import ROUTES
from sim.model import RawRun
from sim.scenario import HOURS_PER_WEEK
from sim.worklist import ROUTE_CODE

ALL = "ALL"
HOURS_28_DAYS = 28 * 24
KEYS = ["trust", "modality", "urgency"]


IN_HOUSE = tuple(ROUTE_CODE[r] for r in ("core", "home", "brokered"))


@dataclass(frozen=True)
class Outcome:
    """Per-exam derived outcome (ExamTable order), computed once with numpy."""

    route: np.ndarray  # final route code: a read still in hand at the horizon counts as unreported
    reported: np.ndarray  # reported in-house (core, home or brokered) by the horizon
    outsourced: np.ndarray  # sent to the company by the threshold rule (report back or not)
    teleradiology: np.ndarray  # taken by the night contract (report back or not)
    reported_at: np.ndarray  # hours; NaN if no report by the horizon
    reading_hours: np.ndarray  # in-house reading time spent by the horizon (in-progress reads included)
    reading_trust: np.ndarray  # home trust of the reader (-1 if none)
    cost: np.ndarray  # £ the report costs the consortium by its route (0 if unreported)
    charge: np.ndarray  # £ inter-trust charge the owning trust pays the reading trust (brokered only)
    counterfactual: np.ndarray  # £ had a company reported it (NaN for work no company prices)
    income: np.ndarray  # £ commissioner income for each reported exam, any route (0 without that tariff)

    @property
    def core(self) -> np.ndarray:
        return self.route == ROUTE_CODE["core"]


def outcome(raw: RawRun) -> Outcome:
    scn, ex = raw.scenario, raw.exams
    horizon = scn.horizon_hours
    started = np.isin(raw.route, IN_HOUSE)
    reported = started & (raw.done_at <= horizon)
    outsourced = raw.route == ROUTE_CODE["outsourced"]
    night = raw.route == ROUTE_CODE["teleradiology"]
    route = np.where(started & ~reported, ROUTE_CODE["unreported"], raw.route).astype(np.int8)
    reported_at = np.where(reported | ((outsourced | night) & (raw.done_at <= horizon)), raw.done_at, np.nan)
    reading_hours = np.minimum(raw.done_at, horizon)  # in place from here: one per-exam array, not three
    reading_hours -= raw.left_at
    reading_hours[~started] = 0.0
    hourly_cost = np.array([r.hourly_cost for r in raw.reporters] + [np.nan])
    reporter_trust = np.array([r.home_trust for r in raw.reporters] + [-1], dtype=np.int16)
    kind, (m, b, u) = price_kinds(scn, ex)
    income = np.where(~np.isnan(reported_at), tariff(scn, "commissioner_income", m, b)[kind], 0.0)
    # prices per modality x band x urgency combination, gathered only where a route uses them
    return Outcome(route, reported, outsourced, night, reported_at, reading_hours, reporter_trust[raw.reader],
                   route_cost(scn, route, reading_hours, raw.reader, hourly_cost, ex.modality, ex.band, kind,
                              outsourcing_price(scn, m, b, u), teleradiology_price(scn, m, b, u)),
                   inter_trust_charge(scn, route, ex.modality, ex.band),
                   counterfactual_price(scn, m, b, u)[kind], income)


def price_kinds(scn, ex) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per exam, the index of its modality x band x urgency combination; and each combination's codes.

    Every price depends on these three only, so it is computed once per combination (a few hundred)
    and expanded with one take, instead of a 2-D fancy index over every exam.
    """
    n_b, n_u = scn.n_bands, len(scn.urgencies)
    kind = (ex.modality.astype(np.int32) * n_b + ex.band) * n_u + ex.urgency
    codes = np.arange(len(scn.modalities) * n_b * n_u)
    return kind, (codes // n_u // n_b, codes // n_u % n_b, codes % n_u)


def exam_frame(raw: RawRun, oc: Outcome | None = None) -> pd.DataFrame:
    """Per-exam outcome table with codes decoded (the basis of the activity log)."""
    scn, ex = raw.scenario, raw.exams
    oc = outcome(raw) if oc is None else oc
    return pd.DataFrame({
        "trust": pd.Categorical.from_codes(ex.trust, scn.trust_codes),
        "modality": pd.Categorical.from_codes(ex.modality, [m.code for m in scn.modalities]),
        "urgency": pd.Categorical.from_codes(ex.urgency, [u.code for u in scn.urgencies]),
        "band": ex.band + 1,
        "subspecialty": pd.Categorical.from_codes(ex.subspecialty, scn.subspecialties),
        "patient": ex.patient,
        "acquired_h": ex.arrival,
        "left_worklist_h": raw.left_at,
        "reported_h": oc.reported_at,
        "reader": raw.reader,
        "route": pd.Categorical.from_codes(oc.route, ROUTES),
        "reading_trust": pd.Categorical.from_codes(oc.reading_trust, scn.trust_codes),
        "is_core": oc.core,
        "is_outsourced": oc.outsourced,
        "is_teleradiology": oc.teleradiology,
        "reading_hours": oc.reading_hours,
        "cost": oc.cost,
        "counterfactual_cost": oc.counterfactual,
        "commissioner_income": oc.income,
    })


def _contributions(raw: RawRun, oc: Outcome) -> Iterator[tuple[str, np.ndarray]]:
    """(name, what each exam adds to that sum), one array at a time to keep peak memory low."""
    scn, ex = raw.scenario, raw.exams
    horizon, warmup = scn.horizon_hours, scn.warmup_hours
    after_warmup = ex.arrival >= warmup
    yield "initial_backlog", ex.arrival < 0
    yield "arrivals", ex.arrival >= 0
    yield "reported", oc.reported
    yield "outsourced", oc.outsourced
    yield "teleradiology", oc.teleradiology
    for name in ("core", "home", "brokered"):
        yield f"reported_{name}", oc.route == ROUTE_CODE[name]
    yield "home_reading_hours", np.where(oc.route == ROUTE_CODE["home"], oc.reading_hours, 0.0)
    wait = raw.left_at - ex.arrival
    has_wait = after_warmup & ~np.isnan(wait)
    yield "has_wait", has_wait
    yield "wait_sum", np.where(has_wait, wait, 0.0)
    del wait, has_wait
    tat = oc.reported_at - ex.arrival
    has_tat = after_warmup & ~np.isnan(tat)
    yield "has_tat", has_tat
    yield "tat_sum", np.where(has_tat, tat, 0.0)
    del has_tat
    target = np.array([u.target_hours for u in scn.urgencies])[ex.urgency]
    due = after_warmup & (ex.arrival + target <= horizon)
    yield "due", due
    with np.errstate(invalid="ignore"):
        yield "met", due & (tat <= target)
    del due, target
    due_28 = after_warmup & (ex.arrival + HOURS_28_DAYS <= horizon)
    yield "due_28", due_28
    with np.errstate(invalid="ignore"):
        yield "late_28", due_28 & ~(tat <= HOURS_28_DAYS)
    # reported after 28 days, among exams reported by the horizon (how national statistics count it)
    with np.errstate(invalid="ignore"):
        yield "reported_after_28d", after_warmup & (tat > HOURS_28_DAYS)
    del due_28, tat
    yield "reading_hours", oc.reading_hours
    ooh = out_of_hours(scn, ex.arrival)
    yield "acquired_ooh", ooh
    yield "ooh_sent_out", ooh & (oc.outsourced | oc.teleradiology)
    del ooh
    for name in ("core", "home", "brokered", "outsourced", "teleradiology"):
        yield f"cost_{name}", np.where(oc.route == ROUTE_CODE[name], oc.cost, 0.0)
    yield "counterfactual_cost", np.nan_to_num(np.where(oc.reported | oc.outsourced | oc.teleradiology,
                                                        oc.counterfactual, 0.0))
    yield "commissioner_income", oc.income
    yield "inter_trust_paid", oc.charge
    yield from market.contributions(raw, oc)


CORE_HOURS = (8.0, 18.0)
"""Weekday hours that count as in hours (Mon-Fri 08:00-18:00, not bank holidays); all else is out of hours."""


def out_of_hours(scn, arrival: np.ndarray) -> np.ndarray:
    """Whether each exam was acquired out of hours (the initial backlog never is)."""
    hour = np.mod(arrival, HOURS_PER_WEEK)
    inside = hour < 5 * 24  # a weekday
    clock = np.mod(hour, 24, out=hour)  # in place: this runs over every exam
    inside &= clock >= CORE_HOURS[0]
    inside &= clock < CORE_HOURS[1]
    del hour, clock
    if scn.demand.bank_holidays:
        inside &= ~on_days(arrival, scn.bank_holiday_days)
    return (arrival >= 0) & ~inside


def on_days(hours: np.ndarray, days: list[int]) -> np.ndarray:
    """Whether each time (hours since the start) falls on one of `days` (whole days since the start).

    A look-up by day number: np.isin on a few million floats sorts them all.
    """
    if not days or not hours.size:
        return np.zeros(hours.shape, dtype=bool)
    first = min(days)
    table = np.zeros(max(days) - first + 1, dtype=bool)
    table[np.asarray(days) - first] = True
    index = np.floor(hours / 24)
    index -= first  # exact: whole numbers
    inside = (index >= 0) & (index < table.size)
    out = np.zeros(hours.shape, dtype=bool)
    out[inside] = table[index[inside].astype(np.int64)]
    return out


RATIOS = {"wait_mean_h": ("wait_sum", "has_wait"), "tat_mean_h": ("tat_sum", "has_tat"),
          "share_within_target": ("met", "due"), "share_over_28d": ("late_28", "due_28")}


def _finish(summed: dict[str, np.ndarray], quantiles: np.ndarray, counterfactual_defined: bool,
            wte_hours: float) -> dict[str, np.ndarray]:
    """Metrics of one aggregation level from its group sums and turnaround quantiles."""
    out = {name: summed[name] for name in ("initial_backlog", "arrivals", "reported", "outsourced", "teleradiology")}
    out["unreported_end"] = (out["initial_backlog"] + out["arrivals"] - out["reported"] - out["outsourced"]
                             - out["teleradiology"])
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, (num, den) in RATIOS.items():
            out[name] = summed[num] / np.where(summed[den] > 0, summed[den], np.nan)
    for k, name in enumerate(("tat_median_h", "tat_p90_h", "tat_p95_h")):
        out[name] = quantiles[:, k]
    for name in ("reported_core", "reported_home", "reported_brokered", "reading_hours", "home_reading_hours",
                 "acquired_ooh", "ooh_sent_out",
                 "cost_core", "cost_home", "cost_brokered", "cost_outsourced", "cost_teleradiology",
                 "commissioner_income", "inter_trust_paid", "reported_after_28d", *market.PER_EXAM):
        out[name] = summed[name]
    out["marginal_spend"] = out["cost_home"] + out["cost_outsourced"] + out["cost_teleradiology"]
    n_groups = len(out["arrivals"])
    # without a price list there is no counterfactual: NaN, never £0
    out["counterfactual_cost"] = summed["counterfactual_cost"] if counterfactual_defined else np.full(n_groups, np.nan)
    # extra capacity from home sessions, in WTE over the horizon: their hours in premium-time PAs
    # (finance.premium_pa_hours x PAs per WTE-week x weeks; sim.scenario.Finance defines WTE once)
    out["wte_gained_home"] = out["home_reading_hours"] / wte_hours
    return out


def _segment_quantiles(ordered: np.ndarray, bounds: np.ndarray, q=(0.5, 0.9, 0.95)) -> np.ndarray:
    """(groups, len(q)) quantiles of ordered[bounds[g]:bounds[g + 1]] per group g; NaN for empty groups."""
    out = np.full((len(bounds) - 1, len(q)), np.nan)
    for g in range(len(bounds) - 1):
        segment = ordered[bounds[g]:bounds[g + 1]]
        if segment.size:
            out[g] = np.quantile(segment, q)
    return out


def _sum_by(codes: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum of `values` per group code. A boolean is counted (exact, and faster than a float-weighted sum)."""
    if values.dtype == bool:
        return np.bincount(codes[values], minlength=n_groups).astype(np.float64)
    return np.bincount(codes, weights=values, minlength=n_groups)


def metrics_table(raw: RawRun, oc: Outcome | None = None) -> pd.DataFrame:
    """Tidy metrics: trust, modality, urgency, metric, value; "ALL" marks aggregated levels."""
    scn, ex = raw.scenario, raw.exams
    oc = outcome(raw) if oc is None else oc
    n_m, n_u = len(scn.modalities), len(scn.urgencies)
    trusts = np.array(scn.trust_codes, dtype=object)
    modalities = np.array([m.code for m in scn.modalities], dtype=object)
    urgencies = np.array([u.code for u in scn.urgencies], dtype=object)
    cell = (ex.trust.astype(np.int64) * n_m + ex.modality) * n_u + ex.urgency
    present = np.flatnonzero(np.bincount(cell, minlength=len(trusts) * n_m * n_u))
    levels = [  # (number of codes, labels of the codes kept)
        (len(trusts) * n_m * n_u,
         (trusts[present // n_u // n_m], modalities[present // n_u % n_m], urgencies[present % n_u]), present),
        (len(trusts), (trusts, ALL, ALL), np.arange(len(trusts))),
        (1, (ALL, ALL, ALL), np.array([0])),
    ]
    # sums are additive: bincount once per cell, then add cells up into trusts and the consortium
    by_cell = {name: _sum_by(cell, w, levels[0][0]) for name, w in _contributions(raw, oc)}
    summed = [by_cell,
              {name: v.reshape(len(trusts), -1).sum(axis=1) for name, v in by_cell.items()},
              {name: v.sum(keepdims=True) for name, v in by_cell.items()}]
    tat = oc.reported_at - ex.arrival
    has_tat = (ex.arrival >= scn.warmup_hours) & ~np.isnan(tat)
    tat = tat[has_tat]
    # cells of a trust are consecutive codes, so one sort by cell groups every level's values together
    # (a quantile does not depend on the order of the values it is taken over)
    tat_cell = cell[has_tat]
    tat = tat[np.argsort(tat_cell.astype(np.int16) if levels[0][0] < 2**15 else tat_cell, kind="stable")]
    cells_before = np.r_[0, np.cumsum(np.bincount(tat_cell, minlength=levels[0][0]))]
    del tat_cell
    per_trust = n_m * n_u
    bounds = [cells_before, cells_before[::per_trust], cells_before[[0, -1]]]
    counterfactual_defined = not np.isnan(oc.counterfactual).all()
    wte_hours = scn.finance.premium_hours_per_wte_week * scn.horizon_hours / HOURS_PER_WEEK
    frames = []
    capacity = capacity_cost_by_trust(raw)
    received = np.bincount(np.maximum(oc.reading_trust, 0), weights=oc.charge, minlength=len(trusts))
    for k, (n_groups, (t, m, u), keep) in enumerate(levels):
        values = _finish(summed[k], _segment_quantiles(tat, bounds[k]), counterfactual_defined, wte_hours)
        if k > 0:  # per trust and consortium: capacity is paid by trust, charges received by the reading trust
            whole = k == 2
            values["inter_trust_received"] = received.sum(keepdims=True) if whole else received
            values["cost_capacity"] = capacity.sum(keepdims=True) if whole else capacity
            values["cost_total"] = values["cost_capacity"] + values["marginal_spend"]
            values["net_cost"] = values["cost_total"] + values["inter_trust_paid"] - values["inter_trust_received"]
            values["saving_vs_outsourcing"] = values["counterfactual_cost"] - values["cost_total"]
        wide = pd.DataFrame({name: v[keep] for name, v in values.items()})
        wide.insert(0, "urgency", u)
        wide.insert(0, "modality", m)
        wide.insert(0, "trust", t)
        frames.append(wide.melt(id_vars=KEYS, var_name="metric", value_name="value"))
    return pd.concat(frames, ignore_index=True)


def flow_table(raw: RawRun, oc: Outcome) -> pd.DataFrame:
    """Who read what for whom: in-house reports by owning trust x reading trust x route, with reading
    hours and what the owner paid for them (the insourcing tariff for home reads, the inter-trust
    charge for brokered reads, nothing for core reads)."""
    scn = raw.scenario
    n_t, n_r = len(scn.trusts), len(ROUTES)
    read = np.flatnonzero(oc.reported)
    code = (raw.exams.trust[read].astype(np.int64) * n_t + oc.reading_trust[read]) * n_r + oc.route[read]
    size = n_t * n_t * n_r
    paid = np.where(oc.route == ROUTE_CODE["home"], oc.cost, oc.charge)[read]
    exams = np.bincount(code, minlength=size)
    keep = np.flatnonzero(exams)
    codes = np.array(scn.trust_codes, dtype=object)
    return pd.DataFrame({
        "owning_trust": codes[keep // n_r // n_t],
        "reading_trust": codes[keep // n_r % n_t],
        "route": np.array(ROUTES, dtype=object)[keep % n_r],
        "exams": exams[keep],
        "reading_hours": np.bincount(code, weights=oc.reading_hours[read], minlength=size)[keep],
        "paid_gbp": np.bincount(code, weights=paid, minlength=size)[keep],
    })


def capacity_cost_by_trust(raw: RawRun) -> np.ndarray:
    """£ of salaried reporting capacity per home trust: session hours x hourly cost, read or idle."""
    hours = np.array([r.session_hours * r.hourly_cost for r in raw.reporters])
    trust = np.array([r.home_trust for r in raw.reporters], dtype=np.int64)
    return np.bincount(trust, weights=hours, minlength=len(raw.scenario.trusts)) if len(hours) else \
        np.zeros(len(raw.scenario.trusts))


def backlog_series(raw: RawRun) -> pd.DataFrame:
    """Exams waiting in each trust's worklist (acquired, not yet started or sent out) over time."""
    scn = raw.scenario
    step = scn.backlog_interval_hours
    grid = np.arange(0.0, scn.horizon_hours + step / 2, step)
    rows = []
    # each trust's exams, in exam (= acquisition) order, from one radix sort: a mask per trust would cost
    # trusts x exams
    trust = raw.exams.trust
    by_trust = np.argsort(trust.astype(np.int16) if len(scn.trusts) < 2**15 else trust, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(trust, minlength=len(scn.trusts)))]
    for ti, code in enumerate(scn.trust_codes):
        mine = by_trust[bounds[ti]:bounds[ti + 1]]
        acquired = raw.exams.arrival[mine]  # the exam table is in acquisition order
        left = np.sort(np.where(np.isnan(raw.left_at[mine]), np.inf, raw.left_at[mine]))
        waiting = np.searchsorted(acquired, grid, side="right") - np.searchsorted(left, grid, side="right")
        rows.append(pd.DataFrame({"time_h": grid, "trust": code, "waiting": waiting}))
    return pd.concat(rows, ignore_index=True)


def session_split(raw: RawRun) -> tuple[np.ndarray, np.ndarray]:
    """Per reporter, hours of core-session reads inside the session and past its end (overtime).

    A read starts inside an on-duty interval; the exam in hand is finished after the interval
    ends, and that tail is overtime. Home reads are extra sessions, in neither figure.
    """
    n = len(raw.reporters)
    inside, overtime = np.zeros(n), np.zeros(n)
    horizon = raw.scenario.horizon_hours
    core_like = np.flatnonzero(((raw.route == ROUTE_CODE["core"]) | (raw.route == ROUTE_CODE["brokered"]))
                               & (raw.reader >= 0)).astype(np.int32)
    readers = raw.reader[core_like]  # a 16-bit stable sort is a radix sort: O(n)
    order = core_like[np.argsort(readers.astype(np.int16) if n < 2**15 else readers, kind="stable")]
    bounds = np.r_[0, np.cumsum(np.bincount(readers, minlength=n))]
    del core_like, readers
    # each reporter's reads are a contiguous slice of `order`, gathered one reporter at a time (no
    # full-size copies of the start and end times at the statistics' memory peak)
    for i, reporter in enumerate(raw.reporters):
        lo, hi = bounds[i], bounds[i + 1]
        if lo == hi or not reporter.intervals:
            continue
        spans = np.asarray(reporter.intervals)
        rows = order[lo:hi]
        start, end = raw.left_at[rows], np.minimum(raw.done_at[rows], horizon)
        session_end = spans[np.maximum(np.searchsorted(spans[:, 0], start, side="right") - 1, 0), 1]
        inside[i] = np.sum(np.minimum(end, session_end) - start)
        overtime[i] = np.sum(np.maximum(end - session_end, 0.0))
    return inside, overtime


def reporter_table(raw: RawRun, oc: Outcome) -> pd.DataFrame:
    """Per reporter: session hours, reading hours (all routes), reading inside sessions, overtime
    (finishing the exam in hand after a session), exams read and utilisation (busy share inside sessions)."""
    scn = raw.scenario
    n = len(raw.reporters)
    started = raw.reader >= 0
    reader = raw.reader[started]
    hours = np.bincount(reader, weights=oc.reading_hours[started], minlength=n)
    exams = np.bincount(raw.reader[oc.reported], minlength=n)
    session = np.array([r.session_hours for r in raw.reporters])
    inside, overtime = session_split(raw)
    with np.errstate(invalid="ignore", divide="ignore"):
        utilisation = np.where(session > 0, inside / session, np.nan)
    return pd.DataFrame({
        "reporter_id": [r.reporter_id for r in raw.reporters],
        "group": [r.group for r in raw.reporters],
        "role": [r.role for r in raw.reporters],
        "trust": [scn.trust_codes[r.home_trust] for r in raw.reporters],
        "session_hours": session,
        "reading_hours": hours,
        "in_session_hours": inside,
        "overtime_hours": overtime,
        "hourly_cost": [r.hourly_cost for r in raw.reporters],
        "exams_read": exams,
        "utilisation": utilisation,
    })


def workforce_metrics(raw: RawRun, reporters: pd.DataFrame) -> pd.DataFrame:
    """Consortium-level WTE delivered and utilisation in session, as tidy rows."""
    scn = raw.scenario
    wte = reporters["reading_hours"].sum() / (scn.finance.hours_per_wte_week * scn.horizon_hours / HOURS_PER_WEEK)
    session = reporters["session_hours"].sum()
    utilisation = reporters["in_session_hours"].sum() / session if session > 0 else np.nan
    return pd.DataFrame({"trust": ALL, "modality": ALL, "urgency": ALL,
                         "metric": ["wte_delivered", "utilisation", "session_hours", "overtime_hours"],
                         "value": [wte, utilisation, session, reporters["overtime_hours"].sum()]})
