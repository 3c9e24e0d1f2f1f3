"""Pilot evaluation of an activity log: what extra reporting a pilot delivered, what it cost, whether core
work suffered, and what the evaluation cannot show (the analyst's questions of DESIGN section 2, facts §11).

``evaluate_activity(log)`` answers, for the pilot period (:mod:`sim.evaluation.periods`):

* volume: exams reported by modality, band and route (before and during the pilot), distinct patients;
* capacity: extra reporting hours of the extra route ("home" by default) = exams x benchmark minutes
  (or the log's ``reading_minutes``); WTE = extra hours / (hours per WTE-week x weeks), with 1 WTE =
  10 PAs a week: 4-hour core PAs (``hours_per_wte_week`` 40) and, beside it, premium-time PAs
  (``premium_pa_hours``, 3 h under the 2003 contract); and *net* of the core work the participants may
  have stopped doing (the displaced core hours implied by the difference-in-differences rate ratio, with
  the range from its CI);
* money: the extra exams at the insourcing tariff (the readers' pay), at the commissioner income table where
  one is given (the trust's income, as the first EMRAD pilot counted it) and at the outsourcing price list,
  and per exam; the saving assumes
  a share of them would otherwise have been outsourced (``outsourced_share``, a range, default 50-100%;
  the rest would have been reported in core time at no marginal cost or waited);
* service (:mod:`sim.evaluation.service`): reports per hour vs the benchmark, turnaround with censoring
  (Kaplan-Meier), and the daily backlog;
* harm (:mod:`sim.evaluation.harm`): core output of participants as a non-inferiority question: rate
  ratios with 90% CIs against a margin (default -10%), a verdict, what the pilot's size could detect,
  the weekly series of both groups and a pre-period trend test.

Publication (:mod:`sim.evaluation.publish`): only aggregates, with disclosure control (suppress 1-7,
round to 5, secondary suppression); per-reporter rows are never published.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from sim.activity import ROUTES, ActivityLog, read_activity_log
from sim.evaluation import harm, publish, service
from sim.evaluation.periods import EvaluationWarning, make_periods
from sim.evaluation.tables import per_exam, resolve_tables
from sim.privacy import DEFAULT_ROUND_TO, DEFAULT_SUPPRESS_BELOW, pseudonymise

ALL = "ALL"


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Tables of a pilot evaluation (unsuppressed, in memory); publish with :meth:`tables` or :meth:`write`."""

    log: ActivityLog
    periods: pd.DataFrame
    summary: pd.DataFrame
    reported_by_route: pd.DataFrame
    extra_activity: pd.DataFrame
    reporting_rates: pd.DataFrame
    turnaround: pd.DataFrame
    backlog: pd.DataFrame
    productivity_by_reporter: pd.DataFrame  # the cohort, one row per reporter: never published
    productivity_tests: pd.DataFrame
    weekly_trends: pd.DataFrame = field(default_factory=pd.DataFrame)
    pre_trend: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def value(self, metric: str) -> float:
        """A summary metric (unsuppressed)."""
        return float(self.summary.set_index("metric").at[metric, "value"])

    def test(self, name: str) -> pd.Series:
        """A row of productivity_tests: "difference_in_differences" or "paired"."""
        return self.productivity_tests.set_index("test").loc[name]

    @property
    def verdict(self) -> str:
        """The no-harm verdict of the difference-in-differences: non-inferior, inconclusive or inferior."""
        return str(self.test("difference_in_differences")["verdict"])

    @property
    def caveats(self) -> tuple[str, ...]:
        return publish.CAVEATS

    def summary_text(self) -> str:
        return publish.summary_text(self)

    def tables(self, suppress: bool = True) -> dict[str, pd.DataFrame]:
        """Named publishable tables: aggregates only, with disclosure control unless suppress=False."""
        return publish.tables(self, suppress)

    def figure(self, ax=None):
        """The parallel-trends plot: weekly core output of participants vs comparison (matplotlib figure)."""
        return harm.plot_parallel_trends(self.weekly_trends, self.settings.get("pilot_start"), ax=ax)

    def write(self, out_dir: str | Path) -> Path:
        """Write the published tables (CSV), evaluation.json, parallel_trends.png, evaluation.html; returns out_dir."""
        return publish.write(self, out_dir)


def evaluate_activity(log_or_path: ActivityLog | pd.DataFrame | str | Path, tariffs=None, rates=None,
                      pilot_start=None, pilot_end=None, participants: Sequence[str] | None = None,
                      hours_per_wte_week: float = 40.0, suppress_below: int = DEFAULT_SUPPRESS_BELOW, *,
                      before_start=None, comparison: Sequence[str] | None = None,
                      extra_routes: Sequence[str] = ("home",), max_gap_minutes: float = 60.0,
                      key: bytes | None = None, read_options: Mapping[str, Any] | None = None,
                      margin: float = -0.10, round_to: int = DEFAULT_ROUND_TO,
                      outsourced_share: float | tuple[float, float] = (0.5, 1.0), premium_pa_hours: float = 3.0,
                      lead_in_days: int = 14, within_days: float = 7.0, backlog_max_age_days: float = 28.0,
                      log_days: tuple | None = None) -> Evaluation:
    """Evaluate a pilot from its activity log (see the module docstrings for every definition).

    log_or_path: an ActivityLog, or a CSV / Parquet path or raw DataFrame, read with
        :func:`sim.activity.read_activity_log` (``key`` and ``read_options`` are passed on).
    tariffs, rates: price and benchmark-minute tables (:func:`sim.evaluation.tables.resolve_tables`).
    pilot_start, pilot_end, before_start, lead_in_days: the periods (:mod:`sim.evaluation.periods`);
        log_days: (first, last) day the export covers when the log holds only part of it.
    participants: reporter ids in the pilot (default: everyone with an extra-route report during it).
    comparison: reporter ids to compare against (default: all other reporters).
    hours_per_wte_week: hours of one WTE-week in core PAs (DESIGN: 10 PAs x 4 h = 40).
    premium_pa_hours: hours of a premium-time PA (evenings, weekends), for the second WTE figure.
    margin: the non-inferiority margin, a relative change of core output (default -0.10 = a 10% drop).
    suppress_below, round_to: published counts 1..suppress_below-1 hidden, others rounded to round_to.
    outsourced_share: share (or (low, high) range) of extra exams that would otherwise have been outsourced.
    """
    if hours_per_wte_week <= 0 or premium_pa_hours <= 0:
        raise ValueError("hours_per_wte_week and premium_pa_hours must be positive")
    if not -1 < margin < 0:
        raise ValueError(f"margin must be a relative drop between -1 and 0 (e.g. -0.10), not {margin}")
    shares = (outsourced_share, outsourced_share) if np.isscalar(outsourced_share) else tuple(outsourced_share)
    if len(shares) != 2 or not all(0 <= s <= 1 for s in shares) or shares[0] > shares[1]:
        raise ValueError(f"outsourced_share must be a share or a (low, high) range within 0-1, not {outsourced_share}")
    unknown = sorted(set(extra_routes) - set(ROUTES))
    if unknown:
        raise ValueError(f"extra_routes {unknown} are not routes ({', '.join(ROUTES)})")
    log = log_or_path if isinstance(log_or_path, ActivityLog) else read_activity_log(
        log_or_path, key=key, **dict(read_options or {}))
    tables = resolve_tables(tariffs, rates)
    ex = log.exams
    reported = ex["reported_at"]
    is_extra = ex["route"].isin(list(extra_routes)) & reported.notna()

    periods, period_notes = make_periods(ex, is_extra, pilot_start, pilot_end, before_start, lead_in_days,
                                          log_days)
    notes: list[str] = []
    (b0, b1), (p0, p1) = periods.attrs["before"], periods.attrs["during"]
    weeks = (p1 - p0) / pd.Timedelta(weeks=1)
    during = (reported >= p0) & (reported < p1)
    extra = ex[is_extra & during]
    benchmark_all = per_exam(tables["reading_minutes"], ex["modality"].to_numpy(dtype=object), ex["band"].to_numpy())

    modality, band = extra["modality"].to_numpy(dtype=object), extra["band"].to_numpy()
    benchmark = per_exam(tables["reading_minutes"], modality, band)
    minutes = benchmark.copy()
    hours_method = "benchmark minutes per exam"
    if "reading_minutes" in extra.columns:
        logged = extra["reading_minutes"].to_numpy(dtype=float)
        minutes = np.where(np.isnan(logged), benchmark, logged)
        hours_method = (f"log reading_minutes ({int((~np.isnan(logged)).sum())} exams), benchmark for "
                        f"{int(np.isnan(logged).sum())}")
    tariff = per_exam(tables["insourcing"], modality, band)
    income = per_exam(tables["income"], modality, band) if tables.get("income") else np.full(len(extra), np.nan)
    factor = extra["urgency"].map(tables["urgency_factor"]).astype(float).fillna(1.0).to_numpy()
    outsourcing = per_exam(tables["outsourcing"], modality, band) * factor
    priced = ~np.isnan(tariff) & ~np.isnan(outsourcing)
    exam_table = extra.assign(minutes=minutes, benchmark_minutes=benchmark, tariff=tariff, outsourcing=outsourcing)

    # ---- harm: cohort, reporter-week panel, rate ratios, trends
    chosen = _participants(ex, log, is_extra & during, participants)
    keep = set(log.reporter_pseudonyms(comparison)) if comparison is not None else None
    week_lists = {"before": harm.whole_weeks((b0, b1)) if b1 > b0 else [], "during": harm.whole_weeks((p0, p1))}
    panel, cohort = harm.reporter_weeks(ex, benchmark_all, week_lists, chosen, keep)
    tests = harm.harm_tests(panel, margin)
    did = tests.set_index("test").loc["difference_in_differences"]
    displaced = harm.net_capacity(panel, did)
    pre_trend = harm.pre_trend_test(panel)
    weekly = harm.weekly_series(panel)
    cohort = _label(cohort, log)
    if (~cohort["in_model"]).any():
        n_out = int((~cohort["in_model"]).sum())
        notes.append(f"{n_out} reporter(s) of the cohort are not in the model (no working week in a period, or no "
                     "core output at all): see the cohort table")
    if np.isfinite(pre_trend["p_value"]) and pre_trend["p_value"] < 0.05:
        notes.append(f"participants' and comparison output trended differently before the pilot (p = "
                     f"{pre_trend['p_value']:.3f}): the difference-in-differences assumption of parallel trends is doubtful")

    # ---- headline figures
    extra_hours = np.nansum(minutes) / 60
    cost_tariff, cost_out = float(tariff[priced].sum()), float(outsourcing[priced].sum())
    n_extra, n_patients = len(extra), extra["patient_id"].nunique()
    rates_table = service.reporting_rates(ex, during, extra_routes, benchmark_all, max_gap_minutes)
    observed = rates_table[rates_table.modality == ALL].set_index("route")
    extra_rate = np.nan  # exams per hour in extra sessions; undefined without any observed hours
    if set(extra_routes) <= set(observed.index):
        hours_observed = observed.loc[list(extra_routes), "hours_observed"].sum()
        if hours_observed > 0:
            extra_rate = observed.loc[list(extra_routes), "exams"].sum() / hours_observed
    per_wte = hours_per_wte_week * weeks
    per_premium_wte = premium_pa_hours * 10 * weeks
    net = {k: extra_hours - displaced[f"displaced_core_hours{k}"] for k in ("", "_low", "_high")}
    net_hours_low, net_hours_high = net["_high"], net["_low"]  # more displaced -> less net
    rows = [
        ("rows_in_log", log.n_rows, "rows", f"source {Path(log.source).name}"),
        ("rows_rejected", log.n_rejected, "rows", "see rejected_reasons"),
        ("pilot_weeks", weeks, "weeks", "pilot_start to pilot_end inclusive"),
        ("exams_reported", int(during.sum()), "exams", "reports made during the pilot, all routes"),
        ("extra_exams", n_extra, "exams", f"route {'/'.join(extra_routes)}, reported during the pilot"),
        ("extra_patients", n_patients, "patients", "distinct pseudonymised patient ids among extra exams"),
        ("exams_per_patient", n_extra / n_patients if n_patients else np.nan, "ratio", ""),
        ("extra_hours", extra_hours, "hours", hours_method),
        ("wte_generated", extra_hours / per_wte, "WTE",
         f"gross: extra hours / ({hours_per_wte_week:g} h per WTE-week (10 PAs) x pilot weeks)"),
        ("wte_generated_premium_pa", extra_hours / per_premium_wte, "WTE",
         f"gross, in premium-time PAs: extra hours / ({premium_pa_hours:g} h x 10 PAs x pilot weeks)"),
        ("displaced_core_hours", displaced["displaced_core_hours"], "hours",
         "participants' core benchmark-hours during the pilot x (1 / DiD rate ratio - 1); > 0: core work lost"),
        ("net_extra_hours", net[""], "hours", "extra_hours - displaced_core_hours"),
        ("net_extra_hours_low", net_hours_low, "hours", "from the DiD rate ratio's 90% CI"),
        ("net_extra_hours_high", net_hours_high, "hours", "from the DiD rate ratio's 90% CI"),
        ("net_wte", net[""] / per_wte, "WTE", f"net_extra_hours / ({hours_per_wte_week:g} h x pilot weeks)"),
        ("net_wte_low", net_hours_low / per_wte, "WTE", "90% CI"),
        ("net_wte_high", net_hours_high / per_wte, "WTE", "90% CI"),
        ("net_extra_exams", n_extra - displaced["displaced_core_reports"], "exams",
         "extra exams - participants' core reports displaced (DiD rate ratio)"),
        ("cost_insourcing_tariff", cost_tariff, "GBP", f"insourcing tariff: {tables['sources']['insourcing']}"),
        ("cost_outsourcing", cost_out, "GBP", f"outsourcing prices: {tables['sources']['outsourcing']}"),
        ("saving_vs_outsourcing", cost_out - cost_tariff, "GBP",
         "gross: as if every extra exam would otherwise have been outsourced"),
        ("saving_low", shares[0] * cost_out - cost_tariff, "GBP",
         f"if {shares[0]:.0%} of the extra exams would otherwise have been outsourced (the rest: core time, no marginal cost)"),
        ("saving_high", shares[1] * cost_out - cost_tariff, "GBP",
         f"if {shares[1]:.0%} would otherwise have been outsourced"),
        ("tariff_to_outsourcing_ratio", cost_tariff / cost_out if cost_out > 0 else np.nan, "ratio", ""),
        ("commissioner_income", float(np.sum(income)) if tables.get("income") else np.nan, "GBP",
         f"income table: {tables['sources'].get('income', 'none')} (NaN: no table, or an exam without a price)"),
        ("income_per_exam", float(np.mean(income)) if n_extra and tables.get("income") else np.nan, "GBP/exam", ""),
        ("outsourcing_per_exam", cost_out / int(priced.sum()) if priced.any() else np.nan, "GBP/exam",
         "cost_outsourcing / priced extra exams"),
        ("income_to_outsourcing_ratio", float(np.sum(income)) / cost_out if cost_out > 0 and tables.get("income")
         else np.nan, "ratio", "commissioner_income / cost_outsourcing"),
        ("extra_exams_without_price", int((~priced).sum()), "exams", "not in either price table: left out of both costs"),
        ("extra_exams_without_benchmark", int(np.isnan(minutes).sum()), "exams",
         "no benchmark minutes (nor logged ones): left out of extra_hours"),
        ("extra_reports_per_hour_observed", extra_rate, "reports/hour",
         rates_table["hours_method"].iloc[0] if len(rates_table) else ""),
        ("extra_reports_per_hour_benchmark",
         (~np.isnan(benchmark)).sum() / (np.nansum(benchmark) / 60) if np.nansum(benchmark) > 0 else np.nan,
         "reports/hour", f"benchmark minutes: {tables['sources']['reading_minutes']}"),
    ]
    summary = pd.DataFrame(rows, columns=["metric", "value", "unit", "note"])
    summary["value"] = summary["value"].astype(float)

    settings = {
        "pilot_start": p0.date().isoformat(), "pilot_end": (p1 - pd.Timedelta(days=1)).date().isoformat(),
        "before_start": b0.date().isoformat(), "before_end": (b1 - pd.Timedelta(days=1)).date().isoformat() if b1 > b0 else None,
        "weeks_in_model": {k: [w.date().isoformat() for w in v] for k, v in week_lists.items()},
        "extra_routes": list(extra_routes), "hours_per_wte_week": hours_per_wte_week,
        "premium_pa_hours": premium_pa_hours, "margin": margin, "outsourced_share": list(shares),
        "suppress_below": int(suppress_below), "round_to": int(round_to), "max_gap_minutes": max_gap_minutes,
        "lead_in_days": lead_in_days, "log_days": [str(d) for d in log_days] if log_days else None, "within_days": within_days, "backlog_max_age_days": backlog_max_age_days,
        "participants": int((cohort["group"] == "participant").sum()),
        "participants_given": participants is not None, "comparison_given": comparison is not None,
        "reporters_pseudonymised": log.reporters_pseudonymised, "tables": tables["sources"], "warnings": period_notes + notes,
    }
    for note in notes:
        warnings.warn(note, EvaluationWarning, stacklevel=2)
    return Evaluation(
        log=log, periods=periods, summary=summary,
        reported_by_route=_reported_by_route(ex, periods),
        extra_activity=_extra_activity(exam_table),
        reporting_rates=rates_table,
        turnaround=service.turnaround(ex, periods.attrs, within_days),
        backlog=service.backlog(ex, backlog_max_age_days),
        productivity_by_reporter=cohort, productivity_tests=tests, weekly_trends=weekly,
        pre_trend=pre_trend, settings=settings,
    )


def _participants(ex: pd.DataFrame, log: ActivityLog, extra_during: pd.Series, participants) -> set:
    if participants is None:
        return set(ex.loc[extra_during, "reporter_id"].dropna())
    chosen = set(log.reporter_pseudonyms(participants))
    missing = len(chosen - set(ex["reporter_id"].dropna()))
    if missing:
        raise ValueError(f"{missing} of the {len(chosen)} participant id(s) do not appear as reporter_id in the log")
    return chosen


def _label(cohort: pd.DataFrame, log: ActivityLog) -> pd.DataFrame:
    """Labels participant-01.., comparison-01.. in the order of keyed pseudonyms of the reporter ids (the
    order reveals nothing about the ids; with a key-less log, the ids are pseudonyms or get a random order)."""
    ids = cohort["reporter_id"].astype(str).to_numpy(dtype=object)
    if log._key:
        order_key = pseudonymise(ids, log._key, prefix="", domain="reporter-label")
    elif log.reporters_pseudonymised:
        order_key = ids
    else:
        order_key = np.random.default_rng().permutation(len(ids)).astype(str)
    table = cohort.assign(_order=order_key).sort_values(["group", "_order"], ascending=[False, True]).drop(columns="_order")
    table.insert(0, "reporter", [f"{g}-{i:02d}" for g, i in zip(table["group"], table.groupby("group").cumcount() + 1)])
    return table.reset_index(drop=True)


def _reported_by_route(ex: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for name in ("before", "during"):
        rows = ex[service.in_span(ex["reported_at"], periods.attrs[name])]
        grouped = rows.groupby(["route", "modality", "band"], observed=True).agg(
            exams=("exam_id", "size"), patients=("patient_id", "nunique")).reset_index()
        totals = rows.groupby("route").agg(exams=("exam_id", "size"), patients=("patient_id", "nunique")).reset_index()
        totals["modality"], totals["band"] = ALL, ALL
        grouped["band"] = grouped["band"].astype(str)
        frame = pd.concat([grouped, totals], ignore_index=True).sort_values(["route"], kind="stable")
        frame.insert(0, "period", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[["period", "modality", "band", "route", "exams", "patients"]]


def _extra_activity(exams: pd.DataFrame) -> pd.DataFrame:
    columns = ["modality", "band", "exams", "patients", "benchmark_minutes", "hours", "cost_insourcing_tariff",
               "cost_outsourcing", "saving_vs_outsourcing"]
    if exams.empty:
        return pd.DataFrame(columns=columns)
    priced = exams["tariff"].notna() & exams["outsourcing"].notna()
    exams = exams.assign(tariff_priced=exams["tariff"].where(priced), out_priced=exams["outsourcing"].where(priced))

    def aggregate(frame) -> pd.DataFrame:
        return frame.agg(exams=("exam_id", "size"), patients=("patient_id", "nunique"),
                         benchmark_minutes=("benchmark_minutes", "mean"), hours=("minutes", lambda m: m.sum() / 60),
                         cost_insourcing_tariff=("tariff_priced", "sum"), cost_outsourcing=("out_priced", "sum"))

    table = aggregate(exams.groupby(["modality", "band"])).reset_index()
    table["band"] = table["band"].astype(str)
    total = aggregate(exams.groupby(lambda _: 0)).assign(modality=ALL, band=ALL)
    table = pd.concat([table, total], ignore_index=True)
    table["saving_vs_outsourcing"] = table["cost_outsourcing"] - table["cost_insourcing_tariff"]
    return table[columns]
