"""Brokered routing and the broker: work moves from trusts in deficit to trusts with spare capacity.

Reporters read their own trust (and agreement work) and, interleaved by urgency priority, one
group of *borrowed* queues per other trust it is credentialed for and priority level (a donor's
ED work comes before the reader's own routine work); the groups are shared list objects
that the broker fills (opens) or empties (closes), so opening and closing costs the per-exam
loop nothing. Every `cadence_hours` the broker works out, per trust and skill class, the work to
cover over `lookahead_hours` (waiting plus a forecast of arrivals) against the trust's own
reporters' planned hours, and grants quotas in reading hours from deficits to other trusts'
spare hours of reporters who may read that class (see TheBroker). A transferred exam costs
`transfer_overhead_minutes` more to read, is charged at the inter-trust tariff, and uses its
reading hours of its pair's quota; a used-up quota closes the pair until the next rebalancing. Eligibility holds by construction: borrowed queues
are only those the reporter may read at the donor trust. A trust not yet live on the shared
system (`go_live`) neither gives nor receives work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim import _loops
from sim.policies.base import own_and_agreement_queues, queues_by_priority, readable_queues
from sim.policies.home import go_live_hours
from sim.scenario import Broker

if TYPE_CHECKING:
    from sim.model import Engine


class BrokeredRouting:
    name = "brokered"

    def __init__(self) -> None:
        # (donor trust, receiving trust, reporter's profile at the donor, priority level) -> the donor's queues
        self.borrowable: dict[tuple[int, int, int, int], list[int]] = {}
        # (receiving trust, profile, priority level, donors) -> the live list: queues of every donor open to
        # it, among the donors where its readers have that profile (readers credentialed for other trusts
        # hold other lists: a list never carries work of a trust some holder may not read)
        self.shared: dict[tuple[int, int, int, frozenset[int]], list[int]] = {}
        self.holders: dict[tuple[int, int, int, frozenset[int]], list[int]] = {}  # the same keys -> its readers
        self._lists_of: dict[tuple[int, int, int], list[tuple[int, int, int, frozenset[int]]]] = {}
        self.open_pairs: set[tuple[int, int]] = set()
        self._borrowed: dict[int, list[bool]] = {}
        # (donor, receiving trust) -> its keys of `borrowable`, in insertion order: opening or closing a
        # pair (hourly, for every pair) touches only its own entries
        self._keys_of_pair: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
        # set by the engine: called (live list, whether queues may have been added) after each change to a live list
        self.on_change = None
        # (donor, receiver) -> (live list, queues the pair lends to it) in the order `open` extends them, and
        # the reporters `open` wakes: fixed once every reporter's groups are built (see `reopen`)
        self._lent: dict[tuple[int, int], tuple[list[tuple[list[int], list[int]]], list[int]]] = {}
        # the pairs of the last `reopen`, while no pair has opened or closed since
        self._reopened: list[tuple[int, int]] | None = None

    def candidate_queues(self, engine: "Engine", reporter_index: int) -> list[list[int]]:
        """Own (and agreement) work and borrowed lists, interleaved by urgency priority: a donor's ED work
        lent to this reporter comes before its own routine work. One borrowed list per priority level
        holds the queues of every donor currently open to the reporter's trust."""
        reporter = engine.reporters[reporter_index]
        home = reporter.home_trust
        self._lent.clear()  # the lists and what pairs lend to them change below
        self._reopened = None
        priority = engine.queue_priority
        levels: dict[int, list[tuple[list[int], bool]]] = {}
        for group in queues_by_priority(engine, own_and_agreement_queues(engine, reporter_index)):
            levels.setdefault(priority[group[0]], []).append((group, False))
        mine: set[tuple[int, int, int, frozenset[int]]] = set()
        profile_at = engine.worklists.reporter_profile[reporter_index]
        donors_of: dict[int, set[int]] = {}  # the reporter's profile -> the donors where it has that profile
        for donor in reporter.credentialed_trusts - {home}:
            donors_of.setdefault(profile_at[donor], set()).add(donor)
        for donor in sorted(reporter.credentialed_trusts - {home}):
            profile = profile_at[donor]
            for group in queues_by_priority(engine, readable_queues(engine, reporter_index, {donor})):
                level = priority[group[0]]
                if (donor, home, profile, level) not in self.borrowable:
                    self._keys_of_pair.setdefault((donor, home), []).append((donor, home, profile, level))
                self.borrowable[(donor, home, profile, level)] = list(group)
                key = (home, profile, level, frozenset(donors_of[profile]))
                if key not in mine:
                    mine.add(key)
                    if key not in self.shared:
                        self.shared[key] = []
                        self._lists_of.setdefault(key[:3], []).append(key)
                    self.holders.setdefault(key, []).append(reporter_index)
                    levels.setdefault(level, []).append((self.shared[key], True))
        ordered = [entry for level in sorted(levels) for entry in levels[level]]
        self._borrowed[reporter_index] = [flag for _, flag in ordered]
        return [group for group, _ in ordered]

    def borrowed_groups(self, engine: "Engine", reporter_index: int) -> list[bool]:
        """Per candidate group: True for a borrowed list (the broker opens and closes work in it)."""
        return self._borrowed[reporter_index]

    def open(self, donor: int, receiver: int) -> list[int]:
        """Open the donor's work to the receiver's reporters; returns the reporters to wake."""
        if (donor, receiver) in self.open_pairs:
            return []
        self.open_pairs.add((donor, receiver))
        self._reopened = None
        woken: set[int] = set()
        for key in self._keys_of_pair.get((donor, receiver), ()):
            _, r, profile, level = key
            for live in self._lists_of[(r, profile, level)]:
                if donor in live[3]:
                    self.shared[live].extend(self.borrowable[key])
                    if self.on_change is not None:
                        self.on_change(self.shared[live], True)
                    woken.update(self.holders[live])
        return sorted(woken)

    def reopen(self, pairs: list[tuple[int, int]]) -> list[list[int]]:
        """Close every open pair and open `pairs`, in that order; returns per pair the reporters `open`
        would wake (the caller wakes them in that order).

        Each live list ends exactly as closing and opening one pair at a time would leave it (its order
        breaks ties in the engine's pick), but is written only where its content changes, and its floor
        (see `on_change`) is reset only then: an unchanged list's floor is still a lower bound on its heads.
        The broker does this every rebalancing, mostly regranting the pairs already open: when they are
        the same, in the same order, and no pair opened or closed since, every list already holds its content.
        """
        if pairs == self._reopened:
            return [self._lending(pair)[1] for pair in pairs]
        fill: dict[int, tuple[list[int], list[int]]] = {}  # id(live) -> (live list, its new content)
        for pair in pairs:
            for live, queues in self._lending(pair)[0]:
                entry = fill.get(id(live))
                if entry is None:
                    fill[id(live)] = (live, list(queues))
                else:
                    entry[1].extend(queues)
        for pair in self.open_pairs:  # only lists of open pairs hold work (`close` empties a pair's share)
            for live, _ in self._lending(pair)[0]:
                if live and id(live) not in fill:
                    live.clear()
                    if self.on_change is not None:
                        self.on_change(live, False)
        for live, content in fill.values():
            if live != content:
                live[:] = content
                if self.on_change is not None:
                    self.on_change(live, True)
        self.open_pairs.clear()
        self.open_pairs.update(pairs)
        self._reopened = list(pairs)
        return [self._lending(pair)[1] for pair in pairs]

    def _lending(self, pair: tuple[int, int]) -> tuple[list[tuple[list[int], list[int]]], list[int]]:
        """(live list, the donor's queues in it) in the order `open` extends them, and the reporters it wakes."""
        if pair not in self._lent:
            donor = pair[0]
            lent, woken = [], set()
            for key in self._keys_of_pair.get(pair, ()):
                _, r, profile, level = key
                for live in self._lists_of[(r, profile, level)]:
                    if donor in live[3]:
                        lent.append((self.shared[live], self.borrowable[key]))
                        woken.update(self.holders[live])
            self._lent[pair] = (lent, sorted(woken))
        return self._lent[pair]

    def close(self, donor: int, receiver: int) -> None:
        if (donor, receiver) not in self.open_pairs:
            return
        self.open_pairs.discard((donor, receiver))
        self._reopened = None
        for key in self._keys_of_pair.get((donor, receiver), ()):
            _, r, profile, level = key
            gone = set(self.borrowable[key])
            for shared_key in self._lists_of[(r, profile, level)]:
                if donor in shared_key[3]:
                    live = self.shared[shared_key]
                    kept = [q for q in live if q not in gone]
                    if len(kept) != len(live):
                        live[:] = kept
                        if self.on_change is not None:
                            self.on_change(live, False)


class TheBroker:
    """The brokerage intervention; works with BrokeredRouting (see the module docstring).

    Every `cadence_hours`, per trust and skill class (the set of reporter profiles that may read a
    queue), the work to cover over the next `lookahead_hours` is what is waiting now plus a
    forecast of what will arrive (the same window's arrivals just past: a persistence forecast).
    The trust's own reporters' planned session hours cover it, the most constrained classes first;
    what is left is a deficit, and unused hours of a profile are spare. Deficits are then matched
    with other live trusts' spare hours of profiles that may read that class there, largest first:
    each match adds to the pair's quota in reading hours. A borrowed read uses its reading hours
    of the quota; a used-up quota closes the pair until the next rebalancing.
    """

    name = "broker"

    def __init__(self, config: Broker):
        self.config = config
        self.quota: dict[tuple[int, int], float] = {}  # (donor, receiver) -> reading hours left
        self.moves: list[tuple[float, int, int, float]] = []  # (time, donor, receiver, hours granted)

    def start(self, engine: "Engine") -> None:
        routing = engine.routing
        if not isinstance(routing, BrokeredRouting):
            raise TypeError("the broker needs policy.kind = 'brokered'")
        for index in range(len(engine.reporters)):  # build every reporter's groups before the broker opens any
            engine.candidate_queues(index)
        self.routing = routing
        engine.on_cross_read = self._cross_read
        engine.env.process(self._run(engine))

    def records(self) -> dict[str, list[tuple]]:
        """Core-time quotas granted: (time, donor trust, receiving trust, reading hours)."""
        return {"grants": list(self.moves)}

    def _cross_read(self, donor: int, receiver: int, hours: float) -> None:
        if (donor, receiver) not in self.quota:  # not a transfer the broker granted
            return
        left = self.quota[(donor, receiver)] - hours
        self.quota[(donor, receiver)] = left
        if left <= 0:
            self.routing.close(donor, receiver)

    def _run(self, engine: "Engine"):
        cfg = self.config
        minimum = cfg.min_transfer_hours
        capacity = _PlannedCapacity(engine, cfg.cadence_hours, cfg.lookahead_hours)
        work = _QueueWork(engine, cfg.lookahead_hours, cfg.cadence_hours)
        live_from = go_live_hours(engine.scenario)
        candidates: dict[int, list[tuple[int, int]]] = {}  # donor -> (receiver, reader's profile there)
        for (d, r, p) in dict.fromkeys(key[:3] for key in self.routing.borrowable):
            candidates.setdefault(d, []).append((r, p))
        arithmetic = _Balance(work, capacity.keys, candidates).compiled(work)
        ptr = engine.worklists.ptr
        while True:
            now = engine.env.now
            live = (live_from <= now).tolist()  # plain bools: indexed in the matching loop
            # per (trust, profile) of capacity.keys: hours in [now, now + lookahead]
            granted = arithmetic.step(ptr, now, capacity.planned(now), live, minimum)
            opened = [(pair, hours) for pair, hours in granted.items() if not hours < minimum]
            self.quota.clear()
            self.quota.update(opened)
            # every pair closes and the granted ones reopen, in order (the lists' order breaks ties in picks)
            for (pair, hours), woken in zip(opened, self.routing.reopen([pair for pair, _ in opened])):
                engine.wake_all(woken)
                self.moves.append((now, pair[0], pair[1], hours))
            engine.next_wake_at = now + cfg.cadence_hours  # the time of the timeout below: nobody is woken before
            yield engine.env.timeout(cfg.cadence_hours)


class _Balance:
    """Each rebalancing's two steps: cover each trust's work with its own reporters' hours, most constrained
    skill class first, most work first (what is left is a deficit, unused hours of a profile are spare); then
    match the deficits, largest first, with other live trusts' spare hours, in candidate order, while a
    deficit is at least the minimum transfer.

    What does not change between rebalancings (which planned hours may cover each skill class, in what
    order classes are considered, which donor-receiver-profile candidates can ever match a deficit) is
    worked out once here; the hourly arithmetic is compiled (`compiled`: sim._loops.BrokerArithmetic, 7 us a
    rebalancing instead of 38 for the Python it replaced, tests/broker_reference.py, with the same grants). Skill
    classes are `work.groups` (trust, class members), indexed g; planned hours are lists in the order of
    `keys` (trust, profile), indexed k.
    """

    def __init__(self, work: "_QueueWork", keys: list[tuple[int, int]],
                 candidates: dict[int, list[tuple[int, int]]]):
        self.group_of_queue = work.group_of_queue
        self.n_groups = len(work.groups)
        self.n_keys = len(keys)
        key_index = {key: k for k, key in enumerate(keys)}
        own: dict[int, set[int]] = {}  # trust -> profiles with planned hours, added in the order of `keys`
        for t, p in keys:
            own.setdefault(t, set()).add(p)
        # per class, the planned hours that may cover it, in the iteration order of `members & own[t]`
        # (the same sets built the same way: the same order, which the stable sort by spare hours keeps for ties)
        self.own_keys = [[key_index[(t, p)] for p in members & own.get(t, set())] for t, members in work.groups]
        # the most constrained classes first (fewest profiles to cover them), then the most work: a stable
        # sort by work within each bucket of the same constraint, in class order, is the same order as one
        # sort by (constraint, -work)
        self.buckets = [[g for g in range(self.n_groups) if len(self.own_keys[g]) == n]
                        for n in sorted({len(ks) for ks in self.own_keys})]
        self.donor = [t for t, _ in work.groups]
        # per class, the (receiver, its planned hours' k, pair) that may take its deficit, in candidate order:
        # only profiles among the class's members with planned hours (no planned hours: never any spare)
        self.takers = [[(r, key_index[(r, p)], (t, r)) for r, p in candidates.get(t, ())
                        if p in members and (r, p) in key_index] for t, members in work.groups]

    def compiled(self, work: "_QueueWork") -> "_loops.BrokerArithmetic":
        """The hourly arithmetic on these structures and `work`'s queues: `step(ptr, now, plan, live, minimum)`
        returns the hours granted per (donor, receiver), in the order first granted."""
        pairs = list(dict.fromkeys(pair for row in self.takers for _, _, pair in row))
        pair_index = {pair: i for i, pair in enumerate(pairs)}
        return _loops.BrokerArithmetic(
            work.arrival, work.queue_of_exam, work.cumulative, work.q_start, work.history_length,
            self.group_of_queue, self.n_groups, self.n_keys, self.own_keys, self.buckets, self.donor,
            [[(r, k, pair_index[pair]) for r, k, pair in row] for row in self.takers], pairs)


class _QueueWork:
    """What the work to cover per queue is made of: reading hours (speed 1) waiting now, plus those that
    arrived over the last lookahead (the persistence forecast of the next one).

    Arrivals are followed in acquisition order with one pointer into the exam table (`queue_of_exam`), not
    a scan of every queue; `history_length` is how many rebalancings' arrivals the forecast keeps, plus one.
    """

    def __init__(self, engine: "Engine", lookahead: float, cadence: float):
        wl = engine.worklists
        self.arrival = engine.exams.arrival  # sorted by acquisition time
        starts = np.asarray(wl.q_start, dtype=np.int64)
        ends = np.asarray(wl.q_end, dtype=np.int64)  # sentinels
        # Queue q holds positions q_start[q]..q_end[q] (its sentinel), the next queue's follow, and the parked
        # segment (if any) comes after the last sentinel: each position's queue is a repeat, and each exam's a
        # lookup (a searchsorted of every exam costs ~6x as much); parked exams get a dummy queue (n_queues)
        sizes = np.r_[ends - starts + 1, len(wl.times) - (ends[-1] + 1 if len(ends) else 0)]
        self.queue_of_exam = np.repeat(np.arange(len(starts) + 1, dtype=np.int32), sizes)[wl.position_of_exam]
        self.q_start = starts
        self.cumulative = wl.cumulative_work
        self.history_length = max(1, round(lookahead / cadence)) + 1
        keys = list(dict.fromkeys((wl.q_trust[q], wl.class_members[wl.q_class[q]]) for q in range(wl.n_queues)))
        index = {k: i for i, k in enumerate(keys)}
        self.groups = keys
        self.group_of_queue = np.array([index[(wl.q_trust[q], wl.class_members[wl.q_class[q]])]
                                        for q in range(wl.n_queues)], dtype=np.int64)


class _PlannedCapacity:
    """Session hours each (home trust, reporter profile) has planned in a window (from the timetables).

    The broker asks for the window [now, now + lookahead] at now = t0, t0 + c, (t0 + c) + c, ... (SimPy's
    clock adds the cadence c once per rebalancing). Those windows are worked out a block at a time with
    one vectorised np.interp per key, rather than one call per key every rebalancing: np.cumsum adds in
    sequence, so it reproduces the clock's values exactly, and np.interp of a point does not depend on
    the other points interpolated with it. Each call checks that `now` is the predicted value and
    otherwise interpolates its window directly.
    """

    BLOCK = 256  # windows per block: two interpolations of 256 points per key every 256 rebalancings

    def __init__(self, engine: "Engine", cadence: float, lookahead: float):
        wl = engine.worklists
        self.cadence, self.lookahead = cadence, lookahead
        self.keys: list[tuple[int, int]] = []
        self.times, self.cumulative = [], []
        groups: dict[tuple[int, int], list] = {}
        for i, r in enumerate(engine.reporters):
            profile = wl.reporter_profile[i][r.home_trust]
            if profile is not None:
                groups.setdefault((r.home_trust, profile), []).append(r)
        for key, members in groups.items():
            starts = [s for r in members for s, _ in r.intervals]
            ends = [e for r in members for _, e in r.intervals]
            times = np.array(starts + ends, dtype=float)
            steps = np.array([1] * len(starts) + [-1] * len(ends), dtype=float)
            order = np.argsort(times, kind="stable")
            times, on_duty = times[order], np.cumsum(steps[order])
            hours = np.concatenate([[0.0], np.cumsum(on_duty[:-1] * np.diff(times))]) if len(times) else np.zeros(0)
            self.keys.append(key)
            self.times.append(times)
            self.cumulative.append(hours)
        self._starts: list[float] = []  # the block's predicted window starts
        self._rows: list[list[float]] = []  # per window of the block: hours per key (in the order of `keys`)
        self._next = 0  # the block's next window

    def _direct(self, start: float, end: float) -> list[float]:
        out = []
        window = [start, end]  # both ends in one interpolation call per key
        for times, hours in zip(self.times, self.cumulative):
            if len(times):
                at_start, at_end = np.interp(window, times, hours)
                out.append(float(at_end - at_start))
            else:
                out.append(0.0)
        return out

    def planned(self, now: float) -> list[float]:
        """Hours per key (in the order of `keys`) planned in [now, now + lookahead]; the caller must not
        change the list."""
        if self._next == len(self._starts):  # block used up (or none yet): the next one starts at `now`
            self._fill(now)
        if self._starts[self._next] != now:  # off the predicted clock: this window directly, a new block next time
            self._starts = self._rows = []
            self._next = 0
            return self._direct(now, now + self.lookahead)
        row = self._rows[self._next]
        self._next += 1
        return row

    def _fill(self, now: float) -> None:
        steps = np.full(self.BLOCK, self.cadence)
        steps[0] = now
        starts = np.cumsum(steps)  # now, now + c, (now + c) + c, ...: the clock's own additions
        ends = starts + self.lookahead
        columns = []
        for times, hours in zip(self.times, self.cumulative):
            if len(times):
                columns.append(np.interp(ends, times, hours) - np.interp(starts, times, hours))
            else:
                columns.append(np.zeros(self.BLOCK))
        self._starts = starts.tolist()
        self._rows = np.column_stack(columns).tolist() if columns else [[] for _ in range(self.BLOCK)]
        self._next = 0
