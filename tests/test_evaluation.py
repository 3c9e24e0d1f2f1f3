"""Unit tests of sim.evaluation on tiny hand-built activity logs; every expected value is worked out by
hand in the comments (counts, patients, hours, WTE, costs, saving, rates, turnaround, backlog, and the
paired test and difference-in-differences of core productivity)."""

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
                             key=KEY)


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
                           hours_per_wte_week=37.5, key=KEY)
    assert ev.value("wte_generated") == pytest.approx(158 / 60 / 75)  # 37.5 h x 2 weeks


def test_paired_test_and_difference_in_differences(pilot):
    by_reporter = pilot.productivity_by_reporter.set_index("reporter_id")
    assert by_reporter.loc["RAD-A", ["before_per_week", "during_per_week", "change_per_week"]].tolist() == [20, 22, 2]
    assert set(by_reporter.index[by_reporter.group == "participant"]) == {"RAD-A", "RAD-B", "RAD-C"}  # inferred
    # participants' changes +2, +4, +6: mean 4, sd 2, se 2/sqrt(3) = 1.1547, t = 3.4641 on 2 df;
    # for 2 df p = 1 - t/sqrt(2 + t^2) = 1 - 3.4641/sqrt(14) = 0.07418; CI 4 -+ 4.3027 x 1.1547 = (-0.968, 8.968)
    paired = pilot.test("paired")
    assert paired["n"] == 3 and paired["estimate"] == pytest.approx(4) and paired["sd"] == pytest.approx(2)
    assert paired["t"] == pytest.approx(2 * math.sqrt(3))
    assert paired["p_value"] == pytest.approx(1 - math.sqrt(12) / math.sqrt(14))
    assert paired["ci_low"] == pytest.approx(4 - T_CRIT_2DF * 2 / math.sqrt(3), abs=1e-5)
    assert paired["ci_high"] == pytest.approx(4 + T_CRIT_2DF * 2 / math.sqrt(3), abs=1e-5)
    # comparison +1, +1, +1: DiD = 4 - 1 = 3; Welch se = sqrt(4/3 + 0/3) = 1.1547, df = (4/3)^2 / ((4/3)^2 / 2) = 2;
    # t = 3 / 1.1547 = 2.5981, p = 1 - 2.5981/sqrt(2 + 6.75) = 0.12169; CI 3 -+ 4.968 = (-1.968, 7.968)
    did = pilot.test("difference_in_differences")
    assert (did["n"], did["n_comparison"]) == (3, 3)
    assert did["estimate"] == pytest.approx(3) and did["se"] == pytest.approx(2 / math.sqrt(3))
    assert did["df"] == pytest.approx(2)
    assert did["p_value"] == pytest.approx(1 - 2.598076 / math.sqrt(8.75), abs=1e-6)
    assert (did["ci_low"], did["ci_high"]) == (pytest.approx(3 - 4.968275, abs=1e-5), pytest.approx(3 + 4.968275, abs=1e-5))


def test_participants_given_explicitly():
    ev = evaluate_activity(pilot_log(), tariffs=TARIFFS, rates=RATES, pilot_start=PILOT[0], pilot_end=PILOT[1],
                           participants=["RAD-A", "RAD-B"], key=KEY)
    # changes +2, +4: mean 3, sd sqrt(2), se 1, t = 3 on 1 df; p = 1 - (2/pi) atan(3) = 0.2048 (Cauchy)
    paired = ev.test("paired")
    assert paired["n"] == 2 and paired["t"] == pytest.approx(3)
    assert paired["p_value"] == pytest.approx(1 - 2 / math.pi * math.atan(3))
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
    tables = pilot.tables()  # suppress_below = 5
    extra = tables["extra_activity"].set_index(["modality", "band"])
    assert extra.loc[("CT", "1"), "exams_suppressed"] and pd.isna(extra.loc[("CT", "1"), "exams"])  # 4 < 5
    assert pd.isna(extra.loc[("CT", "1"), "cost_insourcing_tariff"])  # a cost would reveal the count
    assert extra.loc[("ALL", "ALL"), "exams"] == 10 and not extra.loc[("ALL", "ALL"), "exams_suppressed"]
    assert "reporter_id" not in tables["productivity_by_reporter"]
    assert tables["productivity_by_reporter"]["reporter"].str.match(r"(participant|comparison)-\d\d$").all()
    # with a threshold above the pilot's volume, the headline count and everything computed from it is hidden
    summary = pilot.tables(suppress=True)["summary"].set_index("metric")
    assert summary.at["extra_exams", "value"] == 10
    strict = evaluate_activity(pilot.log, tariffs=TARIFFS, rates=RATES, pilot_start=PILOT[0], pilot_end=PILOT[1],
                               suppress_below=11).tables()["summary"].set_index("metric")
    for metric in ("extra_exams", "extra_patients", "extra_hours", "wte_generated", "cost_insourcing_tariff"):
        assert pd.isna(strict.at[metric, "value"]) and strict.at[metric, "value_suppressed"], metric
    assert strict.at["exams_reported", "value"] == 340


def test_a_hidden_part_hides_its_row_total():
    # service log, during, CT: acquired 3 = reported 2 + unreported 1; with suppress_below=2 only the
    # unreported 1 is small, so acquired is hidden too (3 - 2 would reveal it); reported stays
    ev = evaluate_activity(service_log(), tariffs=TARIFFS, rates=RATES, pilot_start="2025-03-10",
                           pilot_end="2025-03-16", key=KEY, suppress_below=2)
    tat = ev.tables()["turnaround"].set_index(["period", "modality"])
    row = tat.loc[("during", "CT")]
    assert row["unreported_suppressed"] and row["acquired_suppressed"] and not row["reported_suppressed"]
    assert pd.isna(row["acquired"]) and row["reported"] == 2 and row["median_h"] == 2
    assert tat.loc[("before", "CT"), "acquired"] == 3  # nothing hidden there (unreported 0)


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


def test_turnaround_before_and_during():
    ev = evaluate_activity(service_log(), tariffs=TARIFFS, rates=RATES, pilot_start="2025-03-10",
                           pilot_end="2025-03-16", key=KEY)
    tat = ev.turnaround.set_index(["period", "modality"])
    # before, CT: 2, 4, 10 h -> median 4; p90 (linear) at position 0.9 x 2 = 1.8: 4 + 0.8 x (10 - 4) = 8.8
    assert tat.loc[("before", "CT"), ["acquired", "reported", "unreported", "median_h", "p90_h"]].tolist() == [
        3, 3, 0, 4, pytest.approx(8.8)]
    # during, CT: 1, 3 h (+1 unreported) -> median 2, p90 = 1 + 0.9 x 2 = 2.8
    assert tat.loc[("during", "CT"), ["acquired", "reported", "unreported", "median_h", "p90_h"]].tolist() == [
        3, 2, 1, 2, pytest.approx(2.8)]
    # during, all: 1, 3, 5 h -> median 3, p90 = 3 + 0.8 x 2 = 4.6
    assert tat.loc[("during", "ALL"), ["median_h", "p90_h"]].tolist() == [3, pytest.approx(4.6)]
    # the default "before" is 7 days before the pilot: 3-9 March
    assert ev.periods.set_index("period").loc["before", ["first_day", "last_day"]].tolist() == ["2025-03-03", "2025-03-09"]


def test_backlog_counts_acquired_but_unreported_at_each_day_end():
    ev = evaluate_activity(service_log(), tariffs=TARIFFS, rates=RATES, pilot_start="2025-03-10",
                           pilot_end="2025-03-16", key=KEY, suppress_below=0)
    backlog = ev.tables()["backlog"]
    everything = backlog[backlog.modality == "ALL"]
    # day ends 3 Mar .. 14 Mar (the last report): the 5 Mar 20:00 exam waits overnight; 11 Mar 22:00 waits
    # overnight; the 12 Mar exam is never reported; 13 Mar 23:00 waits until 14 Mar 04:00
    assert everything["date"].tolist()[0] == "2025-03-03" and everything["date"].tolist()[-1] == "2025-03-14"
    assert everything["unreported"].tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 2, 1]
    assert backlog[backlog.modality == "MR"]["unreported"].tolist() == [0] * 10 + [1, 0]


def test_an_activity_log_object_is_accepted_and_bad_rows_reported():
    raw = service_log()
    raw.loc[0, "trust"] = "XYZ"
    log = read_activity_log(raw, key=KEY, max_bad_fraction=0.5)
    ev = evaluate_activity(log, tariffs=TARIFFS, rates=RATES)
    reasons = ev.tables()["rejected_reasons"]
    assert reasons.to_dict("records") == [{"reason": "unknown trust", "rows": 1, "example_row": 1}]
    assert ev.value("rows_rejected") == 1
