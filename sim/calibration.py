"""The default year beside national and EMRAD figures: `emrad-sim calibrate`.

Every model value comes from the replications of a run (never typed in); every published value
cites ../shared/domain/. `tuned` says whether free ESTIMATEs in the scenario were adjusted to
bring the model near that figure (so agreement there is a fit, not a prediction). The target is
agreement within 25% (DESIGN §9) where the model and the figure measure the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.experiment import ExperimentResult, summarise
from sim.metrics import ALL
from sim.scenario import Scenario

TOLERANCE = 0.25

UK_TELERADIOLOGY_SPEND = 216e6  # £/yr, 2024 (facts §2b READ: RCR)
UK_POPULATION = 67e6  # ESTIMATE: not in facts.md (general knowledge, mid-2020s)


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    published: float
    source: str
    tuned: bool
    note: str = ""


def figures(scn: Scenario) -> list[Figure]:
    """The published figures the model can be set beside, with their sources."""
    emrad_population = sum(t.population for t in scn.trusts)
    spend_share = UK_TELERADIOLOGY_SPEND * emrad_population / UK_POPULATION
    return [
        Figure("share_sent_out", "share of reporting work outsourced (threshold + night contract)", 0.14,
               "facts §1d READ (FT/LEK 2021: ~14% of scans)", True,
               "the figure's denominator includes ultrasound, which is never outsourced; "
               "the model's is reporting work (XR/CT/MR) only"),
        Figure("ooh_share_sent_out", "share of out-of-hours CT/MR outsourced", 0.80,
               "facts §1d READ (LEK via FT: ~80% of out-of-hours scans)", True,
               "out of hours = outside Mon-Fri 08:00-18:00 and bank holidays"),
        Figure("share_reported_after_28d", "share of reports issued after 28 days", 0.0161,
               "ops_facts §7 DERIVED: 745,290 of 46.2m scans, England 2023", True),
        Figure("share_ctmr_reported_after_28d", "share of CT/MR reports issued after 28 days", 0.03,
               "ops_facts §7 READ: 344,960 (3%) CT, MRI and complex scans, 2023", False),
        Figure("spend_per_year", "outsourcing + night teleradiology spend (£/yr)", spend_share,
               f"facts §2b READ: £216m UK teleradiology spend 2024 x EMRAD population share "
               f"({emrad_population / 1e6:.2f}m of ~67m, UK population ESTIMATE)", True),
        Figure("consultants_per_100k", "consultant radiologists in post per 100,000", 4.8,
               "facts §2a READ: UK ~4.8 (2015); the East Midlands is the lowest region", False,
               "an input (posts x (1 - vacancy)), not an outcome"),
        Figure("ctmr_share_of_reading_hours", "CT/MR share of in-house reading hours", 0.50,
               "ops_facts §5 READ (Irish RVU survey, non-UK): CT 27-32%, MR 5.9-15.8%, plain film 28-41%, "
               "US 16-20% of activity; CT+MR without US 39-60%, midpoint", False,
               "RVU weights are not minutes; the model's reading times are facts §3 placeholders"),
    ]


def _consortium(tidy: pd.DataFrame, metric: str) -> pd.Series:
    rows = tidy[(tidy.trust == ALL) & (tidy.modality == ALL) & (tidy.metric == metric)]
    return rows.set_index("replication")["value"]


def _modalities(tidy: pd.DataFrame, metric: str, codes: list[str]) -> pd.Series:
    """A count summed over the consortium's cells of the given modalities, per replication."""
    rows = tidy[(tidy.trust != ALL) & tidy.modality.isin(codes) & (tidy.metric == metric)]
    return rows.groupby("replication")["value"].sum()


def model_values(result: ExperimentResult) -> pd.DataFrame:
    """One value per replication and calibration figure (replication, metric, value)."""
    scn, tidy = result.scenario, result.replications
    c = {m: _consortium(tidy, m) for m in ("arrivals", "initial_backlog", "outsourced", "teleradiology", "reported",
                                           "reported_after_28d", "cost_outsourced", "cost_teleradiology")}
    ctmr = [m.code for m in scn.modalities if m.code in ("CT", "MR")]
    external = c["outsourced"] + c["teleradiology"]
    reports = c["reported"] + external  # exams reported or sent out (sent-out reports come back)
    values = {
        "share_sent_out": external / (c["arrivals"] + c["initial_backlog"]),
        "ooh_share_sent_out": _modalities(tidy, "ooh_sent_out", ctmr) / _modalities(tidy, "acquired_ooh", ctmr),
        "share_reported_after_28d": c["reported_after_28d"] / reports,
        "share_ctmr_reported_after_28d": _modalities(tidy, "reported_after_28d", ctmr) / (
            _modalities(tidy, "reported", ctmr) + _modalities(tidy, "outsourced", ctmr)
            + _modalities(tidy, "teleradiology", ctmr)),
        "spend_per_year": (c["cost_outsourced"] + c["cost_teleradiology"]) * 52 / scn.horizon_weeks,
        "ctmr_share_of_reading_hours": _modalities(tidy, "reading_hours", ctmr) / _modalities(
            tidy, "reading_hours", [m.code for m in scn.modalities]),
    }
    rows = [pd.DataFrame({"replication": v.index, "metric": k, "value": v.to_numpy(dtype=float)})
            for k, v in values.items()]
    per_100k = consultants_in_post(scn) / sum(t.population for t in scn.trusts) * 1e5
    rows.append(pd.DataFrame({"replication": c["arrivals"].index, "metric": "consultants_per_100k",
                              "value": per_100k}))
    return pd.concat(rows, ignore_index=True)


def consultants_in_post(scn: Scenario) -> float:
    """Expected consultants in post at the start: posts x (1 - vacancy rate), rota slots left out."""
    return sum(g.count * (1 - scn.vacancy_rate(g))
               for g in scn.staff if g.role == "consultant" and not g.works_bank_holidays)


def calibration_table(result: ExperimentResult) -> pd.DataFrame:
    """figure, published, model mean and CI, ratio, within 25%, tuned, source, note."""
    summary = summarise(model_values(result), ["metric"], "value").set_index("metric")
    rows = []
    for f in figures(result.scenario):
        s = summary.loc[f.key]
        ratio = s["mean"] / f.published
        rows.append({"figure": f.label, "published": f.published, "model_mean": s["mean"], "ci_low": s["ci_low"],
                     "ci_high": s["ci_high"], "n": int(s["n"]), "model_over_published": ratio,
                     "within_25pct": bool(abs(ratio - 1) <= TOLERANCE), "tuned": f.tuned, "source": f.source,
                     "note": f.note, "key": f.key})
    return pd.DataFrame(rows)


def calibration_text(table: pd.DataFrame) -> str:
    """A plain-text table for the terminal."""
    def fmt(key: str, v: float) -> str:
        if np.isnan(v):
            return "n/a"
        if key == "spend_per_year":
            return f"£{v / 1e6:,.1f}m"
        if key == "consultants_per_100k":
            return f"{v:.2f}"
        return f"{v:.1%}"

    lines = [f"{'figure':<62} {'published':>10} {'model':>10} {'95% CI':>22} {'ratio':>6}  within 25%  tuned"]
    for r in table.itertuples():
        ci = f"[{fmt(r.key, r.ci_low)}, {fmt(r.key, r.ci_high)}]"
        lines.append(f"{r.figure:<62} {fmt(r.key, r.published):>10} {fmt(r.key, r.model_mean):>10} {ci:>22} "
                     f"{r.model_over_published:>6.2f}  {'yes' if r.within_25pct else 'NO':<10}  "
                     f"{'yes' if r.tuned else 'no'}")
    lines.append("")
    lines += [f"- {r.figure}: {r.source}" + (f"; {r.note}" if r.note else "") for r in table.itertuples()]
    return "\n".join(lines)
