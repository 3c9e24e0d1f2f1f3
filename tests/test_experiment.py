"""Experiments: confidence intervals, paired comparison with common random numbers, resume,
warm-up and replication planning.

Kinds: the coverage test is a *verification* test (CI procedure vs Erlang C, marked slow);
the rest are *unit* tests of the experiment layer on small M/M/c scenarios.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.compare import compare
from sim.experiment import replications_needed, run_experiment, summarise
from sim.queueing import mmc_mean_wait
from sim.store import RunStore
from sim.warmup import mser5, suggest_warmup
from tests.scenarios import build, mmc_data

RATE, MEAN_MIN, SERVERS = 30.0, 6.0, 4  # rho = 30 / (4 * 10) = 0.75


def small(weeks: float = 3, warmup: float = 0.5, servers: int = SERVERS, rate: float = RATE):
    return build(mmc_data(rate, MEAN_MIN, servers, weeks=weeks, warmup_weeks=warmup))


def test_summary_ci_is_the_t_interval_of_the_replications():
    """Unit: summary() reproduces mean, sd and the t-based CI computed by hand from replications.csv."""
    exp = run_experiment(small(), replications=4, seed=5, backend="serial", progress=False)
    values = exp.replications.query("trust == 'ALL' and modality == 'ALL' and metric == 'wait_mean_h'")["value"]
    row = exp.summary().set_index("metric").loc["wait_mean_h"]
    half = stats.t.ppf(0.975, 3) * values.std(ddof=1) / 2
    assert row["n"] == 4
    assert row["mean"] == pytest.approx(values.mean())
    assert row["ci_low"] == pytest.approx(values.mean() - half)
    assert row["ci_high"] == pytest.approx(values.mean() + half)


def test_single_replication_has_no_interval():
    rows = pd.DataFrame({"metric": ["m"], "value": [1.0]})
    out = summarise(rows, ["metric"], "value")
    assert np.isnan(out.loc[0, "ci_low"]) and np.isnan(out.loc[0, "sd"])


def test_resume_computes_each_replication_once(tmp_path):
    """Unit: an experiment interrupted after k replications resumes; nothing is computed twice."""
    scn = small()
    first = run_experiment(scn, replications=3, seed=2, backend="serial", progress=False, store=tmp_path)
    assert first.computed == [0, 1, 2]
    stored = RunStore(tmp_path)
    mtimes = {r: stored.path(scn.config_id, 2, r).stat().st_mtime_ns for r in range(3)}

    resumed = run_experiment(scn, replications=5, seed=2, backend="serial", progress=False, store=tmp_path)
    assert resumed.computed == [3, 4]
    assert {r: stored.path(scn.config_id, 2, r).stat().st_mtime_ns for r in range(3)} == mtimes

    fresh = run_experiment(scn, replications=5, seed=2, backend="serial", progress=False)
    pd.testing.assert_frame_equal(resumed.replications, fresh.replications, check_exact=True)


def test_changed_scenario_does_not_reuse_stored_runs(tmp_path):
    scn = small()
    run_experiment(scn, replications=2, seed=2, backend="serial", progress=False, store=tmp_path)
    other = run_experiment(scn.with_changes({"staff.0.count": 5}), replications=2, seed=2, backend="serial",
                           progress=False, store=tmp_path)
    assert other.computed == [0, 1]


def test_compare_pairs_replications_and_crn_narrows_the_interval():
    """Unit: paired differences equal the per-replication differences; with common random numbers
    the paired CI is narrower than the unpaired (Welch) one, i.e. variance reduction > 1."""
    base, more = small(), small(servers=SERVERS + 1)
    result = compare({"four": base, "five": more}, replications=6, seed=11, backend="serial", progress=False)
    table = result.differences(["wait_mean_h", "utilisation"]).set_index("metric")

    def consortium(name):
        tidy = result.experiments[name].replications
        return tidy.query("trust == 'ALL' and modality == 'ALL'").pivot(index="replication", columns="metric",
                                                                          values="value")

    diff = consortium("five")["utilisation"] - consortium("four")["utilisation"]
    assert table.loc["utilisation", "difference"] == pytest.approx(diff.mean())
    assert table.loc["utilisation", "ci_high"] < 0  # one more reporter: each is less busy
    assert table.loc["wait_mean_h", "ci_high"] < 0
    assert (table["variance_reduction"] > 1).all()
    assert (table["paired_half_width"] < table["unpaired_half_width"]).all()


def test_compare_sees_identical_arrivals_across_scenarios():
    """Unit: CRN by construction: arrivals per replication are identical between the scenarios."""
    result = compare({"a": small(), "b": small(servers=SERVERS + 2)}, replications=3, seed=4, backend="serial",
                     progress=False)
    a, b = (result.experiments[n].summary().set_index("metric").loc["arrivals", "mean"] for n in "ab")
    assert a == b


def test_mser5_finds_the_end_of_a_transient():
    """Unit: a series with a decaying start and a flat noisy tail is truncated near the decay's end."""
    rng = np.random.default_rng(0)
    n = 400
    series = 50 * np.exp(-np.arange(n) / 15) + rng.normal(10, 1, n)
    d = mser5(series)
    assert 30 <= d <= 120 and d % 5 == 0
    assert mser5(rng.normal(10, 1, n)) <= 40  # no transient: little or nothing truncated


def test_suggest_warmup_on_a_backlog_that_drains():
    """Unit: from an initial backlog the daily consortium backlog falls, then settles; MSER-5 cuts the fall."""
    data = mmc_data(RATE, MEAN_MIN, SERVERS + 1, weeks=8, warmup_weeks=0)
    data["demand"]["initial_backlog"] = [{"trust": "T1", "modality": "XR", "urgency": "R", "count": 3000,
                                          "max_age_days": 5}]
    exp = run_experiment(build(data), replications=3, seed=1, backend="serial", progress=False)
    warmup_h = suggest_warmup(exp)
    backlog = exp.consortium_backlog().mean(axis=1)
    cleared = backlog[backlog <= 5].index.min()
    assert warmup_h > 0
    assert warmup_h >= cleared - 24 * 5  # not before the backlog has nearly drained (one batch of slack)
    clearance = exp.clearance_time(threshold=5).iloc[0]
    assert clearance["n"] == 3 and clearance["mean"] > 0


def test_replications_needed_meets_the_target_half_width():
    """Unit: the suggested n gives t(n-1) * sd / sqrt(n) <= target, and n-1 would not."""
    exp = run_experiment(small(), replications=5, seed=3, backend="serial", progress=False)
    plan = replications_needed(exp, 0.02, metrics=["wait_mean_h"]).iloc[0]
    sd = exp.summary().set_index("metric").loc["wait_mean_h", "sd"]
    n = int(plan["replications_needed"])
    target = plan["half_width_target"]
    assert stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n) <= target
    assert n == 2 or stats.t.ppf(0.975, n - 2) * sd / np.sqrt(n - 1) > target


@pytest.mark.slow
def test_ci_coverage_of_the_erlang_c_wait():
    """Verification (slow): the 95% CI of the mean wait covers the Erlang C value in ~95% of experiments.

    100 independent experiments (seeds) of 5 replications each. If coverage is truly 95%, the
    number covering is Binomial(100, 0.95): P(X < 88) < 0.2% and P(X = 100) = 0.6%, so the test
    accepts 88-99 covers and fails a procedure whose intervals are too narrow or too wide.
    A 1-week warm-up removes the empty-start bias; 6 weeks keep the batch-mean bias small.
    """
    scn = small(weeks=6, warmup=1)
    theory = mmc_mean_wait(RATE, 60 / MEAN_MIN, SERVERS)
    covered = 0
    for seed in range(100):
        exp = run_experiment(scn, replications=5, seed=1000 + seed, backend="processes", progress=False)
        row = exp.summary().set_index("metric").loc["wait_mean_h"]
        covered += row["ci_low"] <= theory <= row["ci_high"]
    assert 88 <= covered <= 99, f"{covered}/100 intervals covered the Erlang C wait {theory:.4f} h"
