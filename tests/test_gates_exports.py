"""Quality gates, summary exports, provenance, `sqeval compare` and `sqeval plot`."""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from xml.etree import ElementTree

import numpy as np
import pytest
from typer.testing import CliRunner

from sqeval.cli import app
from sqeval.gates import GateError, merge_gates, parse_gate

from conftest import read_csv, write

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture()
def corpus(tmp_path, golden):
    """3 files at two SNRs: clean, noisy (pair L noise), enhanced (a third of it)."""
    s, e, rate, _ = golden
    for name, scale in (("a_0dB", 1.0), ("b_0dB", 0.8), ("c_10dB", 0.3)):
        noise = scale * (e - s)
        write(tmp_path / "clean" / f"{name}.wav", s, rate, "DOUBLE")
        write(tmp_path / "noisy" / f"{name}.wav", s + noise, rate, "DOUBLE")
        write(tmp_path / "enh" / f"{name}.wav", s + noise / 3, rate, "DOUBLE")
    return tmp_path


def score(corpus, *args):
    return run("score", corpus / "clean", corpus / "enh", "--noisy", corpus / "noisy",
               "--metrics", "si_snr,pesq_wb,stoi", "--jobs", 1, *args)


def observed(corpus, metric):
    out = corpus / "o.csv"
    assert score(corpus, "--csv", out).exit_code == 0
    rows = list(csv.DictReader(open(out)))
    return [float(r[metric]) for r in rows if r["system"] == "enh"], \
           [float(r[metric]) for r in rows if r["system"] == "noisy"]


# --- gates ------------------------------------------------------------------------

def test_gate_grammar_and_statistics():
    g = parse_gate("  enh : delta.stoi.p90 < -1e-2 ")
    assert (g.system, g.delta, g.metric, g.stat, g.op, g.threshold) == (
        "enh", True, "stoi", "p90", "<", -0.01)
    assert parse_gate("pesq_wb>=3").stat == "mean"
    for bad, message in (("pesq_wb=>3", "cannot read"), ("pesq>=3", "unknown metric"),
                         ("stoi.p101>=1", "outside 0 … 100")):
        with pytest.raises(GateError, match=message):
            parse_gate(bad)
    # the statistics themselves: tests/test_stats.py


def test_gate_above_the_mean_fails_below_passes(corpus):
    enh, noisy = observed(corpus, "pesq_wb")
    mean = float(np.mean(enh))
    fail = score(corpus, "--gate", f"pesq_wb>={mean + 0.01:.4f}")
    assert fail.exit_code == 1
    table = " ".join(fail.stdout.split())
    assert "quality gates" in table and "FAIL" in table and f"{mean:.3f}" in table
    assert score(corpus, "--gate", f"pesq_wb>={mean - 0.01:.4f}").exit_code == 0
    delta = float(np.mean(np.subtract(enh, noisy)))
    assert score(corpus, "--gate", f"delta.pesq_wb>={delta - 0.001:.4f}").exit_code == 0
    assert score(corpus, "--gate", f"delta.pesq_wb>={delta + 0.001:.4f}").exit_code == 1
    median = float(np.median(enh))
    assert score(corpus, "--gate", f"enh:pesq_wb.median<={median + 1e-4:.5f}").exit_code == 0
    named = score(corpus, "--gate", "nobody:pesq_wb>=1")  # refused before scoring
    assert named.exit_code == 2 and "no system named 'nobody'" in named.stderr


def test_missing_file_fails_a_gated_run_unless_allowed(corpus):
    (corpus / "enh" / "b_0dB.wav").unlink()
    assert score(corpus).exit_code == 3  # no gate: incomplete
    gated = score(corpus, "--gate", "pesq_wb>=1.0")
    assert gated.exit_code == 1 and "FAIL: 0 of 1 gate checks pass; 1 file not scored" in (
        gated.stderr)
    assert score(corpus, "--gate", "pesq_wb>=1.0", "--allow-missing").exit_code == 0
    assert score(corpus, "--gate", "pesq_wb>=4.5", "--allow-missing").exit_code == 1


def test_gates_from_config_files_and_the_command_line_wins(corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    (corpus / "sqeval.toml").write_text('gates = ["pesq_wb>=4.5"]\n')
    assert score(corpus).exit_code == 1
    assert score(corpus, "--gate", "pesq_wb>=1.0").exit_code == 0  # replaces the >= gate
    (corpus / "sqeval.toml").unlink()
    sub = corpus / "project" / "deeper"
    sub.mkdir(parents=True)
    (corpus / "project" / "pyproject.toml").write_text(
        '[tool.sqeval]\ngates = ["stoi>=0.99"]\nallow_missing = true\n')
    monkeypatch.chdir(sub)
    result = score(corpus)
    assert result.exit_code == 1 and "gates from" in result.stderr
    (corpus / "project" / "pyproject.toml").write_text('[tool.sqeval]\ngates = "stoi>=1"\n')
    assert score(corpus).exit_code == 2


def test_merge_keeps_other_directions_and_appends_new_gates():
    configured = [parse_gate("stoi>=0.9"), parse_gate("stoi<=0.99"), parse_gate("sdr>=1")]
    merged = merge_gates(configured, [parse_gate("stoi>=0.5"), parse_gate("snr>=0")])
    assert [g.text for g in merged] == ["stoi>=0.5", "stoi<=0.99", "sdr>=1", "snr>=0"]


# --- exports ------------------------------------------------------------------------

def test_latex_and_markdown_numbers_equal_the_summary_csv(corpus):
    summary, tex, md = corpus / "s.csv", corpus / "t.tex", corpus / "t.md"
    result = score(corpus, "--summary-csv", summary, "--latex", tex, "--markdown", md,
                   "--group-by", r"_(?P<snr>\d+)dB")
    assert result.exit_code == 0, result.output
    frame = read_csv(summary, keep_default_na=False)
    assert list(frame.columns) == ["snr", "system", "metric", "mean", "std", "median",
                                   "ci95_low", "ci95_high", "n", "n_failed", "delta_mean"]
    overall = frame[frame["snr"] == ""]
    from sqeval.metrics import REGISTRY
    from sqeval.report.paper import Format

    def expected(system, metric):  # the paper tables' fixed decimals per metric
        row = overall[(overall.system == system) & (overall.metric == metric)].iloc[0]
        text = Format(REGISTRY[metric].decimals).text
        return text(float(row["mean"])), text(float(row["ci95_high"]) - float(row["mean"]))

    tex_text, md_text = tex.read_text(), md.read_text()
    first_table = tex_text.split("\\end{tabular}")[0]
    for system in ("noisy", "enh"):
        tex_row = next(line for line in first_table.splitlines() if line.startswith(system + " &"))
        md_row = next(line for line in md_text.split("### snr=")[0].splitlines()
                      if line.startswith(f"| {system} |"))
        for metric in ("si_snr", "pesq_wb", "stoi"):
            mean, half = expected(system, metric)
            assert f"{mean} $\\pm$ {half}" in re.sub(r"\\textbf\{([^}]*)\}", r"\1", tex_row)
            assert f"{mean} ± {half}" in md_row.replace("**", "")
    assert "\\textbf{" in first_table and "\\toprule" in tex_text and "$\\uparrow$" in tex_text
    assert set(frame["snr"]) == {"", "0", "10"}  # overall + one section per condition
    assert "### snr=0" in md_text and "### snr=10" in md_text
    grouped = frame[(frame.snr == "10") & (frame.system == "enh") & (frame.metric == "stoi")]
    assert int(grouped["n"].iloc[0]) == 1


def test_junit_parses_with_one_case_per_gate_and_system(tmp_path, corpus):
    write(corpus / "enh2" / "a_0dB.wav", *sf_read(corpus / "enh" / "a_0dB.wav"))
    junit = corpus / "g.xml"
    result = run("score", corpus / "clean", corpus / "enh", corpus / "enh2", "--noisy",
                 corpus / "noisy", "--metrics", "pesq_wb,stoi", "--jobs", 1, "--junit", junit,
                 "--gate", "pesq_wb>=1.0", "--gate", "stoi.median>=0.999", "--allow-missing")
    assert result.exit_code == 1
    suites = {s.get("name"): s for s in ElementTree.parse(junit).getroot()}
    cases = suites["sqeval gates"].findall("testcase")
    assert sorted((c.get("name"), c.get("classname")) for c in cases) == sorted(
        (g, f"sqeval.{s}") for g in ("pesq_wb>=1.0", "stoi.median>=0.999")
        for s in ("enh", "enh2"))
    assert suites["sqeval gates"].get("failures") == str(
        sum(c.find("failure") is not None for c in cases))
    assert all(c.find("failure") is not None for c in cases if "stoi" in c.get("name"))


def sf_read(path):
    import soundfile as sf

    samples, rate = sf.read(path)
    return samples, rate


def test_provenance_beside_every_csv_and_in_json(corpus):
    out, summary, js = corpus / "o.csv", corpus / "s.csv", corpus / "o.json"
    assert score(corpus, "--csv", out, "--summary-csv", summary, "--json", js).exit_code == 0
    for meta in (json.loads((corpus / "o.csv.meta.json").read_text()),
                 json.loads((corpus / "s.csv.meta.json").read_text()),
                 json.loads(js.read_text())["provenance"]):
        assert set(meta["versions"]) >= {"pesq", "pystoi", "numpy", "scipy"}
        assert meta["versions"]["numpy"] == np.__version__
        assert "resample_poly" in meta["rate_policy"] and re.match(r"\d{4}-\d\d-\d\dT", meta["time"])
        assert "command" in meta


def test_plain_output_when_no_color(corpus, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    result = score(corpus)
    assert "\x1b[" not in result.stdout and "+--" in result.stdout


# --- compare -----------------------------------------------------------------------

@pytest.fixture()
def results_csv(corpus):
    out = corpus / "base.csv"
    assert score(corpus, "--csv", out).exit_code == 0
    return out


def test_compare_with_itself_reports_zero_and_exits_0(results_csv):
    result = run("compare", results_csv, results_csv, "--max-drop", "pesq_wb=0.05")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "pesq_wb" in line]
    assert len(rows) == 2 and all("0.000 [0.000, 0.000]" in line for line in rows)


def test_compare_candidate_worse_in_pesq_exits_1(results_csv, tmp_path):
    frame = read_csv(results_csv)
    frame["pesq_wb"] -= 0.1
    frame = frame[~((frame.file == "c_10dB.wav") & (frame.system == "enh"))]
    worse = tmp_path / "worse.csv"
    frame.to_csv(worse, index=False)
    # a hand-edited CSV: no .meta.json says how it was made (--ignore-provenance), and it
    # lacks one of the baseline's files (--allow-fewer 1)
    result = run("compare", results_csv, worse, "--max-drop", "pesq_wb=0.05",
                 "--ignore-provenance")
    assert result.exit_code == 1
    assert "enh.pesq_wb dropped by 0.100" in result.stderr
    assert "1 row only in the baseline" in result.stderr and "c_10dB.wav [enh]" in result.stderr
    assert "lacks 1 file of the baseline" in " ".join(result.stderr.split())
    args = [results_csv, worse, "--max-drop", "pesq_wb=0.2", "--ignore-provenance"]
    assert run("compare", *args).exit_code == 1  # the file it lacks
    assert run("compare", *args, "--allow-fewer", "1").exit_code == 0
    assert run("compare", results_csv, worse, "--max-drop", "pesq_wb=0.2").exit_code == 2
    # lower-is-better metrics drop when they rise: direction from the registry
    from sqeval.compare import Difference

    assert Difference("s", "mc_mse", 3, 1, 1.2, 0.2, 0, 0, 0).drop() == pytest.approx(0.2)


def test_score_and_compare_give_the_same_delta_ci_and_say_how(corpus, tmp_path):
    out, data = tmp_path / "run.csv", tmp_path / "run.json"
    result = score(corpus, "--csv", out, "--json", data)
    assert result.exit_code == 0 and "95% CI: Student-t" in result.stdout
    frame = read_csv(out)
    noisy, enh = tmp_path / "noisy.csv", tmp_path / "enh.csv"
    frame[frame.system == "noisy"].assign(system="enh").to_csv(noisy, index=False)
    frame[frame.system == "enh"].to_csv(enh, index=False)
    result = run("compare", noisy, enh)
    assert result.exit_code == 0 and "95% CI: Student-t" in " ".join(result.stdout.split())
    from sqeval.compare import compare, read_results

    differences, _, _ = compare(read_results(noisy), read_results(enh))
    summary = {item["metric"]: item["delta_over_noisy"] for item in
               json.loads(data.read_text())["summary"] if item["system"] == "enh"}
    for d in differences:  # system − noisy in score is candidate − baseline here
        assert (d.n, d.mean, d.ci_low, d.ci_high) == tuple(
            summary[d.metric][k] for k in ("n", "mean", "ci_low", "ci_high"))


def test_compare_usage_errors(results_csv, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert "expected the per-file CSV" in " ".join(run("compare", bad, results_csv).stderr.split())
    assert run("compare", results_csv, results_csv, "--max-drop", "pesq=1").exit_code == 2
    assert run("compare", results_csv, results_csv, "--max-drop", "snr=1").exit_code == 2


# --- plot --------------------------------------------------------------------------

def test_plot_writes_a_figure(results_csv, tmp_path):
    for suffix, magic in ((".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")):
        figure = tmp_path / f"fig{suffix}"
        result = run("plot", results_csv, "-o", figure, "--metrics", "pesq_wb,stoi")
        assert result.exit_code == 0, result.output
        assert figure.read_bytes().startswith(magic)
    assert run("plot", results_csv, "-o", tmp_path / "f.png", "--group-by",
               r"_(?P<snr>\d+)dB").exit_code == 0


def test_plot_without_matplotlib_says_which_extra(results_csv, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    result = run("plot", results_csv, "-o", tmp_path / "f.png")
    assert result.exit_code == 2
    assert "pip install '.[plot]'" in " ".join(result.stderr.split())


def test_plot_input_errors_exit_2_with_the_reason(tmp_path):
    """A CSV of only its header, a --group-by that is not a regex or whose 'snr' is not a
    number, values too large for an axis, an output that cannot be written: the user's
    input, so exit 2 and one line saying why, never exit 4 (a bug). A system name that
    looks like mathtext is plotted as written."""
    header = tmp_path / "header.csv"
    header.write_text("file,system,snr,error\n")
    one = tmp_path / "one.csv"
    one.write_text("file,system,snr,error\na.wav,noisy,1,\na.wav,s,2,\n")
    huge = tmp_path / "huge.csv"
    huge.write_text("file,system,snr,error\na.wav,noisy,1e308,\na.wav,s,-1e308,\n")
    os.symlink("/dev/full", tmp_path / "full.png")
    cases = [((header, "-o", tmp_path / "p.png"), "holds no rows"),
             ((one, "-o", tmp_path / "p.png", "--group-by", "("),
              "is not a valid regular expression"),
             ((one, "-o", tmp_path / "p.png", "--group-by", "(?P<snr>a)"),
              "its group 'snr' matches 'a' in 'a.wav', not a number"),
             ((huge, "-o", tmp_path / "p.png"), "beyond the ±1e+300 that can be plotted"),
             ((one, "-o", tmp_path / "full.png"), "could not write")]
    for args, message in cases:
        result = run("plot", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.stderr.split()), (args, result.stderr)
    assert run("plot", one, "-o", tmp_path / "p.png").exit_code == 0
    math = tmp_path / "math.csv"  # a system name that matplotlib would parse as mathtext
    math.write_text("file,system,snr,error\na.wav,noisy,1,\na.wav,$\\foo{$,2,\n")
    assert run("plot", math, "-o", tmp_path / "m.png").exit_code == 0


def test_names_with_square_brackets_are_printed_as_written(tmp_path, golden):
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "x[1].wav", s, rate)
    write(tmp_path / "out" / "x[1].wav", e, rate)
    result = run("score", tmp_path / "clean", f"[bold]sys={tmp_path / 'out'}", "--metrics",
                 "snr", "--jobs", 1, "--gate", "[bold]sys:snr>=99")
    assert result.exit_code == 1
    assert "[bold]sys (1 file)" in result.stdout and "[bold]sys:snr>=99" in result.stdout
