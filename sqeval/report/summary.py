"""Summary exports: the summary CSV, the gates in Markdown, and JUnit XML; for ``sqeval
compare``, its table in Markdown and its max drops in JUnit XML. The paper tables (LaTeX
and Markdown) are :mod:`sqeval.report.paper`'s.

Every exported number comes from the same :class:`~sqeval.stats.MetricSummary`; the
terminal and these exports print it with :func:`fmt`, the paper tables with a fixed number
of decimals per metric.
"""

from __future__ import annotations

import math
import re
from xml.etree import ElementTree

from ..metrics import REGISTRY, MetricSpec
from ..results import NOISY, CsvWriter, plural, printable
from ..stats import CI_METHOD, Section, summary_rows
from .files import write_atomically


def fmt(value: float, sign: str = "") -> str:
    """Three decimals, or three significant digits for small values; '–' for NaN. The
    terminal tables, the HTML report and ``compare`` print numbers with this, so they
    agree (the paper tables print fixed decimals per metric: :mod:`sqeval.report.paper`).
    ``sign="+"`` always shows the sign.

    Example:
        >>> fmt(3.14159), fmt(0.000123), fmt(float("nan")), fmt(0.5, "+")
        ('3.142', '0.000123', '–', '+0.500')
    """
    if value is None or math.isnan(value):
        return "–"
    if value == 0 or 0.01 <= abs(value) < 1e6:
        return f"{value:{sign}.3f}"
    return f"{value:{sign}.3g}"


def write_summary_csv(path, sections: list[Section], group_names: list[str]) -> None:
    """One line per (condition, system, metric); group columns first when grouped."""

    write_atomically(path, lambda stream: CsvWriter(stream).writerows(
        summary_rows(sections, group_names)))


def _cells(section: Section, metrics: list[MetricSpec], style: str = "mean-ci"):
    """system → metric → (text, bold), with the best non-noisy mean per metric in bold;
    ``style`` (a key of :data:`~sqeval.report.paper.STYLES`) says what follows the mean."""
    systems = list(dict.fromkeys(m.system for m in section.summaries))
    by = {(m.system, m.metric): m for m in section.summaries}
    cells = {system: {} for system in systems}
    for spec in metrics:
        means = {s: by[s, spec.name].stats.mean for s in systems if s != NOISY
                 and not math.isnan(by[s, spec.name].stats.mean)}
        ranks = getattr(spec, "ranks", True)  # a saved CSV's unknown column: a Column
        best = ((max if spec.higher_is_better else min)(means.values())
                if means and ranks else None)
        for system in systems:
            stats = by[system, spec.name].stats
            text = fmt(stats.mean)
            spread = {"mean-ci": stats.ci_high - stats.mean, "mean-std": stats.std}.get(style)
            if spread is not None and not math.isnan(spread):
                text += f" ± {fmt(spread)}"
            cells[system][spec.name] = (text, best is not None and system != NOISY
                                        and fmt(stats.mean) == fmt(best))
    return cells


def gates_markdown(results) -> str:
    lines = ["| gate | system | observed | threshold | n | failed | n/a | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        verdict = "pass" if r.passed else f"**FAIL**{' (' + r.reason + ')' if r.reason else ''}"
        lines.append(f"| {md_code(r.gate.text)} | {md_text(r.system)} | {fmt(r.observed)} | "
                     f"{r.gate.op} {r.gate.threshold:g} | {r.n} | {r.failed} | {r.na} | "
                     f"{md_text(verdict)} |")
    return "\n".join(lines) + "\n"


def md_text(text: str) -> str:
    r"""``text`` safe in a Markdown table cell: ``\`` and ``|`` escaped (a ``|`` would end
    the cell and shift the ones after it), ``$`` escaped (two would open a math span on
    GitHub), line breaks and other control characters shown as escapes (a newline would
    end the row).

    Example:
        >>> print(md_text("a|b\nc $x$"))
        a\|b\x0ac \$x\$
    """
    return printable(text.replace("\\", "\\\\").replace("|", "\\|").replace("$", "\\$"))


def md_code(text: str) -> str:
    r"""``text`` as inline code in a Markdown table cell: fenced by more backticks than
    any run of them in it, with ``|`` escaped and control characters shown as escapes.

    Example:
        >>> print(md_code("pesq_wb>=3"))
        ` pesq_wb>=3 `
    """
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {printable(text).replace('|', PIPE)} {fence}"


PIPE = "\\|"


# characters XML 1.0 forbids (C0 controls but tab, newline, carriage return; lone
# surrogates, as undecodable bytes of a file name; U+FFFE, U+FFFF)
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 forbids shown as a backslash escape, so that
    the document stays well-formed (ElementTree escapes ``<&>"`` but writes these as
    they are)."""
    return XML_FORBIDDEN.sub(lambda m: printable(m.group()), text)


def junit_xml(results, unscored: dict[str, int]) -> str:
    """One test case per gate and system, with what it saw (n, failed, n/a) as
    properties; a second suite, per system, for files that could not be scored
    (``unscored``: system → files not scored that ``--allow-missing`` does not excuse)."""
    root = ElementTree.Element("testsuites", name="sqeval")
    suite = ElementTree.SubElement(root, "testsuite", name="sqeval gates", tests=str(len(results)),
                                   failures=str(sum(not r.passed for r in results)))
    for r in results:
        case = ElementTree.SubElement(suite, "testcase", classname=xml_text(f"sqeval.{r.system}"),
                                      name=xml_text(r.gate.text))
        properties = ElementTree.SubElement(case, "properties")
        for name, value in (("n", r.n), ("failed", r.failed), ("n/a", r.na),
                            ("observed", repr(r.observed))):
            ElementTree.SubElement(properties, "property", name=name, value=str(value))
        if not r.passed:
            message = xml_text(r.reason or (f"observed {r.gate.subject} = {r.observed!r}, "
                                            f"needs {r.gate.op} {r.gate.threshold!r}"))
            ElementTree.SubElement(case, "failure", message=message).text = message
    completeness = ElementTree.SubElement(root, "testsuite", name="sqeval completeness",
                                          tests=str(len(unscored)))
    failures = 0
    for system, n_failed in unscored.items():
        case = ElementTree.SubElement(completeness, "testcase",
                                      classname=xml_text(f"sqeval.{system}"),
                                      name="every file scored")
        if n_failed:
            failures += 1
            message = (f"{plural(n_failed, 'file')} could not be scored (see the CSV error "
                       "column)")
            ElementTree.SubElement(case, "failure", message=message).text = message
    completeness.set("failures", str(failures))
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


COMPARE_COLUMNS = ("system", "metric", "n", "failed", "baseline", "candidate",
                   "Δ mean [95% CI]", "Wilcoxon p", "max drop")
COMPARE_CAPTION = ("Δ: candidate − baseline, per file scored in both (n); failed: candidate "
                   f"cells empty where the baseline has a value; 95% CI: {CI_METHOD}; "
                   "p: two-sided Wilcoxon signed-rank.")


def _signed(value: float) -> str:
    """:func:`fmt` with the sign shown, but for an exact zero (``0.000``, not ``+0.000``)."""
    return fmt(value) if value == 0 else fmt(value, "+")


def difference_cells(d) -> list[str]:
    """One :class:`~sqeval.compare.Difference` as text, every column but the verdict; the
    difference and its CI with their signs (``+0.031 [+0.012, +0.050]``)."""
    failed = str(d.candidate_failed)
    if d.baseline_failed:
        failed += f" (+{d.baseline_failed} baseline)"
    delta = "–"
    if d.n:
        delta = _signed(d.mean)
        if not math.isnan(d.ci_low):
            delta += f" [{_signed(d.ci_low)}, {_signed(d.ci_high)}]"
    return [d.system, f"{d.metric} {REGISTRY[d.metric].direction.arrow}", str(d.n), failed,
            fmt(d.baseline_mean), fmt(d.candidate_mean), delta, fmt(d.p_value)]


def compare_markdown(differences, verdicts: dict) -> str:
    """The compare table in Markdown: a row per system and metric, with the verdict of its
    ``--max-drop`` (``verdicts`` maps (system, metric) to a ``Verdict``) and the reasons."""
    lines = ["| " + " | ".join(COMPARE_COLUMNS) + " |", "|---|---|" + "---:|" * 6 + "---|"]
    for d in differences:
        verdict = verdicts.get((d.system, d.metric))
        text = "–"
        if verdict is not None:
            bound = f"(≤ {verdict.max_drop:g})"
            text = f"ok {bound}" if verdict.passed else f"**FAIL** {bound}: {verdict.reason}"
        cells = [*difference_cells(d), text]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join([*lines, "", COMPARE_CAPTION]) + "\n"


def compare_junit(verdicts) -> str:
    """One test case per system and metric with a ``--max-drop``; the failure message is
    the reasons."""
    root = ElementTree.Element("testsuites", name="sqeval")
    suite = ElementTree.SubElement(root, "testsuite", name="sqeval compare",
                                   tests=str(len(verdicts)),
                                   failures=str(sum(not v.passed for v in verdicts)))
    for v in verdicts:
        d = v.difference
        case = ElementTree.SubElement(suite, "testcase", classname=f"sqeval.{d.system}",
                                      name=f"{d.metric} max drop {v.max_drop:g}")
        if not v.passed:
            ElementTree.SubElement(case, "failure", message=v.reason).text = v.reason
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
