"""Benchmark: one consortium-year replication, and the same year overloaded (not part of the tests).

    .venv/bin/python benchmarks/bench_year.py [--scenario params/emrad.toml] [--overload 1.25] [--seed 1]

Each case runs in a fresh subprocess, so peak memory (ru_maxrss) belongs to that case alone.
Reported per case: exams, wall time of demand generation, of the SimPy run and of the
statistics, engine throughput (exams per wall and per CPU second of the SimPy run; CPU time is the
fairer figure on a shared machine), SimPy events per exam, peak memory,
and the backlog at the end. The overloaded case scales every trust's demand by --overload, so
the worklists grow all year: its throughput divided by the baseline's, measured in the same
invocation, shows whether the engine slows down under backlog (DESIGN section 4 target: it must not).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(scenario_path: str, overload: float, seed: int) -> dict:
    """Run in this process and return timings; called in a child process by main()."""
    import gc
    import resource

    import numpy as np

    from sim.demand import generate_exams
    from sim.loading import load_scenario
    from sim.metrics import backlog_series, metrics_table, outcome
    from sim.model import Engine
    from sim.workforce import build_workforce

    scn = load_scenario(scenario_path)
    if overload != 1.0:
        scn = scn.with_changes({f"trusts.{i}.demand_multiplier": t.demand_multiplier * overload
                                for i, t in enumerate(scn.trusts)})
    t0 = time.perf_counter()
    exams = generate_exams(scn, seed, 0)
    reporters = build_workforce(scn, seed, 0)
    t1 = time.perf_counter()
    engine = Engine(scn, seed, 0, exams=exams, reporters=reporters)
    t2 = time.perf_counter()
    cpu = time.process_time()
    raw = engine.run()
    simulate_cpu = time.process_time() - cpu
    t3 = time.perf_counter()
    del engine  # as sim.run does: free the hot-loop arrays before the statistics
    gc.collect()
    metrics_table(raw, outcome(raw))
    backlog = backlog_series(raw)
    t4 = time.perf_counter()
    end = backlog[backlog.time_h == backlog.time_h.max()]["waiting"].sum()
    return {
        "overload": overload,
        "exams": len(exams),
        "reporters": len(reporters),
        "generate_s": round(t1 - t0, 2),
        "worklists_s": round(t2 - t1, 2),
        "simulate_s": round(t3 - t2, 2),
        "simulate_cpu_s": round(simulate_cpu, 2),
        "statistics_s": round(t4 - t3, 2),
        "total_s": round(t4 - t0, 2),
        "engine_exams_per_s": round(len(exams) / (t3 - t2)),
        "engine_exams_per_cpu_s": round(len(exams) / simulate_cpu),
        "end_to_end_exams_per_s": round(len(exams) / (t4 - t0)),
        "events_per_exam": round(raw.events / len(exams), 3),
        "peak_memory_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3),
        "backlog_at_end": int(end),
        "reported_share": round(float(np.mean(raw.route == 1)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default=str(ROOT / "params" / "emrad.toml"))
    parser.add_argument("--overload", type=float, default=1.25, help="demand multiplier of the overloaded case")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.scenario, args.overload, args.seed)))
        return

    results = []
    for overload in (1.0, args.overload):
        out = subprocess.run([sys.executable, __file__, "--child", "--scenario", args.scenario,
                              "--overload", str(overload), "--seed", str(args.seed)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"benchmark case x{overload} failed:\n{out.stderr}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = list(results[0])
    print(f"{'':<24}" + "".join(f"{'demand x' + str(r['overload']):>20}" for r in results))
    for key in keys[1:]:
        print(f"{key:<24}" + "".join(f"{r[key]:>20}" for r in results))
    ratio = results[1]["engine_exams_per_cpu_s"] / results[0]["engine_exams_per_cpu_s"]
    print(f"\nengine throughput per CPU second, overloaded / baseline (same invocation): {ratio:.2f}")


if __name__ == "__main__":
    main()
