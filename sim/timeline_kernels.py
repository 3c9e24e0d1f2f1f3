"""Compiled per-exam passes of the time-based statistics (sim.metrics.backlog_series, session_split).

Each replaces a sort of the year's exams (by trust, by reader) with one or two passes that bin or
scatter. Both give exactly what the numpy code they replace gives: the backlog is a count, decided
by the same comparisons as ``np.searchsorted``; a reporter's session hours are the same per-read
terms (the same IEEE operations), summed afterwards by ``np.sum`` in numpy, as before (its pairwise
summation, and how numpy's iterator splits a sum, are numpy's business, not copied here).
"""

from __future__ import annotations

import numpy as np

from sim.jit import compiled


@compiled
def _first_at_or_above(grid, value):
    """``np.searchsorted(grid, value, side="left")`` for a finite ascending grid of about even steps
    (``np.arange``): the first grid index k with grid[k] >= value (len(grid) if none; NaN: len(grid),
    as numpy sorts NaN last).

    An index from arithmetic, then moved until the grid's own values agree: exact however the grid
    was rounded.
    """
    n = len(grid)
    if n == 0 or not value <= grid[n - 1]:  # past the end, or NaN
        return n
    if value <= grid[0]:  # the initial backlog, -inf
        return 0
    k = int(np.ceil((value - grid[0]) / (grid[1] - grid[0])))  # n >= 2 here
    k = min(max(k, 1), n - 1)
    while k > 0 and grid[k - 1] >= value:
        k -= 1
    while grid[k] < value:  # stops: grid[n - 1] >= value
        k += 1
    return k


@compiled
def backlog_counts(trust, arrival, left_at, grid, n_trusts):
    """(n_trusts, len(grid)) int64: per trust and grid time g (hours), exams acquired at or before g
    minus exams that left the worklist at or before g (left_at NaN: never).

    Each exam marks the first grid time that counts it, on the arrival row and the leaving row; a
    running sum along the grid turns marks into counts. Exams of a trust code outside
    0..n_trusts-1 are left out, as the per-trust slices of the numpy code left them out.
    """
    n_grid = len(grid)
    marks = np.zeros((n_trusts, n_grid + 1), dtype=np.int64)  # column n_grid: after the last grid time
    for i in range(len(trust)):
        t = trust[i]
        if t < 0 or t >= n_trusts:
            continue
        marks[t, _first_at_or_above(grid, arrival[i])] += 1
        marks[t, _first_at_or_above(grid, left_at[i])] -= 1
    waiting = np.empty((n_trusts, n_grid), dtype=np.int64)
    for t in range(n_trusts):
        running = 0
        for k in range(n_grid):
            running += marks[t, k]
            waiting[t, k] = running
    return waiting


@compiled
def _minimum(a, b):
    """``np.minimum`` of two scalars: NaN if either is NaN, `b` if they are equal (of 0.0 and -0.0, the
    second, as numpy's loops give it on x86)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a < b else b


@compiled
def _maximum(a, b):
    """``np.maximum`` of two scalars: NaN if either is NaN, `b` if they are equal (as ``_minimum``)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a > b else b


@compiled
def _before(value, start):
    """``value < start`` in numpy's sort order (NaN above every number), as ``np.searchsorted`` decides."""
    return value < start or (start != start and value == value)


@compiled
def _interval_of(starts, lo, hi, value, guess):
    """Index (lo..hi-1) of the last interval starting at or before `value`, the first if none:
    ``max(np.searchsorted(starts[lo:hi], value, side="right") - 1, 0) + lo`` (starts ascending).

    A reader's consecutive reads mostly fall in the interval of its previous read (`guess`) or the
    next one: those are checked first, anything else is found by bisection.
    """
    if not _before(value, starts[guess]):
        if guess + 1 == hi or _before(value, starts[guess + 1]):
            return guess
        if guess + 2 == hi or _before(value, starts[guess + 2]):
            return guess + 1
    a, b = lo, hi
    while a < b:
        mid = (a + b) // 2
        if _before(value, starts[mid]):
            b = mid
        else:
            a = mid + 1
    return max(a - 1, lo)


@compiled
def session_terms(route, reader, left_at, done_at, horizon, core, brokered,
                  interval_start, interval_end, interval_bounds):
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
    n_reporters = len(interval_bounds) - 1
    bounds = np.zeros(n_reporters + 1, dtype=np.int64)
    for i in range(len(route)):
        r = reader[i]
        if (route[i] == core or route[i] == brokered) and 0 <= r < n_reporters \
                and interval_bounds[r] < interval_bounds[r + 1]:
            bounds[r + 1] += 1
    for r in range(n_reporters):
        bounds[r + 1] += bounds[r]
    inside = np.empty(bounds[n_reporters])
    overtime = np.empty(bounds[n_reporters])
    at = bounds[:n_reporters].copy()
    last = interval_bounds[:n_reporters].copy()  # each reader's interval of its previous read
    for i in range(len(route)):
        r = reader[i]
        if (route[i] == core or route[i] == brokered) and 0 <= r < n_reporters \
                and interval_bounds[r] < interval_bounds[r + 1]:
            start = left_at[i]
            end = _minimum(done_at[i], horizon)
            last[r] = _interval_of(interval_start, interval_bounds[r], interval_bounds[r + 1], start, last[r])
            session_end = interval_end[last[r]]
            inside[at[r]] = _minimum(end, session_end) - start
            overtime[at[r]] = _maximum(end - session_end, 0.0)
            at[r] += 1
    return bounds, inside, overtime
