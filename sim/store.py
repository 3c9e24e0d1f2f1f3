"""A results folder's cache of finished replications, so experiments resume where they stopped.

Each replication's RunResult is stored as `runs/<config id>-<code id>-s<seed>-r<replication>.pkl`,
written atomically the moment it arrives. A rerun with the same scenario, model code and seed
loads what is there and computes only what is missing; a changed scenario (config id) or a
changed model (code id: a hash of the package's source) never reuses stale results. The files are pickles of plain tables written by this package: load
only folders you trust, as with any pickle.
"""

from __future__ import annotations

import hashlib
import pickle
from functools import lru_cache
from pathlib import Path

from sim.atomic import atomic_write
from sim.runner import RunResult


@lru_cache(maxsize=1)
def code_id() -> str:
    """sha256 over the source of every module of the `sim` package: changes whenever the model does."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class RunStore:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder) / "runs"

    def path(self, config_id: str, seed: int, replication: int) -> Path:
        return self.folder / f"{config_id}-{code_id()[:12]}-s{seed}-r{replication}.pkl"

    def has(self, config_id: str, seed: int, replication: int) -> bool:
        return self.path(config_id, seed, replication).exists()

    def load(self, config_id: str, seed: int, replication: int) -> RunResult:
        with self.path(config_id, seed, replication).open("rb") as f:
            return pickle.load(f)

    def save(self, result: RunResult) -> None:
        path = self.path(result.config_id, result.seed, result.replication)
        atomic_write(path, lambda tmp: tmp.write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)))
