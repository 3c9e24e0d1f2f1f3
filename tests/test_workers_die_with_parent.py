"""REGRESSION (issue 12, case 7): workers die with their parent.

A parent process maps `time.sleep(120)` over two workers (process pool, or a Dask LocalCluster),
and is then killed with SIGKILL or SIGTERM, so it cannot shut anything down. Its worker processes
must exit by themselves instead of sleeping on re-parented to init. A dead worker may linger as a
zombie until init reaps it: that counts as dead. Linux only (reads /proc).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

PARENT = """
import time
from sim.backends import map_unordered
print('ready', flush=True)
for _ in map_unordered(time.sleep, [120, 120], {backend!r}, workers=2):
    pass
"""


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _children(pid: int) -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit() and (_stat(int(d)) or ("", 0))[1] == pid]


def _running(pids: list[int]) -> list[int]:
    return [p for p in pids if (state := _stat(p)) is not None and state[0] not in ("Z", "X")]


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds  # a deadline to stop waiting, not a speed requirement
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _kill_parent_and_check_workers(backend: str, sig: int, workers: int) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(backend=backend)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    children: list[int] = []
    try:
        assert parent.stdout.readline().strip() == "ready"
        assert _wait_until(lambda: len(_running(_children(parent.pid))) >= workers, 120), "workers never started"
        time.sleep(1)  # let the jobs reach the workers
        children = _children(parent.pid)
        parent.send_signal(sig)
        parent.wait(timeout=60)
        assert _wait_until(lambda: not _running(children), 60), f"orphaned workers: {_running(children)}"
    finally:
        for pid in _running(children):
            os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_orphaned_pool_workers_die_with_their_parent(sig):
    _kill_parent_and_check_workers("processes", sig, workers=2)


def test_orphaned_dask_localcluster_workers_die_with_their_parent():
    """distributed's LocalCluster already ends its worker processes with the parent: kept as a guard."""
    _kill_parent_and_check_workers("dask", signal.SIGKILL, workers=2)
