"""Replications of one scenario and their summary with t-based confidence intervals.

Each replication is an independent call of :func:`sim.run` with the same root seed and its own
replication number, so results do not depend on which worker ran which replication or in what
order they finished. Given a results folder, finished replications are stored as they arrive
and reused by the next call: an interrupted experiment resumes where it stopped.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim.backends import BACKENDS, map_unordered
from sim.metrics import ALL
from sim.runner import RunResult, run
from sim.scenario import Scenario
from sim.store import RunStore


@dataclass(frozen=True)
class ExperimentResult:
    scenario: Scenario
    seed: int
    runs: list[RunResult]  # ordered by replication
    computed: list[int] = field(default_factory=list)  # replications computed by this call (the rest came from the store)
    discarded: list[str] = field(default_factory=list)  # damaged or foreign cache entries deleted and recomputed (why)

    @property
    def replications(self) -> pd.DataFrame:
        """Tidy: replication, trust, modality, urgency, metric, value."""
        return pd.concat([r.metrics.assign(replication=r.replication) for r in self.runs], ignore_index=True)[
            ["replication", "trust", "modality", "urgency", "metric", "value"]]

    @property
    def backlog(self) -> pd.DataFrame:
        """replication, time_h, trust, waiting."""
        return pd.concat([r.backlog.assign(replication=r.replication) for r in self.runs], ignore_index=True)[
            ["replication", "time_h", "trust", "waiting"]]

    def consortium_backlog(self) -> pd.DataFrame:
        """Exams waiting across the consortium: one column per replication, indexed by time_h."""
        return self.backlog.groupby(["time_h", "replication"])["waiting"].sum().unstack("replication")

    def summary(self, level: str = "consortium", confidence: float = 0.95) -> pd.DataFrame:
        """metric, mean, sd, ci_low, ci_high, n for the consortium (or per trust with level="trust")."""
        tidy = self.replications
        if level == "consortium":
            rows = tidy[(tidy.trust == ALL) & (tidy.modality == ALL)]
            keys = ["metric"]
        elif level == "trust":
            rows = tidy[(tidy.trust != ALL) & (tidy.modality == ALL)]
            keys = ["trust", "metric"]
        else:
            raise ValueError(f"level must be 'consortium' or 'trust', not {level!r}")
        return summarise(rows, keys, "value", confidence)

    def clearance_time(self, threshold: float, confidence: float = 0.95) -> pd.DataFrame:
        """Transient study: first time (h) the consortium backlog falls to `threshold` exams or below.

        One value per replication (NaN if it never does within the horizon), summarised with a CI
        over the replications that cleared; `n` says how many did.
        """
        backlog = self.consortium_backlog()
        cleared = backlog.le(threshold)
        first = cleared.idxmax().where(cleared.any())
        rows = pd.DataFrame({"metric": "clearance_time_h", "value": first.to_numpy(dtype=float)})
        return summarise(rows.dropna(), ["metric"], "value", confidence)


def summarise(rows: pd.DataFrame, keys: list[str], column: str, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, sd and t-based CI of `column` across replications, per group of `keys`.

    NaN values (a metric undefined in some replication) are left out of that metric's n.
    """
    grouped = rows.groupby(keys, sort=False)[column]
    out = grouped.agg(mean="mean", sd="std", n="count").reset_index()
    half = t_half_width(out["sd"], out["n"], confidence)
    out["ci_low"] = out["mean"] - half
    out["ci_high"] = out["mean"] + half
    return out[[*keys, "mean", "sd", "ci_low", "ci_high", "n"]]


def t_half_width(sd, n, confidence: float = 0.95):
    """Half-width of the t-based CI of a mean from n values with standard deviation sd (NaN for n < 2)."""
    from scipy import stats  # here, not at module level: scipy.stats costs a worker ~100 MB and 0.5 s to import

    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * np.asarray(sd, dtype=float) / np.sqrt(n)
    half = np.where(n > 1, half, np.nan)
    return pd.Series(half, index=sd.index) if isinstance(sd, pd.Series) else half


def replications_needed(result: ExperimentResult, half_width: float, metrics: list[str] | None = None,
                        relative: bool = True, confidence: float = 0.95, max_replications: int = 10_000) -> pd.DataFrame:
    """Replications needed for a CI half-width of `half_width` on each consortium metric.

    `half_width` is a fraction of the mean when `relative` (0.05 = ±5%), else in the metric's
    units. Uses the sample sd of the replications already run (at least 2) and the smallest n
    with t(n-1) * sd / sqrt(n) <= target, the usual sequential-procedure estimate (Law,
    Simulation Modeling and Analysis, ch. 9): rerun with that many to confirm.
    """
    from scipy import stats  # not at module level (see t_half_width)

    summary = result.summary("consortium", confidence).set_index("metric")
    if metrics is not None:
        summary = summary.loc[metrics]
    rows = []
    for metric, row in summary.iterrows():
        target = half_width * abs(row["mean"]) if relative else half_width
        needed = np.nan
        if row["n"] >= 2 and np.isfinite(row["sd"]) and target > 0:
            z = stats.norm.ppf(0.5 + confidence / 2)
            n = max(2, math.ceil((z * row["sd"] / target) ** 2))
            while n <= max_replications and stats.t.ppf(0.5 + confidence / 2, n - 1) * row["sd"] / math.sqrt(n) > target:
                n += 1
            needed = n if n <= max_replications else np.nan
        elif row["n"] >= 2 and row["sd"] == 0:
            needed = 2
        current = (row["ci_high"] - row["ci_low"]) / 2
        rows.append((metric, row["mean"], int(row["n"]), current, target, needed))
    return pd.DataFrame(rows, columns=["metric", "mean", "n", "half_width_now", "half_width_target", "replications_needed"])


def _one(job: tuple[Scenario, int, int]) -> RunResult:
    scenario, seed, replication = job
    return run(scenario, seed, replication)


def _one_with_progress(job: tuple[Scenario, int, int]) -> RunResult:
    scenario, seed, replication = job
    return run(scenario, seed, replication, progress=True)


def run_experiment(scenario: Scenario, replications: int = 10, seed: int = 1, backend: str = "processes",
                   workers: int | None = None, scheduler: str | None = None, progress: bool = True,
                   store: str | Path | None = None) -> ExperimentResult:
    """Run `replications` independent replications and collect them (ordered by replication).

    With `store` (a results folder), replications already stored for this scenario's config id
    and seed are loaded instead of recomputed, and each new one is stored the moment it arrives.
    A damaged or foreign stored entry is deleted and recomputed; `discarded` says which and why.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if replications < 1:
        raise ValueError("replications must be at least 1")
    from tqdm.auto import tqdm

    cache = RunStore(store) if store is not None else None
    config_id = scenario.config_id
    results: list[RunResult] = []
    todo = []
    discarded = []
    for r in range(replications):
        if cache is not None and cache.has(config_id, seed, r):
            stored, problem = cache.load_or_discard(config_id, seed, r)
            if stored is not None:
                results.append(stored)
                continue
            warnings.warn(f"discarded cache entry {problem}; recomputing replication {r}", RuntimeWarning, stacklevel=2)
            discarded.append(problem)
        todo.append((scenario, seed, r))
    # in one process, each replication can also show its own progress in simulated weeks
    inner_progress = progress and (backend == "serial" or workers == 1)
    fn = _one_with_progress if inner_progress else _one
    computed = []
    with tqdm(total=replications, initial=len(results), unit="rep", desc=scenario.name, disable=not progress) as bar:
        for result in map_unordered(fn, todo, backend, workers, scheduler):
            if cache is not None:
                cache.save(result)
            results.append(result)
            computed.append(result.replication)
            bar.update(1)
    return ExperimentResult(scenario, seed, sorted(results, key=lambda r: r.replication), sorted(computed), discarded)
