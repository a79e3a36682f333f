"""Loss forms of the metrics, as used to train enhancement models.

Conventions
-----------
Waveform losses take ``reference``/``estimate`` of shape ``(..., time)``. Frame-wise
losses take real matrices ``M`` (reference) and ``M̂`` (estimate) of shape
``(..., bins, frames)``, for example STFT magnitudes, and work column by column. All
arguments are keyword-only, so reference and estimate cannot be swapped by accident.
Lower is better for every loss here.

The constants (1e-10 in the frame-wise OSI-SNR scale, 1e-8 beside the error energy,
ε = 1e-8 in loss method 1 and 2, ε = 1e-10 in the fused loss) are those of the articles
these forms come from, and give the golden values of sqeval's metric contract.
"""

from __future__ import annotations

import numpy as np

from ..metrics._checks import as_output, as_pair, as_signal
from ..metrics.entropy import rel_entropy
from ..metrics.snr import si_snr
from ..metrics.spectral import COMPRESSION, compressed_mse

SCALE_EPS = 1e-10  # added to ⟨m, m̂⟩ in the frame-wise OSI-SNR scale λ
ERROR_EPS = 1e-8  # added to the error energy ‖m̂ − t‖² in frame-wise OSI-SNR
LOSS_EPS = 1e-8  # ε of OSI-SNR loss methods 1 and 2
FUSED_EPS = 1e-10  # ε of the OSI-SNR term inside the fused loss


def si_snr_loss(*, reference, estimate):
    """−SI-SNR in dB: the usual SI-SNR training loss; unbounded below.

    Example:
        >>> import numpy as np
        >>> s = np.array([1.0, 0.0, -1.0, 0.0])
        >>> round(si_snr_loss(reference=s, estimate=s + np.array([0, .1, 0, -.1])), 6)
        -20.0
    """
    return as_output(-np.asarray(si_snr(reference=reference, estimate=estimate)))


def nsr(*, reference, estimate):
    """Noise-to-signal ratio without the log: ``(‖ŝ − t‖² + ε)/(‖t‖² + ε)`` = 10^(−SI-SNR/10).

    Both signals zero-mean, ``t = α·s`` as in SI-SNR. Range [0, inf); 0 at identity.

    Example:
        >>> import numpy as np
        >>> s = np.array([1.0, 0.0, -1.0, 0.0])
        >>> round(nsr(reference=s, estimate=s + np.array([0, .1, 0, -.1])), 6)
        0.01
    """
    return as_output(10 ** (np.asarray(si_snr(reference=reference, estimate=estimate)) / -10))


def _matrices(reference, estimate):
    m = as_signal(reference, name="reference")
    m_hat = as_signal(estimate, name="estimate")
    if m.ndim < 2 or m.shape != m_hat.shape:
        raise ValueError(f"expected two matrices of one shape (..., bins, frames); got "
                         f"{m.shape} and {m_hat.shape}")
    return m, m_hat


def osi_snr_frames(*, reference, estimate):
    """Frame-wise OSI-SNR in dB, one value per column of ``(..., bins, frames)`` matrices.

    Per column: ``λ = ‖m̂‖²/(⟨m, m̂⟩ + 1e-10)``, ``t = λ·m``,
    ``10·log10(‖t‖² / (‖m̂ − t‖² + 1e-8))``.

    Returns:
        an array of shape ``(..., frames)``; −inf for a frame where the estimate is silent
        (λ = 0), so loss method 1 gives such a frame a loss of 0: the formula's own
        blind spot, which ``sqeval sanity --losses`` shows on its "silence" case.

    Example:
        >>> import numpy as np
        >>> m = np.array([[0.5, 0.6, 0.7], [0.8, 0.9, 1.0], [1.1, 1.2, 1.3]])
        >>> np.round(osi_snr_frames(reference=m, estimate=m - 0.1), 8)
        array([28.07307793, 30.06463945, 31.86671312])
    """
    m, m_hat = _matrices(reference, estimate)
    scale = np.sum(m_hat**2, axis=-2) / (np.sum(m * m_hat, axis=-2) + SCALE_EPS)
    target = scale[..., None, :] * m
    error = np.sum((m_hat - target) ** 2, axis=-2)
    with np.errstate(divide="ignore"):  # a silent estimate frame gives −inf, as written
        return 10 * np.log10(np.sum(target**2, axis=-2) / (error + ERROR_EPS))


def osi_snr_loss(*, reference, estimate, method: int = 1, eps: float = LOSS_EPS):
    """OSI-SNR loss on ``(..., bins, frames)`` matrices.

    Method 1: ``mean over frames of 1/(osi + ε)``; method 2: ``1/(mean over frames of osi
    + ε)``. Both positive while every frame's OSI-SNR is, and smaller when it is larger.

    Example:
        >>> import numpy as np
        >>> m = np.array([[0.5, 0.6, 0.7], [0.8, 0.9, 1.0], [1.1, 1.2, 1.3]])
        >>> round(osi_snr_loss(reference=m, estimate=m - 0.1, method=2), 12)
        0.033331692478
    """
    frames = osi_snr_frames(reference=reference, estimate=estimate)
    if method == 1:
        return as_output(np.mean(1 / (frames + eps), axis=-1))
    if method == 2:
        return as_output(1 / (np.mean(frames, axis=-1) + eps))
    raise ValueError(f"method must be 1 or 2; got {method!r}")


def mc_mse(*, reference, estimate, power: float = COMPRESSION):
    """Power-law compressed MSE of matrices: ``mean((|M|^p − |M̂|^p)²)`` over the last two axes.

    Example:
        >>> import numpy as np
        >>> m = np.array([[0.5, 0.6, 0.7], [0.8, 0.9, 1.0], [1.1, 1.2, 1.3]])
        >>> round(mc_mse(reference=m, estimate=m - 0.1), 12)
        0.001354390127
    """
    m, m_hat = _matrices(reference, estimate)
    return as_output(compressed_mse(m, m_hat, power))


def fused_loss(*, reference, estimate, gamma: float = 15.0, power: float = COMPRESSION,
               eps: float = FUSED_EPS):
    """OSI-SNR loss (method 1) + ``gamma``·MC-MSE, on ``(..., bins, frames)`` matrices.

    Example:
        >>> import numpy as np
        >>> m = np.array([[0.5, 0.6, 0.7], [0.8, 0.9, 1.0], [1.1, 1.2, 1.3]])
        >>> round(fused_loss(reference=m, estimate=m - 0.1), 12)
        0.053737081982
    """
    osi = osi_snr_loss(reference=reference, estimate=estimate, method=1, eps=eps)
    return as_output(np.asarray(osi) + gamma * np.asarray(
        mc_mse(reference=reference, estimate=estimate, power=power)))


def relative_entropy(*, reference, estimate, reduction: str = "mean"):
    """Sigmoid relative entropy ``q·ln(q/r)``, ``q = σ(ŝ)``, ``r = σ(s)``, reduced over time.

    ``reduction="mean"`` is the ``rel_entropy`` metric; ``"sum"`` is the form first written
    down, which grows with the signal's length.

    Example:
        >>> import numpy as np
        >>> s = np.array([1.0, 1.0])
        >>> relative_entropy(reference=s, estimate=s / 2, reduction="sum") == 2 * rel_entropy(
        ...     reference=s, estimate=s / 2)
        True
    """
    value = np.asarray(rel_entropy(reference=reference, estimate=estimate))
    if reduction == "mean":
        return as_output(value)
    if reduction == "sum":
        s, _ = as_pair(reference, estimate, estimate_may_be_silent=True)
        return as_output(value * s.shape[-1])
    raise ValueError(f"reduction must be 'mean' or 'sum'; got {reduction!r}")

from ._ci_sdr import ci_sdr_loss  # noqa: E402
from ._sa_sdr import sa_sdr_loss  # noqa: E402
from ._stft import multi_resolution_stft_loss  # noqa: E402
