"""Privacy helpers for activity logs: keyed pseudonyms, NHS number checks, small-number suppression.

An activity log (a RIS export) holds patient identifiers (NHS numbers, hospital numbers,
accession numbers). The evaluation needs to *link* rows of one patient (distinct patients,
exams per patient) but never needs to know who the patient is, so identifiers are replaced by
keyed pseudonyms as soon as a log is read (:mod:`sim.activity`), and only pseudonyms or
aggregates ever reach an output file.

Why a keyed hash (HMAC-SHA256) and not a plain hash: NHS numbers have only ~10^9 valid values, so
an unkeyed SHA-256 of an NHS number is reversed by hashing every possible number (minutes on a
laptop). With a secret key the pseudonym cannot be recomputed without the key, yet the same key
gives the same pseudonym in every run, so logs pseudonymised separately (e.g. two months' exports)
still link. The key is a secret: it lives in an environment variable or a key file managed by the
information governance lead, never in the repository and never in an output.

Disclosure control: published counts between 1 and ``threshold - 1`` (default 1-7, NHS practice
since 2018) are hidden, because a count of one or two people in a narrow cell (a band, a modality, a
week) can identify them; further cells are hidden where a published total would give a hidden one
away (secondary suppression), and the other counts are rounded to the nearest 5 (:func:`protect`).
:func:`suppress_small` is primary suppression alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

KEY_ENV = "EMRAD_PSEUDONYM_KEY"
KEY_FILE_ENV = "EMRAD_PSEUDONYM_KEY_FILE"
MIN_KEY_BYTES = 32
DEFAULT_SUPPRESS_BELOW = 8  # NHS practice since 2018: counts 1-7 suppressed
DEFAULT_ROUND_TO = 5  # ... and other counts rounded to the nearest 5
PSEUDONYM_HEX_CHARS = 16  # 64 bits: collisions are negligible for millions of values (~n^2 / 2^65)
SUPPRESSED_SUFFIX = "_suppressed"
TEXT = pd.StringDtype("pyarrow")  # vectorised (Arrow) string operations: ~10x faster than Python strings

_NHS_WEIGHTS = np.arange(10, 1, -1)  # weights 10..2 for the first nine digits
NHS_SEPARATORS = r"[ \t-]"  # explicit characters: "\s" would force pandas off its fast Arrow regex path
_NHS_SEPARATORS = re.compile(NHS_SEPARATORS)
_TEN_DIGITS = re.compile(r"\d{10}")


class PseudonymKeyWarning(UserWarning):
    """No pseudonymisation key was configured: a random one is used for this run only."""


def load_key() -> bytes:
    """The pseudonymisation key, from the environment.

    Looks at ``EMRAD_PSEUDONYM_KEY`` (the key itself) or ``EMRAD_PSEUDONYM_KEY_FILE`` (a file holding
    it). Setting both is an error, so that two different keys can never be mixed up silently. The key
    must be at least 32 random bytes written as hex (64+ hex digits) or base64 (:func:`parse_key`): a
    passphrase is refused, because with a guessable key every NHS number (~10^9 valid values) can be
    hashed and the pseudonyms reversed in about a core-hour. A key file readable by its group or by
    others is refused (``chmod 600``).

    If neither is set, a random 32-byte key is generated in memory and a
    :class:`PseudonymKeyWarning` says that pseudonyms will not be linkable across runs. That key is
    never written anywhere, so the pseudonyms of such a run cannot be reversed or re-created.
    Make a key with ``python -c "import secrets; print(secrets.token_hex(32))"``.
    """
    value, path = os.environ.get(KEY_ENV), os.environ.get(KEY_FILE_ENV)
    if value and path:
        raise ValueError(f"both {KEY_ENV} and {KEY_FILE_ENV} are set; set only one")
    if path:
        try:
            mode = Path(path).stat().st_mode
            text = Path(path).read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            raise ValueError(f"{KEY_FILE_ENV}={path}: cannot read the key file ({exc.strerror})") from None
        if os.name == "posix" and mode & 0o077:
            raise ValueError(f"{KEY_FILE_ENV}={path}: the key file can be read by other users "
                             f"(mode {mode & 0o777:o}); make it private with chmod 600")
        return parse_key(text, f"the key file named by {KEY_FILE_ENV}")
    if value:
        return parse_key(value, KEY_ENV)
    warnings.warn(
        f"neither {KEY_ENV} nor {KEY_FILE_ENV} is set: using a random key for this run only, so "
        "pseudonyms will not be linkable with any other run", PseudonymKeyWarning, stacklevel=2)
    return secrets.token_bytes(32)


def parse_key(text: str, source: str = "the key") -> bytes:
    """A key written as text: hex (64+ hex digits) or base64 of at least 32 bytes; anything else is refused."""
    text = text.strip()
    if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text):
        key = bytes.fromhex(text)
    else:
        key = b""
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                key = decode(text.encode("ascii"), validate=True) if decode is base64.b64decode else decode(text)
                break
            except (binascii.Error, ValueError, UnicodeEncodeError):
                continue
        if not key:
            raise ValueError(f"{source} is not hex or base64: a key must be at least {MIN_KEY_BYTES} random bytes "
                             "written as hex or base64 (e.g. secrets.token_hex(32)), not a passphrase")
    return check_key(key, source)


def check_key(key: bytes, source: str = "the key") -> bytes:
    """`key` if it is bytes of at least MIN_KEY_BYTES (32) bytes; a ValueError naming `source` otherwise."""
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"{source} must be bytes (see load_key), not {type(key).__name__}")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{source} is {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes "
                         "(e.g. secrets.token_hex(32))")
    return bytes(key)


def normalise_identifier(value: str) -> str:
    """Canonical text of an identifier: trimmed, and NHS numbers without spaces or hyphens.

    "943 476 5919", "943-476-5919" and "9434765919" are one patient, so they must get one pseudonym.
    """
    text = str(value).strip()
    compact = _NHS_SEPARATORS.sub("", text)
    return compact if _TEN_DIGITS.fullmatch(compact) else text


def pseudonymise(values: Iterable, key: bytes, *, prefix: str = "P", domain: str = "",
                 length: int = PSEUDONYM_HEX_CHARS) -> np.ndarray:
    """Keyed pseudonyms: ``prefix + first `length` hex chars of HMAC-SHA256(key, domain + value)``.

    Same key and value -> same pseudonym (so rows of one patient still link); another key -> an
    unrelated pseudonym. `domain` separates identifier kinds (e.g. "patient", "exam"), so a patient
    id and an accession number that happen to be equal do not get equal pseudonyms. Values are
    normalised with :func:`normalise_identifier` first. Missing values (None/NaN/blank) stay None.
    Returns an object array of str (or None). Each distinct value is hashed once.
    """
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise TypeError("key must be non-empty bytes (see load_key)")
    series = pd.Series(values if isinstance(values, (pd.Series, np.ndarray)) else list(values), dtype=object)
    text = series.astype(TEXT).str.strip()  # vectorised normalise_identifier
    text = text.mask(text == "")  # blank is missing, not an identifier
    compact = text.str.replace(NHS_SEPARATORS, "", regex=True)
    text = text.where(~compact.str.fullmatch(r"\d{10}").fillna(False), compact)
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    inner, outer = _hmac_states(bytes(key))
    if domain:
        inner.update((domain + ":").encode("utf-8"))
    mapped = []
    for unique in np.asarray(uniques, dtype=object).tolist():
        # HMAC-SHA256 = H(K^opad || H(K^ipad || message)), from keyed states built once (re-keying per
        # value costs more than the hashing); equal to hmac.new(key, domain + ":" + value, sha256)
        h = inner.copy()
        h.update(unique.encode("utf-8"))
        o = outer.copy()
        o.update(h.digest())
        mapped.append(prefix + o.hexdigest()[:length])
    return np.array(mapped + [None], dtype=object)[codes]  # code -1 (missing) picks the trailing None


def _hmac_states(key: bytes) -> tuple:
    """SHA-256 states after absorbing K^ipad and K^opad (RFC 2104; 64-byte blocks, long keys hashed first)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key)))


def nhs_number_valid(value: str) -> bool:
    """Whether `value` is a valid NHS number (modulus 11 check; spaces and hyphens are ignored).

    Ten digits; the first nine are multiplied by weights 10, 9, ..., 2 and summed; the check digit
    is 11 - (sum mod 11), where 11 becomes 0 and 10 means the number is invalid (never issued).
    The check digit must equal the tenth digit.
    """
    compact = _NHS_SEPARATORS.sub("", str(value).strip())
    if not _TEN_DIGITS.fullmatch(compact):
        return False
    digits = np.frombuffer(compact.encode("ascii"), dtype=np.uint8) - ord("0")
    check = 11 - int(digits[:9] @ _NHS_WEIGHTS) % 11
    if check == 11:
        check = 0
    return check != 10 and check == digits[9]


def looks_like_nhs_number(value: str) -> bool:
    """Ten digits once spaces and hyphens are removed (whether or not the check digit is right)."""
    return bool(_TEN_DIGITS.fullmatch(_NHS_SEPARATORS.sub("", str(value).strip())))


def suppress_small(table: pd.DataFrame, count_columns: Sequence[str], threshold: int = DEFAULT_SUPPRESS_BELOW,
                   dependent: dict[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """A copy of `table` with small counts hidden: a missing value in the count plus a boolean ``<col>_suppressed``.

    Counts from 1 to ``threshold - 1`` (default 1-7) are replaced by a missing value (pandas NA in a nullable
    Int64 column when the counts are whole numbers, NaN otherwise), and a column ``<col>_suppressed``
    (True where hidden) is added after each count column. The marker is missing + flag rather than a
    "<5" string so that the column stays numeric: sums, plots and CSV readers keep working, and a
    hidden cell can never be mistaken for a zero (in CSV it is an empty cell with the flag True).
    Zero is *not* suppressed: "no exams of this kind" identifies nobody, and hiding zeros would
    hide structural gaps. `threshold` <= 1 disables suppression (flags all False).

    `dependent` maps a count column to statistics computed from the same cell (e.g. the median
    turnaround of those exams): they are hidden (NaN) wherever that count is, since a median of
    three exams describes three people.

    This is primary suppression only: a total published beside the cells can reveal a hidden
    cell by subtraction; :func:`protect` adds secondary suppression and rounding.
    """
    out = table.copy()
    for col in count_columns:
        values = pd.to_numeric(out[col], errors="coerce")
        hide = (values >= 1) & (values < threshold) if threshold > 1 else pd.Series(False, index=out.index)
        hide = hide.fillna(False).astype(bool)
        whole = values.dropna().eq(values.dropna().round()).all()  # counts stay integers: "12", not "12.0"
        out[col] = (values.astype("Int64") if whole else values.astype(float)).mask(hide)
        position = out.columns.get_loc(col) + 1
        flag = f"{col}{SUPPRESSED_SUFFIX}"
        if flag in out.columns:
            out[flag] = out[flag].astype(bool) | hide
        else:
            out.insert(position, flag, hide.to_numpy())
        for stat in (dependent or {}).get(col, ()):
            out[stat] = pd.to_numeric(out[stat], errors="coerce").astype(float).mask(hide)
    return out


# ------------------------------------------------------------------------------ disclosure control
Cell = tuple[int, str]  # (row position, column name)


def round_counts(values, base: int = DEFAULT_ROUND_TO):
    """Counts rounded to the nearest multiple of `base` (halves up; 0 stays 0); base <= 1: unchanged."""
    values = pd.to_numeric(pd.Series(values), errors="coerce").astype(float)
    if base <= 1:
        return values
    return np.floor(values / base + 0.5) * base


def total_constraints(table: pd.DataFrame, columns: Sequence[str], by: Sequence[str], total_column: str,
                      total_value: str = "ALL") -> list[tuple[Cell, list[Cell]]]:
    """Additive constraints "total row = sum of the other rows" within each group of `by`, for each count
    column (the total row is the one whose `total_column` is `total_value`)."""
    out = []
    positions = pd.Series(np.arange(len(table)), index=table.index)
    for _, group in (table.groupby(list(by), sort=False, dropna=False) if by else [(None, table)]):
        is_total = (group[total_column].astype(str) == total_value).to_numpy()
        if is_total.sum() != 1 or len(group) < 2:
            continue
        total = int(positions[group.index[is_total][0]])
        parts = [int(positions[i]) for i in group.index[~is_total]]
        out.extend(((total, c), [(p, c) for p in parts]) for c in columns)
    return out


def row_constraints(table: pd.DataFrame, total: str, parts: Sequence[str]) -> list[tuple[Cell, list[Cell]]]:
    """Additive constraints within each row: total column = sum of the part columns."""
    return [((i, total), [(i, p) for p in parts]) for i in range(len(table))]


def secondary_suppression(values: Mapping[Cell, float], hidden: set[Cell],
                          constraints: Sequence[tuple[Cell, Sequence[Cell]]]) -> set[Cell]:
    """Cells to hide, beyond `hidden`, so that no hidden cell can be worked out from a published total.

    For every constraint "total = sum of parts" holding a hidden cell, a second cell is hidden when it
    holds only one (the smallest non-zero visible part, else the total), and another when all its hidden
    parts could only be 1 (their sum, known from a visible total, equals their number). Repeated until
    no constraint changes (a newly hidden cell can expose another constraint). Zero cells are never
    hidden (a zero identifies nobody and hiding it protects nothing: it is a known lower bound anyway).
    """
    hidden = set(hidden)
    changed = True
    while changed:
        changed = False
        for total, parts in constraints:
            cells = [total, *parts]
            secret = [c for c in cells if c in hidden]
            if not secret:
                continue
            need = len(secret) == 1
            if not need and total not in hidden:
                rest = values[total] - sum(values[p] for p in parts if p not in hidden)
                need = rest <= len(secret)  # every hidden part is >= 1: a sum equal to their count gives them away
            if not need:
                continue
            candidates = sorted((values[p], p) for p in parts if p not in hidden and values[p] > 0)
            pick = candidates[0][1] if candidates else (total if total not in hidden and values[total] > 0 else None)
            if pick is not None:
                hidden.add(pick)
                changed = True
    return hidden


def protect(table: pd.DataFrame, count_columns: Sequence[str], threshold: int = DEFAULT_SUPPRESS_BELOW,
            round_to: int = DEFAULT_ROUND_TO, constraints: Sequence[tuple[Cell, Sequence[Cell]]] = (),
            dependent: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Disclosure control of a published table: primary suppression of counts 1..threshold-1, secondary
    suppression over `constraints` (:func:`secondary_suppression`), statistics of hidden cells hidden
    (`dependent`), and the visible counts rounded to the nearest `round_to` (NHS practice: suppress 1-7,
    round to 5). Hidden cells are missing values with a ``<col>_suppressed`` flag, as in :func:`suppress_small`."""
    out = table.reset_index(drop=True).copy()
    values = {}
    primary = set()
    for col in count_columns:
        numbers = pd.to_numeric(out[col], errors="coerce").astype(float).to_numpy()
        for i, v in enumerate(numbers):
            values[(i, col)] = 0.0 if np.isnan(v) else float(v)
            if threshold > 1 and 1 <= v < threshold:
                primary.add((i, col))
    hidden = secondary_suppression(values, primary, constraints) if primary else set()
    for col in count_columns:
        hide = np.array([(i, col) in hidden for i in range(len(out))], dtype=bool)
        numbers = pd.to_numeric(out[col], errors="coerce").astype(float)
        shown = round_counts(numbers, round_to).mask(hide)
        whole = shown.dropna().eq(shown.dropna().round()).all()
        out[col] = shown.astype("Int64") if whole else shown
        flag = f"{col}{SUPPRESSED_SUFFIX}"
        if flag in out.columns:
            out[flag] = out[flag].astype(bool) | hide
        else:
            out.insert(out.columns.get_loc(col) + 1, flag, hide)
        for stat in (dependent or {}).get(col, ()):
            out[stat] = pd.to_numeric(out[stat], errors="coerce").astype(float).mask(hide)
    return out
