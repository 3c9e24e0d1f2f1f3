"""Results folders, written atomically, with a manifest that is enough to reproduce the run.

Layout (DESIGN section 8): manifest.json, scenario.toml (resolved), replications.csv (tidy),
summary.csv (consortium: metric, mean, sd, ci_low, ci_high, n), summary_by_trust.csv,
backlog.parquet, reporters.csv, flows.csv (who read what for whom), market.csv (posted, matched and
unmet work). Each file is written to a temporary name in the same folder and renamed into place, and the manifest is written last: a folder with a manifest is complete, and
an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

from sim.atomic import atomic_write
from sim.experiment import ExperimentResult
from sim.loading import scenario_to_toml
from sim.store import code_id

PACKAGES = ("emrad-sim", "simpy", "numpy", "scipy", "pandas", "pydantic", "pyarrow")


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def manifest(result: ExperimentResult, wall_seconds: float, backend: str, source: str | None) -> dict:
    scn = result.scenario
    return {
        "scenario_name": scn.name,
        "scenario_source": source,
        "config_id": scn.config_id,
        "code_id": code_id(),
        "root_seed": result.seed,
        "replications": len(result.runs),
        "backend": backend,
        "exams_per_replication": [r.n_exams for r in result.runs],
        "wall_seconds": round(wall_seconds, 3),
        "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "versions": package_versions(),
        "machine": {"hostname": socket.gethostname(), "platform": platform.platform(),
                    "processor": platform.machine(), "cpus": os.cpu_count()},
        "scenario": scn.model_dump(mode="json"),  # fully resolved, defaults included
    }


def write_results(result: ExperimentResult, out: Path, wall_seconds: float, backend: str,
                  source: str | None = None) -> Path:
    """Write the results folder; returns its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stale = out / "manifest.json"
    if stale.exists():  # the folder is being rewritten: it is incomplete until the new manifest lands
        stale.unlink()
    _write_text(out / "scenario.toml", scenario_to_toml(result.scenario))
    atomic_write(out / "replications.csv", lambda tmp: result.replications.to_csv(tmp, index=False))
    atomic_write(out / "summary.csv", lambda tmp: result.summary("consortium").to_csv(tmp, index=False))
    atomic_write(out / "summary_by_trust.csv", lambda tmp: result.summary("trust").to_csv(tmp, index=False))
    atomic_write(out / "backlog.parquet", lambda tmp: result.backlog.to_parquet(tmp, index=False))
    reporters = pd.concat([r.reporters.assign(replication=r.replication) for r in result.runs], ignore_index=True)
    atomic_write(out / "reporters.csv", lambda tmp: reporters.to_csv(tmp, index=False))
    flows = pd.concat([r.flows.assign(replication=r.replication) for r in result.runs], ignore_index=True)
    atomic_write(out / "flows.csv", lambda tmp: flows.to_csv(tmp, index=False))
    market = pd.concat([r.market.assign(replication=r.replication) for r in result.runs], ignore_index=True)
    atomic_write(out / "market.csv", lambda tmp: market.to_csv(tmp, index=False))
    _write_text(out / "manifest.json", json.dumps(manifest(result, wall_seconds, backend, source), indent=2))
    return out
