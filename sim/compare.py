"""Scenario comparison with common random numbers and paired confidence intervals.

Every scenario runs replications 0..R-1 with the same root seed. Streams are named, so
scenarios that differ only in policy or staffing see identical arrivals and reading work in
replication r (sim.streams). The difference from the baseline is therefore taken pair by pair,
replication by replication, and its CI is narrower than the unpaired (Welch) one wherever the
replications are positively correlated. `variance_reduction` = (unpaired / paired half-width)^2:
how many times more replications an independent-streams comparison would need for the same
precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.experiment import ExperimentResult, run_experiment, t_half_width
from sim.metrics import ALL
from sim.scenario import Scenario

KEY_METRICS = ["unreported_end", "share_within_target", "tat_median_h", "outsourced", "reported_home",
               "reported_brokered", "cost_outsourced", "marginal_spend", "cost_total", "saving_vs_outsourcing",
               "utilisation", "wte_delivered"]


@dataclass(frozen=True)
class ComparisonResult:
    baseline: str
    experiments: dict[str, ExperimentResult]

    def _consortium(self, name: str) -> pd.DataFrame:
        """replication x metric table of consortium-level values."""
        tidy = self.experiments[name].replications
        rows = tidy[(tidy.trust == ALL) & (tidy.modality == ALL)]
        return rows.pivot(index="replication", columns="metric", values="value")

    def differences(self, metrics: list[str] | None = None, confidence: float = 0.95) -> pd.DataFrame:
        """Per scenario and metric: means, paired difference from the baseline with its CI, and CRN gain."""
        base = self._consortium(self.baseline)
        metrics = metrics or [m for m in KEY_METRICS if m in base.columns]
        rows = []
        for name in self.experiments:
            if name == self.baseline:
                continue
            other = self._consortium(name)
            for metric in metrics:
                pair = pd.DataFrame({"a": base[metric], "b": other[metric]}).dropna()
                diff = pair["b"] - pair["a"]
                n = len(diff)
                paired = float(t_half_width(np.array([diff.std()]), np.array([n]), confidence)[0]) if n > 1 else np.nan
                unpaired = _welch_half_width(pair["a"], pair["b"], confidence)
                with np.errstate(invalid="ignore", divide="ignore"):
                    reduction = (unpaired / paired) ** 2 if paired > 0 else np.nan
                rows.append({
                    "scenario": name, "metric": metric, "baseline_mean": pair["a"].mean(),
                    "scenario_mean": pair["b"].mean(), "difference": diff.mean(),
                    "ci_low": diff.mean() - paired, "ci_high": diff.mean() + paired, "n": n,
                    "paired_half_width": paired, "unpaired_half_width": unpaired,
                    "variance_reduction": reduction,
                })
        return pd.DataFrame(rows)


def _welch_half_width(a: pd.Series, b: pd.Series, confidence: float) -> float:
    """Half-width of the Welch CI for mean(b) - mean(a) as if the samples were independent."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return np.nan
    va, vb = a.var() / na, b.var() / nb
    se = np.sqrt(va + vb)
    if se == 0:
        return 0.0
    dof = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    from scipy import stats  # not at module level: a worker that only simulates never needs it

    return float(stats.t.ppf(0.5 + confidence / 2, dof) * se)


def compare(scenarios: dict[str, Scenario], replications: int = 10, seed: int = 1, baseline: str | None = None,
            backend: str = "processes", workers: int | None = None, scheduler: str | None = None,
            progress: bool = True, store: str | Path | None = None) -> ComparisonResult:
    """Run every scenario with the same seed and replications; differences are paired against `baseline`.

    `baseline` defaults to the first scenario. With `store`, each scenario's replications are
    cached in `store/<name>/` so an interrupted comparison resumes.
    """
    if not scenarios:
        raise ValueError("compare needs at least one scenario")
    baseline = baseline or next(iter(scenarios))
    if baseline not in scenarios:
        raise ValueError(f"baseline {baseline!r} is not one of {list(scenarios)}")
    experiments = {
        name: run_experiment(scn, replications=replications, seed=seed, backend=backend, workers=workers,
                             scheduler=scheduler, progress=progress,
                             store=Path(store) / name if store is not None else None)
        for name, scn in scenarios.items()
    }
    return ComparisonResult(baseline, experiments)
