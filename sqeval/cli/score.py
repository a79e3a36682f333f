"""``sqeval score``: pair sources, score every file, report, export, gate, exit code."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeRemainingColumn)
from rich.text import Text

from ..api import Results, check_jobs, compile_group_by, plan, run
from ..cache import DEFAULT_PATH, CacheUnusable, ResultCache
from ..gates import GateError, check_gates, find_config, load_config, merge_gates, parse_gate
from ..provenance import write_meta
from ..report.files import document, write_atomically, write_csv, write_json
from ..report.summary import (gates_markdown, junit_xml, latex_tables, markdown_tables,
                              write_summary_csv)
from ..report.table import gates_table, print_tables, section_table
from ..runner import Interrupted, SchedulerError
from ..results import Row
from ..scoring import REFERENCE_ITSELF
from ..stats import sections
from .common import (CHANNEL_OPTION, MIX_OPTION, ExitCode, abort, stderr_console,
                     stdout_console)

MAX_NOTES = 20  # notes (not errors) printed before pointing to --json
INTERRUPTED = 130  # the shell's code for a run stopped by Ctrl-C (128 + SIGINT); also SIGTERM


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
        None, "--noisy", help="Noisy inputs (a source as ENHANCED): scored as system 'noisy' "
        "and the baseline for the improvement column and delta. gates."),
    key: Optional[str] = typer.Option(
        None, "--key", help="Regex that finds each file's id in its relative path (in a "
        "list: the path as written): its group 'key', else its first group, else the whole "
        "match; e.g. 'fileid_(\\d+)'."),
    metrics: Optional[str] = typer.Option(
        None, "--metrics", "-m", help="Comma-separated metric and group names (core, classic, "
        "dnsmos), or 'all' (see `sqeval metrics`); default: core, or dnsmos with "
        "--no-reference. A metric named alone that does not apply at a file's rate counts "
        "as a failure."),
    jobs: int = typer.Option(0, "--jobs", "-j", min=0, help="Worker processes; 0 = all cores."),
    force_jobs: bool = typer.Option(False, "--force-jobs", help="Start more than 4 worker "
                                    "processes per core when --jobs asks for them."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Per-file CSV (+ .meta.json)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Rows, notes, summary and "
                                             "provenance as JSON."),
    gate: List[str] = typer.Option([], "--gate", "-g", help="Quality gate, e.g. 'pesq_wb>=3', "
                                   "'stoi.median>=0.9', 'delta.pesq_wb>=0.3', 'sysA:si_snr.p10>=5'. "
                                   "Repeatable; also read from sqeval.toml / [tool.sqeval]."),
    allow_missing: Optional[bool] = typer.Option(
        None, "--allow-missing/--no-allow-missing", help="With gates: files that could not be "
        "scored do not fail the run (the gates still see only scored files)."),
    summary_csv: Optional[Path] = typer.Option(None, "--summary-csv", help="Per system and "
                                               "metric statistics as CSV (+ .meta.json)."),
    latex: Optional[Path] = typer.Option(None, "--latex", help="booktabs table(s) for papers."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Summary (and gates) as "
                                            "Markdown, e.g. for a CI job page."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Gates as JUnit XML."),
    group_by: Optional[str] = typer.Option(None, "--group-by", help="Regex with named groups "
                                           "taken from each file path, e.g. '_(?P<snr>-?\\d+)dB'."),
    cache_path: Path = typer.Option(DEFAULT_PATH, "--cache", help="Results database: a rerun "
                                    "computes only what is missing (keyed by file content)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor store results."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", min=0.001, help="Give up on a file after this many seconds (it gets "
        "an error row; the run goes on)."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", help="Run the per-file jobs on a Dask cluster: tcp://HOST:PORT, or "
        "'local' for a LocalCluster of --jobs workers (needs sqeval[dask])."),
    align: bool = typer.Option(False, "--align", help="Estimate a constant delay per file by "
                               "cross-correlation and remove it before the sample-aligned "
                               "metrics (PESQ aligns itself); the delay is reported per file."),
    max_delay: float = typer.Option(0.5, "--max-delay", min=0.0, help="Largest delay searched "
                                    "by --align, in seconds."),
    channel: Optional[int] = CHANNEL_OPTION,
    mix: Optional[str] = MIX_OPTION,
) -> None:
    """Score ENHANCED sources (and --noisy) against the REFERENCE, file by file."""
    try:
        planned = plan(clean, enhanced or [], noisy=noisy, metrics=metrics, key=key,
                       align=align, max_delay=max_delay, channel=channel, mix=mix,
                       no_reference=no_reference)
        pattern = compile_group_by(group_by)
        crowded = check_jobs(jobs, force_jobs, scheduler)
    except ValueError as error:  # UsageError, PairingError: what cannot make a run
        abort(str(error))
    if crowded is not None:
        stderr_console().print(f"warning: {crowded}", markup=False, soft_wrap=True)
    options = planned.options
    gates, allow = _gates(gate, allow_missing)
    for path in (csv_path, json_path, summary_csv, latex, markdown, junit):
        if path is not None and not path.parent.is_dir():
            abort(f"cannot write {path}: folder {path.parent} does not exist")
    results_ = _score_with_progress(planned, jobs, None if no_cache else cache_path,
                                    scheduler, timeout, csv_path)
    rows, names = results_.rows, results_.systems
    all_sections = sections(rows, list(options.metrics), names, pattern)
    results = check_gates(gates, rows, names) if gates else []
    _print_report(rows, options, names, all_sections, results)
    incomplete = {name: sum(r.failed for r in rows if r.system == name) for name in names}
    _write_outputs(results_, options, all_sections, pattern, results, incomplete, allow,
                   dict(csv=csv_path, json=json_path, summary=summary_csv, latex=latex,
                        markdown=markdown, junit=junit))
    _print_problems(stderr_console(), rows, [spec.name for spec in options.metrics], json_path)
    raise typer.Exit(int(_exit_code(results, any(incomplete.values()), bool(gates), allow)))


def _exit_code(results, incomplete: bool, gated: bool, allow_missing: bool) -> ExitCode:
    if any(not r.passed for r in results):
        return ExitCode.GATE_FAILED
    if incomplete and gated and not allow_missing:
        stderr_console().print("[bold red]gated run failed:[/bold red] some files could not "
                               "be scored (--allow-missing gates on the scored files only)")
        return ExitCode.GATE_FAILED
    if incomplete and not gated:
        return ExitCode.INCOMPLETE
    return ExitCode.OK


def _gates(given: list[str], allow_missing: Optional[bool]):
    """Gates from the config file found from the working directory, then the command line's
    (a command-line gate replaces a configured one with the same left side)."""
    try:
        config = load_config(find_config(Path.cwd()))
        gates = merge_gates(config.gates, [parse_gate(text) for text in given])
    except GateError as error:
        abort(str(error))
    if config.source is not None and config.gates:
        stderr_console().print(f"gates from {config.source}", markup=False)
    allow = allow_missing if allow_missing is not None else bool(config.allow_missing)
    return gates, allow


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


def _terminate_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a run as Ctrl-C does: cleanly, keeping results


def _score_with_progress(planned, jobs: int, cache_path, scheduler: Optional[str] = None,
                         timeout: Optional[float] = None,
                         partial_csv: Optional[Path] = None) -> Results:
    console = stderr_console()
    cache = _open_cache(cache_path)
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("files"), RateColumn(), TimeRemainingColumn(), console=console,
                      transient=True, disable=not console.is_terminal) as progress:
            bar = progress.add_task("scoring", total=len(planned.tasks))
            return run(planned, jobs=jobs, cache=cache, scheduler=scheduler, timeout=timeout,
                       on_done=lambda k: progress.advance(bar, k))
    except SchedulerError as error:
        abort(str(error))
    except Interrupted as stop:
        kept = (f"the results of finished files are kept in {cache_path}: run the same command "
                "again to resume" if cache else "nothing was kept (no cache)")
        console.print(f"[bold red]interrupted[/bold red] after {stop.done} of {stop.total} "
                      f"files; {escape(kept)}.")
        if partial_csv is not None and stop.rows:
            write_csv(partial_csv, stop.rows, [spec.name for spec in planned.options.metrics])
            console.print(f"{partial_csv} holds the {len(stop.rows)} rows finished so far.",
                          markup=False)
        raise typer.Exit(INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if cache is not None:
            cache.close()


def _print_report(rows, options, systems, sections, results) -> None:
    console = stdout_console()
    metrics = list(options.metrics)
    counts = {name: sum(1 for r in rows if r.system == name) for name in systems}
    print_tables(console, sections[0].summaries, metrics, systems, counts)
    for section in sections[1:]:
        console.print(section_table(section, metrics))
    if results:
        console.print(gates_table(results))


def _write_outputs(scored: Results, options, sections, pattern, results, incomplete, allow,
                   paths) -> None:
    metrics, rows = list(options.metrics), scored.rows
    if paths["csv"] is not None:
        write_atomically(paths["csv"], lambda stream: stream.write(scored.csv_text()))
        write_meta(paths["csv"], scored.provenance)
    if paths["json"] is not None:
        data = document(rows, metrics, sections[0].summaries)
        data["provenance"] = scored.provenance
        write_json(paths["json"], data)
    if paths["summary"] is not None:
        write_summary_csv(paths["summary"], sections, list(pattern.groupindex) if pattern else [])
        write_meta(paths["summary"], scored.provenance)
    if paths["latex"] is not None:
        text = latex_tables(sections, metrics)
        write_atomically(paths["latex"], lambda stream: stream.write(text))
    if paths["markdown"] is not None:
        text = "## sqeval\n\n" + (("### quality gates\n\n" + gates_markdown(results) + "\n")
                                  if results else "") + markdown_tables(sections, metrics)
        write_atomically(paths["markdown"], lambda stream: stream.write(text))
    if paths["junit"] is not None:
        text = junit_xml(results, incomplete, allow)
        write_atomically(paths["junit"], lambda stream: stream.write(text))


def _print_problems(console: Console, rows: list[Row], names: list[str], json_path) -> None:
    failed = [row for row in rows if row.failed]
    if failed:
        console.print(f"[bold red]{len(failed)} of {len(rows)} rows could not be fully "
                      "scored:[/bold red]")
        for row in failed:
            console.print(f"  {row.file} [{row.system}]: {row.error_text(names)}",
                          markup=False, soft_wrap=True)
    not_applicable = sum(1 for row in rows if not row.failed and any(
        reason != REFERENCE_ITSELF for reason in row.not_applicable.values()))
    if not_applicable:
        console.print(f"{not_applicable} rows have metrics that do not apply at their rate "
                      "(left empty; reason in the CSV error column).")
    notes = [(row, note) for row in rows for note in row.notes]
    for row, note in notes[:MAX_NOTES]:
        console.print(f"  note: {row.file} [{row.system}]: {note}", markup=False, soft_wrap=True)
    if len(notes) > MAX_NOTES:
        where = f"all of them are in {json_path}" if json_path else "--json FILE lists them all"
        console.print(f"  … and {len(notes) - MAX_NOTES} more notes; {where}.")
