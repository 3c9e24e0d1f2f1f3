"""UNIT and REGRESSION tests: the results folder written by ``emrad-sim run``.

The command is run in-process (``sim.cli.main``) on a small two-trust scenario with two
replications. The folder must hold every documented file and no leftover temporary file; the
manifest must be enough to reproduce the run (rerunning from it alone gives a byte-identical
replications.csv); and the serial and process-pool backends must give identical results.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import tomli_w

from sim.cli import main
from sim.loading import load_scenario
from tests.scenarios import two_trust_data

FILES = {"manifest.json", "scenario.toml", "replications.csv", "summary.csv", "summary_by_trust.csv",
         "backlog.parquet", "reporters.csv", "flows.csv", "market.csv"}
SEED = 7


def run_cli(*args: str) -> None:
    assert main(["run", *args, "--no-progress"]) == 0


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "small.toml"
    path.write_text(tomli_w.dumps(two_trust_data(weeks=2)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def serial_out(scenario_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results") / "serial"
    run_cli(str(scenario_file), "--seed", str(SEED), "--replications", "2", "--backend", "serial", "--out", str(out))
    return out


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_results_folder_holds_every_file_and_no_temporaries(serial_out):
    names = {p.name for p in serial_out.iterdir()}
    assert FILES <= names
    assert leftovers(serial_out) == []
    assert all((serial_out / name).stat().st_size > 0 for name in FILES)


def test_summary_columns_and_contents(serial_out):
    summary = pd.read_csv(serial_out / "summary.csv")
    assert list(summary.columns) == ["metric", "mean", "sd", "ci_low", "ci_high", "n"]
    assert summary["metric"].is_unique
    assert {"arrivals", "reported", "outsourced", "unreported_end", "tat_median_h"} <= set(summary["metric"])
    row = summary.set_index("metric").loc["arrivals"]
    assert row["n"] == 2 and row["ci_low"] <= row["mean"] <= row["ci_high"]
    # the summary is the mean over the replications written next to it
    reps = pd.read_csv(serial_out / "replications.csv")
    assert list(reps.columns) == ["replication", "trust", "modality", "urgency", "metric", "value"]
    assert sorted(reps["replication"].unique()) == [0, 1]
    arrivals = reps[(reps.trust == "ALL") & (reps.modality == "ALL") & (reps.metric == "arrivals")]["value"]
    assert len(arrivals) == 2 and arrivals.mean() == pytest.approx(row["mean"])


def test_other_tables(serial_out):
    backlog = pd.read_parquet(serial_out / "backlog.parquet")
    assert {"time_h", "trust", "waiting", "replication"} <= set(backlog.columns)
    assert set(backlog["trust"]) == {"T1", "T2"} and set(backlog["replication"]) == {0, 1}
    reporters = pd.read_csv(serial_out / "reporters.csv")
    assert {"reporter_id", "trust", "session_hours", "reading_hours", "exams_read", "replication"} <= set(reporters.columns)
    assert len(reporters) == 2 * 3  # three reporters in each of two replications


def test_manifest_is_complete(serial_out, scenario_file):
    manifest = json.loads((serial_out / "manifest.json").read_text())
    scn = load_scenario(scenario_file)
    assert manifest["config_id"] == scn.config_id
    assert manifest["root_seed"] == SEED and manifest["replications"] == 2
    assert "git_commit" in manifest  # None outside a git checkout, else a commit (maybe +dirty)
    assert manifest["git_commit"] is None or len(manifest["git_commit"].removesuffix("+dirty")) == 40
    versions = manifest["versions"]
    assert {"python", "emrad-sim", "simpy", "numpy", "pandas", "pydantic"} <= set(versions)
    assert {"hostname", "platform", "cpus"} <= set(manifest["machine"])
    assert manifest["scenario"] == scn.model_dump(mode="json")
    # the resolved scenario.toml next to it is the same scenario
    assert load_scenario(serial_out / "scenario.toml").config_id == scn.config_id


def test_rerun_from_the_manifest_alone_reproduces_replications(serial_out, tmp_path):
    out2 = tmp_path / "again"
    run_cli(str(serial_out / "manifest.json"), "--backend", "serial", "--out", str(out2))
    assert (out2 / "replications.csv").read_bytes() == (serial_out / "replications.csv").read_bytes()
    manifest = json.loads((out2 / "manifest.json").read_text())
    assert (manifest["root_seed"], manifest["replications"]) == (SEED, 2)
    assert leftovers(out2) == []


def test_processes_backend_matches_serial(serial_out, scenario_file, tmp_path):
    out = tmp_path / "processes"
    run_cli(str(scenario_file), "--seed", str(SEED), "--replications", "2", "--backend", "processes", "--out", str(out))
    assert (out / "replications.csv").read_bytes() == (serial_out / "replications.csv").read_bytes()
    assert (out / "summary.csv").read_bytes() == (serial_out / "summary.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(out / "backlog.parquet"), pd.read_parquet(serial_out / "backlog.parquet"))
    assert json.loads((out / "manifest.json").read_text())["backend"] == "processes"
    assert leftovers(out) == []


def test_rewriting_a_folder_replaces_it_cleanly(serial_out, scenario_file, tmp_path):
    out = tmp_path / "rewritten"
    run_cli(str(scenario_file), "--seed", "3", "--replications", "1", "--backend", "serial", "--out", str(out))
    # another seed is another run: refused without --overwrite (issue 12), the folder untouched
    assert main(["run", str(scenario_file), "--seed", str(SEED), "--replications", "2", "--backend", "serial",
                 "--out", str(out), "--no-progress"]) == 2
    assert json.loads((out / "manifest.json").read_text())["root_seed"] == 3
    run_cli(str(scenario_file), "--seed", str(SEED), "--replications", "2", "--backend", "serial", "--out", str(out),
            "--overwrite")
    assert (out / "replications.csv").read_bytes() == (serial_out / "replications.csv").read_bytes()
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(  # only this run's cache entries survive
        p.name for p in (serial_out / "runs").iterdir())
    assert json.loads((out / "manifest.json").read_text())["root_seed"] == SEED
    assert leftovers(out) == []


def test_rerun_from_manifest_keeps_seed_zero(scenario_file, tmp_path):
    first, again = tmp_path / "seed0", tmp_path / "seed0-again"
    run_cli(str(scenario_file), "--seed", "0", "--replications", "1", "--backend", "serial", "--out", str(first))
    assert json.loads((first / "manifest.json").read_text())["root_seed"] == 0
    run_cli(str(first / "manifest.json"), "--backend", "serial", "--out", str(again))
    assert json.loads((again / "manifest.json").read_text())["root_seed"] == 0
    assert (again / "replications.csv").read_bytes() == (first / "replications.csv").read_bytes()


def test_atomic_write_leaves_nothing_behind_when_writing_fails(tmp_path):
    from sim.results_io import atomic_write

    target = tmp_path / "table.csv"
    target.write_text("old", encoding="utf-8")

    def broken(tmp: Path) -> None:
        tmp.write_text("half a fi", encoding="utf-8")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]
