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

Small-number suppression: published counts between 1 and ``threshold - 1`` (default 1-4) are
hidden, because a count of one or two people in a narrow cell (a band, a modality, a week) can
identify them. See :func:`suppress_small` for the marker chosen and its limits.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

KEY_ENV = "EMRAD_PSEUDONYM_KEY"
KEY_FILE_ENV = "EMRAD_PSEUDONYM_KEY_FILE"
MIN_KEY_BYTES = 16
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

    Looks at ``EMRAD_PSEUDONYM_KEY`` (the key itself, used as UTF-8 bytes) or
    ``EMRAD_PSEUDONYM_KEY_FILE`` (a file holding the key; trailing whitespace is stripped). Setting
    both is an error, so that two different keys can never be mixed up silently. A key shorter than
    16 bytes is refused: a short key can be guessed, and a guessed key undoes the pseudonymisation.

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
            key = Path(path).read_bytes().strip()
        except OSError as exc:
            raise ValueError(f"{KEY_FILE_ENV}={path}: cannot read the key file ({exc.strerror})") from None
        source = f"the key file named by {KEY_FILE_ENV}"
    elif value:
        key = value.strip().encode("utf-8")
        source = KEY_ENV
    else:
        warnings.warn(
            f"neither {KEY_ENV} nor {KEY_FILE_ENV} is set: using a random key for this run only, so "
            "pseudonyms will not be linkable with any other run", PseudonymKeyWarning, stacklevel=2)
        return secrets.token_bytes(32)
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the pseudonymisation key in {source} is {len(key)} bytes; use at least "
                         f"{MIN_KEY_BYTES} random bytes (e.g. secrets.token_hex(32))")
    return key


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


def suppress_small(table: pd.DataFrame, count_columns: Sequence[str], threshold: int = 5,
                   dependent: dict[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """A copy of `table` with small counts hidden: a missing value in the count plus a boolean ``<col>_suppressed``.

    Counts from 1 to ``threshold - 1`` are replaced by a missing value (pandas NA in a nullable
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
    cell by subtraction. Review tables for such differencing before publication.
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
