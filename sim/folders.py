"""A results folder is written as one transaction, by one writer at a time.

`ResultsFolder(out)` takes an exclusive lock (`filelock`, on the sibling file `.<name>.lock`), so a
second `run`, `compare` or `evaluate` into the same folder fails at once with a clear message
instead of mixing its files with the first one's. The new results are written to a temporary
sibling (`.<name>.staging-*`) and renamed into place by :meth:`ResultsFolder.commit`: a reader sees
the old folder or the new one, never a mixture, and nothing from the old folder survives except the
cache entries the new run used. A run that is killed leaves the old folder as it was (its `runs/`
cache may have grown: the next run resumes from it); leftovers of a killed writer are cleaned up by
the next one.

Before anything is computed, :meth:`ResultsFolder.refuse_other_run` compares what the folder holds
with what is about to be written: another scenario, another seed or fewer replications are refused
unless the user said `--overwrite`, and a folder that is not a results folder at all (say the home
directory) is never replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from filelock import FileLock, Timeout

#: What a results folder of `run`, `compare` or `evaluate` may hold (anything else: not ours to replace).
RESULT_NAMES = {"manifest.json", "scenario.toml", "replications.csv", "summary.csv", "summary_by_trust.csv",
                "backlog.parquet", "reporters.csv", "flows.csv", "market.csv", "report.html", "activity_log.parquet", "runs",
                "differences.csv", "evaluation.json"}


class FolderBusy(RuntimeError):
    """Another process holds the folder's lock."""


class FolderRefused(ValueError):
    """Writing here would silently destroy other results (or the folder is not a results folder)."""


def _describe(identity: dict) -> str:
    scenario = identity.get("scenario_name") or "?"
    config = str(identity.get("config_id") or "?")[:12]
    return f"scenario {scenario!r} (config {config}), seed {identity.get('seed')}, {identity.get('replications')} replication(s)"


def read_identity(folder: Path) -> dict | None:
    """What a run folder holds, from its manifest.json: scenario, config id, seed, replications (None if none)."""
    path = folder / "manifest.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {"scenario_name": data.get("scenario_name"), "config_id": data["config_id"],
                "seed": data["root_seed"], "replications": data["replications"]}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        return {"damaged": True}


class ResultsFolder:
    """Lock `out`, write into `staging`, then :meth:`commit`; use as a context manager."""

    def __init__(self, out: str | Path, overwrite: bool = False):
        self.out = Path(out)
        self.overwrite = overwrite
        self.staging: Path | None = None
        self._lock: FileLock | None = None

    # -- lock and staging ------------------------------------------------------------------------
    def __enter__(self) -> "ResultsFolder":
        out = self.out
        if out.exists() and not out.is_dir():
            raise FolderRefused(f"--out {out}: exists and is not a folder")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            lock_path = out.parent / f".{out.name}.lock"
            self._lock = FileLock(lock_path, timeout=0)
            self._lock.acquire()
        except Timeout:
            raise FolderBusy(f"--out {out}: another emrad-sim process is writing this folder (lock {lock_path}); "
                             "wait for it to finish or choose another --out") from None
        except OSError as exc:
            raise FolderRefused(f"--out {out}: cannot write here ({exc.strerror or exc})") from None
        try:
            self._recover()
            self.staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
            os.chmod(self.staging, 0o777 & ~_umask())
        except OSError as exc:
            self._lock.release()
            raise FolderRefused(f"--out {out}: cannot write here ({exc.strerror or exc})") from None
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if self.staging is not None and self.staging.exists():  # not committed: the old folder stays
                shutil.rmtree(self.staging, ignore_errors=True)
        finally:
            if self._lock is not None:
                self._lock.release()

    def _recover(self) -> None:
        """Clean up after a writer that was killed (we hold the lock, so nobody else uses these)."""
        parent, name = self.out.parent, self.out.name
        olds = sorted(parent.glob(f".{name}.old-*"))
        if not self.out.exists() and olds:  # killed between the two renames of commit(): put the old one back
            os.replace(olds[-1], self.out)
            olds = olds[:-1]
        for leftover in [*olds, *parent.glob(f".{name}.staging-*")]:
            shutil.rmtree(leftover, ignore_errors=True)

    # -- what the folder holds -------------------------------------------------------------------
    def refuse_other_run(self, expected: Iterable[tuple[str, dict]]) -> None:
        """Refuse (unless overwrite) when the folder holds other results than `expected` would extend.

        `expected`: (subfolder, identity) pairs, "" for the folder itself; identity has config_id,
        seed, replications and scenario_name.
        """
        out = self.out
        if not out.is_dir():
            return
        entries = {p.name for p in out.iterdir() if not p.name.startswith(".")}
        expected = list(expected)
        subfolders = {sub for sub, _ in expected if sub}
        results_subfolders = {n for n in entries - RESULT_NAMES - subfolders
                              if (out / n / "manifest.json").is_file() or (out / n / "runs").is_dir()}
        foreign = sorted(entries - RESULT_NAMES - subfolders - results_subfolders)
        if foreign:  # never replace a folder that is not ours, even with --overwrite
            raise FolderRefused(f"--out {out}: not a results folder (it holds {', '.join(foreign[:5])}"
                                f"{', ...' if len(foreign) > 5 else ''}); choose a new or empty folder")
        if self.overwrite:
            return
        problems = []
        for sub, want in expected:
            have = read_identity(out / sub if sub else out)
            where = f"{out / sub}" if sub else f"{out}"
            if have is None:
                continue  # nothing finished here yet (maybe a cache to resume from)
            if have.get("damaged"):
                problems.append(f"{where} holds a damaged manifest.json")
            elif have["config_id"] != want["config_id"] or have["seed"] != want["seed"]:
                problems.append(f"{where} holds {_describe(have)}, not {_describe(want)}")
            elif not isinstance(have["replications"], int) or have["replications"] > want["replications"]:
                problems.append(f"{where} holds {have['replications']} replication(s); this would replace them "
                                f"with {want['replications']} (give --replications {have['replications']} or more)")
        if not expected[0][0] and {"differences.csv"} & entries:
            problems.append(f"{out} holds a comparison, not a run")
        if expected[0][0] and ("manifest.json" in entries):
            problems.append(f"{out} holds a run, not a comparison")
        if results_subfolders:
            problems.append(f"{out} holds results of other scenarios ({', '.join(sorted(results_subfolders))})")
        if problems:
            raise FolderRefused("; ".join(problems) + "; use --overwrite to replace it, or choose another --out")

    def refuse_foreign(self) -> None:
        """For outputs without an identity (evaluate): tables may be replaced; other people's files may not."""
        if not self.out.is_dir():
            return
        names = {p.name for p in self.out.iterdir() if not p.name.startswith(".")}
        foreign = sorted(n for n in names if n not in RESULT_NAMES and not n.endswith(".csv"))
        if foreign:
            raise FolderRefused(f"--out {self.out}: not a results folder (it holds {', '.join(foreign[:5])}); "
                                "choose a new or empty folder")
        if not self.overwrite and names & {"manifest.json", "differences.csv"}:
            raise FolderRefused(f"--out {self.out} holds simulation results; use --overwrite to replace them, "
                                "or choose another --out")

    # -- writing -----------------------------------------------------------------------------------
    def keep(self, files: Iterable[Path], sub: str = "") -> None:
        """Carry these files of the live folder (cache entries) into the new one (hard link, else copy)."""
        assert self.staging is not None
        for path in files:
            target = self.staging / sub / path.relative_to(self.out / sub)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)

    def commit(self) -> Path:
        """Put the staged folder in place of `out` (two renames; see _recover for a kill in between)."""
        assert self.staging is not None
        old = None
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            os.replace(self.out, old)
        os.replace(self.staging, self.out)
        self.staging = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
