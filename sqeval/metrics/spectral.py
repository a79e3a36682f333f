"""Spectral distances on one STFT: power-law compressed magnitude MSE (MC-MSE) and the
log-spectral distance (LSD).

Conventions
-----------
STFT: frame ``n = round(0.032·fs)`` samples (512 at 16 kHz), hop ``n // 4``, periodic
Hann window ``w``, only frames lying wholly inside the signal (no padding), and
``X = rfft(w·frame) / sqrt(Σ w²)``. With that normalisation ``|X|²`` is a power per bin
on the scale of the samples' power: white noise of variance σ² has ``E|X|² = σ²``.

- MC-MSE is the mean over (frame, bin) of ``(|S|^p − |Ŝ|^p)²`` with ``p = 0.3``. Range
  [0, inf); lower is better; 0 at identity.
- LSD is the mean over frames of ``sqrt(mean over bins of (10·log10(|S|² + ε) −
  10·log10(|Ŝ|² + ε))²)`` in dB, with ``ε = 1e-10``: a fixed floor on that power scale,
  −100 dB, about the power per bin of 16-bit quantisation noise (``2⁻³⁰/12 ≈ 7.8e-11``),
  so differences below the 16-bit noise floor count for little and a silent bin is
  finite. Range [0, inf) dB; lower is better; 0 at identity; symmetric in its two
  signals; an estimate ``g·s`` scores ``|20·log10 g|`` wherever ``|S|² ≫ ε``. Because
  ε is absolute, a gain applied to both signals changes LSD a little where bins come
  near it.

References
----------
- Power-law compression of magnitudes (p = 0.3) as used in spectral losses for speech
  enhancement, e.g. S. Braun, I. Tashev, "A consolidated view of loss functions for
  supervised deep learning-based speech enhancement", TSP 2021.
- Log-spectral distance: A. Gray, J. Markel, "Distance measures for speech processing",
  IEEE TASSP 1976; the per-frame RMS of the dB difference averaged over frames, as
  bandwidth-extension papers report it.
"""

from __future__ import annotations

import numpy as np

from ..dsp import frame_spans, hann
from ._checks import MetricError, as_output, as_pair

FRAME_SECONDS = 0.032  # 512 samples at 16 kHz
COMPRESSION = 0.3  # power-law exponent p
LSD_EPS = 1e-10  # floor added to |X|² in LSD: −100 dB, about 16-bit quantisation noise


def _framing(n_samples: int, fs: int, metric: str = "MC-MSE") -> tuple[int, int, int]:
    """``(frame, hop, number of whole frames)`` for a signal of ``n_samples`` at ``fs``.

    Raises:
        MetricError: the signal is shorter than one frame.
    """
    frame = int(round(FRAME_SECONDS * fs))
    hop = frame // 4
    if n_samples < frame:
        raise MetricError(
            f"too short for the {metric} STFT: {n_samples} samples, one frame needs {frame}"
        )
    return frame, hop, (n_samples - frame) // hop + 1


def stft_magnitude(x: np.ndarray, fs: int) -> np.ndarray:
    """Magnitude STFT of shape ``(..., frames, bins)`` with the conventions above.

    Raises:
        MetricError: the signal is shorter than one frame.
    """
    frame, hop, _ = _framing(x.shape[-1], fs)
    window = hann(frame)  # periodic
    frames = np.lib.stride_tricks.sliding_window_view(x, frame, axis=-1)[..., ::hop, :]
    return np.abs(np.fft.rfft(frames * window, axis=-1)) / np.sqrt(np.sum(window**2))


def mc_mse(*, reference, estimate, fs: int, power: float = COMPRESSION):
    """MSE between power-law compressed STFT magnitudes; lower is better, 0 at identity.

    Args:
        reference: clean signal, shape ``(..., time)``.
        estimate: estimate, same shape; may be silent.
        fs: sampling rate in Hz (sets the 32 ms frame).
        power: compression exponent ``p``.

    Raises:
        MetricError: shapes differ, non-finite samples, a silent reference, or a signal
            shorter than one frame.

    Example:
        >>> import numpy as np
        >>> s = np.random.default_rng(0).standard_normal(16000)
        >>> mc_mse(reference=s, estimate=s, fs=16000)
        0.0
    """
    s, s_hat = as_pair(reference, estimate, estimate_may_be_silent=True)
    frame, hop, n_frames = _framing(s.shape[-1], fs)
    total = 0.0
    # Frames in blocks of about BLOCK samples, so a long file needs no full-length STFT.
    for first, last in frame_spans(n_frames, hop):
        samples = slice(first * hop, (last - 1) * hop + frame)
        total = total + compressed_squared_error(stft_magnitude(s[..., samples], fs),
                                                 stft_magnitude(s_hat[..., samples], fs), power)
    return as_output(total / (n_frames * (frame // 2 + 1)))


def lsd(*, reference, estimate, fs: int):
    """Log-spectral distance in dB on the STFT above; lower is better, 0 at identity.

    ``mean over frames of sqrt(mean over bins of (10·log10(|S|²+ε) − 10·log10(|Ŝ|²+ε))²)``
    with ``ε = 1e-10`` (:data:`LSD_EPS`). Symmetric in its two signals.

    Args:
        reference: clean signal, shape ``(..., time)``.
        estimate: estimate, same shape; may be silent (its bins are then at ε).
        fs: sampling rate in Hz (sets the 32 ms frame).

    Raises:
        MetricError: shapes differ, non-finite samples, a silent reference, a signal
            shorter than one frame, or one so loud that its spectrum would overflow.

    Example:
        >>> import numpy as np
        >>> s = np.random.default_rng(0).standard_normal(16000)
        >>> lsd(reference=s, estimate=s, fs=16000)
        0.0
        >>> round(lsd(reference=s, estimate=0.1 * s, fs=16000), 5)  # |20·log10 0.1|, ε aside
        20.0
    """
    s, s_hat = as_pair(reference, estimate, estimate_may_be_silent=True, headroom_for="LSD")
    frame, hop, n_frames = _framing(s.shape[-1], fs, metric="LSD")
    total = 0.0
    # Frames in blocks of about BLOCK samples, so a long file needs no full-length STFT.
    for first, last in frame_spans(n_frames, hop):
        samples = slice(first * hop, (last - 1) * hop + frame)
        total = total + np.sum(frame_log_spectral_distance(
            stft_magnitude(s[..., samples], fs), stft_magnitude(s_hat[..., samples], fs)),
            axis=-1)
    return as_output(total / n_frames)


def frame_log_spectral_distance(magnitude: np.ndarray, estimate_magnitude: np.ndarray):
    """Per frame, ``sqrt(mean over bins of (10·log10(|M|² + ε) − 10·log10(|M̂|² + ε))²)``
    for two magnitude arrays of shape ``(..., frames, bins)``; shape ``(..., frames)``."""
    difference = (10 * np.log10(magnitude**2 + LSD_EPS)
                  - 10 * np.log10(estimate_magnitude**2 + LSD_EPS))
    return np.sqrt(np.mean(difference**2, axis=-1))


def compressed_squared_error(magnitude: np.ndarray, estimate_magnitude: np.ndarray,
                             power: float):
    """``Σ (|M|^p − |M̂|^p)²`` over the last two axes of two same-shape arrays."""
    difference = np.abs(magnitude) ** power - np.abs(estimate_magnitude) ** power
    return np.sum(difference**2, axis=(-2, -1))


def compressed_mse(magnitude: np.ndarray, estimate_magnitude: np.ndarray, power: float):
    """``mean((|M|^p − |M̂|^p)²)`` over the last two axes of two same-shape arrays."""
    count = magnitude.shape[-2] * magnitude.shape[-1]
    return compressed_squared_error(magnitude, estimate_magnitude, power) / count
