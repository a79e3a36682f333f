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
both computed with one FFT, and are solved by Levinson recursion in O(L²); the error ``ŝ − P`` is formed explicitly rather than as
``‖ŝ‖² − ‖P‖²``, which would lose all precision when the SDR is high.

References
----------
- E. Vincent, R. Gribonval, C. Févotte, "Performance measurement in blind audio source
  separation", IEEE TASLP 14(4), 2006 (Eqs. 3–4 and the ``P_s`` projection of §III).
- mir_eval ``separation.bss_eval_sources`` and fast_bss_eval ``sdr``, which sqeval
  matches within 1e-4 dB.
"""

from __future__ import annotations

import numpy as np

from ._checks import MetricError, as_output, as_pair, to_db

FILTER_LENGTH = 512  # taps of the allowed distortion filter (BSS Eval v3)


def _solve_normal_equations(autocorrelation: np.ndarray, crosscorrelation: np.ndarray):
    """Solve ``R h = b`` with ``R[k, l] = r[|k − l|]`` (Levinson, O(L²)) for every item;
    least squares where ``R`` is singular (as mir_eval falls back)."""
    from scipy.linalg import LinAlgError, solve_toeplitz

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
    s, s_hat = as_pair(reference, estimate)
    if filter_length < 1:
        raise MetricError(f"filter_length must be ≥ 1; got {filter_length}.")
    from scipy import fft

    taps = filter_length
    n_padded = s.shape[-1] + taps - 1
    n_fft = fft.next_fast_len(n_padded, real=True)
    spectrum_s = fft.rfft(s, n_fft)
    spectrum_e = fft.rfft(s_hat, n_fft)
    # Linear (not circular) correlations at lags 0 … L−1, since n_fft ≥ T + L − 1.
    autocorrelation = fft.irfft(np.abs(spectrum_s) ** 2, n_fft)[..., :taps]
    crosscorrelation = fft.irfft(spectrum_e * np.conj(spectrum_s), n_fft)[..., :taps]
    filters = _solve_normal_equations(autocorrelation, crosscorrelation)
    projection = fft.irfft(spectrum_s * fft.rfft(filters, n_fft), n_fft)[..., :n_padded]
    error = -projection
    error[..., : s_hat.shape[-1]] += s_hat
    return as_output(to_db(np.sum(projection**2, axis=-1), np.sum(error**2, axis=-1)))
