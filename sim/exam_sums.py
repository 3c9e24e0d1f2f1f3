"""Every per-exam sum of one replication's statistics, in one compiled pass over the exams.

The metrics are ~40 sums per trust x modality x urgency cell (counts of exams meeting a condition,
hours, pounds), plus the flows between trusts (owning x reading trust x route) and each reporter's
reading hours and reports. Each is defined per exam by the expressions below, which are exactly
those of sim.metrics.Outcome's per-exam arrays and sim.finance.route_cost / inter_trust_charge; a sum
adds its terms in exam order, as ``np.bincount`` does (tests/test_fast_paths.py checks both against
the numpy definitions, bit for bit). The loop is compiled (sim/_loops.pyx, Cython): it reads each exam once
and keeps no full-size temporary, where numpy needed a pass and a temporary per condition.

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

from sim import _loops
from sim.worklist import ROUTES

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
"""Names of the per-cell sums, in the order of the rows of `ExamSums.by_cell_rows` (sim._loops.sum_rows()
names the rows the compiled loop fills; a test checks they agree)."""
HOURS_28_DAYS = 28 * 24
WEEKDAY_HOURS = 5 * 24
CORE_HOURS = (8.0, 18.0)
"""Weekday hours that count as in hours (Mon-Fri 08:00-18:00, not bank holidays); all else is out of hours."""

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
    codes, hours = (lambda a: np.asarray(a, dtype=np.int16)), (lambda a: np.asarray(a, dtype=np.float64))  # no-ops
    _loops.exam_pass(
        codes(ex.trust), codes(ex.modality), codes(ex.urgency), hours(ex.arrival), hours(ex.work_hours),
        hours(raw.left_at), hours(raw.done_at), np.asarray(raw.route, dtype=np.int8),
        np.asarray(raw.reader, dtype=np.int32), kind, np.asarray(posted, dtype=bool).view(np.uint8), float(scn.horizon_hours), n_t, n_m, n_u, first_counted, due_end.astype(np.int64),
        targets, int(due_28_end), holiday_ranges.astype(np.int64).reshape(-1, 2), hourly_cost.astype(np.float64),
        reporter_trust.astype(np.int64), prices.outsourcing, np.nan_to_num(prices.outsourcing),
        np.nan_to_num(prices.teleradiology), prices.insourcing, prices.inter_trust, prices.counterfactual, prices.income,
        route, flags.view(np.uint8), reading_trust, by_cell, flows, reporters, received)
    return ExamSums(route, flags[0], flags[1], flags[2], reading_trust, by_cell,
                    flows[0].astype(np.int64), flows[1], flows[2], flows[3],
                    reporters[0], reporters[1].astype(np.int64), received)


def turnaround_by_cell(raw, sums: ExamSums, first_counted: int) -> tuple[np.ndarray, np.ndarray]:
    """Turnaround hours of the exams the metrics count (acquired after the warm-up, report back by the
    horizon), grouped by cell, exam order within a cell; and the cells' bounds (values of cell c are
    values[bounds[c]:bounds[c + 1]]; a trust's cells are consecutive). One pass: the counts per cell
    are the pass's `has_tat` sums."""
    scn, ex = raw.scenario, raw.exams
    counts = sums.by_cell_rows[CELL_SUMS.index("has_tat")].astype(np.int64)
    bounds = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    values = np.empty(int(bounds[-1]))
    _loops.scatter_turnaround(ex.trust, ex.modality, ex.urgency, ex.arrival, raw.done_at, sums.reported.view(np.uint8),
                              sums.outsourced.view(np.uint8), sums.teleradiology.view(np.uint8),
                              float(scn.horizon_hours), len(scn.modalities), len(scn.urgencies), first_counted,
                              bounds[:-1].copy(), values)
    return values, bounds
