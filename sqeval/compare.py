"""Compare two per-file CSVs of `sqeval score`: paired differences with a bootstrap CI and
the Wilcoxon signed-rank test, per system and metric."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import REGISTRY

BOOTSTRAP_SEED = 0
BOOTSTRAP_SAMPLES = 10_000
KEY = ["file", "system"]


class CompareError(ValueError):
    """A CSV that cannot be compared; the message says why."""


def read_results(path: Path):
    """A per-file CSV as a DataFrame indexed by (file, system), metric columns as floats."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as error:
        raise CompareError(f"{path}: cannot read it as CSV ({error})") from None
    missing = [c for c in (*KEY, "error") if c not in frame.columns]
    if missing:
        raise CompareError(f"{path}: no column {', '.join(missing)}; expected the per-file CSV "
                           "of `sqeval score --csv` (file,system,<metrics>,error)")
    metrics = [c for c in frame.columns if c not in (*KEY, "error")]
    for column in metrics:
        frame[column] = pd.to_numeric(frame[column].replace("", "nan"), errors="coerce")
    if frame.duplicated(KEY).any():
        raise CompareError(f"{path}: a (file, system) pair appears twice")
    return frame.set_index(KEY)


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


def bootstrap_ci(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES,
                 seed: int = BOOTSTRAP_SEED, chunk: int = 256) -> tuple[float, float]:
    """Percentile 95 % CI of the mean by resampling ``values`` (seeded, reproducible).

    Example:
        >>> bootstrap_ci(np.zeros(5))
        (0.0, 0.0)
    """
    rng = np.random.default_rng(seed)
    n = len(values)
    means = np.concatenate([
        values[rng.integers(0, n, size=(min(chunk, samples - start), n))].mean(axis=1)
        for start in range(0, samples, chunk)])
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def wilcoxon_p(differences: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    if not np.any(differences):
        return math.nan
    return float(wilcoxon(differences).pvalue)


def compare(baseline, candidate, samples: int = BOOTSTRAP_SAMPLES):
    """Differences per (system, metric), and the (file, system) pairs found in only one.

    Returns:
        ``(differences, only_in_baseline, only_in_candidate)``.
    """
    metrics = [c for c in baseline.columns if c in candidate.columns and c in REGISTRY]
    common = baseline.index.intersection(candidate.index)
    only_base = sorted(baseline.index.difference(candidate.index))
    only_cand = sorted(candidate.index.difference(baseline.index))
    out = []
    systems = list(dict.fromkeys(system for _, system in common))
    for system in systems:
        keys = [key for key in common if key[1] == system]
        for metric in metrics:
            a = baseline.loc[keys, metric].to_numpy(dtype=float)
            b = candidate.loc[keys, metric].to_numpy(dtype=float)
            both = np.isfinite(a) & np.isfinite(b)
            a, b = a[both], b[both]
            if len(a) == 0:
                out.append(Difference(system, metric, 0, *([math.nan] * 6)))
                continue
            d = b - a
            low, high = bootstrap_ci(d, samples)
            out.append(Difference(system, metric, len(d), float(a.mean()), float(b.mean()),
                                  float(d.mean()), low, high, wilcoxon_p(d)))
    return out, only_base, only_cand
