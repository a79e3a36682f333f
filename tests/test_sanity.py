"""`sqeval sanity`: the cases, the declared properties, and equality with `sqeval score`."""

from __future__ import annotations

import csv
import math
import json
import os

import numpy as np
import pytest
from scipy.signal import resample_poly
from typer.testing import CliRunner

from sqeval.cli import app
from sqeval.metrics import REGISTRY, Direction, MetricSpec, resolve, si_snr, snr
from sqeval.metrics.registry import PROPERTIES

from conftest import write

runner = CliRunner()
CASES = ["identity", "gain ×0.5", "gain ×2", "polarity −1", "clean+noise", "clean−noise",
         "noise alone", "silence", "clipped at 30 %", "delayed 1 ms", "delayed 10 ms",
         "low-passed 4 kHz", "clean+noise -5 dB", "clean+noise +0 dB", "clean+noise +5 dB",
         "clean+noise +10 dB", "clean+noise +20 dB"]


def run(*args):
    return runner.invoke(app, ["sanity", *map(str, args)])


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_no_arguments_prints_the_table_and_exits_0(tmp_path):
    out = tmp_path / "s.json"
    result = run("--json", out)
    assert result.exit_code == 0, result.output
    for case in CASES:
        assert case in result.stdout
    assert "finding rel_entropy: best_at_identity" in " ".join(result.stdout.split())
    data = json.loads(out.read_text())
    assert {row["case"] for row in data["cases"]} >= set(CASES)
    assert len(data["properties"]) == len(resolve(None)) * len(PROPERTIES)
    assert not any(item["failed"] for item in data["properties"])
    silence = next(row for row in data["cases"] if row["case"] == "silence")
    assert silence["values"]["si_snr"] is None and "estimate is silent" in silence["error"]


def gain_dependent_si_snr(*, reference, estimate):
    """A deliberately broken metric: SI-SNR plus the estimate's level in dB."""
    value = si_snr(reference=reference, estimate=estimate)  # raises on a silent estimate
    return value + 10 * np.log10(np.sum(np.square(estimate)) / np.sum(np.square(reference)))


def test_a_broken_metric_fails_with_exit_1_naming_the_property(monkeypatch):
    broken = MetricSpec(name="broken_si_snr", function=gain_dependent_si_snr, unit="dB",
                        low=-math.inf, high=math.inf, direction=Direction.HIGHER,
                        definition="SI-SNR + level", reference="none",
                        properties={"gain_invariant": True})
    monkeypatch.setitem(REGISTRY, broken.name, broken)
    result = run("--metrics", "broken_si_snr,si_snr")
    assert result.exit_code == 1
    assert "broken_si_snr.gain_invariant" in result.stderr
    assert "si_snr.gain_invariant" not in result.stderr.replace("broken_si_snr", "")
    assert "FAILED broken_si_snr: gain_invariant" in " ".join(result.stdout.split())


def test_a_declared_false_is_shown_but_never_fails(monkeypatch, tmp_path):
    # "Known not to be gain-invariant" on a metric that is: shown, not a failure, since
    # one input can show a property that the metric does not have in general.
    odd = MetricSpec(name="si_snr_declared_gain_dependent", function=si_snr, unit="dB",
                     low=-math.inf, high=math.inf, direction=Direction.HIGHER,
                     definition="SI-SNR", reference="none", properties={"gain_invariant": False})
    monkeypatch.setitem(REGISTRY, odd.name, odd)
    out = tmp_path / "s.json"
    result = run("--metrics", odd.name, "--json", out)
    assert result.exit_code == 0 and "(declared no)" in result.stdout
    gain = next(p for p in json.loads(out.read_text())["properties"]
                if p["property"] == "gain_invariant")
    assert gain["declared"] is False and gain["holds"] is True and not gain["failed"]


def test_identity_and_clean_plus_noise_equal_sqeval_score(tmp_path, golden):
    """Even with a noisy file at another rate and length than the clean one."""
    s, e, rate, _ = golden
    clean = write(tmp_path / "clean" / "a.wav", s, rate, "DOUBLE")
    noisy = write(tmp_path / "noisy" / "a.wav", resample_poly(e, 441, 160)[:-999], 44100, "DOUBLE")
    write(tmp_path / "same" / "a.wav", s, rate, "DOUBLE")
    sanity_csv, score_csv = tmp_path / "sanity.csv", tmp_path / "score.csv"
    metrics = "core,classic"
    assert run("--clean", clean, "--noisy", noisy, "--csv", sanity_csv, "--metrics",
               metrics).exit_code == 0
    result = runner.invoke(app, ["score", str(tmp_path / "clean"), str(tmp_path / "same"),
                                 "--noisy", str(tmp_path / "noisy"), "--csv", str(score_csv),
                                 "--jobs", "1", "--metrics", metrics])
    assert result.exit_code == 0, result.output
    sanity = {row["case"]: row for row in read_csv(sanity_csv)}
    score = {row["system"]: row for row in read_csv(score_csv)}
    for name in [spec.name for spec in resolve(metrics)]:
        assert sanity["identity"][name] == score["same"][name], name
        assert sanity["clean+noise"][name] == score["noisy"][name], name


def test_losses_columns_and_noise_from_the_noisy_file(tmp_path, golden):
    s, e, rate, _ = golden
    clean = write(tmp_path / "c.wav", s, rate, "DOUBLE")
    noisy = write(tmp_path / "n.wav", e, rate, "DOUBLE")
    out = tmp_path / "s.csv"
    result = run("--clean", clean, "--noisy", noisy, "--losses", "--metrics", "snr,si_snr",
                 "--csv", out)
    assert result.exit_code == 0, result.output
    assert "loss forms" in result.stdout
    rows = {row["case"]: row for row in read_csv(out)}
    assert list(rows["identity"])[:4] == ["file", "case", "snr", "si_snr"]
    assert float(rows["clean+noise"]["si_snr_loss"]) == pytest.approx(
        -float(rows["clean+noise"]["si_snr"]), rel=1e-12)
    # clean−noise is 2s − e: its SNR equals clean+noise's (‖±n‖² is the same).
    assert float(rows["clean−noise"]["snr"]) == pytest.approx(snr(reference=s, estimate=2 * s - e))
    assert float(rows["clean−noise"]["snr"]) == pytest.approx(float(rows["clean+noise"]["snr"]))


def test_folders_pair_by_name_and_report_the_mean(tmp_path, golden):
    s, e, rate, _ = golden
    for k, name in enumerate(("a", "b")):
        write(tmp_path / "clean" / f"{name}.wav", s, rate)
        write(tmp_path / "noisy" / f"{name}.wav", s + (k + 1) * (e - s) / 2, rate)
    write(tmp_path / "clean" / "lonely.wav", s, rate)
    out = tmp_path / "s.csv"
    result = run("--clean", tmp_path / "clean", "--noisy", tmp_path / "noisy",
                 "--metrics", "snr", "--csv", out)
    assert result.exit_code == 0, result.output
    assert "mean over 2 files" in " ".join(result.stdout.split())
    assert "skipped lonely: no noisy file" in result.stderr
    assert {row["file"] for row in read_csv(out)} == {"a", "b"}


def test_narrow_band_input_leaves_what_does_not_apply_empty(tmp_path, golden):
    clean = write(tmp_path / "c.wav", resample_poly(golden[0], 1, 2), 8000)
    out = tmp_path / "s.json"
    result = run("--clean", clean, "--json", out)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    lowpass = next(row for row in data["cases"] if row["case"] == "low-passed 4 kHz")
    assert "nothing above 4000 Hz" in lowpass["error"]
    pesq_wb = [p for p in data["properties"] if p["metric"] == "pesq_wb"]
    assert all(p["holds"] is None for p in pesq_wb)


@pytest.mark.parametrize("args, message", [
    (("--noisy", "{t}/c.wav"), "--noisy needs --clean"),
    (("--clean", "{t}/nothing.wav"), "no such file or folder"),
    (("--clean", "{t}/c.wav", "--noisy", "{t}"), "must be a file too"),
    (("--clean", "{t}/c.wav", "--metrics", "nope"), "unknown metric(s) nope"),
    (("--clean", "{t}/silent.wav"), "silent"),
])
def test_usage_errors_exit_2(tmp_path, golden, args, message):
    write(tmp_path / "c.wav", golden[0], golden[2])
    write(tmp_path / "silent.wav", np.zeros(16000), 16000)
    result = run(*(a.format(t=tmp_path) for a in args))
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_a_scaled_noisy_file_is_warned_about_not_failed(tmp_path, golden):
    """noisy × 0.8 leaves −0.2·clean in noisy − clean: the sweep is no SNR sweep then."""
    s, e, rate, _ = golden
    clean = write(tmp_path / "c.wav", s, rate, "DOUBLE")
    noisy = write(tmp_path / "n.wav", 0.8 * (s + 0.3 * (e - s)), rate, "DOUBLE")
    out = tmp_path / "s.json"
    result = run("--clean", clean, "--noisy", noisy, "--json", out)
    assert result.exit_code == 0, result.output
    noise = 0.8 * (s + 0.3 * (e - s)) - s
    rho = (s @ noise) / np.sqrt((s @ s) * (noise @ noise))
    assert f"correlates with the clean signal (ρ = {rho:.2f})" in " ".join(result.stderr.split())
    monotone = [p for p in json.loads(out.read_text())["properties"]
                if p["property"] == "monotone_in_snr"]
    assert all(p["holds"] is None and "not evaluated" in p["observed"] for p in monotone)
    # The unscaled pair L has real noise: no warning, the sweep is checked.
    assert "correlates" not in run("--clean", clean, "--noisy",
                                   write(tmp_path / "l.wav", e, rate)).stderr


def test_a_clean_or_noisy_file_that_is_not_a_regular_file_exits_2(tmp_path):
    """--clean a link to /dev/zero (or a FIFO) is the user's input, not a bug: exit 2 with
    the reason, where a PairingError used to escape as an internal error (exit 4)."""
    os.symlink("/dev/zero", tmp_path / "z.wav")
    os.mkfifo(tmp_path / "f.wav")
    for args in (("--clean", tmp_path / "z.wav"), ("--clean", tmp_path / "f.wav")):
        result = run(*args, "-m", "snr")
        assert result.exit_code == 2, result.output
        assert "not a regular file" in " ".join(result.stderr.split())


def test_a_clean_file_too_short_to_low_pass_fails_that_case_only(tmp_path):
    """10 samples: sosfiltfilt cannot pad them; the low-pass case is an error cell with the
    reason, not an internal error (exit 4)."""
    clean = write(tmp_path / "short.wav", 0.1 * np.random.default_rng(0).standard_normal(10),
                  16000)
    result = run("--clean", clean, "-m", "snr", "--csv", tmp_path / "s.csv")
    assert result.exit_code in (0, 1), result.output
    rows = {row["case"]: row for row in read_csv(tmp_path / "s.csv")}
    assert "too short for the low-pass filter" in rows["low-passed 4 kHz"]["error"]


def test_a_noisy_file_equal_to_the_clean_one_exits_2(tmp_path):
    """noisy − clean is zero: the SNR sweep would divide by zero and show nothing."""
    clean = write(tmp_path / "a.wav", 0.1 * np.random.default_rng(0).standard_normal(16000),
                  16000)
    result = run("--clean", clean, "--noisy", clean, "-m", "snr")
    assert result.exit_code == 2, result.output
    assert "the noisy file equals the clean one" in " ".join(result.stderr.split())
