"""Regression checks for CI: rerun the reference scenarios and fail when model outputs drift.

DESIGN: "`emrad-sim regress` reruns reference scenarios and fails when model outputs drift".

Fixtures and references
    Every ``params/regression/<name>.toml`` is a small, fast, synthetic reference scenario.
    ``results/reference/<name>/`` (tracked by git, unlike the rest of ``results/``) holds what it
    produced when the references were last updated:

    * ``replications.csv``: the tidy replications table (replication, trust, modality, urgency,
      metric, value) at the trust and consortium levels (``modality == "ALL"``; the per-cell rows
      would make the references several times larger and any cell-level change shows up in the
      trust sums), values written with 17 significant digits so that they read back bit for bit;
    * ``reference.json``: config_id, seed, replications, the environment fingerprint, the reason
      for the update, the date, the git commit and the sha256 of ``replications.csv``.

    :func:`update_references` writes them (each file atomically, reference.json last and the old
    one removed first, so an interrupted update leaves a folder that the check reports as
    incomplete, never a stale manifest over new numbers); :func:`check` reruns and compares.

Two tiers
    Exact tier: when the stored fingerprint (python, numpy, scipy, simpy, pandas versions and the
    platform) equals the current one and the fixture's config_id is unchanged, the rerun must give
    every stored value identically (NaN == NaN, same rows). Any change to the model code that
    alters any output fails here; the report lists the first few differing rows.

    Statistical tier: in any environment, for each key metric (:data:`KEY_METRICS`, consortium
    level) the replication means must be equivalent within the margin below. It is what guards
    CI runners whose library versions differ from those that wrote the references, where random
    streams or floating-point details may legitimately differ (numpy does not promise identical
    Generator streams across versions).

Equivalence margin (statistical tier)
    A key metric passes when ``|mean_now - mean_ref| <= margin`` with ::

        margin = max(K_SE * SE_diff, REL_TOL * |mean_ref|, ABS_TOL)
        SE_diff = sqrt(sd_now**2 / n_now + sd_ref**2 / n_ref)        (Welch, unpooled)

    * ``K_SE = 5``: if the new environment changed every random stream, the two sets of
      replications are independent samples of the same model and diff / SE_diff follows
      (approximately) Welch's t, with 9 to 18 degrees of freedom for the 10 + 10 replications
      stored (:data:`REPLICATIONS`). P(|t| > 5) is 0.0001 at 18 df (equal variances) and 0.0007
      at the 9-df worst case, so over the 17 key metrics x 7 fixtures (119 positively correlated
      comparisons, several identically zero in a fixture without that route) a false alarm is rare
      (Bonferroni bound 1.2% at 18 df, 8% at 9 df, a loose bound on correlated tests). Yet a
      real change is caught once it shifts a metric by more than 5 x sqrt(2/10) = 2.2
      between-replication standard deviations. Checked on the first three fixtures with the first
      9 key metrics (before issue 9 added the routes and costs): 20 other seeds
      against the seed-1 references (540 comparisons) gave |diff| / SE_diff of at most 4.1, no
      failure; reading times x 1.05 fail several key metrics in every fixture (x 1.02 already in
      the heavy one), and x 1.3 fails 4 to 8 of the 9 by 5 to 60 SE_diff. With 5 replications
      instead of 10 the same seeds produced a |diff| / SE_diff of 5.03 (outsourcing with a
      binding daily cap is far from normal), hence 10.
    * ``REL_TOL = 0.01``: differences under 1% of the reference mean are immaterial for a planning
      model, so they never fail, even when SE_diff is ~0 (metrics that barely vary between
      replications, or identical values in an environment with identical streams but different
      last-bit rounding).
    * ``ABS_TOL = 1e-9``: a floor for metrics whose reference mean is 0 (e.g. nothing outsourced),
      so that rounding noise around zero is not drift while any real count is.
    A metric undefined (NaN) in every replication of both runs passes; one defined in only one of
    them fails.

    When the fixture's config_id differs from the reference's (someone edited the fixture or the
    schema's resolved form changed), the scenario fails with a message to run
    ``emrad-sim regress --update --reason TEXT``; the statistical comparison is still shown, for
    information.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sim.atomic import atomic_write
from sim.experiment import run_experiment
from sim.loading import load_scenario
from sim.metrics import ALL
from sim.results_io import git_commit, package_versions
from sim.scenario import Scenario

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PARAMS_DIR = PROJECT_ROOT / "params" / "regression"
REFERENCE_DIR = PROJECT_ROOT / "results" / "reference"
REPLICATIONS_FILE = "replications.csv"
REFERENCE_FILE = "reference.json"

SEED = 1
REPLICATIONS = 10
KEYS = ["replication", "trust", "modality", "urgency", "metric"]
COLUMNS = [*KEYS, "value"]
FLOAT_FORMAT = "%.17g"  # 17 significant digits: every float64 reads back exactly
NA_REP = "nan"  # float("nan") reads it back

KEY_METRICS = ("arrivals", "reported", "outsourced", "teleradiology", "unreported_end", "share_within_target",
               "tat_median_h", "tat_p90_h", "reported_home", "home_reading_hours", "reported_brokered", "cost_capacity",
               "cost_outsourced",
               "cost_teleradiology", "cost_home", "cost_total", "utilisation")
K_SE = 5.0
REL_TOL = 0.01
ABS_TOL = 1e-9
MAX_LISTED_DIFFERENCES = 5
FINGERPRINT_PACKAGES = ("numpy", "scipy", "simpy", "pandas")

EXIT_OK, EXIT_DRIFT, EXIT_BAD_USAGE = 0, 1, 2
UPDATE_HINT = 'emrad-sim regress --update --reason "..."'


class RegressionError(ValueError):
    """A reference folder that cannot be used (missing, incomplete or altered)."""


# -- environment and fixtures --------------------------------------------------------------------
def fingerprint() -> dict[str, str]:
    """What must match for bit-identical results: python, the numeric libraries and the platform."""
    versions = package_versions()
    return {"python": versions["python"], **{name: versions[name] for name in FINGERPRINT_PACKAGES},
            "machine": platform.machine(), "system": platform.system()}


def fixtures(params_dir: Path | None = None) -> dict[str, Path]:
    """Reference scenario files by name (file stem), sorted; `params_dir` defaults to PARAMS_DIR."""
    return {path.stem: path for path in sorted(Path(params_dir or PARAMS_DIR).glob("*.toml"))}


def _select(available: Mapping[str, Path], names: Sequence[str] | None, params_dir: Path) -> dict[str, Path]:
    if not available:
        raise RegressionError(f"no regression fixtures (*.toml) in {params_dir}")
    if names is None:
        return dict(available)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise RegressionError(f"no fixture named {', '.join(unknown)} in {params_dir}; "
                              f"there are {', '.join(available)}")
    return {name: available[name] for name in names}


def kept_rows(tidy: pd.DataFrame) -> pd.DataFrame:
    """The rows stored in a reference: trust and consortium levels, in a fixed order."""
    rows = tidy.loc[tidy["modality"] == ALL, COLUMNS]
    rows = rows.astype({"replication": "int64", "trust": str, "modality": str, "urgency": str, "metric": str,
                        "value": "float64"})
    return rows.sort_values(KEYS, kind="stable").reset_index(drop=True)


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(Path(path).resolve())


# -- references on disk --------------------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """A stored reference: its manifest fields and the table of replication values."""

    name: str
    folder: Path
    config_id: str
    seed: int
    replications: int
    fingerprint: dict[str, str]
    reason: str
    written_at: str
    git_commit: str | None
    table: pd.DataFrame = field(repr=False)


def _csv_text(table: pd.DataFrame) -> str:
    return table.to_csv(index=False, float_format=FLOAT_FORMAT, na_rep=NA_REP, lineterminator="\n")


def _read_table(path: Path) -> pd.DataFrame:
    # values are parsed by Python's float(), which is correctly rounded, so that "%.17g" reads back
    # bit for bit whatever pandas' own float parser does in the installed version
    table = pd.read_csv(path, dtype={"replication": "int64", "trust": str, "modality": str, "urgency": str,
                                     "metric": str, "value": str}, keep_default_na=False)
    if list(table.columns) != COLUMNS:
        raise RegressionError(f"{path}: columns {list(table.columns)}, expected {COLUMNS}")
    try:
        table["value"] = np.array([float(v) for v in table["value"]], dtype="float64")
    except ValueError as exc:
        raise RegressionError(f"{path}: {exc}") from None
    return table


def load_reference(folder: Path) -> Reference:
    folder = Path(folder)
    manifest_path, table_path = folder / REFERENCE_FILE, folder / REPLICATIONS_FILE
    if not manifest_path.exists():
        what = "incomplete (no reference.json: an update was interrupted?)" if table_path.exists() else "missing"
        raise RegressionError(f"reference {folder} is {what}; create it with {UPDATE_HINT}")
    try:
        meta = json.loads(manifest_path.read_text(encoding="utf-8"))
        digest = hashlib.sha256(table_path.read_bytes()).hexdigest()
    except (OSError, json.JSONDecodeError) as exc:
        raise RegressionError(f"reference {folder} cannot be read: {exc}") from None
    if digest != meta.get("replications_sha256"):
        raise RegressionError(f"{table_path} does not match the sha256 in {manifest_path} (edited by hand, or an "
                              f"interrupted update); regenerate with {UPDATE_HINT}")
    try:
        return Reference(name=folder.name, folder=folder, config_id=meta["config_id"], seed=int(meta["seed"]),
                         replications=int(meta["replications"]), fingerprint=dict(meta["fingerprint"]),
                         reason=meta["reason"], written_at=meta["written_at"], git_commit=meta.get("git_commit"),
                         table=_read_table(table_path))
    except KeyError as exc:
        raise RegressionError(f"{manifest_path} has no {exc.args[0]!r} field") from None


def update_references(reason: str, *, names: Sequence[str] | None = None, params_dir: Path | None = None,
                      reference_dir: Path | None = None, seed: int = SEED, replications: int = REPLICATIONS,
                      backend: str = "processes", workers: int | None = None, progress: bool = False) -> list[Path]:
    """Rerun the fixtures (all, or `names`) and rewrite their reference folders; returns the folders.

    `reason` (why the references change: a model fix, a new fixture...) is required and recorded.
    Every scenario runs before anything is written, so a failing run changes no reference.
    `params_dir` and `reference_dir` default to PARAMS_DIR and REFERENCE_DIR.
    """
    if reason is None or not reason.strip():
        raise ValueError(f"updating the references needs a reason (recorded in {REFERENCE_FILE}), "
                         f"e.g. {UPDATE_HINT}")
    params_dir, reference_dir = Path(params_dir or PARAMS_DIR), Path(reference_dir or REFERENCE_DIR)
    selected = _select(fixtures(params_dir), names, params_dir)
    scenarios = {name: load_scenario(path) for name, path in selected.items()}
    tables = {name: kept_rows(run_experiment(scn, replications=replications, seed=seed, backend=backend,
                                             workers=workers, progress=progress).replications)
              for name, scn in scenarios.items()}
    env, commit = fingerprint(), git_commit()
    written = []
    for name, scn in scenarios.items():
        folder = reference_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / REFERENCE_FILE).unlink(missing_ok=True)  # incomplete until the new manifest lands
        text = _csv_text(tables[name])
        atomic_write(folder / REPLICATIONS_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        meta = {
            "scenario": name,
            "scenario_name": scn.name,
            "fixture": _relative(selected[name]),
            "config_id": scn.config_id,
            "seed": seed,
            "replications": replications,
            "backend": backend,
            "rows": "trust and consortium levels (modality == ALL) of the tidy replications table",
            "replications_file": REPLICATIONS_FILE,
            "replications_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "fingerprint": env,
            "reason": reason.strip(),
            "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": commit,
        }
        manifest_text = json.dumps(meta, indent=2) + "\n"
        atomic_write(folder / REFERENCE_FILE, lambda tmp: tmp.write_text(manifest_text, encoding="utf-8"))
        written.append(folder)
    return written


# -- comparison ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    """One stored value that the rerun did not reproduce (NaN marks a row missing on that side)."""

    replication: int
    trust: str
    modality: str
    urgency: str
    metric: str
    reference: float
    current: float


@dataclass(frozen=True)
class ExactTier:
    applies: bool
    skipped_because: str | None = None
    n_compared: int = 0
    n_different: int = 0
    first_differences: tuple[Difference, ...] = ()

    @property
    def passed(self) -> bool | None:
        """True / False when the tier applied, None when it was skipped."""
        return self.n_different == 0 if self.applies else None


@dataclass(frozen=True)
class MetricCheck:
    metric: str
    mean_ref: float
    mean_now: float
    sd_ref: float
    sd_now: float
    n_ref: int
    n_now: int
    diff: float
    se_diff: float
    margin: float
    passed: bool

    @property
    def z(self) -> float:
        """diff / SE_diff (NaN when SE_diff is 0 or undefined)."""
        return self.diff / self.se_diff if self.se_diff > 0 else math.nan


@dataclass(frozen=True)
class StatisticalTier:
    checks: tuple[MetricCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed_metrics(self) -> list[str]:
        return [c.metric for c in self.checks if not c.passed]


@dataclass(frozen=True)
class ScenarioReport:
    name: str
    problems: tuple[str, ...] = ()  # failures outside the tiers: changed fixture, missing reference
    exact: ExactTier | None = None
    statistical: StatisticalTier | None = None
    reference: Reference | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return (not self.problems and self.exact is not None and self.exact.passed is not False
                and self.statistical is not None and self.statistical.passed)


def compare_exact(reference: pd.DataFrame, current: pd.DataFrame) -> ExactTier:
    """Every stored row must be reproduced with an identical value (NaN == NaN), and no row added."""
    merged = kept_rows(reference).merge(kept_rows(current), on=KEYS, how="outer", suffixes=("_ref", "_now"),
                                        indicator=True, sort=True)
    ref, now = merged["value_ref"].to_numpy(), merged["value_now"].to_numpy()
    same = (merged["_merge"] == "both").to_numpy() & ((ref == now) | (np.isnan(ref) & np.isnan(now)))
    bad = merged[~same]
    first = tuple(Difference(int(r.replication), r.trust, r.modality, r.urgency, r.metric, float(r.value_ref),
                             float(r.value_now)) for r in bad.head(MAX_LISTED_DIFFERENCES).itertuples())
    return ExactTier(applies=True, n_compared=len(merged), n_different=len(bad), first_differences=first)


def _consortium(table: pd.DataFrame, metric: str) -> np.ndarray:
    rows = table[(table["trust"] == ALL) & (table["modality"] == ALL) & (table["metric"] == metric)]
    values = rows["value"].to_numpy(dtype=float)
    return values[~np.isnan(values)]


def _mean_sd(values: np.ndarray) -> tuple[float, float]:
    if values.size == 0:
        return math.nan, math.nan
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def compare_metric(metric: str, ref_values: np.ndarray, now_values: np.ndarray) -> MetricCheck:
    """Equivalence of replication means within the margin documented in the module docstring."""
    ref_values, now_values = np.asarray(ref_values, float), np.asarray(now_values, float)
    ref_values, now_values = ref_values[~np.isnan(ref_values)], now_values[~np.isnan(now_values)]
    (mean_ref, sd_ref), (mean_now, sd_now) = _mean_sd(ref_values), _mean_sd(now_values)
    n_ref, n_now = ref_values.size, now_values.size
    if n_ref == 0 or n_now == 0:  # undefined in every replication of one run (or both)
        return MetricCheck(metric, mean_ref, mean_now, sd_ref, sd_now, n_ref, n_now, math.nan, math.nan, math.nan,
                           passed=n_ref == n_now)
    se_diff = math.sqrt(sd_now ** 2 / n_now + sd_ref ** 2 / n_ref)
    margin = max(K_SE * se_diff, REL_TOL * abs(mean_ref), ABS_TOL)
    diff = mean_now - mean_ref
    return MetricCheck(metric, mean_ref, mean_now, sd_ref, sd_now, n_ref, n_now, diff, se_diff, margin,
                       passed=abs(diff) <= margin)


def compare_statistical(reference: pd.DataFrame, current: pd.DataFrame,
                        metrics: Sequence[str] = KEY_METRICS) -> StatisticalTier:
    return StatisticalTier(tuple(compare_metric(m, _consortium(reference, m), _consortium(current, m))
                                 for m in metrics))


def fingerprint_differences(stored: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    return [f"{key} {stored.get(key, '?')} -> {current.get(key, '?')}"
            for key in sorted(set(stored) | set(current)) if stored.get(key) != current.get(key)]


def compare(reference: Reference, current: pd.DataFrame, *, config_id: str,
            current_fingerprint: Mapping[str, str]) -> ScenarioReport:
    """Both tiers for one scenario: `current` is the rerun's tidy replications table."""
    problems: list[str] = []
    if config_id != reference.config_id:
        problems.append(f"the fixture has changed since the reference was written (config_id "
                        f"{reference.config_id[:12]} -> {config_id[:12]}); if the change is intended, "
                        f"regenerate the references: {UPDATE_HINT}")
        exact = ExactTier(applies=False, skipped_because="fixture changed")
    elif env_changes := fingerprint_differences(reference.fingerprint, current_fingerprint):
        exact = ExactTier(applies=False, skipped_because="environment differs: " + ", ".join(env_changes))
    else:
        exact = compare_exact(reference.table, current)
    return ScenarioReport(reference.name, tuple(problems), exact, compare_statistical(reference.table, current),
                          reference)


@dataclass(frozen=True)
class RegressionReport:
    reference_dir: Path
    fingerprint: dict[str, str]
    scenarios: tuple[ScenarioReport, ...]

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.scenarios)

    @property
    def failed(self) -> list[str]:
        return [s.name for s in self.scenarios if not s.passed]

    def to_text(self) -> str:
        return format_report(self)


def check(*, names: Sequence[str] | None = None, params_dir: Path | None = None, reference_dir: Path | None = None,
          backend: str = "processes", workers: int | None = None, scenarios: Mapping[str, Scenario] | None = None,
          progress: bool = False) -> RegressionReport:
    """Rerun the fixtures (all, or `names`) with each reference's seed and replications and compare.

    `scenarios` runs the given scenario in place of a fixture file of that name (tests use it to
    check a deliberately perturbed scenario). With `names` unset, a reference folder whose fixture
    no longer exists is reported as a failure too. `params_dir` and `reference_dir` default to
    PARAMS_DIR and REFERENCE_DIR.
    """
    params_dir, reference_dir = Path(params_dir or PARAMS_DIR), Path(reference_dir or REFERENCE_DIR)
    available = fixtures(params_dir)
    selected = _select(available, names, params_dir)
    env = fingerprint()
    reports = []
    for name, path in selected.items():
        try:
            reference = load_reference(reference_dir / name)
        except RegressionError as exc:
            reports.append(ScenarioReport(name, (str(exc),)))
            continue
        scenario = scenarios[name] if scenarios and name in scenarios else load_scenario(path)
        result = run_experiment(scenario, replications=reference.replications, seed=reference.seed,
                                backend=backend, workers=workers, progress=progress)
        reports.append(compare(reference, result.replications, config_id=scenario.config_id,
                               current_fingerprint=env))
    if names is None and reference_dir.is_dir():
        for folder in sorted(p for p in reference_dir.iterdir()
                             if p.is_dir() and not p.name.startswith(".") and p.name not in available):
            reports.append(ScenarioReport(folder.name, (
                f"reference {folder} has no fixture {params_dir / (folder.name + '.toml')}: restore the fixture "
                f"or delete the reference folder",)))
    return RegressionReport(reference_dir, env, tuple(reports))


# -- text ----------------------------------------------------------------------------------------
def _g(value: float) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value:.6g}"


def format_report(report: RegressionReport) -> str:
    env = report.fingerprint
    lines = [f"regression check: {len(report.scenarios)} scenario(s) against {report.reference_dir}",
             "environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), ""]
    for s in report.scenarios:
        lines.append(f"{s.name}: {'PASS' if s.passed else 'FAIL'}")
        if s.reference is not None:
            ref = s.reference
            lines.append(f"  reference: seed {ref.seed}, {ref.replications} replications, written {ref.written_at} "
                         f"at {ref.git_commit or 'unknown commit'}; reason: {ref.reason}")
        lines += [f"  problem: {p}" for p in s.problems]
        if s.exact is not None:
            if not s.exact.applies:
                lines.append(f"  exact tier: skipped ({s.exact.skipped_because})")
            elif s.exact.passed:
                lines.append(f"  exact tier: pass, {s.exact.n_compared} values identical")
            else:
                lines.append(f"  exact tier: FAIL, {s.exact.n_different} of {s.exact.n_compared} values differ; first:")
                table = pd.DataFrame([{"replication": d.replication, "trust": d.trust, "metric": d.metric,
                                       "reference": repr(d.reference), "current": repr(d.current)}
                                      for d in s.exact.first_differences])
                lines += ["    " + line for line in table.to_string(index=False).splitlines()]
        if s.statistical is not None:
            st = s.statistical
            verdict = "pass" if st.passed else "FAIL on " + ", ".join(st.failed_metrics)
            changed = s.exact is not None and s.exact.skipped_because == "fixture changed"
            note = " (for information: the fixture changed)" if changed else ""
            lines.append(f"  statistical tier: {verdict}{note}; "
                         f"margin = max({K_SE:g} x SE_diff, {REL_TOL:g} x |ref mean|)")
            table = pd.DataFrame([{"metric": c.metric, "ref mean": _g(c.mean_ref), "now mean": _g(c.mean_now),
                                   "diff": _g(c.diff), "margin": _g(c.margin), "diff/SE": _g(c.z),
                                   "ok": "yes" if c.passed else "NO"} for c in st.checks])
            lines += ["    " + line for line in table.to_string(index=False).splitlines()]
        lines.append("")
    if report.passed:
        lines.append(f"regress: all {len(report.scenarios)} scenario(s) pass")
    else:
        lines.append(f"regress: FAIL: {', '.join(report.failed)}")
    return "\n".join(lines)


# -- command line --------------------------------------------------------------------------------
def cmd_regress(args: argparse.Namespace) -> int:
    """`emrad-sim regress [--update --reason TEXT] [--reference-dir DIR]`: 0 pass, 1 drift, 2 bad usage."""
    reference_dir = Path(args.reference_dir or REFERENCE_DIR)
    reason = args.reason
    if args.update:
        if reason is None or not reason.strip():
            print(f"emrad-sim regress: --update needs --reason TEXT (why the references change; it is recorded), "
                  f"e.g. {UPDATE_HINT}", file=sys.stderr)
            return EXIT_BAD_USAGE
        try:
            written = update_references(reason, reference_dir=reference_dir)
        except RegressionError as exc:
            print(f"emrad-sim regress: {exc}", file=sys.stderr)
            return EXIT_BAD_USAGE
        size = sum(p.stat().st_size for folder in written for p in folder.iterdir() if p.is_file())
        for folder in written:
            print(f"wrote {folder}/")
        print(f"{len(written)} reference(s), {size / 1024:.0f} KB, reason: {reason.strip()}")
        return EXIT_OK
    if reason is not None:
        print("emrad-sim regress: --reason only goes with --update", file=sys.stderr)
        return EXIT_BAD_USAGE
    if not reference_dir.is_dir():
        print(f"emrad-sim regress: no reference folder {reference_dir}; create the references with {UPDATE_HINT}",
              file=sys.stderr)
        return EXIT_BAD_USAGE
    try:
        report = check(reference_dir=reference_dir)
    except RegressionError as exc:
        print(f"emrad-sim regress: {exc}", file=sys.stderr)
        return EXIT_BAD_USAGE
    print(report.to_text())
    return EXIT_OK if report.passed else EXIT_DRIFT
