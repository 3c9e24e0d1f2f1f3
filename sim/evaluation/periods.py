"""The "before" and "during" periods of a pilot evaluation, checked against what the log covers.

Periods are half-open ranges of UK local calendar days. The pilot runs from ``pilot_start`` to
``pilot_end`` inclusive (default: the Monday of the first extra-route report's week to the Sunday of
the last one's week, clipped to the log). "before" ends the day before the pilot and, by default, is
as many whole weeks long as the pilot, starting no earlier than ``lead_in_days`` after the log's first
acquisition (an export by acquisition date lacks the reports of exams acquired before it, so its
first weeks understate output). The productivity analysis uses Monday-aligned whole weeks inside them.

Checks: a period outside the log is refused (a "before" that starts before the log would count days
with no data as no output; a pilot that ends after the log's last day would spread the pilot's
work over days the log does not cover); a "before" that starts inside the lead-in is warned about.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(weeks=1)


class EvaluationWarning(UserWarning):
    """Something about the evaluation's design that its reader must know (also listed in settings['warnings'])."""


def _day(value) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()


def _monday(day: pd.Timestamp) -> pd.Timestamp:
    return day - pd.Timedelta(days=day.weekday())


def make_periods(ex: pd.DataFrame, is_extra: pd.Series, pilot_start=None, pilot_end=None, before_start=None,
                 lead_in_days: int = 14, log_days=None) -> tuple[pd.DataFrame, list[str]]:
    """(periods table with attrs "before"/"during" = (start, end) half-open, warnings).

    log_days: (first, last) day the export covers, when the log is a subset of it (e.g. only one route's
    rows, as the simulated pilot exports); default the first acquisition and the last timestamp."""
    notes: list[str] = []
    acquired, reported = ex["acquired_at"], ex["reported_at"]
    first_day = _day(acquired.min())
    last_day = _day(max(acquired.max(), reported.max() if reported.notna().any() else acquired.max()))
    if log_days is not None:
        first_day, last_day = _day(log_days[0]), _day(log_days[1])
    lead_end = first_day + pd.Timedelta(days=lead_in_days)
    extra_times = reported[is_extra]
    if pilot_start is not None:
        start, start_how = _day(pilot_start), "given"
        if start < first_day:
            raise ValueError(f"pilot_start (--pilot-start) {start.date()} is before the log's first acquisition ({first_day.date()})")
    elif len(extra_times):
        start, start_how = _monday(_day(extra_times.min())), "Monday of the first extra-route report's week"
    else:
        start, start_how = _monday(first_day), "the log's first week (no extra-route reports)"
    if pilot_end is not None:
        end, end_how = _day(pilot_end) + DAY, "given"
        if end - DAY > last_day:
            raise ValueError(f"pilot_end (--pilot-end) {(end - DAY).date()} is after the log's last day ({last_day.date()}): "
                             "the log does not cover the whole pilot; give the last day it covers")
    elif (extra_times >= start).any():
        end = _monday(_day(extra_times[extra_times >= start].max())) + WEEK
        end_how = "Sunday of the last extra-route report's week"
        if end - DAY > last_day:
            end, end_how = last_day + DAY, "the log's last day (the last week is partial)"
    else:
        end, end_how = last_day + DAY, "the log's last day"
    if end <= start:
        raise ValueError(f"the pilot ends ({(end - DAY).date()}, {end_how}) before it starts ({start.date()}, "
                         f"{start_how}): give pilot_start and pilot_end (--pilot-start, --pilot-end) within the log")
    if before_start is not None:
        b0, b_how = _day(before_start), "given"
        if b0 < first_day:
            raise ValueError(f"before_start (--before-start) {b0.date()} is before the log's first acquisition ({first_day.date()}): "
                             "days the log does not cover would count as no output")
        b0 = min(b0, start)
        if b0 < lead_end and b0 < start:
            notes.append(f"'before' starts {b0.date()}, within {lead_in_days} days of the log's first acquisition "
                         f"({first_day.date()}): if the log was extracted by acquisition date, reports of exams "
                         "acquired before it are missing and output early in 'before' is understated")
    else:
        n_weeks = int(np.ceil((end - start) / WEEK))
        earliest = max(lead_end, first_day)
        earliest = earliest if earliest.weekday() == start.weekday() else earliest + pd.Timedelta(
            days=(start.weekday() - earliest.weekday()) % 7)
        b0 = max(start - n_weeks * WEEK, earliest) if earliest < start else start
        b_how = (f"{n_weeks} week(s) before the pilot, starting at least {lead_in_days} days after the log's "
                 "first acquisition (lead-in)")
    if b0 >= start:
        notes.append("there is no 'before' period (the pilot starts with the log, after the lead-in): "
                     "core output cannot be compared")
    rows = [("before", b0, start, b_how), ("during", start, end, f"{start_how} to {end_how}")]
    table = pd.DataFrame([{
        "period": name, "first_day": a.date().isoformat(), "last_day": (b - DAY).date().isoformat() if b > a else None,
        "days": (b - a).days, "weeks": (b - a).days / 7, "how": how} for name, a, b, how in rows])
    table.attrs["before"], table.attrs["during"] = (b0, start), (start, end)
    table.attrs["log_days"] = (first_day, last_day)
    for note in notes:
        warnings.warn(note, EvaluationWarning, stacklevel=3)
    return table, notes
