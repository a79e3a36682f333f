"""``sqeval report``: the HTML report of a saved run (its per-file CSV and .meta.json);
and what ``sqeval score --html`` shares with it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..report.html import DEFAULT_WORST, Page, ReportError, build_page, worst_metric
from ..results import printable
from .common import abort, check_outputs, stderr_console

HTML_WORST = DEFAULT_WORST
NEEDS_PLOT = ("the HTML report draws its figures with matplotlib, which is not installed: "
              "pip install 'sqeval[plot]' (from a clone: pip install '.[plot]')")


def check_html(path: Optional[Path], metrics: list[str], chosen: Optional[str]) -> Optional[str]:
    """Before any work: the report can be made (matplotlib is there, ``chosen`` is a metric
    of the run); the metric that ranks the worst files. Aborts (exit 2) otherwise."""
    if path is None:
        return None
    if path.suffix.lower() not in (".html", ".htm"):
        abort(f"{path}: the report is an HTML page; give a name ending in .html")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        abort(NEEDS_PLOT)
    try:
        return worst_metric(metrics, chosen)
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
    results: Path = typer.Argument(..., help="Per-file CSV of `sqeval score --csv` (its "
                                   ".meta.json beside it gives the provenance, the gates "
                                   "and where the audio is)."),
    output: Path = typer.Option(..., "--output", "-o", help="The HTML page to write."),
    worst: int = typer.Option(HTML_WORST, "--html-worst", min=0, help="Worst files per system "
                              "to hear and see (0: none)."),
    metric: Optional[str] = typer.Option(None, "--html-metric", help="The metric that ranks "
                                         "the worst files; default pesq_wb, else the first."),
    group_by: Optional[str] = typer.Option(None, "--group-by", help="Regex with named groups "
                                           "from each file path (default: the run's)."),
) -> None:
    """Build the HTML report of a saved run: summary, figures, per-file table, worst files."""
    from ..api import Column, UsageError, compile_group_by, read_results
    from ..gates import GateError, check_gate_targets, check_gates, parse_gate
    from ..metrics import REGISTRY
    from ..stats import sections

    check_outputs({"--output": output}, [results, Path(f"{results}.meta.json")])
    try:
        saved = read_results(results)
    except UsageError as error:
        abort(str(error))
    meta = saved.provenance
    group_by = group_by if group_by is not None else _text(meta.get("group_by"))
    try:
        pattern = compile_group_by(group_by)
        gates = [parse_gate(text) for text in meta.get("gates") or [] if isinstance(text, str)]
        check_gate_targets(gates, saved.metrics, saved.systems)
    except (UsageError, GateError) as error:
        abort(f"{results}.meta.json: {error}" if isinstance(error, GateError) else str(error))
    chosen = check_html(output, saved.metrics, metric)
    specs = [REGISTRY.get(name) or Column(name) for name in saved.metrics]
    page = Page(sections(saved.rows, specs, saved.systems, pattern),
                check_gates(gates, saved.rows, saved.systems) if gates else [],
                bool(meta.get("allow_missing")), worst, chosen, group_by)
    try:
        write_html(output, saved, page)
    except OSError as error:
        abort(f"could not write {output}: {error.strerror or error}")
    stderr_console().print(f"wrote {printable(str(output))} ({len(saved.rows)} rows)",
                           markup=False)


def _text(value) -> Optional[str]:
    return value if isinstance(value, str) else None

