"""Where replications run: in this process, in a local process pool, or on a Dask cluster.

Every backend maps the same picklable function over the same jobs and yields results in
completion order; callers sort by replication. A replication's result depends only on its job
(scenario, seed, replication), so results are bit-identical whichever backend, worker count or
completion order produced them.
"""

from __future__ import annotations

import os
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
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for future in as_completed([pool.submit(fn, job) for job in jobs]):
                yield future.result()
    else:
        yield from _dask_map(fn, jobs, workers, scheduler)


def _dask_map(fn: Callable[[Any], Any], jobs: list[Any], workers: int, scheduler: str | None) -> Iterator[Any]:
    raise NotImplementedError("the dask backend is not implemented yet")
