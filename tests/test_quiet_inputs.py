"""Inputs too quiet for a metric's arithmetic give an error with the reason, never a
number that drifted (an estimate scaled by 1e-20 once gave STOI 0.0 instead of 0.674)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import write
from sqeval import metrics as m
from sqeval.metrics import REGISTRY, MetricError

# compares numbers with a reference: repeated under every CPU profile (scripts/cpu_profiles.py)
pytestmark = pytest.mark.numeric

# Invariant to the gain of the estimate (and of both) in exact arithmetic.
INVARIANT = ["si_snr", "si_sdr", "osi_snr", "sdr", "stoi", "estoi", "pesq_wb", "pesq_nb",
             "fw_seg_snr", "llr"]
GAINS = [1e-3, 1e-8, 1e-12, 1e-20, 1e-30]


def value(name, reference, estimate):
    spec = REGISTRY[name]
    return spec.compute(reference=reference, estimate=estimate, fs=spec.rate_for(16000))


@pytest.mark.parametrize("both", [False, True], ids=["estimate scaled", "both scaled"])
@pytest.mark.parametrize("name", INVARIANT)
def test_a_gain_gives_the_same_value_or_says_too_quiet(golden, name, both):
    s, e = golden[0], golden[1]
    unscaled = value(name, s, e)
    for gain in GAINS:
        try:
            scaled = value(name, s * gain if both else s, e * gain)
        except MetricError as error:
            assert "too quiet" in str(error), (gain, str(error))
            assert gain < 1e-3, (gain, str(error))  # −60 dB is a level every metric resolves
            continue
        assert scaled == pytest.approx(unscaled, rel=1e-6), gain


def test_quiet_float32_estimate_through_the_scorer_gives_reasons(tmp_path, golden):
    from typer.testing import CliRunner

    from sqeval.cli import app

    s, e, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s, rate)
    write(tmp_path / "enh" / "a.wav", (e * 1e-30).astype(np.float32), rate, "FLOAT")
    out = tmp_path / "o.csv"
    result = CliRunner().invoke(app, ["score", str(tmp_path / "clean"), str(tmp_path / "enh"),
                                      "--csv", str(out), "--jobs", "1", "-m", "core,classic"])
    assert result.exit_code == 3, result.output
    import pandas as pd

    row = pd.read_csv(out).iloc[0]
    reasons = dict(part.split(": ", 1) for part in row["error"].split("; "))
    assert "unexpected" not in row["error"]
    for name in ("si_snr", "si_sdr", "osi_snr", "sdr", "stoi", "pesq_wb", "pesq_nb",
                 "fw_seg_snr", "wss", "csig", "cbak", "covl"):
        assert "too quiet" in reasons[name], name
    assert row["estoi"] == pytest.approx(value("estoi", s, e), rel=1e-6)  # ESTOI resolves it
    assert row["llr"] == pytest.approx(value("llr", s, e), rel=1e-6)


def test_snr_keeps_its_closed_form_for_a_quiet_estimate(golden):
    s, e = golden[0], golden[1] * 1e-20
    eps = np.finfo(np.float64).eps
    expected = 10 * np.log10((s @ s + eps) / ((e - s) @ (e - s) + eps))
    assert m.snr(reference=s, estimate=e) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(MetricError, match="reference is too quiet"):
        m.snr(reference=s * 1e-20, estimate=e)


def test_mc_mse_scales_exactly_with_the_level(golden):
    s, e = golden[0], golden[1]
    unscaled = m.mc_mse(reference=s, estimate=e, fs=16000)
    for gain in (1e-8, 1e-20):
        scaled = m.mc_mse(reference=s * gain, estimate=e * gain, fs=16000)
        assert scaled == pytest.approx(unscaled * gain**0.6, rel=1e-9)


@pytest.mark.parametrize("gain", [1e-6, 1e-12, 1e-30])
def test_rel_entropy_has_no_cancellation_for_close_signals(golden, gain):
    # For |x| ≪ 1, ln σ(ŝ) − ln σ(s) = (ŝ − s)/2 − (ŝ² − s²)/8 + O(x⁴): an accurate reference.
    from scipy.special import expit

    s, e = golden[0] * gain, golden[1] * gain
    expected = np.mean(expit(e) * ((e - s) / 2 - (e**2 - s**2) / 8))
    assert m.rel_entropy(reference=s, estimate=e) == pytest.approx(expected, rel=1e-8)


def test_pesq_failures_inside_the_c_code_become_sentences(golden, monkeypatch):
    import pesq

    def nan_score(*args, **kwargs):
        raise ValueError("cannot convert float NaN to integer")

    monkeypatch.setattr(pesq, "pesq", nan_score)
    with pytest.raises(MetricError, match="PESQ's C code gave no score"):
        m.pesq_wb(reference=golden[0], estimate=golden[1], fs=16000)


CLASSIC = ["seg_snr", "fw_seg_snr", "llr", "wss", "csig", "cbak", "covl"]
# Every metric whose arithmetic sums energies: too loud for float64 is an error, too.
ENERGY_BASED = ["snr", "si_snr", "si_sdr", "osi_snr", "sdr", "stoi", "estoi", *CLASSIC]


@pytest.mark.parametrize("gain", [1e-160, 1e-310])  # 1e-310: subnormal samples
@pytest.mark.parametrize("name", [*CLASSIC, "osi_snr"])
def test_energies_that_underflow_give_too_quiet_not_a_value(golden, name, gain):
    """At 1e-310 every frame energy underflowed to 0: seg_snr gave −10 dB as if it were a
    value, LLR called the frames digitally silent, OSI-SNR the pair orthogonal."""
    s, e = golden[0], golden[1]
    with pytest.raises(MetricError, match="too quiet"):
        value(name, s * gain, e * gain)


@pytest.mark.parametrize("name", ENERGY_BASED)
def test_energies_that_overflow_give_too_loud_with_the_reason(golden, name):
    """At 1e160 the energies overflow to inf: STOI said 'too short', the classic measures
    'frames digitally silent', SDR raised ValueError, the SNR family gave NaN."""
    s, e = golden[0], golden[1]
    for reference, estimate in ((s * 1e160, e * 1e160), (s, e * 1e160)):
        with pytest.raises(MetricError, match="too loud .*Check the file's scaling"):
            value(name, reference, estimate)


@pytest.mark.parametrize("name", ENERGY_BASED)
def test_a_loud_pair_within_float64s_range_keeps_its_value(golden, name):
    s, e = golden[0], golden[1]
    assert value(name, s * 1e100, e * 1e100) == pytest.approx(value(name, s, e), rel=1e-9)


def test_extreme_levels_through_the_scorer_give_reasons(tmp_path, golden):
    from typer.testing import CliRunner

    from sqeval.cli import app

    s, e, rate, _ = golden
    for name, gain in (("ok", 1.0), ("quiet", 1e-310), ("loud", 1e160)):
        write(tmp_path / "clean" / f"{name}.wav", s * gain, rate, "DOUBLE")
        write(tmp_path / "enh" / f"{name}.wav", e * gain, rate, "DOUBLE")
    out = tmp_path / "o.csv"
    result = CliRunner().invoke(app, ["score", str(tmp_path / "clean"), str(tmp_path / "enh"),
                                      "--csv", str(out), "--jobs", "1", "--no-cache", "-m",
                                      ",".join(ENERGY_BASED)])
    assert result.exit_code == 3, result.output
    import pandas as pd

    rows = pd.read_csv(out).set_index("file")
    assert not isinstance(rows.loc["ok.wav", "error"], str)  # an ordinary pair: no error
    for file, words in (("quiet.wav", "too quiet"), ("loud.wav", "too loud")):
        reasons = dict(part.split(": ", 1) for part in rows.loc[file, "error"].split("; "))
        for name in ENERGY_BASED:
            assert np.isnan(rows.loc[file, name]), (file, name)
            assert words in reasons[name], (file, name, reasons[name])


@pytest.mark.parametrize("gain, words", [(1e-310, "too quiet"), (1e-40, "too quiet"),
                                         (1e160, "too loud")])
def test_dnsmos_refuses_levels_its_float32_input_cannot_hold(golden, gain, words):
    """At 1e-310 the float32 samples were zeros, and DNSMOS rated silence as the file."""
    from sqeval.metrics.dnsmos import dnsmos

    with pytest.raises(MetricError, match=f"{words} for DNSMOS"):
        dnsmos(estimate=golden[1] * gain, fs=16000)
