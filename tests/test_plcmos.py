"""PLCMOS against speechmos's own ``plcmos.run`` (after ``np.random.seed(0)``)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly
from typer.testing import CliRunner

from conftest import write
from sqeval.cli import app
from sqeval.metrics import REGISTRY, MetricError
from sqeval.metrics import plcmos as module
from sqeval.metrics.plcmos import plcmos

# compares numbers with a reference: repeated under every CPU profile (scripts/cpu_profiles.py)
pytestmark = pytest.mark.numeric

runner = CliRunner()
SAMPLE_DATA = module.__file__.rsplit("/sqeval/", 1)[0] + "/sample_data"


def reference_plcmos(x):
    """speechmos's PLCMOS with its global generator seeded as sqeval's embeddings are."""
    from speechmos import plcmos as reference

    np.random.seed(0)
    return float(reference.run(x, 16000)["plcmos"])


def test_equals_speechmos_on_speech(golden):
    s, e, rate, _ = golden
    noisy = [sf.read(f"{SAMPLE_DATA}/noisy/{name}.wav")[0]
             for name in ("de_babble_0dB", "en_white_-5dB", "nl_fan_10dB")]
    for x in (s, e, np.concatenate([e, s, e, s]), *noisy):  # 12.4 s: still one segment
        assert plcmos(estimate=x, fs=rate) == pytest.approx(reference_plcmos(x), abs=1e-5)
    assert plcmos(estimate=s, fs=rate) > plcmos(estimate=e, fs=rate) + 1  # clean above babble


def test_features_are_speechmos_features(golden):
    """The same operations as speechmos's stft_transform, in numpy on both sides, then
    float32: within a few float32 units of the largest feature (np.log may be SIMD code,
    and one float64 ULP can round to the other float32 neighbour)."""
    from speechmos import plcmos as reference

    reference.run(golden[0], 16000)  # makes speechmos's model object
    quiet = 1e-4 * np.random.default_rng(3).standard_normal(5000)
    gaps = golden[1].copy()
    gaps[8000:12000] = 0  # a lost packet stretch: zero-power bins take the floor
    for x in (golden[0], quiet, gaps):
        theirs = np.float32(reference.plcmos.stft_transform(x))[np.newaxis, np.newaxis]
        np.testing.assert_allclose(module.features(x), theirs, rtol=0,
                                   atol=4 * np.finfo(np.float32).eps * np.abs(theirs).max())


def test_deterministic_and_the_global_generator_is_left_alone(golden):
    from speechmos import plcmos as reference

    np.random.seed(7)
    state = np.random.get_state()
    first = plcmos(estimate=golden[1], fs=16000)
    after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(state[1:3], after[1:3]))
    assert plcmos(estimate=golden[1], fs=16000) == first
    # speechmos unseeded moves from call to call; sqeval's number is its seed-0 value.
    np.random.seed(1)
    unseeded = float(reference.run(golden[1], 16000)["plcmos"])
    assert unseeded != first and first == pytest.approx(reference_plcmos(golden[1]), abs=1e-5)
    assert np.array_equal(module.rater_embeddings(),
                          np.random.RandomState(0).normal(size=(15, 64)).astype(np.float32))


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_other_rates_are_resampled_as_librosa_load_does(golden, rate):
    import librosa

    s, e, _, _ = golden
    x = 0.9 * resample_poly(np.concatenate([e, s]), rate, 16000)
    theirs = reference_plcmos(librosa.resample(x, orig_sr=rate, target_sr=16000))
    assert plcmos(estimate=x, fs=rate) == pytest.approx(theirs, abs=1e-5)


def test_the_shortest_signal_is_the_models_and_shorter_is_an_error(golden):
    from speechmos import plcmos as reference

    x = golden[1][:module.MIN_SAMPLES]
    assert module.MIN_SAMPLES == 1281
    assert plcmos(estimate=x, fs=16000) == pytest.approx(reference_plcmos(x), abs=1e-5)
    with pytest.raises(Exception, match="Invalid input shape"):  # onnxruntime's failure
        reference.run(x[:-1], 16000)
    with pytest.raises(MetricError, match=r"too short for PLCMOS: 1280 samples at 16 kHz "
                                          r"\(80.0 ms\); its model needs at least 1281"):
        plcmos(estimate=x[:-1], fs=16000)


def test_long_files_are_the_mean_over_equal_segments(golden, monkeypatch):
    s, e, _, _ = golden
    x = np.concatenate([s, e])  # 99200 samples
    monkeypatch.setattr(module, "BLOCK_SAMPLES", 40000)
    assert module.segments(len(x), 40000) == [(0, 33066), (33066, 66133), (66133, 99200)]
    expected = np.mean([reference_plcmos(x[a:b]) for a, b in module.segments(len(x), 40000)])
    assert plcmos(estimate=x, fs=16000) == pytest.approx(expected, abs=1e-5)
    assert abs(expected - reference_plcmos(x)) > 1e-3  # the segments do change the number
    monkeypatch.setattr(module, "BLOCK_SAMPLES", len(x))  # fits one block: speechmos's value
    assert plcmos(estimate=x, fs=16000) == pytest.approx(reference_plcmos(x), abs=1e-5)
    silent_middle = x.copy()
    silent_middle[33066:66133] = 0
    monkeypatch.setattr(module, "BLOCK_SAMPLES", 40000)
    with pytest.raises(MetricError, match=r"segment 2 of 3 \(2.1–4.1 s\) is silent"):
        plcmos(estimate=silent_middle, fs=16000)


def test_batch_and_errors(golden):
    s, e, rate, _ = golden
    batch = plcmos(estimate=np.stack([s, e]), fs=rate)
    assert batch.shape == (2,) and batch[1] == plcmos(estimate=e, fs=rate)
    with pytest.raises(MetricError, match="silent"):
        plcmos(estimate=np.zeros(16000), fs=16000)
    bad = s.copy()
    bad[3] = np.nan
    with pytest.raises(MetricError, match="1 NaN"):
        plcmos(estimate=bad, fs=rate)
    with pytest.raises(MetricError, match="too quiet for PLCMOS"):
        plcmos(estimate=s * 1e-300, fs=rate)
    with pytest.raises(MetricError, match="too loud for PLCMOS"):
        plcmos(estimate=s * 1e160, fs=rate)
    # Beyond [−1, 1] (speechmos refuses those arrays) it is scored: a gain shifts features.
    assert np.isfinite(plcmos(estimate=4 * s, fs=rate))
    spec = REGISTRY["plcmos"]
    assert not spec.intrusive and spec.group == "plc"
    assert "RandomState(0)" in spec.source and "plcmos_v2.onnx" in spec.source


def test_score_command_writes_plcmos_for_every_system(tmp_path, golden):
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s, rate, "DOUBLE")
    write(tmp_path / "enh" / "a.wav", e, rate, "DOUBLE")
    out = tmp_path / "o.csv"
    result = runner.invoke(app, ["score", str(tmp_path / "clean"), str(tmp_path / "enh"),
                                 "--metrics", "pesq_wb,plcmos", "--csv", str(out),
                                 "--jobs", "1"])
    assert result.exit_code == 0, result.output
    with open(out, encoding="utf-8") as stream:
        table = {row["system"]: row for row in csv.DictReader(stream)}
    assert float(table["enh"]["plcmos"]) == plcmos(estimate=e, fs=rate)
    assert float(table["clean"]["plcmos"]) == plcmos(estimate=s, fs=rate)


def test_a_missing_extra_is_a_usage_error_that_says_how_to_install(tmp_path, golden,
                                                                 monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    write(tmp_path / "x" / "a.wav", golden[0], golden[2])
    result = runner.invoke(app, ["score", "--no-reference", str(tmp_path / "x"), "--metrics",
                                 "plcmos"])
    assert result.exit_code == 2
    assert ("PLCMOS needs the optional extra dnsmos: pip install '.[dnsmos]'" in result.output
            and "onnxruntime not installed" in result.output)
