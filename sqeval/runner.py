"""Execute scoring jobs: on worker processes (one job per worker at a time, so a crash or
a timeout costs only its file), in this process, or on a Dask cluster; with the results
cache, a bounded number of jobs in flight, and Ctrl-C/SIGTERM stopping cleanly.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Callable, Iterator

from . import scoring
from .cache import ResultCache, cache_settings, file_keys
from .pairing import Job
from .results import Row
from .scoring import Known, ScoreOptions, failed_row


class Interrupted(Exception):
    """Scoring was stopped (Ctrl-C or SIGTERM) after ``done`` of ``total`` jobs; ``rows``
    are those of the finished jobs, in order."""

    def __init__(self, done: int, total: int, rows: list | None = None):
        super().__init__(f"interrupted after {done} of {total} files")
        self.done, self.total, self.rows = done, total, rows or []


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
    keys = [file_keys(job, options) if cache else {} for job, _ in tasks]
    known = [{system: cache.lookup(pair[0], pair[1], settings) for system, pair in k.items()}
             if cache else {} for k in keys]
    results: list[list[Row] | None] = [None] * len(tasks)
    pending = []
    for index, (job, name) in enumerate(tasks):
        if cache and _fully_known(job, known[index], options):
            results[index] = scoring.score_job(job, name, options, known[index])
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
            yield index, scoring.score_job(job, name, options, known)
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
                    future = self.pool.submit(scoring.score_job, item[1][0], item[1][1], self.options,
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
                future = client.submit(scoring.score_job, job, name, options, known, pure=False)
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
