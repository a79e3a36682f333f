"""Compare two per-file CSVs of `sqeval score`: paired differences with their 95 % CI
(:data:`~sqeval.stats.CI_METHOD`, as score's Δ vs noisy) and the Wilcoxon signed-rank
test, per system and metric."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .metrics import REGISTRY
from .stats import Paired, describe_difference, paired_difference, wilcoxon_p

KEY = ["file", "system"]


class CompareError(ValueError):
    """A CSV that cannot be compared; the message says why."""


def read_results(path: Path):
    """A per-file CSV (read by :func:`sqeval.read_results`) as a DataFrame indexed by
    (file, system): metric columns as floats, and the error text."""
    import pandas as pd

    from .api import UsageError
    from .api import read_results as read_saved

    try:
        saved = read_saved(path)
    except UsageError as error:
        raise CompareError(str(error)) from None
    columns = {"file": [r.file for r in saved.rows], "system": [r.system for r in saved.rows]}
    columns.update({name: [r.values[name] for r in saved.rows] for name in saved.metrics})
    columns["error"] = [r.error_text(saved.metrics) for r in saved.rows]
    return pd.DataFrame(columns).set_index(KEY)


@dataclass(frozen=True)
class Difference:
    """Candidate − baseline for one system and metric, over files scored in both."""

    system: str
    metric: str
    n: int
    baseline_mean: float
    candidate_mean: float
    mean: float
    ci_low: float
    ci_high: float
    p_value: float  # Wilcoxon signed-rank, two-sided; NaN when every difference is 0

    def drop(self) -> float:
        """How much worse the candidate is on average (positive = worse), by direction."""
        higher = REGISTRY[self.metric].higher_is_better
        return -self.mean if higher else self.mean


def compare(baseline, candidate):
    """Differences per (system, metric), and the (file, system) pairs found in only one.

    ``baseline`` and ``candidate`` are frames from :func:`read_results`; the metrics are
    the registry's columns found in both, the systems those with a row in both.

    Returns:
        ``(differences, only_in_baseline, only_in_candidate)``, the last two sorted.
    """
    metrics = [c for c in baseline.columns if c in candidate.columns and c in REGISTRY]
    rows = paired_difference(_by_key(baseline, metrics), _by_key(candidate, metrics))
    systems = [system for _, system in rows.keys]
    out = []
    for system in dict.fromkeys(systems):
        own = rows.subset([name == system for name in systems])
        out += [_difference(system, metric, own.scored(column))
                for column, metric in enumerate(metrics)]
    return out, sorted(rows.only_baseline), sorted(rows.only_candidate)


def _by_key(frame, metrics: list[str]) -> dict:
    """(file, system) → the row's values of ``metrics``."""
    return dict(zip(frame.index, frame[metrics].to_numpy(dtype=float)))


def _difference(system: str, metric: str, pairs: Paired) -> Difference:
    a, b, d = pairs.baseline, pairs.candidate, pairs.differences
    if len(d) == 0:
        return Difference(system, metric, 0, *([math.nan] * 6))
    delta = describe_difference(pairs)
    return Difference(system, metric, len(d), float(a.mean()), float(b.mean()),
                      delta.mean, delta.ci_low, delta.ci_high, wilcoxon_p(d))
