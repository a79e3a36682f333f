"""``sqeval compare``: did the candidate get worse than the baseline? A CI gate: a system
or metric that could not be compared fails its ``--max-drop`` (rules in ``sqeval.compare``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer

from ..compare import (BOTH, CompareError, SystemPair, Verdict, check_max_drop, compare,
                       problems, read_results)
from ..metrics import REGISTRY
from ..report.files import write_atomically
from ..report.summary import (COMPARE_CAPTION, COMPARE_COLUMNS, compare_junit, compare_markdown,
                              difference_cells)
from ..report.table import Table, escape
from ..results import plural, printable
from .common import (ExitCode, abort, check_outputs, print_to_stdout, stderr_console,
                     stdout_console)


MAX_LINES = 20  # unpaired rows listed before a count


def compare_command(
    baseline: Path = typer.Argument(..., metavar="BASELINE",
                                    help="Per-file CSV of the baseline run."),
    candidate: Optional[Path] = typer.Argument(
        None, metavar="CANDIDATE",
        help="Per-file CSV of the candidate run; omit it to compare two systems of BASELINE "
             "(--baseline-system and --candidate-system)."),
    max_drop: List[str] = typer.Option(
        [], "--max-drop", metavar="METRIC=AMOUNT",
        help="METRIC=AMOUNT: exit 1 when the candidate's mean is worse by more than AMOUNT for "
             "any system (direction from the registry), or when a system cannot be compared in "
             "full. Repeatable."),
    baseline_system: Optional[str] = typer.Option(
        None, "--baseline-system", metavar="NAME", help="Compare this system of the baseline with "
        "--candidate-system (default: the same name), and no other."),
    candidate_system: Optional[str] = typer.Option(
        None, "--candidate-system", metavar="NAME",
        help="The system of the candidate to compare with --baseline-system (default: the same "
             "name)."),
    system: List[str] = typer.Option(
        [], "--system", metavar="BASELINE=CANDIDATE",
        help="BASELINE=CANDIDATE: compare the baseline's system BASELINE with the candidate's "
             "CANDIDATE, e.g. a renamed model. Repeatable; only the systems named are compared."),
    junit: Optional[Path] = typer.Option(
        None, "--junit", metavar="FILE",
        help="The max drops as JUnit XML: a test case per system and metric."),
    markdown: Optional[Path] = typer.Option(
        None, "--markdown", metavar="FILE",
        help="The table and the verdicts as Markdown, e.g. for a CI job page."),
    allow_fewer: int = typer.Option(
        0, "--allow-fewer", metavar="N", min=0,
        help="A max drop passes with up to N of the baseline's files absent from the "
             "candidate (default 0: a candidate that covers fewer files fails)."),
    ignore_provenance: bool = typer.Option(
        False, "--ignore-provenance",
        help="Compare runs whose .meta.json differ in what changes the numbers (sqeval "
             "version, rate policy, --align, channel policy, metric backends), or where one "
             "run has none; they are refused otherwise."),
) -> None:
    """Paired comparison by (file, system): mean difference (candidate − baseline) with a
    95 % CI (Student-t, as score's Δ vs noisy) and the Wilcoxon signed-rank p-value, per
    system and metric."""
    drops = _max_drops(max_drop)
    pairs = _pairs(baseline_system, candidate_system, system, one_csv=candidate is None)
    inputs = [path for csv_path in (baseline, candidate) if csv_path is not None
              for path in (csv_path, Path(f"{csv_path}.meta.json"))]
    check_outputs({"--junit": junit, "--markdown": markdown}, inputs)
    candidate = candidate or baseline
    base, cand = _read(baseline), _read(candidate)
    _check_inputs(pairs, drops, (baseline, base), (candidate, cand))
    _check_provenance((baseline, base), (candidate, cand), ignore_provenance)
    differences, only_base, only_cand = compare(base, cand, [pair for _, pair in pairs])
    verdicts = {(d.system, d.metric): check_max_drop(d, drops[d.metric], allow_fewer)
                for d in differences if d.metric in drops}
    unwritten = _write_exports(junit, markdown, baseline, candidate, differences, verdicts)
    stdout_problem = print_to_stdout(lambda: stdout_console().print(_table(differences,
                                                                           verdicts)))
    _report_unpaired(differences, only_base, only_cand)
    failed = _report_problems(differences, verdicts)
    if unwritten:
        abort("could not write " + "; ".join(unwritten))
    raise typer.Exit(int(ExitCode.GATE_FAILED if failed else stdout_problem or ExitCode.OK))


def _max_drops(items: list[str]) -> dict[str, float]:
    drops = {}
    for item in items:
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or name not in REGISTRY:
            abort(f"--max-drop {item!r}: unknown metric {name!r}; expected METRIC=AMOUNT, "
                  "e.g. pesq_wb=0.05 (`sqeval metrics` lists the metrics)")
        try:
            drops[name] = float(value)
        except ValueError:
            drops[name] = math.nan
        if not math.isfinite(drops[name]):
            abort(f"--max-drop {item!r}: the amount must be a finite number, e.g. {name}=0.05")
    return drops


def _pairs(baseline_system, candidate_system, items: list[str], one_csv: bool):
    """(the option as written, :class:`SystemPair`) for each system pairing asked for."""
    pairs = []
    for item in items:
        old, sep, new = (part.strip() for part in item.partition("="))
        if not (sep and old and new):
            abort(f"--system {item!r}: expected BASELINE=CANDIDATE, e.g. CMGAN=model_v2")
        pairs.append((f"--system {item}", SystemPair(old, new)))
    if baseline_system is not None or candidate_system is not None:
        old = baseline_system if baseline_system is not None else candidate_system
        new = candidate_system if candidate_system is not None else baseline_system
        option = "--baseline-system" if baseline_system is not None else "--candidate-system"
        pairs.append((f"{option} {baseline_system or candidate_system}", SystemPair(old, new)))
    if one_csv and not pairs:
        abort("one CSV given: name the two systems of it to compare with --baseline-system "
              "and --candidate-system (or --system BASELINE=CANDIDATE), or give a CANDIDATE CSV")
    for option, pair in pairs:
        if one_csv and pair.baseline == pair.candidate:
            abort(f"{option}: with one CSV this compares {pair.baseline} with itself; name "
                  "the other system with --candidate-system")
    return pairs


def _check_provenance(baseline, candidate, ignore: bool) -> None:
    """Refuse (exit 2) two runs whose provenance differs in what changes the numbers, or
    where one run has a .meta.json and the other none (nothing tells whether they were
    made alike); neither having one is said on stderr. ``ignore`` turns the refusal into
    a note."""
    from ..compare import provenance_differences

    (baseline, base), (candidate, cand) = baseline, candidate
    if baseline == candidate:
        return
    metas = [base.attrs.get("provenance") or {}, cand.attrs.get("provenance") or {}]
    console = stderr_console()
    if not metas[0] and not metas[1]:
        console.print("note: neither CSV has a .meta.json beside it: whether the two runs were "
                      "made alike is not checked", markup=False, soft_wrap=True)
        return
    missing = [str(path) for path, meta in zip((baseline, candidate), metas) if not meta]
    found = ([f"{path}.meta.json: none, so what produced it cannot be compared"
              for path in missing] if missing else provenance_differences(*metas))
    if not found:
        return
    text = "; ".join(printable(line) for line in found)
    if ignore:
        console.print(f"note: the runs differ ({text}); compared anyway (--ignore-provenance)",
                      markup=False, soft_wrap=True)
        return
    abort(f"the two runs were not made alike, so their numbers do not compare: {text}. "
          "Score both with the same sqeval and options, or pass --ignore-provenance")


def _read(path: Path):
    try:
        return read_results(path)
    except CompareError as error:
        abort(str(error))


def _check_inputs(pairs, drops: dict, *sides) -> None:
    """Abort (exit 2) on a system or a --max-drop metric that one of the CSVs lacks, when
    neither holds a row, or when they have no metric in common; note a metric in one only."""
    (base_path, base), (cand_path, cand) = sides
    for option, pair in pairs:
        for path, frame, name in ((base_path, base, pair.baseline),
                                  (cand_path, cand, pair.candidate)):
            systems = list(dict.fromkeys(frame.index.get_level_values("system")))
            if name not in systems:
                abort(f"{option}: {path} has no system {name!r}; its systems: "
                      f"{', '.join(systems) or 'none (no rows)'}")
    for metric in drops:
        for path, frame in sides:
            if metric not in frame.columns:
                columns = [c for c in frame.columns if c != "error"]
                abort(f"--max-drop {metric}: {path} has no column {metric}; its metrics: "
                      f"{', '.join(columns) or 'none'}")
    if len(base) == 0 and len(cand) == 0:
        abort(f"no rows to compare: {base_path} and {cand_path} hold no row")
    metrics = {path: [c for c in frame.columns if c in REGISTRY] for path, frame in sides}
    if not set(metrics[base_path]) & set(metrics[cand_path]):
        abort(f"no metric to compare: {base_path} has {', '.join(metrics[base_path]) or 'none'}"
              f", {cand_path} has {', '.join(metrics[cand_path]) or 'none'}")
    for path, other in ((base_path, cand_path), (cand_path, base_path)):
        alone = [m for m in metrics[path] if m not in metrics[other]]
        if alone:
            stderr_console().print(f"{', '.join(alone)}: only in {path} (not compared)",
                                   markup=False, soft_wrap=True)


def _table(differences, verdicts: dict) -> Table:
    table = Table(title="candidate − baseline", title_justify="left", caption=COMPARE_CAPTION,
                  caption_justify="left")
    for header in COMPARE_COLUMNS:
        table.add_column(header, justify="left" if header in ("system", "metric") else "right")
    for d in differences:
        cells = [escape(cell) for cell in difference_cells(d)]
        table.add_row(*cells, _verdict(verdicts.get((d.system, d.metric))))
    return table


def _verdict(verdict: Optional[Verdict]) -> str:
    if verdict is None:
        return "–"
    if verdict.passed:
        return f"[green]ok[/green] (≤ {verdict.max_drop:g})"
    return f"[bold red]FAIL[/bold red] (≤ {verdict.max_drop:g})"


def _report_unpaired(differences, only_base, only_cand) -> None:
    """A system found in one CSV alone once, with the way to pair it; other rows one by one."""
    console = stderr_console()
    alone = {d.system: d.present_in for d in differences if d.present_in != BOTH}
    for system, side in alone.items():
        rows = len([key for key in (only_base if side == "baseline" else only_cand)
                    if key[1] == system])
        console.print(printable(f"system {system}: {plural(rows, 'row')} only in the {side} (not "
                                "compared)"), markup=False, soft_wrap=True)
    if alone:
        console.print("  to compare systems of different names: --baseline-system BASELINE "
                      "--candidate-system CANDIDATE, or --system BASELINE=CANDIDATE",
                      markup=False, soft_wrap=True)
    for label, keys in (("only in the baseline", only_base), ("only in the candidate", only_cand)):
        keys = [key for key in keys if key[1] not in alone]
        if keys:
            console.print(f"{plural(len(keys), 'row')} {label} (not compared):")
            for file, system in keys[:MAX_LINES]:
                console.print(printable(f"  {file} [{system}]"), markup=False)
            if len(keys) > MAX_LINES:
                console.print(f"  … and {len(keys) - MAX_LINES} more", markup=False)


def _report_problems(differences, verdicts: dict) -> bool:
    """Print what failed a max drop, and what was not compared in full; True if any failed."""
    console = stderr_console()
    failures = [f"{v.difference.system}.{v.difference.metric} {reason}"
                for v in verdicts.values() for reason in v.reasons]
    unchecked = [f"{d.system}.{d.metric} {problem}" for d in differences
                 if (d.system, d.metric) not in verdicts and d.present_in == BOTH
                 for problem in problems(d)]
    notes = [f"{d.system}.{d.metric}: {d.baseline_failed} baseline rows have no value where "
             "the candidate has one (not compared)" for d in differences if d.baseline_failed]
    for line in notes:
        console.print(printable(line), markup=False, soft_wrap=True)
    if unchecked:
        console.print("[bold yellow]not compared in full[/bold yellow] (no --max-drop on it):")
        for line in unchecked:
            console.print(printable(f"  {line}"), markup=False, soft_wrap=True)
    if failures:
        console.print("[bold red]max drop failed:[/bold red]")
        for line in failures:
            console.print(printable(f"  {line}"), markup=False, soft_wrap=True)
    return bool(failures)


def _write_exports(junit, markdown, baseline, candidate, differences, verdicts) -> list[str]:
    """Write the exports asked for; ``path: reason`` for each that could not be written."""
    texts = {}
    if junit is not None:
        texts[junit] = compare_junit(list(verdicts.values()))
    if markdown is not None:
        texts[markdown] = (f"## sqeval compare\n\nbaseline: `{baseline}`, candidate: "
                           f"`{candidate}`\n\n" + compare_markdown(differences, verdicts))
    unwritten = []
    for path, text in texts.items():
        try:
            write_atomically(path, lambda stream, text=text: stream.write(text))
        except OSError as error:
            unwritten.append(f"{printable(str(path))}: {error.strerror or error}")
    return unwritten
