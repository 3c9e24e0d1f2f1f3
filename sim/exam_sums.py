"""Every per-exam sum of one replication's statistics, in one compiled pass over the exams.

The metrics are ~40 sums per trust x modality x urgency cell (counts of exams meeting a condition,
hours, pounds), plus the flows between trusts (owning x reading trust x route) and each reporter's
reading hours and reports. Each is defined per exam by the expressions below, which are exactly
those of sim.metrics.Outcome's per-exam arrays and sim.finance.route_cost / inter_trust_charge; a sum
adds its terms in exam order, as ``np.bincount`` does (tests/test_fast_paths.py checks both against
the numpy definitions, bit for bit). A compiled loop (sim.jit) reads each exam once and keeps no
full-size temporary; numpy needed a pass and a temporary per condition.

Per exam (arrays in exam order; hours since the start of the horizon):
    started        an in-house reader took it (route core, home or brokered)
    reported       started and the report is done by the horizon
    route          the stored route, except that a read still in hand at the horizon is "unreported"
    reading hours  min(done, horizon) - start, at least 0, for started exams (0 otherwise)
    has_report     reported, or sent to the company or the night contract with the report back by the horizon
    turnaround     done - acquired where has_report, else NaN
Time windows are ranges of the acquisition-ordered table (found by bisection in sim.metrics): counted
= acquired after the warm-up; due = counted and its urgency's target falls by the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.jit import compiled
from sim.worklist import ROUTE_CODE, ROUTES

CELL_SUMS = (
    "initial_backlog", "arrivals", "reported", "outsourced", "teleradiology",
    "reported_core", "reported_home", "reported_brokered", "reading_hours", "home_reading_hours",
    "has_wait", "wait_sum", "due", "met", "due_28", "late_28", "reported_after_28d", "has_tat", "tat_sum",
    "acquired_ooh", "ooh_sent_out",
    "cost_core", "cost_home", "cost_brokered", "cost_outsourced", "cost_teleradiology",
    "counterfactual_cost", "commissioner_income", "inter_trust_paid",
    # the broker's market (sim.market.PER_EXAM)
    "posted", "posted_work_hours", "matched_work_hours", "unmet_posted", "unmet_work_hours", "posted_outsourced",
    "outsourcing_avoided_home", "outsourcing_avoided_brokered",
)
"""Names of the per-cell sums, in the order of the rows of `ExamSums.by_cell_rows`."""
# row of each sum, as compiled constants (names: "S_" + the sum's name in capitals; a test checks the order)
(S_INITIAL_BACKLOG, S_ARRIVALS, S_REPORTED, S_OUTSOURCED, S_TELERADIOLOGY, S_REPORTED_CORE, S_REPORTED_HOME,
    S_REPORTED_BROKERED, S_READING_HOURS, S_HOME_READING_HOURS, S_HAS_WAIT, S_WAIT_SUM, S_DUE, S_MET, S_DUE_28,
    S_LATE_28, S_REPORTED_AFTER_28D, S_HAS_TAT, S_TAT_SUM, S_ACQUIRED_OOH, S_OOH_SENT_OUT, S_COST_CORE, S_COST_HOME,
    S_COST_BROKERED, S_COST_OUTSOURCED, S_COST_TELERADIOLOGY, S_COUNTERFACTUAL_COST, S_COMMISSIONER_INCOME,
    S_INTER_TRUST_PAID, S_POSTED, S_POSTED_WORK_HOURS, S_MATCHED_WORK_HOURS, S_UNMET_POSTED, S_UNMET_WORK_HOURS,
    S_POSTED_OUTSOURCED, S_OUTSOURCING_AVOIDED_HOME, S_OUTSOURCING_AVOIDED_BROKERED) = range(len(CELL_SUMS))

HOURS_28_DAYS = 28 * 24
WEEKDAY_HOURS = 5 * 24
CORE_HOURS = (8.0, 18.0)
"""Weekday hours that count as in hours (Mon-Fri 08:00-18:00, not bank holidays); all else is out of hours."""

_UNREPORTED, _CORE, _OUTSOURCED, _HOME, _BROKERED, _TELERADIOLOGY = (
    ROUTE_CODE[r] for r in ("unreported", "core", "outsourced", "home", "brokered", "teleradiology"))
N_ROUTES = len(ROUTES)


@dataclass(frozen=True)
class Prices:
    """£ per exam by modality x band x urgency combination (sim.finance.price_kinds), NaN where unpriced."""

    outsourcing: np.ndarray  # the company's price (NaN: no price list or no price)
    teleradiology: np.ndarray  # the night contract's price, NaN where it does not cover the work
    insourcing: np.ndarray  # the home-session tariff x multiplier (0 if unset)
    inter_trust: np.ndarray  # the inter-trust charge per brokered read (0 if unset)
    counterfactual: np.ndarray  # had a company reported it (NaN: work no company prices)
    income: np.ndarray  # commissioner income per reported exam (0 if unset)


@dataclass(frozen=True)
class ExamSums:
    """The pass's results: per-exam outcome codes, and the sums."""

    route: np.ndarray  # int8 per exam: final route (a read in hand at the horizon is unreported)
    reported: np.ndarray  # bool per exam
    outsourced: np.ndarray  # bool per exam
    teleradiology: np.ndarray  # bool per exam
    reading_trust: np.ndarray  # int16 per exam: the reader's home trust, -1 for none
    by_cell_rows: np.ndarray  # (len(CELL_SUMS), cells) float64; counts are exact integers
    flow_exams: np.ndarray  # (owning trust x (reading trust + 1) x route) int64: in-house routes only
    flow_hours: np.ndarray  # reading hours per flow bin
    flow_cost: np.ndarray  # £ route cost per flow bin
    flow_charge: np.ndarray  # £ inter-trust charge per flow bin
    reporter_hours: np.ndarray  # reading hours per reporter
    reporter_reports: np.ndarray  # int64: exams each reporter read and finished by the horizon
    charge_received: np.ndarray  # £ inter-trust charges received per reading trust

    def by_cell(self) -> dict[str, np.ndarray]:
        return {name: self.by_cell_rows[k] for k, name in enumerate(CELL_SUMS)}


def exam_sums(raw, kind: np.ndarray, prices: Prices, posted: np.ndarray, hourly_cost: np.ndarray,
              reporter_trust: np.ndarray, first_counted: int, due_end: np.ndarray, due_28_end: int,
              holiday_ranges: np.ndarray) -> ExamSums:
    """Run the pass over `raw` (sim.model.RawRun). `hourly_cost` and `reporter_trust` are per reporter;
    `due_end[u]` is the first exam index of urgency u whose target falls after the horizon; `holiday_ranges`
    (k, 2) are the ascending index ranges [first, stop) of exams acquired on bank holidays."""
    scn, ex = raw.scenario, raw.exams
    n, n_t, n_m, n_u = len(ex), len(scn.trusts), len(scn.modalities), len(scn.urgencies)
    route = np.empty(n, dtype=np.int8)
    flags = np.empty((3, n), dtype=np.bool_)  # reported, outsourced, teleradiology
    reading_trust = np.empty(n, dtype=np.int16)
    by_cell = np.zeros((len(CELL_SUMS), n_t * n_m * n_u))
    flows = np.zeros((4, n_t * (n_t + 1) * N_ROUTES))
    reporters = np.zeros((2, len(hourly_cost)))
    received = np.zeros(n_t)
    targets = np.array([u.target_hours for u in scn.urgencies], dtype=np.float64)
    _pass(ex.trust, ex.modality, ex.urgency, ex.arrival, ex.work_hours, raw.left_at, raw.done_at, raw.route,
          raw.reader, kind, posted, float(scn.horizon_hours), n_t, n_m, n_u, first_counted,
          due_end.astype(np.int64), targets, int(due_28_end), holiday_ranges.astype(np.int64).reshape(-1, 2),
          hourly_cost.astype(np.float64), reporter_trust.astype(np.int64),
          prices.outsourcing, np.nan_to_num(prices.outsourcing), np.nan_to_num(prices.teleradiology),
          prices.insourcing, prices.inter_trust, prices.counterfactual, prices.income,
          route, flags, reading_trust, by_cell, flows, reporters, received)
    return ExamSums(route, flags[0], flags[1], flags[2], reading_trust, by_cell,
                    flows[0].astype(np.int64), flows[1], flows[2], flows[3],
                    reporters[0], reporters[1].astype(np.int64), received)


@compiled
def _pass(trust, modality, urgency, arrival, work_hours, left_at, done_at, raw_route, reader, kind, posted,
          horizon, n_t, n_m, n_u, first_counted, due_end, targets, due_28_end, holiday_ranges,
          hourly_cost, reporter_trust, out_price, out_price_or_0, night_price_or_0, home_tariff, charge_tariff,
          counterfactual_price, income_price,
          route_out, flags_out, reading_trust_out, s, flows, reporters, received):  # pragma: no cover (compiled)
    nan = np.nan
    holiday = 0  # the next bank-holiday range that can still contain an exam (exams in acquisition order)
    n_holiday = holiday_ranges.shape[0]
    for i in range(arrival.size):
        c = (trust[i] * n_m + modality[i]) * n_u + urgency[i]
        a, left, done, raw_code, k = arrival[i], left_at[i], done_at[i], raw_route[i], kind[i]
        started = raw_code == _CORE or raw_code == _HOME or raw_code == _BROKERED
        reported = started and done <= horizon
        outsourced = raw_code == _OUTSOURCED
        night = raw_code == _TELERADIOLOGY
        code = _UNREPORTED if started and not reported else raw_code
        route_out[i] = code
        flags_out[0, i] = reported
        flags_out[1, i] = outsourced
        flags_out[2, i] = night
        r = reader[i]
        rt = reporter_trust[r] if r >= 0 else -1
        reading_trust_out[i] = rt

        hours = 0.0
        if started:  # np.minimum / np.maximum: NaN propagates
            hours = done if (done <= horizon or done != done) else horizon
            hours -= left
            if hours < 0.0:  # a later exam of an episode taken just before the horizon
                hours = 0.0
        cost = 0.0
        if code == _CORE or code == _BROKERED:
            cost = hours * (hourly_cost[r] if r >= 0 else nan)
        elif code == _HOME:
            cost = home_tariff[k]
        elif code == _OUTSOURCED:
            cost = out_price[k]
        elif code == _TELERADIOLOGY:
            cost = night_price_or_0[k]
        charge = charge_tariff[k] if code == _BROKERED else 0.0

        # counts and sums over every exam of the cell
        if a < 0:
            s[S_INITIAL_BACKLOG, c] += 1.0
        if a >= 0:
            s[S_ARRIVALS, c] += 1.0
        if reported:
            s[S_REPORTED, c] += 1.0
        if outsourced:
            s[S_OUTSOURCED, c] += 1.0
        if night:
            s[S_TELERADIOLOGY, c] += 1.0
        if code == _CORE:
            s[S_REPORTED_CORE, c] += 1.0
            s[S_COST_CORE, c] += cost
        elif code == _HOME:
            s[S_REPORTED_HOME, c] += 1.0
            s[S_HOME_READING_HOURS, c] += hours
            s[S_COST_HOME, c] += cost
        elif code == _BROKERED:
            s[S_REPORTED_BROKERED, c] += 1.0
            s[S_COST_BROKERED, c] += cost
        elif code == _OUTSOURCED:
            s[S_COST_OUTSOURCED, c] += cost
        elif code == _TELERADIOLOGY:
            s[S_COST_TELERADIOLOGY, c] += cost
        s[S_READING_HOURS, c] += hours
        s[S_INTER_TRUST_PAID, c] += charge

        counted = i >= first_counted
        wait = left - a
        if counted and wait == wait:
            s[S_HAS_WAIT, c] += 1.0
            s[S_WAIT_SUM, c] += wait
        has_report = reported or ((outsourced or night) and done <= horizon)
        tat = done - a if has_report else nan
        if counted:
            u = urgency[i]
            if i < due_end[u]:
                s[S_DUE, c] += 1.0
                if tat <= targets[u]:
                    s[S_MET, c] += 1.0
            if i < due_28_end:
                s[S_DUE_28, c] += 1.0
                if not tat <= HOURS_28_DAYS:
                    s[S_LATE_28, c] += 1.0
            if tat > HOURS_28_DAYS:
                s[S_REPORTED_AFTER_28D, c] += 1.0
            if tat == tat:
                s[S_HAS_TAT, c] += 1.0
                s[S_TAT_SUM, c] += tat

        if a >= 0:  # out of hours: not a weekday's core hours, or a bank holiday (the backlog never is)
            while holiday < n_holiday and i >= holiday_ranges[holiday, 1]:
                holiday += 1
            hour = a % 168.0
            clock = hour % 24.0
            inside = hour < WEEKDAY_HOURS and clock >= CORE_HOURS[0] and clock < CORE_HOURS[1]
            if inside and holiday < n_holiday and i >= holiday_ranges[holiday, 0]:
                inside = False
            if not inside:
                s[S_ACQUIRED_OOH, c] += 1.0
                if outsourced or night:
                    s[S_OOH_SENT_OUT, c] += 1.0

        counterfactual = counterfactual_price[k]
        if code != _UNREPORTED and counterfactual == counterfactual:
            s[S_COUNTERFACTUAL_COST, c] += counterfactual
        if has_report:
            s[S_COMMISSIONER_INCOME, c] += income_price[k]

        # the market: posted work, matched by an extra session (the stored home route: a read in hand counts)
        matched = raw_code == _HOME
        if posted[i]:
            s[S_POSTED, c] += 1.0
            s[S_POSTED_WORK_HOURS, c] += work_hours[i]
            if not matched:
                s[S_UNMET_POSTED, c] += 1.0
                s[S_UNMET_WORK_HOURS, c] += work_hours[i]
            if outsourced:
                s[S_POSTED_OUTSOURCED, c] += 1.0
        if matched:
            s[S_MATCHED_WORK_HOURS, c] += work_hours[i]
        if code == _HOME:
            s[S_OUTSOURCING_AVOIDED_HOME, c] += out_price_or_0[k]
        elif code == _BROKERED:
            s[S_OUTSOURCING_AVOIDED_BROKERED, c] += out_price_or_0[k]

        # flows between trusts (in-house routes) and each reporter's totals
        if code == _CORE or code == _HOME or code == _BROKERED:
            f = (trust[i] * (n_t + 1) + rt + 1) * N_ROUTES + code
            flows[0, f] += 1.0
            flows[1, f] += hours
            flows[2, f] += cost
            flows[3, f] += charge
        if r >= 0:
            reporters[0, r] += hours
            if reported:
                reporters[1, r] += 1.0
        if charge != 0.0:
            received[rt if rt > 0 else 0] += charge


def turnaround_by_cell(raw, sums: ExamSums, first_counted: int) -> tuple[np.ndarray, np.ndarray]:
    """Turnaround hours of the exams the metrics count (acquired after the warm-up, report back by the
    horizon), grouped by cell, exam order within a cell; and the cells' bounds (values of cell c are
    values[bounds[c]:bounds[c + 1]]; a trust's cells are consecutive). One pass: the counts per cell
    are the pass's `has_tat` sums."""
    scn, ex = raw.scenario, raw.exams
    counts = sums.by_cell_rows[S_HAS_TAT].astype(np.int64)
    bounds = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    values = np.empty(int(bounds[-1]))
    _scatter_turnaround(ex.trust, ex.modality, ex.urgency, ex.arrival, raw.done_at, sums.reported, sums.outsourced,
                        sums.teleradiology, float(scn.horizon_hours), len(scn.modalities), len(scn.urgencies),
                        first_counted, bounds[:-1].copy(), values)
    return values, bounds


@compiled
def _scatter_turnaround(trust, modality, urgency, arrival, done_at, reported, outsourced, night, horizon, n_m, n_u,
                        first_counted, next_slot, values):  # pragma: no cover (compiled)
    for i in range(first_counted, arrival.size):
        if reported[i] or ((outsourced[i] or night[i]) and done_at[i] <= horizon):  # has_report
            c = (trust[i] * n_m + modality[i]) * n_u + urgency[i]
            values[next_slot[c]] = done_at[i] - arrival[i]
            next_slot[c] += 1
