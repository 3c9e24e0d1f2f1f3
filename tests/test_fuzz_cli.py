"""FUZZ (issue 12): scenario files and activity logs, valid and not, through the CLI entry point.

Hypothesis writes a scenario file (a small valid one, one with a field set to inf, nan, a huge or
negative number or a wrong type, an empty or binary file, a folder, a deep or circular `extends`
chain) or an activity log (good rows with some fields garbled, dates moved, other encodings) and
runs `emrad-sim validate` / `run` / `evaluate` on it through :func:`sim.cli.main`. Whatever it
writes: no traceback and no exception escapes; exit 2 names the file; a scenario that validates
runs with exit 0 (or is refused by the size estimate), and its counts are conserved
(initial backlog + arrivals = reported + outsourced + unreported at the end = exams simulated).

200 examples of each in the default suite, 2,000 under `make test-slow`. The default suite stubs
the HTML report of valid runs (2.5 s of matplotlib each; tests/test_report.py covers it), the slow
one builds it every time.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import tempfile
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sim.cli import main
from tests.scenarios import two_trust_data
from tests.test_activity import good_log

FAST = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
SLOW = settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), database=None)

# numeric fields of the small scenario a user might mistype
FIELDS = ["horizon_weeks", "warmup_weeks", "backlog_interval_hours", "trusts.0.population", "trusts.1.demand_multiplier",
          "urgencies.0.target_hours", "modalities.0.annual_volume", "modalities.0.annual_growth",
          "modalities.0.band_mix.0", "modalities.0.reading_minutes.1.mean", "demand.episode_same_subspecialty",
          "demand.seasonality.3", "demand.initial_backlog.0.count", "demand.initial_backlog.0.max_age_days",
          "staff.0.count", "staff.0.speed", "staff.0.hourly_cost", "staff.0.max_band", "staff.0.leave_weeks_per_year",
          "outsourcing.daily_cap", "outsourcing.age_threshold_hours", "outsourcing.price.XR.0",
          "outsourcing.check_every_hours", "finance.core_pa_hours", "demand.profiles.flat.5"]
BAD_VALUES = [math.inf, -math.inf, math.nan, 1e300, -1.0, 0.0, 1e12, -1e-300, 1e-300, 2**63, "text", True, [], {}]


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _set(data: dict, dotted: str, value) -> None:
    target = data
    *parts, last = dotted.split(".")
    for part in parts:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


def _valid(draw) -> dict:
    data = two_trust_data(weeks=draw(st.sampled_from([0.05, 0.1, 0.3])),
                          t1_per_hour=draw(st.floats(0.1, 2.0)), t2_per_hour=draw(st.floats(0.0, 1.0)),
                          t1_staff=draw(st.integers(0, 3)), t2_staff=draw(st.integers(0, 2)),
                          backlog=(draw(st.integers(0, 30)), draw(st.integers(0, 30))),
                          outsourcing=draw(st.booleans()))
    data["warmup_weeks"] = 0.0
    return data


@st.composite
def scenario_cases(draw) -> tuple[str, object]:
    """(kind, content): kind 'toml' (a dict), 'bytes', 'dir', 'extends' (depth, cyclic)."""
    kind = draw(st.sampled_from(["valid"] * 3 + ["mutated"] * 3 + ["bytes", "dir", "extends", "drop"]))
    data = _valid(draw)
    if kind == "valid":
        return "toml", data
    if kind == "mutated":
        for _ in range(draw(st.integers(1, 3))):
            _set(data, draw(st.sampled_from(FIELDS)), draw(st.sampled_from(BAD_VALUES)))
        return "toml", data
    if kind == "drop":
        key = draw(st.sampled_from(sorted(data)))
        del data[key]
        return "toml", data
    if kind == "bytes":
        return "bytes", draw(st.one_of(st.just(b""), st.binary(max_size=200),
                                       st.just('name = "Caf\u00e9"\n'.encode("latin-1")),
                                       st.just(b"[[[[[[[[" * 200), st.text(max_size=100).map(str.encode)))
    if kind == "dir":
        return "dir", None
    return "extends", (draw(st.integers(1, 40)), draw(st.booleans()), data)


def _write_scenario(folder: Path, kind: str, content) -> Path:
    path = folder / "scenario.toml"
    if kind == "toml":
        path.write_text(tomli_w.dumps(content), encoding="utf-8")
    elif kind == "bytes":
        path.write_bytes(content)
    elif kind == "dir":
        path.mkdir()
    else:
        depth, cyclic, data = content
        (folder / f"s{depth}.toml").write_text(
            'extends = "s0.toml"\n' if cyclic else tomli_w.dumps(data), encoding="utf-8")
        for i in range(depth):
            (folder / f"s{i}.toml").write_text(f'extends = "s{i + 1}.toml"\n', encoding="utf-8")
        path = folder / "s0.toml"
    return path


def _check_scenario(kind: str, content) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = _write_scenario(folder, kind, content)
        code, out, err = _cli("validate", str(path))
        assert "Traceback" not in out + err
        assert code in (0, 2), err
        event(f"validate exit {code}")
        if code == 2:
            assert str(path.resolve()) in err or str(path) in err, err
            return
        results = folder / "out"
        code, out, err = _cli("run", str(path), "--out", str(results), "--backend", "serial", "--no-progress",
                              "--max-memory", "4GB")
        assert "Traceback" not in out + err
        assert code in (0, 2), err
        event(f"run exit {code}")
        if code == 2:
            assert str(path) in err and "--max-memory" in err, err
            assert not results.exists()
            return
        manifest = json.loads((results / "manifest.json").read_text())
        tidy = pd.read_csv(results / "replications.csv")
        c = tidy[(tidy.trust == "ALL") & (tidy.modality == "ALL") & (tidy.urgency == "ALL")].set_index("metric")["value"]
        assert c["initial_backlog"] + c["arrivals"] == manifest["exams_per_replication"][0]
        assert c["initial_backlog"] + c["arrivals"] == c["reported"] + c["outsourced"] + c["unreported_end"]
        assert min(c["reported"], c["outsourced"], c["unreported_end"]) >= 0
        assert math.isfinite(pd.read_csv(results / "summary.csv")["mean"].abs().max())
        assert (results / "report.html").exists()


@st.composite
def log_cases(draw) -> tuple[pd.DataFrame, str, list[str]]:
    log = good_log(draw(st.integers(5, 40)))
    for _ in range(draw(st.integers(0, 4))):
        row = draw(st.integers(0, len(log) - 1))
        column = draw(st.sampled_from(list(log.columns)))
        log.loc[row, column] = draw(st.one_of(
            st.text(max_size=12), st.sampled_from(["", "2099-01-01T00:00:00", "1900-01-01T00:00:00", "NaN", "inf",
                                                   "-1", "=cmd()", "2025-02-30T00:00:00", "9" * 40])))
    if draw(st.booleans()):
        log = log.iloc[:, draw(st.integers(0, len(log.columns) - 1)):]  # columns missing
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    options = draw(st.lists(st.sampled_from([
        ["--max-bad-fraction", "1"], ["--max-bad-fraction", "0"], ["--pilot-start", "2025-03-05"],
        ["--pilot-end", "2025-03-06"], ["--suppress-below", "0"], ["--hours-per-wte-week", "37.5"],
        ["--extra-routes", "home,brokered"], ["--participants", "RAD1,RAD2"]]), max_size=3))
    return log, encoding, [item for option in options for item in option]


def _check_log(log: pd.DataFrame, encoding: str, options: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ris.csv"
        try:
            path.write_bytes(log.to_csv(index=False).encode(encoding))
        except UnicodeEncodeError:
            path.write_bytes(log.to_csv(index=False).encode("utf-8"))
            encoding = "utf-8"
        extra = ["--encoding", encoding] if encoding == "latin-1" else []
        code, out, err = _cli("evaluate", str(path), "--out", str(Path(tmp) / "ev"), *extra, *options)
        assert "Traceback" not in out + err
        assert code in (0, 2), err
        event(f"evaluate exit {code}")
        if code == 2:
            assert str(path) in err or "--pilot" in err, err


def _quick_report(folder) -> Path:
    path = Path(folder) / "report.html"
    path.write_text("<html>stub</html>", encoding="utf-8")
    return path


@FAST
@given(case=scenario_cases())
def test_fuzz_scenarios_through_the_cli(case):
    with mock.patch("sim.cli.write_report", _quick_report):
        _check_scenario(*case)


@FAST
@given(case=log_cases())
def test_fuzz_activity_logs_through_the_cli(case):
    _check_log(*case)


@pytest.mark.slow
@SLOW
@given(case=scenario_cases())
def test_fuzz_scenarios_through_the_cli_long(case):
    _check_scenario(*case)


@pytest.mark.slow
@SLOW
@given(case=log_cases())
def test_fuzz_activity_logs_through_the_cli_long(case):
    _check_log(*case)


def test_fuzz_cases_are_a_copy_of_the_valid_scenario():
    data = two_trust_data(weeks=0.05)
    before = copy.deepcopy(data)
    _set(data, "staff.0.speed", math.inf)
    assert before != data and before == two_trust_data(weeks=0.05)
