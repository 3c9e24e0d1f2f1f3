"""Unit tests of the benchmark harness's own arithmetic (benchmarks/cache_profile.py): a wrong parse of
cachegrind's summary would put a wrong figure in the performance notes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import cache_profile  # noqa: E402


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_cachegrind_summary_is_read_from_a_real_run(tmp_path):
    out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=yes", "--branch-sim=no",
                          f"--cachegrind-out-file={tmp_path / 'out'}", "/bin/true"],
                         capture_output=True, text=True, check=True)
    counts = cache_profile.parse_summary(out.stderr)
    first_count = out.stderr.split("I   refs:")[1].split()[0]
    assert counts["instructions"] == int(first_count.replace(",", "")) > 0
    # cachegrind's last level sees only the first level's misses: it cannot miss more often
    assert 0 < counts["l2_misses"] <= counts["l1d_misses"]


def test_a_summary_without_a_count_names_it():
    with pytest.raises(ValueError, match="l2_misses"):
        cache_profile.parse_summary("==1== I   refs:      4,517\n==1== D1  misses:       54  (47 rd + 7 wr)\n")


def test_counts_per_event_are_the_run_less_its_setup():
    run = {"events": 200, "instructions": 5_000, "l1d_misses": 700, "l2_misses": 90}
    setup = {"events": 0, "instructions": 1_000, "l1d_misses": 100, "l2_misses": 10}
    assert cache_profile.per_event(run, setup) == {"events": 200, "instructions": 20.0, "l1d_misses": 3.0,
                                                   "l2_misses": 0.4}


def test_counts_per_exam_divide_by_the_exams_of_the_later_stage():
    statistics = {"exams": 50, "events": 40, "instructions": 9_000, "l1d_misses": 600, "l2_misses": 25}
    load = {"exams": 0, "events": 0, "instructions": 4_000, "l1d_misses": 100, "l2_misses": 5}
    assert cache_profile.per_event(statistics, load, per="exams") == {"exams": 50, "instructions": 100.0,
                                                                      "l1d_misses": 10.0, "l2_misses": 0.4}


def test_a_child_stops_after_its_stage_and_later_stages_see_the_same_consortium():
    case = {"kind": "engine", "copies": 1, "weeks": 0.5}
    load, setup, run = (cache_profile.child({**case, "through": stage}) for stage in ("load", "setup", "run"))
    assert load == {"reporters": 0, "exams": 0, "events": 0}
    assert setup["reporters"] == run["reporters"] > 0 and setup["exams"] == run["exams"] > 0
    assert setup["events"] == 0 < run["events"]
