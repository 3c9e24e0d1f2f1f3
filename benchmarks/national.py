"""A national-scale run as a Dask recipe: England's imaging networks as separate scenarios.

    .venv/bin/python benchmarks/national.py [--networks 21] [--limit 4] [--workers 2] [--scheduler tcp://HOST:8786]

England reports ~46M imaging tests a year through 21 imaging networks (NHS England). Each network
is one scenario and one task; tasks are independent, so a cluster of N single-threaded workers runs
them N at a time and the wall time is about ceil(21 / N) x the time of one network. Without real
network scenarios this recipe builds stand-ins from EMRAD's (params/emrad.toml): network k has
EMRAD's trusts and staff with demand and workforce scaled together to its share of the national
volume, so every network carries the same load as EMRAD (sizes drawn once, seeded, around 46M / 21).
Replace `network_scenarios` with the real networks' scenario files when they exist.

Each task returns one replication's consortium metrics (a few kB), never per-exam data, so the
scheduler's memory stays small whatever the national volume. `--limit` runs only the first few
networks: enough to measure the time per network on a small cluster.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NATIONAL_TESTS_PER_YEAR = 46e6  # imaging tests in England a year (all modalities, ultrasound included)


def network_scenarios(n_networks: int, seed: int = 1) -> list:
    """Stand-in networks: EMRAD's scenario with demand and every staff group scaled by the network's size."""
    from sim.estimate import expected_exams
    from sim.loading import load_scenario

    emrad = load_scenario(ROOT / "params" / "emrad.toml")
    # the model's exams are reporting work (no ultrasound, ~2/3 of tests): scale by the same ratio as EMRAD
    emrad_tests = expected_exams(emrad) * 1.5
    sizes = np.random.default_rng(seed).lognormal(0.0, 0.3, n_networks)
    sizes *= NATIONAL_TESTS_PER_YEAR / n_networks / emrad_tests / sizes.mean()
    networks = []
    for k, size in enumerate(sizes):
        changes = {f"modalities.{i}.annual_volume": m.annual_volume * size for i, m in enumerate(emrad.modalities)}
        changes |= {f"staff.{i}.count": max(1, round(g.count * size)) for i, g in enumerate(emrad.staff)}
        changes |= {f"demand.initial_backlog.{i}.count": round(b.count * size)
                    for i, b in enumerate(emrad.demand.initial_backlog)}
        changes["name"] = f"network-{k + 1:02d}"
        networks.append(emrad.with_changes(changes))
    return networks


def run_network(job: tuple) -> dict:
    """One network's replication on a worker: consortium metrics and its own timing."""
    import sim

    scenario, seed = job
    started = time.perf_counter()
    result = sim.run(scenario, seed=seed, replication=0)
    return {"network": scenario.name, "exams": result.n_exams, "seconds": time.perf_counter() - started,
            "consortium": result.consortium().to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", type=int, default=21)
    parser.add_argument("--limit", type=int, default=None, help="run only the first LIMIT networks")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers when no --scheduler is given")
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from sim.backends import map_unordered

    networks = network_scenarios(args.networks, args.seed)[: args.limit]
    started = time.perf_counter()
    done = []
    for out in map_unordered(run_network, [(scn, args.seed) for scn in networks], backend="dask",
                             workers=args.workers, scheduler=args.scheduler):
        done.append(out)
        print(f"{out['network']}: {out['exams']:,} exams in {out['seconds']:.1f} s "
              f"({out['exams'] / out['seconds']:,.0f} exams/s), "
              f"outsourced {out['consortium']['outsourced']:,.0f}", flush=True)
    wall = time.perf_counter() - started
    exams = sum(d["exams"] for d in done)
    per_network = float(np.mean([d["seconds"] for d in done]))
    workers = args.workers if args.scheduler is None else "the cluster's"
    print(f"\n{len(done)} networks, {exams:,} exams, {wall:.1f} s wall on {workers} workers; "
          f"{per_network:.1f} s per network on one worker; all {args.networks} networks on W workers: "
          f"about {math.ceil(args.networks / 2)} x {per_network:.0f} s with W = 2, "
          f"{math.ceil(args.networks / 21)} x {per_network:.0f} s with W = 21")


if __name__ == "__main__":
    main()
