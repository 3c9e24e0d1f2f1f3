"""The first EMRAD pilot reproduced by prediction (facts §11), the follow-on pilots, and the home-session
features the pilot scenario rests on.

Validation (the model vs the published figures), one module-scoped reproduction of 20 replications
(NUH only, ~0.7 s each):
* the table has every published figure with its basis: only the exam count is calibrated (the uptake);
* the calibrated exam count's 95% CI covers the published 1,160;
* every predicted figure's 95% CI lies within ±15% of the published one, except the misses listed in
  EXPLAINED_MISSES with the reason in numbers (and the reason is checked).
Verification (against the definitions in sim.scenario.Finance, sim.policies.home and sim.pilot): WTE
under 2-h PAs is 3/2 of WTE under 3-h PAs; each home session reads one kind of worklist; home reads take
reading time plus the image download; participants read under their home credentials at home only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim.cli import main
from sim.loading import ScenarioError, load_scenario
from sim.pilot import DEFAULT_SCENARIO, FIGURES, FIRST_PILOT_NAME, pilot_text, reproduce_pilot, sensitivity
from sim.worklist import ROUTE_CODE

REPLICATIONS = 20
# A predicted figure whose CI misses ±15% of the published one, and why (checked in the test below).
EXPLAINED_MISSES = {
    "WTE, premium PA 3 h (2003 contract)":
        "1 WTE over 13 weeks is 390 hours of 3-h PAs, i.e. 20 min per published exam; the model reads the "
        "pilot's case mix (about 40% x-ray at ~3 min) in ~12 min per exam. With the BMA's 2-h PA the same "
        "hours are within 15% of 1 WTE.",
}
FOLLOW_ON = ["params/scenarios/pilot_rns_plain_film.toml", "params/scenarios/pilot_rk5_plain_film.toml",
             "params/scenarios/pilot_radiographers.toml"]


@pytest.fixture(scope="module")
def table():
    return reproduce_pilot(replications=REPLICATIONS, seed=1, backend="processes").set_index("figure")


def test_table_has_every_published_figure_with_its_basis(table):
    """Validation: rows and bases as the pilot counted them; only the exam count is calibrated."""
    assert list(table.index) == [f.label for f in FIGURES]
    assert table["n"].eq(REPLICATIONS).all()
    assert table.loc[[f.label for f in FIGURES if f.basis == "calibrated"], "basis"].eq("calibrated").all()
    assert list(table.index[table["basis"] == "calibrated"]) == ["exams reported from home"]
    published = table.dropna(subset=["published"])
    assert len(published) == 10 and set(published["published_source"]) == {"READ", "DERIVED"}


def test_calibrated_exam_count_covers_the_published_figure(table):
    """Validation: the uptake was calibrated to 1,160 exams (sim.pilot.calibrate_uptake, 20 replications)."""
    row = table.loc["exams reported from home"]
    assert row["ci_low"] <= 1160 <= row["ci_high"]


def test_predicted_figures_within_15_percent_or_explained(table):
    """Validation: every predicted figure's 95% CI within ±15% of the published one, or an explained miss."""
    predicted = table[(table["basis"] == "predicted") & table["published"].notna()]
    assert len(predicted) == 9
    for figure, row in predicted.iterrows():
        inside = 0.85 * row["published"] <= row["ci_low"] and row["ci_high"] <= 1.15 * row["published"]
        assert inside == bool(row["ci_within_15pct"]), figure
        assert inside or figure in EXPLAINED_MISSES, (figure, row["model_mean"], row["published"])
    # the explanation of the WTE miss holds: it is the PA length, the 2-h PA version is within 15%
    assert not table.loc["WTE, premium PA 3 h (2003 contract)", "ci_within_15pct"]
    assert table.loc["WTE, premium PA 2 h (BMA rate card)", "ci_within_15pct"]
    text = pilot_text(table.reset_index())
    assert "calibrated" in text and "predicted" in text and "CI within ±15%" in text


def test_wte_under_two_pa_lengths_is_one_definition(table):
    """Verification: both WTE rows divide the same home hours by 10 PAs x PA length x weeks, so 3 h / 2 h = 1.5."""
    three = table.loc["WTE, premium PA 3 h (2003 contract)", "model_mean"]
    two = table.loc["WTE, premium PA 2 h (BMA rate card)", "model_mean"]
    assert two == pytest.approx(1.5 * three, rel=1e-12)


def test_money_per_exam_rows_agree_with_the_totals(table):
    """Verification: the ratio of the income and outsourcing totals equals the per-exam ratio (same exams)."""
    ratio = table.loc["income / outsourcing cost", "model_mean"]
    income = table.loc["income per exam (£)", "model_mean"]
    outsourcing = table.loc["outsourcing cost per exam (£)", "model_mean"]
    assert ratio == pytest.approx(income / outsourcing, rel=0.02)  # mean of ratios vs ratio of means


def test_pilot_table_holds_no_identifiers(table, tmp_path):
    """Pseudonymisation: what `emrad-sim pilot` writes is aggregates only (no SIM- patient or exam ids)."""
    path = tmp_path / "pilot_table.csv"
    table.reset_index().to_csv(path, index=False)
    text = path.read_text()
    assert "SIM-" not in text and "RX1-consultants" not in text


def test_the_default_pilot_file_is_the_first_pilot():
    assert load_scenario(DEFAULT_SCENARIO).name == FIRST_PILOT_NAME


@pytest.mark.parametrize("path", FOLLOW_ON, ids=["RNS", "RK5", "radiographers"])
def test_follow_on_pilots_are_predictions_only(path):
    """Validation has nothing to compare with: no published figure is shown and the text says so."""
    table = reproduce_pilot(path, replications=2, seed=1, backend="serial")
    assert table["published"].isna().all() and not table["basis"].eq("calibrated").any()
    values = table.set_index("figure")["model_mean"]
    assert values["exams reported from home"] > 100
    assert values["x-ray share of home exams"] == 1.0  # plain-film pilots
    assert "PREDICTIONS ONLY" in pilot_text(table)


def test_sensitivity_moves_money_per_exam_with_the_x_ray_share():
    """Verification: more plain-film sessions, more x-rays read, and x-rays earn less per exam."""
    block = sensitivity(replications=2, seed=1, backend="serial", xr_session_shares=(0.0, 0.2),
                        reading_time_factors=())
    low, high = block.iloc[0], block.iloc[1]
    assert low["x-ray share of exams"] == 0.0 < high["x-ray share of exams"]
    assert high["income per exam (£)"] < low["income per exam (£)"]
    assert "sensitivity" in pilot_text(reproduce_pilot(replications=2, backend="serial"), block)


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, message", [
    ("[home_reporting]\nenabled = false\nsessions = []\n", "needs home sessions"),
    ("[home_reporting]\nparticipants = []\n", "names its participants"),
    ('simulate_trusts = ["RNS"]\n', "no participant is a reporter of a simulated trust"),
], ids=["no_home_sessions", "no_participants", "participants_not_simulated"])
def test_a_bad_pilot_scenario_is_a_clear_error_naming_the_file(tmp_path, capsys, extra, message):
    text = f'extends = "{DEFAULT_SCENARIO}"\n' + extra
    path = tmp_path / "bad_pilot.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        reproduce_pilot(path, replications=1, backend="serial")
    assert str(path) in str(info.value) and message in str(info.value)
    code = main(["pilot", "--scenario", str(path), "--replications", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and str(path) in err and message in err and "Traceback" not in err


# -- home-session features the pilot rests on (verification, one replication of the pilot) --------
@pytest.fixture(scope="module")
def pilot_run():
    scn = load_scenario(DEFAULT_SCENARIO)
    from sim.model import Engine

    engine = Engine(scn, 3, 0)
    return scn, engine, engine.run()


def test_each_home_session_reads_one_kind_of_worklist(pilot_run):
    scn, engine, raw = pilot_run
    home = np.flatnonzero(raw.route == ROUTE_CODE["home"])
    sessions = [s for s in engine.interventions if s.name == "home_reporting"][0].sessions
    modality = np.array([m.code for m in scn.modalities])[raw.exams.modality[home]]
    kinds = [set(w.modalities) for w in scn.home_reporting.worklists]
    seen = set()
    for reader, start, end in sessions:
        mine = (raw.reader[home] == reader) & (raw.left_at[home] >= start) & (raw.left_at[home] < end)
        read = set(modality[mine])
        assert any(read <= kind for kind in kinds), (reader, start, read)
        seen |= {frozenset(k) for k in kinds if read and read <= k}
    assert len(seen) == 2  # both kinds occur


def test_home_reads_take_reading_time_plus_the_download(pilot_run):
    scn, engine, raw = pilot_run
    home = np.flatnonzero(raw.route == ROUTE_CODE["home"])
    assert home.size > 50
    speed = np.array([r.speed for r in raw.reporters])[raw.reader[home]]
    download = np.array([scn.home_reporting.download_minutes.get(m.code, 0.0) for m in scn.modalities]) / 60
    expected = (raw.exams.work_hours[home] * scn.home_reporting.reading_time_factor / speed
                + download[raw.exams.modality[home]])
    assert np.allclose(raw.done_at[home] - raw.left_at[home], expected, rtol=1e-9, atol=1e-12)


def test_participants_read_wider_at_home_than_in_core_sessions(pilot_run):
    """The neuroradiologists read neuro CT/MR in core sessions, and (their pilot contract) other work at home."""
    scn, engine, raw = pilot_run
    neuro = scn.subspecialties.index("neuro")
    participants = [i for i, r in enumerate(raw.reporters) if r.reporter_id in scn.home_reporting.participants]
    theirs = np.isin(raw.reader, participants)
    core = theirs & (raw.route == ROUTE_CODE["core"])
    home = theirs & (raw.route == ROUTE_CODE["home"])
    assert core.sum() > 0 and np.all(raw.exams.subspecialty[core] == neuro)
    assert np.any(raw.exams.subspecialty[home] != neuro)
    xr = [m.code for m in scn.modalities].index("XR")
    assert np.any(raw.exams.modality[home] == xr) and not np.any(raw.exams.modality[core] == xr)


def test_the_pilot_runs_nuh_alone():
    """The pilot simulates NUH only (simulate_trusts): no exam or reporter of another trust."""
    scn = load_scenario(DEFAULT_SCENARIO)
    run = sim.run(scn, seed=1, replication=0, keep_exams=True)
    assert set(run.exams["trust"].astype(str)) == {"RX1"}
    assert isinstance(run.exams, pd.DataFrame)


def test_the_simulated_log_is_read_like_a_ris_export_with_patients_pseudonymised():
    """Pseudonymisation: the pilot's home log goes through sim.activity.read_activity_log; episodes keep their
    linkage (one pseudonym per patient), and no simulated id survives."""
    from dataclasses import replace

    from sim.activity import activity_log_from_run, codes_from_scenario, read_activity_log
    from sim.pilot import SIMULATED_KEY

    scn = load_scenario(DEFAULT_SCENARIO)
    run = sim.run(scn, seed=2, replication=0, keep_exams=True)
    home = run.exams[run.exams["route"] == "home"].reset_index(drop=True)
    exported = activity_log_from_run(replace(run, exams=home), scn, reading_minutes=True)
    log = read_activity_log(exported, key=SIMULATED_KEY, **codes_from_scenario(scn))
    assert log.exams["patient_id"].nunique() == home["patient"].nunique() < len(home)
    assert not set(log.exams["patient_id"].astype(str)) & set(exported["patient_id"])
    assert not log.exams["patient_id"].astype(str).str.startswith("SIM-").any()
