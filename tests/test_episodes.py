"""Patient episodes in demand and in the engine, and simulating a subset of trusts.

* Demand (verification, against the definitions in sim.demand): an episode's exams share patient,
  trust, modality, urgency and acquisition time; episode sizes follow the configured shares and the
  exam volume is the configured volume (within Poisson sampling error); the first exam's subspecialty
  is kept with the configured probability (plus the chance a fresh draw matches it); a stream of
  single-exam episodes draws exactly what it drew before episodes existed.
* Engine (verification of the rule "a reader who takes an exam takes its episode's other waiting
  exams it may read"): with readers who may read everything, every episode read in house is read by
  one reader, back to back.
* Subsets (verification): simulating only some trusts under local routing gives those trusts' exams
  and outcomes bit for bit as in the full run; a cross-trust lever makes the subset an error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.demand import generate_exams, mean_episode_size
from sim.loading import ScenarioError, load_scenario
from sim.model import simulate
from tests.scenarios import build, two_trust_data

SEED = 5
SHARES = [0.6, 0.3, 0.1]


def episode_data(weeks: float = 8, shares=SHARES, same: float = 0.7) -> dict:
    data = two_trust_data(weeks=weeks, t1_per_hour=2.0, t2_per_hour=1.0, t1_staff=3, t2_staff=2)
    for modality in data["modalities"]:
        modality["episode_size"] = {"default": list(shares)}
    data["demand"]["episode_same_subspecialty"] = same
    return data


def episodes_of(exams) -> pd.DataFrame:
    frame = pd.DataFrame({name: getattr(exams, name) for name in
                          ("patient", "trust", "modality", "urgency", "arrival", "subspecialty")})
    return frame[frame["arrival"] >= 0]  # arrivals (backlog blocks are cut to their counts)


def test_an_episodes_exams_share_patient_trust_modality_urgency_and_time():
    exams = generate_exams(build(episode_data()), SEED, 0)
    groups = episodes_of(exams).groupby("patient")
    assert groups.ngroups > 1000
    for column in ("trust", "modality", "urgency", "arrival"):
        assert (groups[column].nunique() == 1).all(), column
    # patients are distinct across episodes: no two acquisition times share a patient id
    assert groups["arrival"].nunique().max() == 1


def test_an_episode_in_the_exam_table_is_a_run_of_one_patient_at_one_time_backlog_included():
    """UNIT: the worklists number an episode as a run of one patient in exam order, and the engine finds a
    sibling by its acquisition time (Engine._take_episode): so every such run shares one time, backlog too."""
    scn = load_scenario("params/emrad.toml").with_changes({"horizon_weeks": 2})
    exams = generate_exams(scn, SEED, 0)
    same_patient = exams.patient[1:] == exams.patient[:-1]
    assert np.count_nonzero(same_patient & (exams.arrival[1:] < 0)) > 100  # backlog episodes are in the check
    np.testing.assert_array_equal(exams.arrival[1:][same_patient], exams.arrival[:-1][same_patient])


def test_episode_sizes_and_exam_volume_follow_the_shares():
    scn = build(episode_data(weeks=26))
    exams = generate_exams(scn, SEED, 0)
    arrivals = episodes_of(exams)
    sizes = arrivals.groupby("patient").size()
    observed = np.bincount(sizes, minlength=len(SHARES) + 1)[1:] / len(sizes)
    se = np.sqrt(np.array(SHARES) * (1 - np.array(SHARES)) / len(sizes))
    assert np.all(np.abs(observed - SHARES) < 4 * se), (observed, SHARES)
    # the volume is in exams: the same expected count as without episodes (Poisson episodes x sizes: the
    # variance of a compound Poisson count is rate x E[size^2])
    single = generate_exams(build(episode_data(weeks=26, shares=[1.0])), SEED, 0)
    expected = float(np.count_nonzero(single.arrival >= 0))
    n_episodes = expected / mean_episode_size(tuple(SHARES))
    sd = np.sqrt(n_episodes * np.dot(np.arange(1, 4) ** 2, SHARES))
    assert abs(len(arrivals) - expected) < 4 * sd * np.sqrt(2)  # both counts are random


def test_later_exams_keep_the_first_exams_subspecialty_with_the_configured_chance():
    same = 0.7
    scn = build(episode_data(weeks=26, same=same))
    arrivals = episodes_of(generate_exams(scn, SEED, 0)).reset_index(drop=True)
    first = arrivals.groupby("patient")["subspecialty"].transform("first")
    later = arrivals.groupby("patient").cumcount() > 0
    matches = (arrivals["subspecialty"][later] == first[later]).to_numpy()
    # the only modality's mix (two_trust_data): a fresh draw matches the first with probability sum(mix^2)
    (modality,) = scn.modalities
    p_match = same + (1 - same) * sum(v ** 2 for v in modality.subspecialty_mix.values())
    assert len(matches) > 2000
    assert abs(matches.mean() - p_match) < 4 * np.sqrt(p_match * (1 - p_match) / len(matches))


def test_single_exam_episodes_draw_what_the_model_drew_before_episodes():
    """Regression of the streams: a modality without episode sizes and one with [1.0] give the same exams,
    and arrivals, bands, subspecialties and reading times do not depend on the episode streams."""
    plain = generate_exams(build(episode_data(shares=[1.0])), SEED, 0)
    data = episode_data()
    for modality in data["modalities"]:
        modality.pop("episode_size")
    none = generate_exams(build(data), SEED, 0)
    for name in ("arrival", "trust", "modality", "urgency", "band", "subspecialty", "work_hours", "patient"):
        assert np.array_equal(getattr(plain, name), getattr(none, name)), name


def test_a_reader_takes_the_episodes_waiting_exams_together():
    """With one staff group that may read every exam of its trust, an episode read in house is read by one
    reader, each exam starting when the one before it ends."""
    data = episode_data(weeks=4, same=0.5)
    for group in data["staff"]:
        group["modalities"], group["max_band"] = ["XR"], 2
        group["subspecialties"] = list(data["subspecialties"])
    raw = simulate(build(data, outsourcing=None), SEED, 0)
    frame = pd.DataFrame({"patient": raw.exams.patient, "reader": raw.reader, "left": raw.left_at,
                          "done": raw.done_at})
    read = frame[frame["reader"] >= 0]
    whole = read.groupby("patient").filter(lambda g: len(g) > 1)
    assert whole["patient"].nunique() > 200
    assert (whole.groupby("patient")["reader"].nunique() == 1).all()
    for _, episode in whole.groupby("patient"):
        ordered = episode.sort_values("left")
        assert np.allclose(ordered["left"].to_numpy()[1:], ordered["done"].to_numpy()[:-1], rtol=0, atol=1e-9)
    # fewer events than exams read: one per episode taken, not one per exam
    assert raw.events < len(read)


def subset_data() -> dict:
    data = episode_data(weeks=3)
    data["home_reporting"] = {"enabled": True, "participants": [data["staff"][0]["name"]], "uptake_probability": 0.5,
                              "sessions": [{"days": ["Mon", "Tue", "Wed"], "start": "18:00", "end": "21:00"}],
                              "download_minutes": {"XR": 0.5}}
    data["finance"] = {"insourcing_tariff": {"XR": [3.0, 5.5]}}
    return data


def test_a_subset_of_trusts_runs_bit_identical_to_the_same_trusts_in_the_full_run():
    full = simulate(build(subset_data()), SEED, 1)
    alone = simulate(build(subset_data(), simulate_trusts=["T1"]), SEED, 1)
    t1 = full.scenario.trust_codes.index("T1")
    assert np.all(alone.exams.trust == t1) and len(alone.exams) > 500
    mine = full.exams.trust == t1
    for name in ("arrival", "modality", "urgency", "band", "subspecialty", "work_hours", "patient"):
        assert np.array_equal(getattr(full.exams, name)[mine], getattr(alone.exams, name)), name
    ids_full = np.array([r.reporter_id for r in full.reporters] + [""])
    ids_alone = np.array([r.reporter_id for r in alone.reporters] + [""])
    assert np.array_equal(ids_full[full.reader[mine]], ids_alone[alone.reader])
    for name in ("left_at", "done_at", "route"):
        assert np.array_equal(getattr(full, name)[mine], getattr(alone, name), equal_nan=name != "route"), name
    assert np.count_nonzero(alone.route == 3) > 0  # the home route is part of what is compared


@pytest.mark.parametrize("change, field", [
    ({"policy": {"kind": "pooled"}}, "simulate_trusts"),
    ({"simulate_trusts": ["T1", "T9"]}, "simulate_trusts"),
], ids=["pooled", "unknown_trust"])
def test_a_subset_with_a_cross_trust_lever_is_an_error(change, field):
    data = subset_data() | {"simulate_trusts": ["T1"]} | change
    data.setdefault("finance", {})["inter_trust_charge"] = {"XR": [1.0, 1.0]}
    with pytest.raises(ScenarioError) as info:
        build(data)
    assert any(path == field for path, _ in info.value.problems), info.value.problems


@pytest.mark.parametrize("change, field", [
    ({"modalities.0.episode_size": {"default": [0.5, 0.6]}}, "modalities.0.episode_size"),
    ({"modalities.0.episode_size": {"XX": [1.0]}}, "modalities.0.episode_size.XX"),
    ({"modalities.0.episode_size": {"default": [0.05] * 20 + [0.0]}}, "modalities.0.episode_size"),
    ({"home_reporting.worklists": [{"modalities": ["XR"], "share": 0.5}]}, "home_reporting.worklists"),
    ({"home_reporting.worklists": [{"modalities": ["MR"], "share": 1.0}]}, "home_reporting.worklists.0.modalities"),
    ({"home_reporting.download_minutes": {"MR": 3.0}}, "home_reporting.download_minutes.MR"),
    ({"home_reporting.credentials": {"modalities": ["XR"], "max_band": 1, "subspecialties": ["cardiac"]}},
     "home_reporting.credentials.subspecialties"),
], ids=["shares_sum", "unknown_urgency", "too_many_exams", "worklist_shares_sum", "worklist_modality",
        "download_modality", "credentials_subspecialty"])
def test_bad_episode_and_home_session_settings_name_the_field(change, field):
    """Bad input: each problem names its field."""
    scn = build(subset_data())
    with pytest.raises(ScenarioError) as info:
        scn.with_changes(change)
    assert any(path.startswith(field) for path, _ in info.value.problems), info.value.problems


def test_brokered_readers_take_episodes_too():
    """Verification: the broker adds queues to borrowed groups while the run goes on; readers still take an
    episode's exams from the group that holds them, and every exam is read at most once (conservation)."""
    from sim.loading import load_scenario

    scn = load_scenario("params/scenarios/brokered.toml").with_changes({"horizon_weeks": 1})
    raw = simulate(scn, SEED, 0)
    read = raw.reader >= 0
    assert read.sum() > 10_000
    frame = pd.DataFrame({"patient": raw.exams.patient[read], "reader": raw.reader[read]})
    together = frame.groupby("patient")["reader"].agg(["size", "nunique"])
    multi = together[together["size"] > 1]
    # most episodes go to one reader; the rest are split where readers' rights differ (reporting radiographers
    # read x-ray bands 1-2 only, subspecialists their own work), or (the broker's wakeable path) where another
    # idle reader committed to a later exam of the episode before it arrived (~12% here, ~7% under local routing)
    assert len(multi) > 1000 and (multi["nunique"] == 1).mean() > 0.8
    assert np.all(np.isnan(raw.left_at) == (raw.route == 0))
