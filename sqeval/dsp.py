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
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

BLOCK = 1 << 18  # samples per block: 16.4 s at 16 kHz, 2 MB per float64 signal


def resample(x: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample along the last axis as ``scipy.signal.resample_poly`` does, bit for bit.

    ``up/down = target/source`` reduced by their gcd, the default Kaiser window
    (β = 5, ``20·max(up, down) + 1`` taps), in float64: the rate policy of sqeval's
    metric contract. Computed here without importing ``scipy.signal`` (1.1 s of start-up
    on the development machine, more than scoring a short pair); the tests check every
    sample against ``resample_poly`` for many rates and lengths.

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
    ``half = 10·max(up, down)``: the windowed-sinc low-pass of ``resample_poly``, in the
    same floating-point operations (sinc, Kaiser window, scaled to unit sum)."""
    cutoff = 1.0 / max(up, down)
    taps = 2 * 10 * max(up, down) + 1
    m = np.arange(0, taps, dtype=np.float64) - 0.5 * (taps - 1)
    h = 0 + cutoff * np.sinc(cutoff * m)
    alpha = (taps - 1) / 2.0  # symmetric Kaiser window, β = 5
    n = np.arange(0, taps, dtype=np.float64)
    window = [_i0(x) for x in (5.0 * np.sqrt(1 - ((n - alpha) / alpha) ** 2.0)).tolist()]
    h *= np.asarray(window) / _i0(5.0)
    h /= np.sum(h * np.cos(np.pi * m * 0.0))  # unit gain at 0 Hz
    h.flags.writeable = False  # cached: designed once per ratio (0.25 ms, 25 ms for 44.1 kHz)
    return h


def _i0(x: float) -> float:
    """The modified Bessel function I₀ as Cephes computes it (scipy.special.i0): its
    Chebyshev series (the coefficients numpy keeps for ``np.i0``), in Python floats with
    the C library's ``exp`` (``math.exp``), so the same bits as scipy's C on every CPU;
    ``np.i0`` would call numpy's ``exp``, which may use SIMD code on AVX-512 machines."""
    from numpy.lib import _function_base_impl as cephes

    x = abs(x)
    if x <= 8.0:
        series, at = cephes._i0A, x / 2.0 - 2
    else:
        series, at = cephes._i0B, 32.0 / x - 2.0
    b0, b1, b2 = float(series[0]), 0.0, 0.0
    for coefficient in series[1:]:
        b2, b1 = b1, b0
        b0 = at * b1 - b2 + float(coefficient)
    value = math.exp(x) * (0.5 * (b0 - b2))
    return value if x <= 8.0 else value / math.sqrt(x)


def resample_with(x: np.ndarray, window: np.ndarray, up: int, down: int) -> np.ndarray:
    """``scipy.signal.resample_poly(x, up, down, window=window)`` along the last axis of a
    float64 ``x``, for coprime ``up`` and ``down``, bit for bit.

    The filter ``window·up`` is centred on the output samples, as ``resample_poly`` pads
    it. The filtering itself is scipy's compiled ``upfirdn`` loop, loaded on its own
    (:func:`_compiled_upfirdn`), or where that cannot be loaded, the same loop here: each
    output sample the sum of its taps' products accumulated in the same order (oldest
    input sample first, from 0.0), so the rounding is the same; the outputs of one
    polyphase branch read the input at a stride of ``down``, one multiply-add per tap.
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
    post = 0
    while _upfirdn_length(h.shape[0] + post, n_in, up, down) < n_out + skip:
        post += 1
    h = np.concatenate([h, np.zeros(post)])
    per_phase = -(-h.shape[0] // up)
    # phase p's taps, newest input sample last (scipy's "transposed, flipped" layout)
    taps = np.concatenate([h, np.zeros(per_phase * up - h.shape[0])])
    taps = np.ascontiguousarray(taps.reshape(-1, up).T[:, ::-1])
    compiled = _compiled_upfirdn()
    if compiled is not None:
        apply, constant = compiled
        full = np.zeros(_upfirdn_length(h.shape[0], n_in, up, down))
        apply(np.ascontiguousarray(x), taps.ravel(), full, up, down, 0, constant, 0.0)
        return full[skip:skip + n_out]
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


_UPFIRDN: list = []  # the compiled loop and its 'constant' mode, or None: looked up once


def _compiled_upfirdn():
    """scipy's compiled ``upfirdn`` loop (``scipy/signal/_upfirdn_apply``), loaded from its
    file without ``scipy.signal``'s ``__init__``, which imports all of scipy.signal and
    scipy.stats (1.1 s, more than scoring a short pair). ``None`` when that private module
    is not where this scipy keeps it or does not load: :func:`resample_with` then runs
    the same loop in numpy (same bits, about twice as slow). The tests check both paths
    against ``resample_poly``, and that this one is found."""
    if not _UPFIRDN:
        _UPFIRDN.append(_load_upfirdn())
    return _UPFIRDN[0]


def _load_upfirdn():
    module = compiled_module("signal", "_upfirdn_apply")
    try:
        return module._apply, module.mode_enum("constant")
    except Exception:  # noqa: BLE001 - not the module this code knows: the numpy loop
        return None


def compiled_module(package: str, name: str):
    """scipy's compiled extension ``scipy.<package>.<name>``, loaded from its file without
    running ``scipy.<package>/__init__.py``; the module already imported if it is; None
    when there is no such file or it does not load.

    The default metrics need two loops that scipy implements in C (``upfirdn`` for
    resampling, ``levinson`` for SDR's Toeplitz system): importing them the public way
    costs 0.3–1.1 s per process, several times the time of scoring a short pair. Each
    caller has a fallback, and the tests check that the results are scipy's, bit for bit.
    """
    import importlib.machinery
    import importlib.util
    import sys

    qualified = f"scipy.{package}.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    try:
        import scipy

        path = next((Path(scipy.__file__).parent / package).glob(f"{name}.*"), None)
        if path is None or not path.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            return None
        loader = importlib.machinery.ExtensionFileLoader(qualified, str(path))
        spec = importlib.util.spec_from_file_location(qualified, str(path), loader=loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    except Exception:  # noqa: BLE001 - any failure: the caller's fallback
        return None
    sys.modules[qualified] = module  # scipy.<package>, imported later, reuses it
    parent = sys.modules.get(f"scipy.{package}")
    if parent is not None:  # already imported: as an import would, name it there too
        setattr(parent, name, module)
    return module


def solve_toeplitz(r: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``scipy.linalg.solve_toeplitz(r, b)`` for a real symmetric Toeplitz matrix (first
    column ``r``) and one right-hand side: the same Levinson recursion (scipy's compiled
    one, loaded by :func:`compiled_module`), so the same bits.

    Raises:
        numpy.linalg.LinAlgError: a singular principal minor (as scipy's).
    """
    module = compiled_module("linalg", "_solve_toeplitz")
    r, b = np.asarray(r, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not (np.isfinite(r).all() and np.isfinite(b).all()):
        raise ValueError("array must not contain infs or NaNs")  # scipy's check
    if module is None:  # scipy moved it: the public function, and its import time
        from scipy.linalg import solve_toeplitz as public

        return public(r, b)
    values = np.concatenate((r.conjugate()[-1:0:-1], r))  # row reversed, then the column
    return module.levinson(values, np.ascontiguousarray(b))[0]


def next_fast_len(n: int) -> int:
    """The smallest 2·3·5-smooth number ≥ ``n``: ``scipy.fft.next_fast_len(n, real=True)``
    without importing scipy.fft (numpy's FFT is the same pocketfft: the same bits)."""
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
    """The periodic Hann window of ``n`` points, as ``scipy.signal.get_window("hann", n)``
    computes it (the same operations, so the same bits)."""
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
