"""The metric registry: every metric by name, with what a report or a gate needs to know.

Listing the registry imports no metric backend; a metric's function is imported the
first time it is called.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Mapping, Union

from .classic import classic_rate
from .pesq import pesq_rate

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


def _native_rate(fs: int) -> int:
    return fs


@dataclass(frozen=True)
class MetricSpec:
    """What sqeval knows about one metric.

    Attributes:
        name: the column name.
        target: ``"module:function"`` inside :mod:`sqeval.metrics`.
        unit: ``"dB"``, ``"MOS"`` or ``""``.
        value_range: the range as text, for the registry table.
        higher_is_better: the direction of improvement.
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
        family: ``"module:function"`` returning a dict of several metrics computed
            together (STOI and ESTOI share all their steps); the scorer calls it once.
            A member that cannot be computed holds its :class:`MetricError` there.
        needs: keyword argument → name of another metric whose result the family
            function reuses instead of computing it again (the composites take
            ``mos=`` from ``pesq_wb`` and ``measures=`` from the classic family). What is
            passed is what computing that metric gave: its family's dict, or its value;
            when it failed, this metric fails with the same error.
        intrusive: whether it compares against a clean reference; a non-intrusive
            metric's function takes ``estimate=`` (and ``fs=``) only.
        group: ``"core"`` (the default set), ``"classic"`` (Loizou's measures) or
            ``"dnsmos"``; ``--metrics`` takes group names too.
        package: the installed distribution whose code or model computes the values
            (``None``: sqeval's own numpy code); its version is part of the provenance.
    """

    name: str
    target: Union[str, Callable]
    unit: str
    value_range: str
    higher_is_better: bool
    definition: str
    reference: str
    rates: str = "any rate; runs at the input's rate"
    takes_rate: bool = False
    sample_aligned: bool = True
    rate_for: Callable[[int], int] = field(default=_native_rate, repr=False)
    properties: Mapping[str, bool] = field(default_factory=dict)
    tolerance: float = 1e-6
    family: str | None = None
    needs: Mapping[str, str] = field(default_factory=dict)
    intrusive: bool = True
    group: str = "core"
    package: str | None = None

    @property
    def source(self) -> str:
        """Who computes it, with the version installed: ``"pesq 0.0.4"``, ``"sqeval 0.2.0"``."""
        from importlib import metadata

        name = self.package or "sqeval"
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            return f"{name} (not installed)"

    @property
    def function(self) -> Callable:
        """The metric function; a ``"module:function"`` target is imported on first use."""
        if callable(self.target):
            return self.target
        module, attribute = self.target.split(":")
        return getattr(importlib.import_module(f"sqeval.metrics.{module}"), attribute)

    def compute(self, *, reference, estimate, fs: int):
        """Call the metric on signals already at ``self.rate_for(fs)``."""
        return self._call(self.function, reference, estimate, fs)

    def compute_family(self, *, reference, estimate, fs: int, **reused) -> dict:
        """All metrics of this metric's family at once (see ``family``); ``reused`` holds
        the results named by ``needs``."""
        module, attribute = self.family.split(":")
        function = getattr(importlib.import_module(f"sqeval.metrics.{module}"), attribute)
        return self._call(function, reference, estimate, fs, **reused)

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


def _classic() -> list[MetricSpec]:
    """Loizou's measures with pysepm's conventions (see sqeval.metrics.classic)."""
    framed = "30 ms Hann frames, hop 7.5 ms"
    measures = dict(takes_rate=True, group="classic", properties=_BEST_AT_IDENTITY,
                    family="classic:classic_measures", rate_for=classic_rate,
                    rates="16 kHz if fs ≥ 16 kHz (resampled down), else 8 kHz (n/a below)")
    pysepm = "pysepm {} (golden values ≤ 1e-9); "
    composite = dict(takes_rate=True, group="classic", properties=_BEST_AT_IDENTITY,
                     family="classic:composite", rate_for=_pesq_wb_rate,
                     needs={"measures": "seg_snr", "mos": "pesq_wb"},
                     rates="16 kHz (fs > 16 kHz resampled down; n/a below 16 kHz); the "
                           "file's pesq_wb value")
    return [
        MetricSpec("seg_snr", "classic:seg_snr", "dB", "[-10, 35]", True,
                   f"mean over {framed} (last dropped) of the frame SNR, clipped to [−10, 35]",
                   pysepm.format("SNRseg") + "Loizou 2013", **measures),
        MetricSpec("fw_seg_snr", "classic:fw_seg_snr", "dB", "[-10, 35]", True,
                   "frequency-weighted segmental SNR: 25 critical bands, weights X^0.2, "
                   "clipped to [−10, 35]", pysepm.format("fwSNRseg") + "Hu & Loizou 2008",
                   **measures),
        MetricSpec("llr", "classic:llr", "", "[0, 2]", False,
                   "log-likelihood ratio of LPC models (order 16; 10 below 10 kHz), frames "
                   "clipped at 2, mean of the lowest 95 %", pysepm.format("llr") +
                   "Hu & Loizou 2008", **measures),
        MetricSpec("wss", "classic:wss", "", "[0, inf)", False,
                   "weighted spectral slope over 25 critical bands, mean of the lowest 95 %",
                   pysepm.format("wss") + "Klatt 1982", **measures),
        MetricSpec("csig", "classic:csig", "MOS", "[1, 5]", True,
                   "3.093 − 1.029·LLR + 0.603·PESQ − 0.009·WSS (unclipped LLR, wide-band "
                   "PESQ), clipped to [1, 5]", pysepm.format("composite") + "Hu & Loizou 2008",
                   package="pesq", **composite),
        MetricSpec("cbak", "classic:cbak", "MOS", "[1, 5]", True,
                   "1.634 + 0.478·PESQ − 0.007·WSS + 0.063·segSNR, clipped to [1, 5]",
                   pysepm.format("composite") + "Hu & Loizou 2008", package="pesq",
                   **composite),
        MetricSpec("covl", "classic:covl", "MOS", "[1, 5]", True,
                   "1.594 + 0.805·PESQ − 0.512·LLR − 0.007·WSS, clipped to [1, 5]",
                   pysepm.format("composite") + "Hu & Loizou 2008", package="pesq",
                   **composite),
    ]


def _dnsmos() -> list[MetricSpec]:
    """DNSMOS from speechmos's ONNX models (see sqeval.metrics.dnsmos)."""
    # The function resamples to 16 kHz itself, with librosa as the reference procedure does.
    common = dict(takes_rate=True, sample_aligned=False,
                  rates="16 kHz (other rates resampled with librosa.resample, soxr_hq, as "
                        "dnsmos_local.py)",
                  family="dnsmos:dnsmos", intrusive=False, group="dnsmos", package="speechmos")
    reference = "speechmos dnsmos.run (the DNS Challenge's dnsmos_local.py); Reddy et al. 2022"
    return [
        MetricSpec("dnsmos_sig", "dnsmos:dnsmos_sig", "MOS", "[1, 5]", True,
                   "P.835 speech signal quality, predicted from the estimate alone", reference,
                   **common),
        MetricSpec("dnsmos_bak", "dnsmos:dnsmos_bak", "MOS", "[1, 5]", True,
                   "P.835 background noise quality, predicted from the estimate alone",
                   reference, **common),
        MetricSpec("dnsmos_ovrl", "dnsmos:dnsmos_ovrl", "MOS", "[1, 5]", True,
                   "P.835 overall quality, predicted from the estimate alone", reference,
                   **common),
        MetricSpec("dnsmos_p808", "dnsmos:dnsmos_p808", "MOS", "[1, 5]", True,
                   "P.808 overall quality, predicted from the estimate alone", reference,
                   **common),
    ]
REGISTRY: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("snr", "snr:snr", "dB", "(-inf, inf)", True,
                   "‖s‖² / ‖ŝ − s‖²", "closed form",
                   properties={"best_at_identity": True, "gain_invariant": False,
                               "polarity_invariant": False, "monotone_in_snr": True,
                               "sign_blind": True}),
        MetricSpec("si_snr", "snr:si_snr", "dB", "(-inf, inf)", True,
                   "zero-mean; t = (⟨ŝ,s⟩/‖s‖²)·s; ‖t‖² / ‖ŝ − t‖²",
                   "torchmetrics scale_invariant_signal_noise_ratio; Luo & Mesgarani 2019",
                   properties=_SCALE_INVARIANT),
        MetricSpec("si_sdr", "snr:si_sdr", "dB", "(-inf, inf)", True,
                   "as si_snr without removing the means",
                   "torchmetrics scale_invariant_signal_distortion_ratio; Le Roux et al. 2019",
                   properties=_SCALE_INVARIANT),
        MetricSpec("osi_snr", "snr:osi_snr", "dB", "[0, inf)", True,
                   "t = (‖ŝ‖²/⟨s,ŝ⟩)·s; ‖t‖² / ‖ŝ − t‖² = 10·log10(1 + 10^(si_sdr/10))",
                   "closed form", properties=_SCALE_INVARIANT),
        MetricSpec("sdr", "sdr:sdr", "dB", "(-inf, inf)", True,
                   "BSS Eval v3: ŝ projected on s delayed 0…511 samples; ‖P‖² / ‖ŝ − P‖²",
                   "mir_eval bss_eval_sources, fast_bss_eval sdr; Vincent et al. 2006",
                   properties=_SCALE_INVARIANT),
        MetricSpec("stoi", "stoi:stoi", "", "[0, 1]", True,
                   "short-time objective intelligibility",
                   "pystoi (≤ 1e-12); Taal et al. 2011",
                   rates="any rate (resampled to 10 kHz as pystoi does)", takes_rate=True,
                   properties=_SCALE_INVARIANT, family="stoi:intelligibility"),
        MetricSpec("estoi", "stoi:estoi", "", "[-1, 1]", True,
                   "extended STOI", "pystoi extended=True (≤ 1e-12); Jensen & Taal 2016",
                   rates="any rate (resampled to 10 kHz as pystoi does)", takes_rate=True,
                   properties=_SCALE_INVARIANT, family="stoi:intelligibility"),
        MetricSpec("pesq_wb", "pesq:pesq_wb", "MOS", "[1.04, 4.64]", True,
                   "P.862.2 wide-band MOS-LQO", _PESQ_REF + ".2",
                   rates="16 kHz (fs > 16 kHz resampled down; n/a below 16 kHz)",
                   takes_rate=True, sample_aligned=False, rate_for=_pesq_wb_rate,
                   properties=_PESQ_PROPERTIES, tolerance=_PESQ_TOLERANCE, package="pesq"),
        MetricSpec("pesq_nb", "pesq:pesq_nb", "MOS", "[1.02, 4.55]", True,
                   "P.862.1 narrow-band MOS-LQO", _PESQ_REF + ".1",
                   rates="16 kHz if fs ≥ 16 kHz, else 8 kHz (n/a below 8 kHz)",
                   takes_rate=True, sample_aligned=False, rate_for=_pesq_nb_rate,
                   properties=_PESQ_PROPERTIES, tolerance=_PESQ_TOLERANCE, package="pesq"),
        MetricSpec("mc_mse", "spectral:mc_mse", "", "[0, inf)", False,
                   "mean over (frame, bin) of (|S|^0.3 − |Ŝ|^0.3)², 32 ms Hann STFT, hop 8 ms",
                   "closed form", takes_rate=True,
                   properties={"best_at_identity": True, "gain_invariant": False,
                               "polarity_invariant": True, "monotone_in_snr": True,
                               "sign_blind": False}),
        MetricSpec("rel_entropy", "entropy:rel_entropy", "", "(-inf, inf), 0 at identity", False,
                   "mean over samples of σ(ŝ)·ln(σ(ŝ)/σ(s))", "closed form",
                   # Not declared best at identity: it dips below 0 (a finding, by design).
                   properties={"gain_invariant": False, "polarity_invariant": False,
                               "sign_blind": False}),
        *_classic(),
        *_dnsmos(),
    )
}


GROUPS = {
    "core": "the default set",
    "classic": "Loizou's measures as pysepm computes them (VoiceBank-DEMAND tables)",
    "dnsmos": "DNSMOS P.835 and P.808, non-intrusive (pip install 'sqeval[dnsmos]')",
}


def resolve(names: str | None) -> list[MetricSpec]:
    """The specs for a comma-separated list of metric and group names, in registry order
    for groups; ``None`` is the ``core`` group, ``"all"`` every metric.

    Raises:
        KeyError: an unknown name; the message lists the known ones.

    Example:
        >>> [spec.name for spec in resolve("pesq_wb, stoi")]
        ['pesq_wb', 'stoi']
        >>> [spec.name for spec in resolve("classic")][:3]
        ['seg_snr', 'fw_seg_snr', 'llr']
    """
    if names is None:
        names = "core"
    if names.strip().lower() == "all":
        return list(REGISTRY.values())
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in REGISTRY and name not in GROUPS]
    if unknown or not wanted:
        raise KeyError(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'}; known: "
            f"{', '.join(REGISTRY)}, the groups {', '.join(GROUPS)}, or 'all'"
        )
    expanded = []
    for name in wanted:
        expanded += ([spec.name for spec in REGISTRY.values() if spec.group == name]
                     if name in GROUPS else [name])
    return [REGISTRY[name] for name in dict.fromkeys(expanded)]
