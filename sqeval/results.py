"""Shared vocabulary of results, on the ground floor: how a row becomes CSV cells.

The per-file CSV is ``file,system,<one column per metric>,error``: a metric cell is the
shortest text that round-trips the float64 (``repr``), or empty when the value could not
be computed, with ``metric: reason`` in ``error``. The CLI's ``--csv`` and
``Results.to_frame()`` both come from :func:`write_rows`, so they agree cell for cell.
"""

from __future__ import annotations

import csv
import math


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
