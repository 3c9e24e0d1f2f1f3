"""Unit tests of sim.privacy: keyed pseudonyms, key loading, NHS number checks, small-number suppression."""

from __future__ import annotations

import base64
import os

import numpy as np
import pandas as pd
import pytest

from sim.privacy import (KEY_ENV, KEY_FILE_ENV, PseudonymKeyWarning, check_key, load_key, looks_like_nhs_number,
                         nhs_number_valid, pseudonymise, suppress_small)

KEY = b"a-test-key-that-is-long-enough-0"
OTHER_KEY = b"another-test-key-long-enough-00"


# ------------------------------------------------------------------------------------------ pseudonyms
def test_same_key_same_pseudonym_other_key_different():
    ids = ["9434765919", "H123456", "9434765919"]
    first, again = pseudonymise(ids, KEY), pseudonymise(ids, KEY)
    assert list(first) == list(again)
    assert first[0] == first[2] != first[1]
    other = pseudonymise(ids, OTHER_KEY)
    assert not set(first) & set(other)


def test_pseudonym_shape_and_missing_values():
    out = pseudonymise(["x", None, np.nan, "y", "  "], KEY)
    assert out[1] is None and out[2] is None and out[4] is None
    assert out[0].startswith("P") and len(out[0]) == 1 + 16
    assert all(c in "0123456789abcdef" for c in out[0][1:])
    assert pseudonymise(["x"], KEY, prefix="E")[0].startswith("E")


def test_nhs_number_spacing_does_not_change_the_pseudonym():
    a, b, c = pseudonymise(["943 476 5919", "943-476-5919", " 9434765919 "], KEY)
    assert a == b == c


def test_domains_separate_identifier_kinds():
    assert pseudonymise(["123"], KEY, domain="patient")[0] != pseudonymise(["123"], KEY, domain="exam")[0]


@pytest.mark.parametrize("key", [KEY, b"k" * 64, b"a much longer key than one sha-256 block of sixty-four bytes, to be hashed first"])
def test_pseudonym_is_hmac_sha256_of_domain_and_value(key):
    import hashlib
    import hmac

    expected = "P" + hmac.new(key, b"patient:9434765919", hashlib.sha256).hexdigest()[:16]
    assert pseudonymise(["943 476 5919"], key, domain="patient")[0] == expected
    assert pseudonymise(["x"], key)[0] == "P" + hmac.new(key, b"x", hashlib.sha256).hexdigest()[:16]


def test_pseudonym_is_not_an_unkeyed_hash():
    import hashlib

    assert pseudonymise(["9434765919"], KEY)[0][1:] != hashlib.sha256(b"9434765919").hexdigest()[:16]


def test_pseudonymise_needs_a_key():
    with pytest.raises(TypeError):
        pseudonymise(["x"], b"")


# ------------------------------------------------------------------------------------------------ keys
@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    return monkeypatch


HEX_KEY = "00112233445566778899aabbccddeeff" * 2  # 64 hex digits = 32 bytes


def test_key_from_environment_variable(clean_env):
    clean_env.setenv(KEY_ENV, HEX_KEY)
    assert load_key() == bytes.fromhex(HEX_KEY)
    clean_env.setenv(KEY_ENV, base64.b64encode(bytes(range(40))).decode())  # base64 works too
    assert load_key() == bytes(range(40))


def test_key_from_file(clean_env, tmp_path):
    path = tmp_path / "key"
    path.write_text(HEX_KEY + "\n")
    path.chmod(0o600)
    clean_env.setenv(KEY_FILE_ENV, str(path))
    assert load_key() == bytes.fromhex(HEX_KEY)


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_key_file_readable_by_others_is_refused(clean_env, tmp_path):
    path = tmp_path / "key"
    path.write_text(HEX_KEY)
    path.chmod(0o644)
    clean_env.setenv(KEY_FILE_ENV, str(path))
    with pytest.raises(ValueError, match="chmod 600"):
        load_key()


@pytest.mark.parametrize("text", ["correct horse battery staple", "0123456789abcdef", "0123456789abcdef" * 2])
def test_passphrase_or_short_key_is_refused(clean_env, text):
    # a 16-character passphrase, or hex of only 8 or 16 bytes: guessable keys undo the pseudonyms
    clean_env.setenv(KEY_ENV, text)
    with pytest.raises(ValueError, match="32"):
        load_key()


def test_key_passed_as_bytes_must_have_32_bytes():
    with pytest.raises(ValueError, match="32"):
        check_key(b"sixteen-byte-key")
    assert check_key(KEY) == KEY


def test_no_key_configured_warns_and_uses_a_random_key(clean_env):
    with pytest.warns(PseudonymKeyWarning, match="not be linkable"):
        first = load_key()
    with pytest.warns(PseudonymKeyWarning):
        second = load_key()
    assert len(first) == 32 and first != second


@pytest.mark.parametrize("setup, message", [
    ({KEY_ENV: "short"}, "at least 32"),
    ({KEY_ENV: "0123456789abcdef0123", KEY_FILE_ENV: "/nonexistent"}, "set only one"),
    ({KEY_FILE_ENV: "/nonexistent/key"}, "cannot read the key file"),
])
def test_bad_key_configuration_is_an_error(clean_env, setup, message):
    for name, value in setup.items():
        clean_env.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        load_key()


# ----------------------------------------------------------------------------------------- NHS numbers
def test_known_valid_nhs_number():
    # 9 4 3 4 7 6 5 9 1 x weights 10..2 = 90+36+24+28+42+30+20+27+2 = 299; 299 mod 11 = 2; 11-2 = 9 = last digit
    assert nhs_number_valid("9434765919")
    assert nhs_number_valid("943 476 5919") and nhs_number_valid("943-476-5919")


def test_wrong_check_digit_is_invalid():
    assert not nhs_number_valid("9434765918")  # check digit should be 9


def test_check_digit_ten_is_never_valid():
    # 9 4 3 4 7 6 5 9 6: 90+36+24+28+42+30+20+27+12 = 309; 309 mod 11 = 1; 11-1 = 10 -> no valid number
    assert not any(nhs_number_valid(f"943476596{d}") for d in range(10))


def test_check_digit_eleven_becomes_zero():
    # 9 4 3 4 7 6 5 9 0: 299 - 2 = 297 = 27 x 11 -> remainder 0; 11-0 = 11 -> check digit 0
    assert nhs_number_valid("9434765900")
    assert not nhs_number_valid("9434765901")


@pytest.mark.parametrize("text", ["", "943476591", "94347659190", "943476591X", "abcdefghij"])
def test_not_ten_digits_is_invalid(text):
    assert not nhs_number_valid(text)


def test_looks_like_nhs_number():
    assert looks_like_nhs_number("943 476 5918")  # looks like one (the check digit is wrong)
    assert not looks_like_nhs_number("H1234567")


# ---------------------------------------------------------------------------------------- suppression
def test_small_counts_are_hidden_with_a_flag_and_zero_is_kept():
    table = pd.DataFrame({"cell": list("abcde"), "exams": [0, 1, 4, 5, 12], "median_h": [np.nan, 2.0, 3.0, 4.0, 5.0]})
    out = suppress_small(table, ["exams"], threshold=5, dependent={"exams": ["median_h"]})
    assert list(out.columns) == ["cell", "exams", "exams_suppressed", "median_h"]
    assert out["exams"].tolist()[0] == 0 and out["exams"].tolist()[3:] == [5, 12]
    assert out["exams"].iloc[1:3].isna().all()
    assert out["exams_suppressed"].tolist() == [False, True, True, False, False]
    assert out["median_h"].iloc[1:3].isna().all() and out["median_h"].iloc[3] == 4.0
    assert pd.api.types.is_integer_dtype(out["exams"])  # numeric (nullable Int64), so it still sums and plots
    assert out["exams"].sum() == 17
    assert table["exams"].tolist() == [0, 1, 4, 5, 12]  # the input is not modified


def test_threshold_of_one_or_less_disables_suppression():
    table = pd.DataFrame({"exams": [1, 2, 3]})
    out = suppress_small(table, ["exams"], threshold=0)
    assert out["exams"].tolist() == [1, 2, 3] and not out["exams_suppressed"].any()
