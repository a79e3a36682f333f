"""The classic enhancement measures of Loizou's toolbox, as pysepm computes them.

Conventions (P. C. Loizou, *Speech Enhancement: Theory and Practice*, 2nd ed., 2013, and
its MATLAB ``composite.m``; the details below are pysepm's, which papers on
VoiceBank-DEMAND report)
-----------------------------------------------------------------------------------------
Frames of ``N = round(0.030·fs)`` samples (480 at 16 kHz) with a hop of
``floor(0.25·0.030·fs)`` (120), each multiplied by the Hann window
``0.5·(1 − cos(2πk/(N+1)))``, ``k = 1 … N``.

- ``seg_snr``: per frame ``10·log10(Σs²/(Σ(s − ŝ)² + ε) + ε)``, clipped to [−10, 35] dB;
  the mean over all frames but the last.
- ``fw_seg_snr``: per frame, magnitude spectra (FFT of ``2^⌈log2 2N⌉`` points, Nyquist
  bin dropped) normalised to sum 1, grouped by 25 Gaussian-shaped critical-band filters
  into ``X_j`` and ``X̂_j``; ``Σ_j W_j·10·log10(X_j²/(X_j − X̂_j)²) / Σ_j W_j`` with
  ``W_j = X_j^0.2`` and the error floored at ε; clipped to [−10, 35] dB; the mean.
- ``wss`` (weighted spectral slope, Klatt 1982): the same critical bands on power
  spectra, in dB (floored at −100); per frame the weighted squared difference of the
  slopes between adjacent bands, with Klatt's weights (``K_max = 20``,
  ``K_locmax = 1``); the mean of the lowest 95 % of frames. Lower is better.
- ``llr`` (log-likelihood ratio): LPC of order 16 (10 below 10 kHz) per frame by
  Levinson–Durbin; ``ln(a_ŝ R_s a_ŝᵀ / a_s R_s a_sᵀ)`` clipped at 2, over all frames but
  the last; the mean of the lowest 95 %. Lower is better.
- ``csig``, ``cbak``, ``covl`` (Hu & Loizou 2008): linear combinations of the unclipped
  LLR, WSS, segmental SNR and wide-band PESQ, each clipped to [1, 5]. They run at
  16 kHz (the rate of ``pesq_wb``) on the common prefix of the two signals.

Both signals get ε = float64 eps added before ``fw_seg_snr`` and ``wss``, as in pysepm.

References
----------
- Y. Hu, P. C. Loizou, "Evaluation of objective quality measures for speech
  enhancement", IEEE TASLP 16(1), 2008 (the composite measures).
- D. H. Klatt, "Prediction of perceived phonetic distance from critical-band spectra",
  ICASSP 1982 (WSS).
- pysepm (schmiph2/pysepm), ``SNRseg``, ``fwSNRseg``, ``wss``, ``llr``, ``composite``,
  whose per-file values sqeval reproduces (golden values within 1e-6).
"""

from __future__ import annotations

import numpy as np

from ..dsp import frame_spans, resample
from ._checks import EPS, MetricError, NotApplicableError, as_output, as_pair

WIDE_RATE, NARROW_RATE = 16000, 8000  # Hz: the rates the measures run at (classic_rate)
FRAME_SECONDS = 0.03
OVERLAP = 0.75
SNR_FLOOR, SNR_CEILING = -10.0, 35.0  # dB, for seg_snr and fw_seg_snr
KEEP = 0.95  # LLR and WSS: mean of the lowest 95 % of frames
LLR_CEILING = 2.0
FW_GAMMA = 0.2  # exponent of the band weights of fw_seg_snr
K_MAX, K_LOCMAX = 20.0, 1.0  # Klatt's WSS constants
# fw_seg_snr adds ε to both signals and wss floors band levels at −100 dB (pysepm): when
# the loudest Hann-windowed frame of either signal has an RMS under this, those absolute
# constants decide the values (fw_seg_snr drifted at 1e-10, wss to "perfect" at 1e-7).
MIN_FRAME_RMS = 1e-6
SEG_SNR_RESOLUTION_DB = 1e-6  # seg_snr is an error when its ε moves the mean by more
# Below this energy of a signal's loudest windowed frame, products of its samples fall
# toward float64's smallest normal number (2.2e-308) and lose their digits: at 1e-310
# amplitude every frame energy was 0, seg_snr gave −10 dB as if it were a value and LLR
# called the frames digitally silent (the LLR drifts from an amplitude of about 1e-155).
# tiny/eps² (4.5e-277) keeps two mantissas of margin; a frame holding one last bit of
# 16-bit audio is over 1e260 times louder.
MIN_FRAME_ENERGY = np.finfo(np.float64).tiny / EPS**2
# 25 critical bands (centre, bandwidth in Hz) and their filter shape, as in composite.m.
CENTRES = np.array([
    50.0, 120.0, 190.0, 260.0, 330.0, 400.0, 470.0, 540.0, 617.372, 703.378, 798.717,
    904.128, 1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08,
    2446.71, 2701.97, 2978.04, 3276.17, 3597.63])
BANDWIDTHS = np.array([
    70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 77.3724, 86.0056, 95.3398, 105.411, 116.256,
    127.914, 140.423, 153.823, 168.154, 183.457, 199.776, 217.153, 235.631, 255.255,
    276.072, 298.126, 321.465, 346.136])


def classic_rate(fs: int) -> int:
    """The rate the classic measures run at for input at ``fs`` Hz: 16 kHz when
    ``fs ≥ 16 kHz`` (higher rates are resampled down), 8 kHz when ``8 ≤ fs < 16 kHz``.

    Loizou's measures and the composites were defined and fitted on 8 and 16 kHz speech,
    and the VoiceBank-DEMAND tables compute them at 16 kHz. At 48 kHz an order-16 LPC
    spans 24 kHz of mostly empty spectrum: its normal equations are so ill-conditioned
    that the LLR depends on the linear-algebra build in the fifth digit.

    Raises:
        NotApplicableError: ``fs`` below 8 kHz.

    Example:
        >>> classic_rate(48000), classic_rate(16000), classic_rate(11025)
        (16000, 16000, 8000)
    """
    if fs >= WIDE_RATE:
        return WIDE_RATE
    if fs >= NARROW_RATE:
        return NARROW_RATE
    raise NotApplicableError(f"the classic measures need audio at ≥ 8 kHz; this pair is at "
                             f"{fs} Hz")


def _framing(fs: int) -> tuple[int, int]:
    """(frame length, hop) in samples."""
    return round(FRAME_SECONDS * fs), int(np.floor((1 - OVERLAP) * FRAME_SECONDS * fs))


def _hann(length: int) -> np.ndarray:
    return 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, length + 1) / (length + 1)))


def _windowed(x: np.ndarray, length: int, hop: int, first: int, last: int,
              offset: float = 0.0) -> np.ndarray:
    """Frames ``first … last − 1`` of ``x + offset``, windowed: ``(..., frames, length)``."""
    segment = x[..., first * hop:(last - 1) * hop + length]
    if offset:
        segment = segment + offset
    view = np.lib.stride_tricks.sliding_window_view(segment, length, axis=-1)[..., ::hop, :]
    return _hann(length) * view


def _mean_of_lowest(values: np.ndarray) -> np.ndarray:
    """The mean of the lowest 95 % of ``values`` along the last axis."""
    keep = int(round(values.shape[-1] * KEEP))
    return np.mean(np.sort(values, axis=-1)[..., :keep], axis=-1)


# --- per-frame values ------------------------------------------------------------------

def _seg_snr_frames(clean: np.ndarray, processed: np.ndarray) -> np.ndarray:
    """Frame SNR in dB, clipped to [−10, 35], from windowed frames: ``(2, ..., frames)``,
    pysepm's value (ε in the ratio) and the value without ε (to see whether ε decided)."""
    signal = np.sum(clean**2, axis=-1)
    noise = np.sum((clean - processed) ** 2, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = np.where(signal == 0, SNR_FLOOR, 10 * np.log10(signal / noise))
    return np.clip(np.stack([10 * np.log10(signal / (noise + EPS) + EPS), exact]),
                   SNR_FLOOR, SNR_CEILING)


def _band_filters(fs: int, n_half: int) -> np.ndarray:
    """The 25 critical-band filters over ``n_half`` FFT bins, shape ``(25, n_half)``."""
    f0 = np.floor(CENTRES / (fs / 2) * n_half)[:, None]
    width = (BANDWIDTHS / (fs / 2) * n_half)[:, None]
    norm = np.log(BANDWIDTHS[0]) - np.log(BANDWIDTHS)[:, None]
    filters = np.exp(-11 * ((np.arange(n_half) - f0) / width) ** 2 + norm)
    return filters * (filters > np.exp(-30.0 / (2.0 * 2.303)))  # cut below −30 dB


def _magnitudes(frames: np.ndarray, n_fft: int) -> np.ndarray:
    """``|STFT|`` of windowed frames as scipy's ``stft`` gives it (scaled by 1/Σw), the
    Nyquist bin dropped: ``(..., frames, n_fft/2)``."""
    window_sum = _hann(frames.shape[-1]).sum()
    return np.abs(np.fft.rfft(frames, n_fft, axis=-1)[..., : n_fft // 2] / window_sum)


def _fw_seg_snr_frames(clean_magnitude, processed_magnitude, filters) -> np.ndarray:
    clean = (clean_magnitude / clean_magnitude.sum(-1, keepdims=True)) @ filters.T
    processed = (processed_magnitude / processed_magnitude.sum(-1, keepdims=True)) @ filters.T
    error = np.maximum((clean - processed) ** 2, EPS)
    weights = clean**FW_GAMMA
    snr = np.sum(weights * 10 * np.log10(clean**2 / error), -1) / np.sum(weights, -1)
    return np.clip(snr, SNR_FLOOR, SNR_CEILING)


def _peaks(slope: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Klatt's nearest spectral peak of each band, as pysepm's ``find_loc_peaks``: on a
    rising slope the level of the band before the next non-rising slope, on a falling one
    the level of the band after the last rising slope."""
    bands = np.arange(slope.shape[-1])
    last = slope.shape[-1]  # a rise that never ends stops at the last slope
    next_flat = np.where(slope <= 0, bands, last)
    next_flat = np.flip(np.minimum.accumulate(np.flip(next_flat, -1), axis=-1), -1)
    previous_rise = np.maximum.accumulate(np.where(slope > 0, bands, -1), axis=-1)
    index = np.where(slope > 0, next_flat - 1, previous_rise + 1)
    return np.take_along_axis(level, index, axis=-1)


def _wss_frames(clean_magnitude, processed_magnitude, filters, window_sum) -> np.ndarray:
    scale = np.sqrt(1.0 / window_sum**2)

    def levels(magnitude):  # dB per band, floored at −100: (..., frames, 25)
        return np.maximum(10 * np.log10(((magnitude / scale) ** 2) @ filters.T), -100.0)

    def weights(level, slope):
        below_max = K_MAX / (K_MAX + level.max(-1, keepdims=True) - level[..., :-1])
        below_peak = K_LOCMAX / (K_LOCMAX + _peaks(slope, level) - level[..., :-1])
        return below_max * below_peak

    clean, processed = levels(clean_magnitude), levels(processed_magnitude)
    clean_slope, processed_slope = np.diff(clean, axis=-1), np.diff(processed, axis=-1)
    w = (weights(clean, clean_slope) + weights(processed, processed_slope)) / 2.0
    return np.sum(w * (clean_slope - processed_slope) ** 2, -1) / np.sum(w, -1)


def _lpc(autocorrelation: np.ndarray) -> np.ndarray:
    """LPC polynomials ``[1, −a_1, …, −a_P]`` by Levinson–Durbin, for every frame at once
    (the loop is over the model order, not the frames)."""
    order = autocorrelation.shape[-1] - 1
    a = np.zeros(autocorrelation.shape[:-1] + (order,))
    error = autocorrelation[..., 0]
    for i in range(order):
        previous = a[..., :i].copy()
        known = np.sum(previous * autocorrelation[..., i:0:-1], axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            reflection = (autocorrelation[..., i + 1] - known) / error
        a[..., i] = reflection
        a[..., :i] = previous - reflection[..., None] * previous[..., ::-1]
        error = (1 - reflection * reflection) * error
    return np.concatenate([np.ones(a.shape[:-1] + (1,)), -a], axis=-1)


def _llr_frames(clean: np.ndarray, processed: np.ndarray, order: int) -> np.ndarray:
    """Per-frame ``ln`` of the LPC residual-energy ratio (unclipped), from windowed
    frames. Non-positive ratios count as 1000, as in pysepm; a digitally silent frame has
    no LPC model and gives NaN, which sorts last, so like pysepm the 95 % cut may drop
    it."""
    def autocorrelation(frames):
        n = frames.shape[-1]
        return np.stack([np.sum(frames[..., : n - k] * frames[..., k:], axis=-1)
                         for k in range(order + 1)], axis=-1)

    clean_r, processed_r = autocorrelation(clean), autocorrelation(processed)
    lags = np.abs(np.subtract.outer(np.arange(order + 1), np.arange(order + 1)))
    toeplitz = clean_r[..., lags]  # R_s for each frame: (..., frames, P+1, P+1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a_clean, a_processed = _lpc(clean_r), _lpc(processed_r)
        ratio = (np.einsum("...i,...ij,...j->...", a_processed, toeplitz, a_processed)
                 / np.einsum("...i,...ij,...j->...", a_clean, toeplitz, a_clean))
        return np.log(np.where(ratio <= 0, 1000.0, ratio))


def _llr(frames: np.ndarray, ceiling: float = np.inf):
    """The LLR from per-frame values, or a :class:`MetricError` when silent frames are
    too many for the 95 % cut to drop."""
    value = _mean_of_lowest(np.minimum(frames, ceiling))
    if not np.all(np.isfinite(value)):
        undefined = int(np.max(np.sum(~np.isfinite(frames), axis=-1)))
        return MetricError(
            f"LLR is undefined: {undefined} of {frames.shape[-1]} frames are digitally silent "
            "(all zeros) in the reference or the estimate, more than the 5 % the measure "
            "drops; a silent frame has no LPC model (pysepm and Loizou's code give NaN)")
    return as_output(value)


# --- the frames, a chunk at a time -------------------------------------------------------

def _frame_counts(n: int, fs: int) -> tuple[int, int]:
    """(frames for seg_snr and llr, frames for the spectra), as pysepm counts them: every
    whole frame but the last (``extract_overlapped_windows``), and ``int(n/hop − N/hop)``
    (its ``stft``)."""
    length, hop = _framing(fs)
    whole = (n - (length - hop)) // hop
    spectra = int(n / hop - length / hop)
    if min(whole, spectra) < 2:
        raise MetricError(f"too short for the classic measures: {n} samples give "
                          f"{max(min(whole, spectra), 0)} frames of {length}; at least 2 are "
                          "needed")
    return whole - 1, spectra


def _per_frame(s: np.ndarray, s_hat: np.ndarray, fs: int) -> dict[str, np.ndarray]:
    """Every per-frame value of the four measures, ``(..., frames)`` each, computed a
    chunk of frames at a time so that memory does not grow with the length."""
    length, hop = _framing(fs)
    n_time, n_spectra = _frame_counts(s.shape[-1], fs)
    n_fft = int(2 ** np.ceil(np.log2(2 * length)))
    filters = _band_filters(fs, n_fft // 2)
    order = 10 if fs < 10000 else 16
    parts: dict[str, list] = {"seg_snr": [], "llr": [], "fw_seg_snr": [], "wss": [],
                              "energy": []}
    for first, last in frame_spans(max(n_time, n_spectra), hop):
        time_last, spectra_last = min(last, n_time), min(last, n_spectra)
        if time_last > first:
            clean = _windowed(s, length, hop, first, time_last)
            processed = _windowed(s_hat, length, hop, first, time_last)
            parts["seg_snr"].append(_seg_snr_frames(clean, processed))
            parts["llr"].append(_llr_frames(clean, processed, order))
            parts["energy"].append(np.stack([np.sum(clean**2, -1), np.sum(processed**2, -1)]))
        if spectra_last > first:
            # ε is added to both signals before their spectra, as in pysepm
            clean_magnitude = _magnitudes(_windowed(s, length, hop, first, spectra_last, EPS),
                                          n_fft)
            processed_magnitude = _magnitudes(
                _windowed(s_hat, length, hop, first, spectra_last, EPS), n_fft)
            parts["fw_seg_snr"].append(
                _fw_seg_snr_frames(clean_magnitude, processed_magnitude, filters))
            parts["wss"].append(_wss_frames(clean_magnitude, processed_magnitude, filters,
                                            _hann(length).sum()))
    return {name: np.concatenate(values, axis=-1) for name, values in parts.items()}


def _seg_snr(frames: np.ndarray):
    """The mean of pysepm's frame SNRs, or a :class:`MetricError` when its ε moved it."""
    value, exact = np.mean(frames, axis=-1)
    if np.any(np.abs(value - exact) > SEG_SNR_RESOLUTION_DB):
        return MetricError(
            "too quiet for seg_snr: the frames' energies are so small that the ε (float64 "
            f"eps) in the frame SNR moves the mean by {float(np.max(np.abs(value - exact))):.2g} "
            "dB. Check the files' level.")
    return as_output(value)


def _level_error(energy: np.ndarray, length: int) -> MetricError | None:
    """Why fw_seg_snr and wss cannot resolve these signals' level, or None."""
    loudest = float(np.min(np.sqrt(np.max(energy, axis=-1) / length)))  # weaker signal
    if loudest >= MIN_FRAME_RMS:
        return None
    return MetricError(
        f"too quiet for fw_seg_snr and wss: a signal's loudest frame has RMS {loudest:.3g}, "
        f"below {MIN_FRAME_RMS:g}, where pysepm's absolute constants (ε added to the "
        "signals, band levels floored at −100 dB) decide the values. Check the files' level.")


def _require_resolvable(energy: np.ndarray) -> None:
    """Raise :class:`MetricError` when a signal's loudest frame energy (``energy``:
    ``(2, ..., frames)``, reference then estimate) is under :data:`MIN_FRAME_ENERGY`."""
    loudest = np.max(energy, axis=-1)
    for name, level in zip(("reference", "estimate"), loudest):
        if np.any(level < MIN_FRAME_ENERGY):
            raise MetricError(
                f"{name} is too quiet for the classic measures: its loudest frame has energy "
                f"Σx² = {float(np.min(level)):.3g}, below {MIN_FRAME_ENERGY:.3g}, where the "
                "products of its samples underflow float64 (smallest normal number 2.2e-308) "
                "and lose their digits. Check the file's level (a float file scaled by a tiny "
                "factor?).")


def _value(result, name: str):
    """A member of a family result, raising its :class:`MetricError` if it has one."""
    value = result[name]
    if isinstance(value, MetricError):
        raise value
    return value


# --- public functions ---------------------------------------------------------------

def classic_measures(*, reference, estimate, fs: int) -> dict[str, float | np.ndarray]:
    """``seg_snr``, ``fw_seg_snr``, ``llr`` and ``wss`` together, sharing frames and
    spectra, at :func:`classic_rate` (signals at another rate are resampled with
    ``resample_poly``). Shapes ``(..., time)``; both the same length. Also returns
    ``llr_unclipped``, the LLR without the clip at 2, which the composites use.

    Returns:
        metric name → value; a member that cannot be computed (LLR with too many silent
        frames) holds the :class:`MetricError` saying why instead.

    Raises:
        NotApplicableError: ``fs`` below 8 kHz.
        MetricError: shapes differ, non-finite samples, a silent signal, fewer than
            two frames, or a signal too quiet or too loud for float64's range.
    """
    rate = classic_rate(int(fs))
    s, s_hat = as_pair(reference, estimate, headroom_for="the classic measures")
    if rate != int(fs):
        s, s_hat = resample(s, int(fs), rate), resample(s_hat, int(fs), rate)
    frames = _per_frame(s, s_hat, rate)
    _require_resolvable(frames["energy"])
    quiet = _level_error(frames["energy"], _framing(rate)[0])
    return {
        "seg_snr": _seg_snr(frames["seg_snr"]),
        "fw_seg_snr": quiet or as_output(np.mean(frames["fw_seg_snr"], axis=-1)),
        "llr": _llr(frames["llr"], LLR_CEILING),
        "wss": quiet or as_output(_mean_of_lowest(frames["wss"])),
        "llr_unclipped": _llr(frames["llr"]),
    }


def composite(*, reference, estimate, fs: int, measures=None,
              mos=None) -> dict[str, float | np.ndarray]:
    """Hu & Loizou's composite measures ``csig``, ``cbak`` and ``covl``, each in [1, 5].

    ``fs`` must be 16 kHz (the scorer resamples higher rates; below it wide-band PESQ,
    and so the composites, do not apply).

    Args:
        reference, estimate: shape ``(..., time)``, the same length, at 16 kHz.
        measures: the result of :func:`classic_measures` for this pair, if already
            computed (the scorer passes it, so nothing is computed twice).
        mos: the wide-band PESQ of this pair, if already computed. The scorer passes the
            file's ``pesq_wb`` value, which PESQ computes on the two whole signals (it
            aligns them itself); the other ingredients use the common prefix.

    Returns:
        metric name → value, or the :class:`MetricError` of a member that cannot be
        computed (``csig`` and ``covl`` need the LLR).

    Raises:
        NotApplicableError: ``fs`` is not 16 kHz.
        MetricError: as :func:`classic_measures` and :func:`~sqeval.metrics.pesq_wb`.
    """
    from .pesq import WIDE_BAND_RATE, pesq_wb

    if int(fs) != WIDE_BAND_RATE:
        raise NotApplicableError(f"the composite measures use wide-band PESQ at 16 kHz; "
                                 f"this pair is at {fs} Hz")
    if measures is None:
        measures = classic_measures(reference=reference, estimate=estimate, fs=fs)
    if mos is None:
        mos = pesq_wb(reference=reference, estimate=estimate, fs=WIDE_BAND_RATE)
    mos = np.asarray(mos)
    given = {"llr": measures["llr_unclipped"], "wss": measures["wss"], "seg": measures["seg_snr"]}

    def rating(formula, *uses):  # Hu & Loizou 2008, clipped to [1, 5]
        for name in uses:
            if isinstance(given[name], MetricError):
                return given[name]
        return as_output(np.clip(formula(*(given[name] for name in uses)), 1, 5))

    return {
        "csig": rating(lambda llr, wss: 3.093 - 1.029 * llr + 0.603 * mos - 0.009 * wss,
                       "llr", "wss"),
        "cbak": rating(lambda wss, seg: 1.634 + 0.478 * mos - 0.007 * wss + 0.063 * seg,
                       "wss", "seg"),
        "covl": rating(lambda llr, wss: 1.594 + 0.805 * mos - 0.512 * llr - 0.007 * wss,
                       "llr", "wss"),
    }


def seg_snr(*, reference, estimate, fs: int):
    """Segmental SNR in dB, frames clipped to [−10, 35]; higher is better.

    Example:
        >>> import numpy as np
        >>> s = np.random.default_rng(0).standard_normal(8000)
        >>> seg_snr(reference=s, estimate=s, fs=16000)  # every frame at the 35 dB ceiling
        35.0
    """
    return _value(classic_measures(reference=reference, estimate=estimate, fs=fs), "seg_snr")


def fw_seg_snr(*, reference, estimate, fs: int):
    """Frequency-weighted segmental SNR in dB, in [−10, 35]; higher is better."""
    return _value(classic_measures(reference=reference, estimate=estimate, fs=fs), "fw_seg_snr")


def llr(*, reference, estimate, fs: int):
    """Log-likelihood ratio, frames clipped at 2, lowest 95 %; lower is better, 0 at
    identity."""
    return _value(classic_measures(reference=reference, estimate=estimate, fs=fs), "llr")


def wss(*, reference, estimate, fs: int):
    """Weighted spectral slope distance, lowest 95 % of frames; lower is better, 0 at
    identity."""
    return _value(classic_measures(reference=reference, estimate=estimate, fs=fs), "wss")


def csig(*, reference, estimate, fs: int):
    """Composite signal-distortion rating (1–5); higher is better."""
    return _value(composite(reference=reference, estimate=estimate, fs=fs), "csig")


def cbak(*, reference, estimate, fs: int):
    """Composite background-intrusiveness rating (1–5); higher is better."""
    return _value(composite(reference=reference, estimate=estimate, fs=fs), "cbak")


def covl(*, reference, estimate, fs: int):
    """Composite overall-quality rating (1–5); higher is better."""
    return _value(composite(reference=reference, estimate=estimate, fs=fs), "covl")
