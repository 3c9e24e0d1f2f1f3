"""Pilot evaluation of an activity log (:func:`evaluate_activity`); see :mod:`sim.evaluation.core`.

Modules: core (the evaluation), periods (before/during, checked against the log), harm (the
non-inferiority check of core output), stats (models and estimators), service (reports per hour,
turnaround with censoring, backlog), tables (prices and benchmark minutes), publish (disclosure
control, text, files).
"""

from sim.evaluation.core import Evaluation, evaluate_activity
from sim.evaluation.periods import EvaluationWarning
from sim.evaluation.stats import kaplan_meier_quantiles, paired_difference, welch_difference
from sim.evaluation.tables import load_reporting_tables, tables_from_scenario

__all__ = ["Evaluation", "EvaluationWarning", "evaluate_activity", "kaplan_meier_quantiles", "load_reporting_tables",
           "paired_difference", "tables_from_scenario", "welch_difference"]
