"""Verification: the broker's compiled hourly arithmetic (sim._loops.BrokerArithmetic) grants exactly what the
plain-Python rules (tests/broker_reference.py) grant, bit for bit and in the same order: at every rebalancing
of real runs, and on random small consortia with ties (hypothesis), where stable ordering decides."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import _loops
from sim.loading import load_scenario
from sim.model import Engine
from tests.broker_reference import Balance, QueueWork


class _CheckedArithmetic:
    """Builds the compiled step and the reference from the same arguments; every step must agree."""

    steps: list[int] = []

    def __init__(self, arrival, queue_of_exam, cumulative, first_positions, history_length, group_of_queue,
                 n_groups, n_keys, own_keys, buckets, donor, takers, pairs):
        self.compiled = _Compiled(arrival, queue_of_exam, cumulative, first_positions, history_length,
                                  group_of_queue, n_groups, n_keys, own_keys, buckets, donor, takers, pairs)
        self.work = QueueWork(arrival, queue_of_exam, cumulative, first_positions, history_length)
        self.balance = Balance(group_of_queue, n_groups, own_keys, buckets, donor,
                               [[(r, k, pairs[i]) for r, k, i in row] for row in takers])

    def step(self, ptr, now, plan, live, minimum):
        got = self.compiled.step(ptr, now, plan, live, minimum)
        deficit, spare = self.balance.within_trusts(self.work.at(now, ptr), plan)
        expected = self.balance.match(deficit, spare, live, minimum)
        assert list(got.items()) == list(expected.items()), f"at {now} h"
        _CheckedArithmetic.steps.append(len(got))
        return got


_Compiled = _loops.BrokerArithmetic


@pytest.mark.parametrize("path, weeks", [("params/scenarios/brokered_home.toml", 3),
                                         ("params/scenarios/brokered.toml", 2),
                                         ("params/regression/two_trusts_brokered.toml", 8)])
def test_compiled_grants_equal_the_reference_at_every_rebalancing(monkeypatch, path, weeks):
    monkeypatch.setattr(_loops, "BrokerArithmetic", _CheckedArithmetic)
    _CheckedArithmetic.steps = []
    scn = load_scenario(path)
    Engine(scn.with_changes({"horizon_weeks": min(weeks, scn.horizon_weeks)}), 3, 0).run()
    steps = _CheckedArithmetic.steps
    assert len(steps) >= 7 * 24 and sum(1 for n in steps if n) > 20  # hourly, and the broker granted work


# hours with ties (exact multiples) and without (thirds, tenths): the order of additions and stable sorts matter
HOURS = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 0.1, 1 / 3, 0.7])


@st.composite
def consortia(draw):
    """A small consortium's fixed structures, exams and a run of rebalancings."""
    n_queues = draw(st.integers(1, 6))
    n_groups = draw(st.integers(1, 4))
    n_keys = draw(st.integers(1, 4))
    n_trusts = 3
    group_of_queue = np.array(draw(st.lists(st.integers(0, n_groups - 1), min_size=n_queues, max_size=n_queues)))
    own_keys = [draw(st.lists(st.integers(0, n_keys - 1), max_size=n_keys, unique=True)) for _ in range(n_groups)]
    buckets = [[g for g in range(n_groups) if len(own_keys[g]) == n] for n in sorted({len(k) for k in own_keys})]
    donor = draw(st.lists(st.integers(0, n_trusts - 1), min_size=n_groups, max_size=n_groups))
    pairs = [(d, r) for d in range(n_trusts) for r in range(n_trusts) if d != r]
    taker = st.tuples(st.integers(0, n_trusts - 1), st.integers(0, n_keys - 1), st.integers(0, len(pairs) - 1))
    takers = [draw(st.lists(taker, min_size=1, max_size=4)) for _ in range(n_groups)]
    # exams in acquisition order (ties), each in a queue or parked (queue n_queues)
    arrival = np.sort(np.array(draw(st.lists(st.integers(-2, 12), max_size=30)), dtype=float) / 2)
    queue_of_exam = np.array(draw(st.lists(st.integers(0, n_queues), min_size=len(arrival), max_size=len(arrival))),
                             dtype=np.int32)
    sizes = np.bincount(queue_of_exam, minlength=n_queues + 1)[:n_queues]
    first = np.r_[0, np.cumsum(sizes + 1)[:-1]].astype(np.int64)  # each queue's segment and its sentinel
    n_positions = int((sizes + 1).sum()) + int(np.count_nonzero(queue_of_exam == n_queues))
    work = np.array(draw(st.lists(HOURS, min_size=n_positions, max_size=n_positions)))
    cumulative = np.concatenate([[0.0], np.cumsum(work)])
    history_length = draw(st.integers(2, 4))
    steps = []
    now = 0.0
    for _ in range(draw(st.integers(1, 6))):
        now += draw(st.sampled_from([0.0, 0.5, 1.0, 3.0]))
        ptr = [int(first[q]) + draw(st.integers(0, int(sizes[q]))) for q in range(n_queues)]
        plan = draw(st.lists(st.sampled_from([0.0, 0.5, 1 / 3, 2.0, 5.0]), min_size=n_keys, max_size=n_keys))
        live = draw(st.lists(st.sampled_from([True, True, True, False]), min_size=n_trusts, max_size=n_trusts))
        steps.append((ptr, now, plan, live, draw(st.sampled_from([0.0, 0.25, 0.5]))))
    return (arrival, queue_of_exam, cumulative, first, history_length, group_of_queue, n_groups, n_keys, own_keys,
            buckets, donor, takers, pairs), steps


@settings(max_examples=400, deadline=None)
@given(consortia())
def test_compiled_grants_equal_the_reference_on_random_consortia(case):
    arguments, steps = case
    checked = _CheckedArithmetic(*arguments)
    for step in steps:
        checked.step(*step)


def test_work_of_a_class_is_summed_in_queue_order():
    """A class's work is its queues' work added in queue order (np.bincount's order), bit for bit: here three
    queues whose sum differs in the last bit when added in reverse, fully granted to another trust."""
    work = np.array([0.2, 0.0, 0.7, 0.0, 0.1, 0.0])  # one exam per queue, then its sentinel
    cumulative = np.concatenate([[0.0], np.cumsum(work)])
    first = np.array([0, 2, 4])
    needs = [cumulative[p + 1] - cumulative[p] for p in first]
    in_order = ((0.0 + needs[0]) + needs[1]) + needs[2]
    assert in_order != ((0.0 + needs[2]) + needs[1]) + needs[0]  # the example tells the two orders apart
    arithmetic = _loops.BrokerArithmetic(
        np.zeros(3), np.array([0, 1, 2], dtype=np.int32), cumulative, first, 2, np.zeros(3, dtype=np.int64), 1, 1,
        [[]], [[0]], [0], [[(1, 0, 0)]], [(0, 1)])  # one class at trust 0, no own cover; trust 1 has 5 h spare
    granted = arithmetic.step(first.tolist(), 1.0, [5.0], [True, True], 0.5)
    assert list(granted.items()) == [((0, 1), in_order)]
