"""The broker's dashboards in the report, from the market's own data (sim.market): what trusts posted,
what reporters offered, what was matched and what was left, and what it cost against outsourcing.

Three tables and a figure, all means per replication over the horizon (95% CI where there are
replications to give one):

* **market by trust**: posted work (as owner), offered extra-session hours (as the readers' trust),
  matched and unmet work, posted exams the company took in the end, and core-time quota granted
  out and in;
* **eligibility**: posted, matched and unmet work by owning trust x modality x subspecialty, unmet
  work shaded: the work no offered session reached;
* **money**: per trust, what the market and core-time sharing cost the owner (tariff, inter-trust
  charges), the outsourcing price of the same exams (an upper bound on what was avoided: some would
  have been read in-house later; the paired comparison with a baseline gives the causal figure),
  charges received, the net position, and the break-even tariff multiplier: the multiplier at which
  the tariff paid for the market's reads equals their outsourcing price.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from markupsafe import Markup

from sim.report_tables import fmt, heat_style, table_block
from sim.scenario import Scenario

MARKET_COLUMNS = [  # (metric, label, format)
    ("posted_work_hours", "posted work (h)", "{:,.0f}"),
    ("offered_session_hours", "offered session hours (readers' trust)", "{:,.0f}"),
    ("matched_work_hours", "matched work (h)", "{:,.0f}"),
    ("unmet_work_hours", "unmet posted work (h)", "{:,.0f}"),
    ("posted_outsourced", "posted exams outsourced in the end", "{:,.0f}"),
    ("core_time_granted_out_hours", "core-time quota granted out (h)", "{:,.0f}"),
    ("core_time_granted_in_hours", "core-time quota granted in (h)", "{:,.0f}"),
]
UNMET_RED = (196, 78, 82)


def _per_trust(tidy: pd.DataFrame) -> pd.DataFrame:
    """replication x trust x metric values at the trust level (all modalities and urgencies), consortium as 'ALL'."""
    rows = tidy[(tidy.modality == "ALL") & (tidy.urgency == "ALL")]
    return rows.pivot_table(index=["replication", "trust"], columns="metric", values="value", aggfunc="first")


def _series_mean_ci(values: pd.Series) -> tuple[float, float, float]:
    from sim.experiment import t_half_width

    values = values.dropna()
    mean = float(values.mean()) if len(values) else np.nan
    half = float(t_half_width(values.std(), len(values))) if len(values) > 1 else np.nan
    return mean, mean - half, mean + half


def _cell(values: pd.Series, format_: str, n: int) -> str:
    mean, low, high = _series_mean_ci(values)
    text = fmt(format_, mean)
    return text + (f" [{fmt(format_, low)}, {fmt(format_, high)}]" if n > 1 and not np.isnan(low) else "")


def _by_trust(wide: pd.DataFrame, trusts: list[str], n: int) -> dict:
    present = [c for c in MARKET_COLUMNS if c[0] in wide.columns]
    unmet_top = wide["unmet_work_hours"].groupby(level="trust").mean().drop("ALL", errors="ignore").max() \
        if "unmet_work_hours" in wide.columns else 0.0
    rows, styles = [], []
    for trust in [*trusts, "ALL"]:
        mine = wide.xs(trust, level="trust")
        row, style = ["consortium" if trust == "ALL" else trust], [""]
        for metric, _, format_ in present:
            row.append(_cell(mine[metric], format_, n))
            shade = metric == "unmet_work_hours" and trust != "ALL"
            style.append(heat_style(mine[metric].mean(), unmet_top, UNMET_RED) if shade else "")
        rows.append(row)
        styles.append(style)
    return table_block(["trust", *[label for _, label, _ in present]], rows, styles)


def _money(wide: pd.DataFrame, trusts: list[str], n: int, multiplier: float) -> dict:
    """Per trust: market spend against the outsourcing price of the same exams, and the break-even tariff."""
    def col(name: str) -> pd.Series:
        return wide[name] if name in wide.columns else pd.Series(0.0, index=wide.index)

    avoided = col("outsourcing_avoided_home") + col("outsourcing_avoided_brokered")
    net = avoided - col("cost_home") - col("inter_trust_paid") + col("inter_trust_received")
    with np.errstate(invalid="ignore", divide="ignore"):
        break_even = multiplier * col("outsourcing_avoided_home") / col("cost_home").where(col("cost_home") > 0)
    frame = pd.DataFrame({"cost_home": col("cost_home"), "inter_trust_paid": col("inter_trust_paid"),
                          "avoided": avoided, "received": col("inter_trust_received"), "net": net,
                          "break_even": break_even})
    columns = [("cost_home", "market tariff paid (£)", "£{:,.0f}"),
               ("inter_trust_paid", "core-time charges paid (£)", "£{:,.0f}"),
               ("avoided", "outsourcing price of those exams (£)", "£{:,.0f}"),
               ("received", "charges received for reading (£)", "£{:,.0f}"),
               ("net", "net position (£)", "£{:,.0f}"),
               ("break_even", "break-even tariff multiplier", "{:.2f}")]
    rows, styles = [], []
    for trust in [*trusts, "ALL"]:
        mine = frame.xs(trust, level="trust")
        rows.append(["consortium" if trust == "ALL" else trust] + [_cell(mine[c], f, n) for c, _, f in columns])
        below = mine["break_even"].mean() < multiplier
        styles.append([""] * (len(columns)) + [heat_style(1.0, 1.0, UNMET_RED) if below else ""])
    return table_block(["trust", *[label for _, label, _ in columns]], rows, styles)


def _eligibility(folder: Path, trusts: list[str], n: int) -> dict | None:
    path = folder / "market.csv"
    if not path.exists():  # a folder written before the market was recorded
        return None
    market = pd.read_csv(path)
    if market.empty:
        return None
    keys = ["trust", "modality", "subspecialty"]
    totals = market.groupby(keys)[["posted_exams", "posted_work_hours", "matched_work_hours", "unmet_work_hours",
                                   "unmet_outsourced"]].sum() / max(n, 1)
    order = {t: k for k, t in enumerate(trusts)}
    totals = totals.reset_index().sort_values(["trust", "modality", "subspecialty"],
                                              key=lambda s: s.map(order) if s.name == "trust" else s)
    top = totals["unmet_work_hours"].max()
    rows, styles = [], []
    for r in totals.itertuples():
        share = r.unmet_work_hours / r.posted_work_hours if r.posted_work_hours > 0 else np.nan
        rows.append([r.trust, r.modality, r.subspecialty, fmt("{:,.0f}", r.posted_exams),
                     fmt("{:,.1f}", r.posted_work_hours), fmt("{:,.1f}", r.matched_work_hours),
                     fmt("{:,.1f}", r.unmet_work_hours), fmt("{:.0%}", share), fmt("{:,.0f}", r.unmet_outsourced)])
        styles.append([""] * 6 + [heat_style(r.unmet_work_hours, top, UNMET_RED), "", ""])
    return table_block(["owning trust", "modality", "subspecialty", "posted exams", "posted work (h)",
                        "matched (h)", "unmet (h)", "unmet share", "unmet, outsourced (exams)"], rows, styles,
                       index_cols=3)


def _figure(wide: pd.DataFrame, trusts: list[str]) -> Markup | None:
    from sim.report_figures import _figure as new_figure, _svg

    if "posted_work_hours" not in wide.columns:
        return None
    means = wide.groupby(level="trust").mean().reindex(trusts)
    fig = new_figure(7.5, 3.0)
    ax = fig.subplots()
    x = np.arange(len(trusts))
    ax.bar(x - 0.2, means["matched_work_hours"], 0.4, label="matched", color="#55a868")
    ax.bar(x - 0.2, means["unmet_work_hours"], 0.4, bottom=means["matched_work_hours"], label="unmet",
           color="#c44e52")
    ax.bar(x + 0.2, means["offered_session_hours"], 0.4, label="offered session hours (readers' trust)",
           color="#4c72b0")
    ax.set_xticks(x, trusts)
    ax.set_ylabel("hours over the horizon")
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig)


def market_context(folder: Path, tidy: pd.DataFrame, scn: Scenario, n: int) -> dict | None:
    """The market section's tables and figure; None when the scenario has no market and no broker."""
    wide = _per_trust(tidy)
    home_on = scn.home_reporting is not None and scn.home_reporting.enabled
    if not home_on and scn.policy.kind != "brokered":
        return None
    if "posted_work_hours" not in wide.columns:  # a folder written before the market was recorded
        return None
    trusts = scn.trust_codes
    multiplier = scn.home_reporting.tariff_multiplier if home_on else 1.0
    return {"by_trust": _by_trust(wide, trusts, n), "figure": _figure(wide, trusts),
            "eligibility": _eligibility(folder, trusts, n), "money": _money(wide, trusts, n, multiplier),
            "multiplier": f"{multiplier:g}", "reads": scn.home_reporting.reads if home_on else None}

