"""The command line through Typer's CliRunner: exit codes, tables, CSV, JSON, and every
input-handling case of the issue."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
from scipy.signal import resample_poly
from typer.testing import CliRunner

from sqeval import metrics as m
from sqeval.cli import app
from sqeval.metrics import REGISTRY, resolve

from conftest import near_golden, write

runner = CliRunner()
NAMES = [spec.name for spec in resolve(None)]  # the default set: core


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def by_key(rows):
    return {(row["file"], row["system"]): row for row in rows}


@pytest.fixture()
def pair_folders(tmp_path, golden):
    """clean/a.wav, noisy/a.wav (pair L) and enhanced/a.wav (noise at a third)."""
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s, rate, "DOUBLE")
    write(tmp_path / "noisy" / "a.wav", e, rate, "DOUBLE")
    write(tmp_path / "enhanced" / "a.wav", s + (e - s) / 3, rate, "DOUBLE")
    return tmp_path


def test_score_writes_the_design_csv_and_exits_0(pair_folders, golden):
    out = pair_folders / "out.csv"
    result = run("score", pair_folders / "clean", pair_folders / "enhanced", "--noisy",
                 pair_folders / "noisy", "--csv", out, "--jobs", 1)
    assert result.exit_code == 0, result.output
    assert "noisy (1 file)" in result.stdout and "enhanced (1 file)" in result.stdout
    assert "Δ vs noisy" in result.stdout
    with open(out, encoding="utf-8") as stream:
        assert stream.readline().strip() == ",".join(["file", "system", *NAMES, "error"])
    rows = by_key(read_csv(out))
    assert list(rows) == [("a.wav", "noisy"), ("a.wav", "enhanced")]
    values = golden[3]
    for name in NAMES:  # the noisy row is pair L: the CSV carries the golden values
        assert float(rows["a.wav", "noisy"][name]) == near_golden(name, values[name])
    assert rows["a.wav", "noisy"]["error"] == ""


def test_metrics_subset_order_and_json(pair_folders):
    out = pair_folders / "out.json"
    result = run("score", pair_folders / "clean", f"mine={pair_folders / 'enhanced'}",
                 "--metrics", "stoi,snr", "--json", out, "--jobs", 1)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [metric["name"] for metric in data["metrics"]] == ["stoi", "snr"]
    assert data["rows"][0]["system"] == "mine"
    assert set(data["rows"][0]["values"]) == {"stoi", "snr"}
    summary = {(item["system"], item["metric"]): item for item in data["summary"]}
    assert summary["mine", "snr"]["n"] == 1 and summary["mine", "snr"]["n_failed"] == 0


def test_parallel_run_equals_serial_run(tmp_path, pair_folders, golden):
    s, e, rate, _ = golden
    for k in range(4):
        write(pair_folders / "clean" / f"x{k}.wav", s, rate)
        write(pair_folders / "enhanced" / f"x{k}.wav", s + (k + 1) * (e - s) / 5, rate)
    csvs = []
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}.csv"
        assert run("score", pair_folders / "clean", pair_folders / "enhanced",
                   "--metrics", "snr,stoi,pesq_nb", "--csv", out, "--jobs", jobs).exit_code == 0
        csvs.append(out.read_text())
    assert csvs[0] == csvs[1]


def test_done_when_folder_corrupt_missing_extra_stereo(tmp_path, golden):
    s, e, rate, _ = golden
    clean, enhanced = tmp_path / "clean", tmp_path / "enhanced"
    for name in ("good", "corrupt", "missing", "stereo"):
        write(clean / f"{name}.wav", s, rate)
    write(enhanced / "good.wav", e, rate)
    (enhanced / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 50)
    write(enhanced / "stereo.wav", np.stack([e, s], axis=1), rate)
    write(enhanced / "extra.wav", e, rate)
    out = tmp_path / "out.csv"
    result = run("score", clean, enhanced, "--csv", out, "--jobs", 1)
    assert result.exit_code == 3
    rows = by_key(read_csv(out))
    assert set(rows) == {(f"{n}.wav", "enhanced")
                         for n in ("good", "corrupt", "missing", "stereo", "extra")}
    assert rows["good.wav", "enhanced"]["error"] == ""
    assert float(rows["good.wav", "enhanced"]["pesq_wb"]) == near_golden(
        "pesq_wb", golden[3]["pesq_wb"])
    expected = {"corrupt": "unreadable audio", "missing": "no output for this reference",
                "stereo": "2 channels", "extra": "no clean reference"}
    for name, reason in expected.items():
        row = rows[f"{name}.wav", "enhanced"]
        assert reason in row["error"]
        assert all(row[metric] == "" for metric in NAMES)
        assert f"{name}.wav [enhanced]: " in result.stderr and reason in result.stderr
    assert "4 of 5 rows could not be fully scored" in result.stderr


def test_multichannel_with_channel_or_mix(tmp_path, golden):
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", np.stack([s, 0.5 * s], axis=1), rate, "DOUBLE")
    write(tmp_path / "enhanced" / "a.wav", np.stack([e, s], axis=1), rate, "DOUBLE")
    base = ("score", tmp_path / "clean", tmp_path / "enhanced", "--metrics", "snr",
            "--jobs", 1, "--csv", tmp_path / "o.csv")
    assert run(*base).exit_code == 3
    assert run(*base, "--channel", 0).exit_code == 0
    value = float(read_csv(tmp_path / "o.csv")[0]["snr"])
    assert value == pytest.approx(m.snr(reference=s, estimate=e), abs=1e-9)
    assert run(*base, "--mix", "mono").exit_code == 0
    value = float(read_csv(tmp_path / "o.csv")[0]["snr"])
    assert value == pytest.approx(m.snr(reference=0.75 * s, estimate=(e + s) / 2), abs=1e-9)
    result = run(*base, "--channel", 2)
    assert result.exit_code == 3 and "the file has 2 channel(s)" in result.stderr
    assert run(*base, "--mix", "stereo").exit_code == 2


def test_estimate_at_another_rate_is_resampled_and_reported(tmp_path, golden):
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s, rate, "DOUBLE")
    write(tmp_path / "enhanced" / "a.wav", resample_poly(e, 1, 2), 8000, "DOUBLE")
    out = tmp_path / "o.csv"
    result = run("score", tmp_path / "clean", tmp_path / "enhanced", "--csv", out,
                 "--metrics", "si_sdr,pesq_wb", "--jobs", 1)
    assert result.exit_code == 0, result.output
    assert "estimate at 8000 Hz resampled to the reference's 16000 Hz" in result.stderr
    row = read_csv(out)[0]
    back = resample_poly(resample_poly(e, 1, 2), 2, 1)
    assert float(row["si_sdr"]) == pytest.approx(m.si_sdr(reference=s, estimate=back), abs=1e-9)


def test_lengths_differ_prefix_for_aligned_metrics_whole_for_pesq(tmp_path, golden):
    from pesq import pesq

    s, e, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s, rate, "DOUBLE")
    write(tmp_path / "enhanced" / "a.wav", e[:-800], rate, "DOUBLE")
    out = tmp_path / "o.csv"
    result = run("score", tmp_path / "clean", tmp_path / "enhanced", "--csv", out,
                 "--metrics", "snr,pesq_wb", "--jobs", 1)
    assert result.exit_code == 0
    assert "lengths differ by 800 samples" in result.stderr
    row = read_csv(out)[0]
    n = len(s) - 800
    assert float(row["snr"]) == pytest.approx(m.snr(reference=s[:n], estimate=e[:n]), abs=1e-9)
    assert float(row["pesq_wb"]) == pesq(16000, s, e[:-800], "wb")


def test_degenerate_inputs_give_empty_cells_with_reasons(tmp_path, golden):
    s, e, rate, _ = golden
    clean, enhanced = tmp_path / "clean", tmp_path / "enhanced"
    write(clean / "silent_ref.wav", np.zeros_like(s), rate)
    write(enhanced / "silent_ref.wav", e, rate)
    write(clean / "zero_est.wav", s, rate)
    write(enhanced / "zero_est.wav", np.zeros_like(s), rate)
    nan = e.copy()
    nan[100:103] = np.nan
    write(clean / "nan.wav", s, rate)
    write(enhanced / "nan.wav", nan, rate, "FLOAT")
    write(clean / "short.wav", s[8000:13000], rate)  # 0.31 s: too short for STOI
    write(enhanced / "short.wav", e[8000:13000], rate)
    write(clean / "tiny.wav", s[8000:11000], rate)  # 0.19 s: too short for PESQ too
    write(enhanced / "tiny.wav", e[8000:11000], rate)
    quiet = np.r_[np.zeros(15000), s[10000:11000]]
    write(clean / "no_speech.wav", quiet, rate)
    write(enhanced / "no_speech.wav", quiet, rate)
    out = tmp_path / "o.csv"
    result = run("score", clean, enhanced, "--csv", out, "--jobs", 1)
    assert result.exit_code == 3
    rows = {row["file"]: row for row in read_csv(out)}
    assert "clean reference: silent" in rows["silent_ref.wav"]["error"]
    zero = rows["zero_est.wav"]  # a degenerate output: no metric scores it, not even SNR
    for name in ("snr", "si_snr", "si_sdr", "osi_snr", "sdr", "stoi", "estoi", "pesq_wb",
                 "pesq_nb"):
        assert zero[name] == ""
    assert zero["error"] == ("the estimate is silent (all samples zero): a degenerate output, "
                             "not scored")
    assert "3 NaN and 0 Inf samples" in rows["nan.wav"]["error"]
    short = rows["short.wav"]
    assert short["stoi"] == "" and "stoi: too short for STOI" in short["error"]
    assert short["estoi"] == "" and short["pesq_wb"] != ""
    assert "pesq_wb: too short for PESQ" in rows["tiny.wav"]["error"]
    assert "pesq_wb: PESQ detected no utterances" in rows["no_speech.wav"]["error"]
    assert "1e-05" not in out.read_text()  # pystoi's stand-in never reaches the output


def test_pesq_wb_at_8khz_is_not_a_failure_unless_named(tmp_path, golden):
    s, e, _, _ = golden
    write(tmp_path / "clean" / "a.wav", resample_poly(s, 1, 2), 8000)
    write(tmp_path / "enhanced" / "a.wav", resample_poly(e, 1, 2), 8000)
    out = tmp_path / "o.csv"
    result = run("score", tmp_path / "clean", tmp_path / "enhanced", "--csv", out, "--jobs", 1)
    assert result.exit_code == 0, result.output
    row = read_csv(out)[0]
    assert row["pesq_wb"] == "" and "pesq_wb: n/a: wide-band PESQ needs" in row["error"]
    assert row["pesq_nb"] != ""
    assert "(+1 n/a)" in result.stdout
    named = run("score", tmp_path / "clean", tmp_path / "enhanced", "--metrics",
                "pesq_wb,pesq_nb", "--jobs", 1)
    assert named.exit_code == 3 and "wide-band PESQ needs" in named.stderr


def test_pairing_across_extensions_subfolders_and_ambiguity(tmp_path, golden):
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "sub" / "a.wav", s, rate)
    write(tmp_path / "enhanced" / "sub" / "a.flac", e, rate)
    write(tmp_path / "clean" / "b.wav", s, rate)
    write(tmp_path / "enhanced" / "b.wav", e, rate)
    write(tmp_path / "enhanced" / "b.ogg", e, rate)
    out = tmp_path / "o.csv"
    result = run("score", tmp_path / "clean", tmp_path / "enhanced", "--metrics", "snr",
                 "--csv", out, "--jobs", 1)
    assert result.exit_code == 3
    rows = {row["file"]: row for row in read_csv(out)}
    assert rows["sub/a.wav"]["error"] == "" and rows["sub/a.wav"]["snr"] != ""
    assert "ambiguous" in rows["b.wav"]["error"] and "b.ogg" in rows["b.wav"]["error"]


def test_a_folder_named_like_audio_gets_a_row(tmp_path, golden):
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "x.wav", s, rate)
    (tmp_path / "enhanced" / "x.wav").mkdir(parents=True)
    write(tmp_path / "enhanced" / "x.wav" / "inner.wav", e, rate)  # its content is walked too
    (tmp_path / "clean" / "y.flac").mkdir()
    out = tmp_path / "o.csv"
    result = run("score", tmp_path / "clean", tmp_path / "enhanced", "--metrics", "snr",
                 "--csv", out, "--jobs", 1)
    assert result.exit_code == 3
    rows = {row["file"]: row for row in read_csv(out)}
    assert rows["x.wav"]["error"] == "x.wav is a folder, not an audio file"
    assert rows["y"]["error"] == "clean reference: y.flac is a folder, not an audio file"
    assert rows["x.wav/inner.wav"]["error"] == "no clean reference for this file"


@pytest.mark.parametrize("args, message", [
    (("{t}/nowhere", "{t}/enhanced"), "not a folder"),
    (("{t}/clean", "{t}/enhanced", "--metrics", "pesq,stoi"), "unknown metric(s) pesq"),
    (("{t}/clean", "{t}/enhanced", "--csv", "{t}/no/such/dir/o.csv"), "does not exist"),
    (("{t}/clean", "{t}/enhanced", "--noisy", "{t}/enhanced"), "is reserved"),
    (("{t}/clean", "x={t}/enhanced", "x={t}/enhanced"), "both be called"),
    (("{t}/empty", "{t}/empty"), "no audio files"),
    (("{t}/clean", "{t}/enhanced", "--channel", "1", "--mix", "mono"), "not both"),
])
def test_usage_and_input_errors_exit_2_without_traceback(tmp_path, golden, args, message):
    s, _, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s, rate)
    write(tmp_path / "enhanced" / "a.wav", s, rate)
    (tmp_path / "empty").mkdir()
    if "is reserved" in message:
        args = ("{t}/clean", "noisy={t}/enhanced", "--noisy", "{t}/enhanced")
    result = run("score", *(a.format(t=tmp_path) for a in args))
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_metrics_command_lists_the_registry():
    result = run("metrics")
    assert result.exit_code == 0
    for name in NAMES:
        assert name in result.stdout


def test_no_arguments_shows_help():
    result = run()
    assert "score" in result.output and "metrics" in result.output


def snr_tasks(tmp_path, golden, names):
    """Pair L under each name, as (tasks, options) for scoring.score_jobs with SNR only."""
    from sqeval import scoring
    from sqeval.pairing import System, pair_folders

    s, e, rate, _ = golden
    for name in names:
        write(tmp_path / "clean" / f"{name}.wav", s, rate)
        write(tmp_path / "enh" / f"{name}.wav", e, rate)
    system = System("enh", tmp_path / "enh")
    tasks = [(job, job.display_name(tmp_path / "clean", {"enh": system}))
             for job in pair_folders(tmp_path / "clean", [system])]
    return tasks, scoring.ScoreOptions(metrics=(REGISTRY["snr"],), systems=("enh",))


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_crashing_worker_costs_only_its_own_file(tmp_path, golden, monkeypatch, jobs):
    """A worker that dies (as in a C-extension crash) fails its file; the others are scored."""
    from crashing_worker import crash_on_crash_wav

    from sqeval import runner, scoring

    s, e, _, _ = golden
    tasks, options = snr_tasks(tmp_path, golden, ("a", "b", "crash", "c", "d"))
    monkeypatch.setattr(scoring, "score_job", crash_on_crash_wav)
    rows = {row.file: row for row in runner.score_jobs(tasks, options, n_jobs=jobs)}
    assert list(rows) == ["a.wav", "b.wav", "c.wav", "crash.wav", "d.wav"]
    assert rows["crash.wav"].file_error == runner.CRASHED
    for name in ("a.wav", "b.wav", "c.wav", "d.wav"):
        assert rows[name].values["snr"] == pytest.approx(m.snr(reference=s, estimate=e))


def test_a_few_short_files_are_scored_in_this_process_unless_isolated(tmp_path, golden,
                                                                     monkeypatch):
    """No worker is started for a few short files (a worker costs more to start than they
    take to score); five files, a timeout or isolate=True start workers."""
    from sqeval import api, runner

    started = []

    class Workers(runner._IsolatedRun):
        def run(self, items):
            started.append(len(items))
            yield from super().run(items)

    monkeypatch.setattr(runner, "_IsolatedRun", Workers)
    tasks, options = snr_tasks(tmp_path / "two", golden, ("a", "b"))
    assert len(runner.score_jobs(tasks, options, n_jobs=2, isolate=None)) == 2
    assert started == []
    runner.score_jobs(tasks, options, n_jobs=2, isolate=None, timeout=60)
    runner.score_jobs(tasks, options, n_jobs=2)  # isolate=True, the runner's default
    assert started == [2, 2]
    five, options = snr_tasks(tmp_path / "five", golden, ("a", "b", "c", "d", "e"))
    runner.score_jobs(five, options, n_jobs=2, isolate=None)
    assert started == [2, 2, 5]
    clean, enh = tmp_path / "two" / "clean", tmp_path / "two" / "enh"
    alone = api.score(clean, enh, metrics="snr", jobs=2)
    isolated = api.score(clean, enh, metrics="snr", jobs=2, isolate=True)
    assert started == [2, 2, 5, 2]
    assert alone.to_frame().equals(isolated.to_frame())
    assert runner.IN_PROCESS_FILES < 5


def test_a_few_long_files_are_scored_on_workers(tmp_path, golden, monkeypatch):
    from sqeval import runner

    tasks, _ = snr_tasks(tmp_path, golden, ("a", "b"))
    assert runner.small_run([job for job, _ in tasks])
    monkeypatch.setattr(runner, "IN_PROCESS_SECONDS", 1.0)  # the golden pair is longer
    assert not runner.small_run([job for job, _ in tasks])
    (tmp_path / "enh" / "a.wav").write_bytes(b"not audio")
    monkeypatch.setattr(runner, "IN_PROCESS_SECONDS", 1e9)
    assert not runner.small_run([job for job, _ in tasks])  # its worker reports it
    (tmp_path / "enh" / "a.wav").unlink()
    os.mkfifo(tmp_path / "enh" / "a.wav")  # never opened for reading: it would block
    assert not runner.small_run([job for job, _ in tasks])


def test_timeout_costs_only_the_slow_file(tmp_path, golden, monkeypatch):
    from crashing_worker import hang_on_slow_wav

    from sqeval import runner, scoring

    tasks, options = snr_tasks(tmp_path, golden, ("a", "slow", "b"))
    monkeypatch.setattr(scoring, "score_job", hang_on_slow_wav)
    rows = {row.file: row for row in runner.score_jobs(tasks, options, n_jobs=2, timeout=8)}
    assert "timed out after 8 s" in rows["slow.wav"].file_error
    assert not rows["a.wav"].failed and not rows["b.wav"].failed


def test_align_removes_a_constant_delay_and_reports_it(tmp_path, golden):
    s, e, rate, _ = golden
    delayed = np.concatenate([np.zeros(160), s + 0.05 * (e - s)])[: len(s)]  # 10 ms late
    write(tmp_path / "clean" / "a.wav", s, rate, "DOUBLE")
    write(tmp_path / "enh" / "a.wav", delayed, rate, "DOUBLE")
    base = ("score", tmp_path / "clean", tmp_path / "enh", "--metrics", "si_sdr,pesq_wb",
            "--jobs", 1, "--json", tmp_path / "o.json")
    plain = run(*base)
    unaligned = json.loads((tmp_path / "o.json").read_text())["rows"][0]
    aligned_run = run(*base, "--align")
    assert plain.exit_code == 0 and aligned_run.exit_code == 0
    aligned = json.loads((tmp_path / "o.json").read_text())["rows"][0]
    assert "trails the reference by 160 samples (10.00 ms)" in " ".join(aligned["notes"])
    expected = m.si_sdr(reference=s[: len(s) - 160], estimate=delayed[160:])
    assert aligned["values"]["si_sdr"] == pytest.approx(expected, abs=1e-9)
    assert aligned["values"]["si_sdr"] > unaligned["values"]["si_sdr"] + 20
    assert aligned["values"]["pesq_wb"] == unaligned["values"]["pesq_wb"]  # PESQ aligns itself
    bounded = run(*base, "--align", "--max-delay", "0.005")  # 10 ms is out of reach
    assert bounded.exit_code == 0
    assert "by 160 samples" not in " ".join(
        json.loads((tmp_path / "o.json").read_text())["rows"][0]["notes"])


def test_estimate_delay_finds_leads_and_lags_within_the_bound():
    from sqeval.audio import estimate_delay

    s = np.random.default_rng(1).standard_normal(8000)
    assert estimate_delay(s, np.concatenate([s[37:], np.zeros(37)]), 100) == -37  # leads
    assert estimate_delay(s, -np.concatenate([np.zeros(12), s])[:8000], 100) == 12  # inverted
    assert estimate_delay(s, s, 0) == 0
