"""Score pairs: one job per clean file, every failure an error cell, never an exception.

A job loads its clean reference once, and each estimate once; each signal is resampled
at most once per rate that a requested metric runs at, and every metric is computed on
those arrays. Jobs run in worker processes; rows come back in a deterministic order.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from collections import deque
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import __version__
from .audio import AudioError, ChannelPolicy, estimate_delay, read_audio
from .cache import ResultCache, file_hash
from .dsp import resample
from .metrics import MetricError, MetricSpec, NotApplicableError
from .pairing import CLEAN, Job


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


@dataclass(frozen=True)
class ScoreOptions:
    """How to score: which metrics, which systems in what order, and input policies.

    Attributes:
        metrics: the metrics to compute, in column order.
        systems: system names in output order (``noisy`` first when present).
        channels: what to do with multichannel files.
        strict: the metrics asked for by name: for them, not applying counts as a
            failure.
        max_delay: with ``--align``, the largest delay (seconds) searched and removed
            before the sample-aligned metrics; None leaves the signals as they are.
        no_reference: there are no clean files: every system is scored with the
            non-intrusive metrics alone.

    A system named :data:`CLEAN` is the clean reference itself: its rows carry the
    non-intrusive metrics (DNSMOS of the clean speech); the intrusive ones do not apply.
    """

    metrics: tuple[MetricSpec, ...]
    systems: tuple[str, ...]
    channels: ChannelPolicy = ChannelPolicy()
    strict: frozenset = frozenset()
    max_delay: float | None = None  # seconds; set: remove a constant delay (--align)
    no_reference: bool = False


REFERENCE_ITSELF = "the clean reference itself (an intrusive metric compares against it)"
NEEDS_REFERENCE = "needs a clean reference (--no-reference)"


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


Known = dict  # system name → (outcomes by metric, notes or None) found in the cache


def _complete(row: Row, metrics) -> Row:
    """Give ``row`` a value for every metric, in column order: NaN where none was set."""
    row.values = {spec.name: row.values.get(spec.name, math.nan) for spec in metrics}
    return row


def failed_row(file: str, system: str, reason: str, metrics) -> Row:
    """A row of which nothing could be scored, and why."""
    return _complete(Row(file, system, file_error=reason), metrics)


class Interrupted(Exception):
    """Scoring was stopped (Ctrl-C or SIGTERM) after ``done`` of ``total`` jobs; ``rows``
    are those of the finished jobs, in order."""

    def __init__(self, done: int, total: int, rows: list | None = None):
        super().__init__(f"interrupted after {done} of {total} files")
        self.done, self.total, self.rows = done, total, rows or []


def score_job(job: Job, display_name: str, options: ScoreOptions,
              known: Known | None = None) -> list[Row]:
    """All rows of one job, in ``options.systems`` order. Never raises for bad input.

    Metrics whose outcome is in ``known`` are not computed again; an estimate whose every
    outcome is known is not even read.
    """
    known = known or {}
    names = [spec.name for spec in options.metrics]
    reference, reference_error = None, None
    rows = []
    for name in options.systems:
        if name in job.problems:
            rows.append(failed_row(display_name, name, job.problems[name], options.metrics))
            continue
        if name not in job.estimates:
            continue
        outcomes, notes = known.get(name, ({}, None))
        if notes is not None and all(metric in outcomes for metric in names):
            rows.append(_row_from_outcomes(display_name, name, outcomes, notes, options))
            continue
        if options.no_reference:
            rows.append(_score_estimate(display_name, name, None, job.estimates[name], options,
                                        outcomes))
            continue
        if reference is None and reference_error is None:
            try:
                reference = read_reference(job.clean, options.channels)
            except AudioError as error:
                reference_error = f"clean reference: {error}"
        if reference is None:
            rows.append(failed_row(display_name, name, reference_error, options.metrics))
        elif name == CLEAN:  # the reference Signal itself: resampled at most once per rate
            rows.append(_score_alone(Row(display_name, name), reference, options, outcomes,
                                     REFERENCE_ITSELF))
        else:
            rows.append(_score_estimate(display_name, name, reference, job.estimates[name],
                                        options, outcomes))
    return rows


def _row_from_outcomes(file, system, outcomes, notes, options) -> Row:
    row = Row(file, system, notes=list(notes))
    for spec in options.metrics:
        _apply(row, spec.name, outcomes[spec.name], _strict(options, system, spec))
    return _complete(row, options.metrics)


def _strict(options: ScoreOptions, system: str, spec: MetricSpec) -> bool:
    """Whether ``spec`` not applying is a failure in this row: it was named, and it is not
    an intrusive metric in the row of the clean reference itself."""
    return spec.name in options.strict and not (system == CLEAN and spec.intrusive)


def read_reference(path: Path, channels: ChannelPolicy) -> Signal:
    """Read a clean reference; a silent one is an :class:`AudioError`."""
    samples, rate = read_audio(path, channels)
    if not samples.any():
        raise AudioError("silent (all samples zero); no comparison with it is defined")
    return Signal(samples, rate)


def _score_estimate(file: str, system: str, reference: Signal | None, path: Path,
                    options: ScoreOptions, known: dict | None = None) -> Row:
    try:
        samples, rate = read_audio(path, options.channels)
    except AudioError as error:
        return failed_row(file, system, str(error), options.metrics)
    return score_signals(file, system, reference, samples, rate, options, known)


def score_signals(file: str, system: str, reference: Signal | None, samples: np.ndarray,
                  rate: int, options: ScoreOptions, known: dict | None = None) -> Row:
    """Score an estimate held in memory against ``reference``: the per-file path of
    ``sqeval score`` after reading (resampling to the reference's rate, trimming for
    sample-aligned metrics, every failure an error cell). Outcomes in ``known`` are
    reused; the others are computed and kept in ``row.fresh``.

    With ``reference=None`` only non-intrusive metrics have values."""
    known = known or {}
    row = Row(file, system)
    if reference is None:
        return _score_alone(row, Signal(samples, rate), options, known, NEEDS_REFERENCE)
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
    aligned = _aligned(reference, estimate, options, row) if options.max_delay else None
    computation = Computation(reference, estimate, aligned)
    for spec in options.metrics:
        if spec.name in known:
            outcome = known[spec.name]
        else:
            outcome = row.fresh[spec.name] = computation.outcome(spec)
        _apply(row, spec.name, outcome, _strict(options, system, spec))
    return _complete(row, options.metrics)


def _score_alone(row: Row, signal: Signal, options: ScoreOptions, known: dict,
                 not_applicable: str) -> Row:
    """A row of non-intrusive values only: of the clean reference itself (the
    :data:`CLEAN` system), or of an estimate when there is no reference. Intrusive
    metrics do not apply, for the reason ``not_applicable``."""
    computation = Computation(None, signal)
    for spec in options.metrics:
        if spec.name in known:
            outcome = known[spec.name]
        elif spec.intrusive:
            outcome = row.fresh[spec.name] = ("n/a", None, not_applicable)
        else:
            outcome = row.fresh[spec.name] = computation.outcome(spec)
        _apply(row, spec.name, outcome, _strict(options, row.system, spec))
    return _complete(row, options.metrics)


def _aligned(reference: Signal, estimate: Signal, options: ScoreOptions, row: Row):
    """The pair with the estimated constant delay removed (for sample-aligned metrics)."""
    fs = reference.rate
    delay = estimate_delay(reference.samples, estimate.samples, round(options.max_delay * fs))
    row.notes.append(f"aligned: the estimate trails the reference by {delay} samples "
                     f"({1000 * delay / fs:.2f} ms); removed before the sample-aligned metrics")
    if delay >= 0:
        return reference, Signal(estimate.samples[delay:], fs)
    return Signal(reference.samples[-delay:], fs), estimate


def _apply(row: Row, name: str, outcome, strict: bool) -> None:
    kind, value, message = outcome
    if kind == "value":
        row.values[name] = float(value)
    elif kind == "n/a" and not strict:
        row.not_applicable[name] = message
    else:
        row.errors[name] = message


class Computation:
    """The metrics of one (reference, estimate) pair, each thing computed once: a family
    (STOI with ESTOI, the classic measures) once per rate, and a metric that another
    reuses (``pesq_wb`` inside the composites, see ``MetricSpec.needs``) once.

    ``reference`` is None for non-intrusive metrics scored without one; ``aligned`` is the
    pair with a constant delay removed (``--align``), for the sample-aligned metrics.
    """

    def __init__(self, reference: Signal | None, estimate: Signal, aligned=None):
        self.reference, self.estimate, self.aligned = reference, estimate, aligned
        self._results: dict = {}  # (family or metric name, rate) → result or MetricError

    def outcome(self, spec: MetricSpec):
        """("value", x, "") or ("error" | "n/a", None, reason); never raises."""
        try:
            value = self._result(spec)
            if spec.family is not None:
                value = value[spec.name]
                if isinstance(value, MetricError):  # this member alone could not be computed
                    raise value
            return ("value", float(value), "")
        except NotApplicableError as error:
            return ("n/a", None, str(error))
        except MetricError as error:
            return ("error", None, str(error))
        except Exception as error:  # a bug or a backend crash costs one cell, not the run
            return ("error", None, f"unexpected {type(error).__name__}: {error}")

    def _result(self, spec: MetricSpec):
        """What computing ``spec`` gives (its family's dict, or its value), computed once;
        raises the :class:`MetricError` of a failure, every time it is asked for."""
        rate = spec.rate_for((self.reference or self.estimate).rate)
        key = (spec.family or spec.name, rate)
        if key not in self._results:
            try:
                self._results[key] = self._compute(spec, rate)
            except MetricError as error:  # every member of a family gets the reason
                self._results[key] = error
        if isinstance(self._results[key], MetricError):
            raise self._results[key]
        return self._results[key]

    def _compute(self, spec: MetricSpec, rate: int):
        from .metrics import REGISTRY

        pair = self.aligned if self.aligned and spec.sample_aligned else (
            self.reference, self.estimate)
        s = pair[0].at(rate) if spec.intrusive else None
        s_hat = pair[1].at(rate)
        if spec.sample_aligned and spec.intrusive:
            length = min(len(s), len(s_hat))
            s, s_hat = s[:length], s_hat[:length]
        if spec.family is None:
            return spec.compute(reference=s, estimate=s_hat, fs=rate)
        reused = {keyword: self._result(REGISTRY[name]) for keyword, name in spec.needs.items()}
        return spec.compute_family(reference=s, estimate=s_hat, fs=rate, **reused)


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cache_settings(options: ScoreOptions) -> str:
    """What besides the two files' content decides a cached outcome."""
    align = f"; aligned within {options.max_delay:g} s" if options.max_delay else ""
    return f"sqeval {__version__}; {options.channels.describe()}{align}"


class SchedulerError(RuntimeError):
    """The Dask scheduler cannot be used; the message says why and what to do."""


def score_jobs(tasks: list[tuple[Job, str]], options: ScoreOptions, n_jobs: int = 0,
               on_done: Callable[[int], None] | None = None,
               cache: ResultCache | None = None, scheduler: str | None = None,
               isolate: bool = True, timeout: float | None = None) -> list[Row]:
    """Score ``(job, display name)`` tasks on ``n_jobs`` processes (0 = all cores).

    With a ``cache``, outcomes found for the same file contents are reused (a job whose
    every outcome is cached does not reach a worker) and new ones are stored as each job
    completes. A bounded number of jobs is in flight (one per local worker, twice the
    workers on Dask), so memory does not grow with the number of files. ``on_done(k)`` is
    called as k more jobs finish.

    Returns:
        every row, in task order and then ``options.systems`` order.

    ``scheduler`` (``"tcp://HOST:PORT"``, or ``"local"`` for a new LocalCluster of
    ``n_jobs`` workers) runs the jobs on a Dask cluster instead of local processes.
    ``isolate`` (the default) runs every job in a worker process, even with one job, so a
    crash costs only its file; ``isolate=False`` with ``n_jobs=1`` scores in this process.
    ``timeout`` gives up on a file after that many seconds.

    Raises:
        Interrupted: on Ctrl-C (or SIGTERM, in the CLI); what finished is already in the
            cache and in ``Interrupted.rows``.
        SchedulerError: dask is not installed, or the scheduler cannot be reached.
    """
    settings = cache_settings(options)
    keys = [_hashes(job, options) if cache else {} for job, _ in tasks]
    known = [{system: cache.lookup(pair[0], pair[1], settings) for system, pair in k.items()}
             if cache else {} for k in keys]
    results: list[list[Row] | None] = [None] * len(tasks)
    pending = []
    for index, (job, name) in enumerate(tasks):
        if cache and _fully_known(job, known[index], options):
            results[index] = score_job(job, name, options, known[index])
            if on_done is not None:
                on_done(1)
        else:
            pending.append(index)
    n_jobs = min(n_jobs or default_jobs(), max(len(pending), 1))
    items = [(i, tasks[i], known[i]) for i in pending]
    runner = (_run_dask(items, options, n_jobs, scheduler) if scheduler and items
              else _run(items, options, n_jobs, isolate, timeout))
    try:
        for index, rows in runner:
            results[index] = rows
            if cache:
                _store(cache, keys[index], settings, rows)
            if on_done is not None:
                on_done(1)
    except KeyboardInterrupt:
        finished = [row for rows in results if rows is not None for row in rows]
        raise Interrupted(sum(r is not None for r in results), len(tasks), finished) from None
    return [row for rows in results for row in rows]


NO_REFERENCE = "(no reference)"  # the cache's clean hash in --no-reference runs


def _hashes(job: Job, options: ScoreOptions) -> dict[str, tuple[str, str]]:
    """system → (clean hash, estimate hash), for the estimates that can be hashed."""
    if job.clean is None and not options.no_reference:
        return {}
    clean = NO_REFERENCE if job.clean is None else file_hash(job.clean)
    if clean is None:
        return {}
    out = {}
    for system, path in job.estimates.items():
        if system in options.systems and system not in job.problems:
            estimate = file_hash(path)
            if estimate is not None:
                out[system] = (clean, estimate)
    return out


def _fully_known(job: Job, known: Known, options: ScoreOptions) -> bool:
    names = [spec.name for spec in options.metrics]
    for system in options.systems:
        if system in job.estimates and system not in job.problems:
            outcomes, notes = known.get(system, ({}, None))
            if notes is None or not all(name in outcomes for name in names):
                return False
    return True


def _store(cache: ResultCache, keys: dict, settings: str, rows: list[Row]) -> None:
    for row in rows:
        if row.fresh and row.system in keys:
            clean, estimate = keys[row.system]
            cache.store(clean, estimate, settings, row.fresh, row.notes)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextmanager
def single_threaded_children():
    """Worker processes started inside get one BLAS/OpenMP thread each (unless the user
    set a number): N workers already use N cores, and more threads only contend (measured:
    40 % slower on 2 cores). The parent's environment is restored afterwards."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the parent, which stops them and reports."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(items, options, n_jobs, isolate=True, timeout=None) -> Iterator[tuple[int, list[Row]]]:
    if n_jobs <= 1 and not isolate:
        for index, (job, name), known in items:
            yield index, score_job(job, name, options, known)
        return
    with single_threaded_children():  # workers start on demand: keep it for the pool's life
        yield from _IsolatedRun(options, n_jobs, timeout).run(items)


CRASHED = ("the worker process died while scoring this file (a crash in a C extension, "
           "or out of memory); the other files were not affected")


class _IsolatedRun:
    """Jobs on worker processes, one per worker at a time, so that a crash or a timeout
    costs only the job that caused it.

    When a worker dies, every job then in flight fails with it and none can be blamed; the
    pool is restarted and those jobs run again one at a time, so only the one that kills
    its worker again is recorded as crashed. A job past ``timeout`` seconds is recorded as
    timed out, its pool is killed and restarted, and the other jobs in flight run again.
    """

    def __init__(self, options, n_jobs, timeout):
        self.options, self.n_jobs, self.timeout = options, n_jobs, timeout
        self.context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
        self.pool = self._new_pool()

    def _new_pool(self):
        return ProcessPoolExecutor(max_workers=self.n_jobs, mp_context=self.context,
                                   initializer=_ignore_interrupts)

    def _restart(self) -> None:
        for process in list(getattr(self.pool, "_processes", {}).values()):  # stop them now
            process.kill()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = self._new_pool()

    def run(self, items) -> Iterator[tuple[int, list[Row]]]:
        queue, suspects, pending = deque(items), deque(), {}
        try:
            while queue or suspects or pending:
                source, capacity = (suspects, 1) if suspects else (queue, self.n_jobs)
                while len(pending) < capacity and source:
                    item = source.popleft()
                    future = self.pool.submit(score_job, item[1][0], item[1][1], self.options,
                                              item[2])
                    pending[future] = (item, time.monotonic(), source is suspects)
                done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                yield from self._collect(done, pending, suspects)
                yield from self._expire(pending, suspects)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _collect(self, done, pending, suspects):
        broken = False
        for future in done:
            item, _, alone = pending.pop(future)
            (index, (job, name), _known) = item
            try:
                yield index, future.result()
            except BrokenProcessPool:
                if alone:
                    yield index, failure_rows(job, name, self.options, CRASHED)
                else:
                    suspects.append(item)
                broken = True
            except Exception as error:  # the task failed outside any metric
                yield index, failure_rows(job, name, self.options, "the worker scoring this "
                                          f"file failed ({type(error).__name__}: {error})")
        if broken:  # everything else in flight died with it: run those again, one by one
            suspects.extend(item for item, _, _ in pending.values())
            pending.clear()
            self._restart()

    def _expire(self, pending, suspects):
        if self.timeout is None:
            return
        now = time.monotonic()
        late = [f for f, (_, started, _) in pending.items() if now - started > self.timeout]
        if not late:
            return
        for future in late:
            index, (job, name), _known = pending.pop(future)[0]
            yield index, failure_rows(job, name, self.options, f"timed out after "
                                      f"{self.timeout:g} s (--timeout); not scored")
        suspects.extend(item for item, _, _ in pending.values())  # killed with the pool
        pending.clear()
        self._restart()


def failure_rows(job: Job, display_name: str, options: ScoreOptions, reason: str) -> list[Row]:
    """The rows a job would have had, each carrying ``reason`` as its error."""
    return [failed_row(display_name, name, job.problems.get(name, reason), options.metrics)
            for name in options.systems if name in job.estimates or name in job.problems]


def _dask_client(scheduler: str, n_jobs: int):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise SchedulerError("--scheduler needs dask.distributed, which is not installed: "
                             "pip install 'sqeval[dask]'") from None
    if scheduler == "local":
        with single_threaded_children():
            cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="20s"), None
    except (OSError, TimeoutError, ValueError) as error:
        raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler} ({error})") from None


def _run_dask(items, options, n_jobs, scheduler) -> Iterator[tuple[int, list[Row]]]:
    """The jobs on a Dask cluster, at most twice as many in flight as it has workers."""
    client, cluster = _dask_client(scheduler, n_jobs)  # says so when dask is missing
    from dask.distributed import as_completed

    try:
        window = 2 * max(1, len(client.scheduler_info().get("workers", {})))
        queue, pending, stream = iter(items), {}, as_completed()

        def submit_next() -> None:
            for index, (job, name), known in queue:
                future = client.submit(score_job, job, name, options, known, pure=False)
                pending[future] = (index, job, name)
                stream.add(future)
                return

        for _ in range(window):
            submit_next()
        for future in stream:
            index, job, name = pending.pop(future)
            try:
                rows = future.result()
            except Exception as error:  # the task or its worker failed, not a metric
                rows = failure_rows(job, name, options, f"the Dask task scoring this file "
                                    f"failed ({type(error).__name__}: {error})")
            yield index, rows
            submit_next()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
