"""The numbers of docs/conventions.md ("Same name, different number"), recomputed.

Each row of the page's table states a difference measured on named pairs. ``PRINTED``
holds those numbers exactly as the page prints them; every test below recomputes its
number and checks that it rounds to the printed one, and
``test_the_page_prints_these_numbers`` checks that the page's table shows them, so page
and code cannot drift apart.

Pairs: the 16 shipped pairs ``sample_data/clean/X.wav`` against ``sample_data/noisy/X.wav``
and ``sample_data/enhanced/X.wav`` (16 kHz), and pair L (``tests/data/speech.wav`` against
``speech_bab_0dB.wav``). Where another implementation installs here (pesq, mir_eval,
fast_bss_eval, torchmetrics, librosa, visqol-python) it is called; ClearerVoice (needs
torchaudio and numpy < 2) and SRMRpy (not on PyPI) do not install, so their convention is
recomputed with sqeval's own functions (CSIG with the arguments swapped) or their
published values are compared (SRMRpy).
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.io import loadmat
from scipy.signal import resample_poly

from sqeval.dsp import resample
from sqeval.metrics import csig, sdr, si_sdr, si_snr, snr
from sqeval.metrics.srmr import srmr

pytestmark = pytest.mark.numeric

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "conventions.md"
SAMPLES = ROOT / "sample_data"
DATA = Path(__file__).parent / "data"
NAMES = ("de_babble_0dB", "en-gb_hiss_20dB", "en_white_-5dB", "es_hum_5dB", "fr_pink_2dB",
         "it_modulated_7dB", "nl_fan_10dB", "pt_brown_15dB")

# (table row, quantity) → the number as the page prints it. A row is found by its first
# cell; the quantity only names the number here.
PRINTED = {
    ("SI-SNR vs SI-SDR", "max |Δ| dB, 17 pairs"): "0.036",
    ("SI-SNR vs SI-SDR", "Δ dB, pair L + 0.05 DC"): "3.1",
    ("BSS-Eval SDR", "max (sdr − si_sdr) dB, 16 pairs"): "1.42",
    ("BSS-Eval SDR", "max |512 − 1024 taps| dB, 16 pairs"): "0.14",
    ("ClearerVoice SDR", "max |sdr − snr| dB, 16 pairs"): "1.17",
    ("PESQ NB mapping", "max |MOS-LQO − raw|, 16 pairs"): "0.45",
    ("PESQ NB rate", "max |8 kHz − 16 kHz|, 16 pairs"): "0.11",
    ("ClearerVoice CSIG", "max |Δ|, 16 trimmed pairs"): "0.71",
    ("ClearerVoice CSIG", "|Δ|, pair L"): "0.33",
    ("SRMRpy", "max |Δ| %, toolbox test signal"): "11.1",
    ("DNSMOS resampler", "|ΔSIG|"): "0.58",
    ("DNSMOS resampler", "|ΔBAK|"): "0.20",
    ("DNSMOS resampler", "|ΔOVRL|"): "0.20",
    ("DNSMOS resampler", "|ΔP808|"): "0.03",
    ("ViSQOL 48 kHz", "max |ΔMOS|"): "0.057",
}


def assert_printed(key, value, tolerance=1e-9):
    """``value`` is the page's number for ``key`` when rounded to its printed digits: within
    half a unit of its last digit (plus ``tolerance``, the computation's own jitter)."""
    printed = PRINTED[key]
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    assert abs(value - float(printed)) <= 0.5 * 10.0 ** -decimals + tolerance, (key, value)


def read(folder, name):
    return sf.read(SAMPLES / folder / f"{name}.wav", dtype="float64")[0]


def sample_pairs():
    """(label, reference, estimate) for the 16 shipped pairs."""
    return [(f"{system}/{name}", read("clean", name), read(system, name))
            for system in ("noisy", "enhanced") for name in NAMES]


def pair_l():
    return (sf.read(DATA / "speech.wav", dtype="float64")[0],
            sf.read(DATA / "speech_bab_0dB.wav", dtype="float64")[0])


def test_the_page_prints_these_numbers():
    rows = {}
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) > 1:
            rows[re.sub(r"[*`]", "", cells[0])] = line
    for (row, quantity), printed in PRINTED.items():
        assert row in rows, f"the page has no table row {row!r}"
        numbers = re.findall(r"\d+(?:\.\d+)?", rows[row])
        assert printed in numbers, f"row {row!r} does not print {printed} ({quantity})"


def test_si_snr_removes_the_means_and_si_sdr_does_not():
    import torch
    from torchmetrics.functional.audio import (scale_invariant_signal_distortion_ratio,
                                               scale_invariant_signal_noise_ratio)

    s, e = pair_l()
    pairs = sample_pairs() + [("L", s, e)]
    gap = max(abs(si_snr(reference=a, estimate=b) - si_sdr(reference=a, estimate=b))
              for _, a, b in pairs)
    assert_printed(("SI-SNR vs SI-SDR", "max |Δ| dB, 17 pairs"), gap)
    # A DC offset of 0.05 (the estimate's RMS is 0.062): SI-SNR does not see it.
    shifted = e + 0.05
    assert si_snr(reference=s, estimate=shifted) == pytest.approx(si_snr(reference=s, estimate=e),
                                                                  abs=1e-9)
    assert_printed(("SI-SNR vs SI-SDR", "Δ dB, pair L + 0.05 DC"),
                   si_snr(reference=s, estimate=shifted) - si_sdr(reference=s, estimate=shifted))
    # torchmetrics: the same two conventions under these two names (float64 on both sides)
    ts, te = torch.from_numpy(s), torch.from_numpy(shifted)
    assert float(scale_invariant_signal_noise_ratio(te, ts)) == pytest.approx(
        si_snr(reference=s, estimate=shifted), abs=1e-9)
    assert float(scale_invariant_signal_distortion_ratio(te, ts)) == pytest.approx(
        si_sdr(reference=s, estimate=shifted), abs=1e-9)


def test_sdr_depends_on_the_filter_length():
    import fast_bss_eval

    pairs = sample_pairs()
    one_tap = max(sdr(reference=a, estimate=b) - si_sdr(reference=a, estimate=b)
                  for _, a, b in pairs)
    assert_printed(("BSS-Eval SDR", "max (sdr − si_sdr) dB, 16 pairs"), one_tap)
    longer = max(abs(sdr(reference=a, estimate=b)
                     - sdr(reference=a, estimate=b, filter_length=1024)) for _, a, b in pairs)
    assert_printed(("BSS-Eval SDR", "max |512 − 1024 taps| dB, 16 pairs"), longer)
    # a 1-tap filter is SI-SDR; fast_bss_eval agrees at every length (float64, a Toeplitz
    # solve against sqeval's: 1e-6 dB, the tolerance of sqeval's contract)
    a, b = read("clean", "en-gb_hiss_20dB"), read("enhanced", "en-gb_hiss_20dB")
    assert sdr(reference=a, estimate=b, filter_length=1) == pytest.approx(
        si_sdr(reference=a, estimate=b), abs=1e-9)
    for taps in (1, 512, 1024):
        theirs = float(fast_bss_eval.sdr(a[None], b[None], filter_length=taps)[0])
        assert sdr(reference=a, estimate=b, filter_length=taps) == pytest.approx(theirs, abs=1e-6)


def test_bss_eval_images_sdr_is_the_plain_snr():
    # ClearerVoice's "SDR" is museval's bss_eval (v4) in its default images mode, whose SDR
    # is ‖s‖²/‖ŝ − s‖²; mir_eval's bss_eval_images is the same decomposition (BSS Eval v3).
    import mir_eval

    s, e = pair_l()
    with warnings.catch_warnings():
        # bss_eval_images is deprecated since mir_eval 0.8 (to be removed in 0.9)
        warnings.simplefilter("ignore", FutureWarning)
        images = mir_eval.separation.bss_eval_images(s[None, :, None], e[None, :, None])[0]
    assert float(images[0]) == pytest.approx(snr(reference=s, estimate=e), abs=1e-9)
    gap = max(abs(sdr(reference=a, estimate=b) - snr(reference=a, estimate=b))
              for _, a, b in sample_pairs())
    assert_printed(("ClearerVoice SDR", "max |sdr − snr| dB, 16 pairs"), gap)


def raw_pesq(mos_lqo):
    """P.862's raw score from P.862.1's MOS-LQO, inverting its published mapping
    ``0.999 + 4 / (1 + exp(−1.4945·raw + 4.6607))``."""
    return (4.6607 - np.log(4.0 / (mos_lqo - 0.999) - 1.0)) / 1.4945


def test_pesq_narrow_band_mapping_and_rate():
    import pesq

    mapped, rate = [], []
    for _, s, e in sample_pairs():
        at_16k = pesq.pesq(16000, s, e, "nb")
        at_8k = pesq.pesq(8000, resample_poly(s, 1, 2), resample_poly(e, 1, 2), "nb")
        mapped.append(abs(at_16k - raw_pesq(at_16k)))
        rate.append(abs(at_8k - at_16k))
    # the pesq package's float32 arithmetic moves its 7th digit across CPUs (conftest)
    assert_printed(("PESQ NB mapping", "max |MOS-LQO − raw|, 16 pairs"), max(mapped), 1e-5)
    assert_printed(("PESQ NB rate", "max |8 kHz − 16 kHz|, 16 pairs"), max(rate), 1e-5)


def trimmed(s, e):
    """Both signals over the reference's span from its first to its last non-zero sample:
    the shipped references start and end with 0.3–0.7 s of digital silence, where the LLR
    is undefined (sqeval raises; pysepm gives NaN)."""
    kept = np.flatnonzero(s)
    return s[kept[0]:kept[-1] + 1], e[kept[0]:kept[-1] + 1]


def test_clearervoice_csig_swaps_reference_and_estimate():
    # ClearerVoice's csig.py calls cal_CSIG(audios[0], audios[1]) with the test signal
    # first, where cal_CSIG(target_wav, pred_wav) expects the reference first.
    gaps = []
    for _, s, e in sample_pairs():
        s, e = trimmed(s, e)
        gaps.append(abs(csig(reference=e, estimate=s, fs=16000)
                        - csig(reference=s, estimate=e, fs=16000)))
    assert_printed(("ClearerVoice CSIG", "max |Δ|, 16 trimmed pairs"), max(gaps), 1e-5)
    s, e = pair_l()
    assert_printed(("ClearerVoice CSIG", "|Δ|, pair L"),
                   abs(csig(reference=e, estimate=s, fs=16000)
                       - csig(reference=s, estimate=e, fs=16000)), 1e-5)


# The SRMRToolbox's own test values (test/test_SRMR.m) and SRMRpy's results for the same
# calls, published in jfsantos/SRMRpy issue 9: (MATLAB options, MATLAB, SRMRpy).
SRMR_TOOLBOX = (
    ({}, 6.116783821833282, 6.055213264706728),
    ({"fast": True}, 6.062267651334784, 6.736847774405838),
    ({"fast": True, "norm": True}, 3.44954048853273, 3.715814103437327),
    ({"norm": True}, 2.300403317120358, 2.3186338803227864),
)


def test_srmrpy_misses_the_toolbox_values():
    s = loadmat(DATA / "srmr_test.mat")["s"].ravel()
    gaps = []
    for options, matlab, srmrpy in SRMR_TOOLBOX:
        ours = srmr(s, 16000, **options)
        assert ours == pytest.approx(matlab, rel=1e-12)  # as tests/test_srmr.py
        gaps.append(100 * abs(srmrpy - ours) / ours)
    assert_printed(("SRMRpy", "max |Δ| %, toolbox test signal"), max(gaps))


def test_dnsmos_depends_on_the_resampler():
    # One file: a 4.1 s clip is tiled to 16.5 s, 8 windows of each model per call (7 s on
    # one thread). sqeval's own 48 kHz path equals the script's: tests/test_dnsmos.py.
    import librosa

    from sqeval.metrics.dnsmos import dnsmos

    at_48k = resample_poly(read("noisy", "fr_pink_2dB"), 3, 1)  # a 48 kHz recording of it
    script = dnsmos(estimate=librosa.resample(at_48k, orig_sr=48000, target_sr=16000),
                    fs=16000)
    poly = dnsmos(estimate=resample_poly(at_48k, 1, 3), fs=16000)
    # onnxruntime's thread count moves the 7th digit at most (tests/test_dnsmos.py)
    for key, label in (("dnsmos_sig", "SIG"), ("dnsmos_bak", "BAK"), ("dnsmos_ovrl", "OVRL"),
                       ("dnsmos_p808", "P808")):
        assert_printed(("DNSMOS resampler", f"|Δ{label}|"), abs(poly[key] - script[key]), 1e-5)


VISQOL_PAIRS = (("noisy", "de_babble_0dB"), ("noisy", "nl_fan_10dB"),
                ("enhanced", "nl_fan_10dB"), ("enhanced", "pt_brown_15dB"))


def test_visqol_speech_mode_at_48_khz():
    from visqol import VisqolApi

    from sqeval.metrics.visqol import visqol

    logging.getLogger("visqol").setLevel(logging.ERROR)
    api = VisqolApi()
    api.create(mode="speech", use_lattice_model=True)
    gaps = []
    for system, name in VISQOL_PAIRS:
        s, e = read("clean", name), read(system, name)
        at_48k = float(api.measure_from_arrays(resample(s, 16000, 48000),
                                               resample(e, 16000, 48000), 48000).moslqo)
        gaps.append(abs(at_48k - visqol(reference=s, estimate=e, fs=16000)))
    # a float32 TFLite output: 1e-6 across CPUs (conftest)
    assert_printed(("ViSQOL 48 kHz", "max |ΔMOS|"), max(gaps), 1e-5)
