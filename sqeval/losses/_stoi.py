"""STOI and ESTOI as training losses: ``−STOI`` and ``−ESTOI``, differentiable in the estimate.

The value is that of :func:`sqeval.metrics.stoi` / :func:`~sqeval.metrics.estoi` (and of
``pystoi.stoi(reference, estimate, fs, extended=...)``), computed by the same steps, written
once for numpy arrays and torch tensors (:mod:`sqeval.losses._backend`):

1. Both signals are resampled to 10 kHz by pystoi's filter (a port of Octave's
   ``resample``: Kaiser-windowed sinc, 60 dB, normalised to unit sum), applied as a
   polyphase filter ``y[i] = Σ_n g[half + i·down − n·up]·x[n]``, ``g`` = the window × up:
   a linear map, so the estimate's gradient flows through it (a strided ``conv1d`` in
   torch, a matrix product of sliding windows in numpy).
2. Silent frames (Taal et al. 2011, §II-A): 256-sample Hann frames at hop 128 whose
   energy is 40 dB or more below the reference's loudest are dropped from both signals.
   The choice is a numpy decision on the reference alone (float64, no gradient, the
   same for numpy, float32 and float64 input); the kept frames of both are overlap-added
   as pystoi does.
3. One-third-octave envelopes (Eq. 1 of Taal et al.): ``X_j(m) = sqrt(Σ_{k∈band j}
   |x̂(k, m)|²)`` from a 512-point FFT of the Hann-windowed frames; 15 bands from 150 Hz.
4. Segments of ``N = 30`` frames (384 ms) ending at every frame ``m ≥ N``:

   - STOI: ``ȳ = min(y·‖x‖/(‖y‖ + ε), (1 + 10^(−β/20))·x)`` with ``β = −15 dB`` (Eqs. 3–4),
     ``d_{j,m} = ⟨x − μ_x, ȳ − μ_ȳ⟩ / ((‖x − μ_x‖ + ε)(‖ȳ − μ_ȳ‖ + ε))`` (Eq. 5),
     ``STOI = (1/(J·M)) Σ_{j,m} d_{j,m}`` over the ``J = 15`` bands and ``M`` segments
     (Eq. 6); ``ε`` is float64's eps, as in pystoi.
   - ESTOI (Jensen & Taal 2016): each segment is mean- and norm-normalised along time
     (rows), then along bands (columns) (Eqs. 6–7), and ``ESTOI = (1/(N·M)) Σ_m Σ_n
     ⟨x̃_n, ỹ_n⟩`` over the columns ``n`` of the normalised segments (Eqs. 8–9).

Floors, and why the value still equals pystoi's:

- ``sqrt`` of a sum (the band envelopes, every norm) is taken as ``sqrt(s)`` where
  ``s > 0`` and 0 where ``s = 0``, with a zero gradient there (``Ops.sqrt0``): no floor
  at all, so the value is exactly the formula's; the gradient of a norm is a unit
  vector (bounded) wherever ``s > 0`` and 0 at the zero vector, never NaN or Inf.
- :data:`EPS` (float64's eps, pystoi's ε) beside STOI's norms: part of the definition.
- :data:`CONSTANT_ROW`: a row of envelopes that is constant to 1e-6 of its level (a DC or
  tonal estimate's) is centred to exactly 0, so its correlation is 0 with a zero
  gradient; pystoi correlates what is left, rounding noise (a value that is noise, and a
  gradient of 1e15 or more). Rows of speech and noise vary far more than this.
- :data:`ESTOI_EPS` beside ESTOI's row and column norms, where pystoi instead adds
  ``EPS``-sized Gaussian noise before normalising (and sqeval's metric divides only
  where the norm is positive): without it a silent estimate would divide 0 by 0. It
  moves a normalised row by a relative ``ESTOI_EPS/‖row‖`` (2e-12 for a row of norm
  1e-4; pystoi's own noise is of the same size).

Batches: the leading axes are flattened; items keep different numbers of speech frames
by padding the gathered frames with zeros to the largest count and masking the segments
past each item's own end (no loop over items, frames or samples).

References: C. H. Taal, R. C. Hendriks, R. Heusdens, J. Jensen, IEEE TASLP 19(7), 2011;
J. Jensen, C. H. Taal, IEEE/ACM TASLP 24(11), 2016; pystoi (M. Pariente).
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd
from numbers import Real

import numpy as np

from ..metrics.stoi import (BANDS, BETA_DB, DYNAMIC_RANGE_DB, EPS, FFT_SIZE, FRAME, HOP,
                            MIN_FRAME_NORM, MIN_SAMPLES, RATE, SEGMENT, _band_edges, _hann,
                            _octave_window)
from ._backend import Ops, prepare

CLIP = 1 + 10 ** (-BETA_DB / 20)  # Eq. 4: ȳ ≤ (1 + 10^(−β/20))·x, β = −15 dB
ESTOI_EPS = EPS  # added to ESTOI's row and column norms (see the module docstring)
# A row (or column) of envelopes whose centred norm is at most this fraction of its own norm
# (float64; 1000 eps of the dtype if larger: 1.2e-4 in float32) is taken as constant: its
# centred values are set to 0, with a zero gradient, rather than normalised. Normalising
# a row that varies by 1e-9 of its level (a DC or tonal estimate: the Hann window's
# leakage, nearly the same in every frame) divides rounding errors by 1e-9: its value is
# noise (pystoi's too: it adds eps-sized random noise there) and its gradient explodes.
# Envelopes of speech or noise over 384 ms vary by far more.
CONSTANT_ROW = 1e-6


def stoi_loss(*, reference, estimate, fs: int, reduction: str = "mean"):
    """−STOI (Taal et al. 2011) of ``estimate`` against ``reference``; in [−1, 0], lower
    is better.

    ``STOI = (1/(J·M)) Σ_{j,m} d_{j,m}`` (Eq. 6), the correlations ``d_{j,m}`` (Eq. 5) of
    the 15 one-third-octave envelopes (Eq. 1) over 384 ms segments, the estimate's scaled
    to the reference's energy and clipped at β = −15 dB SDR (Eqs. 3–4); the steps and
    floors are in the module docstring. Equals ``−sqeval.metrics.stoi`` and
    ``−pystoi.stoi(reference, estimate, fs)`` (within 1e-6 in float64).

    Args:
        reference: clean signal, shape ``(..., time)``; numpy array or torch.Tensor.
        estimate: the estimate, same shape (and type); gradients flow into it.
        fs: sampling rate in Hz (resampled to 10 kHz as pystoi does).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the leading axes.

    Returns:
        numpy input: a float (or a float64 array for ``"none"``); torch input: a tensor
        in the input's dtype and device. A silent estimate gives 0, with a zero gradient
        (the metric refuses an estimate quieter than ``MIN_FRAME_NORM``; a loss cannot,
        as a model may start from silence).

    Raises:
        ValueError: bad shapes, non-finite values, an unknown reduction or rate; a
            reference too quiet or too short for STOI (fewer than 30 frames of speech
            after silent-frame removal).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> s = rng.standard_normal(16000)
        >>> round(stoi_loss(reference=s, estimate=s, fs=16000), 6)
        -1.0
    """
    ops, x, y, valid, counts, lead = _segments(reference, estimate, fs, reduction)
    scale = _norm(ops, x) / (_norm(ops, y) + EPS)  # (B, M, J, 1)
    clipped = ops.minimum(y * scale, x * CLIP)  # Eqs. 3–4
    x, clipped = _centred(ops, x, -1), _centred(ops, clipped, -1)
    correlations = ops.sum((x / (_norm(ops, x) + EPS)) * (clipped / (_norm(ops, clipped) + EPS)),
                           axis=(-2, -1))  # Σ_j d_{j,m} (Eq. 5), shape (B, M)
    value = ops.sum(correlations * ops.const(valid), axis=-1) / ops.const(counts * BANDS)
    return ops.reduce(-value.reshape(lead), reduction)  # Eq. 6


def estoi_loss(*, reference, estimate, fs: int, reduction: str = "mean"):
    """−ESTOI (Jensen & Taal 2016) of ``estimate`` against ``reference``; about [−1, 1],
    lower is better (−1 at identity).

    Each 15 × 30 segment of one-third-octave envelopes is normalised to zero mean and unit
    norm along time (rows), then along bands (columns) (Eqs. 6–7); ``ESTOI = (1/(N·M))
    Σ_m Σ_n ⟨x̃_{m,n}, ỹ_{m,n}⟩`` over the ``N = 30`` columns of the ``M`` segments
    (Eqs. 8–9). Equals ``−sqeval.metrics.estoi`` and ``−pystoi.stoi(reference, estimate,
    fs, extended=True)`` (within 1e-6 in float64). Same arguments, returns and errors as
    :func:`stoi_loss`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> s = rng.standard_normal(16000)
        >>> round(estoi_loss(reference=s, estimate=s, fs=16000), 6)
        -1.0
    """
    ops, x, y, valid, counts, lead = _segments(reference, estimate, fs, reduction)
    x = _normalise(ops, _normalise(ops, x, axis=-1), axis=-2)  # rows, then columns
    y = _normalise(ops, _normalise(ops, y, axis=-1), axis=-2)
    correlations = ops.sum(x * y, axis=(-2, -1))  # (B, M)
    value = ops.sum(correlations * ops.const(valid), axis=-1) / ops.const(counts * SEGMENT)
    return ops.reduce(-value.reshape(lead), reduction)


# --- the shared steps ----------------------------------------------------------------------

def _segments(reference, estimate, fs, reduction):
    """Both signals' envelope segments ``(B, M_max, 15, 30)`` with the segment mask
    ``(B, M_max)``, each item's segment count ``(B,)`` and the leading shape."""
    ops, (s, s_hat) = prepare({"reference": reference, "estimate": estimate},
                              reduction=reduction)
    fs = _check_rate(fs)
    lead, n_in = tuple(s.shape[:-1]), s.shape[-1]
    if int(np.prod(lead, dtype=np.int64)) == 0:
        raise ValueError(f"reference and estimate hold no signals: shape {tuple(s.shape)}")
    s, s_hat = s.reshape(-1, n_in), s_hat.reshape(-1, n_in)
    # the silent-frame choice: numpy, float64, from the reference alone
    if ops.is_torch:
        ops.require_finite()  # before the frame choice, which runs in numpy
    order, counts = _speech_frames(_resample(Ops(), ops.numpy(s), fs), fs, n_in, lead)
    # one signal at a time, so that the backward pass does not run through the reference
    x, y = (_windows(ops, _envelopes(ops, _resample(ops, signal, fs), order, counts),
                     SEGMENT, axis=1) for signal in (s, s_hat))  # (B, M_max, 15, 30)
    segments = counts - SEGMENT  # F = counts − 1 frames, F − N + 1 segments
    valid = np.arange(x.shape[1])[None, :] < segments[:, None]
    return ops, x, y, valid, segments, lead


def _check_rate(fs) -> int:
    if isinstance(fs, bool) or not isinstance(fs, Real) or not float(fs).is_integer() or fs <= 0:
        raise ValueError(f"fs must be a positive whole number of Hz; got {fs!r}")
    return int(fs)


def _speech_frames(s: np.ndarray, fs: int, n_in: int, lead: tuple):
    """The reference's speech frames, per item (rows of ``s``, at 10 kHz): their indices
    in ascending order, padded on the right to the largest count, and the counts.

    A frame is kept when its Hann-windowed energy is less than 40 dB below the item's
    loudest frame (pystoi's ``remove_silent_frames``, with its ε inside the log).
    """
    if s.shape[-1] < MIN_SAMPLES:
        raise ValueError(
            f"too short for STOI/ESTOI: {n_in} samples at {fs} Hz ({n_in / fs:.3f} s); it "
            f"needs at least {SEGMENT} frames of speech, {MIN_SAMPLES / RATE:.4g} s")
    n_frames = -(-(s.shape[-1] - FRAME) // HOP)  # frames start at range(0, len − FRAME, HOP)
    frames = np.lib.stride_tricks.sliding_window_view(s, FRAME, axis=-1)[:, ::HOP][:, :n_frames]
    norms = np.linalg.norm(frames * _hann(), axis=-1)  # (B, frames)
    loudest = norms.max(axis=-1)
    for item in np.flatnonzero(loudest < MIN_FRAME_NORM)[:1]:
        raise ValueError(
            f"reference{_where(item, lead)} is too quiet for STOI/ESTOI: its loudest frame "
            f"has norm {loudest[item]:.3g}, below {MIN_FRAME_NORM:g}, where STOI's ε terms "
            "(float64 eps, as in pystoi) would decide the value; a silent reference cannot "
            "define STOI. Check the signal's level.")
    energies = 20 * np.log10(norms + EPS)
    speech = (energies.max(axis=-1, keepdims=True) - DYNAMIC_RANGE_DB - energies) < 0
    counts = speech.sum(axis=-1)
    for item in np.flatnonzero(counts - 1 < SEGMENT)[:1]:  # the joined signal: count − 1 frames
        raise ValueError(
            f"reference{_where(item, lead)} is too short for STOI/ESTOI: fewer than "
            f"{SEGMENT} frames of speech (384 ms) remain after removing silent frames")
    order = np.argsort(~speech, axis=-1, kind="stable")[:, :counts.max()]  # kept ones first
    return order, counts


def _where(item: int, lead: tuple) -> str:
    """" (item i)" (or "(i, j, ...)") for a batch, "" for one signal."""
    index = tuple(int(i) for i in np.unravel_index(item, lead))
    return "" if not lead else f" (item {index[0] if len(index) == 1 else index})"


def _envelopes(ops, x, order, counts):
    """One-third-octave envelopes ``(B, F_max, 15)`` of the rows of ``x`` (10 kHz) with
    only the frames ``order`` kept (Eq. 1), ``F = count − 1`` frames per row.

    The kept Hann-windowed frames ``f_0 … f_{n−1}`` are overlap-added at hop 128, as pystoi
    does: block ``k`` (128 samples) of the joined signal is ``f_{k−1}[128:] + f_k[:128]``,
    and its frame ``j`` is blocks ``j`` and ``j + 1``. Rows with fewer frames get zero frames
    past their end; the segments that reach them are masked by the caller.
    """
    rows, width = x.shape[0], order.shape[1]
    positions = order[:, :, None] * HOP + np.arange(FRAME)  # (B, n_max, FRAME)
    kept = np.arange(width)[None, :] < counts[:, None]
    frames = x[ops.index(np.arange(rows)[:, None, None]), ops.index(positions)]
    frames = frames * ops.const(_hann() * kept[:, :, None])  # windowed, zero past the end
    zero = ops.const(np.zeros((rows, 1, HOP)))
    blocks = (ops.concat([frames[..., :HOP], zero], axis=1)
              + ops.concat([zero, frames[..., HOP:]], axis=1))  # (B, n_max + 1, HOP)
    joined = ops.concat([blocks[:, :width - 1], blocks[:, 1:width]], axis=-1)
    spectra = ops.rfft(joined * ops.const(_hann()), FFT_SIZE)  # (B, F_max, 257)
    power = spectra.real ** 2 + spectra.imag ** 2
    return ops.sqrt0(power @ ops.const(_band_matrix().T))  # Eq. 1


@lru_cache(maxsize=1)
def _band_matrix() -> np.ndarray:
    """pystoi's 0/1 one-third-octave matrix (15 × 257), from sqeval's band edges."""
    edges = _band_edges()
    bins = np.arange(FFT_SIZE // 2 + 1)
    return ((bins >= edges[:-1, None]) & (bins < edges[1:, None])).astype(float)


# --- resampling to 10 kHz, differentiable -------------------------------------------------

def _resample(ops, x, fs: int):
    """Rows of ``x`` at 10 kHz as pystoi resamples them (``resample_poly`` with Octave's
    window): ``y[i] = Σ_n g[half + i·down − n·up]·x[n]``, ``i < ceil(len·up/down)``.

    Output ``i = p + m·up`` (phase ``p``) reads ``x[m·down + lo + j]`` with the taps
    ``kernel[p, j]``: one strided correlation with ``up`` output channels.
    """
    if fs == RATE:
        return x
    divisor = gcd(RATE, fs)
    up, down = RATE // divisor, fs // divisor
    kernel, left = _polyphase(up, down)
    rows, n_in = x.shape
    n_out = -(-n_in * up // down)
    steps = -(-n_out // up)
    length = (steps - 1) * down + kernel.shape[1]
    right = max(length - left - n_in, 0)
    zeros = ops.const(np.zeros((rows, left + right)))
    padded = ops.concat([zeros[:, :left], x, zeros[:, left:]], axis=-1)[:, :length]
    if ops.is_torch:
        weight = ops.const(kernel.copy())[:, None, :]  # (up, 1, taps); the cache is read-only
        out = ops.torch.nn.functional.conv1d(padded[:, None, :], weight, stride=down)
        out = out.transpose(1, 2)  # (B, steps, up)
    else:
        windows = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1], axis=-1)
        out = np.ascontiguousarray(windows[:, ::down][:, :steps]) @ kernel.T  # (B, steps, up)
    return out.reshape(rows, steps * up)[:, :n_out]


@lru_cache(maxsize=16)
def _polyphase(up: int, down: int):
    """``(kernel, left)``: ``kernel[p, j] = g[half + p·down − (j + lo)·up]`` (0 outside
    the filter), ``lo = −floor(half/up)``, and ``left = −lo`` zeros to pad before ``x``."""
    g = _octave_window(up, down) * up
    half = (g.shape[0] - 1) // 2
    lo = -(half // up)
    hi = ((up - 1) * down + half) // up
    taps = half + np.arange(up)[:, None] * down - (np.arange(lo, hi + 1)[None, :]) * up
    inside = (taps >= 0) & (taps < g.shape[0])
    kernel = np.where(inside, g[np.clip(taps, 0, g.shape[0] - 1)], 0.0)
    kernel.flags.writeable = False
    return kernel, -lo


# --- small helpers over numpy and torch ----------------------------------------------------

def _norm(ops, x, axis=-1):
    """Euclidean norm along ``axis`` (kept), by ``Ops.sqrt0``: 0 with a zero gradient at 0."""
    return ops.sqrt0(ops.sum(x * x, axis=axis, keepdims=True))


def _centred(ops, x, axis):
    """``x`` minus its mean along ``axis``; 0 (zero gradient) where ``x`` is constant to
    :data:`CONSTANT_ROW` (a centred norm ≤ that fraction of the norm of ``x``)."""
    centred = x - ops.mean(x, axis=axis, keepdims=True)
    eps = float(ops.torch.finfo(x.dtype).eps) if ops.is_torch else float(np.finfo(np.float64).eps)
    varies = _norm(ops, centred, axis) > max(CONSTANT_ROW, 1000 * eps) * _norm(ops, x, axis)
    return ops.where(varies, centred, ops.const(0.0))


def _normalise(ops, x, axis):
    """Zero mean, unit norm along ``axis`` (Jensen & Taal Eqs. 6–7), with ESTOI_EPS."""
    x = _centred(ops, x, axis)
    return x / (_norm(ops, x, axis) + ESTOI_EPS)


def _windows(ops, x, size, axis):
    """Every run of ``size`` consecutive entries along ``axis``, as a new last axis."""
    if ops.is_torch:
        return x.unfold(axis, size, 1)
    return np.lib.stride_tricks.sliding_window_view(x, size, axis=axis)
