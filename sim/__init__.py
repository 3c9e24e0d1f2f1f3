"""emrad-sim: discrete-event simulation of radiology reporting capacity across NHS imaging networks.

    import sim
    scn = sim.load_scenario("params/emrad.toml")
    run = sim.run(scn, seed=1, replication=0)
    exp = sim.run_experiment(scn, replications=10, seed=1)
"""

from sim.compare import ComparisonResult, compare
from sim.experiment import ExperimentResult, run_experiment
from sim.loading import ScenarioError, load_scenario
from sim.runner import RunResult, run
from sim.scenario import Scenario

__all__ = ["ComparisonResult", "Evaluation", "ExperimentResult", "RunResult", "Scenario", "ScenarioError", "compare",
           "evaluate_activity", "load_scenario", "run", "run_experiment"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # the pilot evaluation pulls in statsmodels and scipy (~100 MB, ~1 s): imported on first use, so
    # a worker that only simulates stays small
    if name in ("Evaluation", "evaluate_activity"):
        from sim import evaluation

        return getattr(evaluation, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
