"""UNIT tests: bad input, scenario files and variants.

* Every class of invalid scenario is refused by ``emrad-sim validate`` (run in-process through
  ``sim.cli.main``) with exit code 2 and a one-line message naming the file, the field path and
  the reason, never a traceback; one case runs the installed console script in a subprocess.
* ``extends`` overlays: tables merge key by key, lists replace, paths are relative to the overlay.
* ``Scenario.with_changes``: a new validated scenario; the original is untouched and frozen;
  unknown paths and invalid values raise ``ScenarioError`` naming the path.
* ``config_id`` depends on content only (not formatting or spelled-out defaults) and survives
  ``scenario_to_toml`` round trips.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pydantic
import pytest
import tomli_w

from sim.cli import EXIT_BAD_INPUT, main
from sim.loading import ScenarioError, load_scenario, scenario_to_toml, validate_data
from tests.scenarios import build, two_trust_data


def base() -> dict[str, Any]:
    return two_trust_data(weeks=2)


def write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


# -- each class of bad input -------------------------------------------------------------------
def _set(path: str, value: Any) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return mutate


def _drop(path: str) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        del target[last]
    return mutate


# (case id, mutation, field path that must be named, key word of the reason)
BAD = [
    ("negative volume", _set("modalities.0.annual_volume", -500.0), "modalities.0.annual_volume",
     "greater than or equal to 0"),
    ("unknown key (typo)", _set("staff.0.sped", 1.2), "staff.0.sped", "unknown key"),
    ("typo at top level", _set("horizon_week", 3), "horizon_week", "unknown key"),
    ("credentialed for a missing trust", _set("staff.0.credentialed_trusts", ["T2", "T9"]),
     "staff.0.credentialed_trusts", "'T9', which does not exist"),
    ("home trust missing", _set("staff.1.trust", "RX9"), "staff.1.trust", "unknown trust 'RX9'"),
    ("session ends before it starts", _set("staff.0.sessions.0.end", "08:00"), "staff.0.sessions.0",
     "before it starts"),
    ("session time not a clock", _set("staff.1.sessions.1.start", "25:00"), "staff.1.sessions.1.start",
     "not between 00:00 and 24:00"),
    ("profile of the wrong length", _set("demand.profiles.flat", [1.0] * 167), "demand.profiles",
     "has 167 values; it needs 168"),
    ("seasonality not 12 values", _set("demand.seasonality", [1.0] * 11), "demand.seasonality",
     "needs 12"),
    ("urgency mix not summing to 1", _set("modalities.0.urgency_mix", {"ED": 0.3, "OP": 0.6}),
     "modalities.0.urgency_mix", "must sum to 1"),
    ("band mix not summing to 1", _set("modalities.0.band_mix", [0.7, 0.4]), "modalities.0.band_mix",
     "must sum to 1"),
    ("start date not a Monday", _set("start_date", "2025-01-08"), "start_date", "must start on a Monday"),
    # a cross-field rule: pydantic gives no field, so the reason itself names both fields
    ("warm-up longer than horizon", _set("warmup_weeks", 3), "warmup_weeks", "shorter than horizon_weeks"),
    ("outsourcing enabled without trigger", _drop("outsourcing.age_threshold_hours"), "outsourcing",
     "needs age_threshold_hours or backlog_threshold_exams"),
    ("missing reading-time band", _drop("modalities.0.reading_minutes.2"), "modalities.0",
     "no distribution for band(s) 2"),
    ("backlog for a missing trust", _set("demand.initial_backlog.1.trust", "T7"), "demand.initial_backlog.1.trust",
     "unknown trust 'T7'"),
    ("unknown urgency in a mix", _set("modalities.0.urgency_mix", {"ED": 0.3, "XX": 0.7}),
     "modalities.0.urgency_mix.XX", "unknown urgency"),
    ("unknown distribution kind", _set("modalities.0.reading_minutes.1", {"kind": "weibull", "mean": 3}),
     "modalities.0.reading_minutes.1", "weibull"),
]


@pytest.mark.parametrize("mutate, field, reason", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_validate_names_file_field_and_reason(tmp_path, capsys, mutate, field, reason):
    data = base()
    mutate(data)
    path = write(tmp_path / "bad scenario.toml", data)
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert code == EXIT_BAD_INPUT
    assert out == "" and "Traceback" not in err
    lines = [line.strip() for line in err.splitlines()]
    # one line per problem: "<file>: <field path>: <reason>"
    assert any(line.startswith(f"{path.resolve()}: ") and f"{field}" in line and reason in line for line in lines), err


def test_a_valid_file_passes_validation(tmp_path, capsys):
    # the control for the cases above: the base scenario itself is fine
    path = write(tmp_path / "good.toml", base())
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "OK" in out and err == ""


def test_several_problems_are_all_reported_at_once(tmp_path, capsys):
    data = base()
    data["start_date"] = "2025-01-07"
    data["demand"]["seasonality"] = [1.0] * 13
    data["staff"][0]["trust"] = "T8"
    path = write(tmp_path / "many.toml", data)
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "start_date" in err and "demand.seasonality" in err
    # cross-references are checked once the schema passes; the schema problems come first
    assert "Traceback" not in err


def test_invalid_toml_syntax(tmp_path, capsys):
    path = tmp_path / "broken.toml"
    path.write_text('name = "broken"\nhorizon_weeks = \n[trusts\n', encoding="utf-8")
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert str(path.resolve()) in err and "not valid TOML" in err and "line 2" in err
    assert "Traceback" not in err


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nowhere" / "missing.toml"
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert str(path) in err and "file not found" in err and "Traceback" not in err


def test_circular_extends(tmp_path, capsys):
    (tmp_path / "a.toml").write_text('extends = "b.toml"\nname = "a"\n', encoding="utf-8")
    (tmp_path / "b.toml").write_text('extends = "a.toml"\nname = "b"\n', encoding="utf-8")
    assert main(["validate", str(tmp_path / "a.toml")]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "extends" in err and "circular" in err and "a.toml" in err and "b.toml" in err
    assert "Traceback" not in err


def test_self_extending_file(tmp_path, capsys):
    path = tmp_path / "self.toml"
    path.write_text('extends = "self.toml"\n', encoding="utf-8")
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "circular" in err and "Traceback" not in err


def test_extends_a_missing_base(tmp_path, capsys):
    path = tmp_path / "overlay.toml"
    path.write_text('extends = "base.toml"\nname = "x"\n', encoding="utf-8")
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert str(tmp_path / "base.toml") in err and "file not found" in err and "Traceback" not in err


def test_run_refuses_bad_input_the_same_way(tmp_path, capsys):
    data = base()
    data["staff"][1]["trust"] = "RX9"
    path = write(tmp_path / "bad.toml", data)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--backend", "serial", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "staff.1.trust" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def exit_code(argv: list[str]) -> int:
    """main's return value, or the code of a SystemExit (argparse refuses bad options that way)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("option", ["--seed=x", "--replications=two", "--backend=threads"])
def test_run_refuses_malformed_options(tmp_path, capsys, option):
    path = write(tmp_path / "good.toml", base())
    assert exit_code(["run", str(path), option, "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert option.split("=")[0] in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["--seed=-1", "--replications=-1", "--replications=0"])
def test_run_refuses_out_of_range_options(tmp_path, capsys, option):
    path = write(tmp_path / "good.toml", base())
    assert exit_code(["run", str(path), option, "--backend", "serial", "--out", str(tmp_path / "out"),
                      "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert option.split("=")[0] in err and "Traceback" not in err


def test_console_script_exit_code_and_no_traceback(tmp_path):
    data = base()
    data["start_date"] = "2025-01-09"
    path = write(tmp_path / "thursday.toml", data)
    script = Path(sys.executable).with_name("emrad-sim")
    assert script.exists(), "the emrad-sim console script is not installed next to the interpreter"
    done = subprocess.run([str(script), "validate", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert str(path.resolve()) in done.stderr and "start_date" in done.stderr and "Monday" in done.stderr


# -- extends -----------------------------------------------------------------------------------
def test_extends_overlay_changes_one_field_and_keeps_the_rest(tmp_path):
    base_path = write(tmp_path / "base.toml", base())
    overlay = tmp_path / "variants" / "longer.toml"
    overlay.parent.mkdir()
    overlay.write_text('extends = "../base.toml"\nhorizon_weeks = 5\n', encoding="utf-8")
    original, changed = load_scenario(base_path), load_scenario(overlay)
    assert changed.horizon_weeks == 5 and original.horizon_weeks == 2
    assert changed.model_dump(exclude={"horizon_weeks"}) == original.model_dump(exclude={"horizon_weeks"})
    assert changed == original.with_changes({"horizon_weeks": 5})


def test_extends_merges_tables_and_replaces_lists(tmp_path):
    data = base()
    write(tmp_path / "base.toml", data)
    block = {"trust": "T2", "modality": "XR", "urgency": "ED", "count": 3, "max_age_days": 1.0}
    overlay = {"extends": "base.toml",
               "outsourcing": {"daily_cap": 9},  # a table: merged key by key
               "demand": {"initial_backlog": [block]},  # a list: replaces the base's two blocks
               "subspecialties": ["general", "neuro", "msk"]}
    scn = load_scenario(write(tmp_path / "overlay.toml", overlay))
    assert scn.outsourcing.daily_cap == 9
    assert scn.outsourcing.age_threshold_hours == data["outsourcing"]["age_threshold_hours"]
    dumped = scn.model_dump(mode="json")  # sequences are tuples in the model, lists in JSON/TOML
    assert dumped["outsourcing"]["price"] == data["outsourcing"]["price"]
    assert [b.model_dump(exclude_defaults=True) for b in scn.demand.initial_backlog] == [block]
    assert dumped["demand"]["profiles"] == data["demand"]["profiles"]  # sibling of the replaced list survives
    assert scn.subspecialties == ("general", "neuro", "msk")


def test_extends_chain_of_three(tmp_path):
    write(tmp_path / "base.toml", base())
    (tmp_path / "mid.toml").write_text('extends = "base.toml"\nname = "mid"\nhorizon_weeks = 3\n', encoding="utf-8")
    (tmp_path / "top.toml").write_text('extends = "mid.toml"\nname = "top"\n', encoding="utf-8")
    scn = load_scenario(tmp_path / "top.toml")
    assert (scn.name, scn.horizon_weeks, scn.trust_codes) == ("top", 3, ["T1", "T2"])


def test_overlay_errors_name_the_overlay_file(tmp_path, capsys):
    write(tmp_path / "base.toml", base())
    overlay = tmp_path / "overlay.toml"
    overlay.write_text('extends = "base.toml"\n[outsourcing]\ndaily_cap = -1\n', encoding="utf-8")
    assert main(["validate", str(overlay)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"{overlay.resolve()}: outsourcing.daily_cap:" in err and "Traceback" not in err


# -- with_changes ------------------------------------------------------------------------------
@pytest.fixture
def scn():
    return build(base())


def test_with_changes_returns_a_new_scenario_and_leaves_the_original(scn):
    before = scn.model_dump()
    config_id = scn.config_id
    changed = scn.with_changes({"outsourcing.daily_cap": 7, "staff.0.count": 5, "horizon_weeks": 3.5})
    assert changed is not scn
    assert (changed.outsourcing.daily_cap, changed.staff[0].count, changed.horizon_weeks) == (7, 5, 3.5)
    assert scn.model_dump() == before and scn.config_id == config_id
    assert changed.config_id != config_id
    # everything not named is carried over
    assert changed.model_dump(exclude={"outsourcing", "staff", "horizon_weeks"}) == scn.model_dump(
        exclude={"outsourcing", "staff", "horizon_weeks"})
    assert changed.staff[1] == scn.staff[1]


@pytest.mark.parametrize("target, attribute, value", [
    (lambda s: s, "horizon_weeks", 10.0),
    (lambda s: s.outsourcing, "daily_cap", 99),
    (lambda s: s.staff[0], "count", 0),
    (lambda s: s.trusts[0], "population", 1.0),
])
def test_scenarios_are_frozen(scn, target, attribute, value):
    before = scn.config_id
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        setattr(target(scn), attribute, value)
    assert scn.config_id == before


@pytest.mark.parametrize("path", ["outsourcing.daily_capp", "staff.7.count", "nonexistent.field", "trusts.x.code",
                                  "horizon_weekz"])
def test_with_changes_unknown_path_names_the_path(scn, path):
    with pytest.raises(ScenarioError) as caught:
        scn.with_changes({path: 3})
    fields = [field for field, _ in caught.value.problems]
    assert path in fields, caught.value.problems
    assert path in str(caught.value)


@pytest.mark.parametrize("changes, field, reason", [
    ({"staff.0.count": -1}, "staff.0.count", "greater than or equal to 0"),
    ({"start_date": "2025-01-07"}, "start_date", "Monday"),
    ({"staff.0.trust": "T9"}, "staff.0.trust", "unknown trust"),
    ({"modalities.0.band_mix": [0.5, 0.2]}, "modalities.0.band_mix", "sum to 1"),
    ({"outsourcing.age_threshold_hours": None}, "outsourcing", "needs age_threshold_hours"),
])
def test_with_changes_validates_the_result(scn, changes, field, reason):
    with pytest.raises(ScenarioError) as caught:
        scn.with_changes(changes)
    assert any(f == field and reason in why for f, why in caught.value.problems), caught.value.problems


# -- config_id ---------------------------------------------------------------------------------
HEAD = '''
# the same scenario as base(), written by hand: other key order, comments, inline tables,
# integers for floats and the defaults spelled out
description = ""
horizon_weeks = 2
name = "two trusts"
start_date = 2025-01-06            # a TOML date rather than a string
warmup_weeks = 0.0
backlog_interval_hours = 1
subspecialties = ["general", "neuro"]
'''
TRUSTS = '''
[[trusts]]
name = "Trust one"
code = "T1"
population = 1.2
demand_multiplier = 1

[[trusts]]
code = "T2"
name = "Trust two"
population = 0.5
'''


def test_config_id_depends_on_content_not_formatting(tmp_path):
    data = base()
    plain = write(tmp_path / "plain.toml", data)
    # the handwritten head, the remaining sections from the dict in reverse key order, handwritten trusts
    rest = {k: data[k] for k in reversed(list(data)) if k not in {
        "name", "start_date", "horizon_weeks", "warmup_weeks", "trusts", "subspecialties"}}
    fancy = tmp_path / "fancy.toml"
    fancy.write_text(HEAD + tomli_w.dumps(rest) + TRUSTS, encoding="utf-8")
    a, b = load_scenario(plain), load_scenario(fancy)
    assert a.config_id == b.config_id
    assert a.config_id == validate_data(copy.deepcopy(data), "dict").config_id
    assert plain.read_text() != fancy.read_text()


@pytest.mark.parametrize("changes", [{"staff.0.count": 3}, {"trusts.1.population": 0.51},
                                     {"outsourcing.enabled": False}, {"description": "x"}])
def test_config_id_changes_with_any_value(scn, changes):
    assert scn.with_changes(changes).config_id != scn.config_id


def test_scenario_to_toml_round_trips(tmp_path, scn):
    path = tmp_path / "dumped.toml"
    path.write_text(scenario_to_toml(scn), encoding="utf-8")
    again = load_scenario(path)
    assert again.config_id == scn.config_id
    assert again == scn
    # and the dump is stable: dumping the reloaded scenario gives the same text
    assert scenario_to_toml(again) == scenario_to_toml(scn)


def test_scenario_to_toml_round_trips_without_optional_sections(tmp_path):
    data = base()
    del data["outsourcing"]
    data["demand"]["initial_backlog"] = []
    scn = build(data)
    path = tmp_path / "plain.toml"
    path.write_text(scenario_to_toml(scn), encoding="utf-8")
    assert load_scenario(path).config_id == scn.config_id


def test_scenario_sequences_cannot_be_changed_in_place(tmp_path):
    """Unit: a frozen scenario is frozen all the way down for its sequences (tuples, not lists)."""
    scn = load_scenario(write(tmp_path / "good.toml", base()))
    before = scn.config_id
    with pytest.raises(AttributeError):
        scn.staff.append(scn.staff[0])
    with pytest.raises(TypeError):
        scn.demand.profiles["flat"][0] = 5.0
    assert scn.config_id == before


def test_with_changes_refuses_negative_list_index(tmp_path):
    """Unit: 'staff.-1.count' is ambiguous (which group?), so it is refused, naming the path."""
    scn = load_scenario(write(tmp_path / "good.toml", base()))
    with pytest.raises(ScenarioError, match=r"staff\.-1\.count"):
        scn.with_changes({"staff.-1.count": 9})
