"""Pilot evaluation of an activity log: what extra reporting a pilot delivered, what it cost, and whether
core work suffered (the analyst's questions of DESIGN section 2, as in the first EMRAD pilot, facts §11).

``evaluate_activity(log)`` answers, for the pilot period:

* volume: exams reported by modality, band and route (before and during the pilot), distinct patients;
* capacity: extra reporting hours of the extra route ("home" by default) = exams x benchmark minutes
  per exam (params/reporting_rates.toml [reading_minutes]), or the log's ``reading_minutes`` where it
  has them; WTE generated = extra hours / (hours_per_wte_week x weeks of the pilot);
* money: the same volume at the insourcing tariff and at the outsourcing price list, and the saving;
* pace: reports per hour against the benchmark. Observed hours come from ``reading_minutes`` when
  present, otherwise from the gaps between a reporter's successive report times (a gap of at most
  ``max_gap_minutes`` is time spent on the later report; the first report of a session is timed at
  the benchmark). Batch sign-off (several reports with one timestamp) makes gaps 0 and inflates it;
* service: turnaround (acquisition to report) before vs during, median and p90 by modality, over
  reported exams only (unreported ones are counted beside it, not imputed), and the backlog: each
  day, exams acquired by the end of the day and not reported by then;
* harm check: core-route reports per reporter per week before vs during for participants, with
  a paired t-test, and a difference-in-differences against non-participants (see below).

Periods. The pilot runs from ``pilot_start`` to ``pilot_end``, both calendar days and inclusive
(default: the first and last day with an extra-route report; with none, the whole log). The
"before" period is as long as the pilot and ends the day before it starts (clipped to the first
day of the log), unless ``before_start`` is given.

Productivity method. A reporter's weekly rate in a period = core-route reports in the period /
weeks in the period (leave weeks count as zero: both periods are treated alike). Only reporters with at
least one core report in each period are compared (others were not working in one of them).
Paired test: the participants' changes d_i = during_i - before_i; mean, sd, t = mean/(sd/sqrt(n)),
n-1 df, two-sided p and 95% CI. Difference-in-differences: mean change of participants minus
mean change of comparison reporters (everyone else, or ``comparison``), with a Welch
(unequal-variance) standard error and Welch-Satterthwaite df. With one rate per reporter and
period this is the same point estimate as an OLS on reporter-period data with reporter and period
fixed effects and a participant x pilot term; comparing per-reporter changes keeps each reporter
one independent unit (reporter-week OLS with iid errors would ignore the correlation of a
reporter's weeks and overstate precision) and lets the two groups' spreads differ.

Privacy. Only aggregates and pseudonyms are published: :meth:`Evaluation.tables` applies small-number
suppression (:func:`sim.privacy.suppress_small`: counts 1..suppress_below-1 become missing with a
``<col>_suppressed`` flag, and statistics of those cells are hidden too) to every count of exams or
patients, plus the obvious secondary suppression within a row (a turnaround row's total when
reported or unreported is hidden; exams per patient when patients are; costs and hours when the
extra exams are). Differencing across rows (an "ALL" row minus the other rows) is not prevented:
review tables with few cells before publishing. Reporters appear as labels ("participant-01"),
never by their id. Per-reporter report counts are staff workload, not patient data, and are not
suppressed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from sim.activity import IN_HOUSE_ROUTES, ROUTES, ActivityLog, read_activity_log
from sim.atomic import atomic_write
from sim.privacy import SUPPRESSED_SUFFIX, suppress_small

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TABLES = PROJECT_ROOT / "params" / "reporting_rates.toml"
ALL = "ALL"
DAY = pd.Timedelta(days=1)


# ------------------------------------------------------------------------------------------ price tables
def load_reporting_tables(path: str | Path | None = None) -> dict[str, Any]:
    """Tariff, outsourcing prices and benchmark minutes from a TOML file (default params/reporting_rates.toml).

    Returns {"insourcing": {modality: [£ by band]}, "outsourcing": {...}, "urgency_factor": {urgency: x},
    "reading_minutes": {modality: [min by band]}, "source": path}.
    """
    path = Path(path) if path is not None else DEFAULT_TABLES
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the reporting tables ({exc})") from None
    outsourcing = dict(data.get("outsourcing", {}))
    factor = outsourcing.pop("urgency_factor", {})
    return {"insourcing": _bands(data.get("insourcing", {}), path, "insourcing"),
            "outsourcing": _bands(outsourcing, path, "outsourcing"),
            "urgency_factor": {str(k): float(v) for k, v in factor.items()},
            "reading_minutes": _bands(data.get("reading_minutes", {}), path, "reading_minutes"),
            "source": _shown(path)}


def tables_from_scenario(scn) -> dict[str, Any]:
    """A scenario's own price and reading-time tables, to evaluate its simulated activity log consistently.

    insourcing = finance.insourcing_tariff x home_reporting.tariff_multiplier; outsourcing = the
    outsourcing price list and urgency factors; reading_minutes = the mean of each modality x band
    reading-time distribution. Parts the scenario lacks are left out (the defaults then apply).
    Pass the result as both ``tariffs`` and ``rates`` of :func:`evaluate_activity`.
    """
    multiplier = scn.home_reporting.tariff_multiplier if scn.home_reporting is not None else 1.0
    tables: dict[str, Any] = {
        "insourcing": {code: [p * multiplier for p in prices] for code, prices in scn.finance.insourcing_tariff.items()},
        "reading_minutes": {},
    }
    if scn.outsourcing is not None:
        tables["outsourcing"] = {code: list(prices) for code, prices in scn.outsourcing.price.items()}
        tables["urgency_factor"] = dict(scn.outsourcing.urgency_price_factor)
    for modality in scn.modalities:
        minutes = []
        for band in range(1, len(modality.band_mix) + 1):  # bands 1..n while each has a distribution
            if str(band) not in modality.reading_minutes:
                break
            minutes.append(modality.reading_minutes[str(band)].mean_value)
        if minutes:
            tables["reading_minutes"][modality.code] = minutes
    return tables


def _bands(table: Mapping, source, section: str) -> dict[str, tuple[float, ...]]:
    out = {}
    for code, values in table.items():
        values = [values] if isinstance(values, (int, float)) else values
        if not values or any(not isinstance(v, (int, float)) or v < 0 for v in values):
            raise ValueError(f"{source}: {section}.{code} must be a list of non-negative numbers, one per band")
        out[str(code)] = tuple(float(v) for v in values)
    return out


def _shown(path: str | Path) -> str:
    """A path as outputs show it: relative to the project when inside it (no user's home directory)."""
    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else path.name


def _resolve_tables(tariffs, rates) -> dict[str, Any]:
    """Defaults from params, overridden by what the caller passed (a path or a mapping)."""
    tables = load_reporting_tables()
    sources = {part: tables["source"] for part in ("insourcing", "outsourcing", "urgency_factor", "reading_minutes")}
    if tariffs is not None:
        given = load_reporting_tables(tariffs) if isinstance(tariffs, (str, Path)) else dict(tariffs)
        label = _shown(tariffs) if isinstance(tariffs, (str, Path)) else "passed in"
        for part in ("insourcing", "outsourcing"):
            if given.get(part):
                tables[part] = _bands(given[part], label, part)
                sources[part] = label
        if given.get("outsourcing") or given.get("urgency_factor"):  # a price list comes with its own factors
            tables["urgency_factor"] = {str(k): float(v) for k, v in given.get("urgency_factor", {}).items()}
            sources["urgency_factor"] = label
    if rates is not None:
        if isinstance(rates, (str, Path)):
            minutes, label = load_reporting_tables(rates)["reading_minutes"], _shown(rates)
        else:
            minutes, label = _bands(rates.get("reading_minutes", rates), "passed in", "reading_minutes"), "passed in"
        if minutes:  # a file without [reading_minutes] keeps the default benchmark
            tables["reading_minutes"], sources["reading_minutes"] = minutes, label
    tables["sources"] = sources
    return tables


def _per_exam(table: Mapping[str, Sequence[float]], modality: np.ndarray, band: np.ndarray) -> np.ndarray:
    """table[modality][band - 1] per exam; NaN where the table has no entry."""
    out = np.full(len(modality), np.nan)
    for code, values in table.items():
        rows = np.flatnonzero(modality == code)
        if rows.size:
            values = np.asarray(values, dtype=float)
            index = band[rows] - 1
            ok = (index >= 0) & (index < len(values))
            out[rows[ok]] = values[index[ok]]
    return out


# -------------------------------------------------------------------------------------------- statistics
def paired_difference(differences: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """One-sample t on paired differences: n, estimate (mean), sd, se, df, t, p (two-sided), ci_low, ci_high."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    out = {"n": n, "estimate": d.mean() if n else np.nan, "sd": np.nan, "se": np.nan, "df": np.nan,
           "t": np.nan, "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if n >= 2:
        sd = d.std(ddof=1)
        out.update(sd=sd, se=sd / np.sqrt(n), df=n - 1)
        out.update(_t_inference(out["estimate"], out["se"], n - 1, confidence))
    return out


def welch_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """mean(a) - mean(b) with a Welch standard error and Welch-Satterthwaite df (two-sided p, CI)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = {"n": len(a), "n_comparison": len(b), "estimate": np.nan, "se": np.nan, "df": np.nan, "t": np.nan,
           "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if len(a) and len(b):
        out["estimate"] = a.mean() - b.mean()
    if len(a) >= 2 and len(b) >= 2:
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = np.sqrt(va + vb)
        denominator = va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)
        df = (va + vb) ** 2 / denominator if denominator > 0 else np.nan
        out.update(se=se, df=df)
        out.update(_t_inference(out["estimate"], se, df, confidence))
    return out


def _t_inference(estimate: float, se: float, df: float, confidence: float) -> dict[str, float]:
    if not se > 0 or not df > 0:  # no spread: a t statistic is undefined
        return {"t": np.nan, "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    t = estimate / se
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    return {"t": t, "p_value": 2 * stats.t.sf(abs(t), df), "ci_low": estimate - half, "ci_high": estimate + half}


# ------------------------------------------------------------------------------------------- evaluation
SUMMARY_COUNTS = ("exams_reported", "extra_exams", "extra_patients", "extra_exams_without_price",
                  "extra_exams_without_benchmark")
SUMMARY_FROM_EXTRA = ("exams_per_patient", "extra_hours", "wte_generated", "cost_insourcing_tariff",
                      "cost_outsourcing", "saving_vs_outsourcing", "extra_reports_per_hour_observed")


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
    productivity_by_reporter: pd.DataFrame
    productivity_tests: pd.DataFrame
    settings: dict = field(default_factory=dict)

    def value(self, metric: str) -> float:
        """A summary metric (unsuppressed)."""
        return float(self.summary.set_index("metric").at[metric, "value"])

    def test(self, name: str) -> pd.Series:
        """A row of productivity_tests: "paired" or "difference_in_differences"."""
        return self.productivity_tests.set_index("test").loc[name]

    def summary_text(self) -> str:
        """A terminal summary of the published (suppressed) headline figures and the productivity tests."""
        k = self.settings.get("suppress_below", 5)
        tables = self.tables()
        periods = self.periods.set_index("period")
        lines = [f"{Path(self.log.source).name}: {self.log.n_rows:,} rows, {self.log.n_rejected:,} rejected",
                 *(f"  {reason}: {n:,}" for reason, n in self.log.reason_counts.items()),
                 f"pilot  {periods.at['during', 'first_day']} to {periods.at['during', 'last_day']} "
                 f"({periods.at['during', 'days']} days; {periods.at['during', 'how']})",
                 (f"before {periods.at['before', 'first_day']} to {periods.at['before', 'last_day']} "
                  f"({periods.at['before', 'days']} days)" if periods.at["before", "days"] > 0 else
                  "before (none: the log starts with the pilot)"), ""]
        summary = tables["summary"]
        width = max(len(m) for m in summary["metric"])
        for row in summary.itertuples(index=False):
            value = (f"suppressed (<{k})" if getattr(row, f"value{SUPPRESSED_SUFFIX}") else
                     "" if pd.isna(row.value) else f"{row.value:,.0f}" if row.unit in ("rows", "exams", "patients")
                     else f"{row.value:,.2f}")
            lines.append(f"{row.metric:<{width}}  {value:>18}  {row.unit}")
        lines.append("")
        for row in self.productivity_tests.itertuples(index=False):
            lines.append(f"core reports/week, {row.test.replace('_', ' ')}: n={row.n}"
                         + (f" vs {row.n_comparison}" if row.test != "paired" else "")
                         + ("" if pd.isna(row.estimate) else f", estimate {row.estimate:+.2f}")
                         + ("" if pd.isna(row.ci_low) else f" [95% CI {row.ci_low:+.2f}, {row.ci_high:+.2f}], p={row.p_value:.3f}"))
        return "\n".join(lines)

    def tables(self, suppress: bool = True) -> dict[str, pd.DataFrame]:
        """Named publishable tables: aggregates and pseudonymous labels only, small counts suppressed."""
        k = self.settings.get("suppress_below", 5) if suppress else 0
        extra_stats = ["benchmark_minutes", "hours", "cost_insourcing_tariff", "cost_outsourcing", "saving_vs_outsourcing"]
        rejected = self.log.rejected
        first_row: dict[str, int] = {}
        for row, reasons in zip(rejected["row"], rejected["reason"]):
            for reason in reasons.split("; "):
                first_row.setdefault(reason, int(row))
        return {
            "summary": _suppress_summary(self.summary, k),
            "periods": self.periods,
            "reported_by_route": suppress_small(self.reported_by_route, ["exams", "patients"], k),
            "extra_activity": suppress_small(self.extra_activity, ["exams", "patients"], k, {"exams": extra_stats}),
            "reporting_rates": suppress_small(self.reporting_rates, ["exams", "exams_timed_by_benchmark"], k, {
                "exams": ["hours_observed", "reports_per_hour", "benchmark_hours", "benchmark_reports_per_hour",
                          "ratio_to_benchmark"]}),
            "turnaround": _hide_total(suppress_small(self.turnaround, ["acquired", "reported", "unreported"], k,
                                                     {"reported": ["median_h", "p90_h"]}),
                                      "acquired", ["reported", "unreported"]),
            "backlog": suppress_small(self.backlog, ["unreported"], k),
            "productivity_by_reporter": self.productivity_by_reporter.drop(columns="reporter_id"),
            "productivity_tests": self.productivity_tests,
            "rejected_reasons": pd.DataFrame({
                "reason": list(self.log.reason_counts.index),
                "rows": self.log.reason_counts.to_numpy(dtype=np.int64),
                "example_row": [first_row[reason] for reason in self.log.reason_counts.index]}),
            "rejected_rows": rejected[["row", "reason"]],
        }

    def write(self, out_dir: str | Path) -> Path:
        """Write every table as CSV (atomically), then evaluation.json with the settings; returns out_dir.

        Nothing written holds a raw identifier: tables are aggregates (suppressed), reporters are labels,
        rejected rows are given by row number and reason only. The pseudonymisation key is never written.
        """
        out = Path(out_dir)
        for name, table in self.tables().items():
            atomic_write(out / f"{name}.csv", lambda tmp, t=table: t.to_csv(tmp, index=False))
        manifest = {
            "what": "emrad-sim pilot evaluation of an activity log",
            "activity_log": Path(self.log.source).name,
            "rows": self.log.n_rows, "rows_rejected": self.log.n_rejected,
            "dropped_columns": list(self.log.dropped_columns),
            "settings": self.settings,
            "emrad_sim_version": _version(),
            "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write(out / "evaluation.json",
                     lambda tmp: tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8"))
        return out


def evaluate_activity(log_or_path: ActivityLog | pd.DataFrame | str | Path, tariffs=None, rates=None,
                      pilot_start=None, pilot_end=None, participants: Sequence[str] | None = None,
                      hours_per_wte_week: float = 40.0, suppress_below: int = 5, *,
                      before_start=None, comparison: Sequence[str] | None = None,
                      extra_routes: Sequence[str] = ("home",), max_gap_minutes: float = 60.0,
                      key: bytes | None = None, read_options: Mapping[str, Any] | None = None) -> Evaluation:
    """Evaluate a pilot from its activity log (see the module docstring for every definition).

    log_or_path: an ActivityLog, or a CSV / Parquet path or raw DataFrame, read with
        :func:`sim.activity.read_activity_log` (``key`` and ``read_options`` are passed on).
    tariffs: a TOML path or a mapping with "insourcing" / "outsourcing" ({modality: [£ by band]}) and
        optionally "urgency_factor" ({urgency: multiplier of the outsourcing price}); parts not given
        come from params/reporting_rates.toml. rates: benchmark minutes ({modality: [min by band]}) or a path.
    pilot_start, pilot_end: first and last day of the pilot (inclusive); default from extra-route reports.
    participants: reporter ids in the pilot (default: everyone with an extra-route report during it).
    comparison: reporter ids to compare against (default: all other reporters).
    hours_per_wte_week: reporting hours in one WTE-week (facts §6: 10 PAs x 4 h = 40).
    suppress_below: counts 1..suppress_below-1 are hidden in published tables (<= 1: no suppression).
    """
    if hours_per_wte_week <= 0:
        raise ValueError(f"hours_per_wte_week must be positive, not {hours_per_wte_week}")
    unknown = sorted(set(extra_routes) - set(ROUTES))
    if unknown:
        raise ValueError(f"extra_routes {unknown} are not routes ({', '.join(ROUTES)})")
    log = log_or_path if isinstance(log_or_path, ActivityLog) else read_activity_log(
        log_or_path, key=key, **dict(read_options or {}))
    tables = _resolve_tables(tariffs, rates)
    ex = log.exams
    reported = ex["reported_at"]
    is_extra = ex["route"].isin(list(extra_routes)) & reported.notna()

    periods = _periods(ex, is_extra, pilot_start, pilot_end, before_start)
    (b0, b1), (p0, p1) = periods.attrs["before"], periods.attrs["during"]
    weeks = (p1 - p0) / pd.Timedelta(weeks=1)
    during = (reported >= p0) & (reported < p1)
    extra = ex[is_extra & during]

    modality, band = extra["modality"].to_numpy(dtype=object), extra["band"].to_numpy()
    benchmark = _per_exam(tables["reading_minutes"], modality, band)
    minutes = benchmark.copy()
    hours_method = "benchmark minutes per exam"
    if "reading_minutes" in extra.columns:
        logged = extra["reading_minutes"].to_numpy(dtype=float)
        minutes = np.where(np.isnan(logged), benchmark, logged)
        hours_method = (f"log reading_minutes ({int((~np.isnan(logged)).sum())} exams), benchmark for "
                        f"{int(np.isnan(logged).sum())}")
    tariff = _per_exam(tables["insourcing"], modality, band)
    factor = extra["urgency"].map(tables["urgency_factor"]).astype(float).fillna(1.0).to_numpy()
    outsourcing = _per_exam(tables["outsourcing"], modality, band) * factor
    priced = ~np.isnan(tariff) & ~np.isnan(outsourcing)
    per_exam = extra.assign(minutes=minutes, benchmark_minutes=benchmark, tariff=tariff, outsourcing=outsourcing)

    extra_hours = np.nansum(minutes) / 60
    cost_tariff, cost_out = float(tariff[priced].sum()), float(outsourcing[priced].sum())
    n_extra, n_patients = len(extra), extra["patient_id"].nunique()
    rates_table = _reporting_rates(ex, during, extra_routes, tables["reading_minutes"], max_gap_minutes)
    observed = rates_table[rates_table.modality == ALL].set_index("route")
    extra_rate = (observed.loc[list(extra_routes), "exams"].sum() / observed.loc[list(extra_routes), "hours_observed"].sum()
                  if set(extra_routes) <= set(observed.index) else np.nan)
    summary = pd.DataFrame([
        ("rows_in_log", log.n_rows, "rows", f"source {Path(log.source).name}"),
        ("rows_rejected", log.n_rejected, "rows", "see rejected_reasons"),
        ("pilot_weeks", weeks, "weeks", "pilot_start to pilot_end inclusive"),
        ("exams_reported", int(during.sum()), "exams", "reports made during the pilot, all routes"),
        ("extra_exams", n_extra, "exams", f"route {'/'.join(extra_routes)}, reported during the pilot"),
        ("extra_patients", n_patients, "patients", "distinct pseudonymised patient ids among extra exams"),
        ("exams_per_patient", n_extra / n_patients if n_patients else np.nan, "ratio", ""),
        ("extra_hours", extra_hours, "hours", hours_method),
        ("wte_generated", extra_hours / (hours_per_wte_week * weeks), "WTE",
         f"extra hours / ({hours_per_wte_week:g} h per WTE-week x pilot weeks)"),
        ("cost_insourcing_tariff", cost_tariff, "GBP", f"insourcing tariff: {tables['sources']['insourcing']}"),
        ("cost_outsourcing", cost_out, "GBP", f"outsourcing prices: {tables['sources']['outsourcing']}"),
        ("saving_vs_outsourcing", cost_out - cost_tariff, "GBP", "cost_outsourcing - cost_insourcing_tariff"),
        ("tariff_to_outsourcing_ratio", cost_tariff / cost_out if cost_out > 0 else np.nan, "ratio", ""),
        ("extra_exams_without_price", int((~priced).sum()), "exams", "not in either price table: left out of both costs"),
        ("extra_exams_without_benchmark", int(np.isnan(minutes).sum()), "exams",
         "no benchmark minutes (nor logged ones): left out of extra_hours"),
        ("extra_reports_per_hour_observed", extra_rate, "reports/hour", rates_table["hours_method"].iloc[0]
         if len(rates_table) else ""),
        ("extra_reports_per_hour_benchmark",
         (~np.isnan(benchmark)).sum() / (np.nansum(benchmark) / 60) if np.nansum(benchmark) > 0 else np.nan,
         "reports/hour", f"benchmark minutes: {tables['sources']['reading_minutes']}"),
    ], columns=["metric", "value", "unit", "note"])
    summary["value"] = summary["value"].astype(float)

    by_reporter, tests = _productivity(ex, log, periods, is_extra & during, participants, comparison)
    settings = {
        "pilot_start": p0.date().isoformat(), "pilot_end": (p1 - DAY).date().isoformat(),
        "before_start": b0.date().isoformat(), "before_end": (b1 - DAY).date().isoformat() if b1 > b0 else None,
        "extra_routes": list(extra_routes), "hours_per_wte_week": hours_per_wte_week,
        "suppress_below": int(suppress_below), "max_gap_minutes": max_gap_minutes,
        "participants": int((by_reporter["group"] == "participant").sum()) if len(by_reporter) else 0,
        "participants_given": participants is not None, "comparison_given": comparison is not None,
        "tables": tables["sources"],
    }
    return Evaluation(
        log=log, periods=periods, summary=summary,
        reported_by_route=_reported_by_route(ex, periods),
        extra_activity=_extra_activity(per_exam),
        reporting_rates=rates_table,
        turnaround=_turnaround(ex, periods),
        backlog=_backlog(ex),
        productivity_by_reporter=by_reporter, productivity_tests=tests, settings=settings,
    )


def _day(value) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()


def _periods(ex: pd.DataFrame, is_extra: pd.Series, pilot_start, pilot_end, before_start) -> pd.DataFrame:
    """Half-open [start, end) day ranges for "before" and "during" (the table shows inclusive last days)."""
    acquired, reported = ex["acquired_at"], ex["reported_at"]
    first_day = _day(acquired.min())
    last_day = _day(max(acquired.max(), reported.max() if reported.notna().any() else acquired.max()))
    if pilot_start is not None:
        start, start_how = _day(pilot_start), "given"
    elif is_extra.any():
        start, start_how = _day(reported[is_extra].min()), "first extra-route report"
    else:
        start, start_how = first_day, "first day of the log (no extra-route reports)"
    if pilot_end is not None:
        end, end_how = _day(pilot_end) + DAY, "given"
    elif (is_extra & (reported >= start)).any():
        end, end_how = _day(reported[is_extra & (reported >= start)].max()) + DAY, "last extra-route report"
    else:
        end, end_how = last_day + DAY, "last day of the log"
    if end <= start:
        raise ValueError(f"the pilot ends ({(end - DAY).date()}, {end_how}) before it starts ({start.date()}, "
                         f"{start_how}): give pilot_start and pilot_end (--pilot-start, --pilot-end) within the log")
    if before_start is not None:
        b0, b_how = min(_day(before_start), start), "given"
    else:
        b0, b_how = max(start - (end - start), min(first_day, start)), "as long as the pilot, before it (clipped to the log)"
    rows = [("before", b0, start, b_how), ("during", start, end, f"{start_how} to {end_how}")]
    table = pd.DataFrame([{
        "period": name, "first_day": a.date().isoformat(), "last_day": (b - DAY).date().isoformat() if b > a else None,
        "days": (b - a).days, "weeks": (b - a).days / 7, "how": how} for name, a, b, how in rows])
    table.attrs["before"], table.attrs["during"] = (b0, start), (start, end)
    return table


def _in(times: pd.Series, span: tuple[pd.Timestamp, pd.Timestamp]) -> pd.Series:
    return (times >= span[0]) & (times < span[1])


def _reported_by_route(ex: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for name in ("before", "during"):
        rows = ex[_in(ex["reported_at"], periods.attrs[name])]
        grouped = rows.groupby(["modality", "band", "route"], observed=True).agg(
            exams=("exam_id", "size"), patients=("patient_id", "nunique")).reset_index()
        totals = rows.groupby("route").agg(exams=("exam_id", "size"), patients=("patient_id", "nunique")).reset_index()
        totals.insert(0, "band", ALL)
        totals.insert(0, "modality", ALL)
        grouped["band"] = grouped["band"].astype(str)
        frame = pd.concat([grouped, totals], ignore_index=True)
        frame.insert(0, "period", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[["period", "modality", "band", "route", "exams", "patients"]]


def _extra_activity(per_exam: pd.DataFrame) -> pd.DataFrame:
    columns = ["modality", "band", "exams", "patients", "benchmark_minutes", "hours", "cost_insourcing_tariff",
               "cost_outsourcing", "saving_vs_outsourcing"]
    if per_exam.empty:
        return pd.DataFrame(columns=columns)
    priced = per_exam["tariff"].notna() & per_exam["outsourcing"].notna()
    per_exam = per_exam.assign(tariff_priced=per_exam["tariff"].where(priced), out_priced=per_exam["outsourcing"].where(priced))

    def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.agg(exams=("exam_id", "size"), patients=("patient_id", "nunique"),
                         benchmark_minutes=("benchmark_minutes", "mean"), hours=("minutes", lambda m: m.sum() / 60),
                         cost_insourcing_tariff=("tariff_priced", "sum"), cost_outsourcing=("out_priced", "sum"))

    table = aggregate(per_exam.groupby(["modality", "band"])).reset_index()
    table["band"] = table["band"].astype(str)
    total = aggregate(per_exam.groupby(lambda _: 0)).assign(modality=ALL, band=ALL)
    table = pd.concat([table, total], ignore_index=True)
    table["saving_vs_outsourcing"] = table["cost_outsourcing"] - table["cost_insourcing_tariff"]
    return table[columns]


def _reporting_rates(ex: pd.DataFrame, during: pd.Series, extra_routes, reading_minutes, max_gap: float) -> pd.DataFrame:
    """Reports per hour by route and modality during the pilot, observed vs benchmark (module docstring)."""
    done = ex[ex["route"].isin(IN_HOUSE_ROUTES) & ex["reported_at"].notna() & ex["reporter_id"].notna()]
    done = done.sort_values(["reporter_id", "reported_at"], kind="stable")
    benchmark = _per_exam(reading_minutes, done["modality"].to_numpy(dtype=object), done["band"].to_numpy())
    gap = done.groupby("reporter_id", sort=False)["reported_at"].diff() / pd.Timedelta(minutes=1)
    in_session = (gap >= 0) & (gap <= max_gap)
    observed = np.where(in_session, gap, benchmark)
    by_benchmark = ~in_session.to_numpy()
    method = f"gaps between a reporter's successive reports (<= {max_gap:g} min), benchmark for the first of a session"
    if "reading_minutes" in done.columns:
        logged = done["reading_minutes"].to_numpy(dtype=float)
        observed = np.where(np.isnan(logged), observed, logged)
        by_benchmark &= np.isnan(logged)
        method = "log reading_minutes; " + method + " where missing"
    done = done.assign(observed=observed, benchmark=benchmark, by_benchmark=by_benchmark)
    done = done[during.loc[done.index]]
    routes = [r for r in (*extra_routes, *[r for r in IN_HOUSE_ROUTES if r not in extra_routes]) if (done.route == r).any()]
    rows = []
    for route in routes:
        mine = done[done.route == route]
        for modality, group in [(ALL, mine), *mine.groupby("modality", sort=True)]:
            hours, bench = group["observed"].sum() / 60, group["benchmark"].sum() / 60
            rows.append({"route": route, "modality": modality, "exams": len(group), "hours_observed": hours,
                         "reports_per_hour": len(group) / hours if hours > 0 else np.nan,
                         "benchmark_hours": bench,
                         "benchmark_reports_per_hour": len(group) / bench if bench > 0 else np.nan,
                         "exams_timed_by_benchmark": int(group["by_benchmark"].sum()), "hours_method": method})
    table = pd.DataFrame(rows, columns=["route", "modality", "exams", "hours_observed", "reports_per_hour",
                                        "benchmark_hours", "benchmark_reports_per_hour", "exams_timed_by_benchmark",
                                        "hours_method"])
    table.insert(table.columns.get_loc("exams_timed_by_benchmark"), "ratio_to_benchmark",
                 table["reports_per_hour"] / table["benchmark_reports_per_hour"])
    return table


def _turnaround(ex: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """By period of acquisition and modality: acquired, reported, unreported, median and p90 hours (reported only)."""
    hours = (ex["reported_at"] - ex["acquired_at"]) / pd.Timedelta(hours=1)
    rows = []
    for name in ("before", "during"):
        mine = _in(ex["acquired_at"], periods.attrs[name])
        for modality in [ALL, *sorted(ex["modality"].unique())]:
            cell = mine & ((ex["modality"] == modality) if modality != ALL else True)
            tat = hours[cell].dropna().to_numpy()
            rows.append({"period": name, "modality": modality, "acquired": int(cell.sum()), "reported": len(tat),
                         "unreported": int(cell.sum()) - len(tat),
                         "median_h": np.quantile(tat, 0.5) if len(tat) else np.nan,
                         "p90_h": np.quantile(tat, 0.9) if len(tat) else np.nan})
    return pd.DataFrame(rows)


def _backlog(ex: pd.DataFrame) -> pd.DataFrame:
    """Daily backlog: exams acquired before the end of each day and not reported by then, by modality and ALL.

    Exams acquired before the log's first exam are not in the log, so early days may understate it.
    """
    first = _day(ex["acquired_at"].min())
    last = _day(max(ex["acquired_at"].max(), ex["reported_at"].max() if ex["reported_at"].notna().any() else first))
    days = pd.date_range(first, last, freq="D")
    ends = (days + DAY).to_numpy()
    frames = []
    for modality, group in [(ALL, ex), *ex.groupby("modality", sort=True)]:
        acquired = np.sort(group["acquired_at"].to_numpy())
        reported = np.sort(group["reported_at"].dropna().to_numpy())
        waiting = np.searchsorted(acquired, ends, side="left") - np.searchsorted(reported, ends, side="left")
        frames.append(pd.DataFrame({"date": days.date.astype(str), "modality": modality, "unreported": waiting}))
    return pd.concat(frames, ignore_index=True)


def _productivity(ex: pd.DataFrame, log: ActivityLog, periods: pd.DataFrame, extra_during: pd.Series,
                  participants, comparison) -> tuple[pd.DataFrame, pd.DataFrame]:
    before, during = periods.attrs["before"], periods.attrs["during"]
    weeks = {name: (span[1] - span[0]) / pd.Timedelta(weeks=1) for name, span in (("before", before), ("during", during))}
    core = ex[(ex["route"] == "core") & ex["reported_at"].notna() & ex["reporter_id"].notna()]
    counts = pd.DataFrame({
        "before_reports": core[_in(core["reported_at"], before)].groupby("reporter_id").size(),
        "during_reports": core[_in(core["reported_at"], during)].groupby("reporter_id").size(),
    }).fillna(0).astype(np.int64)
    if participants is None:
        chosen = set(ex.loc[extra_during, "reporter_id"].dropna())
    else:
        chosen = set(log.reporter_pseudonyms(participants))
        missing = len(chosen - set(ex["reporter_id"].dropna()))
        if missing:
            raise ValueError(f"{missing} of the {len(chosen)} participant id(s) do not appear as reporter_id in the log")
    group = np.where(counts.index.isin(list(chosen)), "participant", "comparison")
    if comparison is not None:
        keep = set(log.reporter_pseudonyms(comparison))
        group = np.where((group == "comparison") & ~counts.index.isin(list(keep)), "", group)
    counts["group"] = group
    counts = counts[(counts["group"] != "") & (counts["before_reports"] > 0) & (counts["during_reports"] > 0)]
    table = counts.reset_index(names="reporter_id")
    table["before_weeks"], table["during_weeks"] = weeks["before"], weeks["during"]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["before_per_week"] = table["before_reports"] / weeks["before"]
        table["during_per_week"] = table["during_reports"] / weeks["during"]
    table["change_per_week"] = table["during_per_week"] - table["before_per_week"]
    order = table["reporter_id"].map(lambda r: hashlib.sha256(str(r).encode()).hexdigest())
    table = table.assign(_order=order).sort_values(["group", "_order"], ascending=[False, True]).drop(columns="_order")
    table.insert(0, "reporter", [f"{g}-{i:02d}" for g, i in zip(table["group"], table.groupby("group").cumcount() + 1)])
    table = table[["reporter", "group", "before_reports", "before_weeks", "before_per_week", "during_reports",
                   "during_weeks", "during_per_week", "change_per_week", "reporter_id"]].reset_index(drop=True)
    p = table.loc[table.group == "participant", "change_per_week"].to_numpy()
    c = table.loc[table.group == "comparison", "change_per_week"].to_numpy()
    paired = paired_difference(p)
    did = welch_difference(p, c)
    tests = pd.DataFrame([
        {"test": "paired", "n": paired["n"], "n_comparison": 0, **{k: paired[k] for k in
         ("estimate", "sd", "se", "df", "t", "p_value", "ci_low", "ci_high")},
         "method": "participants' change in core reports/week (during - before): mean, paired t-test, 95% CI"},
        {"test": "difference_in_differences", "n": did["n"], "n_comparison": did["n_comparison"], "sd": np.nan,
         **{k: did[k] for k in ("estimate", "se", "df", "t", "p_value", "ci_low", "ci_high")},
         "method": "mean change of participants - mean change of comparison reporters; Welch SE and df, 95% CI"},
    ])
    return table, tests


def _hide_total(table: pd.DataFrame, total: str, parts: Sequence[str]) -> pd.DataFrame:
    """Hide a row's total where one of its parts is hidden, so the part cannot be recovered by subtraction."""
    hidden = np.zeros(len(table), dtype=bool)
    for part in parts:
        hidden |= table[f"{part}{SUPPRESSED_SUFFIX}"].to_numpy(dtype=bool)
    table[total] = table[total].mask(hidden)
    table[f"{total}{SUPPRESSED_SUFFIX}"] = table[f"{total}{SUPPRESSED_SUFFIX}"].to_numpy(dtype=bool) | hidden
    return table


def _suppress_summary(summary: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Hide small counts in the summary and whatever would reveal them: when extra_exams is hidden,
    everything computed from the extra exams; when extra_patients is, exams per patient."""
    out = summary.copy()
    small = out["metric"].isin(SUMMARY_COUNTS) & (out["value"] >= 1) & (out["value"] < threshold)
    extra_small = bool(small[out["metric"] == "extra_exams"].any())
    patients_small = bool(small[out["metric"] == "extra_patients"].any())
    hide = (small | (out["metric"].isin(SUMMARY_FROM_EXTRA + ("extra_reports_per_hour_benchmark",)) & extra_small)
            | ((out["metric"] == "exams_per_patient") & patients_small))
    out["value"] = out["value"].mask(hide)
    out.insert(out.columns.get_loc("value") + 1, f"value{SUPPRESSED_SUFFIX}", hide.to_numpy())
    return out


def _version() -> str:
    try:
        return metadata.version("emrad-sim")
    except metadata.PackageNotFoundError:
        return "unknown"
