"""STOI and extended STOI, vectorised, sharing every step up to the correlations.

Conventions
-----------
``reference`` and ``estimate`` are 1-D (or ``(..., time)``, looped) at any rate ``fs``.
Both are resampled to 10 kHz (with pystoi's port of MATLAB ``resample``, so the numbers
match pystoi), 256-sample Hann frames with 50 % overlap more than 40 dB below the
loudest clean frame are removed from both (Taal et al. 2011, §II-A), a 512-point STFT
is grouped into 15 one-third-octave bands from 150 Hz (Eq. 1), and 30-frame (384 ms)
segments are compared:

- STOI: each estimate segment is scaled to the clean segment's energy and clipped at
  β = −15 dB SDR (Eqs. 3–4), then correlated band by band (Eq. 5) and averaged (Eq. 6).
- ESTOI: each segment is mean- and variance-normalised along time, then along bands,
  and the normalised segments are correlated (Jensen & Taal 2016, Eqs. 6–9).

Range [0, 1] for STOI, about [−1, 1] for ESTOI; higher is better. Fewer than 30 frames
after silence removal raises :class:`~sqeval.metrics.MetricError`, where pystoi would
return its stand-in value 1e-5. Results equal pystoi's within 1e-12 (pystoi's ESTOI adds
eps-sized random noise that sqeval leaves out: it is deterministic).

References
----------
- C. H. Taal, R. C. Hendriks, R. Heusdens, J. Jensen, "An algorithm for intelligibility
  prediction of time–frequency weighted noisy speech", IEEE TASLP 19(7), 2011.
- J. Jensen, C. H. Taal, "An algorithm for predicting the intelligibility of speech
  masked by modulated noise maskers", IEEE/ACM TASLP 24(11), 2016.
- pystoi (M. Pariente), the reference these functions are tested against.
"""

from __future__ import annotations

from functools import cache
from math import gcd

import numpy as np

from ..dsp import frame_spans, resample_with
from ._checks import MetricError, as_output, as_pair

RATE = 10000  # Hz: STOI's internal rate
FRAME = 256  # samples per frame (25.6 ms)
HOP = FRAME // 2  # 50 % overlap
FFT_SIZE = 512
BANDS = 15  # one-third-octave bands
LOWEST_BAND_HZ = 150
SEGMENT = 30  # frames per intermediate intelligibility segment (384 ms)
MIN_SAMPLES = FRAME + SEGMENT * HOP  # at 10 kHz: the shortest input that can hold 30 frames
DYNAMIC_RANGE_DB = 40  # frames this far below the loudest clean frame are silent
BETA_DB = -15.0  # lower SDR bound of the clipping (Eq. 4)
EPS = np.finfo(np.float64).eps
# STOI adds EPS to frame and segment norms (pystoi does too). Below this norm of the
# loudest Hann frame (at 10 kHz), those EPS terms start to decide the value: an estimate
# scaled to 1e-12 drifted from 0.674 to 0.53, then to 0. 1e-6 (−120 dB) keeps a margin
# of 10^5 over where the drift starts, and a 16-bit file's last bit is louder.
MIN_FRAME_NORM = 1e-6


@cache
def _band_edges() -> np.ndarray:
    """The first FFT bin of every one-third-octave band, then the end of the last.

    Band ``k`` spans the bins nearest to ``150·2^((2k ∓ 1)/6)`` Hz (Eq. 1), bins of a
    512-point FFT at 10 kHz, nearest in squared distance as pystoi's ``thirdoct`` picks
    them; its 0/1 matrix is these adjacent ranges (the tests compare them).
    """
    f = np.linspace(0, RATE, FFT_SIZE + 1)[: FFT_SIZE // 2 + 1]
    k = np.arange(BANDS, dtype=float)
    low = LOWEST_BAND_HZ * np.power(2.0, (2 * k - 1) / 6)
    high = LOWEST_BAND_HZ * np.power(2.0, (2 * k + 1) / 6)
    starts = np.argmin(np.square(f[None, :] - low[:, None]), axis=1)
    ends = np.argmin(np.square(f[None, :] - high[:, None]), axis=1)
    if not np.array_equal(starts[1:], ends[:-1]):
        raise RuntimeError("the one-third-octave bands are not adjacent ranges of bins")
    return np.append(starts, ends[-1])


def _band_sums(power: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``power @ bands.T`` (Eq. 1's sums), as sums of adjacent ranges of bins. A matrix
    product would go through BLAS, whose result changes in the last bit with its number
    of threads: a worker (one thread) and a script scoring in its own process (one per
    core) would then disagree on STOI. These sums are the same in every process."""
    return np.add.reduceat(power[:, edges[0]:edges[-1]], edges[:-1] - edges[0], axis=1)


def _hann() -> np.ndarray:
    return np.hanning(FRAME + 2)[1:-1]  # MATLAB's hanning(FRAME): no zero end points


def _frames(x: np.ndarray) -> np.ndarray:
    """Rows ``x[i : i + FRAME]`` for ``i`` in ``range(0, len(x) − FRAME, HOP)``."""
    count = -(-(len(x) - FRAME) // HOP) if len(x) > FRAME else 0
    return np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP][:count]


def _overlap_add(frames: np.ndarray) -> np.ndarray:
    """Sum windowed frames back at hop FRAME/2 (each sample gets exactly two halves)."""
    out = np.zeros((len(frames) + 1) * HOP)
    out[: len(frames) * HOP] += frames[:, :HOP].reshape(-1)
    out[HOP:] += frames[:, HOP:].reshape(-1)
    return out


def _frame_norms(x: np.ndarray) -> np.ndarray:
    """The norm of every Hann-windowed frame of ``x``."""
    frames, window = _frames(x), _hann()
    return np.concatenate([np.linalg.norm(window * frames[a:b], axis=1)
                           for a, b in frame_spans(len(frames), HOP)] or [np.zeros(0)])


def _speech_frames(norms: np.ndarray) -> np.ndarray:
    """Indices of the frames less than 40 dB below the loudest, from the frame norms."""
    energies = 20 * np.log10(norms + EPS)
    return np.flatnonzero((np.max(energies, initial=-np.inf) - DYNAMIC_RANGE_DB - energies) < 0)


def _too_quiet(name: str, loudest: float, measures: str) -> MetricError:
    return MetricError(
        f"{name} is too quiet for {measures}: its loudest frame has norm {loudest:.3g}, below "
        f"{MIN_FRAME_NORM:g}, where STOI's ε terms (float64 eps, as in pystoi) would decide "
        "the value. Check the file's level (a float file scaled by a tiny factor?).")


def _envelopes(x: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """One-third-octave envelopes (frames × bands) of ``x`` with its silent frames removed.

    The signal without silence is the overlap-add of the speech frames; its frame ``j``
    depends on speech frames ``j − 1 … j + 1`` only, so it is rebuilt a chunk at a time.
    """
    window, edges, frames = _hann(), _band_edges(), _frames(x)
    n = len(speech)
    out = []
    for first, last in frame_spans(max(n - 1, 0), HOP):  # the joined signal has n − 1 frames
        lo, hi = max(first - 1, 0), min(last + 1, n)
        joined = _overlap_add(window * frames[speech[lo:hi]])  # samples from lo·HOP on
        joined_frames = np.lib.stride_tricks.sliding_window_view(
            joined[(first - lo) * HOP:], FRAME)[::HOP][:last - first]
        spectra = np.fft.rfft(window * joined_frames, n=FFT_SIZE, axis=-1)
        out.append(np.sqrt(_band_sums(np.abs(spectra) ** 2, edges)))  # Eq. 1
    return np.concatenate(out) if out else np.zeros((0, BANDS))


def _band_envelopes(s: np.ndarray, s_hat: np.ndarray, fs: int):
    """One-third-octave envelopes (bands × frames) of both, after silent-frame removal.

    One signal at a time: the reference is resampled to 10 kHz, reduced to its envelopes
    (a few percent of its size) and released before the estimate is resampled, so a long
    file holds one 10 kHz copy at a time, not two (the values are the same either way).
    """
    s = _at_stoi_rate(s, fs)
    if s.shape[-1] < MIN_SAMPLES:  # (also: sliding windows need one whole frame)
        raise MetricError(
            f"too short for STOI/ESTOI: {s_hat.shape[-1]} samples at {fs} Hz "
            f"({s_hat.shape[-1] / fs:.3f} s); it needs at least {SEGMENT} frames of speech, "
            f"{MIN_SAMPLES / RATE:.4g} s")
    norms = _frame_norms(s)
    if np.max(norms, initial=0.0) < MIN_FRAME_NORM:
        raise _too_quiet("reference", np.max(norms, initial=0.0), "STOI/ESTOI")
    speech = _speech_frames(norms)
    clean = _envelopes(s, speech)  # (frames, bands)
    del s
    if clean.shape[0] < SEGMENT:
        raise MetricError(f"too short for STOI/ESTOI: fewer than {SEGMENT} frames of speech "
                          "(384 ms) remain after removing silent frames")
    s_hat = _at_stoi_rate(s_hat, fs)
    envelopes = np.stack([clean, _envelopes(s_hat, speech)])  # (2, frames, bands)
    # ESTOI normalises without ε, so only STOI needs the estimate to be loud enough
    loudest = np.max(_frame_norms(s_hat)[speech], initial=0.0)  # both have the same frames
    del s_hat
    quiet = _too_quiet("estimate", loudest, "STOI") if loudest < MIN_FRAME_NORM else None
    # (2, segments, bands, SEGMENT): every run of 30 consecutive frames
    return np.lib.stride_tricks.sliding_window_view(envelopes, SEGMENT, axis=1), quiet


def _at_stoi_rate(x: np.ndarray, fs: int) -> np.ndarray:
    """``x`` at 10 kHz, resampled as pystoi does: its port of Octave's ``resample``, a
    Kaiser-windowed sinc (60 dB rejection, roll-off a tenth of the cut-off) normalised to
    unit sum, through ``resample_poly`` (here sqeval's numpy polyphase loop: tested against
    pystoi's ``resample_oct`` within the tolerance policy)."""
    if fs == RATE:
        return x
    divisor = gcd(RATE, int(fs))
    up, down = RATE // divisor, int(fs) // divisor
    return resample_with(np.asarray(x, dtype=np.float64), _octave_window(up, down), up, down)


@cache
def _octave_window(up: int, down: int) -> np.ndarray:
    """Octave's ``resample`` filter for ``up/down``: cut-off ``1/(2·max)``, 60 dB."""
    p, q = float(up), float(down)
    cutoff = 1.0 / (2 * max(p, q))
    rejection_db = 60.0
    half = np.ceil((rejection_db - 8) / (28.714 * (cutoff / 10)))
    ideal = 2 * p * cutoff * np.sinc(2 * cutoff * np.arange(-half, half + 1))
    h = np.kaiser(2 * half + 1, 0.1102 * (rejection_db - 8.7)) * ideal
    return h / np.sum(h)


def _normalise(x: np.ndarray, axis: int) -> np.ndarray:
    x = x - x.mean(axis=axis, keepdims=True)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def _stoi_sum(x: np.ndarray, y: np.ndarray) -> float:
    """Σ over segments and bands of the correlations of Eq. 5."""
    scale = np.linalg.norm(x, axis=2, keepdims=True) / (np.linalg.norm(y, axis=2, keepdims=True)
                                                        + EPS)
    y_clipped = np.minimum(y * scale, x * (1 + 10 ** (-BETA_DB / 20)))  # Eqs. 3–4
    x = x - x.mean(axis=2, keepdims=True)
    y_clipped = y_clipped - y_clipped.mean(axis=2, keepdims=True)
    x = x / (np.linalg.norm(x, axis=2, keepdims=True) + EPS)
    y_clipped = y_clipped / (np.linalg.norm(y_clipped, axis=2, keepdims=True) + EPS)
    return float(np.sum(x * y_clipped))


def _estoi_sum(x: np.ndarray, y: np.ndarray) -> float:
    """Σ over segments and frames of the correlations of Jensen & Taal's Eq. 8."""
    x_n = _normalise(_normalise(x, axis=2), axis=1)  # along time, then along bands
    y_n = _normalise(_normalise(y, axis=2), axis=1)
    return float(np.sum(x_n * y_n))


def intelligibility(*, reference, estimate, fs: int) -> dict[str, float | np.ndarray]:
    """STOI and ESTOI together, sharing resampling, silence removal, STFT and bands.

    Returns:
        ``{"stoi": ..., "estoi": ...}``, floats for 1-D input; ``"stoi"`` holds the
        :class:`MetricError` instead when the estimate is too quiet for STOI's ε terms
        (ESTOI has none on the estimate and is still computed).

    Raises:
        MetricError: shapes differ, non-finite samples, a silent signal, a reference
            whose loudest frame is under :data:`MIN_FRAME_NORM`, or fewer than 30 frames
            of speech.
    """
    s, s_hat = as_pair(reference, estimate, headroom_for="STOI/ESTOI")
    flat_s, flat_e = s.reshape(-1, s.shape[-1]), s_hat.reshape(-1, s.shape[-1])
    values, quiet = {"stoi": [], "estoi": []}, None
    for a, b in zip(flat_s, flat_e):
        (x, y), too_quiet = _band_envelopes(a, b, int(fs))  # each (segments, bands, SEGMENT)
        quiet = quiet or too_quiet
        sums = np.sum([(_stoi_sum(x[i:j], y[i:j]), _estoi_sum(x[i:j], y[i:j]))
                       for i, j in frame_spans(len(x), HOP)], axis=0)
        values["stoi"].append(sums[0] / (len(x) * BANDS))  # Eq. 6
        values["estoi"].append(sums[1] / (len(x) * SEGMENT))
    out = {name: as_output(np.reshape(v, s.shape[:-1])) for name, v in values.items()}
    if quiet is not None:
        out["stoi"] = quiet
    return out


def stoi(*, reference, estimate, fs: int):
    """Short-time objective intelligibility (Taal et al. 2011), in [0, 1]; higher is better.

    Args:
        reference: clean signal, shape ``(..., time)``.
        estimate: estimate, same shape.
        fs: sampling rate in Hz (any; resampled to 10 kHz).

    Raises:
        MetricError: shapes differ, non-finite samples, a silent signal, or fewer than 30
            frames of speech.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> s = rng.standard_normal(16000)
        >>> stoi(reference=s, estimate=s, fs=16000) > 0.999
        True
    """
    value = intelligibility(reference=reference, estimate=estimate, fs=fs)["stoi"]
    if isinstance(value, MetricError):
        raise value
    return value


def estoi(*, reference, estimate, fs: int):
    """Extended STOI (Jensen & Taal 2016); higher is better, 1 at identity.

    Same arguments and errors as :func:`stoi`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> s = rng.standard_normal(16000)
        >>> estoi(reference=s, estimate=s, fs=16000) > 0.999
        True
    """
    return intelligibility(reference=reference, estimate=estimate, fs=fs)["estoi"]
