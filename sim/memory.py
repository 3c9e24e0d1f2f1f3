"""Freed per-exam arrays go back to the operating system at once (glibc's malloc only).

glibc serves a large allocation with its own mapping, but after the first such block is freed it
raises that threshold (up to 32 MB) and serves later blocks of a few million exams from the heap,
where a freed block can stay resident. A replication allocates and frees many such arrays (worklists,
then statistics), so the heap's high-water mark would add ~100 MB to the peak. Fixing the threshold
turns that adjustment off; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

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
