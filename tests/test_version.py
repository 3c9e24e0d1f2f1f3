"""UNIT tests: `emrad-sim --version` names the version and the git commit the results came from.

From a git checkout the commit is `git rev-parse HEAD` (with "+dirty" for uncommitted changes, as
in results manifests); without git, or from an installed copy with no project beside it, it is
"unknown", and the command still exits 0.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import sim.cli
from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _version_line(capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code in (0, None)
    out, err = capsys.readouterr()
    assert err == ""
    return out.strip()


def _head() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def test_version_names_version_and_commit(capsys):
    line = _version_line(capsys)
    head = _head()
    prefix = f"emrad-sim {metadata.version('emrad-sim')} (git commit "
    assert line.startswith(prefix), line
    commit = line[len(prefix):-1]
    if head is None:
        assert commit == "unknown"
    else:
        assert commit in (head, head + "+dirty")


def test_version_without_git_is_unknown(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable anywhere
    assert _version_line(capsys) == f"emrad-sim {metadata.version('emrad-sim')} (git commit unknown)"


def test_installed_copy_does_not_ask_git(capsys, monkeypatch, tmp_path):
    def forbidden():
        raise AssertionError("git asked about a directory that is not the project")

    monkeypatch.setattr(sim.cli, "PROJECT_ROOT", tmp_path)  # site-packages: no pyproject.toml beside sim/
    monkeypatch.setattr(sim.cli, "git_commit", forbidden)
    assert _version_line(capsys).endswith("(git commit unknown)")


def test_console_script_version_from_another_folder(tmp_path):
    script = Path(sys.executable).with_name("emrad-sim")
    done = subprocess.run([str(script), "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    head = _head()
    assert done.stdout.startswith("emrad-sim ")
    assert (head or "unknown") in done.stdout
