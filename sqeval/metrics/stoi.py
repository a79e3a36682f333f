"""STOI and extended STOI, computed by the ``pystoi`` reference implementation.

Conventions
-----------
``reference`` and ``estimate`` are 1-D (or ``(..., time)``, looped) at any rate ``fs``;
pystoi resamples to 10 kHz, drops frames more than 40 dB below the loudest clean frame,
and needs at least 30 frames (384 ms of speech) after that. Range [0, 1] for STOI,
about [−1, 1] for ESTOI; higher is better.

Where pystoi would return its stand-in value 1e-5 ("not enough frames"), sqeval raises
:class:`~sqeval.metrics.MetricError` instead, so a stand-in can never reach a mean.
pystoi's ESTOI adds random noise of size ``finfo(float64).eps`` before normalising, which
changes the last bits of its result from run to run. sqeval seeds numpy's global
generator for that call (and restores the caller's state), so ESTOI is deterministic;
it stays within 1e-15 of any pystoi run.

References
----------
- C. H. Taal, R. C. Hendriks, R. Heusdens, J. Jensen, "An algorithm for intelligibility
  prediction of time–frequency weighted noisy speech", IEEE TASLP 19(7), 2011.
- J. Jensen, C. H. Taal, "An algorithm for predicting the intelligibility of speech
  masked by modulated noise maskers", IEEE/ACM TASLP 24(11), 2016.
- pystoi (M. Pariente), which sqeval calls and matches exactly.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._checks import MetricError, as_output, as_pair

MIN_FRAMES = 30  # frames pystoi needs for one intermediate intelligibility segment
ESTOI_SEED = 0  # seeds pystoi's eps-sized noise, so ESTOI is the same on every run


def _pystoi_one(s: np.ndarray, s_hat: np.ndarray, fs: int, extended: bool) -> float:
    from pystoi import stoi as pystoi_stoi

    saved = np.random.get_state()
    np.random.seed(ESTOI_SEED)  # pystoi's ESTOI draws from the global generator
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = pystoi_stoi(s, s_hat, fs, extended=extended)
    finally:
        np.random.set_state(saved)  # leave the caller's generator as it was
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        raise MetricError(
            f"too short for {'ESTOI' if extended else 'STOI'}: fewer than {MIN_FRAMES} frames "
            "of speech (384 ms) remain after removing silent frames"
        )
    if not np.isfinite(value):
        raise MetricError(f"{'ESTOI' if extended else 'STOI'} is not finite for this pair")
    return float(value)


def _stoi(reference, estimate, fs: int, extended: bool):
    s, s_hat = as_pair(reference, estimate)
    flat_s = s.reshape(-1, s.shape[-1])
    flat_e = s_hat.reshape(-1, s.shape[-1])
    values = [_pystoi_one(a, b, int(fs), extended) for a, b in zip(flat_s, flat_e)]
    return as_output(np.reshape(values, s.shape[:-1]))


def stoi(*, reference, estimate, fs: int):
    """Short-time objective intelligibility (Taal et al. 2011), in [0, 1]; higher is better.

    Args:
        reference: clean signal, shape ``(..., time)``.
        estimate: estimate, same shape.
        fs: sampling rate in Hz (any; resampled to 10 kHz internally).

    Raises:
        MetricError: shapes differ, non-finite samples, a silent signal, or fewer than 30
            frames of speech.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> s = rng.standard_normal(16000)
        >>> stoi(reference=s, estimate=s, fs=16000) > 0.999
        True
    """
    return _stoi(reference, estimate, fs, extended=False)


def estoi(*, reference, estimate, fs: int):
    """Extended STOI (Jensen & Taal 2016); higher is better, 1 at identity.

    Same arguments and errors as :func:`stoi`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> s = rng.standard_normal(16000)
        >>> estoi(reference=s, estimate=s, fs=16000) > 0.999
        True
    """
    return _stoi(reference, estimate, fs, extended=True)
