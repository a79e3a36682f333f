"""Read audio as float64 mono, and report what was done to it.

Every problem becomes an :class:`AudioError` whose message says what was found and how
to fix it; the scorer turns it into an error row, never a traceback.
"""

from __future__ import annotations

import os

from dataclasses import dataclass

import numpy as np

from .dsp import lagged_correlations

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class AudioError(ValueError):
    """A file cannot be used as audio input; the message says why."""


@dataclass(frozen=True)
class ChannelPolicy:
    """What to do with multichannel files: take one ``channel`` (0-based), or ``mix``."""

    channel: int | None = None
    mix: bool = False

    def describe(self) -> str:
        if self.mix:
            return "mixed to mono"
        return f"channel {self.channel}" if self.channel is not None else "mono only"


def read_audio(path, policy: ChannelPolicy = ChannelPolicy(),
               notes: list | None = None) -> tuple[np.ndarray, int]:
    """Read ``path`` as a float64 mono signal with finite samples.

    ``--channel K`` applies to multichannel files only: a mono file is read as it is, and
    for K ≥ 1 a note saying so is appended to ``notes``.

    Returns:
        ``(samples, rate)`` with ``samples`` of shape ``(time,)``.

    Raises:
        AudioError: unreadable or empty file, multichannel without a policy, a channel
            that does not exist, or NaN/Inf samples.
    """
    import soundfile

    try:
        # bytes: a name that is not valid UTF-8 opens too (soundfile encodes str strictly)
        data, rate = soundfile.read(os.fsencode(path), dtype="float64", always_2d=True)
    except Exception as error:  # soundfile raises several types; all mean "cannot read"
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise AudioError(f"unreadable audio ({reason})") from None
    n_channels = data.shape[1]
    if data.shape[0] == 0:
        raise AudioError("the file holds no samples")
    if n_channels > 1:
        data = _select_channel(data, policy)
    elif policy.channel not in (None, 0) and notes is not None:
        notes.append(f"mono file: --channel {policy.channel} applies to multichannel files "
                     "only; its one channel is scored")
    samples = np.ascontiguousarray(data[:, 0])
    bad = ~np.isfinite(samples)
    if bad.any():
        n_nan = int(np.isnan(samples).sum())
        raise AudioError(
            f"{n_nan} NaN and {int(bad.sum()) - n_nan} Inf samples; expected finite audio"
        )
    return samples, int(rate)


def _select_channel(data: np.ndarray, policy: ChannelPolicy) -> np.ndarray:
    n_channels = data.shape[1]
    if policy.mix:
        return data.mean(axis=1, keepdims=True)
    if policy.channel is None:
        raise AudioError(
            f"{n_channels} channels; sqeval scores mono signals. "
            "Pass --channel K to take channel K (0-based) or --mix mono to average them"
        )
    if not 0 <= policy.channel < n_channels:
        raise AudioError(
            f"--channel {policy.channel} asked for, but the file has {n_channels} channel(s) "
            f"(0 … {n_channels - 1})"
        )
    return data[:, [policy.channel]]


def estimate_delay(reference: np.ndarray, estimate: np.ndarray, max_lag: int) -> int:
    """The lag (samples) by which ``estimate`` trails ``reference``, from the peak of their
    cross-correlation's magnitude within ``±max_lag``; negative when it leads.

    Example:
        >>> import numpy as np
        >>> s = np.random.default_rng(0).standard_normal(4000)
        >>> estimate_delay(s, np.concatenate([np.zeros(25), s])[:4000], 100)
        25
    """
    n = min(len(reference), len(estimate))
    if n == 0 or max_lag <= 0:
        return 0
    lag = min(max_lag, n - 1)
    correlation = lagged_correlations(reference[:n], [estimate[:n]], lag, lag)[0]  # −lag … lag
    return int(np.argmax(np.abs(correlation))) - lag
