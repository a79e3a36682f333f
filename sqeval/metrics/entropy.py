"""Sigmoid relative entropy between waveforms.

Conventions
-----------
``q = σ(ŝ)``, ``r = σ(s)`` sample by sample (σ the logistic function), and the score is
the per-sample mean of ``q·ln(q/r)``. The mean (not the sum first written down) lets
files of different lengths compare. It is not a true divergence: σ values are not
distributions, so the score is 0 at identity but can be slightly negative. Lower is
better.

``ln q − ln r`` is computed as ``log σ(ŝ) − log σ(s)`` (``scipy.special.log_expit``),
which stays finite for samples of any size.
"""

from __future__ import annotations

import numpy as np

from ..dsp import block_sum
from ._checks import as_output, as_pair


def rel_entropy(*, reference, estimate):
    """Mean over samples of ``σ(ŝ)·ln(σ(ŝ)/σ(s))``; lower is better, 0 at identity.

    Args:
        reference: clean signal, shape ``(..., time)``.
        estimate: estimate, same shape; may be silent.

    Raises:
        MetricError: shapes differ, non-finite samples, or a silent reference.

    Example:
        >>> import numpy as np
        >>> s = np.array([0.5, -0.25, 0.125])
        >>> rel_entropy(reference=s, estimate=s)
        0.0
    """
    from scipy.special import expit, log_expit

    s, s_hat = as_pair(reference, estimate, estimate_may_be_silent=True)

    def terms(s, s_hat):
        return np.sum(expit(s_hat) * (log_expit(s_hat) - log_expit(s)), axis=-1)

    return as_output(block_sum(terms, s, s_hat) / s.shape[-1])
