"""Compiled per-exam passes of the time-based statistics (sim.metrics.backlog_series, session_split).

Each replaces a sort of the year's exams (by trust, by reader) with one or two passes that bin or
scatter (the loops are in sim/_loops.pyx). Both give exactly what the numpy code they replace gives:
the backlog is a count, decided by the same comparisons as ``np.searchsorted``; a reporter's session
hours are the same per-read terms (the same IEEE operations), summed afterwards by ``np.sum`` in
numpy, as before (its pairwise summation, and how numpy's iterator splits a sum, are numpy's
business, not copied here).
"""

from __future__ import annotations

import numpy as np

from sim import _loops


def backlog_counts(trust: np.ndarray, arrival: np.ndarray, left_at: np.ndarray, grid: np.ndarray,
                   n_trusts: int) -> np.ndarray:
    """(n_trusts, len(grid)) int64: per trust and grid time g (hours), exams acquired at or before g
    minus exams that left the worklist at or before g (left_at NaN: never).

    Each exam marks the first grid time that counts it, on the arrival row and the leaving row; a
    running sum along the grid turns marks into counts. Exams of a trust code outside
    0..n_trusts-1 are left out, as the per-trust slices of the numpy code left them out.
    """
    waiting = np.empty((n_trusts, len(grid)), dtype=np.int64)
    _loops.backlog_counts(np.ascontiguousarray(trust, dtype=np.int16), np.ascontiguousarray(arrival, dtype=np.float64),
                          np.ascontiguousarray(left_at, dtype=np.float64), np.ascontiguousarray(grid, dtype=np.float64),
                          n_trusts, waiting)
    return waiting


def session_terms(route, reader, left_at, done_at, horizon, core, brokered,
                  interval_start, interval_end, interval_bounds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per core-session read (route `core` or `brokered`, reader >= 0), its hours inside the session
    it started in and past that session's end, grouped by reader, each reader's reads in exam order.

    A read lasts left_at .. min(done_at, horizon) (hours); its session is the reader's last on-duty
    interval starting at or before left_at (the first if none). Reporter r's intervals are
    interval_start/interval_end[interval_bounds[r]:interval_bounds[r + 1]]; readers without
    intervals, and reader codes past the last reporter, are left out.

    Returns (bounds, inside, overtime): reporter r's terms (hours) are
    inside/overtime[bounds[r]:bounds[r + 1]], contiguous so that numpy sums each as it summed them before.
    Two floats per read: less memory than the sort by reader they replace.
    """
    interval_bounds = np.ascontiguousarray(interval_bounds, dtype=np.int64)
    route = np.ascontiguousarray(route, dtype=np.int8)
    reader = np.ascontiguousarray(reader, dtype=np.int32)
    bounds = np.zeros(len(interval_bounds), dtype=np.int64)
    _loops.count_session_reads(route, reader, core, brokered, interval_bounds, bounds)
    inside, overtime = np.empty(bounds[-1]), np.empty(bounds[-1])
    _loops.fill_session_terms(route, reader, np.ascontiguousarray(left_at, dtype=np.float64),
                              np.ascontiguousarray(done_at, dtype=np.float64), float(horizon), core, brokered,
                              np.ascontiguousarray(interval_start, dtype=np.float64),
                              np.ascontiguousarray(interval_end, dtype=np.float64), interval_bounds, bounds,
                              inside, overtime)
    return bounds, inside, overtime
