"""The metric registry: every metric by name, with what a report or a gate needs to know.

Entries hold the metric functions themselves. Listing the registry imports no metric
backend: each metric module imports its backend (pesq, pystoi, onnxruntime, soxr,
speechmos) inside the function, the first time it is called.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from .classic import (cbak, classic_measures, classic_rate, composite, covl, csig, fw_seg_snr,
                      llr, seg_snr, wss)
from . import dnsmos as _dnsmos_module
from . import plcmos as _plcmos_module
from . import srmr as _srmr_module
from . import visqol as _visqol_module
from .dnsmos import dnsmos, dnsmos_bak, dnsmos_ovrl, dnsmos_p808, dnsmos_sig
from .entropy import rel_entropy
from .pesq import pesq_nb, pesq_rate, pesq_wb
from .sdr import sdr
from .snr import osi_snr, si_sdr, si_snr, snr
from .spectral import lsd, mc_mse
from .stoi import estoi, intelligibility, stoi

INF = math.inf

# Behaviours a metric may declare, checked by `sqeval sanity` on canonical cases. True:
# the metric must have it (exit 1 otherwise). False: it is known not to (shown, never a
# failure: one input may still show it, as PESQ can be nearly blind to the noise's sign).
# Undeclared and violated: reported as a finding.
PROPERTIES = {
    "best_at_identity": "no case scores better than identity (gain and polarity copies of "
                        "the clean signal excepted where the metric is invariant to them)",
    "gain_invariant": "the same value on (clean+noise)×0.5 and ×2 as on clean+noise",
    "polarity_invariant": "the same value on −(clean+noise) as on clean+noise",
    "monotone_in_snr": "improves or ties at every step of the sweep −5, 0, 5, 10, 20 dB",
    "sign_blind": "the same value on clean+noise and clean−noise",
}
_SCALE_INVARIANT = {"best_at_identity": True, "gain_invariant": True,
                    "polarity_invariant": True, "monotone_in_snr": True, "sign_blind": False}


class Direction(enum.Enum):
    """Which way a metric improves."""

    HIGHER = "higher"
    LOWER = "lower"

    @property
    def arrow(self) -> str:
        """``"↑"`` for higher is better, ``"↓"`` for lower."""
        return "↑" if self is Direction.HIGHER else "↓"


HIGHER, LOWER = Direction.HIGHER, Direction.LOWER


def _native_rate(fs: int) -> int:
    return fs


def range_text(low: float, high: float, note: str = "") -> str:
    """A range as the registry table shows it: closed at a finite end, open at ±inf.

    Example:
        >>> range_text(0.0, INF), range_text(1.04, 4.64), range_text(-INF, INF, "0 at identity")
        ('[0, inf)', '[1.04, 4.64]', '(-inf, inf), 0 at identity')
    """
    left = "(-inf" if low == -INF else f"[{low:g}"
    right = "inf)" if high == INF else f"{high:g}]"
    return f"{left}, {right}" + (f", {note}" if note else "")


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    """What sqeval knows about one metric.

    Attributes:
        name: the column name.
        function: the metric function (keyword-only ``reference=``, ``estimate=``, and
            ``fs=`` when ``takes_rate``).
        unit: ``"dB"``, ``"MOS"`` or ``""``.
        low, high: the range of values; ``-inf`` / ``inf`` for an unbounded end.
        range_note: text shown after the range (``"0 at identity"``), or ``""``.
        direction: :class:`Direction`, the direction of improvement.
        definition: one line a reader can check.
        reference: what the values are tested against, and the citation.
        rates: the rate policy, as text.
        takes_rate: whether the function takes ``fs=``.
        sample_aligned: whether it compares sample by sample (so gets the common prefix);
            False for metrics that align the signals themselves (PESQ).
        rate_for: the rate the metric runs at for input at ``fs``; raises
            :class:`~sqeval.metrics.NotApplicableError` when it does not apply.
        properties: declared behaviours, keys of :data:`PROPERTIES`; see there.
        tolerance: relative difference within which two values count as the same when a
            property is checked.
        family: a function returning a dict of several metrics computed together (STOI
            and ESTOI share all their steps); the scorer calls it once. A member that
            cannot be computed holds its :class:`MetricError` there.
        needs: keyword argument → name of another metric whose result the family
            function reuses instead of computing it again (the composites take
            ``mos=`` from ``pesq_wb`` and ``measures=`` from the classic family). What is
            passed is what computing that metric gave: its family's dict, or its value;
            when it failed, this metric fails with the same error.
        intrusive: whether it compares against a clean reference; a non-intrusive
            metric's function takes ``estimate=`` (and ``fs=``) only.
        group: ``"core"`` (the default set), ``"classic"`` (Loizou's measures),
            ``"spectral"``, ``"dnsmos"``, ``"plc"`` or ``"visqol_v3"`` (see :data:`GROUPS`);
            ``--metrics`` takes group names too.
        package: the installed distribution whose code or model computes the values
            (``None``: sqeval's own numpy code); its version is part of the provenance.
        display: the name a paper prints (``"SI-SNR"``, ``"PESQ (WB)"``), used by the
            LaTeX and Markdown tables and the plots; see :attr:`title`.
        missing_backend: for a metric that needs an optional extra, a function returning
            why it cannot run here (the extra and the install command), or None; asking
            for the metric is then a usage error. None for the metrics that always run.
        source_note: what the source column adds after the package and its version (the
            model that maps to MOS, a fixed seed), or ``""``.
        ranks: whether the tables may mark a "best" system on it (False: rel_entropy).
        decimals: the decimals a paper table prints (fixed notation, never an exponent):
            2 for dB and MOS scales, 3 for STOI and ESTOI, 4 for MC-MSE; see
            :mod:`sqeval.report.paper` for the columns too small to print that way.
        fraction: a value in [0, 1] that papers may print as a percentage (STOI, ESTOI;
            ``--percent``).
    """

    name: str
    function: Callable
    unit: str
    low: float
    high: float
    range_note: str = ""
    direction: Direction
    definition: str
    reference: str
    rates: str = "any rate; runs at the input's rate"
    takes_rate: bool = False
    sample_aligned: bool = True
    rate_for: Callable[[int], int] = field(default=_native_rate, repr=False)
    properties: Mapping[str, bool] = field(default_factory=dict)
    tolerance: float = 1e-6
    family: Callable[..., dict] | None = None
    needs: Mapping[str, str] = field(default_factory=dict)
    intrusive: bool = True
    group: str = "core"
    package: str | None = None
    display: str = ""
    missing_backend: Callable[[], str | None] | None = field(default=None, repr=False)
    source_note: str = ""
    ranks: bool = True  # whether the tables may mark a "best" system on it (see rel_entropy)
    decimals: int = 2
    fraction: bool = False

    @property
    def title(self) -> str:
        """The display name, or the column name when there is none."""
        return self.display or self.name

    @property
    def higher_is_better(self) -> bool:
        """Whether a higher value is better (``direction`` is :attr:`Direction.HIGHER`)."""
        return self.direction is Direction.HIGHER

    @property
    def range_text(self) -> str:
        """The range as the registry table shows it, e.g. ``"[1.04, 4.64]"``."""
        return range_text(self.low, self.high, self.range_note)

    @property
    def source(self) -> str:
        """Who computes it, with the version installed: ``"pesq 0.0.4"``, ``"sqeval 0.2.0"``."""
        from importlib import metadata

        name = self.package or "sqeval"
        note = f"; {self.source_note}" if self.source_note else ""
        try:
            return f"{name} {metadata.version(name)}{note}"
        except metadata.PackageNotFoundError:
            return f"{name} (not installed){note}"

    def compute(self, *, reference, estimate, fs: int):
        """Call the metric on signals already at ``self.rate_for(fs)``."""
        return self._call(self.function, reference, estimate, fs)

    def compute_family(self, *, reference, estimate, fs: int, **reused) -> dict:
        """All metrics of this metric's family at once (see ``family``); ``reused`` holds
        the results named by ``needs``."""
        return self._call(self.family, reference, estimate, fs, **reused)

    def _call(self, function, reference, estimate, fs, **reused):
        if not self.intrusive:
            return function(estimate=estimate, fs=fs) if self.takes_rate else function(
                estimate=estimate)
        if self.takes_rate:
            return function(reference=reference, estimate=estimate, fs=fs, **reused)
        return function(reference=reference, estimate=estimate)


def _pesq_wb_rate(fs: int) -> int:
    return pesq_rate(fs, mode="wb")


def _pesq_nb_rate(fs: int) -> int:
    return pesq_rate(fs, mode="nb")


# PESQ saturates near its floor at low SNR, so its monotonicity is observed, not declared.
_PESQ_PROPERTIES = {key: value for key, value in _SCALE_INVARIANT.items()
                    if key != "monotone_in_snr"}
# PESQ aligns levels itself, but in float32: a gain change moves it by up to ~1e-4 MOS.
_PESQ_TOLERANCE = 1e-3
_PESQ_REF = "the pesq package (ITU-T P.862 C code), exactly; ITU-T P.862"
_BEST_AT_IDENTITY = {"best_at_identity": True}


def _core() -> list[MetricSpec]:
    """The default set: the SNR family, BSS Eval SDR, STOI, PESQ, MC-MSE, relative entropy."""
    stoi_common = dict(unit="", direction=HIGHER, takes_rate=True,
                       rates="any rate (resampled to 10 kHz as pystoi does)",
                       properties=_SCALE_INVARIANT, family=intelligibility, decimals=3,
                       fraction=True)
    pesq_common = dict(unit="MOS", direction=HIGHER, takes_rate=True, sample_aligned=False,
                       properties=_PESQ_PROPERTIES, tolerance=_PESQ_TOLERANCE, package="pesq")
    return [
        MetricSpec(name="snr", function=snr, unit="dB", low=-INF, high=INF,
                   direction=HIGHER, definition="‖s‖² / ‖ŝ − s‖²", reference="closed form",
                   properties={"best_at_identity": True, "gain_invariant": False,
                               "polarity_invariant": False, "monotone_in_snr": True,
                               "sign_blind": True}),
        MetricSpec(name="si_snr", function=si_snr, unit="dB", low=-INF, high=INF,
                   direction=HIGHER, definition="zero-mean; t = (⟨ŝ,s⟩/‖s‖²)·s; ‖t‖² / ‖ŝ − t‖²",
                   reference="torchmetrics scale_invariant_signal_noise_ratio; "
                             "Luo & Mesgarani 2019",
                   properties=_SCALE_INVARIANT),
        MetricSpec(name="si_sdr", function=si_sdr, unit="dB", low=-INF, high=INF,
                   direction=HIGHER, definition="as si_snr without removing the means",
                   reference="torchmetrics scale_invariant_signal_distortion_ratio; "
                             "Le Roux et al. 2019",
                   properties=_SCALE_INVARIANT),
        MetricSpec(name="osi_snr", function=osi_snr, unit="dB", low=0.0, high=INF,
                   direction=HIGHER,
                   definition="t = (‖ŝ‖²/⟨s,ŝ⟩)·s; ‖t‖² / ‖ŝ − t‖² = "
                              "10·log10(1 + 10^(si_sdr/10))",
                   reference="closed form", properties=_SCALE_INVARIANT),
        MetricSpec(name="sdr", function=sdr, unit="dB", low=-INF, high=INF,
                   direction=HIGHER,
                   definition="BSS Eval v3: ŝ projected on s delayed 0…511 samples; "
                              "‖P‖² / ‖ŝ − P‖²",
                   reference="mir_eval bss_eval_sources, fast_bss_eval sdr; "
                             "Vincent et al. 2006",
                   properties=_SCALE_INVARIANT),
        MetricSpec(name="stoi", function=stoi, low=0.0, high=1.0,
                   definition="short-time objective intelligibility",
                   reference="pystoi (≤ 1e-12); Taal et al. 2011", **stoi_common),
        MetricSpec(name="estoi", function=estoi, low=-1.0, high=1.0,
                   definition="extended STOI",
                   reference="pystoi extended=True (≤ 1e-12); Jensen & Taal 2016",
                   **stoi_common),
        MetricSpec(name="pesq_wb", function=pesq_wb, low=1.04, high=4.64,
                   definition="P.862.2 wide-band MOS-LQO", reference=_PESQ_REF + ".2",
                   rates="16 kHz (fs > 16 kHz resampled down; n/a below 16 kHz)",
                   rate_for=_pesq_wb_rate, **pesq_common),
        MetricSpec(name="pesq_nb", function=pesq_nb, low=1.02, high=4.55,
                   definition="P.862.1 narrow-band MOS-LQO", reference=_PESQ_REF + ".1",
                   rates="16 kHz if fs ≥ 16 kHz, else 8 kHz (n/a below 8 kHz)",
                   rate_for=_pesq_nb_rate, **pesq_common),
        MetricSpec(name="mc_mse", function=mc_mse, unit="", low=0.0, high=INF,
                   direction=LOWER,
                   definition="mean over (frame, bin) of (|S|^0.3 − |Ŝ|^0.3)², 32 ms Hann "
                              "STFT, hop 8 ms",
                   reference="closed form", takes_rate=True, decimals=4,
                   properties={"best_at_identity": True, "gain_invariant": False,
                               "polarity_invariant": True, "monotone_in_snr": True,
                               "sign_blind": False}),
        MetricSpec(name="rel_entropy", function=rel_entropy, unit="", low=-INF,
                   high=INF, range_note="0 at identity", direction=LOWER,
                   definition="mean over samples of σ(ŝ)·ln(σ(ŝ)/σ(s))",
                   reference="closed form", decimals=3,
                   # Not declared best at identity: it dips below 0 (a finding, by design).
                   properties={"gain_invariant": False, "polarity_invariant": False,
                               "sign_blind": False},
                   # and never marked "best": silence (−0.00062 on sanity's speech) is
                   # "better" than a perfect copy (0); its sanity cases show no direction
                   ranks=False),
    ]


def _classic() -> list[MetricSpec]:
    """Loizou's measures with pysepm's conventions (see sqeval.metrics.classic)."""
    framed = "30 ms Hann frames, hop 7.5 ms"
    measures = dict(takes_rate=True, group="classic", properties=_BEST_AT_IDENTITY,
                    family=classic_measures, rate_for=classic_rate,
                    rates="16 kHz if fs ≥ 16 kHz (resampled down), else 8 kHz (n/a below)")
    pysepm = "pysepm {} (golden values ≤ 1e-9); "
    composites = dict(takes_rate=True, group="classic", properties=_BEST_AT_IDENTITY,
                      family=composite, rate_for=_pesq_wb_rate,
                      needs={"measures": "seg_snr", "mos": "pesq_wb"},
                      rates="16 kHz (fs > 16 kHz resampled down; n/a below 16 kHz); the "
                            "file's pesq_wb value",
                      unit="MOS", low=1.0, high=5.0, direction=HIGHER, package="pesq",
                      reference=pysepm.format("composite") + "Hu & Loizou 2008")
    return [
        MetricSpec(name="seg_snr", function=seg_snr, unit="dB", low=-10.0, high=35.0,
                   direction=HIGHER,
                   definition=f"mean over {framed} (last dropped) of the frame SNR, clipped "
                              "to [−10, 35]",
                   reference=pysepm.format("SNRseg") + "Loizou 2013", **measures),
        MetricSpec(name="fw_seg_snr", function=fw_seg_snr, unit="dB", low=-10.0,
                   high=35.0, direction=HIGHER,
                   definition="frequency-weighted segmental SNR: 25 critical bands, weights "
                              "X^0.2, clipped to [−10, 35]",
                   reference=pysepm.format("fwSNRseg") + "Hu & Loizou 2008", **measures),
        MetricSpec(name="llr", function=llr, unit="", low=0.0, high=2.0,
                   direction=LOWER,
                   definition="log-likelihood ratio of LPC models (order 16; 10 below "
                              "10 kHz), frames clipped at 2, mean of the lowest 95 %",
                   reference=pysepm.format("llr") + "Hu & Loizou 2008", **measures),
        MetricSpec(name="wss", function=wss, unit="", low=0.0, high=INF,
                   direction=LOWER,
                   definition="weighted spectral slope over 25 critical bands, mean of the "
                              "lowest 95 %",
                   reference=pysepm.format("wss") + "Klatt 1982", **measures),
        MetricSpec(name="csig", function=csig,
                   definition="3.093 − 1.029·LLR + 0.603·PESQ − 0.009·WSS (unclipped LLR, "
                              "wide-band PESQ), clipped to [1, 5]", **composites),
        MetricSpec(name="cbak", function=cbak,
                   definition="1.634 + 0.478·PESQ − 0.007·WSS + 0.063·segSNR, clipped to "
                              "[1, 5]", **composites),
        MetricSpec(name="covl", function=covl,
                   definition="1.594 + 0.805·PESQ − 0.512·LLR − 0.007·WSS, clipped to [1, 5]",
                   **composites),
    ]


def _spectral() -> list[MetricSpec]:
    """Spectral distances beyond the default set, on the STFT of ``mc_mse``."""
    return [
        MetricSpec(name="lsd", function=lsd, unit="dB", low=0.0, high=INF,
                   direction=LOWER,
                   definition="mean over frames of sqrt(mean over bins of (10·log10(|S|²+ε) − "
                              "10·log10(|Ŝ|²+ε))²), ε = 1e-10; the STFT of mc_mse",
                   reference="closed form (scipy's STFT; analytic gain and one-frame cases); "
                             "Gray & Markel 1976",
                   takes_rate=True, group="spectral",
                   # A gain on the estimate alone adds |20·log10 g| dB; a sign flip keeps |Ŝ|.
                   properties={"best_at_identity": True, "gain_invariant": False,
                               "polarity_invariant": True, "monotone_in_snr": True,
                               "sign_blind": False}),
    ]


def _reverb() -> list[MetricSpec]:
    """SRMR as the MATLAB SRMRToolbox computes it (see sqeval.metrics.srmr)."""
    common = dict(unit="", low=0.0, high=INF, direction=HIGHER, takes_rate=True,
                  sample_aligned=False, intrusive=False, group="reverb",
                  rates="8 or 16 kHz as they are (the toolbox's tested rates); other rates "
                        "resampled to 16 kHz with resample_poly",
                  rate_for=_srmr_module.srmr_rate,
                  source_note="numpy, after the MATLAB SRMRToolbox's SRMR.m",
                  reference="the MATLAB SRMRToolbox's own test values (≤ 1e-12 relative); "
                            "Falk et al. 2010",
                  # The toolbox's level adjustment is a gain every step cancels; the
                  # gammatone filters are linear, so a sign flip leaves every envelope.
                  # Additive noise fills the high modulation bands: lower with less SNR
                  # (sqeval sanity -m reverb). It rates the signal alone, not its
                  # likeness to the clean one: a low-passed or clipped copy may score
                  # above the clean signal, and the noise's sign is not cancelled.
                  properties={"gain_invariant": True, "polarity_invariant": True,
                              "monotone_in_snr": True, "best_at_identity": False,
                              "sign_blind": False})
    steps = ("speech-to-reverberation modulation energy ratio: 23 gammatone channels from "
             "125 Hz, 8 modulation bands {} Hz, 256 ms frames every 64 ms; energy of bands "
             "1–4 over bands 5–K* (90 % bandwidth rule)")
    return [
        MetricSpec(name="srmr", function=_srmr_module.srmr_default,
                   definition="SRMR (SRMR.m's default: time-domain gammatone filterbank, "
                              "Hilbert envelopes); " + steps.format("4–128"), **common),
        MetricSpec(name="srmr_norm", function=_srmr_module.srmr_norm,
                   definition="SRMR with 'norm', 1: modulation bands 4–30 Hz, energies "
                              "clipped to 30 dB below their peak (Santos et al. 2014); "
                              + steps.format("4–30"), **common),
        MetricSpec(name="srmr_fast", function=_srmr_module.srmr_fast,
                   definition="SRMR with 'fast', 1: Ellis's gammatonegram (FFT weighting, "
                              "10 ms windows every 2.5 ms) instead of the filterbank; "
                              + steps.format("4–128"), **common),
    ]


def _dnsmos() -> list[MetricSpec]:
    """DNSMOS from speechmos's ONNX models (see sqeval.metrics.dnsmos)."""
    # The function resamples to 16 kHz itself, as the reference procedure does (librosa's
    # default resampler: soxr_hq).
    common = dict(takes_rate=True, sample_aligned=False,
                  rates="16 kHz (other rates resampled as librosa.resample does by default, "
                        "soxr_hq, as dnsmos_local.py)",
                  family=dnsmos, intrusive=False, group="dnsmos", package="speechmos",
                  missing_backend=_dnsmos_module.missing_backend,
                  unit="MOS", low=1.0, high=5.0, direction=HIGHER,
                  reference="speechmos dnsmos.run (the DNS Challenge's dnsmos_local.py); "
                            "Reddy et al. 2022")
    return [
        MetricSpec(name="dnsmos_sig", function=dnsmos_sig,
                   definition="P.835 speech signal quality, predicted from the estimate alone",
                   **common),
        MetricSpec(name="dnsmos_bak", function=dnsmos_bak,
                   definition="P.835 background noise quality, predicted from the estimate "
                              "alone", **common),
        MetricSpec(name="dnsmos_ovrl", function=dnsmos_ovrl,
                   definition="P.835 overall quality, predicted from the estimate alone",
                   **common),
        MetricSpec(name="dnsmos_p808", function=dnsmos_p808,
                   definition="P.808 overall quality, predicted from the estimate alone",
                   **common),
    ]


def _plc() -> list[MetricSpec]:
    """PLCMOS v2 from speechmos's ONNX model (see sqeval.metrics.plcmos)."""
    return [
        MetricSpec(name="plcmos", function=_plcmos_module.plcmos, unit="MOS", low=1.0,
                   high=5.0, direction=HIGHER,
                   definition="PLCMOS v2: packet-loss concealment quality predicted from the "
                              "estimate alone; mean over 15 fixed rater embeddings; files over "
                              "30 s: mean over equal segments",
                   reference="speechmos plcmos.run after np.random.seed(0) (≤ 1e-5); "
                             "Diener et al. 2023",
                   takes_rate=True, sample_aligned=False, intrusive=False, group="plc",
                   rates="16 kHz (other rates resampled as librosa.load does by default, "
                         "soxr_hq, as speechmos)",
                   package="speechmos", missing_backend=_plcmos_module.missing_backend,
                   source_note="plcmos_v2.onnx; rater embeddings RandomState(0)",
                   # |X|² is unchanged by a sign flip; a gain shifts every log-power feature.
                   # It rates concealment, not noise, from the estimate alone: on the sanity
                   # clip 1 ms of delay scores above identity, and white noise scores worse
                   # at 10 dB SNR than at −5 dB (sqeval sanity -m plcmos).
                   properties={"polarity_invariant": True, "gain_invariant": False,
                               "best_at_identity": False, "monotone_in_snr": False,
                               "sign_blind": False}),
    ]


def _visqol() -> list[MetricSpec]:
    """ViSQOL v3 by visqol-python, with the MOS mapping chosen (see sqeval.metrics.visqol)."""
    common = dict(unit="MOS", low=1.0, high=5.0, direction=HIGHER, takes_rate=True,
                  sample_aligned=False, group="visqol_v3", package="visqol-python",
                  missing_backend=_visqol_module.missing_backend)
    # By construction: the estimate is scaled to the reference's level before anything
    # else, and alignment and spectrogram use envelopes and energies. Observed (sqeval
    # sanity -m visqol_v3): speech mode scores 1 ms of delay above identity (its lattice
    # mapping), and neither mode is blind to the noise's sign.
    invariant = {"gain_invariant": True, "polarity_invariant": True, "sign_blind": False}
    segments = "; pairs over {} s: mean over equal segments"
    return [
        MetricSpec(name="visqol", function=_visqol_module.visqol,
                   definition="ViSQOL v3 speech mode MOS-LQO (NSIM over VAD-selected "
                              "gammatone patches, mapped to MOS)" + segments.format(30),
                   reference="visqol-python measure_from_arrays, exactly; Chinen et al. 2020",
                   rates="16 kHz (other rates resampled with resample_poly, sqeval's policy)",
                   rate_for=_visqol_module.speech_rate,
                   source_note="speech mode; MOS mapping: " + _visqol_module.MAPPING["speech"],
                   properties={**invariant, "best_at_identity": False}, **common),
        MetricSpec(name="visqol_audio", function=_visqol_module.visqol_audio,
                   definition="ViSQOL v3 audio mode MOS-LQO (NSIM over gammatone patches, "
                              "mapped to MOS)" + segments.format(10),
                   reference="visqol-python measure_from_arrays, exactly; Chinen et al. 2020",
                   rates="48 kHz (other rates resampled with resample_poly, sqeval's policy)",
                   rate_for=_visqol_module.audio_rate,
                   source_note="audio mode; MOS mapping: " + _visqol_module.MAPPING["audio"],
                   properties={**invariant, "best_at_identity": True}, **common),
    ]


# The names papers print: the column names stay as they are (CSV, gates, --metrics).
DISPLAY_NAMES = {
    "snr": "SNR", "si_snr": "SI-SNR", "si_sdr": "SI-SDR", "osi_snr": "OSI-SNR", "sdr": "SDR",
    "stoi": "STOI", "estoi": "ESTOI", "pesq_wb": "PESQ (WB)", "pesq_nb": "PESQ (NB)",
    "mc_mse": "MC-MSE", "lsd": "LSD", "rel_entropy": "Rel. entropy", "seg_snr": "SegSNR",
    "fw_seg_snr": "fwSegSNR", "llr": "LLR", "wss": "WSS", "csig": "CSIG", "cbak": "CBAK",
    "covl": "COVL", "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK",
    "dnsmos_ovrl": "DNSMOS OVRL", "dnsmos_p808": "DNSMOS P.808", "plcmos": "PLCMOS",
    "visqol": "ViSQOL", "visqol_audio": "ViSQOL (audio)", "srmr": "SRMR",
    "srmr_norm": "SRMR (norm)", "srmr_fast": "SRMR (fast)",
}

REGISTRY: dict[str, MetricSpec] = {
    spec.name: replace(spec, display=DISPLAY_NAMES.get(spec.name, spec.display))
    for spec in (*_core(), *_classic(), *_spectral(), *_reverb(), *_dnsmos(), *_plc(),
                 *_visqol())}


GROUPS = {
    "core": "the default set",
    "classic": "Loizou's measures as pysepm computes them (VoiceBank-DEMAND tables)",
    "spectral": "the log-spectral distance (LSD), on the STFT of mc_mse",
    "reverb": "SRMR as the MATLAB SRMRToolbox computes it, non-intrusive (default, norm, "
              "fast)",
    "dnsmos": "DNSMOS P.835 and P.808, non-intrusive (the dnsmos extra: pip install '.[dnsmos]')",
    "plc": "PLCMOS v2, non-intrusive (the dnsmos extra: pip install '.[dnsmos]')",
    "visqol_v3": "ViSQOL v3, speech and audio modes (the visqol extra: pip install '.[visqol]')",
}


# Presets: the columns of the tables papers print, in their order (``-m voicebank``).
PRESETS = {
    "voicebank": (("pesq_wb", "csig", "cbak", "covl", "seg_snr", "stoi"),
                  "the columns of VoiceBank-DEMAND tables, in their order: PESQ (wide-band), "
                  "CSIG, CBAK, COVL, SSNR (seg_snr), STOI"),
    "dns": (("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"),
            "the columns of DNS Challenge tables: DNSMOS P.835 SIG, BAK, OVRL and P.808 "
            "(the dnsmos extra: pip install '.[dnsmos]')"),
}


def resolve(names: str | None) -> list[MetricSpec]:
    """The specs for a comma-separated list of metric, group and preset names, in registry
    order for groups and in the preset's order for a preset (:data:`PRESETS`); ``None`` is
    the ``core`` group, ``"all"`` every metric.

    Raises:
        KeyError: an unknown name; the message lists the known ones.

    Example:
        >>> [spec.name for spec in resolve("pesq_wb, stoi")]
        ['pesq_wb', 'stoi']
        >>> [spec.name for spec in resolve("classic")][:3]
        ['seg_snr', 'fw_seg_snr', 'llr']
        >>> [spec.name for spec in resolve("voicebank")]
        ['pesq_wb', 'csig', 'cbak', 'covl', 'seg_snr', 'stoi']
    """
    if names is None:
        names = "core"
    if names.strip().lower() == "all":
        return list(REGISTRY.values())
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted
               if name not in REGISTRY and name not in GROUPS and name not in PRESETS]
    if unknown or not wanted:
        raise KeyError(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'}; known: "
            f"{', '.join(REGISTRY)}, the groups {', '.join(GROUPS)}, the presets "
            f"{', '.join(PRESETS)}, or 'all'"
        )
    expanded = []
    for name in wanted:
        if name in PRESETS:
            expanded += PRESETS[name][0]
        elif name in GROUPS:
            expanded += [spec.name for spec in REGISTRY.values() if spec.group == name]
        else:
            expanded.append(name)
    return [REGISTRY[name] for name in dict.fromkeys(expanded)]
