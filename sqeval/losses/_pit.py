"""Permutation-invariant training (Yu et al., "Permutation invariant training of deep
models for speaker-independent multi-talker speech separation", ICASSP 2017)."""

from __future__ import annotations

from itertools import permutations

import numpy as np

from ._backend import check_reduction, is_tensor, prepare

EXHAUSTIVE_UP_TO = 4  # sources: every permutation (4! = 24) is tried; beyond, the Hungarian method


def _pairwise(ops, loss, reference, estimate):
    """``L[:, i, j] = loss(reference=reference[:, i], estimate=estimate[:, j])``: one call
    per reference source, against all estimates at once (copies of all pairs at once took
    twice the time and memory)."""
    n = reference.shape[1]
    return ops.stack([_row(ops, loss, reference[:, i:i + 1], estimate) for i in range(n)],
                     axis=-2)


def _row(ops, loss, reference, estimate):
    if ops.is_torch:
        reference = reference.expand(estimate.shape)
    else:
        reference = np.broadcast_to(reference, estimate.shape)
    value = loss(reference=reference, estimate=estimate, reduction="none")
    if tuple(value.shape) != tuple(estimate.shape[:2]):
        raise ValueError(f"pit needs a loss that gives one value per (batch, source) pair with "
                         f"reduction='none'; it gave shape {tuple(value.shape)} for inputs of "
                         f"shape {tuple(estimate.shape)}")
    return value


def _best(pairwise: np.ndarray) -> np.ndarray:
    """For each batch item, the permutation ``p`` (``p[i]``: the estimate assigned to
    reference ``i``) with the smallest mean pairwise loss."""
    batch, n, _ = pairwise.shape
    if n <= EXHAUSTIVE_UP_TO:
        candidates = np.array(list(permutations(range(n))))  # (P, n)
        totals = pairwise[:, np.arange(n), candidates].sum(axis=-1)  # (batch, P)
        return candidates[np.argmin(totals, axis=-1)]
    from scipy.optimize import linear_sum_assignment

    return np.stack([linear_sum_assignment(item)[1] for item in pairwise])


def pit(loss, *, reference, estimate, reduction: str = "mean"):
    """Permutation-invariant loss over sources, and the permutation that gives it.

    Args:
        loss: a pairwise loss of :mod:`sqeval.losses` (or any function with keyword-only
            ``reference=``, ``estimate=`` and ``reduction="none"`` giving one value per
            item), e.g. :func:`~sqeval.losses.si_snr_loss`; use ``functools.partial`` for
            its options.
        reference, estimate: shape ``(batch, sources, ...)`` with the loss's own trailing
            axes (``time``, or ``bins, frames``).
        reduction: over the batch, of each item's mean loss over sources.

    Returns:
        ``(loss, permutation)``: the loss of the best assignment (differentiable for
        tensors), and ``permutation`` of shape ``(batch, sources)`` (an integer array, or a
        long tensor on the inputs' device) where ``permutation[b, i]`` is the estimate
        assigned to reference ``i``; ``estimate[b, permutation[b]]`` reorders the
        estimates. Every permutation is tried for up to :data:`EXHAUSTIVE_UP_TO` sources,
        the Hungarian method (``scipy.optimize.linear_sum_assignment``) beyond, on the
        detached pairwise losses (the choice carries no gradient).

    Example:
        >>> import numpy as np
        >>> from sqeval.losses import si_snr_loss
        >>> s = np.array([[[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, -1.0]]])
        >>> value, permutation = pit(si_snr_loss, reference=s, estimate=s[:, ::-1])
        >>> permutation
        array([[1, 0]])
    """
    check_reduction(reduction)
    ops, (r, e) = prepare({"reference": reference, "estimate": estimate}, reduction=reduction,
                          min_ndim=3, layout="(batch, sources, ...)")
    pairwise = _pairwise(ops, loss, r, e)
    best = _best(ops.numpy(ops.output(pairwise)))  # output: NaN inputs are a ValueError
    chosen = ops.index(best)
    rows = ops.index(np.arange(best.shape[1]))
    if ops.is_torch:
        batch = ops.torch.arange(best.shape[0], device=ops.device)[:, None]
        values = pairwise[batch, rows[None, :], chosen]
    else:
        values = pairwise[np.arange(best.shape[0])[:, None], rows[None, :], chosen]
    per_item = ops.mean(values)
    return ops.reduce(per_item, reduction), chosen if is_tensor(reference) else best
