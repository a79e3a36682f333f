"""`sqeval compare` as a CI gate: no silent pass when nothing (or not everything) could be
compared, system pairing (also within one CSV), signed differences, the Student-t CI
shared with `score`, and the JUnit / Markdown exports. The CSVs are written by hand, so
every expected number is known."""

from __future__ import annotations

import math
import re
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sqeval.cli import app

runner = CliRunner()
N_FILES = 24
# A spread around each difference, summing to zero, so the mean difference is exact.
SPREAD = np.tile([-0.002, 0.0, 0.002], N_FILES // 3)
# The Student-t quantile t(0.975) with 2 degrees of freedom, in closed form (see test_stats).
T_975_2 = 0.95 / math.sqrt(0.04875)


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def text(result) -> str:
    """stdout and stderr as one line of words, so wrapped lines do not split a phrase."""
    return " ".join((result.stdout + " " + result.stderr).split())


def write_run(path, systems: dict, metrics=("pesq_wb", "stoi")):
    """A per-file CSV: ``systems`` maps a system name to {metric: values per file}; NaN
    is written as an empty cell with its reason in the error column."""
    records = []
    for system, values in systems.items():
        for k in range(len(next(iter(values.values())))):
            row = {"file": f"f{k:02d}.wav", "system": system}
            row.update({m: values[m][k] if m in values else math.nan for m in metrics})
            failed = [m for m in metrics if math.isnan(row[m])]
            row["error"] = "; ".join(f"{m}: the metric raised" for m in failed)
            records.append(row)
    pd.DataFrame(records, columns=["file", "system", *metrics, "error"]).to_csv(
        path, index=False, na_rep="")
    return path


def baseline_values():
    rng = np.random.default_rng(3)
    return {"pesq_wb": 2.5 + rng.uniform(-0.5, 0.5, N_FILES),
            "stoi": 0.85 + rng.uniform(-0.05, 0.05, N_FILES)}


def verdict_line(result, system, metric):
    lines = [line for line in result.stdout.splitlines()
             if re.search(rf"\b{re.escape(system)}\b.*\b{metric}\b", line)]
    assert len(lines) == 1, result.stdout
    return lines[0]


# --- no silent pass ---------------------------------------------------------------

def test_no_candidate_cell_scored_fails_the_max_drop(tmp_path):
    base = baseline_values()
    cand = {"pesq_wb": np.full(N_FILES, math.nan), "stoi": base["stoi"]}
    a = write_run(tmp_path / "a.csv", {"enh": base})
    b = write_run(tmp_path / "b.csv", {"enh": cand})
    result = run("compare", a, b, "--max-drop", "pesq_wb=0.1")
    assert result.exit_code == 1, result.output
    line = verdict_line(result, "enh", "pesq_wb")
    assert "FAIL" in line and " ok " not in line
    assert "enh.pesq_wb has no file scored in both (n = 0)" in text(result)
    # stoi is fine and not gated; gating it passes, and pesq_wb still fails
    result = run("compare", a, b, "--max-drop", "pesq_wb=0.1", "--max-drop", "stoi=0.01")
    assert result.exit_code == 1 and "ok" in verdict_line(result, "enh", "stoi")
    # without a --max-drop nothing is gated (exit 0), but the gap is said, not hidden
    result = run("compare", a, b)
    assert result.exit_code == 0
    assert "enh.pesq_wb has no file scored in both (n = 0)" in text(result)


def test_a_renamed_system_fails_instead_of_passing(tmp_path):
    base = baseline_values()
    cand = {"pesq_wb": base["pesq_wb"], "stoi": base["stoi"] - 0.032 + SPREAD}
    noisy = {"pesq_wb": base["pesq_wb"] - 1, "stoi": base["stoi"] - 0.1}
    a = write_run(tmp_path / "a.csv", {"noisy": noisy, "CMGAN": base})
    b = write_run(tmp_path / "b.csv", {"noisy": noisy, "model_v2": cand})
    result = run("compare", a, b, "--max-drop", "stoi=0.01")
    assert result.exit_code == 1, result.output
    assert "CMGAN.stoi is only in the baseline (24 rows)" in text(result)
    assert "model_v2.stoi is only in the candidate (24 rows)" in text(result)
    assert "ok" not in verdict_line(result, "CMGAN", "stoi")
    assert "ok" in verdict_line(result, "noisy", "stoi")
    # a whole system on one side is said once, with the way to pair it
    assert "--baseline-system" in text(result)
    assert "f00.wav [CMGAN]" not in result.stderr


def test_baseline_and_candidate_system_pair_the_renamed_systems(tmp_path):
    base = baseline_values()
    cand = {"pesq_wb": base["pesq_wb"], "stoi": base["stoi"] - 0.032 + SPREAD}
    a = write_run(tmp_path / "a.csv", {"CMGAN": base})
    b = write_run(tmp_path / "b.csv", {"model_v2": cand})
    for pairing in (["--baseline-system", "CMGAN", "--candidate-system", "model_v2"],
                    ["--system", "CMGAN=model_v2"]):
        result = run("compare", a, b, *pairing, "--max-drop", "stoi=0.01")
        assert result.exit_code == 1, result.output
        assert "CMGAN → model_v2.stoi dropped by 0.032 (allowed 0.01)" in text(result)
        assert verdict_line(result, "CMGAN → model_v2", "stoi").count("-0.032") == 1
        result = run("compare", a, b, *pairing, "--max-drop", "stoi=0.05")
        assert result.exit_code == 0, result.output
        assert "ok" in verdict_line(result, "CMGAN → model_v2", "stoi")


def test_two_systems_of_one_csv_with_the_student_t_ci(tmp_path):
    # Three files; enh − noisy = 0.01, 0.02, 0.04: mean 7/300, sample variance 7/30000,
    # so the half-width of the CI is t(0.975, 2)·√(7/30000 / 3) = 0.0380 (see test_stats).
    noisy = {"pesq_wb": [1.0, 1.5, 2.0], "stoi": [0.7, 0.8, 0.9]}
    enh = {"pesq_wb": [1.2, 1.5, 2.1], "stoi": [0.71, 0.82, 0.94]}
    one = write_run(tmp_path / "one.csv", {"noisy": noisy, "enh": enh})
    result = run("compare", one, "--baseline-system", "noisy", "--candidate-system", "enh")
    assert result.exit_code == 0, result.output
    mean, half = 7 / 300, T_975_2 * math.sqrt(7 / 30000 / 3)
    line = verdict_line(result, "noisy → enh", "stoi")
    assert f"+{mean:.3f} [{mean - half:+.3f}, {mean + half:+.3f}]" in line
    assert "+0.023 [-0.015, +0.061]" in line
    assert "Student-t" in text(result)
    from sqeval.compare import SystemPair, compare, read_results

    frame = read_results(one)
    (pesq, stoi), _, _ = compare(frame, frame, [SystemPair("noisy", "enh")])
    assert stoi.n == 3 and stoi.mean == pytest.approx(mean, rel=1e-12)
    assert stoi.ci_low == pytest.approx(mean - half, rel=1e-9)
    assert stoi.ci_high == pytest.approx(mean + half, rel=1e-9)


def test_usage_errors_say_what_is_there(tmp_path):
    base = baseline_values()
    write_run(tmp_path / "a.csv", {"CMGAN": base, "noisy": base})
    write_run(tmp_path / "b.csv", {"model_v2": base}, metrics=("pesq_wb",))
    a, b = "a.csv", "b.csv"  # as written on the command line, in the test's own folder
    result = run("compare", a, b, "--baseline-system", "nope", "--candidate-system", "model_v2")
    assert result.exit_code == 2
    assert "--baseline-system nope: a.csv has no system 'nope'; its systems: CMGAN, noisy" \
        in text(result)
    result = run("compare", a, b, "--system", "CMGAN=v3")
    assert result.exit_code == 2
    assert "b.csv has no system 'v3'; its systems: model_v2" in text(result)
    result = run("compare", a, b, "--system", "CMGAN")
    assert result.exit_code == 2 and "expected BASELINE=CANDIDATE" in text(result)
    result = run("compare", a)
    assert result.exit_code == 2 and "--candidate-system" in text(result)
    result = run("compare", a, "--baseline-system", "CMGAN")
    assert result.exit_code == 2 and "CMGAN with itself" in text(result)
    result = run("compare", a, b, "--max-drop", "stoi=0.01", "--system", "CMGAN=model_v2")
    assert result.exit_code == 2 and "--max-drop stoi: b.csv has no column stoi" in text(result)
    for bad in ("stoi=nan", "stoi=inf", "stoi=x"):
        result = run("compare", a, a, "--max-drop", bad)
        assert result.exit_code == 2 and "a finite number" in text(result)
    write_run(tmp_path / "c.csv", {"CMGAN": base}, metrics=("stoi",))
    result = run("compare", b, "c.csv")
    assert result.exit_code == 2
    assert "no metric to compare: b.csv has pesq_wb, c.csv has stoi" in text(result)
    result = run("compare", a, b)  # stoi is not gated: compared where it can be, and said
    assert result.exit_code == 0 and "stoi: only in a.csv (not compared)" in text(result)
    result = run("compare", a, a, "--junit", tmp_path / "no" / "such" / "r.xml")
    assert result.exit_code == 2 and "does not exist" in text(result)


def test_a_candidate_that_fails_on_half_the_files_fails_even_where_better(tmp_path):
    base = baseline_values()
    pesq = base["pesq_wb"] + 0.2
    pesq[::2] = math.nan
    a = write_run(tmp_path / "a.csv", {"enh": base})
    b = write_run(tmp_path / "b.csv", {"enh": {"pesq_wb": pesq, "stoi": base["stoi"]}})
    result = run("compare", a, b, "--max-drop", "pesq_wb=0.1")
    assert result.exit_code == 1, result.output
    assert ("enh.pesq_wb failed in 12 candidate rows where the baseline has a value"
            in text(result))
    line = verdict_line(result, "enh", "pesq_wb")
    assert "+0.200" in line and "FAIL" in line and re.search(r"\b12\b.*\b12\b", line)


def test_partial_n_is_computed_over_the_rows_scored_in_both(tmp_path):
    base = baseline_values()
    pesq_b, pesq_c = base["pesq_wb"].copy(), base["pesq_wb"] + 0.031 + SPREAD
    pesq_b[:3] = pesq_c[:3] = math.nan  # failed in both: not compared, not a failure
    pesq_b[3:6] = math.nan  # the baseline failed where the candidate scored: not compared
    a = write_run(tmp_path / "a.csv", {"enh": {"pesq_wb": pesq_b, "stoi": base["stoi"]}})
    b = write_run(tmp_path / "b.csv", {"enh": {"pesq_wb": pesq_c, "stoi": base["stoi"]}})
    result = run("compare", a, b, "--max-drop", "pesq_wb=0.1")
    assert result.exit_code == 0, result.output
    line = verdict_line(result, "enh", "pesq_wb")
    assert re.search(r"\b18\b", line) and "+0.031 [" in line and "ok" in line
    assert "enh.pesq_wb: 3 baseline rows have no value where the candidate has one" \
        in text(result)
    from sqeval.compare import compare, read_results

    (pesq, _), _, _ = compare(read_results(a), read_results(b))
    kept = slice(6, None)
    assert pesq.n == 18 and pesq.mean == pytest.approx(np.mean((pesq_c - pesq_b)[kept]))
    assert (pesq.candidate_failed, pesq.baseline_failed) == (0, 3)


def test_a_candidate_without_rows_fails_and_two_empty_csvs_are_an_input_error(tmp_path):
    a = write_run(tmp_path / "a.csv", {"enh": baseline_values()})
    empty = tmp_path / "empty.csv"
    empty.write_text("file,system,pesq_wb,stoi,error\n")
    result = run("compare", a, empty, "--max-drop", "pesq_wb=0.1")
    assert result.exit_code == 1, result.output
    assert "enh.pesq_wb is only in the baseline (24 rows)" in text(result)
    result = run("compare", empty, empty, "--max-drop", "pesq_wb=0.1")
    assert result.exit_code == 2 and "no rows to compare" in text(result)


# --- exports ----------------------------------------------------------------------

def test_junit_and_markdown(tmp_path):
    base = baseline_values()
    cand = {"pesq_wb": base["pesq_wb"] + 0.031 + SPREAD, "stoi": base["stoi"] - 0.032 + SPREAD}
    a = write_run(tmp_path / "a.csv", {"enh": base, "old": base})
    b = write_run(tmp_path / "b.csv", {"enh": cand, "new": cand})
    junit, markdown = tmp_path / "r.xml", tmp_path / "r.md"
    result = run("compare", a, b, "--max-drop", "stoi=0.01", "--max-drop", "pesq_wb=0.5",
                 "--junit", junit, "--markdown", markdown)
    assert result.exit_code == 1, result.output
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite.get("name") == "sqeval compare"
    cases = {(c.get("classname"), c.get("name")): c.find("failure")
             for c in suite.iter("testcase")}
    assert sorted(cases) == sorted((f"sqeval.{s}", f"{m} max drop {v}") for s in
                                   ("enh", "old", "new") for m, v in
                                   (("pesq_wb", "0.5"), ("stoi", "0.01")))
    assert suite.get("tests") == "6" and suite.get("failures") == "5"
    assert cases["sqeval.enh", "pesq_wb max drop 0.5"] is None
    assert cases["sqeval.enh", "stoi max drop 0.01"].get("message") == \
        "dropped by 0.032 (allowed 0.01)"
    assert cases["sqeval.old", "stoi max drop 0.01"].get("message") == \
        "is only in the baseline (24 rows)"
    md = markdown.read_text()
    assert "| system | metric | n | failed | baseline | candidate | Δ mean [95% CI] |" in md
    row = next(line for line in md.splitlines() if line.startswith("| enh | stoi"))
    assert "-0.032 [" in row and "**FAIL**" in row and "dropped by 0.032" in row
    row = next(line for line in md.splitlines() if line.startswith("| enh | pesq_wb"))
    assert "+0.031 [" in row and "ok" in row
    assert "Student-t" in md


# --- fail closed: coverage, provenance, duplicates (issue 24) --------------------------

def test_a_candidate_that_covers_fewer_files_fails_unless_allowed(tmp_path):
    base = baseline_values()
    write_run(tmp_path / "base.csv", {"m": base})
    subset = {metric: values[:5] for metric, values in base.items()}  # 5 of 24, unchanged
    write_run(tmp_path / "cand.csv", {"m": subset})
    result = run("compare", tmp_path / "base.csv", tmp_path / "cand.csv",
                 "--max-drop", "pesq_wb=0.05")
    assert result.exit_code == 1, text(result)
    assert "lacks 19 files of the baseline in the candidate (allowed: 0" in text(result)
    assert run("compare", tmp_path / "base.csv", tmp_path / "cand.csv", "--max-drop",
               "pesq_wb=0.05", "--allow-fewer", "19").exit_code == 0
    assert run("compare", tmp_path / "base.csv", tmp_path / "cand.csv", "--max-drop",
               "pesq_wb=0.05", "--allow-fewer", "18").exit_code == 1


def test_runs_made_differently_are_refused_and_say_what_differs(tmp_path):
    import json

    base = baseline_values()
    for name in ("base", "cand"):
        write_run(tmp_path / f"{name}.csv", {"m": base})
    meta = {"sqeval_version": "0.6.0", "rate_policy": "P", "channels": {"channel": None,
            "mix": False}, "align": None, "max_length_diff": 0.1, "models": {},
            "versions": {"pesq": "0.0.4", "pystoi": "0.4.1"}}
    (tmp_path / "base.csv.meta.json").write_text(json.dumps(meta))
    args = ["compare", tmp_path / "base.csv", tmp_path / "cand.csv", "--max-drop", "stoi=0.01"]
    alone = run(*args)  # the candidate has no provenance: nothing says they were made alike
    assert alone.exit_code == 2 and "cand.csv.meta.json: none" in text(alone)
    (tmp_path / "cand.csv.meta.json").write_text(json.dumps(
        {**meta, "align": 0.5, "versions": {"pesq": "0.0.5", "pystoi": "0.4.1"}}))
    differ = run(*args)
    assert differ.exit_code == 2, text(differ)
    assert "align: None → 0.5" in text(differ) and "pesq: 0.0.4 → 0.0.5" in text(differ)
    assert run(*args, "--ignore-provenance").exit_code == 0
    (tmp_path / "cand.csv.meta.json").write_text(json.dumps({**meta, "time": "later"}))
    assert run(*args).exit_code == 0  # the time and the command do not change numbers
    (tmp_path / "cand.csv.meta.json").write_text(json.dumps({**meta, "versions": "damaged"}))
    damaged = run(*args)  # a damaged field is a difference, never a crash
    assert damaged.exit_code == 2 and "pesq: 0.0.4 → None" in text(damaged)
    (tmp_path / "cand.csv.meta.json").write_text(json.dumps({**meta, "partial": True}))
    partial = run(*args)
    assert partial.exit_code == 2 and "the candidate is a partial run" in text(partial)


def test_a_row_and_its_formula_guarded_twin_are_a_duplicate(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("file,system,stoi,error\n'-5dB.wav,m,0.9,\n-5dB.wav,m,0.1,\n")
    result = run("compare", path, path, "--baseline-system", "m", "--candidate-system", "m")
    assert result.exit_code == 2 and "('-5dB.wav', 'm') appears twice" in text(result)


def test_runs_against_other_references_are_refused(tmp_path, golden):
    from conftest import write

    s, e, rate, _ = golden
    for name, reference in (("one", s), ("two", 0.5 * s)):  # same names, other content
        write(tmp_path / name / "clean" / "a.wav", reference, rate)
        write(tmp_path / name / "enh" / "a.wav", e, rate)
        assert run("score", tmp_path / name / "clean", tmp_path / name / "enh", "-m", "snr",
                   "--no-cache", "--csv", tmp_path / f"{name}.csv").exit_code == 0
    result = run("compare", tmp_path / "one.csv", tmp_path / "two.csv", "--max-drop",
                 "snr=100")
    assert result.exit_code == 2
    assert "the clean reference of 1 file differs in content (e.g. 'a.wav')" in text(result)
    same = run("compare", tmp_path / "one.csv", tmp_path / "one.csv", "--max-drop", "snr=0")
    assert same.exit_code == 0, text(same)  # the same references: compared
