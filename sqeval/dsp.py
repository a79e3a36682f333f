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

import math
from functools import lru_cache
from math import gcd
from typing import Callable, Iterator

import numpy as np

BLOCK = 1 << 18  # samples per block: 16.4 s at 16 kHz, 2 MB per float64 signal


def resample(x: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample along the last axis as ``scipy.signal.resample_poly`` does.

    ``up/down = target/source`` reduced by their gcd, the default Kaiser window
    (β = 5, ``20·max(up, down) + 1`` taps), in float64: the rate policy of sqeval's
    metric contract. Computed here in numpy (:func:`resample_with`) without importing
    ``scipy.signal`` (over a second of start-up, more than scoring a short pair); the
    tests check every sample against ``resample_poly`` for many rates and lengths,
    within a few units in the last place (the two run different compiled code).

    Example:
        >>> import numpy as np
        >>> resample(np.ones(480), 48000, 16000).shape
        (160,)
    """
    if source_rate == target_rate:
        return x
    divisor = gcd(int(source_rate), int(target_rate))
    up, down = int(target_rate) // divisor, int(source_rate) // divisor
    return resample_with(np.asarray(x, dtype=np.float64), _lowpass(up, down), up, down)


@lru_cache(maxsize=32)
def _lowpass(up: int, down: int) -> np.ndarray:
    """``scipy.signal.firwin(2·half + 1, 1/max(up, down), window=("kaiser", 5.0))`` with
    ``half = 10·max(up, down)``: the windowed-sinc low-pass of ``resample_poly`` (sinc,
    symmetric Kaiser window of β = 5, scaled to unit gain at 0 Hz)."""
    cutoff = 1.0 / max(up, down)
    taps = 2 * 10 * max(up, down) + 1
    m = np.arange(0, taps, dtype=np.float64) - 0.5 * (taps - 1)
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(taps, 5.0)
    h /= np.sum(h)  # unit gain at 0 Hz
    h.flags.writeable = False  # cached: designed once per ratio
    return h


def resample_with(x: np.ndarray, window: np.ndarray, up: int, down: int) -> np.ndarray:
    """``scipy.signal.resample_poly(x, up, down, window=window)`` along the last axis of a
    float64 ``x``, for coprime ``up`` and ``down``.

    The filter ``window·up`` is centred on the output samples, as ``resample_poly`` pads
    it. Each output sample is the sum of its taps' products accumulated oldest input
    sample first, as scipy's ``upfirdn`` loop does; the outputs of one polyphase branch
    read the input at a stride of ``down``, one multiply-add per tap.
    """
    n_in = x.shape[-1]
    n_out = -(-n_in * up // down)
    if x.size == 0:  # no rows, or rows of no samples: as resample_poly, an empty result
        return np.zeros(x.shape[:-1] + (n_out,))
    if x.ndim != 1:
        return np.stack([resample_with(row, window, up, down)
                         for row in x.reshape(-1, n_in)]).reshape(*x.shape[:-1], n_out)
    half = (window.shape[0] - 1) // 2
    pre = down - half % down  # zeros before the filter, so outputs fall on its centre
    skip = (half + pre) // down  # outputs of the full convolution before the first kept
    h = np.concatenate([np.zeros(pre), window * up])
    post = 0  # zeros after the filter, so the full convolution reaches the last output
    while _upfirdn_length(h.shape[0] + post, n_in, up, down) < n_out + skip:
        post += 1
    h = np.concatenate([h, np.zeros(post)])
    per_phase = -(-h.shape[0] // up)
    # phase p's taps, newest input sample last
    taps = np.concatenate([h, np.zeros(per_phase * up - h.shape[0])])
    taps = np.ascontiguousarray(taps.reshape(-1, up).T[:, ::-1])
    # output i reads x[i·down//up − per_phase + 1 + j] · taps[(i·down) % up, j], j ascending
    padded_x = np.concatenate([np.zeros(per_phase - 1), x, np.zeros(per_phase)])
    out = np.empty(n_out)
    if up > MANY_PHASES:  # few outputs per branch: one pass per tap over all outputs
        for lo, hi in spans(n_out, 1 << 16):
            i = np.arange(skip + lo, skip + hi)
            starts, phases = i * down // up, i * down % up
            total = np.zeros(hi - lo)
            for j in range(per_phase):
                total += padded_x[starts + j] * taps[phases, j]
            out[lo:hi] = total
        return out
    # x at stride ``down``, one contiguous copy per offset: every tap below reads one
    rows = [padded_x[offset::down] for offset in range(down)]
    product = np.empty(-(-n_out // up))
    for first in range(skip, min(skip + up, skip + n_out)):
        count = len(range(first, skip + n_out, up))
        phase, start = first * down % up, first * down // up  # start is in padded_x
        total = np.zeros(count)
        for j in range(per_phase):
            row, offset = rows[(start + j) % down], (start + j) // down
            np.multiply(row[offset:offset + count], taps[phase, j], out=product[:count])
            total += product[:count]
        out[first - skip::up] = total
    return out


def solve_toeplitz(r: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``T x = b`` for the real symmetric Toeplitz matrix ``T[k, l] = r[|k − l|]``
    and one right-hand side, by Levinson's recursion in O(L²) (Golub and Van Loan,
    *Matrix Computations*, Algorithm 4.7.3, on ``T / r[0]``): what
    ``scipy.linalg.solve_toeplitz(r, b)`` computes, without its import (0.3 s and more,
    several times the rest of SDR on a short pair). The tests compare the two within a
    relative bound.

    Raises:
        ValueError: ``r`` and ``b`` are not 1-D of one length, or hold NaN or Inf.
        numpy.linalg.LinAlgError: a singular leading minor (Levinson needs every leading
            minor nonsingular, as scipy's does); the caller then solves by least squares.
    """
    r, b = np.asarray(r, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if r.ndim != 1 or b.shape != r.shape:
        raise ValueError(f"expected r and b of one length, 1-D; got shapes {r.shape} and "
                         f"{b.shape}")
    if not (np.isfinite(r).all() and np.isfinite(b).all()):
        raise ValueError("array must not contain infs or NaNs")
    if r.size == 0:
        return np.zeros(0)
    if r[0] == 0:
        raise np.linalg.LinAlgError("singular principal minor")
    rho, rhs = r[1:] / r[0], b / r[0]  # T / r[0] has a unit diagonal
    n = rhs.shape[0]
    x, y = np.empty(n), np.empty(max(n - 1, 1))
    x[0] = rhs[0]
    if n > 1:
        y[0] = alpha = -rho[0]
    beta = 1.0
    for k in range(1, n):
        beta *= 1.0 - alpha * alpha
        if beta == 0.0 or not math.isfinite(beta):
            raise np.linalg.LinAlgError("singular principal minor")
        mu = (rhs[k] - np.dot(rho[:k], x[k - 1::-1])) / beta
        x[:k] += mu * y[k - 1::-1]
        x[k] = mu
        if k < n - 1:
            alpha = (-rho[k] - np.dot(rho[:k], y[k - 1::-1])) / beta
            y[:k] += alpha * y[k - 1::-1]
            y[k] = alpha
    return x


def next_fast_len(n: int) -> int:
    """The smallest 2·3·5-smooth number ≥ ``n``: what ``scipy.fft.next_fast_len(n,
    real=True)`` returns, for numpy's FFT (an integer search, without importing
    scipy.fft)."""
    if n <= 6:
        return max(n, 1)
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            quotient = -(-n // p35)  # the smallest power of 2 times p35 that reaches n
            candidate = p35 * (1 << (quotient - 1).bit_length())
            best = min(best, candidate)
            p35 *= 3
        p5 *= 5
    return best


MANY_PHASES = 8  # above this many polyphase branches, gather instead of slicing (speed)


def _upfirdn_length(n_taps: int, n_in: int, up: int, down: int) -> int:
    """The length of ``scipy.signal.upfirdn``'s output."""
    n = (n_in + -(-n_taps // up) - 1) * up
    return -(-n // down)



def hann(n: int) -> np.ndarray:
    """The periodic Hann window of ``n`` points, ``scipy.signal.get_window("hann", n)``
    (scipy's general cosine formula; the tests compare the two)."""
    if n <= 1:
        return np.ones(n)
    fac = np.linspace(-np.pi, np.pi, n + 1, dtype=np.float64)
    w = np.zeros(n + 1)
    for k, a in enumerate(np.asarray([0.5, 0.5])):
        w += a * np.cos(k * fac)
    return w[:-1]


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
    fft = np.fft
    width = before + after + 1
    totals = [0.0] * len(xs)
    for start, stop in spans(y.shape[-1]):
        context = padded(y, start - after, stop + before)  # y[n − d] for n in the block
        size = next_fast_len(context.shape[-1])
        spectrum_y = fft.rfft(context, size)
        for k, x in enumerate(xs):
            # Σ_i x[start + i]·context[i + t], t = after − d: no wrap-around, size ≥ len(context)
            lagged = fft.irfft(np.conj(fft.rfft(x[..., start:stop], size)) * spectrum_y, size)
            totals[k] = totals[k] + lagged[..., :width][..., ::-1]
    return totals
