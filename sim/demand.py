"""Demand made concrete: every exam of one replication as rows of numpy arrays.

Arrivals are a non-homogeneous Poisson process per trust x modality x urgency stream, with a
rate that is piecewise constant by hour: annual volume x trust share (population x the trust's
multipliers) x urgency share x hour-of-week profile x calendar-month seasonality x growth, and on
bank holidays x the profile's bank-holiday factor (elective lists mostly stop; acute demand does not). Counts are drawn per hour bin and
times uniformly inside each bin, which samples that process exactly, in bulk.

What arrives is a patient *episode* (a request reported together, e.g. CT head + C-spine): the
process above runs at the stream's exam rate / its mean episode size, and each episode brings 1..k
exams (Modality.episode_size) that share patient, trust, modality, urgency and acquisition time, and
mostly the subspecialty. Patient ids are per stream (a 35-bit hash of the stream's name x 2^28 +
episode number), so they do not depend on which other trusts or streams a run holds. A stream whose episodes are all single
exams draws nothing extra: its exams are those of the process above.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from sim.scenario import HOURS_PER_WEEK, Scenario
from sim.streams import stable_hash, stream

HOURS_PER_YEAR = 365.25 * 24
EPISODE_BITS = 28  # episodes per stream < 2^28; the stream's 35-bit name hash above them (ids < 2^63)


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
    patient: np.ndarray  # one patient per episode (see the module docstring)
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


def episode_sizes(rng: np.random.Generator, shares: tuple[float, ...], n: int) -> np.ndarray:
    """Exams in each of `n` episodes (1..len(shares)); all ones, drawing nothing, when every episode is one exam."""
    if len(shares) == 1 or not any(shares[1:]):
        return np.ones(n, dtype=np.int64)
    return rng.choice(len(shares), size=n, p=shares) + 1


def mean_episode_size(shares: tuple[float, ...]) -> float:
    return float(np.dot(np.arange(1, len(shares) + 1), shares))


def generate_exams(scn: Scenario, seed: int, replication: int) -> ExamTable:
    """All exams of one replication (of the simulated trusts): the initial backlog plus arrivals over the horizon."""
    n_hours = int(np.ceil(scn.horizon_hours))
    hour_of_week = np.arange(n_hours) % HOURS_PER_WEEK
    calendar = hourly_calendar_factor(scn, n_hours)
    bin_mid_years = (np.arange(n_hours) + 0.5) / HOURS_PER_YEAR
    holiday = bank_holiday_hours(scn, n_hours)
    parts: list[tuple] = []

    for ti, mi, ui, volume, profile in _stream_rates(scn):
        if not scn.simulates(scn.trusts[ti].code):
            continue
        shares = scn.modalities[mi].episode_size_shares(scn.urgencies[ui].code)
        growth = (1 + scn.modalities[mi].annual_growth) ** bin_mid_years
        rate = volume * (HOURS_PER_WEEK / HOURS_PER_YEAR) * profile[hour_of_week] * calendar * growth
        if len(shares) > 1:  # episodes arrive; the exam volume stays `volume`
            rate = rate / mean_episode_size(shares)
        holiday_factor = scn.demand.bank_holiday_factor.get(scn.urgencies[ui].profile, 1.0)
        if holiday_factor != 1.0:
            rate = np.where(holiday, rate * holiday_factor, rate)
        name = (scn.trusts[ti].code, scn.modalities[mi].code, scn.urgencies[ui].code)
        rng = stream(seed, replication, "arrivals", *name)
        counts = rng.poisson(rate)
        times = np.repeat(np.arange(n_hours, dtype=float), counts) + rng.random(counts.sum())
        times = times[times < scn.horizon_hours]
        sizes = episode_sizes(stream(seed, replication, "episode-size", *name), shares, times.size)
        parts.append(_episode_part(scn, seed, replication, name, (ti, mi, ui), times, sizes))

    codes = {"trust": scn.trust_codes, "modality": [m.code for m in scn.modalities],
             "urgency": [u.code for u in scn.urgencies]}
    for block in scn.demand.initial_backlog:
        if not scn.simulates(block.trust):
            continue
        ti, mi, ui = (codes["trust"].index(block.trust), codes["modality"].index(block.modality),
                      codes["urgency"].index(block.urgency))
        name = ("backlog", block.trust, block.modality, block.urgency, block.min_age_days, block.max_age_days)
        rng = stream(seed, replication, "arrivals", *name)
        ages_h = rng.uniform(block.min_age_days, block.max_age_days, block.count) * 24
        # `count` exams: as many episodes as that takes, the last one cut to fit; an episode's age is the
        # first of its slots' draws, so that blocks of single exams keep their draws
        shares = scn.modalities[mi].episode_size_shares(block.urgency)
        sizes = episode_sizes(stream(seed, replication, "episode-size", *name), shares, block.count)
        ends = np.cumsum(sizes)
        n_episodes = int(np.searchsorted(ends, block.count)) + 1 if block.count else 0
        sizes = sizes[:n_episodes]
        if n_episodes:
            sizes[-1] -= ends[n_episodes - 1] - block.count
        parts.append(_episode_part(scn, seed, replication, name, (ti, mi, ui), -ages_h[:n_episodes], sizes))

    return _assemble(scn, seed, replication, parts)


def _episode_part(scn: Scenario, seed: int, replication: int, name: tuple, indices: tuple[int, int, int],
                  times: np.ndarray, sizes: np.ndarray) -> tuple:
    """One stream's exams from its episodes' times and sizes: (trust, modality, urgency, times, band,
    subspecialty, work, patient)."""
    ti, mi, ui = indices
    if times.size >= 1 << EPISODE_BITS:
        raise ValueError(f"stream {name}: {times.size:,} episodes exceed the {1 << EPISODE_BITS:,} a stream's patient ids hold")
    n = int(sizes.sum())
    episode = np.repeat(np.arange(times.size, dtype=np.int64), sizes)
    band, subspecialty, work = _exam_attributes(scn, seed, replication, name, ti, mi, n)
    if n > times.size:  # some episodes hold several exams: most keep the first exam's subspecialty
        first = np.r_[0, np.cumsum(sizes)[:-1]]
        later = np.ones(n, dtype=bool)
        later[first] = False
        keep = stream(seed, replication, "episode-subspecialty", *name).random(n) < scn.demand.episode_same_subspecialty
        same = later & keep
        subspecialty[same] = subspecialty[first[episode[same]]]
        times = times[episode]
    patient = (np.int64(stable_hash("patients", *name) >> 29) << EPISODE_BITS) + episode
    return ti, mi, ui, times, band, subspecialty, work, patient


def _assemble(scn: Scenario, seed: int, replication: int, parts: list[tuple]) -> ExamTable:
    """Concatenate the streams' parts and sort by acquisition time, one column at a time (low peak memory).

    The sort is stable, so an episode's exams (one acquisition time) stay next to each other."""
    sizes = [p[3].size for p in parts]
    columns: dict[str, list[np.ndarray]] = {
        "trust": [np.full(n, p[0], dtype=np.int16) for n, p in zip(sizes, parts)],
        "modality": [np.full(n, p[1], dtype=np.int16) for n, p in zip(sizes, parts)],
        "urgency": [np.full(n, p[2], dtype=np.int16) for n, p in zip(sizes, parts)],
        "arrival": [p[3] for p in parts],
        "band": [p[4] for p in parts],
        "subspecialty": [p[5] for p in parts],
        "work_hours": [p[6] for p in parts],
        "patient": [p[7] for p in parts],
    }
    parts.clear()
    dtypes = {"arrival": np.float64, "work_hours": np.float64, "patient": np.int64}
    arrival = np.concatenate(columns.pop("arrival")) if sizes else np.empty(0)
    order = np.argsort(arrival, kind="stable")
    table = {"arrival": arrival[order]}
    del arrival
    for name in list(columns):
        chunks = columns.pop(name)
        merged = np.concatenate(chunks) if chunks else np.empty(0, dtype=dtypes.get(name, np.int16))
        del chunks
        table[name] = merged.astype(dtypes.get(name, np.int16), copy=False)[order]
    return ExamTable(**table)


def start_datetime(scn: Scenario) -> dt.datetime:
    return dt.datetime.combine(scn.start_date, dt.time())
