"""sqeval as a CI gate under hostile conditions: exit codes (4 for a bug, never 1 for the
unexpected), everything validated before scoring, no output that destroys a file, strict
JSON, honest values, and the terminal and spreadsheet footguns."""

from __future__ import annotations

import csv
import json
import math
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import sqeval.cli as cli
from sqeval.cli import app
from sqeval.cli import score as score_module

from conftest import write

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def strict_load(path: Path):
    """json.loads refusing NaN and Infinity, which are not JSON."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def read_rows(path: Path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture()
def folders(tmp_path, golden):
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s, rate)
    write(tmp_path / "enh" / "a.wav", s + (e - s) / 3, rate)
    return tmp_path


# Exit codes -----------------------------------------------------------------------------

def test_a_bug_exits_4_with_one_line_and_the_traceback_only_with_debug(folders, monkeypatch,
                                                                       capsys):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(score_module, "plan", broken)
    command = ["score", str(folders / "clean"), str(folders / "enh")]
    assert cli.run(command) == 4
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: a bug" in err and "--debug" in err
    assert "Traceback" not in err
    assert cli.run(["--debug", *command]) == 4
    assert "Traceback" in capsys.readouterr().err


def test_usage_errors_exit_2_and_a_closed_stdout_is_not_a_gate_failure(folders, capsys):
    assert cli.run(["score", "--no-such-option"]) == 2
    assert cli.run(["score", str(folders / "nowhere"), str(folders / "enh")]) == 2
    assert cli.run([]) == 2  # help, as click does without a command
    # the reader of stdout is gone (`sqeval metrics | head -0`)
    process = subprocess.Popen([sys.executable, "-m", "sqeval", "metrics"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 141, err  # 128 + SIGPIPE, as a shell reports it; never 1
    assert b"Traceback" not in err


# Validation before scoring --------------------------------------------------------------

def test_a_gate_on_a_metric_not_computed_is_refused_before_scoring(folders):
    result = run("score", folders / "clean", folders / "enh", "-m", "snr",
                 "--gate", "stoi>=0.9", "--csv", folders / "o.csv")
    assert result.exit_code == 2
    assert "needs stoi" in result.stderr and "--metrics snr,stoi" in result.stderr
    assert not (folders / "o.csv").exists()  # nothing was scored
    (folders / "sqeval.toml").write_text('gates = ["pesq_wb>=3"]\n')
    result = run("score", folders / "clean", folders / "enh", "-m", "snr")
    assert result.exit_code == 2 and "needs pesq_wb" in result.stderr
    (folders / "sqeval.toml").unlink()
    result = run("score", folders / "clean", folders / "enh", "-m", "snr",
                 "--gate", "delta.snr>=1")
    assert result.exit_code == 2 and "--noisy" in result.stderr


@pytest.mark.parametrize("option", [
    ["--align", "--max-delay", "inf"], ["--max-delay", "inf"], ["--timeout", "inf"],
    ["--timeout", "nan"], ["--align", "--max-delay=-1"], ["--align", "--max-delay", "nan"],
])
def test_a_number_option_that_is_not_finite_is_refused_before_scoring(folders, option):
    """--max-delay inf once made every file fail in its worker (OverflowError), and then
    the gate failed: exit 1 for a usage error."""
    result = run("score", folders / "clean", folders / "enh", "-m", "snr", *option,
                 "--gate", "snr>=-100", "--csv", folders / "o.csv")
    assert result.exit_code == 2, result.output
    named = next(o.split("=")[0] for o in option if o.startswith(("--max", "--time")))
    assert named in result.stderr  # the option is named
    assert not (folders / "o.csv").exists()  # nothing was scored


@pytest.mark.parametrize("arguments", [
    dict(align=True, max_delay=math.inf), dict(max_delay=math.nan), dict(max_delay=-0.1),
    dict(max_delay="0.5"), dict(max_delay=True), dict(timeout=math.inf),
    dict(timeout=math.nan), dict(timeout=0), dict(timeout=-1), dict(channel=-1),
    dict(channel=0.5),
])
def test_the_api_refuses_the_same_numbers_before_scoring(folders, arguments):
    import sqeval
    from sqeval.api import UsageError

    with pytest.raises(UsageError, match="--max-delay|--timeout|--channel"):
        sqeval.score(folders / "clean", folders / "enh", metrics="snr", jobs=1, **arguments)


def test_a_gate_on_the_clean_row_with_an_intrusive_metric_is_refused_before_scoring(folders):
    """The clean references scored against themselves have every intrusive metric n/a: the
    gate used to fail 'no file scored' (exit 1) after scoring the whole run."""
    result = run("score", folders / "clean", folders / "enh", "-m", "snr,dnsmos_ovrl",
                 "--gate", "clean:snr>=0", "--csv", folders / "o.csv")
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "'clean:snr>=0'" in message and "non-intrusive" in message
    assert "clean:dnsmos_ovrl>=3" in message  # the gate that does work
    assert not (folders / "o.csv").exists()
    from sqeval.gates import check_gate_targets, parse_gate

    systems = ["clean", "enh"]
    check_gate_targets([parse_gate("clean:dnsmos_ovrl>=3")], ["snr", "dnsmos_ovrl"], systems)
    for text in ("clean:delta.snr>=0", "clean:stoi.p10>=0.9"):
        with pytest.raises(ValueError, match="only the non-intrusive metrics"):
            check_gate_targets([parse_gate(text)], ["snr", "stoi", "dnsmos_ovrl"],
                               [*systems, "noisy"])


@pytest.mark.parametrize("text, words", [
    ('gate = ["snr>=1"]\n', ["unknown key 'gate'", "did you mean 'gates'"]),
    ("allow-missing = true\n", ["unknown key 'allow-missing'", "'allow_missing'"]),
    ('[sqeval]\ngates = ["snr>=1"]\n', ["unknown key 'sqeval'"]),
    ('gates = "snr>=1"\n', ["'gates' must be a list"]),
    ('allow_missing = "yes"\n', ["'allow_missing' must be true or false"]),
    ('gates = ["snr=>1"]\n', ["cannot read the gate"]),
])
def test_a_config_file_that_does_not_follow_the_schema_exits_2_naming_key_and_file(
        folders, text, words):
    (folders / "sqeval.toml").write_text(text)
    result = run("score", folders / "clean", folders / "enh", "-m", "snr")
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "sqeval.toml" in message
    for word in words:
        assert word in message


def test_a_typo_under_tool_sqeval_in_pyproject_is_refused(folders):
    (folders / "pyproject.toml").write_text('[tool.sqeval]\ngate = ["snr>=100"]\n')
    result = run("score", folders / "clean", folders / "enh", "-m", "snr")
    assert result.exit_code == 2 and "[tool.sqeval]" in result.stderr


@pytest.mark.parametrize("text, words", [
    ("tool = 5\n", ["'tool' must be a table", "got an integer"]),
    ('tool = "sqeval"\n', ["'tool' must be a table", "got a string"]),
    ('tool = ["sqeval"]\n', ["'tool' must be a table", "got an array"]),
    ("[tool]\nsqeval = 5\n", ["'tool.sqeval' must be a table", "got an integer"]),
    ('[[tool.sqeval]]\ngates = ["snr>=1"]\n', ["'tool.sqeval' must be a table"]),
    ("[tool.sqeval]\ngates = [1]\n", ["[tool.sqeval]", "list of strings", "an integer"]),
    ('[tool.sqeval]\ngates = [["snr>=1"]]\n', ["list of strings", "an array"]),
    ('[tool.sqeval]\ngates = [{a = "snr>=1"}]\n', ["list of strings", "a table"]),
    ("[tool.sqeval]\ngates = {a = 1}\n", ["'gates' must be a list", "a table"]),
    ("[tool.sqeval]\nallow_missing = 1\n", ["'allow_missing' must be true or false"]),
    ("[tool.sqeval]\nallow_missing = [true]\n", ["'allow_missing' must be true or false"]),
    ("[tool.sqeval\n", ["not valid TOML"]),
    (b"[tool.sqeval]\ngates = ['\xff']\n", ["not valid TOML"]),
])
def test_a_pyproject_of_the_wrong_shape_exits_2_naming_the_file(folders, monkeypatch, text,
                                                               words):
    """Wrong types anywhere on the way to [tool.sqeval] were exit 4 (TypeError,
    AttributeError); they are usage errors."""
    project = folders / "project"
    project.mkdir()
    path = project / "pyproject.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    monkeypatch.chdir(project)
    result = run("score", folders / "clean", folders / "enh", "-m", "snr")
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert str(path) in message and "internal error" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("name", ["sqeval.toml", "pyproject.toml"])
@pytest.mark.parametrize("where", ["here", "above"])
def test_a_config_file_that_cannot_be_read_exits_2_naming_it(folders, monkeypatch, name,
                                                             where):
    """An unreadable sqeval.toml, or pyproject.toml in a parent folder (sqeval's or not: it
    cannot tell), was exit 4 (PermissionError); it is a usage error that says the fix."""
    import pathlib

    (folders / "project" / "sub").mkdir(parents=True)
    path = folders / "project" / name
    path.write_text('[tool.black]\nline-length = 99\n' if name == "pyproject.toml"
                    else 'gates = ["snr>=0"]\n')
    open_ = pathlib.Path.open

    def unreadable(self, *args, **kwargs):  # as chmod 000 without root's capabilities
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return open_(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", unreadable)
    monkeypatch.chdir(folders / "project" / ("sub" if where == "above" else ""))
    result = run("score", folders / "clean", folders / "enh", "-m", "snr")
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert f"{path}: cannot read this config file (Permission denied)" in message
    assert "Make it readable" in message
    if name == "pyproject.toml":  # it may not be sqeval's: how to run without it
        assert "put a sqeval.toml (it may be empty) in a folder below it" in message
        (folders / "project" / "sub" / "sqeval.toml").write_text("")
        monkeypatch.chdir(folders / "project" / "sub")
        assert run("score", folders / "clean", folders / "enh", "-m", "snr").exit_code == 0


def test_a_dangling_link_named_sqeval_toml_is_not_taken_for_no_config(folders):
    (folders / "sqeval.toml").symlink_to(folders / "gone.toml")
    result = run("score", folders / "clean", folders / "enh", "-m", "snr")
    assert result.exit_code == 2 and "does not exist" in result.stderr


# Outputs that would destroy something --------------------------------------------------

@pytest.mark.parametrize("option, target", [
    ("--csv", "clean/a.wav"), ("--json", "enh/a.wav"), ("--markdown", "clean/a.wav"),
    ("--csv", ".sqeval-cache/results.sqlite"), ("--summary-csv", "list.scp"),
])
def test_an_output_that_is_an_input_or_the_cache_is_refused_and_left_intact(folders, option,
                                                                             target):
    (folders / "list.scp").write_text(f"a {folders / 'clean' / 'a.wav'}\n")
    assert run("score", folders / "list.scp", folders / "enh", "-m", "snr").exit_code == 0
    before = (folders / target).read_bytes()
    result = run("score", folders / "list.scp", folders / "enh", "-m", "snr", option,
                 folders / target)
    assert result.exit_code == 2 and "would destroy it" in " ".join(result.stderr.split())
    assert (folders / target).read_bytes() == before


def test_two_outputs_on_one_file_and_a_folder_as_output_are_refused(folders):
    base = ["score", folders / "clean", folders / "enh", "-m", "snr"]
    same = run(*base, "--csv", folders / "o.txt", "--json", folders / "o.txt")
    assert same.exit_code == 2 and "the same file" in same.stderr
    meta = run(*base, "--csv", folders / "o.csv", "--json", folders / "o.csv.meta.json")
    assert meta.exit_code == 2 and "the same file" in meta.stderr
    link = folders / "link.csv"
    link.symlink_to(folders / "o.csv")
    alias = run(*base, "--csv", folders / "o.csv", "--summary-csv", link)
    assert alias.exit_code == 2 and "the same file" in alias.stderr
    folder = run(*base, "--csv", folders)
    assert folder.exit_code == 2 and "is a folder" in folder.stderr


def test_a_symlinked_output_stays_a_symlink_and_a_fifo_is_written_in_place(folders):
    real = folders / "real.csv"
    real.write_text("old")
    link = folders / "out.csv"
    link.symlink_to(real)
    assert run("score", folders / "clean", folders / "enh", "-m", "snr", "--csv",
               link).exit_code == 0
    assert link.is_symlink() and real.read_text().startswith("file,system,snr,error")
    fifo = folders / "pipe.csv"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = run("score", folders / "clean", folders / "enh", "-m", "snr", "--csv", fifo)
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # not replaced by a regular file
    assert received and received[0].startswith("file,system,snr,error")
    assert not Path(f"{fifo}.meta.json").exists()  # a stream has no companion file


def test_an_output_that_cannot_be_written_exits_2_and_the_results_stay_cached(
        folders, monkeypatch):
    def read_only(path, write):
        raise OSError(30, "Read-only file system")

    base = ["score", folders / "clean", folders / "enh", "-m", "snr,stoi"]
    writer = score_module.write_atomically
    monkeypatch.setattr(score_module, "write_atomically", read_only)
    result = run(*base, "--latex", folders / "t.tex")
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "could not write" in message and "Read-only file system" in message
    assert "kept in the cache" in message
    # (not monkeypatch.undo(): that would also leave this test's folder, and its cache)
    monkeypatch.setattr(score_module, "write_atomically", writer)
    calls = []
    original = score_module.run

    def counting(planned, **kwargs):
        results = original(planned, **kwargs)
        calls.append(sum(len(row.fresh) for row in results.rows))
        return results

    monkeypatch.setattr(score_module, "run", counting)
    assert run(*base, "--latex", folders / "t.tex").exit_code == 0
    assert calls == [0]  # nothing computed twice: every value came from the cache


def test_outputs_follow_the_umask(folders):
    previous = os.umask(0o027)
    try:
        assert run("score", folders / "clean", folders / "enh", "-m", "snr", "--csv",
                   folders / "o.csv", "--json", folders / "o.json").exit_code == 0
    finally:
        os.umask(previous)
    for name in ("o.csv", "o.csv.meta.json", "o.json"):
        assert stat.S_IMODE(os.stat(folders / name).st_mode) == 0o640, name


# Honest values ---------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1e160, 1e-310])
def test_no_value_is_nan_or_inf_without_a_reason_and_the_json_is_strict(tmp_path, golden,
                                                                        scale):
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s * scale, rate, "DOUBLE")
    write(tmp_path / "enh" / "a.wav", (s + (e - s) / 3) * scale, rate, "DOUBLE")
    result = run("score", tmp_path / "clean", tmp_path / "enh", "--csv", tmp_path / "o.csv",
                 "--json", tmp_path / "o.json", "--summary-csv", tmp_path / "s.csv")
    assert result.exit_code in (0, 3), result.output
    data = strict_load(tmp_path / "o.json")
    strict_load(tmp_path / "o.csv.meta.json")
    for row in data["rows"]:
        for name, value in row["values"].items():
            assert value is not None or name in row["errors"] or name in row["not_applicable"]
    for row in read_rows(tmp_path / "o.csv"):
        cells = [v for k, v in row.items() if k not in ("file", "system", "error")]
        assert not any(cell in ("inf", "-inf", "nan") for cell in cells)
    assert "inf" not in (tmp_path / "s.csv").read_text().replace("info", "")


def test_a_metric_returning_nan_becomes_an_error_cell(golden, monkeypatch):
    from sqeval import scoring
    from sqeval.metrics import REGISTRY, resolve

    s, e, rate, _ = golden
    spec = REGISTRY["snr"]
    monkeypatch.setattr(type(spec), "compute", lambda self, **kw: float("nan"))
    options = scoring.ScoreOptions(metrics=tuple(resolve("snr")), systems=("x",))
    row = scoring.score_signals("f", "x", scoring.Signal(s, rate), e, rate, options)
    assert row.failed and "not a finite number" in row.errors["snr"]


# Footguns --------------------------------------------------------------------------------

def test_channel_applies_to_multichannel_files_only_with_a_note(folders, golden):
    s, e, rate, _ = golden
    write(folders / "clean" / "b.wav", np.stack([s, s], axis=1), rate, "DOUBLE")
    write(folders / "enh" / "b.wav", np.stack([e, s + (e - s) / 3], axis=1), rate, "DOUBLE")
    result = run("score", folders / "clean", folders / "enh", "-m", "snr", "--channel", 1,
                 "--json", folders / "o.json")
    assert result.exit_code == 0, result.output
    rows = {row["file"]: row for row in strict_load(folders / "o.json")["rows"]}
    assert rows["b.wav"]["values"]["snr"] == pytest.approx(
        10 * np.log10(np.sum(s**2) / np.sum(((e - s) / 3) ** 2)), abs=1e-4)
    assert any("mono file: --channel 1" in note for note in rows["a.wav"]["notes"])
    assert "could not be fully scored" not in result.stderr
    assert "(not failures)" in result.stderr


def test_notes_are_not_listed_as_failures(folders, golden):
    from scipy.signal import resample_poly

    s, e, rate, _ = golden
    write(folders / "enh" / "a.wav", resample_poly(s + (e - s) / 3, 3, 1), 3 * rate)
    result = run("score", folders / "clean", folders / "enh", "-m", "snr")
    assert result.exit_code == 0
    assert "could not be fully scored" not in result.stderr
    assert "1 note (not failures)" in result.stderr and "resampled" in result.stderr


def test_formula_like_names_are_text_in_the_csv_and_read_back_as_they_are(tmp_path, golden):
    from sqeval import read_results

    s, e, rate, _ = golden
    names = ["=HYPERLINK(1).wav", "+1.wav", "-2.wav", "@sum.wav", "'=q.wav", "plain.wav"]
    for name in names:
        write(tmp_path / "clean" / name, s, rate)
        write(tmp_path / "enh" / name, s + (e - s) / 3, rate)
    assert run("score", tmp_path / "clean", tmp_path / "enh", "-m", "snr", "--csv",
               tmp_path / "o.csv").exit_code == 0
    cells = {row["file"] for row in read_rows(tmp_path / "o.csv")}
    assert cells == {"'=HYPERLINK(1).wav", "'+1.wav", "'-2.wav", "'@sum.wav", "''=q.wav",
                     "plain.wav"}
    assert set(read_results(tmp_path / "o.csv").to_frame()["file"]) == set(names)
    assert all(value < 0 or value > 0 for value in  # numbers are never prefixed
               read_results(tmp_path / "o.csv").to_frame()["snr"])


def test_a_carriage_return_in_a_name_is_quoted_and_cannot_smuggle_a_formula(tmp_path, golden):
    """With "\n" as the line end, the csv module leaves a cell holding "\r" unquoted, and
    every reader ends the row there: the rest (=cmd|…) became a row of its own, starting
    with a formula that the ' guard never saw. The summary CSV's text cells are guarded
    too, and every CSV reads back as written."""
    from sqeval import read_results

    s, e, rate, _ = golden
    names = ["a\r=cmd|calc!A0.wav", "=HYPERLINK(1).wav", "b.wav"]
    for name in names:
        write(tmp_path / "clean" / name, s, rate)
        write(tmp_path / "enh" / name, s + (e - s) / 3, rate)
    result = run("score", tmp_path / "clean", tmp_path / "enh", "-m", "snr", "--no-cache",
                 "--csv", tmp_path / "r.csv", "--summary-csv", tmp_path / "s.csv",
                 "--group-by", "^(?P<head>[^.]+)")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "r.csv").read_bytes()
    assert b'\n"a\r=cmd|calc!A0.wav",enh,' in text and b"\r\n" not in text
    rows = read_rows(tmp_path / "r.csv")
    assert [row["file"] for row in rows] == ["'=HYPERLINK(1).wav", "a\r=cmd|calc!A0.wav",
                                             "b.wav"]
    assert sorted(read_results(tmp_path / "r.csv").to_frame()["file"]) == sorted(names)
    summary = read_rows(tmp_path / "s.csv")
    assert {row["head"] for row in summary} == {"", "'=HYPERLINK(1)", "a\r=cmd|calc!A0", "b"}
    assert len(summary) == 4 and not any(cell.startswith(("=", "+", "-", "@", "\r"))
                                         for row in summary for cell in row.values())
    assert run("compare", tmp_path / "r.csv", tmp_path / "r.csv",
               "--max-drop", "snr=0.1").exit_code == 0


def test_summary_text_cells_are_guarded_in_the_file_but_not_in_the_dataframe(tmp_path, golden):
    from sqeval import read_results

    s, e, rate, _ = golden
    for name in ("=x_5dB.wav", "y_0dB.wav"):
        write(tmp_path / "clean" / name, s, rate)
        write(tmp_path / "-sys" / name, s + (e - s) / 3, rate)
    assert run("score", tmp_path / "clean", tmp_path / "-sys", "-m", "snr", "--no-cache",
               "--csv", tmp_path / "r.csv", "--summary-csv", tmp_path / "s.csv",
               "--group-by", "^(?P<head>[^_]+)").exit_code == 0
    rows = read_rows(tmp_path / "s.csv")
    assert {(row["head"], row["system"]) for row in rows} == {("", "'-sys"), ("'=x", "'-sys"),
                                                              ("y", "'-sys")}
    frame = read_results(tmp_path / "r.csv").summary("^(?P<head>[^_]+)")
    assert set(zip(frame["head"].fillna(""), frame["system"])) == {("", "-sys"), ("=x", "-sys"),
                                                                   ("y", "-sys")}


def test_control_characters_in_names_are_escaped_on_the_terminal(tmp_path, golden):
    s, e, rate, _ = golden
    name = "a\x1b[31mred\x07.wav"
    write(tmp_path / "clean" / name, s, rate)
    write(tmp_path / "enh" / name, np.zeros_like(s), rate)  # fails: a reason names the file
    result = run("score", tmp_path / "clean", tmp_path / "enh", "-m", "snr,si_snr")
    assert result.exit_code == 3
    assert "\x1b" not in result.stderr + result.stdout and "\x07" not in result.stderr
    assert "a\\x1b[31mred\\x07.wav" in result.stderr


def test_a_file_name_that_is_not_utf8_is_scored_and_written(tmp_path, golden):
    s, e, rate, _ = golden
    name = os.fsdecode(b"caf\xe9.wav")  # Latin-1 bytes: not UTF-8
    for folder, x in (("clean", s), ("enh", s + (e - s) / 3)):
        write(tmp_path / folder / "x.wav", x, rate)
        os.rename(tmp_path / folder / "x.wav", tmp_path / folder / name)
    result = run("score", tmp_path / "clean", tmp_path / "enh", "-m", "snr", "--csv",
                 tmp_path / "o.csv", "--json", tmp_path / "o.json")
    assert result.exit_code == 0, result.output
    assert read_rows(tmp_path / "o.csv")[0]["file"] == "caf\\xe9.wav"
    assert strict_load(tmp_path / "o.json")["rows"][0]["file"] == "caf\\xe9.wav"


def test_more_than_20_failures_are_summarised_on_stderr_and_all_kept_in_the_csv(tmp_path,
                                                                                golden):
    s, _, rate, _ = golden
    (tmp_path / "enh").mkdir()
    for index in range(25):
        write(tmp_path / "clean" / f"f{index:02}.wav", s[:8000], rate)
        (tmp_path / "enh" / f"f{index:02}.wav").write_bytes(b"not audio")
    result = run("score", tmp_path / "clean", tmp_path / "enh", "-m", "snr", "--csv",
                 tmp_path / "o.csv")
    assert result.exit_code == 3
    listed = [line for line in result.stderr.splitlines() if line.startswith("  f")]
    assert len(listed) == 20
    assert "… and 5 more rows" in result.stderr and "o.csv" in result.stderr
    assert len([row for row in read_rows(tmp_path / "o.csv") if row["error"]]) == 25


def test_compare_and_sanity_refuse_to_write_over_their_inputs(folders):
    out = folders / "base.csv"
    assert run("score", folders / "clean", folders / "enh", "-m", "snr", "--csv",
               out).exit_code == 0
    before = out.read_bytes()
    for option in ("--markdown", "--junit"):
        result = run("compare", out, out, "--baseline-system", "enh", "--candidate-system",
                     "enh", option, out)
        assert result.exit_code == 2 and "would destroy it" in " ".join(result.stderr.split())
    assert out.read_bytes() == before
    clean = folders / "clean" / "a.wav"
    wav = clean.read_bytes()
    result = run("sanity", "--clean", clean, "-m", "snr", "--csv", clean)
    assert result.exit_code == 2 and clean.read_bytes() == wav
