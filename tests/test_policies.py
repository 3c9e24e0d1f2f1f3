"""UNIT tests: each policy and intervention on small hand-built scenarios and states.

* Routing: local reads its own trust plus only the named work of a cross-trust agreement; pooled
  reads every credentialed trust in `own_trust_first` or `urgency_then_age` order; cross-trust
  reads take the "brokered" route.
* The broker: grants quotas from an overloaded to an idle trust, never lets more transfers
  through than it granted between two rebalancings, adds the transfer overhead to reading time,
  and moves nothing between balanced trusts.
* Home reporting: sessions only in offered slots, for reporters with a home workstation, outside
  their leave weeks, exactly when the trust's backlog exceeds the threshold; uptake-curve
  interpolation, the reading-time factor and common random numbers for uptake draws.
* IT outages: deterministic per name and stream, by scope; no read starts inside one it covers.
* Outsourcing: daily cap per trust, allowed urgencies only, outsourced exams never read in-house.
* Finance: per-exam cost by route reconciles with the tariffs; inter-trust charges balance; per-trust
  metrics add up to the consortium; WTE gained from home reporting.
* The eligibility table and validation of the policy sections.

Tests marked ``xfail(strict=True, reason="sim bug: ...")`` are minimal reproductions of bugs found
in sim/ while writing these tests; each turns into an XPASS failure once its bug is fixed. Fixed
(issue 10): idle receivers are woken when the broker opens work to them, no commitment ahead into
borrowed work, agreement reads never use a broker quota, and a group both credentialed for a
trust and named in an agreement for it reads only the agreement's work there under local routing.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.loading import ScenarioError, load_scenario
from sim.metrics import metrics_table, outcome
from sim.model import Engine, outage_intervals, simulate
from sim.policies import BrokeredRouting, HomeSessions, TheBroker
from sim.policies.brokered import _PlannedCapacity
from sim.policies.home import offer_slots
from sim.scenario import HOURS_PER_WEEK, HomeReporting, Session
from sim.worklist import ROUTE_CODE
from sim.workforce import eligibility_table
from tests.scenarios import ALL_DAYS, WEEKDAYS, backlog_only_data, build, imbalanced_data, mmc_data, two_trust_data

CORE, HOME, BROKERED, OUTSOURCED, UNREPORTED = (ROUTE_CODE[r] for r in ("core", "home", "brokered", "outsourced",
                                                                        "unreported"))
SEED = 7


def run_engine(scn, seed: int = SEED, replication: int = 0):
    engine = Engine(scn, seed, replication)
    return engine, engine.run()


def intervention(engine: Engine, kind: type):
    (found,) = [i for i in engine.interventions if isinstance(i, kind)]
    return found


def reader_trust(raw) -> np.ndarray:
    """Home trust of each exam's reader (-1 if none)."""
    return np.array([r.home_trust for r in raw.reporters] + [-1])[raw.reader]


def reader_speed(raw) -> np.ndarray:
    return np.array([r.speed for r in raw.reporters] + [np.nan])[raw.reader]


def inside(times: np.ndarray, spans) -> np.ndarray:
    """Whether each time lies in one of the half-open [start, end) spans."""
    times = np.asarray(times, dtype=float)
    if len(spans) == 0:
        return np.zeros(times.shape, dtype=bool)
    spans = np.asarray(spans, dtype=float)
    return ((times[:, None] >= spans[None, :, 0]) & (times[:, None] < spans[None, :, 1])).any(axis=1)


# -- local routing and cross-trust agreements -----------------------------------------------------
def agreement_data(agreement: bool = True, credentialed: bool = False) -> dict:
    """T2 has no reporters; T1's group may read T2's neuro work through an agreement."""
    data = two_trust_data(weeks=1, outsourcing=False, backlog=(0, 60), t2_staff=0)
    data["staff"][0]["credentialed_trusts"] = ["T2"] if credentialed else []
    if agreement:
        data["agreements"] = [{"name": "neuro cover", "readers": "rad", "reader_trust": "T1", "trust": "T2",
                               "modalities": ["XR"], "subspecialties": ["neuro"], "max_band": 2}]
    return data


def test_local_reporters_read_only_their_own_trust():
    scn = build(imbalanced_data("local"))  # credentialed both ways, but local ignores credentials
    engine, raw = run_engine(scn)
    read = raw.reader >= 0
    assert read.sum() > 100
    assert np.array_equal(reader_trust(raw)[read], raw.exams.trust[read])
    assert set(np.unique(raw.route[read])) == {CORE}
    for index, reporter in enumerate(raw.reporters):
        queues = [q for group in engine.candidate_queues(index) for q in group]
        assert queues and {engine.worklists.q_trust[q] for q in queues} == {reporter.home_trust}


def test_agreement_reads_only_the_named_subspecialty_as_brokered_work():
    raw = simulate(build(agreement_data()), SEED, 0)
    neuro = 1
    t2 = raw.exams.trust == 1
    read_t2 = t2 & (raw.reader >= 0)
    assert np.count_nonzero(read_t2) > 10
    assert np.all(raw.exams.subspecialty[read_t2] == neuro)
    assert np.all(raw.route[read_t2] == BROKERED) and np.all(reader_trust(raw)[read_t2] == 0)
    assert np.all(raw.route[t2 & (raw.exams.subspecialty != neuro)] == UNREPORTED)
    # T1's own work stays core
    read_t1 = (raw.exams.trust == 0) & (raw.reader >= 0)
    assert np.all(raw.route[read_t1] == CORE)


def test_without_the_agreement_the_other_trusts_work_is_never_read():
    raw = simulate(build(agreement_data(agreement=False)), SEED, 0)
    assert not np.any((raw.exams.trust == 1) & (raw.reader >= 0))
    assert np.any((raw.exams.trust == 0) & (raw.reader >= 0))


def test_local_agreement_stays_narrow_when_the_group_is_also_credentialed():
    raw = simulate(build(agreement_data(credentialed=True)), SEED, 0)
    read_t2 = (raw.exams.trust == 1) & (raw.reader >= 0)
    assert read_t2.any() and np.all(raw.exams.subspecialty[read_t2] == 1)  # the bug read 91 general exams of T2 too


# -- pooled routing -------------------------------------------------------------------------------
def pooled(order: str, data: dict | None = None):
    data = imbalanced_data("pooled") if data is None else data
    data["policy"] = {"kind": "pooled", "pooled_order": order}
    data.setdefault("finance", {})["inter_trust_charge"] = {"XR": [10.0, 20.0]}
    return build(data)


def group_keys(engine: Engine, index: int) -> list[set[tuple[int, int]]]:
    """Per preference group of the reporter: the (trust, urgency priority) pairs of its queues."""
    wl, urgencies = engine.worklists, engine.scenario.urgencies
    return [{(wl.q_trust[q], urgencies[wl.q_urgency[q]].priority) for q in group}
            for group in engine.candidate_queues(index)]


def test_pooled_candidate_queue_order():
    own_first = Engine(pooled("own_trust_first"), SEED, 0)
    by_urgency = Engine(pooled("urgency_then_age"), SEED, 0)
    for index, reporter in enumerate(own_first.reporters):
        home, other = reporter.home_trust, 1 - reporter.home_trust
        # own trust's urgency classes first, then the other trust's
        assert group_keys(own_first, index) == [{(home, 0)}, {(home, 1)}, {(other, 0)}, {(other, 1)}]
        # strictly by urgency, both trusts in every group
        assert group_keys(by_urgency, index) == [{(home, 0), (other, 0)}, {(home, 1), (other, 1)}]


ONE_READER = [{"name": "rad", "trust": "T1", "count": 1, "credentialed_trusts": ["T2"],
               "sessions": [{"days": WEEKDAYS, "start": "09:00", "end": "17:00"}],
               "modalities": ["XR"], "max_band": 2, "subspecialties": ["general", "neuro"]}]


@pytest.mark.parametrize("blocks", [
    [("T1", "OP", 1, 1.0), ("T2", "OP", 1, 2.0)],  # same urgency, T2's exam older
    [("T1", "OP", 1, 1.0), ("T2", "ED", 1, 0.5)],  # T2's exam more urgent (and newer)
], ids=["older-elsewhere", "more-urgent-elsewhere"])
def test_pooled_orders_choose_differently(blocks):
    """An idle T1 reporter facing one exam at T1 and one at T2 that urgency_then_age ranks first."""
    first = {}
    for order in ("own_trust_first", "urgency_then_age"):
        raw = simulate(pooled(order, backlog_only_data(blocks, staff=ONE_READER)), SEED, 0)
        assert np.all(raw.reader >= 0)
        first[order] = int(raw.exams.trust[np.argmin(raw.left_at)])
    assert first == {"own_trust_first": 0, "urgency_then_age": 1}


def test_pooled_reads_only_credentialed_trusts_and_cross_reads_are_brokered():
    # strictly by urgency then age, so both trusts' reporters reach across whenever they may
    data = imbalanced_data("pooled", t1_per_hour=1.0, t2_per_hour=1.0, t1_staff=2, t2_staff=2, backlog=(60, 60))
    both_ways = simulate(pooled("urgency_then_age", data), SEED, 0)
    data["staff"][0]["credentialed_trusts"] = []  # now T1 may not read T2; T2 still may read T1
    one_way = simulate(pooled("urgency_then_age", data), SEED, 0)
    t1_reads_t2 = [np.count_nonzero((raw.reader >= 0) & (reader_trust(raw) == 0) & (raw.exams.trust == 1))
                   for raw in (both_ways, one_way)]
    assert t1_reads_t2[0] > 10 and t1_reads_t2[1] == 0
    for raw in (both_ways, one_way):
        read = raw.reader >= 0
        t_reader, t_exam = reader_trust(raw), raw.exams.trust
        cross = read & (t_reader != t_exam)
        assert np.count_nonzero(cross & (t_exam == 0)) > 10
        assert np.all(raw.route[cross] == BROKERED) and np.all(raw.route[read & ~cross] == CORE)
        for e in np.flatnonzero(read):
            r = raw.reporters[raw.reader[e]]
            assert r.may_read(int(raw.exams.modality[e]), int(raw.exams.band[e]), int(raw.exams.subspecialty[e]),
                              int(t_exam[e]))
        # pooled has no transfer overhead
        assert np.allclose(raw.done_at[read] - raw.left_at[read],
                           raw.exams.work_hours[read] / reader_speed(raw)[read])


# -- brokered routing and the broker --------------------------------------------------------------
OVERHEAD_MINUTES = 4.0


@pytest.fixture(scope="module")
def brokered():
    data = imbalanced_data("brokered", weeks=1, t1_per_hour=1.5, t2_per_hour=0.2, t1_staff=1, t2_staff=2,
                           backlog=(200, 0))
    data["policy"]["broker"] = {"cadence_hours": 2.0, "transfer_overhead_minutes": OVERHEAD_MINUTES}
    engine, raw = run_engine(build(data))
    return engine, raw, intervention(engine, TheBroker)


def test_broker_grants_quotas_from_the_overloaded_to_the_idle_trust(brokered):
    engine, raw, broker = brokered
    assert broker.moves
    assert any(donor == 0 and receiver == 1 and n > 0 for _, donor, receiver, n in broker.moves)
    moved = raw.route == BROKERED
    assert np.count_nonzero(moved & (raw.exams.trust == 0) & (reader_trust(raw) == 1)) > 20
    assert np.all(reader_trust(raw)[moved] != raw.exams.trust[moved])
    assert np.all(raw.route[(raw.reader >= 0) & ~moved] == CORE)


def test_transfers_never_exceed_the_quota_between_rebalancings(brokered):
    """A pair's borrowed reading hours in a window stay within its quota (in hours), plus the one
    exam whose start used the last of it."""
    engine, raw, broker = brokered
    cadence = engine.scenario.policy.broker.cadence_hours
    granted = {(t, d, r): h for t, d, r, h in broker.moves}
    rebalancings = np.arange(0.0, engine.scenario.horizon_hours, cadence)
    assert {t for t, *_ in broker.moves} <= set(rebalancings.tolist())
    moved = raw.route == BROKERED
    window = np.searchsorted(rebalancings, raw.left_at[moved], side="right") - 1
    hours = (raw.done_at - raw.left_at)[moved]
    used: dict[tuple, list[float]] = {}
    for key, h in zip(zip(window.tolist(), raw.exams.trust[moved].tolist(), reader_trust(raw)[moved].tolist()), hours):
        used.setdefault(key, []).append(h)
    over = {(rebalancings[k], d, r): (sum(h), granted.get((rebalancings[k], d, r), 0.0))
            for (k, d, r), h in used.items() if sum(h) - max(h) >= granted.get((rebalancings[k], d, r), 0.0) - 1e-9}
    assert not over, over
    assert max(len(h) for h in used.values()) > 1  # the check is not vacuous


def test_transfer_overhead_is_added_to_reading_time(brokered):
    _, raw, _ = brokered
    read = raw.reader >= 0
    extra = raw.done_at - raw.left_at - raw.exams.work_hours / reader_speed(raw)
    moved = read & (raw.route == BROKERED)
    assert np.count_nonzero(moved) > 0
    assert np.allclose(extra[moved], OVERHEAD_MINUTES / 60, rtol=0, atol=1e-9)
    assert np.allclose(extra[read & (raw.route == CORE)], 0.0, rtol=0, atol=1e-9)


def test_balanced_trusts_move_nothing():
    # both trusts staffed 24/7 far above their load: the backlog never exceeds planned capacity
    data = imbalanced_data("brokered", weeks=1, t1_per_hour=0.3, t2_per_hour=0.3, t1_staff=3, t2_staff=3,
                           backlog=(0, 0))
    for group in data["staff"]:
        group["sessions"] = [{"days": ALL_DAYS, "start": "00:00", "end": "24:00"}]
    engine, raw = run_engine(build(data))
    assert intervention(engine, TheBroker).moves == []
    assert np.count_nonzero(raw.reader >= 0) > 50
    assert not np.any(raw.route == BROKERED)


def test_broker_moves_nothing_below_the_minimum_transfer():
    data = imbalanced_data("brokered", weeks=1, backlog=(200, 0))
    data["policy"]["broker"] = {"min_transfer_hours": 1e6}
    engine, raw = run_engine(build(data))
    assert intervention(engine, TheBroker).moves == []
    assert not np.any(raw.route == BROKERED)


def test_broker_refuses_a_non_brokered_routing():
    engine = Engine(build(imbalanced_data("pooled")), SEED, 0)
    with pytest.raises(TypeError, match="brokered"):
        TheBroker(engine.scenario.policy.broker).start(engine)


def idle_receiver_data() -> dict:
    """T1: backlog, no reporters; T2: one reporter on duty 24/7 with almost no work of its own."""
    data = imbalanced_data("brokered", weeks=1, t1_per_hour=1.0, t2_per_hour=0.02, t1_staff=0, t2_staff=1,
                           backlog=(100, 0))
    data["staff"][1]["sessions"] = [{"days": ALL_DAYS, "start": "00:00", "end": "24:00"}]
    return data


def test_idle_receiver_reads_work_as_soon_as_the_broker_opens_it():
    engine, raw = run_engine(build(idle_receiver_data()), seed=1)
    moves = intervention(engine, TheBroker).moves
    assert moves and moves[0][:3] == (0, 0, 1)
    moved = raw.route == BROKERED
    assert np.nanmin(raw.left_at[moved]) < 1.0  # seed 1: 31.07


def test_brokered_runs_with_a_trust_that_has_no_exams():
    data = imbalanced_data("brokered", weeks=1, backlog=(20, 0))
    data["trusts"][1]["demand_multiplier"] = 0.0  # T2: no demand, no backlog
    raw = simulate(build(data), SEED, 0)
    assert np.any(raw.reader >= 0)


def test_agreement_reads_do_not_use_the_broker_quota(monkeypatch):
    data = imbalanced_data("brokered", weeks=1, t1_per_hour=2.0, t2_per_hour=0.1, t1_staff=0, t2_staff=1,
                           backlog=(300, 0))
    data["staff"].append({**data["staff"][1], "name": "neuro", "credentialed_trusts": []})
    data["agreements"] = [{"name": "neuro cover", "readers": "neuro", "reader_trust": "T2", "trust": "T1",
                           "modalities": ["XR"], "subspecialties": ["neuro"], "max_band": 2}]
    calls = []
    original = TheBroker._cross_read
    monkeypatch.setattr(TheBroker, "_cross_read",
                        lambda self, d, r, h: (calls.append((d, r)), original(self, d, r, h)))
    raw = simulate(build(data), 1, 0)
    by_agreement = np.array([raw.reporters[i].group == "neuro" if i >= 0 else False for i in raw.reader])
    assert np.count_nonzero(by_agreement) > 0
    borrowed = np.count_nonzero((raw.route == BROKERED) & ~by_agreement)
    assert len(calls) == borrowed  # seed 1: 283 quota calls for 170 borrowed reads


def test_brokered_groups_interleave_own_work_and_borrowed_lists_by_priority():
    engine = Engine(build(imbalanced_data("brokered")), SEED, 0)
    assert isinstance(engine.routing, BrokeredRouting)
    routing, wl = engine.routing, engine.worklists
    urgencies = engine.scenario.urgencies
    for index, reporter in enumerate(engine.reporters):
        groups = engine.candidate_queues(index)
        flags = routing.borrowed_groups(engine, index)
        own = [g for g, lent in zip(groups, flags) if not lent]
        assert own and {wl.q_trust[q] for g in own for q in g} == {reporter.home_trust}
        assert all(g == [] for g, lent in zip(groups, flags) if lent)  # closed until the broker opens them
        # a donor's urgent work comes before the reader's own routine work
        assert flags != sorted(flags)  # a borrowed (True) list stands before an own (False) group
        order = [urgencies[wl.q_urgency[g[0]]].priority if not lent else
                 next(k[2] for k, live in routing.shared.items() if live is g) for g, lent in zip(groups, flags)]
        assert order == sorted(order)
    assert {(k[0], k[1]) for k in routing.borrowable} == {(0, 1), (1, 0)}
    for key, queues in routing.borrowable.items():
        assert queues and {wl.q_trust[q] for q in queues} == {key[0]}
    routing.open(0, 1)
    assert all(live and {wl.q_trust[q] for q in live} == {0} for k, live in routing.shared.items() if k[0] == 1)
    assert all(not live for k, live in routing.shared.items() if k[0] == 0)
    routing.close(0, 1)
    assert all(not live for live in routing.shared.values())


def test_reopen_leaves_the_lists_as_closing_every_pair_then_opening_one_at_a_time():
    """The broker's hourly `reopen` writes only the live lists whose content changes; the lists (their
    order breaks ties in picks), the open pairs and the reporters to wake, in order, are those of closing
    every open pair and opening the granted ones one at a time."""
    scn = load_scenario("params/scenarios/brokered.toml").with_changes({"horizon_weeks": 1})
    one_by_one, at_once = Engine(scn, SEED, 0), Engine(scn, SEED, 0)
    for engine in (one_by_one, at_once):
        for index in range(len(engine.reporters)):
            engine.candidate_queues(index)
    pairs = list(one_by_one.routing._keys_of_pair)
    rng = np.random.default_rng(5)
    chosen: list[tuple[int, int]] = []
    for step in range(60):
        if rng.random() < 0.6:  # otherwise the same pairs again, as most hours
            chosen = [pairs[i] for i in rng.permutation(len(pairs))[:rng.integers(0, 6)]]
        if chosen and rng.random() < 0.3:  # a used-up quota closes a pair between rebalancings
            for engine in (one_by_one, at_once):
                engine.routing.close(*chosen[0])
        for pair in list(one_by_one.routing.open_pairs):
            one_by_one.routing.close(*pair)
        woken = [one_by_one.routing.open(*pair) for pair in chosen]
        assert at_once.routing.reopen(chosen) == woken
        assert at_once.routing.open_pairs == one_by_one.routing.open_pairs == set(chosen)
        assert list(at_once.routing.shared.values()) == list(one_by_one.routing.shared.values()), step


def test_plans_scan_exactly_the_borrowed_lists_holding_queues():
    """Verification: a reporter's plan leaves out its borrowed lists while they are empty and takes them back
    when the broker opens work in them (open, reopen, a closing quota), keeping preference order; reporters
    with the same groups share one plan, and a list the broker adds queues to loses its floor."""
    scn = load_scenario("params/scenarios/brokered.toml").with_changes({"horizon_weeks": 1})
    engine = Engine(scn, SEED, 0)
    routing = engine.routing
    plans, fulls = [], []
    for index in range(len(engine.reporters)):
        groups = engine.candidate_queues(index)
        flags = engine.borrowed_flags(index, groups)
        plans.append(engine._plan(groups, flags))
        fulls.append(list(zip(groups, engine.group_ids(groups, flags))))
    assert len({id(plan) for plan in plans}) < len(plans) / 5  # shared: 337 reporters, a few dozen plans
    for plan, full in zip(plans, fulls):
        assert [g for _, g in plan] == [g for _, g in full if g >= 0]  # nothing open yet: own groups only
    pairs = list(routing._keys_of_pair)
    rng = np.random.default_rng(11)
    left_out = taken_back = 0
    for step in range(80):
        if rng.random() < 0.5:
            routing.reopen([pairs[i] for i in rng.permutation(len(pairs))[:rng.integers(0, 8)]])
        elif routing.open_pairs and rng.random() < 0.5:
            routing.close(*sorted(routing.open_pairs)[0])
        else:
            pair = pairs[rng.integers(len(pairs))]
            engine.group_floor[:] = [0.0] * len(engine.group_floor)
            was_open = pair in routing.open_pairs
            routing.open(*pair)
            for live, _ in [] if was_open else routing._lending(pair)[0]:
                assert engine.group_floor[engine._borrowed_id[id(live)]] == -np.inf
        for plan, full in zip(plans, fulls):
            expected = [g for group, g in full if g >= 0 or group]
            assert [g for _, g in plan] == expected, step
            assert all(group is full_group for (group, g), (full_group, h) in zip(plan, full) if g < 0 and g == h)
            borrowed = sum(1 for _, g in full if g < 0)
            left_out += borrowed - sum(1 for _, g in plan if g < 0)
            taken_back += sum(1 for _, g in plan if g < 0)
    assert left_out > 0 and taken_back > 0  # both ways exercised


def test_planned_capacity_of_each_window_is_its_direct_interpolation():
    """Planned hours are worked out for a block of windows ahead (the broker's clock adding its cadence);
    each is exactly the window's own interpolation, also when the clock leaves the predicted times."""
    engine = Engine(load_scenario("params/scenarios/brokered.toml").with_changes({"horizon_weeks": 1}), SEED, 0)
    capacity = _PlannedCapacity(engine, 0.2, 5.3)
    now = 0.0
    seen: set[float] = set()
    for step in range(800):  # across blocks, within the week
        if step in (300, 301, 520):
            now += 0.05  # off the predicted clock
        planned = capacity.planned(now)
        assert planned == capacity._direct(now, now + 5.3), step
        seen.update(planned)
        now += 0.2
    assert len(seen) > 100  # the windows' planned hours vary (the check is not vacuous)


# -- home reporting -------------------------------------------------------------------------------
EVENINGS = [{"days": WEEKDAYS, "start": "18:00", "end": "21:00"}, {"days": ["Sat"], "start": "09:00", "end": "12:00"}]


def home_data(weeks: float = 4, backlog: tuple[int, int] = (80, 10), **home) -> dict:
    """T1's three reporters have home workstations and one leave week each; T2's reporter has none."""
    data = two_trust_data(weeks=weeks, outsourcing=False, backlog=backlog, t1_staff=3)
    data["staff"][0].update(home_workstation=True, leave_weeks_per_year=13.0)
    data["home_reporting"] = {"enabled": True, "backlog_threshold_exams": 5, "uptake_probability": 1.0,
                              "sessions": EVENINGS, **home}
    data["finance"] = {"insourcing_tariff": {"XR": [30.0, 55.0]}, "commissioner_income": {"XR": [40.0, 60.0]}}
    return data


def waiting_bounds(raw, trust: int, at: float) -> tuple[int, int]:
    """Exams of `trust` waiting at time `at`: (reads starting exactly then excluded, included)."""
    ex = raw.exams
    acquired = (ex.trust == trust) & (ex.arrival <= at)
    left = np.where(np.isnan(raw.left_at), np.inf, raw.left_at)
    return int(np.count_nonzero(acquired & (left > at))), int(np.count_nonzero(acquired & (left >= at)))


def test_offer_slots_are_the_weekly_slots_in_absolute_hours():
    config = HomeReporting(sessions=(Session(days=("Mon", "Wed"), start="18:00", end="21:30"),),
                           backlog_threshold_exams=0)
    assert offer_slots(config, 1.3 * HOURS_PER_WEEK) == [(18.0, 21.5), (66.0, 69.5), (186.0, 189.5)]
    assert offer_slots(config, 188.0) == [(18.0, 21.5), (66.0, 69.5), (186.0, 188.0)]  # cut at the horizon


@pytest.fixture(scope="module")
def home_run():
    engine, raw = run_engine(build(home_data()))
    return engine, raw, intervention(engine, HomeSessions)


def test_home_sessions_only_in_offered_slots_for_home_workstations_outside_leave(home_run):
    engine, raw, home = home_run
    scn = engine.scenario
    slots = set(offer_slots(scn.home_reporting, scn.horizon_hours))
    assert home.sessions
    for index, start, end in home.sessions:
        reporter = raw.reporters[index]
        assert (start, end) in slots
        assert reporter.home_workstation and reporter.home_trust == 0
        assert int(start // HOURS_PER_WEEK) not in reporter.leave_weeks
    assert any(r.leave_weeks for r in raw.reporters if r.home_workstation)  # leave exists, so the check bites
    # every home read starts inside a session its reader took
    home_reads = np.flatnonzero(raw.route == HOME)
    assert len(home_reads) > 10
    taken = {}
    for index, start, end in home.sessions:
        taken.setdefault(index, []).append((start, end))
    for e in home_reads:
        assert inside([raw.left_at[e]], taken[raw.reader[e]])[0]


def test_home_sessions_start_exactly_when_the_backlog_exceeds_the_threshold(home_run):
    engine, raw, home = home_run
    scn = engine.scenario
    threshold = scn.home_reporting.backlog_threshold_exams
    takers = [i for i, r in enumerate(raw.reporters) if r.home_workstation]
    taken = {(start, i) for i, start, _ in home.sessions}
    offered = skipped = 0
    for start, _ in offer_slots(scn.home_reporting, scn.horizon_hours):
        low, high = waiting_bounds(raw, 0, start)
        for i in takers:
            on_leave = int(start // HOURS_PER_WEEK) in raw.reporters[i].leave_weeks
            if low > threshold and not on_leave:  # uptake 1: everybody available takes it
                assert (start, i) in taken
                offered += 1
            if high <= threshold or on_leave:
                assert (start, i) not in taken
                skipped += high <= threshold
    assert offered > 0 and skipped > 0  # both branches happen in this run


def test_named_participants_take_home_sessions_instead_of_workstation_holders():
    # a funded pilot: T2's reporter, without a workstation, is named; T1's workstation holders are not
    engine, raw = run_engine(build(home_data(weeks=2, backlog=(80, 80), participants=["T2-rad-001"])))
    sessions = intervention(engine, HomeSessions).sessions
    assert sessions and {raw.reporters[i].reporter_id for i, _, _ in sessions} == {"T2-rad-001"}
    assert not raw.reporters[sessions[0][0]].home_workstation
    home = raw.route == HOME
    assert np.count_nonzero(home) > 0 and set(raw.reader[home]) == {sessions[0][0]}


def test_no_home_reads_when_the_threshold_exceeds_any_possible_backlog():
    scn = build(home_data())
    scn = scn.with_changes({"home_reporting.backlog_threshold_exams": 10**6})
    engine, raw = run_engine(scn)
    assert intervention(engine, HomeSessions).sessions == []
    assert not np.any(raw.route == HOME)


@pytest.mark.parametrize("curve, multiplier, expected", [
    ((), 3.0, 0.35),  # no curve: uptake_probability whatever the tariff
    (((1.0, 0.2), (2.0, 0.6)), 1.5, 0.4),
    (((2.0, 0.6), (1.0, 0.2)), 1.25, 0.3),  # points in any order
    (((1.0, 0.2), (2.0, 0.6)), 0.5, 0.2),  # held flat outside the points
    (((1.0, 0.2), (2.0, 0.6)), 3.0, 0.6),
    (((1.0, 0.2), (1.5, 0.8), (3.0, 0.9)), 2.0, 0.8 + 0.1 / 3),
])
def test_uptake_curve_interpolation(curve, multiplier, expected):
    config = HomeReporting(sessions=(Session(days=("Mon",), start="18:00", end="20:00"),), backlog_threshold_exams=0,
                           uptake_probability=0.35, uptake_curve=curve, tariff_multiplier=multiplier)
    assert config.uptake() == pytest.approx(expected, abs=1e-12)


def test_reading_time_factor_scales_home_reads_only():
    engine, raw = run_engine(build(home_data(weeks=2, reading_time_factor=1.5)))
    read = raw.reader >= 0
    ratio = (raw.done_at - raw.left_at) * reader_speed(raw) / raw.exams.work_hours
    assert np.count_nonzero(raw.route == HOME) > 10
    assert np.allclose(ratio[raw.route == HOME], 1.5)
    assert np.allclose(ratio[read & (raw.route != HOME)], 1.0)


def test_uptake_draws_are_common_random_numbers():
    # a flat uptake curve: the tariff multiplier changes the price, not the uptake
    curve = [[0.5, 0.5], [3.0, 0.5]]
    runs = {}
    for multiplier in (1.0, 2.0):
        scn = build(home_data(weeks=2, uptake_curve=curve, tariff_multiplier=multiplier))
        engine, raw = run_engine(scn)
        runs[multiplier] = (intervention(engine, HomeSessions).sessions, raw)
    (sessions_1, raw_1), (sessions_2, raw_2) = runs[1.0], runs[2.0]
    assert sessions_1 and sessions_1 == sessions_2
    assert np.array_equal(raw_1.reader, raw_2.reader) and np.array_equal(raw_1.route, raw_2.route)
    home = raw_1.route == HOME
    assert np.allclose(outcome(raw_2).cost[home], 2 * outcome(raw_1).cost[home])


def test_more_uptake_takes_a_superset_of_sessions():
    # a backlog no session can clear keeps every slot offered; draws are fixed per reporter and slot
    taken = {}
    for uptake in (0.3, 0.7):
        engine, _ = run_engine(build(home_data(weeks=2, backlog=(3000, 10), backlog_threshold_exams=0,
                                               uptake_probability=uptake)))
        taken[uptake] = set(intervention(engine, HomeSessions).sessions)
    assert taken[0.3] and taken[0.3] < taken[0.7]


def test_home_session_never_overlaps_a_core_read_in_hand():
    data = two_trust_data(weeks=1, outsourcing=False, t1_per_hour=1.0, t2_per_hour=0.5, t1_staff=1, t2_staff=1,
                          backlog=(300, 0))
    data["staff"][0]["home_workstation"] = True
    data["home_reporting"] = {"enabled": True, "backlog_threshold_exams": 0, "uptake_probability": 1.0,
                              "sessions": [{"days": WEEKDAYS, "start": "17:00", "end": "20:00"}]}
    data["finance"] = {"insourcing_tariff": {"XR": [30.0, 50.0]}}
    raw = simulate(build(data), 1, 0)
    mine = np.flatnonzero(raw.reader == 0)
    order = mine[np.argsort(raw.left_at[mine])]
    # seed 1: core read 16.68-17.01 h, then a home read starts at 17.00 h (and 4 more such overlaps)
    assert np.all(raw.left_at[order][1:] >= raw.done_at[order][:-1])


# -- IT outages -----------------------------------------------------------------------------------
OUTAGES = [{"name": "pacs", "scope": "all", "mtbf_hours": 20.0, "mttr_hours": 3.0},
           {"name": "vpn", "scope": "home", "mtbf_hours": 8.0, "mttr_hours": 4.0}]


def test_outage_intervals_are_deterministic_per_name_and_stream():
    data = home_data(weeks=3)
    with_both = build(data, outages=OUTAGES)
    only_pacs = build(data, outages=OUTAGES[:1])
    renamed = build(data, outages=[{**OUTAGES[0], "name": "pacs-2"}])
    first = outage_intervals(with_both, 1, 0)
    assert first == outage_intervals(with_both, 1, 0)
    assert first["all"] and first["home"]
    # the PACS outage is drawn from its own named stream: adding the VPN outage leaves it alone
    assert first["all"] == outage_intervals(only_pacs, 1, 0)["all"]
    assert outage_intervals(only_pacs, 1, 0)["home"] == first["all"]  # "all" outages stop home sessions too
    assert outage_intervals(renamed, 1, 0)["all"] != first["all"]
    assert outage_intervals(with_both, 1, 1)["all"] != first["all"]
    assert outage_intervals(with_both, 2, 0)["all"] != first["all"]
    # scopes: "home" is the union of both; spans sorted, disjoint and inside the horizon
    for scope, spans in first.items():
        assert all(0 < s < e <= with_both.horizon_hours for s, e in spans), scope
        assert all(e1 < s2 for (_, e1), (s2, _) in zip(spans, spans[1:])), scope
    covered = lambda spans, t: any(s <= t < e for s, e in spans)  # noqa: E731
    for s, e in first["all"]:
        assert covered(first["home"], (s + e) / 2)
    assert outage_intervals(build(data), 1, 0) == {"all": (), "home": ()}


def test_no_read_starts_inside_an_outage_that_covers_it():
    scn = build(home_data(weeks=3), outages=OUTAGES)
    engine, raw = run_engine(scn)
    assert raw.outages == outage_intervals(scn, SEED, 0)
    on_site = (raw.route == CORE) | (raw.route == BROKERED)
    home = raw.route == HOME
    assert np.count_nonzero(on_site) > 100 and np.count_nonzero(home) > 10
    assert not inside(raw.left_at[on_site], raw.outages["all"]).any()
    assert not inside(raw.left_at[home], raw.outages["home"]).any()
    # the outages did cut into reporting time, so the check is not vacuous
    duty = [span for r in raw.reporters for span in r.intervals]
    assert any(s < f and b < e for s, e in raw.outages["all"] for b, f in duty)
    sessions = intervention(engine, HomeSessions).sessions
    assert any(s < f and b < e for s, e in raw.outages["home"] for _, b, f in sessions)


def test_no_read_starts_a_rounding_error_before_an_outage_ends():
    scn = build(mmc_data(2.0, 3, servers=3, weeks=0.1, warmup_weeks=0),
                outages=[{"name": "pacs", "scope": "all", "mtbf_hours": 0.5, "mttr_hours": 3.0}])
    raw = simulate(scn, 242, 0)
    assert not inside(raw.left_at[raw.reader >= 0], raw.outages["all"]).any()


# -- outsourcing ----------------------------------------------------------------------------------
def test_outsourcing_cap_urgencies_and_never_read_in_house():
    data = two_trust_data(weeks=2, backlog=(150, 80), daily_cap=3)
    data["outsourcing"].update(backlog_threshold_exams=0, check_every_hours=2.5)
    scn = build(data)
    raw = simulate(scn, SEED, 0)
    out = raw.route == OUTSOURCED
    assert np.all(raw.reader[out] == -1)
    assert np.all(raw.exams.urgency[out] == 1)  # OP only; ED is never sent
    assert np.all(raw.done_at[out] > raw.left_at[out])
    day = (raw.left_at[out] // 24).astype(int)
    per_trust_day = np.zeros((2, int(day.max()) + 1), dtype=int)
    np.add.at(per_trust_day, (raw.exams.trust[out], day), 1)
    assert per_trust_day.max() == 3  # the cap binds and is never exceeded
    assert np.count_nonzero(per_trust_day == 3) >= 10


# -- finance --------------------------------------------------------------------------------------
HOURLY = {"T1": 80.0, "T2": 60.0}
INSOURCING = {"XR": [30.0, 55.0]}
INTER_TRUST = {"XR": [10.0, 20.0]}
INCOME = {"XR": [40.0, 60.0]}
PRICE = {"XR": [20.0, 45.0]}
URGENCY_FACTOR = {"ED": 2.0, "OP": 1.5}
TARIFF_MULTIPLIER = 1.25
PREMIUM_PA_HOURS = 2.5  # not the default 3 h, so the test sees that the scenario's own PA length is used


@pytest.fixture(scope="module")
def every_route():
    """Pooled routing with home sessions, outsourcing and every tariff set: all four routes occur."""
    data = imbalanced_data("pooled", weeks=2, backlog=(150, 20))
    for group in data["staff"]:
        group["hourly_cost"] = HOURLY[group["trust"]]
    data["staff"][0]["home_workstation"] = True
    data["home_reporting"] = {"enabled": True, "backlog_threshold_exams": 10, "uptake_probability": 0.8,
                              "tariff_multiplier": TARIFF_MULTIPLIER, "sessions": EVENINGS}
    data["outsourcing"] = {"enabled": True, "age_threshold_hours": 48, "backlog_threshold_exams": 100,
                           "urgencies": ["ED", "OP"], "daily_cap": 4, "price": PRICE,
                           "urgency_price_factor": URGENCY_FACTOR,
                           "turnaround_hours": {"kind": "exponential", "mean": 24}}
    data["finance"] = {"insourcing_tariff": INSOURCING, "inter_trust_charge": INTER_TRUST,
                       "commissioner_income": INCOME, "premium_pa_hours": PREMIUM_PA_HOURS}
    scn = build(data)
    raw = simulate(scn, SEED, 0)
    tidy = metrics_table(raw)
    totals = tidy[(tidy.modality == "ALL") & (tidy.urgency == "ALL")].pivot(index="trust", columns="metric",
                                                                               values="value")
    return scn, raw, outcome(raw), totals


def expected_money(scn, raw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-exam cost, inter-trust charge and commissioner income straight from the tariffs (XR only).

    Per exam: salaried reading time for core AND brokered reads (the reader's hourly cost; part
    of the cost of capacity, not extra spend), the insourcing tariff x multiplier for home reads,
    the price x urgency factor when outsourced. The inter-trust charge is a transfer, paid per
    brokered read, never part of the cost. Commissioner income is paid for every reported exam.
    """
    ex, horizon = raw.exams, scn.horizon_hours
    band = ex.band.astype(int)
    urgency = [u.code for u in scn.urgencies]
    reported = (raw.reader >= 0) & (raw.done_at <= horizon)
    cost, charge, income = np.zeros(len(ex)), np.zeros(len(ex)), np.zeros(len(ex))
    for e in range(len(ex)):
        route, b = raw.route[e], band[e]
        if route in (CORE, BROKERED) and reported[e]:
            cost[e] = (raw.done_at[e] - raw.left_at[e]) * raw.reporters[raw.reader[e]].hourly_cost
            income[e] = INCOME["XR"][b]
            if route == BROKERED:
                charge[e] = INTER_TRUST["XR"][b]
        elif route == HOME and reported[e]:
            cost[e] = INSOURCING["XR"][b] * TARIFF_MULTIPLIER
            income[e] = INCOME["XR"][b]
        elif route == OUTSOURCED:
            cost[e] = PRICE["XR"][b] * URGENCY_FACTOR[urgency[ex.urgency[e]]]
            income[e] = INCOME["XR"][b] if raw.done_at[e] <= horizon else 0.0
    return cost, charge, income


def test_every_route_occurs(every_route):
    _, raw, oc, _ = every_route
    for route in (CORE, HOME, BROKERED, OUTSOURCED, UNREPORTED):
        assert np.count_nonzero(oc.route == route) > 5, route
    assert len(np.unique(raw.exams.urgency[raw.route == OUTSOURCED])) == 2  # both urgency factors used


def test_per_exam_cost_reconciles_with_the_tariffs(every_route):
    scn, raw, oc, totals = every_route
    cost, charge, income = expected_money(scn, raw)
    assert np.allclose(oc.cost, cost, rtol=1e-12, atol=1e-9)
    assert np.allclose(oc.charge, charge, rtol=1e-12, atol=1e-9)
    assert np.allclose(oc.income, income, rtol=1e-12, atol=1e-9)
    for name, route in (("cost_core", CORE), ("cost_home", HOME), ("cost_brokered", BROKERED),
                        ("cost_outsourced", OUTSOURCED)):
        assert totals.loc["ALL", name] == pytest.approx(cost[oc.route == route].sum(), rel=1e-12), name
    assert totals.loc["ALL", "cost_brokered"] > 0
    # salaried capacity is paid by the session hour, read or idle; charges are transfers, never in the cost
    capacity = sum(r.session_hours * r.hourly_cost for r in raw.reporters)
    marginal = cost[(oc.route == HOME) | (oc.route == OUTSOURCED)].sum()
    assert totals.loc["ALL", "cost_capacity"] == pytest.approx(capacity, rel=1e-12)
    assert totals.loc["ALL", "cost_capacity"] > totals.loc["ALL", "cost_core"] + totals.loc["ALL", "cost_brokered"]
    assert totals.loc["ALL", "marginal_spend"] == pytest.approx(marginal, rel=1e-12)
    assert totals.loc["ALL", "cost_total"] == pytest.approx(capacity + marginal, rel=1e-12)
    assert totals.loc["ALL", "net_cost"] == pytest.approx(totals.loc["ALL", "cost_total"], rel=1e-12)
    assert totals.loc["ALL", "commissioner_income"] == pytest.approx(income.sum(), rel=1e-12)


def test_inter_trust_charges_balance(every_route):
    scn, raw, oc, totals = every_route
    _, charge, _ = expected_money(scn, raw)
    for ti, code in enumerate(scn.trust_codes):
        assert totals.loc[code, "inter_trust_paid"] == pytest.approx(charge[raw.exams.trust == ti].sum())
        assert totals.loc[code, "inter_trust_received"] == pytest.approx(charge[oc.reading_trust == ti].sum())
    assert totals.loc["ALL", "inter_trust_paid"] == pytest.approx(totals.loc["ALL", "inter_trust_received"])
    assert totals.loc["ALL", "inter_trust_paid"] == pytest.approx(charge.sum()) and charge.sum() > 0


ADDITIVE = ["initial_backlog", "arrivals", "reported", "outsourced", "unreported_end", "reported_core",
            "reported_home", "reported_brokered", "reading_hours", "home_reading_hours", "cost_core", "cost_home",
            "cost_brokered", "cost_outsourced", "cost_total", "counterfactual_cost", "saving_vs_outsourcing",
            "commissioner_income", "inter_trust_paid", "inter_trust_received", "wte_gained_home", "teleradiology",
            "cost_teleradiology", "marginal_spend", "cost_capacity", "net_cost"]


def test_per_trust_metrics_sum_to_the_consortium(every_route):
    scn, _, _, totals = every_route
    for metric in ADDITIVE:
        assert totals.loc[scn.trust_codes, metric].sum() == pytest.approx(totals.loc["ALL", metric], rel=1e-12), metric


def test_wte_gained_from_home_reporting(every_route):
    scn, raw, oc, totals = every_route
    home = oc.route == HOME
    hours = (raw.done_at[home] - raw.left_at[home]).sum()
    assert hours > 0
    assert totals.loc["ALL", "home_reading_hours"] == pytest.approx(hours)
    # home sessions are premium time: 1 WTE = 10 premium-time PAs a week (sim.scenario.Finance)
    assert totals.loc["ALL", "wte_gained_home"] == pytest.approx(hours / (10 * PREMIUM_PA_HOURS * scn.horizon_weeks))


# -- eligibility table ----------------------------------------------------------------------------
def test_eligibility_table_rows_by_basis():
    data = imbalanced_data("local")
    data["staff"][0].update(count=1, home_workstation=True)  # T1: full rights at home, credentialed for T2
    data["staff"][1].update(count=1, credentialed_trusts=[])  # T2: home, plus neuro band 1 at T1 by agreement
    data["agreements"] = [{"name": "neuro cover", "readers": "rad", "reader_trust": "T2", "trust": "T1",
                           "modalities": ["XR"], "subspecialties": ["neuro"], "max_band": 1}]
    scn = build(data)
    table = eligibility_table(scn, Engine(scn, SEED, 0).reporters)
    rows = {(r.reporter_id, r.trust, r.basis, r.subspecialty): (r.max_band, r.home_workstation)
            for r in table.itertuples()}
    assert rows == {
        ("T1-rad-001", "T1", "home", "general"): (2, True),
        ("T1-rad-001", "T1", "home", "neuro"): (2, True),
        ("T1-rad-001", "T2", "credential", "general"): (2, True),
        ("T1-rad-001", "T2", "credential", "neuro"): (2, True),
        ("T2-rad-001", "T2", "home", "general"): (2, False),
        ("T2-rad-001", "T2", "home", "neuro"): (2, False),
        ("T2-rad-001", "T1", "agreement", "neuro"): (1, False),
    }
    assert set(table["modality"]) == {"XR"} and len(table) == len(rows)


# -- validation -----------------------------------------------------------------------------------
def _no_workstation(data):
    data["home_reporting"] = {"enabled": True, "backlog_threshold_exams": 5, "sessions": EVENINGS}
    data["finance"]["insourcing_tariff"] = INSOURCING


def _no_insourcing_tariff(data):
    data["staff"][0]["home_workstation"] = True
    data["home_reporting"] = {"enabled": True, "backlog_threshold_exams": 5, "sessions": EVENINGS}


def _unknown_readers(data):
    data["agreements"] = [{"name": "x", "readers": "paeds", "reader_trust": "T1", "trust": "T2",
                           "modalities": ["XR"], "subspecialties": ["neuro"], "max_band": 1}]


def _unknown_participant(data):
    _no_insourcing_tariff(data)
    data["finance"]["insourcing_tariff"] = INSOURCING
    data["home_reporting"]["participants"] = ["rad", "T1-rad-009"]  # T1 has one reporter: T1-rad-001


def _policy_without_charge(kind):
    def mutate(data):
        data["policy"] = {"kind": kind}
        data["finance"] = {}
    return mutate


@pytest.mark.parametrize("mutate, field, words", [
    (_no_workstation, "home_reporting.enabled", "home_workstation"),
    (_no_insourcing_tariff, "finance.insourcing_tariff", "insourcing tariff"),
    (_policy_without_charge("pooled"), "finance.inter_trust_charge", "pooled policy"),
    (_policy_without_charge("brokered"), "finance.inter_trust_charge", "brokered policy"),
    (_unknown_readers, "agreements.0.readers", "no staff group 'paeds' at trust 'T1'"),
    (_unknown_participant, "home_reporting.participants", "'T1-rad-009' is neither a staff group nor a reporter id"),
], ids=["home-no-workstation", "home-no-tariff", "pooled-no-charge", "brokered-no-charge", "agreement-unknown-group",
        "home-unknown-participant"])
def test_policy_sections_are_validated(mutate, field, words):
    data = imbalanced_data("local")
    data["finance"] = {}
    mutate(data)
    with pytest.raises(ScenarioError) as caught:
        build(data)
    problems = dict(caught.value.problems)
    assert field in problems and words in problems[field], caught.value.problems
    assert field in str(caught.value)


def test_no_transfer_starts_after_its_pair_was_closed():
    data = two_trust_data(weeks=0.5, outsourcing=False, t1_per_hour=1.0, t2_per_hour=1.0, backlog=(0, 0))
    data["urgencies"] = [{"code": "U", "priority": 0, "target_hours": 2, "profile": "flat"},
                         {"code": "R", "priority": 1, "target_hours": 48, "profile": "office"}]
    data["demand"] = {"profiles": {"flat": [1.0] * 168,
                                   "office": [1.0 if 8 <= h % 24 < 18 else 0.2 for h in range(168)]}}
    data["modalities"][0].update(urgency_mix={"U": 0.25, "R": 0.75}, band_mix=[0.8, 0.2],
                                 reading_minutes={"1": {"kind": "exponential", "mean": 3},
                                                  "2": {"kind": "gamma", "mean": 20, "sd": 8}})
    data["staff"] = [{"name": "g0", "trust": "T1", "count": 1, "credentialed_trusts": ["T2"], "speed": 0.5,
                      "sessions": [{"days": ["Mon"], "start": "00:00", "end": "08:30"}],
                      "modalities": ["XR"], "max_band": 1, "subspecialties": ["general"]}]
    data["policy"] = {"kind": "brokered", "broker": {"cadence_hours": 0.5, "lookahead_hours": 8.0,
                                                     "transfer_overhead_minutes": 0.0, "min_transfer_hours": 0.0}}
    data["finance"] = {"inter_trust_charge": {"XR": [0.0, 0.0]}}
    del data["outsourcing"]
    engine, raw = run_engine(build(data), seed=0)
    cadence = 0.5
    granted = {(round(t / cadence), d, r) for t, d, r, n in intervention(engine, TheBroker).moves if n > 0}
    moved = np.flatnonzero(raw.route == BROKERED)
    assert len(moved) > 0
    windows = {(int(raw.left_at[e] // cadence), int(raw.exams.trust[e]), int(reader_trust(raw)[e])) for e in moved}
    assert windows <= granted, sorted(windows - granted)  # seed 0: (16, 1, 0), the read at 8.21 h


def test_flow_table_reconciles_with_the_metrics(every_route):
    """Who read what for whom adds up to the reported counts, the home spend and the transfers."""
    from sim.metrics import flow_table

    scn, raw, oc, totals = every_route
    flows = flow_table(raw, oc)
    assert set(flows.route) <= {"core", "home", "brokered"} and {"home", "brokered"} <= set(flows.route)
    by_owner = flows.groupby("owning_trust")
    for code in scn.trust_codes:
        mine = flows[flows.owning_trust == code]
        assert mine.exams.sum() == totals.loc[code, "reported"]
        assert mine[mine.route == "home"].paid_gbp.sum() == pytest.approx(totals.loc[code, "cost_home"])
        assert mine[mine.route == "brokered"].paid_gbp.sum() == pytest.approx(totals.loc[code, "inter_trust_paid"])
        read_here = flows[(flows.reading_trust == code) & (flows.route == "brokered")]
        assert read_here.paid_gbp.sum() == pytest.approx(totals.loc[code, "inter_trust_received"])
    assert len(by_owner) == len(scn.trust_codes)
    assert (flows[flows.route == "core"].owning_trust == flows[flows.route == "core"].reading_trust).all()
