"""The harm check: did the pilot's participants report less core work? (a non-inferiority question)

Cohort. Participants are the staff list given (``participants``), else everyone with an extra-route
report during the pilot; the comparison is the list given (``comparison``), else every other reporter
in the log. Every reporter of the cohort is listed in the cohort table with whether the model uses
them and why not (nobody is dropped silently).

Outcome. Reporter-weeks of Monday-aligned whole weeks, while working: a week in which a reporter made
no in-house report of any route is taken as leave (or another absence) and left out, not counted as
zero output. A working week's outcome is its core-route output in benchmark minutes (the case-mix
weight: a band-4 MR counts for more than a band-1 x-ray), so a participant who moved to home work
and made no core reports in a working week counts as zero core output that week.

Analysis: :func:`sim.evaluation.stats.rate_ratio_did` (difference-in-differences, week effects,
reporter-clustered errors, small-sample df) and a pre-post comparison of participants alone, each as
a rate ratio with a 90% CI and a verdict against the margin (:func:`sim.evaluation.stats.noninferiority`).
Parallel trends: a weekly series of each group's output relative to its own "before" mean, and a test
of a participant-specific linear trend in the "before" weeks.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from sim.activity import IN_HOUSE_ROUTES
from sim.evaluation.stats import noninferiority, rate_ratio_did, sensitivity, t_inference

WEEK = pd.Timedelta(weeks=1)


def monday(value) -> pd.Timestamp:
    day = pd.Timestamp(value).normalize()
    return day - pd.Timedelta(days=day.weekday())


def whole_weeks(span: tuple[pd.Timestamp, pd.Timestamp]) -> list[pd.Timestamp]:
    """Mondays of the whole (Monday-Sunday) weeks inside the half-open day range."""
    first = monday(span[0]) + (WEEK if span[0].weekday() else pd.Timedelta(0))
    return list(pd.date_range(first, span[1] - WEEK, freq="7D")) if first + WEEK <= span[1] else []


def reporter_weeks(ex: pd.DataFrame, benchmark: np.ndarray, weeks: dict[str, list[pd.Timestamp]],
                   participants: set, comparison: set | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(panel, cohort). panel: one row per cohort reporter x whole week while working: reporter_id, group,
    week (Monday), period, core_reports, core_minutes (benchmark-weighted; a core exam without a
    benchmark counts at the mean benchmark of the core exams that have one). cohort: one row per reporter."""
    done = ex["route"].isin(IN_HOUSE_ROUTES).to_numpy() & ex["reported_at"].notna().to_numpy() & ex["reporter_id"].notna().to_numpy()
    core = ex["route"].to_numpy() == "core"
    filled = np.where(np.isnan(benchmark), np.nanmean(benchmark[core & done]) if (core & done & ~np.isnan(benchmark)).any()
                      else 0.0, benchmark)
    rows = pd.DataFrame({"reporter_id": ex["reporter_id"].to_numpy(dtype=object)[done],
                         "week": (ex["reported_at"][done].dt.normalize()
                                  - pd.to_timedelta(ex["reported_at"][done].dt.day_of_week, unit="D")).to_numpy(),
                         "core": core[done].astype(np.int64), "minutes": np.where(core[done], filled[done], 0.0)})
    period_of = {w: name for name, mondays in weeks.items() for w in mondays}
    rows = rows[rows["week"].isin(list(period_of))]
    everyone = set(ex.loc[done, "reporter_id"])
    if comparison is None:
        comparison = everyone - participants
    cohort_ids = sorted(participants | (set(comparison) - participants))
    panel = (rows.groupby(["reporter_id", "week"]).agg(core_reports=("core", "sum"), core_minutes=("minutes", "sum"))
             .reset_index())
    panel = panel[panel["reporter_id"].isin(cohort_ids)]
    panel["period"] = panel["week"].map(period_of)
    panel["group"] = np.where(panel["reporter_id"].isin(list(participants)), "participant", "comparison")
    cohort = []
    for rid in cohort_ids:
        mine = panel[panel["reporter_id"] == rid]
        entry = {"reporter_id": rid, "group": "participant" if rid in participants else "comparison"}
        for name in ("before", "during"):
            part = mine[mine["period"] == name]
            entry.update({f"{name}_weeks_working": len(part), f"{name}_core_reports": int(part["core_reports"].sum()),
                          f"{name}_core_minutes": float(part["core_minutes"].sum())})
        reasons = [f"no working week {name}" for name in ("before", "during") if entry[f"{name}_weeks_working"] == 0]
        if rid not in everyone:
            reasons = ["not in the log (no in-house report)"]
        elif not reasons and entry["before_core_minutes"] + entry["during_core_minutes"] == 0:
            reasons = ["no core output in either period"]
        entry["in_model"], entry["why_not"] = not reasons, "; ".join(reasons)
        cohort.append(entry)
    cohort = pd.DataFrame(cohort, columns=["reporter_id", "group", "before_weeks_working", "before_core_reports",
                                           "before_core_minutes", "during_weeks_working", "during_core_reports",
                                           "during_core_minutes", "in_model", "why_not"])
    panel = panel[panel["reporter_id"].isin(list(cohort.loc[cohort["in_model"], "reporter_id"]))]
    return panel.reset_index(drop=True), cohort


def harm_tests(panel: pd.DataFrame, margin: float, confidence: float = 0.90) -> pd.DataFrame:
    """Rate ratios of core output per working week: difference-in-differences and participants' pre-post."""
    rows = []
    treated = (panel["group"] == "participant").to_numpy()
    during = (panel["period"] == "during").to_numpy()
    week = panel["week"].to_numpy()
    reporter = panel["reporter_id"].to_numpy(dtype=object)
    output = panel["core_minutes"].to_numpy(dtype=float)
    n_p = len(set(reporter[treated]))
    n_c = len(set(reporter[~treated]))
    for test, mask, method in (
            ("difference_in_differences", np.ones(len(panel), dtype=bool),
             "Poisson rate model of core benchmark-minutes per working reporter-week: reporter and week fixed "
             "effects, participant x pilot term; SE clustered by reporter (CR1), t with min(groups) - 1 df"),
            ("paired", treated, "participants only, during vs before: Poisson rate model with reporter fixed "
             "effects; SE clustered by reporter (CR1), t with participants - 1 df (no control for trends)")):
        fit = rate_ratio_did(output[mask], reporter[mask], week[mask], treated[mask], during[mask])
        verdict = noninferiority(fit["log_rr"], fit["se"], fit["df"], margin, confidence)
        design = sensitivity(fit["se"], fit["df"], margin, confidence)
        rows.append({"test": test, "n": n_p, "n_comparison": n_c if test != "paired" else 0,
                     "reporter_weeks": int(mask.sum()), **{k: fit[k] for k in ("log_rr", "se", "df")},
                     **{k: verdict[k] for k in ("rate_ratio", "ci_low", "ci_high", "p_noninferiority", "verdict")},
                     "margin": margin, "confidence": confidence, "mde_80": design["mde"],
                     "power_noninferior_if_no_change": design["power_noninferior_if_no_change"], "method": method})
    return pd.DataFrame(rows)


def pre_trend_test(panel: pd.DataFrame) -> dict:
    """A participant-specific linear trend over the "before" weeks (reporter and week fixed effects,
    clustered SE, min(groups) - 1 df): the ratio of participants' to comparison output per week of
    trend, its 95% CI and two-sided p. Parallel trends predict a ratio near 1."""
    before = panel[panel["period"] == "before"]
    out = {"trend_ratio_per_week": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
           "weeks": int(before["week"].nunique())}
    if out["weeks"] < 3:
        return out
    weeks = np.sort(before["week"].unique())
    index = np.searchsorted(weeks, before["week"].to_numpy())
    treated = (before["group"] == "participant").to_numpy()
    # the "term" is participant x (week index - mean): a slope on the log scale; fitted as a
    # continuous term through rate_ratio_did's design by scaling: done directly here for clarity
    import statsmodels.api as sm

    r_codes, r_index = np.unique(before["reporter_id"].to_numpy(dtype=object), return_inverse=True)
    n_t, n_c = len(set(r_index[treated])), len(set(r_index[~treated]))
    if n_t < 2 or n_c < 2:
        return out
    y = before["core_minutes"].to_numpy(dtype=float)
    totals = np.bincount(r_index, weights=y)
    keep = totals[r_index] > 0
    X = np.hstack([np.eye(len(r_codes))[r_index], np.eye(len(weeks))[index][:, 1:],
                   (treated * (index - index.mean()))[:, None]])[keep]
    y, groups = y[keep], r_index[keep]
    X = X[:, X.any(axis=0)]
    from threadpoolctl import threadpool_limits

    try:
        with np.errstate(all="ignore"), threadpool_limits(1):
            fit = sm.GLM(y / max(y.mean(), 1e-9), X, family=sm.families.Poisson()).fit(
                cov_type="cluster", cov_kwds={"groups": groups, "use_correction": True, "df_correction": True})
    except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
        return out
    b, se = float(fit.params[-1]), float(fit.bse[-1])
    inference = t_inference(b, se, min(n_t, n_c) - 1, 0.95)
    out.update(trend_ratio_per_week=np.exp(b), ci_low=np.exp(inference["ci_low"]), ci_high=np.exp(inference["ci_high"]),
               p_value=inference["p_value"])
    return out


def weekly_series(panel: pd.DataFrame) -> pd.DataFrame:
    """Per group and week: reporters working, mean core benchmark-hours per working reporter, and that mean
    as an index relative to the group's mean over its "before" weeks (1 = as before)."""
    columns = ["group", "week", "period", "reporters_working", "mean_core_hours", "index_to_before"]
    if panel.empty:
        return pd.DataFrame(columns=columns)
    weekly = (panel.groupby(["group", "week", "period"])
              .agg(reporters_working=("reporter_id", "nunique"), mean_core_hours=("core_minutes", "mean"))
              .reset_index())
    weekly["mean_core_hours"] /= 60
    base = weekly[weekly["period"] == "before"].groupby("group")["mean_core_hours"].mean()
    weekly["index_to_before"] = weekly["mean_core_hours"] / weekly["group"].map(base)
    weekly["week"] = weekly["week"].dt.date.astype(str)
    return weekly.sort_values(["group", "week"], ascending=[False, True])[columns].reset_index(drop=True)


def plot_parallel_trends(weekly: pd.DataFrame, pilot_start: str | None = None, ax=None):
    """Weekly core output (index to each group's "before" mean) of participants vs comparison; returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 3.5))
    for group, style in (("participant", "-o"), ("comparison", "--s")):
        mine = weekly[weekly["group"] == group]
        if len(mine):
            ax.plot(pd.to_datetime(mine["week"]), mine["index_to_before"], style, label=f"{group}s", markersize=3)
    if pilot_start is not None:
        ax.axvline(pd.Timestamp(pilot_start), color="grey", linestyle=":", label="pilot starts")
    ax.axhline(1.0, color="black", linewidth=0.5)
    ax.set_ylabel("core output / before mean")
    ax.set_title("Core output per working reporter-week (benchmark minutes), by week")
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    return fig


def net_capacity(panel: pd.DataFrame, did: pd.Series) -> dict:
    """Participants' core output displaced by the pilot, from the DiD rate ratio and its CI: during-pilot
    core output / ratio - core output (hours and reports; positive = core work lost)."""
    mine = panel[(panel["group"] == "participant") & (panel["period"] == "during")]
    hours, reports = mine["core_minutes"].sum() / 60, mine["core_reports"].sum()
    out = {}
    for name, ratio in (("", did["rate_ratio"]), ("_low", did["ci_high"]), ("_high", did["ci_low"])):
        ok = np.isfinite(ratio) and ratio > 0
        out[f"displaced_core_hours{name}"] = hours / ratio - hours if ok else np.nan
        out[f"displaced_core_reports{name}"] = reports / ratio - reports if ok else np.nan
    return out


def order_labels(ids: Sequence[str], keyed: Sequence[str]) -> list[int]:
    """Positions of ids ordered by their keyed pseudonyms (labels then reveal nothing about the raw ids)."""
    return list(np.argsort(np.asarray(keyed, dtype=object), kind="stable"))
