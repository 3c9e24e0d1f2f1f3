"""UNIT tests of the tariff study (issue 10): the market at each tariff against the market off.

The study is a set of paired comparisons; these tests check that its table is the comparison's own
figures (recomputed here from the replications), that the break-even multiplier is where the net
saving crosses zero, and that the CLI writes its files and refuses a scenario without a market.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tomli_w

from sim.cli import main
from sim.metrics import ALL
from sim.tariff_study import BASELINE, break_even_multiplier, label, run_tariff_study
from tests.scenarios import build
from tests.test_market import market_data

MULTIPLIERS = [1.0, 5.0, 8.0, 10.0]


@pytest.fixture(scope="module")
def study():
    scn = build(market_data(uptake_curve=[[1.0, 0.4], [10.0, 1.0]]))
    with pytest.warns(UserWarning, match="posts no XR work"):  # x10 prices everything out (the loader says so)
        return run_tariff_study(scn, MULTIPLIERS, replications=3, seed=2, backend="serial", progress=False)


def _consortium(study, name: str) -> pd.DataFrame:
    tidy = study.comparison.experiments[name].replications
    return tidy[(tidy.trust == ALL) & (tidy.modality == ALL)].pivot(index="replication", columns="metric",
                                                                      values="value")


def test_one_row_per_multiplier_with_the_comparisons_own_figures(study):
    table = study.table.set_index("tariff_multiplier")
    assert list(table.index) == MULTIPLIERS
    base = _consortium(study, BASELINE)
    assert (base.reported_home == 0).all()  # the baseline has the market off
    for m in MULTIPLIERS:
        run = _consortium(study, label(m))
        saving = (base.marginal_spend - run.marginal_spend).mean()
        assert np.isclose(table.loc[m, "net_saving"], saving)
        assert table.loc[m, "net_saving_ci_low"] <= saving <= table.loc[m, "net_saving_ci_high"]
        assert np.isclose(table.loc[m, "outsourced_change"], (run.outsourced - base.outsourced).mean())
        assert np.isclose(table.loc[m, "matched_exams"], run.reported_home.mean())
        assert np.isclose(table.loc[m, "tariff_paid"], run.cost_home.mean())
    # the uptake curve raises uptake with the tariff; at x10 nothing is cheaper than outsourcing: nothing matched
    assert table.uptake.is_monotonic_increasing
    assert table.loc[10.0, "matched_exams"] == 0 and table.loc[1.0, "matched_exams"] > 0
    # x8 prices band 1 out (£24 > £20): fewer matches than x5 though more sessions are taken
    assert table.loc[8.0, "matched_exams"] < table.loc[5.0, "matched_exams"]


def test_break_even_is_where_the_mean_net_saving_crosses_zero():
    table = pd.DataFrame({"tariff_multiplier": [0.5, 1.0, 1.5, 2.0], "net_saving": [300.0, 100.0, -100.0, -50.0]})
    assert break_even_multiplier(table) == pytest.approx(1.25)
    assert np.isnan(break_even_multiplier(table.assign(net_saving=[5.0, 4.0, 3.0, 1.0])))


def test_cli_writes_the_table_and_figure_and_refuses_a_scenario_without_a_market(tmp_path, capsys):
    scenario = tmp_path / "market.toml"
    scenario.write_text(tomli_w.dumps(market_data()), encoding="utf-8")
    out = tmp_path / "study"
    assert main(["tariffs", str(scenario), "--multipliers", "1,5", "--replications", "2", "--weeks", "1",
                 "--backend", "serial", "--no-progress", "--out", str(out)]) == 0
    table = pd.read_csv(out / "tariffs.csv")
    assert list(table.tariff_multiplier) == [1.0, 5.0] and "break_even_multiplier" in table.columns
    assert (out / "tariffs.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert "net saving" in capsys.readouterr().out
    off = market_data()
    off["home_reporting"]["enabled"] = False
    scenario.write_text(tomli_w.dumps(off), encoding="utf-8")
    assert main(["tariffs", str(scenario), "--replications", "2", "--out", str(tmp_path / "no")]) == 2
    assert "market.toml: home_reporting.enabled is false" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["tariffs", str(scenario), "--multipliers", "1,-2"])
    assert "--multipliers" in capsys.readouterr().err
