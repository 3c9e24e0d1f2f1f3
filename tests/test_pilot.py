"""Validation: the model against the published figures of the first EMRAD pilot (facts §11).

One module-scoped reproduction (3 replications of the 13-week consortium, ~30-60 s) feeds every
check. Tolerances, and why:
* exams (calibrated): uptake was chosen to give ~1,160, so the published figure must lie within
  15% of the model mean: 3 replications have a sd of ~5% of the mean, so 15% is ~3 sd of a mean
  of 3 plus the calibration's own rounding (uptake to 2 decimals).
* tariff-to-outsourcing ratio (predicted): income / outsourcing cost was 23,753 / 33,504 = 0.709.
  Both model figures price the same simulated exams, so their ratio tests the price structure
  (regional tariff vs the ESTIMATE outsourcing list) independently of volume: within ±20%.
* WTE (predicted): 1 WTE published; the model's comes from placeholder reading minutes (facts §3
  ESTIMATE) and 40 h per WTE-week, so only the order of magnitude is checked: 0.4-1.6 WTE.
  (The model says ~0.6: published 1 WTE implies ~27 min per exam, slower than the CT/MR
  placeholders, or fewer reporting hours per WTE than 40.)
Known and reported, not asserted: the model's patients ≈ its exams (1.0 exams per patient vs
1.235 published), because home readers take exams one by one rather than a patient's set; and
absolute income and outsourcing cost are ~1.7-1.9x published because the modelled pilot reads
only CT/MR (the real one included cheaper x-rays).
"""

from __future__ import annotations

import pytest

from sim.pilot import FIGURES, reproduce_pilot

PUBLISHED_INCOME, PUBLISHED_OUTSOURCING = 23_753, 33_504


@pytest.fixture(scope="module")
def table():
    return reproduce_pilot(replications=3, seed=1, backend="processes").set_index("figure")


def _mean(table, metric):
    label = next(f.label for f in FIGURES if f.metric == metric)
    return table.at[label, "model_mean"]


def test_table_has_every_published_figure_with_a_basis(table):
    assert list(table.index) == [f.label for f in FIGURES]
    assert set(table["basis"]) == {"calibrated", "predicted"}
    assert table.loc[:, "n"].eq(3).all()


def test_calibrated_exam_count_matches_published(table):
    assert abs(_mean(table, "extra_exams") / 1160 - 1) < 0.15


def test_predicted_tariff_to_outsourcing_ratio(table):
    published = PUBLISHED_INCOME / PUBLISHED_OUTSOURCING
    model = _mean(table, "cost_insourcing_tariff") / _mean(table, "cost_outsourcing")
    assert abs(model / published - 1) < 0.20


def test_predicted_wte_order_of_magnitude(table):
    assert 0.4 <= _mean(table, "wte_generated") <= 1.6


def test_pilot_table_holds_no_identifiers(table, tmp_path):
    """Pseudonymisation: what `emrad-sim pilot` writes is aggregates only (no SIM- patient or exam ids)."""
    path = tmp_path / "pilot_table.csv"
    table.reset_index().to_csv(path, index=False)
    text = path.read_text()
    assert "SIM-" not in text and "RX1-consultants" not in text
