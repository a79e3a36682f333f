"""CI-SDR: the convolutive transfer function invariant SDR as a training loss.

C. Boeddeker, W. Zhang, T. Nakatani, K. Kinoshita, T. Ochiai, M. Delcroix, N. Kamo,
Y. Qian, R. Haeb-Umbach, "Convolutive transfer function invariant SDR training criteria
for multi-channel reverberant speech separation", ICASSP 2021.

Per item (one source), with reference ``s`` and estimate ``ŝ`` of ``T`` samples and a
filter of ``L`` taps:

- ``r[l] = Σ_t s[t]·s[t+l]`` and ``p[l] = Σ_t s[t]·ŝ[t+l]``, ``l = 0 … L−1`` (the
  autocorrelation of the reference and its cross-correlation with the estimate);
- ``R`` the ``L×L`` symmetric Toeplitz matrix of ``r``, ``w = (R + λ·I)⁻¹ p``: the causal
  FIR filter that best maps the reference onto the estimate (least squares);
- ``t = w ∗ s`` (full convolution, ``T + L − 1`` samples), ``e = t − ŝ`` with ``ŝ``
  zero-padded to that length;
- ``CI-SDR = 10·log10((‖t‖² + ε)/(‖e‖² + ε))``, and the loss is ``−CI-SDR`` in dB.

``L = 0`` is the plain SDR ``‖s‖²/‖s − ŝ‖²``; ``L = 1`` is SI-SDR without zero mean.
This is the value of ``ci_sdr.pt.ci_sdr_loss(estimate, reference,
compute_permutation=False, filter_length=L)`` (ci_sdr 0.0.2) for one source per item, up
to the two floors below, which only matter where that function fails.

Floors, and where the reference implementation differs:

- ``λ = TOEPLITZ_LOADING·r[0] + TOEPLITZ_FLOOR`` (diagonal loading). A silent reference
  makes ``R`` zero: ci_sdr's solve raises for the whole batch; here ``w = 0`` and the
  loss is finite (``−10·log10(ε/(‖ŝ‖² + ε))``, gradient 0 for the reference). On speech
  the loading moves the value by a few 1e-9 dB. It also bounds the CI-SDR of an estimate
  equal to its reference (about 170 dB on speech, 195 dB on white noise in float64), where
  ci_sdr gives ~300 dB with gradients of ~1e13 (here ~50).
- ``ε = finfo(dtype).eps`` beside both energies (``EPS_FLOAT64``/``EPS_FLOAT32`` of
  :mod:`._sa_sdr`), as in sqeval's SNR metrics and torchmetrics: a silent estimate gives
  0/0 = NaN in ci_sdr and 0 dB here (``w = 0``, so ``t = e = 0``).
"""

from __future__ import annotations

import numpy as np

from ._backend import prepare
from ._sa_sdr import energy_eps  # ε = EPS_FLOAT64 or EPS_FLOAT32, as the dtype is

TOEPLITZ_LOADING = 1e-10  # λ relative to the reference energy r[0], on R's diagonal
TOEPLITZ_FLOOR = 1e-20  # absolute part of λ: R stays invertible for a silent reference


def _solve(ops, matrix, vector):
    """``matrix⁻¹ vector`` for stacks of square matrices and vectors (LU).

    torch solves one matrix at a time: torch's batched LU (2.13, CPU build with oneMKL)
    fails after ``torch.set_num_threads(n)`` ("Pivots given to lu_solve must all be
    greater or equal to 1", oneMKL: "Parameter 6 was incorrect on entry to SLASWP"),
    while one matrix at a time works; the cost is the same."""
    if ops.is_torch:
        torch = ops.torch
        flat_matrix = matrix.reshape(-1, *matrix.shape[-2:])
        flat_vector = vector.reshape(-1, vector.shape[-1])
        solved = [torch.linalg.solve(m, v[:, None])[:, 0] for m, v in zip(flat_matrix, flat_vector)]
        return torch.stack(solved).reshape(vector.shape) if solved else vector
    return np.linalg.solve(matrix, vector[..., None])[..., 0]


def _pad_end(ops, x, count):
    if ops.is_torch:
        return ops.torch.nn.functional.pad(x, (0, count))
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, count)])


def _toeplitz(ops, r):
    """The symmetric Toeplitz matrices ``R[i, j] = r[|i − j|]`` of ``r`` (shape (..., L))."""
    taps = r.shape[-1]
    lags = np.abs(np.arange(taps)[:, None] - np.arange(taps)[None, :])
    return r[..., ops.index(lags)]


def ci_sdr_filtered(ops, reference, estimate, filter_length: int):
    """CI-SDR in dB, one value per leading index (arrays already prepared)."""
    eps = energy_eps(ops)
    if filter_length == 0:
        target, error = reference, reference - estimate
    else:
        time = reference.shape[-1]
        size = time + filter_length - 1  # the full convolution's length
        n_fft = 1 << (size - 1).bit_length()  # ≥ size: no circular wrap in lags 0 … L−1
        spectrum = ops.rfft(reference, n_fft)
        auto = ops.irfft(spectrum.conj() * spectrum, n_fft)[..., :filter_length]
        cross = ops.irfft(spectrum.conj() * ops.rfft(estimate, n_fft),
                       n_fft)[..., :filter_length]
        loading = TOEPLITZ_LOADING * auto[..., :1] + TOEPLITZ_FLOOR
        eye = ops.const(np.eye(filter_length))
        taps = _solve(ops, _toeplitz(ops, auto) + loading[..., None] * eye, cross)
        target = ops.irfft(spectrum * ops.rfft(taps, n_fft), n_fft)[..., :size]
        error = target - _pad_end(ops, estimate, filter_length - 1)
    return 10 * ops.log10((ops.sum(target**2) + eps) / (ops.sum(error**2) + eps))


def ci_sdr_loss(*, reference, estimate, filter_length: int = 512, reduction: str = "mean"):
    """−CI-SDR in dB (Boeddeker et al., ICASSP 2021): SDR after the best causal FIR
    filter of ``filter_length`` taps is applied to the reference; unbounded below.

    See the module for the formula. ``reference`` and ``estimate``: one shape
    ``(..., time)``, one source per item, numpy arrays or torch tensors (then
    differentiable). ``filter_length``: 0 … time (0: plain SDR). ``reduction``: ``"mean"``
    or ``"sum"`` over the items, or ``"none"`` (shape ``(...)``).

    Equal to ``ci_sdr.pt.ci_sdr_loss(estimate, reference, compute_permutation=False,
    filter_length=filter_length)`` with ``reduction="none"``, and finite where that is not
    (silent reference or estimate).

    Example:
        >>> import numpy as np
        >>> s = np.sin(np.arange(64) / 3.0) + np.cos(np.arange(64) / 7.1) ** 3
        >>> echo = s + 0.5 * np.concatenate([[0.0, 0.0], s[:-2]])  # s filtered by 1 + ½z⁻²
        >>> round(ci_sdr_loss(reference=s, estimate=echo, filter_length=1), 4)  # SI-SDR
        -14.2492
        >>> # with 3 taps the echo is allowed; what is left is the tail of the filtered
        >>> # reference that the estimate cuts off at its end
        >>> round(ci_sdr_loss(reference=s, estimate=echo, filter_length=3), 4)
        -31.6329
    """
    ops, (reference, estimate) = prepare({"reference": reference, "estimate": estimate},
                                         reduction=reduction)
    if ops.is_torch:
        ops.require_finite()  # a NaN would stop the linear solve before the value shows it
    time = reference.shape[-1]
    if isinstance(filter_length, bool) or not isinstance(filter_length, (int, np.integer)) or not (
            0 <= filter_length <= time):
        raise ValueError(f"filter_length must be an integer from 0 to the signal length "
                         f"({time}); got {filter_length!r}")
    sdr = ci_sdr_filtered(ops, reference, estimate, int(filter_length))
    return ops.reduce(-sdr, reduction)
