"""Shared vocabulary of results, on the ground floor: the row of one (file, system), the
names of the two systems every part knows, and how a row becomes CSV cells.

The per-file CSV is ``file,system,<one column per metric>,error``: a metric cell is the
shortest text that round-trips the float64 (``repr``), or empty when the value could not
be computed, with ``metric: reason`` in ``error``. The CLI's ``--csv`` and
``Results.to_frame()`` both come from :func:`write_rows`, so they agree cell for cell.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from typing import Iterable

NOISY = "noisy"  # the system name of the noisy inputs: the baseline of every delta
CLEAN = "clean"  # the system name of the clean references, scored by non-intrusive metrics


@dataclass
class Row:
    """The result for one (file, system): values, and why any value is missing.

    Attributes:
        values: metric name → value; NaN where it could not be computed.
        errors: metric name → reason, for failures.
        not_applicable: metric name → reason, for metrics that do not apply here (a
            failure only when the metric was asked for by name).
        file_error: why nothing at all could be scored, or None.
        notes: what was done to the signals (resampling, trimming).
    """

    file: str
    system: str
    values: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    file_error: str | None = None
    notes: list[str] = field(default_factory=list)
    fresh: dict = field(default_factory=dict, repr=False, compare=False)  # computed now, to store

    @property
    def failed(self) -> bool:
        return self.file_error is not None or bool(self.errors)

    def error_text(self, metric_names: Iterable[str]) -> str:
        """The CSV ``error`` cell: ``metric: reason`` per missing value, ``; ``-separated."""
        if self.file_error is not None:
            return self.file_error
        reasons = {**self.not_applicable, **self.errors}
        return "; ".join(f"{name}: {reasons[name]}" for name in metric_names if name in reasons)


def csv_cell(value) -> str:
    """A CSV number: the shortest text that round-trips the float64; empty for NaN/None.

    Example:
        >>> csv_cell(0.1), csv_cell(float("nan")), csv_cell(3)
        ('0.1', '', '3')
    """
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(value)


def write_rows(stream, rows, names: list[str], second: str = "system") -> None:
    """Write ``rows`` (objects with ``file``, ``system``, ``values``, ``error_text``) as the
    per-file CSV to ``stream``: ``file,<second>,<names>,error``."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["file", second, *names, "error"])
    for row in rows:
        writer.writerow([row.file, row.system, *(csv_cell(row.values[name]) for name in names),
                         row.error_text(names)])
