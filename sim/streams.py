"""Named random streams: common random numbers by construction.

Every stream is derived from the experiment's root seed, the replication number and a *name*
such as ("arrivals", "RX1", "CT", "ED"). The name is hashed with a fixed hash (BLAKE2b), never
Python's salted ``hash()``, and never by position in a list: adding a trust or a policy does not
shift any other stream, and two scenarios that differ only in policy draw identical arrivals and
reading times.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of the parts' string forms that is the same on every machine and run."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def stream(root_seed: int, replication: int, *name: object) -> np.random.Generator:
    """An independent generator for `name` in `replication` of the experiment seeded `root_seed`."""
    seq = np.random.SeedSequence(entropy=root_seed, spawn_key=(stable_hash(*name), replication))
    return np.random.Generator(np.random.PCG64(seq))
