"""UNIT tests: the licence and the citation file others use to reuse and cite the model.

* ``LICENSE`` is the MIT licence, as pyproject.toml declares it, held by "emrad-sim contributors".
* ``CITATION.cff`` is valid Citation File Format 1.2.0: checked with ``jsonschema`` against the CFF
  schema vendored in ``tests/data/`` (nothing is downloaded), with the schema's date formats
  enforced; its version and licence agree with pyproject.toml. The check itself is shown to fail
  on broken citation files.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = Path(__file__).parent / "data" / "cff-1.2.0.schema.json"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _strings_for_dates(value):
    """YAML reads an unquoted 2026-12-01 as a date; CFF tools treat it as the string it is."""
    if isinstance(value, dict):
        return {k: _strings_for_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings_for_dates(v) for v in value]
    return value.isoformat() if isinstance(value, dt.date) else value


def cff_problems(text: str) -> list[str]:
    """Schema violations of a CITATION.cff text, as 'field.path: message' (empty when valid)."""
    data = _strings_for_dates(yaml.safe_load(text))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(data)]


def test_vendored_schema_is_cff_1_2_0():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    assert {"cff-version", "message", "title", "authors"} <= set(schema["required"])


def test_citation_file_is_valid_cff():
    assert cff_problems((ROOT / "CITATION.cff").read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.pop("authors"), "(top)"),
    (lambda d: d.update(authors=[]), "authors"),
    (lambda d: d.update({"date-released": "2026-13-01"}), "date-released"),
    (lambda d: d.update({"cff-version": "9.9.9"}), "cff-version"),
    (lambda d: d.update(licence="MIT"), "(top)"),  # misspelt key: not in the schema
    (lambda d: d.update(license="MIT-ish"), "license"),  # not an SPDX identifier
])
def test_schema_check_catches_broken_citations(edit, field):
    data = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    edit(data)
    problems = cff_problems(yaml.safe_dump(data))
    assert problems and any(p.startswith(f"{field}:") for p in problems), problems


def test_citation_agrees_with_pyproject():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    project = _pyproject()
    assert str(cff["version"]) == project["version"]
    assert cff["license"] == project["license"] == "MIT"
    assert cff["authors"] == [{"name": "emrad-sim contributors"}]


def test_licence_file_is_mit_for_the_contributors():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c)" in text and "emrad-sim contributors" in text
    assert "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND" in text
    assert "LICENSE" in _pyproject()["license-files"]
