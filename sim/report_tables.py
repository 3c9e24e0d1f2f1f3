"""Cells and tables of the HTML report: number formats, confidence-interval text, heat-map shading.

Shared by :mod:`sim.report` and :mod:`sim.report_market`; nothing here draws or reads files.
"""

from __future__ import annotations

import math

import pandas as pd


def fmt(format_: str, value) -> str:
    """A number formatted for the report; an em dash when undefined."""
    try:
        if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
            return "—"
    except (TypeError, ValueError):
        pass
    return format_.format(value)


def ci_text(format_: str, low, high, share: bool = False) -> str:
    """'95% CI a to b', or '' without an interval (one replication). A share's interval is clipped to [0, 1]."""
    if pd.isna(low) or pd.isna(high):
        return ""
    if share:
        low, high = max(low, 0.0), min(high, 1.0)
    return f"95% CI {fmt(format_, low)} to {fmt(format_, high)}"


def heat_style(value: float, top: float, rgb: tuple[int, int, int] = (31, 78, 121)) -> str:
    """Inline background for a heat-map cell (alpha by value/top)."""
    if not top or pd.isna(value) or value <= 0:
        return ""
    alpha = 0.1 + 0.6 * min(value / top, 1.0)
    return f"background: rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha:.2f})"


def table_block(columns: list[str], rows: list[list], styles: list[list[str]] | None = None, index_cols: int = 1) -> dict:
    return {"columns": columns, "rows": rows, "styles": styles or [[""] * len(r) for r in rows],
            "index_cols": index_cols}
