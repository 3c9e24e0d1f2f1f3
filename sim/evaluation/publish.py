"""What a pilot evaluation publishes: tables under disclosure control, a terminal summary, an HTML report
with the parallel-trends plot, and a statement of what the evaluation cannot show.

Disclosure control (:func:`sim.privacy.protect`): counts of exams and patients 1..suppress_below-1
(default 1-7) are hidden, other counts rounded to ``round_to`` (default 5), and further cells hidden
wherever a published total (an "ALL" row, or acquired = reported + censored) would give a hidden one
away; statistics of a hidden cell (costs, hours, medians) are hidden with it, and the money and hours
totals (the ALL row, and the summary's headline money, hours and WTE) are hidden whenever any cell of
the extra-activity table is, because with the public tariff they would reveal the hidden cells' mix.
Per-reporter rows are never published: the cohort is published as counts per group and reason.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from sim.atomic import atomic_write
from sim.privacy import SUPPRESSED_SUFFIX, protect, round_counts, row_constraints, total_constraints

CAVEATS = (
    "Quality: the log shows how many reports were made and when, not whether they were right; report "
    "accuracy, discrepancies and patient outcomes are not measured.",
    "Fatigue and wellbeing: home sessions add hours to a working day; the log cannot show fatigue, later "
    "errors or burnout, nor work done outside reporting (MDTs, teaching, on-call).",
    "Attribution: participants and comparison reporters were not randomised; the difference-in-differences "
    "removes changes common to both groups (week effects) but assumes parallel trends, which the 'before' "
    "weeks can support but not prove. Anything else that changed for participants alone during the pilot "
    "is attributed to it.",
    "Volunteer selection: participants volunteered (or were chosen); they may differ in motivation, "
    "subspecialty and workload from the reporters a wider roll-out would rely on, so the effect may not generalise.",
    "Leave and absence are inferred (a week without any report is left out); partial absences within a "
    "week count as lower output. Case mix is weighted by benchmark minutes, which are estimates.",
    "Net capacity and savings rest on assumptions stated beside them (the rate ratio's displacement of core "
    "work; the share of extra exams that would otherwise have been outsourced).",
)

SUMMARY_COUNTS = ("exams_reported", "extra_exams", "extra_patients", "extra_exams_without_price",
                  "extra_exams_without_benchmark", "net_extra_exams")
SUMMARY_FROM_EXTRA = ("exams_per_patient", "extra_hours", "wte_generated", "wte_generated_premium_pa",
                      "net_extra_hours", "net_extra_hours_low", "net_extra_hours_high", "net_wte", "net_wte_low",
                      "net_wte_high", "net_extra_exams", "cost_insourcing_tariff", "cost_outsourcing",
                      "saving_vs_outsourcing", "saving_low", "saving_high", "tariff_to_outsourcing_ratio",
                      "extra_reports_per_hour_observed", "extra_reports_per_hour_benchmark", "commissioner_income",
                      "income_per_exam", "outsourcing_per_exam", "income_to_outsourcing_ratio")
MONEY_AND_HOURS = (*SUMMARY_FROM_EXTRA[1:17], *SUMMARY_FROM_EXTRA[-4:])  # totals (and per-exam means) a hidden cell would reveal
EXTRA_STATS = ["benchmark_minutes", "hours", "cost_insourcing_tariff", "cost_outsourcing", "saving_vs_outsourcing"]


def tables(ev, suppress: bool = True) -> dict[str, pd.DataFrame]:
    k = ev.settings.get("suppress_below", 8) if suppress else 0
    r = ev.settings.get("round_to", 5) if suppress else 1
    rejected = ev.log.rejected
    first_row: dict[str, int] = {}
    for row, reasons in zip(rejected["row"], rejected["reason"]):
        for reason in reasons.split("; "):
            first_row.setdefault(reason, int(row))

    routes = ev.reported_by_route.reset_index(drop=True)
    routes = protect(routes, ["exams", "patients"], k, r,
                     total_constraints(routes, ["exams"], ["period", "route"], "modality"))
    routes = _hide_with(routes, "patients", "exams")

    extra = ev.extra_activity.reset_index(drop=True)
    extra = protect(extra, ["exams", "patients"], k, r, total_constraints(extra, ["exams"], [], "modality"),
                    {"exams": EXTRA_STATS})
    extra = _hide_with(extra, "patients", "exams")
    any_hidden = bool(extra.loc[extra["modality"] != "ALL", "exams_suppressed"].any()) if len(extra) else False
    if any_hidden:
        extra.loc[extra["modality"] == "ALL", EXTRA_STATS] = np.nan

    rates = ev.reporting_rates.reset_index(drop=True)
    rate_stats = ["hours_observed", "reports_per_hour", "benchmark_hours", "benchmark_reports_per_hour", "ratio_to_benchmark"]
    rates = protect(rates, ["exams", "exams_timed_by_benchmark"], k, r,
                    total_constraints(rates, ["exams", "exams_timed_by_benchmark"], ["route"], "modality"),
                    {"exams": rate_stats})
    for route in rates["route"].unique():
        mine = rates["route"] == route
        if rates.loc[mine & (rates["modality"] != "ALL"), "exams_suppressed"].any():
            rates.loc[mine & (rates["modality"] == "ALL"), ["hours_observed", "benchmark_hours"]] = np.nan

    tat = ev.turnaround.reset_index(drop=True)
    counts = ["acquired", "reported", "censored", "followed_up", "reported_within"]
    tat = protect(tat, counts, k, r,
                  total_constraints(tat, counts, ["period"], "modality") + row_constraints(tat, "acquired", ["reported", "censored"]),
                  {"acquired": ["median_h", "p90_h"], "followed_up": ["share_reported_within"],
                   "reported_within": ["share_reported_within"]})

    backlog = ev.backlog.reset_index(drop=True)
    backlog = protect(backlog, ["unreported", "older"], k, r,
                      total_constraints(backlog, ["unreported", "older"], ["date"], "modality"))

    return {
        "summary": _summary(ev.summary, k, r, any_hidden),
        "periods": ev.periods,
        "reported_by_route": routes,
        "extra_activity": extra,
        "reporting_rates": rates,
        "turnaround": tat,
        "backlog": backlog,
        "cohort": cohort_summary(ev.productivity_by_reporter),
        "productivity_tests": ev.productivity_tests,
        "pre_trend": pd.DataFrame([ev.pre_trend]) if ev.pre_trend else pd.DataFrame(),
        "weekly_trends": ev.weekly_trends.drop(columns=["mean_core_hours"], errors="ignore"),
        "rejected_reasons": pd.DataFrame({
            "reason": list(ev.log.reason_counts.index),
            "rows": ev.log.reason_counts.to_numpy(dtype=np.int64),
            "example_row": [first_row[reason] for reason in ev.log.reason_counts.index]}),
        "rejected_rows": rejected[["row", "reason"]],
    }


def _hide_with(table: pd.DataFrame, column: str, by: str) -> pd.DataFrame:
    """Hide `column` wherever `by` is hidden (a patient count beside a hidden exam count would bound it)."""
    hide = table[f"{by}{SUPPRESSED_SUFFIX}"].to_numpy(dtype=bool)
    table[column] = table[column].mask(hide)
    table[f"{column}{SUPPRESSED_SUFFIX}"] = table[f"{column}{SUPPRESSED_SUFFIX}"].to_numpy(dtype=bool) | hide
    return table


def _summary(summary: pd.DataFrame, threshold: int, round_to: int, cell_hidden: bool) -> pd.DataFrame:
    """Small counts hidden, other counts rounded; what would reveal a hidden count hidden too: everything
    computed from the extra exams when extra_exams is hidden; exams per patient when patients are; and
    the money and hours totals when a cell of the extra-activity table is hidden."""
    out = summary.copy()
    counts = out["metric"].isin(SUMMARY_COUNTS)
    small = counts & (out["value"].abs() >= 1) & (out["value"].abs() < threshold)
    extra_small = bool(small[out["metric"] == "extra_exams"].any())
    patients_small = bool(small[out["metric"] == "extra_patients"].any())
    hide = (small | (out["metric"].isin(SUMMARY_FROM_EXTRA) & extra_small)
            | ((out["metric"] == "exams_per_patient") & patients_small)
            | (out["metric"].isin(MONEY_AND_HOURS) & cell_hidden))
    out.loc[counts, "value"] = round_counts(out.loc[counts, "value"], round_to).to_numpy()
    out["value"] = out["value"].mask(hide)
    out.insert(out.columns.get_loc("value") + 1, f"value{SUPPRESSED_SUFFIX}", hide.to_numpy())
    return out


def cohort_summary(cohort: pd.DataFrame) -> pd.DataFrame:
    """Reporters per group: in the cohort, in the model, and left out by reason (no per-reporter rows)."""
    rows = []
    for group in ("participant", "comparison"):
        mine = cohort[cohort["group"] == group]
        rows.append({"group": group, "reason": "in the model", "reporters": int(mine["in_model"].sum())})
        for reason, n in mine.loc[~mine["in_model"], "why_not"].value_counts().sort_index().items():
            rows.append({"group": group, "reason": f"left out: {reason}", "reporters": int(n)})
    return pd.DataFrame(rows, columns=["group", "reason", "reporters"])


# ------------------------------------------------------------------------------------------- text
def verdict_text(ev) -> list[str]:
    lines = []
    margin = ev.settings.get("margin", -0.10)
    for row in ev.productivity_tests.itertuples(index=False):
        name = "difference-in-differences" if row.test == "difference_in_differences" else "participants before vs during"
        if not np.isfinite(row.rate_ratio) or not np.isfinite(row.ci_low):
            lines.append(f"core output, {name}: not estimable, so no verdict against the margin {margin:+.0%} "
                         f"(n={row.n} participants, {row.n_comparison} comparison; at least 2 of each are needed)")
            continue
        lines.append(f"core output, {name}: rate ratio {row.rate_ratio:.3f} [90% CI {row.ci_low:.3f}, {row.ci_high:.3f}]"
                     f" -> {row.verdict.upper()} (margin {margin:+.0%}; n={row.n} participants"
                     + (f" vs {row.n_comparison}" if row.test != "paired" else "") + ")")
    did = ev.productivity_tests.set_index("test").loc["difference_in_differences"]
    if np.isfinite(did["mde_80"]):
        lines.append(f"what this design can show: a true drop of {did['mde_80']:.0%} or more would be called inferior "
                     f"with 80% power; if nothing changed, non-inferiority would be shown with probability "
                     f"{did['power_noninferior_if_no_change']:.0%} (from the observed spread, {did['n']} vs "
                     f"{did['n_comparison']} reporters)")
    pre = ev.pre_trend
    if pre and np.isfinite(pre.get("p_value", np.nan)):
        lines.append(f"pre-pilot trend, participants vs comparison: x{pre['trend_ratio_per_week']:.3f} per week "
                     f"[95% CI {pre['ci_low']:.3f}, {pre['ci_high']:.3f}], p={pre['p_value']:.3f} "
                     f"over {pre['weeks']} 'before' weeks (parallel trends predict x1)")
    return lines


def summary_text(ev) -> str:
    k = ev.settings.get("suppress_below", 8)
    published = tables(ev)
    periods = ev.periods.set_index("period")
    lines = [f"{Path(ev.log.source).name}: {ev.log.n_rows:,} rows, {ev.log.n_rejected:,} rejected",
             *(f"  {reason}: {n:,}" for reason, n in ev.log.reason_counts.items()),
             f"pilot  {periods.at['during', 'first_day']} to {periods.at['during', 'last_day']} "
             f"({periods.at['during', 'days']} days; {periods.at['during', 'how']})",
             (f"before {periods.at['before', 'first_day']} to {periods.at['before', 'last_day']} "
              f"({periods.at['before', 'days']} days)" if periods.at["before", "days"] > 0 else
              "before (none)"), ""]
    summary = published["summary"]
    width = max(len(m) for m in summary["metric"])
    for row in summary.itertuples(index=False):
        value = ("suppressed" if getattr(row, f"value{SUPPRESSED_SUFFIX}") else
                 "" if pd.isna(row.value) else f"{row.value:,.0f}" if row.unit in ("rows", "exams", "patients", "GBP")
                 else f"{row.value:,.2f}")
        lines.append(f"{row.metric:<{width}}  {value:>14}  {row.unit}")
    lines += ["", "no harm to core work (non-inferiority):", *("  " + line for line in verdict_text(ev))]
    if ev.settings.get("warnings"):
        lines += ["", "warnings:", *(f"  - {w}" for w in ev.settings["warnings"])]
    lines += ["", "what this evaluation cannot show:", *(f"  - {c}" for c in CAVEATS),
              "", f"(published counts: 1-{k - 1} suppressed, others rounded to {ev.settings.get('round_to', 5)})"]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ files
def write(ev, out_dir) -> Path:
    """Every published table as CSV (atomically), evaluation.json, parallel_trends.png and evaluation.html.

    Nothing written holds a raw identifier or a per-reporter row; the pseudonymisation key is never written.
    """
    out = Path(out_dir)
    published = tables(ev)
    for name, table in published.items():
        atomic_write(out / f"{name}.csv", lambda tmp, t=table: t.to_csv(tmp, index=False))
    manifest = {
        "what": "emrad-sim pilot evaluation of an activity log",
        "activity_log": Path(ev.log.source).name,
        "rows": ev.log.n_rows, "rows_rejected": ev.log.n_rejected,
        "dropped_columns": list(ev.log.dropped_columns),
        "verdict": ev.verdict,
        "settings": ev.settings,
        "cannot_show": list(CAVEATS),
        "emrad_sim_version": _version(),
        "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write(out / "evaluation.json",
                 lambda tmp: tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8"))
    png = _png(ev)
    atomic_write(out / "parallel_trends.png", lambda tmp: tmp.write_bytes(png))
    atomic_write(out / "evaluation.html", lambda tmp: tmp.write_text(_html(ev, published, png), encoding="utf-8"))
    return out


def _png(ev) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig = ev.figure()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _html(ev, published: dict, png: bytes) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Pilot evaluation</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
             "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}pre{background:#f6f6f6;padding:8px}</style>",
             "</head><body><h1>Pilot evaluation</h1>",
             f"<h2>No harm to core work: {html.escape(ev.verdict)}</h2><ul>",
             *(f"<li>{html.escape(line)}</li>" for line in verdict_text(ev)), "</ul>",
             "<h2>Parallel trends</h2>",
             f"<img alt='weekly core output, participants vs comparison' src='data:image/png;base64,"
             f"{base64.b64encode(png).decode('ascii')}'>",
             "<h2>What this evaluation cannot show</h2><ul>", *(f"<li>{html.escape(c)}</li>" for c in CAVEATS), "</ul>",
             "<h2>Summary</h2><pre>", html.escape(summary_text(ev)), "</pre>"]
    for name in ("summary", "productivity_tests", "cohort", "pre_trend", "extra_activity", "turnaround", "reported_by_route"):
        parts += [f"<h3>{name}</h3>", published[name].to_html(index=False, na_rep="", float_format=lambda v: f"{v:,.3f}")]
    parts.append("</body></html>")
    return "\n".join(parts)


def _version() -> str:
    try:
        return metadata.version("emrad-sim")
    except metadata.PackageNotFoundError:
        return "unknown"
