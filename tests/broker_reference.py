"""The broker's hourly arithmetic in plain Python and numpy: the reference sim._loops.BrokerArithmetic must
equal bit for bit (the code the compiled step replaced, less its two shortcuts: a memo of the takers with
spare hours and a two-key special case of the sort, neither of which changed a grant;
tests/test_broker_arithmetic.py compares them).

Per queue, the work to cover is the reading hours waiting now plus those that arrived over the last
lookahead (a persistence forecast); per skill class (summed in queue order), each trust's own planned hours
cover it, most constrained classes first and most work first; the deficits left are matched, largest
first, with other live trusts' spare hours in candidate order while at least the minimum transfer.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class QueueWork:
    """Per queue: waiting reading hours plus the forecast, following arrivals with one pointer into the exam table."""

    def __init__(self, arrival: np.ndarray, queue_of_exam: np.ndarray, cumulative: np.ndarray,
                 first_positions: np.ndarray, history_length: int):
        self.arrival, self.queue_of_exam, self.cumulative = arrival, queue_of_exam, cumulative
        self.q_start = np.asarray(first_positions, dtype=np.int64)
        self.arrived = self.q_start.copy()  # first position not yet acquired, per queue
        self.next_exam = 0
        self.history: deque[np.ndarray] = deque(maxlen=history_length)

    def at(self, now: float, ptr: list[int]) -> np.ndarray:
        stop = int(np.searchsorted(self.arrival, now, side="right"))
        if stop > self.next_exam:
            counts = np.bincount(self.queue_of_exam[self.next_exam:stop], minlength=len(self.q_start) + 1)
            self.arrived += counts[:len(self.q_start)]
            self.next_exam = stop
        waiting_from = np.minimum(np.array(ptr, dtype=np.int64), self.arrived)
        arrived_work = self.cumulative[self.arrived]
        need = arrived_work - self.cumulative[waiting_from]
        self.history.append(arrived_work)
        need += arrived_work - self.history[0]
        return need


class Balance:
    """Cover within trusts, then match deficits with spare hours (structures as sim.policies.brokered._Balance)."""

    def __init__(self, group_of_queue: np.ndarray, n_groups: int, own_keys: list[list[int]],
                 buckets: list[list[int]], donor: list[int], takers: list[list[tuple[int, int, object]]]):
        self.group_of_queue, self.n_groups = group_of_queue, n_groups
        self.own_keys, self.buckets, self.donor, self.takers = own_keys, buckets, donor, takers

    def within_trusts(self, need: np.ndarray, plan: list[float]) -> tuple[list[tuple[int, float]], list[float]]:
        """The deficits (class, hours) in the order found, and the spare hours per planned key."""
        by_class = np.bincount(self.group_of_queue, weights=need, minlength=self.n_groups).tolist()
        spare = list(plan)
        deficit: list[tuple[int, float]] = []
        for bucket in self.buckets:
            todo = [(g, by_class[g]) for g in bucket if by_class[g] > 0]
            todo.sort(key=lambda item: -item[1])
            for g, hours in todo:
                for k in sorted(self.own_keys[g], key=lambda k: -spare[k]):
                    have = spare[k]
                    take = min(hours, have)
                    spare[k] = have - take
                    hours -= take
                    if hours <= 0:
                        break
                if hours > 0:
                    deficit.append((g, hours))
        return deficit, spare

    def match(self, deficit: list[tuple[int, float]], spare: list[float], live: list[bool], minimum: float) -> dict:
        """Hours granted per pair, in the order first granted."""
        todo = [(g, short) for g, short in deficit if self.takers[g] and live[self.donor[g]] and not short < minimum]
        todo.sort(key=lambda item: -item[1])
        granted: dict = {}
        for g, short in todo:
            for receiver, k, pair in self.takers[g]:
                if short < minimum:
                    break
                if not live[receiver]:
                    continue
                have = spare[k]
                if have <= 0:
                    continue
                moved = min(short, have)
                granted[pair] = granted.get(pair, 0.0) + moved
                spare[k] = have - moved
                short -= moved
        return granted
