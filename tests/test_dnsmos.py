"""DNSMOS against speechmos's own ``dnsmos.run``, and scoring without references."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import resample_poly
from typer.testing import CliRunner

from conftest import near_golden, write
from sqeval.cli import app
from sqeval.metrics import REGISTRY, MetricError
from sqeval.metrics.dnsmos import dnsmos

# compares numbers with a reference: repeated under every CPU profile (scripts/cpu_profiles.py)
pytestmark = pytest.mark.numeric

runner = CliRunner()
NAMES = {"dnsmos_sig": "sig_mos", "dnsmos_bak": "bak_mos", "dnsmos_ovrl": "ovrl_mos",
         "dnsmos_p808": "p808_mos"}


def reference_dnsmos(x, fs):
    from speechmos import dnsmos as reference

    return {ours: float(reference.run(x, fs)[theirs]) for ours, theirs in NAMES.items()}


def test_equals_speechmos_on_clean_and_noisy_speech(golden):
    s, e, rate, _ = golden
    long = np.concatenate([e, s, e, s])  # 12.4 s: four 9.01 s windows, not a repeated clip
    for x in (s, e, long):
        ours, theirs = dnsmos(estimate=x, fs=rate), reference_dnsmos(x, rate)
        for name in NAMES:  # onnxruntime's thread count moves the 7th digit at most
            assert ours[name] == pytest.approx(theirs[name], abs=1e-5), name
    assert dnsmos(estimate=s, fs=rate)["dnsmos_ovrl"] > dnsmos(estimate=e, fs=rate)["dnsmos_ovrl"]


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_rates_follow_the_reference_procedure(golden, rate):
    # dnsmos_local.py: sf.read, then librosa.resample(x, orig_sr=fs, target_sr=16000)
    import librosa

    s, e, _, _ = golden
    x = 0.9 * resample_poly(np.concatenate([e, s]), rate, 16000)  # speech at ``rate``
    ours = dnsmos(estimate=x, fs=rate)
    theirs = reference_dnsmos(librosa.resample(x, orig_sr=rate, target_sr=16000), 16000)
    for name in NAMES:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-5), name


def test_mel_features_and_resampling_equal_librosa(golden):
    # sqeval computes them without importing librosa (200 MB); librosa is the reference.
    import librosa

    from sqeval.metrics.dnsmos import _mel_features, _mel_filters, _to_16k

    # the same formula as librosa's in numpy here and there; float32 triangles: within a
    # few float32 units of the largest weight (a misplaced edge would be off by 10 %)
    theirs = librosa.filters.mel(sr=16000, n_fft=321, n_mels=120)
    np.testing.assert_allclose(_mel_filters(), theirs, rtol=0,
                               atol=4 * np.finfo(np.float32).eps * theirs.max())
    s, e, rate, _ = golden
    rng = np.random.default_rng(5)
    quiet = 1e-4 * rng.standard_normal(144000)
    for window in (np.resize(s, 144000), np.resize(e, 144000), quiet):
        mel = librosa.feature.melspectrogram(y=window, sr=16000, n_fft=321, hop_length=160,
                                             n_mels=120)
        theirs = ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T
        assert _mel_features(window).shape == theirs.shape == (900, 120)
        assert np.max(np.abs(_mel_features(window) - theirs)) < 1e-12  # FFT rounding only
    for fs in (8000, 22050, 44100, 48000):
        for x in (rng.standard_normal(3 * fs + 7), rng.standard_normal((2, fs + 1))):
            theirs = librosa.resample(x, orig_sr=fs, target_sr=16000)
            assert theirs.shape == _to_16k(x, fs).shape
            # soxr's compiled resampler on both sides (librosa calls it): the same bits
            assert np.array_equal(_to_16k(x, fs), theirs)


def test_dnsmos_is_the_same_with_any_number_of_onnxruntime_threads(tmp_path, golden):
    """A worker's share of the cores sets onnxruntime's threads (2 for --jobs 1 on 2 cores,
    1 each for --jobs 2): with onnxruntime 1.32 the numbers do not depend on it, to the
    last bit; older releases (1.18, the oldest allowed) move the 7th digit."""
    import os

    s, e, rate, _ = golden
    write(tmp_path / "x.wav", np.concatenate([e, s, e]), rate, "DOUBLE")
    code = ("import sys, soundfile as sf; from sqeval.metrics.dnsmos import dnsmos, "
            "onnx_threads; x, fs = sf.read(sys.argv[1]); "
            "print(onnx_threads(), [repr(v) for v in dnsmos(estimate=x, fs=fs).values()])")
    outputs = []
    for threads in ("1", "2", "3"):
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        env["SQEVAL_ONNX_THREADS"] = threads
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.wav")], env=env,
                             capture_output=True, text=True, check=True).stdout.split(" ", 1)
        assert out[0] == threads
        outputs.append([float(v.strip("'")) for v in out[1].strip().strip("[]").split(", ")])
    for other in outputs[1:]:
        assert other == pytest.approx(outputs[0], rel=1e-6, abs=0)
    import onnxruntime

    if tuple(int(p) for p in onnxruntime.__version__.split(".")[:2]) >= (1, 32):
        assert outputs[0] == outputs[1] == outputs[2]


def test_long_clips_use_sessions_without_the_arena_and_the_values_are_the_same(golden,
                                                                             monkeypatch):
    """Clips up to ARENA_SECONDS use onnxruntime's arena (faster); longer ones sessions
    without it (167 MB less); a process holds one kind at a time; same numbers."""
    import importlib

    module = importlib.import_module("sqeval.metrics.dnsmos")
    s, e, rate, _ = golden
    short = dnsmos(estimate=e, fs=rate)
    assert list(module._SESSIONS) == [True]
    monkeypatch.setattr(module, "ARENA_SECONDS", 1.0)  # the golden clip is now "long"
    assert dnsmos(estimate=e, fs=rate) == short
    assert list(module._SESSIONS) == [False]
    options = module._SESSIONS[False][0].get_session_options()
    assert not options.enable_cpu_mem_arena


def test_a_worker_gets_its_share_of_the_cores_for_onnxruntime(monkeypatch):
    import os

    from sqeval import runner

    from sqeval.metrics.dnsmos import onnx_threads

    monkeypatch.delenv("SQEVAL_ONNX_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runner, "default_jobs", lambda: 4)
    for workers, share in ((1, 4), (2, 2), (3, 1), (8, 1)):
        with runner.single_threaded_children(workers):
            assert os.environ["SQEVAL_ONNX_THREADS"] == str(share)
            assert os.environ["OMP_NUM_THREADS"] == "1"  # BLAS: one thread per worker
            assert onnx_threads() == share  # what a worker started here reads
        assert "SQEVAL_ONNX_THREADS" not in os.environ and "OMP_NUM_THREADS" not in os.environ
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice is every worker's
    with runner.single_threaded_children(1):
        assert "SQEVAL_ONNX_THREADS" not in os.environ and onnx_threads() == 3


def test_dnsmos_does_not_import_librosa():
    # librosa's import (numba, llvmlite) costs about 200 MB in every worker.
    code = ("import sys, numpy as np; from sqeval.metrics.dnsmos import dnsmos; "
            "x = np.random.default_rng(0).standard_normal(48000); "
            "dnsmos(estimate=x, fs=16000); dnsmos(estimate=x, fs=48000); "
            "print([m for m in sys.modules if m.split('.')[0] in ('librosa', 'numba')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_batch_and_errors(golden):
    s, e, rate, _ = golden
    batch = dnsmos(estimate=np.stack([s, e]), fs=rate)
    assert batch["dnsmos_ovrl"].shape == (2,)
    assert batch["dnsmos_ovrl"][1] == pytest.approx(dnsmos(estimate=e, fs=rate)["dnsmos_ovrl"])
    with pytest.raises(MetricError, match="silent"):
        dnsmos(estimate=np.zeros(16000), fs=16000)
    bad = s.copy()
    bad[3] = np.inf
    with pytest.raises(MetricError, match="Inf"):
        dnsmos(estimate=bad, fs=rate)
    assert not REGISTRY["dnsmos_ovrl"].intrusive and REGISTRY["pesq_wb"].intrusive


def rows(path):
    with open(path, encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_no_reference_scores_folders_without_clean_files(tmp_path, golden):
    s, e, rate, _ = golden
    write(tmp_path / "noisy" / "a.wav", e, rate, "DOUBLE")
    write(tmp_path / "ours" / "a.wav", s, rate, "DOUBLE")
    write(tmp_path / "ours" / "b.wav", resample_poly(e, 3, 1), 48000, "DOUBLE")
    out = tmp_path / "o.csv"
    command = ["score", "--no-reference", str(tmp_path / "noisy"), str(tmp_path / "ours"),
               "--csv", str(out), "--jobs", "1"]
    result = runner.invoke(app, command)
    assert result.exit_code == 3, result.output  # b.wav is missing from noisy/
    table = {(row["file"], row["system"]): row for row in rows(out)}
    assert set(table) == {("a.wav", "noisy"), ("a.wav", "ours"), ("b.wav", "noisy"),
                          ("b.wav", "ours")}
    assert list(rows(out)[0]) == ["file", "system", *NAMES, "error"]
    expected = dnsmos(estimate=s, fs=rate)
    for name in NAMES:
        assert float(table["a.wav", "ours"][name]) == pytest.approx(expected[name], abs=1e-5)
    assert float(table["b.wav", "ours"]["dnsmos_ovrl"]) == pytest.approx(
        dnsmos(estimate=resample_poly(e, 3, 1), fs=48000)["dnsmos_ovrl"], abs=1e-5)
    assert "no file of this name" in table["b.wav", "noisy"]["error"]
    first = out.read_text()
    assert runner.invoke(app, command).exit_code == 3  # from the cache: the same CSV
    assert out.read_text() == first


def test_no_reference_refuses_intrusive_metrics_and_align(tmp_path, golden):
    write(tmp_path / "x" / "a.wav", golden[0], golden[2])
    result = runner.invoke(app, ["score", "--no-reference", str(tmp_path / "x"), "--metrics",
                                 "dnsmos_ovrl,pesq_wb"])
    assert result.exit_code == 2 and "pesq_wb" in result.output
    result = runner.invoke(app, ["score", "--no-reference", str(tmp_path / "x"), "--align"])
    assert result.exit_code == 2 and "--align" in result.output


def test_with_references_the_clean_files_get_dnsmos_too(tmp_path, golden):
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s, rate, "DOUBLE")
    write(tmp_path / "enh" / "a.wav", e, rate, "DOUBLE")
    out = tmp_path / "o.csv"
    result = runner.invoke(app, ["score", str(tmp_path / "clean"), str(tmp_path / "enh"),
                                 "--metrics", "pesq_wb,dnsmos_ovrl", "--csv", str(out),
                                 "--jobs", "1"])
    assert result.exit_code == 0, result.output  # pesq_wb of the clean row is not a failure
    table = {row["system"]: row for row in rows(out)}
    assert list(table) == ["clean", "enh"]
    assert table["clean"]["pesq_wb"] == "" and "clean reference itself" in table["clean"]["error"]
    assert float(table["clean"]["dnsmos_ovrl"]) == pytest.approx(
        dnsmos(estimate=s, fs=rate)["dnsmos_ovrl"], abs=1e-5)
    assert float(table["enh"]["pesq_wb"]) == near_golden("pesq_wb", golden[3]["pesq_wb"])
    assert "do not apply" not in result.output
    # A gate without a system is about the outputs, not the clean references.
    gated = runner.invoke(app, ["score", str(tmp_path / "clean"), str(tmp_path / "enh"),
                                "--metrics", "pesq_wb,dnsmos_ovrl", "--gate", "pesq_wb>=1",
                                "--jobs", "1"])
    assert gated.exit_code == 0, gated.output
    gate_rows = [line.split("|")[2].strip() for line in gated.output.splitlines()
                 if line.startswith("| pesq_wb>=1 ")]
    assert gate_rows == ["enh"]


def test_a_missing_extra_is_a_usage_error_that_says_how_to_install(tmp_path, golden,
                                                                 monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "speechmos" else real(name, *a))
    write(tmp_path / "x" / "a.wav", golden[0], golden[2])
    result = runner.invoke(app, ["score", "--no-reference", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "pip install '.[dnsmos]'" in result.output and "speechmos" in result.output
