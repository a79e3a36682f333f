"""Read audio as float64 mono, and report what was done to it.

Every problem becomes an :class:`AudioError` whose message says what was found and how
to fix it; the scorer turns it into an error row, never a traceback.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

import numpy as np

from .dsp import lagged_correlations

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
MAX_AUDIO_BYTES = 1 << 30  # 1 GiB, 9 h of 16 kHz 16-bit mono; as float64 it takes 4 GiB
# Sample rates sqeval scores: from telephone-band 8 kHz files' lowest kin to 768 kHz. A
# header may claim any rate up to 2^31 − 1; resampling a file from 999,983 Hz took 2 GB
# and one from 2,147,483,647 Hz asked for 320 GiB (the filter grows with the rate).
MIN_RATE, MAX_RATE = 1000, 768000
NOT_REGULAR = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISDIR, "a folder"))
# no O_NONBLOCK (Windows): there, nothing that blocks on open looks like a file
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


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


def kind_problem(mode: int) -> str | None:
    """``"not a regular file (a FIFO); ..."`` for an ``st_mode`` other than a regular
    file's, else None."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in NOT_REGULAR if test(mode)), "a special file")
    return f"not a regular file ({kind}); sqeval reads regular files only"


def status_problem(status: os.stat_result) -> str | None:
    """Why a file with this ``os.stat`` result is not read: not a regular file (a FIFO,
    a device such as ``/dev/zero``, ...), whose reading could block or never end, or
    larger than :data:`MAX_AUDIO_BYTES`; None when it may be read."""
    if not stat.S_ISREG(status.st_mode):
        return kind_problem(status.st_mode)
    if status.st_size > MAX_AUDIO_BYTES:
        return (f"{status.st_size} bytes, more than the {MAX_AUDIO_BYTES} (1 GiB) that sqeval "
                "reads from one file; split the recording into shorter files")
    return None


def file_problem(path) -> str | None:
    """:func:`status_problem` of ``path`` (symbolic links followed), found without opening
    it; None also when it cannot be examined (reading it will say why)."""
    try:
        return status_problem(os.stat(path))
    except (OSError, ValueError):
        return None


def open_regular(path) -> int:
    """A descriptor of ``path`` for reading, checked to be a regular file of at most
    :data:`MAX_AUDIO_BYTES`: by name first (a device is never opened), then the file the
    descriptor names (opened without blocking, so a FIFO put in its place cannot hang the
    open). The caller closes it.

    Raises:
        OSError: it cannot be examined or opened.
        AudioError: it is not a regular file, or too large.
    """
    problem = status_problem(os.stat(path))
    if problem is not None:
        raise AudioError(problem)
    descriptor = os.open(path, OPEN_FLAGS)
    try:
        problem = status_problem(os.fstat(descriptor))
    except OSError:
        os.close(descriptor)
        raise
    if problem is not None:
        os.close(descriptor)
        raise AudioError(problem)
    return descriptor


def read_regular(path) -> bytes:
    """The bytes of ``path``, opened by :func:`open_regular` and read up to
    :data:`MAX_AUDIO_BYTES`, for the files other than audio that sqeval reads (a saved
    CSV and its ``.meta.json``): a FIFO would block the read, and ``/dev/zero`` or a file
    that keeps growing would fill the memory.

    Raises:
        OSError: it cannot be examined, opened or read.
        AudioError: it is not a regular file, or larger than :data:`MAX_AUDIO_BYTES`.
    """
    with open(open_regular(path), "rb") as stream:
        data = stream.read(MAX_AUDIO_BYTES + 1)
    if len(data) > MAX_AUDIO_BYTES:  # it grew after the size was checked
        raise AudioError(f"more than the {MAX_AUDIO_BYTES} bytes (1 GiB) that sqeval reads "
                         "from one file")
    return data


def content_digest():
    """The hash of a file's content that the results cache keys on (blake2b, 20 bytes):
    ``update`` it with the bytes, read ``hexdigest()``."""
    import hashlib

    return hashlib.blake2b(digest_size=20)


def read_audio(path, policy: ChannelPolicy = ChannelPolicy(),
               notes: list | None = None, digests: list | None = None) -> tuple[np.ndarray, int]:
    """Read ``path`` as a float64 mono signal with finite samples.

    The file is read once into memory and decoded from those bytes; with ``digests``, the
    :func:`content_digest` of exactly those bytes is appended to it (the cache stores the
    results under what was decoded, not under what the file held earlier or later).

    ``--channel K`` applies to multichannel files only: a mono file is read as it is, and
    for K ≥ 1 a note saying so is appended to ``notes``.

    Returns:
        ``(samples, rate)`` with ``samples`` of shape ``(time,)``.

    Raises:
        AudioError: unreadable or empty file, not a regular file or larger than
            :data:`MAX_AUDIO_BYTES`, more samples than a 16-bit file of that size holds
            (a compressed file that would decode to gigabytes), multichannel without a
            policy, a channel that does not exist, or NaN/Inf samples.
    """
    import soundfile

    import io

    try:
        content = read_regular(path)
    except OSError as error:
        raise AudioError(f"unreadable audio ({error.strerror or error})") from None
    if digests is not None:
        digest = content_digest()
        digest.update(content)
        digests.append(digest.hexdigest())
    with io.BytesIO(content) as stream:
        try:
            with soundfile.SoundFile(stream) as sound:
                check_rate(sound.samplerate)
                _check_decoded_size(sound.frames, sound.channels)
                data = sound.read(dtype="float64", always_2d=True)
                rate = sound.samplerate
        except AudioError:
            raise
        except Exception as error:  # soundfile raises several types; all mean "cannot read"
            text = str(getattr(error, "error_string", None) or error).strip()
            reason = text.splitlines()[-1] if text else type(error).__name__
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
    check_finite(samples)
    return samples, int(rate)


def check_finite(samples: np.ndarray) -> None:
    """Refuse NaN or Inf samples (an AudioError: one file's row, or one item's of
    ``sqeval.evaluate``, never the run)."""
    bad = ~np.isfinite(samples)
    if bad.any():
        n_nan = int(np.isnan(samples).sum())
        raise AudioError(
            f"{n_nan} NaN and {int(bad.sum()) - n_nan} Inf samples; expected finite audio"
        )


def check_rate(rate: int) -> None:
    """Refuse a sample rate outside :data:`MIN_RATE` … :data:`MAX_RATE` (an AudioError: one
    file's row, never the run)."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"a sample rate of {rate} Hz, outside the {MIN_RATE} to {MAX_RATE} Hz "
                         "that sqeval scores (a damaged or crafted header?)")


def check_resampled_size(n: int, source: int, target: int) -> None:
    """Refuse resampling ``n`` samples from ``source`` to ``target`` Hz to more samples
    than a 16-bit file of :data:`MAX_AUDIO_BYTES` holds, the most sqeval holds for one
    signal (the size limit holds after resampling too)."""
    after, limit = -(-n * target // source), MAX_AUDIO_BYTES // 2
    if after > limit:
        raise AudioError(f"{n} samples at {source} Hz would be {after} at {target} Hz, more "
                         f"than the {limit} samples sqeval holds for one signal; split the "
                         "recording into shorter files")


def _check_decoded_size(frames: int, channels: int) -> None:
    """Refuse a file that decodes to more samples than a 16-bit PCM file of
    :data:`MAX_AUDIO_BYTES` holds: a compressed file (FLAC, Ogg) under the limit on disk
    can hold hours of silence in a megabyte, and decode to gigabytes (8 bytes a sample
    as float64), so it gets the same bound as a WAV. The header's frame count is what
    ``read`` decodes, so the check comes before any decoding."""
    limit = MAX_AUDIO_BYTES // 2
    if frames * channels > limit:
        raise AudioError(f"{frames} frames × {channels} channel(s) = {frames * channels} "
                         f"samples, more than the {limit} that a 1 GiB 16-bit file holds, "
                         "the most sqeval reads from one file (compressed or not); split the "
                         "recording into shorter files")


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
            f"asked for --channel {policy.channel}, but the file has {n_channels} channel(s) "
            f"(0 … {n_channels - 1})"
        )
    return data[:, [policy.channel]]


def _unit_scale(x: np.ndarray) -> np.ndarray:
    """``x`` times the power of two that brings its peak into [0.5, 1) (unchanged if 0)."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if not np.isfinite(peak) or peak == 0:
        return x
    return np.ldexp(x, -np.frexp(peak)[1])


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
    # each signal scaled by a power of two to a peak in [0.5, 1): exact, so the lag is the
    # same, and files at extreme levels (1e160, subnormal) cannot overflow the correlation
    reference, estimate = (_unit_scale(x[:n]) for x in (reference, estimate))
    correlation = lagged_correlations(reference, [estimate], lag, lag)[0]  # −lag … lag
    return int(np.argmax(np.abs(correlation))) - lag
