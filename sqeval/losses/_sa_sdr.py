"""SA-SDR: the source-aggregated SDR as a training loss.

T. von Neumann, K. Kinoshita, C. Boeddeker, M. Delcroix, R. Haeb-Umbach, "SA-SDR: A
novel loss function for separation of meeting style data", ICASSP 2022 (Eq. 4).

For ``K`` sources ``s_k`` and estimates ``ŝ_k`` (the axis before time), the energies are
summed over the sources before the ratio is taken, so one silent source (a speaker who
does not talk in a segment) neither dominates nor breaks the loss::

    SA-SDR = 10·log10((Σ_k ‖α·s_k‖² + ε) / (Σ_k ‖α·s_k − ŝ_k‖² + ε))

``α = 1`` (the paper's form, ``scale_invariant=False``) or, with ``scale_invariant=True``,
one common scale ``α = (Σ_k ⟨ŝ_k, s_k⟩ + ε)/(Σ_k ‖s_k‖² + ε)`` for all sources.
``zero_mean=True`` first removes each signal's mean over time. ``ε = finfo(dtype).eps``:
the placement and value of torchmetrics' ``source_aggregated_signal_distortion_ratio``
(1.9.0), whose value this is (negated), for every option; its floors already keep silent
and identical inputs finite, so no case differs.
"""

from __future__ import annotations

import numpy as np

from ._backend import prepare

# ε beside the energies (and in α): the machine epsilon of the computation's dtype, as in
# torchmetrics and sqeval's SNR metrics (float16 and bfloat16 are computed in float32).
EPS_FLOAT64 = float(np.finfo(np.float64).eps)  # numpy, and float64 tensors
EPS_FLOAT32 = float(np.finfo(np.float32).eps)  # float32 (and smaller) tensors


def energy_eps(ops) -> float:
    """``EPS_FLOAT64`` or ``EPS_FLOAT32``, as the computation's dtype is."""
    if ops.is_torch and ops.dtype != ops.torch.float64:
        return EPS_FLOAT32
    return EPS_FLOAT64


def sa_sdr_loss(*, reference, estimate, scale_invariant: bool = False,
                zero_mean: bool = False, reduction: str = "mean"):
    """−SA-SDR in dB (von Neumann et al., ICASSP 2022); unbounded below.

    See the module for the formula. ``reference`` and ``estimate``: one shape
    ``(..., sources, time)``, numpy arrays or torch tensors (then differentiable); the
    sources are not permuted (the order of the estimate is taken as given). ``reduction``:
    ``"mean"`` or ``"sum"`` over the leading axes ``(...)``, or ``"none"``.

    Equal to ``−torchmetrics.functional.audio.source_aggregated_signal_distortion_ratio(
    estimate, reference, scale_invariant=..., zero_mean=...)``; note that torchmetrics'
    default is ``scale_invariant=True`` and this loss's is the paper's ``False``.

    Example:
        >>> import numpy as np
        >>> s = np.array([[1.0, -1.0, 1.0, -1.0], [0.0, 0.0, 0.0, 0.0]])  # 2nd speaker silent
        >>> noise = np.array([[0.1, 0.0, 0.0, 0.0], [0.0, 0.1, 0.0, 0.0]])
        >>> round(sa_sdr_loss(reference=s, estimate=s + noise), 6)
        -23.0103
    """
    ops, (reference, estimate) = prepare({"reference": reference, "estimate": estimate},
                                         reduction=reduction, min_ndim=2,
                                         layout="(..., sources, time)")
    eps = energy_eps(ops)
    if zero_mean:
        reference = reference - ops.mean(reference, axis=-1, keepdims=True)
        estimate = estimate - ops.mean(estimate, axis=-1, keepdims=True)
    if scale_invariant:
        scale = (ops.sum(estimate * reference, axis=(-2, -1), keepdims=True) + eps) / (
            ops.sum(reference**2, axis=(-2, -1), keepdims=True) + eps)
        reference = scale * reference
    signal = ops.sum(reference**2, axis=(-2, -1))
    distortion = ops.sum((reference - estimate) ** 2, axis=(-2, -1))
    return ops.reduce(-10 * ops.log10((signal + eps) / (distortion + eps)), reduction)
