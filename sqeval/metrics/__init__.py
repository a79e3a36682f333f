"""Speech-enhancement metrics as pure numpy functions, and their registry.

Every function takes keyword-only ``reference=`` (clean) and ``estimate=`` arrays of
shape ``(..., time)`` (plus ``fs=`` where the metric depends on the rate) and returns a
float for 1-D input, else an array over the leading dimensions. A metric that cannot
be computed raises :class:`MetricError`; it never returns a stand-in value.
"""

from ._checks import MetricError, NotApplicableError
from .classic import cbak, classic_measures, composite, covl, csig, fw_seg_snr, llr, seg_snr, wss
from .entropy import rel_entropy
from .pesq import pesq_nb, pesq_rate, pesq_wb
from .registry import REGISTRY, Direction, MetricSpec, resolve
from .sdr import sdr
from .snr import osi_snr, si_sdr, si_snr, snr
from .spectral import lsd, mc_mse
from .stoi import estoi, intelligibility, stoi

__all__ = [
    "REGISTRY", "Direction", "MetricError", "MetricSpec", "NotApplicableError", "cbak",
    "classic_measures", "composite", "covl", "csig", "estoi", "fw_seg_snr", "intelligibility",
    "llr", "lsd", "mc_mse", "osi_snr", "pesq_nb", "pesq_rate", "pesq_wb", "rel_entropy", "resolve",
    "sdr", "seg_snr", "si_sdr", "si_snr", "snr", "stoi", "wss",
]
