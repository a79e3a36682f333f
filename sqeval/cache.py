"""Results stored as they complete, keyed by file content, so a rerun computes only
what is missing.

A SQLite database (``.sqeval-cache/results.sqlite`` by default) maps (clean file hash,
estimate file hash, settings, metric) to the metric's outcome: its value, or the reason
it could not be computed. ``settings`` holds the sqeval version and the channel policy,
so an upgrade or another ``--channel`` never reuses an old number. Only the parent
process writes; lookups and writes are cheap beside any metric.

Only outcomes that will be the same next time are stored: an exception that is not a
metric's own error (``unexpected MemoryError: ...``, a backend crash, a bug) is not, nor
are timeouts and dead workers (their rows carry no outcome at all).

The cache is an optimisation, never a reason to fail: a cache that is locked by another
process for more than :data:`LOCK_WAIT_S`, read-only, damaged or not a file is reported
once, with the fix, and the run goes on without it. Nothing in it is ever deleted or
rewritten to repair it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Callable

from . import __version__
from .audio import MAX_AUDIO_BYTES, AudioError, content_digest, kind_problem, open_regular
from .results import NO_REFERENCE
from .warn import warn

DEFAULT_PATH = Path(".sqeval-cache") / "results.sqlite"
CHUNK = 1 << 20
LOCK_WAIT_S = 5.0  # how long one statement waits for another process's lock on the cache
UNEXPECTED = "unexpected "  # how scoring.Computation.outcome words an exception it did not expect

# An outcome: ("value", number, "") | ("error", None, reason) | ("n/a", None, reason)
Outcome = tuple


def file_hash(path: Path) -> str | None:
    """blake2b of the file's bytes; None when it cannot be read, is not a regular file
    (a FIFO, ``/dev/zero``: reading would block or never end) or is larger than
    :data:`~sqeval.audio.MAX_AUDIO_BYTES` (the scorer says why)."""
    digest = content_digest()
    try:
        with open(open_regular(path), "rb") as stream:
            size = 0
            for block in iter(lambda: stream.read(CHUNK), b""):
                size += len(block)
                if size > MAX_AUDIO_BYTES:  # it grew while being read
                    return None
                digest.update(block)
    except (OSError, AudioError):
        return None
    return digest.hexdigest()


def storable(outcome: Outcome) -> bool:
    """Whether ``outcome`` may be served to later runs: a value, a reason it does not
    apply, or the metric's own error; not an unexpected exception, which may not happen
    again (a MemoryError under load, a backend that crashed)."""
    kind, _, message = outcome
    return not (kind == "error" and str(message).startswith(UNEXPECTED))


class CacheUnusable(Exception):
    """The cache cannot be opened; the message names the file, the reason and the fix."""


def advice(error: Exception) -> str:
    """What to do about ``error`` of the cache, in one sentence."""
    text = str(error).lower()
    if "locked" in text or "busy" in text:
        return ("Another process holds it (another sqeval run?): let it finish, or give this "
                "run its own --cache PATH.")
    if "readonly" in text or "read-only" in text or "permission" in text:
        return "Make it (and its folder) writable, or give --cache a writable PATH."
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return ("It is damaged: move it away (its results are recomputed into a new one), "
                "or give another --cache PATH.")
    return "Give another --cache PATH, or --no-cache."


def _warn(message: str) -> None:
    warn(f"sqeval: {message}")


class ResultCache:
    """The store. Open it in the parent process only.

    Opening raises :class:`CacheUnusable` when the database cannot be used. A failure
    later, at a lookup or a store, is reported once through ``warn`` (default: a
    ``RuntimeWarning``); the cache is then left alone for the rest of the run: lookups
    find nothing and stores do nothing, and the run's results are complete regardless.
    """

    def __init__(self, path: Path, warn: Callable[[str], None] | None = None):
        self.path = Path(path)
        self.warn = warn or _warn
        self.connection = None
        try:
            self.connection = self._connect()
        except (OSError, sqlite3.Error) as error:
            raise CacheUnusable(f"the results cache {self.path} cannot be used ({error}). "
                                f"{advice(error)}") from None

    def _connect(self) -> sqlite3.Connection:
        if self.path.exists() or self.path.is_symlink():
            problem = kind_problem(os.stat(self.path).st_mode)
            if problem is not None:  # SQLite would block on a FIFO or read /dev/zero
                raise CacheUnusable(f"the results cache {self.path} cannot be used: {problem}. "
                                    "Give --cache the path of a regular file (it is made if "
                                    "missing).")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(str(self.path), timeout=LOCK_WAIT_S)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(
                "CREATE TABLE IF NOT EXISTS outcome (clean TEXT, estimate TEXT, settings TEXT,"
                " metric TEXT, kind TEXT, value REAL, message TEXT,"
                " PRIMARY KEY (clean, estimate, settings, metric));"
                "CREATE TABLE IF NOT EXISTS notes (clean TEXT, estimate TEXT, settings TEXT,"
                " notes TEXT, PRIMARY KEY (clean, estimate, settings));")
        except sqlite3.Error:
            connection.close()
            raise
        return connection

    @property
    def usable(self) -> bool:
        """False once a lookup or a store failed (and was reported)."""
        return self.connection is not None

    def _give_up(self, error: Exception, doing: str) -> None:
        self.close()
        self.warn(f"{doing} the results cache {self.path} failed ({error}); the rest of this "
                  f"run does without it (its results are complete). {advice(error)}")

    def lookup(self, clean: str, estimate: str, settings: str):
        """``(outcomes by metric, notes or None)`` stored for this pair; nothing found once
        the cache failed."""
        if self.connection is None:
            return {}, None
        try:
            rows = self.connection.execute(
                "SELECT metric, kind, value, message FROM outcome WHERE clean=? AND "
                "estimate=? AND settings=?", (clean, estimate, settings)).fetchall()
            notes = self.connection.execute(
                "SELECT notes FROM notes WHERE clean=? AND estimate=? AND settings=?",
                (clean, estimate, settings)).fetchone()
            outcomes = {metric: (kind, value, message) for metric, kind, value, message in rows}
            return outcomes, (json.loads(notes[0]) if notes else None)
        except (sqlite3.Error, OSError, ValueError, TypeError) as error:  # ValueError: bad JSON
            self._give_up(error, "reading")
            return {}, None

    def store(self, clean: str, estimate: str, settings: str, outcomes: dict, notes: list):
        """Store the :func:`storable` ``outcomes`` of a pair and its notes (nothing once the
        cache failed)."""
        if self.connection is None:
            return
        kept = [(clean, estimate, settings, metric, *outcome)
                for metric, outcome in outcomes.items() if storable(outcome)]
        try:
            with self.connection:  # one transaction, committed: a crash keeps what was stored
                self.connection.executemany(
                    "INSERT OR REPLACE INTO outcome VALUES (?, ?, ?, ?, ?, ?, ?)", kept)
                self.connection.execute("INSERT OR REPLACE INTO notes VALUES (?, ?, ?, ?)",
                                        (clean, estimate, settings, json.dumps(notes)))
        except (sqlite3.Error, OSError) as error:
            self._give_up(error, "storing results in")

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()
            except sqlite3.Error:  # a failed checkpoint: what was committed is in the file
                pass


def cache_settings(options) -> str:
    """What besides the two files' content decides a cached outcome."""
    align = f"; aligned within {options.max_delay:g} s" if options.max_delay else ""
    lengths = "default" if options.max_length_diff is None else f"{options.max_length_diff:g}"
    return f"sqeval {__version__}; {options.channels.describe()}{align}; lengths {lengths}"




def file_keys(job, options) -> dict[str, tuple[str, str]]:
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
