"""Summary statistics over scored files: mean, std, 95 % CI, and paired deltas.

Statistics are over the files that were scored; the failures are counted beside them,
never folded into the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .metrics import MetricSpec
from .pairing import NOISY
from .scoring import Row


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof 1), median and Student-t 95 % CI of the mean over ``n`` values."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    median: float = math.nan


def describe(values) -> Summary:
    """Summarise finite ``values``; NaN statistics when there are too few of them.

    Example:
        >>> s = describe([1.0, 2.0, 4.0])
        >>> s.n, round(s.mean, 4), round(s.std, 4), s.median, round(s.ci_low, 4)
        (3, 2.3333, 1.5275, 2.0, -1.4612)
    """
    from scipy.special import stdtrit  # Student-t quantile; scipy.stats takes 0.8 s to import

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean, median = float(np.mean(x)), float(np.median(x))
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan, median)
    std = float(np.std(x, ddof=1))
    half_width = float(stdtrit(n - 1, 0.975)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half_width, mean + half_width, median)


@dataclass(frozen=True)
class MetricSummary:
    """One system and one metric: the statistics, the failure count, the delta over noisy."""

    system: str
    metric: str
    stats: Summary
    n_failed: int
    n_not_applicable: int
    delta: Summary | None  # paired (system − noisy) over files scored in both


def summarise(rows: list[Row], metrics: list[MetricSpec], systems: list[str]) -> list[MetricSummary]:
    """A :class:`MetricSummary` per (system, metric), in the order given."""
    by_system = {name: [row for row in rows if row.system == name] for name in systems}
    noisy = {row.file: row for row in by_system.get(NOISY, [])}
    out = []
    for name in systems:
        system_rows = by_system[name]
        for spec in metrics:
            values = [row.values[spec.name] for row in system_rows]
            failed = sum(1 for r in system_rows if r.file_error or spec.name in r.errors)
            not_applicable = sum(1 for r in system_rows if spec.name in r.not_applicable)
            delta = None
            if noisy and name != NOISY:
                delta = describe([row.values[spec.name] - noisy[row.file].values[spec.name]
                                  for row in system_rows if row.file in noisy])
            out.append(MetricSummary(name, spec.name, describe(values), failed,
                                     not_applicable, delta))
    return out


SUMMARY_COLUMNS = ("system", "metric", "mean", "std", "median", "ci95_low", "ci95_high", "n",
                   "n_failed", "delta_mean")
NO_MATCH = "(no match)"  # the group value of files that a group-by pattern does not match


@dataclass(frozen=True)
class Section:
    """The summaries of one condition (``group`` maps group names to values; empty = all)."""

    group: dict
    summaries: list[MetricSummary]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.group.items()) or "all files"


def sections(rows: list[Row], metrics: list[MetricSpec], systems: list[str],
             pattern=None) -> list[Section]:
    """All files, then (with a compiled ``pattern`` with named groups) one section per
    combination of the groups' values in the file names, in natural order."""
    out = [Section({}, summarise(rows, metrics, systems))]
    if pattern is None:
        return out
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        match = pattern.search(row.file)
        key = tuple((name, (match.group(name) or "") if match else NO_MATCH)
                    for name in pattern.groupindex)
        groups.setdefault(key, []).append(row)
    for key in sorted(groups, key=_natural):
        group_rows = groups[key]
        present = [s for s in systems if any(r.system == s for r in group_rows)]
        out.append(Section(dict(key), summarise(group_rows, metrics, present)))
    return out


def _natural(key):
    """Sort group values numerically where they are numbers (-5 before 10)."""
    out = []
    for _, value in key:
        try:
            out.append((0, float(value), ""))
        except ValueError:
            out.append((1, 0.0, value))
    return out


def summary_rows(all_sections: list[Section], group_names: list[str]):
    """The summary CSV as text cells: a header, then one line per (condition, system,
    metric), group columns first when grouped."""
    from .results import csv_cell

    yield [*group_names, *SUMMARY_COLUMNS]
    for section in all_sections:
        for m in section.summaries:
            s = m.stats
            delta = m.delta.mean if m.delta is not None else math.nan
            yield [*(section.group.get(g, "") for g in group_names), m.system, m.metric,
                   *map(csv_cell, (s.mean, s.std, s.median, s.ci_low, s.ci_high, s.n,
                                   m.n_failed, delta))]

