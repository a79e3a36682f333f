"""BSS Eval v3 signal-to-distortion ratio (SDR) for one source.

Conventions
-----------
The estimate ``ŝ`` is projected on the span of the reference ``s`` delayed by
0 … L−1 samples (a time-invariant L-tap filter, L = 512 as in BSS Eval v3); the
projection ``P`` is the allowed distortion, the rest the error:
``SDR = ‖P‖² / ‖ŝ − P‖²`` in dB (ε as in the SNR family). No mean is removed. Both
signals are zero-padded by L − 1 samples so the delayed copies keep all their energy.

The normal equations ``R h = b`` use the autocorrelation ``r`` of ``s`` (``R`` is the
Toeplitz matrix of ``r[0..L−1]``) and the cross-correlation ``b[k] = Σ ŝ[n]·s[n−k]``,
both computed with FFTs block by block, and are solved by Levinson recursion in O(L²).
The error ``ŝ − P`` is formed explicitly (again block by block) rather than as
``‖ŝ‖² − ‖P‖²``, which would lose all precision when the SDR is high. Memory does not
grow with the length beyond the two signals.

References
----------
- E. Vincent, R. Gribonval, C. Févotte, "Performance measurement in blind audio source
  separation", IEEE TASLP 14(4), 2006 (Eqs. 3–4 and the ``P_s`` projection of §III).
- mir_eval ``separation.bss_eval_sources`` and fast_bss_eval ``sdr``, which sqeval
  matches within 1e-4 dB.
"""

from __future__ import annotations

import numpy as np

from ..dsp import (block_sum, lagged_correlations, next_fast_len, padded, solve_toeplitz,
                   spans)
from ._checks import MetricError, as_output, as_pair, require_energy, to_db

FILTER_LENGTH = 512  # taps of the allowed distortion filter (BSS Eval v3)


def _solve_normal_equations(autocorrelation: np.ndarray, crosscorrelation: np.ndarray):
    """Solve ``R h = b`` with ``R[k, l] = r[|k − l|]`` (Levinson, O(L²)) for every item;
    least squares where ``R`` is singular (as mir_eval falls back)."""
    from numpy.linalg import LinAlgError  # scipy.linalg's LinAlgError is numpy's

    filters = np.empty_like(crosscorrelation)
    for index in np.ndindex(autocorrelation.shape[:-1]):
        r, b = autocorrelation[index], crosscorrelation[index]
        try:
            filters[index] = solve_toeplitz(r, b)
        except LinAlgError:
            lag = np.abs(np.subtract.outer(np.arange(len(r)), np.arange(len(r))))
            filters[index] = np.linalg.lstsq(r[lag], b, rcond=None)[0]
    return filters


def sdr(*, reference, estimate, filter_length: int = FILTER_LENGTH):
    """BSS Eval v3 SDR in dB, with a ``filter_length``-tap distortion filter.

    Args:
        reference: clean signal, shape ``(..., time)``.
        estimate: estimate, same shape.
        filter_length: taps of the distortion filter; 512 is the BSS Eval v3 value.

    Returns:
        SDR in dB; float for 1-D input, else an array of shape ``(...)``. Higher is
        better; invariant to any short (≤ ``filter_length`` taps) filtering of ``s``.

    Raises:
        MetricError: shapes differ, non-finite samples, a silent reference or estimate.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> s = np.concatenate([rng.standard_normal(4000), np.zeros(10)])
        >>> echo = s + 0.5 * np.concatenate([np.zeros(10), s[:-10]])  # a 2-tap filter of s
        >>> sdr(reference=s, estimate=echo) > 100  # filtering within 512 taps is not error
        True
    """
    s, s_hat = as_pair(reference, estimate, headroom_for="SDR")
    if filter_length < 1:
        raise MetricError(f"filter_length must be ≥ 1; got {filter_length}.")
    taps = filter_length
    autocorrelation, crosscorrelation = lagged_correlations(s, [s, s_hat], 0, taps - 1)
    require_energy(autocorrelation[..., 0], name="reference", metric="SDR")
    require_energy(block_sum(lambda x: np.sum(x * x, axis=-1), s_hat), name="estimate",
                   metric="SDR")
    filters = _solve_normal_equations(autocorrelation, crosscorrelation)
    projection_energy, error_energy = _energies(s, s_hat, filters)
    return as_output(to_db(projection_energy, error_energy))


def _energies(s: np.ndarray, s_hat: np.ndarray, filters: np.ndarray):
    """``‖P‖²`` and ``‖ŝ − P‖²`` with ``P = s ∗ h`` over all ``T + L − 1`` samples, block
    by block (overlap-save: each block of ``P`` needs ``L − 1`` samples of ``s`` before it)."""
    fft = np.fft  # scipy.fft's pocketfft, the same bits, without its 0.3 s import
    taps = filters.shape[-1]
    projection_energy = error_energy = 0.0
    for start, stop in spans(s.shape[-1] + taps - 1):
        context = padded(s, start - taps + 1, stop)
        size = next_fast_len(context.shape[-1])
        block = fft.irfft(fft.rfft(context, size) * fft.rfft(filters, size), size)
        projection = block[..., taps - 1:context.shape[-1]]  # the wrap-free outputs
        error = padded(s_hat, start, stop) - projection
        projection_energy = projection_energy + np.sum(projection**2, axis=-1)
        error_energy = error_energy + np.sum(error**2, axis=-1)
    return projection_energy, error_energy
