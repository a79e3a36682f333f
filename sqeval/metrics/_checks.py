"""Input checks shared by every metric: one place, one style of message.

Each message says what was expected, what arrived, and how to fix it.
"""

from __future__ import annotations

import numpy as np

EPS = np.finfo(np.float64).eps  # torchmetrics' ε for dB ratios: identity gives a large finite value


class MetricError(ValueError):
    """A metric cannot be computed for this input; the message says why.

    The scorer turns it into an empty cell with the message as the reason.
    """


class NotApplicableError(MetricError):
    """The metric does not apply to this input (for example ``pesq_wb`` at 8 kHz).

    Not counted as a failure unless the metric was asked for by name.
    """


def as_signal(x, *, name: str) -> np.ndarray:
    """Return ``x`` as a float64 array of shape ``(..., time)`` with finite samples."""
    array = np.asarray(x, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] == 0:
        raise MetricError(
            f"{name} must have shape (..., time) with at least one sample; got shape {array.shape}."
        )
    bad = ~np.isfinite(array)
    if bad.any():
        n_nan = int(np.isnan(array).sum())
        raise MetricError(
            f"{name} contains {n_nan} NaN and {int(bad.sum()) - n_nan} Inf samples; "
            "expected finite samples. Fix or drop the file."
        )
    return array


# Σx² above this is too close to float64's largest number (1.8e308): a spectrum's power
# (up to N·Σx² in a bin), the sums and products of energies overflow to inf, and the
# metrics then said "too short", "frames digitally silent" or "unexpected ValueError"
# (at 1e160 amplitude). 1e290 leaves a factor of 1e18 for them; a float file in [−1, 1]
# has Σx² below its number of samples.
MAX_ENERGY = 1e290


def require_headroom(x: np.ndarray, *, name: str, metric: str) -> None:
    """Raise :class:`MetricError` when the energy ``Σx²`` of any item of ``x`` is above
    :data:`MAX_ENERGY` (computed without overflowing: the samples are divided by their
    peak first, only when the peak could be that loud)."""
    peak = np.maximum(np.max(x, axis=-1), -np.min(x, axis=-1))  # |x|'s max without a copy
    with np.errstate(over="ignore"):  # inf is the answer: too loud to skip the check
        if np.all(peak * peak * x.shape[-1] <= MAX_ENERGY):  # Σx² ≤ N·peak²: ordinary input
            return
    with np.errstate(divide="ignore"):
        scale = np.where(peak > 0, peak, 1.0)[..., None]
        log_energy = 2 * np.log10(peak) + np.log10(np.sum((x / scale) ** 2, axis=-1))
    if np.any(log_energy > np.log10(MAX_ENERGY)):
        raise MetricError(
            f"{name} is too loud for {metric}: its energy Σx² ≈ "
            f"1e{float(np.max(log_energy)):.0f} is above {MAX_ENERGY:.0e}, so close to "
            "float64's largest number (1.8e308) that its energies and spectra overflow to "
            "inf. Check the file's scaling (float audio is expected in [−1, 1]: was a gain "
            "applied twice, or a dB value used as a factor?).")


def as_pair(reference, estimate, *, estimate_may_be_silent: bool = False, same_length: bool = True,
            headroom_for: str | None = None):
    """Validate a (reference, estimate) pair and return both as float64 arrays.

    Args:
        reference: clean signal, shape ``(..., time)``.
        estimate: processed signal; same shape as ``reference`` when ``same_length``.
        estimate_may_be_silent: whether an all-zero estimate still has a defined value.
        same_length: whether the metric compares samples one to one.
        headroom_for: the metric's name, for a metric whose energies would overflow:
            then both signals must have an energy below :data:`MAX_ENERGY`.

    Raises:
        MetricError: shapes differ, samples are not finite, the reference is silent,
            the estimate is silent where the metric is undefined for it, or (with
            ``headroom_for``) a signal is too loud.
    """
    reference = as_signal(reference, name="reference")
    estimate = as_signal(estimate, name="estimate")
    if same_length and reference.shape != estimate.shape:
        raise MetricError(
            f"reference and estimate must have the same shape (..., time); got {reference.shape} "
            f"and {estimate.shape}. Trim both to their common length first."
        )
    if not np.any(reference, axis=-1).all():
        raise MetricError(
            "reference is silent (all samples zero); no comparison with it is defined. "
            "Check the clean file."
        )
    if not estimate_may_be_silent and not np.any(estimate, axis=-1).all():
        raise MetricError(
            "estimate is silent (all samples zero); this metric is undefined for a silent estimate."
        )
    if headroom_for is not None:
        require_headroom(reference, name="reference", metric=headroom_for)
        require_headroom(estimate, name="estimate", metric=headroom_for)
    return reference, estimate


# dB ratios add ε to both energies. Below this energy, ε moves a value V by more than
# 4.3e-8·(1 + 10^(V/10)) dB (4e-4 dB at 40 dB) and drags it toward 0 dB: the signal is
# too quiet for the ratio to resolve. 2.2e-8 is, over 1 s at 16 kHz, an RMS of 1.2e-6
# (−118 dBFS), below the last bit of 16-bit audio.
MIN_ENERGY = 1e8 * EPS


def require_energy(energy, *, name: str, metric: str) -> None:
    """Raise :class:`MetricError` when ``energy`` (``Σx²`` of ``name``) is below
    :data:`MIN_ENERGY`, where the ε of a dB ratio would decide ``metric``'s value."""
    energy = np.asarray(energy)
    if np.any(energy < MIN_ENERGY):
        raise MetricError(
            f"{name} is too quiet for {metric}: its energy Σx² = {float(np.min(energy)):.3g} is "
            f"below {MIN_ENERGY:.3g}, where the dB ratio's ε (float64 eps) would move the "
            "value toward 0 dB. Check the file's level (a gain applied twice, or a float file "
            "scaled by a tiny factor?).")


def to_db(numerator, denominator):
    """``10·log10((num + ε)/(den + ε))`` with ε = float64 eps (torchmetrics' convention)."""
    return 10.0 * np.log10((numerator + EPS) / (denominator + EPS))


def as_output(value):
    """A 0-d result as a Python float, anything else as an ndarray."""
    value = np.asarray(value, dtype=np.float64)
    return float(value) if value.ndim == 0 else value
