"""The `emrad-sim` command line. Bad input ends with a readable message and exit code 2, no traceback.

Exit codes and error handling: sim.cli_errors. Results folders are written as one transaction
under a lock: sim.folders.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import metadata
from pathlib import Path

import pandas as pd

from sim.activity import (codes_from_scenario, read_activity_log,
                          write_activity_log_from_run)
from sim.atomic import atomic_write
from sim import cli_errors as opt
from sim.backends import BACKENDS
from sim.cli_errors import EXIT_BAD_INPUT, BadInput, run_command
from sim.compare import ComparisonResult, compare
from sim.evaluation import evaluate_activity, tables_from_scenario
from sim.estimate import default_max_memory, estimate, refusal
from sim.experiment import ExperimentResult, run_experiment
from sim.folders import ResultsFolder, read_identity
from sim.loading import ScenarioError, load_scenario, validate_data
from sim.pilot import DEFAULT_SCENARIO as DEFAULT_PILOT
from sim.pilot import pilot_text, reproduce_pilot
from sim.pilot import sensitivity as pilot_sensitivity
from sim.regression import cmd_regress
from sim.report import write_report
from sim.results_io import git_commit, write_results
from sim.runner import run
from sim.scenario import Scenario
from sim.store import RunStore

PROJECT_ROOT = Path(__file__).resolve().parents[1]

__all__ = ["main", "build_parser", "summary_text", "comparison_text", "EXIT_BAD_INPUT"]

HEADLINE = [  # (metric, label, format)
    ("arrivals", "exams acquired", "{:,.0f}"),
    ("initial_backlog", "initial backlog", "{:,.0f}"),
    ("reported", "reported in-house", "{:,.0f}"),
    ("reported_home", "  of which in home / offered sessions", "{:,.0f}"),
    ("reported_brokered", "  of which read across trusts in core time", "{:,.0f}"),
    ("outsourced", "outsourced (threshold)", "{:,.0f}"),
    ("teleradiology", "night teleradiology", "{:,.0f}"),
    ("unreported_end", "unreported at end", "{:,.0f}"),
    ("tat_median_h", "turnaround median (h)", "{:,.1f}"),
    ("tat_p90_h", "turnaround p90 (h)", "{:,.1f}"),
    ("share_within_target", "within turnaround target", "{:.1%}"),
    ("share_over_28d", "over 28 days", "{:.2%}"),
    ("utilisation", "reporter utilisation in session", "{:.1%}"),
    ("overtime_hours", "overtime finishing reads (h)", "{:,.0f}"),
    ("wte_delivered", "WTE of reporting delivered", "{:,.1f}"),
    ("cost_capacity", "salaried capacity, read or idle (£)", "{:,.0f}"),
    ("cost_outsourced", "outsourcing spend (£)", "{:,.0f}"),
    ("cost_teleradiology", "night teleradiology spend (£)", "{:,.0f}"),
    ("cost_home", "insourcing (home) spend (£)", "{:,.0f}"),
    ("marginal_spend", "marginal spend: outsourcing + night + insourcing (£)", "{:,.0f}"),
    ("cost_total", "total reporting cost: capacity + spend (£)", "{:,.0f}"),
    ("counterfactual_cost", "all-outsourced counterfactual (£)", "{:,.0f}"),
    ("saving_vs_outsourcing", "saving vs outsourcing (£)", "{:,.0f}"),
]
TRUST_COLUMNS = ["arrivals", "outsourced", "teleradiology", "unreported_end", "tat_median_h", "share_within_target",
                 "share_over_28d"]


def version_text() -> str:
    """'emrad-sim VERSION (git commit SHA)': the commit when run from a git checkout of the project, else 'unknown'.

    An installed copy (site-packages) has no pyproject.toml beside the package, so git is not asked:
    a virtualenv inside some other repository must not report that repository's commit.
    """
    try:
        version = metadata.version("emrad-sim")
    except metadata.PackageNotFoundError:
        from sim import __version__ as version
    commit = git_commit() if (PROJECT_ROOT / "pyproject.toml").is_file() else None
    return f"emrad-sim {version} (git commit {commit or 'unknown'})"


class _Version(argparse.Action):
    """`--version`, asking git only when it is given (not on every command)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def _fmt(fmt: str, value: float) -> str:
    return "" if pd.isna(value) else fmt.format(value)


def summary_text(result: ExperimentResult) -> str:
    """Headline consortium table (mean and 95% CI) and a per-trust table of means."""
    summary = result.summary("consortium").set_index("metric")
    n = len(result.runs)
    lines = [f"{result.scenario.name}: {n} replication(s), seed {result.seed}, config {result.scenario.config_id[:12]}", ""]
    width = max(len(label) for _, label, _ in HEADLINE)
    lines.append(f"{'consortium':<{width}}  {'mean':>14}  {'95% CI' if n > 1 else '':>29}")
    for metric, label, fmt in HEADLINE:
        row = summary.loc[metric]
        ci = f"[{_fmt(fmt, row.ci_low)}, {_fmt(fmt, row.ci_high)}]" if n > 1 else ""
        lines.append(f"{label:<{width}}  {_fmt(fmt, row['mean']):>14}  {ci:>29}")
    by_trust = result.summary("trust").pivot(index="trust", columns="metric", values="mean")[TRUST_COLUMNS]
    by_trust = by_trust.reindex(result.scenario.trust_codes)
    table = pd.DataFrame({
        "acquired": by_trust["arrivals"].map("{:,.0f}".format),
        "outsourced": by_trust["outsourced"].map("{:,.0f}".format),
        "unreported at end": by_trust["unreported_end"].map("{:,.0f}".format),
        "TAT median (h)": by_trust["tat_median_h"].map(lambda v: _fmt("{:,.1f}", v)),
        "within target": by_trust["share_within_target"].map(lambda v: _fmt("{:.1%}", v)),
    })
    lines += ["", "by trust (means)", table.to_string()]
    return "\n".join(lines)


def _load(path: str) -> tuple[Scenario, dict]:
    """A scenario from a TOML file, or from a results folder's manifest.json (with its seed/replications)."""
    if path.endswith(".json"):
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, RecursionError) as exc:
            raise ScenarioError(path, [("", f"cannot read manifest: {exc}")]) from None
        except UnicodeDecodeError as exc:
            raise ScenarioError(path, [("", f"cannot read manifest: not UTF-8 text ({exc.reason})")]) from None
        if not isinstance(data, dict) or not isinstance(data.get("scenario"), dict):
            raise ScenarioError(path, [("scenario", "not a results manifest (no 'scenario' table)")])
        extra = {"seed": data.get("root_seed"), "replications": data.get("replications")}
        for field, key, low in (("root_seed", "seed", 0), ("replications", "replications", 1)):
            value = extra[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise ScenarioError(path, [(field, f"must be a whole number of at least {low}, not {value!r}")])
        return validate_data(data["scenario"], path), extra
    return load_scenario(path), {}


def _first_given(*values):
    """The first value that is not None (0 is a real seed)."""
    return next(v for v in values if v is not None)


def cmd_validate(args: argparse.Namespace) -> int:
    scn = load_scenario(args.scenario)
    print(f"{args.scenario}: OK: {scn.name!r}, {len(scn.trusts)} trusts, {sum(g.count for g in scn.staff)} reporters, "
          f"config id {scn.config_id}")
    print(estimate(scn, 1, workers=1).text())
    return 0


def _check_size(scn: Scenario, replications: int, args: argparse.Namespace, keep_exams: bool = False) -> None:
    """Print the size and time estimate; refuse (exit 2) above --max-memory."""
    workers = 1 if args.backend == "serial" or args.scheduler else None
    est = estimate(scn, replications, workers=workers, keep_exams=keep_exams)
    print(est.text(), flush=True)
    limit = args.max_memory if args.max_memory is not None else default_max_memory()
    why = refusal(est, limit)
    if why:
        raise BadInput(f"{args.scenario}: {why}")


def _out_folder(text: str | None, default: Path) -> Path:
    out = Path(text) if text else default
    if text is not None and not text.strip():
        raise BadInput("--out: empty folder name")
    return out


def cmd_run(args: argparse.Namespace) -> int:
    scn, from_manifest = _load(args.scenario)
    seed = _first_given(args.seed, from_manifest.get("seed"), 1)
    out = _out_folder(args.out, Path("results") / f"{Path(args.scenario).stem}-seed{seed}")
    held = read_identity(out) if out.is_dir() else None
    same_run = bool(held) and held.get("config_id") == scn.config_id and held.get("seed") == seed
    replications = _first_given(args.replications, from_manifest.get("replications"),
                                held["replications"] if same_run and isinstance(held["replications"], int) else None, 1)
    _check_size(scn, replications, args, keep_exams=args.activity_log)
    identity = {"scenario_name": scn.name, "config_id": scn.config_id, "seed": seed, "replications": replications}
    with ResultsFolder(out, overwrite=args.overwrite) as folder:
        folder.refuse_other_run([("", identity)])
        started = time.perf_counter()
        result = run_experiment(scn, replications=replications, seed=seed, backend=args.backend,
                                scheduler=args.scheduler, progress=not args.no_progress, store=out)
        wall = time.perf_counter() - started
        staged = folder.staging
        write_results(result, staged, wall, args.backend, source=str(Path(args.scenario).resolve()))
        store = RunStore(out)
        folder.keep(f for r in result.runs for f in store.files(scn.config_id, seed, r.replication))
        if args.activity_log:  # replication 0 again, keeping its exams (same seed and replication: the same run)
            write_activity_log_from_run(run(scn, seed, 0, keep_exams=True), scn, staged / "activity_log.parquet",
                                        reading_minutes=True)
        write_report(staged)
        folder.commit()
    print(summary_text(result))
    reused = len(result.runs) - len(result.computed)
    note = f" ({reused} replication(s) reused from {out}/runs)" if reused else ""
    print(f"\n{sum(r.n_exams for r in result.runs):,} exams in {len(result.runs)} replication(s), "
          f"{wall:.1f} s{note}; results in {out}/")
    print(f"report: {out / 'report.html'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    if len(args.scenarios) < 2:
        raise BadInput("compare needs at least two scenario files (a baseline and one to compare with it)")
    scenarios = {}
    for path in args.scenarios:
        name = Path(path).stem
        if name in scenarios:
            raise ScenarioError(path, [("", f"two scenarios are named {name!r}; rename one file")])
        scenarios[name] = load_scenario(path)
    if args.baseline is not None and args.baseline not in scenarios:
        raise BadInput(f"--baseline {args.baseline!r} is not one of the scenarios ({', '.join(scenarios)})")
    for path, scn in zip(args.scenarios, scenarios.values()):
        _check_size(scn, args.replications, argparse.Namespace(**{**vars(args), "scenario": path}))
    out = _out_folder(args.out, Path("results") / ("compare-" + "-".join(scenarios) + f"-seed{args.seed}"))
    expected = [(name, {"scenario_name": scn.name, "config_id": scn.config_id, "seed": args.seed,
                        "replications": args.replications}) for name, scn in scenarios.items()]
    with ResultsFolder(out, overwrite=args.overwrite) as folder:
        folder.refuse_other_run(expected)
        started = time.perf_counter()
        result = compare(scenarios, replications=args.replications, seed=args.seed, baseline=args.baseline,
                         backend=args.backend, scheduler=args.scheduler, progress=not args.no_progress, store=out)
        wall = time.perf_counter() - started  # the whole comparison: scenarios share the workers
        table = result.differences()
        staged = folder.staging
        for (name, experiment), path in zip(result.experiments.items(), args.scenarios):  # each scenario's folder
            write_results(experiment, staged / name, wall, args.backend, source=str(Path(path).resolve()))
            store = RunStore(out / name)
            folder.keep((f for r in experiment.runs for f in store.files(experiment.scenario.config_id, args.seed,
                                                                           r.replication)), sub=name)
        atomic_write(staged / "differences.csv", lambda tmp: table.to_csv(tmp, index=False))
        write_report(staged)
        folder.commit()
    print(comparison_text(result, table))
    print(f"\nresults in {out}/ (differences.csv; each scenario's replications under its own name)")
    print(f"report: {out / 'report.html'}")
    return 0


def comparison_text(result: ComparisonResult, table: pd.DataFrame) -> str:
    """Paired differences from the baseline, with 95% CIs and the variance reduction CRN bought."""
    labels = {metric: (label, fmt) for metric, label, fmt in HEADLINE}
    labels["utilisation"] = ("reporter utilisation", "{:.1%}")
    n = int(table["n"].max()) if len(table) else 0
    lines = [f"paired differences from {result.baseline!r} ({n} replications each, common random numbers)"]
    for name, rows in table.groupby("scenario", sort=False):
        lines += ["", f"{name} - {result.baseline}"]
        view = pd.DataFrame({
            "metric": [labels.get(m, (m, "{:,.3g}"))[0] for m in rows.metric],
            result.baseline: [_fmt(labels.get(m, (m, "{:,.3g}"))[1], v) for m, v in zip(rows.metric, rows.baseline_mean)],
            name: [_fmt(labels.get(m, (m, "{:,.3g}"))[1], v) for m, v in zip(rows.metric, rows.scenario_mean)],
            "difference [95% CI]": [
                f"{_fmt(labels.get(m, (m, '{:,.3g}'))[1], d)} [{_fmt(labels.get(m, (m, '{:,.3g}'))[1], lo)}, "
                f"{_fmt(labels.get(m, (m, '{:,.3g}'))[1], hi)}]"
                for m, d, lo, hi in zip(rows.metric, rows.difference, rows.ci_low, rows.ci_high)],
            "CRN variance reduction": [_fmt("{:,.1f}x", v) for v in rows.variance_reduction],
        })
        lines.append(view.to_string(index=False))
    return "\n".join(lines)


def _ids(text: str | None) -> list[str] | None:
    """Comma-separated ids, or @FILE with one id per line (staff ids stay off the command line)."""
    if text is None:
        return None
    if text.startswith("@"):
        try:
            items = Path(text[1:]).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"{text[1:]}: cannot read the id list ({exc.strerror})") from None
    else:
        items = text.split(",")
    return [item.strip() for item in items if item.strip()]


def _margin(text: str) -> float:
    """A non-inferiority margin: a relative change in (-1, 0]."""
    value = opt.number(text)
    if not -1 < value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a relative drop between -1 and 0 (e.g. -0.10)")
    return value


def _shares(text: str) -> tuple[float, ...]:
    """One share, or LOW,HIGH, each between 0 and 1."""
    values = tuple(opt.fraction(part.strip()) for part in text.split(","))
    if len(values) not in (1, 2) or (len(values) == 2 and values[0] > values[1]):
        raise argparse.ArgumentTypeError(f"{text!r} is not a share or LOW,HIGH between 0 and 1")
    return values


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.pilot_start and args.pilot_end and args.pilot_end < args.pilot_start:
        raise BadInput(f"--pilot-end {args.pilot_end} is before --pilot-start {args.pilot_start}")
    routes = tuple(r.strip() for r in args.extra_routes.split(",") if r.strip())
    if not routes:
        raise BadInput("--extra-routes: give at least one route, e.g. home")
    scn = load_scenario(args.scenario) if args.scenario else None
    log = read_activity_log(args.activity, max_bad_fraction=args.max_bad_fraction,
                            pseudonymise_reporters=not args.keep_reporter_ids,
                            check_nhs_numbers=not args.no_nhs_check, encoding=args.encoding,
                            plausible_start=args.pilot_start, plausible_end=args.pilot_end,
                            **(codes_from_scenario(scn) if scn else {}))
    tables = args.tables or (tables_from_scenario(scn) if scn else None)  # None: params/reporting_rates.toml
    hours = _first_given(args.hours_per_wte_week, scn.finance.hours_per_wte_week if scn else None, 40.0)
    try:
        evaluation = evaluate_activity(
            log, tariffs=tables, rates=tables, pilot_start=args.pilot_start, pilot_end=args.pilot_end,
            participants=_ids(args.participants), comparison=_ids(args.comparison), hours_per_wte_week=hours,
            suppress_below=args.suppress_below, extra_routes=routes, before_start=args.before_start,
            margin=args.margin, round_to=args.round_to, outsourced_share=args.outsourced_share,
            lead_in_days=args.lead_in_days, premium_pa_hours=scn.finance.premium_pa_hours if scn else 3.0)
    except ValueError as exc:  # e.g. participants not in the log: say which log
        raise BadInput(f"{args.activity}: {exc}") from None
    out = _out_folder(args.out, Path("results") / f"evaluate-{Path(args.activity).stem}")
    with ResultsFolder(out, overwrite=args.overwrite) as folder:
        folder.refuse_foreign()
        evaluation.write(folder.staging)
        folder.commit()
    print(evaluation.summary_text())
    print(f"\ntables, parallel_trends.png and evaluation.html in {out}/ (counts 1-{args.suppress_below - 1} "
          f"suppressed, others rounded to {args.round_to}; aggregates and pseudonyms only)")
    return 0


def cmd_pilot(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    table = reproduce_pilot(args.scenario, replications=args.replications, seed=args.seed, backend=args.backend)
    took = time.perf_counter() - started
    block = None
    if args.sensitivity_replications:
        block = pilot_sensitivity(args.scenario, replications=args.sensitivity_replications, seed=args.seed,
                                  backend=args.backend)
    out = Path(args.out)
    atomic_write(out / "pilot_table.csv", lambda tmp: table.to_csv(tmp, index=False))
    if block is not None:
        atomic_write(out / "pilot_sensitivity.csv", lambda tmp: block.to_csv(tmp, index=False))
    print(pilot_text(table, block))
    print(f"\ntable: {took:.1f} s for {args.replications} replications; total {time.perf_counter() - started:.0f} s; "
          f"written to {out}/")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from sim.calibration import calibration_table, calibration_text

    scn = load_scenario(args.scenario)
    started = time.perf_counter()
    result = run_experiment(scn, replications=args.replications, seed=args.seed, backend=args.backend,
                            progress=not args.no_progress)
    table = calibration_table(result)
    out = Path(args.out)
    atomic_write(out / "calibration.csv", lambda tmp: table.to_csv(tmp, index=False))
    print(f"{scn.name}: {args.replications} replication(s), seed {args.seed}, {time.perf_counter() - started:.0f} s\n")
    print(calibration_text(table))
    print(f"\ntable in {out}/calibration.csv")
    return 0


def cmd_tariffs(args: argparse.Namespace) -> int:
    from sim.tariff_study import run_tariff_study, tariff_figure, tariff_text

    scn = load_scenario(args.scenario)
    if args.weeks is not None:
        scn = scn.with_changes({"horizon_weeks": args.weeks})
    if scn.home_reporting is None or not scn.home_reporting.enabled:
        raise BadInput(f"{args.scenario}: home_reporting.enabled is false: the scenario offers no sessions, so there "
                       "is no tariff to study")
    _check_size(scn, args.replications * (len(args.multipliers) + 1), args)
    out = _out_folder(args.out, Path("results") / f"tariffs-{Path(args.scenario).stem}-seed{args.seed}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    study = run_tariff_study(scn, list(args.multipliers), replications=args.replications, seed=args.seed,
                             backend=args.backend, scheduler=args.scheduler, progress=not args.no_progress,
                             store=out / "runs")
    atomic_write(out / "tariffs.csv", lambda tmp: study.table.assign(break_even_multiplier=study.break_even)
                 .to_csv(tmp, index=False))
    figure = tariff_figure(study)
    atomic_write(out / "tariffs.svg", lambda tmp: figure.savefig(tmp, format="svg"))
    print(f"{scn.name}: {scn.horizon_weeks:g} weeks, {time.perf_counter() - started:.0f} s\n")
    print(tariff_text(study))
    print(f"\ntable in {out}/tariffs.csv, figure in {out}/tariffs.svg")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    folder = Path(args.results_dir)
    with ResultsFolder(folder) as lock:  # nobody rewrites the folder while its report is built
        del lock
        try:
            path = write_report(folder)
        except (KeyError, IndexError, TypeError, AttributeError, OSError, ValueError) as exc:
            if isinstance(exc, ScenarioError):
                raise BadInput(f"{folder}: damaged results folder: {exc}") from None
            raise BadInput(f"{folder}: damaged results folder, cannot build the report "
                           f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    print(path)
    return 0


def _backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="processes", help="where replications run")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://127.0.0.1:8786 (with --backend dask)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--max-memory", type=opt.size, default=None,
                        help="refuse a run whose estimated peak memory is larger (e.g. 8GB; default 80%% of this "
                             "machine's memory)")
    _overwrite_option(parser)


def _overwrite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a results folder that holds another run (other scenario, seed, or more "
                             "replications); without it such a folder is left alone")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emrad-sim", description="Radiology reporting capacity simulation for EMRAD.",
        epilog="exit codes: 0 ok; 1 a failed check (regress drift) or an unexpected error; 2 bad input (the message "
               "names the file, field or option); 130 interrupted")
    parser.add_argument("--version", action=_Version, help="print the version and the git commit (from a checkout), then exit")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an unexpected error")
    debug = argparse.ArgumentParser(add_help=False)  # --debug is accepted after the verb too
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    verbs = parser.add_subparsers(dest="verb", required=True)

    run = verbs.add_parser("run", parents=[debug], help="run a scenario (or rerun a results folder's manifest.json)")
    run.add_argument("scenario", help="scenario TOML, or a manifest.json from a results folder")
    run.add_argument("--replications", type=opt.count, default=None, help="independent replications (default 1)")
    run.add_argument("--seed", type=opt.non_negative_int, default=None, help="root seed (default 1)")
    run.add_argument("--out", default=None, help="results folder (default results/<scenario>-seed<S>)")
    run.add_argument("--activity-log", action="store_true",
                     help="also write replication 0's activity log (RESULTS_DIR/activity_log.parquet) for `evaluate`")
    _backend_options(run)
    run.set_defaults(handler=cmd_run)

    cmp = verbs.add_parser("compare", parents=[debug], help="compare scenarios with common random numbers (paired CIs)")
    cmp.add_argument("scenarios", nargs="+", help="scenario TOML files; the first is the baseline unless --baseline")
    cmp.add_argument("--replications", type=opt.count, default=10)
    cmp.add_argument("--seed", type=opt.non_negative_int, default=1)
    cmp.add_argument("--baseline", default=None, help="baseline scenario name (file stem)")
    cmp.add_argument("--out", default=None, help="results folder (default results/compare-<names>-seed<S>)")
    _backend_options(cmp)
    cmp.set_defaults(handler=cmd_compare)

    evaluate = verbs.add_parser("evaluate", parents=[debug], help="evaluate a real or simulated activity log (pilot evaluation)")
    evaluate.add_argument("activity", help="activity log, CSV or Parquet (DESIGN section 8 schema)")
    evaluate.add_argument("--out", default=None, help="output folder (default results/evaluate-<log name>)")
    evaluate.add_argument("--suppress-below", type=opt.non_negative_int, default=8,
                          help="hide counts 1..N-1 in the published tables (default 8: NHS practice; 0 = no suppression)")
    evaluate.add_argument("--round-to", type=opt.count, default=5,
                          help="round other published counts to the nearest N (default 5; 1 = no rounding)")
    evaluate.add_argument("--margin", type=_margin, default=-0.10,
                          help="non-inferiority margin for core output, a relative change (default -0.10: a 10%% drop)")
    evaluate.add_argument("--outsourced-share", type=_shares, default=(0.5, 1.0),
                          help="share of extra exams that would otherwise have been outsourced: one value or LOW,HIGH "
                               "(default 0.5,1)")
    evaluate.add_argument("--before-start", type=opt.iso_date, default=None,
                          help="first day of the 'before' period (default: as many whole weeks as the pilot, after the lead-in)")
    evaluate.add_argument("--lead-in-days", type=opt.non_negative_int, default=14,
                          help="days at the start of the log left out of 'before' (default 14)")
    evaluate.add_argument("--pilot-start", type=opt.iso_date, default=None,
                          help="first day of the pilot, YYYY-MM-DD (default: Monday of the first home report's week)")
    evaluate.add_argument("--pilot-end", type=opt.iso_date, default=None,
                          help="last day of the pilot, inclusive (default: Sunday of the last home report's week)")
    evaluate.add_argument("--participants", default=None,
                          help="reporter ids in the pilot: comma-separated or @FILE (default: everyone with a home report)")
    evaluate.add_argument("--comparison", default=None, help="reporter ids to compare against (default: all others)")
    evaluate.add_argument("--hours-per-wte-week", type=opt.positive_float, default=None,
                          help="reporting hours in one WTE-week (default the scenario's, else 40 = 10 PAs x 4 h)")
    evaluate.add_argument("--tables", default=None,
                          help="TOML with [insourcing], [outsourcing], [reading_minutes] (default params/reporting_rates.toml)")
    evaluate.add_argument("--extra-routes", default="home", help="routes counted as extra capacity, comma-separated (default home)")
    evaluate.add_argument("--max-bad-fraction", type=opt.fraction, default=0.05,
                          help="fail when a larger share of rows is invalid (default 0.05)")
    evaluate.add_argument("--scenario", default=None,
                          help="use this scenario's trust/modality/urgency codes and (unless --tables) its price and "
                               "reading-time tables: for logs exported from a run")
    evaluate.add_argument("--keep-reporter-ids", action="store_true",
                          help="keep staff ids as they are (default: replaced by keyed pseudonyms; staff lists are mapped)")
    evaluate.add_argument("--no-nhs-check", action="store_true",
                          help="accept 10-digit patient ids that fail the NHS number check (local hospital numbers)")
    evaluate.add_argument("--encoding", type=opt.encoding, default=None,
                          help="text encoding of a CSV log (default: UTF-8, or UTF-16/UTF-8 as its byte-order mark says; "
                               "e.g. latin-1 or cp1252 for older RIS exports)")
    _overwrite_option(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)

    pilot = verbs.add_parser("pilot", parents=[debug], help="reproduce the first EMRAD pilot: published figures vs the model, with CIs")
    pilot.add_argument("--scenario", default=str(DEFAULT_PILOT),
                       help="pilot scenario (default params/pilot_nuh_neuro.toml, the first pilot, compared with its "
                            "published figures; any other pilot scenario gets predictions only)")
    pilot.add_argument("--replications", type=opt.count, default=20)
    pilot.add_argument("--sensitivity-replications", type=opt.non_negative_int, default=5,
                       help="replications per variant of the sensitivity block (0: no sensitivity block)")
    pilot.add_argument("--seed", type=opt.non_negative_int, default=1)
    pilot.add_argument("--backend", choices=BACKENDS, default="processes")
    pilot.add_argument("--out", default="results/pilot", help="where pilot_table.csv is written")
    pilot.set_defaults(handler=cmd_pilot)

    regress = verbs.add_parser("regress", parents=[debug], help="rerun the reference scenarios (params/regression) and fail when outputs drift")
    regress.add_argument("--update", action="store_true", help="rerun and overwrite the references instead of checking them")
    regress.add_argument("--reason", default=None, help="why the references change (required with --update; recorded in reference.json)")
    regress.add_argument("--reference-dir", default=None, help="reference folder (default results/reference in the project)")
    regress.set_defaults(handler=cmd_regress)

    calibrate = verbs.add_parser("calibrate", parents=[debug],
                                 help="the default year beside national figures (share outsourced, out-of-hours, "
                                      "28 days, spend), with CIs")
    calibrate.add_argument("scenario", nargs="?", default=str(PROJECT_ROOT / "params" / "emrad.toml"),
                           help="scenario (default params/emrad.toml)")
    calibrate.add_argument("--replications", type=opt.count, default=4)
    calibrate.add_argument("--seed", type=opt.non_negative_int, default=1)
    calibrate.add_argument("--backend", choices=BACKENDS, default="processes")
    calibrate.add_argument("--no-progress", action="store_true", help="no progress bar")
    calibrate.add_argument("--out", default="results/calibration", help="where calibration.csv is written")
    calibrate.set_defaults(handler=cmd_calibrate)

    tariffs = verbs.add_parser("tariffs", parents=[debug],
                               help="the market at each tariff multiplier against the market off: uptake, backlog, "
                                    "outsourcing avoided, net saving (paired CIs) and the break-even tariff")
    tariffs.add_argument("scenario", help="a scenario with offered sessions (e.g. params/scenarios/brokered.toml)")
    tariffs.add_argument("--multipliers", type=opt.positive_floats, default=(0.6, 0.8, 1.0, 1.2, 1.4, 1.6),
                         help="comma-separated tariff multipliers (default 0.6,0.8,1,1.2,1.4,1.6)")
    tariffs.add_argument("--replications", type=opt.count, default=10)
    tariffs.add_argument("--seed", type=opt.non_negative_int, default=1)
    tariffs.add_argument("--weeks", type=opt.positive_float, default=None, help="horizon in weeks (default the scenario's)")
    tariffs.add_argument("--out", default=None, help="output folder (default results/tariffs-<scenario>-seed<S>)")
    _backend_options(tariffs)
    tariffs.set_defaults(handler=cmd_tariffs)

    report = verbs.add_parser("report", parents=[debug], help="write RESULTS_DIR/report.html (dashboards; one self-contained file)")
    report.add_argument("results_dir", help="a results folder from `run` or `compare`")
    report.set_defaults(handler=cmd_report)

    validate = verbs.add_parser("validate", parents=[debug], help="check a scenario file; every error names the file and field")
    validate.add_argument("scenario")
    validate.set_defaults(handler=cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit codes are documented in sim.cli_errors (0 ok, 1 failed, 2 bad input, 130)."""
    args = build_parser().parse_args(argv)
    return run_command(args.handler, args, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
