"""Where replications run: in this process, in a local process pool, or on a Dask cluster.

Every backend maps the same picklable function over the same jobs and yields results in
completion order; callers sort by replication. A replication's result depends only on its job
(scenario, seed, replication), so results are bit-identical whichever backend, worker count or
completion order produced them.
"""

from __future__ import annotations

import logging
import os
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterable, Iterator

BACKENDS = ("serial", "processes", "dask")


def map_unordered(fn: Callable[[Any], Any], jobs: Iterable[Any], backend: str = "processes",
                  workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """Yield fn(job) for every job, as each finishes.

    backend: "serial" (this process), "processes" (a local pool of `workers`, default one per
    core) or "dask" (an existing scheduler at `scheduler`, e.g. tcp://127.0.0.1:8786, or a
    LocalCluster of `workers` processes when no address is given).
    """
    jobs = list(jobs)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ValueError("--scheduler needs --backend dask")
    if not jobs:
        return
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if backend == "serial" or (backend == "processes" and workers == 1):
        for job in jobs:
            yield fn(job)
    elif backend == "processes":
        pool = ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),))
        try:
            for future in as_completed([pool.submit(fn, job) for job in jobs]):
                yield future.result()
        except BaseException:  # error, Ctrl-C/SIGTERM or abandoned generator: stop the workers now
            _stop_workers(pool)
            raise
        pool.shutdown()
    else:
        yield from _dask_map(fn, jobs, workers, scheduler)


#: Seconds between a worker's checks that the process that started it is still alive.
PARENT_CHECK_SECONDS = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: exit as soon as the parent process is gone (killed by SIGKILL or SIGTERM).

    A killed parent cannot shut its pool down, and pool workers otherwise live on (re-parented to
    init), each finishing a replication nobody will read. A daemon thread notices the re-parenting.
    """
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel queued jobs and terminate running workers (instead of waiting for their replications)."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public API before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


#: Seconds to keep trying to reach a Dask scheduler before giving up with SchedulerUnreachable.
CONNECT_TIMEOUT = 15
#: Times a task is retried after it raised; a task lost with a dead worker is rescheduled by Dask
#: itself (up to the scheduler's `distributed.scheduler.allowed-failures`, default 3).
TASK_RETRIES = 2


class SchedulerUnreachable(ConnectionError):
    """No Dask scheduler answered at the given address."""


def _dask_map(fn: Callable[[Any], Any], jobs: list[Any], workers: int, scheduler: str | None) -> Iterator[Any]:
    """Run fn over jobs on a Dask cluster: the scheduler at `scheduler`, or a private LocalCluster.

    The LocalCluster listens on loopback only, has no dashboards and is shut down afterwards. Each
    job is one task; if a worker dies, Dask recomputes its unfinished (and unfetched) tasks on the
    other workers, so the experiment loses nothing.
    """
    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, worker_dashboard_address=None,
                               # no dashboard, and the scheduler's small HTTP server on a free port
                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                               silence_logs=logging.ERROR)
        address = cluster
    else:
        address = scheduler
    try:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except ValueError as exc:  # e.g. an unknown scheme
            if scheduler is None:
                raise
            raise ValueError(f"bad Dask scheduler address {scheduler!r}: {exc}") from exc
        except OSError as exc:  # distributed reports timeouts and refusals as OSError
            if scheduler is None:
                raise
            raise SchedulerUnreachable(
                f"no Dask scheduler reachable at {scheduler!r} within {CONNECT_TIMEOUT} s "
                f"(start one with `dask scheduler`, or leave out --scheduler for a local cluster)") from exc
        try:
            if scheduler is not None and not client.scheduler_info().get("workers"):
                warnings.warn(f"the Dask scheduler at {scheduler} has no workers yet; tasks wait until one joins",
                              RuntimeWarning, stacklevel=3)
            futures = client.map(fn, jobs, pure=False, retries=TASK_RETRIES)
            pending = set(futures)
            del futures
            try:
                for future in dask_as_completed(pending, loop=client.loop):
                    pending.discard(future)
                    result = future.result()
                    del future  # drop our reference so the cluster can free the result
                    yield result
            finally:
                if pending:  # stopped early (error or abandoned generator): don't leave work running
                    client.cancel(list(pending))
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
