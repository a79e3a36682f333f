"""Sound and pictures of a file for the HTML report: the audio as an Ogg Opus ``data:`` URI
and its log-magnitude spectrogram as a JPEG ``data:`` URI, so the page needs no other file.
Both are for a person's eyes and ears (lossy, small); every number comes from the files.

The spectrograms of one scored file (clean, noisy, enhanced) share a colour scale: the
loudest bin of the three is the top, :data:`RANGE_DB` below it the bottom.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field

import numpy as np

MAX_CLIP_S = 60.0  # seconds of a file embedded at most (a 20-minute file: its first minute)
RANGE_DB = 80.0  # the colour scale of a file's spectrograms spans this many dB
WINDOW_S = 0.032  # spectrogram frame length (a power of two of samples near it), hop 1/4


@dataclass
class Clip:
    """One file's audio, ready for the page, or why it is not there.

    Attributes:
        label: what it is in the row (``clean``, ``noisy`` or the system's name).
        path: the file, as recorded by the run.
        rate: its sampling rate (Hz).
        seconds: the length embedded; ``file_seconds``: the file's length.
        audio_uri: ``data:audio/ogg;base64,…``, or None with ``problem`` saying why.
        power: the spectrogram (frequency × frame), in dB, for :func:`spectrogram_uri`.
        notes: what was done to the sound to embed it (cut, scaled, mixed).
    """

    label: str
    path: str
    rate: int = 0
    seconds: float = 0.0
    file_seconds: float = 0.0
    audio_uri: str | None = None
    power: np.ndarray | None = field(default=None, repr=False)
    problem: str | None = None
    notes: list[str] = field(default_factory=list)


def load_clip(label: str, path: str | None, channel: int | None = None,
              mix: bool = False) -> Clip:
    """Read at most :data:`MAX_CLIP_S` seconds of ``path`` and encode them; a missing or
    unreadable file gives a :class:`Clip` whose ``problem`` says so (never raises for it).

    ``channel``/``mix``: the run's channel policy (``--channel K``, ``--mix mono``), so a
    multichannel file sounds and looks as the signal that was scored.
    """
    import soundfile

    from ..audio import AudioError, open_regular

    clip = Clip(label, path or "")
    if not isinstance(path, str) or not path:
        clip.problem = "not recorded by the run"
        return clip
    try:
        descriptor = open_regular(path)
    except FileNotFoundError:
        hint = (" (or its name is not UTF-8 text, which a saved run cannot record exactly)"
                if "\\x" in path else "")
        clip.problem = f"not found: {path} (moved or deleted since the run){hint}"
        return clip
    except OSError as error:
        clip.problem = f"cannot open {path} ({error.strerror or error})"
        return clip
    except AudioError as error:  # not a regular file, or too large
        clip.problem = f"cannot use {path}: {error}"
        return clip
    try:
        with open(descriptor, "rb") as stream, soundfile.SoundFile(stream) as sound:
            clip.rate = sound.samplerate
            clip.file_seconds = sound.frames / sound.samplerate
            data = sound.read(min(sound.frames, int(MAX_CLIP_S * sound.samplerate)),
                              dtype="float64", always_2d=True)
    except Exception as error:  # soundfile raises several types; all mean "cannot read"
        text = str(getattr(error, "error_string", None) or error).strip()
        clip.problem = f"cannot read {path} ({text.splitlines()[-1] if text else error})"
        return clip
    if len(data) == 0 or not np.all(np.isfinite(data)):
        clip.problem = f"{path} holds no samples, or samples that are not finite"
        return clip
    clip.seconds = len(data) / clip.rate
    if clip.seconds < clip.file_seconds:
        clip.notes.append(f"its first {clip.seconds:g} s of {clip.file_seconds:.1f} s")
    data = _channels(data, channel, mix, clip)
    data, clip.rate = _playable_rate(data, clip)
    clip.power = spectrogram_db(data.mean(axis=1), clip.rate)
    clip.audio_uri = _audio_uri(data, clip)
    return clip


def _channels(data: np.ndarray, channel: int | None, mix: bool, clip: Clip) -> np.ndarray:
    """The channels to play: the scored one (``--channel``), their mix (``--mix mono``),
    else all of them, mixed when there are more than two."""
    if data.shape[1] == 1:
        return data
    if channel is not None and 0 <= channel < data.shape[1]:
        clip.notes.append(f"channel {channel} of {data.shape[1]}, as scored")
        return data[:, [channel]]
    if mix:
        clip.notes.append(f"its {data.shape[1]} channels mixed to mono, as scored")
    elif data.shape[1] > 2:
        clip.notes.append(f"its {data.shape[1]} channels mixed to mono to embed it")
    else:
        return data
    return data.mean(axis=1, keepdims=True)


OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # the rates Ogg Opus can hold


def _playable_rate(data: np.ndarray, clip: Clip) -> tuple[np.ndarray, int]:
    """The samples at a rate Ogg Opus holds: the file's own, else the next one up (48 kHz
    at most; higher rates come down to it)."""
    from ..dsp import resample

    if clip.rate in OPUS_RATES:
        return data, clip.rate
    target = next((r for r in OPUS_RATES if r >= clip.rate), OPUS_RATES[-1])
    clip.notes.append(f"resampled from {clip.rate} Hz to {target} Hz to embed it")
    out = np.stack([resample(data[:, k], clip.rate, target) for k in range(data.shape[1])],
                   axis=1)
    return out, target


def _audio_uri(data: np.ndarray, clip: Clip) -> str:
    """The samples as Ogg Opus in a data URI: lossy, for listening, about a sixth of
    FLAC's size; scaled down when they would clip. Written a second at a time (libsndfile
    has crashed on some long single writes)."""
    import soundfile

    peak = float(np.max(np.abs(data)))
    if peak > 1.0:
        data = data / peak
        clip.notes.append(f"scaled by 1/{peak:.3g} to play without clipping")
    stream = io.BytesIO()
    with soundfile.SoundFile(stream, "w", clip.rate, data.shape[1], format="OGG",
                             subtype="OPUS") as sound:
        for start in range(0, len(data), clip.rate):
            sound.write(data[start:start + clip.rate])
    return "data:audio/ogg;base64," + base64.b64encode(stream.getvalue()).decode("ascii")


MAX_COLUMNS = 1200  # spectrogram frames kept at most: the picture is ~300 pixels wide


def spectrogram_db(x: np.ndarray, rate: int) -> np.ndarray:
    """Power (dB) of the Hann-windowed STFT of ``x``: frequency × frame, frames of the
    power of two of samples nearest :data:`WINDOW_S`, hop a quarter of it, or longer for
    a long clip (at most :data:`MAX_COLUMNS` frames, so memory stays small)."""
    size = 2 ** max(int(round(np.log2(WINDOW_S * rate))), 4)
    if len(x) < size:
        x = np.pad(x, (0, size - len(x)))
    hop = max(size // 4, -(-(len(x) - size) // MAX_COLUMNS))
    frames = np.lib.stride_tricks.sliding_window_view(x, size)[::hop]
    window = np.hanning(size)
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2 / np.sum(window ** 2)
    return (10 * np.log10(power + 1e-20)).T.astype(np.float32)


def colour_scale(clips: list[Clip]) -> tuple[float, float]:
    """(bottom, top) in dB shared by the spectrograms of ``clips``."""
    tops = [float(np.max(c.power)) for c in clips if c.power is not None]
    top = max(tops) if tops else 0.0
    return top - RANGE_DB, top


def spectrogram_uri(clip: Clip, scale: tuple[float, float]) -> str:
    """``clip``'s spectrogram on the colour scale ``scale`` as a JPEG data URI (time in s,
    frequency in kHz)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.4, 1.7), dpi=90)
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    axis.imshow(clip.power, origin="lower", aspect="auto", cmap="magma", vmin=scale[0],
                vmax=scale[1], extent=(0, clip.seconds, 0, clip.rate / 2000),
                interpolation="antialiased")
    axis.set_xlabel("time (s)", fontsize=7)
    axis.set_ylabel("kHz", fontsize=7)
    axis.tick_params(labelsize=6)
    figure.tight_layout(pad=0.3)
    stream = io.BytesIO()
    figure.savefig(stream, format="jpeg", pil_kwargs={"quality": 80})
    return "data:image/jpeg;base64," + base64.b64encode(stream.getvalue()).decode("ascii")
