"""UNIT tests: the HTML report (`emrad-sim report`, sim.report.write_report).

A small two-trust scenario is run in-process with two replications (and once with one, where there
are no confidence intervals), and compared against a variant with more staff. The report must be one
self-contained file (no external scripts, styles, images or fonts), parse as HTML, have every
dashboard section present and non-empty, and show headline numbers equal to summary.csv's.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import tomli_w

from sim.cli import main
from sim.report import HEADLINE_CARDS, fmt, write_report
from tests.scenarios import two_trust_data

RUN_SECTIONS = ["headline", "backlog", "turnaround", "eligibility", "finance", "utilisation", "provenance"]
COMPARE_SECTIONS = ["headline", "comparison", "provenance"]


class Sections(HTMLParser):
    """Text and element count under each <section id=...>, plus the headline cards' values."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []  # (tag, section id it opens)
        self.text: dict[str, str] = {}
        self.elements: dict[str, int] = {}
        self.cards: dict[str, str] = {}
        self._card: str | None = None
        self._in_value = False
        self.external: list[str] = []

    VOID = {"meta", "br", "img", "input", "link", "hr", "col", "source", "wbr", "area", "base", "embed", "param",
            "track"}

    def current(self) -> str | None:
        return next((sid for _, sid in reversed(self.stack) if sid), None)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in ("src", "href", "xlink:href", "data", "srcset", "poster", "action"):
            if a.get(name) and not a[name].startswith(("#", "data:")):
                self.external.append(f"<{tag} {name}={a[name]!r}>")
        if tag in ("script", "link", "iframe", "object", "embed", "img") and a.get("src", a.get("href")):
            self.external.append(f"<{tag}>")
        if tag == "div" and "card" in (a.get("class") or "").split():
            self._card = a.get("data-metric")
        if tag == "div" and a.get("class") == "value" and self._card:
            self._in_value = True
        if tag in self.VOID:
            return
        sid = a.get("id") if tag == "section" else None
        self.stack.append((tag, sid))
        if self.current():
            self.elements[self.current()] = self.elements.get(self.current(), 0) + 1

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        while self.stack:  # tolerate unclosed inner tags
            top, _ = self.stack.pop()
            if top == tag:
                break
        if tag == "div" and self._in_value:
            self._in_value = False

    def handle_data(self, data):
        sid = self.current()
        if sid:
            self.text[sid] = self.text.get(sid, "") + data
        if self._in_value and self._card:
            self.cards[self._card] = self.cards.get(self._card, "") + data.strip()


def parse(path: Path) -> Sections:
    parser = Sections()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def run_cli(scenario: Path, out: Path, replications: int) -> Path:
    assert main(["run", str(scenario), "--replications", str(replications), "--backend", "serial", "--seed", "3",
                 "--no-progress", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("scenarios")
    small, more = folder / "small.toml", folder / "more_staff.toml"
    small.write_text(tomli_w.dumps(two_trust_data(weeks=2)), encoding="utf-8")
    more.write_text(tomli_w.dumps(two_trust_data(weeks=2, t1_staff=3, t2_staff=2)), encoding="utf-8")
    return small, more


@pytest.fixture(scope="module")
def run_folder(scenarios, tmp_path_factory) -> Path:
    return run_cli(scenarios[0], tmp_path_factory.mktemp("results") / "two", 2)


def test_run_writes_one_self_contained_report(run_folder, capsys):
    report = run_folder / "report.html"
    assert report.exists()
    assert not list(run_folder.glob(".report.html.*"))  # atomic: no temporary left behind
    assert not list(run_folder.glob("*.svg")) and not list(run_folder.glob("*.png"))  # figures are inline
    html = report.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc=", html, re.I)
    assert not re.search(r"<link[^>]*\bhref=", html, re.I)
    assert not re.search(r"""\b(src|href|xlink:href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html, re.I)  # no CSS fetches (fonts, images)
    assert "@import" not in html
    assert parse(report).external == []
    assert html.count("<svg") >= 5  # backlog, turnaround, finance, utilisation, coverage


def test_every_section_is_present_and_not_empty(run_folder):
    sections = parse(run_folder / "report.html")
    for sid in RUN_SECTIONS:
        assert sid in sections.text, f"section {sid} missing"
        assert len(sections.text[sid].strip()) > 20, f"section {sid} is empty"
        assert sections.elements[sid] > 3, f"section {sid} has no content"
    for sid in ("backlog", "turnaround", "finance", "utilisation"):
        assert "<svg" in _section_html(run_folder / "report.html", sid), f"section {sid} has no figure"


def _section_html(report: Path, sid: str) -> str:
    html = report.read_text(encoding="utf-8")
    start = html.index(f'<section id="{sid}"')
    return html[start:html.index("</section>", start)]


def test_headline_numbers_equal_summary(run_folder):
    summary = pd.read_csv(run_folder / "summary.csv").set_index("metric")
    sections = parse(run_folder / "report.html")
    assert set(sections.cards) == {metric for metric, *_ in HEADLINE_CARDS}
    headline = sections.text["headline"]
    for metric, _, format_, _ in HEADLINE_CARDS:
        row = summary.loc[metric]
        assert sections.cards[metric] == fmt(format_, row["mean"])
        low, high = (max(row.ci_low, 0), min(row.ci_high, 1)) if metric.startswith("share") else (row.ci_low, row.ci_high)
        assert f"95% CI {fmt(format_, low)} to {fmt(format_, high)}" in headline  # a share's CI clipped to [0, 1]


def test_eligibility_and_finance_tables(run_folder):
    sections = parse(run_folder / "report.html")
    eligibility = sections.text["eligibility"]
    assert "3 reporters" in eligibility  # two_trust_data: 2 at T1, 1 at T2
    for code in ("T1", "T2"):
        assert code in eligibility and code in sections.text["finance"]
    assert "XR general" in eligibility and "XR neuro" in eligibility
    assert "outsourcing spend" in sections.text["finance"]
    assert "config_id" in sections.text["provenance"]


def test_one_replication_has_no_intervals(scenarios, tmp_path):
    out = run_cli(scenarios[0], tmp_path / "one", 1)
    sections = parse(out / "report.html")
    summary = pd.read_csv(out / "summary.csv").set_index("metric")
    assert "95% CI" not in sections.text["headline"]
    for metric, _, format_, _ in HEADLINE_CARDS:
        assert sections.cards[metric] == fmt(format_, summary.loc[metric, "mean"])
    for sid in RUN_SECTIONS:
        assert len(sections.text.get(sid, "").strip()) > 20


def test_compare_report_has_comparison(scenarios, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(scenarios[0]), str(scenarios[1]), "--replications", "2", "--backend", "serial",
                 "--no-progress", "--out", str(out)]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    sections = parse(out / "report.html")
    for sid in COMPARE_SECTIONS:
        assert len(sections.text.get(sid, "").strip()) > 20, f"section {sid} is empty"
    comparison = sections.text["comparison"]
    assert "more_staff" in comparison and "unreported_end" in comparison
    assert "<svg" in _section_html(out / "report.html", "comparison")  # the forest plot
    # each scenario's own folder is a results folder with its own report
    for name in ("small", "more_staff"):
        assert write_report(out / name).exists()


def test_report_verb(run_folder, capsys):
    assert main(["report", str(run_folder)]) == 0
    assert capsys.readouterr().out.strip() == str(run_folder / "report.html")


def test_not_a_results_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2
    with pytest.raises(ValueError, match="not a results folder"):
        write_report(tmp_path)


def test_market_section_shows_the_markets_own_figures(tmp_path):
    """UNIT: with offered sessions on, the report's market section shows posted, offered, matched and
    unmet work per trust, equal to the replications' own metrics, and a break-even tariff; a scenario
    without a market has no such section."""
    from tests.test_market import market_data

    scenario = tmp_path / "market.toml"
    scenario.write_text(tomli_w.dumps(market_data()), encoding="utf-8")
    out = run_cli(scenario, tmp_path / "market", 2)
    html = _section_html(out / "report.html", "market")
    text = parse(out / "report.html").text["market"]
    tidy = pd.read_csv(out / "replications.csv")
    rows = tidy[(tidy.modality == "ALL") & (tidy.urgency == "ALL")]
    for trust in ("T1", "T2"):
        for metric in ("posted_work_hours", "offered_session_hours", "matched_work_hours", "unmet_work_hours"):
            mean = rows[(rows.trust == trust) & (rows.metric == metric)].value.mean()
            assert fmt("{:,.0f}", mean) in text, (trust, metric)
    consortium = rows[rows.trust == "ALL"].pivot(index="replication", columns="metric", values="value")
    assert (consortium.posted_work_hours > 0).all() and (consortium.matched_work_hours > 0).all()
    assert "break-even tariff multiplier" in text and "Eligibility dashboard" in text
    assert "<svg" in html
    market = pd.read_csv(out / "market.csv")
    assert set(market.trust) <= {"T1", "T2"} and (market.posted_exams == market.matched_exams + market.unmet_exams).all()
    single = parse(run_cli(scenario, tmp_path / "single", 1) / "report.html").text["market"]
    assert "[" not in single  # one replication: values alone, no intervals


def test_no_market_section_without_a_market(run_folder):
    """UNIT: local routing without offered sessions: no market section."""
    assert 'id="market"' not in (run_folder / "report.html").read_text(encoding="utf-8")
