"""``sqeval score``: pair folders, score every file, report, and set the exit code."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..metrics import resolve
from ..pairing import NOISY, PairingError, System, pair_folders, parse_system
from ..report.files import document, write_csv, write_json
from ..report.table import print_tables
from ..scoring import Row, ScoreOptions, default_jobs, score_jobs
from ..stats import summarise
from .common import (CHANNEL_OPTION, MIX_OPTION, ExitCode, abort, channel_policy,
                     stderr_console, stdout_console)

MAX_NOTES = 20  # notes (not errors) printed before pointing to --json


def score_command(
    clean: Path = typer.Argument(..., help="Folder of clean reference files."),
    enhanced: List[str] = typer.Argument(
        ..., help="Folders of enhanced outputs, each PATH or NAME=PATH.", metavar="ENHANCED_DIR..."),
    noisy: Optional[Path] = typer.Option(
        None, "--noisy", help="Folder of noisy inputs: scored as system 'noisy' and the "
        "baseline for the improvement column."),
    metrics: str = typer.Option(
        "all", "--metrics", "-m", help="Comma-separated metric names, or 'all' (see `sqeval "
        "metrics`). A named metric that does not apply at a file's rate counts as a failure."),
    jobs: int = typer.Option(0, "--jobs", "-j", min=0, help="Worker processes; 0 = all cores."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write the per-file CSV here."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write rows, notes and "
                                             "summary as JSON here."),
    channel: Optional[int] = CHANNEL_OPTION,
    mix: Optional[str] = MIX_OPTION,
) -> None:
    """Score ENHANCED_DIR folders (and --noisy) against the CLEAN folder, file by file."""
    options, systems = _prepare(clean, enhanced, noisy, metrics, channel, mix)
    for path in (csv_path, json_path):
        if path is not None and not path.parent.is_dir():
            abort(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        jobs_found = pair_folders(clean, systems)
    except PairingError as error:
        abort(str(error))
    lookup = {system.name: system for system in systems}
    tasks = [(job, job.display_name(clean, lookup)) for job in jobs_found]
    rows = _score_with_progress(tasks, options, jobs)
    _report(rows, options, csv_path, json_path)
    raise typer.Exit(int(ExitCode.INCOMPLETE if any(r.failed for r in rows) else ExitCode.OK))


def _prepare(clean, enhanced, noisy, metrics, channel, mix):
    try:
        specs = resolve(metrics)
    except KeyError as error:
        abort(error.args[0])
    channels = channel_policy(channel, mix)
    systems = [parse_system(argument) for argument in enhanced]
    if noisy is not None:
        systems.insert(0, System(NOISY, noisy))
    options = ScoreOptions(
        metrics=tuple(specs), systems=tuple(s.name for s in systems),
        channels=channels,
        strict=metrics.strip().lower() != "all")
    return options, systems


def _score_with_progress(tasks, options: ScoreOptions, jobs: int) -> list[Row]:
    console = stderr_console()
    n_jobs = jobs or default_jobs()
    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("files"), TimeRemainingColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as progress:
        bar = progress.add_task("scoring", total=len(tasks))
        return score_jobs(tasks, options, n_jobs,
                          on_done=lambda k: progress.advance(bar, k))


def _report(rows: list[Row], options: ScoreOptions, csv_path, json_path) -> None:
    metrics = list(options.metrics)
    systems = [name for name in options.systems if any(r.system == name for r in rows)]
    summaries = summarise(rows, metrics, systems)
    counts = {name: sum(1 for r in rows if r.system == name) for name in systems}
    print_tables(stdout_console(), summaries, metrics, systems, counts)
    if csv_path is not None:
        write_csv(csv_path, rows, [spec.name for spec in metrics])
    if json_path is not None:
        write_json(json_path, document(rows, metrics, summaries))
    _print_problems(stderr_console(), rows, [spec.name for spec in metrics], json_path)


def _print_problems(console: Console, rows: list[Row], names: list[str], json_path) -> None:
    failed = [row for row in rows if row.failed]
    if failed:
        console.print(f"[bold red]{len(failed)} of {len(rows)} rows could not be fully "
                      "scored:[/bold red]")
        for row in failed:
            console.print(f"  {row.file} [{row.system}]: {row.error_text(names)}",
                          markup=False, soft_wrap=True)
    not_applicable = sum(1 for row in rows if row.not_applicable and not row.failed)
    if not_applicable:
        console.print(f"{not_applicable} rows have metrics that do not apply at their rate "
                      "(left empty; reason in the CSV error column).")
    notes = [(row, note) for row in rows for note in row.notes]
    for row, note in notes[:MAX_NOTES]:
        console.print(f"  note: {row.file} [{row.system}]: {note}", markup=False, soft_wrap=True)
    if len(notes) > MAX_NOTES:
        where = f"all of them are in {json_path}" if json_path else "--json FILE lists them all"
        console.print(f"  … and {len(notes) - MAX_NOTES} more notes; {where}.")
