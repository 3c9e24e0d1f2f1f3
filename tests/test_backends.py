"""Integration tests of the backends: serial, a local process pool and Dask (a private LocalCluster,
and a real scheduler plus workers started as separate processes on 127.0.0.1) must give bit-identical
replication tables, also when a worker is killed in the middle of an experiment; an unreachable
scheduler must fail quickly with a clear error.

Every test checks that it leaves no child processes behind, even when it fails.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from sim import backends
from sim.backends import SchedulerUnreachable, map_unordered
from sim.experiment import ExperimentResult, _one, run_experiment
from tests.scenarios import build, mmc_data

SEED = 11
# a few weeks of a busy single-queue M/M/1: each replication takes well under 0.1 s
SMALL = build(mmc_data(2.0, 20, 1, weeks=4, warmup_weeks=1))
SMALL_REPS = 4
# M/M/8 at 83% load for half a year: about 0.5 s a replication, so a worker can be killed mid-experiment
SLOW = build(mmc_data(20.0, 20, 8, weeks=26, warmup_weeks=1))
SLOW_REPS = 6

CLUSTER_START_SECONDS = 60


def assert_same(a: ExperimentResult, b: ExperimentResult) -> None:
    assert [r.replication for r in a.runs] == [r.replication for r in b.runs]
    pd.testing.assert_frame_equal(a.replications, b.replications, check_exact=True)
    pd.testing.assert_frame_equal(a.backlog, b.backlog, check_exact=True)


@pytest.fixture(autouse=True)
def no_stray_processes():
    """Fail a test that leaves child processes of this process running (clusters, pools, workers)."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}  # e.g. the module's cluster: checked on its own
    yield
    deadline = time.monotonic() + 15
    while True:
        stray = [p for p in me.children(recursive=True)
                 if _alive(p) and not _helper(p) and not _descends_from(p, before, me.pid)]
        if not stray or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    described = [(p.pid, _cmdline(p)) for p in stray]
    for p in stray:  # clean up first, then fail
        try:
            p.kill()
        except psutil.Error:
            pass
    assert not stray, f"processes left behind: {described}"


def _descends_from(p: psutil.Process, pids: set[int], stop: int) -> bool:
    """p or one of its ancestors (up to `stop`) is in pids."""
    try:
        while p is not None and p.pid != stop:
            if p.pid in pids:
                return True
            p = p.parent()
    except psutil.Error:
        pass
    return False


def _cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())[:120]
    except psutil.Error:
        return "?"


def _helper(p: psutil.Process) -> bool:
    """multiprocessing's resource tracker: one per process, started on first use, ends with it."""
    return "multiprocessing.resource_tracker" in _cmdline(p)


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def small_serial() -> ExperimentResult:
    return run_experiment(SMALL, SMALL_REPS, SEED, backend="serial", progress=False)


@pytest.fixture(scope="module")
def small_processes() -> ExperimentResult:
    return run_experiment(SMALL, SMALL_REPS, SEED, backend="processes", workers=2, progress=False)


@pytest.fixture(scope="module")
def slow_processes() -> ExperimentResult:
    return run_experiment(SLOW, SLOW_REPS, SEED, backend="processes", workers=2, progress=False)


# --- one machine -------------------------------------------------------------------------------

def test_processes_match_serial(small_serial, small_processes):
    assert_same(small_processes, small_serial)
    for workers in (1, 3):
        assert_same(run_experiment(SMALL, SMALL_REPS, SEED, backend="processes", workers=workers, progress=False),
                    small_serial)


@pytest.mark.parametrize("workers", [1, 2])
def test_dask_local_cluster_matches_serial(small_serial, workers):
    result = run_experiment(SMALL, SMALL_REPS, SEED, backend="dask", workers=workers, progress=False)
    assert_same(result, small_serial)


# --- a real cluster: scheduler and workers as separate processes -------------------------------

class Cluster:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, each in its own process group."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.scheduler_file = directory / "scheduler.json"
        self.procs: dict[str, subprocess.Popen] = {}
        self.address = ""

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.directory / f"{name}.log", "wb")
        with log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "dask", *args], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.directory, start_new_session=True)

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n" + (self.directory / f"{name}.log").read_text(errors="replace")[-3000:]
                         for name in self.procs)

    def start(self, n_workers: int = 2) -> None:
        from distributed import Client

        deadline = time.monotonic() + CLUSTER_START_SECONDS
        # --idle-timeout and --death-timeout: a safety net should this test process die without cleaning up
        self._spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(self.scheduler_file), "--idle-timeout", "300")
        while not self.scheduler_file.exists():
            self._check_running(deadline, "the scheduler to write its scheduler file")
            time.sleep(0.1)
        while not self.address:
            try:
                self.address = json.loads(self.scheduler_file.read_text())["address"]
            except (json.JSONDecodeError, KeyError):  # caught half-written
                self._check_running(deadline, "a complete scheduler file")
                time.sleep(0.1)
        assert self.address.startswith("tcp://127.0.0.1:"), self.address
        for i in range(n_workers):
            self._spawn(f"worker{i}", "worker", "--scheduler-file", str(self.scheduler_file), "--host", "127.0.0.1",
                        "--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--name", f"w{i}",
                        "--local-directory", str(self.directory / f"worker{i}"), "--death-timeout", "60")
        with Client(self.address, timeout=10, set_as_default=False) as client:
            while len(client.scheduler_info()["workers"]) < n_workers:
                self._check_running(deadline, f"{n_workers} workers to join")
                time.sleep(0.2)

    def _check_running(self, deadline: float, waiting_for: str) -> None:
        dead = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
        if dead:
            pytest.fail(f"dask processes exited {dead} while waiting for {waiting_for}\n{self.logs()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {CLUSTER_START_SECONDS} s waiting for {waiting_for}\n{self.logs()}")

    def stop(self) -> None:
        """Workers, then the scheduler: SIGTERM to each process group, SIGKILL whatever is left after 10 s."""
        groups = [p.pid for name, p in sorted(self.procs.items(), key=lambda kv: kv[0] == "scheduler")]
        for pgid in groups:
            _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.procs.values():
            try:
                p.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
        for pgid in groups:  # stragglers, e.g. a worker whose nanny was already gone
            _signal_group(pgid, signal.SIGKILL)
        for p in self.procs.values():
            p.wait(10)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One cluster for the module; the worker-killing test comes last."""
    c = Cluster(tmp_path_factory.mktemp("dask-cluster"))
    try:
        c.start(n_workers=2)
        yield c
    finally:
        c.stop()
        deadline = time.monotonic() + 10  # killed grandchildren may linger a moment until reaped
        while (left := [name for name, p in c.procs.items() if _group_exists(p.pid)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, f"dask processes left behind in the groups of {left}"


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of someone else's now has that id
        return False


def test_dask_scheduler_address_matches_processes(cluster, small_processes):
    result = run_experiment(SMALL, SMALL_REPS, SEED, backend="dask", scheduler=cluster.address, progress=False)
    assert_same(result, small_processes)


def test_dask_task_errors_reach_the_caller(cluster):
    # a builtin, since the workers cannot import this test module
    with pytest.raises(ValueError, match="math domain error"):
        list(map_unordered(math.sqrt, [4, -1], backend="dask", scheduler=cluster.address))


def test_killed_worker_loses_nothing(cluster, slow_processes):
    """SIGKILL a busy worker as soon as the first replication is back: Dask recomputes its tasks."""
    from distributed import Client

    jobs = [(SLOW, SEED, r) for r in range(SLOW_REPS)]
    runs = []
    killed = None
    with Client(cluster.address, timeout=10, set_as_default=False) as observer:
        for run in map_unordered(_one, jobs, backend="dask", scheduler=cluster.address):
            runs.append(run)
            if killed is None:
                busy = sorted(address for address, keys in observer.processing().items() if keys)
                assert busy, "no worker is busy after the first result: replications too fast to test this"
                killed = busy[0]
                os.kill(observer.run(os.getpid, workers=[killed])[killed], signal.SIGKILL)
        assert killed not in observer.scheduler_info()["workers"], "the scheduler never noticed the kill"
    assert len(runs) == SLOW_REPS
    result = ExperimentResult(SLOW, SEED, sorted(runs, key=lambda r: r.replication))
    assert_same(result, slow_processes)


# --- errors ------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_fails_quickly_and_clearly(monkeypatch):
    assert 5 <= backends.CONNECT_TIMEOUT <= 20  # the real wait; shortened below to keep the test fast
    monkeypatch.setattr(backends, "CONNECT_TIMEOUT", 2)
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(SchedulerUnreachable, match=re.escape(address)) as info:
        run_experiment(SMALL, 2, SEED, backend="dask", scheduler=address, progress=False)
    assert time.monotonic() - started < 10
    assert isinstance(info.value, ConnectionError)


def test_bad_scheduler_address_is_a_value_error():
    with pytest.raises(ValueError, match=re.escape("nonsense://x")):
        run_experiment(SMALL, 2, SEED, backend="dask", scheduler="nonsense://x", progress=False)
