"""Price and reading-time tables of a pilot evaluation: the insourcing tariff, the outsourcing price list
(with urgency factors) and benchmark minutes per exam by modality and band."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TABLES = PROJECT_ROOT / "params" / "reporting_rates.toml"


# ------------------------------------------------------------------------------------------ price tables
def load_reporting_tables(path: str | Path | None = None) -> dict[str, Any]:
    """Tariff, outsourcing prices and benchmark minutes from a TOML file (default params/reporting_rates.toml).

    Returns {"insourcing": {modality: [£ by band]}, "outsourcing": {...}, "urgency_factor": {urgency: x},
    "reading_minutes": {modality: [min by band]}, "income": {...} (commissioner income; empty when the file
    has no [income]), "source": path}.
    """
    path = Path(path) if path is not None else DEFAULT_TABLES
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the reporting tables ({exc})") from None
    outsourcing = dict(data.get("outsourcing", {}))
    factor = outsourcing.pop("urgency_factor", {})
    return {"insourcing": _bands(data.get("insourcing", {}), path, "insourcing"),
            "outsourcing": _bands(outsourcing, path, "outsourcing"),
            "urgency_factor": {str(k): float(v) for k, v in factor.items()},
            "reading_minutes": _bands(data.get("reading_minutes", {}), path, "reading_minutes"),
            "income": _bands(data.get("income", {}), path, "income"),
            "source": shown(path)}


def tables_from_scenario(scn) -> dict[str, Any]:
    """A scenario's own price and reading-time tables, to evaluate its simulated activity log consistently.

    insourcing = finance.insourcing_tariff x home_reporting.tariff_multiplier; outsourcing = the
    outsourcing price list and urgency factors; reading_minutes = the mean of each modality x band
    reading-time distribution; income = finance.commissioner_income (what the owning trust earns per
    reported exam, not what it pays the reader). Parts the scenario lacks are left out (the defaults then apply).
    Pass the result as both ``tariffs`` and ``rates`` of :func:`evaluate_activity`.
    """
    multiplier = scn.home_reporting.tariff_multiplier if scn.home_reporting is not None else 1.0
    tables: dict[str, Any] = {
        "insourcing": {code: [p * multiplier for p in prices] for code, prices in scn.finance.insourcing_tariff.items()},
        "reading_minutes": {},
        "income": {code: list(prices) for code, prices in scn.finance.commissioner_income.items()},
    }
    if scn.outsourcing is not None:
        tables["outsourcing"] = {code: list(prices) for code, prices in scn.outsourcing.price.items()}
        tables["urgency_factor"] = dict(scn.outsourcing.urgency_price_factor)
    for modality in scn.modalities:
        minutes = []
        for band in range(1, len(modality.band_mix) + 1):  # bands 1..n while each has a distribution
            if str(band) not in modality.reading_minutes:
                break
            minutes.append(modality.reading_minutes[str(band)].mean_value)
        if minutes:
            tables["reading_minutes"][modality.code] = minutes
    return tables


def _bands(table: Mapping, source, section: str) -> dict[str, tuple[float, ...]]:
    out = {}
    for code, values in table.items():
        values = [values] if isinstance(values, (int, float)) else values
        if not values or any(not isinstance(v, (int, float)) or v < 0 for v in values):
            raise ValueError(f"{source}: {section}.{code} must be a list of non-negative numbers, one per band")
        out[str(code)] = tuple(float(v) for v in values)
    return out


def shown(path: str | Path) -> str:
    """A path as outputs show it: relative to the project when inside it (no user's home directory)."""
    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else path.name


def resolve_tables(tariffs, rates) -> dict[str, Any]:
    """Defaults from params, overridden by what the caller passed (a path or a mapping)."""
    tables = load_reporting_tables()
    sources = {part: tables["source"] for part in ("insourcing", "outsourcing", "urgency_factor", "reading_minutes",
                                                   "income")}
    if tariffs is not None:
        given = load_reporting_tables(tariffs) if isinstance(tariffs, (str, Path)) else dict(tariffs)
        label = shown(tariffs) if isinstance(tariffs, (str, Path)) else "passed in"
        for part in ("insourcing", "outsourcing", "income"):
            if given.get(part):
                tables[part] = _bands(given[part], label, part)
                sources[part] = label
        if given.get("outsourcing") or given.get("urgency_factor"):  # a price list comes with its own factors
            tables["urgency_factor"] = {str(k): float(v) for k, v in given.get("urgency_factor", {}).items()}
            sources["urgency_factor"] = label
    if rates is not None:
        if isinstance(rates, (str, Path)):
            minutes, label = load_reporting_tables(rates)["reading_minutes"], shown(rates)
        else:
            minutes, label = _bands(rates.get("reading_minutes", rates), "passed in", "reading_minutes"), "passed in"
        if minutes:  # a file without [reading_minutes] keeps the default benchmark
            tables["reading_minutes"], sources["reading_minutes"] = minutes, label
    tables["sources"] = sources
    return tables


def per_exam(table: Mapping[str, Sequence[float]], modality: np.ndarray, band: np.ndarray) -> np.ndarray:
    """table[modality][band - 1] per exam; NaN where the table has no entry."""
    out = np.full(len(modality), np.nan)
    for code, values in table.items():
        rows = np.flatnonzero(modality == code)
        if rows.size:
            values = np.asarray(values, dtype=float)
            index = band[rows] - 1
            ok = (index >= 0) & (index < len(values))
            out[rows[ok]] = values[index[ok]]
    return out


