"""The statistics' fast paths compute exactly what the plain numpy expressions they replace compute
(verification tests: each compares a fast path with its definition, bit for bit)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from sim.demand import generate_exams
from sim.finance import counterfactual_price, outsourcing_price, tariff, teleradiology_price
from sim.loading import load_scenario
from sim.metrics import day_ranges, price_kinds
from sim.worklist import ROUTE_CODE, ROUTES


def test_day_lookup_is_isin_on_whole_days():
    """The bank-holiday index ranges (sim.metrics.day_ranges) cover exactly the times np.isin puts on those days."""
    def on_days(hours, days):
        out = np.zeros(hours.shape, dtype=bool)
        for first, stop in day_ranges(hours, days):
            out[first:stop] = True
        return out

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
    for name in exam_sums.CELL_SUMS:
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


# --- sim.timeline_kernels: the backlog series and the session split against the numpy code they replaced ---


def _backlog_series_numpy(raw):
    """sim.metrics.backlog_series before sim.timeline_kernels (a sort per trust and searchsorted), kept as
    the definition the compiled pass must reproduce exactly."""
    import pandas as pd

    scn = raw.scenario
    step = scn.backlog_interval_hours
    grid = np.arange(0.0, scn.horizon_hours + step / 2, step)
    rows = []
    trust = raw.exams.trust
    by_trust = np.argsort(trust.astype(np.int16) if len(scn.trusts) < 2**15 else trust, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(trust, minlength=len(scn.trusts)))]
    for ti, code in enumerate(scn.trust_codes):
        mine = by_trust[bounds[ti]:bounds[ti + 1]]
        acquired = raw.exams.arrival[mine]
        left = np.sort(np.where(np.isnan(raw.left_at[mine]), np.inf, raw.left_at[mine]))
        waiting = np.searchsorted(acquired, grid, side="right") - np.searchsorted(left, grid, side="right")
        rows.append(pd.DataFrame({"time_h": grid, "trust": code, "waiting": waiting}))
    return pd.concat(rows, ignore_index=True)


def _session_split_numpy(raw):
    """sim.metrics.session_split before sim.timeline_kernels (a sort by reader, then per reporter a
    searchsorted and two pairwise np.sum), kept as the definition the compiled pass must reproduce exactly."""
    from sim.worklist import ROUTE_CODE

    n = len(raw.reporters)
    inside, overtime = np.zeros(n), np.zeros(n)
    horizon = raw.scenario.horizon_hours
    core_like = np.flatnonzero(((raw.route == ROUTE_CODE["core"]) | (raw.route == ROUTE_CODE["brokered"]))
                               & (raw.reader >= 0)).astype(np.int32)
    readers = raw.reader[core_like]
    order = core_like[np.argsort(readers.astype(np.int16) if n < 2**15 else readers, kind="stable")]
    bounds = np.r_[0, np.cumsum(np.bincount(readers, minlength=n))]
    for i, reporter in enumerate(raw.reporters):
        lo, hi = bounds[i], bounds[i + 1]
        if lo == hi or not reporter.intervals:
            continue
        spans = np.asarray(reporter.intervals)
        rows = order[lo:hi]
        start, end = raw.left_at[rows], np.minimum(raw.done_at[rows], horizon)
        session_end = spans[np.maximum(np.searchsorted(spans[:, 0], start, side="right") - 1, 0), 1]
        inside[i] = np.sum(np.minimum(end, session_end) - start)
        overtime[i] = np.sum(np.maximum(end - session_end, 0.0))
    return inside, overtime


def _assert_same_bits(got, expected):
    """Bit for bit: NaN where NaN, and a -0.0 is not a 0.0."""
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()


def _assert_timelines_equal_numpy(raw):
    import pandas as pd

    from sim.metrics import backlog_series, session_split

    pd.testing.assert_frame_equal(backlog_series(raw), _backlog_series_numpy(raw), check_exact=True)
    for got, expected in zip(session_split(raw), _session_split_numpy(raw), strict=True):
        _assert_same_bits(got, expected)


REGRESSION = Path(__file__).resolve().parents[1] / "params" / "regression"
REGRESSION_SCENARIOS = sorted(REGRESSION.glob("*.toml"))


@pytest.mark.parametrize("path", REGRESSION_SCENARIOS, ids=lambda p: p.stem)
def test_timeline_kernels_equal_numpy_on_the_regression_scenarios(path):
    """Verification of sim.timeline_kernels: on every regression scenario and a few seeds, the backlog
    series and the session split are bit-identical to the numpy code they replaced."""
    from sim.model import Engine

    scn = load_scenario(path)
    for seed in (1, 2, 7):
        _assert_timelines_equal_numpy(Engine(scn, seed, 0).run())


@pytest.fixture(scope="module")
def two_trusts_raw():
    from sim.model import Engine

    return Engine(load_scenario(REGRESSION / "two_trusts_brokered.toml"), 5, 0).run()


def test_session_split_kernel_equals_numpy_on_edge_cases(two_trusts_raw):
    """Verification of sim.timeline_kernels.session_terms on cases no fixture has: a reader without
    intervals, a reporter without reads, reads before its first interval, starting exactly on an
    interval's start or end, after its last, straddling the horizon, readers -1 on a core route, and
    NaN start or finish times (np.minimum/np.maximum propagate NaN)."""
    from dataclasses import replace

    from sim.worklist import ROUTE_CODE

    raw = two_trusts_raw
    core_like = np.isin(raw.route, [ROUTE_CODE["core"], ROUTE_CODE["brokered"]]) & (raw.reader >= 0)
    assert (raw.route[core_like] == ROUTE_CODE["brokered"]).any()  # the comparison covers brokered reads
    readers = np.unique(raw.reader[core_like])
    assert len(readers) >= 4
    horizon = raw.scenario.horizon_hours
    rng = np.random.default_rng(11)
    left_at, done_at, reader = raw.left_at.copy(), raw.done_at.copy(), raw.reader.copy()
    reporters = list(raw.reporters)
    reporters[readers[0]] = replace(reporters[readers[0]], intervals=())  # reads, no intervals
    reporters.append(replace(reporters[readers[1]], reporter_id="no reads"))  # intervals, no reads
    reporters.append(replace(reporters[readers[1]], reporter_id="nothing", intervals=()))
    for r in readers[1:3]:
        rows = np.flatnonzero(core_like & (reader == r))
        spans = np.asarray(reporters[r].intervals)
        picks = rng.choice(rows, 8, replace=False)
        left_at[picks[0]] = spans[0, 0] - 3.0  # before the first interval
        left_at[picks[1]] = spans[len(spans) // 2, 0]  # on an interval's start (searchsorted side='right')
        left_at[picks[2]] = spans[len(spans) // 2, 1]  # on an interval's end
        left_at[picks[3]] = spans[-1, 1] + 2.0  # after the last
        left_at[picks[4]], done_at[picks[4]] = horizon - 0.5, horizon + 4.0  # straddles the horizon
        done_at[picks[5]] = np.nextafter(spans[len(spans) // 3, 1], np.inf)  # a hair past a session's end
    nan_reader = readers[3]
    rows = np.flatnonzero(core_like & (reader == nan_reader))
    left_at[rows[0]] = np.nan
    done_at[rows[-1]] = np.nan
    reader[np.flatnonzero(raw.route == ROUTE_CODE["core"])[:50]] = -1  # core route, no reader
    edited = replace(raw, left_at=left_at, done_at=done_at, reader=reader, reporters=reporters)
    inside, overtime = _session_split_numpy(edited)
    assert np.isnan(inside[nan_reader]) and np.isnan(overtime[nan_reader])  # the NaN reached the sums
    assert inside[readers[0]] == 0.0 and inside[-1] == inside[-2] == 0.0
    _assert_timelines_equal_numpy(edited)


def test_backlog_kernel_equals_numpy_on_edge_cases(two_trusts_raw):
    """Verification of sim.timeline_kernels.backlog_counts on cases no fixture has: an empty trust, -inf
    arrivals, times exactly on grid points and a hair either side (searchsorted side='right'), leaving
    before the start, beyond the last grid point or never (NaN, all NaN), and float grids from
    np.arange whose points are not k * step."""
    from dataclasses import replace

    raw = two_trusts_raw
    scn = raw.scenario
    rng = np.random.default_rng(12)
    n = len(raw.exams)
    for step in (6.0, 0.1, 1 / 3, 0.7):
        grid = np.arange(0.0, scn.horizon_hours + step / 2, step)
        on_grid = rng.choice(grid, n // 4)
        times = np.concatenate([on_grid, np.nextafter(on_grid, -np.inf), np.nextafter(on_grid, np.inf),
                                np.arange(len(grid)) / (1 / step)])  # k / (1/step): often a bit off k * step
        arrival = np.sort(np.concatenate([[-np.inf, -np.inf], raw.exams.arrival[2:n // 2],
                                          rng.choice(times, n - n // 2)]))
        left_at = rng.choice(np.concatenate([times, [np.nan, np.inf, -np.inf, -5.0, scn.horizon_hours + 1.0,
                                                     grid[-1] + step / 2]]), n)
        trust = raw.exams.trust.copy()
        trust[trust == 1] = 0  # trust 1 has no exams
        exams = replace(raw.exams, arrival=arrival, trust=trust)
        for left in (left_at, np.full(n, np.nan)):
            edited = replace(raw, scenario=scn.with_changes({"backlog_interval_hours": step}), exams=exams,
                             left_at=left)
            table = _backlog_series_numpy(edited)
            assert (table.waiting[table.trust == scn.trust_codes[1]] == 0).all()
            _assert_timelines_equal_numpy(edited)


def test_grid_index_is_searchsorted():
    """Unit: the arithmetic grid index, corrected against the grid, is np.searchsorted(side='left')
    for any value, on grids from np.arange with steps that are not exact in binary."""
    from sim._loops import grid_index as _first_at_or_above

    rng = np.random.default_rng(13)
    for stop, step in ((100.0, 1.0), (336.0, 0.1), (50.0, 1 / 3), (1000.0, 0.7), (0.0, 1.0), (5.0, 24.0)):
        grid = np.arange(0.0, stop + step / 2, step)
        values = np.concatenate([grid, np.nextafter(grid, -np.inf), np.nextafter(grid, np.inf),
                                 np.arange(len(grid) + 2) / (1 / step), rng.uniform(-10, stop + 10, 2000),
                                 [-np.inf, np.inf, np.nan, -0.0, 1e300, -1e300, 5e-324]])
        expected = np.searchsorted(grid, values, side="left")
        got = np.array([_first_at_or_above(grid, v) for v in values])
        np.testing.assert_array_equal(got, expected)


def test_interval_lookup_is_searchsorted_from_any_guess():
    """Unit: the interval of a read, from any starting guess, is max(searchsorted(side='right') - 1, 0),
    NaN sorting above every number."""
    from sim._loops import interval_index as _interval_of

    rng = np.random.default_rng(14)
    starts = np.concatenate([[7.0], np.cumsum(rng.uniform(0.5, 30.0, 40)) + 7.0])
    values = np.concatenate([starts, np.nextafter(starts, -np.inf), np.nextafter(starts, np.inf),
                             rng.uniform(0.0, starts[-1] + 20.0, 200), [-np.inf, np.inf, np.nan, 0.0]])
    lo, hi = 3, 31  # one reporter's intervals within the flattened array
    for value in values:
        expected = max(np.searchsorted(starts[lo:hi], value, side="right") - 1, 0) + lo
        for guess in range(lo, hi):
            assert _interval_of(starts, lo, hi, value, guess) == expected, (value, guess)


def test_scalar_min_max_are_numpys():
    """Unit: the compiled scalar minimum and maximum give np.minimum's and np.maximum's bits: NaN from
    either side (Python's min and max keep a NaN only in first place), and numpy's pick between 0.0 and -0.0."""
    from sim._loops import scalar_maximum as _maximum, scalar_minimum as _minimum

    special = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 5e-324, 8736.0]
    a, b = (np.array(pair) for pair in zip(*[(x, y) for x in special for y in special]))
    for compiled_op, numpy_op in ((_minimum, np.minimum), (_maximum, np.maximum)):
        got = np.array([compiled_op(x, y) for x, y in zip(a, b)])
        _assert_same_bits(got, numpy_op(a, b))


def test_compiled_loops_use_the_python_names_and_codes():
    """Unit: the compiled loop's route codes, sum rows and hours are sim.worklist's and sim.exam_sums's."""
    from sim import _loops, exam_sums

    assert _loops.route_codes() == {name: code for name, code in ROUTE_CODE.items()}
    assert _loops.sum_rows() == {name: k for k, name in enumerate(exam_sums.CELL_SUMS)}
    assert _loops.time_constants() == {"hours_28_days": exam_sums.HOURS_28_DAYS, "weekday_hours": exam_sums.WEEKDAY_HOURS,
                                       "core_hours": exam_sums.CORE_HOURS, "hours_per_week": 168.0}


def test_worklist_positions_are_the_stable_sort_by_queue():
    """Verification of sim.worklist's compiled placement: each exam's position is that of the stable
    argsort by queue key with one sentinel after each queue (the code it replaced), and the episode
    ordinals and flags are the runs of one patient in exam order."""
    from sim.demand import generate_exams
    from sim.model import Engine

    scn = load_scenario("params/emrad.toml").with_changes({"horizon_weeks": 2})
    engine = Engine(scn, 3, 0, exams=generate_exams(scn, 3, 0))
    wl, ex = engine.worklists, engine.exams
    assert wl.episode is not None  # the comparison covers episodes of several exams
    # segments: each queue, then the exams a policy routed before the run (parked, after every queue)
    starts = np.r_[wl.q_start, wl.q_end[-1] + 1]
    assert starts[-1] < len(wl.times)  # the night contract parks some: the comparison covers the parked segment
    queue = np.searchsorted(starts, wl.position_of_exam, side="right") - 1
    queued = queue < wl.n_queues
    np.testing.assert_array_equal(np.asarray(wl.q_trust)[queue[queued]], ex.trust[queued])  # each in its own queue
    np.testing.assert_array_equal(np.asarray(wl.q_urgency)[queue[queued]], ex.urgency[queued])
    order = np.argsort(queue, kind="stable")
    expected = np.empty(len(ex), dtype=np.int64)
    expected[order] = np.arange(len(ex)) + queue[order]  # i-th exam in queue order stands at i + its queue
    np.testing.assert_array_equal(wl.position_of_exam, expected)
    np.testing.assert_array_equal(np.frombuffer(wl.times)[wl.position_of_exam], ex.arrival)
    np.testing.assert_array_equal(np.frombuffer(wl.work)[wl.position_of_exam], ex.work_hours)
    new_run = np.r_[True, ex.patient[1:] != ex.patient[:-1]]
    np.testing.assert_array_equal(np.frombuffer(wl.episode, dtype=np.int32)[wl.position_of_exam], np.cumsum(new_run) - 1)
    same_as_next = ex.patient[1:] == ex.patient[:-1]
    in_episode = np.r_[False, same_as_next] | np.r_[same_as_next, False]
    np.testing.assert_array_equal(np.frombuffer(wl.in_episode, dtype=np.uint8)[wl.position_of_exam], in_episode)
    sentinels = np.asarray(wl.q_end)
    assert np.isinf(np.frombuffer(wl.times)[sentinels]).all()
    assert (np.frombuffer(wl.episode, dtype=np.int32)[sentinels] == -1).all()


def test_waiting_count_is_the_exams_acquired_by_then_behind_the_pointer():
    """Verification of Worklists.waiting (a bisection of the queue's acquisition times, which the threshold
    outsourcing and the offered sessions call thousands of times a year): the count of the queue's exams
    from its pointer on acquired at or before the time asked, by its numpy definition, with the pointer
    anywhere in the queue (an empty queue's too) and times equal to an acquisition time, between two, and
    beyond either end."""
    from sim.demand import generate_exams
    from sim.model import Engine

    scn = load_scenario("params/emrad.toml").with_changes({"horizon_weeks": 1})
    wl = Engine(scn, 5, 0, exams=generate_exams(scn, 5, 0)).worklists
    times = np.frombuffer(wl.times)
    rng = np.random.default_rng(5)
    checked = 0
    for q in range(wl.n_queues):
        start, end = wl.q_start[q], wl.q_end[q]
        acquired = times[start:end]
        asked = np.r_[acquired[::7], np.nextafter(acquired[::11], np.inf), np.nextafter(acquired[::13], -np.inf),
                      -1e9, 1e9, rng.uniform(-24, scn.horizon_weeks * 168 + 24, 5)]
        for ptr in {start, end, *rng.integers(start, end + 1, 3).tolist()}:
            wl.ptr[q] = ptr
            for now in asked.tolist():
                assert wl.waiting(q, now) == int(np.count_nonzero(times[ptr:end] <= now)), (q, ptr, now)
                checked += 1
        wl.ptr[q] = start
    assert checked > 10_000


def test_reusable_timer_schedules_exactly_as_a_timeout():
    """sim.timer.Timer, re-armed for each wait, gives the event-for-event run of a Timeout per wait: the
    same clock at every resumption, the same interleaving of processes at equal times (SimPy breaks
    ties by event id, which both take in the same order) and the same number of events; a negative
    delay is refused as Timeout refuses it."""
    import simpy

    from sim.timer import Timer

    def trace(use_timer) -> tuple[list, int]:  # use_timer(name): whether that process re-arms a Timer
        env = simpy.Environment()
        log = []
        rng = np.random.default_rng(11)
        delays = [np.round(rng.exponential(1.0, 400), 1).tolist() for _ in range(5)]  # rounded: many ties

        def walker(name, waits):
            timer = Timer(env)
            for delay in waits:
                yield timer.after(delay) if use_timer(name) else env.timeout(delay)
                log.append((env.now, name))

        for name, waits in enumerate(delays):
            env.process(walker(name, waits))
        env.run()
        return log, next(env._eid)

    without = trace(lambda name: False)
    with_timer = trace(lambda name: True)
    assert with_timer == without
    assert trace(lambda name: name % 2 == 0) == without  # a Timer and a Timeout due together: same order
    log = with_timer[0]
    assert len({t for t, _ in log}) < len(log)  # ties happened, and were broken alike
    with pytest.raises(ValueError):
        Timer(simpy.Environment()).after(-1.0)


def test_calendar_holds_far_waits_without_changing_the_run():
    """Verification: waits held in sim.timer.Calendar until they come near are popped by SimPy in the order,
    and at the clock, of the same waits scheduled at once, also where a held wait and one scheduled
    directly long before fall due together on a page time; the only extra events are the pager's, one
    per window; a negative delay is refused."""
    import simpy

    from sim.timer import Calendar, Timer

    def trace(held: bool | None) -> tuple[list, int, int, int]:  # held None: no calendar at all
        env = simpy.Environment()
        calendar = Calendar(env, window=1.0) if held is not None else None
        log, most_held = [], [0]
        rng = np.random.default_rng(3)
        # short reads and long off-duty waits in quarter hours (exact in binary): many fall due together, on
        # page times too, some scheduled directly and some held
        waits = [(np.round(4 * np.where(rng.random(300) < 0.2, rng.exponential(20.0, 300),
                                        rng.exponential(0.6, 300))) / 4).tolist() for _ in range(8)]

        def walker(name, delays):
            timer = Timer(env)
            for delay in delays:  # odd processes schedule directly, as the engine's reads do
                yield calendar.after(timer, delay) if held and name % 2 == 0 else timer.after(delay)
                log.append((env.now, name))
                most_held[0] = max(most_held[0], len(calendar.entries) if calendar else 0)

        for name, delays in enumerate(waits):
            env.process(walker(name, delays))
        env.run(until=2_000.0)
        return log, next(env._eid), most_held[0], calendar.pages if calendar else 0

    plain, events_plain, _, _ = trace(held=None)
    held, events_held, most_held, _ = trace(held=True)
    assert held == plain
    assert trace(held=False)[0] == plain  # the pager alone changes nothing either
    assert most_held > 0  # waits were held, not scheduled at once
    assert events_held - events_plain == 2_000  # one page an hour (the run ends at 2,000 h), all counted
    assert trace(held=True)[3] == 2_000
    assert len({t for t, _ in held}) < len(held)  # ties happened, and were broken alike
    with pytest.raises(ValueError):
        Calendar(simpy.Environment()).after(Timer(simpy.Environment()), -1.0)


def test_engine_run_is_the_same_with_waits_scheduled_at_once():
    """Verification: a replication whose reporters' far waits go through the calendar equals, array for
    array, the one whose waits all go straight into SimPy's heap (a pass-through calendar)."""
    from sim.model import Engine
    from sim.timer import Calendar

    scn = load_scenario("params/scenarios/brokered_home.toml").with_changes({"horizon_weeks": 3})
    with_calendar = Engine(scn, 7, 0).run()
    original = Calendar.after
    try:
        Calendar.after = lambda self, timer, delay: timer.after(delay)
        without = Engine(scn, 7, 0).run()
    finally:
        Calendar.after = original
    for name in ("left_at", "done_at", "reader", "route"):
        np.testing.assert_array_equal(getattr(with_calendar, name), getattr(without, name))
    assert np.isfinite(with_calendar.done_at).sum() > 10_000


def test_commitment_nothing_can_interrupt_costs_one_event_and_changes_nothing():
    """Verification: under the broker, a reader who commits to an arrival before the next rebalancing (and with
    no episode to take on arrival) waits for the end of its read in one event instead of two (a wakeable wait,
    then the read); nothing else changes, array for array, against readers who always wait wakeably."""
    from sim.model import Engine

    class AlwaysWakeable(Engine):
        @property
        def next_wake_at(self) -> float:
            return -np.inf

        @next_wake_at.setter
        def next_wake_at(self, _value: float) -> None:
            pass

    scn = load_scenario("params/scenarios/brokered.toml").with_changes({"horizon_weeks": 3})
    fewer_events = Engine(scn, 5, 0).run()
    always_wakeable = AlwaysWakeable(scn, 5, 0).run()
    for name in ("left_at", "done_at", "reader", "route"):
        np.testing.assert_array_equal(getattr(fewer_events, name), getattr(always_wakeable, name))
    assert fewer_events.records == always_wakeable.records
    assert (fewer_events.route == ROUTE_CODE["brokered"]).sum() > 1_000  # the broker moved work
    assert always_wakeable.events - fewer_events.events > 0.01 * always_wakeable.events


@pytest.mark.parametrize("path", ["params/scenarios/brokered.toml", "params/scenarios/brokered_home.toml"])
def test_queue_heads_follow_the_pointers_through_a_run(path):
    """Verification of Worklists.head, the hot loop's copy of each queue's head acquisition time: every hour of
    a run with the broker (picks, episodes, released commitments), extra sessions, the night contract and
    threshold outsourcing (exams sent out), it equals times[ptr[q]] for every queue."""
    from sim.model import Engine

    scn = load_scenario(path).with_changes({"horizon_weeks": 3})
    engine = Engine(scn, 11, 0)
    wl = engine.worklists
    times = np.frombuffer(wl.times)
    checks = []

    def check_every_hour():
        while True:
            heads = np.array(wl.head)
            np.testing.assert_array_equal(heads, times[wl.ptr], err_msg=f"at hour {engine.env.now}")
            checks.append(np.count_nonzero(np.isfinite(heads)))
            yield engine.env.timeout(1.0)

    engine.env.process(check_every_hour())
    raw = engine.run()
    assert len(checks) == scn.horizon_weeks * 168 and min(checks) > 0  # queues held work throughout
    routes = set(np.unique(raw.route).tolist())
    assert {ROUTE_CODE[r] for r in ("core", "brokered", "home", "outsourced", "teleradiology")} <= routes
