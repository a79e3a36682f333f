"""Compare two per-file CSVs of `sqeval score`: paired differences with their 95 % CI
(:data:`~sqeval.stats.CI_METHOD`, as score's Δ vs noisy) and the Wilcoxon signed-rank
test, per system and metric; and the ``--max-drop`` gate on them.

Conventions:
    Rows pair by (file, system), or by file between two named systems
    (:class:`SystemPair`). A difference is ``candidate − baseline`` over the files with
    a value on both sides (``n``); a cell that failed on one side is counted, not compared.

The gate (:func:`check_max_drop`) never passes what it could not see. For each system
and each metric with a maximum drop, it fails when:
    - the system has rows in only one of the two CSVs;
    - no file has a value on both sides (``n = 0``);
    - the candidate failed (an empty cell) on a file where the baseline has a value;
    - the candidate lacks some of the baseline's files for the system (more than
      ``--allow-fewer N`` allows);
    - the candidate's mean is worse than the baseline's by more than the maximum drop
      ("worse" by the metric's direction in the registry).
Files present in the candidate alone, and cells that failed in the baseline alone, are
reported but do not fail it. The two runs must also have been made alike
(:func:`provenance_differences`): the command line refuses to compare runs whose
provenance differs in what changes the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import REGISTRY
from .report.summary import fmt
from .results import plural
from .stats import Paired, describe_difference, paired_difference, wilcoxon_p

KEY = ["file", "system"]
BOTH, BASELINE, CANDIDATE = "both", "baseline", "candidate"  # where a system has rows


class CompareError(ValueError):
    """A CSV that cannot be compared; the message says why."""


def read_results(path: Path):
    """A per-file CSV (read by :func:`sqeval.read_results`) as a DataFrame indexed by
    (file, system): metric columns as floats, and the error text; the run's provenance
    (its .meta.json, or ``{}``) in ``attrs["provenance"]``."""
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
    frame = pd.DataFrame(columns).set_index(KEY)
    frame.attrs["provenance"] = saved.provenance
    return frame


@dataclass(frozen=True)
class SystemPair:
    """A system of the baseline compared with a system of the candidate, file by file."""

    baseline: str
    candidate: str

    @property
    def label(self) -> str:
        """The name the comparison is reported under: ``A`` or ``A → B``."""
        if self.baseline == self.candidate:
            return self.baseline
        return f"{self.baseline} → {self.candidate}"


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
    candidate_failed: int = 0  # files with a baseline value and an empty candidate cell
    baseline_failed: int = 0  # files with a candidate value and an empty baseline cell
    only_baseline: int = 0  # the system's files found in the baseline CSV alone
    only_candidate: int = 0  # ... in the candidate CSV alone
    present_in: str = BOTH  # BOTH, or the one CSV (BASELINE, CANDIDATE) the system is in

    def drop(self) -> float:
        """How much worse the candidate is on average (positive = worse), by direction."""
        higher = REGISTRY[self.metric].higher_is_better
        return -self.mean if higher else self.mean


@dataclass(frozen=True)
class Verdict:
    """One ``--max-drop`` applied to one :class:`Difference`."""

    difference: Difference
    max_drop: float
    passed: bool
    reasons: tuple[str, ...] = ()  # why it failed, each a predicate of "SYSTEM.METRIC"

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def compare(baseline, candidate, pairs: list[SystemPair] | None = None):
    """Differences per (system, metric), and the (file, system) pairs found in only one.

    ``baseline`` and ``candidate`` are frames from :func:`read_results`; the metrics are
    the registry's columns found in both. Without ``pairs`` every system of either frame
    is compared with the system of the same name in the other; with ``pairs``, only
    those, each under its :attr:`SystemPair.label` (the two frames may be the same).

    Returns:
        ``(differences, only_in_baseline, only_in_candidate)``: a :class:`Difference` per
        system and metric, systems in order of appearance (baseline first); then the
        (file, system) keys found on one side only, sorted.
    """
    metrics = [c for c in baseline.columns if c in candidate.columns and c in REGISTRY]
    base = _by_system(baseline, metrics, pairs, lambda pair: pair.baseline)
    cand = _by_system(candidate, metrics, pairs, lambda pair: pair.candidate)
    systems = ([pair.label for pair in dict.fromkeys(pairs)] if pairs
               else list(dict.fromkeys([*base, *cand])))
    out, only_base, only_cand = [], [], []
    for system in systems:
        files_b, files_c = base.get(system, {}), cand.get(system, {})
        present = BOTH if files_b and files_c else BASELINE if files_b else CANDIDATE
        for column, metric in enumerate(metrics):
            paired = paired_difference({f: v[column] for f, v in files_b.items()},
                                       {f: v[column] for f, v in files_c.items()})
            out.append(_difference(system, metric, paired, present))
        only_base += [(f, system) for f in files_b if f not in files_c]
        only_cand += [(f, system) for f in files_c if f not in files_b]
    return out, sorted(only_base), sorted(only_cand)


def _by_system(frame, metrics: list[str], pairs, side) -> dict:
    """System (or pair label) → file → the row's values of ``metrics``; with ``pairs``,
    the rows of the ``side`` of each pair only."""
    labels: dict[str, list[str]] = {}
    for pair in pairs or []:
        labels.setdefault(side(pair), []).append(pair.label)
    out: dict[str, dict] = {}
    values = frame[metrics].to_numpy(dtype=float).reshape(len(frame), len(metrics))
    for (file, system), row in zip(frame.index, values):
        for label in (labels.get(system, []) if pairs else [system]):
            out.setdefault(label, {})[file] = row
    return out


def _difference(system: str, metric: str, pairs: Paired, present: str) -> Difference:
    has_b, has_c = np.isfinite(pairs.baseline), np.isfinite(pairs.candidate)
    counts = dict(candidate_failed=int(np.sum(has_b & ~has_c)),
                  baseline_failed=int(np.sum(~has_b & has_c)),
                  only_baseline=len(pairs.only_baseline),
                  only_candidate=len(pairs.only_candidate), present_in=present)
    scored = pairs.scored()
    if len(scored.keys) == 0:
        return Difference(system, metric, 0, *([math.nan] * 6), **counts)
    delta = describe_difference(pairs)
    return Difference(system, metric, delta.n, float(scored.baseline.mean()),
                      float(scored.candidate.mean()), delta.mean, delta.ci_low, delta.ci_high,
                      wilcoxon_p(scored.differences), **counts)


def problems(d: Difference, allow_fewer: int = 0) -> list[str]:
    """What keeps ``d`` from being judged on all the baseline's files, as predicates of
    "SYSTEM.METRIC"; empty when every file the baseline scored was compared (up to
    ``allow_fewer`` of the baseline's files may be absent from the candidate)."""
    out = []
    if d.present_in == BOTH and d.only_baseline > allow_fewer:
        out.append(f"lacks {plural(d.only_baseline, 'file')} of the baseline in the candidate "
                   f"(allowed: {allow_fewer}; --allow-fewer N)")
    if d.present_in != BOTH:
        rows = d.only_baseline if d.present_in == BASELINE else d.only_candidate
        out.append(f"is only in the {d.present_in} ({plural(rows, 'row')})")
    elif d.n == 0:
        out.append("has no file scored in both (n = 0)")
    if d.candidate_failed:
        out.append(f"failed in {d.candidate_failed} candidate rows where the baseline has "
                   "a value")
    return out


def check_max_drop(d: Difference, max_drop: float, allow_fewer: int = 0) -> Verdict:
    """The ``--max-drop`` gate on one difference: it fails on every one of
    :func:`problems`, and when the candidate's mean is worse by more than ``max_drop``."""
    reasons = problems(d, allow_fewer)
    if d.n and d.drop() > max_drop:
        reasons.append(f"dropped by {fmt(d.drop())} (allowed {max_drop:g})")
    return Verdict(d, max_drop, not reasons, tuple(reasons))


# What in a run's provenance (its .meta.json) changes the numbers: two runs that differ in
# one of these are not comparable. Package versions: the backends whose code is a metric.
NUMBER_KEYS = ("sqeval_version", "rate_policy", "channels", "align", "max_length_diff",
               "models")
NUMBER_PACKAGES = ("pesq", "pystoi", "speechmos", "onnxruntime", "soxr", "visqol-python",
                   "ai-edge-litert", "libsvm-official")


def provenance_differences(baseline: dict, candidate: dict) -> list[str]:
    """What differs between two runs' provenance in what changes the numbers, one line
    each (``key: baseline → candidate``); empty when nothing does. A key that one run
    records and the other does not counts as a difference."""
    out = [f"the {side} is a partial run (interrupted or stopped)" for side, meta in
           (("baseline", baseline), ("candidate", candidate)) if meta.get("partial") is True]
    if out:
        return out
    for key in NUMBER_KEYS:
        if baseline.get(key) != candidate.get(key):
            out.append(f"{key}: {_short(baseline.get(key))} → {_short(candidate.get(key))}")
    refs = (baseline.get("references"), candidate.get("references"))
    if isinstance(refs[0], dict) and isinstance(refs[1], dict):
        other = sorted(file for file in set(refs[0]) & set(refs[1])
                       if refs[0][file] != refs[1][file])
        if other:
            out.append(f"the clean reference of {plural(len(other), 'file')} differs in "
                       f"content (e.g. {other[0]!r})")
    versions = tuple(v if isinstance(v, dict) else {} for v in
                     (baseline.get("versions"), candidate.get("versions")))
    for package in NUMBER_PACKAGES:
        if versions[0].get(package) != versions[1].get(package):
            out.append(f"{package}: {versions[0].get(package)} → {versions[1].get(package)}")
    return out


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
