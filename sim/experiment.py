"""Replications of one scenario and their summary with t-based confidence intervals.

Each replication is an independent call of :func:`sim.run` with the same root seed and its own
replication number, so results do not depend on which worker ran which replication or in what
order they finished.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from sim.backends import BACKENDS, map_unordered
from sim.metrics import ALL
from sim.runner import RunResult, run
from sim.scenario import Scenario

@dataclass(frozen=True)
class ExperimentResult:
    scenario: Scenario
    seed: int
    runs: list[RunResult]  # ordered by replication

    @property
    def replications(self) -> pd.DataFrame:
        """Tidy: replication, trust, modality, urgency, metric, value."""
        return pd.concat([r.metrics.assign(replication=r.replication) for r in self.runs], ignore_index=True)[
            ["replication", "trust", "modality", "urgency", "metric", "value"]]

    @property
    def backlog(self) -> pd.DataFrame:
        return pd.concat([r.backlog.assign(replication=r.replication) for r in self.runs], ignore_index=True)

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


def summarise(rows: pd.DataFrame, keys: list[str], column: str, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, sd and t-based CI of `column` across replications, per group of `keys`.

    NaN values (a metric undefined in some replication) are left out of that metric's n.
    """
    grouped = rows.groupby(keys, sort=False)[column]
    out = grouped.agg(mean="mean", sd="std", n="count").reset_index()
    half = stats.t.ppf(0.5 + confidence / 2, np.maximum(out["n"] - 1, 1)) * out["sd"] / np.sqrt(out["n"])
    half = half.where(out["n"] > 1)
    out["ci_low"] = out["mean"] - half
    out["ci_high"] = out["mean"] + half
    return out[[*keys, "mean", "sd", "ci_low", "ci_high", "n"]]


def _one(job: tuple[Scenario, int, int]) -> RunResult:
    scenario, seed, replication = job
    return run(scenario, seed, replication)


def _one_with_progress(job: tuple[Scenario, int, int]) -> RunResult:
    scenario, seed, replication = job
    return run(scenario, seed, replication, progress=True)


def run_experiment(scenario: Scenario, replications: int = 10, seed: int = 1, backend: str = "processes",
                   workers: int | None = None, scheduler: str | None = None,
                   progress: bool = True) -> ExperimentResult:
    """Run `replications` independent replications and collect them (ordered by replication)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if replications < 1:
        raise ValueError("replications must be at least 1")
    from tqdm.auto import tqdm

    jobs = [(scenario, seed, r) for r in range(replications)]
    # in one process, each replication can also show its own progress in simulated weeks
    inner_progress = progress and (backend == "serial" or workers == 1)
    fn = _one_with_progress if inner_progress else _one
    results: list[RunResult] = []
    with tqdm(total=replications, unit="rep", desc=scenario.name, disable=not progress) as bar:
        for result in map_unordered(fn, jobs, backend, workers, scheduler):
            results.append(result)
            bar.update(1)
    return ExperimentResult(scenario, seed, sorted(results, key=lambda r: r.replication))
