"""Reproduce the first EMRAD pilot: model predictions of its published figures, with CIs.

Each replication of `params/pilot_nuh_neuro.toml` is simulated, exported as an activity log
(sim.activity) and evaluated by the same code as a real pilot's RIS export (sim.evaluation),
restricted to the pilot's home-route reports. The table sets each published figure (facts §11)
beside the model's mean and 95% CI over replications and says whether the figure was used to
calibrate the scenario or is a prediction.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from sim.activity import activity_log_from_run, codes_from_scenario, read_activity_log
from sim.backends import map_unordered
from sim.evaluation import EvaluationWarning, evaluate_activity, tables_from_scenario
from sim.experiment import summarise
from sim.loading import load_scenario
from sim.runner import run
from sim.scenario import Scenario

DEFAULT_SCENARIO = Path(__file__).resolve().parents[1] / "params" / "pilot_nuh_neuro.toml"
# simulated logs hold no real identifiers; a fixed key keeps their pseudonyms reproducible
SIMULATED_KEY = b"emrad-sim: simulated pilot, no real identifiers"


@dataclass(frozen=True)
class Figure:
    label: str
    published: float
    metric: str  # sim.evaluation summary metric
    basis: str  # "calibrated" or "predicted"
    assumption: str


FIGURES = (
    Figure("exams reported from home", 1160, "extra_exams", "calibrated",
           "uptake_probability chosen to match this figure (params/pilot_nuh_neuro.toml)"),
    Figure("patients", 939, "extra_patients", "predicted",
           "exams_per_patient 1.235 is derived from this pilot, but home readers take exams one at a time"),
    Figure("WTE generated", 1.0, "wte_generated", "predicted",
           "simulated reading minutes (facts §3 ESTIMATE) / (40 h per WTE-week x 13 weeks)"),
    Figure("trust income (£)", 23753, "cost_insourcing_tariff", "predicted",
           "exams priced at the regional insourcing tariff (facts §10): CT/MR £25-£55 by band"),
    Figure("outsourcing cost of the same exams (£)", 33504, "cost_outsourcing", "predicted",
           "exams priced at the emrad.toml outsourcing list (ESTIMATE, ~1.3 x the tariff)"),
)


def evaluate_replication(job: tuple[Scenario, int, int]) -> dict[str, float]:
    """One replication: simulate, export the home-route activity log, evaluate it; summary metrics."""
    scn, seed, replication = job
    result = run(scn, seed, replication, keep_exams=True)
    # only the pilot's home reports are evaluated: export just those (the full log is ~1M rows)
    home = result.exams[result.exams["route"] == "home"].reset_index(drop=True)
    log = activity_log_from_run(replace(result, exams=home), scn, reading_minutes=True)
    tables = tables_from_scenario(scn)
    last_day = scn.start_date + pd.Timedelta(weeks=scn.horizon_weeks) - pd.Timedelta(days=1)
    with warnings.catch_warnings():  # no "before" period in a home-only log: only the volume figures are used
        warnings.simplefilter("ignore", EvaluationWarning)
        evaluation = evaluate_activity(
            read_activity_log(log, key=SIMULATED_KEY, **codes_from_scenario(scn)), tariffs=tables, rates=tables,
            pilot_start=scn.start_date, pilot_end=last_day, log_days=(scn.start_date, last_day),
            hours_per_wte_week=scn.finance.hours_per_wte_week, suppress_below=0)
    values = {f.metric: evaluation.value(f.metric) for f in FIGURES}
    values["replication"] = replication
    return values


def reproduce_pilot(scenario: Scenario | str | Path = DEFAULT_SCENARIO, replications: int = 6, seed: int = 1,
                    backend: str = "processes", workers: int | None = None) -> pd.DataFrame:
    """The pilot table: figure | published | model mean | 95% CI | basis | assumption."""
    scn = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    rows = list(map_unordered(evaluate_replication, [(scn, seed, r) for r in range(replications)], backend, workers))
    per_replication = pd.DataFrame(rows).sort_values("replication")
    long = per_replication.melt(id_vars="replication", var_name="metric", value_name="value")
    summary = summarise(long, ["metric"], "value").set_index("metric")
    return pd.DataFrame([{
        "figure": f.label, "published": f.published, "model_mean": summary.at[f.metric, "mean"],
        "ci_low": summary.at[f.metric, "ci_low"], "ci_high": summary.at[f.metric, "ci_high"],
        "model_over_published": summary.at[f.metric, "mean"] / f.published,
        "n": int(summary.at[f.metric, "n"]), "basis": f.basis, "assumption": f.assumption,
    } for f in FIGURES])


def pilot_text(table: pd.DataFrame) -> str:
    def fmt(value: float, figure: str) -> str:
        return "" if pd.isna(value) else (f"{value:,.2f}" if figure.startswith("WTE") else f"{value:,.0f}")

    view = pd.DataFrame({
        "published figure": table["figure"],
        "published": [fmt(v, f) for v, f in zip(table["published"], table["figure"])],
        "model mean": [fmt(v, f) for v, f in zip(table["model_mean"], table["figure"])],
        "95% CI": [f"[{fmt(lo, f)}, {fmt(hi, f)}]" for lo, hi, f in zip(table["ci_low"], table["ci_high"], table["figure"])],
        "model / published": [f"{v:.2f}" for v in table["model_over_published"]],
        "basis": table["basis"],
    })
    notes = [f"  {f}: {a}" for f, a in zip(table["figure"], table["assumption"])]
    n = int(table["n"].max())
    return "\n".join([f"First EMRAD pilot (facts §11) vs the model, {n} replications", view.to_string(index=False),
                      "", "assumptions:", *notes])
