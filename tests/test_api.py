"""The library API: sqeval.score() → Results, equal to the CLI's files cell for cell."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from typer.testing import CliRunner

import sqeval
from conftest import read_csv, write
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
    expected = read_csv(cli_csv(corpus))
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert list(frame.columns) == ["file", "system", "si_snr", "stoi", "pesq_wb", "error"]
    assert results.systems == ["noisy", "enh"]
    assert list(results.failures["file"]) == ["stray.wav"]
    assert results.provenance["sqeval_version"] == sqeval.__version__



def test_names_and_errors_stay_text_where_read_csv_would_guess(corpus, monkeypatch):
    # read_csv reads an all-empty error column as float64 and a system named NA as NaN;
    # to_frame keeps file, system and error as text, with the same values otherwise.
    (corpus / "enhanced" / "stray.wav").unlink()
    monkeypatch.chdir(corpus)
    out = corpus / "all.csv"
    assert CliRunner().invoke(app, ["score", "clean", "NA=enhanced", "--noisy", "noisy",
                                    "-m", "si_snr", "--no-cache", "--csv",
                                    str(out)]).exit_code == 0
    frame = sqeval.score("clean", {"NA": "enhanced"}, noisy="noisy", metrics="si_snr",
                         jobs=1).to_frame()
    assert list(frame["system"]) == ["noisy", "NA", "noisy", "NA"]
    assert frame["error"].isna().all() and not pd.api.types.is_float_dtype(frame["error"])
    expected = read_csv(out)
    assert expected["error"].dtype == "float64" and expected["system"].isna().sum() == 2
    expected["system"] = frame["system"]  # the one value read_csv changes
    pd.testing.assert_frame_equal(frame, expected, check_exact=True, check_dtype=False)

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
    pd.testing.assert_frame_equal(saved.to_frame(), read_csv(path), check_exact=True)
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
    produced = pd.read_pickle(corpus / "from_script.pkl")
    pd.testing.assert_frame_equal(produced, read_csv(cli_csv(corpus)), check_exact=True)


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
