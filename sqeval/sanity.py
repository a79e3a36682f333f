"""The canonical sanity cases, and the check of each metric's declared properties.

Every case is an estimate derived from a clean signal (and a noise: noisy − clean when a
noisy file is given, else white noise at 5 dB SNR), scored against the clean signal by
the same per-file path as ``sqeval score``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from .dsp import resample
from .metrics import MetricError, MetricSpec
from .metrics.registry import PROPERTIES
from .results import Row
from .scoring import ScoreOptions, Signal, failed_row, score_signals

IDENTITY, NOISY_CASE = "identity", "clean+noise"
GAIN_COPIES = ("gain ×0.5", "gain ×2")
POLARITY_COPY = "polarity −1"
GAIN_PROBES = ("(clean+noise) ×0.5", "(clean+noise) ×2")
POLARITY_PROBE = "−(clean+noise)"
SWEEP_DB = (-5, 0, 5, 10, 20)
DEFAULT_NOISE_DB = 5.0  # SNR of the white noise used when no noisy file is given
NOISE_SEED = 0
LOWPASS_HZ = 4000
CLIP_FRACTION = 0.3  # clip at 30 % of the clean signal's peak
MAX_NOISE_CORRELATION = 0.1  # beyond this, noisy − clean holds speech: no SNR sweep


def sweep_case(snr_db: int) -> str:
    return f"clean+noise {snr_db:+d} dB"


@dataclass
class Material:
    """A clean signal, and a noisy one (raw, as read) when the user gave it."""

    name: str
    clean: np.ndarray
    rate: int
    noisy: np.ndarray | None = None
    noisy_rate: int | None = None

    @cached_property
    def prefix_and_noise(self) -> tuple[np.ndarray, np.ndarray]:
        """The clean prefix and the noise of the same length (computed once)."""
        return _noise(self)


def _scaled(noise: np.ndarray, clean: np.ndarray, snr_db: float) -> np.ndarray:
    return noise * math.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10 ** (snr_db / 10))


def _noise(material: Material) -> tuple[np.ndarray, np.ndarray]:
    """The clean prefix and the noise of the same length."""
    s = material.clean
    if material.noisy is None:
        white = np.random.default_rng(NOISE_SEED).standard_normal(len(s))
        return s, _scaled(white, s, DEFAULT_NOISE_DB)
    noisy = resample(material.noisy, material.noisy_rate, material.rate)
    length = min(len(s), len(noisy))
    return s[:length], noisy[:length] - s[:length]


def noise_correlation(material: Material) -> float:
    """Correlation of the noise (noisy − clean) with the clean signal.

    Near 0 for real noise. A noisy file that was scaled after mixing (loudness
    normalisation) leaves a copy of the clean speech in noisy − clean; then the sweep's
    "SNR" counts speech as noise and monotonicity over it means nothing.
    """
    prefix, noise = material.prefix_and_noise
    return float(prefix @ noise / math.sqrt((prefix @ prefix) * (noise @ noise)))


def _lowpass(s: np.ndarray, fs: int) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    if fs <= 2 * LOWPASS_HZ:
        raise MetricError(f"at {fs} Hz there is nothing above {LOWPASS_HZ} Hz to remove")
    sos = butter(8, LOWPASS_HZ, fs=fs, output="sos")
    padding = 3 * (2 * len(sos) + 1)  # sosfiltfilt's default padlen: it needs more samples
    if len(s) <= padding:
        raise MetricError(f"{len(s)} samples, too short for the low-pass filter (needs more "
                          f"than {padding})")
    return sosfiltfilt(sos, s)


def _delayed(s: np.ndarray, samples: int) -> np.ndarray:
    return np.concatenate([np.zeros(samples), s[: len(s) - samples]])


def build_cases(material: Material) -> dict[str, Callable[[], tuple[np.ndarray, int]]]:
    """Case name → a function returning ``(estimate, rate)``; it may raise MetricError."""
    s, fs = material.clean, material.rate
    prefix, noise = material.prefix_and_noise
    peak = np.max(np.abs(s))
    noisy = ((material.noisy, material.noisy_rate) if material.noisy is not None
             else (prefix + noise, fs))
    cases = {
        IDENTITY: lambda: (s, fs),
        GAIN_COPIES[0]: lambda: (0.5 * s, fs),
        GAIN_COPIES[1]: lambda: (2.0 * s, fs),
        POLARITY_COPY: lambda: (-s, fs),
        NOISY_CASE: lambda: noisy,
        "clean−noise": lambda: (prefix - noise, fs),
        "noise alone": lambda: (noise, fs),
        "silence": lambda: (np.zeros_like(s), fs),
        "clipped at 30 %": lambda: (np.clip(s, -CLIP_FRACTION * peak, CLIP_FRACTION * peak), fs),
        "delayed 1 ms": lambda: (_delayed(s, round(0.001 * fs)), fs),
        "delayed 10 ms": lambda: (_delayed(s, round(0.010 * fs)), fs),
        "low-passed 4 kHz": lambda: (_lowpass(s, fs), fs),
    }
    for snr_db in SWEEP_DB:
        cases[sweep_case(snr_db)] = lambda k=snr_db: (prefix + _scaled(noise, prefix, k), fs)
    cases[GAIN_PROBES[0]] = lambda: (0.5 * (prefix + noise), fs)
    cases[GAIN_PROBES[1]] = lambda: (2.0 * (prefix + noise), fs)
    cases[POLARITY_PROBE] = lambda: (-(prefix + noise), fs)
    return cases


def run_cases(material: Material, options: ScoreOptions,
              extra: Callable[[Row, np.ndarray, np.ndarray, int], None] | None = None) -> list[Row]:
    """One :class:`Row` per case (``system`` is the case name), scored like ``sqeval score``.

    ``extra(row, reference, estimate, fs)`` may add columns (the loss forms).
    """
    reference = Signal(material.clean, material.rate)
    rows = []
    for case, make in build_cases(material).items():
        try:
            estimate, rate = make()
        except MetricError as error:
            rows.append(failed_row(material.name, case, str(error), options.metrics))
            continue
        row = score_signals(material.name, case, reference, estimate, rate, options)
        if extra is not None:
            extra(row, material.clean, resample(estimate, rate, material.rate), material.rate)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class PropertyResult:
    """Whether one property holds for one metric, and what was seen.

    ``holds`` is None when it could not be evaluated (a value is missing).
    """

    metric: str
    name: str
    declared: bool | None
    holds: bool | None
    observed: str

    @property
    def failed(self) -> bool:
        """Declared to hold, and seen not to."""
        return self.declared is True and self.holds is False

    @property
    def finding(self) -> bool:
        return self.declared is None and self.holds is False


def _same(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _evaluate(spec: MetricSpec, name: str, values: dict[str, float]) -> tuple[bool | None, str]:
    v = values.get
    if name == "best_at_identity":
        skip = {IDENTITY}
        if spec.properties.get("gain_invariant"):
            skip |= set(GAIN_COPIES)
        if spec.properties.get("polarity_invariant"):
            skip.add(POLARITY_COPY)
        others = {case: value for case, value in values.items()
                  if case not in skip and not math.isnan(value)}
        ident = v(IDENTITY, math.nan)
        if math.isnan(ident) or not others:
            return None, "no value at identity"
        pick = max if spec.higher_is_better else min
        best = pick(others, key=others.get)
        tolerance = 1e-9 * max(1.0, abs(ident))
        better = (others[best] > ident + tolerance if spec.higher_is_better
                  else others[best] < ident - tolerance)
        return not better, f"identity {_fmt(ident)}; best other: {best} {_fmt(others[best])}"
    if name == "monotone_in_snr":
        sweep = [v(sweep_case(k), math.nan) for k in SWEEP_DB]
        if any(math.isnan(x) for x in sweep):
            return None, "a sweep value is missing"
        sign = 1 if spec.higher_is_better else -1
        steps = [sign * (b - a) >= -1e-9 * max(1.0, abs(a)) for a, b in zip(sweep, sweep[1:])]
        return all(steps), " → ".join(_fmt(x) for x in sweep)
    pairs = {"gain_invariant": [(NOISY_CASE, GAIN_PROBES[0]), (NOISY_CASE, GAIN_PROBES[1])],
             "polarity_invariant": [(NOISY_CASE, POLARITY_PROBE)],
             "sign_blind": [(NOISY_CASE, "clean−noise")]}[name]
    seen = [(v(a, math.nan), v(b, math.nan)) for a, b in pairs]
    if any(math.isnan(x) for pair in seen for x in pair):
        return None, "a value is missing"
    observed = "; ".join(f"{a}: {_fmt(x)}, {b}: {_fmt(y)}" for (a, b), (x, y) in zip(pairs, seen))
    return all(_same(x, y, spec.tolerance) for x, y in seen), observed


def check_properties(rows: list[Row], metrics: list[MetricSpec],
                     correlated_noise: dict[str, float] | None = None) -> list[PropertyResult]:
    """Evaluate every property for every metric over the rows of one or more files.

    A property holds when it holds in every file where it could be evaluated; otherwise
    the observed values are those of the first file where it did not.
    ``correlated_noise`` maps files whose noise correlates with the clean signal (see
    :func:`noise_correlation`) to that correlation; their SNR sweep is not evaluated.
    """
    correlated_noise = correlated_noise or {}
    files = list(dict.fromkeys(row.file for row in rows))
    results = []
    for spec in metrics:
        for name in PROPERTIES:
            verdicts = []
            for file in files:
                values = {row.system: row.values[spec.name] for row in rows if row.file == file}
                if name == "monotone_in_snr" and file in correlated_noise:
                    holds, observed = None, (f"not evaluated: the noise correlates with the "
                                             f"clean signal (ρ = {correlated_noise[file]:.2f})")
                else:
                    holds, observed = _evaluate(spec, name, values)
                prefix = f"{file}: " if len(files) > 1 else ""
                verdicts.append((holds, prefix + observed))
            evaluated = [item for item in verdicts if item[0] is not None]
            if not evaluated:
                holds, observed = None, verdicts[0][1]
            else:
                holds = all(item[0] for item in evaluated)
                observed = next((o for h, o in evaluated if not h), evaluated[0][1])
            results.append(PropertyResult(spec.name, name, spec.properties.get(name),
                                          holds, observed))
    return results


def _frames(x: np.ndarray, fs: int) -> np.ndarray:
    from .metrics.spectral import stft_magnitude

    return np.swapaxes(stft_magnitude(x, fs), -1, -2)  # (bins, frames)


def _loss_functions() -> dict[str, Callable]:
    """Loss name → function of (s, e, spectra): the waveforms, and a function returning
    their (bins, frames) STFT magnitudes as ``reference=``/``estimate=`` keywords."""
    from . import losses

    return {
        "si_snr_loss": lambda s, e, spectra: losses.si_snr_loss(reference=s, estimate=e),
        "nsr": lambda s, e, spectra: losses.nsr(reference=s, estimate=e),
        "osi_snr_loss_m1": lambda s, e, spectra: losses.osi_snr_loss(**spectra(), method=1),
        "osi_snr_loss_m2": lambda s, e, spectra: losses.osi_snr_loss(**spectra(), method=2),
        "fused_loss": lambda s, e, spectra: losses.fused_loss(**spectra()),
        "rel_entropy_sum": lambda s, e, spectra: losses.relative_entropy(
            reference=s, estimate=e, over_time="sum"),
    }


def add_losses(row: Row, reference: np.ndarray, estimate: np.ndarray, fs: int) -> None:
    """Add the loss forms of :mod:`sqeval.losses` to ``row``, on the common prefix; waveform
    losses on samples, frame-wise ones on the STFT magnitudes of ``mc_mse``."""
    length = min(len(reference), len(estimate))
    s, e = reference[:length], estimate[:length]
    computed: dict = {}

    def spectra() -> dict:
        if not computed:
            computed.update(reference=_frames(s, fs), estimate=_frames(e, fs))
        return computed

    for name, function in _loss_functions().items():
        try:
            value = float(function(s, e, spectra))
            if not math.isfinite(value):
                raise MetricError(f"not finite ({value})")
            row.values[name] = value
        except (MetricError, ValueError) as error:
            row.values[name] = math.nan
            row.errors[name] = str(error)
