"""Loss forms of the metrics, for training enhancement models: one definition for numpy
arrays and PyTorch tensors.

Every function takes numpy arrays (computed in float64, returning a Python float or a
numpy array, as the metrics do) or ``torch.Tensor`` s (computed by torch on the tensors'
device, differentiable, returning a tensor; install ``sqeval[torch]``). The same code
runs in both cases (:mod:`sqeval.losses._backend`), so the value a model is trained on
is the value ``sqeval score`` reports: the tests hold the tensor path to the numpy path
within 1e-9 (float64) and each loss to its metric or its reference implementation.

Conventions
-----------
- Keyword-only ``reference=`` (clean, ``s``) and ``estimate=`` (``ŝ``), so they cannot be
  swapped by accident. Waveform losses take shapes ``(..., time)``; frame-wise losses take
  real matrices ``M``/``M̂`` of shape ``(..., bins, frames)`` (e.g. STFT magnitudes).
- ``reduction=``: ``"mean"`` (the default) or ``"sum"`` over the leading axes, or
  ``"none"`` for one value per item (shape ``(...)``). A 1-D signal gives one value.
- Lower is better for every loss. Tensors of float32 are computed in float32, float16 and
  bfloat16 in float32 (returned as float32), float64 in float64.
- Every floor ε is a named constant below, and keeps the value and the gradient finite
  for a silent reference, a silent estimate and identical signals.

The frame-wise constants (1e-10 in the OSI-SNR scale, 1e-8 beside the error energy, ε =
1e-8 in loss methods 1 and 2, ε = 1e-10 in the fused loss) are those of the articles these
forms come from, and give the golden values of sqeval's metric contract.
"""

from __future__ import annotations

import numpy as np

from ..metrics._checks import EPS as METRIC_EPS
from ..metrics.spectral import COMPRESSION
from ._backend import prepare
from ._ci_sdr import ci_sdr_loss
from ._pit import pit
from ._pmsqe import pmsqe_loss
from ._sa_sdr import sa_sdr_loss
from ._stft import multi_resolution_stft_loss
from ._stoi import estoi_loss, stoi_loss

EPS = float(METRIC_EPS)  # float64's eps, beside both energies of a dB ratio (the metrics')
SCALE_EPS = 1e-10  # added to ⟨m, m̂⟩ in the frame-wise OSI-SNR scale λ
ERROR_EPS = 1e-8  # added to the error energy ‖m̂ − t‖² in frame-wise OSI-SNR
LOSS_EPS = 1e-8  # ε of OSI-SNR loss methods 1 and 2
FUSED_EPS = 1e-10  # ε of the OSI-SNR term inside the fused loss
WSDR_EPS = EPS  # inside the root of wSDR's norms ‖a‖·‖b‖ = sqrt(‖a‖²‖b‖² + ε)

__all__ = [
    "UncertaintyWeighting", "ci_sdr_loss", "estoi_loss", "fused_loss", "mc_mse",
    "multi_resolution_stft_loss", "nsr", "osi_snr_frames", "osi_snr_loss", "pit", "pmsqe_loss",
    "relative_entropy", "sa_sdr_loss", "si_sdr_loss", "si_snr_loss", "snr_loss", "stoi_loss",
    "wsdr_loss",
]


def _db(ops, numerator, denominator):
    """``10·log10((num + ε)/(den + ε))``, ε = :data:`EPS`: the metrics' dB ratio."""
    return 10.0 * ops.log10((numerator + EPS) / (denominator + EPS))


def _target_and_residual(ops, s, s_hat, zero_mean: bool):
    """Energies ``‖t‖²`` and ``‖ŝ − t‖²`` of SI-SDR's target ``t = α·s``,
    ``α = (⟨ŝ, s⟩ + ε)/(‖s‖² + ε)`` (Le Roux et al. 2019, Eq. 5; ε as torchmetrics)."""
    if zero_mean:
        s = s - ops.mean(s, keepdims=True)
        s_hat = s_hat - ops.mean(s_hat, keepdims=True)
    alpha = (ops.inner(s_hat, s) + EPS) / (ops.inner(s, s) + EPS)
    target = alpha[..., None] * s
    residual = target - s_hat
    return ops.inner(target, target), ops.inner(residual, residual)


def snr_loss(*, reference, estimate, reduction: str = "mean"):
    """−SNR in dB: ``−10·log10((‖s‖² + ε)/(‖ŝ − s‖² + ε))``, ε = :data:`EPS`.

    Not scale-invariant (the estimate's gain counts). Equal to −``sqeval.metrics.snr``.
    A silent estimate gives 0; identical signals give ``−10·log10((‖s‖² + ε)/ε)`` (ε's
    limit: about −157 dB for ‖s‖² = 1, 10 dB lower per tenfold energy).

    Example:
        >>> import numpy as np
        >>> s = np.array([1.0, -1.0, 1.0, -1.0])
        >>> round(snr_loss(reference=s, estimate=1.1 * s), 6)
        -20.0
    """
    ops, (s, s_hat) = prepare({"reference": reference, "estimate": estimate}, reduction=reduction)
    error = s_hat - s
    return ops.reduce(-_db(ops, ops.inner(s, s), ops.inner(error, error)), reduction)


def si_sdr_loss(*, reference, estimate, reduction: str = "mean"):
    """−SI-SDR in dB (no mean removal), Le Roux et al. 2019, Eq. 5.

    ``α = (⟨ŝ, s⟩ + ε)/(‖s‖² + ε)``, ``t = α·s``, loss ``−10·log10((‖t‖² + ε)/(‖ŝ − t‖² +
    ε))``, ε = :data:`EPS` (torchmetrics' placement). Equal to −``sqeval.metrics.si_sdr``.
    Unbounded below; a silent estimate gives 0 dB, not NaN; a silent reference gives
    ``10·log10((‖ŝ‖² + ε)/ε)`` (α = 1, t = 0: large and finite, about 157 dB for
    ``‖ŝ‖² = 1``).

    Example:
        >>> import numpy as np
        >>> s = np.array([1.0, 0.0, -1.0, 0.0])
        >>> n = np.array([0.0, 0.1, 0.0, -0.1])  # orthogonal to s
        >>> round(si_sdr_loss(reference=s, estimate=3 * (s + n)), 6)
        -20.0
    """
    ops, (s, s_hat) = prepare({"reference": reference, "estimate": estimate}, reduction=reduction)
    return ops.reduce(-_db(ops, *_target_and_residual(ops, s, s_hat, False)), reduction)


def si_snr_loss(*, reference, estimate, reduction: str = "mean"):
    """−SI-SNR in dB: −SI-SDR of the zero-mean signals (Luo & Mesgarani 2019); the usual
    SI-SNR training loss, unbounded below. Equal to −``sqeval.metrics.si_snr``.

    ε = :data:`EPS` as in :func:`si_sdr_loss`; a silent or constant estimate gives 0 dB.

    Example:
        >>> import numpy as np
        >>> s = np.array([1.0, 0.0, -1.0, 0.0])
        >>> round(si_snr_loss(reference=s, estimate=s + np.array([0, .1, 0, -.1])), 6)
        -20.0
    """
    ops, (s, s_hat) = prepare({"reference": reference, "estimate": estimate}, reduction=reduction)
    return ops.reduce(-_db(ops, *_target_and_residual(ops, s, s_hat, True)), reduction)


def nsr(*, reference, estimate, reduction: str = "mean"):
    """Noise-to-signal ratio without the log: ``(‖ŝ − t‖² + ε)/(‖t‖² + ε)`` = 10^(−SI-SNR/10).

    Both signals zero-mean, ``t = α·s`` as in :func:`si_snr_loss`, ε = :data:`EPS`.
    Range [0, ∞); 0 at identity; 1 for a silent estimate.

    Example:
        >>> import numpy as np
        >>> s = np.array([1.0, 0.0, -1.0, 0.0])
        >>> round(nsr(reference=s, estimate=s + np.array([0, .1, 0, -.1])), 6)
        0.01
    """
    ops, (s, s_hat) = prepare({"reference": reference, "estimate": estimate}, reduction=reduction)
    target, residual = _target_and_residual(ops, s, s_hat, True)
    return ops.reduce((residual + EPS) / (target + EPS), reduction)


def _cosine(ops, a, b):
    """``⟨a, b⟩ / sqrt(‖a‖²·‖b‖² + ε)``, ε = :data:`WSDR_EPS` inside the root, so that the
    value (0) and the gradient stay finite when either signal is silent."""
    return ops.inner(a, b) / ops.sqrt(ops.inner(a, a) * ops.inner(b, b) + WSDR_EPS)


def wsdr_loss(*, reference, estimate, noisy, reduction: str = "mean"):
    """Weighted SDR loss of Choi et al. 2019 (DCUnet, "Phase-aware speech enhancement with
    deep complex U-Net", ICLR 2019, Eq. 4), with the noisy mixture ``x``.

    With the noise ``z = x − s`` and its estimate ``ẑ = x − ŝ``:
    ``α = ‖s‖²/(‖s‖² + ‖z‖² + ε)``, loss ``= −α·cos(s, ŝ) − (1 − α)·cos(z, ẑ)``, where
    ``cos(a, b) = ⟨a, b⟩/sqrt(‖a‖²‖b‖² + ε)`` (ε = :data:`WSDR_EPS`). Range [−1, 1]; −1
    when the estimate is the reference. A silent estimate gives ``−(1 − α)·cos(z, x)``
    (``ẑ = x``), which is ``−(1 − α)`` only when the mixture is all noise.

    Example:
        >>> import numpy as np
        >>> s, z = np.array([1.0, 0.0, -1.0, 0.0]), np.array([0.0, 0.5, 0.0, -0.5])
        >>> round(wsdr_loss(reference=s, estimate=s, noisy=s + z), 6)
        -1.0
    """
    ops, (s, s_hat, x) = prepare({"reference": reference, "estimate": estimate, "noisy": noisy},
                                 reduction=reduction)
    z, z_hat = x - s, x - s_hat
    energy = ops.inner(s, s)
    alpha = energy / (energy + ops.inner(z, z) + WSDR_EPS)
    loss = -alpha * _cosine(ops, s, s_hat) - (1 - alpha) * _cosine(ops, z, z_hat)
    return ops.reduce(loss, reduction)


def _frames(reference, estimate, reduction):
    return prepare({"reference": reference, "estimate": estimate}, reduction=reduction,
                   min_ndim=2, layout="(..., bins, frames)")


def _osi_frames(ops, m, m_hat):
    """Per column: ``λ = ‖m̂‖²/(⟨m, m̂⟩ + 1e-10)``, ``t = λ·m``,
    ``10·log10(‖t‖²/(‖m̂ − t‖² + 1e-8))``; −inf where ``t = 0`` (a silent column), with a
    zero gradient there (the log is taken of 1 in the branch that is not used)."""
    scale = ops.sum(m_hat**2, axis=-2) / (ops.sum(m * m_hat, axis=-2) + SCALE_EPS)
    target = scale[..., None, :] * m
    energy = ops.sum(target**2, axis=-2)
    error = ops.sum((m_hat - target) ** 2, axis=-2)
    audible = energy > 0
    value = 10 * ops.log10(ops.where(audible, energy, ops.const(1.0)) / (error + ERROR_EPS))
    return ops.where(audible, value, ops.const(-np.inf))


def osi_snr_frames(*, reference, estimate):
    """Frame-wise OSI-SNR in dB, one value per column of ``(..., bins, frames)`` matrices.

    Per column: ``λ = ‖m̂‖²/(⟨m, m̂⟩ + 1e-10)``, ``t = λ·m``,
    ``10·log10(‖t‖² / (‖m̂ − t‖² + 1e-8))``.

    Returns:
        shape ``(..., frames)``; −inf for a frame where the estimate (or the reference) is
        silent (t = 0), so loss method 1 gives such a frame a loss of 0: the formula's own
        blind spot, which ``sqeval sanity --losses`` shows on its "silence" case. The
        gradient there is 0.

    Example:
        >>> import numpy as np
        >>> m = np.array([[0.5, 0.6, 0.7], [0.8, 0.9, 1.0], [1.1, 1.2, 1.3]])
        >>> np.round(osi_snr_frames(reference=m, estimate=m - 0.1), 8)
        array([28.07307793, 30.06463945, 31.86671312])
    """
    ops, (m, m_hat) = _frames(reference, estimate, None)
    return ops.output(_osi_frames(ops, m, m_hat))


def _osi_loss(ops, m, m_hat, method, eps):
    frames = _osi_frames(ops, m, m_hat)
    if method == 1:
        return ops.mean(1 / (frames + eps))
    return 1 / (ops.mean(frames) + eps)


def osi_snr_loss(*, reference, estimate, method: int = 1, eps: float = LOSS_EPS,
                 reduction: str = "mean"):
    """OSI-SNR loss on ``(..., bins, frames)`` matrices, from :func:`osi_snr_frames`.

    Method 1: ``mean over frames of 1/(osi + ε)``; method 2: ``1/(mean over frames of osi
    + ε)`` (ε = :data:`LOSS_EPS`). Both positive while every frame's OSI-SNR is, and
    smaller when it is larger; a frame near 0 dB makes them large (the formula's pole).

    Example:
        >>> import numpy as np
        >>> m = np.array([[0.5, 0.6, 0.7], [0.8, 0.9, 1.0], [1.1, 1.2, 1.3]])
        >>> round(osi_snr_loss(reference=m, estimate=m - 0.1, method=2), 12)
        0.033331692478
    """
    if method not in (1, 2):
        raise ValueError(f"method must be 1 or 2; got {method!r}")
    ops, (m, m_hat) = _frames(reference, estimate, reduction)
    return ops.reduce(_osi_loss(ops, m, m_hat, method, eps), reduction)


def _compressed(ops, x, power):
    """``|x|^p``, 0 at 0 with a zero gradient there (``p·|x|^(p−1)`` is infinite at 0)."""
    magnitude = ops.abs(x)
    nonzero = magnitude > 0
    return ops.where(nonzero, ops.where(nonzero, magnitude, ops.const(1.0)) ** power,
                     ops.const(0.0))


def _mc_mse(ops, m, m_hat, power):
    difference = _compressed(ops, m, power) - _compressed(ops, m_hat, power)
    return ops.mean(ops.mean(difference**2, axis=-1), axis=-1)


def mc_mse(*, reference, estimate, power: float = COMPRESSION, reduction: str = "mean"):
    """Power-law compressed MSE of matrices: ``mean((|M|^p − |M̂|^p)²)`` over the last two
    axes (``p`` = 0.3). The gradient of ``|x|^p`` at an exact 0 is taken as 0.

    Example:
        >>> import numpy as np
        >>> m = np.array([[0.5, 0.6, 0.7], [0.8, 0.9, 1.0], [1.1, 1.2, 1.3]])
        >>> round(mc_mse(reference=m, estimate=m - 0.1), 12)
        0.001354390127
    """
    ops, (m, m_hat) = _frames(reference, estimate, reduction)
    return ops.reduce(_mc_mse(ops, m, m_hat, power), reduction)


def fused_loss(*, reference, estimate, gamma: float = 15.0, power: float = COMPRESSION,
               eps: float = FUSED_EPS, reduction: str = "mean"):
    """OSI-SNR loss (method 1, ε = :data:`FUSED_EPS`) + ``gamma``·MC-MSE, on
    ``(..., bins, frames)`` matrices.

    Example:
        >>> import numpy as np
        >>> m = np.array([[0.5, 0.6, 0.7], [0.8, 0.9, 1.0], [1.1, 1.2, 1.3]])
        >>> round(fused_loss(reference=m, estimate=m - 0.1), 12)
        0.053737081982
    """
    ops, (m, m_hat) = _frames(reference, estimate, reduction)
    value = _osi_loss(ops, m, m_hat, 1, eps) + gamma * _mc_mse(ops, m, m_hat, power)
    return ops.reduce(value, reduction)


def _log_sigmoid(ops, x):
    if ops.is_torch:
        return ops.torch.nn.functional.logsigmoid(x)
    from ..metrics.entropy import log_expit

    return log_expit(x)


def _log_ratio(ops, s, s_hat):
    """``ln(σ(ŝ)/σ(s))`` without cancellation (as ``sqeval.metrics.rel_entropy``): with
    ``d = s − ŝ``, ``−log1p(expm1(d)·σ(−s))`` where ``|d| < 1``, else ``ln σ(ŝ) − ln σ(s)``.
    Both branches are finite everywhere, so the unused one adds no NaN to the gradient."""
    d = s - s_hat
    near = ops.abs(d) < 1.0
    close = -ops.log1p(ops.expm1(ops.where(near, d, ops.const(0.0))) * ops.sigmoid(-s))
    return ops.where(near, close, _log_sigmoid(ops, s_hat) - _log_sigmoid(ops, s))


def relative_entropy(*, reference, estimate, over_time: str = "mean", reduction: str = "mean"):
    """Sigmoid relative entropy ``q·ln(q/r)``, ``q = σ(ŝ)``, ``r = σ(s)``, over time.

    ``over_time="mean"`` is the ``rel_entropy`` metric; ``"sum"`` is the form first
    written down, which grows with the signal's length. 0 at identity; it can be slightly
    negative (σ values are not distributions), so a lower value is not always a better
    estimate. (Before sqeval 0.7, ``reduction=`` chose the time reduction; it now reduces
    over the leading axes as in every loss.)

    Example:
        >>> import numpy as np
        >>> s = np.array([1.0, 1.0])
        >>> relative_entropy(reference=s, estimate=s / 2, over_time="sum") == 2 * (
        ...     relative_entropy(reference=s, estimate=s / 2))
        True
    """
    if over_time not in ("mean", "sum"):
        raise ValueError(f"over_time must be 'mean' or 'sum'; got {over_time!r}")
    ops, (s, s_hat) = prepare({"reference": reference, "estimate": estimate}, reduction=reduction)
    terms = ops.sigmoid(s_hat) * _log_ratio(ops, s, s_hat)
    value = ops.mean(terms) if over_time == "mean" else ops.sum(terms)
    return ops.reduce(value, reduction)


def __getattr__(name: str):
    """:class:`UncertaintyWeighting` is a ``torch.nn.Module``: defined on first use, so that
    the numpy path never imports torch."""
    if name == "UncertaintyWeighting":
        from ._weighting import uncertainty_weighting_class

        return uncertainty_weighting_class()
    raise AttributeError(f"module 'sqeval.losses' has no attribute {name!r}")
