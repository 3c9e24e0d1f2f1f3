"""`sim.run`: one replication from scenario to plain tables."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

import pandas as pd

from sim.metrics import (ALL, backlog_series, exam_frame, flow_table, metrics_table, outcome, reporter_table,
                         workforce_metrics)
from sim import market
from sim.model import Engine, RawRun
from sim.scenario import HOURS_PER_WEEK, Scenario


@dataclass(frozen=True)
class RunResult:
    """Plain data from one replication; picklable, so workers can return it.

    metrics: tidy (trust, modality, urgency, metric, value), "ALL" for aggregates
    backlog: (time_h, trust, waiting) exams waiting in each worklist
    reporters: per-reporter session hours, reading hours, exams read, utilisation
    flows: in-house reports by owning trust x reading trust x route, hours and £ paid (sim.metrics.flow_table)
    market: posted, matched and unmet work by trust x modality x subspecialty (sim.market.market_table)
    exams: per-exam outcome table, only when run with keep_exams=True
    """

    config_id: str
    seed: int
    replication: int
    metrics: pd.DataFrame
    backlog: pd.DataFrame
    reporters: pd.DataFrame
    flows: pd.DataFrame
    market: pd.DataFrame
    n_exams: int
    events: int
    wall_seconds: float
    exams: pd.DataFrame | None = field(default=None, repr=False)

    def consortium(self) -> pd.Series:
        """Consortium-level value of every metric."""
        rows = self.metrics[(self.metrics.trust == ALL) & (self.metrics.modality == ALL)]
        return rows.set_index("metric")["value"]

    def by_trust(self) -> pd.DataFrame:
        """Trust x metric table (all modalities and urgencies)."""
        rows = self.metrics[(self.metrics.trust != ALL) & (self.metrics.modality == ALL)]
        return rows.pivot(index="trust", columns="metric", values="value")


def run(scenario: Scenario, seed: int = 1, replication: int = 0, *, keep_exams: bool = False,
        progress: bool = False) -> RunResult:
    """Simulate one replication and summarise it. Same scenario, seed and replication -> same result."""
    started = time.perf_counter()
    engine = Engine(scenario, seed, replication)
    bar = _attach_progress(engine) if progress else None
    raw = engine.run()
    if bar is not None:
        bar.update(bar.total - bar.n)
        bar.close()
    # free the worklists' hot-loop arrays before the statistics: SimPy's processes refer back to the
    # engine, so only the cycle collector can release them (0.2 GB on a consortium-year)
    del engine
    gc.collect()
    return summarise(raw, started, keep_exams=keep_exams)


def summarise(raw: RawRun, started: float, *, keep_exams: bool = False) -> RunResult:
    """The statistics of one replication (what `run` does after the simulation; the benchmark times it)."""
    scenario = raw.scenario
    oc = outcome(raw)
    reporters = reporter_table(raw, oc)
    metrics = pd.concat([metrics_table(raw, oc), workforce_metrics(raw, reporters), market.trust_metrics(raw)],
                        ignore_index=True)
    return RunResult(
        config_id=scenario.config_id, seed=raw.seed, replication=raw.replication, metrics=metrics,
        backlog=backlog_series(raw), reporters=reporters, flows=flow_table(raw, oc),
        market=market.market_table(raw, oc), n_exams=len(raw.exams),
        events=raw.events,
        wall_seconds=time.perf_counter() - started, exams=exam_frame(raw, oc) if keep_exams else None,
    )


def _attach_progress(engine: Engine):
    """A weekly tick in simulated time drives a tqdm bar (52 events a year: negligible)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=round(engine.scenario.horizon_weeks), unit="wk", desc=f"replication {engine.replication}",
               leave=False)

    def tick():
        while True:
            yield engine.env.timeout(HOURS_PER_WEEK)
            bar.update(1)

    engine.env.process(tick())
    return bar
