"""Allocator settings for a replication's churn of large per-exam arrays (process-wide, Linux only).

1. Freed per-exam arrays go back to the operating system at once (glibc's malloc only).
glibc serves a large allocation with its own mapping, but after the first such block is freed it
raises that threshold (up to 32 MB) and serves later blocks of a few million exams from the heap,
where a freed block can stay resident. A replication allocates and frees many such arrays (worklists,
then statistics), so the heap's high-water mark would add ~100 MB to the peak. Fixing the threshold
turns that adjustment off; elsewhere this does nothing.

2. No huge-page compaction on the faulting thread. numpy asks the kernel for transparent huge pages
(madvise) on every array of 4 MB or more. Where the kernel's THP defrag setting is "madvise" or
"defer+madvise", a fault in such an array compacts memory there and then: measured on the
development machine (a 2-core VM), a consortium-year spent 3.2-3.5 s in the kernel with it and
0.95-1.1 s without, at the same peak memory and no more user time. There numpy's madvise is
turned off (unless NUMPY_MADVISE_HUGEPAGE is set: the user's choice wins).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h
THRESHOLD_BYTES = 256 * 1024

_done = False


def return_large_blocks_promptly() -> bool:
    """Serve every block above 256 kB from its own mapping, released when freed. True if glibc took it."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _done = bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        _done = False
    return _done


THP_DEFRAG = Path("/sys/kernel/mm/transparent_hugepage/defrag")
COMPACTING_MODES = ("madvise", "defer+madvise")  # modes that compact on the faulting thread for madvised memory


def avoid_huge_page_compaction() -> bool:
    """Stop numpy's huge-page madvise where the kernel would compact memory on each fault (see above).
    True if it was turned off."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        selected = THP_DEFRAG.read_text().split("[", 1)[1].split("]", 1)[0]
    except (OSError, IndexError):
        return False
    if selected not in COMPACTING_MODES:
        return False
    import numpy as np

    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1
    setter = getattr(core.multiarray, "_set_madvise_hugepage", None)
    if setter is None:
        return False
    setter(False)
    return True
