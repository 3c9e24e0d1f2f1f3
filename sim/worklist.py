"""Worklists as pointers into pre-sorted arrays (DESIGN section 4, points 1-3 and 5).

Exams are grouped into queues keyed by (trust, urgency, skill class); a skill class is the set
of reporter eligibility profiles that may read an exam's modality x band x subspecialty, so a
reporter's eligible work is a short list of whole queues and never needs a per-exam check.
Within a queue, exams stand in acquisition order, so "oldest first" is the queue head and
"take the next exam" is a pointer increment. Each queue's segment ends with a +inf sentinel,
so the hot loop never tests bounds.

Idle reporters *claim* the next unclaimed arrival they may read and sleep until it: each arrival
wakes at most one reporter, and arrivals cost no event at all while every eligible reporter is
busy.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np

from sim.demand import ExamTable
from sim.workforce import Reporter

ROUTES = ("unreported", "core", "outsourced")
"""Route codes stored per exam; later policies append (e.g. home, brokered), never reorder."""
ROUTE_CODE = {name: code for code, name in enumerate(ROUTES)}


@dataclass(frozen=True)
class Profile:
    """What a reporter may read, regardless of trust."""

    modalities: frozenset[int]
    max_band: int
    subspecialties: frozenset[int]

    def may_read(self, modality: int, band: int, subspecialty: int) -> bool:
        return modality in self.modalities and band < self.max_band and subspecialty in self.subspecialties


def profile_of(reporter: Reporter) -> Profile:
    return Profile(reporter.modalities, reporter.max_band, reporter.subspecialties)


class Worklists:
    """All queues of one replication, plus the per-exam outcome records the engine fills in.

    Hot-loop state is deliberately plain: `times`/`work` are arrays indexed by *position*
    (queue order, with sentinels), `ptr[q]` is the next unread position of queue q and
    `claim[q]` the next position no idle reporter has claimed.
    """

    def __init__(self, exams: ExamTable, reporters: list[Reporter], n_urgencies: int):
        self.exams = exams
        self.profiles: list[Profile] = list(dict.fromkeys(profile_of(r) for r in reporters))
        self.reporter_profile = [self.profiles.index(profile_of(r)) for r in reporters]
        exam_class, self.class_members = self._skill_classes(exams)

        n_classes = max(len(self.class_members), 1)
        key = (exams.trust.astype(np.int64) * n_urgencies + exams.urgency) * n_classes + exam_class
        queue_keys, queue_of_exam = np.unique(key, return_inverse=True)
        self.q_trust = (queue_keys // n_classes // n_urgencies).astype(int).tolist()
        self.q_urgency = (queue_keys // n_classes % n_urgencies).astype(int).tolist()
        self.q_class = (queue_keys % n_classes).astype(int).tolist()
        n_queues = len(queue_keys)

        sizes = np.bincount(queue_of_exam, minlength=n_queues)
        q_start = np.concatenate([[0], np.cumsum(sizes + 1)[:-1]]).astype(np.int64)
        # exams are already in acquisition order, so a stable sort by queue keeps age order inside each queue
        order = np.argsort(queue_of_exam, kind="stable")
        rank = np.arange(len(order)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        position = np.empty(len(order), dtype=np.int64)
        position[order] = q_start[queue_of_exam[order]] + rank
        self.position_of_exam = position

        n_positions = len(exams) + n_queues
        times = np.full(n_positions, np.inf)
        times[position] = exams.arrival
        work = np.zeros(n_positions)
        work[position] = exams.work_hours
        self.times = array("d", times.tobytes())
        self.work = array("d", work.tobytes())
        self.q_start = q_start.tolist()
        self.q_end = (q_start + sizes).tolist()  # the sentinel's position
        self.ptr = list(self.q_start)
        self.claim = list(self.q_start)

        nan = np.full(n_positions, np.nan)
        self.left_at = array("d", nan.tobytes())  # left the worklist: reading started or sent out
        self.done_at = array("d", nan.tobytes())  # report available
        self.reader = array("l", np.full(n_positions, -1, dtype=np.int64).tobytes())
        self.route = array("b", np.zeros(n_positions, dtype=np.int8).tobytes())

    def _skill_classes(self, exams: ExamTable) -> tuple[np.ndarray, list[frozenset[int]]]:
        """Per exam, the index of its skill class; and each class's member profiles."""
        combo = np.stack([exams.modality, exams.band, exams.subspecialty], axis=1)
        if len(combo) == 0:
            return np.zeros(0, dtype=np.int64), []
        combos, inverse = np.unique(combo, axis=0, return_inverse=True)
        classes: dict[frozenset[int], int] = {}
        class_of_combo = []
        for m, b, s in combos.tolist():
            members = frozenset(i for i, p in enumerate(self.profiles) if p.may_read(m, b, s))
            class_of_combo.append(classes.setdefault(members, len(classes)))
        return np.asarray(class_of_combo)[inverse.ravel()], list(classes)

    # -- queries used by policies (not in the per-exam hot loop) -------------------------------
    @property
    def n_queues(self) -> int:
        return len(self.q_start)

    def readable_by(self, reporter_index: int, queue: int) -> bool:
        return self.reporter_profile[reporter_index] in self.class_members[self.q_class[queue]]

    def head_arrival(self, queue: int) -> float:
        return self.times[self.ptr[queue]]

    def waiting(self, queue: int, now: float) -> int:
        """Exams acquired by `now` and still in the queue."""
        lo, hi = self.ptr[queue], self.q_end[queue]
        while lo < hi:  # bisect for the first position acquired after `now`
            mid = (lo + hi) // 2
            if self.times[mid] <= now:
                lo = mid + 1
            else:
                hi = mid
        return lo - self.ptr[queue]

    def send_out(self, queue: int, now: float, report_after: float, route: int) -> int:
        """Remove the queue's head (it must have arrived) to another route; returns its position."""
        p = self.ptr[queue]
        self.ptr[queue] = p + 1
        self.left_at[p] = now
        self.done_at[p] = now + report_after
        self.route[p] = route
        return p

    # -- results in exam order ---------------------------------------------------------------
    def outcome_arrays(self) -> dict[str, np.ndarray]:
        pos = self.position_of_exam
        return {
            "left_at": np.frombuffer(self.left_at, dtype=np.float64)[pos],
            "done_at": np.frombuffer(self.done_at, dtype=np.float64)[pos],
            "reader": np.frombuffer(self.reader, dtype=np.int64)[pos].astype(np.int32),
            "route": np.frombuffer(self.route, dtype=np.int8)[pos],
        }
