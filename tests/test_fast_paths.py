"""The statistics' fast paths compute exactly what the plain numpy expressions they replace compute."""

from __future__ import annotations

import numpy as np

from sim.demand import generate_exams
from sim.finance import counterfactual_price, outsourcing_price, tariff, teleradiology_price
from sim.loading import load_scenario
from sim.metrics import on_days, price_kinds


def test_day_lookup_is_isin_on_whole_days():
    rng = np.random.default_rng(0)
    days = [-3, 0, 1, 7, 40, 41, 364]
    hours = np.concatenate([rng.uniform(-200, 9000, 20_000), np.arange(-96, 9000, 24.0),  # midnights
                            np.arange(-96, 9000, 24.0) - 1e-9])  # just before them
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
