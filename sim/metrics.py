"""One replication's numbers, from its raw per-exam outcome (no monitors in the hot loop).

Counting conventions (conservation holds exactly per trust):
    initial_backlog + arrivals = reported + outsourced + unreported_end
where `reported` are in-house reports finished by the horizon, `outsourced` exams sent to the
company (whether or not their report is back), and `unreported_end` everything else (waiting,
or in a reporter's hands at the horizon). Counts cover the whole horizon; turnaround statistics
cover exams acquired after the warm-up. Missing values are NaN, never sentinels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.finance import outsourcing_price, route_cost
from sim.model import RawRun
from sim.scenario import HOURS_PER_WEEK
from sim.worklist import ROUTE_CODE

ALL = "ALL"
HOURS_28_DAYS = 28 * 24
KEYS = ["trust", "modality", "urgency"]
COUNT_METRICS = ["initial_backlog", "arrivals", "reported", "outsourced", "unreported_end"]


def exam_frame(raw: RawRun) -> pd.DataFrame:
    """Per-exam outcome table (codes decoded), the basis of every statistic and the activity log."""
    scn, ex = raw.scenario, raw.exams
    horizon = scn.horizon_hours
    core = (raw.route == ROUTE_CODE["core"]) & (raw.done_at <= horizon)
    outsourced = raw.route == ROUTE_CODE["outsourced"]
    reported_at = np.where(core | (outsourced & (raw.done_at <= horizon)), raw.done_at, np.nan)
    reading_hours = np.where(raw.route == ROUTE_CODE["core"], np.minimum(raw.done_at, horizon) - raw.left_at, 0.0)
    hourly_cost = np.array([r.hourly_cost for r in raw.reporters] + [np.nan])
    price = outsourcing_price(scn, ex.modality, ex.band, ex.urgency)
    target = np.array([u.target_hours for u in scn.urgencies])[ex.urgency]
    return pd.DataFrame({
        "trust": pd.Categorical.from_codes(ex.trust, scn.trust_codes),
        "modality": pd.Categorical.from_codes(ex.modality, [m.code for m in scn.modalities]),
        "urgency": pd.Categorical.from_codes(ex.urgency, [u.code for u in scn.urgencies]),
        "band": ex.band + 1,
        "subspecialty": pd.Categorical.from_codes(ex.subspecialty, scn.subspecialties),
        "patient": ex.patient,
        "acquired_h": ex.arrival,
        "left_worklist_h": raw.left_at,
        "reported_h": reported_at,
        "reader": raw.reader,
        "is_core": core,
        "is_outsourced": outsourced,
        "reading_hours": reading_hours,
        "target_hours": target,
        "cost": route_cost(reading_hours, raw.reader, hourly_cost, core, outsourced, price),
        "counterfactual_cost": price,
    })


def _group_metrics(df: pd.DataFrame, keys: list[str], horizon: float, warmup: float) -> pd.DataFrame:
    """Wide table of every metric for each group of `keys` (an empty list = the whole consortium)."""
    acquired = df["acquired_h"].to_numpy()
    reported = df["reported_h"].to_numpy()
    left = df["left_worklist_h"].to_numpy()
    target = df["target_hours"].to_numpy()
    after_warmup = acquired >= warmup
    tat = np.where(after_warmup, reported - acquired, np.nan)
    due = after_warmup & (acquired + target <= horizon)
    due_28 = after_warmup & (acquired + HOURS_28_DAYS <= horizon)
    work = pd.DataFrame({
        "initial_backlog": acquired < 0,
        "arrivals": acquired >= 0,
        "reported": df["is_core"].to_numpy(),
        "outsourced": df["is_outsourced"].to_numpy(),
        "tat": tat,
        "wait": np.where(after_warmup, left - acquired, np.nan),
        "due": due,
        "met": due & (reported - acquired <= target),
        "due_28": due_28,
        "late_28": due_28 & ~(reported - acquired <= HOURS_28_DAYS),
        "reading_hours": df["reading_hours"].to_numpy(),
        "cost_core": np.where(df["is_core"], df["cost"], 0.0),
        "cost_outsourced": np.where(df["is_outsourced"], df["cost"], 0.0),
        "counterfactual_cost": np.where(df["is_core"] | df["is_outsourced"], df["counterfactual_cost"], 0.0),
    })
    for key in keys:
        work[key] = df[key]
    grouped = work.groupby(keys, observed=True) if keys else work.groupby(np.zeros(len(work), dtype=int))
    sums = grouped[["initial_backlog", "arrivals", "reported", "outsourced", "due", "met", "due_28", "late_28",
                    "reading_hours", "cost_core", "cost_outsourced", "counterfactual_cost"]].sum()
    quantiles = grouped["tat"].quantile([0.5, 0.9, 0.95]).unstack()
    out = pd.DataFrame(index=sums.index)
    for name in COUNT_METRICS[:-1]:
        out[name] = sums[name].astype(float)
    out["unreported_end"] = out["initial_backlog"] + out["arrivals"] - out["reported"] - out["outsourced"]
    out["wait_mean_h"] = grouped["wait"].mean()
    out["tat_mean_h"] = grouped["tat"].mean()
    out["tat_median_h"] = quantiles[0.5]
    out["tat_p90_h"] = quantiles[0.9]
    out["tat_p95_h"] = quantiles[0.95]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share_within_target"] = sums["met"] / sums["due"].where(sums["due"] > 0)
        out["share_over_28d"] = sums["late_28"] / sums["due_28"].where(sums["due_28"] > 0)
    out["reading_hours"] = sums["reading_hours"]
    out["cost_core"] = sums["cost_core"]
    out["cost_outsourced"] = sums["cost_outsourced"]
    out["cost_total"] = sums["cost_core"] + sums["cost_outsourced"]
    # without a price list there is no counterfactual: NaN, never £0
    out["counterfactual_cost"] = np.nan if df["counterfactual_cost"].isna().all() else sums["counterfactual_cost"]
    out["saving_vs_outsourcing"] = out["counterfactual_cost"] - out["cost_total"]
    return out


def metrics_table(raw: RawRun, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """Tidy metrics: trust, modality, urgency, metric, value; "ALL" marks aggregated levels."""
    scn = raw.scenario
    df = exam_frame(raw) if df is None else df
    horizon, warmup = scn.horizon_hours, scn.warmup_hours
    frames = []
    for keys in (KEYS, ["trust"], []):
        wide = _group_metrics(df, keys, horizon, warmup).reset_index(drop=not keys)
        for key in KEYS:
            if key not in keys:
                wide[key] = ALL
        frames.append(wide.melt(id_vars=KEYS, var_name="metric", value_name="value"))
    tidy = pd.concat(frames, ignore_index=True)
    for key in KEYS:
        tidy[key] = tidy[key].astype(str)
    return tidy


def backlog_series(raw: RawRun) -> pd.DataFrame:
    """Exams waiting in each trust's worklist (acquired, not yet started or sent out) over time."""
    scn = raw.scenario
    step = scn.backlog_interval_hours
    grid = np.arange(0.0, scn.horizon_hours + step / 2, step)
    rows = []
    for ti, code in enumerate(scn.trust_codes):
        mine = raw.exams.trust == ti
        acquired = np.sort(raw.exams.arrival[mine])
        left = np.sort(np.where(np.isnan(raw.left_at[mine]), np.inf, raw.left_at[mine]))
        waiting = np.searchsorted(acquired, grid, side="right") - np.searchsorted(left, grid, side="right")
        rows.append(pd.DataFrame({"time_h": grid, "trust": code, "waiting": waiting}))
    return pd.concat(rows, ignore_index=True)


def reporter_table(raw: RawRun, df: pd.DataFrame) -> pd.DataFrame:
    """Per reporter: session hours, reading hours, exams read and utilisation in session."""
    scn = raw.scenario
    core = df["is_core"].to_numpy()
    reader = raw.reader[core]
    n = len(raw.reporters)
    hours = np.bincount(reader, weights=df["reading_hours"].to_numpy()[core], minlength=n)
    exams = np.bincount(reader, minlength=n)
    session = np.array([r.session_hours for r in raw.reporters])
    with np.errstate(invalid="ignore", divide="ignore"):
        utilisation = np.where(session > 0, hours / session, np.nan)
    return pd.DataFrame({
        "reporter_id": [r.reporter_id for r in raw.reporters],
        "group": [r.group for r in raw.reporters],
        "role": [r.role for r in raw.reporters],
        "trust": [scn.trust_codes[r.home_trust] for r in raw.reporters],
        "session_hours": session,
        "reading_hours": hours,
        "exams_read": exams,
        "utilisation": utilisation,
    })


def workforce_metrics(raw: RawRun, reporters: pd.DataFrame) -> pd.DataFrame:
    """Consortium-level WTE delivered and utilisation in session, as tidy rows."""
    scn = raw.scenario
    wte = reporters["reading_hours"].sum() / (scn.finance.hours_per_wte_week * scn.horizon_hours / HOURS_PER_WEEK)
    session = reporters["session_hours"].sum()
    utilisation = reporters["reading_hours"].sum() / session if session > 0 else np.nan
    return pd.DataFrame({"trust": ALL, "modality": ALL, "urgency": ALL,
                         "metric": ["wte_delivered", "utilisation"], "value": [wte, utilisation]})
