"""PLCMOS: a non-intrusive MOS estimate of packet-loss concealment quality (PLCMOS v2).

Conventions
-----------
The ONNX model is the one shipped inside the PyPI package ``speechmos``:
``plcmos_models/plcmos_v2.onnx`` (sha256 ``c0ad3fc6…``), Microsoft's PLCMOS v2 of the
INTERSPEECH 2023 paper, run by onnxruntime on the CPU with DNSMOS's session options.
The procedure is that of ``speechmos.plcmos.run``:

- audio at 16 kHz; other rates are resampled as ``librosa.load(path, sr=16000)`` does
  for speechmos's file input (soxr's "soxr_hq", as for DNSMOS);
- features: frames of 512 samples every 256, the first starting 256 samples before the
  signal (zeros), ``ceil((n + 256)/256)`` frames, zero-padded at the end; a periodic
  Hamming window (``np.hamming(513)[:-1]``); ``rfft`` (257 bins); the power ``|X|²`` in
  natural log, divided by 20; bins of zero power floored at the smallest nonzero log
  power less 120 dB (an all-zero signal at −80 dB); float32, shape ``(1, 1, frames, 257)``;
- the model's output for 15 rater embeddings of 64 normal deviates each, averaged.

speechmos draws the embeddings from numpy's global generator, unseeded, so its number
changes from call to call (by about 0.05 MOS). sqeval draws them once from a fixed seed,
``np.random.RandomState(0).normal(size=(15, 64))``: the same draws, bit for bit, as
speechmos after ``np.random.seed(0)``, so sqeval's value is speechmos's after
``np.random.seed(0)``, every time. The global generator is not touched.

Long files: the model sees a whole file at once and its memory grows with the length
(about 3 MB per second of audio: 1.7 GB for 10 minutes, measured), and its output is not
a mean over time. A file of at most :data:`BLOCK_SAMPLES` samples (30 s at 16 kHz) is
scored whole, exactly as speechmos scores it. A longer one is cut into
``k = ceil(n / BLOCK_SAMPLES)`` consecutive segments of equal length (±1 sample), each
scored as speechmos scores a file, and the value is their mean.

Range about [1, 5]; higher is better. Needs the optional extra ``dnsmos`` (speechmos,
onnxruntime, soxr).

References
----------
- L. Diener, M. Purin, S. Sootla, A. Saabas, R. Aichner, R. Cutler, "PLCMOS – a
  data-driven non-intrusive metric for the evaluation of packet loss concealment
  algorithms", INTERSPEECH 2023.
- speechmos (PyPI) ``plcmos.run``, which sqeval matches.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache

import numpy as np

from ._checks import MetricError, as_output, as_signal, require_headroom
from .dnsmos import RATE, _to_16k, onnx_session

FRAME, HOP = 512, 256  # samples at 16 kHz; 257 rfft bins
FLOOR_DB = -120.0  # zero-power bins: the smallest nonzero log power less 120 dB
SILENCE_DB = -80.0  # every bin, when the whole signal is zero (speechmos's value)
EMBED_ROUNDS, EMBED_SIZE = 15, 64  # rater embeddings averaged over, and their length
EMBED_SEED = 0  # sqeval's fixed seed: speechmos's draws after np.random.seed(0)
# The model's convolutions need 7 frames: ceil((n + 256)/256) ≥ 7 (1280 samples fail).
MIN_SAMPLES = 5 * HOP + 1
BLOCK_SAMPLES = 480000  # 30 s at 16 kHz: longer files are scored in equal segments
# Below this peak the power spectrum underflows float64 (|X|² of 1e-160 is 0).
MIN_PEAK = 1e-150
MODEL = "plcmos_v2.onnx"
INSTALL_HINT = ("PLCMOS needs the optional extra dnsmos: pip install '.[dnsmos]' in "
                "sqeval's source folder")


def missing_backend() -> str | None:
    """Why PLCMOS cannot run here (a package is not installed), or None."""
    from importlib.util import find_spec

    absent = [name for name in ("speechmos", "onnxruntime", "soxr") if find_spec(name) is None]
    return f"{INSTALL_HINT} ({', '.join(absent)} not installed)" if absent else None


@lru_cache(maxsize=1)
def _session():
    """The PLCMOS v2 inference session, made once per process."""
    reason = missing_backend()
    if reason:
        raise MetricError(reason)
    import speechmos

    return onnx_session(os.path.join(os.path.dirname(speechmos.__file__), "plcmos_models",
                                     MODEL))


@lru_cache(maxsize=1)
def rater_embeddings() -> np.ndarray:
    """The 15 rater embeddings, (15, 64) float32, from the fixed seed (see above)."""
    return np.random.RandomState(EMBED_SEED).normal(size=(EMBED_ROUNDS, EMBED_SIZE)).astype(
        np.float32)


def features(x: np.ndarray) -> np.ndarray:
    """The model's input for a 1-D 16 kHz signal: ``(1, 1, frames, 257)`` float32 log
    power / 20, computed as speechmos's ``stft_transform`` does (the same operations in
    the same order, so the same bits)."""
    n_frames = math.ceil((len(x) + HOP) / HOP)
    padded = np.zeros((n_frames - 1) * HOP + FRAME)
    padded[HOP:HOP + len(x)] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, FRAME)[::HOP]
    power = np.abs(np.fft.rfft(frames * np.hamming(FRAME + 1)[:-1], n=FRAME)) ** 2
    zeros = power == 0
    log_power = np.empty_like(power)
    log10e = np.log10(np.e)
    if np.any(~zeros):
        log_power[~zeros] = np.log(power[~zeros])
        log_power[zeros] = np.log(power[~zeros].min()) + FLOOR_DB / 10 / log10e
    else:
        log_power.fill(SILENCE_DB / 10 / log10e)
    return np.float32(log_power / 20.0)[np.newaxis, np.newaxis]


def _score(x: np.ndarray) -> float:
    """speechmos's PLCMOS of one 16 kHz segment with the fixed embeddings: the mean of
    the 15 runs, summed in order as speechmos sums them."""
    session, feats = _session(), features(x)
    total = 0.0
    for embedding in rater_embeddings():  # one run each: a batch of 15 took 15× the memory
        total += float(session.run(None, {"degraded_audio": feats,
                                          "rater_embed": embedding[np.newaxis]})[0])
    return total / EMBED_ROUNDS


def segments(n: int, block: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of ``ceil(n / block)`` consecutive segments of equal length (±1).

    Example:
        >>> segments(10, 4)
        [(0, 3), (3, 6), (6, 10)]
    """
    count = max(1, -(-n // block))
    bounds = [index * n // count for index in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _one(x: np.ndarray) -> float:
    if len(x) < MIN_SAMPLES:
        raise MetricError(
            f"too short for PLCMOS: {len(x)} samples at 16 kHz ({1000 * len(x) / RATE:.1f} "
            f"ms); its model needs at least {MIN_SAMPLES} ({math.ceil((MIN_SAMPLES + HOP) / HOP)}"
            f" frames of {HOP})")
    spans = segments(len(x), BLOCK_SAMPLES)  # read at call time (tests shrink it)
    for index, (start, stop) in enumerate(spans):
        if not np.any(x[start:stop]):
            where = (f"segment {index + 1} of {len(spans)} ({start / RATE:.1f}–{stop / RATE:.1f} "
                     "s) is" if len(spans) > 1 else "the signal is")
            raise MetricError(f"{where} silent (all samples zero); PLCMOS rates speech, and "
                              "its model gives silence a score of about 3.5")
    return sum(_score(x[start:stop]) for start, stop in spans) / len(spans)


def plcmos(*, estimate, fs: int):
    """PLCMOS v2 of ``estimate``, shape ``(..., time)``, at any rate (resampled to 16 kHz
    as librosa.load does); higher is better, about [1, 5].

    Equals ``speechmos.plcmos.run(x, 16000)["plcmos"]`` after ``np.random.seed(0)`` for a
    file of at most 30 s at 16 kHz; longer files are the mean over equal segments.

    Raises:
        MetricError: the extra is not installed, non-finite samples, a silent signal (or
            segment), one shorter than 1281 samples at 16 kHz, or a level whose power
            spectrum would underflow or overflow float64.
    """
    x = as_signal(estimate, name="estimate")
    if not np.any(x, axis=-1).all():
        raise MetricError("the signal is silent (all samples zero); PLCMOS rates speech")
    peak = np.maximum(np.max(x, axis=-1), -np.min(x, axis=-1))
    if np.any(peak < MIN_PEAK):
        raise MetricError(
            f"the signal is too quiet for PLCMOS: its peak |x| = {float(np.min(peak)):.3g} is "
            f"below {MIN_PEAK:.0e}, where its power spectrum underflows float64 to zeros and "
            "the model would rate silence. Check the file's level.")
    require_headroom(x, name="estimate", metric="PLCMOS")
    _session()  # says which package of the extra is missing, if one is
    if int(fs) != RATE:
        x = _to_16k(x, int(fs))  # as librosa.load(path, sr=16000)
    flat = x.reshape(-1, x.shape[-1])
    return as_output(np.reshape([_one(item) for item in flat], x.shape[:-1]))
