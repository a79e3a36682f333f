"""Paper tables (issue 26): `sqeval report A.csv B.csv --latex/--markdown` and `sqeval score
--latex` through one code path (sqeval.report.paper); LaTeX compiled by pdflatex."""

from __future__ import annotations

import math
import re
import shutil
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from sqeval.cli import app
from sqeval.metrics import REGISTRY
from sqeval.report.paper import (ALPHA, Format, TableOptions, build, column_format, holm)
from sqeval.results import Row

from conftest import write

runner = CliRunner()
METRICS = "si_snr,pesq_wb,stoi"
N_FILES = 8  # the exact two-sided Wilcoxon p of 8 same-signed differences: 2/256


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, golden):
    """Two saved runs of the same clean and noisy files: a.csv holds system sysA (clearly
    better than the noisy input), b.csv system sysB (a copy of the noisy input); c.csv is
    sysC on a corpus where one clean file differs in content."""
    s, e, rate, _ = golden
    root = tmp_path_factory.mktemp("paper")
    length = int(1.5 * rate)
    for k in range(N_FILES):
        start = k * rate // 5
        clean, noise = s[start:start + length], (e - s)[start:start + length]
        name = f"f{k}_{(k % 2) * 5}dB.wav"
        write(root / "clean" / name, clean, rate)
        write(root / "noisy" / name, clean + noise, rate)
        write(root / "sysA" / name, clean + (0.05 + 0.01 * k) * noise, rate)
        write(root / "sysB" / name, clean + noise, rate)
        write(root / "other" / name, clean * (0.5 if k == 0 else 1.0), rate)
    common = ["--noisy", root / "noisy", "-m", METRICS, "--no-cache", "-j", 1]
    for system, csv in (("sysA", "a.csv"), ("sysB", "b.csv")):
        result = run("score", root / "clean", f"{system}={root / system}", *common, "--csv",
                     root / csv)
        assert result.exit_code == 0, result.output
    result = run("score", root / "other", f"sysC={root / 'sysA'}", *common, "--csv",
                 root / "c.csv")
    assert result.exit_code == 0, result.output
    return root


def compile_pdf(folder, table: str):
    """pdflatex (Debian's texlive, installed by .ci/run) on a minimal article with booktabs
    only that inputs ``table``; the log and the PNG pages (pdftoppm, 50 dpi)."""
    assert shutil.which("pdflatex") and shutil.which("pdftoppm"), (
        "pdflatex and pdftoppm are needed: apt-get install texlive-latex-base "
        "texlive-latex-recommended poppler-utils (.ci/run does)")
    (folder / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n"
                                    f"\\begin{{document}}\n\\input{{{table}}}\n"
                                    "\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           "doc.tex"], cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    subprocess.run(["pdftoppm", "-png", "-r", "50", "doc.pdf", "page"], cwd=folder,
                   check=True, timeout=120)
    text = subprocess.run(["pdftotext", "-layout", "doc.pdf", "-"], cwd=folder,
                          capture_output=True, text=True, check=True).stdout
    return (folder / "doc.log").read_text(errors="replace"), sorted(folder.glob("page*.png")), text


def data_rows(tex: str) -> list[str]:
    body = tex.split("\\midrule", 1)[1].split("\\bottomrule")[0]
    return [line for line in body.splitlines()
            if line.endswith("\\\\") and not line.startswith(("%", "\\multicolumn"))]


def test_report_of_two_runs_is_one_table_that_compiles_on_one_page(runs, tmp_path):
    table = tmp_path / "t.tex"
    result = run("report", runs / "a.csv", runs / "b.csv", "--latex", table, "--caption",
                 "Results on eight files.", "--label", "tab:results", "--metrics", METRICS)
    assert result.exit_code == 0, result.output
    tex = table.read_text()
    spec = re.search(r"\\begin\{tabular\}\{([a-z]+)\}", tex).group(1)
    assert spec == "lccc"  # a column for the systems, one per metric
    assert tex.count("\\begin{tabular}") == 1 and "\\caption{Results on eight files.}" in tex
    assert "\\label{tab:results}" in tex and "\\begin{table}" in tex
    rows = data_rows(tex)
    assert [row.split(" & ")[0] for row in rows] == ["noisy", "sysA", "sysB"]  # noisy once
    assert all(row.count(" & ") == len(spec) - 1 for row in rows)
    assert "System & SI-SNR $\\uparrow$ & PESQ (WB) $\\uparrow$ & STOI $\\uparrow$" in tex
    log, pages, text = compile_pdf(tmp_path, "t")
    assert "Overfull" not in log and len(pages) == 1
    assert "Results on eight files." in text
    layout = next(line for line in text.splitlines() if "sysA" in line)
    assert len(re.findall(r"\d+\.\d+ ± \d+\.\d+", layout)) == 3  # a cell per metric


def test_the_transposed_table_has_a_column_per_system_and_compiles(runs, tmp_path):
    table = tmp_path / "t.tex"
    result = run("report", runs / "a.csv", runs / "b.csv", "--latex", table, "--transpose",
                 "--latex-style", "mean", "--percent")
    assert result.exit_code == 0, result.output
    tex = table.read_text()
    assert "\\begin{tabular}{lccc}" in tex and "Metric & noisy & sysA & sysB \\\\" in tex
    assert [row.split(" & ")[0] for row in data_rows(tex)] == [
        "SI-SNR $\\uparrow$", "PESQ (WB) $\\uparrow$", "STOI (\\%) $\\uparrow$"]
    assert "\\begin{table}" not in tex  # no caption nor label: a tabular for one's own float
    log, pages, _ = compile_pdf(tmp_path, "t")
    assert "Overfull" not in log and len(pages) == 1


def test_score_latex_is_the_report_of_its_csv(runs, tmp_path):
    """One code path: `score --latex` writes what `report --latex` makes of its CSV."""
    options = ["--caption", "Same.", "--baseline", "noisy", "--percent"]
    direct = tmp_path / "direct.tex"
    result = run("score", runs / "clean", f"sysA={runs / 'sysA'}", "--noisy", runs / "noisy",
                 "-m", METRICS, "--no-cache", "-j", 1, "--csv", tmp_path / "r.csv", "--latex",
                 direct, "--markdown", tmp_path / "direct.md", *options)
    assert result.exit_code == 0, result.output
    saved = tmp_path / "saved.tex"
    result = run("report", tmp_path / "r.csv", "--latex", saved, "--markdown",
                 tmp_path / "saved.md", *options)
    assert result.exit_code == 0, result.output
    assert direct.read_text() == saved.read_text()
    assert (tmp_path / "saved.md").read_text() in (tmp_path / "direct.md").read_text()


def test_a_clearly_better_system_is_marked_and_a_copy_of_the_baseline_is_not(runs, tmp_path):
    result = run("report", runs / "a.csv", runs / "b.csv", "--latex", tmp_path / "t.tex",
                 "--markdown", tmp_path / "t.md", "--baseline", "noisy", "--no-transpose")
    assert result.exit_code == 0, result.output
    tex = (tmp_path / "t.tex").read_text()
    rows = {row.split(" & ")[0]: row for row in data_rows(tex)}
    assert rows["sysA"].count("$^{*}$") == 3  # 8 of 8 files better: p = 2/256 on each
    assert "$^{*}$" not in rows["sysB"] and "$^{*}$" not in rows["noisy"]
    # sysB equals noisy on every file: untestable, so the family is sysA's 3 metrics
    assert "Holm's method over the 3 comparisons" in tex and "Wilcoxon signed-rank" in tex
    assert "differs from noisy at $\\alpha$ = 0.05" in tex
    markdown = (tmp_path / "t.md").read_text()
    sys_a = next(line for line in markdown.splitlines() if line.startswith("| sysA |"))
    assert sys_a.count("\\*") == 3 and "\\*: differs from noisy" in markdown
    _, pages, text = compile_pdf(tmp_path, "t")
    assert len(pages) == 1 and "Holm" in text


def test_against_a_system_the_noisy_input_is_not_tested(runs, tmp_path):
    result = run("report", runs / "a.csv", runs / "b.csv", "--markdown", tmp_path / "t.md",
                 "--baseline", "sysB", "--no-transpose")
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "t.md").read_text()
    assert "over the 3 comparisons" in markdown  # sysA only: noisy is not a candidate
    noisy = next(line for line in markdown.splitlines() if line.startswith("| noisy |"))
    assert "\\*" not in noisy


def test_runs_on_different_references_are_refused(runs, tmp_path):
    result = run("report", runs / "a.csv", runs / "c.csv", "--latex", tmp_path / "t.tex")
    assert result.exit_code == 2
    assert "clean reference of 1 file differs in content" in result.output
    assert not (tmp_path / "t.tex").exists()


@pytest.mark.parametrize("change, expected", [
    (lambda meta: meta.update(rate_policy="another"), "rate_policy"),
    (lambda meta: meta["versions"].update(pesq="9.9"), "pesq: "),
    (lambda meta: meta.update(partial=True), "is a partial run"),
])
def test_runs_whose_metric_definitions_differ_are_refused(runs, tmp_path, change, expected):
    import json

    from sqeval.api import csv_digest

    shutil.copy(runs / "b.csv", tmp_path / "b.csv")
    meta = json.loads((runs / "b.csv.meta.json").read_text())
    change(meta)
    meta["csv_sha256"] = csv_digest((tmp_path / "b.csv").read_bytes())
    (tmp_path / "b.csv.meta.json").write_text(json.dumps(meta))
    result = run("report", runs / "a.csv", tmp_path / "b.csv", "--latex", tmp_path / "t.tex")
    assert result.exit_code == 2 and expected in result.output, result.output
    forced = run("report", runs / "a.csv", tmp_path / "b.csv", "--latex", tmp_path / "t.tex",
                 "--ignore-provenance")
    assert forced.exit_code == 0 and "tabulated anyway" in forced.output


def test_what_cannot_make_one_table_is_a_usage_error(runs, tmp_path):
    a, b = runs / "a.csv", runs / "b.csv"
    out = tmp_path / "t.tex"
    cases = {
        ("report", a, a, "--latex", out): "given twice",
        ("report", a): "nothing to write",
        ("report", a, b, "-o", tmp_path / "r.html"): "the HTML report is of one run",
        ("report", a, b, "--latex", out, "--baseline", "nope"): "--baseline 'nope': no such",
        ("report", a, "--caption", "x", "-o", tmp_path / "r.html"): "--caption shape",
        ("report", a, "--latex", out, "--label", "a b"): "--label 'a b'",
        ("report", a, "--latex", out, "-m", "pesq_nb"): "no CSV has it",
        ("report", a, "--latex", out, "--latex-style", "x"): "--latex-style takes",
        ("score", runs / "clean", runs / "sysA", "--latex", out, "--baseline", "x",
         "--no-cache"): "--baseline 'x'",
    }
    for args, message in cases.items():
        result = run(*args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not out.exists()


def test_a_system_in_two_runs_is_refused_by_name(runs, tmp_path):
    shutil.copy(runs / "a.csv", tmp_path / "again.csv")
    shutil.copy(runs / "a.csv.meta.json", tmp_path / "again.csv.meta.json")
    result = run("report", runs / "a.csv", tmp_path / "again.csv", "--latex", tmp_path / "t.tex")
    assert result.exit_code == 2 and "system 'sysA' is in both" in result.output


def test_runs_of_different_files_are_refused(runs, tmp_path):
    lines = (runs / "b.csv").read_text().splitlines(keepends=True)
    (tmp_path / "b.csv").write_text("".join(line for line in lines if not line.startswith("f0_")))
    result = run("report", runs / "a.csv", tmp_path / "b.csv", "--latex", tmp_path / "t.tex",
                 "--ignore-provenance")
    assert result.exit_code == 2 and "scored different files" in result.output


def test_markdown_has_the_same_numbers_and_blocks_per_condition(runs, tmp_path):
    result = run("report", runs / "a.csv", runs / "b.csv", "--latex", tmp_path / "t.tex",
                 "--markdown", tmp_path / "t.md", "--group-by", r"_(?P<snr>\d+)dB",
                 "--no-transpose", "--caption", "Grouped.")
    assert result.exit_code == 0, result.output
    markdown, tex = (tmp_path / "t.md").read_text(), (tmp_path / "t.tex").read_text()
    assert markdown.startswith("Grouped.\n")
    assert [line for line in markdown.splitlines() if line.startswith("### ")] == [
        "### all files", "### snr=0", "### snr=5"]
    assert "| system | SI-SNR ↑ | PESQ (WB) ↑ | STOI ↑ |" in markdown
    md_rows = [line for line in markdown.splitlines() if line.startswith(("| sysA", "| sysB"))]
    tex_rows = [row for row in data_rows(tex) if row.startswith("sys")]
    clean = [re.sub(r"\\textbf\{([^}]*)\}", r"\1", row).replace("$\\pm$", "±")
             .replace("$-$", "-") for row in tex_rows]
    assert [row.replace("**", "").strip("| ").split(" | ") for row in md_rows] == [
        row.rstrip(" \\").split(" & ") for row in clean]
    assert tex.count("\\multicolumn{4}{l}") == 3
    log, pages, _ = compile_pdf(tmp_path, "t")
    assert "Overfull" not in log and len(pages) == 1


# --- the formatting rules, on synthetic rows --------------------------------------------

def rows_of(values: dict) -> list[Row]:
    """Rows from system → metric → list of per-file values."""
    out = []
    for system, metrics in values.items():
        n = len(next(iter(metrics.values())))
        for k in range(n):
            out.append(Row(f"f{k}", system, {m: float(v[k]) for m, v in metrics.items()}))
    return out


def test_numbers_are_fixed_decimals_per_metric_and_never_exponents():
    rng = np.random.default_rng(0)
    tiny = {"noisy": {"pesq_wb": 1 + rng.random(8), "stoi": rng.random(8),
                      "mc_mse": 3e-7 + 1e-8 * rng.random(8),
                      "rel_entropy": -4e-5 + 1e-6 * rng.random(8), "si_snr": 1e7 + rng.random(8)},
            "sys": {"pesq_wb": 2 + rng.random(8), "stoi": rng.random(8),
                    "mc_mse": 1e-7 * rng.random(8), "rel_entropy": 1e-6 * rng.random(8),
                    "si_snr": rng.random(8)}}
    specs = [REGISTRY[m] for m in ("pesq_wb", "stoi", "mc_mse", "rel_entropy", "si_snr")]
    tables = build(rows_of(tiny), specs, ["noisy", "sys"], TableOptions(transpose=False))
    tex, markdown = tables.latex(), tables.markdown()
    assert "e-" not in tex and "e+" not in tex and "e-" not in markdown
    row = next(line for line in tex.splitlines() if line.startswith("noisy &"))
    cells = [cell.split(" $\\pm$ ")[0] for cell in row.rstrip(" \\").split(" & ")[1:]]
    decimals = [len(cell.split(".")[1]) for cell in cells]
    assert decimals == [2, 3, 2, 2, 2]  # mc_mse and rel_entropy scaled, printed with 2
    assert "MC-MSE ($\\times 10^{-9}$)" in tex and "MC-MSE (×10⁻⁹)" in markdown
    assert "Rel. entropy ($\\times 10^{-6}$)" in tex
    assert cells[2] == f"{np.mean(tiny['noisy']['mc_mse']) * 1e9:.2f}"
    assert cells[4].startswith("10000000.")
    assert cells[3].startswith("$-$3")  # a minus sign in LaTeX, not a text-mode hyphen
    noisy_md = next(line for line in markdown.splitlines() if line.startswith("| noisy |"))
    assert noisy_md.split(" | ")[4].startswith("-3")  # Markdown keeps the plain sign
    assert Format(2).text(-0.001) == "0.00" and Format(2).text(math.nan) == "–"


def test_percent_and_column_scaling_rules():
    stoi, pesq = REGISTRY["stoi"], REGISTRY["pesq_wb"]
    assert column_format(stoi, [0.9], percent=True).text(0.8765) == "87.7"
    assert column_format(pesq, [2.0], percent=True).text(2.345) == "2.35"  # not a fraction
    assert column_format(stoi, [0.9]).text(0.8765) == "0.877"
    assert column_format(REGISTRY["mc_mse"], [0.024, 0.008]).decimals == 4  # not scaled
    scaled = column_format(REGISTRY["mc_mse"], [0.00004, 0.00002])
    assert (scaled.exponent, scaled.text(0.00004)) == (6, "40.00")


def test_many_metrics_transpose_by_default():
    metrics = ["snr", "si_snr", "si_sdr", "sdr", "stoi", "estoi", "pesq_wb"]
    values = {system: {m: np.arange(4.0) + k for m in metrics}
              for k, system in enumerate(("noisy", "a", "b"))}
    specs = [REGISTRY[m] for m in metrics]
    assert build(rows_of(values), specs, ["noisy", "a", "b"]).transposed
    assert not build(rows_of(values), specs[:6], ["noisy", "a", "b"]).transposed
    assert not build(rows_of(values), specs, ["noisy", "a", "b"],
                     TableOptions(transpose=False)).transposed


def test_holm_and_the_marks_follow_the_adjusted_p():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5] and holm([]) == []
    better = {"noisy": {"si_snr": np.arange(8.0)},
              "good": {"si_snr": np.arange(8.0) + 1 + np.arange(8) / 10},
              "same": {"si_snr": np.arange(8.0)}}
    tables = build(rows_of(better), [REGISTRY["si_snr"]], ["noisy", "good", "same"],
                   TableOptions(baseline="noisy", transpose=False))
    (test,) = [t for t in tables.tests if not math.isnan(t.p)]
    assert (test.system, test.n) == ("good", 8) and test.p == pytest.approx(2 / 256)
    assert test.adjusted < ALPHA
    tex = tables.latex()
    assert "\\textbf{4.85}$^{*}$" in tex and next(
        line for line in tex.splitlines() if line.startswith("same &")).count("*") == 0


# --- what an adversarial review found ---------------------------------------------------

def _with_failures(runs, tmp_path, system: str, failed: int):
    """a.csv with a system equal to sysA on its last files and error rows on the first
    ``failed`` (a cherry-picking system), saved without a .meta.json."""
    lines = (runs / "a.csv").read_text().splitlines()
    header = lines[0].split(",")
    out = [lines[0]]
    for line in lines[1:]:
        out.append(line)
        cells = line.split(",")
        if cells[1] != "sysA":
            continue
        cells[1] = system
        if int(cells[0][1]) < failed:  # files f0 ... f{failed-1} failed
            cells = cells[:2] + [""] * (len(header) - 3) + ["output is silent"]
        out.append(",".join(cells))
    path = tmp_path / f"{system}.csv"
    path.write_text("\n".join(out) + "\n")
    return path


def test_a_mean_over_fewer_files_is_marked_and_never_best(runs, tmp_path):
    """A system that failed most files must not take the bold from one scored on all."""
    csv = _with_failures(runs, tmp_path, "cherry", 5)
    result = run("report", csv, "--latex", tmp_path / "t.tex", "--markdown", tmp_path / "t.md",
                 "-m", "pesq_wb,stoi", "--no-transpose", "--group-by", "")
    assert result.exit_code == 0, result.output
    assert "marked † and never bold" in result.output and "cherry: pesq_wb (3 of 8" in result.output
    tex = (tmp_path / "t.tex").read_text()
    rows = {row.split(" & ")[0]: row for row in data_rows(tex)}
    assert "\\textbf" not in rows["cherry"] and rows["cherry"].count("$^{\\dagger}$") == 2
    assert rows["sysA"].count("\\textbf") == 2  # the best over all 8 files
    assert "fewer files than the table has" in tex
    assert "†" in (tmp_path / "t.md").read_text()
    _, pages, text = compile_pdf(tmp_path, "t")
    assert len(pages) == 1


def test_huge_values_print_in_full_and_the_clean_rows_are_never_a_candidate(runs, tmp_path):
    big = Format(2).text(1e300)
    assert big.startswith("1000000000") and big.endswith(".00") and len(big) == 304
    assert Format(4, 6).text(1.7976931348623157e308).endswith(".0000")
    rows = [Row(f"f{k}", system, {"dnsmos_ovrl": value + 0.1 * k})
            for k in range(6) for system, value in (("clean", 3.5), ("A", 3.0), ("noisy", 2.0))]
    tables = build(rows, [REGISTRY["dnsmos_ovrl"]], ["noisy", "clean", "A"],
                   TableOptions(baseline="noisy", transpose=False))
    tex = tables.latex()
    cells = {row.split(" & ")[0]: row for row in data_rows(tex)}
    assert "\\textbf" in cells["A"] and "\\textbf" not in cells["clean"]
    assert [t.system for t in tables.tests] == ["A"]  # clean is an input, not tested


def test_noisy_rows_take_each_metric_from_the_run_that_has_it(runs, tmp_path):
    """Runs with different metrics: the noisy input's SNR comes from the run that scored
    it, whatever the order of the CSVs."""
    one = run("score", runs / "clean", f"sysD={runs / 'sysA'}", "--noisy", runs / "noisy",
              "-m", "stoi", "--no-cache", "-j", 1, "--csv", tmp_path / "d.csv")
    assert one.exit_code == 0, one.output
    tables = []
    for order in ((tmp_path / "d.csv", runs / "b.csv"), (runs / "b.csv", tmp_path / "d.csv")):
        result = run("report", *order, "--markdown", tmp_path / "t.md", "-m", "stoi,si_snr",
                     "--no-transpose", "--group-by", "")
        assert result.exit_code == 0, result.output
        text = (tmp_path / "t.md").read_text()
        noisy = next(line for line in text.splitlines() if line.startswith("| noisy |"))
        assert "–" not in noisy, noisy  # both metrics of the noisy input
        tables.append(noisy)
    assert tables[0] == tables[1]


def test_captions_that_would_not_compile_are_refused_and_line_breaks_are_spaces(runs,
                                                                                tmp_path):
    a = runs / "a.csv"
    for caption, message in (("50% better", "unescaped '%'"), ("A & B", "unescaped '&'"),
                             ("unbalanced {brace", "braces do not balance")):
        result = run("report", a, "--latex", tmp_path / "t.tex", "--caption", caption)
        assert result.exit_code == 2 and message in result.output, result.output
    result = run("report", a, "--latex", tmp_path / "t.tex", "--caption",
                 "Results on\nthe sample data (50\\%).", "--group-by", "")
    assert result.exit_code == 0, result.output
    assert "\\caption{Results on the sample data (50\\%).}" in (tmp_path / "t.tex").read_text()
    _, pages, text = compile_pdf(tmp_path, "t")
    assert len(pages) == 1 and "50%" in text


def test_report_usage_errors_found_by_review(runs, tmp_path):
    header = (runs / "a.csv").read_text().splitlines()[0]
    (tmp_path / "h.csv").write_text(header + "\n")
    empty = run("report", tmp_path / "h.csv", "--latex", tmp_path / "t.tex")
    assert empty.exit_code == 2 and "no rows" in empty.output
    html_only = run("report", runs / "a.csv", "--latex", tmp_path / "t.tex", "--html-worst", 3)
    assert html_only.exit_code == 2 and "give -o/--output FILE" in html_only.output
    grouped = run("report", runs / "a.csv", "--markdown", tmp_path / "t.md", "--group-by",
                  r"_(?P<snr>\d+)dB")
    plain = run("report", runs / "a.csv", "--markdown", tmp_path / "u.md", "--group-by", "")
    assert grouped.exit_code == plain.exit_code == 0
    assert "### snr=0" in (tmp_path / "t.md").read_text()
    assert "### snr=" not in (tmp_path / "u.md").read_text()
