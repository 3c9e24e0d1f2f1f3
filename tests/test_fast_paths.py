"""The statistics' fast paths compute exactly what the plain numpy expressions they replace compute."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sim.demand import generate_exams
from sim.finance import counterfactual_price, outsourcing_price, tariff, teleradiology_price
from sim.loading import load_scenario
from sim.metrics import on_days, price_kinds


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


def test_cell_sums_equal_masked_sums_exactly():
    """Verification of sim.cell_sums: packed counts and keyed weighted sums give the bit-identical
    results of one masked array and one bincount per metric (the code they replaced)."""
    from sim.cell_sums import FLAGS_PER_BYTE, CellSums

    rng = np.random.default_rng(3)
    n, n_groups = 50_000, 37
    group = rng.integers(0, n_groups, n)
    values = rng.lognormal(0.0, 2.0, n)
    values[rng.random(n) < 0.05] = np.nan  # NaN outside a condition must not leak into its sum
    code = rng.integers(0, 5, n).astype(np.int8)
    conditions = [rng.random(n) < p for p in np.linspace(0.01, 0.99, 2 * FLAGS_PER_BYTE + 3)]  # three flushes
    sums = CellSums(group, n_groups)
    for k, condition in enumerate(conditions):
        sums.count(f"flag_{k}", condition)
    finite = ~np.isnan(values)
    sums.add_where("kept", finite & conditions[0], values)
    sums.add_where("overwritten", finite & conditions[1], values.copy(), overwrite_values=True)
    sums.add_by_code({1: "code_1", 4: "code_4"}, code, 5, np.nan_to_num(values))
    sums.add("all", np.nan_to_num(values))
    got = sums.finish()
    for k, condition in enumerate(conditions):
        np.testing.assert_array_equal(got[f"flag_{k}"], np.bincount(group[condition], minlength=n_groups))
    for name, condition in (("kept", finite & conditions[0]), ("overwritten", finite & conditions[1])):
        np.testing.assert_array_equal(got[name], np.bincount(group, np.where(condition, values, 0.0), n_groups))
    for c in (1, 4):
        np.testing.assert_array_equal(got[f"code_{c}"],
                                      np.bincount(group, np.where(code == c, np.nan_to_num(values), 0.0), n_groups))
    np.testing.assert_array_equal(got["all"], np.bincount(group, np.nan_to_num(values), n_groups))


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
