"""Rich tables for the terminal: one per system, and the metric registry."""

from __future__ import annotations

import math
import os
import sys

from rich import box
from rich.console import Console
from rich.markup import escape as escape_markup
from rich.table import Table as RichTable

from ..metrics import MetricSpec
from ..results import NOISY, plural, printable
from ..stats import CI_METHOD, MetricSummary, Summary
from .summary import _cells, fmt


def escape(text: str) -> str:
    """``text`` for a rich table: markup escaped, control characters shown as escapes."""
    return escape_markup(printable(text))


def plain_output() -> bool:
    """Plain, deterministic tables (ASCII, no colour) when NO_COLOR is set or stdout is not
    a terminal, as in CI logs."""
    return "NO_COLOR" in os.environ or not sys.stdout.isatty()


def Table(*args, **kwargs) -> RichTable:  # noqa: N802 - a drop-in for rich's Table
    """A rich Table whose box is ASCII when :func:`plain_output`."""
    return RichTable(*args, box=box.ASCII2 if plain_output() else box.HEAVY_HEAD, **kwargs)


def _interval(summary: Summary, sign: str = "") -> str:
    if math.isnan(summary.ci_low):
        return "–"
    return f"[{fmt(summary.ci_low, sign)}, {fmt(summary.ci_high, sign)}]"


def _delta(summary: Summary | None, higher_is_better: bool) -> str:
    if summary is None or summary.n == 0:
        return "–"
    text = fmt(summary.mean, "+")
    if not math.isnan(summary.ci_low):
        text += " " + _interval(summary, "+")
        better = summary.ci_low > 0 if higher_is_better else summary.ci_high < 0
        worse = summary.ci_high < 0 if higher_is_better else summary.ci_low > 0
        if better:
            text = f"[green]{text}[/green]"
        elif worse:
            text = f"[red]{text}[/red]"
    return text


def system_table(system: str, summaries: list[MetricSummary], metrics: list[MetricSpec],
                 n_rows: int, with_delta: bool) -> Table:
    """Mean, std, 95 % CI, scored and failed counts per metric; delta over noisy if any.
    The caption says how the CIs are computed (the same way as in ``sqeval compare``)."""
    caption = f"95% CI: {CI_METHOD}" + ("; Δ: per file, system − noisy" if with_delta else "")
    table = Table(title=f"{escape(system)} ({plural(n_rows, 'file')})", title_justify="left",
                  caption=caption, caption_justify="left")
    table.add_column("metric")
    for header in ("mean", "std", "95% CI", "n", "failed"):
        table.add_column(header, justify="right")
    if with_delta:
        table.add_column("Δ vs noisy [95% CI]", justify="right")
    specs = {spec.name: spec for spec in metrics}
    for item in summaries:
        spec = specs[item.metric]
        failed = str(item.n_failed) if item.n_failed else "0"
        if item.n_failed:
            failed = f"[bold red]{failed}[/bold red]"
        if item.n_not_applicable:
            failed += f" (+{item.n_not_applicable} n/a)"
        cells = [f"{spec.name} {spec.direction.arrow}",
                 fmt(item.stats.mean), fmt(item.stats.std), _interval(item.stats),
                 str(item.stats.n), failed]
        if with_delta:
            cells.append(_delta(item.delta, spec.higher_is_better))
        table.add_row(*cells)
    return table


def print_tables(console: Console, summaries: list[MetricSummary], metrics: list[MetricSpec],
                 systems: list[str], rows_per_system: dict[str, int]) -> None:
    with_delta = NOISY in systems
    for system in systems:
        items = [item for item in summaries if item.system == system]
        console.print(system_table(system, items, metrics, rows_per_system[system],
                                   with_delta and system != NOISY))
    if any(item.n_failed for item in summaries):
        console.print("Statistics are over the scored files only; failed files are "
                      "counted in 'failed' and listed below.")


def registry_tables(metrics: list[MetricSpec], groups: dict[str, str]) -> list[Table]:
    """The registry, one table per group, with each metric's source and its version."""
    tables = []
    for group, about in groups.items():
        members = [spec for spec in metrics if spec.group == group]
        if not members:
            continue
        # Escaped: "pip install '.[dnsmos]'" would otherwise lose "[dnsmos]" as markup.
        table = Table(title=escape_markup(f"{group}: {about}"), title_justify="left")
        for header in ("name", "intrusive", "unit", "range", "better", "rates", "definition",
                       "reference", "source"):
            table.add_column(header, overflow="fold")
        for spec in members:
            table.add_row(*(escape_markup(cell) for cell in (
                spec.name, "yes" if spec.intrusive else "no", spec.unit or "–",
                spec.range_text, spec.direction.value, spec.rates, spec.definition,
                spec.reference, spec.source)))
        tables.append(table)
    return tables


def preset_table(presets: dict) -> Table:
    """The presets: name (``-m NAME``), their metrics in order, and what they are."""
    table = Table(title="presets: the columns of the tables papers print (-m NAME)",
                  title_justify="left")
    for header in ("name", "metrics", "about"):
        table.add_column(header, overflow="fold")
    for name, (metrics, about) in presets.items():
        table.add_row(escape_markup(name), escape_markup(", ".join(metrics)),
                      escape_markup(about))
    return table


def case_table(rows, names: list[str], n_files: int, title: str) -> Table:
    """A row per sanity case, a column per metric or loss; the mean over files if several."""
    import numpy as np

    title += f" (mean over {n_files} files)" if n_files > 1 else ""
    table = Table(title=title, title_justify="left")
    table.add_column("case", no_wrap=True)
    for name in names:
        table.add_column(name, justify="right")
    for case in dict.fromkeys(row.system for row in rows):
        cells = []
        for name in names:
            values = [row.values[name] for row in rows if row.system == case]
            finite = [value for value in values if not math.isnan(value)]
            cells.append(fmt(float(np.mean(finite))) if finite else "–")
        table.add_row(escape(case), *cells)
    return table


def properties_table(results, metrics: list[MetricSpec]) -> Table:
    """Metric × property: whether it holds, against what the registry declares."""
    from ..metrics.registry import PROPERTIES

    table = Table(title="properties: observed yes/no; ✗ declared but does not hold, "
                        "! undeclared and violated, – not declared", title_justify="left")
    table.add_column("metric")
    for name in PROPERTIES:
        table.add_column(name.replace("_", " "), justify="center")
    for spec in metrics:
        cells = []
        for name in PROPERTIES:
            result = next(r for r in results if r.metric == spec.name and r.name == name)
            cells.append(_property_cell(result))
        table.add_row(spec.name, *cells)
    return table


def _property_cell(result) -> str:
    if result.holds is None:
        return "[dim]n/a[/dim]"
    text = "yes" if result.holds else "no"
    if result.failed:
        return f"[bold red]{text} ✗[/bold red]"
    if result.finding:
        return f"[yellow]{text} ![/yellow]"
    if result.declared is None:
        return f"[dim]{text} –[/dim]"
    if result.declared is False and result.holds:
        return f"{text} (declared no)"
    return f"[green]{text}[/green]"


def section_table(section, metrics: list[MetricSpec]) -> Table:
    """One condition of --group-by: systems × metrics, mean ± CI half-width, best in bold."""
    table = Table(title=f"condition: {escape(section.label)}", title_justify="left")
    table.add_column("system")
    for spec in metrics:
        table.add_column(f"{spec.name} {spec.direction.arrow}", justify="right")
    for system, row in _cells(section, metrics).items():
        table.add_row(escape(system), *(f"[bold]{text}[/bold]" if bold else text
                                for text, bold in (row[s.name] for s in metrics)))
    return table


def gates_table(results) -> Table:
    """Gate, system, observed, threshold, n, failed, n/a, verdict."""
    table = Table(title="quality gates", title_justify="left")
    for header in ("gate", "system", "observed", "threshold", "n", "failed", "n/a", "verdict"):
        table.add_column(header, justify="left" if header in ("gate", "system", "verdict")
                         else "right")
    for r in results:
        verdict = "[green]pass[/green]" if r.passed else (
            "[bold red]FAIL[/bold red]" + (f" ({escape(r.reason)})" if r.reason else ""))
        table.add_row(escape(r.gate.text), escape(r.system), fmt(r.observed),
                      f"{r.gate.op} {r.gate.threshold:g}", str(r.n), str(r.failed), str(r.na),
                      verdict)
    return table
