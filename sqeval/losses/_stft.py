"""The multi-resolution STFT loss of Parallel WaveGAN, as auraloss computes it.

R. Yamamoto, E. Song, J.-M. Kim, "Parallel WaveGAN: A fast waveform generation model
based on generative adversarial networks with multi-resolution spectrogram", ICASSP 2020
(Eqs. 4–6); the spectral convergence term is from S. Ö. Arık, H. Jun, G. Diamos, "Fast
spectrogram inversion using multi-head convolutional neural networks", IEEE SPL 2019.

For each resolution ``m`` (FFT size, hop, window length), ``|S|`` and ``|Ŝ|`` are the STFT
magnitudes of the reference and the estimate: periodic Hann window of the window length,
zero-padded in the middle of the FFT size, the signal reflect-padded by half the FFT size
at both ends (frames centred on ``t = 0, hop, 2·hop, …``), one-sided, not normalised, and
``|X| = sqrt(max(|X|², MAGNITUDE_FLOOR))``. Then::

    L_sc(m)  = ‖ |S| − |Ŝ| ‖_F / ‖ |S| ‖_F                  (spectral convergence)
    L_mag(m) = mean over bins and frames of |log|S| − log|Ŝ||  (log-magnitude L1)
    loss     = (1/M) Σ_m (L_sc(m) + L_mag(m))

with auraloss's defaults: FFT sizes (1024, 2048, 512), hops (120, 240, 50), window
lengths (600, 1200, 240), ``MAGNITUDE_FLOOR = 1e-8``.

Reductions. auraloss (``MultiResolutionSTFTLoss()(estimate, reference)``, shapes
``(batch, channels, time)``) takes the Frobenius norms of ``L_sc`` over the whole batch
at once, so its batch value is *not* the mean of per-item values:
``L_sc = sqrt(Σ_i ‖|S_i| − |Ŝ_i|‖² / Σ_i ‖|S_i|‖²)``, a ratio of sums, while ``L_mag`` is a
plain mean and does factor. Hence here:

- ``"mean"``: auraloss's value for the batch, items = every leading index: the pooled
  ``L_sc`` above plus the mean ``L_mag``, averaged over the resolutions;
- ``"none"``: one value per item, each item's loss computed alone (auraloss on a batch
  of one), shape ``(...)``;
- ``"sum"``: the sum of the ``"none"`` values.

``"mean"`` equals the mean of ``"none"`` when every item has one ratio
``‖|S_i| − |Ŝ_i|‖/‖|S_i|‖`` (e.g. one item); otherwise the pooled form weights the
louder items more, as auraloss (and Parallel WaveGAN's own code) do.

Safe to train with: the magnitude floor keeps ``‖|S|‖`` > 0 and the logarithms finite;
``L_sc`` of an identical pair is 0 with gradient 0 (its square root is taken only where
the error is positive), as in auraloss.
"""

from __future__ import annotations

import numpy as np

from ._backend import prepare

FFT_SIZES = (1024, 2048, 512)
HOP_SIZES = (120, 240, 50)
WIN_LENGTHS = (600, 1200, 240)
MAGNITUDE_FLOOR = 1e-8  # floor on the power |X|² before its square root (auraloss' eps)


def _window(ops, fft_size: int, win_length: int):
    """Periodic Hann window of ``win_length`` samples, centred in ``fft_size`` zeros."""
    window = np.zeros(fft_size)
    left = (fft_size - win_length) // 2
    window[left:left + win_length] = 0.5 - 0.5 * np.cos(
        2 * np.pi * np.arange(win_length) / win_length)
    return ops.const(window)


def _power(ops, x, fft_size: int, hop: int, win_length: int):
    """``|STFT|²`` of ``x`` (shape (items, time)) as (items, frames or bins, ...): summed
    and averaged over its last two axes only, so their order does not matter."""
    window = _window(ops, fft_size, win_length)
    if ops.is_torch:
        spectrum = ops.torch.stft(x, fft_size, hop_length=hop, win_length=fft_size,
                                  window=window, center=True, pad_mode="reflect",
                                  normalized=False, onesided=True, return_complex=True)
    else:
        half = fft_size // 2
        padded = np.pad(x, [(0, 0), (half, half)], mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(padded, fft_size, axis=-1)[:, ::hop]
        spectrum = np.fft.rfft(frames * window, axis=-1)
    return spectrum.real**2 + spectrum.imag**2


def _check_resolutions(fft_sizes, hop_sizes, win_lengths):
    resolutions = list(zip(fft_sizes, hop_sizes, win_lengths))
    if not resolutions or not len(fft_sizes) == len(hop_sizes) == len(win_lengths):
        raise ValueError("fft_sizes, hop_sizes and win_lengths must be non-empty and of "
                         f"one length; got {fft_sizes!r}, {hop_sizes!r}, {win_lengths!r}")
    for fft_size, hop, win_length in resolutions:
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
                   for v in (fft_size, hop, win_length)) or win_length > fft_size:
            raise ValueError("each resolution needs positive integers with win_length ≤ "
                             f"fft_size; got {(fft_size, hop, win_length)!r}")
    return resolutions


def multi_resolution_stft_loss(*, reference, estimate, reduction: str = "mean",
                               fft_sizes=FFT_SIZES, hop_sizes=HOP_SIZES,
                               win_lengths=WIN_LENGTHS):
    """Multi-resolution STFT loss (Yamamoto et al., ICASSP 2020): spectral convergence
    plus log-magnitude L1, averaged over STFT resolutions; 0 at identity, ≥ 0.

    See the module for the formulas and what ``reduction`` means (``"mean"`` is
    auraloss's batch value, whose spectral convergence pools the batch; ``"none"`` is one
    value per item computed alone; ``"sum"`` sums those). ``reference`` and ``estimate``:
    one shape ``(..., time)``, numpy arrays or torch tensors (then differentiable), longer
    than half the largest FFT size (the reflect padding).

    Equal to ``auraloss.freq.MultiResolutionSTFTLoss()(estimate, reference)`` for
    ``(batch, channels, time)`` tensors (note auraloss's argument order: input, target).

    Example:
        >>> import numpy as np
        >>> s = np.sin(2 * np.pi * 440 * np.arange(2048) / 16000)
        >>> multi_resolution_stft_loss(reference=s, estimate=s)
        0.0
        >>> round(multi_resolution_stft_loss(reference=s, estimate=0.5 * s), 6)
        0.874392
    """
    ops, (reference, estimate) = prepare({"reference": reference, "estimate": estimate},
                                         reduction=reduction)
    resolutions = _check_resolutions(fft_sizes, hop_sizes, win_lengths)
    lead, time = tuple(reference.shape[:-1]), reference.shape[-1]
    if time <= max(fft_sizes) // 2:
        raise ValueError(f"the signals need more than {max(fft_sizes) // 2} samples (half "
                         f"the largest FFT size, for the reflect padding); got {time}")
    reference = reference.reshape(-1, time)
    estimate = estimate.reshape(-1, time)
    pooled, per_item = 0.0, 0.0
    for fft_size, hop, win_length in resolutions:  # a few resolutions, not samples
        ref_power = ops.maximum(_power(ops, reference, fft_size, hop, win_length),
                                MAGNITUDE_FLOOR)
        est_power = ops.maximum(_power(ops, estimate, fft_size, hop, win_length),
                                MAGNITUDE_FLOOR)
        error = ops.sum((ops.sqrt(ref_power) - ops.sqrt(est_power)) ** 2, axis=(-2, -1))
        energy = ops.sum(ref_power, axis=(-2, -1))  # ‖|S|‖² (the floored power)
        log_l1 = 0.5 * ops.mean(ops.abs(ops.log(ref_power) - ops.log(est_power)),
                                axis=(-2, -1))  # log|X| = ½·log|X|²
        if reduction == "mean":
            pooled = pooled + ops.sqrt0(ops.sum(error, axis=0) / ops.sum(energy, axis=0)
                                         ) + ops.mean(log_l1, axis=0)
        else:
            per_item = per_item + ops.sqrt0(error / energy) + log_l1
    if reduction == "mean":
        return ops.output(pooled / len(resolutions))
    return ops.reduce((per_item / len(resolutions)).reshape(lead), reduction)
