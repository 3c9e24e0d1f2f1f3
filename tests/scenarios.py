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
