"""A results folder's cache of finished replications, so experiments resume where they stopped.

The cache is data, never code: each replication is stored under `runs/` as five Parquet tables
(metrics, backlog, reporters, flows, market) and a JSON entry written last, which names the scenario's config
id, the model's code id, the seed and replication, the scalar results and the sha256 of every
table. Nothing in a results folder is ever unpickled, so a folder someone sent you cannot run code.

A rerun with the same scenario, model code and seed loads the entries that are there and computes
only what is missing; a changed scenario (config id) or model (code id: a hash of the package's
source) never reuses stale results. An entry that is damaged (truncated, edited, a table missing or
not matching its checksum) or foreign (another scenario, code or seed under this name) raises
:class:`CacheEntryError` naming the file; :meth:`RunStore.load_or_discard` deletes it so that the
replication is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path

import pandas as pd

from sim.atomic import atomic_write
from sim.runner import RunResult

FORMAT = "emrad-sim run cache 1"
TABLES = ("metrics", "backlog", "reporters", "flows", "market")


@lru_cache(maxsize=1)
def code_id() -> str:
    """sha256 over the source of every module of the `sim` package: changes whenever the model does."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class CacheEntryError(ValueError):
    """A cache entry that cannot be used; `path` names it and `reason` says why."""

    def __init__(self, path: Path, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class RunStore:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder) / "runs"

    def stem(self, config_id: str, seed: int, replication: int) -> str:
        return f"{config_id}-{code_id()[:12]}-s{seed}-r{replication}"

    def path(self, config_id: str, seed: int, replication: int) -> Path:
        """The entry's JSON file (written last: when it exists, the tables were complete)."""
        return self.folder / f"{self.stem(config_id, seed, replication)}.json"

    def files(self, config_id: str, seed: int, replication: int) -> list[Path]:
        """Every file of one entry: the JSON and its tables."""
        stem = self.stem(config_id, seed, replication)
        return [self.folder / f"{stem}.json", *(self.folder / f"{stem}.{name}.parquet" for name in TABLES)]

    def has(self, config_id: str, seed: int, replication: int) -> bool:
        return self.path(config_id, seed, replication).exists()

    def load(self, config_id: str, seed: int, replication: int) -> RunResult:
        """The stored replication, or CacheEntryError naming the damaged or foreign file."""
        path = self.path(config_id, seed, replication)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CacheEntryError(path, f"unreadable cache entry ({type(exc).__name__}: {exc})") from None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            raise CacheEntryError(path, f"not a cache entry of this format ({FORMAT!r})")
        expected = {"config_id": config_id, "code_id": code_id(), "seed": seed, "replication": replication}
        for key, value in expected.items():
            if entry.get(key) != value:
                raise CacheEntryError(path, f"foreign entry: {key} is {entry.get(key)!r}, expected {value!r}")
        scalars = {}
        for key, kind in (("n_exams", int), ("events", int), ("wall_seconds", float)):
            value = entry.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise CacheEntryError(path, f"field {key!r} is not a non-negative number")
            scalars[key] = kind(value)
        tables = {}
        checksums = entry.get("tables")
        if not isinstance(checksums, dict):
            raise CacheEntryError(path, "field 'tables' is missing")
        for name in TABLES:
            table_path = self.folder / f"{self.stem(config_id, seed, replication)}.{name}.parquet"
            try:
                actual = _sha256(table_path)
            except OSError as exc:
                raise CacheEntryError(table_path, f"cannot read table ({exc.strerror or exc})") from None
            if actual != checksums.get(name):
                raise CacheEntryError(table_path, "checksum mismatch (damaged or edited)")
            try:
                tables[name] = pd.read_parquet(table_path)
            except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged table
                raise CacheEntryError(table_path, f"unreadable table ({type(exc).__name__})") from None
        return RunResult(config_id=config_id, seed=seed, replication=replication, **tables, **scalars)

    def load_or_discard(self, config_id: str, seed: int, replication: int) -> tuple[RunResult | None, str | None]:
        """(result, None) from a good entry; (None, reason naming the file) after deleting a bad one."""
        try:
            return self.load(config_id, seed, replication), None
        except CacheEntryError as exc:
            self.discard(config_id, seed, replication)
            return None, str(exc)

    def discard(self, config_id: str, seed: int, replication: int) -> None:
        for path in self.files(config_id, seed, replication):
            path.unlink(missing_ok=True)

    def save(self, result: RunResult) -> None:
        """Store the tables, then the JSON entry that vouches for them (atomic, each file)."""
        stem = self.stem(result.config_id, result.seed, result.replication)
        checksums = {}
        for name in TABLES:
            table: pd.DataFrame = getattr(result, name)
            path = self.folder / f"{stem}.{name}.parquet"
            atomic_write(path, lambda tmp, table=table: table.to_parquet(tmp, index=False))
            checksums[name] = _sha256(path)
        entry = {"format": FORMAT, "config_id": result.config_id, "code_id": code_id(), "seed": result.seed,
                 "replication": result.replication, "n_exams": int(result.n_exams), "events": int(result.events),
                 "wall_seconds": float(result.wall_seconds), "tables": checksums}
        atomic_write(self.folder / f"{stem}.json",
                     lambda tmp: tmp.write_text(json.dumps(entry, indent=1), encoding="utf-8"))
