"""Unit tests of sim.evaluation on tiny hand-built activity logs; every expected value is worked out by
hand in the comments (counts, patients, hours, WTE, costs, saving, rates, turnaround, backlog, and the
rate ratios of core output). The statistician's defects of issue 15 are in test_evaluation_design.py."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sim.activity import COLUMNS, read_activity_log
from sim.evaluation import evaluate_activity, load_reporting_tables, paired_difference, welch_difference

KEY = b"a-test-key-that-is-long-enough-0"
T = pd.Timestamp

# simple round-number tables, so the hand sums below are easy to check
TARIFFS = {
    "insourcing": {"CT": [20, 30, 40, 50], "MR": [25, 35, 45, 55], "XR": [2, 4, 6, 8]},
    "outsourcing": {"CT": [30, 45, 60, 75], "MR": [35, 50, 65, 80], "XR": [3, 6, 9, 12]},
    "urgency_factor": {"ED": 1.5},
}
RATES = {"CT": [12, 18, 24, 40], "MR": [15, 20, 25, 30], "XR": [2, 3, 4, 5]}
T_CRIT_2DF = 4.302653  # t(0.975, df=2) = 0.95 * sqrt(2 / (1 - 0.95^2)) (closed form for 2 df)
T_CRIT_2DF_90 = 2.919986  # t(0.95, df=2) = 0.9 * sqrt(2 / (1 - 0.9^2))


class Log:
    """Builds a raw activity log row by row."""

    def __init__(self):
        self.rows = []

    def add(self, route, reporter, modality="XR", band=1, acquired=None, reported=None, patient=None, urgency="OP",
            **extra):
        n = len(self.rows)
        self.rows.append({
            "exam_id": f"ACC{n:05d}", "patient_id": patient or f"H{n:05d}", "trust": "RX1", "modality": modality,
            "band": band, "subspecialty": "neuro", "urgency": urgency, "acquired_at": T(acquired).isoformat(),
            "reported_at": "" if reported is None else T(reported).isoformat(), "reporter_id": reporter or "",
            "reporting_trust": "RX1" if route in ("core", "home") else "", "route": route, **extra})

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows)
        return frame[list(COLUMNS) + [c for c in frame.columns if c not in COLUMNS]]


# ---------------------------------------------------------------------------------------- pilot log
PILOT = ("2025-03-03", "2025-03-16")  # Monday to Sunday, 14 days = 2 weeks; "before" = 17 Feb - 2 Mar


def pilot_log() -> pd.DataFrame:
    log = Log()
    # home (extra) reports during the pilot, evenings: 10 exams, 8 patients (p1 and p2 have two exams each)
    home = [("A", "CT", 1, "p1"), ("A", "CT", 1, "p2"), ("A", "CT", 1, "p3"), ("A", "CT", 1, "p4"),
            ("A", "CT", 3, "p5"), ("A", "CT", 3, "p1"),
            ("B", "MR", 2, "p6"), ("B", "MR", 2, "p7"), ("B", "MR", 2, "p2"),
            ("C", "XR", 1, "p8")]
    for k, (reporter, modality, band, patient) in enumerate(home):
        reported = T("2025-03-04 19:00") + pd.Timedelta(days=k)  # one a day: gaps > 60 min
        log.add("home", f"RAD-{reporter}", modality, band, reported - pd.Timedelta(days=1), reported, patient)
    # a home report after the pilot: not counted
    log.add("home", "RAD-A", "CT", 1, "2025-03-19 09:00", "2025-03-20 19:00", "p9")
    # core reports: participants A, B, C 40 in the 2 weeks before (20/week) and 44, 48, 52 during
    # (22, 24, 26/week: changes +2, +4, +6); comparison D, E, F 60 before (30/week), 62 during (31/week: +1 each)
    counts = {"A": (40, 44), "B": (40, 48), "C": (40, 52), "D": (60, 62), "E": (60, 62), "F": (60, 62)}
    for reporter, (before, during) in counts.items():
        for start, n in ((T("2025-02-17"), before), (T(PILOT[0]), during)):
            for j in range(n):
                reported = start + pd.Timedelta(days=j % 14, hours=9, minutes=5 * (j // 14))
                log.add("core", f"RAD-{reporter}", "XR", 1, reported - pd.Timedelta(hours=1), reported)
    return log.frame()


@pytest.fixture(scope="module")
def pilot():
    return evaluate_activity(pilot_log(), tariffs=TARIFFS, rates=RATES, pilot_start=PILOT[0], pilot_end=PILOT[1],
                             key=KEY, lead_in_days=0)


def test_counts_and_distinct_patients(pilot):
    assert pilot.value("extra_exams") == 10  # the 11th home report falls after the pilot
    assert pilot.value("extra_patients") == 8  # p1..p8
    assert pilot.value("exams_per_patient") == pytest.approx(10 / 8)
    assert pilot.value("exams_reported") == 10 + 44 + 48 + 52 + 3 * 62  # = 340, all routes during the pilot
    routes = pilot.reported_by_route.set_index(["period", "modality", "band", "route"])
    assert routes.loc[("during", "CT", "1", "home"), ["exams", "patients"]].tolist() == [4, 4]
    assert routes.loc[("during", "CT", "3", "home"), ["exams", "patients"]].tolist() == [2, 2]
    assert routes.loc[("during", "ALL", "ALL", "home"), ["exams", "patients"]].tolist() == [10, 8]
    assert routes.loc[("during", "ALL", "ALL", "core"), "exams"] == 330
    assert routes.loc[("before", "ALL", "ALL", "core"), "exams"] == 3 * 40 + 3 * 60


def test_hours_wte_costs_and_saving(pilot):
    # minutes: CT1 4x12 = 48, CT3 2x24 = 48, MR2 3x20 = 60, XR1 1x2 = 2 -> 158 min = 2.6333 h
    assert pilot.value("extra_hours") == pytest.approx(158 / 60)
    assert pilot.value("pilot_weeks") == 2
    assert pilot.value("wte_generated") == pytest.approx(158 / 60 / (40 * 2))  # = 0.0329
    # tariff: CT1 4x20 = 80, CT3 2x40 = 80, MR2 3x35 = 105, XR1 2 -> 267
    assert pilot.value("cost_insourcing_tariff") == 267
    # outsourcing: CT1 4x30 = 120, CT3 2x60 = 120, MR2 3x50 = 150, XR1 3 -> 393; saving 393 - 267 = 126
    assert pilot.value("cost_outsourcing") == 393
    assert pilot.value("saving_vs_outsourcing") == 126
    assert pilot.value("tariff_to_outsourcing_ratio") == pytest.approx(267 / 393)
    extra = pilot.extra_activity.set_index(["modality", "band"])
    assert extra.loc[("MR", "2"), ["exams", "hours", "cost_insourcing_tariff", "cost_outsourcing"]].tolist() == [
        3, 1.0, 105, 150]


def test_wte_with_other_hours_per_wte_week():
    ev = evaluate_activity(pilot_log(), tariffs=TARIFFS, rates=RATES, pilot_start=PILOT[0], pilot_end=PILOT[1],
                           hours_per_wte_week=37.5, key=KEY, lead_in_days=0)
    assert ev.value("wte_generated") == pytest.approx(158 / 60 / 75)  # 37.5 h x 2 weeks


def test_no_harm_is_a_noninferiority_verdict_with_rate_ratios(pilot):
    # core output per working reporter-week (XR band 1 = 2 benchmark minutes each): participants A, B, C
    # 20/week before and 22, 24, 26 during; comparison D, E, F 30 -> 31. With the week effects fitting the
    # comparison exactly (31/30), the Poisson model's first-order conditions give the participants'
    # during/before ratio k = sum during / sum before = 72 / 60 = 1.2, so the DiD rate ratio is
    # 1.2 / (31/30) = 36/31 and the participants' pre-post ratio 1.2
    did = pilot.test("difference_in_differences")
    assert (did["n"], did["n_comparison"]) == (3, 3)
    assert did["rate_ratio"] == pytest.approx(36 / 31, rel=1e-6)
    assert did["df"] == 2  # min(3, 3) - 1
    assert did["ci_low"] < did["rate_ratio"] < did["ci_high"] and did["confidence"] == 0.90
    assert did["verdict"] in ("non-inferior", "inconclusive", "inferior") and did["margin"] == -0.10
    low = math.exp(math.log(did["rate_ratio"]) - T_CRIT_2DF_90 * did["se"])
    assert did["ci_low"] == pytest.approx(low)
    assert did["verdict"] == ("non-inferior" if did["ci_low"] > 0.9 else "inconclusive")
    paired = pilot.test("paired")
    assert paired["rate_ratio"] == pytest.approx(1.2, rel=1e-6) and paired["n_comparison"] == 0
    assert pilot.verdict == did["verdict"]
    assert "p_value" not in pilot.productivity_tests  # no superiority p-value to misread as "no harm"
    by_reporter = pilot.productivity_by_reporter.set_index("reporter_id")
    assert set(by_reporter.index[by_reporter.group == "participant"]) == set(
        pilot.log.reporter_pseudonyms(["RAD-A", "RAD-B", "RAD-C"]))  # inferred from the home reports
    assert by_reporter["in_model"].all()


def test_participants_given_explicitly():
    ev = evaluate_activity(pilot_log(), tariffs=TARIFFS, rates=RATES, pilot_start=PILOT[0], pilot_end=PILOT[1],
                           participants=["RAD-A", "RAD-B"], key=KEY, lead_in_days=0)
    # A, B: during 22 + 24 = 46 vs before 40 -> pre-post ratio 46/40; C is now a comparison reporter
    assert ev.test("paired")["rate_ratio"] == pytest.approx(46 / 40, rel=1e-6)
    assert ev.test("difference_in_differences")["n_comparison"] == 4
    with pytest.raises(ValueError, match="1 of the 1 participant"):
        evaluate_activity(pilot_log(), tariffs=TARIFFS, rates=RATES, participants=["NOBODY"], key=KEY)


def test_statistics_helpers():
    assert paired_difference([2, 4, 6])["t"] == pytest.approx(2 * math.sqrt(3))
    welch = welch_difference([2, 4, 6], [1, 1, 1])
    assert welch["estimate"] == 3 and welch["df"] == pytest.approx(2)
    # Welch with unequal spreads: a = 1, 3 (var 2), b = 0, 4, 8 (var 16): se = sqrt(2/2 + 16/3) = sqrt(19/3);
    # df = (19/3)^2 / (1^2/1 + (16/3)^2/2) = 40.111 / 15.222 = 2.635
    welch = welch_difference([1, 3], [0, 4, 8])
    assert welch["estimate"] == -2 and welch["se"] == pytest.approx(math.sqrt(19 / 3))
    assert welch["df"] == pytest.approx((19 / 3) ** 2 / (1 + (16 / 3) ** 2 / 2))
    assert math.isnan(paired_difference([5])["p_value"])  # one reporter: no test


def test_published_tables_suppress_small_counts(pilot):
    tables = pilot.tables()  # suppress 1-7, round to 5
    extra = tables["extra_activity"].set_index(["modality", "band"])
    assert extra.loc[("CT", "1"), "exams_suppressed"] and pd.isna(extra.loc[("CT", "1"), "exams"])  # 4 < 8
    assert pd.isna(extra.loc[("CT", "1"), "cost_insourcing_tariff"])  # a cost would reveal the count
    assert extra.loc[("ALL", "ALL"), "exams"] == 10 and not extra.loc[("ALL", "ALL"), "exams_suppressed"]
    # with the public tariff, the ALL row's money would give away the hidden cells' mix: hidden too
    assert pd.isna(extra.loc[("ALL", "ALL"), "cost_insourcing_tariff"]) and pd.isna(extra.loc[("ALL", "ALL"), "hours"])
    summary = tables["summary"].set_index("metric")
    assert summary.at["extra_exams", "value"] == 10
    assert summary.at["extra_patients", "value"] == 10  # 8 patients, rounded to the nearest 5
    assert pd.isna(summary.at["cost_insourcing_tariff", "value"]) and summary.at["cost_insourcing_tariff", "value_suppressed"]
    strict = evaluate_activity(pilot.log, tariffs=TARIFFS, rates=RATES, pilot_start=PILOT[0], pilot_end=PILOT[1],
                               suppress_below=11, lead_in_days=0).tables()["summary"].set_index("metric")
    for metric in ("extra_exams", "extra_patients", "extra_hours", "wte_generated", "cost_insourcing_tariff"):
        assert pd.isna(strict.at[metric, "value"]) and strict.at[metric, "value_suppressed"], metric
    assert strict.at["exams_reported", "value"] == 340


def test_per_reporter_rows_are_not_published(pilot, tmp_path):
    tables = pilot.tables()
    assert "productivity_by_reporter" not in tables
    cohort = tables["cohort"].set_index(["group", "reason"])
    assert cohort.loc[("participant", "in the model"), "reporters"] == 3
    out = pilot.write(tmp_path / "ev")
    text = "".join(p.read_text(errors="ignore") for p in out.iterdir() if p.suffix in (".csv", ".json", ".html"))
    assert "RAD-" not in text and not any(r in text for r in pilot.productivity_by_reporter["reporter_id"])
    assert (out / "parallel_trends.png").stat().st_size > 0 and "cannot show" in (out / "evaluation.html").read_text()


def test_urgency_factor_applies_to_outsourcing_prices_only():
    log = Log()
    log.add("home", "RAD-A", "CT", 1, "2025-03-03 08:00", "2025-03-03 19:00", urgency="ED")
    ev = evaluate_activity(log.frame(), tariffs=TARIFFS, rates=RATES, key=KEY)
    assert ev.value("cost_insourcing_tariff") == 20 and ev.value("cost_outsourcing") == 45  # 30 x 1.5


def test_default_tables_are_the_regional_tariff():
    tables = load_reporting_tables()
    assert tables["insourcing"]["CT"] == (25, 36, 47, 55) == tables["insourcing"]["MR"]  # facts §10
    assert tables["insourcing"]["XR"][:2] == (3.0, 5.5)
    assert all(len(v) == 4 for part in ("insourcing", "outsourcing", "reading_minutes") for v in tables[part].values())
    assert tables["source"] == "params/reporting_rates.toml"


# ------------------------------------------------------------------------ reports per hour from gaps
def session_log(reading_minutes=None) -> pd.DataFrame:
    log = Log()
    # one reporter, four CT band-1 home reports at 19:00, 19:10, 19:30 and 21:00 (a 90 min gap: new session)
    for k, time in enumerate(["19:00", "19:10", "19:30", "21:00"]):
        extra = {} if reading_minutes is None else {"reading_minutes": reading_minutes[k]}
        log.add("home", "RAD-H", "CT", 1, "2025-03-03 08:00", f"2025-03-03 {time}", **extra)
    return log.frame()


def test_reports_per_hour_from_gaps_between_reports():
    ev = evaluate_activity(session_log(), tariffs=TARIFFS, rates=RATES, key=KEY)
    # observed minutes: 12 (first of a session: benchmark) + 10 + 20 + 12 (90 min gap: new session) = 54
    row = ev.reporting_rates.set_index(["route", "modality"]).loc[("home", "ALL")]
    assert row["hours_observed"] == pytest.approx(54 / 60)
    assert row["reports_per_hour"] == pytest.approx(4 / (54 / 60))  # 4.444
    assert row["benchmark_reports_per_hour"] == pytest.approx(5)  # 60 / 12
    assert row["ratio_to_benchmark"] == pytest.approx(48 / 54)
    assert row["exams_timed_by_benchmark"] == 2
    assert ev.value("extra_hours") == pytest.approx(48 / 60)  # extra hours use the benchmark
    # pilot inferred from the home reports: one day, 1/7 week -> WTE = 0.8 h / (40 h x 1/7)
    assert ev.periods.set_index("period").loc["during", ["first_day", "last_day", "days"]].tolist() == [
        "2025-03-03", "2025-03-03", 1]
    assert ev.value("wte_generated") == pytest.approx(0.8 / (40 / 7))


def test_reading_minutes_column_replaces_the_benchmark():
    ev = evaluate_activity(session_log(["15", "10", "20", ""]), tariffs=TARIFFS, rates=RATES, key=KEY)
    assert ev.value("extra_hours") == pytest.approx((15 + 10 + 20 + 12) / 60)  # 4th: benchmark 12
    row = ev.reporting_rates.set_index(["route", "modality"]).loc[("home", "ALL")]
    assert row["hours_observed"] == pytest.approx(57 / 60)
    assert row["exams_timed_by_benchmark"] == 1


# ----------------------------------------------------------------------------- turnaround, backlog
def service_log() -> pd.DataFrame:
    log = Log()
    for acquired, reported, modality in [
        ("2025-03-03 08:00", "2025-03-03 10:00", "CT"),  # before: 2 h
        ("2025-03-04 08:00", "2025-03-04 12:00", "CT"),  # before: 4 h
        ("2025-03-05 20:00", "2025-03-06 06:00", "CT"),  # before: 10 h
        ("2025-03-10 09:00", "2025-03-10 10:00", "CT"),  # during: 1 h
        ("2025-03-11 22:00", "2025-03-12 01:00", "CT"),  # during: 3 h
        ("2025-03-12 09:00", None, "CT"),  # during: never reported
        ("2025-03-13 23:00", "2025-03-14 04:00", "MR"),  # during: 5 h
    ]:
        log.add("core" if reported else "unreported", "RAD-R" if reported else None, modality, 1, acquired, reported)
    return log.frame()


def test_turnaround_is_kaplan_meier_with_censoring():
    ev = evaluate_activity(service_log(), tariffs=TARIFFS, rates=RATES, pilot_start="2025-03-10",
                           pilot_end="2025-03-14", key=KEY, lead_in_days=0)
    tat = ev.turnaround.set_index(["period", "modality"])
    # before, CT: 2, 4, 10 h, all reported: S = 2/3, 1/3, 0 -> median 4, p90 10
    assert tat.loc[("before", "CT"), ["acquired", "reported", "censored", "median_h", "p90_h"]].tolist() == [
        3, 3, 0, 4, 10]
    # during, CT: 1, 3 h and one never reported (censored at the log's end, 14 Mar 04:00: 43 h). Over the
    # reported exams only the median would read 2 h; Kaplan-Meier: S = 2/3, 1/3 -> median 3, and the
    # p90 is not reached (1/3 of exams may still be waiting): NaN, not an optimistic number
    row = tat.loc[("during", "CT")]
    assert row[["acquired", "reported", "censored", "median_h"]].tolist() == [3, 2, 1, 3]
    assert math.isnan(row["p90_h"])
    # the share reported within 7 days is taken among exams with 7 days of follow-up: none during
    assert row["followed_up"] == 0 and math.isnan(row["share_reported_within"])
    assert tat.loc[("before", "CT"), "share_reported_within"] == 1
    # the default "before" is the week before the pilot: 3-9 March
    assert ev.periods.set_index("period").loc["before", ["first_day", "last_day"]].tolist() == ["2025-03-03", "2025-03-09"]


def test_backlog_counts_acquired_but_unreported_at_each_day_end():
    ev = evaluate_activity(service_log(), tariffs=TARIFFS, rates=RATES, pilot_start="2025-03-10",
                           pilot_end="2025-03-14", key=KEY, suppress_below=0, round_to=1, lead_in_days=0)
    backlog = ev.tables()["backlog"]
    everything = backlog[backlog.modality == "ALL"]
    # day ends 3 Mar .. 14 Mar (the last report): the 5 Mar 20:00 exam waits overnight; 11 Mar 22:00 waits
    # overnight; the 12 Mar exam is never reported; 13 Mar 23:00 waits until 14 Mar 04:00
    assert everything["date"].tolist()[0] == "2025-03-03" and everything["date"].tolist()[-1] == "2025-03-14"
    assert everything["unreported"].tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 2, 1]
    assert backlog[backlog.modality == "MR"]["unreported"].tolist() == [0] * 10 + [1, 0]
    assert everything["older"].eq(0).all()
    # with a 1-day limit, the 12 Mar exam moves to "older" from the end of 13 Mar on (a cancelled exam
    # would otherwise stay in the backlog for ever)
    short = evaluate_activity(service_log(), tariffs=TARIFFS, rates=RATES, pilot_start="2025-03-10",
                              pilot_end="2025-03-14", key=KEY, lead_in_days=0, backlog_max_age_days=1).backlog
    short = short[short.modality == "ALL"]
    assert short["older"].tolist() == [0] * 10 + [1, 1] and short["unreported"].tolist()[-2:] == [1, 0]


def test_an_activity_log_object_is_accepted_and_bad_rows_reported():
    raw = service_log()
    raw.loc[0, "trust"] = "XYZ"
    log = read_activity_log(raw, key=KEY, max_bad_fraction=0.5)
    ev = evaluate_activity(log, tariffs=TARIFFS, rates=RATES)
    reasons = ev.tables()["rejected_reasons"]
    assert reasons.to_dict("records") == [{"reason": "unknown trust", "rows": 1, "example_row": 1}]
    assert ev.value("rows_rejected") == 1
