"""The textbook SimPy model, as the reference the engine is measured against.

A one-trust priority M/G/c system: `servers` reporters on duty around the clock, four urgency
classes (non-preemptive priority, then first come first served), lognormal reading times. The
textbook way to write it is one SimPy process per exam that requests a `PriorityResource`; the
engine (sim.model) runs the same exams as data. Both read the same ExamTable, so they simulate the
same arrivals and reading times; the benchmark times both in one process.
"""

from __future__ import annotations

import numpy as np
import simpy

from sim.loading import validate_data
from sim.scenario import Scenario

HOURS_PER_YEAR = 365.25 * 24
ALL_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
CLASS_MIX = {"STAT": 0.1, "URGENT": 0.2, "SOON": 0.3, "ROUTINE": 0.4}  # most urgent first


def priority_mgc_scenario(servers: int = 50, load: float = 0.9, mean_minutes: float = 10.0, sd_minutes: float = 6.0,
                          weeks: float = 8) -> Scenario:
    """One trust, one modality, flat demand at `load` x the reporters' capacity, lognormal reading."""
    per_hour = load * servers * 60 / mean_minutes
    return validate_data({
        "name": f"priority M/G/{servers} at {load:.0%}",
        "start_date": "2025-01-06",
        "horizon_weeks": weeks,
        "trusts": [{"code": "T1", "name": "One trust", "population": 1}],
        "urgencies": [{"code": code, "priority": i, "target_hours": 24, "profile": "flat"}
                      for i, code in enumerate(CLASS_MIX)],
        "subspecialties": ["general"],
        "modalities": [{
            "code": "CT", "annual_volume": per_hour * HOURS_PER_YEAR, "urgency_mix": CLASS_MIX,
            "band_mix": [1.0], "subspecialty_mix": {"general": 1.0},
            "reading_minutes": {"1": {"kind": "lognormal", "mean": mean_minutes, "sd": sd_minutes}},
        }],
        "demand": {"profiles": {"flat": [1.0] * 168}},
        "staff": [{"name": "rad", "trust": "T1", "count": servers,
                   "sessions": [{"days": ALL_DAYS, "start": "00:00", "end": "24:00"}],
                   "modalities": ["CT"], "max_band": 1, "subspecialties": ["general"]}],
    }, "benchmarks/textbook.py")


def textbook_model(arrival: np.ndarray, priority: np.ndarray, work_hours: np.ndarray, servers: int,
                   horizon: float) -> tuple[int, np.ndarray]:
    """One process and one PriorityResource request per exam. Returns (SimPy events, reading start per exam)."""
    env = simpy.Environment()
    reporters = simpy.PriorityResource(env, capacity=servers)
    started = np.full(len(arrival), np.nan)

    def exam(i: int, urgency: int, work: float):
        with reporters.request(priority=urgency) as request:
            yield request
            started[i] = env.now
            yield env.timeout(work)

    def arrivals():
        for i, (t, urgency, work) in enumerate(zip(arrival.tolist(), priority.tolist(), work_hours.tolist())):
            yield env.timeout(t - env.now)
            env.process(exam(i, urgency, work))

    env.process(arrivals())
    env.run(until=horizon)
    return next(env._eid), started  # SimPy's event-id counter (not public API), as sim.model reads it
