"""PESQ (ITU-T P.862) MOS-LQO, computed by the ``pesq`` package (ITU reference C code).

Conventions
-----------
Rate policy: PESQ runs at 16 kHz when ``fs ≥ 16 kHz`` (signals above are resampled down
with ``resample_poly``) and at 8 kHz when ``8 kHz ≤ fs < 16 kHz``. Wide-band PESQ
(P.862.2) needs the 16 kHz path and raises :class:`NotApplicableError` for narrow-band
input; narrow-band PESQ (P.862.1) runs at whichever rate the policy picks. Reference and
estimate may differ in length: PESQ aligns them itself, so it receives both whole
signals. Range about [1.0, 4.64] (wb) and [1.0, 4.55] (nb); higher is better.

References
----------
- ITU-T P.862 (2001), P.862.1 (2003) and P.862.2 (2007).
- ``pesq`` (ludlows/PESQ), which sqeval calls; results equal it exactly.
"""

from __future__ import annotations

import numpy as np

from ..dsp import resample
from ._checks import MetricError, NotApplicableError, as_output, as_pair

WIDE_BAND_RATE = 16000
NARROW_BAND_RATE = 8000
# P.862 is specified for short speech samples (8–20 s). The reference C code keeps at
# most 50 utterances in a fixed table and crashes (SIGSEGV) past it: seen on a 5-minute
# recording, after 20 s; a 20-minute one ran 9 minutes and 5.9 GB before crashing.
MAX_SECONDS = 120.0
# The pesq package divides both signals by their joint peak and its C code squares samples
# in single precision: a signal whose RMS is ~2e-21 of that peak drifts, and at ~2e-23
# its power underflows to 0 and the score is NaN. 1e-15 (−300 dB) keeps a margin of 10^6.
MIN_RELATIVE_RMS = 1e-15


def pesq_rate(fs: int, *, mode: str = "nb") -> int:
    """The rate PESQ runs at for input at ``fs`` Hz.

    Raises:
        NotApplicableError: ``fs`` below 8 kHz, or ``mode="wb"`` below 16 kHz.

    Example:
        >>> pesq_rate(48000), pesq_rate(11025), pesq_rate(16000, mode="wb")
        (16000, 8000, 16000)
    """
    if fs >= WIDE_BAND_RATE:
        return WIDE_BAND_RATE
    if mode == "wb":
        raise NotApplicableError(
            f"wide-band PESQ needs audio at ≥ 16 kHz; this pair is at {fs} Hz (use pesq_nb)"
        )
    if fs >= NARROW_BAND_RATE:
        return NARROW_BAND_RATE
    raise NotApplicableError(f"PESQ needs audio at ≥ 8 kHz; this pair is at {fs} Hz")


def _require_level(s, s_hat) -> None:
    """Raise :class:`MetricError` for a signal too quiet, next to the other's peak, for
    PESQ's single-precision arithmetic (see :data:`MIN_RELATIVE_RMS`)."""
    peak = max(np.max(np.abs(s)), np.max(np.abs(s_hat)))
    for name, x in (("reference", s), ("estimate", s_hat)):
        relative = np.sqrt(np.mean(x * x)) / peak
        if relative < MIN_RELATIVE_RMS:
            raise MetricError(
                f"{name} is too quiet for PESQ: its RMS is {20 * np.log10(relative):.0f} dB "
                f"below the louder signal's peak, and PESQ (which scales both by that peak and "
                f"squares samples in single precision) cannot resolve levels "
                f"{-20 * np.log10(MIN_RELATIVE_RMS):.0f} dB down. Check the file's level.")


def _pesq_one(s, s_hat, rate: int, mode: str) -> float:
    import pesq as pesq_package

    _require_level(s, s_hat)
    try:
        return float(pesq_package.pesq(rate, s, s_hat, mode))
    except pesq_package.BufferTooShortError:
        raise MetricError("too short for PESQ (it needs at least 0.25 s of audio)") from None
    except pesq_package.NoUtterancesError:
        raise MetricError("PESQ detected no utterances (speech) in the signals") from None
    except pesq_package.PesqError as error:
        raise MetricError(f"PESQ failed: {error}") from None
    except (ValueError, ArithmeticError) as error:  # NaN out of the C code, and the like
        raise MetricError(f"PESQ's C code gave no score for these signals ({error}); they "
                          "may be degenerate (check their level and content)") from None


def _pesq(reference, estimate, fs: int, mode: str):
    rate = pesq_rate(int(fs), mode=mode)
    s, s_hat = as_pair(reference, estimate, same_length=False)
    if s.shape[:-1] != s_hat.shape[:-1]:
        raise MetricError(f"batch shapes differ: reference {s.shape}, estimate {s_hat.shape}")
    seconds = max(s.shape[-1], s_hat.shape[-1]) / fs
    if seconds > MAX_SECONDS:
        raise MetricError(
            f"not computed on {seconds:.0f} s of audio: PESQ (ITU-T P.862) is defined for short "
            f"speech samples, and its reference C code crashes on long recordings (over 50 "
            f"utterances); the limit here is {MAX_SECONDS:.0f} s, so cut the file into utterances")
    s, s_hat = resample(s, int(fs), rate), resample(s_hat, int(fs), rate)
    flat_s = s.reshape(-1, s.shape[-1])
    flat_e = s_hat.reshape(-1, s_hat.shape[-1])
    values = [_pesq_one(a, b, rate, mode) for a, b in zip(flat_s, flat_e)]
    return as_output(np.reshape(values, s.shape[:-1]))


def pesq_wb(*, reference, estimate, fs: int):
    """Wide-band PESQ MOS-LQO (P.862.2) at 16 kHz; higher is better.

    Args:
        reference: clean signal, shape ``(..., time)``, at ``fs`` ≥ 16 kHz.
        estimate: estimate at ``fs``; its length may differ (PESQ aligns).
        fs: sampling rate in Hz; above 16 kHz both are resampled to 16 kHz.

    Raises:
        NotApplicableError: ``fs`` < 16 kHz.
        MetricError: non-finite samples, a silent signal, under 0.25 s, over 120 s (see
            ``MAX_SECONDS``), a signal too quiet next to the other (see
            ``MIN_RELATIVE_RMS``), or no utterances.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> t = np.arange(16000) / 16000
        >>> s = np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t))
        >>> round(pesq_wb(reference=s, estimate=s, fs=16000), 2)
        4.64
    """
    return _pesq(reference, estimate, fs, "wb")


def pesq_nb(*, reference, estimate, fs: int):
    """Narrow-band PESQ MOS-LQO (P.862.1), at 8 or 16 kHz by the rate policy.

    Same arguments and errors as :func:`pesq_wb`, but any ``fs`` ≥ 8 kHz applies.
    """
    return _pesq(reference, estimate, fs, "nb")
