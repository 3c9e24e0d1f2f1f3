"""A reusable SimPy timer: one event object per process, re-armed for each wait, instead of a new Timeout.

A reporter waits ~7,000 times a year in each of 337 processes. `env.timeout(d)` builds a Timeout
(an object, an __init__ call, five attribute stores) and schedules it; re-arming one event per
process only schedules it. Scheduling is SimPy's own (`Environment.schedule`, the call Timeout's
__init__ makes): the same heap entry (time now + delay, NORMAL priority, the next event id), so a
run is the same event for event and bit-identical. Measured: ~250 ns less per event, against
~1,000 ns for SimPy's whole step.

Only for a wait nothing can interrupt: an interrupted process leaves its event in the heap, and
re-arming it would schedule it twice. Waits a broker may interrupt use `env.timeout` as before.
"""

from __future__ import annotations

import simpy
from simpy.core import NORMAL


class Timer(simpy.Event):
    """Succeeds (value None) `delay` hours after each `after(delay)`; yield it to wait.

    The hot loop may re-arm it inline (``timer.callbacks = []; schedule(timer, NORMAL, delay)``,
    what `after` does) to save the method call."""

    def __init__(self, env: simpy.Environment):
        super().__init__(env)
        self._ok = True  # a Timeout's outcome: succeeded, with value None
        self._value = None

    def after(self, delay: float) -> "Timer":
        """Re-arm (the previous wait must have ended: it fired, nothing interrupted it); returns self."""
        if delay < 0:
            raise ValueError(f"negative delay {delay}")
        self.callbacks = []
        self.env.schedule(self, NORMAL, delay)
        return self


__all__ = ["NORMAL", "Timer"]
