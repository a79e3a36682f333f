"""PMSQE: the Perceptual Metric for Speech Quality Evaluation, a PESQ-like training loss.

J. M. Martín-Doñas, A. M. Gomez, J. A. Gonzalez, A. M. Peinado, "A Deep Learning Loss
Function Based on the Perceptual Evaluation of the Speech Quality", IEEE Signal Processing
Letters 25(11), 2018. It keeps the parts of ITU-T P.862 (PESQ) that are differentiable
frame by frame: level alignment, the Bark spectrum, frequency and gain equalisation,
loudness, the symmetric and asymmetric disturbances and their weighting; it drops time
alignment and the Lp pooling over splits. Defined for 16 kHz speech and 512-point frames.

The constants are those of P.862 as published (its tables and the constants of its
reference C code, files ``pesqpar.h`` and ``pesqmod.c``), or derived from them as noted
beside each one; the level-alignment bins are those of the authors' implementation. The
definition follows the authors' code as ported to PyTorch by asteroid
(``asteroid.losses.SingleSrcPMSQE``, defaults: sqrt-Hann window, Bark and gain
equalisation, 16 kHz), which the tests compare with.
"""

from __future__ import annotations

import numpy as np

from ._backend import is_tensor, prepare

# --- the expected input ------------------------------------------------------------------
SAMPLE_RATE = 16000  # Hz
N_FFT = 512  # frame length and DFT size (32 ms at 16 kHz)
N_BINS = N_FFT // 2 + 1  # 257 one-sided bins, 31.25 Hz apart
# Power correction of the analysis window: N / Σ w[n]². For the periodic sqrt-Hann window
# w[n] = sin(π n / N), Σ w² = N/2 exactly, so 2 (the authors' "sqrt_hann" factor).
WINDOW_POWER_CORRECTION = 2.0

# --- P.862 level alignment ---------------------------------------------------------------
# P.862 scales both signals to the same average power, TARGET_AVG_POWER = 1e7, measured in
# the band 350 Hz to 3.25 kHz. The authors measure it on the power spectrum with these
# weights per bin: 0.4 (= 0.5 · 25/31.25) for bin 11 (343.75 Hz), 1 for bins 12 to 103,
# 0.5 for bin 104 (3250 Hz), 0 elsewhere.
TARGET_POWER = 1e7
LEVEL_BINS = np.zeros(N_BINS)
LEVEL_BINS[11] = 0.5 * 25.0 / 31.25
LEVEL_BINS[12:104] = 1.0
LEVEL_BINS[104] = 0.5
# A frame of one-sided power spectrum X[k] of a window-w frame has an average power per
# sample of about (2/N²) · (N/Σw²) · Σ_k X[k] (Parseval, the one-sided half counted twice).
LEVEL_SCALE = 2.0 * WINDOW_POWER_CORRECTION / N_FFT**2

# --- P.862 Bark bands at 16 kHz (pesqpar.h) ------------------------------------------------
# Number of consecutive DFT bins in each of the 49 bands, from bin 0 (nr_of_hz_bands_per_
# bark_band_16k); they cover bins 0 to 255, and the Nyquist bin 256 is in no band.
BINS_PER_BAND = (1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                 3, 3, 3, 3, 4, 3, 4, 5, 4, 5, 6, 6, 7, 8, 9, 9, 12, 12, 15, 16, 18, 21, 25,
                 20)
# The power density correction of each band (pow_dens_correction_factor_16k), which
# multiplies the sum of the band's bins.
POW_DENS_CORRECTION = (
    100.000000, 99.999992, 100.000000, 100.000008, 100.000008, 100.000015, 99.999992,
    99.999969, 50.000027, 100.000000, 99.999969, 100.000015, 99.999947, 100.000061,
    53.047077, 110.000046, 117.991989, 65.000000, 68.760147, 69.999931, 71.428818,
    75.000038, 76.843384, 80.968781, 88.646126, 63.864388, 68.155350, 72.547775,
    75.584831, 58.379192, 80.950836, 64.135651, 54.384785, 73.821884, 64.437073,
    59.176456, 65.521278, 61.399822, 58.144047, 57.004543, 64.126297, 54.311001,
    61.114979, 55.077751, 56.849335, 55.628868, 53.137054, 54.985844, 79.546974)
# The width of each band in Bark (width_of_band_bark_16k). The bands tile the Bark axis
# from 0, so the centre of band j is Σ_{i<j} width_i + width_j / 2 (this gives P.862's
# centre_of_band_bark_16k to within 4e-6 Bark, the rounding of the printed widths).
BAND_WIDTH_BARK = np.array([
    0.157344, 0.317994, 0.322441, 0.326934, 0.331474, 0.336061, 0.340697, 0.345381,
    0.350114, 0.354897, 0.359729, 0.364611, 0.369544, 0.374529, 0.379565, 0.384653,
    0.389794, 0.394989, 0.400236, 0.405538, 0.410894, 0.416306, 0.421773, 0.427297,
    0.432877, 0.438514, 0.444209, 0.449962, 0.455774, 0.461645, 0.467577, 0.473569,
    0.479621, 0.485736, 0.491912, 0.498151, 0.504454, 0.510819, 0.517250, 0.523745,
    0.530308, 0.536934, 0.543629, 0.550390, 0.557220, 0.564119, 0.571085, 0.578125,
    0.585232])
N_BANDS = len(BAND_WIDTH_BARK)  # 49
BAND_CENTRE_BARK = np.cumsum(BAND_WIDTH_BARK) - BAND_WIDTH_BARK / 2
# The absolute hearing threshold of each band in dB; P.862's abs_thresh_power_16k is
# 10^(T/10) of these, to the precision it is printed with (1.8e-6 relative at most).
HEARING_THRESHOLD_DB = np.array([
    77.1, 63.9, 48.5, 36.9, 30.7, 25.9, 20.2, 16.6, 12.5, 9.9, 6.9, 4.9, 2.8, 1.0, -0.1,
    -1.4, -2.5, -3.4, -4.1, -4.8, -5.3, -5.7, -5.9, -6.0, -6.0, -6.0, -6.0, -5.8, -5.4,
    -5.1, -4.7, -4.3, -4.0, -3.6, -3.3, -3.1, -3.0, -3.0, -2.9, -2.8, -2.8, -2.8, -2.9,
    -3.2, -3.7, -4.3, -4.4, -3.8, -2.7])
HEARING_THRESHOLD = 10.0 ** (HEARING_THRESHOLD_DB / 10)
SP = 6.910853e-6  # Sp_16k: power calibration of the Bark spectrum
SL = 1.866055e-1  # Sl_16k: loudness calibration
# Zwicker's loudness exponent 0.23, raised below 4 Bark (pesqmod.c):
# γ_j = 0.23 · min(max(6 / (z_j + 2), 1), 2)^0.15 for the band centre z_j in Bark.
ZWICKER_POWER = 0.23 * np.clip(6.0 / (BAND_CENTRE_BARK + 2.0), 1.0, 2.0) ** 0.15


def bark_matrix() -> np.ndarray:
    """The ``(257, 49)`` matrix ``H`` that maps a power spectrum to P.862's Bark bands:
    ``H[k, j]`` is band j's power density correction for each bin k of band j, else 0."""
    matrix = np.zeros((N_BINS, N_BANDS))
    start = 0
    for band, (count, factor) in enumerate(zip(BINS_PER_BAND, POW_DENS_CORRECTION)):
        matrix[start:start + count, band] = factor
        start += count
    return matrix


BARK_MATRIX = bark_matrix()

# --- P.862 equalisation and disturbance constants (pesqmod.c) ----------------------------
ACTIVE_FACTOR = 100.0  # frequency equalisation: bands above 100 × the hearing threshold ...
ACTIVE_POWER = 1e7  # ... of frames whose audible reference power (so counted) is ≥ 1e7
FREQ_EQ_OFFSET = 1000.0  # (Σ ref + 1000) / (Σ deg + 1000) per band ...
FREQ_EQ_RANGE = (0.01, 100.0)  # ... limited to this range
GAIN_EQ_OFFSET = 5e3  # (audible ref + 5e3) / (audible deg + 5e3) per frame ...
GAIN_EQ_RANGE = (3e-4, 5.0)  # ... limited to this range
MASKING = 0.25  # the disturbance is clipped by 0.25 × the smaller of the two loudnesses
ASYMMETRY_OFFSET = 50.0  # asymmetry factor ((deg + 50) / (ref + 50))^1.2 ...
ASYMMETRY_POWER = 1.2
ASYMMETRY_RANGE = (3.0, 12.0)  # ... 0 below 3, at most 12
WEIGHT_OFFSET, WEIGHT_SCALE, WEIGHT_POWER = 1e5, 1e7, 0.04  # ((P + 1e5) / 1e7)^0.04
FRAME_CAP = 45.0  # the per-frame disturbances are limited to 45
# PESQ = 4.5 − 0.1 · d_sym − 0.0309 · d_asym: PMSQE is the frame average of the part
# 0.1 · d_sym + 0.0309 · d_asym (the paper's α = 0.1 and β = 0.309 · α).
ALPHA = 0.1
BETA = 0.309 * ALPHA

# --- floors --------------------------------------------------------------------------------
# The reference's ε: the clipped disturbance D is at least 1e-8 (so it is never exactly 0),
# and 1e-8 is added to each band's (D·W)² inside the square root of the symmetric norm (so
# the root, and its gradient, never meet 0). Both are part of the definition: they give
# identical spectra their small positive loss.
DISTURBANCE_EPS = 1e-8
# sqeval's own: the band power that level alignment divides by is at least 1e-20 (in the
# input's units). The reference divides by it as it is, so a silent reference or estimate
# (power 0) gives 0/0 = NaN; here a silent spectrum stays silent (0), whose loudness is 0,
# and a non-silent one is unchanged as long as its power is above 1e-20, far below that of
# any recorded speech in any usual spectrum scaling (16-bit dither is ~1e-11 for samples in
# [-1, 1] and an unnormalised DFT).
POWER_FLOOR = 1e-20
# sqeval's own: the number of (unpadded) frames is at least 1, so an item whose frames are
# all padding gets a loss of 0 rather than 0/0.
FRAME_COUNT_FLOOR = 1.0


def pmsqe_loss(*, reference, estimate, pad_mask=None, reduction: str = "mean"):
    r"""PMSQE loss between the power spectra of a reference and an estimate (lower is better).

    Input: power spectra ``|STFT|²`` of shape ``(..., frames, 257)``: frames of 512 samples
    of 16 kHz speech, windowed with the periodic sqrt-Hann window ``sin(π n / 512)`` (the
    square-root of a Hann window, as used for perfect-reconstruction STFTs), one-sided DFT;
    a hop of 256 (50 %) is usual. The overall scale of each spectrum does not matter (each
    is level-aligned on its own), so any DFT normalisation will do; the window does, by a
    constant level factor. Magnitudes are not power spectra: square them first.

    Per item, with ``X[t, k]`` the spectrum, ``w_t`` the frame mask (1 without padding),
    ``m_k`` the level-alignment bin weights, ``H`` the Bark matrix, ``T_j`` the hearing
    threshold, ``γ_j`` the loudness exponent and ``W_j`` the width in Bark of band j, and
    ``Sp``, ``Sl`` P.862's power and loudness calibration constants (module constants):

    1. level alignment: ``P = (4/N²) Σ_t w_t Σ_k m_k X[t,k] / Σ_t w_t`` (average power in
       350–3250 Hz, N = 512), ``X ← 1e7 · X / max(P, 1e-20)``;
    2. Bark spectrum: ``B = Sp · X H``, for both reference (R) and estimate (E);
    3. frequency equalisation: over the frames whose audible reference power
       ``Σ_j R[t,j]·[R[t,j] > 100 T_j]`` is ≥ 1e7, and the bands where ``R ≥ 100 T_j``:
       ``E[:,j] ← clip((ΣR + 1000)/(ΣE + 1000), 0.01, 100) · E[:,j]``;
    4. gain equalisation: ``E[t] ← clip((A_R(t) + 5e3)/(A_E(t) + 5e3), 3e-4, 5) · E[t]``
       with ``A(t) = Σ_j B[t,j]·[B[t,j] > T_j]`` the audible power;
    5. loudness: ``L = Sl (T_j/0.5)^γ_j ((0.5 + 0.5 B/T_j)^γ_j − 1)`` where ``B ≥ T_j``,
       else 0;
    6. disturbance ``D = max(|L_E − L_R| − 0.25 min(L_E, L_R), ε)``, and the asymmetric
       one ``D_A = h · D`` with ``h = min(((E + 50)/(R + 50))^1.2, 12)``, set to 0 where
       it is below 3;
    7. per frame, with ``ω_t = ((A_R(t) + 1e5)/1e7)^0.04``:
       ``d_t = min(√(Σ_j ((D W_j)² + ε)) · √(Σ_j W_j) / ω_t, 45)`` and
       ``a_t = min(Σ_j D_A W_j / ω_t, 45)``;
    8. ``PMSQE = Σ_t w_t (0.1 d_t + 0.0309 a_t) / Σ_t w_t``: the plain average over the
       (unpadded) frames, silent frames included (the authors' convention).

    ``ε = 1e-8`` (``DISTURBANCE_EPS``). Identical spectra give a small positive value
    (of the order of 1e-4, from ε), not 0. A silent (or nearly silent) estimate gets a
    zero gradient: all its bands are below the hearing threshold, where the loudness is 0
    whatever the input, so a model whose outputs are all silent cannot learn from this loss
    alone.

    Args:
        reference: clean power spectrum, ``(..., frames, 257)``, non-negative.
        estimate: enhanced power spectrum, same shape.
        pad_mask: optional, broadcastable to ``(..., frames)``: 1 for real frames, 0 for
            padding (numpy for numpy inputs, a tensor on the same device for tensors).
            Padded frames count neither in the level alignment, the frequency equalisation
            nor the average. Without one, every frame counts.
        reduction: ``"mean"`` (default) or ``"sum"`` of the per-item values over the
            leading axes, or ``"none"`` for the values themselves, shape ``(...)``.

    Returns:
        numpy inputs: a float (or a float64 array for ``"none"``); tensors: a tensor of
        their dtype and device, differentiable.

    Raises:
        ValueError: not ``(..., frames, 257)``; shapes that differ; negative, NaN or Inf
            values; a bad ``pad_mask``; an unknown ``reduction``.

    Differences from ``asteroid.losses.SingleSrcPMSQE`` (otherwise equal, see the tests):
    a silent reference or estimate gives a finite value and gradient here (NaN there, from
    0/0 in the level alignment); padded frames are left out of the frequency equalisation
    (asteroid leaves them in, which changes nothing when the padded reference frames are
    zero, as it asks); the layout is always ``(..., frames, 257)``; float64 constants.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> t = np.arange(16000) / 16000
        >>> clean = np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
        >>> noisy = clean + 0.01 * rng.standard_normal(t.size)
        >>> window = np.sin(np.pi * np.arange(512) / 512)  # periodic sqrt-Hann
        >>> def power_spectrum(x):  # 512-point frames, hop 256: (frames, 257)
        ...     frames = np.lib.stride_tricks.sliding_window_view(x, 512)[::256]
        ...     return np.abs(np.fft.rfft(frames * window)) ** 2
        >>> reference = power_spectrum(clean)
        >>> reference.shape
        (61, 257)
        >>> round(pmsqe_loss(reference=reference, estimate=power_spectrum(noisy)), 4)
        2.0751
        >>> round(pmsqe_loss(reference=reference, estimate=reference), 6)
        0.000213
    """
    ops, (x_ref, x_deg) = prepare({"reference": reference, "estimate": estimate},
                                  reduction=reduction, min_ndim=2,
                                  layout=f"(..., frames, {N_BINS})")
    if x_ref.shape[-1] != N_BINS:
        raise ValueError(f"reference and estimate must have shape (..., frames, {N_BINS}) "
                         f"(one-sided power spectra of {N_FFT}-point frames at "
                         f"{SAMPLE_RATE} Hz); got {tuple(x_ref.shape)}")
    for name, x in (("reference", x_ref), ("estimate", x_deg)):
        if bool((x < 0).any()):
            raise ValueError(f"{name} has negative values; expected a power spectrum")
    mask = _frame_mask(ops, pad_mask, tuple(x_ref.shape[:-1]))  # (..., frames, 1)

    h = ops.const(BARK_MATRIX)
    threshold = ops.const(HEARING_THRESHOLD)
    frames = ops.maximum(ops.sum(mask, axis=-2, keepdims=True), FRAME_COUNT_FLOOR)
    ref = SP * (_level_aligned(ops, x_ref, mask, frames) @ h)
    deg = SP * (_level_aligned(ops, x_deg, mask, frames) @ h)

    # 3. frequency equalisation of the estimate, on the active frames and bands
    active_frames = (_audible_power(ops, ref, threshold * ACTIVE_FACTOR) >= ACTIVE_POWER) & (
        mask > 0)
    active = active_frames & (ref >= threshold * ACTIVE_FACTOR)
    zero = ops.zeros_like(ref)
    ref_total = ops.sum(ops.where(active, ref, zero), axis=-2, keepdims=True)
    deg_total = ops.sum(ops.where(active, deg, zero), axis=-2, keepdims=True)
    deg = _clip(ops, (ref_total + FREQ_EQ_OFFSET) / (deg_total + FREQ_EQ_OFFSET),
                *FREQ_EQ_RANGE) * deg
    # 4. gain equalisation of the estimate, frame by frame
    audible_ref = _audible_power(ops, ref, threshold)
    audible_deg = _audible_power(ops, deg, threshold)
    deg = _clip(ops, (audible_ref + GAIN_EQ_OFFSET) / (audible_deg + GAIN_EQ_OFFSET),
                *GAIN_EQ_RANGE) * deg

    # 5.–6. loudness and disturbances
    loud_ref = _loudness(ops, ref, threshold)
    loud_deg = _loudness(ops, deg, threshold)
    clipped = ops.abs(loud_deg - loud_ref) - MASKING * ops.minimum(loud_ref, loud_deg)
    disturbance = ops.maximum(clipped, DISTURBANCE_EPS)
    ratio = ((deg + ASYMMETRY_OFFSET) / (ref + ASYMMETRY_OFFSET)) ** ASYMMETRY_POWER
    low, high = ASYMMETRY_RANGE
    asymmetry = ops.where(ratio < low, ops.zeros_like(ratio), _clip(ops, ratio, None, high))

    # 7. per-frame norms over the bands, weighted by the audible reference power
    width = ops.const(BAND_WIDTH_BARK)
    d_sym = ops.sqrt(ops.sum((disturbance * width) ** 2 + DISTURBANCE_EPS, axis=-1,
                             keepdims=True)) * float(np.sqrt(np.sum(BAND_WIDTH_BARK)))
    d_asym = ops.sum(asymmetry * disturbance * width, axis=-1, keepdims=True)
    weight = ((audible_ref + WEIGHT_OFFSET) / WEIGHT_SCALE) ** WEIGHT_POWER
    d_sym = _clip(ops, d_sym / weight, None, FRAME_CAP)
    d_asym = _clip(ops, d_asym / weight, None, FRAME_CAP)

    # 8. the average over the frames
    per_frame = (ALPHA * d_sym + BETA * d_asym) * mask
    value = ops.sum(per_frame, axis=(-2, -1)) / frames[..., 0, 0]
    return ops.reduce(value, reduction)


def _frame_mask(ops, pad_mask, shape):
    """The frame mask as a ``(..., frames, 1)`` array of 0/1 broadcast to ``shape + (1,)``."""
    if pad_mask is None:
        return ops.ones(shape + (1,), dtype=ops.dtype, device=ops.device) if ops.is_torch \
            else np.ones(shape + (1,))
    if ops.is_torch:
        if not is_tensor(pad_mask):
            raise ValueError("pad_mask must be a torch.Tensor when the spectra are tensors")
        if pad_mask.device != ops.device:
            raise ValueError(f"pad_mask is on {pad_mask.device} but the spectra are on "
                             f"{ops.device}")
        mask = pad_mask.detach().to(ops.dtype)
    else:
        if is_tensor(pad_mask):
            raise ValueError("pad_mask is a tensor but the spectra are not")
        mask = np.asarray(pad_mask, dtype=np.float64)
    try:
        np.broadcast_shapes(tuple(mask.shape), shape)
        full = np.broadcast_shapes(tuple(mask.shape), shape) == shape
    except ValueError:
        full = False
    if not full:
        raise ValueError(f"pad_mask must broadcast to the spectra's (..., frames) = {shape}; "
                         f"got shape {tuple(mask.shape)}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("pad_mask must hold 0 (padding) or 1 (a real frame) only")
    return ops.broadcast_to(mask, shape)[..., None] * 1.0


def _level_aligned(ops, x, mask, frames):
    """Step 1: ``x`` scaled so that its average power in 350–3250 Hz is 1e7."""
    per_frame = ops.sum(x * ops.const(LEVEL_BINS), axis=-1, keepdims=True)
    power = LEVEL_SCALE * ops.sum(per_frame * mask, axis=-2, keepdims=True) / frames
    return TARGET_POWER * x / ops.maximum(power, POWER_FLOOR)


def _audible_power(ops, bark, threshold):
    """``Σ_j B[..., j]`` over the bands where ``B > threshold``, shape ``(..., frames, 1)``."""
    return ops.sum(ops.where(bark > threshold, bark, ops.zeros_like(bark)), axis=-1,
                   keepdims=True)


def _loudness(ops, bark, threshold):
    """Step 5: Zwicker's loudness in sone of a Bark spectrum, 0 below the threshold."""
    power = ops.const(ZWICKER_POWER)
    loudness = SL * (threshold / 0.5) ** power * ((0.5 + 0.5 * bark / threshold) ** power - 1)
    return ops.where(bark < threshold, ops.zeros_like(loudness), loudness)


def _clip(ops, x, low, high):
    """``x`` limited to [low, high] (None: no limit); gradient 0 outside."""
    if ops.is_torch:
        return ops.torch.clamp(x, min=low, max=high)
    return np.clip(x, low, high)
