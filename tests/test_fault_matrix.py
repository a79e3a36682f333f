"""The fault matrix of issue 6, in one folder: the run completes with exit code 3, one row
per file, a specific reason for every failure, and correct numbers for the valid files."""

from __future__ import annotations

import csv
import os
import struct

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly
from typer.testing import CliRunner

from sqeval import metrics as m
from sqeval.cli import app

from conftest import write


NARROW_BAND = "pesq_wb: n/a: wide-band PESQ needs"  # n/a at 8 kHz: a reason, not a failure


def wav_header_only(path, rate=16000):
    """A valid 16-bit mono WAV header announcing no samples."""
    header = b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", 0)
    path.write_bytes(header)


def build(root, s, e, rate):
    """(name → expected): "ok" for a valid pair scored as read, else a reason fragment."""
    clean, enh = root / "clean", root / "enh"
    expected = {}

    def pair(name, ref, est, ref_rate=rate, est_rate=rate, subtype=None, outcome="ok"):
        write(clean / name, ref, ref_rate, subtype)
        write(enh / name, est, est_rate, subtype)
        expected[name] = outcome

    for subtype in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        pair(f"format_{subtype}.wav", s * 0.9, e * 0.9, subtype=subtype)
    pair("format_flac.flac", s * 0.9, e * 0.9)
    pair("format_ogg.ogg", s * 0.9, e * 0.9)
    write(clean / "empty.wav", s, rate)
    (enh / "empty.wav").write_bytes(b"")
    expected["empty.wav"] = "unreadable audio"
    write(clean / "header_only.wav", s, rate)
    wav_header_only(enh / "header_only.wav")
    expected["header_only.wav"] = "holds no samples"
    write(clean / "truncated.wav", s, rate)
    write(enh / "truncated.wav", e, rate, "PCM_16")
    data = (enh / "truncated.wav").read_bytes()
    (enh / "truncated.wav").write_bytes(data[: len(data) // 2])  # header promises more
    expected["truncated.wav"] = "50.0% shorter, more than the 10%"  # half a file: a failure
    write(clean / "random.wav", s, rate)
    (enh / "random.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    expected["random.wav"] = "unreadable audio"
    write(clean / "folder.wav", s, rate)
    (enh / "folder.wav").mkdir()
    expected["folder.wav"] = "is a folder, not an audio file"
    write(clean / "loop.wav", s, rate)
    os.symlink(enh / "loop2.wav", enh / "loop.wav")
    os.symlink(enh / "loop.wav", enh / "loop2.wav")
    expected["loop.wav"] = "unreadable audio"
    expected["loop2.wav"] = "no clean reference"
    pair("no_permission.wav", s, e)
    os.chmod(enh / "no_permission.wav", 0)
    expected["no_permission.wav"] = "ok" if os.geteuid() == 0 else "unreadable audio"
    pair("one_sample.wav", s[5000:5001], e[5000:5001], outcome="1 sample(s): too short")
    pair("tenth_second.wav", s[8000:9600], e[8000:9600], outcome="partly")
    long_s = np.tile(s, 20 * 60 * rate // len(s) + 1)[: 20 * 60 * rate]
    pair("twenty_minutes.wav", long_s, long_s + 0.1 * np.roll(long_s, 7), subtype="PCM_16",
         outcome="partly")
    nan, inf = e.copy(), e.copy()
    nan[10:12], inf[20] = np.nan, np.inf
    pair("nan.wav", s, nan, subtype="FLOAT", outcome="2 NaN and 0 Inf")
    pair("inf.wav", s, inf, subtype="FLOAT", outcome="0 NaN and 1 Inf")
    pair("dc_only.wav", np.full(rate, 0.5), np.full(rate, 0.25),
         outcome="constant (every sample 0.25): a degenerate output")
    square = np.sign(np.sin(2 * np.pi * 200 * np.arange(2 * rate) / rate))
    pair("square.wav", square * 0.999, square * 0.5 + 0.01, subtype="PCM_16")
    pair("silent_reference.wav", np.zeros_like(s), e, outcome="silent")
    pair("silent_estimate.wav", s, np.zeros_like(e), outcome="estimate is silent")
    pair("both_silent.wav", np.zeros_like(s), np.zeros_like(e), outcome="silent")
    s48 = resample_poly(s, 3, 1)
    pair("rates_44k_48k.wav", s48, resample_poly(resample_poly(e, 3, 1), 147, 160),
         ref_rate=48000, est_rate=44100, outcome="ok")
    pair("rates_8k_16k.wav", resample_poly(s, 1, 2), e, ref_rate=8000, est_rate=16000,
         outcome=NARROW_BAND)
    pair("one_sample_shorter.wav", s, e[:-1])
    pair("half_length.wav", s, e[: len(e) // 2], outcome="50.0% shorter, more than the 10%")
    pair("stereo.wav", np.stack([s, s], 1), np.stack([e, e], 1), outcome="2 channels")
    pair("six_channels.wav", np.stack([s] * 6, 1), np.stack([e] * 6, 1), outcome="6 channels")
    pair("name with spaces é ü.wav", s, e)
    pair("Case.wav", s, e)
    pair("case.wav", s, 0.5 * (s + e))
    return expected


def test_the_whole_fault_matrix_in_one_folder(tmp_path, golden):
    s, e, rate, _ = golden
    expected = build(tmp_path, s, e, rate)
    out = tmp_path / "o.csv"
    result = CliRunner().invoke(app, ["score", str(tmp_path / "clean"), str(tmp_path / "enh"),
                                      "--csv", str(out), "--jobs", "2", "--no-cache"])
    assert result.exit_code == 3, result.output
    with open(out, newline="", encoding="utf-8") as stream:
        rows = {row["file"]: row for row in csv.DictReader(stream)}
    assert set(rows) == set(expected)  # one row per file, nothing lost, nothing extra
    for name, outcome in expected.items():
        row = rows[name]
        if outcome == "ok":
            assert row["error"] == "", (name, row["error"])
        elif outcome == "partly":
            assert row["error"] and row["snr"] != "", (name, row)
        else:
            assert outcome in row["error"], (name, row["error"])
    # correct numbers for valid files: recomputed from the samples as read
    for name in [n for n, o in expected.items() if o in ("ok", "partly", NARROW_BAND)]:
        if name in ("no_permission.wav",) and os.geteuid() != 0:
            continue
        ref, ref_rate = sf.read(tmp_path / "clean" / name)
        est, est_rate = sf.read(tmp_path / "enh" / name)
        if est_rate != ref_rate:
            g = np.gcd(ref_rate, est_rate)
            est = resample_poly(est, ref_rate // g, est_rate // g)
        n = min(len(ref), len(est))
        assert float(rows[name]["snr"]) == pytest.approx(
            m.snr(reference=ref[:n], estimate=est[:n]), abs=1e-9), name
    assert "pesq_wb: not computed on 1200 s" in rows["twenty_minutes.wav"]["error"]
