"""Demand made concrete: every exam of one replication as rows of numpy arrays.

Arrivals are a non-homogeneous Poisson process per trust x modality x urgency stream, with a
rate that is piecewise constant by hour: annual volume x trust share (population x the trust's
multipliers) x urgency share x hour-of-week profile x calendar-month seasonality x growth, and on
bank holidays x the profile's bank-holiday factor (elective lists mostly stop; acute demand does not). Counts are drawn per hour bin and
times uniformly inside each bin, which samples that process exactly, in bulk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from sim.scenario import HOURS_PER_WEEK, Scenario
from sim.streams import stream

HOURS_PER_YEAR = 365.25 * 24


@dataclass(frozen=True)
class ExamTable:
    """One row per exam, sorted by acquisition time. Codes index the scenario's lists (0-based).

    arrival: hours since the scenario start (negative for the initial backlog)
    work_hours: reading time at speed 1, hours
    """

    arrival: np.ndarray
    trust: np.ndarray
    modality: np.ndarray
    urgency: np.ndarray
    band: np.ndarray
    subspecialty: np.ndarray
    patient: np.ndarray
    work_hours: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival)

    @property
    def n_initial_backlog(self) -> int:
        return int(np.count_nonzero(self.arrival < 0))


def hourly_calendar_factor(scn: Scenario, n_hours: int) -> np.ndarray:
    """Seasonality x growth-free calendar multiplier per absolute hour bin (mean month = 1)."""
    season = np.asarray(scn.demand.seasonality, dtype=float)
    season = season / season.mean()
    n_days = -(-n_hours // 24)
    days = np.datetime64(scn.start_date) + np.arange(n_days).astype("timedelta64[D]")
    month = days.astype("datetime64[M]").astype(int) % 12
    return np.repeat(season[month], 24)[:n_hours]


def bank_holiday_hours(scn: Scenario, n_hours: int) -> np.ndarray:
    """True for each absolute hour bin that falls on one of the scenario's bank holidays."""
    day_of = np.arange(n_hours) // 24
    return np.isin(day_of, [h for h in scn.bank_holiday_days if 0 <= h * 24 < n_hours])


def _stream_rates(scn: Scenario) -> list[tuple[int, int, int, float, np.ndarray]]:
    """(trust, modality, urgency, annual volume, normalised hour-of-week profile) per stream."""
    population = np.array([t.population for t in scn.trusts], dtype=float)
    # the multiplier scales a trust's own demand; it does not take volume from the other trusts
    share = population / population.sum() * np.array([t.demand_multiplier for t in scn.trusts])
    urgency_index = {u.code: i for i, u in enumerate(scn.urgencies)}
    profiles = {name: np.asarray(w, dtype=float) / np.sum(w) for name, w in scn.demand.profiles.items()}
    rows = []
    for ti, _trust in enumerate(scn.trusts):
        for mi, modality in enumerate(scn.modalities):
            for code, mix in modality.urgency_mix.items():
                ui = urgency_index[code]
                volume = modality.annual_volume * share[ti] * mix * _trust.modality_multiplier.get(modality.code, 1.0)
                if volume > 0:
                    rows.append((ti, mi, ui, volume, profiles[scn.urgencies[ui].profile]))
    return rows


def subspecialty_mix(scn: Scenario, trust_index: int, modality_index: int) -> dict[str, float]:
    """The modality's subspecialty mix at one trust: reweighted by the trust's case-mix weights."""
    weights = scn.trusts[trust_index].subspecialty_weight
    raw = {c: share * weights.get(c, 1.0) for c, share in scn.modalities[modality_index].subspecialty_mix.items()}
    total = sum(raw.values())
    return {c: v / total for c, v in raw.items()} if total > 0 else dict(scn.modalities[modality_index].subspecialty_mix)


def _exam_attributes(scn: Scenario, seed: int, replication: int, name: tuple, trust_index: int,
                     modality_index: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Band, subspecialty and work (hours at speed 1) for `n` exams of one stream."""
    modality = scn.modalities[modality_index]
    mix_rng = stream(seed, replication, "exam-mix", *name)
    band = mix_rng.choice(len(modality.band_mix), size=n, p=modality.band_mix).astype(np.int16)
    mix = subspecialty_mix(scn, trust_index, modality_index)
    sub_index = np.array([scn.subspecialties.index(c) for c in mix], dtype=np.int16)
    subspecialty = sub_index[mix_rng.choice(len(mix), size=n, p=list(mix.values()))]
    reading_rng = stream(seed, replication, "reading", *name)
    work = np.empty(n)
    for b in range(len(modality.band_mix)):
        rows = np.flatnonzero(band == b)
        if rows.size:
            work[rows] = modality.reading_minutes[str(b + 1)].sample(reading_rng, rows.size) / 60.0
    return band, subspecialty, work


def generate_exams(scn: Scenario, seed: int, replication: int) -> ExamTable:
    """All exams of one replication: the initial backlog plus arrivals over the horizon."""
    n_hours = int(np.ceil(scn.horizon_hours))
    hour_of_week = np.arange(n_hours) % HOURS_PER_WEEK
    calendar = hourly_calendar_factor(scn, n_hours)
    bin_mid_years = (np.arange(n_hours) + 0.5) / HOURS_PER_YEAR
    holiday = bank_holiday_hours(scn, n_hours)
    parts: list[tuple] = []

    for ti, mi, ui, volume, profile in _stream_rates(scn):
        growth = (1 + scn.modalities[mi].annual_growth) ** bin_mid_years
        rate = volume * (HOURS_PER_WEEK / HOURS_PER_YEAR) * profile[hour_of_week] * calendar * growth
        holiday_factor = scn.demand.bank_holiday_factor.get(scn.urgencies[ui].profile, 1.0)
        if holiday_factor != 1.0:
            rate = np.where(holiday, rate * holiday_factor, rate)
        name = (scn.trusts[ti].code, scn.modalities[mi].code, scn.urgencies[ui].code)
        rng = stream(seed, replication, "arrivals", *name)
        counts = rng.poisson(rate)
        times = np.repeat(np.arange(n_hours, dtype=float), counts) + rng.random(counts.sum())
        times = times[times < scn.horizon_hours]
        parts.append((ti, mi, ui, times, *_exam_attributes(scn, seed, replication, name, ti, mi, times.size)))

    codes = {"trust": scn.trust_codes, "modality": [m.code for m in scn.modalities],
             "urgency": [u.code for u in scn.urgencies]}
    for block in scn.demand.initial_backlog:
        ti, mi, ui = (codes["trust"].index(block.trust), codes["modality"].index(block.modality),
                      codes["urgency"].index(block.urgency))
        name = ("backlog", block.trust, block.modality, block.urgency, block.min_age_days, block.max_age_days)
        rng = stream(seed, replication, "arrivals", *name)
        ages_h = rng.uniform(block.min_age_days, block.max_age_days, block.count) * 24
        parts.append((ti, mi, ui, -ages_h, *_exam_attributes(scn, seed, replication, name, ti, mi, block.count)))

    return _assemble(scn, seed, replication, parts)


def _assemble(scn: Scenario, seed: int, replication: int, parts: list[tuple]) -> ExamTable:
    """Concatenate the streams' parts and sort by acquisition time, one column at a time (low peak memory)."""
    sizes = [p[3].size for p in parts]
    columns: dict[str, list[np.ndarray]] = {
        "trust": [np.full(n, p[0], dtype=np.int16) for n, p in zip(sizes, parts)],
        "modality": [np.full(n, p[1], dtype=np.int16) for n, p in zip(sizes, parts)],
        "urgency": [np.full(n, p[2], dtype=np.int16) for n, p in zip(sizes, parts)],
        "arrival": [p[3] for p in parts],
        "band": [p[4] for p in parts],
        "subspecialty": [p[5] for p in parts],
        "work_hours": [p[6] for p in parts],
    }
    parts.clear()
    dtypes = {"arrival": np.float64, "work_hours": np.float64}
    arrival = np.concatenate(columns.pop("arrival")) if sizes else np.empty(0)
    order = np.argsort(arrival, kind="stable")
    table = {"arrival": arrival[order]}
    del arrival
    for name in list(columns):
        chunks = columns.pop(name)
        merged = np.concatenate(chunks) if chunks else np.empty(0, dtype=dtypes.get(name, np.int16))
        del chunks
        table[name] = merged.astype(dtypes.get(name, np.int16), copy=False)[order]
    table["patient"] = _patients(scn, seed, replication, table["trust"])
    return ExamTable(**table)


def _patients(scn: Scenario, seed: int, replication: int, trust: np.ndarray) -> np.ndarray:
    """Patient ids: within each trust, consecutive exams form one patient's group.

    Group sizes are geometric with mean `exams_per_patient`, so several exams acquired close
    together (e.g. CT head then CT chest) share a patient, as in the pilot (1,160 exams, 939 patients).
    """
    patient = np.empty(trust.size, dtype=np.int64)
    next_id = 0
    p = 1.0 / scn.demand.exams_per_patient
    for ti, code in enumerate(scn.trust_codes):
        rows = np.flatnonzero(trust == ti)
        if rows.size == 0:
            continue
        sizes = stream(seed, replication, "patients", code).geometric(p, rows.size)
        group = np.repeat(np.arange(rows.size), sizes)[: rows.size]
        patient[rows] = next_id + group
        next_id += int(group[-1]) + 1
    return patient


def start_datetime(scn: Scenario) -> dt.datetime:
    return dt.datetime.combine(scn.start_date, dt.time())
