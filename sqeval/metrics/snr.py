"""The SNR family: SNR, SI-SNR, SI-SDR and OSI-SNR.

Conventions
-----------
``reference`` (clean, ``s``) and ``estimate`` (``ŝ``) are float arrays of shape
``(..., time)``; every function returns one value per leading index, in dB, higher is
better. ``⟨a, b⟩ = Σ a·b`` over time and ``‖a‖² = ⟨a, a⟩``. Ratios are taken as
``10·log10((num + ε)/(den + ε))`` with ``ε = finfo(float64).eps``, so an identical pair
gives a large finite value, never inf.

References
----------
- J. Le Roux, S. Wisdom, H. Erdogan, J. R. Hershey, "SDR – half-baked or well done?",
  ICASSP 2019 (SI-SDR, Eq. 5).
- Y. Luo, N. Mesgarani, "Conv-TasNet", IEEE/ACM TASLP 2019 (SI-SNR: SI-SDR on
  zero-mean signals).
- torchmetrics ``scale_invariant_signal_noise_ratio`` / ``..._distortion_ratio``, whose ε
  placement these functions follow.
"""

from __future__ import annotations

import numpy as np

from ..dsp import block_sum
from ._checks import EPS, MetricError, as_output, as_pair, require_energy, to_db


def _inner(a, b):
    return np.einsum("...t,...t->...", a, b)


def _energy(x):
    return _inner(x, x)


def snr(*, reference, estimate):
    """Signal-to-noise ratio ``‖s‖² / ‖ŝ − s‖²`` in dB.

    Not scale-invariant: a gain change of the estimate lowers it. Range (−inf, +inf);
    higher is better; an all-zero estimate gives 0 dB.

    Args:
        reference: clean signal, shape ``(..., time)``.
        estimate: estimate, same shape.

    Returns:
        float for 1-D input, else an array of shape ``(...)``.

    Raises:
        MetricError: shapes differ, non-finite samples, or a silent reference.

    Example:
        >>> import numpy as np
        >>> s = np.array([1.0, -1.0, 1.0, -1.0])
        >>> round(snr(reference=s, estimate=1.1 * s), 6)
        20.0
    """
    s, s_hat = as_pair(reference, estimate, estimate_may_be_silent=True, headroom_for="SNR")
    energy = block_sum(_energy, s)
    require_energy(energy, name="reference", metric="SNR")  # the estimate may be any level
    return as_output(to_db(energy, block_sum(lambda s, e: _energy(e - s), s, s_hat)))


def _scale_invariant(s, s_hat, s_mean=0.0, s_hat_mean=0.0):
    """SI-SDR of ``s − s_mean`` and ``ŝ − s_hat_mean``; every full-length temporary is
    made one block at a time."""
    def centred(x, mean):
        return x - np.asarray(mean)[..., None]

    def sums(s, s_hat):
        s, s_hat = centred(s, s_mean), centred(s_hat, s_hat_mean)
        return np.stack([_inner(s_hat, s), _inner(s, s), _inner(s_hat, s_hat)])

    # Le Roux et al. 2019, Eq. 5: target = α·s with α = ⟨ŝ, s⟩/‖s‖² (ε as torchmetrics)
    correlation, energy, estimate_energy = block_sum(sums, s, s_hat)
    require_energy(energy, name="reference", metric="a scale-invariant SNR")
    require_energy(estimate_energy, name="estimate", metric="a scale-invariant SNR")
    alpha = (correlation + EPS) / (energy + EPS)

    def target_and_residual(s, s_hat):
        target = alpha[..., None] * centred(s, s_mean)
        return np.stack([_energy(target), _energy(target - centred(s_hat, s_hat_mean))])

    return to_db(*block_sum(target_and_residual, s, s_hat))


def si_sdr(*, reference, estimate):
    """Scale-invariant SDR in dB (no mean removal).

    ``α = ⟨ŝ, s⟩/‖s‖²``, ``t = α·s``, ``SI-SDR = ‖t‖²/‖ŝ − t‖²`` in dB. Invariant to the
    gain of the estimate. Range (−inf, +inf); higher is better.

    Raises:
        MetricError: shapes differ, non-finite samples, a silent reference or estimate.

    Example:
        >>> import numpy as np
        >>> s = np.array([1.0, 0.0, -1.0, 0.0])
        >>> n = np.array([0.0, 0.1, 0.0, -0.1])  # orthogonal to s
        >>> round(si_sdr(reference=s, estimate=3 * (s + n)), 6)
        20.0
    """
    s, s_hat = as_pair(reference, estimate, headroom_for="SI-SDR")
    return as_output(_scale_invariant(s, s_hat))


def si_snr(*, reference, estimate):
    """Scale-invariant SNR in dB: SI-SDR after removing each signal's mean.

    Range (−inf, +inf); higher is better. Invariant to the gain and the DC offset of the
    estimate.

    Raises:
        MetricError: shapes differ, non-finite samples, a silent reference or estimate.

    Example:
        >>> import numpy as np
        >>> s = np.array([1.0, 0.0, -1.0, 0.0])
        >>> n = np.array([0.0, 0.1, 0.0, -0.1])
        >>> round(si_snr(reference=s + 5, estimate=s + n - 2), 6)
        20.0
    """
    s, s_hat = as_pair(reference, estimate, headroom_for="SI-SNR")
    s_mean, s_hat_mean = s.mean(axis=-1), s_hat.mean(axis=-1)
    if _any_constant(s, s_mean) or _any_constant(s_hat, s_hat_mean):
        raise MetricError("a signal is constant (all samples equal); SI-SNR removes the mean, "
                          "which leaves nothing to compare.")
    return as_output(_scale_invariant(s, s_hat, s_mean, s_hat_mean))


def _any_constant(x, mean) -> bool:
    """Whether any item of ``x`` equals its mean everywhere (nothing left once centred)."""
    differs = block_sum(lambda x: np.any(x != mean[..., None], axis=-1), x)
    return not np.all(differs)


def osi_snr(*, reference, estimate):
    """Optimal-scale-invariant SNR in dB (no mean removal).

    ``λ = ‖ŝ‖²/⟨s, ŝ⟩``, ``t = λ·s``, ``OSI-SNR = ‖t‖²/‖ŝ − t‖²`` in dB. This equals
    ``10·log10(1 + 10^(SI-SDR/10))``: always ≥ 0 dB, tending to 0 dB for an estimate
    unrelated to the reference. Higher is better. This is the form in which the
    frame-wise OSI-SNR loss is written in the literature sqeval follows; see the metrics
    page of the docs (docs/metrics/index.md).

    Raises:
        MetricError: shapes differ, non-finite samples, a silent reference or estimate, or
            an estimate exactly orthogonal to the reference (λ undefined).

    Example:
        >>> import numpy as np
        >>> s = np.array([1.0, 0.0, -1.0, 0.0])
        >>> n = np.array([0.0, 0.1, 0.0, -0.1])
        >>> round(osi_snr(reference=s, estimate=s + n), 6)  # 10·log10(1 + 100)
        20.043214
    """
    s, s_hat = as_pair(reference, estimate, headroom_for="OSI-SNR")
    estimate_energy = _inner(s_hat, s_hat)
    # the levels first: a product that underflowed to 0 is not orthogonality
    require_energy(_inner(s, s), name="reference", metric="OSI-SNR")
    require_energy(estimate_energy, name="estimate", metric="OSI-SNR")
    correlation = _inner(s, s_hat)
    if np.any(correlation == 0):
        raise MetricError("estimate is orthogonal to the reference (⟨s, ŝ⟩ = 0), so OSI-SNR's "
                          "scale λ = ‖ŝ‖²/⟨s, ŝ⟩ is undefined.")
    scale = estimate_energy / correlation

    def target_and_residual(s, s_hat):
        target = scale[..., None] * s
        return np.stack([_energy(target), _energy(s_hat - target)])

    return as_output(to_db(*block_sum(target_and_residual, s, s_hat)))
