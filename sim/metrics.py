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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim import market, timeline_kernels
from sim.exam_sums import HOURS_28_DAYS, ExamSums, Prices, exam_sums, turnaround_by_cell
from sim.finance import counterfactual_price, inter_trust_charge, outsourcing_price, price_kinds, route_cost, \
    tariff, teleradiology_price
from sim.model import RawRun
from sim.scenario import HOURS_PER_WEEK
from sim.worklist import ROUTE_CODE, ROUTES

ALL = "ALL"
KEYS = ["trust", "modality", "urgency"]


IN_HOUSE = tuple(ROUTE_CODE[r] for r in ("core", "home", "brokered"))


@dataclass(frozen=True)
class Outcome:
    """Per-exam derived outcome (ExamTable order) and every per-exam sum of the statistics (`sums`,
    sim.exam_sums: one compiled pass).

    Full-size float arrays that follow from the raw run by a line of arithmetic (report times, reading
    hours, cost and charge by route) are computed on use rather than held, and prices are kept per
    modality x band x urgency combination: the statistics hold one at a time, ~100 MB less at a
    consortium-year's memory peak.
    """

    raw: RawRun = field(repr=False)
    route: np.ndarray  # final route code: a read still in hand at the horizon counts as unreported
    reported: np.ndarray  # reported in-house (core, home or brokered) by the horizon
    outsourced: np.ndarray  # sent to the company by the threshold rule (report back or not)
    teleradiology: np.ndarray  # taken by the night contract (report back or not)
    reading_trust: np.ndarray  # home trust of the reader (-1 if none)
    kind: np.ndarray  # each exam's modality x band x urgency combination (price_kinds)
    prices: Prices = field(repr=False)  # £ per combination
    posted: np.ndarray  # posted to the broker's market (sim.market.posted_mask)
    sums: ExamSums = field(repr=False)

    @property
    def core(self) -> np.ndarray:
        return self.route == ROUTE_CODE["core"]

    @property
    def has_report(self) -> np.ndarray:
        """A report is back by the horizon, whoever read it (in-house, the company or the night contract)."""
        back_by_horizon = self.raw.done_at <= self.raw.scenario.horizon_hours
        return self.reported | ((self.outsourced | self.teleradiology) & back_by_horizon)

    @property
    def reported_at(self) -> np.ndarray:
        """Hours; NaN if no report by the horizon."""
        return np.where(self.has_report, self.raw.done_at, np.nan)

    @property
    def reading_hours(self) -> np.ndarray:
        """In-house reading time spent by the horizon (in-progress reads included), hours."""
        return _reading_hours(self.raw)

    @property
    def cost(self) -> np.ndarray:
        """£ the report costs the consortium by its route (0 if unreported; sim.finance.route_cost)."""
        hourly_cost = np.array([r.hourly_cost for r in self.raw.reporters] + [np.nan])
        return route_cost(self.raw.scenario, self.route, self.reading_hours, self.raw.reader, hourly_cost,
                          self.kind, self.prices.outsourcing, self.prices.teleradiology)

    @property
    def charge(self) -> np.ndarray:
        """£ inter-trust charge the owning trust pays the reading trust (brokered only)."""
        return inter_trust_charge(self.raw.scenario, self.route, self.kind)

    @property
    def counterfactual(self) -> np.ndarray:
        """£ per exam had a company reported it (NaN for work no company prices)."""
        return self.prices.counterfactual[self.kind]

    @property
    def income(self) -> np.ndarray:
        """£ commissioner income per exam: its tariff if reported by the horizon, any route, else 0."""
        return np.where(self.has_report, self.prices.income[self.kind], 0.0)


def _started(raw: RawRun) -> np.ndarray:
    """An in-house reader took the exam (report back by the horizon or still in hand)."""
    in_house = np.zeros(len(ROUTES), dtype=bool)
    in_house[list(IN_HOUSE)] = True
    return in_house[raw.route]  # a look-up by code: np.isin sorts


def _reading_hours(raw: RawRun) -> np.ndarray:
    hours = np.minimum(raw.done_at, raw.scenario.horizon_hours)  # in place from here: one per-exam array, not three
    hours -= raw.left_at
    # an episode taken just before the horizon is read exam after exam: a later exam's reading may start
    # after the horizon, and none of its time falls inside it
    np.maximum(hours, 0.0, out=hours)
    hours[~_started(raw)] = 0.0
    return hours


def outcome(raw: RawRun) -> Outcome:
    """The per-exam outcome and every per-exam sum of the statistics, in one pass (sim.exam_sums)."""
    scn, ex = raw.scenario, raw.exams
    kind, (m, b, u) = price_kinds(scn, ex)
    prices = Prices(outsourcing=outsourcing_price(scn, m, b, u), teleradiology=teleradiology_price(scn, m, b, u),
                    insourcing=tariff(scn, "insourcing_tariff", m, b), inter_trust=tariff(scn, "inter_trust_charge", m, b),
                    counterfactual=counterfactual_price(scn, m, b, u), income=tariff(scn, "commissioner_income", m, b))
    posted = market.posted_mask(raw, kind)
    # time windows are index ranges of the acquisition-ordered table (bisection: no per-exam arithmetic)
    arrival, horizon = ex.arrival, scn.horizon_hours
    first_counted = int(np.searchsorted(arrival, scn.warmup_hours, side="left"))
    due_end = np.array([_count_due(arrival, urgency.target_hours, horizon) for urgency in scn.urgencies], dtype=np.int64)
    holidays = day_ranges(arrival, scn.bank_holiday_days) if scn.demand.bank_holidays else []
    sums = exam_sums(raw, kind, prices, posted,
                     hourly_cost=np.array([r.hourly_cost for r in raw.reporters], dtype=np.float64),
                     reporter_trust=np.array([r.home_trust for r in raw.reporters], dtype=np.int64),
                     first_counted=first_counted, due_end=due_end,
                     due_28_end=_count_due(arrival, HOURS_28_DAYS, horizon),
                     holiday_ranges=np.array(holidays, dtype=np.int64).reshape(-1, 2))
    return Outcome(raw, sums.route, sums.reported, sums.outsourced, sums.teleradiology, sums.reading_trust, kind,
                   prices, posted, sums)


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


def _count_due(arrival: np.ndarray, window: float, horizon: float) -> int:
    """How many exams (ascending acquisition times) fall due by the horizon: arrival + window <= horizon."""
    return _first_index(arrival, lambda a: a + window > horizon)


def _first_index(ascending: np.ndarray, predicate) -> int:
    """The first index whose value satisfies `predicate` (False then True along the array; len if never).

    A bisection that applies the elementwise test itself, so a range found this way is exactly the
    mask the test would give over the whole array, at no per-element cost.
    """
    lo, hi = 0, len(ascending)
    while lo < hi:
        mid = (lo + hi) // 2
        if predicate(ascending[mid]):
            hi = mid
        else:
            lo = mid + 1
    return lo


def day_ranges(hours: np.ndarray, days: list[int]) -> list[tuple[int, int]]:
    """Index ranges [first, stop) of the times (hours since the start, ascending, as in the exam table)
    that fall on each of `days` (whole days since the start: floor(hours / 24) is the day), ascending.

    Each day is a run of consecutive times, found by bisection with the elementwise test itself: no
    per-exam arithmetic and no full-size temporaries.
    """
    ranges = []
    for day in sorted(set(days)):
        first = _first_index(hours, lambda h: np.floor(h / 24) >= day)
        ranges.append((first, _first_index(hours, lambda h: np.floor(h / 24) >= day + 1)))
    return ranges


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


def _turnaround_quantiles(raw: RawRun, oc: Outcome, n_trusts: int, n_modalities: int, n_urgencies: int
                          ) -> list[np.ndarray]:
    """(groups, 3) turnaround median, 90th and 95th percentiles (hours; exams acquired after the
    warm-up and reported by the horizon) per cell, per trust and for the consortium; NaN where none.

    The values come grouped by cell (sim.exam_sums.turnaround_by_cell), so a trust's are one slice too.
    A quantile does not depend on the order of its values, so the consortium's is taken last,
    partitioning the values in place.
    """
    first_counted = int(np.searchsorted(raw.exams.arrival, raw.scenario.warmup_hours, side="left"))
    values, cells_before = turnaround_by_cell(raw, oc.sums, first_counted)
    by_cell = _segment_quantiles(values, cells_before)
    by_trust = _segment_quantiles(values, cells_before[::n_modalities * n_urgencies])
    whole = np.full((1, 3), np.nan)
    if values.size:
        whole[0] = np.quantile(values, (0.5, 0.9, 0.95), overwrite_input=True)
    return [by_cell, by_trust, whole]


def metrics_table(raw: RawRun, oc: Outcome | None = None) -> pd.DataFrame:
    """Tidy metrics: trust, modality, urgency, metric, value; "ALL" marks aggregated levels."""
    scn = raw.scenario
    oc = outcome(raw) if oc is None else oc
    n_m, n_u = len(scn.modalities), len(scn.urgencies)
    trusts = np.array(scn.trust_codes, dtype=object)
    modalities = np.array([m.code for m in scn.modalities], dtype=object)
    urgencies = np.array([u.code for u in scn.urgencies], dtype=object)
    n_cells = len(trusts) * n_m * n_u
    # sums are additive: once per cell (sim.exam_sums), then cells add up into trusts and the consortium
    by_cell = oc.sums.by_cell()
    present = np.flatnonzero(by_cell["initial_backlog"] + by_cell["arrivals"])
    levels = [  # (number of codes, labels of the codes kept)
        (n_cells, (trusts[present // n_u // n_m], modalities[present // n_u % n_m], urgencies[present % n_u]),
         present),
        (len(trusts), (trusts, ALL, ALL), np.arange(len(trusts))),
        (1, (ALL, ALL, ALL), np.array([0])),
    ]
    summed = [by_cell,
              {name: v.reshape(len(trusts), -1).sum(axis=1) for name, v in by_cell.items()},
              {name: v.sum(keepdims=True) for name, v in by_cell.items()}]
    quantiles = _turnaround_quantiles(raw, oc, len(trusts), n_m, n_u)
    present_kinds = np.flatnonzero(np.bincount(oc.kind, minlength=len(oc.prices.counterfactual)))
    counterfactual_defined = not np.isnan(oc.prices.counterfactual[present_kinds]).all()
    wte_hours = scn.finance.premium_hours_per_wte_week * scn.horizon_hours / HOURS_PER_WEEK
    frames = []
    capacity = capacity_cost_by_trust(raw)
    received = oc.sums.charge_received
    for k, (n_groups, (t, m, u), keep) in enumerate(levels):
        values = _finish(summed[k], quantiles[k], counterfactual_defined, wte_hours)
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
    # one bin per owning trust x (reading trust or none) x route, summed in sim.exam_sums
    sums = oc.sums
    size = n_t * (n_t + 1) * n_r
    exams, hours = sums.flow_exams, sums.flow_hours
    route = np.arange(size) % n_r
    paid = np.where(route == ROUTE_CODE["home"], sums.flow_cost, sums.flow_charge)
    keep = np.flatnonzero((exams > 0) & np.isin(route, IN_HOUSE))
    codes = np.array(scn.trust_codes, dtype=object)
    return pd.DataFrame({
        "owning_trust": codes[keep // n_r // (n_t + 1)],
        "reading_trust": codes[keep // n_r % (n_t + 1) - 1],
        "route": np.array(ROUTES, dtype=object)[keep % n_r],
        "exams": exams[keep],
        "reading_hours": hours[keep],
        "paid_gbp": paid[keep],
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
    # one pass over the exams, no sort (sim.timeline_kernels): a count per trust and grid time
    waiting = timeline_kernels.backlog_counts(raw.exams.trust, raw.exams.arrival, raw.left_at, grid, len(scn.trusts))
    rows = [pd.DataFrame({"time_h": grid, "trust": code, "waiting": waiting[ti]})
            for ti, code in enumerate(scn.trust_codes)]
    return pd.concat(rows, ignore_index=True)


def session_split(raw: RawRun) -> tuple[np.ndarray, np.ndarray]:
    """Per reporter, hours of core-session reads inside the session and past its end (overtime).

    A read starts inside an on-duty interval; the exam in hand is finished after the interval
    ends, and that tail is overtime. Home reads are extra sessions, in neither figure.
    """
    n = len(raw.reporters)
    inside, overtime = np.zeros(n), np.zeros(n)
    spans = np.array([span for r in raw.reporters for span in r.intervals], dtype=np.float64).reshape(-1, 2)
    per_reporter = np.r_[0, np.cumsum([len(r.intervals) for r in raw.reporters], dtype=np.int64)]
    # the per-read terms in one pass, grouped by reader (sim.timeline_kernels); each reporter's are
    # summed by np.sum as before: numpy's pairwise summation, not a sequential loop, gives the last bits
    bounds, inside_terms, overtime_terms = timeline_kernels.session_terms(
        raw.route, raw.reader, raw.left_at, raw.done_at, raw.scenario.horizon_hours, ROUTE_CODE["core"],
        ROUTE_CODE["brokered"], np.ascontiguousarray(spans[:, 0]), np.ascontiguousarray(spans[:, 1]), per_reporter)
    for i in np.flatnonzero(np.diff(bounds)):
        inside[i] = np.sum(inside_terms[bounds[i]:bounds[i + 1]])
        overtime[i] = np.sum(overtime_terms[bounds[i]:bounds[i + 1]])
    return inside, overtime


def reporter_table(raw: RawRun, oc: Outcome) -> pd.DataFrame:
    """Per reporter: session hours, reading hours (all routes), reading inside sessions, overtime
    (finishing the exam in hand after a session), exams read and utilisation (busy share inside sessions)."""
    scn = raw.scenario
    hours, exams = oc.sums.reporter_hours, oc.sums.reporter_reports  # per reporter (sim.exam_sums)
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
