"""SRMR, the speech-to-reverberation modulation energy ratio, as the MATLAB SRMRToolbox
computes it.

Conventions
-----------
:func:`srmr` takes a 1-D signal and its rate and follows ``SRMR.m`` of the SRMRToolbox
(MuSAELab/SRMRToolbox, formerly jfsantos/SRMRToolbox) step by step; the four results of
the toolbox's own test (``test/test_SRMR.m``) are reproduced within 1e-12 relative:

1. Pre-processing (``preprocess.m``): the toolbox's voice activity detection ``vad_s``
   keeps the samples from the first to the last one whose power is above −50 dB of the
   peak's, less every run of more than 50 ms between two such samples (the samples
   bounding the run stay). Its P.56 level adjustment to −26 dBov (``asl_adjust``) is a
   pure gain, which every step below cancels (the ratio, the 90 % rule and the ``norm``
   clipping are all scale invariant); it is replaced by a division by the peak, which
   keeps any finite input inside float64's range.
2. Acoustic envelopes. Default: 23 gammatone channels, ERB-spaced from fs/2 down to
   125 Hz (Slaney's ``MakeERBFilters``/``ERBFilterBank``: four biquads per channel), then
   the magnitude of the analytic signal (MATLAB ``hilbert``, one FFT over the whole
   signal). ``fast=True``: Dan Ellis's ``gammatonegram`` (FFT weighting,
   ``fft2gammatonemx``) with 10 ms windows every 2.5 ms, so the envelopes are at 400 Hz.
   Its spectrogram is Ellis's ``specgram`` substitute (``myspecgram.m``): 512-sample
   frames (at 16 kHz) holding a 160-sample Hann window centred on sample 256, one frame
   every 40 samples, ``1 + fix((N − 512)/40)`` frames, no padding.
3. Modulation filterbank (``modulationFilterBank.m``): 8 second-order band-pass filters,
   Q = 2, centres log-spaced from 4 to 128 Hz (4 to 30 Hz with ``norm=True``).
4. Modulation energies (``buffer``): a symmetric Hamming window of ``ceil(0.256·r)``
   samples every ``ceil(0.064·r)`` samples (r = envelope rate), MATLAB ``buffer``'s
   framing: ``ceil(N/hop)`` frames, the first starting ``window − hop`` zeros before the
   signal and the last padded with zeros; energy = sum of the squared windowed samples.
5. ``norm=True`` only: every energy is clipped to [peak/1000, peak], peak = the largest
   channel-averaged energy of any band and frame (Santos, Senoussaoui & Falk 2014).
6. K* (the 90 % bandwidth rule, Falk et al. 2010, Sec. III-B): channel energies are the
   frame means summed over the 8 bands; the ERB of the first channel (from the lowest
   up) at which their cumulative share exceeds 90 % is compared with the lower 3-dB
   cutoffs of modulation bands 5–8 (computed at the audio rate ``fs``, as the toolbox
   does even in fast mode): it picks the last modulation band K* ∈ {5, …, 8} of the
   denominator (all channels always enter the ratio). With 4–128 Hz bands the ERB (at
   least 38.2 Hz) is always above band 6's cutoff (35.7 Hz), so K* ∈ {6, 7, 8}; with
   ``norm=True`` (cutoffs up to 22.5 Hz) K* = 8.
7. SRMR = Σ mean energy of bands 1–4 / Σ mean energy of bands 5–K*, over all 23 channels.

Higher is better (less reverberation); there is no fixed range.

Differences from SRMRpy (jfsantos/SRMRpy, which misses the toolbox's test values by up
to 11 %): it frames without ``buffer``'s leading zeros and drops the partial frames
(``1 + (N − window)//hop`` frames instead of ``ceil(N/hop)``), the main cause (−1 %,
+11 %, +8 %, +1 % on the four test values); it uses a periodic Hamming window instead of
MATLAB's symmetric one (up to 0.2 % more); it skips the VAD (no change on the test
signal, whose silences are short, but a change wherever a pause exceeds 50 ms); its
``srmr()`` defaults to the fast variant, keeps the 4–128 Hz modulation bands with
``norm=True`` unless ``max_cf=30`` is passed, and its spectrogram (the ``gammatone``
package's port of Ellis's ``specgram``) leaves the last frame empty when (N − nfft) is
a multiple of the hop. The fast variant's reference values also rule out MATLAB's own
``specgram`` (a 160-sample Hann frame, no 512-sample frame around it): it misses them by
2 %.

Rates
-----
The toolbox is tested at 8 and 16 kHz and computes other rates natively with a warning;
this function computes any integer rate from 8 kHz natively too (sqeval resamples to
16 kHz before calling, so 16 kHz is the main case). ``fast=True`` needs an even Hann
window, ``round(0.01·fs)`` (it is odd at 22.05 and 44.1 kHz, where the toolbox's
``specgram`` stops with an error): other rates raise :class:`ValueError`.

Memory and long signals
-----------------------
The gammatone channels are processed one at a time and the modulation bands one at a
time, so the peak is about three float64 copies of the (VAD-trimmed) signal plus ~10 MB,
whatever the number of channels (traced: 3.5 copies for 300 s at 16 kHz; about 3.1 for
20 minutes, 0.5 GB), and under two copies with ``fast=True``. The analytic signal of a
channel longer than ``HILBERT_BLOCK`` (2**18) samples is computed in blocks of that
size, each keeping its centre and overlapping its neighbours by ``HILBERT_OVERLAP``
(2**15) samples on each side, taken circularly from the signal as MATLAB's one FFT over
the whole signal does. The Hilbert kernel decays as 1/t, so the envelopes then differ
from the unblocked ones by up to 4e-4 of their RMS in the lowest (125 Hz) channel and
3e-5 or less above 1 kHz, and the SRMR by 3e-8 (default) and 9e-7 (``norm=True``)
relative on 60 s of speech. Up to 2**18 samples (16.4 s at 16 kHz, after the VAD) the
arithmetic is the unblocked one. The fast variant is exact at any length (its frames
are transformed in chunks, each on its own).

References
----------
- T. H. Falk, C. Zheng, W.-Y. Chan, "A non-intrusive quality and intelligibility measure
  of reverberant and dereverberated speech", IEEE TASLP 18(7), 1766–1774, 2010.
- J. F. Santos, M. Senoussaoui, T. H. Falk, "An updated objective intelligibility
  estimation metric for normal hearing listeners under noise and reverberation",
  IWAENC 2014 (the ``norm`` variant).
- SRMRToolbox (J. F. Santos, T. H. Falk), MIT licence: ``SRMR.m`` and ``libs/``, with
  M. Slaney's Auditory Toolbox and D. Ellis's gammatonegram.
"""

from __future__ import annotations

import math

import numpy as np

from ..dsp import spans
from ._checks import MetricError, as_signal

MIN_RATE = 8000  # Hz: the lowest rate the toolbox is tested at
N_CHANNELS = 23  # gammatone channels (SRMR.m: nCochlearFilters)
LOW_FREQ = 125.0  # Hz: lowest gammatone centre (SRMR.m: lowFreq)
N_MOD = 8  # modulation bands (SRMR.m: nModFilters)
MIN_CF = 4.0  # Hz: first modulation centre
MAX_CF, MAX_CF_NORM = 128.0, 30.0  # Hz: last modulation centre without / with norm
MOD_Q = 2.0  # Q of the modulation filters
WINDOW_S, HOP_S = 0.256, 0.064  # s: modulation energy frames
FAST_RATE = 400  # Hz: envelope rate of the fast variant (SRMR.m: mfs)
FAST_WIN_S, FAST_HOP_S = 0.010, 0.0025  # s: gammatonegram window and hop
NORM_FLOOR = 0.001  # norm: energies clipped to [peak·0.001, peak]
VAD_DB = 50.0  # vad_s: samples more than 50 dB below the peak's power are silent
VAD_GAP_S = 0.05  # vad_s: silent runs longer than 50 ms are removed
EAR_Q, MIN_BW = 9.26449, 24.7  # Glasberg & Moore ERB parameters (MakeERBFilters.m)
HILBERT_BLOCK = 2**18  # samples: longer channels get a blocked analytic signal
HILBERT_OVERLAP = 2**15  # samples of context on each side of a block's kept centre
FAST_CHUNK = 1024  # spectrogram frames transformed at once in the fast variant


def srmr(x: np.ndarray, fs: int, *, fast: bool = False, norm: bool = False) -> float:
    """Speech-to-reverberation modulation energy ratio of ``x``, as ``SRMR(x, fs)`` of the
    MATLAB SRMRToolbox computes it (``'fast', 1`` and ``'norm', 1`` with the flags).

    Args:
        x: 1-D float signal (any scale: the result is scale invariant).
        fs: its rate in Hz, an integer from 8000 (see the module's Rates section).
        fast: the toolbox's fast variant (gammatonegram instead of the time-domain
            gammatone filterbank and Hilbert envelopes).
        norm: the toolbox's normalised variant (modulation bands 4–30 Hz, energies
            clipped to 30 dB below their peak).

    Returns:
        SRMR (higher: less reverberant).

    Raises:
        MetricError (a ValueError): ``x`` not 1-D, empty or with NaN/Inf samples, all
            zero, shorter than one 256 ms window (before or after the VAD), or an
            unsupported rate.
    """
    fs = _check_rate(fs, fast)
    x = as_signal(x, name="x")
    if x.ndim != 1:
        raise MetricError(f"srmr expects a 1-D signal; got shape {x.shape}. Pass one channel.")
    window = math.ceil(WINDOW_S * fs)
    if x.size < window:
        raise MetricError(
            f"x has {x.size} samples ({x.size / fs * 1000:.0f} ms at {fs} Hz); SRMR needs at "
            f"least one 256 ms window ({window} samples).")
    peak = max(float(np.max(x)), -float(np.min(x)))  # max |x| without a copy
    if peak == 0:
        raise MetricError("x is all zeros (digital silence); SRMR is undefined for silence.")
    x = _vad(x, peak, fs)  # preprocess.m: VAD (the ASL gain cancels out, see module doc)
    if x.size < window:
        raise MetricError(
            f"x has only {x.size} samples ({x.size / fs * 1000:.0f} ms) of activity above "
            f"−{VAD_DB:.0f} dB of its peak; SRMR needs at least one 256 ms window.")

    cfs = _modulation_cfs(MAX_CF_NORM if norm else MAX_CF)
    if fast:
        env_rate = FAST_RATE
        envelopes = _gammatonegram(x, fs)[::-1]  # SRMR.m: flipud, highest channel first
    else:
        env_rate = fs
        centres = _erb_space(fs)  # highest first
    energies = []
    for k in range(N_CHANNELS):  # one channel's envelope at a time (see Memory)
        env = envelopes[k] if fast else _hilbert_envelope(_gammatone(x, fs, centres[k]))
        energies.append(_modulation_energies(env, env_rate, cfs))
        del env  # before the next channel's is made
    energy = np.stack(energies)  # channels × bands × frames
    return _ratio(energy, fs, cfs, norm)


def _check_rate(fs, fast: bool) -> int:
    if isinstance(fs, bool) or not float(fs).is_integer() or fs < MIN_RATE:
        raise MetricError(
            f"srmr needs an integer rate of at least {MIN_RATE} Hz; got fs={fs!r}. "
            "Resample to 16 kHz.")
    fs = int(fs)
    if fast and _round_half_up(FAST_WIN_S * fs) % 2:
        raise MetricError(
            f"srmr(fast=True) is undefined at {fs} Hz: the gammatonegram's Hann window, "
            f"round(0.01·fs) = {_round_half_up(FAST_WIN_S * fs)} samples, is odd, where the "
            "toolbox's specgram stops with an error. Resample to 16 kHz.")
    return fs


def _round_half_up(v: float) -> int:
    """MATLAB ``round`` for positive values (halves away from zero)."""
    return int(math.floor(v + 0.5))


def _vad(x: np.ndarray, peak: float, fs: int) -> np.ndarray:
    """``vad_s.m`` on ``x / peak``: keep the first to the last active sample (power above
    −50 dB of the peak's), less the inside of every run of silent samples between two
    active ones that are more than 50 ms apart (vad_s keeps both active samples)."""
    active = np.empty(x.size, dtype=bool)
    for a, b in spans(x.size):  # in blocks: no full-length float temporary
        part = x[a:b] / peak
        np.greater(part * part, 10 ** (-VAD_DB / 10), out=active[a:b])
    first, last = int(np.argmax(active)), x.size - 1 - int(np.argmax(active[::-1]))
    # Changes of activity in (first, last]: alternately the first silent sample of a run
    # and the first active one after it.
    changes = first + 1 + np.flatnonzero(np.diff(active[first:last + 1]))
    del active
    silent, resumed = changes[0::2], changes[1::2]
    # diff(idx) > 0.05·fs in vad_s: the distance between the active samples around a run
    gap = (resumed - (silent - 1)) > VAD_GAP_S * fs
    starts = np.concatenate(([first], resumed[gap]))
    stops = np.concatenate((silent[gap], [last + 1]))
    out = np.empty(int(np.sum(stops - starts)))
    at = 0
    for a, b in zip(starts, stops):
        np.divide(x[a:b], peak, out=out[at:at + b - a])
        at += b - a
    return out


def _erb_space(fs: int, low: float = LOW_FREQ, n: int = N_CHANNELS) -> np.ndarray:
    """``ERBSpace.m``: n centre frequencies from just below fs/2 down to ``low``,
    uniformly spaced on the ERB scale (highest first)."""
    high = fs / 2
    step = (-np.log(high + EAR_Q * MIN_BW) + np.log(low + EAR_Q * MIN_BW)) / n
    return -(EAR_Q * MIN_BW) + np.exp(np.arange(1, n + 1) * step) * (high + EAR_Q * MIN_BW)


def _erb(cf):
    """Equivalent rectangular bandwidth (Glasberg & Moore, order 1) of centre ``cf``."""
    return cf / EAR_Q + MIN_BW


def _gammatone_terms(cf, fs: int):
    """``MakeERBFilters.m``: the four numerator terms A11–A14, the shared poles' B1, B2,
    the bandwidth B (rad/s) and the gain at ``cf`` of Slaney's gammatone."""
    T = 1 / fs
    B = 1.019 * 2 * np.pi * _erb(cf)
    arg = 2 * cf * np.pi * T
    e_bt = np.exp(B * T)
    cos, sin = np.cos(arg), np.sin(arg)
    r_pos, r_neg = np.sqrt(3 + 2**1.5), np.sqrt(3 - 2**1.5)
    a1 = [-(2 * T * cos / e_bt + sign * 2 * r * T * sin / e_bt) / 2
          for r in (r_pos, r_neg) for sign in (1, -1)]  # A11, A12, A13, A14
    z = np.exp(4j * cf * np.pi * T)
    p = np.exp(-(B * T) + 2j * cf * np.pi * T)
    num = 1
    for k in (-r_neg, r_neg, -r_pos, r_pos):  # the four zeros' factors at the centre
        num = num * (-2 * z * T + 2 * p * T * (cos + k * sin))
    gain = np.abs(num / (-2 / np.exp(2 * B * T) - 2 * z + 2 * (1 + z) / e_bt) ** 4)
    return a1, -2 * cos / e_bt, np.exp(-2 * B * T), B, gain


def _gammatone(x: np.ndarray, fs: int, cf: float) -> np.ndarray:
    """``ERBFilterBank.m`` for one channel: four biquads sharing their poles, the first
    one's numerator divided by the gain (unit gain at ``cf``)."""
    from scipy.signal import sosfilt  # here: scipy.signal takes 1.1 s to import

    a1, b1, b2, _, gain = _gammatone_terms(cf, fs)
    T = 1 / fs
    sos = np.array([[T, a, 0.0, 1.0, b1, b2] for a in a1])
    sos[0, :3] /= gain
    return sosfilt(sos, x)


def _analytic_magnitude(y: np.ndarray) -> np.ndarray:
    """MATLAB ``abs(hilbert(y))``: the FFT of ``y`` with its positive frequencies doubled
    and its negative ones zeroed, transformed back (a real FFT forward: the same bins)."""
    from scipy import fft as sp_fft

    n = y.size
    spectrum = np.zeros(n, dtype=complex)
    spectrum[:n // 2 + 1] = sp_fft.rfft(y)
    spectrum[1:(n + 1) // 2] *= 2
    return np.abs(sp_fft.ifft(spectrum, overwrite_x=True))


def _hilbert_envelope(y: np.ndarray) -> np.ndarray:
    """``abs(hilbert(y))``: one FFT over ``y`` up to ``HILBERT_BLOCK`` samples, else
    overlapping blocks of that size (see the module's Memory section)."""
    n = y.size
    if n <= HILBERT_BLOCK:
        return _analytic_magnitude(y)
    # One FFT over y gives the analytic signal of y's periodic extension: each block is
    # taken from that extension too (circularly), so the signal's first and last samples
    # see the other end as they do in MATLAB's hilbert.
    env = np.empty(n)
    core = HILBERT_BLOCK - 2 * HILBERT_OVERLAP
    offsets = np.arange(-HILBERT_OVERLAP, HILBERT_BLOCK - HILBERT_OVERLAP)
    for start in range(0, n, core):
        stop = min(start + core, n)
        block = _analytic_magnitude(np.take(y, start + offsets, mode="wrap"))
        env[start:stop] = block[HILBERT_OVERLAP:HILBERT_OVERLAP + stop - start]
    return env


def _fft_gammatone_weights(nfft: int, fs: int) -> np.ndarray:
    """``fft2gammatonemx.m`` (width 1, 125 Hz to fs/2, nfft/2 + 1 bins): the magnitude
    response of each gammatone channel (lowest first) at the FFT bins."""
    cf = _erb_space(fs)[::-1, None]
    a1, _, _, B, gain = _gammatone_terms(cf, fs)
    T = 1 / fs
    ucirc = np.exp(2j * np.pi * np.arange(nfft // 2 + 1) / nfft)
    pole = np.exp(-B / fs) * np.exp(2j * np.pi * cf / fs)
    zeros = [-a / T for a in a1]
    mag = np.abs(ucirc - zeros[0])
    for z in zeros[1:]:
        mag = mag * np.abs(ucirc - z)
    return (T**4 / gain) * mag * np.abs((pole - ucirc) * (np.conj(pole) - ucirc)) ** -4.0


def _specgram_window(nfft: int, nwin: int) -> np.ndarray:
    """Ellis's ``specgram`` substitute: a Hann window of ``nwin`` (even) samples centred
    on sample nfft/2 of an nfft-sample frame."""
    half = nwin // 2
    kept = min(nfft // 2, half)
    halfwin = 0.5 * (1 + np.cos(np.pi * np.arange(kept) / half))
    win = np.zeros(nfft)
    win[nfft // 2:nfft // 2 + kept] = halfwin
    win[nfft // 2 - kept + 1:nfft // 2 + 1] = halfwin[::-1]
    return win


def _gammatonegram(x: np.ndarray, fs: int) -> np.ndarray:
    """``gammatonegram(x, fs, 0.010, 0.0025, 23, 125, fs/2)`` (FFT method): channels ×
    frames magnitudes, lowest channel first; frames transformed ``FAST_CHUNK`` at a time."""
    from scipy import fft as sp_fft

    nfft = 2 ** math.ceil(math.log(2 * FAST_WIN_S * fs) / math.log(2))
    hop = _round_half_up(FAST_HOP_S * fs)
    weights = _fft_gammatone_weights(nfft, fs)
    win = _specgram_window(nfft, _round_half_up(FAST_WIN_S * fs))
    n_frames = 1 + (x.size - nfft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, nfft)[::hop]
    out = np.empty((weights.shape[0], n_frames))
    for c in range(0, n_frames, FAST_CHUNK):
        spectrum = np.abs(sp_fft.rfft(frames[c:c + FAST_CHUNK] * win, axis=1))
        # Y = 1/nfft · weights · |specgram| (einsum: no BLAS, the same bits on any thread count)
        out[:, c:c + FAST_CHUNK] = np.einsum("kb,fb->kf", weights, spectrum) / nfft
    return out


def _modulation_cfs(max_cf: float) -> np.ndarray:
    """``computeModulationCFs.m``: 8 centres from 4 Hz to ``max_cf``, each the previous
    one times the constant spacing factor."""
    factor = (max_cf / MIN_CF) ** (1 / (N_MOD - 1))
    return np.cumprod(np.concatenate(([MIN_CF], np.full(N_MOD - 1, factor))))


def _modulation_filter(cf: float, rate: float) -> np.ndarray:
    """``makeModulationFilter.m``: second-order band-pass at ``cf``, Q = 2 (bilinear), as
    one second-order section."""
    w0 = np.tan(np.pi * cf / rate)
    b0 = w0 / MOD_Q
    a = np.array([1 + b0 + w0**2, 2 * w0**2 - 2, 1 - b0 + w0**2])
    return np.concatenate(([b0, 0.0, -b0], a)) / a[0]


def _modulation_energies(env: np.ndarray, rate: float, cfs: np.ndarray) -> np.ndarray:
    """Bands × frames energies of one channel's envelope (``SRMR.m``'s inner loop):
    each band's output, squared, summed under a symmetric Hamming window with MATLAB
    ``buffer``'s framing (see the module's Conventions, step 4)."""
    from scipy.signal import sosfilt, windows

    length, hop = math.ceil(WINDOW_S * rate), math.ceil(HOP_S * rate)
    n, n_frames = env.size, -(-env.size // hop)
    # The window, zero-padded in front to q whole hops: frame f then covers hops
    # f + 1 − q … f of the signal, and its energy is a sum of q per-hop partial sums.
    q = -(-length // hop)
    w2 = np.zeros(q * hop)
    w2[q * hop - length:] = windows.hamming(length, sym=True) ** 2
    w2 = w2.reshape(q, hop)
    full = n // hop
    energies = np.empty((cfs.size, n_frames))
    for m, cf in enumerate(cfs):
        out = sosfilt(_modulation_filter(cf, rate)[None], env)
        np.square(out, out=out)
        partial = np.zeros((n_frames + q - 1, q))  # partial[q − 1 + j, i]: hop j, window part i
        hops = out[:full * hop].reshape(full, hop)  # a view: the whole hops of the signal
        partial[q - 1:q - 1 + full] = np.einsum("jr,ir->ji", hops, w2)
        if full < n_frames:  # the last, incomplete hop (zeros after the signal)
            partial[q - 1 + full] = np.einsum("ir,r->i", w2[:, :n - full * hop], out[full * hop:])
        energies[m] = sum(partial[i:i + n_frames, i] for i in range(q))
        del out  # before the next band's output is made
    return energies


def _ratio(energy: np.ndarray, fs: int, cfs: np.ndarray, norm: bool) -> float:
    """Steps 5–7 of ``SRMR.m`` on the channels × bands × frames energies."""
    if norm:  # modulation energy thresholding
        peak = np.max(np.mean(energy, axis=0))
        np.clip(energy, peak * NORM_FLOOR, peak, out=energy)
    avg = energy.mean(axis=2)  # channels (highest first) × bands
    share = avg.sum(axis=1) * 100 / avg.sum()
    k90 = np.flatnonzero(np.cumsum(share[::-1]) > 90)[0]  # from the lowest channel up
    bw = _erb(_erb_space(fs)[::-1])[k90]
    # calc_cutoffs.m: lower 3-dB cutoffs of the modulation filters, at the audio rate
    cutoffs = cfs - np.tan(np.pi * cfs / fs) / MOD_Q * fs / (2 * np.pi)
    k_star = 5 + int(np.sum(bw > cutoffs[5:8]))  # last band of the denominator (1-based)
    return float(np.sum(avg[:, :4]) / np.sum(avg[:, 4:k_star]))


def srmr_rate(fs: int) -> int:
    """The rate SRMR runs at: 8 or 16 kHz, the toolbox's tested rates, as they are; any
    other rate is resampled to 16 kHz (sqeval's policy, ``resample_poly``)."""
    return int(fs) if int(fs) in (8000, 16000) else 16000


def _metric(fast: bool, norm: bool, name: str):
    def metric(*, estimate, fs: int) -> float:
        return srmr(estimate, fs, fast=fast, norm=norm)

    metric.__name__ = metric.__qualname__ = name  # pickled by name, as the module's attribute
    metric.__doc__ = (f"``{name}``: :func:`srmr` of the estimate alone (``fast={fast}``, "
                      f"``norm={norm}``), as the metric registry calls it.")
    return metric


srmr_default = _metric(False, False, "srmr_default")
srmr_norm = _metric(False, True, "srmr_norm")
srmr_fast = _metric(True, False, "srmr_fast")
