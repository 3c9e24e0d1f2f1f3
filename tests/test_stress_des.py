"""UNIT tests: docs/STRESS-DES.md answers every item of the STRESS-DES checklist and points to real things.

STRESS-DES 1.0 (Monks et al. 2019) has 20 items in six sections; item 2.5 has five parts, so the
report has 24 headings. Each must be present once, in order, with a real answer (not a stub) and
a *Where* line naming at least one file. Every file, folder, ``file.py::test_name`` and
``sim.dotted.name`` the report mentions in backticks must exist. The checker is shown to fail on a
report with an empty item, a missing item or a dangling pointer.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "STRESS-DES.md"
ITEMS = {
    "1.1": "Purpose of the model", "1.2": "Model outputs", "1.3": "Experimentation aims",
    "2.1": "Base model overview diagram", "2.2": "Base model logic", "2.3": "Scenario logic", "2.4": "Algorithms",
    "2.5.1": "Entities", "2.5.2": "Activities", "2.5.3": "Resources", "2.5.4": "Queues", "2.5.5": "Entry/Exit",
    "3.1": "Data sources", "3.2": "Pre-processing", "3.3": "Input parameters", "3.4": "Assumptions",
    "4.1": "Initialisation", "4.2": "Run length", "4.3": "Estimation approach",
    "5.1": "Software or programming language", "5.2": "Random sampling", "5.3": "Model execution",
    "5.4": "System specification",
    "6.1": "Computer model sharing statement",
}
MIN_ANSWER_WORDS = 25
PATH_START = ("sim/", "params/", "tests/", "notebooks/", "docs/", "results/", "benchmarks/", ".ci/")
ROOT_FILES = {"README.md", "LICENSE", "CITATION.cff", "pyproject.toml", "Makefile", "mkdocs.yml"}


def _items(text: str) -> list[tuple[str, str, str]]:
    """(number, title, body) for every '### N title' heading, in order."""
    parts = re.split(r"^### (\d+(?:\.\d+)+) (.+)$", text, flags=re.M)
    return [(parts[i], parts[i + 1].strip(), re.split(r"^## ", parts[i + 2], flags=re.M)[0])
            for i in range(1, len(parts), 3)]


def _pointer_problem(ref: str) -> str | None:
    """Why a backticked reference does not resolve (None when it does, or is not a pointer)."""
    path, _, test = ref.partition("::")
    if path.startswith(PATH_START) or path in ROOT_FILES:
        target = ROOT / path
        if not target.exists():
            return f"{path} does not exist"
        if test:
            names = {node.name for node in ast.walk(ast.parse(target.read_text(encoding="utf-8")))
                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
            if test not in names:
                return f"{path} has no test {test!r}"
        return None
    if re.fullmatch(r"sim(\.\w+)+", ref):
        parts = ref.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                if not hasattr(obj, attr):
                    return f"{ref} does not exist"
                obj = getattr(obj, attr)
            return None
    return None


def report_problems(text: str) -> list[str]:
    """Every way the report falls short of the checklist; empty when it is complete."""
    problems = []
    items = _items(text)
    numbers = [number for number, _, _ in items]
    if numbers != list(ITEMS):
        problems.append(f"items out of order, missing or repeated: {numbers}")
    for number, title, body in items:
        if number in ITEMS and title != ITEMS[number]:
            problems.append(f"{number}: title {title!r}, expected {ITEMS[number]!r}")
        where = re.findall(r"^Where: (.+)$", body, flags=re.M)
        answer = re.sub(r"^Where: .+$", "", body, flags=re.M)
        if len(answer.split()) < MIN_ANSWER_WORDS:
            problems.append(f"{number} {title}: no real answer ({len(answer.split())} words)")
        if not where or not re.findall(r"`([^`]+)`", where[0]):
            problems.append(f"{number} {title}: no 'Where:' line naming the code, params or tests")
        elif not any(_pointer_problem(r) is None and (r.partition("::")[0].startswith(PATH_START)
                                                       or r in ROOT_FILES) for r in re.findall(r"`([^`]+)`", where[0])):
            problems.append(f"{number} {title}: 'Where:' names no existing file")
    for ref in re.findall(r"`([^`\n]+)`", text):
        problem = _pointer_problem(ref)
        if problem:
            problems.append(problem)
    return problems


def test_report_answers_every_item_and_points_to_real_files():
    assert report_problems(REPORT.read_text(encoding="utf-8")) == []


def test_report_points_into_code_params_and_tests():
    refs = re.findall(r"`([^`\n]+)`", REPORT.read_text(encoding="utf-8"))
    for kind in ("sim/", "params/", "tests/"):
        assert any(r.startswith(kind) for r in refs), kind
    assert sum("::test_" in r for r in refs) >= 10


def _report_with(old: str, new: str) -> str:
    text = REPORT.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


def _emptied(number: str) -> str:
    text = REPORT.read_text(encoding="utf-8")
    return re.sub(rf"(^### {re.escape(number)} [^\n]+\n).*?(?=^##)", r"\1\nTODO\n\n", text, count=1, flags=re.M | re.S)


@pytest.mark.parametrize("broken, complaint", [
    (lambda: _emptied("3.4"), "3.4 Assumptions: no real answer"),
    (lambda: _emptied("2.5.3"), "2.5.3 Resources: no 'Where:' line"),
    (lambda: _report_with("### 4.2 Run length", "### 4.2 Run time"), "4.2: title 'Run time'"),
    (lambda: _report_with("### 5.4 System specification", "#### 5.4 System specification"), "items out of order"),
    (lambda: _report_with("`sim/streams.py`", "`sim/random_streams.py`"), "sim/random_streams.py does not exist"),
    (lambda: _report_with("test_mser5_finds_the_end_of_a_transient", "test_mser5_was_renamed"),
     "has no test 'test_mser5_was_renamed'"),
    (lambda: _report_with("`sim.warmup.suggest_warmup`", "`sim.warmup.suggest_warm_up`"),
     "sim.warmup.suggest_warm_up does not exist"),
])
def test_checker_fails_on_a_broken_report(broken, complaint):
    problems = report_problems(broken())
    assert any(complaint in p for p in problems), problems
