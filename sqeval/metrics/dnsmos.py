"""DNSMOS: non-intrusive MOS estimates (ITU-T P.835 SIG, BAK, OVRL, and P.808 MOS).

Conventions
-----------
The ONNX models are the ones shipped inside the PyPI package ``speechmos`` (Microsoft's
DNS-Challenge models: ``sig_bak_ovr.onnx`` for P.835, ``model_v8.onnx`` for P.808), run
by onnxruntime on the CPU; nothing is downloaded. The procedure is that of the DNS
Challenge's ``dnsmos_local.py`` and of ``speechmos.dnsmos``:

- audio at 16 kHz: other rates are resampled as the DNS script does it,
  ``librosa.resample(x, orig_sr=fs, target_sr=16000)`` with librosa's default resampler:
  soxr's "soxr_hq", the output cut or zero-padded to ``ceil(n·16000/fs)`` samples. sqeval
  calls soxr that way itself (librosa's import costs 200 MB). This is the one exception
  to sqeval's ``resample_poly`` policy: the models' numbers depend on it, and
  ``resample_poly`` moved a 48 kHz recording's BAK by 0.064;
- a clip shorter than 9.01 s is repeated (doubled until long enough);
- windows of 9.01 s every second; per window the P.835 model takes the float32 samples
  and its raw SIG, BAK, OVRL outputs are mapped through the published cubic/quadratic
  polynomials; the P.808 model takes a 120-band log-mel spectrogram of the window less
  its last 160 samples: ``librosa.feature.melspectrogram(y, sr=16000, n_fft=321,
  hop_length=160, n_mels=120)`` (centred frames, zero padding, periodic Hann window,
  power spectrum, Slaney's mel scale and area-normalised float32 filters), in dB re its
  maximum, floored 80 dB below it, then ``(dB + 40)/40``; computed here with numpy
  (tested against librosa);
- each score is the mean over windows. Range about [1, 5]; higher is better.

Models (speechmos 0.0.1.1's ``dnsmos_models/``, the DNS Challenge's DNSMOS): P.835
``sig_bak_ovr.onnx`` (sha256 ``269fbebd…``) and P.808 ``model_v8.onnx`` (``9246480c…``).

Needs the optional extra ``dnsmos`` (``pip install '.[dnsmos]'`` in sqeval's folder):
speechmos, onnxruntime, soxr; and librosa, which speechmos's reference code uses.

References
----------
- C. K. A. Reddy, V. Gopal, R. Cutler, "DNSMOS P.835: a non-intrusive perceptual
  objective speech quality metric to evaluate noise suppressors", ICASSP 2022.
- speechmos (PyPI) ``dnsmos.run``, which sqeval matches.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from ..dsp import hann
from ._checks import MetricError, as_output, as_signal

RATE = 16000
WINDOW_SECONDS = 9.01
HOP_SECONDS = 1
MIN_SECONDS = 0.25  # shortest clip rated (as PESQ); the DNS script tiles shorter ones
# Raw P.835 model outputs → MOS: the DNS Challenge's published polynomials (highest power
# first), for the non-personalised model.
SIG_POLY = (-0.08397278, 1.22083953, 0.0052439)
BAK_POLY = (-0.13166888, 1.60915514, -0.39604546)
OVRL_POLY = (-0.06766283, 1.11546468, 0.04602535)
INSTALL_HINT = ("DNSMOS needs the optional extra dnsmos: pip install '.[dnsmos]' in "
                "sqeval's source folder")


def missing_backend() -> str | None:
    """Why DNSMOS cannot run here (a package is not installed), or None."""
    from importlib.util import find_spec

    absent = [name for name in ("speechmos", "onnxruntime", "soxr") if find_spec(name) is None]
    return f"{INSTALL_HINT} ({', '.join(absent)} not installed)" if absent else None


ARENA_SECONDS = 60.0  # longer clips are rated by sessions without onnxruntime's arena
_SESSIONS: dict = {}  # arena or not → (P.835, P.808): one kind at a time per process


def _sessions(arena: bool = True):
    """The P.835 and P.808 inference sessions, made once per process and kind.

    With onnxruntime's memory arena (for clips up to :data:`ARENA_SECONDS`) a P.835 window
    takes 20 % less time (431 vs 538 ms on one thread, measured), but the session keeps
    167 MB instead of 12 MB. A longer clip gets sessions without it, so that a 20-minute
    file stays within its memory budget; the other kind is dropped first (its buffers
    released), so a process holds one kind at a time. The outputs are the same with or
    without the arena (tested)."""
    reason = missing_backend()
    if reason:
        raise MetricError(reason)
    sessions = _SESSIONS.get(arena)  # one lookup: another thread may switch kinds
    if sessions is None:
        _SESSIONS.clear()
        import speechmos

        folder = os.path.join(os.path.dirname(speechmos.__file__), "dnsmos_models")
        sessions = (onnx_session(os.path.join(folder, "sig_bak_ovr.onnx"), arena),
                    onnx_session(os.path.join(folder, "model_v8.onnx"), arena))
        _SESSIONS[arena] = sessions
    return sessions


def onnx_session(path: str, arena: bool = False):
    """An onnxruntime CPU inference session for the model at ``path``, with sqeval's
    options (shared by DNSMOS and PLCMOS): :func:`onnx_threads` threads, and onnxruntime's
    memory arena only when ``arena``. Without it onnxruntime frees each run's buffers:
    the P.835 session then keeps 12 MB instead of 167 MB, so a 20-minute file scored with
    every metric stays in its memory budget, for 20 % more time per window."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = onnx_threads()
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = arena
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


ONNX_THREADS = "SQEVAL_ONNX_THREADS"  # set by the runner for its worker processes


def onnx_threads() -> int:
    """onnxruntime's threads in this process: what the runner chose for its workers (each
    worker's share of the cores: 2 for the one worker of ``--jobs 1`` on 2 cores, 1 each
    for ``--jobs 2``), set only when the user did not set ``OMP_NUM_THREADS``; else
    ``OMP_NUM_THREADS``; else every core (scoring in the sqeval process itself). With
    onnxruntime 1.32 the models' outputs are the same with any number of threads, bit for
    bit (tested); older releases (1.18) move their 7th digit."""
    for name in (ONNX_THREADS, "OMP_NUM_THREADS"):
        try:
            return max(1, int(os.environ[name]))
        except (KeyError, ValueError):
            continue
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# The P.808 model's features: librosa.feature.melspectrogram's defaults for these sizes.
N_FFT, HOP, N_MELS = 321, 160, 120
AMIN, TOP_DB = 1e-10, 80.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (the Auditory Toolbox's, librosa's default): linear, 3 mel per
    200 Hz, up to 1 kHz (15 mel); logarithmic above, 27 mel per factor 6.4."""
    hz = np.asarray(hz, dtype=float)
    step, knee_hz = 200 / 3, 1000.0
    knee = knee_hz / step
    return np.where(hz >= knee_hz, knee + np.log(np.maximum(hz, knee_hz) / knee_hz)
                    / (np.log(6.4) / 27), hz / step)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    step, knee_hz = 200 / 3, 1000.0
    knee = knee_hz / step
    return np.where(mel >= knee, knee_hz * np.exp(np.log(6.4) / 27 * (mel - knee)),
                    step * mel)


@lru_cache(maxsize=1)
def _mel_filters() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) float32 triangles, equally spaced in mel from 0 Hz to
    Nyquist, each scaled to area-normalise (2 / its width in Hz)."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(RATE / 2), N_MELS + 2))
    bins = np.fft.rfftfreq(N_FFT, 1 / RATE)
    width = np.diff(edges)
    rising = (bins - edges[:-2, None]) / width[:-1, None]
    falling = (edges[2:, None] - bins) / width[1:, None]
    filters = np.maximum(0, np.minimum(rising, falling)).astype(np.float32)
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # in float32, as librosa scales
    return filters


def _mel_features(window: np.ndarray) -> np.ndarray:
    """(frames, N_MELS): the log-mel spectrogram the P.808 model takes."""
    padded = np.pad(window, N_FFT // 2)  # centred frames, zero padding
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * hann(N_FFT), axis=-1)) ** 2
    mel = power @ _mel_filters().T
    db = 10 * np.log10(np.maximum(AMIN, mel)) - 10 * np.log10(max(AMIN, mel.max()))
    return (np.maximum(db, db.max() - TOP_DB) + 40) / 40


def _to_16k(x: np.ndarray, fs: int) -> np.ndarray:
    """``librosa.resample(x, orig_sr=fs, target_sr=16000)`` with its default resampler:
    soxr "soxr_hq" along the last axis, cut or zero-padded to ``ceil(n·16000/fs)``."""
    import soxr

    n = int(np.ceil(x.shape[-1] * RATE / fs))
    flat = x.reshape(-1, x.shape[-1])
    out = np.zeros((len(flat), n))
    for row, item in zip(out, flat):
        y = soxr.resample(item, fs, RATE, quality="soxr_hq")[:n]
        row[:len(y)] = y
    return out.reshape(*x.shape[:-1], n)


def _one(audio: np.ndarray) -> dict[str, float]:
    p835, p808 = _sessions(arena=len(audio) <= ARENA_SECONDS * RATE)
    length = int(WINDOW_SECONDS * RATE)
    while len(audio) < length:
        audio = np.append(audio, audio)
    n_windows = int(np.floor(len(audio) / RATE) - WINDOW_SECONDS) + 1
    scores = {"dnsmos_sig": [], "dnsmos_bak": [], "dnsmos_ovrl": [], "dnsmos_p808": []}
    for index in range(n_windows):
        window = audio[int(index * HOP_SECONDS * RATE):
                       int((index + WINDOW_SECONDS) * HOP_SECONDS * RATE)]
        if len(window) < length:
            continue
        raw = p835.run(None, {"input_1": window.astype("float32")[np.newaxis, :]})[0][0]
        features = _mel_features(window[:-160]).astype("float32")[np.newaxis, :, :]
        scores["dnsmos_p808"].append(p808.run(None, {"input_1": features})[0][0][0])
        for name, poly, value in zip(("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"),
                                     (SIG_POLY, BAK_POLY, OVRL_POLY), raw):
            scores[name].append(float(np.polyval(poly, value)))
    # The mean of each list as the reference computes it (P.808 values are float32).
    return {name: float(np.mean(values)) for name, values in scores.items()}


def dnsmos(*, estimate, fs: int) -> dict[str, float | np.ndarray]:
    """DNSMOS P.835 (``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_ovrl``) and P.808
    (``dnsmos_p808``) of ``estimate``, shape ``(..., time)``, at any rate (resampled to
    16 kHz with librosa's default resampler, as the DNS Challenge's script does).

    Raises:
        MetricError: the extra is not installed, non-finite samples, a silent signal, one
            shorter than :data:`MIN_SECONDS`, or one whose peak is outside float32's
            normal range (the models' input).
    """
    x = as_signal(estimate, name="estimate")
    if not np.any(x, axis=-1).all():
        raise MetricError("the signal is silent (all samples zero); DNSMOS rates speech")
    if x.shape[-1] < MIN_SECONDS * fs:
        raise MetricError(
            f"too short for DNSMOS: {x.shape[-1]} samples at {fs} Hz "
            f"({x.shape[-1] / fs:.3f} s); it needs at least {MIN_SECONDS:g} s (the DNS "
            "script repeats a clip up to the models' 9.01 s input: a fragment repeated "
            "is not speech to rate)")
    _require_float32_range(x)
    _sessions()  # says which package of the extra is missing, if one is
    if int(fs) != RATE:
        x = _to_16k(x, int(fs))  # as dnsmos_local.py
    flat = x.reshape(-1, x.shape[-1])
    results = [_one(item) for item in flat]
    return {name: as_output(np.reshape([r[name] for r in results], x.shape[:-1]))
            for name in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")}


def _require_float32_range(x: np.ndarray) -> None:
    """Raise :class:`MetricError` when a signal's peak is outside what the models' float32
    input holds: at 1e-310 the samples became zeros and DNSMOS rated that silence as if
    it were the file (at 1e160 they became inf)."""
    peak = np.maximum(np.max(x, axis=-1), -np.min(x, axis=-1))  # |x|'s max, no copy
    low, high = np.finfo(np.float32).tiny, np.finfo(np.float32).max
    if np.any(peak < low):
        raise MetricError(
            f"the signal is too quiet for DNSMOS: its peak |x| = {float(np.min(peak)):.3g} is "
            f"below {low:.3g}, float32's smallest normal number, and the models take float32 "
            "samples, so they would rate (near) silence. Check the file's level (a float file "
            "scaled by a tiny factor?).")
    if np.any(peak > high):
        raise MetricError(
            f"the signal is too loud for DNSMOS: its peak |x| = {float(np.max(peak)):.3g} is "
            f"above {high:.3g}, float32's largest number, and the models take float32 samples. "
            "Check the file's scaling (float audio is expected in [−1, 1]).")


def _member(name: str):
    def metric(*, estimate, fs: int):
        return dnsmos(estimate=estimate, fs=fs)[name]

    metric.__name__ = metric.__qualname__ = name  # pickled by name, as the module's attribute
    metric.__doc__ = f"``{name}`` of :func:`dnsmos`, alone."
    return metric


dnsmos_sig = _member("dnsmos_sig")
dnsmos_bak = _member("dnsmos_bak")
dnsmos_ovrl = _member("dnsmos_ovrl")
dnsmos_p808 = _member("dnsmos_p808")
