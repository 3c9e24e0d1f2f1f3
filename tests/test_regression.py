"""REGRESSION tests: `emrad-sim regress`, its two tiers and the references in results/reference/.

* The committed references pass here: this is the environment that wrote them, so the exact tier
  applies (every stored value identical, NaN == NaN) and the statistical tier passes too.
* A deliberately perturbed scenario (every reading time x 1.3, made with Scenario.with_changes)
  fails. Checked as an edited fixture, the config_id change is reported with the update command
  and the statistical tier fails on the key metrics; checked as a model change with the fixture
  unchanged (the same outputs against the fixture's own config_id, or a monkeypatched sampler run
  through check()), the exact tier fails as well.
* A different environment fingerprint skips the exact tier, and the statistical tier still runs
  and passes on the unperturbed fixtures.
* `--update` needs a non-empty reason and records it. Updates here go to tmp folders, so the
  committed references are never touched (their bytes are compared before and after).
* The equivalence margin's arithmetic and NaN handling, the exact CSV round trip, and a damaged or
  missing reference reported as a failure rather than a crash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim.distributions
import sim.regression as rg
from sim.experiment import run_experiment
from sim.loading import load_scenario
from sim.scenario import Scenario

FIXTURES = rg.fixtures()
# key metrics that reading times x 1.3 must move beyond the margin: in every fixture, and in those
# with outsourcing and an overloaded trust (where the backlog and the spend grow too)
SENSITIVE = {"utilisation", "share_within_target", "tat_median_h"}
SENSITIVE_WITH_OUTSOURCING = SENSITIVE | {"reported", "outsourced", "unreported_end", "cost_total"}


def sensitive(name: str) -> set[str]:
    if name == "one_trust_no_outsourcing":
        return SENSITIVE
    if name == "two_trusts_heavy":  # its daily cap binds throughout: outsourcing, and so spend, cannot grow
        return SENSITIVE | {"reported", "unreported_end"}
    return SENSITIVE_WITH_OUTSOURCING


def scale_reading_times(scn: Scenario, factor: float) -> Scenario:
    """Every reading-time distribution scaled by `factor` (means, sds, fixed and empirical values)."""
    changes = {}
    for i, modality in enumerate(scn.modalities):
        for band, dist in modality.reading_minutes.items():
            data = dist.model_dump(mode="json")
            for key in ("mean", "sd", "value"):
                if key in data:
                    data[key] *= factor
            if "values" in data:
                data["values"] = [v * factor for v in data["values"]]
            changes[f"modalities.{i}.reading_minutes.{band}"] = data
    return scn.with_changes(changes)


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def cli_args(**kwargs) -> argparse.Namespace:
    return argparse.Namespace(**{"update": False, "reason": None, "reference_dir": None, **kwargs})


@pytest.fixture(scope="module")
def committed() -> dict[str, str]:
    return snapshot(rg.REFERENCE_DIR)


@pytest.fixture(scope="module")
def report(committed) -> rg.RegressionReport:
    return rg.check()


@pytest.fixture(scope="module")
def references() -> dict[str, rg.Reference]:
    return {name: rg.load_reference(rg.REFERENCE_DIR / name) for name in FIXTURES}


@pytest.fixture(scope="module")
def perturbed(references) -> dict[str, tuple[Scenario, pd.DataFrame]]:
    """Each fixture with reading times x 1.3, run with its reference's seed and replications."""
    out = {}
    for name, path in FIXTURES.items():
        scn = scale_reading_times(load_scenario(path), 1.3)
        ref = references[name]
        out[name] = scn, run_experiment(scn, ref.replications, ref.seed, progress=False).replications
    return out


# -- the committed references ---------------------------------------------------------------------
def test_every_fixture_has_a_small_complete_reference(references):
    assert len(FIXTURES) >= 2
    total = sum(p.stat().st_size for p in rg.REFERENCE_DIR.rglob("*") if p.is_file())
    # eight fixtures with the market metrics (issues 10, 11): ~630 kB; the default consortium (8 trusts,
    # ~170 kB) and the pilot (~150 kB) are the largest
    assert total < 800_000
    for name, ref in references.items():
        assert ref.reason.strip() and ref.replications >= 2 and ref.git_commit
        assert set(ref.fingerprint) == {"python", "numpy", "scipy", "simpy", "pandas", "machine", "system"}
        assert set(ref.table["modality"]) == {rg.ALL}  # trust and consortium levels only
        assert sorted(ref.table["replication"].unique()) == list(range(ref.replications))


def test_fixtures_say_they_are_synthetic():
    """Each fixture is synthetic, or says it only pins a sourced scenario (the default year on a short horizon,
    or the first pilot)."""
    for path in FIXTURES.values():
        text = path.read_text(encoding="utf-8")
        header = text.split("\n\n")[0]
        pins_sourced = any(f'extends = "../{name}"' in text for name in ("emrad.toml", "pilot_nuh_neuro.toml"))
        assert ("SYNTHETIC" in header or (pins_sourced and "REGRESSION FIXTURE" in header)) \
            and "not planning parameters" in text


def test_committed_references_pass_both_tiers(report):
    assert [s.name for s in report.scenarios] == list(FIXTURES)
    for s in report.scenarios:
        assert s.problems == ()
        assert s.exact.applies and s.exact.passed, s.exact
        assert s.exact.n_compared == len(s.reference.table)
        assert s.statistical.passed
        assert all(c.diff == 0 for c in s.statistical.checks)
    assert report.passed
    text = report.to_text()
    assert "exact tier: pass" in text and f"regress: all {len(FIXTURES)} scenario(s) pass" in text


def test_nan_values_are_matched_as_nan(references):
    """The no-outsourcing fixture has NaN counterfactual costs: the exact tier must count them equal."""
    table = references["one_trust_no_outsourcing"].table
    assert table["value"].isna().any()
    tier = rg.compare_exact(table, table.copy())
    assert tier.passed and tier.n_compared == len(table)


# -- perturbed scenarios fail ----------------------------------------------------------------------
def test_edited_fixture_fails_with_update_hint_and_statistical_drift(references, perturbed):
    for name, (scn, tidy) in perturbed.items():
        result = rg.compare(references[name], tidy, config_id=scn.config_id, current_fingerprint=rg.fingerprint())
        assert not result.passed
        assert len(result.problems) == 1 and "--update --reason" in result.problems[0]
        assert not result.exact.applies and result.exact.skipped_because == "fixture changed"
        assert sensitive(name) <= set(result.statistical.failed_metrics), (name, result.statistical.failed_metrics)
        # demand does not depend on reading times (common random numbers): arrivals stay identical
        assert next(c for c in result.statistical.checks if c.metric == "arrivals").diff == 0


def test_model_change_fails_exact_and_statistical_tiers(references, perturbed):
    """Same outputs as if the model code had changed and the fixture had not."""
    for name, (_, tidy) in perturbed.items():
        ref = references[name]
        result = rg.compare(ref, tidy, config_id=ref.config_id, current_fingerprint=ref.fingerprint)
        assert result.problems == () and not result.passed
        assert result.exact.applies and result.exact.passed is False
        assert 0 < result.exact.n_different <= result.exact.n_compared
        assert 0 < len(result.exact.first_differences) <= rg.MAX_LISTED_DIFFERENCES
        assert sensitive(name) <= set(result.statistical.failed_metrics)
        text = rg.format_report(rg.RegressionReport(rg.REFERENCE_DIR, ref.fingerprint, (result,)))
        assert "exact tier: FAIL" in text and "statistical tier: FAIL" in text and "regress: FAIL" in text


@pytest.mark.parametrize("change, metrics", [
    ({"home_reporting.tariff_multiplier": 1.1}, {"cost_home"}),  # a 10% dearer home tariff
    ({"home_reporting.reading_time_factor": 1.0}, {"home_reading_hours"}),  # home reads at on-site speed (fixture: 1.1)
])
def test_statistical_tier_sees_the_home_lever(references, change, metrics):
    """Without the exact tier (another environment), a change to the lever's tariff or speed still fails."""
    ref = references["two_trusts_home"]
    scn = load_scenario(FIXTURES["two_trusts_home"]).with_changes(change)
    tidy = run_experiment(scn, ref.replications, ref.seed, progress=False).replications
    result = rg.compare(ref, tidy, config_id=ref.config_id, current_fingerprint={**ref.fingerprint, "numpy": "other"})
    assert not result.exact.applies
    assert metrics <= set(result.statistical.failed_metrics) and not result.passed


def test_check_reports_a_perturbed_scenario(perturbed):
    name = "one_trust_no_outsourcing"
    scn, _ = perturbed[name]
    report = rg.check(names=[name], scenarios={name: scn})
    (result,) = report.scenarios
    assert not report.passed and report.failed == [name]
    assert "fixture has changed" in result.problems[0]
    assert sensitive(name) <= set(result.statistical.failed_metrics)


def test_check_catches_a_code_change_with_the_fixture_unchanged(monkeypatch):
    """A 'bug' in the exponential sampler (x 1.3, band-1 reading times of the one-trust fixture)
    reaches the engine in this process (serial backend); the fixture and its config_id are unchanged."""
    original = sim.distributions.Exponential.sample
    monkeypatch.setattr(sim.distributions.Exponential, "sample",
                        lambda self, rng, size: original(self, rng, size) * 1.3)
    report = rg.check(names=["one_trust_no_outsourcing"], backend="serial")
    (result,) = report.scenarios
    assert result.problems == ()
    assert result.exact.applies and result.exact.passed is False
    assert "utilisation" in result.statistical.failed_metrics and not report.passed


# -- another environment ---------------------------------------------------------------------------
def test_fingerprint_mismatch_skips_exact_tier_and_keeps_statistical(monkeypatch, report):
    real = rg.fingerprint()
    monkeypatch.setattr(rg, "fingerprint", lambda: {**real, "numpy": "0.0-other"})
    other = rg.check()
    assert other.passed
    for s in other.scenarios:
        assert not s.exact.applies and s.exact.passed is None
        assert "numpy" in s.exact.skipped_because and "0.0-other" in s.exact.skipped_because
        assert s.statistical.passed and len(s.statistical.checks) == len(rg.KEY_METRICS)
    assert "exact tier: skipped (environment differs" in other.to_text()


# -- the equivalence margin ------------------------------------------------------------------------
def test_margin_is_k_standard_errors_or_relative_tolerance():
    ref = np.array([100.0, 102.0, 98.0, 101.0, 99.0])  # mean 100, sd 1.58
    se = np.sqrt(2 * ref.var(ddof=1) / 5)
    wide = rg.compare_metric("m", ref, ref + rg.K_SE * se * 0.99)
    assert wide.passed and wide.margin == pytest.approx(rg.K_SE * se)
    assert not rg.compare_metric("m", ref, ref + rg.K_SE * se * 1.01).passed
    # no spread at all: the relative tolerance decides
    flat = np.full(5, 1000.0)
    assert rg.compare_metric("m", flat, flat * (1 + rg.REL_TOL * 0.9)).passed
    assert not rg.compare_metric("m", flat, flat * (1 + rg.REL_TOL * 1.1)).passed
    # a metric that was 0 everywhere may differ by rounding only...
    zero = np.zeros(5)
    assert rg.compare_metric("m", zero, zero + 1e-12).passed
    assert not rg.compare_metric("m", zero, zero + 1).passed
    # ...or by noise of its own: one replication with 1 in five is within 5 SE (SE = 0.2)
    assert rg.compare_metric("m", zero, np.array([0, 0, 1.0, 0, 0])).passed


def test_undefined_metrics():
    nan = np.full(5, np.nan)
    assert rg.compare_metric("m", nan, nan).passed
    assert not rg.compare_metric("m", nan, np.ones(5)).passed
    assert not rg.compare_metric("m", np.ones(5), nan).passed
    partly = np.array([1.0, np.nan, 1.0, 1.0, 1.0])  # NaN replications are left out of n
    check = rg.compare_metric("m", partly, np.ones(5))
    assert check.passed and check.n_ref == 4


def test_exact_tier_reports_changed_missing_and_extra_rows(references):
    ref = references["two_trusts"].table
    now = ref.copy()
    now.loc[3, "value"] = np.nextafter(now.loc[3, "value"], np.inf)  # one ulp
    now = now.drop(index=7)
    now = pd.concat([now, ref.iloc[[0]].assign(metric="new_metric")], ignore_index=True)
    tier = rg.compare_exact(ref, now)
    assert tier.n_different == 3 and not tier.passed
    assert {d.metric for d in tier.first_differences} == {ref.loc[3, "metric"], ref.loc[7, "metric"], "new_metric"}


# -- updating references ---------------------------------------------------------------------------
def test_update_needs_a_reason(tmp_path):
    for reason in ("", "   ", None):
        with pytest.raises(ValueError, match="reason"):
            rg.update_references(reason, reference_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_update_records_reason_and_reads_back_exactly(tmp_path):
    name = "one_trust_no_outsourcing"
    [folder] = rg.update_references("  test: new engine  ", names=[name], reference_dir=tmp_path, replications=3,
                                    seed=7, backend="serial")
    assert folder == tmp_path / name
    meta = json.loads((folder / rg.REFERENCE_FILE).read_text())
    assert meta["reason"] == "test: new engine" and meta["seed"] == 7 and meta["replications"] == 3
    assert meta["config_id"] == load_scenario(FIXTURES[name]).config_id
    assert meta["fingerprint"] == rg.fingerprint() and meta["written_at"]
    assert sorted(p.name for p in folder.iterdir()) == [rg.REFERENCE_FILE, rg.REPLICATIONS_FILE]  # no temp files
    # the stored table is the run's, bit for bit (NaN included)
    direct = rg.kept_rows(run_experiment(load_scenario(FIXTURES[name]), 3, 7, backend="serial",
                                         progress=False).replications)
    pd.testing.assert_frame_equal(rg.load_reference(folder).table, direct, check_exact=True)
    report = rg.check(names=[name], reference_dir=tmp_path)
    assert report.passed and report.scenarios[0].exact.passed


def test_csv_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(3)
    values = np.r_[rng.normal(size=500) * 10.0 ** rng.integers(-12, 12, 500), np.nan, 0.1, 1 / 3, 5e-324, -0.0]
    table = pd.DataFrame({"replication": 0, "trust": "T1", "modality": rg.ALL, "urgency": rg.ALL,
                          "metric": [f"m{i}" for i in range(len(values))], "value": values})
    path = tmp_path / "t.csv"
    path.write_text(rg._csv_text(table))
    back = rg._read_table(path)
    assert np.array_equal(back["value"].to_numpy(), values, equal_nan=True)


def test_damaged_or_missing_reference_fails_without_running(tmp_path):
    shutil.copytree(rg.REFERENCE_DIR / "two_trusts", tmp_path / "two_trusts")
    csv = tmp_path / "two_trusts" / rg.REPLICATIONS_FILE
    csv.write_text(csv.read_text().replace("\n0,ALL,ALL,ALL,arrivals,", "\n0,ALL,ALL,ALL,arrivals,1", 1))
    shutil.copytree(rg.REFERENCE_DIR / "two_trusts_heavy", tmp_path / "two_trusts_heavy")
    (tmp_path / "two_trusts_heavy" / rg.REFERENCE_FILE).unlink()  # as if an update was interrupted
    (tmp_path / "retired_fixture").mkdir()
    report = rg.check(reference_dir=tmp_path)
    problems = {s.name: s.problems for s in report.scenarios}
    assert "sha256" in problems["two_trusts"][0]
    assert "incomplete" in problems["two_trusts_heavy"][0]
    assert "missing" in problems["one_trust_no_outsourcing"][0]
    assert "no fixture" in problems["retired_fixture"][0]
    assert not report.passed and all(s.exact is None for s in report.scenarios)
    with pytest.raises(rg.RegressionError, match="no fixture named"):
        rg.check(names=["nonexistent"])


# -- the command-line handler ----------------------------------------------------------------------
def test_cli_bad_usage_exits_2(tmp_path, capsys):
    assert rg.cmd_regress(cli_args(update=True, reference_dir=str(tmp_path))) == 2
    assert rg.cmd_regress(cli_args(update=True, reason=" ", reference_dir=str(tmp_path))) == 2
    assert "--update needs --reason" in capsys.readouterr().err
    assert rg.cmd_regress(cli_args(reason="why", reference_dir=str(tmp_path))) == 2
    assert rg.cmd_regress(cli_args(reference_dir=str(tmp_path / "nowhere"))) == 2
    assert list(tmp_path.iterdir()) == []


def test_cli_update_then_check_then_drift(tmp_path, monkeypatch, capsys):
    """The handler end to end on one small fixture (a copy in a tmp params folder, to keep it fast)."""
    params, refs = tmp_path / "params", tmp_path / "refs"
    params.mkdir()
    fixture = params / "one_trust_no_outsourcing.toml"
    shutil.copy(FIXTURES["one_trust_no_outsourcing"], fixture)
    monkeypatch.setattr(rg, "PARAMS_DIR", params)
    assert rg.cmd_regress(cli_args(update=True, reason="cli test", reference_dir=str(refs))) == 0
    assert "reason: cli test" in capsys.readouterr().out
    assert json.loads((refs / fixture.stem / rg.REFERENCE_FILE).read_text())["reason"] == "cli test"
    assert rg.cmd_regress(cli_args(reference_dir=str(refs))) == 0
    assert "regress: all 1 scenario(s) pass" in capsys.readouterr().out
    # someone edits the fixture: drift, with the command that regenerates the references
    fixture.write_text(fixture.read_text().replace("annual_volume = 130000", "annual_volume = 150000"))
    assert rg.cmd_regress(cli_args(reference_dir=str(refs))) == 1
    out = capsys.readouterr().out
    assert "regress: FAIL: one_trust_no_outsourcing" in out and "emrad-sim regress --update --reason" in out


def test_cli_wiring_when_present(tmp_path):
    """Once sim/cli.py has the `regress` verb, argparse must route it here with the same exit codes."""
    from sim import cli

    try:
        cli.build_parser().parse_args(["regress"])
    except SystemExit:
        pytest.skip("`emrad-sim regress` is not wired into sim/cli.py yet")
    assert cli.main(["regress", "--update", "--reference-dir", str(tmp_path)]) == 2
    assert cli.main(["regress", "--update", "--reason", "", "--reference-dir", str(tmp_path)]) == 2


def test_committed_references_untouched(committed, report):
    """Runs last in this module: nothing above wrote into results/reference/."""
    assert snapshot(rg.REFERENCE_DIR) == committed
