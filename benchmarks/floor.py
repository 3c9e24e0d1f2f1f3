"""The bare-SimPy floor: what SimPy itself costs per event, with no model around it.

Processes that do nothing but `yield env.timeout(delay)` (delays drawn up front) are the least a
SimPy model can spend per event; the benchmark divides the model's end-to-end time by this floor
times its own event count, so the ratio survives a noisy machine (both are measured in one process).
"""

from __future__ import annotations

import time

import numpy as np
import simpy


def bare_simpy_environment(events: int = 1_000_000, processes: int = 337, seed: int = 0) -> tuple[simpy.Environment, int]:
    """`processes` timeout-only processes sharing about `events` events, ready to run; returns the
    environment and the exact number of events it will process."""
    env = simpy.Environment()
    per_process = max(1, events // processes)
    rng = np.random.default_rng(seed)

    def walker(delays: list[float]):
        timeout = env.timeout
        for delay in delays:
            yield timeout(delay)

    for _ in range(processes):
        env.process(walker(rng.exponential(1.0, per_process).tolist()))
    return env, per_process * processes


def bare_simpy_ns_per_event(events: int = 1_000_000, processes: int = 337, seed: int = 0) -> float:
    """CPU nanoseconds per event of `processes` timeout-only processes sharing `events` events."""
    env, scheduled = bare_simpy_environment(events, processes, seed)
    started = time.process_time()
    env.run()
    return (time.process_time() - started) / scheduled * 1e9
