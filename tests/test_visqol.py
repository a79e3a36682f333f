"""ViSQOL against visqol-python called directly, with the same explicit MOS mapping."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from conftest import write
from sqeval.cli import app
from sqeval.dsp import resample
from sqeval.metrics import REGISTRY, MetricError
from sqeval.metrics import visqol as module
from sqeval.metrics.visqol import visqol, visqol_audio
from sqeval.provenance import provenance

# compares numbers with a reference: repeated under every CPU profile (scripts/cpu_profiles.py)
pytestmark = pytest.mark.numeric

runner = CliRunner()
SAMPLE_DATA = module.__file__.rsplit("/sqeval/", 1)[0] + "/sample_data"


def direct(reference, estimate, mode, lattice=None):
    """visqol-python's own number: the speech mode with the mapping asked for, or audio."""
    from visqol import VisqolApi

    logging.getLogger("visqol").setLevel(logging.ERROR)
    api = VisqolApi()
    if mode == "speech":
        api.create(mode="speech", use_lattice_model=True if lattice is None else lattice)
        rate = 16000
    else:
        api.create(mode="audio", use_lattice_model=False)
        rate = 48000
    return float(api.measure_from_arrays(reference, estimate, rate).moslqo)


def same(ours, theirs):
    """Equal to 1e-9 MOS: numba's parallel loops sum in an order that depends on their
    thread count (sqeval uses one), which moves the 14th digit (measured: 4e-14)."""
    return abs(ours - theirs) <= 1e-9


def sample_pair(name):
    return (sf.read(f"{SAMPLE_DATA}/clean/{name}.wav")[0],
            sf.read(f"{SAMPLE_DATA}/enhanced/{name}.wav")[0])


def test_speech_mode_equals_visqol_python_with_the_lattice_mapping(golden):
    s, e, rate, _ = golden
    for reference, estimate in ((s, e), (s, s), sample_pair("nl_fan_10dB")):
        assert same(visqol(reference=reference, estimate=estimate, fs=rate),
                    direct(reference, estimate, "speech"))
    # The mapping matters: the exponential fit (use_lattice_model=False) says 2.10, not 1.29.
    ours = visqol(reference=s, estimate=e, fs=rate)
    assert abs(direct(s, e, "speech", lattice=False) - ours) > 0.5


def test_audio_mode_equals_visqol_python_at_48_khz(golden):
    s, e, rate, _ = golden
    for reference, estimate in ((s, e), sample_pair("de_babble_0dB")):
        up_s, up_e = resample(reference, rate, 48000), resample(estimate, rate, 48000)
        assert same(visqol_audio(reference=up_s, estimate=up_e, fs=48000),
                    direct(up_s, up_e, "audio"))


def test_the_mapping_model_is_in_the_registry_and_the_provenance():
    assert "deep-lattice" in REGISTRY["visqol"].source
    assert "visqol-python 3.8.0" in REGISTRY["visqol"].source
    assert "nu-SVR" in REGISTRY["visqol_audio"].source
    models = provenance()["models"]
    assert "use_lattice_model=True" in models["visqol"] and "nu-SVR" in models["visqol_audio"]
    assert provenance()["versions"]["ai-edge-litert"] is not None


@pytest.mark.parametrize("mode, function, rate", [("speech", visqol, 16000),
                                                  ("audio", visqol_audio, 48000)])
def test_the_shortest_pair_is_visqol_pythons_and_shorter_is_an_error(golden, mode, function,
                                                                     rate):
    s, e = (resample(x, 16000, rate) for x in golden[:2])
    n = module.MIN_SAMPLES[mode]
    assert n == {"speech": 10240, "audio": 46080}[mode]
    assert same(function(reference=s[:n], estimate=e[:n], fs=rate), direct(s[:n], e[:n], mode))
    with pytest.raises((IndexError, ValueError)):  # visqol-python's own failure, one shorter
        direct(s[:n - 1], e[:n - 1], mode)
    with pytest.raises(MetricError, match=rf"too short for ViSQOL \({mode} mode\): the "
                                          rf"reference has {n - 1} samples"):
        function(reference=s[:n - 1], estimate=e[:n], fs=rate)
    with pytest.raises(MetricError, match=rf"the estimate has {n - 1} samples"):
        function(reference=s[:n], estimate=e[:n - 1], fs=rate)


def test_silence_and_bad_input_are_errors_with_reasons(golden):
    s, e, rate, _ = golden
    with np.errstate(invalid="ignore"):  # its level matching multiplies by inf
        assert np.isnan(direct(s, np.zeros_like(s), "speech"))  # visqol-python's NaN
    with pytest.raises(MetricError, match="estimate is silent"):
        visqol(reference=s, estimate=np.zeros_like(s), fs=rate)
    assert np.isfinite(direct(np.zeros_like(s), e, "speech"))  # a number for no reference
    with pytest.raises(MetricError, match="reference is silent"):
        visqol(reference=np.zeros_like(s), estimate=e, fs=rate)
    with pytest.raises(MetricError, match="runs at 48000 Hz; got 16000 Hz"):
        visqol_audio(reference=s, estimate=e, fs=16000)
    bad = e.copy()
    bad[10] = np.inf
    with pytest.raises(MetricError, match="1 Inf"):
        visqol(reference=s, estimate=bad, fs=rate)


def test_lengths_may_differ_and_a_batch_equals_the_loop(golden):
    s, e, rate, _ = golden
    assert same(visqol(reference=s, estimate=e[:-3000], fs=rate), direct(s, e[:-3000], "speech"))
    batch = visqol(reference=np.stack([s, s]), estimate=np.stack([e, s]), fs=rate)
    assert batch.shape == (2,)
    assert list(batch) == [visqol(reference=s, estimate=e, fs=rate),
                           visqol(reference=s, estimate=s, fs=rate)]


def test_long_pairs_are_the_mean_over_equal_segments(golden, monkeypatch):
    s, e, rate, _ = golden  # 49600 samples
    monkeypatch.setattr(module, "BLOCK_SAMPLES", 25000)  # two segments of 24800
    expected = np.mean([direct(s[:24800], e[:24800], "speech"),
                        direct(s[24800:], e[24800:], "speech")])
    assert same(visqol(reference=s, estimate=e, fs=rate), expected)
    assert abs(expected - direct(s, e, "speech")) > 1e-4  # the segments change the number
    silent_half = e.copy()
    silent_half[24800:] = 0
    with pytest.raises(MetricError, match=r"estimate is silent \(all samples zero\) "
                                          r"\(segment 2 of 2, 1.6–3.1 s\)"):
        visqol(reference=s, estimate=silent_half, fs=rate)
    monkeypatch.setattr(module, "BLOCK_SAMPLES", len(s))  # fits one block: the whole pair
    assert same(visqol(reference=s, estimate=e, fs=rate), direct(s, e, "speech"))


def test_score_command_resamples_by_the_policy_and_matches(tmp_path, golden):
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s, rate, "DOUBLE")
    write(tmp_path / "enh" / "a.wav", e, rate, "DOUBLE")
    out = tmp_path / "o.csv"
    result = runner.invoke(app, ["score", str(tmp_path / "clean"), str(tmp_path / "enh"),
                                 "--metrics", "visqol_v3", "--csv", str(out), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "XNNPACK" not in result.output  # TFLite's C++ INFO line is kept off stderr
    with open(out, encoding="utf-8") as stream:
        row = next(row for row in csv.DictReader(stream) if row["system"] == "enh")
    assert same(float(row["visqol"]), direct(s, e, "speech"))
    up = [resample(x, rate, 48000) for x in (s, e)]
    assert same(float(row["visqol_audio"]), direct(*up, "audio"))


def test_a_missing_extra_is_a_usage_error_that_says_how_to_install(tmp_path, golden,
                                                                 monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ai_edge_litert" else real(name, *a))
    write(tmp_path / "c" / "a.wav", golden[0], golden[2])
    write(tmp_path / "e" / "a.wav", golden[1], golden[2])
    result = runner.invoke(app, ["score", str(tmp_path / "c"), str(tmp_path / "e"),
                                 "--metrics", "visqol"])
    assert result.exit_code == 2
    assert ("ViSQOL needs the optional extra visqol: pip install '.[visqol]'" in result.output
            and "ai-edge-litert not installed" in result.output)
