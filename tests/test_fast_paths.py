"""The statistics' fast paths compute exactly what the plain numpy expressions they replace compute
(verification tests: each compares a fast path with its definition, bit for bit)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sim.demand import generate_exams
from sim.finance import counterfactual_price, outsourcing_price, tariff, teleradiology_price
from sim.loading import load_scenario
from sim.metrics import on_days, price_kinds
from sim.worklist import ROUTE_CODE, ROUTES


def test_day_lookup_is_isin_on_whole_days():
    rng = np.random.default_rng(0)
    days = [-3, 0, 1, 7, 40, 41, 364]
    midnights = np.arange(-96, 9000, 24.0)
    hours = np.sort(np.concatenate([rng.uniform(-200, 9000, 20_000), midnights,
                                    midnights - 1e-9, np.nextafter(midnights, -np.inf)]))  # just before them
    assert np.array_equal(on_days(hours, days), np.isin(np.floor(hours / 24), days))
    assert not on_days(hours, []).any()


def test_prices_per_combination_equal_prices_per_exam():
    scn = load_scenario("params/emrad.toml").with_changes({"horizon_weeks": 1})
    ex = generate_exams(scn, 1, 0)
    kind, (m, b, u) = price_kinds(scn, ex)
    for per_combination, per_exam in [
        (outsourcing_price(scn, m, b, u), outsourcing_price(scn, ex.modality, ex.band, ex.urgency)),
        (teleradiology_price(scn, m, b, u), teleradiology_price(scn, ex.modality, ex.band, ex.urgency)),
        (counterfactual_price(scn, m, b, u), counterfactual_price(scn, ex.modality, ex.band, ex.urgency)),
        (tariff(scn, "commissioner_income", m, b), tariff(scn, "commissioner_income", ex.modality, ex.band)),
    ]:
        np.testing.assert_array_equal(per_combination[kind], per_exam)  # NaN where there is no price, on both sides
    night = teleradiology_price(scn, m, b, u)[kind]
    assert np.isnan(night).any() and np.isfinite(night).any()  # the comparison covered both covered and uncovered work


def _numpy_sums(raw, oc) -> dict[str, np.ndarray]:
    """Every per-cell sum of sim.exam_sums by its numpy definition: a mask and a bincount per metric, from
    the Outcome's per-exam arrays and elementwise time windows (what sim.metrics computed before the pass)."""
    scn, ex = raw.scenario, raw.exams
    n_m, n_u = len(scn.modalities), len(scn.urgencies)
    n_cells = len(scn.trusts) * n_m * n_u
    cell = (ex.trust.astype(np.int64) * n_m + ex.modality) * n_u + ex.urgency

    def total(mask, values=None):
        weights = mask.astype(float) if values is None else np.where(mask, values, 0.0)
        return np.bincount(cell, weights=weights, minlength=n_cells)

    horizon, arrival, route = scn.horizon_hours, ex.arrival, oc.route
    code = {name: route == ROUTE_CODE[name] for name in ("core", "home", "brokered", "outsourced", "teleradiology")}
    everything = np.ones(len(ex), dtype=bool)
    hours, cost, charge = oc.reading_hours, oc.cost, oc.charge
    counted = arrival >= scn.warmup_hours
    wait = raw.left_at - arrival
    tat = oc.reported_at - arrival
    target = np.array([u.target_hours for u in scn.urgencies])[ex.urgency]
    with np.errstate(invalid="ignore"):
        due = counted & (arrival + target <= horizon)
        due_28 = counted & (arrival + 28 * 24 <= horizon)
        hour = np.mod(arrival, 168)
        inside = (hour < 120) & (np.mod(hour, 24) >= 8) & (np.mod(hour, 24) < 18)
        if scn.demand.bank_holidays:
            inside &= ~np.isin(np.floor(arrival / 24), scn.bank_holiday_days)
        ooh = (arrival >= 0) & ~inside
        sent_out = oc.outsourced | oc.teleradiology
        counterfactual = oc.counterfactual
        matched = raw.route == ROUTE_CODE["home"]
        price = np.nan_to_num(oc.prices.outsourcing)[oc.kind]
        return {
            "initial_backlog": total(arrival < 0), "arrivals": total(arrival >= 0), "reported": total(oc.reported),
            "outsourced": total(oc.outsourced), "teleradiology": total(oc.teleradiology),
            **{f"reported_{name}": total(code[name]) for name in ("core", "home", "brokered")},
            "reading_hours": total(everything, hours), "home_reading_hours": total(code["home"], hours),
            "has_wait": total(counted & ~np.isnan(wait)), "wait_sum": total(counted & ~np.isnan(wait), wait),
            "due": total(due), "met": total(due & (tat <= target)), "due_28": total(due_28),
            "late_28": total(due_28 & ~(tat <= 28 * 24)), "reported_after_28d": total(counted & (tat > 28 * 24)),
            "has_tat": total(counted & ~np.isnan(tat)), "tat_sum": total(counted & ~np.isnan(tat), tat),
            "acquired_ooh": total(ooh), "ooh_sent_out": total(ooh & sent_out),
            **{f"cost_{name}": total(mask, cost) for name, mask in code.items()},
            "counterfactual_cost": total((route != ROUTE_CODE["unreported"]) & ~np.isnan(counterfactual),
                                         counterfactual),
            "commissioner_income": total(everything, oc.income), "inter_trust_paid": total(everything, charge),
            "posted": total(oc.posted), "posted_work_hours": total(oc.posted, ex.work_hours),
            "matched_work_hours": total(matched, ex.work_hours), "unmet_posted": total(oc.posted & ~matched),
            "unmet_work_hours": total(oc.posted & ~matched, ex.work_hours),
            "posted_outsourced": total(oc.posted & oc.outsourced),
            "outsourcing_avoided_home": total(code["home"], price),
            "outsourcing_avoided_brokered": total(code["brokered"], price),
        }


@pytest.mark.parametrize("path, weeks, seed", [
    ("params/emrad.toml", 3, 2),  # outsourcing, the night contract, episodes, a bank holiday in the horizon
    ("params/scenarios/brokered.toml", 3, 5),  # the market's posted work, home and brokered reads, charges
    ("params/regression/two_trusts_pooled.toml", 6, 1),
    ("params/pilot_nuh_neuro.toml", 13, 3),
])
def test_exam_sums_equal_the_numpy_definitions_exactly(path, weeks, seed):
    """Verification of sim.exam_sums (one compiled pass): every per-cell sum, the flows, the reporters'
    totals and the per-exam codes are bit-identical to a mask and a bincount per metric over the
    Outcome's numpy arrays (sim.metrics, sim.finance): same terms, added in exam order."""
    from sim import exam_sums
    from sim.metrics import outcome
    from sim.model import simulate

    scn = load_scenario(path)
    scn = scn.with_changes({"horizon_weeks": min(weeks, scn.horizon_weeks)})
    raw = simulate(scn, seed, 0)
    oc = outcome(raw)
    got = oc.sums
    expected = _numpy_sums(raw, oc)
    assert list(expected) == list(exam_sums.CELL_SUMS)
    for k, name in enumerate(exam_sums.CELL_SUMS):
        assert getattr(exam_sums, f"S_{name.upper()}") == k  # the compiled row constants follow the names
        np.testing.assert_array_equal(got.by_cell()[name], expected[name], err_msg=name)

    started = np.isin(raw.route, [ROUTE_CODE[r] for r in ("core", "home", "brokered")])
    reported = started & (raw.done_at <= scn.horizon_hours)
    np.testing.assert_array_equal(got.reported, reported)
    np.testing.assert_array_equal(got.route, np.where(started & ~reported, ROUTE_CODE["unreported"], raw.route))
    np.testing.assert_array_equal(got.outsourced, raw.route == ROUTE_CODE["outsourced"])
    np.testing.assert_array_equal(got.teleradiology, raw.route == ROUTE_CODE["teleradiology"])
    home_trust = np.array([r.home_trust for r in raw.reporters] + [-1])
    np.testing.assert_array_equal(got.reading_trust, home_trust[raw.reader])

    n_t, n_r = len(scn.trusts), len(ROUTES)
    flow = (raw.exams.trust.astype(np.int64) * (n_t + 1) + got.reading_trust + 1) * n_r + got.route
    in_house = np.isin(got.route, [ROUTE_CODE[r] for r in ("core", "home", "brokered")])
    size = n_t * (n_t + 1) * n_r
    hours, cost, charge = oc.reading_hours, oc.cost, oc.charge
    np.testing.assert_array_equal(got.flow_exams, np.bincount(flow[in_house], minlength=size))
    for got_sum, values in ((got.flow_hours, hours), (got.flow_cost, cost), (got.flow_charge, charge)):
        np.testing.assert_array_equal(got_sum, np.bincount(flow, np.where(in_house, values, 0.0), size))
    n = len(raw.reporters)
    np.testing.assert_array_equal(got.reporter_hours, np.bincount(raw.reader + 1, hours, n + 1)[1:])
    np.testing.assert_array_equal(got.reporter_reports, np.bincount(raw.reader[reported], minlength=n))
    np.testing.assert_array_equal(got.charge_received, np.bincount(np.maximum(got.reading_trust, 0), charge, n_t))
    # turnaround values grouped by cell: the stable sort by cell of the counted exams' turnaround
    counted = (raw.exams.arrival >= scn.warmup_hours) & oc.has_report
    cell = (raw.exams.trust.astype(np.int64) * len(scn.modalities) + raw.exams.modality) * len(scn.urgencies) \
        + raw.exams.urgency
    values, bounds = exam_sums.turnaround_by_cell(raw, got, int(np.argmax(raw.exams.arrival >= scn.warmup_hours)))
    order = np.argsort(cell[counted], kind="stable")
    np.testing.assert_array_equal(values, (oc.reported_at - raw.exams.arrival)[counted][order])
    np.testing.assert_array_equal(bounds, np.r_[0, np.cumsum(np.bincount(cell[counted], minlength=len(bounds) - 1))])
    # the comparison covered every route with exams, priced and unpriced work, and posted work where there is a market
    assert (got.by_cell()["arrivals"].sum() > 0) and np.isin(raw.route, [ROUTE_CODE["core"]]).any()
    if "brokered" in path:
        assert got.by_cell()["posted"].sum() > 0 and got.by_cell()["reported_brokered"].sum() > 0
        assert got.by_cell()["reported_home"].sum() > 0 and charge.sum() > 0
    if "emrad" in path:
        assert scn.demand.bank_holidays and any(0 <= d * 24 < scn.horizon_hours for d in scn.bank_holiday_days)
        assert got.by_cell()["teleradiology"].sum() > 0 and got.by_cell()["outsourced"].sum() > 0


def test_time_windows_by_bisection_equal_the_elementwise_test():
    from sim.metrics import _count_due

    rng = np.random.default_rng(5)
    arrival = np.sort(np.concatenate([rng.uniform(-100, 2000, 10_000), [1000.0 - 72, np.nextafter(1000.0 - 72, 0)]]))
    for window in (1.0, 72.0, 672.0, 0.1):
        assert _count_due(arrival, window, 1000.0) == np.count_nonzero(arrival + window <= 1000.0)


def test_backlog_series_counts_what_waits_at_each_grid_point():
    """The binned backlog equals the definition: acquired at or before t, not left the worklist by t
    (NaN: never left), per trust and grid point."""
    from sim.metrics import backlog_series
    from sim.model import simulate

    scn = load_scenario("params/emrad.toml").with_changes({"horizon_weeks": 2})
    raw = simulate(scn, 4, 0)
    table = backlog_series(raw)
    assert np.isnan(raw.left_at).any()  # the comparison covers exams still waiting at the end
    for ti, code in enumerate(scn.trust_codes):
        mine = raw.exams.trust == ti
        rows = table[table.trust == code]
        for t, waiting in zip(rows.time_h.to_numpy()[::17], rows.waiting.to_numpy()[::17]):
            left = raw.left_at[mine]
            expected = np.count_nonzero((raw.exams.arrival[mine] <= t) & ~(left <= t))
            assert waiting == expected, (code, t)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="transparent huge pages are a Linux setting")
def test_huge_page_setting_follows_the_kernel_and_the_user(monkeypatch, tmp_path):
    """sim.memory turns numpy's huge-page madvise off only where the kernel compacts on fault, and never
    when the user has chosen (NUMPY_MADVISE_HUGEPAGE)."""
    from sim import memory

    core = np._core.multiarray
    before = core._get_madvise_hugepage()
    defrag = tmp_path / "defrag"
    monkeypatch.setattr(memory, "THP_DEFRAG", defrag)
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    try:
        for setting, turned_off in (("always defer defer+madvise [madvise] never", True),
                                    ("always defer [defer+madvise] madvise never", True),
                                    ("always [defer] defer+madvise madvise never", False),
                                    ("[always] defer defer+madvise madvise never", False)):
            core._set_madvise_hugepage(True)
            defrag.write_text(setting)
            assert memory.avoid_huge_page_compaction() is turned_off
            assert core._get_madvise_hugepage() is not turned_off
        monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")
        core._set_madvise_hugepage(True)
        defrag.write_text("always defer defer+madvise [madvise] never")
        assert memory.avoid_huge_page_compaction() is False and core._get_madvise_hugepage()
        monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE")
        defrag.unlink()  # no THP on this kernel: nothing to do
        assert memory.avoid_huge_page_compaction() is False
    finally:
        core._set_madvise_hugepage(before)
