"""Figures of the HTML report, each returned as inline SVG (matplotlib, no scripts, no network).

Split from :mod:`sim.report`, which assembles the sections; these functions only draw.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pandas as pd
from markupsafe import Markup

from sim.experiment import t_half_width
from sim.scenario import HOURS_PER_WEEK, Scenario

# (route, cost metric, exams metric): marginal spend per exam; in-house reads add nothing to salaried capacity
ROUTES = [("home", "cost_home", "reported_home"), ("outsourced", "cost_outsourced", "outsourced"),
          ("teleradiology", "cost_teleradiology", "teleradiology")]
ROUTE_COLOURS = {"capacity": "#4c72b0", "home": "#55a868", "outsourced": "#c44e52", "teleradiology": "#dd8452"}


def _mean_ci(values: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    grouped = values.groupby(keys, sort=False)[column]
    out = grouped.agg(mean="mean", sd="std", n="count").reset_index()
    half = t_half_width(out["sd"], out["n"])
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    return out


def _svg(fig) -> Markup:
    """The figure as an inline <svg> element (no XML prolog, DOCTYPE or metadata links)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return Markup(text)


def _figure(width: float, height: float):
    import matplotlib
    from matplotlib.figure import Figure
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: small, searchable
    matplotlib.rcParams["font.size"] = 9
    return Figure(figsize=(width, height))


def _backlog_figure(backlog: pd.DataFrame, trusts: list[str]) -> Markup:
    """Daily mean waiting per trust (plus the consortium), with a t CI band across replications."""
    b = backlog.assign(day=(backlog.time_h // 24).astype(int))
    daily = b.groupby(["replication", "trust", "day"], sort=False)["waiting"].mean().reset_index()
    total = daily.groupby(["replication", "day"])["waiting"].sum().reset_index().assign(trust="consortium")
    daily = pd.concat([total, daily], ignore_index=True)
    stats = _mean_ci(daily, ["trust", "day"], "waiting")
    panels = ["consortium", *trusts]
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig = _figure(11, 2.3 * rows)
    axes = fig.subplots(rows, cols, sharex=True, squeeze=False).ravel()
    for ax, name in zip(axes, panels):
        s = stats[stats.trust == name].sort_values("day")
        ax.plot(s.day, s["mean"], color="#1f4e79", lw=1.4)
        if s["ci_low"].notna().any():
            ax.fill_between(s.day, s.ci_low.clip(lower=0), s.ci_high, color="#1f4e79", alpha=0.2, lw=0)
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-cols:]:
        ax.set_xlabel("day")
    fig.supylabel("exams waiting")
    fig.tight_layout()
    return _svg(fig)


def _bar_ci_figure(labels, means, lows, highs, ylabel: str, percent: bool = False, targets=None) -> Markup:
    fig = _figure(max(4.0, 0.9 * len(labels) + 1.5), 2.8)
    ax = fig.subplots()
    x = np.arange(len(labels))
    means = np.asarray(means, dtype=float)
    err = None
    lows, highs = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    if percent:  # a share's CI stays within [0, 1]
        lows, highs = np.clip(lows, 0, 1), np.clip(highs, 0, 1)
    if not np.all(np.isnan(lows)):
        err = np.nan_to_num(np.vstack([means - lows, highs - means]))
    ax.bar(x, means, color="#4c72b0", yerr=err, capsize=4)
    ax.set_xticks(x, labels)
    ax.set_ylabel(ylabel)
    if percent:
        ax.set_ylim(0, 1.05)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


def _finance_figure(by_trust: pd.DataFrame, trusts: list[str]) -> Markup:
    """Mean cost per trust, stacked (salaried capacity, then marginal spend by route), with the
    all-outsourced counterfactual as a marker."""
    fig = _figure(10, 3.2)
    ax = fig.subplots()
    x = np.arange(len(trusts))
    bottom = np.zeros(len(trusts))
    for route, cost, _ in [("capacity", "cost_capacity", None), *ROUTES]:
        if cost not in by_trust.columns:
            continue
        values = np.nan_to_num(by_trust.reindex(trusts)[cost].to_numpy(dtype=float))
        ax.bar(x, values, bottom=bottom, color=ROUTE_COLOURS[route], label=route)
        bottom += values
    counterfactual = by_trust.reindex(trusts)["counterfactual_cost"].to_numpy(dtype=float)
    if not np.all(np.isnan(counterfactual)):
        ax.scatter(x, counterfactual, marker="_", s=600, color="black", lw=2, label="all-outsourced counterfactual",
                   zorder=3)
    ax.set_xticks(x, trusts)
    ax.set_ylabel("£ over the horizon")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    ax.legend(fontsize=8, ncols=5, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


def _utilisation_figure(util: pd.DataFrame, trusts: list[str]) -> Markup:
    groups = list(dict.fromkeys(util["group"]))
    fig = _figure(10, 3.0)
    ax = fig.subplots()
    width = 0.8 / max(len(groups), 1)
    x = np.arange(len(trusts))
    colours = ["#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd", "#8c8c8c", "#da8bc3"]
    for k, group in enumerate(groups):
        g = util[util.group == group].set_index("trust").reindex(trusts)
        means = g["mean"].to_numpy(dtype=float)
        err = None
        if g["ci_low"].notna().any():
            err = np.vstack([means - g.ci_low.to_numpy(dtype=float), g.ci_high.to_numpy(dtype=float) - means])
            err = np.nan_to_num(err)
        ax.bar(x + (k - (len(groups) - 1) / 2) * width, np.nan_to_num(means), width, yerr=err, capsize=2,
               color=colours[k % len(colours)], label=group)
    ax.set_xticks(x, trusts)
    ax.set_ylabel("utilisation in session")
    ax.set_ylim(0, max(1.05, float(np.nanmax(util["ci_high"].fillna(util["mean"]))) + 0.05))
    ax.axhline(1.0, color="grey", lw=1, ls="--")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.legend(fontsize=8, ncols=min(len(groups), 6), loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


def _coverage_figure(scn: Scenario) -> Markup:
    """Reporters on duty by hour of week from the core timetables (leave and home sessions not included)."""
    from sim.workforce import weekly_intervals
    hours = np.arange(HOURS_PER_WEEK)
    roles = sorted({g.role for g in scn.staff})
    fig = _figure(10, 2.6)
    ax = fig.subplots()
    bottom = np.zeros(len(hours))
    for role, colour in zip(roles, ["#4c72b0", "#55a868", "#c44e52"]):
        on = np.zeros(len(hours))
        for group in scn.staff:
            if group.role != role:
                continue
            for start, end in weekly_intervals(group):
                # fraction of each hour [h, h+1) covered by the session
                on += group.count * np.clip(np.minimum(end, hours + 1) - np.maximum(start, hours), 0, 1)
        ax.bar(hours, on, width=1.0, bottom=bottom, align="edge", color=colour, label=role, lw=0)
        bottom += on
    ax.set_xticks(np.arange(0, HOURS_PER_WEEK + 1, 24), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", ""], ha="left")
    ax.set_xlim(0, HOURS_PER_WEEK)
    ax.set_ylabel("reporters on duty")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


def _forest_figure(diffs: pd.DataFrame) -> Markup:
    """Paired differences from the baseline with 95% CIs, one panel per metric (own units)."""
    metrics = list(dict.fromkeys(diffs.metric))
    scenarios = list(dict.fromkeys(diffs.scenario))
    cols = 2
    rows = math.ceil(len(metrics) / cols)
    fig = _figure(10, max(1.6, 0.35 * len(scenarios) + 0.9) * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    y = np.arange(len(scenarios))
    for ax, metric in zip(axes, metrics):
        d = diffs[diffs.metric == metric].set_index("scenario").reindex(scenarios)
        mean = d["difference"].to_numpy(dtype=float)
        lo, hi = d["ci_low"].to_numpy(dtype=float), d["ci_high"].to_numpy(dtype=float)
        has_ci = ~np.isnan(lo)
        ax.errorbar(mean[has_ci], y[has_ci], xerr=[mean[has_ci] - lo[has_ci], hi[has_ci] - mean[has_ci]],
                    fmt="o", color="#1f4e79", capsize=3)
        ax.plot(mean[~has_ci], y[~has_ci], "o", color="#1f4e79")
        ax.axvline(0, color="grey", lw=1, ls="--")
        ax.set_yticks(y, scenarios)
        ax.invert_yaxis()
        ax.set_title(metric, fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    fig.tight_layout()
    return _svg(fig)


# ---------------------------------------------------------------- tables
