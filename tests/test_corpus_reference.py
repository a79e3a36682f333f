"""End to end: every CSV cell of `sqeval score`, at 8, 16 and 48 kHz, equals the reference
implementations within the tolerances of the metric contract.

The corpus is the committed speech pair, resampled to each rate, with several
estimates: noisy, partly denoised, gain-changed and delayed, white noise, a shorter
estimate, and an estimate at another rate than its reference.
"""

from __future__ import annotations

import csv
import warnings
from math import gcd

import numpy as np
import pytest
from scipy.signal import resample_poly
from typer.testing import CliRunner

from sqeval.cli import app

from conftest import write

# compares numbers with a reference: repeated under every CPU profile (scripts/cpu_profiles.py)
pytestmark = pytest.mark.numeric

EPS = np.finfo(np.float64).eps
TOLERANCE = {"stoi": 1e-6, "estoi": 1e-6, "sdr": 1e-4, "snr": 1e-6, "si_snr": 1e-6,
             "si_sdr": 1e-6, "osi_snr": 1e-6}
RELATIVE = {"mc_mse": 1e-7, "rel_entropy": 1e-7}


def to_rate(x, source, target):
    g = gcd(source, target)
    return resample_poly(x, target // g, source // g)


def reference_values(s, e, fs):
    """Each metric by its reference: pesq, pystoi, mir_eval, and the closed forms."""
    import pesq
    from mir_eval.separation import bss_eval_sources
    from pystoi import stoi
    from scipy.signal import get_window, stft

    n = min(len(s), len(e))
    sa, ea = s[:n], e[:n]
    db = lambda num, den: 10 * np.log10((num + EPS) / (den + EPS))  # noqa: E731

    def scale_invariant(a, b):
        t = (b @ a + EPS) / (a @ a + EPS) * a
        return db(t @ t, (t - b) @ (t - b))

    lam = (ea @ ea) / (sa @ ea)
    frame = round(0.032 * fs)
    window = get_window("hann", frame)

    def compressed(x):
        z = stft(x, window=window, nperseg=frame, noverlap=frame - frame // 4,
                 boundary=None, padded=False, detrend=False)[2]
        return (np.abs(z) * window.sum() / np.sqrt(window @ window)) ** 0.3

    q, r = 1 / (1 + np.exp(-ea)), 1 / (1 + np.exp(-sa))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sdr = bss_eval_sources(sa[None], ea[None])[0][0]
    p_rate = 16000 if fs >= 16000 else 8000
    sp, ep = to_rate(s, fs, p_rate), to_rate(e, fs, p_rate)
    values = {
        "snr": db(sa @ sa, (ea - sa) @ (ea - sa)),
        "si_snr": scale_invariant(sa - sa.mean(), ea - ea.mean()),
        "si_sdr": scale_invariant(sa, ea),
        "osi_snr": db((lam * sa) @ (lam * sa), (ea - lam * sa) @ (ea - lam * sa)),
        "sdr": sdr,
        "stoi": stoi(sa, ea, fs),
        "estoi": stoi(sa, ea, fs, extended=True),
        "pesq_nb": pesq.pesq(p_rate, sp, ep, "nb"),
        "mc_mse": np.mean((compressed(sa) - compressed(ea)) ** 2),
        "rel_entropy": np.mean(q * np.log(q / r)),
    }
    if fs >= 16000:
        values["pesq_wb"] = pesq.pesq(16000, sp, ep, "wb")
    return values


def build_corpus(root, golden):
    s16, e16, _, _ = golden
    rng = np.random.default_rng(7)
    expected = {}
    for fs in (8000, 16000, 48000):
        s, e = to_rate(s16, 16000, fs), to_rate(e16, 16000, fs)
        estimates = {
            "noisy": e,
            "denoised": s + 0.25 * (e - s),
            "gain_delay": 0.6 * np.r_[np.zeros(fs // 1000), s[: -(fs // 1000)]] + 0.05 * (e - s),
            "white": s + 0.01 * rng.standard_normal(len(s)),
            "shorter": (s + 0.5 * (e - s))[: -fs // 10],
        }
        for name, estimate in estimates.items():
            key = f"{fs}/{name}.wav"
            write(root / "clean" / key, s, fs, "DOUBLE")
            write(root / "enhanced" / key, estimate, fs, "DOUBLE")
            expected[key] = reference_values(s, estimate, fs)
        # An estimate written at 22.05 kHz for a reference at fs: resampled to fs first.
        key = f"{fs}/other_rate.wav"
        write(root / "clean" / key, s, fs, "DOUBLE")
        write(root / "enhanced" / key, to_rate(e, fs, 22050), 22050, "DOUBLE")
        expected[key] = reference_values(s, to_rate(to_rate(e, fs, 22050), 22050, fs), fs)
    return expected


def test_every_csv_cell_equals_the_reference(tmp_path, golden):
    expected = build_corpus(tmp_path, golden)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["score", str(tmp_path / "clean"),
                                      str(tmp_path / "enhanced"), "--csv", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, newline="") as stream:
        rows = {row["file"]: row for row in csv.DictReader(stream)}
    assert set(rows) == set(expected)
    checked = 0
    for key, values in expected.items():
        row = rows[key]
        if key.startswith("8000/"):
            assert row["pesq_wb"] == "" and "wide-band PESQ needs" in row["error"]
        for name, value in values.items():
            cell = float(row[name])
            if name.startswith("pesq"):
                # the reference resamples with resample_poly, sqeval with its own numpy
                # loop (equal within a few ULP): a sample's last bit may move PESQ's
                # float32 alignment a little; 1e-4 of a MOS is far below what is printed
                resampled = key.split("/")[0] == "48000" or "other_rate" in key
                assert cell == (pytest.approx(value, abs=1e-4) if resampled else value), (
                    key, name)
            elif name in RELATIVE:
                assert cell == pytest.approx(value, rel=RELATIVE[name]), (key, name)
            else:
                assert cell == pytest.approx(value, abs=TOLERANCE[name]), (key, name)
            checked += 1
    assert checked == 6 * 10 + 12 * 11  # 6 files at 8 kHz have no pesq_wb
