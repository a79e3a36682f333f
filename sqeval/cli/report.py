"""``sqeval report``: the HTML report of a saved run (its per-file CSV and .meta.json);
and what ``sqeval score --html`` shares with it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..report.html import DEFAULT_WORST, Page, ReportError, build_page, worst_metric
from ..results import plural, printable
from .common import abort, check_outputs, stderr_console

HTML_WORST = DEFAULT_WORST
NEEDS_PLOT = ("the HTML report draws its figures with matplotlib, which is not installed: "
              "pip install '.[plot]' in sqeval's source folder (the plot extra)")


def check_html(path: Optional[Path], metrics: list[str], chosen: Optional[str],
               worst: Optional[int] = None) -> None:
    """Before any work: the report can be made (matplotlib is there, ``chosen`` is a metric
    of the run). Aborts (exit 2) otherwise, and for --html-worst or --html-metric given
    without --html (``worst``: the --html-worst given, None if not)."""
    if path is None:
        if chosen is not None or worst is not None:
            abort("--html-worst and --html-metric shape the HTML report: give --html FILE "
                  "with them")
        return
    if path.suffix.lower() not in (".html", ".htm"):
        abort(f"{path}: the report is an HTML page; give a name ending in .html")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        abort(NEEDS_PLOT)
    try:
        worst_metric(metrics, chosen)
    except ReportError as error:
        abort(str(error))


def write_html(path: Path, results, page: Page) -> None:
    """Build the page and write it atomically; say on stderr what it could not include.

    Raises:
        OSError: it cannot be written.
    """
    from ..outputs import write_atomically

    text, said = build_page(results, page)
    write_atomically(path, lambda stream: stream.write(text))
    console = stderr_console()
    for message in said:
        console.print(f"note: {printable(message)}", markup=False, soft_wrap=True)


def report_command(
    results: Path = typer.Argument(
        ..., metavar="RESULTS",
        help="Per-file CSV of `sqeval score --csv` (its .meta.json beside it gives the "
             "provenance, the gates and where the audio is)."),
    output: Path = typer.Option(
        ..., "--output", "-o", metavar="FILE",
        help="The HTML page to write."),
    worst: int = typer.Option(
        HTML_WORST, "--html-worst", metavar="N", min=0,
        help="Worst files per system to hear and see (0: none)."),
    metric: Optional[str] = typer.Option(
        None, "--html-metric", metavar="METRIC",
        help="The metric that ranks the worst files; default pesq_wb, else the first."),
    group_by: Optional[str] = typer.Option(
        None, "--group-by", metavar="REGEX",
        help="Regex with named groups from each file path (default: the run's)."),
) -> None:
    """Build the HTML report of a saved run: summary, figures, per-file table, worst files."""
    from ..api import Column, UsageError, compile_group_by, read_results
    from ..gates import check_gates
    from ..metrics import REGISTRY
    from ..report.html import saved_provenance
    from ..stats import sections

    meta_path = Path(f"{results}.meta.json")
    check_outputs({"--output": output}, [results, meta_path])
    try:
        saved = read_results(results)
    except UsageError as error:
        abort(str(error))
    meta = saved.provenance
    notes: list[str] = []
    check_outputs({"--output": output}, [  # nor over the audio the page plays
        Path(path) for paths in (saved_provenance(meta).get("audio") or {}).values()
        for path in paths.values()])
    if group_by is None:
        from ..stats import group_sources

        audio = saved_provenance(meta).get("audio")
        group_by = _saved_group_by(meta, meta_path, notes, [  # every place it is searched
            source for file in dict.fromkeys(row.file for row in saved.rows)
            for source in group_sources(file, audio)])
    try:
        pattern = compile_group_by(group_by)
    except UsageError as error:
        abort(str(error))
    check_html(output, saved.metrics, metric)
    gates, allow, allow_na = _saved_gates(meta, meta_path, saved, notes)
    specs = [REGISTRY.get(name) or Column(name) for name in saved.metrics]
    page = Page(sections(saved.rows, specs, saved.systems, pattern,
                         saved_provenance(meta).get("audio")),
                check_gates(gates, saved.rows, saved.systems, allow_missing=allow,
                            allow_na=allow_na), allow, worst, metric, group_by)
    console = stderr_console()
    for note in notes:
        console.print(f"note: {printable(note)}", markup=False, soft_wrap=True)
    try:
        write_html(output, saved, page)
    except OSError as error:
        abort(f"could not write {output}: {error.strerror or error}")
    console.print(f"wrote {printable(str(output))} ({plural(len(saved.rows), 'row')})",
                  markup=False)


REGEX_SECONDS = 10.0  # how long a regex read from a file may take on the run's file names


def _saved_group_by(meta: dict, meta_path: Path, notes: list, names: list) -> Optional[str]:
    """The run's --group-by, when it is a usable regex; else None, with a note. A regex
    read from a file is tried on the run's file names in a child process first: one that
    backtracks for ever (``(a+)+$``) is dropped after :data:`REGEX_SECONDS`, not run here."""
    from ..api import UsageError, compile_group_by

    value = meta.get("group_by")
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise UsageError(f"not text but {type(value).__name__}")
        compile_group_by(value)
        _try_regex(value, names)
        return value
    except UsageError as error:
        notes.append(f"{meta_path}: its group_by cannot be used ({error}); the page has no "
                     "per-condition tables (give --group-by to make them)")
        return None


def _try_regex(pattern: str, names: list) -> None:
    """Search ``pattern`` in every name in a child process; a :class:`UsageError` when
    that takes more than :data:`REGEX_SECONDS` (catastrophic backtracking)."""
    import json
    import subprocess
    import sys

    from ..api import UsageError

    code = ("import json, re, sys\ndata = json.load(sys.stdin)\npattern = re.compile(data[0])\n"
            "for name in data[1]:\n    pattern.search(name)\n")
    try:
        subprocess.run([sys.executable, "-c", code], input=json.dumps([pattern, names]),
                       text=True, capture_output=True, timeout=REGEX_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"it takes more than {REGEX_SECONDS:g} s on the run's file names "
                         "(a regex that backtracks without end)") from None


def _saved_gates(meta: dict, meta_path: Path, saved, notes: list):
    """The run's gates and --allow-missing, as far as they still apply to the CSV; what
    cannot be used is left out of the page with a note (the page is made regardless)."""
    from ..gates import GateError, check_gate_targets, parse_gate

    allow = meta.get("allow_missing")
    if allow is not None and not isinstance(allow, bool):
        notes.append(f"{meta_path}: allow_missing is {allow!r}, not true or false; taken as "
                     "false")
    allow_na = meta.get("allow_na") is True
    texts = meta.get("gates")
    if texts is None:
        return [], allow is True, allow_na
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        notes.append(f"{meta_path}: its gates are not a list of texts; the page shows none")
        return [], allow is True, allow_na
    try:
        gates = [parse_gate(text) for text in texts]
        check_gate_targets(gates, saved.metrics, saved.systems)
    except GateError as error:
        notes.append(f"{meta_path}: its gates cannot be checked against the CSV ({error}); "
                     "the page shows none")
        return [], allow is True, allow_na
    return gates, allow is True, allow_na
