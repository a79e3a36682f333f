"""Execute scoring jobs: on worker processes (one job per worker at a time, so a crash or
a timeout costs only its file), in this process, or on a Dask cluster; with the results
cache, a bounded number of jobs in flight, and Ctrl-C/SIGTERM stopping cleanly.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

from . import scoring
from .cache import ResultCache, cache_settings, file_keys
from .metrics.dnsmos import ONNX_THREADS
from .pairing import Job
from .results import Row, plural
from .scoring import Known, ScoreOptions, failed_row


class Interrupted(Exception):
    """Scoring was stopped (Ctrl-C or SIGTERM) after ``done`` of ``total`` jobs; ``rows``
    are those of the finished jobs, in order."""

    def __init__(self, done: int, total: int, rows: list | None = None):
        super().__init__(f"interrupted after {done} of {plural(total, 'file')}")
        self.done, self.total, self.rows = done, total, rows or []


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class SchedulerError(RuntimeError):
    """The Dask scheduler cannot be used (or was lost, or has no workers); the message says
    why and what to do. ``rows`` are those of the jobs finished before, in order."""

    def __init__(self, message: str, rows: list | None = None):
        super().__init__(message)
        self.rows = rows or []


# How long a Dask run waits while no task finishes and the cluster cannot finish one: no
# worker connected, or the scheduler unreachable. Then it stops (exit 2, partial CSV).
DASK_STALL_S = 30.0
DASK_POLL_S = 1.0  # how often a waiting Dask run looks at the cluster


def score_jobs(tasks: list[tuple[Job, str]], options: ScoreOptions, n_jobs: int = 0,
               on_done: Callable[[int], None] | None = None,
               cache: ResultCache | None = None, scheduler: str | None = None,
               isolate: bool | None = True, timeout: float | None = None) -> list[Row]:
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
    ``isolate=True`` (the default) runs every job in a worker process, even with one job,
    so a crash costs only its file; ``isolate=False`` with ``n_jobs=1`` scores in this
    process; ``isolate=None`` scores in this process when the jobs left to compute are
    few and short (:func:`small_run`) and there is no ``timeout``, since starting a worker
    costs more than scoring them, and on workers otherwise. ``timeout`` gives up on a file
    after that many seconds.

    Raises:
        Interrupted: on Ctrl-C (or SIGTERM, in the CLI); what finished is already in the
            cache and in ``Interrupted.rows``.
        SchedulerError: dask is not installed, or the scheduler cannot be reached.
    """
    results: list[list[Row] | None] = [None] * len(tasks)
    runner = None
    try:  # Ctrl-C while files are hashed counts as an interruption too
        settings = cache_settings(options)
        keys = [file_keys(job, options) if cache else {} for job, _ in tasks]
        known = [{system: cache.lookup(pair[0], pair[1], settings)
                  for system, pair in k.items()} if cache else {} for k in keys]
        pending = []
        for index, (job, name) in enumerate(tasks):
            if cache and _fully_known(job, known[index], options):
                results[index] = scoring.score_job(job, name, options, known[index])
                for row in results[index]:  # not read: the content they were looked up by
                    row.content = keys[index].get(row.system)
                if on_done is not None:
                    on_done(1)
            else:
                pending.append(index)
        n_jobs = min(n_jobs or default_jobs(), max(len(pending), 1))
        items = [(i, tasks[i], known[i]) for i in pending]
        if isolate is None:
            isolate = scheduler is not None or timeout is not None or not small_run(
                [tasks[i][0] for i in pending])
            n_jobs = n_jobs if isolate else 1
        runner = (_run_dask(items, options, n_jobs, scheduler, timeout) if scheduler and items
                  else _run(items, options, n_jobs, isolate, timeout))
        for index, rows in runner:
            if cache and _mixed(rows, keys[index], known[index]):
                # a file changed between its lookup and its reading: outcomes of its old
                # content would stand beside new ones; score it again, from scratch
                rows = scoring.score_job(*tasks[index], options, {})
            results[index] = rows
            if cache:
                _store(cache, settings, rows)
            if on_done is not None:
                on_done(1)
    except KeyboardInterrupt:
        finished = [row for rows in results if rows is not None for row in rows]
        raise Interrupted(sum(r is not None for r in results), len(tasks), finished) from None
    except SchedulerError as error:  # lost mid-run: what finished goes with it
        error.rows = [row for rows in results if rows is not None for row in rows]
        raise
    finally:
        if runner is not None:
            runner.close()  # its workers stop, wherever it was stopped
    return [row for rows in results for row in rows]


IN_PROCESS_FILES = 4  # at most this many files to compute ...
IN_PROCESS_SECONDS = 30.0  # ... with at most this much audio to score, all systems together


def small_run(jobs: list[Job]) -> bool:
    """Whether scoring ``jobs`` in this process beats starting worker processes: at most
    :data:`IN_PROCESS_FILES` files and :data:`IN_PROCESS_SECONDS` of audio to score. A
    worker takes about half a second to start (its own Python, numpy, scipy and pesq);
    scoring a 4 s pair takes a tenth of that. Read from the files' headers; a header that
    cannot be read makes the run not small (its worker reports the error)."""
    if len(jobs) > IN_PROCESS_FILES:
        return False
    import soundfile

    from .audio import open_regular

    seconds = 0.0
    for job in jobs:
        for system, path in job.estimates.items():
            if system in job.problems:  # an error row already: nothing to read
                continue
            try:  # a regular file only, opened without blocking (never a FIFO or device)
                with open(open_regular(path), "rb") as stream:
                    seconds += soundfile.info(stream).duration
            except Exception:  # noqa: BLE001 - any unreadable header: let a worker read it
                return False
    return seconds <= IN_PROCESS_SECONDS


def _fully_known(job: Job, known: Known, options: ScoreOptions) -> bool:
    for system in options.systems:
        if system in job.estimates and system not in job.problems:
            outcomes, notes = known.get(system, ({}, None))
            if notes is None or not all(key in outcomes
                                        for key in scoring.needed_outcomes(options, system)):
                return False
    return True


def _mixed(rows: list[Row], keys: dict, known: Known) -> bool:
    """Whether a row used cached outcomes looked up under other content than it read."""
    return any(row.content is not None and row.system in known and known[row.system][0]
               and keys.get(row.system) != row.content for row in rows)


def _store(cache: ResultCache, settings: str, rows: list[Row]) -> None:
    """Store what each row computed, under the content digests of the bytes it scored
    (never under a hash taken before: a file replaced mid-run keeps its own numbers)."""
    for row in rows:
        if row.fresh and row.content is not None:
            clean, estimate = row.content
            cache.store(clean, estimate, settings, row.fresh, row.notes)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextmanager
def single_threaded_children(n_workers: int = 0):
    """Worker processes started inside get one BLAS/OpenMP thread each (unless the user
    set a number): N workers already use N cores, and more threads only contend (measured:
    40 % slower on 2 cores). onnxruntime (DNSMOS) gets the workers' share of the cores
    (``SQEVAL_ONNX_THREADS``): all of them for one worker, whose DNSMOS then runs as fast
    as in a plain single-process loop. The parent's environment is restored afterwards."""
    saved = {name: os.environ.get(name) for name in (*THREAD_VARIABLES, ONNX_THREADS)}
    if n_workers and saved["OMP_NUM_THREADS"] is None:  # the user's number, if set, rules
        os.environ[ONNX_THREADS] = str(max(1, default_jobs() // n_workers))
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


CRASHED = ("the worker process died while scoring this file (a crash in a C extension, "
           "or out of memory); the other files were not affected")
NO_WORKER = ("no worker process could start ({reason}; any error it printed is above); not "
             "scored. Check that `python -c 'import sqeval.runner'` works, then run again")
START_LIMIT_S = 300.0  # a worker not ready after this long (a stuck import) is replaced
START_ATTEMPTS = 3  # workers that die (or stick) in a row before they start: give up
PARENT_POLL_S = 0.5  # how often a worker checks that its parent lives (where prctl is missing)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>: the signal a process gets when its parent dies


def _run(items, options, n_jobs, isolate=True, timeout=None) -> Iterator[tuple[int, list[Row]]]:
    if n_jobs <= 1 and not isolate:
        for index, (job, name), known in items:
            yield index, scoring.score_job(job, name, options, known)
        return
    with single_threaded_children(n_jobs):  # a replaced worker starts later: keep it on
        yield from _IsolatedRun(options, n_jobs, timeout).run(items)


def _worker_main(connection, score: Callable, options: ScoreOptions, parent: int) -> None:
    """A worker process: say it is ready (started up, imports done), then score one job
    at a time as the parent sends them, until the parent closes the pipe or dies."""
    _follow_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        connection.send(("ready", None))
        while True:
            index, (job, name, known) = connection.recv()
            try:
                result = ("rows", score(job, name, options, known))
            except Exception as error:  # the task failed outside any metric
                result = ("failed", f"{type(error).__name__}: {error}")
            connection.send((index, result))
    except (EOFError, OSError):  # the parent closed the pipe, or is gone
        return


def _follow_parent(parent: int) -> None:
    """End this worker when its parent dies, even in the middle of a file (a ``kill -9``
    of sqeval must not leave workers computing for nobody): on Linux the kernel sends it
    SIGKILL (``prctl(PR_SET_PDEATHSIG)``); everywhere a thread also waits on the parent."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: the thread below still watches
            pass
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True,
                     name="sqeval-parent-watch").start()


def _exit_with_parent(parent: int) -> None:
    watched = multiprocessing.parent_process()
    while os.getppid() == parent and (watched is None or watched.is_alive()):
        time.sleep(PARENT_POLL_S)
    os._exit(1)


class _Worker:
    """One worker process, its pipe, and the job it is scoring (``item``, since
    ``started``; ``alone``: nothing else was in flight when it began).

    Raises:
        OSError: the process cannot be started (no memory, too many processes).
    """

    def __init__(self, context, score, options):
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker_main, name="sqeval-worker",
                                       args=(child, score, options, os.getpid()))
        try:
            with _interrupts_ignored():  # inherited: Ctrl-C during start-up is the parent's
                self.process.start()
        except BaseException:
            self.connection.close()
            raise
        finally:
            child.close()
        self.born, self.ready = time.monotonic(), False
        self.item, self.started, self.alone = None, 0.0, False

    def give(self, item, alone: bool) -> bool:
        """Send ``item`` to this (ready, idle) worker; False when it is gone."""
        index, (job, name), known = item
        try:
            self.connection.send((index, (job, name, known)))
        except OSError:  # it died just now: its sentinel says so next
            return False
        self.item, self.started, self.alone = item, time.monotonic(), alone
        return True

    def stop(self) -> None:
        """Ask an idle worker to exit; kill a busy one, or one still starting."""
        if self.item is not None or not self.ready:
            self.process.kill()
        self.connection.close()  # an idle worker reads the end of its pipe and exits


@contextmanager
def _interrupts_ignored():
    """SIGINT ignored while a worker is started, so that the worker is born ignoring it (an
    ignored signal stays ignored across exec, and Python then installs no handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _IsolatedRun:
    """Jobs on worker processes, one per worker at a time, so that a crash or a timeout
    costs only the job that caused it, and never another worker's job.

    A job is sent only to a worker that reported itself ready, so ``timeout`` counts the
    time a started worker spends on that file, never a worker's start-up. A job past it
    is recorded as timed out and its worker (that one only) is killed and replaced. A job
    whose worker dies is run again with nothing else in flight (another process may have
    caused the lack of memory that killed it); only the one that kills its worker again
    is recorded as crashed. Workers that cannot start (:data:`START_ATTEMPTS` in a row,
    with none ready) fail the remaining jobs with the reason, rather than retry forever.
    """

    def __init__(self, options, n_jobs, timeout):
        self.options, self.n_jobs, self.timeout = options, n_jobs, timeout
        self.context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
        self.score = scoring.score_job  # looked up now, so that a test's stand-in is used
        self.workers: list[_Worker] = []
        self.failed_starts, self.start_error = 0, None

    def run(self, items) -> Iterator[tuple[int, list[Row]]]:
        queue, suspects = deque(items), deque()
        try:
            while queue or suspects or self._busy():
                self._top_up(len(queue) + len(suspects))
                if not any(w.ready for w in self.workers) and (
                        self.failed_starts >= START_ATTEMPTS or not self.workers):
                    yield from self._give_up(queue, suspects)
                    return
                self._dispatch(queue, suspects)
                yield from self._collect(self._wait(), suspects)
                yield from self._expire()
        finally:
            for worker in self.workers:
                worker.stop()
            for worker in self.workers:
                worker.process.join(timeout=5)
                if worker.process.is_alive():
                    worker.process.kill()
                    worker.process.join()

    def _busy(self) -> int:
        return sum(w.item is not None for w in self.workers)

    def _top_up(self, waiting: int) -> None:
        """Start workers up to ``n_jobs``, or as many as the work left needs."""
        while (len(self.workers) < min(self.n_jobs, waiting + self._busy())
               and self.failed_starts < START_ATTEMPTS):
            try:
                self.workers.append(_Worker(self.context, self.score, self.options))
            except OSError as error:
                self.failed_starts += 1
                self.start_error = f"{type(error).__name__}: {error}"

    def _dispatch(self, queue, suspects) -> None:
        idle = [w for w in self.workers if w.ready and w.item is None]
        if suspects:  # a suspect runs alone: once nothing else is in flight
            if idle and not self._busy() and idle[0].give(suspects[0], alone=True):
                suspects.popleft()
            return
        for worker in idle:
            if queue and worker.give(queue[0], alone=False):
                queue.popleft()

    def _wait(self) -> list:
        """What became readable (pipes) or ended (process sentinels), waiting at most until
        the next deadline, or a second."""
        delay = 1.0
        if self.timeout is not None:
            now = time.monotonic()
            for worker in self.workers:
                if worker.item is not None:
                    delay = min(delay, worker.started + self.timeout - now)
        handles = [w.connection for w in self.workers] + [w.process.sentinel for w in self.workers]
        return multiprocessing.connection.wait(handles, timeout=max(delay, 0.01))

    def _collect(self, ready, suspects):
        for worker in list(self.workers):
            ended = worker.process.sentinel in ready
            if worker.connection in ready:  # a message (sent before any death), or the end
                try:
                    message = worker.connection.recv()
                except (EOFError, OSError):
                    ended = True
                else:
                    yield from self._receive(worker, message)
            if ended:
                yield from self._ended(worker, suspects)

    def _receive(self, worker: _Worker, message):
        index, result = message
        if index == "ready":
            worker.ready = True
            return
        _, (job, name), _known = worker.item
        worker.item, self.failed_starts = None, 0
        kind, payload = result
        if kind == "rows":
            yield index, payload
        else:
            yield index, failure_rows(job, name, self.options,
                                      f"the worker scoring this file failed ({payload})")

    def _ended(self, worker: _Worker, suspects):
        """A worker ended by itself: its job (if any) is a suspect, or crashed if it was
        alone; a worker that ends without a job counts as one that could not start."""
        item, alone = worker.item, worker.alone
        worker.item = None
        worker.process.join(timeout=2)  # its pipe closes as it exits: let it, for the code
        self._remove(worker)
        if item is None:
            self.failed_starts += 1
            self.start_error = f"a worker process ended with exit code {worker.process.exitcode}"
        elif alone:
            index, (job, name), _known = item
            yield index, failure_rows(job, name, self.options, CRASHED)
        else:
            suspects.append(item)

    def _expire(self):
        now = time.monotonic()
        for worker in list(self.workers):
            if not worker.ready and now - worker.born > START_LIMIT_S:
                self._remove(worker)  # stuck starting up: it has no job, so nothing is lost
                self.failed_starts += 1
                self.start_error = f"a worker process did not start in {START_LIMIT_S:g} s"
            elif (self.timeout is not None and worker.item is not None
                  and now - worker.started > self.timeout):
                index, (job, name), _known = worker.item
                self._remove(worker)  # that worker only; the next loop starts another
                yield index, failure_rows(job, name, self.options, f"timed out after "
                                          f"{self.timeout:g} s (--timeout); not scored")

    def _remove(self, worker: _Worker) -> None:
        worker.stop()
        worker.process.join()
        self.workers.remove(worker)

    def _give_up(self, queue, suspects):
        reason = NO_WORKER.format(reason=self.start_error or "unknown reason")
        for index, (job, name), _known in [*suspects, *queue]:
            yield index, failure_rows(job, name, self.options, reason)
        queue.clear()
        suspects.clear()


def failure_rows(job: Job, display_name: str, options: ScoreOptions, reason: str) -> list[Row]:
    """The rows a job would have had, each carrying ``reason`` as its error."""
    return [failed_row(display_name, name, job.problems.get(name, reason), options.metrics)
            for name in options.systems if name in job.estimates or name in job.problems]


def _dask_client(scheduler: str, n_jobs: int):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise SchedulerError("--scheduler needs dask.distributed, which is not installed: "
                             "pip install '.[dask]' in sqeval's source folder (the dask "
                             "extra)") from None
    if scheduler == "local":
        with single_threaded_children(n_jobs):
            cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="20s"), None
    except (OSError, TimeoutError, ValueError) as error:
        raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler} ({error})") from None


def absolute(job: Job) -> Job:
    """``job`` with every path made absolute here, on the client. A Dask worker runs in
    its own working directory, often on another machine that sees the data on a shared
    file system at the same path: a relative path would name another file there."""
    return replace(job, clean=None if job.clean is None else Path(os.path.abspath(job.clean)),
                   estimates={name: Path(os.path.abspath(path))
                              for name, path in job.estimates.items()})


def score_on_dask_worker(job: Job, name: str, options: ScoreOptions, known) -> list[Row]:
    """:func:`~sqeval.scoring.score_job` on a Dask worker; a file it could not read names
    the worker, whose view of the file system is the one to check."""
    rows = scoring.score_job(job, name, options, known)
    try:
        from dask.distributed import get_worker

        where = get_worker().address
    except (ImportError, ValueError):  # not on a worker (called directly)
        return rows
    for row in rows:
        if row.file_error is not None and row.system not in job.problems:
            row.file_error += f" (on Dask worker {where})"
    return rows


def _run_dask(items, options, n_jobs, scheduler,
              timeout: float | None = None) -> Iterator[tuple[int, list[Row]]]:
    """The jobs on a Dask cluster, at most twice as many in flight as it has workers.

    Every wait is bounded: a file not done ``timeout`` seconds after it was handed out gets
    an error row (its task is cancelled; with a timeout, one file per worker is in flight,
    so that the time is the file's own), and a cluster that finishes nothing while it has
    no worker, or while its scheduler cannot be reached, for :data:`DASK_STALL_S` seconds
    ends the run with :class:`SchedulerError` (a long file on a live cluster does not)."""
    client, cluster = _dask_client(scheduler, n_jobs)  # says so when dask is missing
    from dask.distributed import wait

    try:
        window = (1 if timeout is not None else 2) * max(1, _dask_workers(client) or 0)
        queue, pending = iter(items), {}

        def submit_next() -> None:
            for index, (job, name), known in queue:
                future = client.submit(score_on_dask_worker, absolute(job), name, options,
                                       known, pure=False)
                pending[future] = (index, job, name, time.monotonic())
                return

        for _ in range(window):
            submit_next()
        stalled_since = time.monotonic()
        while pending:
            try:
                done = wait(list(pending), timeout=DASK_POLL_S, return_when="FIRST_COMPLETED").done
            except Exception:  # noqa: BLE001 - distributed's TimeoutError (its type varies)
                done = set()
            now = time.monotonic()
            late = {future for future, (*_, since) in pending.items()
                    if timeout is not None and now - since > timeout} - set(done)
            for future in [*done, *late]:
                index, job, name, _since = pending.pop(future)
                if future in late:
                    future.cancel()
                    rows = failure_rows(job, name, options, f"timed out after {timeout:g} s on "
                                        "the Dask cluster (--timeout)")
                else:
                    rows = _dask_rows(future, job, name, options)
                yield index, rows
                submit_next()
                stalled_since = now
            if done or late or _dask_workers(client):  # progress, or workers at it
                stalled_since = now
            elif now - stalled_since > DASK_STALL_S:
                raise SchedulerError(_stall_reason(client, scheduler))
    finally:
        with contextlib.suppress(Exception):  # a lost scheduler must not hang the exit
            client.close(timeout=5)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=5)


def _dask_rows(future, job, name, options) -> list[Row]:
    try:
        return future.result()
    except Exception as error:  # the task or its worker failed, not a metric
        return failure_rows(job, name, options, f"the Dask task scoring this file failed "
                            f"({type(error).__name__}: {error})")


def _dask_workers(client) -> int | None:
    """The number of workers the scheduler has, or None when it cannot be asked."""
    if client.status != "running":
        return None
    try:
        return len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001 - unreachable, closing, timed out: cannot tell
        return None


def _stall_reason(client, scheduler: str) -> str:
    workers = _dask_workers(client)
    if workers is None:
        return (f"lost the Dask scheduler at {scheduler}: no file finished for "
                f"{DASK_STALL_S:g} s and the scheduler cannot be reached; restart it and run "
                "the same command again (finished files are kept)")
    return (f"the Dask scheduler at {scheduler} has {plural(workers, 'worker')} and no file "
            f"finished for {DASK_STALL_S:g} s: start workers (dask worker {scheduler}) and run "
            "the same command again (finished files are kept)")
