"""The broker's market in numbers, from one replication's raw outcome (no monitors in the hot loop).

Definitions (hours of work are reading hours at speed 1, `ExamTable.work_hours`, so posted, matched
and unmet work add up whoever reads it):

* **posted**: an exam an extra session may read (``sim.policies.home.home_eligible``: its urgency,
  modality and, for the market, a tariff below the owning trust's outsourcing price) that is still
  waiting when it is posted: `home_reporting.min_age_hours` after acquisition, or at its trust's
  go-live on the shared system if that is later, and before the horizon;
* **matched**: posted work taken by an extra session (the home route; a read still in hand at the
  horizon counts, as the session took it);
* **unmet**: posted work not matched (read later in a core session, outsourced, or still waiting);
* **offered session hours**: hours of the extra sessions reporters took, by the reader's home trust
  (after the core read in hand and IT outages), from the sessions' own log;
* **core-time grants**: reading hours of quota the broker granted, by donor and by receiving trust;
* **outsourcing avoided**: the owning trust's outsourcing price of the exams the market (home route)
  and core-time sharing (brokered route) read: what the financial dashboard sets against the tariff
  and the inter-trust charges paid. A price is only counted where the company prices the exam.

Without home reporting nothing is posted: the posted figures are 0, not NaN, so scenarios compare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.policies.home import go_live_hours, home_eligible
from sim.worklist import ROUTE_CODE

if TYPE_CHECKING:
    from sim.metrics import Outcome
    from sim.model import RawRun

ALL = "ALL"

PER_EXAM = ("posted", "posted_work_hours", "matched_work_hours", "unmet_posted", "unmet_work_hours",
            "posted_outsourced", "outsourcing_avoided_home", "outsourcing_avoided_brokered")
"""Market metrics that are sums over exams (so they split by trust, modality and urgency), summed with
the other per-exam metrics in sim.exam_sums by the definitions above."""

PER_TRUST = ("offered_session_hours", "extra_sessions", "core_time_granted_out_hours", "core_time_granted_in_hours")
"""Market metrics of a reader's or a donor's trust (per trust and consortium only)."""


def posted_mask(raw: "RawRun", kind: np.ndarray | None = None) -> np.ndarray:
    """Per exam: whether it was posted to the market (see the module docstring); `kind`: each exam's
    modality x band x urgency combination (sim.finance.price_kinds) when the caller has it."""
    scn, ex = raw.scenario, raw.exams
    cfg = scn.home_reporting
    if cfg is None or not cfg.enabled:
        return np.zeros(len(ex), dtype=bool)
    posted_at = ex.arrival + cfg.min_age_hours
    go_live = go_live_hours(scn)
    if np.isfinite(go_live).any():  # a rollout: work is posted no earlier than its trust's go-live
        np.maximum(posted_at, go_live[ex.trust], out=posted_at)
    with np.errstate(invalid="ignore"):
        still_waiting = np.isnan(raw.left_at) | (raw.left_at >= posted_at)
    return home_eligible(scn, ex, kind) & (posted_at < scn.horizon_hours) & still_waiting


def trust_metrics(raw: "RawRun") -> pd.DataFrame:
    """Tidy rows (trust, modality, urgency, metric, value) of the PER_TRUST metrics, per trust and "ALL"."""
    n = len(raw.scenario.trusts)
    home_trust = np.array([r.home_trust for r in raw.reporters], dtype=np.int64)
    sessions = np.array(raw.records.get("sessions", []), dtype=float).reshape(-1, 4)
    reader_trust = home_trust[sessions[:, 0].astype(np.int64)]
    grants = np.array(raw.records.get("grants", []), dtype=float).reshape(-1, 4)
    values = {
        "offered_session_hours": np.bincount(reader_trust, weights=sessions[:, 3], minlength=n),
        "extra_sessions": np.bincount(reader_trust, minlength=n).astype(float),
        "core_time_granted_out_hours": np.bincount(grants[:, 1].astype(np.int64), weights=grants[:, 3], minlength=n),
        "core_time_granted_in_hours": np.bincount(grants[:, 2].astype(np.int64), weights=grants[:, 3], minlength=n),
    }
    trusts = [*raw.scenario.trust_codes, ALL]
    rows = [(t, ALL, ALL, metric, float(v)) for metric, per_trust in values.items()
            for t, v in zip(trusts, [*per_trust, per_trust.sum()])]
    return pd.DataFrame(rows, columns=["trust", "modality", "urgency", "metric", "value"])


def market_table(raw: "RawRun", oc: "Outcome") -> pd.DataFrame:
    """The eligibility dashboard's basis: posted, matched and unmet work by owning trust x modality x
    subspecialty (exams and work hours), and how much of the posted work went to the company."""
    scn, ex = raw.scenario, raw.exams
    posted = oc.posted
    columns = ["trust", "modality", "subspecialty", "posted_exams", "posted_work_hours", "matched_exams",
               "matched_work_hours", "unmet_exams", "unmet_work_hours", "unmet_outsourced"]
    rows = np.flatnonzero(posted)
    n_m, n_s = len(scn.modalities), len(scn.subspecialties)
    size = len(scn.trusts) * n_m * n_s
    code = (ex.trust[rows].astype(np.int64) * n_m + ex.modality[rows]) * n_s + ex.subspecialty[rows]
    matched = raw.route[rows] == ROUTE_CODE["home"]
    work = ex.work_hours[rows]
    counts = np.bincount(code, minlength=size)
    keep = np.flatnonzero(counts)

    def total(weights: np.ndarray) -> np.ndarray:
        return np.bincount(code, weights=weights, minlength=size)[keep]

    return pd.DataFrame({
        "trust": np.array(scn.trust_codes, dtype=object)[keep // n_s // n_m],
        "modality": np.array([m.code for m in scn.modalities], dtype=object)[keep // n_s % n_m],
        "subspecialty": np.array(scn.subspecialties, dtype=object)[keep % n_s],
        "posted_exams": counts[keep],
        "posted_work_hours": total(work),
        "matched_exams": total(matched).astype(np.int64),
        "matched_work_hours": total(np.where(matched, work, 0.0)),
        "unmet_exams": total(~matched).astype(np.int64),
        "unmet_work_hours": total(np.where(matched, 0.0, work)),
        "unmet_outsourced": total(oc.outsourced[rows]).astype(np.int64),
    })[columns]
