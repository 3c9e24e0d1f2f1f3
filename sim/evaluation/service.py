"""Service measures of a pilot evaluation: reports per hour, turnaround (with censoring) and the backlog.

Durations are differences of UTC instants (``acquired_utc`` / ``reported_utc`` of an activity log:
local times converted with the Europe/London zone), so a report across a clock change has its real
length. Period membership and calendar days use UK local time.

Turnaround. An exam acquired in a period but not reported by the end of the log is *censored* (its
turnaround is at least the time it has waited), not left out: medians and 90th percentiles are
Kaplan-Meier estimates, and the share reported within ``within_days`` is taken among exams acquired at
least that long before the end of the log (full follow-up). Leaving unreported exams out would bias
"during" (later, less followed-up) downwards.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.activity import IN_HOUSE_ROUTES
from sim.evaluation.stats import kaplan_meier_quantiles

ALL = "ALL"
DAY = pd.Timedelta(days=1)


def utc(ex: pd.DataFrame, column: str) -> pd.Series:
    """acquired_at / reported_at as naive UTC (the log's *_utc column; local times when it has none)."""
    name = column.replace("_at", "_utc")
    return ex[name] if name in ex.columns else ex[column]


def in_span(times: pd.Series, span: tuple[pd.Timestamp, pd.Timestamp]) -> pd.Series:
    return (times >= span[0]) & (times < span[1])


def reporting_rates(ex: pd.DataFrame, during: pd.Series, extra_routes, benchmark_all: np.ndarray,
                    max_gap: float) -> pd.DataFrame:
    """Reports per hour by route and modality during the pilot, observed vs benchmark.

    Observed minutes: the log's reading_minutes when present, else the gap since the reporter's previous
    report when at most max_gap minutes (time spent on this one), else (first of a session) the benchmark.
    """
    mask = ex["route"].isin(IN_HOUSE_ROUTES) & ex["reported_at"].notna() & ex["reporter_id"].notna()
    done = ex[mask].assign(benchmark=benchmark_all[mask.to_numpy()], _utc=utc(ex, "reported_at")[mask])
    done = done.sort_values(["reporter_id", "_utc"], kind="stable")
    benchmark = done["benchmark"].to_numpy()
    gap = done.groupby("reporter_id", sort=False)["_utc"].diff() / pd.Timedelta(minutes=1)
    in_session = (gap >= 0) & (gap <= max_gap)
    observed = np.where(in_session, gap, benchmark)
    by_benchmark = ~in_session.to_numpy()
    method = f"gaps between a reporter's successive reports (<= {max_gap:g} min), benchmark for the first of a session"
    if "reading_minutes" in done.columns:
        logged = done["reading_minutes"].to_numpy(dtype=float)
        observed = np.where(np.isnan(logged), observed, logged)
        by_benchmark &= np.isnan(logged)
        method = "log reading_minutes; " + method + " where missing"
    done = done.assign(observed=observed, by_benchmark=by_benchmark)
    done = done[during.loc[done.index]]
    routes = [r for r in (*extra_routes, *[r for r in IN_HOUSE_ROUTES if r not in extra_routes]) if (done.route == r).any()]
    rows = []
    for route in routes:
        mine = done[done.route == route]
        for modality, group in [*mine.groupby("modality", sort=True), (ALL, mine)]:
            hours, bench = group["observed"].sum() / 60, group["benchmark"].sum() / 60
            rows.append({"route": route, "modality": modality, "exams": len(group), "hours_observed": hours,
                         "reports_per_hour": len(group) / hours if hours > 0 else np.nan,
                         "benchmark_hours": bench,
                         "benchmark_reports_per_hour": len(group) / bench if bench > 0 else np.nan,
                         "exams_timed_by_benchmark": int(group["by_benchmark"].sum()), "hours_method": method})
    table = pd.DataFrame(rows, columns=["route", "modality", "exams", "hours_observed", "reports_per_hour",
                                        "benchmark_hours", "benchmark_reports_per_hour", "exams_timed_by_benchmark",
                                        "hours_method"])
    table.insert(table.columns.get_loc("exams_timed_by_benchmark"), "ratio_to_benchmark",
                 table["reports_per_hour"] / table["benchmark_reports_per_hour"])
    return table


def turnaround(ex: pd.DataFrame, periods: dict, within_days: float = 7.0) -> pd.DataFrame:
    """By period of acquisition and modality: acquired, reported and censored (not reported by the end of the
    log) exams; Kaplan-Meier median and p90 hours; share reported within `within_days` among exams with
    that much follow-up."""
    acquired, reported = utc(ex, "acquired_at"), utc(ex, "reported_at")
    end = max(acquired.max(), reported.max() if reported.notna().any() else acquired.max())
    event = reported.notna().to_numpy()
    hours = ((reported.fillna(end) - acquired) / pd.Timedelta(hours=1)).to_numpy(dtype=float)
    followed = ((end - acquired) / pd.Timedelta(days=1) >= within_days).to_numpy()
    within = event & (hours <= within_days * 24)
    rows = []
    for name in ("before", "during"):
        mine = in_span(ex["acquired_at"], periods[name]).to_numpy()
        for modality in [*sorted(ex["modality"].unique()), ALL]:
            cell = mine & ((ex["modality"] == modality).to_numpy() if modality != ALL else True)
            median, p90 = kaplan_meier_quantiles(hours[cell], event[cell], (0.5, 0.9))
            full = cell & followed
            rows.append({"period": name, "modality": modality, "acquired": int(cell.sum()),
                         "reported": int((cell & event).sum()), "censored": int((cell & ~event).sum()),
                         "median_h": median, "p90_h": p90, "followed_up": int(full.sum()),
                         "reported_within": int((full & within).sum()),
                         "share_reported_within": (full & within).sum() / full.sum() if full.any() else np.nan,
                         "within_days": within_days})
    return pd.DataFrame(rows)


def backlog(ex: pd.DataFrame, max_age_days: float = 28.0) -> pd.DataFrame:
    """Daily backlog by modality and ALL: exams acquired by the end of each (local) day and not reported
    by then, split into those waiting at most `max_age_days` (``unreported``) and longer (``older``: in a
    RIS these are often cancelled exams, or outsourced ones whose report never came back, which would
    otherwise stay in the backlog for ever). Exams acquired before the log starts are not in it, so
    early days understate the backlog."""
    first = ex["acquired_at"].min().normalize()
    last = max(ex["acquired_at"].max(), ex["reported_at"].max() if ex["reported_at"].notna().any() else first).normalize()
    days = pd.date_range(first, last, freq="D")
    ends = (days + DAY).to_numpy()
    old = (days + DAY - pd.Timedelta(days=max_age_days)).to_numpy()
    frames = []
    for modality, group in [*ex.groupby("modality", sort=True), (ALL, ex)]:
        acquired = np.sort(group["acquired_at"].to_numpy())
        times = group["reported_at"].to_numpy()
        waiting = np.searchsorted(acquired, ends, side="left") - np.searchsorted(np.sort(times[~pd.isna(times)]), ends,
                                                                              side="left")
        # older: acquired before (day end - max age) and not reported by the day end = acquired before it,
        # minus those also reported by the day end (each counts from the first day both hold)
        rep = times[~pd.isna(times)]
        acq_rep = group["acquired_at"].to_numpy()[~pd.isna(times)]
        key = np.maximum(np.searchsorted(old, acq_rep, side="right"), np.searchsorted(ends, rep, side="right"))
        done_before = np.cumsum(np.bincount(key, minlength=len(days) + 1))[:len(days)]
        older = np.searchsorted(acquired, old, side="left") - done_before
        frames.append(pd.DataFrame({"date": days.date.astype(str), "modality": modality,
                                    "unreported": waiting - older, "older": older}))
    return pd.concat(frames, ignore_index=True)
