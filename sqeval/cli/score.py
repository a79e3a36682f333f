"""``sqeval score``: pair sources, score every file, report, export, gate, exit code."""

from __future__ import annotations

import io
import signal
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeRemainingColumn)
from rich.text import Text

from ..api import (Results, audio_sources, check_group_by_matches, check_jobs, check_timeout,
                   compile_group_by, csv_digest, plan, run)
from ..cache import DEFAULT_PATH, CacheUnusable, ResultCache
from ..gates import (GateError, check_gate_targets, check_gates, check_gates_apply,
                     find_config, load_config, merge_gates, parse_gate, run_verdict,
                     gated_rows, recorded_verdict, unexcused_failures, verdict_line)
from ..provenance import provenance, write_meta
from ..report.files import document, write_atomically, write_json
from ..report.summary import gates_markdown, junit_xml, write_summary_csv
from ..report.table import gates_table, print_tables, section_table
from ..runner import Interrupted, SchedulerError
from ..results import Row, plural, printable, write_rows
from ..scoring import DEFAULT_MAX_DELAY_S, REFERENCE_ITSELF
from ..stats import sections
from ..report.html import Page
from .common import (CHANNEL_OPTION, MIX_OPTION, ExitCode, abort, cache_files, check_outputs,
                     print_to_stdout, stderr_console, stdout_console,
                     terminate_as_interrupt)
from .report import (BASELINE_OPTION, CAPTION_OPTION, HTML_WORST, LABEL_OPTION,
                     LATEX_STYLE_OPTION, PERCENT_OPTION, TRANSPOSE_OPTION, check_html,
                     table_options, write_html)

MAX_NOTES = 20  # notes (not errors) printed before pointing to --json
MAX_FAILURES = 20  # failed rows printed before pointing to the CSV/JSON
INTERRUPTED = int(ExitCode.INTERRUPTED)


def score_command(
    clean: str = typer.Argument(..., help="Clean references: a folder, an audio file, a Kaldi "
                                "wav.scp or a CSV list (id,path), or a CSV manifest of the "
                                "whole run (id,reference,estimate[,noisy][,system]). With "
                                "--no-reference: the first source to score.",
                                metavar="REFERENCE"),
    enhanced: Optional[List[str]] = typer.Argument(
        None, help="Enhanced outputs, each PATH or NAME=PATH: folders, lists, or audio files "
        "beside a single reference file.", metavar="ENHANCED"),
    no_reference: bool = typer.Option(
        False, "--no-reference", help="There are no clean files: score every source given "
        "(REFERENCE included) with the non-intrusive metrics alone (DNSMOS)."),
    noisy: Optional[str] = typer.Option(
        None, "--noisy", metavar="SOURCE",
        help="Noisy inputs (a source as ENHANCED): scored as system 'noisy', the baseline of "
             "the improvement column and of delta.* gates."),
    key: Optional[str] = typer.Option(
        None, "--key", metavar="REGEX",
        help="Regex that finds each file's id in its relative path (in a list: the path as "
             "written): its group 'key', else its first group, else the whole match; e.g. "
             "'fileid_(\\d+)'."),
    metrics: Optional[str] = typer.Option(
        None, "--metrics", "-m", metavar="NAMES",
        help="Comma-separated metric and group names (core, classic, spectral, reverb, "
             "dnsmos, plc, visqol_v3), or 'all' (see "
             "`sqeval metrics`); default: core, or dnsmos with --no-reference. A metric named "
             "alone that does not apply at a file's rate counts as a failure."),
    jobs: int = typer.Option(
        0, "--jobs", "-j", metavar="N", min=0,
        help="Worker processes; 0 = all cores."),
    force_jobs: bool = typer.Option(False, "--force-jobs", help="Start more than 4 worker "
                                    "processes per core when --jobs asks for them."),
    isolate: bool = typer.Option(
        False, "--isolate",
        help="Score every file in a worker process, even a few short ones (otherwise "
             "scored in this process: faster, but a crash in a C extension would end sqeval "
             "instead of costing one file)."),
    csv_path: Optional[Path] = typer.Option(
        None, "--csv", metavar="FILE",
        help="Per-file CSV (+ .meta.json)."),
    json_path: Optional[Path] = typer.Option(
        None, "--json", metavar="FILE",
        help="Rows, notes, summary and provenance as JSON."),
    gate: List[str] = typer.Option(
        [], "--gate", "-g", metavar="EXPR",
        help="Quality gate, e.g. 'pesq_wb>=3', 'stoi.median>=0.9', 'delta.pesq_wb>=0.3', "
             "'sysA:si_snr.p10>=5'. Repeatable; also read from sqeval.toml / [tool.sqeval]."),
    allow_missing: Optional[bool] = typer.Option(
        None, "--allow-missing/--no-allow-missing", help="With gates: output files that do "
        "not exist do not fail the run (the gates see the files that do). Every other "
        "failure still fails it: unreadable, NaN, silent, truncated, a metric's error."),
    summary_csv: Optional[Path] = typer.Option(
        None, "--summary-csv", metavar="FILE",
        help="Per system and metric statistics as CSV (+ .meta.json)."),
    latex: Optional[Path] = typer.Option(
        None, "--latex", metavar="FILE",
        help="booktabs table for papers (as `sqeval report --latex`)."),
    latex_style: str = LATEX_STYLE_OPTION,
    caption: Optional[str] = CAPTION_OPTION,
    label: Optional[str] = LABEL_OPTION,
    transpose: Optional[bool] = TRANSPOSE_OPTION,
    percent: bool = PERCENT_OPTION,
    baseline: Optional[str] = BASELINE_OPTION,
    markdown: Optional[Path] = typer.Option(
        None, "--markdown", metavar="FILE",
        help="Summary (and gates) as Markdown, e.g. for a CI job page."),
    junit: Optional[Path] = typer.Option(
        None, "--junit", metavar="FILE",
        help="Gates as JUnit XML."),
    html_path: Optional[Path] = typer.Option(
        None, "--html", metavar="FILE",
        help="A self-contained HTML report: summary, figures, the per-file table, and the worst "
             "files to hear and see (needs sqeval[plot])."),
    html_worst: Optional[int] = typer.Option(
        None, "--html-worst", metavar="N", min=0,
        help=f"Worst files per system in the HTML report (0: none; default {HTML_WORST})."),
    html_metric: Optional[str] = typer.Option(
        None, "--html-metric", metavar="METRIC",
        help="The metric that ranks the worst files; default pesq_wb, else the first metric."),
    group_by: Optional[str] = typer.Option(
        None, "--group-by", metavar="REGEX",
        help="Regex with named groups taken from each file path, e.g. '_(?P<snr>-?\\d+)dB'."),
    cache_path: Path = typer.Option(
        DEFAULT_PATH, "--cache", metavar="PATH",
        help="Results database: a rerun computes only what is missing (keyed by file content)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor store results."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", metavar="SECONDS", min=0.001,
        help="Give up on a file after this many seconds (it gets an error row; the run goes on)."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", metavar="ADDRESS",
        help="Run the per-file jobs on a Dask cluster: tcp://HOST:PORT, or 'local' for a "
             "LocalCluster of --jobs workers (needs sqeval[dask])."),
    align: bool = typer.Option(False, "--align", help="Estimate a constant delay per file by "
                               "cross-correlation and remove it before the sample-aligned "
                               "metrics (PESQ aligns itself); the delay is reported per file. "
                               "Without it, a system whose outputs lag by the same amount on "
                               "most files gets a note."),
    max_delay: float = typer.Option(
        DEFAULT_MAX_DELAY_S, "--max-delay", metavar="SECONDS", min=0.0,
        help="Largest delay searched by --align, in seconds."),
    max_length_diff: Optional[float] = typer.Option(
        None, "--max-length-diff", metavar="FRACTION", min=0.0,
        help="How much an estimate's length may differ from its reference's, as a fraction "
             "of the reference's length (never less than 0.25 s; default 10 %, at most 1 s). "
             "A larger difference (a truncated or padded output) fails the file instead of "
             "scoring a common prefix."),
    allow_na: bool = typer.Option(
        False, "--allow-na", help="Gates skip files where a gated metric does not apply (n/a, "
        "e.g. pesq_wb at 8 kHz) instead of failing; the gate table counts them."),
    channel: Optional[int] = CHANNEL_OPTION,
    mix: Optional[str] = MIX_OPTION,
) -> None:
    """Score ENHANCED sources (and --noisy) against the REFERENCE, file by file."""
    for hint in folders_of_systems(enhanced or []):  # before pairing, which may refuse them
        stderr_console().print(f"note: {hint}", markup=False, soft_wrap=True)
    try:
        planned = plan(clean, enhanced or [], noisy=noisy, metrics=metrics, key=key,
                       align=align, max_delay=max_delay, channel=channel, mix=mix,
                       no_reference=no_reference, max_length_diff=max_length_diff)
        pattern = compile_group_by(group_by)
        check_group_by_matches(pattern, audio_sources(planned))
        crowded = check_jobs(jobs, force_jobs, scheduler)
        check_timeout(timeout)  # nan and inf pass the option's min=
    except ValueError as error:  # UsageError, PairingError: what cannot make a run
        abort(str(error))
    if crowded is not None:
        stderr_console().print(f"warning: {crowded}", markup=False, soft_wrap=True)
    options = planned.options
    gates, allow, config = _gates(gate, allow_missing)
    outputs = {"--csv": csv_path, "--json": json_path, "--summary-csv": summary_csv,
               "--latex": latex, "--markdown": markdown, "--junit": junit, "--html": html_path}
    check_html(html_path, [spec.name for spec in options.metrics], html_metric,
               html_worst)
    table = table_options(latex_style, caption, label, transpose, percent, baseline,
                          options.systems, latex is not None or markdown is not None)
    try:
        check_gate_targets(gates, [spec.name for spec in options.metrics], list(options.systems))
        check_gates_apply(gates, list(options.systems))
    except GateError as error:
        abort(str(error))
    check_outputs(outputs, _inputs(planned, [clean, *(enhanced or []), noisy], config,
                                   None if no_cache else cache_path),
                  with_meta=("--csv", "--summary-csv"))
    results_, cached = _score_with_progress(planned, jobs, None if no_cache else cache_path,
                                            scheduler, timeout, csv_path, isolate)
    results_.provenance.update(gates=[g.text for g in gates], allow_missing=allow,
                               allow_na=allow_na, group_by=group_by)
    rows, names = results_.rows, results_.systems
    all_sections = sections(rows, list(options.metrics), names, pattern,
                            results_.provenance.get("audio"))
    results = check_gates(gates, rows, names, allow_missing=allow,
                          allow_na=allow_na) if gates else []
    # files not scored per system; under gates, of the gated systems (the verdict's rows),
    # so that the JUnit completeness suite says what the exit code says
    counted = {row.system for row in gated_rows(results, rows)} if gates else set(names)
    incomplete = {name: unexcused_failures([r for r in rows if r.system == name],
                                           allow and bool(gates))
                  for name in names if name in counted}
    verdict = run_verdict(results, rows, bool(gates), allow)
    results_.provenance["verdict"] = recorded_verdict(verdict, results, rows, allow)
    # The files first: a stdout that breaks while the tables print loses nothing else.
    unwritten = _write_outputs(results_, options, all_sections, pattern, results, incomplete,
                               allow, dict(csv=csv_path, json=json_path, summary=summary_csv,
                                           latex=latex, markdown=markdown, junit=junit,
                                           html=html_path),
                               Page(all_sections, results, allow,
                                    HTML_WORST if html_worst is None else html_worst,
                                    html_metric, group_by), table)
    stdout_problem = print_to_stdout(
        lambda: _print_report(rows, options, names, all_sections, results))
    _print_problems(stderr_console(), rows, [spec.name for spec in options.metrics], json_path,
                    csv_path)
    for hint in results_.hints:  # information only: no number, verdict or exit code changes
        stderr_console().print(f"note: {printable(hint)}", markup=False, soft_wrap=True)
    if unwritten:
        kept = (f"every result is kept in the cache ({cache_path}): fix the output and run the "
                "same command again; nothing is computed twice" if cached else
                "the run used --no-cache, so the results are not kept" if no_cache else
                f"the cache {cache_path} could not be used (see the warning above), so the "
                "results are not kept")
        abort("could not write " + "; ".join(unwritten) + f". {kept}")
    code = _exit_code(verdict, results, rows, bool(gates), allow)
    if code == ExitCode.OK and stdout_problem is not None:
        code = stdout_problem
    raise typer.Exit(int(code))


def _inputs(planned, sources: list, config: Optional[Path], cache_path: Optional[Path]):
    """Every file the run reads or keeps, which no output may overwrite."""
    for job, _ in planned.tasks:
        if job.clean is not None:
            yield job.clean
        yield from job.estimates.values()
    for source in sources:  # list files and manifests (an item may be NAME=PATH)
        if source:
            yield Path(source)
            yield Path(source.partition("=")[2]) if "=" in source else Path(source)
    if config is not None:
        yield config
    if cache_path is not None:
        yield from cache_files(cache_path)


def _exit_code(verdict, results, rows, gated: bool, allow_missing: bool) -> ExitCode:
    """The exit code of the run's verdict; a gated run ends with the verdict's line on
    stderr (PASS or FAIL, with its counts)."""
    if gated:
        style = "bold green" if verdict.outcome == "PASS" else "bold red"
        line = verdict_line(verdict, results, rows, allow_missing)
        stderr_console().print(f"[{style}]{escape(line)}[/{style}]", soft_wrap=True)
    return {"FAIL": ExitCode.GATE_FAILED, "INCOMPLETE": ExitCode.INCOMPLETE}.get(
        verdict.outcome, ExitCode.OK)


def _gates(given: list[str], allow_missing: Optional[bool]):
    """Gates from the config file found from the working directory, then the command line's
    (a command-line gate replaces a configured one with the same left side)."""
    try:
        config = load_config(find_config(Path.cwd()))
        gates = merge_gates(config.gates, [parse_gate(text) for text in given])
    except GateError as error:
        abort(str(error))
    if config.source is not None and config.gates:
        stderr_console().print(f"gates from {printable(str(config.source))}", markup=False)
    allow = allow_missing if allow_missing is not None else bool(config.allow_missing)
    return gates, allow, config.source


class RateColumn(ProgressColumn):
    """Files per second."""

    def render(self, task) -> Text:
        return Text(f"{task.speed:.1f} files/s" if task.speed else "", style="progress.data.speed")


def _open_cache(path: Optional[Path]):
    """The results cache at ``path``, or None. A cache that cannot be used (locked,
    read-only, damaged, not a file), at opening or later, is reported once on stderr and
    the run goes on without it."""
    if path is None:
        return None

    def warn(message: str) -> None:
        stderr_console().print(f"warning: {message}", markup=False, soft_wrap=True)

    try:
        return ResultCache(path, warn=warn)
    except CacheUnusable as error:
        warn(f"{error} Scoring without it.")
        return None


def _score_with_progress(planned, jobs: int, cache_path, scheduler: Optional[str] = None,
                         timeout: Optional[float] = None,
                         partial_csv: Optional[Path] = None,
                         isolate: bool = False) -> tuple[Results, bool]:
    """The run's :class:`Results`, and whether every result went into the cache (False
    without one, or when it failed during the run)."""
    console = stderr_console()
    cache = _open_cache(cache_path)
    previous = signal.signal(signal.SIGTERM, terminate_as_interrupt)
    try:
        with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("files"), RateColumn(), TextColumn("ETA"),
                      TimeRemainingColumn(), console=console,
                      transient=True, disable=not console.is_terminal) as progress:
            bar = progress.add_task("scoring", total=len(planned.tasks))
            scored = run(planned, jobs=jobs, cache=cache, scheduler=scheduler, timeout=timeout,
                         isolate=isolate, on_done=lambda k: progress.advance(bar, k))
            return scored, cache is not None and cache.usable
    except SchedulerError as error:
        _write_partial(partial_csv, error.rows, planned, f"stopped: {error}")
        abort(str(error))
    except Interrupted as stop:
        kept = (f"the results of finished files are kept in {cache_path}: run the same command "
                "again to resume" if cache else "nothing was kept (no cache)")
        console.print(f"[bold red]interrupted[/bold red] after {stop.done} of {stop.total} "
                      f"files; {escape(kept)}.")
        _write_partial(partial_csv, stop.rows, planned,
                       f"interrupted after {stop.done} of {stop.total} files")
        raise typer.Exit(INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if cache is not None:
            cache.close()


def _write_partial(path: Optional[Path], rows: list, planned, reason: str) -> None:
    """The rows finished before a run stopped, as ``path`` (the --csv), with a .meta.json
    that says the run is partial (replacing a previous run's, which would describe other
    rows): ``sqeval report`` and ``read_results`` never show it as a complete run."""
    if path is None:  # (with no row finished, a CSV of its header: never an old run's rows)
        return
    console = stderr_console()
    names = [spec.name for spec in planned.options.metrics]
    stream = io.StringIO()
    write_rows(stream, rows, names)
    text = stream.getvalue()
    try:
        write_run_csv(path, text, {**provenance(), "partial": True, "verdict": {
            "outcome": "INCOMPLETE", "reason": f"a partial run: {reason}"}})
        console.print(f"{printable(str(path))} holds the {plural(len(rows), 'row')} finished "
                      "so far (its .meta.json says the run is partial).", markup=False)
    except OSError as error:
        console.print(f"could not write {printable(str(path))}: {error.strerror or error}",
                      markup=False)


def write_run_csv(path: Path, text: str, meta: dict) -> Optional[Path]:
    """Write a run's per-file CSV ``text`` to ``path``, then its .meta.json ``meta`` with
    the CSV's SHA-256 (``csv_sha256``): a stop between the two leaves the old meta, which
    then no longer matches and is not used (``read_results``). Returns the meta's path."""
    write_atomically(path, lambda stream: stream.write(text))
    return write_meta(path, {**meta, "csv_sha256": csv_digest(
        text.encode("utf-8", "backslashreplace"))})  # the bytes write_atomically wrote


def _print_report(rows, options, systems, sections, results) -> None:
    console = stdout_console()
    metrics = list(options.metrics)
    counts = {name: sum(1 for r in rows if r.system == name) for name in systems}
    print_tables(console, sections[0].summaries, metrics, systems, counts)
    for section in sections[1:]:
        console.print(section_table(section, metrics))
    if results:
        console.print(gates_table(results))


def folders_of_systems(sources) -> list[str]:
    """A note for each ENHANCED folder that holds no audio of its own, only folders that
    do: one folder per system (``runs/sysA``, ``runs/sysB``) meant as ``runs/*``; scored
    as one source, every file would be "no clean reference for this file"."""
    from ..audio import AUDIO_SUFFIXES

    notes = []
    for source in sources:
        text = source.split("=", 1)[1] if "=" in source and not Path(source).exists() else source
        folder = Path(text)
        try:
            if not folder.is_dir() or any(p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
                                          for p in folder.iterdir()):
                continue
            systems = sorted(p.name for p in folder.iterdir() if p.is_dir() and any(
                q.suffix.lower() in AUDIO_SUFFIXES for q in p.iterdir() if q.is_file()))
        except OSError:
            continue
        if systems:
            shown = ", ".join(systems[:5]) + (", ..." if len(systems) > 5 else "")
            notes.append(f"{text} holds no audio of its own but {len(systems)} folders of "
                         f"audio ({shown}): if each is a system, pass them one by one, e.g. "
                         f"{str(folder / '*')} in the shell")
    return notes


def _write_outputs(scored: Results, options, sections, pattern, results, incomplete, allow,
                   paths, page: Page, table) -> list[str]:
    """Write every output asked for; one that fails does not stop the others. Says on
    stderr what each one written holds (``wrote results.csv (50 rows)``). Returns
    ``path: reason`` for each output that could not be written."""
    from ..report.paper import build

    metrics, rows = list(options.metrics), scored.rows
    n_rows = plural(len(rows), "row")

    def csv_file(path):
        meta = write_run_csv(path, scored.csv_text(), scored.provenance)
        return n_rows + (f"; provenance in {printable(str(meta))}" if meta else "")

    def json_file(path):
        data = document(rows, metrics, sections[0].summaries)
        data["provenance"] = scored.provenance
        write_json(path, data)
        return n_rows

    def summary_file(path):
        write_summary_csv(path, sections, list(pattern.groupindex) if pattern else [])
        meta = write_meta(path, scored.provenance)
        lines = plural(sum(len(section.summaries) for section in sections), "line")
        return lines + (f"; provenance in {printable(str(meta))}" if meta else "")

    def text_file(make, what):
        def write(path):
            write_atomically(path, lambda stream: stream.write(make()))
            return what() if callable(what) else what
        return write

    tables = None

    def paper():  # the tables of `sqeval report --latex`, made once
        nonlocal tables
        if tables is None:
            tables = build(rows, metrics, scored.systems, table, pattern,
                           scored.provenance.get("audio"), sections)
        return tables

    markdown = text_file(lambda: "## sqeval\n\n" + (
        ("### quality gates\n\n" + gates_markdown(results) + "\n") if results else "")
        + paper().markdown(), lambda: paper().what(False))

    def html_file(path):
        write_html(path, scored, page)
        return n_rows

    writers = {"csv": csv_file, "json": json_file, "summary": summary_file,
               "latex": text_file(lambda: paper().latex(), lambda: paper().what(True)),
               "markdown": markdown,
               "junit": text_file(lambda: junit_xml(results, incomplete),
                                  plural(len(results), "gate check")),
               "html": html_file}
    unwritten = []
    console = stderr_console()
    for key, write in writers.items():
        if paths[key] is not None:
            try:
                what = write(paths[key])
            except OSError as error:
                unwritten.append(f"{printable(str(paths[key]))}: {error.strerror or error}")
            else:
                console.print(f"wrote {printable(str(paths[key]))} ({what})", markup=False,
                              soft_wrap=True)
    return unwritten


def _print_problems(console: Console, rows: list[Row], names: list[str], json_path,
                    csv_path=None) -> None:
    failed = [row for row in rows if row.failed]
    if failed:
        console.print(f"[bold red]{len(failed)} of {plural(len(rows), 'row')} could not be fully "
                      "scored:[/bold red]")
        for row in failed[:MAX_FAILURES]:
            console.print(printable(f"  {row.file} [{row.system}]: {row.error_text(names)}"),
                          markup=False, soft_wrap=True)
        if len(failed) > MAX_FAILURES:
            kept = [str(path) for path in (csv_path, json_path) if path is not None]
            where = (f"every one is in {' and '.join(map(printable, kept))}" if kept
                     else "--csv FILE lists every one")
            console.print(f"  … and {len(failed) - MAX_FAILURES} more rows; {where}.",
                          markup=False)
    not_applicable = sum(1 for row in rows if not row.failed and any(
        reason != REFERENCE_ITSELF for reason in row.not_applicable.values()))
    if not_applicable:
        console.print(f"{plural(not_applicable, 'row')} {'has' if not_applicable == 1 else 'have'} "
                      "metrics that do not apply at their rate "
                      "(left empty; reason in the CSV error column).")
    notes = [(row, note) for row in rows for note in row.notes]
    if notes:  # what was done to the signals: information, not failures
        console.print(f"{len(notes)} note{'s' if len(notes) != 1 else ''} (not failures):",
                      markup=False)
    for row, note in notes[:MAX_NOTES]:
        console.print(printable(f"  {row.file} [{row.system}]: {note}"), markup=False,
                      soft_wrap=True)
    if len(notes) > MAX_NOTES:
        where = f"all of them are in {json_path}" if json_path else "--json FILE lists them all"
        console.print(f"  … and {len(notes) - MAX_NOTES} more notes; {where}.")
