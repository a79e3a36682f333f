"""The library API: sqeval.score() → Results, equal to the CLI's files cell for cell."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from typer.testing import CliRunner

import sqeval
from conftest import read_csv, read_run_csv, write
from sqeval.api import UsageError
from sqeval.cli import app

METRICS = "si_snr,stoi,pesq_wb"


@pytest.fixture()
def corpus(tmp_path, golden):
    s, e, rate, _ = golden
    for k, name in enumerate(("a", "b")):
        write(tmp_path / "clean" / f"{name}.wav", s, rate)
        write(tmp_path / "noisy" / f"{name}.wav", e, rate)
        write(tmp_path / "enhanced" / f"{name}.wav", s + (e - s) / (k + 2), rate)
    write(tmp_path / "enhanced" / "stray.wav", s, rate)  # no reference: an error row
    return tmp_path


def cli_csv(corpus, *extra):
    out = corpus / "cli.csv"
    result = CliRunner().invoke(app, ["score", str(corpus / "clean"),
                                      f"enh={corpus / 'enhanced'}", "--noisy",
                                      str(corpus / "noisy"), "-m", METRICS, "--jobs", "1",
                                      "--no-cache", "--csv", str(out), *extra])
    assert result.exit_code == 3, result.output  # the stray file
    return out


def test_to_frame_equals_the_cli_csv(corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    results = sqeval.score("clean", {"enh": "enhanced"}, noisy="noisy", metrics=METRICS,
                           jobs=1)
    frame = results.to_frame()
    expected = read_run_csv(cli_csv(corpus))
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    stray = frame["file"] == "stray.wav"
    assert (frame.loc[~stray, "error"] == "").all() and (frame.loc[stray, "error"] != "").all()
    assert list(frame.columns) == ["file", "system", "si_snr", "stoi", "pesq_wb", "error"]
    assert results.systems == ["noisy", "enh"]
    assert list(results.failures["file"]) == ["stray.wav"]
    assert results.provenance["sqeval_version"] == sqeval.__version__



def test_names_and_errors_stay_text_where_read_csv_would_guess(corpus, monkeypatch):
    # read_csv reads an all-empty error column as float64 and a system named NA as NaN;
    # to_frame keeps file, system and error as text ("" where fully scored).
    (corpus / "enhanced" / "stray.wav").unlink()
    monkeypatch.chdir(corpus)
    out = corpus / "all.csv"
    assert CliRunner().invoke(app, ["score", "clean", "NA=enhanced", "--noisy", "noisy",
                                    "-m", "si_snr", "--no-cache", "--csv",
                                    str(out)]).exit_code == 0
    frame = sqeval.score("clean", {"NA": "enhanced"}, noisy="noisy", metrics="si_snr",
                         jobs=1).to_frame()
    assert list(frame["system"]) == ["noisy", "NA", "noisy", "NA"]
    assert (frame["error"] == "").all() and not pd.api.types.is_float_dtype(frame["error"])
    plain = read_csv(out)
    assert plain["error"].dtype == "float64" and plain["system"].isna().sum() == 2
    pd.testing.assert_frame_equal(frame, read_run_csv(out), check_exact=True)


def test_metrics_as_a_list_and_paths_of_any_kind(corpus, monkeypatch):
    """``metrics`` takes a string or any iterable of names, and every path argument a
    ``str`` or any ``os.PathLike``: the run equals the CLI's CSV."""
    import os

    class Where:  # an os.PathLike that is not a pathlib.Path
        def __init__(self, path):
            self.path = str(path)

        def __fspath__(self):
            return self.path

    monkeypatch.chdir(corpus)
    (corpus / "enhanced" / "stray.wav").unlink()
    out = corpus / "cli.csv"
    assert CliRunner().invoke(app, ["score", "clean", "enh=enhanced", "-m", "pesq_wb,stoi",
                                    "--no-cache", "--csv", str(out)]).exit_code == 0
    expected = read_run_csv(out)
    for metrics in (["pesq_wb", "stoi"], ("pesq_wb", "stoi"), iter(["pesq_wb", "stoi"]),
                    "pesq_wb,stoi"):
        frame = sqeval.score("clean", {"enh": "enhanced"}, metrics=metrics).to_frame()
        pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    frame = sqeval.score(Where(corpus / "clean"), {"enh": Where("enhanced")},
                         metrics=["pesq_wb", "stoi"], cache=Where("cache.sqlite")).to_frame()
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert os.path.exists("cache.sqlite")
    mapping = {"a": Where(corpus / "enhanced" / "a.wav"), "b": Where("enhanced/b.wav")}
    frame = sqeval.score({"a": "clean/a.wav", "b": Where("clean/b.wav")}, {"enh": mapping},
                         metrics=["pesq_wb", "stoi"]).to_frame()
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    for bad, says in ((3, "int 3"), (b"stoi", "bytes"), ({"stoi": 1}, "dict"),
                      ([], "an empty list"), (["stoi", 3], "3")):
        with pytest.raises(UsageError, match=f"metrics takes .*{says}"):
            sqeval.score("clean", {"enh": "enhanced"}, metrics=bad)


def test_public_submodules_are_reachable_after_import_sqeval():
    done = subprocess.run([sys.executable, "-c", (
        "import sqeval, numpy as np\n"
        "s = np.sin(np.arange(800) / 7.0)\n"
        "print(sqeval.losses.si_snr_loss(reference=s, estimate=s + 0.1 * np.cos(np.arange(800))))\n"
        "print(sqeval.metrics.REGISTRY['stoi'].name)")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    value, name = done.stdout.split()
    assert float(value) < 0 and name == "stoi"


def test_a_mapping_with_a_missing_file_says_where_relative_paths_start(corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    results = sqeval.score({"a": "clean/a.wav"}, {"enh": {"a": "nowhere/a.wav"}},
                           metrics="si_snr")
    error = results.to_frame()["error"].iloc[0]
    assert "no such file" in error and "a relative path starts at the working directory" in error


def test_summary_equals_the_summary_csv(corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    out = corpus / "summary.csv"
    cli_csv(corpus, "--summary-csv", str(out))
    results = sqeval.score("clean", {"enh": "enhanced"}, noisy="noisy", metrics=METRICS,
                           jobs=1)
    pd.testing.assert_frame_equal(results.summary(), read_csv(out), check_exact=True)


def test_read_results_gives_the_same_interface_back(corpus):
    path = cli_csv(corpus)
    saved = sqeval.read_results(path)
    pd.testing.assert_frame_equal(saved.to_frame(), read_run_csv(path), check_exact=True)
    assert saved.metrics == ["si_snr", "stoi", "pesq_wb"] and saved.systems == ["noisy", "enh"]
    assert saved.provenance["sqeval_version"] == sqeval.__version__  # from the .meta.json
    assert list(saved.failures["file"]) == ["stray.wav"]
    assert saved.summary().loc[0, "n"] == 2
    other = corpus / "renamed.csv"  # a column this sqeval does not know still summarises
    other.write_text(path.read_text().replace("si_snr", "my_metric", 1))
    assert "my_metric" in set(sqeval.read_results(other).summary()["metric"])


def test_mappings_and_single_files_are_sources(corpus, golden):
    clean = {"a": str(corpus / "clean" / "a.wav"), "b": str(corpus / "clean" / "b.wav")}
    enhanced = {"a": str(corpus / "enhanced" / "a.wav"), "b": str(corpus / "enhanced" / "b.wav")}
    by_map = sqeval.score(clean, {"enh": enhanced}, metrics="si_snr", jobs=1).to_frame()
    assert list(by_map["file"]) == ["a.wav", "b.wav"]
    one = sqeval.score(corpus / "clean" / "a.wav", {"enh": corpus / "enhanced" / "a.wav"},
                       metrics="si_snr", jobs=1).to_frame()
    assert one.loc[0, "si_snr"] == by_map.loc[0, "si_snr"]
    assert one.loc[0, "file"] == "a.wav"


def test_usage_errors_are_value_errors_that_say_why(corpus, golden):
    with pytest.raises(UsageError, match="unknown metric"):
        sqeval.score(corpus / "clean", corpus / "enhanced", metrics="nope")
    write(corpus / "other" / "x_001.wav", golden[0], golden[2])
    with pytest.raises(ValueError, match="--key"):  # nothing pairs: the hint
        sqeval.score(corpus / "clean", corpus / "other", metrics="si_snr")


SCRIPT = """
    import sqeval
    results = sqeval.score("clean", {"enh": "enhanced"}, noisy="noisy",
                           metrics="si_snr,stoi,pesq_wb", jobs=2, isolate=ISOLATE)
    results.to_frame().to_pickle("from_script.pkl")  # exact (to_csv rounds before pandas 2)
    print("rows", len(results.rows))
"""


@pytest.mark.parametrize("isolate", [True, False])
@pytest.mark.parametrize("how", ["script without a main guard", "standard input"])
def test_a_plain_script_works_without_a_main_guard(corpus, how, isolate):
    """Worker processes cannot start from such a script: asked for (isolate=True), the run
    is scored in the script's process with a warning that says how to use every core; a
    few short files are scored there anyway, without a warning."""
    script = textwrap.dedent(SCRIPT).replace("ISOLATE", str(isolate))
    if how == "standard input":
        command = dict(args=[sys.executable, "-"], input=script)
    else:
        (corpus / "plain.py").write_text(script)
        command = dict(args=[sys.executable, "plain.py"])
    done = subprocess.run(**command, cwd=corpus, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "rows 5" in done.stdout and "worker process died" not in done.stdout
    assert ("if __name__ ==" in done.stderr) is isolate  # the warning says how to fix it
    if isolate:  # and points at the line of the script that called sqeval.score
        where = "<stdin>" if how == "standard input" else "plain.py"
        assert f"{where}:3: RuntimeWarning" in done.stderr, done.stderr
    produced = pd.read_pickle(corpus / "from_script.pkl")
    pd.testing.assert_frame_equal(produced, read_run_csv(cli_csv(corpus)), check_exact=True)


def test_a_guarded_script_uses_worker_processes(corpus):
    (corpus / "guarded.py").write_text(textwrap.dedent("""
        import sqeval

        if __name__ == "__main__":
            sqeval.score("clean", "enhanced", metrics="si_snr", jobs=2)
            print("ok")
    """))
    done = subprocess.run([sys.executable, "guarded.py"], cwd=corpus, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr
    assert "worker processes cannot start" not in done.stderr


def test_a_path_object_is_a_path_even_with_an_equals_sign(corpus):
    import shutil
    from pathlib import Path

    shutil.copytree(corpus / "enhanced", corpus / "run=3")
    results = sqeval.score(Path(corpus / "clean"), Path(corpus / "run=3"), metrics="snr")
    assert results.systems == ["run=3"]
    with pytest.raises(UsageError, match="cache takes a path"):
        sqeval.score(corpus / "clean", corpus / "enhanced", metrics="snr", cache=b"c.sqlite")
    with pytest.raises(UsageError, match="names no metric"):
        sqeval.score(corpus / "clean", corpus / "enhanced", metrics=" , ")
