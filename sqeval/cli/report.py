"""``sqeval report``: the HTML report of a saved run (its per-file CSV and .meta.json), and
paper tables of one or several saved runs; and what ``sqeval score --html`` and
``--latex`` share with it."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..report.html import DEFAULT_WORST, Page, ReportError, build_page, worst_metric
from ..results import plural, printable
from .common import abort, check_outputs, stderr_console

HTML_WORST = DEFAULT_WORST
NEEDS_PLOT = ("the HTML report draws its figures with matplotlib, which is not installed: "
              "pip install '.[plot]' in sqeval's source folder (the plot extra)")


def check_html(path: Optional[Path], metrics: list[str], chosen: Optional[str],
               worst: Optional[int] = None, option: str = "--html FILE") -> None:
    """Before any work: the report can be made (matplotlib is there, ``chosen`` is a metric
    of the run). Aborts (exit 2) otherwise, and for --html-worst or --html-metric given
    without --html (``worst``: the --html-worst given, None if not)."""
    if path is None:
        if chosen is not None or worst is not None:
            abort(f"--html-worst and --html-metric shape the HTML report: give {option} "
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


CAPTION_OPTION = typer.Option(
    None, "--caption", metavar="TEXT",
    help="Caption of the LaTeX table (LaTeX source, as written; also the first line of the "
         "Markdown). With it or --label the LaTeX is a table float, else a bare tabular.")
LABEL_OPTION = typer.Option(None, "--label", metavar="NAME",
                            help="\\label of the LaTeX table, e.g. tab:results.")
TRANSPOSE_OPTION = typer.Option(
    None, "--transpose/--no-transpose",
    help="One row per metric and a column per system (default: so when there are more "
         "than 6 metrics and more metrics than systems).")
PERCENT_OPTION = typer.Option(False, "--percent",
                              help="STOI and ESTOI as percentages (one decimal).")
BASELINE_OPTION = typer.Option(
    None, "--baseline", metavar="SYSTEM",
    help="Mark (*) the cells that differ significantly from this system's: paired "
         "two-sided Wilcoxon signed-rank over the files both scored, Holm's correction over "
         "the table's comparisons, alpha 0.05; a note under the table says so.")
LATEX_STYLE_OPTION = typer.Option(
    "mean-ci", "--latex-style", metavar="STYLE",
    help="What a table cell holds (--latex and --markdown): mean, mean-ci (mean ± 95 % CI "
         "half-width) or mean-std (mean ± standard deviation).")


def table_options(style: str, caption, label, transpose, percent, baseline, systems,
                  tables_asked: bool):
    """The :class:`~sqeval.report.paper.TableOptions` of the command line, checked before
    any work: aborts (exit 2) on an unknown style, label or baseline, and on a table
    option given without --latex or --markdown."""
    from ..report.paper import (STYLES, TableError, TableOptions, check_baseline,
                                check_caption, check_label)

    if style not in STYLES:
        abort(f"--latex-style takes {', '.join(STYLES)}; got {style!r}")
    shaping = [name for name, given in (("--caption", caption is not None),
                                         ("--label", label is not None),
                                         ("--transpose", transpose is not None),
                                         ("--percent", percent),
                                         ("--baseline", baseline is not None)) if given]
    if shaping and not tables_asked:
        verb = "shapes" if len(shaping) == 1 else "shape"
        abort(f"{', '.join(shaping)} {verb} the tables: give --latex FILE or --markdown FILE "
              "with them")
    try:
        check_label(label)
        caption = check_caption(caption)
        check_baseline(baseline, list(systems))
    except TableError as error:
        abort(str(error))
    return TableOptions(style, caption, label, transpose, percent, baseline)


def report_command(
    results: List[Path] = typer.Argument(
        ..., metavar="RESULTS",
        help="Per-file CSV of `sqeval score --csv` (its .meta.json beside it gives the "
             "provenance, the gates and where the audio is). Several: their systems side by "
             "side in the tables (--latex, --markdown); refused when they were not made "
             "alike (references, versions, options) or scored different files."),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", metavar="FILE",
        help="The HTML page to write (of one RESULTS CSV)."),
    latex: Optional[Path] = typer.Option(
        None, "--latex", metavar="FILE", help="booktabs table for papers."),
    markdown: Optional[Path] = typer.Option(
        None, "--markdown", metavar="FILE", help="The same tables as Markdown."),
    metrics_option: Optional[str] = typer.Option(
        None, "--metrics", "-m", metavar="NAMES",
        help="The tables' metrics, in this order: comma-separated columns of the CSVs, "
             "groups or presets (voicebank, dns); default: every metric all CSVs have."),
    latex_style: str = LATEX_STYLE_OPTION,
    caption: Optional[str] = CAPTION_OPTION,
    label: Optional[str] = LABEL_OPTION,
    transpose: Optional[bool] = TRANSPOSE_OPTION,
    percent: bool = PERCENT_OPTION,
    baseline: Optional[str] = BASELINE_OPTION,
    ignore_provenance: bool = typer.Option(
        False, "--ignore-provenance",
        help="Tabulate runs whose .meta.json differ in what changes the numbers (as "
             "`sqeval compare --ignore-provenance`); they are refused otherwise."),
    worst: Optional[int] = typer.Option(
        None, "--html-worst", metavar="N", min=0, show_default=str(HTML_WORST),
        help="Worst files per system to hear and see (0: none)."),
    metric: Optional[str] = typer.Option(
        None, "--html-metric", metavar="METRIC",
        help="The metric that ranks the worst files; default pesq_wb, else the first."),
    group_by: Optional[str] = typer.Option(
        None, "--group-by", metavar="REGEX",
        help="Regex with named groups from each file path (default: the run's; '' for "
             "none); the tables get one block per condition."),
) -> None:
    """Build the HTML report of a saved run (summary, figures, per-file table, worst
    files), or paper tables (LaTeX, Markdown) of one or several saved runs, without
    scoring."""
    from ..api import UsageError, check_group_by_matches, compile_group_by, read_results
    from ..report.html import saved_provenance
    from ..report.paper import TableError, combine

    if output is None and latex is None and markdown is None:
        abort("nothing to write: give -o/--output FILE (the HTML report), --latex FILE or "
              "--markdown FILE")
    if output is not None and len(results) > 1:
        abort(f"-o/--output: the HTML report is of one run, and {len(results)} CSVs are "
              "given; give one, or make tables of them all with --latex/--markdown")
    outputs = {"--output": output, "--latex": latex, "--markdown": markdown}
    check_outputs(outputs, [path for csv_path in results
                            for path in (csv_path, Path(f"{csv_path}.meta.json"))])
    runs = []
    for path in results:
        try:
            runs.append((path, read_results(path)))
        except UsageError as error:
            abort(str(error))
    empty = [str(path) for path, run in runs if not run.rows]
    if empty:
        abort(f"{', '.join(empty)}: no rows (a header alone): nothing to report")
    try:
        saved, combined_notes = combine(runs, ignore_provenance)
    except TableError as error:
        abort(str(error))
    meta = saved.provenance
    meta_path = Path(f"{results[0]}.meta.json")
    notes: list[str] = list(combined_notes)
    check_outputs(outputs, [  # nor over the audio the page plays
        Path(path) for paths in (saved_provenance(meta).get("audio") or {}).values()
        for path in paths.values()])
    explicit = bool(group_by)
    if group_by == "":  # --group-by '': no conditions, whatever the runs saved
        group_by = None
    elif group_by is None:
        group_by = _runs_group_by(runs, notes)
    try:
        pattern = compile_group_by(group_by)
        if explicit:  # one that matches no file would give only "(no match)" blocks
            audio = saved_provenance(meta).get("audio") or {}
            check_group_by_matches(pattern, {row.file: audio.get(row.file, {})
                                             for row in saved.rows})
    except UsageError as error:
        abort(str(error))
    check_html(output, saved.metrics, metric, worst, option="-o/--output FILE")
    worst = HTML_WORST if worst is None else worst
    tables = latex is not None or markdown is not None
    options = table_options(latex_style, caption, label, transpose, percent, baseline,
                            saved.systems, tables)
    chosen = _chosen_metrics(metrics_option, runs) if tables else []
    console = stderr_console()
    for note in notes:
        console.print(f"note: {printable(note)}", markup=False, soft_wrap=True)
    if output is not None:
        _write_report_page(output, saved, meta, meta_path, notes, pattern, worst, metric,
                           group_by)
    if tables:
        _write_tables(saved, chosen, options, pattern, latex, markdown)


def _write_report_page(output, saved, meta, meta_path, notes, pattern, worst, metric,
                       group_by) -> None:
    from ..api import Column
    from ..gates import check_gates
    from ..metrics import REGISTRY
    from ..report.html import saved_provenance
    from ..stats import sections

    page_notes: list[str] = []
    gates, allow, allow_na = _saved_gates(meta, meta_path, saved, page_notes)
    specs = [REGISTRY.get(name) or Column(name) for name in saved.metrics]
    page = Page(sections(saved.rows, specs, saved.systems, pattern,
                         saved_provenance(meta).get("audio")),
                check_gates(gates, saved.rows, saved.systems, allow_missing=allow,
                            allow_na=allow_na), allow, worst, metric, group_by)
    console = stderr_console()
    for note in page_notes:
        console.print(f"note: {printable(note)}", markup=False, soft_wrap=True)
    try:
        write_html(output, saved, page)
    except OSError as error:
        abort(f"could not write {output}: {error.strerror or error}")
    console.print(f"wrote {printable(str(output))} ({plural(len(saved.rows), 'row')})",
                  markup=False)


def _write_tables(saved, chosen, options, pattern, latex, markdown) -> None:
    """Write the paper tables of ``saved`` asked for; abort (exit 2) on one that cannot be
    written, after trying the others."""
    from ..outputs import write_atomically
    from ..report.html import saved_provenance
    from ..report.paper import build

    tables = build(saved.rows, chosen, saved.systems, options, pattern,
                   saved_provenance(saved.provenance).get("audio"))
    console = stderr_console()
    incomplete = tables.incomplete()
    if incomplete:
        shown = "; ".join(incomplete[:6]) + ("; ..." if len(incomplete) > 6 else "")
        console.print(f"note: {plural(len(incomplete), 'mean')} of the tables leave out "
                      f"files that failed or do not apply ({printable(shown)}): marked † "
                      "and never bold", markup=False, soft_wrap=True)
    unwritten = []
    for path, make, is_latex in ((latex, tables.latex, True),
                                 (markdown, tables.markdown, False)):
        if path is None:
            continue
        text = make()
        try:
            write_atomically(path, lambda stream, text=text: stream.write(text))
        except OSError as error:
            unwritten.append(f"{printable(str(path))}: {error.strerror or error}")
            continue
        console.print(f"wrote {printable(str(path))} ({tables.what(is_latex)})", markup=False,
                      soft_wrap=True)
    if unwritten:
        abort("could not write " + "; ".join(unwritten))


def _chosen_metrics(names: Optional[str], runs) -> list:
    """The specs of the tables' metrics: those named (columns, groups, presets) in their
    order, else the metrics every run has (those in some only are said on stderr)."""
    from ..api import Column
    from ..metrics import REGISTRY
    from ..metrics.registry import GROUPS, PRESETS

    present = list(dict.fromkeys(m for _, results in runs for m in results.metrics))
    if names is None:
        common = [m for m in present if all(m in results.metrics for _, results in runs)]
        left = [m for m in present if m not in common]
        if left:
            stderr_console().print(f"note: {', '.join(left)}: not in every CSV, left out of "
                                   "the tables (name them with --metrics to show them, "
                                   "empty where missing)", markup=False, soft_wrap=True)
        if not common:
            abort("no metric is in every CSV: choose the tables' metrics with --metrics")
        chosen = common
    else:
        chosen = []
        for name in (part.strip() for part in names.split(",")):
            if not name:
                continue
            if name in PRESETS:
                expanded = list(PRESETS[name][0])
            elif name in GROUPS:
                expanded = [s.name for s in REGISTRY.values() if s.group == name]
            else:
                expanded = [name]
            found = [m for m in expanded if m in present]
            if not found:
                what = "it" if expanded == [name] else "any of " + ", ".join(expanded)
                abort(f"--metrics {name}: no CSV has {what}; their metrics: "
                      f"{', '.join(present) or 'none'}")
            chosen += [m for m in found if m not in chosen]
        if not chosen:
            abort("--metrics: no metric named")
    return [REGISTRY.get(name) or Column(name) for name in chosen]


def _runs_group_by(runs, notes: list) -> Optional[str]:
    """The runs' saved --group-by when every run has the same (usable) one, else None."""
    from ..report.html import saved_provenance
    from ..stats import group_sources

    found = []
    for path, saved in runs:
        meta = saved.provenance
        audio = saved_provenance(meta).get("audio")
        found.append(_saved_group_by(meta, Path(f"{path}.meta.json"), notes, [
            source for file in dict.fromkeys(row.file for row in saved.rows)
            for source in group_sources(file, audio)]))
    if len(set(found)) > 1:
        notes.append("the runs were grouped differently (--group-by); the tables have no "
                     "per-condition blocks (give --group-by to make them)")
        return None
    return found[0]


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
