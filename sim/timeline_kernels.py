"""Compiled per-exam passes of the time-based statistics (sim.metrics.backlog_series).

The backlog series replaces a sort of the year's exams by trust with one pass that bins them. It
gives exactly what the numpy code it replaces gives: the backlog is a count, decided by the same
comparisons as ``np.searchsorted``.
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
