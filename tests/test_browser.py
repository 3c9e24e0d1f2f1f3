"""BROWSER test: the HTML report as a planner sees it, in headless Chromium.

Method (no extra Python packages): Chromium is run as a command-line tool on the report file.
- `--dump-dom` prints the DOM after the page has loaded and rendered; every dashboard section
  must be in it, with text and a figure.
- `--enable-logging=stderr --v=0` makes Chromium write every console message of the page to
  stderr as `INFO:CONSOLE(...)` lines; they carry no level, and the report has no scripts, so ANY
  console message from the page fails the test (as do "Uncaught" errors).
- `--log-net-log=FILE` records every request the browser made; with
  `--host-resolver-rules="MAP * ~NOTFOUND"` nothing can reach the network anyway, and any http(s)
  request from the page (fonts, images, scripts) fails the test. Chromium's own housekeeping
  requests (update checks on google.com/googleapis.com/gvt1.com, except the font hosts) are ignored.
- `--screenshot` saves results/report-screenshot.png (and report-compare-screenshot.png) in the
  project's results/ folder (ignored by git) for a human look.
Skipped when Chromium is not installed; `.ci/run` installs it (apt-get install chromium).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import tomli_w

from sim.cli import main
from tests.scenarios import two_trust_data
from tests.test_report import COMPARE_SECTIONS, RUN_SECTIONS, Sections

PROJECT = Path(__file__).resolve().parents[1]
SCREENSHOTS = PROJECT / "results"
HOUSEKEEPING = ("google.com", "googleapis.com", "gvt1.com")
FONT_HOSTS = ("fonts.googleapis.com", "fonts.gstatic.com")


def chromium() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("chromium not installed: .ci/run installs it (apt-get install chromium)")


def browse(report: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND", *extra, report.as_uri()]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def page_requests(netlog: Path) -> list[str]:
    """http(s) URLs the page asked for (Chromium's own update/account checks left out)."""
    text = netlog.read_text(encoding="utf-8", errors="replace")
    urls = set(re.findall(r'"url":"(https?://[^"]*)"', text))
    external = []
    for url in sorted(urls):
        host = urlparse(url).hostname or ""
        if host in FONT_HOSTS or not any(host == h or host.endswith("." + h) for h in HOUSEKEEPING):
            external.append(url)
    return external


def check_report(report: Path, sections: list[str], tmp_path: Path, screenshot: str) -> None:
    netlog = tmp_path / "netlog.json"
    loaded = browse(report, tmp_path / "profile", "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}",
                    "--dump-dom")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    console = [line for line in loaded.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert console == [], "console messages from the report:\n" + "\n".join(console)
    assert page_requests(netlog) == []
    dom = Sections()
    dom.feed(loaded.stdout)
    for sid in sections:
        assert len(dom.text.get(sid, "").strip()) > 20, f"section {sid} missing or empty in the rendered page"
        assert dom.elements.get(sid, 0) > 3, f"section {sid} has no content in the rendered page"
    assert dom.external == []
    SCREENSHOTS.mkdir(exist_ok=True)
    shot = SCREENSHOTS / screenshot
    shot.unlink(missing_ok=True)
    taken = browse(report, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1400,3000",
                   "--hide-scrollbars")
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000


@pytest.fixture(scope="module")
def scenario_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("browser-scenarios")
    small, more = folder / "small.toml", folder / "more_staff.toml"
    small.write_text(tomli_w.dumps(two_trust_data(weeks=2)), encoding="utf-8")
    more.write_text(tomli_w.dumps(two_trust_data(weeks=2, t1_staff=3, t2_staff=2)), encoding="utf-8")
    return small, more


def test_run_report_in_chromium(scenario_files, tmp_path):
    chromium()
    out = tmp_path / "run"
    assert main(["run", str(scenario_files[0]), "--replications", "2", "--backend", "serial", "--no-progress",
                 "--out", str(out)]) == 0
    check_report(out / "report.html", RUN_SECTIONS, tmp_path, "report-screenshot.png")


def test_compare_report_in_chromium(scenario_files, tmp_path):
    chromium()
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, scenario_files), "--replications", "2", "--backend", "serial",
                 "--no-progress", "--out", str(out)]) == 0
    check_report(out / "report.html", COMPARE_SECTIONS, tmp_path, "report-compare-screenshot.png")
