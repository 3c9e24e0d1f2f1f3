"""Worklists as pointers into pre-sorted arrays (DESIGN section 4, points 1-3 and 5).

Exams are grouped into queues keyed by (trust, urgency, skill class); a skill class is the set
of reporter eligibility profiles that may read an exam's modality x band x subspecialty, so a
reporter's eligible work is a short list of whole queues and never needs a per-exam check.
Within a queue, exams stand in acquisition order, so "oldest first" is the queue head and
"take the next exam" is a pointer increment. Each queue's segment ends with a +inf sentinel,
so the hot loop never tests bounds.

An idle reporter commits to the next unassigned arrival it may read and starts it on arrival
(see sim.model.Engine._reporter): arrivals cost no event of their own, busy or idle.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

import numpy as np

from sim import _loops
from sim.demand import ExamTable
from sim.workforce import Profile, Reporter

ROUTES = ("unreported", "core", "outsourced", "home", "brokered", "teleradiology")
"""Route codes stored per exam (append new ones, never reorder): core = own trust's reporter in a
core session; home = an extra home (insourced) session; brokered = another trust's reporter in a
core session (pooled, brokered or agreement work); outsourced = sent to the company by the
threshold rule; teleradiology = reported by the out-of-hours (night) contract."""
ROUTE_CODE = {name: code for code, name in enumerate(ROUTES)}


def _array(typecode: str, fill: float, n: int) -> array:
    """A filled array.array (compact, and fast to index from Python), viewable with np.frombuffer.

    Built by repetition, straight into its own buffer (no full-size temporary)."""
    return array(typecode, [fill]) * n


class Worklists:
    """All queues of one replication, plus the per-exam outcome records the engine fills in.

    Hot-loop state is deliberately plain: `times`/`work` are arrays indexed by *position*
    (queue order, with sentinels), `ptr[q]` is the next position of queue q that no reporter
    has taken (exams before it are read, in hand, committed to an idle reporter, or sent out), and
    `head[q]` is `times[ptr[q]]` (inf once the queue is empty), kept by whatever moves a pointer.
    """

    def __init__(self, exams: ExamTable, reporters: list[Reporter], n_urgencies: int, n_trusts: int,
                 tag: np.ndarray | None = None, parked: np.ndarray | None = None):
        """`tag` (small ints per exam) splits queues further, e.g. work a night contract may take;
        `parked` exams (a boolean mask) get positions and outcome records but join no queue: a
        policy routed them before the run."""
        self.exams = exams
        at_trust = [[r.profile_at(t) for t in range(n_trusts)] for r in reporters]
        agreed = [[dict(r.agreements).get(t) for t in range(n_trusts)] for r in reporters]
        at_home = [[r.home_profile if t == r.home_trust else None for t in range(n_trusts)] for r in reporters]
        self.profiles: list[Profile] = list(dict.fromkeys(p for rows in (at_trust, agreed, at_home) for row in rows
                                                          for p in row if p is not None))
        index = {p: i for i, p in enumerate(self.profiles)}
        # reporter_profile[r][t]: index of what reporter r may read at trust t (None: nothing);
        # agreement_profile[r][t]: what a named agreement alone lets it read there (narrower when also credentialed);
        # home_profile[r][t]: what it may read in extra home sessions, where wider than its core rights (a pilot's contract)
        self.reporter_profile = [[None if p is None else index[p] for p in row] for row in at_trust]
        self.agreement_profile = [[None if p is None else index[p] for p in row] for row in agreed]
        self.home_profile = [[None if p is None else index[p] for p in row] for row in at_home]
        exam_class, self.class_members = self._skill_classes(exams, reporters)

        n_classes = max(len(self.class_members), 1)
        n_tags = int(tag.max(initial=0)) + 1 if tag is not None else 1
        key = ((exams.trust.astype(np.int64) * n_urgencies + exams.urgency) * n_classes + exam_class) * n_tags
        if tag is not None:
            key += tag
        n_parked = 0
        if parked is not None and parked.any():
            key[parked] = n_trusts * n_urgencies * n_classes * n_tags  # after every real queue
            n_parked = 1
        # queues in key order; exams placed by a stable counting sort (sim._loops.place_exams), so each queue
        # keeps acquisition order
        n_keys = n_trusts * n_urgencies * n_classes * n_tags + n_parked
        sizes_by_key = np.bincount(key, minlength=n_keys)
        queue_keys = np.flatnonzero(sizes_by_key)
        sizes = sizes_by_key[queue_keys]
        n_queues = len(queue_keys)
        real = queue_keys[: n_queues - n_parked] // n_tags
        self.q_tag = (queue_keys[: n_queues - n_parked] % n_tags).tolist()
        self.q_trust = (real // n_classes // n_urgencies).tolist()
        self.q_urgency = (real // n_classes % n_urgencies).tolist()
        self.q_class = (real % n_classes).tolist()
        # queues stand in key order, trust first: each trust's queues, ascending
        self.queues_of_trust: list[list[int]] = [[] for _ in range(n_trusts)]
        for q, t in enumerate(self.q_trust):
            self.queues_of_trust[t].append(q)

        # each queue's segment is followed by one sentinel, so the i-th exam in queue order of
        # queue q stands at position i + q
        q_start = np.r_[0, np.cumsum(sizes + 1)[:-1]].astype(np.int64) if n_queues else np.zeros(0, np.int64)
        n_positions = len(exams) + n_queues
        if n_positions >= 2**31:
            raise ValueError(f"{len(exams):,} exams: more than the 2^31 worklist positions a replication holds")
        next_position = np.zeros(n_keys, dtype=np.int64)
        next_position[queue_keys] = q_start
        position = np.empty(len(exams), dtype=np.int32)  # 32-bit: half the memory of this per-exam index
        _loops.place_exams(key, next_position, position)
        del key, next_position, sizes_by_key
        self.position_of_exam = position
        # the parked segment (last, if any) is not a queue: no pointer ever walks it
        self.q_start = q_start.tolist()[: n_queues - n_parked]
        self.q_end = (q_start + sizes).tolist()[: n_queues - n_parked]  # the sentinel's position
        self.ptr = list(self.q_start)
        self._cumulative_work: np.ndarray | None = None

        # episodes (sim.demand): a reader who takes an exam takes its episode's other waiting exams it may
        # read (sim.model.Engine._take_episode); `in_episode[p]` says whether position p has any, and
        # `episode[p]` numbers its episode (-1 at sentinels; a 32-bit ordinal, not the 64-bit patient id,
        # to keep a consortium-year small). None when every episode is a single exam.
        self.times = _array("d", np.inf, n_positions)
        self.work = _array("d", 0.0, n_positions)
        self.in_episode: bytearray | None = None
        self.episode: array | None = None
        if len(exams) > 1 and (exams.patient[1:] == exams.patient[:-1]).any():
            self.in_episode = bytearray(n_positions)
            self.episode = _array("i", -1, n_positions)
        # an episode's exams stand together in exam order (same patient, same time): numbered as runs
        _loops.fill_worklists(position, exams.arrival, exams.work_hours, exams.patient.astype(np.int64, copy=False),
                              self.times, self.work, self.episode if self.episode is not None else array("i"),
                              self.in_episode if self.in_episode is not None else bytearray())
        # Each queue's head acquisition time, times[ptr[q]], as a list of floats: a pick reads every head of a
        # group, and a list item costs one index and no new float object (array('d') items cost two and
        # one); whatever moves a pointer sets its head (sim.model.Engine._reporter, _take_episode, send_out)
        self.head = [self.times[p] for p in self.ptr]

        self.left_at = _array("d", np.nan, n_positions)  # left the worklist: reading started or sent out
        self.done_at = _array("d", np.nan, n_positions)  # report available
        self.reader = _array("i", -1, n_positions)  # C int: 32 bits on every platform numpy supports
        self.route = _array("b", 0, n_positions)

    def _skill_classes(self, exams: ExamTable, reporters: list[Reporter]) -> tuple[np.ndarray, list[frozenset[int]]]:
        """Per exam, the index of its skill class; and each class's member profiles.

        A class is the set of profiles, among those credentialed for the exam's trust, that may
        read its modality x band x subspecialty. Restricting to the trust's profiles merges kinds
        of work that differ only by who could read them elsewhere: fewer queues to scan per pick.
        """
        if len(exams) == 0:
            return np.zeros(0, dtype=np.int64), []
        n_trusts = len(self.reporter_profile[0]) if self.reporter_profile else int(exams.trust.max()) + 1
        present = [{row[t] for rows in (self.reporter_profile, self.agreement_profile, self.home_profile) for row in rows
                    if row[t] is not None} for t in range(n_trusts)]
        # one integer per trust x modality x band x subspecialty
        n_modalities = int(exams.modality.max()) + 1
        n_bands = int(exams.band.max()) + 1
        n_subs = int(exams.subspecialty.max()) + 1
        n_combos = n_trusts * n_modalities * n_bands * n_subs
        combo = ((exams.trust.astype(np.int64) * n_modalities + exams.modality) * n_bands + exams.band) * n_subs \
            + exams.subspecialty
        if n_combos < 2**31:
            combo = combo.astype(np.int32)
        # the combinations present, by counting (a few thousand codes at most; np.unique would sort every exam)
        combos = np.flatnonzero(np.bincount(combo, minlength=n_combos))
        classes: dict[frozenset[int], int] = {}
        class_of_combo = np.zeros(n_combos, dtype=np.int32)
        for key in combos.tolist():
            code = key
            key, s = divmod(key, n_subs)
            key, b = divmod(key, n_bands)
            t, m = divmod(key, n_modalities)
            members = frozenset(i for i in present[t] if self.profiles[i].may_read(m, b, s))
            class_of_combo[code] = classes.setdefault(members, len(classes))
        return class_of_combo[combo], list(classes)

    # -- queries used by policies (not in the per-exam hot loop) -------------------------------
    @property
    def n_queues(self) -> int:
        return len(self.q_start)

    def readable_by(self, reporter_index: int, queue: int, agreement_only: bool = False, at_home: bool = False) -> bool:
        """Whether the reporter may read the queue's exams (`agreement_only`: under its agreement alone;
        `at_home`: in an extra home session, under the session's own credentials where it has them)."""
        if at_home and self.home_profile[reporter_index][self.q_trust[queue]] is not None:
            rows = self.home_profile
        else:
            rows = self.agreement_profile if agreement_only else self.reporter_profile
        profile = rows[reporter_index][self.q_trust[queue]]
        return profile is not None and profile in self.class_members[self.q_class[queue]]

    def head_arrival(self, queue: int) -> float:
        return self.head[queue]

    def record(self, exam_rows: np.ndarray, left_at: np.ndarray, done_at: np.ndarray, route: int) -> None:
        """Record outcomes of (parked) exams, given by row in the exam table."""
        pos = self.position_of_exam[exam_rows]
        np.frombuffer(self.left_at, dtype=np.float64)[pos] = left_at
        np.frombuffer(self.done_at, dtype=np.float64)[pos] = done_at
        np.frombuffer(self.route, dtype=np.int8)[pos] = route

    def waiting(self, queue: int, now: float) -> int:
        """Exams acquired by `now` and still in the queue."""
        start = self.ptr[queue]
        return bisect_right(self.times, now, start, self.q_end[queue]) - start

    @property
    def cumulative_work(self) -> np.ndarray:
        """Reading hours (speed 1) before each position: work_between(a, b) = c[b] - c[a]. Built on first use."""
        if self._cumulative_work is None:  # only the broker and extra sessions ask
            cumulative = np.zeros(len(self.work) + 1)
            np.cumsum(np.frombuffer(self.work, dtype=np.float64), out=cumulative[1:])  # in place: no second copy
            self._cumulative_work = cumulative
        return self._cumulative_work

    def work_between(self, start: int, stop: int) -> float:
        """Reading hours (speed 1) of the exams at positions start..stop-1."""
        cumulative = self.cumulative_work
        return float(cumulative[stop] - cumulative[start])

    def send_out(self, queue: int, now: float, report_after: float, route: int) -> int:
        """Remove the queue's head (it must have arrived) to another route; returns its position."""
        p = self.ptr[queue]
        self.ptr[queue] = p + 1
        self.head[queue] = self.times[p + 1]
        self.left_at[p] = now
        self.done_at[p] = now + report_after
        self.route[p] = route
        return p

    # -- results in exam order ---------------------------------------------------------------
    def take_outcome_arrays(self) -> dict[str, np.ndarray]:
        """The per-exam records in exam order, moved out: each record's buffer is emptied once copied
        (the run is over), so a consortium-year holds one record twice at a time, not all four."""
        pos = self.position_of_exam
        out = {}
        for name, typecode in (("left_at", np.float64), ("done_at", np.float64), ("reader", np.intc),
                               ("route", np.int8)):
            record = getattr(self, name)
            out[name] = np.frombuffer(record, dtype=typecode)[pos]
            del record[:]  # frees the buffer: the reporters' finished generators still refer to the array
        out["reader"] = out["reader"].astype(np.int32, copy=False)  # -1: nobody
        return out
