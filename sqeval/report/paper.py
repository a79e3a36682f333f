"""Paper tables: the LaTeX (booktabs) and Markdown tables of ``sqeval score --latex`` and
``sqeval report --latex``, one code path for both; and the combination of several saved
runs into one table (``sqeval report a.csv b.csv``).

Numbers:
    Each metric prints with a fixed number of decimals, never in exponent notation:
    :attr:`~sqeval.metrics.MetricSpec.decimals` (PESQ and the other MOS scales 2, dB 2,
    STOI and ESTOI 3, MC-MSE 4; a column the registry does not know 3). STOI and ESTOI
    print as percentages with one decimal under ``percent``. A column whose largest
    absolute mean would print with at most one significant digit (below
    ``10 ** (1 - decimals)``) is scaled by a power of ten that is a multiple of 3 so that
    the largest becomes at least 1, printed with 2 decimals, and its header says so
    (``Rel. entropy (×10⁻⁶)``). The spread after ``±`` is printed like its mean.

Best: the best mean per metric (by the registry's direction, compared as printed, so
ties are all bold) among the systems, the noisy input excluded, is in bold; none on
metrics that do not rank (rel_entropy) nor on columns the registry does not know.

Significance (``baseline``): for each condition, metric and system other than the
baseline (and than the noisy input, unless the baseline is the noisy input), a two-sided
paired Wilcoxon signed-rank test of the system against the baseline over the files
scored by both; the p-values of every comparison in the output (all conditions, metrics
and systems: the family) are adjusted with Holm's step-down method, and a cell whose
adjusted p is below :data:`ALPHA` gets :data:`MARK`, explained in a note below the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..metrics import Direction
from ..results import CLEAN, NOISY, printable
from ..stats import Section, file_groups, paired_difference, sections, values_by_file, wilcoxon_p

ALPHA = 0.05  # the level of the significance marks
SHARED = (NOISY, CLEAN)  # inputs, not systems: never best, tested only as the baseline
INCOMPLETE = "†"  # a mean over fewer files than its block has
MARK = "*"  # the mark of a significant difference against the baseline
UNKNOWN_DECIMALS = 3  # decimals of a column the registry does not know
SCALED_DECIMALS = 2  # decimals of a column scaled by a power of ten
AUTO_TRANSPOSE = 6  # more metrics than this, and than systems: one row per metric

STYLES = {  # what a cell holds besides the mean
    "mean": "mean",
    "mean-ci": "mean ± 95 % CI half-width",
    "mean-std": "mean ± standard deviation",
}


class TableError(ValueError):
    """Tables that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class TableOptions:
    """How the tables look.

    Attributes:
        style: a key of :data:`STYLES`.
        caption: LaTeX source of the caption (inserted as written); with it, or with a
            label, the LaTeX is a ``table`` float, otherwise bare ``tabular`` to put in
            one's own.
        label: the ``\\label`` of the table.
        transpose: one row per metric (True), one row per system (False), or None: rows
            of metrics when there are more than :data:`AUTO_TRANSPOSE` metrics and more
            metrics than systems.
        percent: STOI and ESTOI (the registry's ``fraction`` metrics) as percentages.
        baseline: the system the significance marks compare with, or None for none.
    """

    style: str = "mean-ci"
    caption: str | None = None
    label: str | None = None
    transpose: bool | None = None
    percent: bool = False
    baseline: str | None = None


def check_label(label: str | None) -> None:
    r"""A :class:`TableError` for a label LaTeX cannot take as written (braces, ``\``,
    ``%``, ``#``, spaces or control characters)."""
    if label is not None and (not label or any(c in "{}\\%#~^&$" or not c.isprintable()
                                               or c.isspace() for c in label)):
        raise TableError(f"--label {label!r}: use letters, digits and :-_. only, e.g. "
                         "tab:results")


def check_caption(caption: str | None) -> str | None:
    r"""The caption with its line breaks as spaces (LaTeX reads them so); a
    :class:`TableError` for one that would not compile: an unescaped ``%`` (it would
    comment out the rest), ``&`` or ``#``, or braces that do not balance.

    Example:
        >>> check_caption("Results on\nVoiceBank (50\\% of \\cite{x}).")
        'Results on VoiceBank (50\\% of \\cite{x}).'
    """
    if caption is None:
        return None
    text = " ".join(caption.splitlines())
    depth, escaped = 0, False
    for char in text:
        if escaped:
            escaped = False
            continue
        if char == "\\":
            escaped = True
        elif char in "%&#":
            raise TableError(f"--caption {caption!r}: an unescaped {char!r} breaks LaTeX; "
                             f"write \\{char} (the caption is LaTeX source, written as given)")
        elif char in "{}":
            depth += 1 if char == "{" else -1
            if depth < 0:
                break
    if depth != 0:
        raise TableError(f"--caption {caption!r}: its braces do not balance; write \\{{ and "
                         "\\} for literal braces")
    return text


def check_baseline(baseline: str | None, systems) -> None:
    """A :class:`TableError` when ``baseline`` is not one of ``systems``."""
    if baseline is not None and baseline not in systems:
        raise TableError(f"--baseline {baseline!r}: no such system; the systems: "
                         f"{', '.join(systems) or 'none'}")


# --- numbers --------------------------------------------------------------------------

@dataclass(frozen=True)
class Format:
    """How one metric's column prints: ``value × 10^shift`` with ``decimals`` decimals."""

    decimals: int
    shift: int = 0  # the power of ten the values are multiplied by (2 for a percentage)
    percent: bool = False

    @property
    def exponent(self) -> int:
        """The column's scale in its header (``×10^-exponent``), 0 when not scaled."""
        return 0 if self.percent else self.shift

    def text(self, value: float) -> str:
        """The value as printed; ``–`` for NaN or ±inf. Rounded half away from zero from
        its shortest decimal form (``repr``), so 0.8765 as a percentage is 87.7 (the
        binary product 0.8765 × 100 would be 87.6499…).

        Example:
            >>> Format(2).text(3.14159), Format(2).text(-0.001), Format(2, 6).text(3.98e-7)
            ('3.14', '0.00', '0.40')
        """
        from decimal import ROUND_HALF_UP, Decimal

        if value is None or not math.isfinite(value):
            return "–"
        from decimal import localcontext

        exact = Decimal(repr(float(value))).scaleb(self.shift)
        with localcontext() as context:  # every digit of the largest float (1.8e308) fits
            context.prec = 400
            text = f"{exact.quantize(Decimal(1).scaleb(-self.decimals), ROUND_HALF_UP):f}"
        if text.startswith("-") and not text.strip("-0."):
            text = text[1:]  # -0.00: a zero
        return text


def column_format(spec, means, percent: bool = False) -> Format:
    """The :class:`Format` of a metric's column, from its spec and the means it shows
    (the module's docstring says the rule)."""
    if percent and getattr(spec, "fraction", False):
        return Format(1, 2, percent=True)
    decimals = getattr(spec, "decimals", UNKNOWN_DECIMALS)
    top = max((abs(m) for m in means if m is not None and math.isfinite(m)), default=0.0)
    if top == 0 or top >= 10.0 ** (1 - decimals):
        return Format(decimals)
    exponent = 3
    while top * 10.0 ** exponent < 1:
        exponent += 3
    return Format(SCALED_DECIMALS, exponent)


SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _unit(form: Format, latex: bool) -> str:
    if form.percent:
        return r" (\%)" if latex else " (%)"
    if form.exponent:
        return (f" ($\\times 10^{{-{form.exponent}}}$)" if latex
                else f" (×10{f'-{form.exponent}'.translate(SUPERSCRIPT)})")
    return ""


# --- significance -----------------------------------------------------------------------

def holm(p_values) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: sorted ascending, the
    k-th smallest (from 0) times ``m − k``, made non-decreasing, capped at 1.

    Example:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Test:
    """One system against the baseline on one metric in one condition."""

    section: int  # index into the sections
    system: str
    metric: str
    n: int  # files scored by both
    p: float  # two-sided Wilcoxon signed-rank; NaN: not testable (n = 0, every difference 0)
    adjusted: float = math.nan  # Holm-adjusted over the family

    @property
    def significant(self) -> bool:
        return self.adjusted < ALPHA


def significance(blocks, metrics, baseline: str) -> list[Test]:
    """The tests of every system against ``baseline`` (module docstring), with Holm's
    adjustment over those that could be made (``p`` not NaN). ``blocks``: (section,
    rows of its files) pairs."""
    tests = []
    for index, (section, rows) in enumerate(blocks):
        systems = list(dict.fromkeys(m.system for m in section.summaries))
        if baseline not in systems:
            continue
        base_rows = [r for r in rows if r.system == baseline]
        for system in systems:
            if system == baseline or system in SHARED:
                continue
            own = [r for r in rows if r.system == system]
            for spec in metrics:
                pairs = paired_difference(values_by_file(base_rows, spec.name),
                                          values_by_file(own, spec.name)).scored()
                n = len(pairs.keys)
                p = wilcoxon_p(pairs.differences) if n else math.nan
                tests.append(Test(index, system, spec.name, n, p))
    tested = [t for t in tests if not math.isnan(t.p)]
    adjusted = holm([t.p for t in tested])
    done = {id(t): replace(t, adjusted=a) for t, a in zip(tested, adjusted)}
    return [done.get(id(t), t) for t in tests]


# --- the tables -------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    mean: str
    spread: str = ""  # the text after ±, or ""
    best: bool = False
    marked: bool = False
    incomplete: bool = False  # files of the block failed (or were n/a) for this cell


@dataclass
class Tables:
    """The tables of one run or several, ready to print as LaTeX or Markdown."""

    sections: list[Section]
    metrics: list
    systems: list[str]
    options: TableOptions
    tests: list[Test] = field(default_factory=list)
    formats: dict = field(default_factory=dict)

    @property
    def transposed(self) -> bool:
        if self.options.transpose is not None:
            return self.options.transpose
        return len(self.metrics) > AUTO_TRANSPOSE and len(self.metrics) > len(self.systems)

    def what(self, latex: bool) -> str:
        """What a written file holds, for the ``wrote FILE (...)`` line."""
        from ..results import plural

        shape = (f"{plural(len(self.systems), 'system')}, "
                 f"{plural(len(self.metrics), 'metric')}")
        if len(self.sections) == 1:
            return f"1 table, {shape}"
        blocks = f"all files and {plural(len(self.sections) - 1, 'condition')}"
        if latex:
            return f"1 table: {blocks}; {shape}"
        return f"{len(self.sections)} tables: {blocks}; {shape}"

    def cells(self, index: int) -> dict:
        """system → metric name → :class:`Cell` of the section at ``index``."""
        section = self.sections[index]
        by = {(m.system, m.metric): m for m in section.summaries}
        systems = [s for s in self.systems if any(m.system == s for m in section.summaries)]
        marked = {(t.system, t.metric) for t in self.tests
                  if t.section == index and t.significant}
        out = {system: {} for system in systems}
        for spec in self.metrics:
            form = self.formats[spec.name]
            # candidates for best: the systems scored on every file of the block
            means = {s: form.text(by[s, spec.name].stats.mean) for s in systems
                     if s not in SHARED and math.isfinite(by[s, spec.name].stats.mean)
                     and not _incomplete(by[s, spec.name])}
            best = None
            if means and getattr(spec, "ranks", False) and hasattr(spec, "direction"):
                pick = max if spec.direction is Direction.HIGHER else min
                best = form.text(pick(by[s, spec.name].stats.mean for s in means))
            for system in systems:
                stats = by[system, spec.name].stats
                spread = {"mean-ci": stats.ci_high - stats.mean,
                          "mean-std": stats.std}.get(self.options.style)
                mean = form.text(stats.mean)
                out[system][spec.name] = Cell(
                    mean, "" if spread is None or not math.isfinite(spread) or mean == "–"
                    else form.text(spread), system in means and mean == best,
                    (system, spec.name) in marked,
                    mean != "–" and _incomplete(by[system, spec.name]))
        return out

    def incomplete(self) -> list[str]:
        """``system: metric (n of N files)`` for each mean over fewer files than its
        block has (all files only), for a note on stderr."""
        out = []
        for summary in self.sections[0].summaries if self.sections else []:
            if _incomplete(summary) and summary.stats.n and any(
                    spec.name == summary.metric for spec in self.metrics):
                total = summary.stats.n + summary.n_failed + summary.n_not_applicable
                out.append(f"{summary.system}: {summary.metric} ({summary.stats.n} of "
                           f"{total} files)")
        return out

    def _incomplete_note(self) -> str | None:
        if not any(cell.incomplete for index in range(len(self.sections))
                   for row in self.cells(index).values() for cell in row.values()):
            return None
        return (f"{INCOMPLETE}: mean over fewer files than the table has (the others failed "
                "or do not apply for this system and metric); not ranked")

    def notes(self) -> list[str]:
        """The notes under the table: incomplete means, significance marks."""
        return [note for note in (self._incomplete_note(), self._significance_note())
                if note is not None]

    def _significance_note(self) -> str | None:
        baseline = self.options.baseline
        if baseline is None:
            return None
        n = sum(not math.isnan(t.p) for t in self.tests)
        if n == 0:
            return (f"no system could be tested against {baseline} (no file scored by "
                    "both with a difference)")
        return (f"{MARK}: differs from {baseline} at α = {ALPHA:g} (two-sided paired "
                "Wilcoxon signed-rank test over the files both scored; p-values adjusted "
                f"with Holm's method over the {n} comparison{'s' if n != 1 else ''} in "
                "this table)")

    # LaTeX ------------------------------------------------------------------------------

    def latex(self) -> str:
        """The tables as LaTeX: one booktabs ``tabular`` (conditions as blocks), in a
        ``table`` float when there is a caption or a label; needs booktabs only."""
        options = self.options
        float_ = options.caption is not None or options.label is not None
        out = [f"% sqeval: {STYLES[options.style]} over scored files; best system per "
               "metric in bold (the noisy input excluded; none on rel_entropy, whose sanity "
               "cases show no consistent direction). Needs \\usepackage{booktabs} only."]
        if float_:
            out += ["\\begin{table}[htbp]", "\\centering"]
            if options.caption is not None:
                out.append(f"\\caption{{{printable(options.caption)}}}")
            if options.label is not None:
                out.append(f"\\label{{{options.label}}}")
        heads = [self._latex_head(spec) for spec in self.metrics]
        if self.transposed:
            columns = len(self.systems)
            header = "Metric & " + " & ".join(_latex_escape(s) for s in self.systems)
        else:
            columns = len(self.metrics)
            header = "System & " + " & ".join(heads)
        out += ["\\begin{tabular}{l" + "c" * columns + "}", "\\toprule", header + " \\\\"]
        for index, section in enumerate(self.sections):
            out.append("\\midrule")
            out.append(f"% {printable(section.label)}")
            if len(self.sections) > 1:
                out += [f"\\multicolumn{{{columns + 1}}}{{l}}{{\\textit{{"
                        f"{_latex_escape(section.label)}}}}} \\\\", "\\addlinespace[2pt]"]
            cells = self.cells(index)
            if self.transposed:
                for spec, head in zip(self.metrics, heads):
                    out.append(head + " & " + " & ".join(
                        _latex_cell(cells[s][spec.name]) if s in cells else "--"
                        for s in self.systems) + " \\\\")
            else:
                for system, row in cells.items():
                    out.append(f"{_latex_escape(system)} & " + " & ".join(
                        _latex_cell(row[spec.name]) for spec in self.metrics) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}"]
        for note in self.notes():
            out += ["\\par\\smallskip", "{\\footnotesize\\raggedright "
                    + _latex_escape(note).replace(MARK, "$^{" + MARK + "}$", 1)
                    .replace(INCOMPLETE, "$^{\\dagger}$", 1)
                    .replace("α", "$\\alpha$") + "\\par}"]
        if float_:
            out.append("\\end{table}")
        return "\n".join(out) + "\n"

    def _latex_head(self, spec) -> str:
        arrow = {Direction.HIGHER: r" $\uparrow$", Direction.LOWER: r" $\downarrow$"}.get(
            getattr(spec, "direction", None), "")
        title = getattr(spec, "title", spec.name)
        return _latex_escape(title) + _unit(self.formats[spec.name], True) + arrow

    # Markdown ---------------------------------------------------------------------------

    def markdown(self) -> str:
        """A Markdown table per condition (same numbers, names and marks as the LaTeX)."""
        from .summary import md_text

        out = []
        if self.options.caption is not None:
            out += [md_text(self.options.caption), ""]
        heads = [self._markdown_head(spec) for spec in self.metrics]
        for index, section in enumerate(self.sections):
            cells = self.cells(index)
            out += [f"### {md_text(section.label)}", ""]
            if self.transposed:
                out += ["| metric | " + " | ".join(md_text(s) for s in self.systems) + " |",
                        "|---|" + "---:|" * len(self.systems)]
                for spec, head in zip(self.metrics, heads):
                    out.append(f"| {head} | " + " | ".join(
                        _markdown_cell(cells[s][spec.name]) if s in cells else "–"
                        for s in self.systems) + " |")
            else:
                out += ["| system | " + " | ".join(heads) + " |",
                        "|---|" + "---:|" * len(self.metrics)]
                for system, row in cells.items():
                    out.append(f"| {md_text(system)} | " + " | ".join(
                        _markdown_cell(row[spec.name]) for spec in self.metrics) + " |")
            out.append("")
        for note in self.notes():
            out += [md_text(note).replace(MARK, "\\" + MARK, 1), ""]
        return "\n".join(out)

    def _markdown_head(self, spec) -> str:
        from .summary import md_text

        direction = getattr(spec, "direction", None)
        arrow = f" {direction.arrow}" if direction is not None else ""
        return md_text(getattr(spec, "title", spec.name)) + _unit(
            self.formats[spec.name], False) + arrow


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                 "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                 "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                 "|": r"\textbar{}"}


def _latex_escape(text: str) -> str:
    r"""``text`` as LaTeX text that prints as written: each of LaTeX's special characters
    as its command (in one pass, so no escape is escaped again), line breaks and other
    control characters as visible escapes (a newline would end a table row or a comment).

    Example:
        >>> print(_latex_escape("a_b & {c}~^\\"))
        a\_b \& \{c\}\textasciitilde{}\textasciicircum{}\textbackslash{}
    """
    return "".join(LATEX_SPECIAL.get(char, char) for char in printable(text))


def _latex_cell(cell: Cell) -> str:
    if cell.mean == "–":
        return "--"
    # a minus sign, not the hyphen a bare "-" prints in text mode
    mean = "$-$" + cell.mean[1:] if cell.mean.startswith("-") else cell.mean
    text = f"\\textbf{{{mean}}}" if cell.best else mean
    if cell.marked:
        text += "$^{" + MARK + "}$"
    if cell.incomplete:
        text += "$^{\\dagger}$"
    if cell.spread:
        text += f" $\\pm$ {cell.spread}"
    return text


def _markdown_cell(cell: Cell) -> str:
    if cell.mean == "–":
        return "–"
    text = f"**{cell.mean}**" if cell.best else cell.mean
    if cell.marked:
        text += "\\" + MARK
    if cell.incomplete:
        text += INCOMPLETE
    if cell.spread:
        text += f" ± {cell.spread}"
    return text


def _incomplete(summary) -> bool:
    """Whether a mean leaves out files of its block (failed, or n/a)."""
    return summary.n_failed + summary.n_not_applicable > 0


def build(rows, metrics, systems, options: TableOptions = TableOptions(), pattern=None,
          paths=None, all_sections: list[Section] | None = None) -> Tables:
    """The :class:`Tables` of ``rows``: all files, then a condition per value of
    ``pattern``'s groups (as :func:`~sqeval.stats.sections`; pass them as
    ``all_sections`` when they are already made).

    Raises:
        TableError: an unknown style or baseline.
    """
    if options.style not in STYLES:
        raise TableError(f"--latex-style takes {', '.join(STYLES)}; got {options.style!r}")
    check_baseline(options.baseline, systems)
    check_label(options.label)
    if all_sections is None:
        all_sections = sections(rows, list(metrics), list(systems), pattern, paths)
    formats = {spec.name: column_format(spec, [m.stats.mean for s in all_sections
                                               for m in s.summaries if m.metric == spec.name],
                                        options.percent) for spec in metrics}
    tables = Tables(all_sections, list(metrics), list(systems), options, formats=formats)
    if options.baseline is not None:
        tables.tests = significance(_blocks(rows, all_sections, pattern, paths), metrics,
                                    options.baseline)
    return tables


def _blocks(rows, all_sections, pattern, paths):
    """(section, the rows of its files) for each section."""
    if pattern is None or len(all_sections) == 1:
        return [(section, rows) for section in all_sections]
    keys = file_groups(dict.fromkeys(row.file for row in rows), pattern, paths)
    return [(section, rows if not section.group else
             [row for row in rows if dict(keys[row.file]) == section.group])
            for section in all_sections]


# --- several runs ---------------------------------------------------------------------

NOISY_RTOL = 1e-9  # the noisy input's values of two runs made alike agree to this


def combine(runs, ignore_provenance: bool = False):
    """Several saved runs (``(path, Results)`` pairs) as one :class:`~sqeval.api.Results`
    whose systems are side by side, and the notes to print.

    Refused (:class:`TableError`) when the runs were not made alike (a partial run; their
    provenance differs in what changes the numbers: references, versions, options, as
    ``sqeval compare`` checks; one has a .meta.json and another none) unless
    ``ignore_provenance``; and, always, when they scored different files, when a system
    other than the noisy input is in two of them, or when their noisy inputs scored
    differently. The noisy input's rows are taken once, from the first run holding them.
    Metrics a run lacks are empty (NaN) in its rows.
    """
    from ..api import Results
    from ..compare import provenance_differences
    from ..results import Row

    notes = []
    if len(runs) == 1:
        return runs[0][1], notes
    paths = [str(path) for path, _ in runs]
    twice = next((path for path in paths if paths.count(path) > 1), None)
    if twice is not None:
        raise TableError(f"{twice} is given twice")
    problems = _provenance_problems(runs, provenance_differences)
    if problems and not ignore_provenance:
        raise TableError("the runs were not made alike, so their numbers do not go in one "
                         "table: " + "; ".join(problems) + ". Score them with the same "
                         "sqeval and options, or pass --ignore-provenance")
    if problems:
        notes.append("the runs differ (" + "; ".join(problems) + "); tabulated anyway "
                     "(--ignore-provenance)")
    if not any(results.provenance for _, results in runs):
        notes.append("no CSV has a .meta.json beside it: whether the runs were made alike "
                     "is not checked")
    _check_files(runs)
    owner: dict[str, str] = {}
    for path, results in runs:
        for system in results.systems:
            if system not in SHARED and system in owner:
                raise TableError(f"system {system!r} is in both {owner[system]} and {path}: "
                                 "a table cannot tell them apart; score one of them under "
                                 "another name (NAME=PATH)")
            owner.setdefault(system, str(path))
    metrics = list(dict.fromkeys(m for _, results in runs for m in results.metrics))
    rows, systems = [], []
    shared: dict[tuple, int] = {}  # (file, noisy or clean) → its row's index in rows
    shared_from: dict[str, tuple] = {}  # noisy or clean → the first (path, results) with it
    covered: dict[str, set] = {}  # noisy or clean → the metrics its rows hold so far
    for path, results in runs:
        for system in SHARED:
            if system in results.systems and system in shared_from:
                _check_noisy(shared_from[system], (path, results), system)
        for row in results.rows:
            values = {m: row.values.get(m, math.nan) for m in metrics}
            key = (row.file, row.system)
            if row.system in SHARED and key in shared:
                # the same input scored by another run: take the metrics the earlier runs
                # did not compute (each run's own metrics, whatever their order)
                index, new = shared[key], [m for m in results.metrics
                                           if m not in covered[row.system]]
                merged = rows[index]
                rows[index] = replace(
                    merged, values={**merged.values, **{m: values[m] for m in new}},
                    errors={**merged.errors, **{m: e for m, e in row.errors.items()
                                                if m in new}},
                    not_applicable={**merged.not_applicable,
                                    **{m: r for m, r in row.not_applicable.items()
                                       if m in new}})
                continue
            if row.system in SHARED:
                shared[key] = len(rows)
            rows.append(replace(row, values=values) if isinstance(row, Row) else row)
        for system in SHARED:
            if system in results.systems:
                shared_from.setdefault(system, (path, results))
                covered.setdefault(system, set()).update(results.metrics)
        systems += [s for s in results.systems if s not in systems]
    for system in reversed(SHARED):  # noisy first, then clean, then the systems
        if system in systems:
            systems.remove(system)
            systems.insert(0, system)
    return Results(rows, metrics, systems, runs[0][1].provenance), notes


def _provenance_problems(runs, differences) -> list[str]:
    metas = [(str(path), results.provenance or {}) for path, results in runs]
    out = [f"{path} is a partial run (interrupted or stopped)" for path, meta in metas
           if meta.get("partial") is True]
    if out:
        return out
    if not any(meta for _, meta in metas):
        return []
    missing = [path for path, meta in metas if not meta]
    if missing:
        return [f"{path}.meta.json: none, so what produced it cannot be compared"
                for path in missing]
    first_path, first = metas[0]
    for path, meta in metas[1:]:
        out += [f"{first_path} → {path}: {printable(line)}" for line in differences(first, meta)]
    return out


def _check_files(runs) -> None:
    first_path, first = runs[0]
    files = set(row.file for row in first.rows)
    for path, results in runs[1:]:
        other = set(row.file for row in results.rows)
        if other != files:
            only_first, only_other = sorted(files - other), sorted(other - files)
            example = (only_first or only_other)[0]
            raise TableError(f"{first_path} and {path} scored different files "
                             f"({len(only_first)} only in {first_path}, {len(only_other)} "
                             f"only in {path}; e.g. {example!r}): their means would not be "
                             "over the same test set")


def _check_noisy(first, other, system: str = NOISY) -> None:
    (first_path, a), (other_path, b) = first, other
    values = {row.file: row.values for row in a.rows if row.system == system}
    for row in b.rows:
        if row.system != system or row.file not in values:
            continue
        for metric, value in row.values.items():
            if metric not in values[row.file]:
                continue
            mine = values[row.file][metric]
            if not np.isclose(mine, value, rtol=NOISY_RTOL, atol=0.0, equal_nan=True):
                what = "noisy input" if system == NOISY else "clean references' scores"
                raise TableError(f"the {what} differs between {first_path} and "
                                 f"{other_path} ({metric} of {row.file!r}: {mine!r} and "
                                 f"{value!r}): the runs did not score the same "
                                 f"{'noisy' if system == NOISY else 'clean'} files")
