"""``sqeval score``: pair folders, score every file, report, export, gate, exit code."""

from __future__ import annotations

import re
import signal
import sqlite3
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeRemainingColumn)
from rich.text import Text

from ..cache import DEFAULT_PATH, ResultCache
from ..gates import GateError, check_gates, find_config, load_config, merge_gates, parse_gate
from ..metrics import resolve
from ..metrics.registry import GROUPS
from ..pairing import (CLEAN_PROBLEM, NOISY, PairingError, System, pair_estimates,
                       pair_folders, parse_system)
from ..provenance import provenance, write_meta
from ..report.files import document, write_atomically, write_csv, write_json
from ..report.summary import (Section, gates_markdown, junit_xml, latex_tables,
                              markdown_tables, write_summary_csv)
from ..report.table import gates_table, print_tables, section_table
from ..scoring import (CLEAN, REFERENCE_ITSELF, Interrupted, Row, SchedulerError, ScoreOptions,
                       default_jobs, score_jobs)
from ..stats import summarise
from .common import (CHANNEL_OPTION, MIX_OPTION, ExitCode, abort, channel_policy,
                     stderr_console, stdout_console)

MAX_NOTES = 20  # notes (not errors) printed before pointing to --json
INTERRUPTED = 130  # the shell's code for a run stopped by Ctrl-C (128 + SIGINT); also SIGTERM
NO_MATCH = "(no match)"  # the group value of files that --group-by does not match


def score_command(
    clean: str = typer.Argument(..., help="Folder of clean reference files (with "
                                "--no-reference: the first folder to score).",
                                metavar="CLEAN_DIR"),
    enhanced: Optional[List[str]] = typer.Argument(
        None, help="Folders of enhanced outputs, each PATH or NAME=PATH.",
        metavar="ENHANCED_DIR..."),
    no_reference: bool = typer.Option(
        False, "--no-reference", help="There are no clean files: score every folder given "
        "(CLEAN_DIR included) with the non-intrusive metrics alone (DNSMOS)."),
    noisy: Optional[Path] = typer.Option(
        None, "--noisy", help="Folder of noisy inputs: scored as system 'noisy' and the "
        "baseline for the improvement column and delta. gates."),
    metrics: Optional[str] = typer.Option(
        None, "--metrics", "-m", help="Comma-separated metric and group names (core, classic, "
        "dnsmos), or 'all' (see `sqeval metrics`); default: core, or dnsmos with "
        "--no-reference. A metric named alone that does not apply at a file's rate counts "
        "as a failure."),
    jobs: int = typer.Option(0, "--jobs", "-j", min=0, help="Worker processes; 0 = all cores."),
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
    """Score ENHANCED_DIR folders (and --noisy) against the CLEAN folder, file by file."""
    if no_reference:
        options, systems = _prepare_no_reference([clean, *(enhanced or [])], noisy, metrics,
                                                 channel, mix, align)
    else:
        if not enhanced:
            abort("give at least one ENHANCED_DIR after CLEAN_DIR (or --no-reference to score "
                  "folders without clean files)")
        options, systems = _prepare(Path(clean), enhanced, noisy, metrics, channel, mix,
                                    max_delay if align else None)
    clean = None if no_reference else Path(clean)
    gates, allow = _gates(gate, allow_missing)
    pattern = _group_pattern(group_by)
    for path in (csv_path, json_path, summary_csv, latex, markdown, junit):
        if path is not None and not path.parent.is_dir():
            abort(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        jobs_found = (pair_estimates(systems) if clean is None
                      else pair_folders(clean, [s for s in systems if s.name != CLEAN]))
    except PairingError as error:
        abort(str(error))
    if CLEAN in options.systems and clean is not None:
        for job in jobs_found:  # the clean file is scored too, by the non-intrusive metrics
            if job.clean is not None and not any(problem.startswith(CLEAN_PROBLEM)
                                                 for problem in job.problems.values()):
                job.estimates[CLEAN] = job.clean
    lookup = {system.name: system for system in systems}
    tasks = [(job, job.display_name(clean, lookup)) for job in jobs_found]
    rows = _score_with_progress(tasks, options, jobs, None if no_cache else cache_path,
                                scheduler, timeout, csv_path)
    names = [name for name in options.systems if any(r.system == name for r in rows)]
    sections = _sections(rows, options, names, pattern)
    results = check_gates(gates, rows, names) if gates else []
    _print_report(rows, options, names, sections, results)
    incomplete = {name: sum(r.failed for r in rows if r.system == name) for name in names}
    _write_outputs(rows, options, sections, pattern, results, incomplete, allow,
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


def _specs(metrics: Optional[str], default: str):
    """The metrics asked for, and those named one by one (for them, not applying is a
    failure); a non-intrusive metric whose backend is missing is a usage error."""
    try:
        specs = resolve(metrics or default)
    except KeyError as error:
        abort(error.args[0])
    if any(spec.group == "dnsmos" for spec in specs):
        from ..metrics.dnsmos import missing_backend

        reason = missing_backend()
        if reason:
            abort(reason)
    named = {name.strip() for name in (metrics or "").split(",")} - set(GROUPS) - {"all"}
    return specs, frozenset(named)


def _prepare(clean, enhanced, noisy, metrics, channel, mix, max_delay=None):
    specs, named = _specs(metrics, "core")
    channels = channel_policy(channel, mix)
    systems = [parse_system(argument) for argument in enhanced]
    if noisy is not None:
        systems.insert(0, System(NOISY, noisy))
    if any(not spec.intrusive for spec in specs):  # DNSMOS of the clean speech too
        if any(system.name == CLEAN for system in systems):
            abort(f"a folder would be called '{CLEAN}', the name of the clean references' "
                  "row when non-intrusive metrics are scored; name it apart with NAME=PATH")
        systems.insert(0, System(CLEAN, clean))
    options = ScoreOptions(
        metrics=tuple(specs), systems=tuple(s.name for s in systems),
        channels=channels, max_delay=max_delay, strict=named)
    return options, systems


def _prepare_no_reference(folders, noisy, metrics, channel, mix, align):
    if align:
        abort("--align needs clean references to align to; it cannot go with --no-reference")
    specs, named = _specs(metrics, "dnsmos")
    intrusive = [spec.name for spec in specs if spec.intrusive]
    if intrusive:
        abort(f"--no-reference scores non-intrusive metrics only; {', '.join(intrusive)} "
              "compare(s) against a clean reference (see `sqeval metrics`)")
    systems = [parse_system(argument) for argument in folders]
    if noisy is not None:
        systems.insert(0, System(NOISY, noisy))
    options = ScoreOptions(metrics=tuple(specs), systems=tuple(s.name for s in systems),
                           channels=channel_policy(channel, mix), strict=named,
                           no_reference=True)
    return options, systems


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


def _group_pattern(group_by: Optional[str]):
    if group_by is None:
        return None
    try:
        pattern = re.compile(group_by)
    except re.error as error:
        abort(f"--group-by {group_by!r} is not a valid regular expression: {error}")
    if not pattern.groupindex:
        abort(f"--group-by {group_by!r} has no named group; write e.g. '_(?P<snr>-?\\d+)dB'")
    return pattern


def _sections(rows, options, systems, pattern) -> list[Section]:
    metrics = list(options.metrics)
    sections = [Section({}, summarise(rows, metrics, systems))]
    if pattern is None:
        return sections
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        match = pattern.search(row.file)
        key = tuple((name, (match.group(name) or "") if match else NO_MATCH)
                    for name in pattern.groupindex)
        groups.setdefault(key, []).append(row)
    for key in sorted(groups, key=_natural):
        group_rows = groups[key]
        present = [s for s in systems if any(r.system == s for r in group_rows)]
        sections.append(Section(dict(key), summarise(group_rows, metrics, present)))
    return sections


def _natural(key):
    """Sort group values numerically where they are numbers (-5 before 10)."""
    out = []
    for _, value in key:
        try:
            out.append((0, float(value), ""))
        except ValueError:
            out.append((1, 0.0, value))
    return out


class RateColumn(ProgressColumn):
    """Files per second."""

    def render(self, task) -> Text:
        return Text(f"{task.speed:.1f} files/s" if task.speed else "", style="progress.data.speed")


def _open_cache(path: Optional[Path]):
    if path is None:
        return None
    try:
        return ResultCache(path)
    except (OSError, sqlite3.Error) as error:
        stderr_console().print(f"warning: no cache at {path} ({error}); scoring without one",
                               markup=False)
        return None


def _terminate_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a run as Ctrl-C does: cleanly, keeping results


def _score_with_progress(tasks, options: ScoreOptions, jobs: int, cache_path,
                         scheduler: Optional[str] = None, timeout: Optional[float] = None,
                         partial_csv: Optional[Path] = None) -> list[Row]:
    console = stderr_console()
    cache = _open_cache(cache_path)
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("files"), RateColumn(), TimeRemainingColumn(), console=console,
                      transient=True, disable=not console.is_terminal) as progress:
            bar = progress.add_task("scoring", total=len(tasks))
            return score_jobs(tasks, options, jobs or default_jobs(),
                              on_done=lambda k: progress.advance(bar, k), cache=cache,
                              scheduler=scheduler, timeout=timeout)
    except SchedulerError as error:
        abort(str(error))
    except Interrupted as stop:
        kept = (f"the results of finished files are kept in {cache_path}: run the same command "
                "again to resume" if cache else "nothing was kept (no cache)")
        console.print(f"[bold red]interrupted[/bold red] after {stop.done} of {stop.total} "
                      f"files; {escape(kept)}.")
        if partial_csv is not None and stop.rows:
            write_csv(partial_csv, stop.rows, [spec.name for spec in options.metrics])
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


def _write_outputs(rows, options, sections, pattern, results, incomplete, allow, paths) -> None:
    metrics = list(options.metrics)
    if paths["csv"] is not None:
        write_csv(paths["csv"], rows, [spec.name for spec in metrics])
        write_meta(paths["csv"])
    if paths["json"] is not None:
        data = document(rows, metrics, sections[0].summaries)
        data["provenance"] = provenance()
        write_json(paths["json"], data)
    if paths["summary"] is not None:
        write_summary_csv(paths["summary"], sections, list(pattern.groupindex) if pattern else [])
        write_meta(paths["summary"])
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
