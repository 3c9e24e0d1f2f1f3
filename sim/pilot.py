"""Reproduce the first EMRAD pilot by prediction: model figures beside the published ones, with CIs.

Each replication of a pilot scenario (default `params/pilot_nuh_neuro.toml`) is simulated (only the
trusts it names in `simulate_trusts`: under local routing trusts are independent), exported as an
activity log (sim.activity, patient and exam ids pseudonymised on reading as for a real RIS export)
and evaluated by the same code as a real pilot's log (sim.evaluation), restricted to the home-route
reports. The pilot counted:

* exams and patients: the home reports and their distinct (pseudonymised) patients; patients follow
  from the demand's episodes (sim.demand) and readers taking an episode's exams together;
* WTE: the home reading hours (reading time + image download) in premium-time PAs, 1 WTE = 10 PAs a
  week (sim.scenario.Finance), under both PA lengths in use: 3 h (2003 contract) and 2 h (BMA rate card);
* money: commissioner income at the scenario's `finance.commissioner_income` (what the trust earned, not
  what it paid its readers, `finance.insourcing_tariff`), and the same exams at the routine outsourcing
  price list, with both per exam and their ratio.

Only the exam count is calibrated (the uptake of offered sessions); every other row is a prediction.
A sensitivity block shows how the predictions move with the assumptions they rest on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from sim.activity import activity_log_from_run, codes_from_scenario, read_activity_log
from sim.backends import map_unordered
from sim.evaluation import EvaluationWarning, evaluate_activity, tables_from_scenario
from sim.experiment import summarise
from sim.loading import ScenarioError, load_scenario
from sim.runner import run
from sim.scenario import Scenario

DEFAULT_SCENARIO = Path(__file__).resolve().parents[1] / "params" / "pilot_nuh_neuro.toml"
FIRST_PILOT_NAME = "First EMRAD pilot: six NUH neuroradiologists reporting from home, three months"
# simulated logs hold no real identifiers; a fixed key keeps their pseudonyms reproducible
SIMULATED_KEY = b"emrad-sim: simulated pilot, no real identifiers"
CONTRACT_2003_PA_HOURS = 3.0  # ops_facts §3 READ: a premium-time PA under the 2003 consultant contract
RATE_CARD_PA_HOURS = 2.0  # facts §4 READ: BMA rate card, evening / weekend PA


@dataclass(frozen=True)
class Figure:
    label: str
    published: float  # facts §11; NaN: not published (a model-only row)
    source: str  # how the published figure was obtained (READ / DERIVED), or "" for a model-only row
    metric: str  # column of the per-replication values
    basis: str  # "calibrated" or "predicted"
    assumption: str  # from what the model's figure follows


FIGURES = (
    Figure("exams reported from home", 1160, "READ", "extra_exams", "calibrated",
           "home_reporting.uptake_probability chosen so the mean matches this figure"),
    Figure("patients", 939, "READ", "extra_patients", "predicted",
           "episode sizes (ESTIMATE from non-UK figures, ops_facts §4) and readers taking an episode's exams together"),
    Figure("exams per patient", 1160 / 939, "DERIVED", "exams_per_patient", "predicted",
           "as patients"),
    Figure("WTE, premium PA 3 h (2003 contract)", 1.0, "READ", "wte_contract_2003", "predicted",
           "home reading + download hours / (10 PAs x 3 h x 13 weeks); reading minutes facts §3 ESTIMATE"),
    Figure("WTE, premium PA 2 h (BMA rate card)", 1.0, "READ", "wte_rate_card", "predicted",
           "as above with 2-h PAs (facts §4)"),
    Figure("trust income from commissioners (£)", 23753, "READ", "commissioner_income", "predicted",
           "finance.commissioner_income of the scenario (ESTIMATE: the regional per-exam tariff, facts §10)"),
    Figure("outsourcing cost of the same exams (£)", 33504, "READ", "cost_outsourcing", "predicted",
           "the routine outsourcing price list (ESTIMATE, ~1.3 x the regional tariff)"),
    Figure("income per exam (£)", 23753 / 1160, "DERIVED", "income_per_exam", "predicted",
           "the case mix read (x-ray share: see the sensitivity block) priced at the income table"),
    Figure("outsourcing cost per exam (£)", 33504 / 1160, "DERIVED", "outsourcing_per_exam", "predicted",
           "the case mix read priced at the outsourcing list"),
    Figure("income / outsourcing cost", 23753 / 33504, "DERIVED", "income_to_outsourcing_ratio", "predicted",
           "the two price tables and the case mix"),
    Figure("readers' pay at the insourcing tariff (£)", np.nan, "", "cost_insourcing_tariff", "predicted",
           "finance.insourcing_tariff (facts §10); not published: the pilot paid through payroll"),
    Figure("x-ray share of home exams", np.nan, "", "xr_share", "predicted",
           "follows from home_reporting.worklists (the share of plain-film sessions, an ESTIMATE)"),
)


def check_pilot_scenario(scn: Scenario, source: str) -> None:
    """A pilot needs home sessions and named participants who are simulated: else a ScenarioError naming `source`."""
    home = scn.home_reporting
    if home is None or not home.enabled:
        raise ScenarioError(source, [("home_reporting", "a pilot scenario needs home sessions: [home_reporting] "
                                                        "with enabled = true")])
    if not home.participants:
        raise ScenarioError(source, [("home_reporting.participants", "a pilot scenario names its participants "
                                                                     "(staff group names or reporter ids)")])
    groups = [g for g in scn.staff if scn.simulates(g.trust) and g.count > 0]
    ids = {f"{g.trust}-{g.name}-{k + 1:03d}" for g in groups for k in range(g.count)}
    if not any(who in ids or who in {g.name for g in groups} for who in home.participants):
        raise ScenarioError(source, [("home_reporting.participants", "no participant is a reporter of a simulated "
                                                                     "trust (check simulate_trusts and staff)")])


def evaluate_replication(job: tuple[Scenario, int, int]) -> dict[str, float]:
    """One replication: simulate, export the home-route activity log, evaluate it; the pilot's figures."""
    scn, seed, replication = job
    result = run(scn, seed, replication, keep_exams=True)
    # only the pilot's home reports are evaluated: export just those
    home = result.exams[result.exams["route"] == "home"].reset_index(drop=True)
    log = activity_log_from_run(replace(result, exams=home), scn, reading_minutes=True)
    tables = tables_from_scenario(scn)
    last_day = scn.start_date + pd.Timedelta(weeks=scn.horizon_weeks) - pd.Timedelta(days=1)
    with warnings.catch_warnings():  # no "before" period in a home-only log: only the volume figures are used
        warnings.simplefilter("ignore", EvaluationWarning)
        evaluation = evaluate_activity(
            read_activity_log(log, key=SIMULATED_KEY, **codes_from_scenario(scn)), tariffs=tables, rates=tables,
            pilot_start=scn.start_date, pilot_end=last_day, log_days=(scn.start_date, last_day),
            hours_per_wte_week=scn.finance.hours_per_wte_week, premium_pa_hours=scn.finance.premium_pa_hours,
            suppress_below=0)
    values = {m: evaluation.value(m) for m in ("extra_exams", "extra_patients", "exams_per_patient",
                                               "commissioner_income", "cost_outsourcing", "income_per_exam",
                                               "outsourcing_per_exam", "income_to_outsourcing_ratio",
                                               "cost_insourcing_tariff")}
    weeks, hours = evaluation.value("pilot_weeks"), evaluation.value("extra_hours")
    pas = scn.finance.pas_per_wte_week
    values["wte_contract_2003"] = hours / (CONTRACT_2003_PA_HOURS * pas * weeks)
    values["wte_rate_card"] = hours / (RATE_CARD_PA_HOURS * pas * weeks)
    values["xr_share"] = float((home["modality"] == "XR").mean()) if len(home) else np.nan
    values["replication"] = replication
    return values


def _resolve(scenario: Scenario | str | Path) -> Scenario:
    if isinstance(scenario, Scenario):
        check_pilot_scenario(scenario, f"scenario {scenario.name!r}")
        return scenario
    scn = load_scenario(scenario)
    check_pilot_scenario(scn, str(Path(scenario).resolve()))
    return scn


def replication_values(scenario: Scenario | str | Path = DEFAULT_SCENARIO, replications: int = 20, seed: int = 1,
                       backend: str = "processes", workers: int | None = None) -> pd.DataFrame:
    """The pilot's figures per replication (one row each)."""
    scn = _resolve(scenario)
    rows = list(map_unordered(evaluate_replication, [(scn, seed, r) for r in range(replications)], backend, workers))
    return pd.DataFrame(rows).sort_values("replication").reset_index(drop=True)


def reproduce_pilot(scenario: Scenario | str | Path = DEFAULT_SCENARIO, replications: int = 20, seed: int = 1,
                    backend: str = "processes", workers: int | None = None) -> pd.DataFrame:
    """The pilot table: figure | published | model mean | 95% CI | model / published | basis | assumption.

    Published figures (facts §11) are shown only for the first pilot (its scenario's name); any other
    pilot scenario (the follow-on pilots) gets predictions only, with `published` NaN.
    """
    scn = _resolve(scenario)
    per_replication = replication_values(scn, replications, seed, backend, workers)
    first_pilot = scn.name == FIRST_PILOT_NAME
    long = per_replication.melt(id_vars="replication", var_name="metric", value_name="value")
    summary = summarise(long, ["metric"], "value").set_index("metric")
    rows = []
    for f in FIGURES:
        published = f.published if first_pilot else np.nan
        mean = summary.at[f.metric, "mean"]
        rows.append({
            "figure": f.label, "published": published, "published_source": f.source if first_pilot else "",
            "model_mean": mean, "ci_low": summary.at[f.metric, "ci_low"], "ci_high": summary.at[f.metric, "ci_high"],
            "model_over_published": mean / published if published else np.nan,
            "ci_within_15pct": bool(summary.at[f.metric, "ci_low"] >= 0.85 * published
                                    and summary.at[f.metric, "ci_high"] <= 1.15 * published) if published > 0 else None,
            "n": int(summary.at[f.metric, "n"]),
            "basis": f.basis if first_pilot or f.basis == "predicted" else "predicted (uptake as set)",
            "assumption": f.assumption,
        })
    table = pd.DataFrame(rows)
    table.attrs["scenario"] = scn.name
    table.attrs["first_pilot"] = first_pilot
    return table


def sensitivity(scenario: Scenario | str | Path = DEFAULT_SCENARIO, replications: int = 5, seed: int = 1,
                backend: str = "processes", workers: int | None = None,
                xr_session_shares=(0.0, 0.05, 0.10, 0.20), reading_time_factors=(0.8, 1.0, 1.25)) -> pd.DataFrame:
    """How each prediction moves with the assumptions: the x-ray share of sessions and the home reading-time
    factor (the WTE definition is in the columns: 3-h and 2-h premium PAs).

    Exam counts move with these too (the uptake is calibrated once, for the base case), so patients and
    WTE are shown per 1,160 exams (the published count): those are the figures the assumption predicts.
    """
    scn = _resolve(scenario)
    base = scn.home_reporting
    variants: list[tuple[str, str, Scenario]] = []
    kinds = [w for w in base.worklists]
    for share in xr_session_shares:
        if len(kinds) == 2 and kinds[0].modalities == ("XR",):
            changed = scn.with_changes({"home_reporting.worklists": [
                {"modalities": list(kinds[0].modalities), "share": share},
                {"modalities": list(kinds[1].modalities), "share": 1 - share}]})
            variants.append(("x-ray share of sessions", f"{share:g}", changed))
    for factor in reading_time_factors:
        variants.append(("home reading-time factor", f"{factor:g}",
                         scn.with_changes({"home_reporting.reading_time_factor": factor})))
    published_exams = 1160
    rows = []
    for parameter, value, variant in variants:
        values = replication_values(variant, replications, seed, backend, workers)
        per_exam = published_exams / values["extra_exams"]
        derived = pd.DataFrame({
            "exams": values["extra_exams"],
            "patients per 1,160 exams": values["extra_patients"] * per_exam,
            "exams per patient": values["exams_per_patient"],
            "WTE per 1,160 exams (3-h PA)": values["wte_contract_2003"] * per_exam,
            "WTE per 1,160 exams (2-h PA)": values["wte_rate_card"] * per_exam,
            "income per exam (£)": values["income_per_exam"],
            "outsourcing per exam (£)": values["outsourcing_per_exam"],
            "income / outsourcing": values["income_to_outsourcing_ratio"],
            "x-ray share of exams": values["xr_share"],
        })
        rows.append({"assumption": parameter, "value": value, "base": _is_base(scn, parameter, value),
                     **derived.mean().to_dict()})
    return pd.DataFrame(rows)


def _is_base(scn: Scenario, parameter: str, value: str) -> bool:
    home = scn.home_reporting
    if parameter == "home reading-time factor":
        return float(value) == home.reading_time_factor
    return bool(home.worklists) and float(value) == home.worklists[0].share


def pilot_text(table: pd.DataFrame, sensitivity_table: pd.DataFrame | None = None) -> str:
    def fmt(value: float, figure: str) -> str:
        if pd.isna(value):
            return ""
        if figure.startswith(("WTE", "exams per", "income /", "x-ray")):
            return f"{value:,.3f}"
        return f"{value:,.2f}" if "per exam" in figure else f"{value:,.0f}"

    first = bool(table.attrs.get("first_pilot", True))
    view = pd.DataFrame({
        "figure": table["figure"],
        "published": [fmt(v, f) for v, f in zip(table["published"], table["figure"])],
        "model mean": [fmt(v, f) for v, f in zip(table["model_mean"], table["figure"])],
        "95% CI": [f"[{fmt(lo, f)}, {fmt(hi, f)}]" for lo, hi, f in zip(table["ci_low"], table["ci_high"], table["figure"])],
        "model / published": ["" if pd.isna(v) else f"{v:.2f}" for v in table["model_over_published"]],
        "CI within ±15%": ["" if v is None or pd.isna(v) else ("yes" if v else "no") for v in table["ci_within_15pct"]],
        "basis": table["basis"],
    })
    if not first:
        view = view.drop(columns=["published", "model / published", "CI within ±15%"])
    notes = [f"  {f}: {a}" for f, a in zip(table["figure"], table["assumption"])]
    n = int(table["n"].max())
    title = (f"First EMRAD pilot (facts §11) vs the model, {n} replications" if first else
             f"{table.attrs.get('scenario', 'pilot')}: PREDICTIONS ONLY (no published figures), {n} replications")
    lines = [title, view.to_string(index=False), "", "from what:", *notes]
    if sensitivity_table is not None and len(sensitivity_table):
        shown = sensitivity_table.copy()
        shown["assumption"] = [f"{a} = {v}{' (base)' if b else ''}" for a, v, b in
                               zip(shown["assumption"], shown["value"], shown["base"])]
        shown = shown.drop(columns=["value", "base"])
        lines += ["", "sensitivity (means over replications; patients and WTE scaled to 1,160 exams):",
                  shown.to_string(index=False, float_format=lambda v: f"{v:,.3f}")]
    return "\n".join(lines)


def calibrate_uptake(scenario: Scenario | str | Path = DEFAULT_SCENARIO, target_exams: float = 1160,
                     replications: int = 20, seed: int = 1, iterations: int = 3, backend: str = "processes",
                     workers: int | None = None) -> float:
    """The uptake probability whose mean home exam count is `target_exams` (how the pilot file's value was set).

    Sessions taken, and so exams, grow in proportion to the uptake while the backlog never runs dry in a
    session, so each step rescales the uptake by target / mean; rounded to 3 decimals.
    """
    scn = _resolve(scenario)
    uptake = scn.home_reporting.uptake()
    for _ in range(iterations):
        variant = scn.with_changes({"home_reporting.uptake_probability": uptake, "home_reporting.uptake_curve": []})
        exams = replication_values(variant, replications, seed, backend, workers)["extra_exams"].mean()
        uptake = round(min(1.0, uptake * target_exams / exams), 3)
    return uptake
