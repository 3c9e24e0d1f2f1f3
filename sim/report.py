"""The HTML report of a results folder (`emrad-sim report RESULTS_DIR`).

One self-contained file, `RESULTS_DIR/report.html`: inline CSS, figures as inline SVG, no scripts
and nothing fetched at view time, so it can be emailed or opened offline. Sections (stable ids):
headline, backlog, turnaround, eligibility, finance, utilisation, provenance; a comparison folder
(one with differences.csv) has headline, comparison and provenance instead. Everything shown is
read from the folder (plus the eligibility rules, rebuilt from its resolved scenario.toml); nothing
is re-simulated. With one replication there are no confidence intervals: values are shown alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from sim.atomic import atomic_write
from sim.metrics import ALL
from sim.report_figures import (ROUTES, _backlog_figure, _bar_ci_figure, _coverage_figure, _finance_figure,
                                _forest_figure, _mean_ci, _utilisation_figure)
from sim.report_market import market_context
from sim.report_tables import ci_text, fmt, heat_style, table_block
from sim.scenario import Scenario

# (metric, label, format, what it means) -- the first thing a planner sees
HEADLINE_CARDS = [
    ("unreported_end", "backlog at end", "{:,.0f}", "exams acquired but not reported or outsourced at the horizon"),
    ("share_within_target", "within turnaround target", "{:.1%}", "exams reported within their urgency's target"),
    ("wte_gained_home", "WTE gained from home reporting", "{:,.2f}",
     "home and offered-session reading hours in premium-time PAs (10 PAs a week = 1 WTE)"),
    ("saving_vs_outsourcing", "saving vs all-outsourced (£)", "{:,.0f}",
     "what outsourcing every exam would have cost, minus the modelled cost"),
]
FINANCE_COLUMNS = [  # (metric, label): cost of capacity, marginal spend, transfers, income
    ("cost_capacity", "salaried capacity (read or idle)"),
    ("cost_outsourced", "outsourcing spend"),
    ("cost_teleradiology", "night teleradiology spend"),
    ("cost_home", "insourcing (home) payments"),
    ("cost_total", "total cost (capacity + spend)"),
    ("inter_trust_paid", "inter-trust charges paid"),
    ("inter_trust_received", "inter-trust charges received"),
    ("net_cost", "net cost after transfers"),
    ("commissioner_income", "commissioner income"),
    ("counterfactual_cost", "all-outsourced counterfactual"),
    ("saving_vs_outsourcing", "saving vs counterfactual"),
]


def _headline(summary: pd.DataFrame, n: int) -> list[dict]:
    s = summary.set_index("metric")
    cards = []
    for metric, label, format_, note in HEADLINE_CARDS:
        row = s.loc[metric] if metric in s.index else None
        mean = row["mean"] if row is not None else np.nan
        cards.append({
            "metric": metric, "label": label, "value": fmt(format_, mean), "note": note,
            "ci": ci_text(format_, row["ci_low"], row["ci_high"], share=metric.startswith("share"))
            if row is not None and n > 1 else "",
        })
    if "cost_total" in s.index:
        cost, counter = s.loc["cost_total", "mean"], s.loc["counterfactual_cost", "mean"] if "counterfactual_cost" in s.index else np.nan
        cards[-1]["note"] = f"modelled cost £{fmt('{:,.0f}', cost)} vs all-outsourced £{fmt('{:,.0f}', counter)}"
    return cards


def _turnaround(tidy: pd.DataFrame, scn: Scenario, trusts: list[str]) -> dict:
    """Share within target by urgency: per-cell shares weighted by exams acquired in each cell."""
    cells = tidy[(tidy.trust != ALL) & (tidy.modality != ALL) & (tidy.urgency != ALL)]
    wide = cells[cells.metric.isin(["share_within_target", "arrivals"])].pivot_table(
        index=["replication", "trust", "modality", "urgency"], columns="metric", values="value").reset_index()
    for column in ("share_within_target", "arrivals"):  # an all-NaN metric (e.g. a tiny horizon) is dropped by pivot
        if column not in wide:
            wide[column] = np.nan
    wide = wide.dropna(subset=["share_within_target"])
    wide["met"] = wide["share_within_target"] * wide["arrivals"]
    by_u = wide.groupby(["replication", "urgency"])[["met", "arrivals"]].sum().reset_index()
    by_u["share"] = by_u["met"] / by_u["arrivals"].where(by_u["arrivals"] > 0)
    u_stats = _mean_ci(by_u, ["urgency"], "share").set_index("urgency")
    by_tu = wide.groupby(["replication", "trust", "urgency"])[["met", "arrivals"]].sum().reset_index()
    by_tu["share"] = by_tu["met"] / by_tu["arrivals"].where(by_tu["arrivals"] > 0)
    tu = _mean_ci(by_tu, ["trust", "urgency"], "share").set_index(["trust", "urgency"])
    urgencies = [u.code for u in scn.urgencies]
    present = [u for u in urgencies if u in u_stats.index]
    figure = _bar_ci_figure([f"{u}\n(target {_hours(scn, u)})" for u in present],
                            u_stats.reindex(present)["mean"], u_stats.reindex(present)["ci_low"],
                            u_stats.reindex(present)["ci_high"], "share within target", percent=True) if present else None
    rows, styles = [], []
    for t in trusts:
        row, style = [t], [""]
        for u in urgencies:
            v = tu["mean"].get((t, u), np.nan)
            row.append(fmt("{:.1%}", v))
            style.append(heat_style(1 - v, 1.0, (196, 78, 82)) if not pd.isna(v) else "")
        rows.append(row)
        styles.append(style)
    consortium = [fmt("{:.1%}", u_stats["mean"].get(u, np.nan)) for u in urgencies]
    ci = [ci_text("{:.1%}", u_stats["ci_low"].get(u, np.nan), u_stats["ci_high"].get(u, np.nan), share=True)
          for u in urgencies]
    rows.append(["consortium", *consortium])
    styles.append([""] * (len(urgencies) + 1))
    if any(ci):
        rows.append(["consortium 95% CI", *ci])
        styles.append([""] * (len(urgencies) + 1))
    return {"figure": figure,
            "table": table_block(["trust", *[f"{u} (target {_hours(scn, u)})" for u in urgencies]], rows, styles)}


def _hours(scn: Scenario, urgency: str) -> str:
    h = next(u.target_hours for u in scn.urgencies if u.code == urgency)
    return f"{h / 24:g} d" if h >= 48 else f"{h:g} h"


def _eligibility(scn: Scenario, seed: int) -> dict:
    from sim.workforce import build_workforce, eligibility_table
    reporters = build_workforce(scn, seed, 0)
    table = eligibility_table(scn, reporters)
    wte_hours = scn.finance.hours_per_wte_week * scn.horizon_weeks
    wte = {r.reporter_id: r.session_hours / wte_hours for r in reporters}
    trusts = scn.trust_codes
    out = {"n_reporters": len(reporters), "wte_total": fmt("{:,.1f}", sum(wte.values()))}
    if table.empty:
        out.update(heat=None, credentials=None, workstations=None)
        return out
    table["wte"] = table["reporter_id"].map(wte)
    combos = [(m.code, s) for m in scn.modalities for s in scn.subspecialties]
    cell = table.drop_duplicates(["reporter_id", "trust", "modality", "subspecialty"])
    counts = cell.groupby(["trust", "modality", "subspecialty"]).agg(n=("reporter_id", "nunique"), wte=("wte", "sum"))
    combos = [c for c in combos if any((t, *c) in counts.index for t in trusts)]
    top = counts["n"].max()
    rows, styles = [], []
    for t in trusts:
        row, style = [t], [""]
        for m, s in combos:
            if (t, m, s) in counts.index:
                n, w = counts.loc[(t, m, s)]
                row.append(f"{int(n)} · {w:,.1f} WTE")
                style.append(heat_style(n, top))
            else:
                row.append("0")
                style.append("background: rgba(196,78,82,0.15)")
        rows.append(row)
        styles.append(style)
    heat = table_block(["trust read", *[f"{m} {s}" for m, s in combos]], rows, styles)

    people = table.drop_duplicates(["reporter_id", "trust"])
    cred = people.groupby(["home_trust", "trust"])["reporter_id"].nunique()
    basis = people.groupby(["home_trust", "trust"])["basis"].agg(lambda b: ",".join(sorted(set(b))))
    top_c = cred.max()
    rows, styles = [], []
    for h in trusts:
        row, style = [h], [""]
        for t in trusts:
            n = cred.get((h, t), 0)
            label = "" if not n else (str(n) if h == t else f"{n} ({basis.get((h, t), '')})")
            row.append(label)
            style.append(heat_style(n, top_c, (85, 168, 104)) if h != t else heat_style(n, top_c))
        rows.append(row)
        styles.append(style)
    credentials = table_block(["home trust \\ trust read", *trusts], rows, styles)

    staff = pd.DataFrame({"trust": [trusts[r.home_trust] for r in reporters], "role": [r.role for r in reporters],
                          "home": [r.home_workstation for r in reporters], "wte": [wte[r.reporter_id] for r in reporters]})
    rows = []
    for t in trusts:
        s = staff[staff.trust == t]
        rows.append([t, int((s.role == "consultant").sum()), int((s.role == "radiographer").sum()),
                     f"{s.wte.sum():,.1f}", int(s.home.sum())])
    rows.append(["consortium", int((staff.role == "consultant").sum()), int((staff.role == "radiographer").sum()),
                 f"{staff.wte.sum():,.1f}", int(staff.home.sum())])
    workstations = table_block(["home trust", "consultants", "reporting radiographers", "core WTE", "home workstations"], rows)
    out.update(heat=heat, credentials=credentials, workstations=workstations, capacity=_capacity(scn))
    return out


def _capacity(scn: Scenario) -> dict:
    """Expected reading demand against capacity per trust and skill (sim.capacity), with ratios shaded."""
    from sim.capacity import demand_capacity_table

    table = demand_capacity_table(scn)
    rows, styles = [], []
    for r in table.itertuples():
        rows.append([r.trust, f"{r.demand_h:,.0f}", f"{r.capacity_h:,.0f}", fmt("{:.2f}", r.ratio),
                     f"{r.consultant_only_demand_h:,.0f}", f"{r.consultant_capacity_h:,.0f}",
                     fmt("{:.2f}", r.consultant_ratio)])
        shade = [heat_style(max(v - 0.9, 0.0), 0.5, (196, 78, 82)) if not pd.isna(v) else "" for v in (r.ratio, r.consultant_ratio)]
        styles.append(["", "", "", shade[0], "", "", shade[1]])
    return table_block(["trust", "demand h/yr", "capacity h/yr", "demand / capacity", "consultant-only demand h/yr",
                   "consultant capacity h/yr", "consultant ratio"], rows, styles)


def _finance(by_trust_summary: pd.DataFrame, summary: pd.DataFrame, trusts: list[str], n: int) -> dict:
    means = by_trust_summary.pivot(index="trust", columns="metric", values="mean")
    lows = by_trust_summary.pivot(index="trust", columns="metric", values="ci_low")
    highs = by_trust_summary.pivot(index="trust", columns="metric", values="ci_high")
    cons = summary.set_index("metric")
    present = [(m, label) for m, label in FINANCE_COLUMNS if m in means.columns]
    rows = []
    for t in [*trusts, "consortium"]:
        row = [t]
        for m, _ in present:
            if t == "consortium":
                v, lo, hi = (cons.loc[m, c] if m in cons.index else np.nan for c in ("mean", "ci_low", "ci_high"))
            else:
                v, lo, hi = means.at[t, m], lows.at[t, m], highs.at[t, m]
            text = fmt("£{:,.0f}", v)
            if m == "saving_vs_outsourcing" and n > 1 and not pd.isna(lo):
                text += f" [{fmt('{:,.0f}', lo)}, {fmt('{:,.0f}', hi)}]"
            row.append(text)
        rows.append(row)
    spend = table_block(["trust", *[label for _, label in present]], rows)
    rows = []
    for t in [*trusts, "consortium"]:
        src = cons["mean"] if t == "consortium" else means.loc[t]
        in_house = src.get("reported_core", 0.0) + src.get("reported_brokered", 0.0) + src.get("reported_home", 0.0)
        capacity = src.get("cost_capacity", np.nan)
        row = [t, fmt("£{:,.2f}", capacity / in_house) if in_house and in_house > 0 else "—", "£0.00"]
        for _, cost, count in ROUTES:
            c, k = src.get(cost, np.nan), src.get(count, np.nan)
            row.append(fmt("£{:,.2f}", c / k) if k and not pd.isna(k) and k > 0 else "—")
        rows.append(row)
    per_exam = table_block(["trust", "capacity per in-house report (average)", "core / brokered read (marginal)",
                       *[f"{r} (£/exam)" for r, _, _ in ROUTES]], rows)
    return {"figure": _finance_figure(means, trusts), "spend": spend, "per_exam": per_exam}


def _flows(folder: Path, trusts: list[str], n: int) -> dict | None:
    """Who read what for whom: exams read for each owning trust (rows) by each reading trust's reporters
    (columns), mean per replication, with the £ the owner paid for them (tariff or inter-trust charge)."""
    path = folder / "flows.csv"
    if not path.exists():  # a folder written before flows were recorded
        return None
    flows = pd.read_csv(path)
    cross = flows[(flows.owning_trust != flows.reading_trust) | (flows.route != "core")]
    if cross.empty:
        return None
    totals = cross.groupby(["owning_trust", "reading_trust"])[["exams", "paid_gbp"]].sum() / max(n, 1)
    top = totals["exams"].max()
    rows, styles = [], []
    for owner in trusts:
        row, style = [owner], [""]
        for reader in trusts:
            if (owner, reader) in totals.index:
                exams, paid = totals.loc[(owner, reader)]
                row.append(f"{exams:,.0f} · £{paid:,.0f}")
                style.append(heat_style(exams, top, (85, 168, 104)))
            else:
                row.append("")
                style.append("")
        rows.append(row)
        styles.append(style)
    return table_block(["owning trust \\ read by", *trusts], rows, styles)


def _utilisation(reporters: pd.DataFrame, scn: Scenario, trusts: list[str]) -> dict:
    busy = "in_session_hours" if "in_session_hours" in reporters.columns else "reading_hours"  # older folders
    per = reporters.groupby(["replication", "trust", "group"])[[busy, "session_hours"]].sum().reset_index()
    per["utilisation"] = per[busy] / per["session_hours"].where(per["session_hours"] > 0)
    stats = _mean_ci(per.dropna(subset=["utilisation"]), ["trust", "group"], "utilisation")
    order = {t: k for k, t in enumerate(trusts)}
    stats = stats.sort_values("trust", key=lambda t: t.map(order), kind="stable")
    rows = [[r.trust, r.group, fmt("{:.1%}", r.mean), ci_text("{:.1%}", r.ci_low, r.ci_high)] for r in stats.itertuples()]
    return {"figure": _utilisation_figure(stats, trusts) if len(stats) else None,
            "coverage": _coverage_figure(scn) if scn.staff else None,
            "table": table_block(["home trust", "staff group", "utilisation in session", "95% CI"], rows, index_cols=2)}


def _provenance(manifest: dict) -> list[tuple[str, str]]:
    keep = ["scenario_name", "scenario_source", "config_id", "root_seed", "replications", "backend",
            "exams_per_replication", "wall_seconds", "written_at", "git_commit"]
    items = [(k, manifest[k]) for k in keep if k in manifest]
    if "versions" in manifest:
        items.append(("versions", ", ".join(f"{k} {v}" for k, v in manifest["versions"].items())))
    if "machine" in manifest:
        m = manifest["machine"]
        items.append(("machine", f"{m.get('platform', '')}, {m.get('cpus', '?')} CPUs"))
    return [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in items]


# ---------------------------------------------------------------- folders

def _read_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{folder}: cannot read manifest.json ({exc})") from None


def run_context(folder: Path) -> dict:
    from sim.loading import load_scenario
    manifest = _read_manifest(folder)
    needed = ["scenario.toml", "summary.csv", "summary_by_trust.csv", "replications.csv", "backlog.parquet",
              "reporters.csv"]
    missing = [name for name in needed if not (folder / name).exists()]
    if missing:
        raise ValueError(f"{folder}: not a complete results folder (missing {', '.join(missing)})")
    scn = load_scenario(folder / "scenario.toml")
    n = int(manifest.get("replications", 1))
    seed = int(manifest.get("root_seed", 1))
    summary = pd.read_csv(folder / "summary.csv")
    by_trust = pd.read_csv(folder / "summary_by_trust.csv")
    tidy = pd.read_csv(folder / "replications.csv")
    backlog = pd.read_parquet(folder / "backlog.parquet")
    reporters = pd.read_csv(folder / "reporters.csv")
    trusts = scn.trust_codes
    return {
        "kind": "run", "title": scn.name, "n": n, "seed": seed, "horizon_weeks": f"{scn.horizon_weeks:g}",
        "warmup_weeks": f"{scn.warmup_weeks:g}", "policy": scn.policy.kind if hasattr(scn.policy, "kind") else "",
        "cards": _headline(summary, n),
        "backlog_figure": _backlog_figure(backlog, trusts),
        "turnaround": _turnaround(tidy, scn, trusts),
        "eligibility": _eligibility(scn, seed),
        "hours_per_wte_week": f"{scn.finance.hours_per_wte_week:g}",
        "finance": _finance(by_trust, summary, trusts, n),
        "flows": _flows(folder, trusts, n),
        "market": market_context(folder, tidy, scn, n),
        "utilisation": _utilisation(reporters, scn, trusts),
        "provenance": _provenance(manifest),
    }


def compare_context(folder: Path) -> dict:
    diffs = pd.read_csv(folder / "differences.csv")
    if diffs.empty or "scenario" not in diffs.columns:
        raise ValueError(f"{folder}: differences.csv has no comparisons")
    others = list(dict.fromkeys(diffs.scenario))
    subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    baseline = next((name for name in subfolders if name not in others), "baseline")
    names = [baseline, *others]
    metrics = list(dict.fromkeys(diffs.metric))
    n = int(diffs["n"].max())
    # headline table: each scenario's mean (and CI from its own results folder when there is one)
    rows, manifest = [], None
    for name in names:
        summary_path = folder / name / "summary.csv"
        row = [name]
        if summary_path.exists():
            s = pd.read_csv(summary_path).set_index("metric")
            if manifest is None and (folder / name / "manifest.json").exists():
                manifest = _read_manifest(folder / name)
            for m in metrics:
                f = _metric_format(m)
                ci = ci_text(f, s["ci_low"].get(m, np.nan), s["ci_high"].get(m, np.nan), share=m.startswith("share"))
                ci = ci if n > 1 else ""
                row.append(fmt(f, s["mean"].get(m, np.nan)) + (" [" + ci[7:].replace(" to ", ", ") + "]" if ci else ""))
        else:
            d = diffs[diffs.scenario == (others[0] if name == baseline else name)].set_index("metric")
            column = "baseline_mean" if name == baseline else "scenario_mean"
            row += [fmt(_metric_format(m), d[column].get(m, np.nan)) for m in metrics]
        rows.append(row)
    headline = table_block(["scenario", *metrics], rows)
    drows = []
    for r in diffs.itertuples():
        f = _metric_format(r.metric)
        drows.append([r.scenario, r.metric, fmt(f, r.baseline_mean), fmt(f, r.scenario_mean), fmt(f, r.difference),
                      "" if pd.isna(r.ci_low) else f"[{fmt(f, r.ci_low)}, {fmt(f, r.ci_high)}]",
                      fmt("{:,.1f}x", getattr(r, "variance_reduction", np.nan))])
    differences = table_block(["scenario", "metric", f"{baseline} mean", "scenario mean", "difference", "95% CI (paired)",
                          "CRN variance reduction"], drows, index_cols=2)
    provenance = _provenance(manifest) if manifest else [("folder", str(folder))]
    provenance = [("comparison", f"{len(names)} scenarios, baseline {baseline}, {n} replications each, "
                                 "common random numbers"), *provenance]
    return {"kind": "compare", "title": f"comparison: {', '.join(names)}", "n": n, "baseline": baseline,
            "names": names, "headline_table": headline, "differences": differences,
            "forest": _forest_figure(diffs), "provenance": provenance,
            "scenario_reports": [name for name in names if (folder / name / "manifest.json").exists()]}


def _metric_format(metric: str) -> str:
    if metric.startswith("share") or metric == "utilisation":
        return "{:.1%}"
    if metric.startswith(("cost", "saving", "counterfactual")):
        return "{:,.0f}"
    if metric.endswith("_h") or metric.startswith("wte"):
        return "{:,.1f}"
    return "{:,.0f}"


def render(context: dict) -> str:
    env = Environment(loader=PackageLoader("sim", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**context)


def write_report(results_dir: str | Path) -> Path:
    """Write RESULTS_DIR/report.html (a run's results folder, or a comparison folder); returns its path."""
    folder = Path(results_dir)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such results folder")
    if (folder / "differences.csv").exists():
        context = compare_context(folder)
    elif (folder / "manifest.json").exists():
        context = run_context(folder)
    else:
        raise ValueError(f"{folder}: not a results folder (no manifest.json or differences.csv)")
    html = render(context)
    path = folder / "report.html"
    atomic_write(path, lambda tmp: tmp.write_text(html, encoding="utf-8"))
    return path
