"""The policy seam: two small protocols the engine knows, and nothing else about policies.

* A :class:`Routing` decides which worklist queues each reporter reads, in what order of
  preference (local: own trust only; pooled: every credentialed trust; ...). The engine asks
  once per reporter before the run, so routing costs nothing per exam.
* An :class:`Intervention` runs its own SimPy processes beside the reporters and acts on the
  worklists (outsourcing old exams, a broker moving work, extra home sessions, IT outages).
  Interventions compose: a scenario may switch on any number of them.

New policies are new modules implementing one of these; the engine is not touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sim.model import Engine


class Routing(Protocol):
    name: str

    def candidate_queues(self, engine: "Engine", reporter_index: int) -> list[list[int]]:
        """Queues the reporter may read, as groups in order of preference.

        The reporter takes the oldest ready exam in the first group that has one, so groups
        normally follow urgency priority (and, for pooled own-trust-first, trust within it).
        """
        ...


class Intervention(Protocol):
    """Runs beside the reporters. Two optional hooks act before the worklists are built:

    * ``queue_filter(engine) -> bool array``: the exams whose queues this intervention takes
      whole; the engine gives them a queue tag of their own and sets ``intervention.tag`` to its
      bit, so the intervention finds its queues with ``worklists.q_tag[q] & self.tag``. An
      intervention with a ``tag_width`` of k bits may return small ints (0..2^k - 1) instead, to
      split its queues further; ``intervention.tag`` is then its k-bit mask and
      ``intervention.tag_shift`` the mask's lowest bit;
    * ``parked(engine) -> bool array`` and ``route_parked(engine, mask)``: exams routed before
      the run (they join no queue and cost no event) and the recording of their outcomes.

    A third optional hook, ``records() -> {name: rows}``, hands what the intervention logged during
    the run (sessions taken, quotas granted) to the raw result, for the market's dashboards.
    """

    name: str

    def start(self, engine: "Engine") -> None:
        """Register processes on `engine.env`; called once before the run."""
        ...


def queues_by_priority(engine: "Engine", queues: list[int]) -> list[list[int]]:
    """Group queues by the urgency priority of their exams, most urgent group first."""
    priority = engine.queue_priority
    groups: dict[int, list[int]] = {}
    for q in queues:
        groups.setdefault(priority[q], []).append(q)
    return [groups[level] for level in sorted(groups)]


def readable_queues(engine: "Engine", reporter_index: int, trusts: set[int], at_home: bool = False) -> list[int]:
    """Queues of `trusts` whose exams the reporter may read there (`at_home`: in an extra home session)."""
    wl = engine.worklists  # only those trusts' queues are looked at: the cost does not grow with the consortium
    return [q for t in sorted(trusts) for q in wl.queues_of_trust[t] if wl.readable_by(reporter_index, q, at_home=at_home)]


def own_and_agreement_queues(engine: "Engine", reporter_index: int) -> list[int]:
    """The reporter's own trust's queues, plus what its named agreements (and only they) let it read
    elsewhere, even where it is also credentialed for that trust."""
    reporter = engine.reporters[reporter_index]
    wl = engine.worklists
    agreed = {t for t, _ in reporter.agreements} - {reporter.home_trust}
    return [q for t in sorted(agreed | {reporter.home_trust}) for q in wl.queues_of_trust[t]
            if (wl.q_trust[q] == reporter.home_trust and wl.readable_by(reporter_index, q))
            or (wl.q_trust[q] in agreed and wl.readable_by(reporter_index, q, agreement_only=True))]
