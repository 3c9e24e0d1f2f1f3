"""Activity logs: one row per exam, read from a RIS export (validated, pseudonymised) or exported from a run.

Schema (DESIGN section 8)::

    exam_id, patient_id, trust, modality, band, subspecialty, urgency, acquired_at, reported_at,
    reporter_id, reporting_trust, route (core|home|brokered|outsourced|unreported)

Timestamps are ISO 8601; trusts are ODS codes. An optional ``reading_minutes`` column (time spent
reporting the exam) is kept when present; every other column is dropped on load, because a RIS
export can carry names, dates of birth or addresses that an evaluation never needs.

Reading (:func:`read_activity_log`):

* every row is checked and each bad row gets every reason that applies (unknown codes, band not
  an integer 1-4, unparseable or inconsistent timestamps, duplicate exam_id, missing values,
  an invalid NHS number); bad rows are excluded and reported in ``ActivityLog.rejected``; when
  more than ``max_bad_fraction`` of the rows are bad, :class:`ActivityLogError` names the file, the
  count per reason and an example row per reason, because a log that bad is more likely the wrong
  export than a few typos;
* patient_id and exam_id (an accession number identifies a patient's episode) are replaced by
  keyed pseudonyms (:mod:`sim.privacy`) before anything is returned: the raw values do not survive
  in the returned object. reporter_id (staff) is pseudonymised too unless asked otherwise
  (``pseudonymise_reporters=False``): staff lists given later are mapped with the same key;
* timestamps with a UTC offset ("...Z", "+01:00") are exact instants; timestamps without one are UK
  local time (Europe/London; in the repeated hour of the autumn change the earlier, BST, reading is
  taken unless that would put a report before its acquisition; a time in the skipped spring hour is
  moved forward). ``acquired_at`` / ``reported_at`` are naive UK local times (calendar days and
  periods use them); ``acquired_utc`` / ``reported_utc`` are the same instants as naive UTC, and every
  duration (turnaround, "reported before acquired", gaps between reports) is computed from them.

Row numbers count data rows from 1 (row 1 is the first line after a CSV's header).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sim.atomic import atomic_write
from sim.privacy import NHS_SEPARATORS, TEXT, check_key, load_key, pseudonymise

ODS_TRUSTS = {  # DESIGN section 8; facts §7 (codes from general knowledge, unchecked)
    "RX1": "Nottingham University Hospitals",
    "RNQ": "Kettering General Hospital",
    "RFS": "Chesterfield Royal Hospital",
    "RNS": "Northampton General Hospital",
    "RWE": "University Hospitals of Leicester",
    "RWD": "United Lincolnshire Hospitals",
    "RK5": "Sherwood Forest Hospitals",
    "RJF": "Burton Hospitals",
}
MODALITIES = ("XR", "CT", "MR", "US")  # as modelled in params/emrad.toml; pass `modalities=` for more
URGENCIES = ("ED", "IP", "CANCER", "GP", "OP")  # as in params/emrad.toml
ROUTES = ("core", "home", "brokered", "outsourced", "unreported")
IN_HOUSE_ROUTES = ("core", "home", "brokered")  # reported by the consortium's own staff
N_BANDS = 4
COLUMNS = ("exam_id", "patient_id", "trust", "modality", "band", "subspecialty", "urgency", "acquired_at",
           "reported_at", "reporter_id", "reporting_trust", "route")
OPTIONAL_COLUMNS = ("reading_minutes",)
REQUIRED_VALUES = ("exam_id", "patient_id", "trust", "modality", "band", "urgency", "acquired_at", "route")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
LOCAL_TZ = "Europe/London"

_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)? *(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"  # a time with a UTC offset


class ActivityLogError(ValueError):
    """An activity log that cannot be used; the message names the file and what is wrong."""

    def __init__(self, message: str, counts: Mapping[str, int] | None = None,
                 examples: Mapping[str, int] | None = None):
        super().__init__(message)
        self.counts = dict(counts or {})
        self.examples = dict(examples or {})


@dataclass(frozen=True, eq=False)
class ActivityLog:
    """A validated, pseudonymised activity log.

    exams: accepted rows in schema order (exam_id and patient_id are pseudonyms; acquired_at and
        reported_at naive datetimes, NaT when not reported; band int) plus ``row``, the source row.
    rejected: one row per excluded input row: row, exam_id (pseudonym, or None when missing),
        reason (every reason that applies, joined by "; ").
    reason_counts: rows per reason (a row with two reasons counts under both).

    The pseudonymisation key is kept in memory only, to map staff ids given later (participants) to
    their pseudonyms; it is not in the repr and is dropped when the object is pickled, so a saved
    ActivityLog or Evaluation never carries it.
    """

    exams: pd.DataFrame
    rejected: pd.DataFrame
    reason_counts: pd.Series
    source: str
    n_rows: int
    dropped_columns: tuple[str, ...] = ()
    reporters_pseudonymised: bool = False
    _key: bytes = field(default=b"", repr=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_key": b""}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @property
    def n_rejected(self) -> int:
        return len(self.rejected)

    def reporter_pseudonyms(self, ids: Sequence[str]) -> list[str]:
        """The reporter_id values the log uses for these staff ids (pseudonyms if they were pseudonymised)."""
        ids = [str(i).strip() for i in ids]
        if not self.reporters_pseudonymised:
            return ids
        if not self._key:
            raise ValueError("this ActivityLog was unpickled without its key: reporter ids cannot be mapped; "
                             "pass the pseudonyms themselves")
        known = set(self.exams["reporter_id"].dropna())
        return [i if i in known else pseudonymise([i], self._key, prefix="R", domain="reporter")[0] for i in ids]


def codes_from_scenario(scn) -> dict:
    """`read_activity_log` options that accept the codes of a scenario (e.g. a test scenario's trusts)."""
    return {"trusts": scn.trust_codes, "modalities": [m.code for m in scn.modalities],
            "urgencies": [u.code for u in scn.urgencies], "n_bands": scn.n_bands}


def read_activity_log(source: str | Path | pd.DataFrame, key: bytes | None = None, max_bad_fraction: float = 0.05, *,
                      trusts: Sequence[str] | None = None, modalities: Sequence[str] | None = None,
                      urgencies: Sequence[str] | None = None, n_bands: int = N_BANDS,
                      pseudonymise_reporters: bool = True, check_nhs_numbers: bool = True,
                      name: str | None = None, encoding: str | None = None, plausible_start=None,
                      plausible_end=None, today=None) -> ActivityLog:
    """Read, validate and pseudonymise an activity log (CSV, Parquet or a DataFrame in the raw schema).

    key: pseudonymisation key; default :func:`sim.privacy.load_key` (environment, or a random
        per-run key with a warning). trusts / modalities / urgencies: accepted codes (default the 8
        EMRAD ODS codes, XR/CT/MR/US and ED/IP/CANCER/GP/OP); matched case-insensitively and
        stored in the spelling given here. n_bands: bands are integers 1..n_bands.
    key: at least 32 bytes (:func:`sim.privacy.check_key`).
    pseudonymise_reporters: replace reporter_id with keyed pseudonyms too (default; False keeps staff ids).
    check_nhs_numbers: reject a patient_id of 10 digits (spaces/hyphens allowed) that fails the NHS
        number modulus 11 check; turn off for a trust whose local hospital numbers have 10 digits.
    name: how errors name a DataFrame source (default "<DataFrame>").
    encoding: of a CSV file; default UTF-8, or UTF-16 / UTF-8 as a byte-order mark says (also UTF-16
        without a mark, recognised by its zero bytes).
    plausible_start, plausible_end: the pilot's first and last day where known; timestamps more than
        max(2 years, the pilot's length) before the start or more than a year after the end are
        rejected. Always rejected: timestamps after `today` (default: today) and before
        EARLIEST_TIMESTAMP (see :func:`_date_window_problems`).
    """
    if not 0 <= max_bad_fraction <= 1:
        raise ValueError(f"max_bad_fraction must be between 0 and 1, not {max_bad_fraction}")
    key = load_key() if key is None else check_key(key, "the pseudonymisation key")
    raw, label = _read(source, name, encoding)
    text = _columns(raw, label)
    dropped = tuple(c for c in raw.columns.map(lambda c: str(c).strip().lower()) if c not in COLUMNS + OPTIONAL_COLUMNS)
    n = len(raw)
    if n == 0:
        raise ActivityLogError(f"{label}: the activity log has no rows")

    vocab = {
        "trust": _vocabulary(trusts if trusts is not None else ODS_TRUSTS),
        "modality": _vocabulary(modalities if modalities is not None else MODALITIES),
        "urgency": _vocabulary(urgencies if urgencies is not None else URGENCIES),
        "route": _vocabulary(ROUTES),
    }
    problems: dict[str, np.ndarray] = {}

    def flag(reason: str, mask) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            problems[reason] = problems.get(reason, np.zeros(n, dtype=bool)) | mask

    for column in REQUIRED_VALUES:
        flag(f"missing {column}", text[column].isna())
    codes = {}
    for column, known in vocab.items():
        codes[column] = text[column].str.upper().map(known)
        flag(f"unknown {column}", text[column].notna() & codes[column].isna())
    route = codes["route"]
    in_house = route.isin(IN_HOUSE_ROUTES).to_numpy()
    codes["reporting_trust"] = text["reporting_trust"].str.upper().map(vocab["trust"])
    flag("unknown reporting_trust", in_house & text["reporting_trust"].notna() & codes["reporting_trust"].isna())

    band = pd.to_numeric(text["band"], errors="coerce").astype(float)
    flag(f"band not an integer 1-{n_bands}",
         text["band"].notna() & ~((band == np.round(band)) & (band >= 1) & (band <= n_bands)).fillna(False))

    acquired_utc = _parse_times(text["acquired_at"])
    reported_utc = _parse_times(text["reported_at"], after=acquired_utc)
    acquired, reported = _local(acquired_utc), _local(reported_utc)
    flag("unparseable acquired_at", text["acquired_at"].notna() & acquired.isna())
    flag("unparseable reported_at", text["reported_at"].notna() & reported.isna())
    flag("reported before acquired", (reported_utc < acquired_utc).fillna(False))
    for reason, mask in _date_window_problems(acquired, reported, plausible_start, plausible_end, today):
        flag(reason, mask)
    flag("missing reported_at for a reported route", in_house & text["reported_at"].isna())
    flag("reported_at given for an unreported exam", (route == "unreported").fillna(False) & text["reported_at"].notna())
    flag("missing reporter_id for a reported route", in_house & text["reporter_id"].isna())

    flag("duplicate exam_id", text["exam_id"].notna() & text["exam_id"].duplicated(keep="first"))
    patient = text["patient_id"]
    compact = patient.str.replace(NHS_SEPARATORS, "", regex=True)
    nhs_like = compact.str.fullmatch(r"\d{10}").fillna(False).to_numpy(dtype=bool)
    if check_nhs_numbers:
        flag("invalid NHS number", nhs_like & ~_nhs_valid(compact.to_numpy(dtype=object), nhs_like))

    minutes = None
    if "reading_minutes" in text:
        minutes = pd.to_numeric(text["reading_minutes"], errors="coerce").astype(float)
        flag("invalid reading_minutes", text["reading_minutes"].notna() & ~(minutes >= 0).fillna(False))

    bad = np.zeros(n, dtype=bool)
    for mask in problems.values():
        bad |= mask
    counts = {reason: int(mask.sum()) for reason, mask in problems.items()}
    examples = {reason: int(np.flatnonzero(mask)[0]) + 1 for reason, mask in problems.items()}
    if bad.sum() > max_bad_fraction * n:
        detail = "\n".join(f"  {reason}: {counts[reason]:,} row(s), e.g. row {examples[reason]}" for reason in counts)
        for column in ("trust", "modality", "urgency", "route"):
            if f"unknown {column}" in counts:
                detail += f"\n  ({column} codes accepted: {', '.join(vocab[column].values())})"
        raise ActivityLogError(
            f"{label}: {int(bad.sum()):,} of {n:,} rows ({bad.mean():.1%}) are invalid, more than the "
            f"{max_bad_fraction:.1%} allowed (max_bad_fraction):\n{detail}\n"
            "(rows are data rows counted from 1, the first line after the header)", counts, examples)

    exam_pseudonyms = pseudonymise(text["exam_id"].to_numpy(dtype=object), key, prefix="E", domain="exam")
    reasons = np.full(n, "", dtype=object)
    for reason, mask in problems.items():
        reasons = np.where(mask, np.where(reasons == "", reason, reasons + "; " + reason), reasons)
    rows = np.arange(1, n + 1)
    rejected = pd.DataFrame({"row": rows[bad], "exam_id": exam_pseudonyms[bad], "reason": reasons[bad]})

    if bad.all():  # possible with max_bad_fraction = 1: nothing is left to evaluate
        detail = "\n".join(f"  {reason}: {counts[reason]:,} row(s), e.g. row {examples[reason]}" for reason in counts)
        raise ActivityLogError(f"{label}: all {n:,} rows are invalid:\n{detail}", counts, examples)
    ok = ~bad
    reporter = text["reporter_id"].to_numpy(dtype=object)[ok]
    if pseudonymise_reporters:
        reporter = pseudonymise(reporter, key, prefix="R", domain="reporter")
    exams = pd.DataFrame({
        "exam_id": exam_pseudonyms[ok],
        "patient_id": pseudonymise(patient.to_numpy(dtype=object)[ok], key, prefix="P", domain="patient"),
        "trust": codes["trust"].to_numpy(dtype=object)[ok],
        "modality": codes["modality"].to_numpy(dtype=object)[ok],
        "band": band.to_numpy()[ok].astype(np.int64),
        "subspecialty": text["subspecialty"].to_numpy(dtype=object)[ok],
        "urgency": codes["urgency"].to_numpy(dtype=object)[ok],
        "acquired_at": acquired.to_numpy()[ok],
        "reported_at": reported.to_numpy()[ok],
        "reporter_id": reporter,
        "reporting_trust": np.where(pd.isna(codes["reporting_trust"]), text["reporting_trust"].to_numpy(dtype=object),
                                    codes["reporting_trust"].to_numpy(dtype=object))[ok],
        "route": route.to_numpy(dtype=object)[ok],
        "acquired_utc": acquired_utc.to_numpy()[ok],
        "reported_utc": reported_utc.to_numpy()[ok],
    })
    if minutes is not None:
        exams["reading_minutes"] = minutes.to_numpy()[ok]
    exams["row"] = rows[ok]
    if exams["exam_id"].duplicated().any():  # 64-bit pseudonyms: practically impossible, but never silent
        raise ActivityLogError(f"{label}: two exam_ids got the same pseudonym; use longer pseudonyms")
    return ActivityLog(exams=exams, rejected=rejected, reason_counts=pd.Series(counts, dtype="int64", name="rows"),
                       source=label, n_rows=n, dropped_columns=dropped,
                       reporters_pseudonymised=pseudonymise_reporters, _key=key)


def _read(source, name: str | None, encoding: str | None = None) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source, name or "<DataFrame>"
    path = Path(source)
    label = name or str(path)
    if not path.is_file():
        raise ActivityLogError(f"{label}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path), label
        # everything as text: ids keep leading zeros and NHS numbers never become floats
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding or _sniff_encoding(path)), label
    except UnicodeError as exc:
        raise ActivityLogError(f"{label}: not {encoding or _sniff_encoding(path)} text ({exc.reason} at byte "
                               f"{getattr(exc, 'start', '?')}); give its encoding with --encoding, e.g. latin-1, "
                               "cp1252 or utf-16") from None
    except Exception as exc:  # pandas/pyarrow raise many kinds; the file is unusable either way
        raise ActivityLogError(f"{label}: cannot read the activity log ({exc})") from None


#: Earliest timestamp accepted in an activity log: no RIS export holds exams from before digital
#: RIS records (and CT, 1971, and MR, 1980, scanners); an earlier date is a typo or a default value.
EARLIEST_TIMESTAMP = pd.Timestamp("1990-01-01")


def _date_window_problems(acquired: pd.Series, reported: pd.Series, start, end, today) -> list[tuple[str, pd.Series]]:
    """(reason, rows) for timestamps outside the data's plausible window (see read_activity_log)."""
    latest = pd.Timestamp(today if today is not None else pd.Timestamp.now().normalize()) + pd.Timedelta(days=1)
    problems = []
    for column, times in (("acquired_at", acquired), ("reported_at", reported)):
        problems.append((f"{column} in the future (after {(latest - pd.Timedelta(days=1)).date()})",
                         (times >= latest).fillna(False)))
        problems.append((f"{column} before {EARLIEST_TIMESTAMP.date()} (older than any RIS record)",
                         (times < EARLIEST_TIMESTAMP).fillna(False)))
        if start is not None and end is not None:
            first, last = pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1)
            lookback = max(pd.Timedelta(days=731), last - first)
            problems.append((f"{column} more than {lookback.days} days before the pilot start ({first.date()})",
                             (times < first - lookback).fillna(False)))
            problems.append((f"{column} more than a year after the pilot end ({(last - pd.Timedelta(days=1)).date()})",
                             (times >= last + pd.Timedelta(days=366)).fillna(False)))
    return problems


def _sniff_encoding(path: Path) -> str:
    """UTF-16 or UTF-8 from a byte-order mark (or UTF-16's zero bytes); UTF-8 otherwise."""
    with path.open("rb") as f:
        head = f.read(4096)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if len(head) >= 4 and head[1::2].count(0) > len(head) // 4 and head[0::2].count(0) == 0:
        return "utf-16-le"
    if len(head) >= 4 and head[0::2].count(0) > len(head) // 4 and head[1::2].count(0) == 0:
        return "utf-16-be"
    return "utf-8-sig"


def _columns(raw: pd.DataFrame, label: str) -> dict[str, pd.Series]:
    """Schema columns as pandas string Series (stripped; empty -> NA), by lower-case column name."""
    names = [str(c).strip().lower() for c in raw.columns]
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if duplicated:
        raise ActivityLogError(f"{label}: duplicate column(s) {', '.join(duplicated)}")
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ActivityLogError(f"{label}: missing column(s) {', '.join(missing)}; an activity log needs "
                               f"{', '.join(COLUMNS)}")
    position = {c: i for i, c in enumerate(names)}
    return {c: _as_text(raw.iloc[:, position[c]]) for c in COLUMNS + OPTIONAL_COLUMNS if c in position}


def _as_text(values: pd.Series) -> pd.Series:
    values = values.reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if getattr(values.dt, "tz", None) is not None:
            out = values.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        else:
            out = values.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return out.astype(TEXT)
    if pd.api.types.is_float_dtype(values.dtype):  # ids or bands read as floats: 9434765919.0 -> "9434765919"
        integral = values.notna() & (values == np.round(values))
        out = values.astype(TEXT)
        out[integral] = values[integral].astype("int64").astype(TEXT)
        return out
    out = values.astype(TEXT).str.strip()
    return out.mask(out == "")


def _vocabulary(codes) -> dict[str, str]:
    """Upper-case lookup -> the code as spelt by the caller."""
    return {str(code).upper(): str(code) for code in codes}


def _parse_times(text: pd.Series, after: pd.Series | None = None) -> pd.Series:
    """ISO 8601 text -> naive UTC datetimes (NaT for missing or unparseable); see the module docstring.

    Local (offset-less) times in the repeated autumn hour are read as BST, unless `after` (the acquisition
    times, for reports) shows that the GMT reading is the one that keeps the report after its acquisition.
    """
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    aware = text.str.contains(_OFFSET, na=False).to_numpy(dtype=bool)
    naive = text.notna().to_numpy(dtype=bool) & ~aware
    if naive.any():
        wall = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        dst = wall.dt.tz_localize(LOCAL_TZ, ambiguous=np.ones(len(wall), dtype=bool), nonexistent="shift_forward")
        std = wall.dt.tz_localize(LOCAL_TZ, ambiguous=np.zeros(len(wall), dtype=bool), nonexistent="shift_forward")
        chosen = dst
        if after is not None:
            before = after[naive].to_numpy()
            use_std = ((dst.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy() < before)
                       & (std.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy() >= before))
            chosen = dst.where(~use_std, std)
        out[naive] = chosen.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    if aware.any():
        parsed = pd.to_datetime(text[aware].str.replace(r" +([zZ+-])", r"\1", regex=True), format="ISO8601",
                                errors="coerce", utc=True)
        out[aware] = parsed.dt.tz_localize(None).astype("datetime64[us]")
    return out


def _local(times: pd.Series) -> pd.Series:
    """Naive UTC -> naive UK local wall-clock time."""
    return times.dt.tz_localize("UTC").dt.tz_convert(LOCAL_TZ).dt.tz_localize(None).astype("datetime64[us]")


def _nhs_valid(compact: np.ndarray, nhs_like: np.ndarray) -> np.ndarray:
    """Modulus 11 check of the 10-digit strings at `nhs_like` (vectorised sim.privacy.nhs_number_valid)."""
    valid = np.zeros(len(compact), dtype=bool)
    if nhs_like.any():
        digits = (np.array(list(compact[nhs_like]), dtype="S10").view(np.uint8).reshape(-1, 10).astype(np.int64)
                  - ord("0"))
        check = 11 - (digits[:, :9] @ np.arange(10, 1, -1)) % 11
        check = np.where(check == 11, 0, check)
        valid[nhs_like] = (check != 10) & (check == digits[:, 9])
    return valid


# --------------------------------------------------------------------------------- from a simulation run
def activity_log_from_run(run_result, scenario, *, reading_minutes: bool = False) -> pd.DataFrame:
    """A simulated replication (``sim.run(..., keep_exams=True)``) as an activity log in the DESIGN schema.

    Timestamps are scenario.start_date 00:00 + simulated hours, to the second, ISO 8601 without an
    offset (initial-backlog exams are acquired before the start date). trust / reporting_trust are
    the scenario's trust codes (reporting_trust = the reader's home trust). The route is taken from
    a ``route`` column of the exam frame when it has one (names, or codes of sim.worklist.ROUTES),
    otherwise from is_core / is_outsourced; an in-house route without a report by the horizon
    (exam in a reporter's hands at the end) is written as "unreported". reporting_trust is the frame's
    ``reading_trust`` when it has one (else the reader's home trust). Outsourced exams whose
    report had not come back by the horizon keep route "outsourced" with an empty reported_at; the
    night teleradiology contract's exams are written as "outsourced" too (the log has no night route).
    Patients are "SIM-<n>", exams "SIM-E<i>". reading_minutes=True adds the in-house reading time.
    Missing values are None (empty cells in CSV).
    """
    return _log_rows(run_result, scenario, _exam_table(run_result), 0, reading_minutes)


def write_activity_log_from_run(run_result, scenario, path: str | Path, *, reading_minutes: bool = False,
                                chunk_rows: int = 250_000) -> Path:
    """Write a simulated replication's activity log (as :func:`activity_log_from_run`) to CSV, or Parquet
    if the name ends .parquet, atomically and `chunk_rows` exams at a time: a consortium-year's log
    as one table of Python strings would take ~3 GB; streamed, memory stays that of one chunk."""
    exams = _exam_table(run_result)
    path = Path(path)
    chunks = range(0, max(len(exams), 1), chunk_rows)

    def rows(start: int) -> pd.DataFrame:
        return _log_rows(run_result, scenario, exams.iloc[start:start + chunk_rows], start, reading_minutes)

    def write_parquet(tmp: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = schema = None
        try:
            for start in chunks:
                table = pa.Table.from_pandas(rows(start), preserve_index=False)
                if writer is None:  # a column that is empty in the first chunk is still text (or a number)
                    schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema],
                                       metadata=table.schema.metadata)
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table.cast(schema))
        finally:
            if writer is not None:
                writer.close()

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as out:
            for start in chunks:
                rows(start).to_csv(out, header=start == 0, index=False)

    atomic_write(path, write_parquet if path.suffix.lower() in (".parquet", ".pq") else write_csv)
    return path


def _exam_table(run_result) -> pd.DataFrame:
    if run_result.exams is None:
        raise ValueError("the run has no per-exam table: run it with sim.run(..., keep_exams=True)")
    return run_result.exams


def _log_rows(run_result, scenario, exams: pd.DataFrame, first_id: int, reading_minutes: bool) -> pd.DataFrame:
    """Activity-log rows of these exams (a slice of the run's exam table starting at exam `first_id`)."""
    reported_h = exams["reported_h"].to_numpy(dtype=float)
    not_reported = np.isnan(reported_h)
    if "route" in exams.columns:
        route = _route_names(exams["route"])
    else:
        route = np.where(exams["is_core"].to_numpy(bool), "core",
                         np.where(exams["is_outsourced"].to_numpy(bool), "outsourced", "unreported")).astype(object)
    route = np.where(route == "teleradiology", "outsourced", route)  # an external company reported it
    in_house = np.isin(route, IN_HOUSE_ROUTES)
    route = np.where(in_house & not_reported, "unreported", route)
    in_house &= ~not_reported
    reader = exams["reader"].to_numpy(dtype=np.int64)
    reporters = run_result.reporters
    ids = np.append(reporters["reporter_id"].to_numpy(dtype=object), None)  # index -1 -> None
    home = np.append(reporters["trust"].astype(str).to_numpy(dtype=object), None)
    reader = np.where(in_house, reader, -1)
    reporting_trust = home[reader]
    if "reading_trust" in exams.columns:  # the engine's own record of the reader's trust wins
        reporting_trust = np.where(in_house, exams["reading_trust"].astype(object).to_numpy(dtype=object), None)
    start = np.datetime64(pd.Timestamp(scenario.start_date).date().isoformat(), "s")
    out = pd.DataFrame({
        "exam_id": [f"SIM-E{i}" for i in range(first_id, first_id + len(exams))],
        "patient_id": [f"SIM-{p}" for p in exams["patient"].to_numpy()],
        "trust": exams["trust"].astype(str).to_numpy(dtype=object),
        "modality": exams["modality"].astype(str).to_numpy(dtype=object),
        "band": exams["band"].to_numpy(dtype=np.int64),
        "subspecialty": exams["subspecialty"].astype(str).to_numpy(dtype=object),
        "urgency": exams["urgency"].astype(str).to_numpy(dtype=object),
        "acquired_at": _iso(start, exams["acquired_h"].to_numpy(dtype=float)),
        "reported_at": _iso(start, reported_h),
        "reporter_id": ids[reader],
        "reporting_trust": reporting_trust,
        "route": route,
    })
    if reading_minutes:
        out["reading_minutes"] = np.where(in_house, exams["reading_hours"].to_numpy(dtype=float) * 60, np.nan)
    return out


def _route_names(route: pd.Series) -> np.ndarray:
    if pd.api.types.is_integer_dtype(route.dtype):
        from sim.worklist import ROUTES as ENGINE_ROUTES  # the engine's route codes, in code order

        return np.array(ENGINE_ROUTES, dtype=object)[route.to_numpy()]
    return route.astype(str).to_numpy(dtype=object)


def _iso(start: np.datetime64, hours: np.ndarray) -> np.ndarray:
    """start + hours as 'YYYY-MM-DDTHH:MM:SS' (rounded to the second: order is preserved); NaN -> None."""
    missing = np.isnan(hours)
    seconds = np.round(np.where(missing, 0.0, hours) * 3600).astype(np.int64)
    text = np.datetime_as_string(start + seconds.astype("timedelta64[s]"), unit="s").astype(object)
    text[missing] = None
    return text


def write_activity_log(log: pd.DataFrame | ActivityLog, path: str | Path) -> Path:
    """Write an activity log atomically: CSV (Parquet if the name ends .parquet). Datetimes as ISO 8601.

    An ActivityLog is written as its accepted, pseudonymised exams (without the source row numbers and
    the UTC columns; local times are written, as read).
    """
    frame = (log.exams.drop(columns=["row", "acquired_utc", "reported_utc"], errors="ignore")
             if isinstance(log, ActivityLog) else log.copy())
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
        return path
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column].dtype):
            frame[column] = frame[column].dt.strftime(TIME_FORMAT)
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
    return path
