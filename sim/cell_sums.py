"""Per-group sums of many per-exam quantities in few passes over a consortium-year's exams.

The metrics of one replication are ~40 sums over every exam (counts of exams meeting a condition,
hours, pounds) per trust x modality x urgency cell. Summing each with its own masked copy and
bincount costs two or three passes over millions of exams per metric, and a full-size temporary
each. Here a condition is one bit of a packed byte (eight conditions counted by one bincount), and
a quantity split by route (cost by route, say) is one bincount over cell x route.

Exact: a count is an integer whatever the grouping, and np.bincount adds each bin's weights in
exam order, which is the very sum a masked array with zeros elsewhere gives (x + 0.0 == x).
"""

from __future__ import annotations

import numpy as np

FLAGS_PER_BYTE = 8


class CellSums:
    """Accumulates named per-group sums (float64 arrays of length `n_groups`) into `sums`.

    `group` is each exam's group code (int64: np.bincount converts any other integer type to it,
    a full-size copy per call).
    """

    def __init__(self, group: np.ndarray, n_groups: int):
        self.group = group.astype(np.int64, copy=False)
        self.n_groups = n_groups
        self.sums: dict[str, np.ndarray] = {}
        self._bits: np.ndarray | None = None
        self._flag_names: list[str] = []

    def count(self, name: str, condition: np.ndarray) -> None:
        """Exams for which `condition` (bool per exam) holds, per group."""
        if self._bits is None:
            self._bits = np.zeros(len(self.group), dtype=np.uint8)
        bit = np.left_shift(condition.view(np.uint8), len(self._flag_names), dtype=np.uint8)
        self._bits |= bit
        del bit
        self._flag_names.append(name)
        if len(self._flag_names) == FLAGS_PER_BYTE:
            self._count_flags()

    def add(self, name: str, values: np.ndarray) -> None:
        """Sum of `values` (float per exam) per group."""
        self.sums[name] = np.bincount(self.group, weights=values, minlength=self.n_groups)

    def add_where(self, name: str, condition: np.ndarray, values: np.ndarray, *, overwrite_values: bool = False
                  ) -> None:
        """Sum of `values` over the exams where `condition` holds (values elsewhere, NaN included, are ignored).

        With `overwrite_values` (the caller's own temporary) the values outside the condition are set
        to 0 in place: no full-size key array.
        """
        if overwrite_values:
            np.copyto(values, 0.0, where=~condition)
            self.sums[name] = np.bincount(self.group, weights=values, minlength=self.n_groups)
            return
        key = self.group * 2
        key += condition
        self.sums[name] = np.bincount(key, weights=values, minlength=2 * self.n_groups)[1::2].copy()

    def add_by_code(self, names: dict[int, str], code: np.ndarray, n_codes: int, values: np.ndarray) -> None:
        """Sums of `values` split by a small code per exam (e.g. its route): `names` maps the codes wanted to names."""
        key = self.group * n_codes
        key += code
        split = np.bincount(key, weights=values, minlength=n_codes * self.n_groups).reshape(self.n_groups, n_codes)
        for c, name in names.items():
            self.sums[name] = split[:, c].copy()

    def finish(self) -> dict[str, np.ndarray]:
        """Every sum, counts as float64 (exact below 2^53)."""
        if self._flag_names:
            self._count_flags()
        self._bits = None
        return self.sums

    def _count_flags(self) -> None:
        key = self.group * (1 << FLAGS_PER_BYTE)
        key += self._bits
        combos = np.bincount(key, minlength=self.n_groups << FLAGS_PER_BYTE).reshape(self.n_groups, -1)
        del key
        patterns = np.arange(1 << FLAGS_PER_BYTE)
        for k, name in enumerate(self._flag_names):
            self.sums[name] = combos[:, (patterns >> k) & 1 == 1].sum(axis=1).astype(np.float64)
        self._bits[:] = 0
        self._flag_names = []
