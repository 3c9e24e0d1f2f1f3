"""Why a bigger consortium costs more per exam: instructions and cache misses per SimPy event, counted.

    .venv/bin/python benchmarks/cache_profile.py [--weeks 4] [--copies 1 4] [--floor-events 300000] [--scenarios ...]

Timing cannot tell an algorithm that does more work per exam from one whose data no longer fits in
the cache, and this virtual machine has no hardware counters. Valgrind's cachegrind counts both
deterministically: every instruction, and every miss of a simulated cache of this machine's
geometry (L1 data and L2, read from sysfs; cachegrind simulates two levels, so its "last level" is
set to this machine's L2, not the L3). The counts do not depend on the machine's load, so the cases run
two at a time.

Cases, per SimPy event of the phase alone (a run less a run that stops before it, same inputs):
* engine: the default consortium (params/emrad.toml) repeated `copies` times (benchmarks/synthetic.py),
  `--weeks` of horizon, `Engine.run` (the event loop and the run's own post-processing);
* floor: bare SimPy (benchmarks/floor.py) with as many timeout-only processes as that consortium has
  reporters: what any SimPy model with one process per reporter pays;
* --scenarios: other scenario files at EMRAD's size (e.g. params/scenarios/brokered.toml), also per
  exam against the default: the brokerage target (<= 1.3x the local default) in counts, which a noisy
  machine cannot move (instructions and misses, not time: a miss costs more than an instruction).

Takes about 10 minutes (5 without the scenarios) (cachegrind runs ~60x slower than the interpreter).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DEFAULT = str(ROOT / "params" / "emrad.toml")
COUNTS = {"instructions": r"I\s+refs:\s+([\d,]+)", "l1d_misses": r"D1\s+misses:\s+([\d,]+)",
          "l2_misses": r"LLd misses:\s+([\d,]+)"}


def cache_geometry(level: int, fallback: str) -> str:
    """cachegrind's `size,associativity,line` for this machine's data (or unified) cache of `level`."""
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if int((index / "level").read_text()) != level or (index / "type").read_text().strip() == "Instruction":
                continue
            size = (index / "size").read_text().strip()
            kib = int(size[:-1]) * (1024 if size.endswith("M") else 1) if size[-1] in "KM" else int(size) // 1024
            ways = int((index / "ways_of_associativity").read_text())
            line = int((index / "coherency_line_size").read_text())
            return f"{kib * 1024},{ways},{line}"
        except (OSError, ValueError):
            break
    return fallback


def parse_summary(text: str) -> dict[str, int]:
    """The totals of cachegrind's closing summary (its stderr)."""
    found = {}
    for name, pattern in COUNTS.items():
        match = re.search(pattern, text)
        if match is None:
            raise ValueError(f"cachegrind's summary has no {name} line:\n{text[-2000:]}")
        found[name] = int(match.group(1).replace(",", ""))
    return found


def run_child(case: dict) -> dict:
    """Run one case in a fresh interpreter (under cachegrind unless `case["native"]`)."""
    command = [sys.executable, __file__, "--child", json.dumps(case)]
    with tempfile.TemporaryDirectory() as scratch:
        if not case.get("native"):
            command = ["valgrind", "--tool=cachegrind", "--cache-sim=yes", "--branch-sim=no",
                       f"--D1={case['l1']}", f"--LL={case['l2']}",
                       f"--cachegrind-out-file={scratch}/out"] + command
        out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"case {case} failed:\n{out.stderr[-3000:]}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return figures if case.get("native") else {**figures, **parse_summary(out.stderr)}


STAGES = ("load", "setup", "run", "statistics")  # a child stops after case["through"]


def child(case: dict) -> dict:
    """Build and run the case through `case["through"]`; returns its reporters, exams and events.

    A case's counts are the difference of two children that stop at different stages, so everything
    before the earlier stop (the interpreter, the imports, a one-day warm-up through every phase, as
    benchmarks/bench_year.py does, so the libraries' lazy imports are paid there) cancels."""
    through = STAGES.index(case["through"])
    if case["kind"] == "floor":
        from floor import bare_simpy_environment

        env, events = bare_simpy_environment(case["events"], processes=case["processes"])
        if through >= STAGES.index("run"):
            env.run()
        return {"reporters": case["processes"], "exams": 0, "events": events if through >= STAGES.index("run") else 0}
    import gc
    import time

    from bench_year import _warm_up
    from synthetic import repeated_consortium

    from sim.loading import load_scenario
    from sim.model import Engine
    from sim.runner import summarise

    scn = load_scenario(case.get("scenario", DEFAULT))
    scn = repeated_consortium(scn, case["copies"]).with_changes({"horizon_weeks": case["weeks"]})
    _warm_up(scn, 1, summarise)
    figures = {"reporters": 0, "exams": 0, "events": 0}
    if through >= STAGES.index("setup"):
        engine = Engine(scn, seed=1, replication=0)
        figures |= {"reporters": len(engine.reporters), "exams": len(engine.exams)}
    if through >= STAGES.index("run"):
        raw = engine.run()
        figures["events"] = engine.events_scheduled()
    if through >= STAGES.index("statistics"):
        del engine  # as sim.run does: the hot loop's arrays go before the statistics
        gc.collect()
        summarise(raw, time.perf_counter())
    return figures


def per_event(run: dict, setup: dict, per: str = "events") -> dict:
    """The run phase's counts per event (or per exam): the run less its setup-only twin."""
    events = run[per]
    return {per: events, **{name: (run[name] - setup[name]) / events for name in COUNTS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weeks", type=float, default=4, help="horizon of the engine cases (default 4)")
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 4], help="consortium sizes, in EMRADs")
    parser.add_argument("--floor-events", type=int, default=300_000, help="events of each bare-SimPy case")
    parser.add_argument("--scenarios", nargs="*", help="scenario files counted per exam against the default "
                        "(default: brokered and brokered_home; none: --scenarios with no file)",
                        default=[str(ROOT / "params" / "scenarios" / f"{name}.toml") for name in ("brokered", "brokered_home")])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if shutil.which("valgrind") is None:
        sys.exit("cache_profile needs valgrind (Debian: apt-get install valgrind)")
    l1, l2 = cache_geometry(1, "32768,8,64"), cache_geometry(2, "1048576,8,64")
    cache = {"l1": l1, "l2": l2}
    # reporters per size come from a native setup-only run, so the floor gets as many processes
    with ThreadPoolExecutor(2) as pool:
        sizes = list(pool.map(lambda k: run_child({"kind": "engine", "copies": k, "weeks": args.weeks,
                                                   "through": "setup", "native": True})["reporters"],
                                    args.copies))
        cases = [({"kind": "engine", "copies": k, "weeks": args.weeks}, f"engine, {8 * k} trusts ({n} reporters)")
                 for k, n in zip(args.copies, sizes)]
        cases += [({"kind": "floor", "processes": n, "events": args.floor_events}, f"bare SimPy, {n} processes")
                  for n in sizes]
        jobs = [(pool.submit(run_child, {**case, **cache, "through": "run"}),
                 pool.submit(run_child, {**case, **cache, "through": "setup"})) for case, _ in cases]
        per_exam = [({"kind": "engine", "copies": 1, "weeks": args.weeks, "scenario": path}, Path(path).stem)
                    for path in [DEFAULT, *args.scenarios]] if args.scenarios else []
        # end to end (generate, worklists, run, statistics: what bench_year times) and the run phase alone
        exam_jobs = [[pool.submit(run_child, {**case, **cache, "through": stage}) for stage in STAGES]
                     for case, _ in per_exam]
        rows = [(label, per_event(run.result(), setup.result())) for (_, label), (run, setup) in zip(cases, jobs)]
        exam_rows = []
        for (_, label), stages in zip(per_exam, exam_jobs):
            load, setup, run, statistics = (job.result() for job in stages)
            exam_rows.append((label, per_event(statistics, load, per="exams")))
            exam_rows.append((label + ", run phase", per_event(run, setup, per="exams")))
    print(f"cachegrind, simulated L1d {l1} and L2 {l2} (size, ways, line: this machine's); "
          f"engine cases: {args.weeks:g} weeks of horizon; per SimPy event of the run phase")
    print(f"{'case':<38}{'events':>12}{'instructions':>14}{'L1d misses':>12}{'L2 misses':>11}")
    for i, (label, row) in enumerate(rows):
        print(f"{label:<38}{row['events']:>12,}{row['instructions']:>14,.0f}{row['l1d_misses']:>12.1f}"
              f"{row['l2_misses']:>11.2f}")
        first = rows[i - i % len(args.copies)][1]
        if i % len(args.copies):
            print(f"{'  vs the first size':<38}{'':>12}{row['instructions'] / first['instructions']:>14.3f}"
                  f"{row['l1d_misses'] / first['l1d_misses']:>12.3f}{row['l2_misses'] / first['l2_misses']:>11.3f}")
    if exam_rows:
        print(f"\nper exam, EMRAD's size ({args.weeks:g} weeks): end to end (generate, worklists, run, statistics) "
              f"and the run phase alone")
        print(f"{'scenario':<38}{'exams':>12}{'instructions':>14}{'L1d misses':>12}{'L2 misses':>11}")
        for i, (label, row) in enumerate(exam_rows):
            print(f"{label:<38}{row['exams']:>12,}{row['instructions']:>14,.0f}{row['l1d_misses']:>12.1f}"
                  f"{row['l2_misses']:>11.2f}")
            base = exam_rows[i % 2][1]  # the default's row of the same kind
            if i >= 2:
                print(f"{'  vs ' + exam_rows[i % 2][0]:<38}{'':>12}{row['instructions'] / base['instructions']:>14.3f}"
                      f"{row['l1d_misses'] / base['l1d_misses']:>12.3f}{row['l2_misses'] / base['l2_misses']:>11.3f}")

if __name__ == "__main__":
    main()
