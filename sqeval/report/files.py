"""The per-file CSV and the JSON document.

CSV: ``file,system,<one column per metric, registry order>,error``; a metric cell is a
number (shortest text that round-trips the float64) or empty when it could not be
computed, with ``metric: reason`` in ``error``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .. import __version__
from ..metrics import MetricSpec
from ..outputs import strict_json, write_atomically  # noqa: F401 - write_atomically: re-exported
from ..results import write_rows
from ..results import Row
from ..stats import MetricSummary, Summary


def write_csv(path: Path, rows: list[Row], names: list[str], second: str = "system") -> None:
    """One line per row: ``file,<second>,<names>,error`` (``second`` is the row's system,
    or for ``sqeval sanity`` its case)."""

    write_atomically(path, lambda stream: write_rows(stream, rows, names, second))


def json_number(value):
    """A JSON number; NaN and ±inf as null."""
    return None if value is None or not math.isfinite(value) else value


def _stats(summary: Summary | None):
    if summary is None:
        return None
    return {key: json_number(value) if key != "n" else value
            for key, value in summary.__dict__.items()}


def document(rows: list[Row], metrics: list[MetricSpec], summaries: list[MetricSummary]) -> dict:
    """Everything a run produced, as plain JSON-ready data (NaN as null)."""
    names = [spec.name for spec in metrics]
    return {
        "sqeval_version": __version__,
        "metrics": [{"name": s.name, "unit": s.unit, "range": s.range_text,
                     "higher_is_better": s.higher_is_better, "definition": s.definition,
                     "rates": s.rates, "reference": s.reference} for s in metrics],
        "rows": [{"file": r.file, "system": r.system,
                  "values": {n: json_number(r.values[n]) for n in names},
                  "errors": r.errors, "not_applicable": r.not_applicable,
                  "file_error": r.file_error, "notes": r.notes} for r in rows],
        "summary": [{"system": m.system, "metric": m.metric, **_stats(m.stats),
                     "n_failed": m.n_failed, "n_not_applicable": m.n_not_applicable,
                     "delta_over_noisy": _stats(m.delta)} for m in summaries],
    }


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as strict JSON (NaN and ±inf as null)."""
    clean = strict_json(data)
    write_atomically(path, lambda stream: json.dump(clean, stream, indent=2, ensure_ascii=False,
                                                    allow_nan=False))
