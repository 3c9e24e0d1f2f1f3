"""VALIDATION plumbing: `emrad-sim calibrate` sets model outputs beside published figures.

The table's model column must come from a run (recomputed here from the raw replications, and
moving when the scenario moves), never typed in; the published column must match the figures
and sources in sim.calibration. Whether the default year is within 25% of each figure is a
property of the full year (see the README), too slow for the default suite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim.calibration import calibration_table, figures, model_values
from sim.cli import main
from sim.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def short():
    return sim.load_scenario(ROOT / "params" / "emrad.toml").with_changes({"horizon_weeks": 2})


@pytest.fixture(scope="module")
def experiment(short):
    return run_experiment(short, replications=2, seed=3, backend="serial", progress=False)


def _consortium(tidy: pd.DataFrame, metric: str) -> np.ndarray:
    rows = tidy[(tidy.trust == "ALL") & (tidy.modality == "ALL") & (tidy.metric == metric)]
    return rows.sort_values("replication")["value"].to_numpy()


def test_model_values_are_recomputed_from_the_replications(experiment):
    tidy = experiment.replications
    values = model_values(experiment).pivot(index="replication", columns="metric", values="value")
    sent = _consortium(tidy, "outsourced") + _consortium(tidy, "teleradiology")
    exams = _consortium(tidy, "arrivals") + _consortium(tidy, "initial_backlog")
    assert np.allclose(values["share_sent_out"], sent / exams)
    spend = (_consortium(tidy, "cost_outsourced") + _consortium(tidy, "cost_teleradiology")) * 52 / 2
    assert np.allclose(values["spend_per_year"], spend)
    ctmr = tidy[(tidy.trust != "ALL") & tidy.modality.isin(["CT", "MR"])]
    ooh = ctmr[ctmr.metric == "acquired_ooh"].groupby("replication")["value"].sum()
    out = ctmr[ctmr.metric == "ooh_sent_out"].groupby("replication")["value"].sum()
    assert np.allclose(values["ooh_share_sent_out"], (out / ooh).to_numpy())
    assert (values["share_sent_out"] > 0).all() and (values["ooh_share_sent_out"] > 0.5).all()


def test_table_pairs_each_figure_with_its_model_mean(experiment):
    table = calibration_table(experiment).set_index("key")
    values = model_values(experiment).groupby("metric")["value"].mean()
    for f in figures(experiment.scenario):
        row = table.loc[f.key]
        assert row["published"] == f.published and row["source"] == f.source and row["tuned"] == f.tuned
        assert row["model_mean"] == pytest.approx(values[f.key])
        assert row["model_over_published"] == pytest.approx(values[f.key] / f.published)
        assert row["n"] == 2


def test_the_table_moves_with_the_scenario(short, experiment):
    no_night = short.with_changes({"teleradiology.enabled": False})
    other = calibration_table(run_experiment(no_night, replications=2, seed=3, backend="serial",
                                             progress=False)).set_index("key")
    base = calibration_table(experiment).set_index("key")
    assert other.loc["ooh_share_sent_out", "model_mean"] < base.loc["ooh_share_sent_out", "model_mean"] - 0.5
    assert other.loc["spend_per_year", "model_mean"] < base.loc["spend_per_year", "model_mean"]


def test_calibrate_command_writes_the_table_from_its_run(tmp_path, short, capsys):
    scenario = tmp_path / "short.toml"
    scenario.write_text(f'extends = "{(ROOT / "params" / "emrad.toml").as_posix()}"\nhorizon_weeks = 2\n',
                        encoding="utf-8")
    out = tmp_path / "calibration"
    assert main(["calibrate", str(scenario), "--replications", "2", "--seed", "3", "--backend", "serial",
                 "--no-progress", "--out", str(out)]) == 0
    written = pd.read_csv(out / "calibration.csv").set_index("key")
    expected = calibration_table(run_experiment(short, replications=2, seed=3, backend="serial",
                                                progress=False)).set_index("key")
    assert np.allclose(written["model_mean"], expected["model_mean"], equal_nan=True)
    printed = capsys.readouterr().out
    assert "share of out-of-hours CT/MR outsourced" in printed and "within 25%" in printed
