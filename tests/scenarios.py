"""Small hand-built scenarios shared by the tests (plain dicts, so tests can vary any field)."""

from __future__ import annotations

import copy
from typing import Any

from sim.loading import validate_data
from sim.scenario import Scenario

ALL_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
HOURS_PER_YEAR = 365.25 * 24


def mmc_data(arrivals_per_hour: dict[str, float] | float, mean_minutes: float, servers: int,
             weeks: float = 20, warmup_weeks: float = 2) -> dict[str, Any]:
    """One trust, one modality, flat profile, exponential reading, `servers` reporters on duty 24/7.

    `arrivals_per_hour` is a rate, or a rate per urgency class {code: rate}; classes are given
    priorities in the order listed (first = most urgent).
    """
    rates = arrivals_per_hour if isinstance(arrivals_per_hour, dict) else {"R": arrivals_per_hour}
    total = sum(rates.values())
    return {
        "name": "M/M/c check",
        "start_date": "2025-01-06",
        "horizon_weeks": weeks,
        "warmup_weeks": warmup_weeks,
        "trusts": [{"code": "T1", "name": "Test trust", "population": 1}],
        "urgencies": [{"code": code, "priority": i, "target_hours": 1, "profile": "flat"}
                      for i, code in enumerate(rates)],
        "subspecialties": ["general"],
        "modalities": [{
            "code": "XR", "annual_volume": total * HOURS_PER_YEAR,
            "urgency_mix": {code: rate / total for code, rate in rates.items()},
            "band_mix": [1.0], "subspecialty_mix": {"general": 1.0},
            "reading_minutes": {"1": {"kind": "exponential", "mean": mean_minutes}},
        }],
        "demand": {"profiles": {"flat": [1.0] * 168}},
        "staff": [{
            "name": "rad", "trust": "T1", "count": servers,
            "sessions": [{"days": ALL_DAYS, "start": "00:00", "end": "24:00"}],
            "modalities": ["XR"], "max_band": 1, "subspecialties": ["general"],
        }],
    }


def build(data: dict[str, Any], **changes: Any) -> Scenario:
    data = copy.deepcopy(data)
    data.update(changes)
    return validate_data(data, "test scenario")


def two_trust_data(weeks: float = 4, t1_per_hour: float = 1.2, t2_per_hour: float = 0.5,
                   t1_staff: int = 2, t2_staff: int = 1, backlog: tuple[int, int] = (40, 25),
                   outsourcing: bool = True, age_threshold_hours: float = 72, daily_cap: int = 2) -> dict[str, Any]:
    """Two trusts with different loads, two urgencies, two bands, weekday sessions, an initial backlog
    and (optionally) threshold outsourcing of routine exams with a small daily cap.

    Demand shares follow population, so T1 gets `t1_per_hour` and T2 `t2_per_hour` exams per hour on
    average. Staff are under capacity on purpose, so exams are reported in-house, outsourced and left
    unreported at the end.
    """
    total = t1_per_hour + t2_per_hour
    data: dict[str, Any] = {
        "name": "two trusts",
        "start_date": "2025-01-06",
        "horizon_weeks": weeks,
        "warmup_weeks": 0,
        "trusts": [{"code": "T1", "name": "Trust one", "population": t1_per_hour},
                   {"code": "T2", "name": "Trust two", "population": t2_per_hour}],
        "urgencies": [{"code": "ED", "priority": 0, "target_hours": 4, "profile": "flat"},
                      {"code": "OP", "priority": 1, "target_hours": 168, "profile": "flat"}],
        "subspecialties": ["general", "neuro"],
        "modalities": [{
            "code": "XR", "annual_volume": total * HOURS_PER_YEAR,
            "urgency_mix": {"ED": 0.3, "OP": 0.7},
            "band_mix": [0.7, 0.3], "subspecialty_mix": {"general": 0.8, "neuro": 0.2},
            "reading_minutes": {"1": {"kind": "exponential", "mean": 12},
                                "2": {"kind": "lognormal", "mean": 25, "sd": 10}},
        }],
        "demand": {
            "profiles": {"flat": [1.0] * 168},
            "initial_backlog": [
                {"trust": "T1", "modality": "XR", "urgency": "OP", "count": backlog[0], "min_age_days": 1, "max_age_days": 10},
                {"trust": "T2", "modality": "XR", "urgency": "OP", "count": backlog[1], "min_age_days": 0, "max_age_days": 5},
            ],
        },
        "staff": [
            {"name": "rad", "trust": "T1", "count": t1_staff,
             "sessions": [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start": "09:00", "end": "17:00"}],
             "modalities": ["XR"], "max_band": 2, "subspecialties": ["general", "neuro"], "credentialed_trusts": ["T2"]},
            {"name": "rad", "trust": "T2", "count": t2_staff,
             "sessions": [{"days": ["Mon", "Wed", "Fri"], "start": "08:00", "end": "13:00"},
                          {"days": ["Sat"], "start": "10:00", "end": "14:00"}],
             "modalities": ["XR"], "max_band": 1, "subspecialties": ["general"]},
        ],
        "outsourcing": {
            "enabled": outsourcing, "age_threshold_hours": age_threshold_hours, "urgencies": ["OP"],
            "daily_cap": daily_cap, "price": {"XR": [20.0, 45.0]},
            "turnaround_hours": {"kind": "exponential", "mean": 36},
        },
    }
    return data


WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri"]


def imbalanced_data(kind: str = "local", weeks: float = 2, t1_per_hour: float = 1.6, t2_per_hour: float = 0.4,
                    t1_staff: int = 1, t2_staff: int = 2, backlog: tuple[int, int] = (60, 0)) -> dict[str, Any]:
    """`two_trust_data` made for policy comparisons: T1 overloaded, T2 with spare capacity.

    Both groups read every kind of work, work weekdays 09:00-17:00 and are credentialed for the
    other trust; an inter-trust charge is set (pooled and brokered need one); no outsourcing.
    """
    data = two_trust_data(weeks=weeks, t1_per_hour=t1_per_hour, t2_per_hour=t2_per_hour, t1_staff=t1_staff,
                          t2_staff=t2_staff, backlog=backlog, outsourcing=False)
    for group, other in zip(data["staff"], ("T2", "T1")):
        group.update(max_band=2, subspecialties=["general", "neuro"], credentialed_trusts=[other],
                     sessions=[{"days": WEEKDAYS, "start": "09:00", "end": "17:00"}])
    data["name"] = f"imbalanced ({kind})"
    data["policy"] = {"kind": kind}
    data["finance"] = {"inter_trust_charge": {"XR": [10.0, 20.0]}}
    return data


def backlog_only_data(blocks: list[tuple[str, str, int, float]], staff: list[dict[str, Any]] | None = None,
                      weeks: float = 1) -> dict[str, Any]:
    """Two trusts with no arrivals, only an initial backlog of (trust, urgency, count, age_days) blocks
    (every exam of a block exactly that old): hand-built states for ordering tests."""
    data = two_trust_data(weeks=weeks, outsourcing=False)
    data["modalities"][0]["annual_volume"] = 0.0
    data["demand"]["initial_backlog"] = [
        {"trust": trust, "modality": "XR", "urgency": urgency, "count": count, "min_age_days": age,
         "max_age_days": age} for trust, urgency, count, age in blocks]
    if staff is not None:
        data["staff"] = staff
    data.pop("outsourcing")
    return data


def run_reading_sentinels(engine) -> tuple:
    """Run `engine` and return (raw run, its worklists' records at the queues' sentinel positions).

    The run's end moves the per-position records out of the worklists (sim.worklist.
    Worklists.take_outcome_arrays empties them), so the sentinels are read just before."""
    import numpy as np

    wl = engine.worklists
    sentinel = np.asarray(wl.q_end)
    records = {}
    take = wl.take_outcome_arrays

    def take_after_reading_sentinels():
        for name, dtype in (("route", np.int8), ("left_at", np.float64), ("reader", np.intc)):
            records[name] = np.frombuffer(getattr(wl, name), dtype=dtype)[sentinel].copy()
        return take()

    wl.take_outcome_arrays = take_after_reading_sentinels
    raw = engine.run()
    assert len(wl.left_at) == len(wl.done_at) == 0  # moved out, not copied: the buffers are freed
    return raw, records


def reads_start_by_the_horizon_or_follow_their_episode(raw) -> bool:
    """Every exam leaves the worklist by the horizon: a read starts by then, except that of an exam taken
    with its episode's first (read one after the other), which starts when its sibling's read ends."""
    import numpy as np

    late = np.flatnonzero((raw.reader >= 0) & (raw.left_at > raw.scenario.horizon_hours))
    for e in late:
        same_read = (raw.exams.patient == raw.exams.patient[e]) & (raw.reader == raw.reader[e])
        if not np.any(same_read & (raw.done_at == raw.left_at[e]) & (raw.left_at < raw.left_at[e])):
            return False
    return True
