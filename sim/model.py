"""One replication of the SimPy model: reporters are the processes, exams are data.

The per-exam hot loop is in :func:`Engine._reporter`. It costs one SimPy event per exam read
and at most one wake-up per arrival (only when an eligible reporter is idle); everything else
(routing, statistics) is done once before or after the run, with numpy and compiled loops
(sim/_loops.pyx).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import simpy

from sim import _loops
from sim.demand import ExamTable, generate_exams
from sim.memory import avoid_huge_page_compaction, return_large_blocks_promptly
from sim.policies import interventions_for, routing_for
from sim.scenario import Scenario
from sim.streams import stream
from sim.timer import NORMAL, Calendar, Timer
from sim.worklist import ROUTE_CODE, Worklists
from sim.workforce import Reporter, build_workforce, merge, subtract

# process-wide, before any exam is generated: see sim.memory (a replication's peak is ~100 MB lower, and
# seconds of kernel time fewer where huge pages are compacted on fault)
return_large_blocks_promptly()
avoid_huge_page_compaction()


@dataclass(frozen=True)
class RawRun:
    """What one replication produced, before any statistics.

    Per exam (ExamTable order): left_at (hours; reading started or sent out, NaN if still waiting),
    done_at (hours; report available, may lie past the horizon), reader (reporter index or -1),
    route (code into sim.worklist.ROUTES).
    """

    scenario: Scenario
    seed: int
    replication: int
    exams: ExamTable
    reporters: list[Reporter]
    left_at: np.ndarray
    done_at: np.ndarray
    reader: np.ndarray
    route: np.ndarray
    events: int  # SimPy events processed, for the benchmark
    outages: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)  # downtime by scope
    records: dict[str, list[tuple]] = field(default_factory=dict)  # what interventions logged (sim.market reads them)


class Engine:
    """Holds the state of one replication while it runs; policies act on it through its attributes."""

    def __init__(self, scn: Scenario, seed: int, replication: int,
                 exams: ExamTable | None = None, reporters: list[Reporter] | None = None):
        self.scenario = scn
        self.seed = seed
        self.replication = replication
        self.exams = exams if exams is not None else generate_exams(scn, seed, replication)
        self.reporters = reporters if reporters is not None else build_workforce(scn, seed, replication)
        self.interventions = interventions_for(scn)
        tag, parked = self._prepare_interventions()
        self.worklists = Worklists(self.exams, self.reporters, len(scn.urgencies), len(scn.trusts),
                                   tag=tag, parked=parked)
        # each queue's urgency priority (lower: more urgent), which routing policies group queues by
        self.queue_priority = [scn.urgencies[u].priority for u in self.worklists.q_urgency]
        for intervention in self.interventions:
            if hasattr(intervention, "route_parked"):
                intervention.route_parked(self, intervention.parked_mask)
        self.env = simpy.Environment()
        self.calendar = Calendar(self.env)  # reporters' waits for later sessions, outside SimPy's heap until near
        self.routing = routing_for(scn)
        self.outages = outage_intervals(scn, seed, replication)
        self.transfer_overhead_hours = (scn.policy.broker.transfer_overhead_minutes / 60
                                        if scn.policy.kind == "brokered" else 0.0)
        self.on_cross_read = None  # set by the broker: called with (owning trust, reading trust, reading hours)
        self._groups: dict[int, list[list[int]]] = {}
        # A lower bound on the earliest head (Worklists.head) of each distinct queue group, shared by every
        # reporter reading that group: a pick skips a group whose bound shows it has nothing ready and
        # nothing earlier to commit to. Heads only move later (a pointer moves forward), so a bound stays
        # valid without updates; the one backward move (a released commitment) lowers it.
        self._group_id: dict[tuple[int, ...], int] = {}
        self.group_floor: list[float] = []
        self._groups_of_queue: dict[int, list[int]] = {}
        # a borrowed list changes in place (the broker opens and closes work in it): its floor is keyed by
        # the list object and dropped whenever queues are added to it
        self._borrowed_id: dict[int, int] = {}
        # Reporters with the same groups share one plan (337 reporters, 19 plans): less memory touched per
        # event (32 trusts: simulate 5% faster), and the broker's ~47,000 flips a year rewrite few lists. A
        # plan leaves out its borrowed lists while they are empty (most are, most hours: a pick would visit ~2
        # empty lists for nothing). Floor indices -> the shared plan; id(list) -> (active plan, full plan) of
        # each plan holding it, and whether the list held queues when the plans were last written.
        self._shared_plans: dict[tuple[int, ...], list[tuple[list[int], int]]] = {}
        self._plan_of_groups: dict[int, tuple[list[list[int]], list[tuple[list[int], int]]]] = {}  # id -> (groups, plan)
        self._plans_holding: dict[int, list[tuple[list, list]]] = {}
        self._borrowed_open: dict[int, bool] = {}
        if hasattr(self.routing, "on_change"):
            self.routing.on_change = self._borrowed_list_changed
        self.busy_until = [0.0] * len(self.reporters)  # end of each reporter's latest read (home sessions wait for it)
        # Reads record a reader code, not a route: reporter index + n_reporters x the session's kind, a kind
        # being its (own-trust route, other-trust route) pair; the routes are worked out after the run
        # (_decode_reads), which saves the hot loop a store and a trust comparison per read.
        self.session_kinds: list[tuple[int, int]] = []
        self._idle: list[simpy.Process | None] = [None] * len(self.reporters)  # idle reporters a broker may wake
        # the earliest time anything may wake an idle reporter next (the broker's next rebalancing, which it sets)
        self.next_wake_at = -np.inf

    def _prepare_interventions(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Queue tags (one bit per intervention that takes whole queues) and the exams routed before
        the run (see sim.policies.base.Intervention)."""
        tag = parked = None
        taggers = [i for i in self.interventions if hasattr(i, "queue_filter")]
        bit = 0
        for intervention in taggers:
            width = getattr(intervention, "tag_width", 1)
            intervention.tag = ((1 << width) - 1) << bit
            intervention.tag_shift = bit
            bits = intervention.queue_filter(self).astype(np.int8) << bit
            tag = bits if tag is None else tag | bits
            bit += width
        for intervention in self.interventions:
            if hasattr(intervention, "parked"):
                intervention.parked_mask = intervention.parked(self)
                parked = intervention.parked_mask if parked is None else parked | intervention.parked_mask
        return tag, parked

    def stream(self, *name: object) -> np.random.Generator:
        return stream(self.seed, self.replication, *name)

    def run(self) -> RawRun:
        core, brokered = ROUTE_CODE["core"], ROUTE_CODE["brokered"]
        for index, reporter in enumerate(self.reporters):
            intervals = subtract(reporter.intervals, self.outages["all"])
            self.start_session(index, intervals, core, brokered)
        for intervention in self.interventions:
            intervention.start(self)
        self.env.run(until=self.scenario.horizon_hours)
        records = {name: rows for i in self.interventions if hasattr(i, "records") for name, rows in i.records().items()}
        outcome = self.worklists.take_outcome_arrays()
        self._decode_reads(outcome["reader"], outcome["route"])
        return RawRun(self.scenario, self.seed, self.replication, self.exams, self.reporters,
                      events=self.events_scheduled(), outages=self.outages, records=records, **outcome)

    def reader_code(self, index: int, own_route: int, cross_route: int) -> int:
        """What a read by reporter `index` in a session of that kind records (see __init__)."""
        kind = (own_route, cross_route)
        if kind not in self.session_kinds:
            self.session_kinds.append(kind)
        return index + len(self.reporters) * self.session_kinds.index(kind)

    def _decode_reads(self, reader: np.ndarray, route: np.ndarray) -> None:
        """In place, exam order: reader codes become reporter indices, and each read gets its session's
        route, the own-trust one for an exam of the reader's home trust, else the other-trust one (a
        borrowed list never holds the reader's own trust). Exams a policy routed keep their route."""
        if not self.session_kinds:  # nobody read anything
            return
        own, cross = (np.array(routes, dtype=np.int8) for routes in zip(*self.session_kinds))
        # a compiled loop: numpy's version held five temporaries the size of the year's reads at the run's peak
        _loops.decode_reads(reader, route, self.exams.trust, np.array([r.home_trust for r in self.reporters],
                                                                       dtype=np.int64), own, cross)

    def events_scheduled(self) -> int:
        """The model's SimPy events scheduled so far: SimPy's event-id counter (not public API) less the
        calendar's pager events (bookkeeping, one an hour)."""
        counter = getattr(self.env, "_eid", None)
        return next(counter) - self.calendar.pages if counter is not None else -1

    def candidate_queues(self, index: int) -> list[list[int]]:
        """The reporter's queue groups from the routing policy (computed once per reporter)."""
        if index not in self._groups:
            self._groups[index] = self.routing.candidate_queues(self, index)
        return self._groups[index]

    def start_session(self, index: int, intervals, own_route: int, cross_route: int,
                      reading_time_factor: float = 1.0, groups: list[list[int]] | None = None,
                      min_age: float = 0.0, extra_hours=None) -> None:
        """Reporter `index` reads during `intervals`; exams of its own trust get `own_route`, others `cross_route`.

        Home sessions (an intervention) call this too, with the home route, reading-time factor and
        their own worklist (`groups`; default: the routing policy's queues for the reporter),
        `min_age`: they read only exams that have waited at least that many hours, and
        `extra_hours`: time added to each read, by worklist position (image download over a VPN).
        """
        groups = self.candidate_queues(index) if groups is None else groups
        if groups and intervals:
            inv_speed = reading_time_factor / self.reporters[index].speed
            self.env.process(self._reporter(index, groups, intervals, inv_speed,
                                            self.reader_code(index, own_route, cross_route), min_age, extra_hours))

    def _take_episode(self, p: int, group: list[int], done: float, inv_speed: float, extra_hours,
                      reader_code: int) -> float:
        """Exam `p` was just taken from `group` (the reader's queues of that priority in which the pick found
        it; a borrowed list is the live list the broker edits): take the other exams of its episode waiting
        in that group, read one after the other; returns when the last is done.
        An episode is split where readers' rights differ (a sibling the reader may not read stays for
        another) and, in the broker's wakeable path, where the reader committed ahead takes the episode only
        on arrival and another idle reader committed to a sibling meanwhile.

        Why: a patient's request (CT head + C-spine) is reported together by one reader, so the pilot's
        "patients helped" follows from how readers take work. The episode's exams share acquisition time
        and urgency, and `p` was the oldest ready exam of the group, so any sibling the reader may read
        stands at the head of its queue in the group (its own queue included): no search, no event.
        """
        wl = self.worklists
        ptr, episode, work, head, times = wl.ptr, wl.episode, wl.work, wl.head, wl.times
        this_episode, acquired = episode[p], times[p]
        for q in group:
            if head[q] != acquired:  # a sibling shares the acquisition time: this head is none (cheaper to read)
                continue
            p2 = ptr[q]
            while episode[p2] == this_episode:  # a sentinel holds -1
                ptr[q] = p2 + 1
                head[q] = times[p2 + 1]
                wl.left_at[p2] = done
                done += work[p2] * inv_speed + (extra_hours[p2] if extra_hours is not None else 0.0)
                wl.done_at[p2] = done
                wl.reader[p2] = reader_code
                p2 += 1
        return done

    def group_ids(self, groups: list[list[int]], flags: list[bool] | None) -> list[int]:
        """Per group, its index into `group_floor`; a borrowed list (the broker edits it in place) gets
        -1 - its index, so the sign tells the hot loop which kind it is."""
        ids = []
        for k, group in enumerate(groups):
            if flags is not None and flags[k]:
                if id(group) not in self._borrowed_id:
                    self._borrowed_id[id(group)] = len(self.group_floor)
                    self.group_floor.append(-np.inf)
                ids.append(-1 - self._borrowed_id[id(group)])  # negative: borrowed (floor index -1 - id)
                continue
            key = tuple(group)
            if key not in self._group_id:
                self._group_id[key] = len(self.group_floor)
                self.group_floor.append(-np.inf)
                for q in set(key):
                    self._groups_of_queue.setdefault(q, []).append(self._group_id[key])
            ids.append(self._group_id[key])
        return ids

    def _head_moved_back(self, queue: int) -> None:
        """A pointer moved back (a released commitment): the queue's groups, and any borrowed list (which
        may hold it today), may now start earlier."""
        head = self.worklists.head[queue]
        floor = self.group_floor
        for g in [*self._groups_of_queue.get(queue, ()), *self._borrowed_id.values()]:
            if head < floor[g]:
                floor[g] = head

    def _borrowed_list_changed(self, group: list[int], added: bool) -> None:
        """The broker changed a borrowed list: its floor is dropped if queues may have been added, and the plans
        holding it take it in or leave it out if it became non-empty or empty."""
        key = id(group)
        if added:
            g = self._borrowed_id.get(key)
            if g is not None:
                self.group_floor[g] = -np.inf
        holds = bool(group)
        if key in self._borrowed_open and self._borrowed_open[key] != holds:
            self._borrowed_open[key] = holds
            for active, full in self._plans_holding[key]:
                active[:] = active_entries(full)

    def _plan(self, groups: list[list[int]], flags: list[bool] | None) -> list[tuple[list[int], int]]:
        """The (queues, floor index) a reporter session scans, in preference order (see `group_ids`), shared by
        the sessions with the same groups (the floor indices name a plan's content); with borrowed lists, the
        engine rewrites it in place, leaving out borrowed lists while they are empty."""
        if flags is None:  # the same groups object (extra sessions share theirs) always gets the same plan
            known = self._plan_of_groups.get(id(groups))
            if known is not None and known[0] is groups:
                return known[1]
        ids = self.group_ids(groups, flags)
        key = tuple(ids)
        if key in self._shared_plans:
            plan = self._shared_plans[key]
        elif flags is None:
            plan = self._shared_plans[key] = list(zip(groups, ids))
        else:
            full = list(zip(groups, ids))
            plan = self._shared_plans[key] = active_entries(full)
            for group, g in full:
                if g < 0:
                    self._borrowed_open[id(group)] = bool(group)
                    self._plans_holding.setdefault(id(group), []).append((plan, full))
        if flags is None:
            self._plan_of_groups[id(groups)] = (groups, plan)  # holds `groups`: its id is not reused
        return plan

    def _reporter(self, index: int, groups: list[list[int]], intervals, inv_speed: float,
                  reader_code: int, min_age: float = 0.0, extra_hours=None):
        """Walk the on-duty intervals; in each, read exam after exam until the interval ends.

        The next exam is the oldest ready one in the first preference group that has one. With
        none ready, the reporter commits to the earliest not-yet-assigned arrival it may read
        (if it comes before the interval ends) and starts it on arrival. Every earlier arrival in
        its queues is already assigned, so on arrival it would pick exactly that exam: committing
        early changes nothing but saves the wake-up event. Among idle reporters, the one idle
        longest gets the next arrival. One SimPy event per exam read; the exam in hand is always
        finished, even past the interval's end.

        Borrowed groups (lists the routing marks as borrowed: work a broker opens to this reporter,
        interleaved with its own groups by urgency priority) are read only for exams already
        waiting, never committed to ahead (a pair may close before the arrival). A borrowed read
        costs the transfer overhead and is reported to `on_cross_read` (the broker's quota). A reporter with borrowed groups can be woken (interrupted) while idle, so
        work opened to it is read at once: a commitment to a future arrival is released when
        nobody has claimed a later exam of that queue since; a commitment to an arrival before the broker's next
        rebalancing (`next_wake_at`, when it may wake readers next) with no episode to take on arrival cannot be
        released, and costs one event, as without a broker. With `min_age` > 0 (extra sessions
        reading only work that has waited that long) an exam is ready `min_age` hours after
        acquisition, and the commitment ahead is to that moment. The reader takes the other waiting
        exams of the exam's episode with it (:meth:`_take_episode`), and `extra_hours` (by position)
        adds per-read time such as an image download.
        """
        env = self.env
        # waits nothing interrupts re-arm one Timer (sim.timer); an idle or committed-ahead wait a broker may
        # interrupt is a fresh Timeout
        timer = Timer(env)
        calendar = self.calendar  # waits until a later session or an interval's end (sim.timer.Calendar)
        schedule = env.schedule
        wl = self.worklists
        times, work, ptr, head, trust_of = wl.times, wl.work, wl.ptr, wl.head, wl.q_trust
        left_at, done_at, reader = wl.left_at, wl.done_at, wl.reader
        home = self.reporters[index].home_trust
        overhead = self.transfer_overhead_hours
        timeout = env.timeout
        busy_until = self.busy_until
        flags = self.borrowed_flags(index, groups)
        # (queues, floor index) per group. A pick first looks for ready work, skipping every group whose
        # floor (a lower bound on its earliest head, see __init__) is later than now; only when nothing is
        # ready does it look for the earliest arrival, skipping groups whose floor is no earlier than the
        # best found so far. Each scan leaves the group's exact earliest head as its floor. The choice is
        # exactly that of scanning every queue.
        plan = self._plan(groups, flags)  # edited in place while the reporter waits (empty borrowed lists left out)
        floor = self.group_floor
        inf = float("inf")
        in_episode = wl.in_episode
        for start, end in intervals:
            if env.now < start:
                yield calendar.after(timer, start - env.now)
            while True:
                now = env._now  # SimPy's clock read directly: the `now` property costs a call per pick
                if now < start:  # start - now + now can round one ulp short of start
                    now = start
                if now >= end:
                    break
                # the best ready exam: the oldest in the first group (in preference order) that has one
                ready_by = now - min_age
                best = -1
                lent = False
                for group, g in plan:
                    if g >= 0:
                        if floor[g] > ready_by:
                            continue
                        oldest = ready_by
                        following = inf
                        for q in group:
                            t = head[q]
                            if t <= oldest:
                                oldest = t
                                best = q
                            elif t < following:
                                following = t
                        if best >= 0:
                            floor[g] = oldest
                            picked = group
                            break
                        floor[g] = following
                    else:  # borrowed: ready work only (a pair may close before a future arrival); the scan is
                        # repeated inline rather than shared with a helper: a call per group visit costs more here
                        g = -1 - g
                        if floor[g] > ready_by:
                            continue
                        oldest = ready_by
                        following = inf
                        for q in group:
                            t = head[q]
                            if t <= oldest:
                                oldest = t
                                best = q
                            elif t < following:
                                following = t
                        if best >= 0:
                            floor[g] = oldest
                            lent = True
                            picked = group
                            break
                        floor[g] = following
                if best >= 0:
                    begin = now
                else:  # nothing ready: commit to the earliest arrival of its own groups (ties: preference order)
                    first_arrival = end - min_age
                    for group, g in plan:
                        if g < 0 or floor[g] >= first_arrival:
                            continue
                        for q in group:
                            t = head[q]
                            if t < first_arrival:
                                first_arrival = t
                                best = q
                                picked = group
                    if best >= 0:
                        begin = first_arrival + min_age
                    elif flags is not None:
                        self._idle[index] = env.active_process
                        try:
                            yield timeout(end - now)
                        except simpy.Interrupt:  # the broker opened work to this reporter
                            pass
                        self._idle[index] = None
                        continue
                    else:
                        yield calendar.after(timer, end - now)
                        break
                p = ptr[best]
                ptr[best] = p + 1
                head[best] = times[p + 1]
                done = begin + work[p] * inv_speed
                if extra_hours is not None:
                    done += extra_hours[p]
                if lent:
                    done += overhead
                left_at[p] = begin
                done_at[p] = done
                reader[p] = reader_code  # the route follows from it after the run (_decode_reads)
                if in_episode is not None and in_episode[p] and (flags is None or begin <= now):
                    done = self._take_episode(p, picked, done, inv_speed, extra_hours, reader_code)
                if lent and self.on_cross_read is not None:
                    self.on_cross_read(trust_of[best], home, done - begin)
                busy_until[index] = done
                # committed ahead: stay wakeable until the arrival, unless nothing can wake the reader before it
                # (the broker's next rebalancing is later) and there is no episode to take on arrival. Then the
                # read's end is scheduled now, not on arrival: its event id is drawn earlier, which could only
                # reorder it against another event due at exactly the same float time (none in the regression runs)
                if flags is not None and begin > now and (begin >= self.next_wake_at
                                                          or (in_episode is not None and in_episode[p])):
                    self._idle[index] = env.active_process
                    try:
                        yield timeout(begin - now)
                    except simpy.Interrupt:  # the broker opened work to this reporter
                        pass
                    self._idle[index] = None
                    now = env._now
                    if now < begin and ptr[best] == p + 1:  # release the commitment
                        ptr[best] = p
                        head[best] = times[p]
                        self._head_moved_back(best)
                        left_at[p] = done_at[p] = float("nan")
                        reader[p] = -1
                        busy_until[index] = now
                        continue
                    if in_episode is not None and in_episode[p]:  # committed ahead: the episode is taken on arrival
                        done = self._take_episode(p, picked, done, inv_speed, extra_hours, reader_code)
                        busy_until[index] = done
                # `now` is the clock: read again after any wait above. The timer re-armed inline (Timer.after)
                timer.callbacks = []
                schedule(timer, NORMAL, done - now)
                yield timer

    def borrowed_flags(self, index: int, groups: list[list[int]]) -> list[bool] | None:
        """Per group, whether it is a borrowed list a broker opens and closes; None when none is."""
        borrowed = getattr(self.routing, "borrowed_groups", None)
        if borrowed is None or groups is not self.candidate_queues(index):
            return None
        flags = borrowed(self, index)
        return flags if any(flags) else None

    def wake(self, index: int) -> None:
        """Wake reporter `index` if it is idle (waiting for work, or for an arrival it committed to).

        An interrupt costs an event only when it happens; idle waits stay one plain timeout each. Whatever
        wakes reporters keeps `next_wake_at` at the earliest time it may wake them next (the broker sets its
        next rebalancing): a commitment to an arrival before then is not kept wakeable.
        """
        process = self._idle[index]
        if process is not None:
            self._idle[index] = None
            process.interrupt("work opened")

    def wake_all(self, indices: list[int]) -> None:
        """`wake` each of `indices`, in order (the broker wakes dozens of reporters an hour, most of them busy)."""
        idle = self._idle
        for index in indices:
            process = idle[index]
            if process is not None:
                idle[index] = None
                process.interrupt("work opened")


def active_entries(plan: list[tuple[list[int], int]]) -> list[tuple[list[int], int]]:
    """The entries of a plan worth scanning: every own group (floor index >= 0), and borrowed lists holding queues."""
    return [entry for entry in plan if entry[1] >= 0 or entry[0]]


def outage_intervals(scn: Scenario, seed: int, replication: int) -> dict[str, tuple[tuple[float, float], ...]]:
    """Downtime over the horizon by scope ("all": PACS, no reporting; "home": VPN, no home sessions).

    Drawn up front from each outage's own stream (they do not depend on the simulation), so
    reporters' on-duty time can simply exclude them. "all" outages also stop home sessions.
    """
    spans: dict[str, list[tuple[float, float]]] = {"all": [], "home": []}
    for outage in scn.outages:
        rng = stream(seed, replication, "outage", outage.name)
        t = 0.0
        while True:
            t += rng.exponential(outage.mtbf_hours)
            if t >= scn.horizon_hours:
                break
            down = rng.exponential(outage.mttr_hours)
            spans[outage.scope].append((t, min(t + down, scn.horizon_hours)))
            t += down
    spans["home"] += spans["all"]
    return {scope: tuple(merge(s)) for scope, s in spans.items()}


def simulate(scn: Scenario, seed: int, replication: int) -> RawRun:
    """Run one replication and return its raw per-exam outcome."""
    return Engine(scn, seed, replication).run()
