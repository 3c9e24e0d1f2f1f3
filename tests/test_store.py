"""UNIT and REGRESSION tests: the resume cache is data, never code (issue 12, case 3).

Replications are stored as Parquet tables plus a JSON entry with checksums, the config id and the
code id. A crafted pickle in `runs/` is never loaded; a truncated, edited or foreign entry is named,
discarded and recomputed, and the recomputed results equal a fresh run bit for bit.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings

import pandas as pd
import pytest

from sim.experiment import run_experiment
from sim.store import CacheEntryError, RunStore, code_id
from tests.scenarios import build, two_trust_data


@pytest.fixture(scope="module")
def scn():
    return build(two_trust_data(weeks=1))


def _run(scn, folder, replications=2, seed=2):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_experiment(scn, replications=replications, seed=seed, backend="serial", progress=False, store=folder)
    return result, [str(w.message) for w in caught]


class _Payload:
    """Unpickling this runs os.system: the attack of case 3."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_in_runs_folder_is_never_loaded(scn, tmp_path):
    """Case 3: a crafted runs/*.pkl (old cache format, or any name) never runs its payload."""
    marker = tmp_path / "pwned"
    runs = tmp_path / "out" / "runs"
    runs.mkdir(parents=True)
    for r in range(2):  # the names the old pickle cache used, and the new entries' names
        old = runs / f"{scn.config_id}-{code_id()[:12]}-s2-r{r}.pkl"
        old.write_bytes(pickle.dumps(_Payload(marker)))
    RunStore(tmp_path / "out").path(scn.config_id, 2, 0).write_bytes(pickle.dumps(_Payload(marker)))
    result, messages = _run(scn, tmp_path / "out")
    assert not marker.exists()
    assert result.computed == [0, 1]
    assert len(result.discarded) == 1 and "r0.json" in result.discarded[0]
    assert any("discarded cache entry" in m for m in messages)


def test_truncated_cache_entry_is_named_discarded_and_recomputed(scn, tmp_path):
    """Case 3: a truncated entry made every rerun fail with an error that named no file."""
    first, _ = _run(scn, tmp_path)
    store = RunStore(tmp_path)
    table = store.files(scn.config_id, 2, 1)[2]  # replication 1's backlog table
    table.write_bytes(table.read_bytes()[: table.stat().st_size // 2])
    with pytest.raises(CacheEntryError, match="checksum mismatch") as info:
        store.load(scn.config_id, 2, 1)
    assert info.value.path == table
    again, messages = _run(scn, tmp_path)
    assert again.computed == [1]
    assert str(table) in again.discarded[0]
    pd.testing.assert_frame_equal(again.replications, first.replications, check_exact=True)
    pd.testing.assert_frame_equal(again.backlog, first.backlog, check_exact=True)
    assert store.load(scn.config_id, 2, 1).n_exams == first.runs[1].n_exams  # the entry was rewritten whole


def test_truncated_json_entry_is_named_and_recomputed(scn, tmp_path):
    _run(scn, tmp_path)
    entry = RunStore(tmp_path).path(scn.config_id, 2, 0)
    entry.write_text(entry.read_text()[:40])
    again, _ = _run(scn, tmp_path)
    assert again.computed == [0] and str(entry) in again.discarded[0] and "unreadable" in again.discarded[0]


def test_foreign_cache_entry_is_discarded(scn, tmp_path):
    """An entry copied under another replication's name (or from another scenario) is not trusted."""
    _run(scn, tmp_path)
    store = RunStore(tmp_path)
    entry = json.loads(store.path(scn.config_id, 2, 0).read_text())
    entry["config_id"] = "0" * 64
    store.path(scn.config_id, 2, 0).write_text(json.dumps(entry))
    again, _ = _run(scn, tmp_path)
    assert again.computed == [0] and "foreign entry: config_id" in again.discarded[0]


def test_cache_round_trip_is_bit_identical(scn, tmp_path):
    first, _ = _run(scn, tmp_path)
    again, messages = _run(scn, tmp_path)
    assert again.computed == [] and again.discarded == [] and messages == []
    for a, b in zip(first.runs, again.runs):
        for name in ("metrics", "backlog", "reporters"):
            pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
        assert (a.n_exams, a.events) == (b.n_exams, b.events)
    assert not list((tmp_path / "runs").glob("*.pkl"))
