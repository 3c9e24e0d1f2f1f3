"""How big and how long a run will be, from the scenario alone, before anything is simulated.

`validate` and `run` print the estimate; `run` refuses one above `--max-memory`, so a typo (an
annual volume of 1e12, a 100-year horizon, a backlog sampled every microsecond) is a message, not
a machine brought to its knees. The figures per exam were measured on params/emrad.toml (one
replication of 2 and 8 weeks, peak RSS of a fresh process, 2025 build of this model): about 250 MB
for the interpreter and libraries, 190 bytes per exam for the engine and statistics, and 960 more
per exam kept for `--activity-log`; about 300k exams/s on one core. The constants round these up.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from sim.scenario import HOURS_PER_WEEK, Scenario

BASE_BYTES = 300e6
BYTES_PER_EXAM = 250.0
BYTES_PER_KEPT_EXAM = 1_000.0  # exam table + activity log of replication 0 (`run --activity-log`)
BYTES_PER_BACKLOG_ROW = 64.0  # time, trust, waiting: in the engine, the worker's table and the results
BYTES_PER_REPORTER = 50e3
EXAMS_PER_SECOND = 200e3  # per core, conservatively
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Estimate:
    exams: float  # expected exams per replication (arrivals + initial backlog)
    backlog_rows: float  # rows of the backlog time series per replication
    reporters: int
    replications: int
    workers: int
    peak_bytes: float  # all processes together
    seconds: float

    def text(self) -> str:
        return (f"estimate: about {self.exams:,.0f} exams per replication, {self.replications} replication(s) on "
                f"{self.workers} worker(s): peak memory about {_size(self.peak_bytes)}, run time about "
                f"{_duration(self.seconds)}")


def expected_exams(scn: Scenario) -> float:
    """Expected arrivals over the horizon (volume x trust shares x growth) plus the initial backlog, of the
    simulated trusts (simulate_trusts)."""
    population = sum(t.population for t in scn.trusts)
    share = sum(t.population / population * t.demand_multiplier for t in scn.trusts if scn.simulates(t.code))
    years = scn.horizon_weeks * 7 / DAYS_PER_YEAR
    total = 0.0
    for modality in scn.modalities:
        g = modality.annual_growth
        factor = years if g == 0 else math.expm1(min(math.log1p(g) * years, 700.0)) / math.log1p(g)
        total += modality.annual_volume * share * factor
    return total + sum(block.count for block in scn.demand.initial_backlog if scn.simulates(block.trust))


def estimate(scn: Scenario, replications: int = 1, workers: int | None = None, keep_exams: bool = False) -> Estimate:
    """Peak memory and wall time of `replications` replications on `workers` processes (default one per core)."""
    workers = max(1, min(replications, workers or os.cpu_count() or 1))
    exams = expected_exams(scn)
    rows = (scn.horizon_weeks * HOURS_PER_WEEK / scn.backlog_interval_hours + 1) * len(scn.trusts)
    reporters = sum(g.count for g in scn.staff)
    per_worker = BASE_BYTES + exams * BYTES_PER_EXAM + rows * BYTES_PER_BACKLOG_ROW + reporters * BYTES_PER_REPORTER
    main = BASE_BYTES + replications * rows * BYTES_PER_BACKLOG_ROW * 2  # results tables and their CSV/Parquet
    pool = per_worker * workers if workers > 1 else per_worker - BASE_BYTES  # one worker: in this process
    peak = main + pool
    if keep_exams:  # then replication 0 again in this process, keeping its exams
        peak = max(peak, main + exams * (BYTES_PER_EXAM + BYTES_PER_KEPT_EXAM) + rows * BYTES_PER_BACKLOG_ROW)
    seconds = exams * math.ceil(replications / workers) / EXAMS_PER_SECOND + (exams / EXAMS_PER_SECOND if keep_exams else 0)
    return Estimate(exams, rows, reporters, replications, workers, peak, seconds)


def default_max_memory() -> float:
    """80% of this machine's physical memory (bytes), or 8 GB where that cannot be read."""
    try:
        return 0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8e9


_UNITS = {"": 1e9, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12}


def parse_size(text: str) -> float:
    """'8GB', '512MB', '2.5g' or a plain number of GB, to bytes; ValueError naming the text otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size such as 8GB, 512MB or 16 (GB)")
    value = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{text!r} must be a positive size")
    return value


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale or unit == "MB":
            return f"{n / scale:,.1f} {unit}" if n < 1e18 else "more than 1,000,000 TB"
    return f"{n:,.0f} B"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 3:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def refusal(est: Estimate, limit: float) -> str | None:
    """Why a run with this estimate is refused under `limit` bytes, or None."""
    if est.peak_bytes <= limit:
        return None
    return (f"this run would need about {_size(est.peak_bytes)} of memory ({est.exams:,.0f} exams and "
            f"{est.backlog_rows:,.0f} backlog rows per replication, {est.workers} worker(s)), more than "
            f"--max-memory {_size(limit)}; shorten horizon_weeks, lower the volumes, raise "
            f"backlog_interval_hours, use fewer workers or raise --max-memory")
