"""The library: ``sqeval.score(...)`` runs the whole pipeline and returns :class:`Results`;
``sqeval.read_results(csv)`` gives the same interface back from a saved run.

The CLI is a thin face over this module: it parses arguments, calls :func:`plan` and
:func:`run`, and hands the :class:`Results` to the reporters and gates.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import os
import re
import sys
from collections import Counter
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .audio import AUDIO_SUFFIXES, AudioError, ChannelPolicy, read_regular
from .cache import CacheUnusable, ResultCache
from .metrics import REGISTRY, resolve
from .metrics.registry import GROUPS, PRESETS
from .pairing import (CLEAN_PROBLEM, Inputs, PairingError, System, check_reserved_names,
                      pair_sources, read_inputs)
from .provenance import provenance as current_provenance
from .results import CsvWriter, read_text_cell, write_rows
from .runner import default_jobs, score_jobs, small_run
from .results import CLEAN, NA, NOISY, Row
from .scoring import DEFAULT_MAX_DELAY_S, ScoreOptions, delay_hints
from .sources import AudioFile, Mapping, compile_key, default_name, open_source
from .stats import sections, summary_rows
from .warn import warn


class UsageError(ValueError):
    """Arguments that cannot make a run; the message says why and how to fix it (the CLI
    exits 2 with it)."""


JOBS_PER_CORE = 4  # more workers than this per core only add memory: --force-jobs to start them


def check_jobs(jobs: int, force: bool = False, scheduler: str | None = None) -> str | None:
    """A warning when ``jobs`` worker processes are more than the cores this process may
    use, else None (a remote ``scheduler`` brings its own workers: no check).

    Raises:
        UsageError: ``jobs`` is negative, or more than :data:`JOBS_PER_CORE` per core
            without ``force`` (``--force-jobs``).
    """
    if jobs < 0:
        raise UsageError(f"--jobs takes a number of worker processes, or 0 for one per core; "
                         f"got {jobs}")
    if scheduler is not None and scheduler != "local":
        return None
    cores = default_jobs()
    if jobs > JOBS_PER_CORE * cores and not force:
        raise UsageError(f"--jobs {jobs} would start up to {jobs} worker processes on {cores} "
                         f"core(s); more than {JOBS_PER_CORE} per core ({JOBS_PER_CORE * cores} "
                         "here) add memory (each is a Python process with numpy and scipy "
                         "loaded), not speed. Use --jobs 0 (one per core), or pass --force-jobs "
                         "to start them anyway")
    if jobs > cores:
        return (f"--jobs {jobs} is more than the {cores} core(s) this process may use: the "
                "workers take turns on them, so the run is no faster, and each one takes memory")
    return None


def _finite(value, option: str, *, positive: bool, what: str,
            unit: str = "a number of seconds") -> float:
    """``value`` as a float when it is a finite number ≥ 0 (> 0 when ``positive``), else a
    :class:`UsageError` naming ``option``. inf and nan pass the command line's range
    checks (``--max-delay inf`` once made every file fail in its worker, then exit 1 as
    a gate), so each number is checked here, once, for the CLI and the API alike."""
    number = float(value) if isinstance(value, numbers.Real) else math.nan  # "0.5": no
    if isinstance(value, bool) or not math.isfinite(number) or number < 0 or (
            positive and number == 0):
        raise UsageError(f"{option} takes {unit.replace('a number', 'a finite number')} "
                         f"{'> 0' if positive else '≥ 0'} ({what}); got {value!r}")
    return number


def check_timeout(timeout: float | None) -> float | None:
    """``timeout`` when it is None or a finite number of seconds > 0.

    Raises:
        UsageError: nan, inf, 0, a negative number, or not a number (to score without a
            limit, give none).
    """
    if timeout is None:
        return None
    return _finite(timeout, "--timeout", positive=True,
                   what="the time a file may take; leave it out for no limit")


@dataclass(frozen=True)
class Plan:
    """What a run will do: ``(job, file name)`` tasks and the scoring options."""

    tasks: list
    options: ScoreOptions


def plan(reference, estimates=None, *, noisy=None, metrics=None,
         key: str | None = None, align: bool = False, max_delay: float = DEFAULT_MAX_DELAY_S,
         channel: int | None = None, mix: str | None = None,
         no_reference: bool = False, max_length_diff: float | None = None) -> Plan:
    """Pair the sources and settle the options, without scoring anything.

    Arguments as :func:`score`. Raises :class:`UsageError` or
    :class:`~sqeval.sources.PairingError` (both ``ValueError``) for what cannot run.
    """
    max_delay = _finite(max_delay, "--max-delay", positive=False,
                        what="the largest delay --align searches")
    if max_length_diff is not None:
        max_length_diff = _finite(max_length_diff, "--max-length-diff", positive=False,
                                  what="a fraction of the reference's length", unit="a number")
    inputs = _inputs(reference, estimates, noisy, no_reference)
    specs, named = _specs(metrics, "dnsmos" if no_reference else "core")  # None: the default
    channels = channel_policy(channel, mix)
    systems = list(inputs.systems)
    if no_reference:
        if align:
            raise UsageError("--align needs clean references to align to; it cannot go with "
                             "--no-reference")
        intrusive = [spec.name for spec in specs if spec.intrusive]
        if intrusive:
            raise UsageError(f"--no-reference scores non-intrusive metrics only; "
                             f"{', '.join(intrusive)} compare(s) against a clean reference "
                             "(see `sqeval metrics`)")
    elif any(not spec.intrusive for spec in specs):  # DNSMOS of the clean speech too
        if any(system.name == CLEAN for system in systems):
            raise UsageError(f"a source would be called '{CLEAN}', the name of the clean "
                             "references' row when non-intrusive metrics are scored; name it "
                             "apart with NAME=PATH")
        systems.insert(0, System(CLEAN, inputs.reference))
    options = ScoreOptions(metrics=tuple(specs), systems=tuple(s.name for s in systems),
                           channels=channels, strict=named, no_reference=no_reference,
                           max_delay=max_delay if align else None,
                           max_length_diff=max_length_diff)
    jobs = pair_sources(inputs.reference, [s for s in systems if s.name != CLEAN],
                        compile_key(key) if key is not None else None)
    if CLEAN in options.systems:
        for job in jobs:  # the clean file is scored too, by the non-intrusive metrics
            if job.clean is not None and not any(problem.startswith(CLEAN_PROBLEM)
                                                 for problem in job.problems.values()):
                job.estimates[CLEAN] = job.clean
    return Plan([(job, job.display_name()) for job in jobs], options)


def run(planned: Plan, *, jobs: int = 0, cache=None, timeout: float | None = None,
        scheduler: str | None = None, isolate: bool = False,
        on_done: Callable[[int], None] | None = None) -> "Results":
    """Score a :class:`Plan`. ``cache`` is a :class:`~sqeval.cache.ResultCache`, a path to
    one, or None; a cache that cannot be used (locked, read-only, damaged) is reported
    with a ``RuntimeWarning`` and the run goes on without it. Raises
    :class:`~sqeval.runner.Interrupted` on Ctrl-C (finished rows kept),
    :class:`~sqeval.runner.SchedulerError` for an unusable Dask scheduler, and
    :class:`UsageError` for a ``timeout`` that is not a finite number > 0.

    A few short files (:func:`~sqeval.runner.small_run`) are scored in this process,
    unless ``isolate`` (or a ``timeout``) asks for worker processes: then a crash in a C
    extension costs only its file. In this process, such a crash ends the program."""
    timeout = check_timeout(timeout)
    store = _open_cache(cache)
    n_jobs = jobs or default_jobs()
    # A few short files are scored here (no worker: so no warning that none can start);
    # otherwise the runner decides again on what the cache leaves to compute.
    few = (not isolate and timeout is None and scheduler is None
           and small_run([job for job, _ in planned.tasks]))
    workers = not few and _workers_can_start(n_jobs, scheduler)
    try:
        rows = score_jobs(planned.tasks, planned.options, n_jobs if workers else 1,
                          on_done=on_done, cache=store, scheduler=scheduler,
                          isolate=(True if isolate else None) if workers else False,
                          timeout=timeout)
    finally:
        if store is not None and store is not cache:
            store.close()
    names = [spec.name for spec in planned.options.metrics]
    present = [name for name in planned.options.systems if any(r.system == name for r in rows)]
    channels = planned.options.channels
    return Results(rows, names, present, {
        **current_provenance(), "audio": audio_sources(planned),
        "channels": {"channel": channels.channel, "mix": channels.mix},
        "align": planned.options.max_delay, "max_length_diff": planned.options.max_length_diff,
        "references": references(rows)})


def references(rows: list[Row]) -> dict[str, str]:
    """File → the content digest of its clean reference, as scored (``sqeval compare``
    refuses two runs whose references of the same file differ: other numbers)."""
    return dict(sorted({row.file: row.content[0] for row in rows
                        if row.content is not None}.items()))


def audio_sources(planned: Plan) -> dict[str, dict[str, str]]:
    """File → {system → its audio file, absolute}, and ``clean`` → its reference: where
    the run found each file, so that a report built later from the saved CSV can play
    them (``provenance["audio"]``)."""
    sources = {}
    for job, name in planned.tasks:
        paths = {} if job.clean is None else {CLEAN: os.path.abspath(job.clean)}
        paths.update({system: os.path.abspath(path) for system, path in job.estimates.items()
                      if system not in job.problems})
        sources[name] = paths
    return sources


def score(reference, estimates=None, *, noisy=None, metrics=None,
          jobs: int = 0, cache=None, key: str | None = None, align: bool = False,
          max_delay: float = DEFAULT_MAX_DELAY_S, channel: int | None = None, mix: str | None = None,
          timeout: float | None = None, scheduler: str | None = None,
          no_reference: bool = False, force_jobs: bool = False,
          isolate: bool = False, max_length_diff: float | None = None) -> "Results":
    """Score every estimate against its reference, file by file.

    Args:
        reference: the clean references: a folder, an audio file, a ``wav.scp`` or CSV
            list, a CSV manifest of the whole run, or a ``{id: path}`` mapping. With
            ``no_reference=True``: the first source to score.
        estimates: one source as above (a system named after its folder), or a
            ``{system name: source}`` mapping; omitted with a manifest.
        noisy: the noisy inputs, a source; scored as system ``noisy``, the baseline.
        metrics: metric and group names, comma-separated in one string or as a list
            (any iterable of strings), or ``"all"``; default ``core``.
        jobs: worker processes; 0 = all cores. More than the cores warns; more than
            :data:`JOBS_PER_CORE` per core needs ``force_jobs=True``.
        cache: a results database (path) reused across runs, or None.
        key: a regex that finds each file's id in its relative path.
        align, max_delay: remove a constant delay (≤ ``max_delay`` s, a finite number
            ≥ 0) before the sample-aligned metrics.
        channel, mix: multichannel policy (``channel=K``, or ``mix="mono"``).
        timeout: give up on a file after this many seconds (finite, > 0), or None.
        scheduler: a Dask scheduler address, or ``"local"``.
        max_length_diff: how much an estimate's length may differ from its reference's,
            as a fraction of the reference's (never less than 0.25 s); None, the default:
            10 %, at most 1 s. A larger difference fails the row instead of scoring a
            common prefix.
        isolate: score every file in a worker process, even a few short ones (which are
            otherwise scored in this process, where a crash in a C extension would end
            the program; see :func:`run`).

    Returns:
        :class:`Results`; ``to_frame()`` equals ``sqeval score --csv`` cell for cell.

    Raises:
        ValueError: (:class:`UsageError`, :class:`~sqeval.sources.PairingError`) the
            arguments cannot make a run; the message says why.

    Warns:
        RuntimeWarning: more ``jobs`` than cores; a cache that cannot be used; a system's
            outputs likely delayed by a constant amount (:attr:`Results.hints`).

    Example (from a clone of the repository, which has ``sample_data/``):
        >>> results = score("sample_data/clean", {"enh": "sample_data/enhanced"},
        ...                 metrics="si_snr", jobs=1)
        >>> results.to_frame().columns.tolist(), len(results.rows), results.systems
        (['file', 'system', 'si_snr', 'error'], 8, ['enh'])
    """
    crowded = check_jobs(jobs, force_jobs, scheduler)
    check_timeout(timeout)  # before pairing, as the command line does
    planned = plan(reference, estimates, noisy=noisy, metrics=metrics, key=key, align=align,
                   max_delay=max_delay, channel=channel, mix=mix, no_reference=no_reference,
                   max_length_diff=max_length_diff)
    if crowded is not None:
        warn(f"sqeval: {crowded}")
    results = run(planned, jobs=jobs, cache=cache, timeout=timeout, scheduler=scheduler,
                  isolate=isolate)
    for hint in results.hints:
        warn(f"sqeval: {hint}")
    return results


def _open_cache(cache):
    """The :class:`ResultCache` of ``cache`` (a path, a cache, or None); None with a
    warning when the path cannot be used."""
    if cache is None or isinstance(cache, ResultCache):
        return cache
    if not isinstance(cache, (str, os.PathLike)):
        raise UsageError(f"cache takes a path to a results database (str or os.PathLike), "
                         f"or None; got {type(cache).__name__}")
    try:
        return ResultCache(Path(cache))
    except CacheUnusable as error:
        warn(f"sqeval: {error} Scoring without it.")
        return None


@dataclass
class Results:
    """The rows of a run and what produced them.

    Attributes:
        rows: one :class:`~sqeval.results.Row` per (file, system), in output order.
        metrics: the metric names, in column order.
        systems: the system names, in output order.
        provenance: versions, command, rate policy and time (the ``.meta.json`` content).
    """

    rows: list[Row]
    metrics: list[str]
    systems: list[str]
    provenance: dict = field(default_factory=dict)

    @property
    def hints(self) -> list[str]:
        """Notes where the numbers may mislead, one per system whose outputs are likely
        delayed by a constant amount (``sqeval score`` prints each as ``note: ...``).
        They change no value; empty for a run with ``align``, and for one read from a CSV
        (the lags are measured while scoring and not saved)."""
        return delay_hints(self.rows, self.systems)

    def csv_text(self, guard: bool = True) -> str:
        """The per-file CSV, exactly as ``--csv`` writes it (``guard=False``: text cells as
        they are, without the ``'`` before a would-be spreadsheet formula)."""
        stream = io.StringIO()
        write_rows(stream, self.rows, self.metrics, guard=guard)
        return stream.getvalue()

    def to_frame(self):
        """The tidy per-file DataFrame: ``file, system, <metrics>, error``: the ``--csv``
        file of the same run read with its text cells as text (:func:`read_frame`). A
        metric cell that could not be computed is NaN; ``error`` is empty text (``""``)
        where the row was fully scored, else the reasons; ``file`` and ``system`` are
        the names as they are (no ``'`` before one that starts with ``= + - @``, and a
        system named ``NA`` stays ``"NA"``). Every value is the computed float to the
        last bit, with any pandas version."""
        return read_frame(io.StringIO(self.csv_text(guard=False)), self.metrics)

    def summary(self, group_by: str | None = None):
        """The summary CSV's DataFrame (``--summary-csv``): mean, std, median, 95 % CI, n,
        failures and the mean improvement over ``noisy``, per system and metric; with
        ``group_by`` (a regex with named groups) also per condition."""
        pattern = compile_group_by(group_by)
        # the statistics need only the names: a saved CSV may hold a column sqeval lacks
        specs = [REGISTRY.get(name) or Column(name) for name in self.metrics]
        stream = io.StringIO()
        CsvWriter(stream).writerows(summary_rows(
            sections(self.rows, specs, self.systems, pattern, self.provenance.get("audio")),
            list(pattern.groupindex) if pattern else [], guard=False))
        return _read_csv(io.StringIO(stream.getvalue()))

    @property
    def verdict(self) -> dict | None:
        """The run's verdict as ``sqeval score`` recorded it: ``outcome`` (PASS, FAIL,
        INCOMPLETE, OK), ``reason``, and the counts (``gate_checks``, ``gate_failures``,
        ``rows_failed``, ``missing``, ``na``); None when the run recorded none (a
        library run, or a CSV without its ``.meta.json``)."""
        return self.provenance.get("verdict")

    @property
    def failures(self):
        """The rows that could not be fully scored: ``file, system, error``."""
        import pandas as pd

        return pd.DataFrame([(r.file, r.system, r.error_text(self.metrics))
                             for r in self.rows if r.failed],
                            columns=["file", "system", "error"])


def read_frame(source, metrics: list[str]):
    """A per-file CSV (a path or a text stream) as :meth:`Results.to_frame` gives it:
    metric cells as floats (empty: NaN), ``file``, ``system`` and ``error`` as text
    (empty ``error``: ``""``), where plain ``pandas.read_csv`` would guess NaN for an
    empty error cell or a system named ``NA``."""
    return _read_csv(source, dtype={"file": str, "system": str, "error": str},
                     keep_default_na=False, na_values={name: [""] for name in metrics})


def _read_csv(source, **options):
    """``pandas.read_csv`` that reads every float exactly as written (sqeval writes each
    value's shortest round-trip form). Before pandas 3.0 the default parser puts about
    one value in six one unit in the last place off; its round-trip parser, the default
    since 3.0 (where the option is deprecated), does not."""
    import pandas as pd

    if int(pd.__version__.split(".")[0]) < 3:
        options.setdefault("float_precision", "round_trip")
    return pd.read_csv(source, **options)


@dataclass(frozen=True)
class Column:
    """A metric column of a saved run that this sqeval's registry does not know (the
    statistics need only its name)."""

    name: str


def read_results(csv_path) -> Results:
    """The :class:`Results` of a saved run: its per-file CSV and, when present, the
    ``.meta.json`` beside it (the provenance). Values and reasons are as saved.

    Raises:
        UsageError: the file cannot be read, lacks the ``file``, ``system`` or ``error``
            column, holds a (file, system) pair twice, or a metric cell that is not a
            number.
    """
    import pandas as pd

    path = Path(csv_path)
    data = _read_input(path)
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: cannot read it as CSV ({error})") from None
    missing = [c for c in ("file", "system", "error") if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: no column {', '.join(missing)}; expected the per-file CSV "
                         "of `sqeval score --csv` (file,system,<metrics>,error)")
    keys = [(read_text_cell(file), read_text_cell(system))  # as named, not as guarded
            for file, system in zip(frame["file"], frame["system"])]
    twice = next((key for key, count in Counter(keys).items() if count > 1), None)
    if twice is not None:
        raise UsageError(f"{path}: the (file, system) pair {twice!r} appears twice (a "
                         "formula guard ' before a name counts as the same name)")
    metrics = [c for c in frame.columns if c not in ("file", "system", "error")]
    meta = Path(f"{path}.meta.json")
    saved = _read_meta(meta) if os.path.exists(meta) else {}
    if saved and saved.get("csv_sha256") not in (None, csv_digest(data)):
        warn(f"sqeval: {meta} describes another CSV than {path} (a run stopped between "
             "writing the two?): its provenance, gates and verdict are not used")
        saved = {}
    legacy = "csv_sha256" not in saved  # before 0.6, n/a reasons had no "n/a: " mark
    rows = [_saved_row(record, metrics, path, line, legacy)
            for line, record in enumerate(frame.to_dict("records"), start=2)]
    systems = list(dict.fromkeys(row.system for row in rows))
    return Results(rows, metrics, systems, saved)


def csv_digest(data: bytes) -> str:
    """The SHA-256 of a CSV's bytes, which its ``.meta.json`` records as ``csv_sha256``: a
    reader uses the provenance (gates, verdict) only with the CSV it was written for."""
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _read_input(path: Path) -> bytes:
    """The bytes of a file given to read: a regular file of at most 1 GiB
    (:func:`~sqeval.audio.read_regular`), or a :class:`UsageError` saying why not."""
    try:
        return read_regular(path)
    except AudioError as error:
        raise UsageError(f"{path}: {error}") from None
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read it ({error.strerror or error})") from None


def _read_meta(path: Path) -> dict:
    """The provenance saved in ``CSV.meta.json``; a :class:`UsageError` when it is there
    but not a readable JSON object (a FIFO, ``/dev/zero``, a broken file)."""
    data = _read_input(path)
    try:
        saved = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise UsageError(f"{path}: not valid JSON ({error}); delete it or write it "
                         "again with `sqeval score --csv`") from None
    if not isinstance(saved, dict):
        raise UsageError(f"{path}: expected a JSON object (the provenance of the run), "
                         f"got {type(saved).__name__}")
    return saved


# How the reasons of metrics that do not apply began before sqeval 0.6 wrote "n/a: " before
# them: a CSV of an older run reads them back as n/a too (not as failures).
LEGACY_NA = ("wide-band PESQ needs audio at ", "PESQ needs audio at ",
             "the classic measures need audio at ", "the composite measures use wide-band ",
             "the clean reference itself", "needs a clean reference")


def _saved_row(record: dict, metrics: list[str], path: Path, line: int,
               legacy: bool = False) -> Row:
    """A row from a CSV record: the error cell is kept whole, per metric where it names
    one (``metric: reason; ...``), else as the file's error; a reason marked ``n/a: ``
    (or, in a CSV without a ``csv_sha256`` in its ``.meta.json``, one of
    :data:`LEGACY_NA`) is a metric that does not apply."""
    values = {}
    for name in metrics:
        try:
            values[name] = float(record[name]) if record[name] != "" else math.nan
        except ValueError:
            raise UsageError(f"{path}, line {line}: {name} is {record[name]!r}, not a number "
                             "(a metric cell holds a number, or nothing)") from None
    row = Row(read_text_cell(record["file"]), read_text_cell(record["system"]), values=values)
    error = read_text_cell(record["error"])
    if error:
        parts = dict(part.split(": ", 1) for part in error.split("; ") if ": " in part)
        if parts and set(parts) <= set(metrics) and all(math.isnan(row.values[name])
                                                        for name in parts):
            for name, reason in parts.items():  # n/a stays n/a, as the run had it
                if reason.startswith(NA):
                    row.not_applicable[name] = reason[len(NA):]
                elif legacy and reason.startswith(LEGACY_NA):
                    row.not_applicable[name] = reason
                else:
                    row.errors[name] = reason
        else:
            row.file_error = error
    return row


def check_group_by_matches(pattern, paths: dict) -> None:
    """Raise :class:`UsageError` when ``pattern`` (a compiled ``--group-by``) matches no
    file of the run, by any of the places :func:`~sqeval.stats.group_sources` looks:
    every file would be "(no match)" and the per-condition tables empty."""
    from .stats import NO_MATCH, file_groups, group_sources

    if pattern is None or not paths:
        return
    keys = file_groups(paths, pattern, paths)
    if any(value != NO_MATCH for key in keys.values() for _, value in key):
        return
    seen = [source for file in list(paths)[:2] for source in group_sources(file, paths)[:4]]
    raise UsageError(f"--group-by '{pattern.pattern}' matches none of the {len(paths)} files: "
                     "it is searched in each file's name, then the paths of its clean, noisy "
                     "and enhanced audio; for example " + "; ".join(map(repr, seen[:6])))


def compile_group_by(text: str | None):
    """``text`` compiled, or None; a :class:`UsageError` when it is not a regex with a
    named group."""
    if text is None:
        return None
    try:
        pattern = re.compile(text)
    except re.error as error:
        raise UsageError(f"--group-by {text!r} is not a valid regular expression: {error}")
    if not pattern.groupindex:
        raise UsageError(f"--group-by {text!r} has no named group; write e.g. "
                         "'_(?P<snr>-?\\d+)dB'")
    return pattern


# --- arguments → inputs ----------------------------------------------------------------

def _inputs(reference, estimates, noisy, no_reference: bool) -> Inputs:
    """Sources from Python values; command-line strings take the CLI's path."""
    _refuse_arrays(reference=reference, estimates=estimates, noisy=noisy)
    plain = (str, os.PathLike)
    if isinstance(reference, plain) and not isinstance(estimates, MappingType) and (
            noisy is None or isinstance(noisy, plain)):
        listed = [] if estimates is None else (
            [_argument(e) for e in estimates] if isinstance(estimates, (list, tuple)) else
            [_argument(estimates)])
        return read_inputs(_argument(reference), listed,
                           None if noisy is None else _text(noisy), no_reference)
    first = _source(reference)
    systems = []
    if isinstance(estimates, MappingType) and not _is_id_map(estimates, first):
        systems = [System(str(name), _source(source)) for name, source in estimates.items()]
    elif estimates is not None:
        source = _source(estimates)
        systems = [System(default_name(source), source)]
    unnamed = [System(default_name(first), first)] if no_reference else []
    check_reserved_names([*unnamed, *systems], no_reference)
    if noisy is not None:
        systems.insert(0, System(NOISY, _source(noisy)))
    if no_reference:
        return Inputs(None, [*unnamed, *systems])
    if not systems:
        raise UsageError("give at least one estimate source after the reference")
    if isinstance(first, AudioFile):
        systems = [System(s.name, _pinned(s.source, first)) for s in systems]
    return Inputs(first, systems)


def _refuse_arrays(**arguments) -> None:
    """A :class:`UsageError` pointing at :func:`sqeval.evaluate` for signals given where
    ``score`` reads sources: an array or tensor (anything with a ``shape``), alone or as
    a mapping's value, would otherwise be taken for a path and fail every row with
    ``no such file: [-0.0020752 ...]``."""
    for name, value in arguments.items():
        values = list(value.values()) if isinstance(value, MappingType) else [value]
        for item in values:
            if isinstance(item, MappingType):
                values.extend(item.values())
            elif not isinstance(item, (str, os.PathLike)) and hasattr(item, "shape"):
                raise UsageError(
                    f"{name} holds a {type(item).__name__} of shape {tuple(item.shape)}; "
                    "sqeval.score reads audio files (a folder, a file, a list, or "
                    "{id: path}). For signals in memory use sqeval.evaluate(reference, "
                    "estimate, fs, noisy=..., metrics=...)")


def _text(value) -> str:
    """A path argument (``str`` or any ``os.PathLike``) as text; other values as ``str``
    of them, which the sources then report as not found."""
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else str(value)


def _argument(value) -> str:
    """A source as the command line's text: a ``str`` as it is (``NAME=PATH`` names a
    system), an ``os.PathLike`` as a path only (a folder named ``run=3`` is a folder)."""
    if isinstance(value, str) or not isinstance(value, os.PathLike):
        return _text(value)
    text = os.fspath(value)
    return text if os.path.isabs(text) or "=" not in text else os.path.join(".", text)


def _source(value):
    if isinstance(value, MappingType):
        return Mapping(tuple((str(id), _text(path)) for id, path in value.items()))
    if isinstance(value, (str, os.PathLike)):
        return open_source(Path(value))
    raise UsageError(f"a source is a folder, an audio file, a list file or an {{id: path}} "
                     f"mapping; got {type(value).__name__}")


def _is_id_map(estimates: MappingType, reference) -> bool:
    """``{id: audio path}`` rather than ``{system: source}``: every value an audio file
    path, and the reference not one file (whose estimates are systems of one file)."""
    return not isinstance(reference, AudioFile) and all(
        isinstance(v, (str, os.PathLike)) and Path(v).suffix.lower() in AUDIO_SUFFIXES
        for v in estimates.values())


def _pinned(source, reference: AudioFile):
    if not isinstance(source, AudioFile):
        raise PairingError(f"{reference.path} is one audio file, so every other source must "
                           f"be one audio file too; got {source.path}")
    return source.pinned(reference.path.stem)


def metric_names(metrics) -> str | None:
    """``metrics`` as the comma-separated text the registry reads: None (the default
    group), a string (``"pesq_wb,stoi"``, ``"core"``, ``"all"``), or any iterable of such
    strings (``["pesq_wb", "stoi"]``, a tuple, a generator).

    Raises:
        UsageError: anything else (a number, bytes, a mapping, an item that is not a
            string), or an empty iterable.
    """
    if isinstance(metrics, str) and not any(name.strip() for name in metrics.split(",")):
        raise UsageError(f"metrics names no metric ({metrics!r}); leave it out (None) for "
                         "the default set, or name metrics or groups, e.g. 'pesq_wb,stoi'")
    if metrics is None or isinstance(metrics, str):
        return metrics
    if isinstance(metrics, (bytes, bytearray, MappingType)) or not hasattr(metrics, "__iter__"):
        raise UsageError(f"metrics takes metric or group names: a string such as "
                         f"'pesq_wb,stoi' or a list such as ['pesq_wb', 'stoi']; got "
                         f"{type(metrics).__name__} {metrics!r}")
    names = list(metrics)
    odd = [name for name in names if not isinstance(name, str) or not name.strip()]
    if odd or not names:
        raise UsageError(f"metrics takes metric or group names as strings; got "
                         f"{'an empty list' if not names else repr(odd[0])} "
                         f"(e.g. metrics=['pesq_wb', 'stoi'])")
    return ",".join(names)


def _specs(metrics, default: str):
    """The metrics asked for, and those named one by one (for them, not applying is a
    failure); a non-intrusive metric whose backend is missing is a usage error."""
    metrics = metric_names(metrics)
    try:
        specs = resolve(default if metrics is None else metrics)
    except KeyError as error:
        raise UsageError(error.args[0]) from None
    reasons = dict.fromkeys(spec.missing_backend() for spec in specs if spec.missing_backend)
    if any(reasons):
        raise UsageError("; ".join(reason for reason in reasons if reason))
    named = ({name.strip() for name in (metrics or "").split(",")} - set(GROUPS) - set(PRESETS)
             - {"all"})
    return specs, frozenset(named)


def channel_policy(channel: int | None, mix: str | None) -> ChannelPolicy:
    """The multichannel policy for ``channel`` / ``mix``; a :class:`UsageError` for a bad
    combination."""
    if mix is not None and mix != "mono":
        raise UsageError(f"--mix takes 'mono'; got {mix!r}")
    if channel is not None and (isinstance(channel, bool) or not isinstance(
            channel, numbers.Integral) or channel < 0):
        # a negative K would fail every multichannel file in its worker, not the run
        raise UsageError(f"--channel takes a channel number K ≥ 0 (0-based); got {channel!r}")
    if mix is not None and channel is not None:
        raise UsageError("give --channel K or --mix mono, not both")
    return ChannelPolicy(channel=channel, mix=mix == "mono")


# --- worker processes from scripts -------------------------------------------------------

def _workers_can_start(n_jobs: int, scheduler: str | None) -> bool:
    """Whether spawned worker processes can start from this program. They import the main
    module again: a script that calls sqeval at its top level without an
    ``if __name__ == "__main__":`` guard would run again in each worker, and a program
    read from standard input cannot be imported at all. Then the files are scored in
    this process (one core, no crash isolation), with a warning that says how to fix it.
    """
    if scheduler is not None:
        return True
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None and name.split(".")[-1] == "__main__":
        return True  # python -m package: spawn never imports a package's __main__ again
    path = getattr(main, "__file__", None)
    if name is None and path is None:  # an interactive session or a notebook
        return True
    reason = _main_problem(path)
    if reason is None:
        return True
    warn(f"sqeval: {reason}, so worker processes cannot start; scoring in this process on "
         "one core, without crash isolation. Put the code that calls sqeval under "
         "`if __name__ == \"__main__\":` to use every core.")
    return False


def _main_problem(path: str | None) -> str | None:
    """Why the main module cannot be imported again by a worker, or None."""
    import ast

    if path is None or not Path(path).is_file():
        return f"the program was not read from a file ({path or 'no file'})"
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None  # cannot tell: trust it
    for node in tree.body:
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and (
                "__main__" in ast.unparse(node.test)):
            return None
    calls = [node for node in tree.body if not isinstance(
        node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
               ast.ClassDef, ast.Assign, ast.AnnAssign, ast.Expr)) or (
        isinstance(node, (ast.Expr, ast.Assign, ast.AnnAssign)) and any(
            isinstance(inner, ast.Call) for inner in ast.walk(node)))]
    if not calls:
        return None
    return f"{path} runs code at its top level without an `if __name__ == \"__main__\":` guard"
