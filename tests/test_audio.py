"""Reading audio (float64 mono, the channel policy, every problem an AudioError) and the
resampling of sqeval's rate policy."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from conftest import write
from sqeval.audio import AudioError, ChannelPolicy, read_audio
from sqeval.dsp import resample

# compares numbers with a reference: repeated under every CPU profile (scripts/cpu_profiles.py)
pytestmark = pytest.mark.numeric


def test_reads_float64_mono_at_its_rate(tmp_path):
    x = np.array([0.0, 0.5, -0.25, 0.125])
    samples, rate = read_audio(write(tmp_path / "a.wav", x, 8000, "DOUBLE"))
    assert samples.dtype == np.float64 and samples.shape == (4,) and rate == 8000
    assert samples.tolist() == x.tolist()


def test_pcm16_is_scaled_to_plus_minus_one(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.array([16384, -32768], dtype=np.int16), 16000, subtype="PCM_16")
    assert read_audio(path)[0].tolist() == [0.5, -1.0]  # k / 32768, exactly


def test_channel_policy(tmp_path):
    stereo = np.array([[1.0, 0.0], [0.5, -0.5], [0.0, 1.0]])
    path = write(tmp_path / "s.wav", stereo, 16000, "DOUBLE")
    with pytest.raises(AudioError, match="2 channels.*--channel K.*--mix mono"):
        read_audio(path)
    assert read_audio(path, ChannelPolicy(channel=1))[0].tolist() == [0.0, -0.5, 1.0]
    assert read_audio(path, ChannelPolicy(mix=True))[0].tolist() == [0.5, 0.0, 0.5]
    with pytest.raises(AudioError, match="asked for --channel 2, but the file has 2"):
        read_audio(path, ChannelPolicy(channel=2))


def test_problems_are_audio_errors_that_say_why(tmp_path):
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioError, match="unreadable audio"):
        read_audio(tmp_path / "text.wav")
    with pytest.raises(AudioError, match="no samples"):
        read_audio(write(tmp_path / "empty.wav", np.zeros(0), 16000, "DOUBLE"))
    with pytest.raises(AudioError, match="1 NaN and 1 Inf samples"):
        read_audio(write(tmp_path / "bad.wav", np.array([0.1, np.nan, np.inf]), 16000,
                         "DOUBLE"))


def test_a_compressed_file_gets_the_decoded_bound_of_a_16_bit_wav(tmp_path, monkeypatch):
    """A FLAC far under the limit on disk can decode to gigabytes (6 h of silence in
    1.1 MB is 3.1 GB as float64): refused from its header, before decoding, when it holds
    more samples than a 16-bit file of MAX_AUDIO_BYTES, here lowered to 2000 bytes."""
    from sqeval import audio

    monkeypatch.setattr(audio, "MAX_AUDIO_BYTES", 2000)  # 1000 samples over all channels
    silence = write(tmp_path / "silence.flac", np.zeros(4000), 16000, "PCM_16")
    assert silence.stat().st_size < 2000  # under the limit on disk
    with pytest.raises(AudioError, match=r"4000 frames × 1 channel\(s\) = 4000 samples, "
                                         r"more than the 1000"):
        read_audio(silence)
    stereo = write(tmp_path / "stereo.flac", np.zeros((600, 2)), 16000, "PCM_16")
    with pytest.raises(AudioError, match="= 1200 samples"):
        read_audio(stereo, ChannelPolicy(channel=0))
    fits = write(tmp_path / "fits.wav", np.full(900, 0.25), 16000, "PCM_16")  # 1844 bytes
    samples, rate = read_audio(fits)
    assert rate == 16000 and len(samples) == 900 and samples[0] == 0.25


def assert_resampled_alike(ours, theirs, x):
    """Tolerance policy: sqeval's resampler and ``resample_poly`` add the same products
    in the same order, but in different compiled code (scipy's C loop may fuse a
    multiply and an add where the CPU has FMA). Each output sums at most a few hundred
    products of taps (Σ|h·up| < 2) and samples, so the two differ by far less than
    1e-12·max|x|; a wrong tap or offset moves samples by 1e-3 and more."""
    assert ours.shape == theirs.shape
    bound = 1e-12 * (np.max(np.abs(x)) if x.size else 0.0)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=bound)


@pytest.mark.parametrize("source, target, up, down", [(48000, 16000, 1, 3),
                                                      (44100, 16000, 160, 441),
                                                      (8000, 16000, 2, 1)])
def test_resample_is_resample_poly_with_the_reduced_ratio(source, target, up, down):
    from scipy.signal import resample_poly

    x = np.random.default_rng(0).standard_normal((2, source // 10))
    y = resample(x, source, target)
    assert y.shape == (2, -(-x.shape[-1] * up // down))
    assert_resampled_alike(y, resample_poly(x, up, down, axis=-1), x)
    assert resample(x, source, source) is x  # nothing to do: the same array


@pytest.mark.parametrize("source, target", [(16000, 8000), (16000, 10000), (48000, 16000),
                                            (44100, 16000), (22050, 16000), (11025, 16000),
                                            (8000, 16000), (16000, 44100), (48000, 44100),
                                            (24000, 16000), (32000, 16000)])
def test_resample_equals_resample_poly_at_every_length(source, target):
    """Without importing scipy.signal, the resampler gives resample_poly's samples (within
    the bound above), also at lengths shorter than the filter and around its edges."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(source, target)
    rng = np.random.default_rng(source + target)
    for n in (1, 2, 3, 7, 40, 41, 61, 100, 1001, 4801, 48123):
        x = rng.standard_normal(n)
        assert_resampled_alike(resample(x, source, target),
                               resample_poly(x, target // g, source // g), x)


def test_empty_input_resamples_to_an_empty_result_as_resample_poly():
    from scipy.signal import resample_poly

    for shape in ((0, 100), (2, 0), (0,)):
        x = np.zeros(shape)
        assert resample(x, 48000, 16000).shape == resample_poly(x, 1, 3, axis=-1).shape


@pytest.mark.parametrize("up, down", [(1, 3), (160, 441), (2, 1), (147, 160)])
def test_the_resampling_filter_is_firwins_kaiser_design(up, down):
    """resample_poly's default filter: ``firwin`` with a β = 5 Kaiser window. The window's
    Bessel function is numpy's here and Cephes' in scipy (each within a few ULP of I₀):
    taps agree to a few units in the last place of the largest tap."""
    from scipy.signal import firwin

    from sqeval.dsp import _lowpass

    half = 10 * max(up, down)
    theirs = firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", 5.0))
    np.testing.assert_allclose(_lowpass(up, down), theirs, rtol=0,
                               atol=8 * np.finfo(float).eps * np.max(theirs))


@pytest.mark.parametrize("n", [1, 2, 3, 256, 320, 400, 512, 1024])
def test_hann_is_scipys_periodic_hann(n):
    """The same general-cosine formula; numpy's and scipy's cos may be different compiled
    code (SIMD or libm), each within a few ULP: so 4 ULP of 1."""
    from scipy.signal import get_window

    from sqeval.dsp import hann

    np.testing.assert_allclose(hann(n), get_window("hann", n), rtol=0,
                               atol=4 * np.finfo(float).eps)


def test_scoring_the_default_metrics_imports_no_scipy_subpackage(tmp_path, golden):
    """scipy.signal takes over a second to import (it loads scipy.stats), and any of
    scipy.fft, scipy.linalg and scipy.special 0.3 s: more than scoring a short pair. The
    default metrics, scored by the command line in its own process, need none of them."""
    import subprocess
    import sys

    s, e, rate, _ = golden
    write(tmp_path / "c.wav", s, rate, "DOUBLE")
    write(tmp_path / "e.wav", e[: len(e) - 800], rate, "DOUBLE")
    code = ("import sys\nfrom sqeval.cli import app\n"
            "try:\n    app([sys.argv[1], sys.argv[2], sys.argv[3], '--no-cache'])\n"
            "except SystemExit as stop:\n    assert stop.code == 0, stop.code\n"
            "heavy = {'scipy.signal', 'scipy.fft', 'scipy.linalg', 'scipy.special', "
            "'scipy.stats', 'pystoi', 'pandas'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code, "score", str(tmp_path / "c.wav"),
                           str(tmp_path / "e.wav")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_toeplitz_solver_is_scipys_within_the_conditioning():
    """SDR's Levinson solve against ``scipy.linalg.solve_toeplitz``: the same recursion,
    in different compiled code. On an autocorrelation as SDR's (512 lags of 20,000
    samples) the two agree to a relative 1e-10, far inside what the conditioning allows
    and far below what moves an SDR's printed digits. Singular and non-finite systems
    raise as scipy's do."""
    from scipy.linalg import solve_toeplitz as scipy_solve_toeplitz

    from sqeval import dsp

    rng = np.random.default_rng(3)
    x = rng.standard_normal(20000)
    r = np.correlate(x, x[:19489], "valid")[:512]  # an autocorrelation, as SDR's
    b = rng.standard_normal(512)
    theirs = scipy_solve_toeplitz(r, b)
    np.testing.assert_allclose(dsp.solve_toeplitz(r, b), theirs, rtol=0,
                               atol=1e-10 * np.max(np.abs(theirs)))
    for n in (1, 2, 3):
        np.testing.assert_allclose(dsp.solve_toeplitz(r[:n], b[:n]),
                                   scipy_solve_toeplitz(r[:n], b[:n]), rtol=1e-12)
    with pytest.raises(np.linalg.LinAlgError):
        dsp.solve_toeplitz(np.zeros(4), b[:4])
    with pytest.raises(np.linalg.LinAlgError):
        dsp.solve_toeplitz(np.ones(4), b[:4])  # rank 1
    for indefinite in ([1.0, 2.0], [1.0, 0.2, 3.0], [-2.0, 0.5, 0.1]):  # solvable all the same
        r3 = np.asarray(indefinite)
        np.testing.assert_allclose(dsp.solve_toeplitz(r3, b[:r3.size]),
                                   scipy_solve_toeplitz(r3, b[:r3.size]), rtol=1e-12)
    with pytest.raises(ValueError, match="one length"):
        dsp.solve_toeplitz(r[:4], b[:3])
    with pytest.raises(ValueError, match="infs or NaNs"):
        dsp.solve_toeplitz(np.array([1.0, np.nan]), b[:2])


def test_fft_sizes_are_scipys_next_fast_len():
    """An integer search: equal to scipy's exactly (no floating point involved)."""
    from scipy.fft import next_fast_len as scipy_next_fast_len

    from sqeval import dsp

    assert all(dsp.next_fast_len(n) == scipy_next_fast_len(n, real=True)
               for n in [*range(1, 3000), *range(3000, 600000, 997)])


def test_expit_and_log_expit_are_scipys_within_a_few_ulp():
    """rel_entropy's σ and ln σ in numpy against ``scipy.special``. numpy's exp and log1p
    may be SIMD code (AVX-512, NEON) or the C library's, scipy's are the C library's:
    each within a few ULP of the exact value, so the compositions (one exp, one add, one
    divide or log1p) agree within 8 ULP, on any CPU."""
    from scipy.special import expit as scipy_expit
    from scipy.special import log_expit as scipy_log_expit

    from sqeval.metrics.entropy import expit, log_expit

    y = 40 * np.random.default_rng(3).standard_normal(20000)
    np.testing.assert_array_max_ulp(expit(y), scipy_expit(y), maxulp=8)
    np.testing.assert_array_max_ulp(log_expit(y), scipy_log_expit(y), maxulp=8)
