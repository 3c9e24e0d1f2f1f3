"""Validation tests of sim.activity: reading real-world activity logs (bad rows, pseudonymisation) and
exporting simulated runs in the same schema, read back without loss; no raw identifier is ever written."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import sim
from sim.activity import (COLUMNS, ActivityLogError, activity_log_from_run, codes_from_scenario, read_activity_log,
                          write_activity_log, write_activity_log_from_run)
from sim.evaluation import evaluate_activity, tables_from_scenario
from tests.scenarios import build, two_trust_data

KEY = b"a-test-key-that-is-long-enough-0"


def nhs_numbers(count: int) -> list[str]:
    """`count` valid NHS numbers: nine digits plus the modulus 11 check digit (skipping check digit 10)."""
    numbers, nine = [], 943476000
    while len(numbers) < count:
        check = 11 - sum(int(d) * w for d, w in zip(f"{nine:09d}", range(10, 1, -1))) % 11
        if check != 10:
            numbers.append(f"{nine:09d}{check % 11}")  # 11 -> 0
        nine += 1
    return numbers


def good_log(n: int = 100) -> pd.DataFrame:
    """n valid rows: NHS numbers as patient ids, home and core reports, an outsourced and an unreported exam."""
    patients = nhs_numbers((n + 1) // 2)  # two exams per patient
    rows = []
    for i in range(n):
        acquired = pd.Timestamp("2025-03-03 08:00") + pd.Timedelta(hours=3 * i)
        route = ["core", "home", "core", "outsourced", "unreported"][i % 5]
        reported = "" if route == "unreported" else (acquired + pd.Timedelta(hours=5)).isoformat()
        in_house = route in ("core", "home")
        rows.append({
            "exam_id": f"ACC{100000 + i}", "patient_id": patients[i // 2], "trust": "RX1",
            "modality": ["CT", "MR", "XR"][i % 3], "band": str(1 + i % 4), "subspecialty": "neuro",
            "urgency": "OP", "acquired_at": acquired.isoformat(), "reported_at": reported,
            "reporter_id": f"RAD{i % 6}" if in_house else "", "reporting_trust": "RX1" if in_house else "",
            "route": route,
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


# (what to change in one row, the reason it must be rejected with)
BAD_ROWS = [
    ({"trust": "XYZ"}, "unknown trust"),
    ({"modality": "PET"}, "unknown modality"),
    ({"urgency": "SOON"}, "unknown urgency"),
    ({"route": "teleport"}, "unknown route"),
    ({"band": "5"}, "band not an integer 1-4"),
    ({"band": "2.5"}, "band not an integer 1-4"),
    ({"acquired_at": "03/03/2025 09:00"}, "unparseable acquired_at"),
    ({"reported_at": "soon"}, "unparseable reported_at"),
    ({"reported_at": "2025-01-01T00:00:00"}, "reported before acquired"),
    ({"patient_id": ""}, "missing patient_id"),
    ({"patient_id": "9434765918"}, "invalid NHS number"),
    ({"reporting_trust": "ZZZ"}, "unknown reporting_trust"),
    ({"reported_at": ""}, "missing reported_at for a reported route"),
    ({"reporter_id": ""}, "missing reporter_id for a reported route"),
]


def test_each_kind_of_bad_row_is_rejected_with_its_reason():
    log = good_log(100)
    bad_rows = {}
    for k, (change, _) in enumerate(BAD_ROWS):
        row = 5 * k  # rows 0, 5, 10, ... are core reports: every check applies to them
        for column, value in change.items():
            log.loc[row, column] = value
        bad_rows[row + 1] = BAD_ROWS[k][1]  # 1-based data-row numbers
    log.loc[99, "exam_id"] = log.loc[98, "exam_id"]  # a duplicate: the later copy is the bad one
    bad_rows[100] = "duplicate exam_id"
    log.loc[90, "route"] = "unreported"  # a core row (reported_at given) relabelled unreported
    bad_rows[91] = "reported_at given for an unreported exam"

    result = read_activity_log(log, key=KEY, max_bad_fraction=0.5)
    assert result.n_rows == 100 and len(result.exams) == 100 - len(bad_rows)
    assert dict(zip(result.rejected["row"], result.rejected["reason"])) == bad_rows
    expected_counts = pd.Series(list(bad_rows.values())).value_counts().to_dict()
    assert result.reason_counts.to_dict() == expected_counts
    assert expected_counts["band not an integer 1-4"] == 2
    assert result.rejected["exam_id"].str.startswith("E").all()  # pseudonymised, never the accession number


def test_nhs_number_check_can_be_turned_off_for_local_ten_digit_numbers():
    log = good_log(10)
    log.loc[0, "patient_id"] = "1234567890"  # 10 digits, fails modulus 11: a local hospital number here
    assert read_activity_log(log, key=KEY, max_bad_fraction=0.5).reason_counts.to_dict() == {"invalid NHS number": 1}
    assert read_activity_log(log, key=KEY, check_nhs_numbers=False).n_rejected == 0


def test_a_row_with_two_problems_lists_both():
    log = good_log(30)
    log.loc[0, ["trust", "modality"]] = ["XYZ", "PET"]
    result = read_activity_log(log, key=KEY)
    assert result.rejected["reason"].tolist() == ["unknown trust; unknown modality"]
    assert result.reason_counts.to_dict() == {"unknown trust": 1, "unknown modality": 1}


def test_too_many_bad_rows_is_a_clear_error_naming_file_counts_and_rows(tmp_path):
    log = good_log(40)
    log.loc[[3, 7, 8], "trust"] = "XYZ"
    log.loc[[10], "band"] = "0"
    path = tmp_path / "ris_export.csv"
    log.to_csv(path, index=False)
    with pytest.raises(ActivityLogError) as caught:
        read_activity_log(path, key=KEY)  # 4 of 40 = 10% > 5%
    message = str(caught.value)
    assert str(path) in message
    assert "4 of 40 rows (10.0%)" in message
    assert "unknown trust: 3 row(s), e.g. row 4" in message
    assert "band not an integer 1-4: 1 row(s), e.g. row 11" in message
    assert "trust codes accepted: RX1, RNQ, RFS, RNS, RWE, RWD, RK5, RJF" in message
    assert caught.value.counts == {"unknown trust": 3, "band not an integer 1-4": 1}
    # the same file is accepted when the analyst allows more bad rows
    assert read_activity_log(path, key=KEY, max_bad_fraction=0.2).n_rejected == 4


def test_missing_column_and_missing_file_are_errors_naming_the_file(tmp_path):
    path = tmp_path / "short.csv"
    good_log(5).drop(columns="route").to_csv(path, index=False)
    with pytest.raises(ActivityLogError, match=r"short\.csv: missing column\(s\) route"):
        read_activity_log(path, key=KEY)
    with pytest.raises(ActivityLogError, match="no such file"):
        read_activity_log(tmp_path / "absent.csv", key=KEY)


def test_identifiers_are_pseudonymised_on_load_and_extra_columns_dropped(tmp_path):
    log = good_log(20).assign(patient_name="Jane Doe")
    raw_patients, raw_exams = set(log["patient_id"]), set(log["exam_id"])
    path = tmp_path / "with_names.csv"
    log.to_csv(path, index=False)
    result = read_activity_log(path, key=KEY)
    assert result.dropped_columns == ("patient_name",)
    values = set(result.exams.astype(str).to_numpy().ravel())
    assert not values & (raw_patients | raw_exams | {"Jane Doe"})
    assert result.exams["patient_id"].nunique() == len(raw_patients)  # linkage survives
    assert result.exams["exam_id"].is_unique
    # staff ids are pseudonymised by default too (issue 15), and a staff list still maps onto them
    assert not result.exams["reporter_id"].dropna().str.startswith("RAD").any()
    assert result.reporter_pseudonyms(["RAD1"])[0] in set(result.exams["reporter_id"])
    kept = read_activity_log(path, key=KEY, pseudonymise_reporters=False)
    assert kept.exams["reporter_id"].dropna().str.startswith("RAD").all()


def test_the_key_never_leaves_memory():
    import pickle

    log = read_activity_log(good_log(10), key=KEY, pseudonymise_reporters=True)
    assert KEY.decode() not in repr(log)
    saved = pickle.dumps(evaluate_activity(log))
    assert KEY not in saved
    restored = pickle.loads(saved).log
    assert restored.exams.equals(log.exams)
    with pytest.raises(ValueError, match="without its key"):
        restored.reporter_pseudonyms(["RAD1"])


def test_timestamps_with_offsets_become_uk_local_time():
    log = good_log(5)
    log.loc[0, ["acquired_at", "reported_at"]] = ["2025-07-01T08:00:00Z", "2025-07-01T10:30:00+01:00"]
    exams = read_activity_log(log, key=KEY).exams
    assert exams.loc[0, "acquired_at"] == pd.Timestamp("2025-07-01 09:00")  # BST = UTC+1
    assert exams.loc[0, "reported_at"] == pd.Timestamp("2025-07-01 10:30")


def test_parquet_and_numeric_columns_are_read(tmp_path):
    log = good_log(10)
    log["patient_id"] = log["patient_id"].astype("int64")
    log["band"] = log["band"].astype(int)
    log["acquired_at"] = pd.to_datetime(log["acquired_at"])
    path = tmp_path / "export.parquet"
    log.to_parquet(path)
    result = read_activity_log(path, key=KEY)
    assert result.n_rejected == 0 and result.exams["band"].tolist() == log["band"].tolist()
    assert result.exams["patient_id"].nunique() == log["patient_id"].nunique()


# ------------------------------------------------------------------------------------ simulated runs
@pytest.fixture(scope="module")
def simulated():
    scn = build(two_trust_data(weeks=3))
    run = sim.run(scn, seed=3, replication=0, keep_exams=True)
    return scn, run


def test_simulated_run_reads_back_with_no_rejected_rows_and_the_same_route_counts(simulated, tmp_path):
    scn, run = simulated
    exported = activity_log_from_run(run, scn)
    path = write_activity_log(exported, tmp_path / "sim_activity.csv")
    log = read_activity_log(path, key=KEY, **codes_from_scenario(scn))
    assert log.n_rejected == 0 and log.n_rows == run.n_exams
    counts = log.exams["route"].value_counts().to_dict()
    consortium = run.consortium()
    assert counts["core"] == run.exams["is_core"].sum() == consortium["reported"]
    assert counts["outsourced"] == run.exams["is_outsourced"].sum() == consortium["outsourced"]
    assert counts["unreported"] == consortium["unreported_end"] - 0  # waiting or in hand at the horizon
    assert sum(counts.values()) == consortium["initial_backlog"] + consortium["arrivals"]
    assert log.exams["patient_id"].nunique() == run.exams["patient"].nunique()
    # timestamps: start date + simulated hours, to the second
    first = log.exams.sort_values("row").iloc[0]
    hours = run.exams["acquired_h"].iloc[0]
    expected = pd.Timestamp(scn.start_date) + pd.Timedelta(seconds=round(hours * 3600))
    assert first["acquired_at"] == expected
    # reporting trust is the reader's home trust
    core = exported[exported.route == "core"]
    homes = dict(zip(run.reporters["reporter_id"], run.reporters["trust"]))
    assert (core["reporting_trust"] == core["reporter_id"].map(homes)).all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_streamed_export_is_the_whole_log_written_at_once(simulated, tmp_path, suffix):
    # chunks of 7 rows cross many chunk boundaries (and chunks where a column is all empty)
    scn, run = simulated
    whole = write_activity_log(activity_log_from_run(run, scn, reading_minutes=True), tmp_path / f"whole{suffix}")
    streamed = write_activity_log_from_run(run, scn, tmp_path / f"streamed{suffix}", reading_minutes=True, chunk_rows=7)
    if suffix == ".csv":
        assert streamed.read_text() == whole.read_text()
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(streamed), pd.read_parquet(whole))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"whole{suffix}", f"streamed{suffix}"])  # no temporaries left


def test_a_route_column_in_the_exam_frame_wins(simulated):
    scn, run = simulated
    exams = run.exams.copy()
    route = np.where(exams["is_core"], "core", np.where(exams["is_outsourced"], "outsourced", "unreported")).astype(object)
    core_rows = np.flatnonzero(exams["is_core"].to_numpy())
    route[core_rows[::3]] = "home"
    exams["route"] = route
    exported = activity_log_from_run(dataclasses.replace(run, exams=exams), scn)
    assert (exported["route"] == "home").sum() == len(core_rows[::3])
    assert read_activity_log(exported, key=KEY, **codes_from_scenario(scn)).n_rejected == 0


def test_evaluating_a_simulated_home_reporting_run_reproduces_its_own_figures():
    # a run with home sessions: the evaluation of its exported log (the scenario's own tariff and price
    # tables, the logged reading minutes, the whole horizon as the pilot) must give the simulation's figures
    data = two_trust_data(weeks=3)
    data["staff"][0]["home_workstation"] = True
    data["home_reporting"] = {"enabled": True, "backlog_threshold_exams": 0, "uptake_probability": 1.0,
                              "sessions": [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start": "18:00", "end": "21:00"}]}
    data["finance"] = {"insourcing_tariff": {"XR": [3.0, 5.5]}}
    scn = build(data)
    run = sim.run(scn, seed=2, replication=0, keep_exams=True)
    consortium = run.consortium()
    assert consortium["reported_home"] > 0
    exported = activity_log_from_run(run, scn, reading_minutes=True)
    tables = tables_from_scenario(scn)
    last_day = pd.Timestamp(scn.start_date) + pd.Timedelta(weeks=scn.horizon_weeks) - pd.Timedelta(days=1)
    ev = evaluate_activity(exported, tariffs=tables, rates=tables, pilot_start=scn.start_date, pilot_end=last_day,
                           participants=None, key=KEY, read_options=codes_from_scenario(scn),
                           premium_pa_hours=scn.finance.premium_pa_hours)
    home = run.exams[run.exams["route"] == "home"]
    assert ev.value("extra_exams") == consortium["reported_home"] == len(home)
    assert ev.value("extra_patients") == home["patient"].nunique()
    assert ev.value("cost_insourcing_tariff") == pytest.approx(consortium["cost_home"])
    assert ev.value("cost_outsourcing") == pytest.approx(home["counterfactual_cost"].sum())
    assert ev.value("extra_hours") == pytest.approx(consortium["home_reading_hours"])
    assert ev.value("wte_generated_premium_pa") == pytest.approx(consortium["wte_gained_home"])


def test_no_raw_identifier_in_any_written_file(simulated, tmp_path):
    scn, run = simulated
    exported = activity_log_from_run(run, scn)
    raw = set(exported["patient_id"]) | set(exported["exam_id"]) | set(exported["reporter_id"].dropna())
    evaluation = evaluate_activity(exported, key=KEY, read_options=codes_from_scenario(scn), suppress_below=5)
    out = evaluation.write(tmp_path / "evaluation")
    # a real-world-like log with NHS numbers and accession numbers, evaluated into the same kind of folder
    real = good_log(60)
    raw_real = set(real["patient_id"]) | set(real["exam_id"]) | set(real["reporter_id"]) - {""}
    out_real = evaluate_activity(real, key=KEY).write(tmp_path / "evaluation_real")
    for folder, identifiers in ((out, raw), (out_real, raw_real)):
        files = sorted(folder.iterdir())
        assert {f.name for f in files} >= {"summary.csv", "backlog.csv", "evaluation.json", "cohort.csv",
                                          "productivity_tests.csv", "evaluation.html", "parallel_trends.png"}
        for path in files:
            if path.suffix == ".png":  # the parallel-trends plot: pixels, no text
                continue
            text = path.read_text(encoding="utf-8")
            assert "SIM-" not in text, path.name
            leaked = [i for i in identifiers if i in text]
            assert not leaked, f"{path.name} holds raw identifiers {leaked[:3]}"
            assert KEY.decode() not in text
