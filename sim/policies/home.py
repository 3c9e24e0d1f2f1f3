"""Extra non-core sessions: home insourcing, and the broker's market of offered sessions.

At the start of each weekly non-core slot (e.g. weekday evenings) every participating reporter
(a home workstation, or named `participants` as in a funded pilot) who is not on leave that week,
whose trust is live on the shared system, is offered the slot when the work in the session's own
worklist (its kind, the trusts it reads, the reader's rights) is above the threshold; it takes it with the uptake probability (from the uptake curve at the
scenario's tariff multiplier). Uptake draws are fixed per reporter and slot in advance from the
reporter's own stream, so two scenarios offering the same slot see the same answer (common random
numbers).

A session reads its own worklist (queues tagged home-eligible: the configured urgencies and
modalities, waiting at least `min_age_hours`), most urgent first and oldest first: at the reader's own trust (`reads = "own"`,
insourcing), or across every live trust it is credentialed for, only the work whose insourcing
tariff is below the owning trust's outsourcing price (`reads = "posted"`: trusts post the work
they would otherwise outsource, the financial dashboard admits a match only where it is cheaper).
Its exams take the home route, paid at the insourcing tariff by the owning trust. VPN ("home")
and PACS ("all") outages are cut out of the sessions.

A scenario may split the sessions into kinds by modality (`worklists`, e.g. plain-film sessions and
CT/MR sessions, each a share of the sessions taken; the kind is drawn per reporter and slot from the
reporter's own stream), let the participants read wider than their core rights at home
(`credentials`, as a pilot's contract did) and add an image download to each home read
(`download_minutes` by modality).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING

import numpy as np

from sim.demand import ExamTable
from sim.policies.base import queues_by_priority, readable_queues
from sim.scenario import HOURS_PER_WEEK, HomeReporting, Scenario
from sim.workforce import merge, subtract, weekly_spans
from sim.worklist import ROUTE_CODE

if TYPE_CHECKING:
    from sim.model import Engine


def offer_slots(config: HomeReporting, horizon_hours: float) -> list[tuple[float, float]]:
    """Absolute (start, end) hours of every offered slot over the horizon."""
    week = merge(weekly_spans(config.sessions))
    n_weeks = int(np.ceil(horizon_hours / HOURS_PER_WEEK))
    return [(w * HOURS_PER_WEEK + s, min(w * HOURS_PER_WEEK + e, horizon_hours))
            for w in range(n_weeks) for s, e in week if w * HOURS_PER_WEEK + s < horizon_hours]


def home_eligible(scn: Scenario, exams: ExamTable, kind: np.ndarray | None = None) -> np.ndarray:
    """Whether an extra session may read each exam (its urgency, modality and, for posted work, price).

    All three depend on the exam's modality x band x urgency only: decided once per combination
    (`kind`: each exam's combination, sim.finance.price_kinds, when the caller has it already)."""
    from sim.finance import kind_codes, price_kinds

    if kind is None:
        kind = price_kinds(scn, exams)[0]
    return _eligible(scn, *kind_codes(scn))[kind]


def _eligible(scn: Scenario, modality: np.ndarray, band: np.ndarray, urgency: np.ndarray) -> np.ndarray:
    cfg = scn.home_reporting
    ok = np.ones(len(modality), dtype=bool)
    if cfg.urgencies:
        ok &= np.isin(urgency, [i for i, u in enumerate(scn.urgencies) if u.code in cfg.urgencies])
    if cfg.modalities:
        ok &= np.isin(modality, [i for i, m in enumerate(scn.modalities) if m.code in cfg.modalities])
    if cfg.reads == "posted":
        from sim.finance import outsourcing_price, tariff

        price = outsourcing_price(scn, modality, band, urgency)
        ok &= tariff(scn, "insourcing_tariff", modality, band) < np.nan_to_num(price, nan=-np.inf)
    return ok


def go_live_hours(scn: Scenario) -> np.ndarray:
    """Hour each trust goes live on the shared system (-inf: live before the start)."""
    return np.array([-np.inf if t.go_live is None else (t.go_live - scn.start_date).days * 24.0 for t in scn.trusts])


class HomeSessions:
    name = "home_reporting"

    def __init__(self, config: HomeReporting):
        self.config = config
        self.sessions: list[tuple[int, float, float]] = []  # (reporter index, start, end) taken
        self.session_hours: list[float] = []  # hours each taken session could read (after the core read in hand, outages)

    def _takes_part(self, reporter) -> bool:
        """Named participants (group or reporter id) when the scenario lists any, else workstation holders."""
        named = self.config.participants
        if named:
            return reporter.group in named or reporter.reporter_id in named
        return reporter.home_workstation

    def start(self, engine: "Engine") -> None:
        engine.env.process(self._run(engine))

    @property
    def tag_width(self) -> int:
        """Bits of the queue tag this intervention uses: one per kind of session (worklists), else one."""
        return max(1, int(np.ceil(np.log2(len(self.config.worklists) + 1))))

    def queue_filter(self, engine: "Engine") -> np.ndarray:
        """Exams an extra session may read (0: none): their queues form the sessions' worklists; with
        several kinds of session, 1 + the kind whose modalities hold the exam's (queues split by kind)."""
        scn = engine.scenario
        eligible = home_eligible(scn, engine.exams)
        if not self.config.worklists:
            return eligible
        kind = np.zeros(len(engine.exams), dtype=np.int8)
        for k, worklist in reversed(list(enumerate(self.config.worklists))):  # the first listed kind wins
            codes = [i for i, m in enumerate(scn.modalities) if m.code in worklist.modalities]
            kind[np.isin(engine.exams.modality, codes)] = k + 1
        return np.where(eligible, kind, 0).astype(np.int8)

    def _kind(self, wl, q: int) -> int:
        """0 if an extra session may not read queue q, else 1 + its kind of session (1 with no kinds)."""
        return (wl.q_tag[q] & self.tag) >> self.tag_shift

    def _download_hours(self, engine: "Engine"):
        """Image download hours added to each home read, by worklist position (None: no download time)."""
        minutes = self.config.download_minutes
        if not any(minutes.values()):
            return None
        from sim.worklist import _array

        per_modality = np.array([minutes.get(m.code, 0.0) for m in engine.scenario.modalities]) / 60
        hours = np.zeros(len(engine.worklists.times))
        hours[engine.worklists.position_of_exam] = per_modality[engine.exams.modality]
        out = _array("d", 0.0, hours.size)
        np.frombuffer(out, dtype=np.float64)[:] = hours
        return out

    def _trusts_read(self, engine: "Engine", index: int, live: np.ndarray) -> frozenset[int]:
        reporter = engine.reporters[index]
        if self.config.reads == "own":
            return frozenset({reporter.home_trust})
        return frozenset(t for t in reporter.credentialed_trusts if live[t])

    def _worklist(self, engine: "Engine", index: int, trusts: frozenset[int], kind: int
                  ) -> tuple[list[list[int]], np.ndarray]:
        """The session's groups (by urgency priority) and its queues' indices into `_tagged` (to weigh the
        work waiting in it). Readers with the same rights get the same objects: a slot weighs each distinct
        worklist's waiting work once, and the engine builds each distinct worklist's plan once (Engine._plan)."""
        key = (index, trusts, kind)
        if key not in self._worklists:
            wl = engine.worklists
            mine = [q for q in readable_queues(engine, index, set(trusts), at_home=True) if self._kind(wl, q) == kind]
            if tuple(mine) not in self._same:
                where = {q: j for j, q in enumerate(self._tagged)}
                self._same[tuple(mine)] = (queues_by_priority(engine, mine),
                                           np.array([where[q] for q in mine], dtype=np.int64))
            self._worklists[key] = self._same[tuple(mine)]
        return self._worklists[key]

    def _run(self, engine: "Engine"):
        cfg, env, wl = self.config, engine.env, engine.worklists
        slots = offer_slots(cfg, engine.scenario.horizon_hours)
        uptake = cfg.uptake()
        live_from = go_live_hours(engine.scenario)
        takers = [i for i, r in enumerate(engine.reporters) if self._takes_part(r)]
        draws = np.array([engine.stream("home-uptake", engine.reporters[i].reporter_id).random(len(slots))
                          for i in takers]).reshape(len(takers), len(slots))
        # per slot, the takers whose draw accepts it, in reporter order: the rest are never asked
        taker_array, accepts = np.asarray(takers, dtype=np.int64), draws < uptake
        accepting = [taker_array[accepts[:, k]].tolist() for k in range(len(slots))]
        kinds = {i: row.tolist() for i, row in self._session_kinds(engine, takers, len(slots)).items()}
        download = self._download_hours(engine)
        self._tagged = [q for q in range(wl.n_queues) if wl.q_tag[q] & self.tag]
        # (reader, trusts, kind) -> its worklist, the one object per distinct list of queues (`_same`)
        self._worklists: dict[tuple[int, frozenset[int], int], tuple[list[list[int]], np.ndarray]] = {}
        self._same: dict[tuple[int, ...], tuple[list[list[int]], np.ndarray]] = {}
        worklist_of: dict[tuple[int, int], tuple[list[list[int]], np.ndarray]] = {}  # (reporter, kind), while `live` holds
        live_before = None
        home, home_outages = ROUTE_CODE["home"], engine.outages["home"]
        ends_of = {i: [e for _, e in engine.reporters[i].intervals] for i in takers}  # to find a slot's core sessions
        for k, (start, end) in enumerate(slots):
            if env.now < start:
                yield env.timeout(start - env.now)
            week = int(start // HOURS_PER_WEEK)
            live = (live_from <= start).tolist()
            if live != live_before:  # a trust went live: what each reporter reads may have changed
                worklist_of.clear()
                live_before = live
            waiting = None  # worked out when a reporter first asks, once a slot
            enough: dict[int, bool] = {}  # id(positions) -> whether that worklist has enough waiting, this slot
            for i in accepting[k]:
                reporter = engine.reporters[i]
                if not live[reporter.home_trust] or week in reporter.leave_weeks:
                    continue
                kind = kinds[i][k]
                entry = worklist_of.get((i, kind))
                if entry is None:
                    trusts = self._trusts_read(engine, i, live)
                    entry = worklist_of[(i, kind)] = self._worklist(engine, i, trusts, kind)
                groups, positions = entry
                if not groups:
                    continue
                if waiting is None:
                    waiting = self._waiting(wl, start)
                if id(positions) not in enough:
                    enough[id(positions)] = self._enough(waiting, positions)
                if not enough[id(positions)]:
                    continue
                # one reporter, one exam at a time: after the core read in hand, outside core sessions (those
                # from the first that ends after `begin`: earlier ones cannot overlap)
                begin = max(start, engine.busy_until[i])
                core = reporter.intervals[bisect_right(ends_of[i], begin):]
                intervals = subtract(subtract(((begin, end),), core), home_outages)
                engine.start_session(i, intervals, home, home, cfg.reading_time_factor, groups=groups,
                                     min_age=cfg.min_age_hours, extra_hours=download)
                self.sessions.append((i, start, end))
                self.session_hours.append(sum(b - a for a, b in intervals))

    def records(self) -> dict[str, list[tuple]]:
        """Sessions taken: (reporter index, slot start, slot end, hours offered for reading)."""
        return {"sessions": [(*s, h) for s, h in zip(self.sessions, self.session_hours)]}

    def _session_kinds(self, engine: "Engine", takers: list[int], n_slots: int) -> dict[int, np.ndarray]:
        """Per taker and slot, the kind of session it would be (1 + worklist index; all 1 with no kinds),
        drawn in advance from the reporter's own stream (common random numbers across scenarios)."""
        worklists = self.config.worklists
        if not worklists:
            return {i: np.ones(n_slots, dtype=np.int64) for i in takers}
        shares = np.array([w.share for w in worklists])
        return {i: engine.stream("home-session-kind", engine.reporters[i].reporter_id).choice(
            len(worklists), size=n_slots, p=shares / shares.sum()) + 1 for i in takers}

    def _waiting(self, wl, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Per home-tagged queue: exams, and reading hours at speed 1, that a session could read now."""
        cutoff = now - self.config.min_age_hours
        exams, hours = np.zeros(len(self._tagged)), np.zeros(len(self._tagged))
        in_hours = self.config.backlog_threshold_hours is not None
        for j, q in enumerate(self._tagged):
            n = wl.waiting(q, cutoff)
            if n:
                exams[j] = n
                if in_hours:
                    hours[j] = wl.work_between(wl.ptr[q], wl.ptr[q] + n)
        return exams, hours

    def _enough(self, waiting: tuple[np.ndarray, np.ndarray], worklist: np.ndarray) -> bool:
        """Whether the work in this session's own worklist (its kind, trusts and the reader's rights) is
        above the offer threshold: a plain-film session is not offered on a CT backlog."""
        cfg = self.config
        if cfg.backlog_threshold_hours is not None:
            return float(waiting[1][worklist].sum()) >= cfg.backlog_threshold_hours
        if cfg.backlog_threshold_exams is not None:
            return float(waiting[0][worklist].sum()) > cfg.backlog_threshold_exams
        return True
