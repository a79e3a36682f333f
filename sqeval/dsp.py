"""Signal plumbing shared by reading, scoring and the metrics: resampling, and work on
the time axis one block at a time so that long recordings need little memory.

A 20-minute file at 16 kHz is 154 MB of float64; a metric that made a few full-length
temporaries of it (residuals, spectra, frames) would need gigabytes. The metrics instead
sum over blocks of :data:`BLOCK` samples. Most files fit in one block, where the
arithmetic is exactly that of the unblocked formula; longer files differ from it only
in the order of floating-point additions.

This module is on the ground floor: it imports nothing from sqeval.
"""

from __future__ import annotations

from math import gcd
from typing import Callable, Iterator

import numpy as np

BLOCK = 1 << 18  # samples per block: 16.4 s at 16 kHz, 2 MB per float64 signal


def resample(x: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample along the last axis with ``scipy.signal.resample_poly``.

    ``up/down = target/source`` reduced by their gcd, the default Kaiser window, in
    float64: the rate policy of sqeval's metric contract.

    Example:
        >>> import numpy as np
        >>> resample(np.ones(480), 48000, 16000).shape
        (160,)
    """
    if source_rate == target_rate:
        return x
    from scipy.signal import resample_poly

    divisor = gcd(int(source_rate), int(target_rate))
    return resample_poly(
        np.asarray(x, dtype=np.float64), target_rate // divisor, source_rate // divisor, axis=-1
    )


def spans(n: int, size: int | None = None) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks covering ``range(n)``; read :data:`BLOCK`
    at call time (tests shrink it to exercise many blocks)."""
    size = max(int(size or BLOCK), 1)
    for start in range(0, n, size):
        yield start, min(start + size, n)


def frame_spans(n_frames: int, hop: int) -> Iterator[tuple[int, int]]:
    """Ranges of frames (hop ``hop``) of about :data:`BLOCK` samples' worth each."""
    return spans(n_frames, max(BLOCK // hop, 1))


def block_sum(terms: Callable[..., np.ndarray], *arrays: np.ndarray):
    """``Σ`` over blocks of ``terms(*blocks)``, where ``terms`` maps same-length blocks of
    the last axis of ``arrays`` to per-item sums (shape ``arrays[0].shape[:-1]``)."""
    total = 0.0
    for start, stop in spans(arrays[0].shape[-1]):
        total = total + terms(*(a[..., start:stop] for a in arrays))
    return total


def padded(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``x[..., start:stop]`` with zeros where the range lies outside ``x``."""
    lo, hi = max(start, 0), min(stop, x.shape[-1])
    if lo == start and hi == stop:
        return x[..., start:stop]
    out = np.zeros(x.shape[:-1] + (stop - start,))
    if hi > lo:
        out[..., lo - start:hi - start] = x[..., lo:hi]
    return out


def lagged_correlations(y: np.ndarray, xs: list[np.ndarray], before: int, after: int):
    """``c[d] = Σ_n x[n]·y[n − d]`` for ``d = −before … after``, for each ``x`` in ``xs``.

    ``y`` is zero outside its samples; every ``x`` has ``y``'s shape. Computed block by
    block with FFTs of about ``BLOCK + before + after`` points, so the memory does not grow
    with the length. Returns one array of shape ``(..., before + after + 1)`` per ``x``,
    index ``d + before``.
    """
    from scipy import fft

    width = before + after + 1
    totals = [0.0] * len(xs)
    for start, stop in spans(y.shape[-1]):
        context = padded(y, start - after, stop + before)  # y[n − d] for n in the block
        size = fft.next_fast_len(context.shape[-1], real=True)
        spectrum_y = fft.rfft(context, size)
        for k, x in enumerate(xs):
            # Σ_i x[start + i]·context[i + t], t = after − d: no wrap-around, size ≥ len(context)
            lagged = fft.irfft(np.conj(fft.rfft(x[..., start:stop], size)) * spectrum_y, size)
            totals[k] = totals[k] + lagged[..., :width][..., ::-1]
    return totals
