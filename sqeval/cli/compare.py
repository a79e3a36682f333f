"""``sqeval compare``: did the candidate get worse than the baseline?"""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer
from rich.markup import escape

from ..compare import CompareError, compare, read_results
from ..metrics import REGISTRY
from ..report.summary import fmt
from ..report.table import Table
from ..stats import CI_METHOD
from .common import ExitCode, abort, stderr_console, stdout_console


def _max_drops(items: list[str]) -> dict[str, float]:
    drops = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            drops[name.strip()] = float(value)
        except ValueError:
            abort(f"--max-drop {item!r}: expected METRIC=NUMBER, e.g. pesq_wb=0.05")
        if not sep or name.strip() not in REGISTRY:
            abort(f"--max-drop {item!r}: unknown metric {name.strip()!r}")
    return drops


def compare_command(
    baseline: Path = typer.Argument(..., help="Per-file CSV of the baseline run."),
    candidate: Path = typer.Argument(..., help="Per-file CSV of the candidate run."),
    max_drop: List[str] = typer.Option([], "--max-drop", help="METRIC=AMOUNT: exit 1 when the "
                                       "candidate's mean is worse by more than AMOUNT for any "
                                       "system (direction from the registry). Repeatable."),
) -> None:
    """Paired comparison by (file, system): mean difference (candidate − baseline) with a
    95 % CI (Student-t, as score's Δ vs noisy) and the Wilcoxon signed-rank p-value, per
    system and metric."""
    drops = _max_drops(max_drop)
    try:
        differences, only_base, only_cand = compare(read_results(baseline),
                                                    read_results(candidate))
    except CompareError as error:
        abort(str(error))
    missing = sorted(set(drops) - {d.metric for d in differences})
    if missing:
        abort(f"--max-drop names {', '.join(missing)}, which is not in both CSVs")
    table = Table(title="candidate − baseline", title_justify="left", caption_justify="left",
                  caption=f"Δ: per file scored in both; 95% CI: {CI_METHOD}; "
                          "p: two-sided Wilcoxon signed-rank")
    for header in ("system", "metric", "n", "baseline", "candidate", "Δ mean [95% CI]",
                   "Wilcoxon p", "max drop"):
        table.add_column(header, justify="left" if header in ("system", "metric") else "right")
    exceeded = []
    for d in differences:
        verdict = "–"
        if d.metric in drops:
            worse = d.drop() > drops[d.metric]
            verdict = f"{'FAIL' if worse else 'ok'} (≤ {drops[d.metric]:g})"
            if worse:
                exceeded.append(f"{d.system}.{d.metric} dropped by {fmt(d.drop())}")
        arrow = REGISTRY[d.metric].direction.arrow
        table.add_row(escape(d.system), f"{d.metric} {arrow}", str(d.n), fmt(d.baseline_mean),
                      fmt(d.candidate_mean), f"{fmt(d.mean)} [{fmt(d.ci_low)}, {fmt(d.ci_high)}]",
                      fmt(d.p_value), verdict)
    stdout_console().print(table)
    _report_unpaired(only_base, only_cand)
    if exceeded:
        stderr_console().print("[bold red]max drop exceeded:[/bold red] "
                               + escape("; ".join(exceeded)))
        raise typer.Exit(int(ExitCode.GATE_FAILED))


def _report_unpaired(only_base, only_cand) -> None:
    console = stderr_console()
    for label, keys in (("only in the baseline", only_base), ("only in the candidate", only_cand)):
        if keys:
            console.print(f"{len(keys)} rows {label} (not compared):")
            for file, system in keys:
                console.print(f"  {file} [{system}]", markup=False)
