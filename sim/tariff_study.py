"""Tariff study: what the market's offered sessions do at each insourcing tariff, against the market off.

For a scenario with offered sessions (`home_reporting`), every tariff multiplier on a grid is run
with common random numbers beside the same scenario with the sessions switched off (the baseline),
so each figure is a paired difference with a 95% CI (sim.compare). Per multiplier:

* uptake: probability an offered session is taken (the scenario's uptake curve);
* sessions taken, matched exams (read in offered sessions) and their reading hours;
* change in the backlog at the horizon and in outsourced exams (negative: fewer);
* tariff paid (the owning trusts' insourcing payments) and the reader's earnings per reading hour;
* net saving: the baseline's marginal spend (outsourcing + night contract + tariff) minus the
  scenario's, positive when the market is cheaper for the consortium.

The break-even multiplier is where the net saving's mean crosses zero on the grid (linear
interpolation; NaN when it does not cross): above it insourcing through the market stops being
cheaper than outsourcing ("attractive to both the trusts and the radiologists", seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.compare import ComparisonResult, compare
from sim.metrics import ALL
from sim.scenario import Scenario

BASELINE = "market off"
DIFFERENCES = {"unreported_end": "backlog_change", "outsourced": "outsourced_change",
               "marginal_spend": "spend_change"}


def label(multiplier: float) -> str:
    return f"tariff x{multiplier:g}"


@dataclass(frozen=True)
class TariffStudy:
    table: pd.DataFrame  # one row per multiplier (see tariff_table)
    break_even: float  # multiplier where the mean net saving crosses zero (NaN if it does not on the grid)
    comparison: ComparisonResult


def study_scenarios(scenario: Scenario, multipliers: list[float]) -> dict[str, Scenario]:
    """The market-off baseline and the scenario at each multiplier (new scenarios; `scenario` is untouched)."""
    if scenario.home_reporting is None or not scenario.home_reporting.enabled:
        raise ValueError(f"scenario {scenario.name!r} has no offered sessions (home_reporting.enabled = false): "
                         "there is no tariff to study")
    if not multipliers or any(m <= 0 for m in multipliers):
        raise ValueError("tariff multipliers must be positive numbers")
    out = {BASELINE: scenario.with_changes({"home_reporting.enabled": False})}
    for m in sorted(set(multipliers)):
        out[label(m)] = scenario.with_changes({"home_reporting.tariff_multiplier": float(m)})
    return out


def _consortium(result: ComparisonResult, name: str) -> pd.DataFrame:
    tidy = result.experiments[name].replications
    return tidy[(tidy.trust == ALL) & (tidy.modality == ALL)].pivot(index="replication", columns="metric",
                                                                      values="value")


def tariff_table(result: ComparisonResult, scenarios: dict[str, Scenario]) -> pd.DataFrame:
    """One row per multiplier: means, paired differences from the market off with 95% CIs."""
    from sim.experiment import t_half_width

    diffs = result.differences(metrics=list(DIFFERENCES)).set_index(["scenario", "metric"])
    rows = []
    for name, scn in scenarios.items():
        if name == BASELINE:
            continue
        values = _consortium(result, name)
        n = len(values)
        home_hours = values["home_reading_hours"].replace(0, np.nan)
        earnings = values["cost_home"] / home_hours
        row = {"tariff_multiplier": scn.home_reporting.tariff_multiplier, "uptake": scn.home_reporting.uptake(),
               "replications": n, "sessions_taken": values["extra_sessions"].mean(),
               "matched_exams": values["reported_home"].mean(), "matched_reading_hours": values["home_reading_hours"].mean(),
               "tariff_paid": values["cost_home"].mean(), "earnings_per_reading_hour": earnings.mean()}
        for metric, column in DIFFERENCES.items():
            d = diffs.loc[(name, metric)]
            row[column], row[f"{column}_ci_low"], row[f"{column}_ci_high"] = d.difference, d.ci_low, d.ci_high
        saving = -row.pop("spend_change")
        low, high = -row.pop("spend_change_ci_high"), -row.pop("spend_change_ci_low")
        row.update(net_saving=saving, net_saving_ci_low=low, net_saving_ci_high=high)
        half = float(t_half_width(np.array([values["reported_home"].std()]), np.array([n]))[0]) if n > 1 else np.nan
        row["matched_exams_ci_low"], row["matched_exams_ci_high"] = row["matched_exams"] - half, row["matched_exams"] + half
        rows.append(row)
    return pd.DataFrame(rows)


def break_even_multiplier(table: pd.DataFrame) -> float:
    """Smallest multiplier at which the mean net saving falls from positive to zero or below (interpolated)."""
    x, y = table["tariff_multiplier"].to_numpy(), table["net_saving"].to_numpy()
    for k in range(len(x) - 1):
        if y[k] > 0 >= y[k + 1]:
            return float(x[k] + (x[k + 1] - x[k]) * y[k] / (y[k] - y[k + 1]))
    return float("nan")


def run_tariff_study(scenario: Scenario, multipliers: list[float], replications: int = 10, seed: int = 1,
                     backend: str = "processes", progress: bool = True, store=None,
                     scheduler: str | None = None) -> TariffStudy:
    """Run the study (see the module docstring)."""
    scenarios = study_scenarios(scenario, multipliers)
    result = compare(scenarios, replications=replications, seed=seed, baseline=BASELINE, backend=backend,
                     scheduler=scheduler, progress=progress, store=store)
    table = tariff_table(result, scenarios)
    return TariffStudy(table, break_even_multiplier(table), result)


def tariff_figure(study: TariffStudy):
    """Net saving (with 95% CI) and matched exams against the tariff multiplier; a matplotlib Figure."""
    from matplotlib.figure import Figure

    t = study.table
    fig = Figure(figsize=(9, 3.4))
    left, right = fig.subplots(1, 2)
    left.fill_between(t.tariff_multiplier, t.net_saving_ci_low, t.net_saving_ci_high, alpha=0.25, color="#4c72b0")
    left.plot(t.tariff_multiplier, t.net_saving, "o-", color="#4c72b0")
    left.axhline(0, color="grey", lw=0.8)
    if not np.isnan(study.break_even):
        left.axvline(study.break_even, color="#c44e52", ls="--", lw=1, label=f"break-even x{study.break_even:.2f}")
        left.legend(frameon=False)
    left.set(xlabel="tariff multiplier", ylabel="net saving vs market off (£)")
    right.errorbar(t.tariff_multiplier, t.matched_exams, yerr=[t.matched_exams - t.matched_exams_ci_low,
                                                                t.matched_exams_ci_high - t.matched_exams], fmt="o-",
                   color="#55a868", label="matched exams")
    right.plot(t.tariff_multiplier, -t.outsourced_change, "s--", color="#c44e52", label="outsourced exams avoided")
    right.set(xlabel="tariff multiplier", ylabel="exams over the horizon")
    right.legend(frameon=False)
    fig.tight_layout()
    return fig


def tariff_text(study: TariffStudy) -> str:
    t = study.table
    lines = [f"tariff study: paired against {BASELINE!r}, {int(t.replications.min())} replications each "
             "(common random numbers); money in £ over the horizon"]
    view = pd.DataFrame({
        "multiplier": t.tariff_multiplier.map("{:g}".format),
        "uptake": t.uptake.map("{:.0%}".format),
        "matched exams": [f"{m:,.0f} [{lo:,.0f}, {hi:,.0f}]" for m, lo, hi in
                          zip(t.matched_exams, t.matched_exams_ci_low, t.matched_exams_ci_high)],
        "backlog change": [f"{m:+,.0f} [{lo:+,.0f}, {hi:+,.0f}]" for m, lo, hi in
                           zip(t.backlog_change, t.backlog_change_ci_low, t.backlog_change_ci_high)],
        "outsourced change": [f"{m:+,.0f} [{lo:+,.0f}, {hi:+,.0f}]" for m, lo, hi in
                              zip(t.outsourced_change, t.outsourced_change_ci_low, t.outsourced_change_ci_high)],
        "tariff paid": t.tariff_paid.map("{:,.0f}".format),
        "£ per reading hour": t.earnings_per_reading_hour.map(lambda v: "—" if np.isnan(v) else f"{v:,.0f}"),
        "net saving": [f"{m:+,.0f} [{lo:+,.0f}, {hi:+,.0f}]" for m, lo, hi in
                       zip(t.net_saving, t.net_saving_ci_low, t.net_saving_ci_high)],
    })
    lines.append(view.to_string(index=False))
    be = study.break_even
    lines.append("" if np.isnan(be) else f"\nbreak-even tariff multiplier (mean net saving crosses zero): {be:.2f}")
    if np.isnan(be):
        lines.append("\nthe mean net saving does not cross zero on this grid: widen it to find the break-even tariff")
    return "\n".join(lines)
