"""Reference documentation: `make docs` (mkdocs + mkdocstrings) builds offline, strictly, from the code.

* BUILD: the whole site builds with ``mkdocs build --strict`` (any warning, e.g. a broken link,
  a missing anchor or an API object that does not exist, fails it) into a temporary folder, in a
  few seconds; the built pages load nothing from the network. A deliberately broken page or API
  reference makes the same build fail, so the check can fail.
* UNIT: the generated pages (docs/hooks/reference.py) cover every field of every scenario section
  with a type, a unit and a default; every CLI verb and option; every name in ``sim.__all__``.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, Field

import sim
from sim.cli import build_parser
from sim.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("index.html", "reference/api.html", "reference/scenario.html", "reference/cli.html", "STRESS-DES.html",
         "performance.html")


def _reference_module():
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "docs" / "hooks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = _reference_module()


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = _build(ROOT / "mkdocs.yml", out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    return out


def test_site_has_every_page(site):
    for page in PAGES:
        assert (site / page).is_file(), page


def test_site_loads_nothing_from_the_network(site):
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        external = re.findall(r"<(?:script|link|img)\b[^>]*(?:src|href)=\"(?:https?:)?//[^\"]+\"", text)
        assert external == [], (page, external)


def test_api_page_documents_the_public_api(site):
    text = (site / "reference" / "api.html").read_text(encoding="utf-8")
    for name in sim.__all__:
        assert f'id="sim.{name}"' in text or f">sim.{name}<" in text, name
    assert "Simulate one replication" in text  # sim.run's docstring, rendered
    for path in ref.EXTRA_API:
        assert f">{path}<" in text, path


def _broken_config(tmp_path: Path, page: str) -> Path:
    """A copy of mkdocs.yml whose docs folder holds one more page with `page` as its text."""
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "broken.md").write_text(page, encoding="utf-8")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    config["docs_dir"] = str(docs)
    config["hooks"] = [str(ROOT / h) for h in config["hooks"]]
    config["nav"].append({"Broken": "broken.md"})
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            plugin["mkdocstrings"]["handlers"]["python"]["paths"] = [str(ROOT)]
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.parametrize("page, complaint", [
    ("See [the schema](reference/no_such_page.md).", "no_such_page.md"),
    ("See [fields](reference/scenario.md#no-such-section).", "no-such-section"),
    ("::: sim.no_such_function\n", "sim.no_such_function"),
])
def test_a_broken_reference_fails_the_build(tmp_path, page, complaint):
    done = _build(_broken_config(tmp_path, page), tmp_path / "site")
    assert done.returncode != 0
    assert complaint in done.stdout + done.stderr


def test_the_copied_config_builds_with_a_sound_page(tmp_path):
    """Control for the test above: the copy fails only because of the broken page."""
    page = "See [the schema](reference/scenario.md#finance).\n\n::: sim.warmup.mser5\n"
    done = _build(_broken_config(tmp_path, page), tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr


# -- the generated pages, unit by unit -----------------------------------------------------------

def _rows(markdown: str, heading: str) -> dict[str, list[str]]:
    """field -> [type, unit, default, description] of the table under `## heading` (or ###)."""
    section = re.split(r"\n#{2,3} ", markdown.split(f"\n## {heading}\n", 1)[1])[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 5 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_schema_page_has_every_field_with_type_unit_and_default():
    page = ref.scenario_markdown()
    sections = ref.schema_sections(Scenario)
    assert len(sections) >= 10
    for model in sections:
        rows = _rows(page, model.__name__)
        assert set(rows) == set(model.model_fields), model.__name__
        for name, (kind, unit, default, _) in rows.items():
            assert kind and unit and default, (model.__name__, name, rows[name])


@pytest.mark.parametrize("section, field, unit, default", [
    ("Scenario", "horizon_weeks", "weeks", "**required**"),
    ("Scenario", "warmup_weeks", "weeks", "`0.0`"),
    ("Urgency", "target_hours", "hours", "**required**"),
    ("Modality", "reading_minutes", "minutes", "**required**"),
    ("Modality", "urgency_mix", "fraction (0-1)", "**required**"),
    ("Modality", "annual_volume", "exams per year", "**required**"),
    ("Demand", "seasonality", "ratio (×)", "`[1.0] × 12`"),
    ("StaffGroup", "hourly_cost", "£ per reporting hour", "`0.0`"),
    ("StaffGroup", "leave_weeks_per_year", "weeks per year", "`0.0`"),
    ("StaffGroup", "home_workstation", "—", "`false`"),
    ("Outsourcing", "price", "£ per exam", "**required**"),
    ("Outsourcing", "daily_cap", "exams per day", "**required**"),
    ("HomeReporting", "uptake_probability", "fraction (0-1)", "`0.5`"),
    ("Finance", "core_pa_hours", "hours", "`4.0`"),
    ("Finance", "premium_pa_hours", "hours", "`3.0`"),
    ("Policy", "broker", "section", "the [Broker](#broker) defaults"),
])
def test_schema_units_and_defaults_come_from_the_model(section, field, unit, default):
    _, got_unit, got_default, _ = _rows(ref.scenario_markdown(), section)[field]
    assert (got_unit, got_default) == (unit, default)
    model = next(m for m in ref.schema_sections(Scenario) if m.__name__ == section)
    info = model.model_fields[field]
    if info.description:
        assert ref._cell(info.description) in ref.scenario_markdown()


def test_a_new_field_is_documented_without_editing_the_docs():
    class Extra(BaseModel):
        """A section added later."""

        queue_limit_exams: typing.Annotated[int, Field(ge=0)] = Field(50, description="cap on waiting exams")
        share: typing.Annotated[float, Field(ge=0, le=1)] = 0.25

    rows = {}
    for line in ref._model_table(Extra)[2:]:
        cells = [c.strip() for c in line.split("|")[1:-1]]
        rows[cells[0].strip("`")] = cells[1:]
    assert rows["queue_limit_exams"][:3] == ["integer (≥ 0)", "exams", "`50`"]
    assert rows["share"][:3] == ["number (≥ 0, ≤ 1)", "fraction (0-1)", "`0.25`"]


def test_schema_sections_are_found_where_toml_puts_them():
    paths = {model.__name__: where for model, where in ref.schema_sections(Scenario).items()}
    assert paths["Session"] == ["[[staff.sessions]]", "[[teleradiology.windows]]", "[[home_reporting.sessions]]"]
    assert paths["Broker"] == ["[policy.broker]"]
    assert paths["BacklogBlock"] == ["[[demand.initial_backlog]]"]


def test_cli_page_has_every_verb_and_option():
    page = ref.cli_markdown()
    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert "--version" in page
    for name, sub in verbs.choices.items():
        assert f"## emrad-sim {name}\n" in page
        for action in sub._actions:
            for flag in action.option_strings or [action.dest]:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}" in page, (name, flag)


def test_api_page_lists_every_public_name():
    page = ref.api_markdown()
    for name in sim.__all__:
        assert f'heading: "sim.{name}"' in page, name
        assert f"::: {getattr(sim, name).__module__}.{name}\n" in page


def test_readme_links_to_the_docs_licence_and_citation():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)\)", text)
    for target in ("LICENSE", "CITATION.cff", "docs/STRESS-DES.md", "docs/index.md"):
        assert target in links, target
    for target in links:
        if "://" not in target:
            assert (ROOT / target).exists(), target
    assert "make docs" in text and "emrad-sim --version" in text
