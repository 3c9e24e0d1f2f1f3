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
