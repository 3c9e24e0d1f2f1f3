"""REGRESSION tests for issue 12: results you can trust under misuse.

Each test is named after a case of the issue (numbers in the docstrings). Commands run in-process
through `sim.cli.main`, as a user's shell would run them; every refusal must be exit code 2 with a
one-line message naming the file, field or option, no traceback, and nothing written or lost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import tomli_w
from filelock import FileLock

from sim import cli
from sim.cli import main
from tests.scenarios import two_trust_data
from tests.test_activity import good_log

RUN = ["--no-progress", "--backend", "serial"]


def cli_run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def write_scenario(folder: Path, filename: str = "small.toml", **changes) -> Path:
    data = two_trust_data(weeks=1)
    data.update(changes)
    path = folder / filename
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def scenario(tmp_path) -> Path:
    return write_scenario(tmp_path)


# ---------------------------------------------------------------- 1. evaluate: dates outside the window

def test_evaluate_rejects_future_dates(tmp_path, capsys):
    """Case 1: rows moved to 2099 are rejected with a reason instead of stretching the pilot."""
    log = good_log(200)
    moved = log.index[::40]  # 2.5%
    log.loc[moved, "acquired_at"] = "2099-03-03T08:00:00"
    log.loc[moved, "reported_at"] = "2099-03-03T10:00:00"
    log.to_csv(tmp_path / "log.csv", index=False)
    code, out, err = cli_run(capsys, "evaluate", str(tmp_path / "log.csv"), "--out", str(tmp_path / "ev"))
    assert code == 0, err
    rejected = pd.read_csv(tmp_path / "ev" / "rejected_rows.csv")
    settings = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert settings["rows_rejected"] == len(moved) == len(rejected)
    assert rejected["reason"].str.contains("acquired_at in the future").all()
    periods = pd.read_csv(tmp_path / "ev" / "periods.csv")
    assert periods["days"].max() < 60  # the log spans 25 days, not 27,000


def test_evaluate_rejects_dates_before_any_ris_and_far_outside_the_pilot():
    from sim.activity import read_activity_log

    log = good_log(100)
    log.loc[3, "acquired_at"] = "1925-01-01T08:00:00"
    log.loc[7, "reported_at"] = "2031-01-01T08:00:00"
    result = read_activity_log(log, key=b"k" * 32, max_bad_fraction=0.5, plausible_start="2025-03-10",
                               plausible_end="2025-03-20", today="2035-01-01")
    reasons = dict(zip(result.rejected["row"], result.rejected["reason"]))
    assert "before 1990-01-01" in reasons[4]
    assert "more than a year after the pilot end" in reasons[8]


# ---------------------------------------------------------------- 2. two writers, one folder

def test_two_runs_into_the_same_out_the_second_fails_clearly(scenario, tmp_path, capsys):
    """Case 2: while one writer holds the folder's lock, a second one fails at once, writing nothing."""
    out = tmp_path / "out"
    with FileLock(tmp_path / ".out.lock"):
        code, _, err = cli_run(capsys, "run", str(scenario), "--out", str(out), *RUN)
    assert code == 2 and "another emrad-sim process is writing" in err and str(out) in err
    assert not out.exists()
    assert cli_run(capsys, "run", str(scenario), "--out", str(out), *RUN)[0] == 0  # lock released: fine


# ---------------------------------------------------------------- 4. one folder, one run

def test_killed_run_after_manifest_leaves_the_old_folder_whole(scenario, tmp_path, capsys, monkeypatch):
    """Case 4: a run interrupted after its manifest is written leaves the old folder exactly as it was."""
    out = tmp_path / "out"
    assert cli_run(capsys, "run", str(scenario), "--out", str(out), "--replications", "1", *RUN)[0] == 0
    before = {k: v for k, v in files(out).items() if not k.startswith("runs/")}

    def interrupted(folder):
        assert (Path(folder) / "manifest.json").exists()  # the new manifest is written, in the staging folder
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "write_report", interrupted)
    code, _, err = cli_run(capsys, "run", str(scenario), "--out", str(out), "--replications", "2", *RUN)
    assert code == 130 and "interrupted" in err
    assert {k: v for k, v in files(out).items() if not k.startswith("runs/")} == before
    assert len(list((out / "runs").glob("*.json"))) == 2  # the new replication is cached for the rerun
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]


def test_different_scenario_into_occupied_folder_is_refused_without_overwrite(scenario, tmp_path, capsys):
    """Case 4: another scenario into a folder keeps nothing of the old one, and only with --overwrite."""
    out = tmp_path / "out"
    assert cli_run(capsys, "run", str(scenario), "--out", str(out), "--activity-log", *RUN)[0] == 0
    before = files(out)
    other = write_scenario(tmp_path, "other.toml", name="other")
    code, _, err = cli_run(capsys, "run", str(other), "--out", str(out), *RUN)
    assert code == 2 and "--overwrite" in err and "'two trusts'" in err
    assert files(out) == before
    assert cli_run(capsys, "run", str(other), "--out", str(out), "--overwrite", *RUN)[0] == 0
    assert not (out / "activity_log.parquet").exists()  # nothing stale survives
    assert json.loads((out / "manifest.json").read_text())["scenario_name"] == "other"
    assert len(list((out / "runs").glob("*.json"))) == 1


def test_readme_run_then_activity_log_keeps_the_replications(scenario, tmp_path, capsys):
    """Case 4: `make run` (4 replications), then `run ... --activity-log --out` the same folder: not 1."""
    out = tmp_path / "emrad"
    assert cli_run(capsys, "run", str(scenario), "--out", str(out), "--replications", "3", *RUN)[0] == 0
    replications = (out / "replications.csv").read_bytes()
    code, stdout, _ = cli_run(capsys, "run", str(scenario), "--out", str(out), "--activity-log", *RUN)
    assert code == 0 and "3 replication(s) reused" in stdout
    assert (out / "replications.csv").read_bytes() == replications
    assert (out / "activity_log.parquet").exists()


def test_fewer_replications_into_a_folder_are_refused(scenario, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli_run(capsys, "run", str(scenario), "--out", str(out), "--replications", "2", *RUN)[0] == 0
    code, _, err = cli_run(capsys, "run", str(scenario), "--out", str(out), "--replications", "1", *RUN)
    assert code == 2 and "holds 2 replication(s)" in err
    assert json.loads((out / "manifest.json").read_text())["replications"] == 2


def test_out_that_is_not_a_results_folder_is_never_replaced(scenario, tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.docx").write_text("years of work")
    for extra in ([], ["--overwrite"]):
        code, _, err = cli_run(capsys, "run", str(scenario), "--out", str(home), *RUN, *extra)
        assert code == 2 and "not a results folder" in err
    assert (home / "thesis.docx").read_text() == "years of work"


# ---------------------------------------------------------------- 5. values checked before running

@pytest.mark.parametrize("field, change", [
    ("horizon_weeks", {"horizon_weeks": float("inf")}),
    ("modalities.0.annual_volume", {"modalities.0.annual_volume": 1e12}),
    ("backlog_interval_hours", {"backlog_interval_hours": 1e-6}),
    ("demand.initial_backlog.0.count", {"demand.initial_backlog.0.count": 10**9}),
    ("horizon_weeks", {"horizon_weeks": 5200.0}),
    ("modalities.0.reading_minutes.1", {"modalities.0.reading_minutes.1.mean": float("inf")}),
    ("staff.0.speed", {"staff.0.speed": 1e-300}),
    ("staff.0.hourly_cost", {"staff.0.hourly_cost": float("inf")}),
    ("outsourcing.daily_cap", {"outsourcing.daily_cap": 2**63}),  # found by the slow CLI fuzz test
], ids=["horizon_inf", "annual_volume_1e12", "backlog_interval_1e-6", "initial_backlog_1e9", "horizon_100_years",
        "reading_mean_inf", "speed_1e-300", "hourly_cost_inf", "daily_cap_2_63"])
def test_validate_refuses_values_that_crash_or_mislead_at_run_time(tmp_path, capsys, field, change):
    """Case 5: validate said OK to values that crashed, ate the memory or wrote nonsense."""
    data = two_trust_data(weeks=1)
    for dotted, value in change.items():
        target = data
        *parts, last = dotted.split(".")
        for part in parts:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    code, _, err = cli_run(capsys, "validate", str(path))
    assert code == 2 and str(path) in err and field in err
    code, _, err = cli_run(capsys, "run", str(path), "--out", str(tmp_path / "out"), *RUN)
    assert code == 2 and not (tmp_path / "out").exists()


def test_run_prints_an_estimate_and_refuses_above_max_memory(scenario, tmp_path, capsys):
    code, out, _ = cli_run(capsys, "validate", str(scenario))
    assert code == 0 and "estimate: about" in out and "peak memory" in out
    code, out, err = cli_run(capsys, "run", str(scenario), "--out", str(tmp_path / "out"), "--max-memory", "10MB", *RUN)
    assert code == 2 and "--max-memory" in err and "estimate: about" in out
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as info:  # argparse: usage and the option's name, exit 2
        main(["run", str(scenario), "--max-memory", "lots", *RUN])
    assert info.value.code == 2 and "argument --max-memory" in capsys.readouterr().err


# ---------------------------------------------------------------- 8. no tracebacks

def test_dask_example_with_unreachable_scheduler(scenario, tmp_path, capsys, monkeypatch):
    from sim import backends

    monkeypatch.setattr(backends, "CONNECT_TIMEOUT", 1)
    code, _, err = cli_run(capsys, "run", str(scenario), "--out", str(tmp_path / "out"), "--backend", "dask",
                           "--scheduler", "tcp://127.0.0.1:9", "--no-progress")
    assert code == 2 and "no Dask scheduler reachable" in err
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file() and "runs" not in p.parts]


def test_compare_with_one_scenario_fails_before_computing(scenario, tmp_path, capsys):
    code, _, err = cli_run(capsys, "compare", str(scenario), "--out", str(tmp_path / "cmp"), *RUN)
    assert code == 2 and "at least two scenario" in err and not (tmp_path / "cmp").exists()


def test_scenario_or_extends_that_is_a_directory(tmp_path, capsys):
    (tmp_path / "dir.toml").mkdir()
    code, _, err = cli_run(capsys, "validate", str(tmp_path / "dir.toml"))
    assert code == 2 and "is a folder" in err
    child = tmp_path / "child.toml"
    child.write_text('extends = "dir.toml"\nname = "x"\n', encoding="utf-8")
    code, _, err = cli_run(capsys, "validate", str(child))
    assert code == 2 and "is a folder" in err and "dir.toml" in err


def test_thousand_deep_extends_chain(tmp_path, capsys):
    for i in range(1000):
        (tmp_path / f"s{i}.toml").write_text(f'extends = "s{i + 1}.toml"\n', encoding="utf-8")
    (tmp_path / "s1000.toml").write_text(tomli_w.dumps(two_trust_data(weeks=1)), encoding="utf-8")
    code, _, err = cli_run(capsys, "validate", str(tmp_path / "s0.toml"))
    assert code == 2 and "extends" in err and "s0.toml" in err


def test_out_that_is_a_file_or_under_proc(scenario, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, _, err = cli_run(capsys, "run", str(scenario), "--out", str(tmp_path / "afile"), *RUN)
    assert code == 2 and "is not a folder" in err and (tmp_path / "afile").read_text() == "x"
    if Path("/proc/self").exists():
        code, _, err = cli_run(capsys, "run", str(scenario), "--out", "/proc/emrad-results", *RUN)
        assert code == 2 and "/proc/emrad-results" in err


def test_evaluate_max_bad_fraction_1_when_all_rows_are_bad(tmp_path, capsys):
    log = good_log(20)
    log["trust"] = "XYZ"
    log.to_csv(tmp_path / "log.csv", index=False)
    code, _, err = cli_run(capsys, "evaluate", str(tmp_path / "log.csv"), "--max-bad-fraction", "1",
                           "--out", str(tmp_path / "ev"))
    assert code == 2 and "all 20 rows are invalid" in err and "log.csv" in err


def test_report_on_a_damaged_folder(scenario, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli_run(capsys, "run", str(scenario), "--out", str(out), *RUN)[0] == 0
    (out / "summary.csv").write_text("metric\nnonsense\n")
    (out / "backlog.parquet").write_bytes(b"PAR1 truncated")
    code, _, err = cli_run(capsys, "report", str(out))
    assert code == 2 and "damaged results folder" in err and str(out) in err


@pytest.mark.parametrize("field, value", [("root_seed", "seven"), ("replications", "four"), ("replications", 0)])
def test_manifest_with_a_string_seed_or_string_replications(scenario, tmp_path, capsys, field, value):
    out = tmp_path / "out"
    assert cli_run(capsys, "run", str(scenario), "--out", str(out), *RUN)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest[field] = value
    bad = tmp_path / "manifest.json"
    bad.write_text(json.dumps(manifest))
    code, _, err = cli_run(capsys, "run", str(bad), "--out", str(tmp_path / "again"), *RUN)
    assert code == 2 and field in err and str(bad) in err


def test_tiny_horizon_runs_and_replaces_nothing_on_failure(tmp_path, capsys):
    path = write_scenario(tmp_path, horizon_weeks=0.001, warmup_weeks=0.0)
    code, _, err = cli_run(capsys, "run", str(path), "--out", str(tmp_path / "out"), *RUN)
    assert code == 0, err
    assert (tmp_path / "out" / "report.html").exists()


def test_unexpected_error_is_one_line_with_type_and_debug_pointer(scenario, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something nobody foresaw\nsecond line")

    monkeypatch.setattr(cli, "run_experiment", broken)
    code, _, err = cli_run(capsys, "run", str(scenario), "--out", str(tmp_path / "out"), *RUN)
    assert code == 1
    assert err.strip() == ("emrad-sim: unexpected error: RuntimeError: something nobody foresaw "
                           "(run again with --debug for the traceback)")
    with pytest.raises(RuntimeError):
        main(["run", str(scenario), "--out", str(tmp_path / "out"), *RUN, "--debug"])


# ---------------------------------------------------------------- 9. messages that name things

def test_non_utf8_toml_names_file_and_line(tmp_path, capsys):
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "x"\ndescription = "Caf\u00e9"\n'.encode("latin-1"))
    code, _, err = cli_run(capsys, "validate", str(path))
    assert code == 2 and str(path) in err and "line 2" in err and "UTF-8" in err


@pytest.mark.parametrize("option, value, message", [
    ("--pilot-start", "2025-13-45", "argument --pilot-start"),
    ("--pilot-end", "tomorrow", "argument --pilot-end"),
    ("--hours-per-wte-week", "0", "argument --hours-per-wte-week"),
    ("--suppress-below", "-5", "argument --suppress-below"),
    ("--max-bad-fraction", "1.5", "argument --max-bad-fraction"),
    ("--encoding", "klingon", "argument --encoding"),
], ids=["pilot_start_2025-13-45", "pilot_end_word", "hours_per_wte_week_0", "suppress_below_-5",
        "max_bad_fraction_1.5", "unknown_encoding"])
def test_bad_evaluate_options_are_refused_naming_the_option(tmp_path, capsys, option, value, message):
    good_log(20).to_csv(tmp_path / "log.csv", index=False)
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(tmp_path / "log.csv"), option, value, "--out", str(tmp_path / "ev")])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "ev").exists()


def test_pilot_end_before_pilot_start_is_refused(tmp_path, capsys):
    good_log(20).to_csv(tmp_path / "log.csv", index=False)
    code, _, err = cli_run(capsys, "evaluate", str(tmp_path / "log.csv"), "--pilot-start", "2025-03-10",
                           "--pilot-end", "2025-03-01")
    assert code == 2 and "--pilot-end" in err


@pytest.mark.parametrize("encoding, given", [("latin-1", "latin-1"), ("utf-16", None), ("utf-16-le", None),
                                             ("cp1252", "cp1252")])
def test_latin1_and_utf16_ris_exports_are_read(tmp_path, capsys, encoding, given):
    log = good_log(40)
    log["subspecialty"] = "neuro\u00e9"
    path = tmp_path / "ris.csv"
    path.write_bytes(log.to_csv(index=False).encode(encoding))
    argv = ["evaluate", str(path), "--out", str(tmp_path / "ev")] + (["--encoding", given] if given else [])
    code, _, err = cli_run(capsys, *argv)
    assert code == 0, err
    assert json.loads((tmp_path / "ev" / "evaluation.json").read_text())["rows_rejected"] == 0


def test_latin1_export_without_encoding_names_the_option(tmp_path, capsys):
    log = good_log(40)
    log["subspecialty"] = "neuro\u00e9"
    path = tmp_path / "ris.csv"
    path.write_bytes(log.to_csv(index=False).encode("latin-1"))
    code, _, err = cli_run(capsys, "evaluate", str(path), "--out", str(tmp_path / "ev"))
    assert code == 2 and "--encoding" in err and str(path) in err


def test_exit_codes_are_documented():
    from sim import cli_errors

    assert (cli_errors.EXIT_OK, cli_errors.EXIT_FAILED, cli_errors.EXIT_BAD_INPUT, cli_errors.EXIT_INTERRUPTED) == \
        (0, 1, 2, 130)
    assert "130 interrupted" in cli.build_parser().epilog
    assert os.path.basename(cli_errors.__file__) == "cli_errors.py"
