"""Score pairs: one job per clean file, every failure an error cell, never an exception.

A job loads its clean reference once, and each estimate once; each signal is resampled
at most once per rate that a requested metric runs at, and every metric is computed on
those arrays. Jobs run in worker processes; rows come back in a deterministic order.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .audio import AudioError, ChannelPolicy, read_audio, resample
from .metrics import MetricError, MetricSpec, NotApplicableError
from .pairing import Job


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

    @property
    def failed(self) -> bool:
        return self.file_error is not None or bool(self.errors)

    def error_text(self, metric_names: Iterable[str]) -> str:
        """The CSV ``error`` cell: ``metric: reason`` per missing value, ``; ``-separated."""
        if self.file_error is not None:
            return self.file_error
        reasons = {**self.not_applicable, **self.errors}
        return "; ".join(f"{name}: {reasons[name]}" for name in metric_names if name in reasons)


@dataclass(frozen=True)
class ScoreOptions:
    """How to score: which metrics, which systems in what order, and input policies.

    Attributes:
        metrics: the metrics to compute, in column order.
        systems: system names in output order (``noisy`` first when present).
        channels: what to do with multichannel files.
        strict: a metric that does not apply counts as a failure (it was named).
    """

    metrics: tuple[MetricSpec, ...]
    systems: tuple[str, ...]
    channels: ChannelPolicy = ChannelPolicy()
    strict: bool = False


class Signal:
    """A mono signal at its native rate, resampled on demand, once per rate."""

    def __init__(self, samples: np.ndarray, rate: int):
        self.rate = rate
        self._by_rate = {rate: samples}

    @property
    def samples(self) -> np.ndarray:
        return self._by_rate[self.rate]

    def at(self, rate: int) -> np.ndarray:
        if rate not in self._by_rate:
            self._by_rate[rate] = resample(self.samples, self.rate, rate)
        return self._by_rate[rate]


def score_job(job: Job, display_name: str, options: ScoreOptions) -> list[Row]:
    """All rows of one job, in ``options.systems`` order. Never raises for bad input."""
    reference, reference_error = None, None
    if job.clean is not None and any(n in job.estimates for n in options.systems):
        try:
            reference = read_reference(job.clean, options.channels)
        except AudioError as error:
            reference_error = f"clean reference: {error}"
    rows = []
    for name in options.systems:
        if name in job.problems:
            rows.append(Row(display_name, name, file_error=job.problems[name]))
        elif name in job.estimates:
            if reference is None:
                rows.append(Row(display_name, name, file_error=reference_error))
            else:
                rows.append(_score_estimate(display_name, name, reference,
                                            job.estimates[name], options))
    for row in rows:
        row.values = {spec.name: row.values.get(spec.name, math.nan) for spec in options.metrics}
    return rows


def read_reference(path: Path, channels: ChannelPolicy) -> Signal:
    """Read a clean reference; a silent one is an :class:`AudioError`."""
    samples, rate = read_audio(path, channels)
    if not samples.any():
        raise AudioError("silent (all samples zero); no comparison with it is defined")
    return Signal(samples, rate)


def _score_estimate(file: str, system: str, reference: Signal, path: Path,
                    options: ScoreOptions) -> Row:
    try:
        samples, rate = read_audio(path, options.channels)
    except AudioError as error:
        return Row(file, system, file_error=str(error))
    return score_signals(file, system, reference, samples, rate, options)


def score_signals(file: str, system: str, reference: Signal, samples: np.ndarray, rate: int,
                  options: ScoreOptions) -> Row:
    """Score an estimate held in memory against ``reference``: the per-file path of
    ``sqeval score`` after reading (resampling to the reference's rate, trimming for
    sample-aligned metrics, every failure an error cell)."""
    row = Row(file, system)
    fs = reference.rate
    if rate != fs:
        samples = resample(samples, rate, fs)
        row.notes.append(f"estimate at {rate} Hz resampled to the reference's {fs} Hz")
    estimate = Signal(samples, fs)
    n_ref, n_est = len(reference.samples), len(samples)
    if n_ref != n_est:
        row.notes.append(
            f"lengths differ by {abs(n_ref - n_est)} samples (reference {n_ref}, estimate "
            f"{n_est}); sample-aligned metrics use the first {min(n_ref, n_est)}"
        )
    shared: dict = {}  # family results, computed once per estimate and rate
    for spec in options.metrics:
        _compute(row, spec, reference, estimate, options.strict, shared)
    row.values = {spec.name: row.values.get(spec.name, math.nan) for spec in options.metrics}
    return row


def _compute(row: Row, spec: MetricSpec, reference: Signal, estimate: Signal, strict: bool,
             shared: dict):
    try:
        rate = spec.rate_for(reference.rate)
        s, s_hat = reference.at(rate), estimate.at(rate)
        if spec.sample_aligned:
            length = min(len(s), len(s_hat))
            s, s_hat = s[:length], s_hat[:length]
        if spec.family is None:
            value = spec.compute(reference=s, estimate=s_hat, fs=rate)
        else:
            key = (spec.family, rate)
            if key not in shared:
                try:
                    shared[key] = spec.compute_family(reference=s, estimate=s_hat, fs=rate)
                except MetricError as error:  # every member of the family gets the reason
                    shared[key] = error
            if isinstance(shared[key], MetricError):
                raise shared[key]
            value = shared[key][spec.name]
        row.values[spec.name] = float(value)
    except NotApplicableError as error:
        (row.errors if strict else row.not_applicable)[spec.name] = str(error)
    except MetricError as error:
        row.errors[spec.name] = str(error)
    except Exception as error:  # a bug or a backend crash costs one cell, not the run
        row.errors[spec.name] = f"unexpected {type(error).__name__}: {error}"


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def score_jobs(tasks: list[tuple[Job, str]], options: ScoreOptions, n_jobs: int = 0,
               on_done: Callable[[int], None] | None = None) -> list[Row]:
    """Score ``(job, display name)`` tasks on ``n_jobs`` processes (0 = all cores).

    At most twice as many jobs as workers are in flight, so memory does not grow with
    the number of files. ``on_done(k)`` is called as k more jobs finish.

    Returns:
        every row, in task order and then ``options.systems`` order.
    """
    n_jobs = min(n_jobs or default_jobs(), max(len(tasks), 1))
    results: list[list[Row]] = [[] for _ in tasks]
    for index, rows in _run(tasks, options, n_jobs):
        results[index] = rows
        if on_done is not None:
            on_done(1)
    return [row for rows in results for row in rows]


def _run(tasks, options, n_jobs) -> Iterator[tuple[int, list[Row]]]:
    if n_jobs <= 1:
        for index, (job, name) in enumerate(tasks):
            yield index, score_job(job, name, options)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context) as pool:
        pending, queue = {}, iter(enumerate(tasks))
        while True:
            for index, (job, name) in queue:
                try:
                    pending[pool.submit(score_job, job, name, options)] = index
                except BrokenProcessPool as error:  # a worker died earlier: no more work runs
                    yield index, failure_rows(job, name, options, f"not scored: {error}")
                    continue
                if len(pending) >= 2 * n_jobs:
                    break
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                try:
                    rows = future.result()
                except Exception as error:  # the worker itself failed, not a metric
                    job, name = tasks[index]
                    reason = f"the worker scoring this file failed ({type(error).__name__}: {error})"
                    rows = failure_rows(job, name, options, reason)
                yield index, rows


def failure_rows(job: Job, display_name: str, options: ScoreOptions, reason: str) -> list[Row]:
    """The rows a job would have had, each carrying ``reason`` as its error."""
    return [Row(display_name, name, values={spec.name: math.nan for spec in options.metrics},
                file_error=job.problems.get(name, reason))
            for name in options.systems if name in job.estimates or name in job.problems]
