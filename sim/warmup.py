"""Steady-state studies: choosing the warm-up period with MSER-5.

MSER (White 1997; MSER-5 in White, Cobb & Spratt 2000) truncates the first d observations of an
output series where the marginal standard error of the remaining mean,
    MSER(d) = sum_{i>d} (Y_i - mean_{i>d} Y)^2 / (n - d)^2,
is smallest, searching d over the first half of the series. MSER-5 applies it to means of
batches of 5 observations. Here the series is the consortium backlog averaged across
replications, first averaged per day (24 h) so that the hour-of-day cycle does not dominate.
"""

from __future__ import annotations

import numpy as np

from sim.experiment import ExperimentResult

BATCH = 5


def mser5(series: np.ndarray) -> int:
    """Number of leading observations of `series` to discard (a multiple of 5)."""
    values = np.asarray(series, dtype=float)
    n_batches = len(values) // BATCH
    if n_batches < 4:
        return 0
    batches = values[: n_batches * BATCH].reshape(n_batches, BATCH).mean(axis=1)
    tail_sum = np.cumsum(batches[::-1])[::-1]  # sum of batches d..end
    tail_sq = np.cumsum((batches**2)[::-1])[::-1]
    remaining = n_batches - np.arange(n_batches)
    sse = tail_sq - tail_sum**2 / remaining  # sum of squared deviations of batches d..end
    mser = sse / remaining**2
    d = int(np.argmin(mser[: n_batches // 2 + 1]))
    return d * BATCH


def daily_backlog(result: ExperimentResult) -> tuple[np.ndarray, np.ndarray]:
    """(day start in hours, consortium backlog averaged over the day and over replications)."""
    backlog = result.consortium_backlog().mean(axis=1)
    day = (backlog.index.to_numpy() // 24).astype(int)
    means = backlog.groupby(day).mean()
    return means.index.to_numpy() * 24.0, means.to_numpy()


def suggest_warmup(result: ExperimentResult) -> float:
    """Warm-up in hours by MSER-5 on the daily consortium backlog (round it up to whole weeks to use it)."""
    start_h, values = daily_backlog(result)
    return float(start_h[mser5(values)]) if len(values) else 0.0


def plot_warmup(result: ExperimentResult, ax=None):
    """The daily consortium backlog with the MSER-5 truncation point marked; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    start_h, values = daily_backlog(result)
    warmup = suggest_warmup(result)
    ax.plot(start_h / 24, values, lw=1.2, label="backlog, daily mean over replications")
    ax.axvline(warmup / 24, color="crimson", ls="--", label=f"MSER-5 warm-up: {warmup / 24:.0f} days")
    ax.set_xlabel("day of the run")
    ax.set_ylabel("exams waiting (consortium)")
    ax.legend(loc="best")
    return ax
