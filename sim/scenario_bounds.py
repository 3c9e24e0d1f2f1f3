"""Plausible ranges for the scenario's numbers, checked before anything runs (issue 12).

The schema (sim.scenario) already refuses inf and nan in every float and negative values where
they make no sense. The bounds here catch values that are finite and of the right sign but would
crash or mislead a run: a reading speed of 1e-300, a backlog sampled every microsecond, a 1e12
annual volume, outages every second. They are deliberately generous (an order of magnitude or
more beyond any English trust or consortium) and kept in one table, apart from the schema, so
that fields can be added to the schema without touching this file. Sizes that are plausible but
too big for this machine are the job of sim.estimate and `--max-memory`.

Paths are dotted as in error messages; `*` matches any list index or table key.
"""

from __future__ import annotations

from typing import Any, Iterator

from sim.scenario import Scenario

WEEK_MINUTES = 7 * 24 * 60
PRICE = (0.0, 1e6, "£ per exam")

#: path: (lowest, highest, what the value is); None means unbounded on that side
BOUNDS: dict[str, tuple[float | None, float | None, str]] = {
    "horizon_weeks": (None, 52 * 50, "weeks (50 years)"),
    "warmup_weeks": (None, 52 * 50, "weeks"),
    "backlog_interval_hours": (1 / 60, 24 * 7 * 4, "hours (one minute to four weeks)"),
    "trusts.*.population": (None, 1e9, "people"),
    "trusts.*.demand_multiplier": (None, 1e3, "times the population share"),
    "urgencies.*.target_hours": (None, 24 * 365 * 10, "hours"),
    "modalities.*.annual_volume": (None, 1e8, "exams a year (all of England does about 5e7)"),
    "modalities.*.annual_growth": (None, 10.0, "a fraction a year (10 = +1000%)"),
    "modalities.*.reading_minutes.*.mean": (0.01, WEEK_MINUTES, "minutes"),
    "modalities.*.reading_minutes.*.sd": (None, WEEK_MINUTES * 10, "minutes"),
    "modalities.*.reading_minutes.*.value": (None, WEEK_MINUTES, "minutes"),
    "modalities.*.reading_minutes.*.values.*": (None, WEEK_MINUTES, "minutes"),
    "demand.seasonality.*": (1e-3, 1e3, "relative volume"),
    "demand.initial_backlog.*.count": (None, 1e8, "exams"),
    "demand.initial_backlog.*.max_age_days": (None, 365.25 * 20, "days"),
    "staff.*.count": (None, 1e5, "reporters"),
    "staff.*.speed": (0.01, 100.0, "times the reading-time distributions' speed"),
    "staff.*.hourly_cost": (0.0, 1e5, "£ per hour"),
    "outsourcing.check_every_hours": (1 / 60, 24 * 7 * 4, "hours"),
    "outsourcing.price.*.*": PRICE,
    "outsourcing.urgency_price_factor.*": (None, 1e3, "times the price"),
    "outsourcing.turnaround_hours.mean": (1e-3, 24 * 365, "hours"),
    "outsourcing.turnaround_hours.value": (None, 24 * 365, "hours"),
    "policy.broker.cadence_hours": (1 / 60, 24 * 7 * 4, "hours"),
    "policy.broker.lookahead_hours": (None, 24 * 365, "hours"),
    "policy.broker.transfer_overhead_minutes": (None, WEEK_MINUTES, "minutes"),
    "home_reporting.tariff_multiplier": (None, 1e3, "times the tariff"),
    "home_reporting.reading_time_factor": (0.01, 100.0, "times the on-site reading time"),
    "home_reporting.min_age_hours": (None, 24 * 365, "hours"),
    "home_reporting.backlog_threshold_hours": (None, 1e7, "reading hours"),
    "teleradiology.price.*.*": PRICE,
    "teleradiology.turnaround_hours.mean": (1e-3, 24 * 365, "hours"),
    "trusts.*.modality_multiplier.*": (None, 100.0, "times the population share"),
    "trusts.*.subspecialty_weight.*": (None, 1e3, "relative weight"),
    "staff.*.months_to_fill": (0.01, 1200.0, "months"),
    "outsourcing.daily_cap": (None, 1e6, "exams a day"),
    "outsourcing.daily_cap_by_trust.*": (None, 1e6, "exams a day"),
    "outages.*.mtbf_hours": (0.1, None, "hours (at least 6 minutes between outages)"),
    "outages.*.mttr_hours": (1 / 60, 24 * 365, "hours"),
    "finance.core_pa_hours": (0.25, 24.0, "hours"),
    "finance.premium_pa_hours": (0.25, 24.0, "hours"),
    "finance.pas_per_wte_week": (1.0, 40.0, "PAs a week"),
    "home_reporting.download_minutes.*": (None, 24 * 60, "minutes"),
    "finance.insourcing_tariff.*.*": PRICE,
    "finance.inter_trust_charge.*.*": PRICE,
    "finance.commissioner_income.*.*": PRICE,
}


def _walk(value: Any, parts: list[str], path: list[str]) -> Iterator[tuple[str, Any]]:
    if not parts:
        yield ".".join(path), value
        return
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        items = value.items() if head == "*" else ([(head, value[head])] if head in value else [])
    elif isinstance(value, (list, tuple)):
        items = enumerate(value) if head == "*" else []
    else:
        items = []
    for key, child in items:
        yield from _walk(child, rest, [*path, str(key)])


def value_problems(scn: Scenario) -> list[tuple[str, str]]:
    """(field path, reason) for every number outside its plausible range; empty when all are in range."""
    data = scn.model_dump(mode="python")
    problems = []
    for pattern, (low, high, unit) in BOUNDS.items():
        for path, value in _walk(data, pattern.split("."), []):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if low is not None and value < low:
                problems.append((path, f"{value:g} is below {low:g} {unit}"))
            elif high is not None and value > high:
                problems.append((path, f"{value:g} is above {high:g} {unit}"))
    return problems
