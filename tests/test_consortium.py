"""A consortium that behaves like EMRAD (issue 9): unit, property and validation tests.

* Unit: leave as a rate for any horizon, bank holidays on the calendar (no core sessions, fewer
  elective arrivals), posts with vacancies and growth, per-trust demand multipliers and case-mix
  weights, the night teleradiology route, utilisation inside sessions and overtime.
* Validation (against the params file, not queueing theory): ultrasound is not reporting work,
  and the eight trusts differ in demand / capacity.
"""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pytest

import sim
from sim.capacity import demand_capacity_table, table_text
from sim.demand import generate_exams, subspecialty_mix
from sim.loading import ScenarioError, validate_data
from sim.metrics import metrics_table, outcome, reporter_table
from sim.model import Engine
from sim.workforce import HOURS_PER_YEAR, build_workforce, n_posts, vacant_spans
from sim.worklist import ROUTE_CODE
from tests.scenarios import ALL_DAYS, build, two_trust_data

DEFAULT = "params/emrad.toml"


@pytest.fixture(scope="module")
def emrad():
    return sim.load_scenario(DEFAULT)


# -- leave is a rate, whatever the horizon ------------------------------------------------------
@pytest.mark.parametrize("weeks", [2, 3, 4, 13, 52])
def test_share_of_reporter_weeks_on_leave_is_the_annual_rate_for_any_horizon(emrad, weeks):
    scn = emrad.with_changes({"horizon_weeks": weeks})
    reporters = build_workforce(scn, seed=1, replication=0)
    groups = {(g.trust, g.name): g for g in scn.staff}
    rate = np.array([groups[(scn.trust_codes[r.home_trust], r.group)].leave_weeks_per_year / 52 for r in reporters])
    on_leave = np.array([len([w for w in r.leave_weeks if w < weeks]) for r in reporters]) / weeks
    assert rate.mean() > 0.1  # the check bites: most reporters take leave
    assert abs(on_leave.mean() - rate.mean()) <= 0.01, (weeks, on_leave.mean(), rate.mean())


def test_leave_share_holds_in_every_week_within_a_reporter_per_group(emrad):
    reporters = build_workforce(emrad, seed=3, replication=1)
    groups = {(g.trust, g.name): g for g in emrad.staff}
    by_group: dict = {}
    for r in reporters:
        by_group.setdefault((emrad.trust_codes[r.home_trust], r.group), []).append(r)
    for key, members in by_group.items():
        expected = len(members) * groups[key].leave_weeks_per_year / 52
        away = [sum(w in r.leave_weeks for r in members) for w in range(52)]
        assert max(abs(a - expected) for a in away) <= 1.0 + 1e-9, key


# -- bank holidays ---------------------------------------------------------------------------------
def _holiday_data(factor: float) -> dict:
    data = two_trust_data(weeks=8, t1_per_hour=6.0, t2_per_hour=3.0)
    data["urgencies"][1]["profile"] = "office"
    data["demand"]["profiles"]["office"] = [1.0 if d < 5 and 8 <= h < 18 else 0.0 for d in range(7) for h in range(24)]
    start = dt.date.fromisoformat(data["start_date"])
    data["demand"]["bank_holidays"] = [(start + dt.timedelta(days=7 * k + 1)).isoformat() for k in range(8)]  # Tuesdays
    data["demand"]["bank_holiday_factor"] = {"office": factor}
    data["staff"][0]["works_bank_holidays"] = True
    return data


def test_bank_holidays_stop_core_sessions_but_not_rotas():
    scn = build(_holiday_data(0.1))
    holidays = [((d - scn.start_date).days * 24, (d - scn.start_date).days * 24 + 24) for d in scn.demand.bank_holidays]
    reporters = build_workforce(scn, 1, 0)
    rota = [r for r in reporters if r.home_trust == 0]
    core = [r for r in reporters if r.home_trust == 1]
    def overlap(r):
        return sum(max(0.0, min(e, he) - max(s, hs)) for s, e in r.intervals for hs, he in holidays)
    assert all(overlap(r) > 0 for r in rota)  # T1's group works Tuesdays 09-17, holidays included
    assert all(overlap(r) == 0 for r in core)  # T2's group works Mon/Wed/Fri/Sat only, never on a holiday...
    data = _holiday_data(0.1)
    data["staff"][1]["sessions"] = [{"days": ALL_DAYS, "start": "08:00", "end": "18:00"}]
    assert all(overlap(r) == 0 for r in build_workforce(build(data), 1, 0) if r.home_trust == 1)  # ...even daily


def test_bank_holidays_cut_elective_arrivals_by_the_factor():
    counts = {}
    for factor in (0.1, 1.0):
        scn = build(_holiday_data(factor))
        ex = generate_exams(scn, seed=5, replication=0)
        elective = ex.urgency == 1
        tuesday = (np.floor(ex.arrival / 24) % 7 == 1) & (ex.arrival >= 0)
        counts[factor] = np.count_nonzero(elective & tuesday)
        acute_tuesday = np.count_nonzero(~elective & tuesday)
        counts[f"acute{factor}"] = acute_tuesday
    ratio = counts[0.1] / counts[1.0]
    assert 0.07 < ratio < 0.14, ratio  # ~440 holiday-Tuesday elective exams at factor 1: a 95% band around 0.1
    assert counts["acute0.1"] == counts["acute1.0"]  # acute demand does not stop (same stream, same draws)


# -- posts: vacancies and growth ---------------------------------------------------------------------
def test_each_post_is_vacant_the_vacancy_rate_of_the_time():
    data = two_trust_data()
    group = build(data, staff=[{**data["staff"][0], "count": 400, "vacancy_rate": 0.2, "months_to_fill": 6}]).staff[0]
    horizon = 10 * HOURS_PER_YEAR
    vacant = sum(e - s for k in range(group.count) for s, e in vacant_spans(group, k, f"p{k}", 1, 0, horizon, 0.2))
    assert vacant / (group.count * horizon) == pytest.approx(0.2, abs=0.02)


def test_posts_grow_at_the_annual_rate_and_new_posts_open_vacant():
    data = two_trust_data()
    group = build(data, staff=[{**data["staff"][0], "count": 100, "annual_growth": 0.05}]).staff[0]
    horizon = 3 * HOURS_PER_YEAR
    assert n_posts(group, horizon) == int(np.floor(100 * 1.05 ** 3))
    spans = vacant_spans(group, 110, "p110", 1, 0, horizon, 0.0)
    opens = HOURS_PER_YEAR * np.log(111 / 100) / np.log(1.05)
    assert spans == [(0.0, pytest.approx(opens))]
    assert vacant_spans(group, 5, "p5", 1, 0, horizon, 0.0) == []


def test_workforce_gap_widens_when_demand_outgrows_posts(emrad):
    """The seed's central fact as a widening gap: CT demand +6%/yr against consultant posts +1.64%/yr."""
    scn = emrad.with_changes({"horizon_weeks": 156})
    ct = next(m for m in scn.modalities if m.code == "CT")
    consultants = [g for g in scn.staff if g.role == "consultant" and not g.works_bank_holidays]
    posts = {year: sum(n_posts(g, year * HOURS_PER_YEAR) for g in consultants) for year in (0, 3)}
    demand_growth = (1 + ct.annual_growth) ** 3
    assert posts[3] / posts[0] < 1.06 < demand_growth


# -- per-trust demand ------------------------------------------------------------------------------------
def test_trust_multipliers_and_case_mix_weights_shape_demand(emrad):
    scn = emrad.with_changes({"horizon_weeks": 4, "demand.initial_backlog": []})
    ex = generate_exams(scn, seed=2, replication=0)
    mr = [m.code for m in scn.modalities].index("MR")
    rx1, rwe = scn.trust_codes.index("RX1"), scn.trust_codes.index("RWE")
    per_person = {t: np.count_nonzero((ex.trust == t) & (ex.modality == mr)) / scn.trusts[t].population for t in (rx1, rwe)}
    assert per_person[rx1] / per_person[rwe] == pytest.approx(0.63, rel=0.05)  # RX1's MR multiplier
    neuro = scn.subspecialties.index("neuro")
    ct = [m.code for m in scn.modalities].index("CT")
    share = {t: np.mean(ex.subspecialty[(ex.trust == t) & (ex.modality == ct)] == neuro) for t in (rx1, rwe)}
    assert share[rx1] == pytest.approx(subspecialty_mix(scn, rx1, ct)["neuro"], abs=0.01)
    assert share[rx1] > share[rwe] + 0.08  # the tertiary neuro centre


def test_trusts_differ_in_demand_and_capacity(emrad):
    table = demand_capacity_table(emrad).set_index("trust")
    ratios = table.drop(index="ALL")["ratio"]
    assert ratios.max() - ratios.min() > 0.2  # not one population share applied to both
    assert table.loc["RWD", "ratio"] > table.loc["RX1", "ratio"]


def test_params_header_shows_the_computed_demand_capacity_table(emrad):
    text = open(DEFAULT, encoding="utf-8").read()
    header = text[text.index("# TABLE-START\n") + 14: text.index("# TABLE-END")]
    printed = [line.removeprefix("#   ").rstrip() for line in header.splitlines()]
    assert printed == table_text(demand_capacity_table(emrad)).splitlines()


# -- ultrasound is not reporting work ------------------------------------------------------------------
def test_reporting_work_is_xr_ct_mr_only(emrad):
    assert [m.code for m in emrad.modalities] == ["XR", "CT", "MR"]
    assert all("US" not in g.modalities for g in emrad.staff)
    assert not any("sonograph" in g.name for g in emrad.staff)


# -- the night teleradiology route ---------------------------------------------------------------------
def _tele_data() -> dict:
    data = two_trust_data(weeks=3, t1_per_hour=2.0, t2_per_hour=1.0)
    data["teleradiology"] = {"enabled": True, "urgencies": ["ED"], "modalities": ["XR"],
                             "windows": [{"days": ALL_DAYS, "start": "20:00", "end": "24:00"},
                                         {"days": ALL_DAYS, "start": "00:00", "end": "08:00"}],
                             "price": {"XR": [30.0, 50.0]}, "turnaround_hours": {"kind": "fixed", "value": 0.5}}
    return data


def test_night_contract_takes_covered_work_at_night_and_prices_it():
    scn = build(_tele_data())
    raw = Engine(scn, 4, 0).run()
    ex, tele = raw.exams, raw.route == ROUTE_CODE["teleradiology"]
    clock = np.mod(ex.arrival, 24)
    night = (ex.arrival >= 0) & ((clock >= 20) | (clock < 8))
    ed = ex.urgency == 0
    assert np.array_equal(tele & night, ed & night)  # every ED exam acquired at night, nothing else
    assert np.all(raw.done_at[tele] - raw.left_at[tele] == pytest.approx(0.5))
    swept = tele & ~night
    assert swept.any() and np.all(np.mod(raw.left_at[swept], 24) == 20)  # the evening's waiting ED work
    oc = outcome(raw)
    totals = metrics_table(raw, oc).query("modality == 'ALL' and urgency == 'ALL'").set_index(["trust", "metric"])["value"]
    price = np.array([30.0, 50.0])[ex.band[tele]]
    assert totals[("ALL", "cost_teleradiology")] == pytest.approx(price.sum())
    assert totals[("ALL", "teleradiology")] == np.count_nonzero(tele)
    assert totals[("ALL", "marginal_spend")] == pytest.approx(totals[("ALL", "cost_teleradiology")]
                                                              + totals[("ALL", "cost_outsourced")])


def test_counterfactual_prices_urgent_work_at_the_night_contract_and_routine_at_the_list():
    scn = build(_tele_data())
    raw = Engine(scn, 4, 0).run()
    oc = outcome(raw)
    ed = raw.exams.urgency == 0
    assert np.allclose(oc.counterfactual[ed], np.array([30.0, 50.0])[raw.exams.band[ed]])
    assert np.allclose(oc.counterfactual[~ed], np.array([20.0, 45.0])[raw.exams.band[~ed]])


# -- utilisation and overtime ------------------------------------------------------------------------
def test_utilisation_is_the_busy_share_inside_sessions_and_overtime_is_reported_apart():
    data = two_trust_data(weeks=2, t1_per_hour=4.0, t2_per_hour=2.0)  # overloaded: reads run past session ends
    scn = build(data)
    raw = Engine(scn, 2, 0).run()
    table = reporter_table(raw, outcome(raw))
    assert (table.utilisation <= 1 + 1e-9).all() and (table.utilisation > 0.9).all()
    assert table.overtime_hours.sum() > 0
    assert np.allclose(table.in_session_hours + table.overtime_hours, table.reading_hours)


# -- bad input names the field ------------------------------------------------------------------------
@pytest.mark.parametrize("change, field", [
    (lambda d: d["staff"][0].update(vacancy_rate=1.0), "staff.0.vacancy_rate"),
    (lambda d: d["staff"][0].update(annual_growth=-0.1), "staff.0.annual_growth"),
    (lambda d: d["staff"][0].update(leave_weeks_per_year=52), "staff.0.leave_weeks_per_year"),
    (lambda d: d["trusts"][0].update(vacancy_rate=-0.1), "trusts.0.vacancy_rate"),
    (lambda d: d["trusts"][0].update(modality_multiplier={"US": 1.2}), "trusts.0.modality_multiplier.US"),
    (lambda d: d["trusts"][0].update(subspecialty_weight={"cardiac": 2.0}), "trusts.0.subspecialty_weight.cardiac"),
    (lambda d: d["demand"].update(bank_holiday_factor={"nights": 0.5}), "demand.bank_holiday_factor.nights"),
    (lambda d: d["demand"].update(bank_holiday_factor={"flat": 1.5}), "demand.bank_holiday_factor.flat"),
    (lambda d: d["outsourcing"].update(daily_cap_by_trust={"XX": 3}), "outsourcing.daily_cap_by_trust.XX"),
    (lambda d: d.update(teleradiology={**_tele_data()["teleradiology"], "urgencies": ["STAT"]}), "teleradiology.urgencies"),
    (lambda d: d.update(teleradiology={**_tele_data()["teleradiology"], "price": {}}), "teleradiology.price.XR"),
])
def test_new_fields_are_validated_with_the_field_named(change, field):
    data = copy.deepcopy(two_trust_data())
    change(data)
    with pytest.raises(ScenarioError) as err:
        validate_data(data, "bad.toml")
    assert any(path == field for path, _ in err.value.problems), err.value.problems
    assert "bad.toml" in str(err.value)


def test_bank_holidays_outside_the_horizon_are_fine():
    data = two_trust_data()
    data["demand"]["bank_holidays"] = ["1999-12-31", "2099-01-01"]
    scn = validate_data(data, "ok.toml")
    assert build_workforce(scn, 1, 0)


def test_staff_counts_per_trust_expand_to_one_group_per_trust():
    data = two_trust_data()
    template = {k: v for k, v in data["staff"][1].items() if k not in ("trust", "count")}
    data["staff"] = [{**template, "counts": {"T1": 2, "T2": 3}}]
    scn = validate_data(data, "ok.toml")
    assert [(g.trust, g.count) for g in scn.staff] == [("T1", 2), ("T2", 3)]
    data["staff"] = [{**template, "counts": {"T1": 2}, "trust": "T1"}]
    with pytest.raises(ScenarioError, match="either counts or trust"):
        validate_data(data, "bad.toml")
