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
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from . import __version__
from .audio import MAX_AUDIO_BYTES, AudioError, open_regular

DEFAULT_PATH = Path(".sqeval-cache") / "results.sqlite"
CHUNK = 1 << 20
UNEXPECTED = "unexpected "  # how scoring.Computation.outcome words an exception it did not expect

# An outcome: ("value", number, "") | ("error", None, reason) | ("n/a", None, reason)
Outcome = tuple


def file_hash(path: Path) -> str | None:
    """blake2b of the file's bytes; None when it cannot be read, is not a regular file
    (a FIFO, ``/dev/zero``: reading would block or never end) or is larger than
    :data:`~sqeval.audio.MAX_AUDIO_BYTES` (the scorer says why)."""
    digest = hashlib.blake2b(digest_size=20)
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


class ResultCache:
    """The store. Open it in the parent process only."""

    def __init__(self, path: Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(str(path), timeout=60)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.executescript(
            "CREATE TABLE IF NOT EXISTS outcome (clean TEXT, estimate TEXT, settings TEXT,"
            " metric TEXT, kind TEXT, value REAL, message TEXT,"
            " PRIMARY KEY (clean, estimate, settings, metric));"
            "CREATE TABLE IF NOT EXISTS notes (clean TEXT, estimate TEXT, settings TEXT,"
            " notes TEXT, PRIMARY KEY (clean, estimate, settings));")

    def lookup(self, clean: str, estimate: str, settings: str):
        """``(outcomes by metric, notes or None)`` stored for this pair."""
        rows = self.connection.execute(
            "SELECT metric, kind, value, message FROM outcome WHERE clean=? AND estimate=? AND "
            "settings=?", (clean, estimate, settings)).fetchall()
        notes = self.connection.execute(
            "SELECT notes FROM notes WHERE clean=? AND estimate=? AND settings=?",
            (clean, estimate, settings)).fetchone()
        outcomes = {metric: (kind, value, message) for metric, kind, value, message in rows}
        return outcomes, (json.loads(notes[0]) if notes else None)

    def store(self, clean: str, estimate: str, settings: str, outcomes: dict, notes: list):
        """Store the :func:`storable` ``outcomes`` of a pair, and its notes."""
        with self.connection:  # one transaction, committed: a crash keeps what was stored
            self.connection.executemany(
                "INSERT OR REPLACE INTO outcome VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(clean, estimate, settings, metric, *outcome)
                 for metric, outcome in outcomes.items() if storable(outcome)])
            self.connection.execute("INSERT OR REPLACE INTO notes VALUES (?, ?, ?, ?)",
                                    (clean, estimate, settings, json.dumps(notes)))

    def close(self) -> None:
        self.connection.close()


def cache_settings(options) -> str:
    """What besides the two files' content decides a cached outcome."""
    align = f"; aligned within {options.max_delay:g} s" if options.max_delay else ""
    return f"sqeval {__version__}; {options.channels.describe()}{align}"


NO_REFERENCE = "(no reference)"  # the cache's clean hash in --no-reference runs


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
