"""Provenance of a result: what produced it, with which versions, when, and how."""

from __future__ import annotations

import json
import platform
import shlex
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from . import __version__

RATE_POLICY = (
    "estimates resampled to the reference's rate; PESQ at 16 kHz when fs >= 16 kHz, at "
    "8 kHz when 8 <= fs < 16 kHz (pesq_wb n/a below 16 kHz); STOI/ESTOI at any rate "
    "(pystoi resamples to 10 kHz); classic measures at 16 kHz when fs >= 16 kHz, at 8 kHz "
    "when 8 <= fs < 16 kHz; csig/cbak/covl at 16 kHz (n/a below) with the file's pesq_wb; "
    "other metrics at fs; all resampling scipy.signal.resample_poly with up/down reduced "
    "by their gcd, float64, except DNSMOS: to 16 kHz with soxr_hq (librosa.resample's default), as the "
    "DNS Challenge's dnsmos_local.py, and PLCMOS: to 16 kHz the same way, as speechmos's "
    "librosa.load; ViSQOL: speech mode at 16 kHz, audio mode at 48 kHz, with "
    "resample_poly; SRMR: 8 or 16 kHz as they are, other rates to 16 kHz with "
    "resample_poly; "
    "lengths: common prefix for sample-aligned metrics, whole signals for PESQ"
)
PACKAGES = ("pesq", "pystoi", "numpy", "scipy", "soundfile", "speechmos", "onnxruntime",
            "soxr", "visqol-python", "ai-edge-litert", "numba", "libsvm-official")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def models() -> dict:
    """Metric name → the model or setting behind its numbers beyond the package version
    (ViSQOL's MOS mapping, PLCMOS's seed), from the registry's source notes."""
    from .metrics.registry import REGISTRY

    return {name: spec.source_note for name, spec in REGISTRY.items() if spec.source_note}


def provenance() -> dict:
    """Versions, the models behind learned metrics, the command line, the rate policy and
    the time (UTC, ISO 8601)."""
    return {
        "sqeval_version": __version__,
        "versions": {package: _version(package) for package in PACKAGES},
        "models": models(),
        "python": platform.python_version(),
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "rate_policy": RATE_POLICY,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_meta(csv_path: Path, data: dict | None = None) -> Path | None:
    """Write ``CSV.meta.json`` beside ``csv_path`` (``data``, or the provenance of now);
    return its path. A CSV written to a stream (``/dev/stdout``, a FIFO) has none: None."""
    from .outputs import is_stream, strict_json, write_atomically

    if is_stream(Path(csv_path)):
        return None
    path = Path(f"{csv_path}.meta.json")
    clean = strict_json(data or provenance())
    write_atomically(path, lambda s: json.dump(clean, s, indent=2, allow_nan=False))
    return path
