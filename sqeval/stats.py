"""Statistics over scored files, in one place: the statistics of a set of values, the
paired difference of two sets, and the paired tests.

Conventions:
    NaN (or ±inf) marks a file that was not scored: statistics are over the finite
    values only, and the failures are counted beside them, never folded into the numbers.
    A paired difference is ``candidate − baseline`` per key (a file, or a (file, system)
    pair) found in both; ``system − noisy`` for the improvement over the noisy input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Hashable, Mapping

import numpy as np

from .metrics import MetricSpec
from .results import NOISY

if TYPE_CHECKING:
    from .results import Row

# How every confidence interval sqeval prints is computed: a metric's mean, and the mean
# paired difference (score's Δ vs noisy, compare's candidate − baseline) alike.
CI_METHOD = "Student-t, mean ± t(0.975, n − 1)·s/√n"
# Statistics by name, besides ``pNN`` (the NN-th percentile).
STATISTICS = ("mean", "median", "min", "max", "std", "ci_low", "ci_high")


def finite(values) -> np.ndarray:
    """The finite entries of ``values``, as a float64 array."""
    x = np.asarray(values, dtype=np.float64)
    return x[np.isfinite(x)]


def statistic(values, stat: str) -> float:
    """``stat`` of the finite ``values``; NaN when there are too few of them.

    Args:
        values: numbers; NaN and ±inf are left out.
        stat: ``mean``, ``median``, ``min``, ``max``, ``std`` (sample, ddof 1), ``ci_low``
            or ``ci_high`` (the Student-t 95 % CI of the mean), or ``pNN``, the NN-th
            percentile (linear interpolation, 0 ≤ NN ≤ 100). NaN for no values, and for
            ``std`` and the CI for a single one.

    Raises:
        ValueError: an unknown ``stat``, or a percentile outside 0 … 100.

    Example:
        >>> statistic([1.0, 2.0, 3.0, 4.0, float("nan")], "p25"), statistic([1, 5], "median")
        (1.75, 3.0)
    """
    if stat.startswith("p"):
        return _percentile(finite(values), _percentile_rank(stat))
    if stat not in STATISTICS:
        raise ValueError(f"unknown statistic {stat!r}; expected one of {', '.join(STATISTICS)} "
                         "or pNN (the NN-th percentile, 0 ≤ NN ≤ 100)")
    x = finite(values)
    if len(x) == 0 or (len(x) == 1 and stat in ("std", "ci_low", "ci_high")):
        return math.nan
    if stat in ("ci_low", "ci_high"):
        mean, half_width = float(np.mean(x)), _t_half_width(x)
        return mean - half_width if stat == "ci_low" else mean + half_width
    if stat == "std":
        return float(np.std(x, ddof=1))
    return float({"mean": np.mean, "median": np.median, "min": np.min, "max": np.max}[stat](x))


def _percentile_rank(stat: str) -> float:
    try:
        rank = float(stat[1:])
    except ValueError:
        rank = math.nan
    if not 0 <= rank <= 100:
        raise ValueError(f"percentile {stat!r}: expected pNN with 0 ≤ NN ≤ 100, e.g. p10")
    return rank


def _percentile(x: np.ndarray, rank: float) -> float:
    return float(np.percentile(x, rank)) if len(x) else math.nan


def _t_half_width(x: np.ndarray) -> float:
    """Half the width of the Student-t CI of the mean: t(0.975, n − 1) · s / √n."""
    from scipy.special import stdtrit  # Student-t quantile; scipy.stats takes 0.8 s to import

    n = len(x)
    std = float(np.std(x, ddof=1))
    return float(stdtrit(n - 1, 0.975)) * std / math.sqrt(n)


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
    """The :class:`Summary` of the finite ``values``, each field from :func:`statistic`.

    Example:
        >>> s = describe([1.0, 2.0, 4.0])
        >>> s.n, round(s.mean, 4), round(s.std, 4), s.median, round(s.ci_low, 4)
        (3, 2.3333, 1.5275, 2.0, -1.4612)
    """
    x = finite(values)
    return Summary(len(x), *(statistic(x, name)
                             for name in ("mean", "std", "ci_low", "ci_high", "median")))


@dataclass(frozen=True)
class Paired:
    """Two sets of values paired by key: see :func:`paired_difference`."""

    keys: list            # found in both, in the baseline's order
    baseline: np.ndarray  # the values at ``keys``: shape (n,), or (n, k) for k per key
    candidate: np.ndarray
    only_baseline: list   # keys found in the baseline alone, in its order
    only_candidate: list  # keys found in the candidate alone, in its order

    @property
    def differences(self) -> np.ndarray:
        """``candidate − baseline`` at ``keys``; NaN where either side is NaN."""
        return self.candidate - self.baseline

    def subset(self, keep) -> Paired:
        """The pairs where ``keep`` (one bool per key) is true; the unpaired keys stay."""
        keep = np.asarray(keep, dtype=bool)
        return replace(self, keys=[key for key, kept in zip(self.keys, keep) if kept],
                       baseline=self.baseline[keep], candidate=self.candidate[keep])

    def scored(self, column: int | None = None) -> Paired:
        """The pairs scored on both sides (both values finite), with 1-D values:
        ``column`` picks one value per key when there are several."""
        pairs = self if column is None else replace(
            self, baseline=self.baseline[:, column], candidate=self.candidate[:, column])
        return pairs.subset(np.isfinite(pairs.baseline) & np.isfinite(pairs.candidate))


def paired_difference(baseline: Mapping[Hashable, object],
                      candidate: Mapping[Hashable, object]) -> Paired:
    """Pair two sets of values by key (a file, or a (file, system) pair).

    Args:
        baseline, candidate: key → a number, or an equal-length vector of numbers (one
            per metric); a dict, or a pandas Series indexed by key.

    Returns:
        :class:`Paired`: the keys found in both in the baseline's order, the values there,
        their ``differences`` (candidate − baseline), and the keys found on one side only.
        Keys whose value is NaN stay paired; :meth:`Paired.scored` drops them.

    Example:
        >>> pairs = paired_difference({"a": 1.0, "b": 2.0, "c": 3.0},
        ...                           {"c": 5.0, "a": 1.5, "d": 0.0})
        >>> pairs.keys, pairs.differences.tolist(), pairs.only_baseline, pairs.only_candidate
        (['a', 'c'], [0.5, 2.0], ['b'], ['d'])
    """
    base, cand = dict(baseline.items()), dict(candidate.items())
    keys = [key for key in base if key in cand]
    return Paired(keys, np.asarray([base[key] for key in keys], dtype=np.float64),
                  np.asarray([cand[key] for key in keys], dtype=np.float64),
                  [key for key in base if key not in cand],
                  [key for key in cand if key not in base])


def describe_difference(pairs: Paired) -> Summary:
    """The :class:`Summary` of ``candidate − baseline`` over the keys scored on both sides:
    the Δ of ``score`` (system − noisy) and of ``compare`` (candidate − baseline), so both
    report the same mean and the same CI (:data:`CI_METHOD`) for the same pairs.

    Example:
        >>> s = describe_difference(paired_difference({"a": 1.0, "b": 2.0, "c": 0.0},
        ...                                           {"a": 1.5, "b": 3.0, "c": float("nan")}))
        >>> s.n, s.mean
        (2, 0.75)
    """
    return describe(pairs.scored().differences)


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test (scipy's; exact for small
    samples without ties or zeros); NaN when every difference is 0."""
    from scipy.stats import wilcoxon

    if not np.any(differences):
        return math.nan
    return float(wilcoxon(differences).pvalue)


@dataclass(frozen=True)
class MetricSummary:
    """One system and one metric: the statistics, the failure count, the delta over noisy."""

    system: str
    metric: str
    stats: Summary
    n_failed: int
    n_not_applicable: int
    delta: Summary | None  # paired (system − noisy) over files scored in both


def values_by_file(rows: list[Row], metric: str) -> dict[str, float]:
    """File → the value of ``metric`` (NaN if not scored), for the rows of one system."""
    return {row.file: row.values[metric] for row in rows}


def summarise(rows: list[Row], metrics: list[MetricSpec],
              systems: list[str]) -> list[MetricSummary]:
    """A :class:`MetricSummary` per (system, metric), in the order given."""
    by_system = {name: [row for row in rows if row.system == name] for name in systems}
    noisy = by_system.get(NOISY, [])
    out = []
    for name in systems:
        system_rows = by_system[name]
        for spec in metrics:
            values = [row.values[spec.name] for row in system_rows]
            failed = sum(1 for r in system_rows if r.file_error or spec.name in r.errors)
            not_applicable = sum(1 for r in system_rows if spec.name in r.not_applicable)
            delta = None
            if noisy and name != NOISY:
                delta = describe_difference(paired_difference(
                    values_by_file(noisy, spec.name), values_by_file(system_rows, spec.name)))
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


def group_sources(file: str, paths: dict | None) -> list[str]:
    """Where ``--group-by`` looks for a file's groups, in this order (the first that
    matches gives them): the file's name (its id), then the paths of its clean reference,
    its noisy input and each system's estimate (``paths``: ``provenance["audio"]``)."""
    found = paths.get(file) if isinstance(paths, dict) else None
    found = found if isinstance(found, dict) else {}  # a damaged saved provenance: the name
    ordered = [found.get("clean"), found.get("noisy"),
               *(path for system, path in found.items() if system not in ("clean", "noisy"))]
    return [file, *(path for path in ordered if isinstance(path, str) and path)]


def file_groups(files, pattern, paths: dict | None = None) -> dict[str, tuple]:
    """File → its group key ``((name, value), ...)``, :data:`NO_MATCH` values where no
    source of :func:`group_sources` matches ``pattern``."""
    out = {}
    for file in files:
        match = next((m for m in (pattern.search(source) for source in
                                  group_sources(file, paths)) if m), None)
        out[file] = tuple((name, (match.group(name) or "") if match else NO_MATCH)
                          for name in pattern.groupindex)
    return out


def sections(rows: list[Row], metrics: list[MetricSpec], systems: list[str],
             pattern=None, paths: dict | None = None) -> list[Section]:
    """All files, then (with a compiled ``pattern`` with named groups) one section per
    combination of the groups' values, taken from the file's name or the paths of its
    audio (:func:`group_sources`), in natural order."""
    out = [Section({}, summarise(rows, metrics, systems))]
    if pattern is None:
        return out
    keys = file_groups(dict.fromkeys(row.file for row in rows), pattern, paths)
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        groups.setdefault(keys[row.file], []).append(row)
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


def summary_rows(all_sections: list[Section], group_names: list[str], guard: bool = True):
    """The summary CSV as text cells: a header, then one line per (condition, system,
    metric), group columns first when grouped. The text cells (groups, system, metric)
    go through :func:`~sqeval.results.text_cell`, as in the per-file CSV, unless ``guard``
    is False (``Results.summary()``, a DataFrame that holds the names as they are)."""
    from .results import csv_cell, text_cell

    text = text_cell if guard else str
    yield [*group_names, *SUMMARY_COLUMNS]
    for section in all_sections:
        for m in section.summaries:
            s = m.stats
            delta = m.delta.mean if m.delta is not None else math.nan
            yield [*(text(section.group.get(g, "")) for g in group_names), text(m.system),
                   text(m.metric),
                   *map(csv_cell, (s.mean, s.std, s.median, s.ci_low, s.ci_high, s.n,
                                   m.n_failed, delta))]

