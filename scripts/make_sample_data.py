"""Build sample_data/: clean, noisy and enhanced speech triplets at 16 kHz.

Run from the repository root (needs espeak-ng on PATH, and sqeval's dependencies):

    python scripts/make_sample_data.py

Clean speech: espeak-ng, eight voices in eight languages, resampled from 22.05 kHz to
16 kHz with scipy's resample_poly, with 0.4 s of silence before and 0.3 s after.
Noise: eight kinds made with a seeded numpy generator (white, pink, brown, babble of
other espeak-ng utterances, mains hum, speech-shaped noise modulated at 4 Hz, fan
noise, high-frequency hiss), scaled to an SNR over the whole file between -5 and 20 dB.
Enhanced: a Wiener filter with the decision-directed a priori SNR estimate (Ephraim &
Malah 1984; Scalart & Vieira Filho 1996), the noise spectrum taken from the first
0.3 s of each noisy file (speech-free by construction), 32 ms sqrt-Hann frames with a
75 % overlap, gain floored at -15 dB. Everything is deterministic.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, lfilter, resample_poly, sosfilt

RATE = 16000
OUT = Path("sample_data")
# (voice, language tag, sentence, noise, snr_db)
ITEMS = [
    ("en-us+f3", "en", "The birch canoe slid on the smooth planks of the lake.", "white", -5),
    ("de+m3", "de", "Der Zug nach Berlin fährt heute pünktlich um acht Uhr ab.", "babble", 0),
    ("fr+f2", "fr", "Le petit chat dort tranquillement sous la table de la cuisine.", "pink", 2),
    ("es+m1", "es", "Mañana vamos a caminar por la playa con nuestros amigos.", "hum", 5),
    ("it+f4", "it", "La pioggia di ieri sera ha bagnato tutte le strade della città.", "modulated", 7),
    ("nl+m2", "nl", "De fiets staat al drie dagen achter het oude huis.", "fan", 10),
    ("pt+f1", "pt", "O menino comprou pão fresco na padaria da esquina.", "brown", 15),
    ("en-gb+m4", "en-gb", "Please bring the blue folder to the meeting room at noon.", "hiss", 20),
]
BABBLE = [("en-us+m1", "Several people are talking at the same time in the room."),
          ("fr+m4", "Nous avons parlé pendant des heures de la musique ancienne."),
          ("de+f3", "Wir haben gestern lange über das Wetter gesprochen."),
          ("es+f2", "Ellos siempre llegan tarde a las reuniones del lunes.")]


def speak(voice: str, text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text],
                       check=True)
        x, rate = sf.read(path, dtype="float64")
    return resample_poly(x, 320, 441) if rate == 22050 else resample_poly(x, RATE, rate)


def clean_utterance(voice: str, text: str) -> np.ndarray:
    x = speak(voice, text)
    x = np.concatenate([np.zeros(int(0.4 * RATE)), x, np.zeros(int(0.3 * RATE))])
    return 0.25 * x / np.max(np.abs(x))


def coloured(rng, n, exponent):
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequency = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0)
    return np.fft.irfft(spectrum / frequency ** (exponent / 2), n)


def make_noise(kind: str, n: int, rng) -> np.ndarray:
    t = np.arange(n) / RATE
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "pink":
        return coloured(rng, n, 1.0)
    if kind == "brown":
        return coloured(rng, n, 2.0)
    if kind == "hum":
        hum = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 8))
        return hum + 0.05 * rng.standard_normal(n)
    if kind == "modulated":
        shaped = lfilter([1.0], [1.0, -0.9], rng.standard_normal(n))
        return shaped * (1.2 + np.sin(2 * np.pi * 4 * t))
    if kind == "fan":
        return coloured(rng, n, 1.0) + 0.3 * np.sin(2 * np.pi * 120 * t) * np.std(coloured(rng, n, 1.0))
    if kind == "hiss":
        return sosfilt(butter(4, 3000, "highpass", fs=RATE, output="sos"), rng.standard_normal(n))
    if kind == "babble":
        total = np.zeros(n)
        for voice, text in BABBLE:
            talker = speak(voice, text)
            talker = np.tile(talker, n // len(talker) + 1)[:n]
            total += np.roll(talker, rng.integers(n)) / np.std(talker)
        return total
    raise ValueError(kind)


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    noise = noise * np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    return clean + noise


def wiener_enhance(noisy: np.ndarray, noise_seconds: float = 0.3) -> np.ndarray:
    """Decision-directed Wiener filter; noise PSD from the first ``noise_seconds``."""
    frame, hop = 512, 128
    window = np.sqrt(np.hanning(frame + 1)[:-1])
    padded = np.concatenate([np.zeros(frame), noisy, np.zeros(frame)])
    starts = np.arange(0, len(padded) - frame + 1, hop)
    spectra = np.fft.rfft(window * padded[starts[:, None] + np.arange(frame)], axis=1)
    power = np.abs(spectra) ** 2
    noise_frames = starts + frame <= frame + int(noise_seconds * RATE)
    noise_power = np.mean(power[noise_frames], axis=0) + 1e-12
    gain_floor, smoothing = 10 ** (-15 / 20), 0.98
    previous = np.ones_like(noise_power)
    gains = np.empty_like(power)
    for k, frame_power in enumerate(power):  # the recursion runs over frames by nature
        posterior = frame_power / noise_power
        prior = smoothing * previous + (1 - smoothing) * np.maximum(posterior - 1, 0)
        gains[k] = np.maximum(prior / (1 + prior), gain_floor)
        previous = (gains[k] ** 2) * posterior
    frames = np.fft.irfft(gains * spectra, frame, axis=1) * window
    out = np.zeros(len(padded))
    for start, chunk in zip(starts, frames):
        out[start:start + frame] += chunk
    return out[frame:frame + len(noisy)] / 2.0  # periodic Hann at 75 % overlap sums to 2


def main() -> None:
    rng = np.random.default_rng(20261121)
    for folder in ("clean", "noisy", "enhanced"):
        (OUT / folder).mkdir(parents=True, exist_ok=True)
    for voice, language, text, kind, snr_db in ITEMS:
        clean = clean_utterance(voice, text)
        noisy = mix(clean, make_noise(kind, len(clean), rng), snr_db)
        enhanced = wiener_enhance(noisy)
        name = f"{language}_{kind}_{snr_db}dB.wav"
        for folder, signal in (("clean", clean), ("noisy", noisy), ("enhanced", enhanced)):
            assert np.max(np.abs(signal)) < 1.0, f"{name} would clip in {folder}"
            sf.write(OUT / folder / name, signal, RATE, subtype="PCM_16")
        print(name, f"{len(clean) / RATE:.2f} s")


if __name__ == "__main__":
    main()
