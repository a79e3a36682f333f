"""ViSQOL v3: intrusive MOS-LQO in speech mode (16 kHz) and audio mode (48 kHz).

Conventions
-----------
Computed by the PyPI package ``visqol-python`` (3.8.0, Apache-2.0), a Python port of
Google's ViSQOL v3 C++ code, through ``VisqolApi.measure_from_arrays(reference,
estimate, rate)``, with the mapping from similarity to MOS chosen explicitly:

- ``visqol``: speech mode at 16 kHz, ``create(mode="speech", use_lattice_model=True)``:
  the deep-lattice TFLite model (``lattice_tcditugenmeetpackhref_ls2_nl60_lr12_bs2048_
  learn.005_ep2400_train1_7_raw.tflite``, run by ``ai-edge-litert``), the C++ default.
  Left to itself, visqol-python falls back silently to the older exponential fit when
  ``ai-edge-litert`` is missing, which differs by 1–2 MOS; sqeval never lets it choose.
- ``visqol_audio``: audio mode at 48 kHz, ``create(mode="audio",
  use_lattice_model=False)``: the libsvm nu-SVR model ``libsvm_nu_svr_model.txt`` that
  ships with visqol-python (the only mapping of audio mode).

Signals at other rates are resampled by sqeval's policy (``resample_poly``) before they
get here; the functions take exactly 16 kHz (``visqol``) or 48 kHz (``visqol_audio``).
Both whole signals are passed (ViSQOL aligns them itself), as float64 at the level they
were read: ViSQOL depends on the absolute level (its VAD and its spectrogram floor).

Long files: ViSQOL's memory grows with the length (speech mode 379 MB, audio mode 748 MB
peak for 60 s, measured) and it was made for short samples. A reference of at most
:data:`BLOCK_SAMPLES` samples (30 s in speech mode, 10 s in audio mode) is scored whole,
exactly as visqol-python scores it. A longer pair is cut at the same sample positions
into ``ceil(n / BLOCK_SAMPLES)`` consecutive segments of equal length (±1 sample, ``n``
the reference's length; the estimate's last segment runs to its end), each scored as
visqol-python scores a pair, and the value is their mean.

Numba: visqol-python's ``accel`` extra compiles its inner loops with numba (the values
are those of its pure-Python path, to 1e-14); a 60 s speech pair took 4 s instead of
138 s. Its parallel loops get one thread (``OMP_NUM_THREADS`` when set), as sqeval
already runs a worker per core.

Needs the optional extra ``visqol`` (``pip install '.[visqol]'``).

References
----------
- M. Chinen, F. S. C. Lim, J. Skoglund, N. Gureev, F. O'Gorman, A. Hines, "ViSQOL v3: an
  open source production ready objective speech and audio metric", QoMEX 2020.
- visqol-python (PyPI), which sqeval calls.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from ._checks import MetricError, as_output, as_pair
from .plcmos import segments

SPEECH_RATE, AUDIO_RATE = 16000, 48000
# The shortest reference with one patch: in speech mode 29 frames of 1280 samples every
# 320 (a 20-frame patch after the first 9), in audio mode 45 frames of 3840 every 960
# (a 30-frame patch after the first 15). Shorter, visqol-python raised IndexError or
# "Reference spectrum size ... smaller than minimum patch size".
MIN_SAMPLES = {"speech": 1280 + 28 * 320, "audio": 3840 + 44 * 960}  # 0.64 s, 0.96 s
BLOCK_SAMPLES = 480000  # 30 s at 16 kHz, 10 s at 48 kHz: longer pairs in equal segments
MAPPING = {
    "speech": "deep-lattice TFLite model (use_lattice_model=True, via ai-edge-litert)",
    "audio": "libsvm nu-SVR model (libsvm_nu_svr_model.txt)",
}
INSTALL_HINT = ("ViSQOL needs the optional extra visqol: pip install '.[visqol]' in "
                "sqeval's source folder")


def missing_backend() -> str | None:
    """Why ViSQOL cannot run here (a package is not installed), or None."""
    from importlib.util import find_spec

    modules = {"visqol": "visqol-python", "ai_edge_litert": "ai-edge-litert",
               "numba": "numba", "libsvm": "libsvm-official"}
    absent = [package for module, package in modules.items() if find_spec(module) is None]
    return f"{INSTALL_HINT} ({', '.join(absent)} not installed)" if absent else None


@lru_cache(maxsize=2)
def _api(mode: str):
    """visqol-python's API in ``mode``, created once per process, with the mapping model
    chosen explicitly (and checked)."""
    reason = missing_backend()
    if reason:
        raise MetricError(reason)
    import numba

    # A worker's share of the cores (one each when there are as many workers as cores), as
    # onnxruntime gets; every core in the sqeval process itself, numba's own default, so
    # scoring a few files in a user's process leaves numba as it was.
    from .dnsmos import onnx_threads

    numba.set_num_threads(max(1, min(onnx_threads(), numba.config.NUMBA_NUM_THREADS)))
    # Its warnings (a duration mismatch, a rate) would go to the terminal of every worker;
    # sqeval passes the rates it expects, and lengths are in each row's notes.
    logging.getLogger("visqol").setLevel(logging.ERROR)
    from visqol import VisqolApi

    api = VisqolApi()
    # The mapping through visqol-python's documented contract (pinned 3.8.0): in speech
    # mode use_lattice_model=True gives the deep-lattice mapper or raises ImportError (never
    # its polynomial fallback); audio mode always maps with the bundled nu-SVR model.
    try:
        with _native_stderr_silenced():  # TFLite's "INFO: Created ... XNNPACK delegate" line
            api.create(mode=mode, use_lattice_model=True if mode == "speech" else None)
    except ImportError as error:
        raise MetricError(f"{INSTALL_HINT} (visqol-python cannot load its {MAPPING[mode]}: "
                          f"{error})") from None
    return api


@contextmanager
def _native_stderr_silenced():
    """Send file descriptor 2 to /dev/null for the duration: the TFLite runtime prints an
    INFO line from C++ when the lattice model is loaded, once per worker, which no
    logging setting reaches. Python exceptions are raised as usual."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _score(api, reference: np.ndarray, estimate: np.ndarray, rate: int) -> float:
    value = float(api.measure_from_arrays(reference, estimate, rate).moslqo)
    if not math.isfinite(value):
        raise MetricError(f"ViSQOL gave {value} (not a finite number)")
    return value


def _one(mode: str, reference: np.ndarray, estimate: np.ndarray, rate: int) -> float:
    spans = segments(len(reference), BLOCK_SAMPLES)  # read at call time (tests shrink it)
    cuts = [(start, stop if index < len(spans) - 1 else max(stop, len(estimate)))
            for index, (start, stop) in enumerate(spans)]
    minimum = MIN_SAMPLES[mode]
    api, values = _api(mode), []
    for index, (start, stop) in enumerate(cuts):
        where = (f" (segment {index + 1} of {len(spans)}, {start / rate:.1f}–"
                 f"{stop / rate:.1f} s)" if len(spans) > 1 else "")
        s, s_hat = reference[start:spans[index][1]], estimate[start:stop]
        for name, x in (("reference", s), ("estimate", s_hat)):
            if len(x) < minimum:
                raise MetricError(
                    f"too short for ViSQOL ({mode} mode): the {name}{where} has {len(x)} "
                    f"samples at {rate // 1000} kHz ({len(x) / rate:.3f} s); it needs at "
                    f"least {minimum} ({minimum / rate:.2f} s) for one patch")
        if not np.any(s):
            raise MetricError(f"reference is silent (all samples zero){where}; no "
                              "comparison with it is defined")
        if not np.any(s_hat):
            raise MetricError(f"estimate is silent (all samples zero){where}; ViSQOL "
                              "compares levels and gives NaN for it")
        values.append(_score(api, s, s_hat, rate))
    return sum(values) / len(values)


def _visqol(mode: str, rate: int, reference, estimate, fs: int):
    s, s_hat = as_pair(reference, estimate, same_length=False)
    if s.shape[:-1] != s_hat.shape[:-1]:
        raise MetricError(f"reference and estimate must have the same leading shape "
                          f"(..., time); got {s.shape} and {s_hat.shape}")
    if int(fs) != rate:
        raise MetricError(f"ViSQOL's {mode} mode runs at {rate} Hz; got {fs} Hz. Resample "
                          "both signals first (sqeval.dsp.resample, as sqeval score does)")
    flat_s, flat_e = s.reshape(-1, s.shape[-1]), s_hat.reshape(-1, s_hat.shape[-1])
    values = [_one(mode, a, b, rate) for a, b in zip(flat_s, flat_e)]
    return as_output(np.reshape(values, s.shape[:-1]))


def visqol(*, reference, estimate, fs: int):
    """ViSQOL v3 speech-mode MOS-LQO (deep-lattice mapping) of ``estimate`` against
    ``reference``, both ``(..., time)`` at 16 kHz; lengths may differ. About [1, 5];
    higher is better.

    Raises:
        MetricError: the extra is not installed, ``fs`` is not 16000, non-finite samples,
            a silent reference or estimate, or a signal shorter than 10240 samples.
    """
    return _visqol("speech", SPEECH_RATE, reference, estimate, fs)


def visqol_audio(*, reference, estimate, fs: int):
    """ViSQOL v3 audio-mode MOS-LQO (nu-SVR mapping) of ``estimate`` against
    ``reference``, both ``(..., time)`` at 48 kHz; lengths may differ. About [1, 5];
    higher is better.

    Raises:
        MetricError: the extra is not installed, ``fs`` is not 48000, non-finite samples,
            a silent reference or estimate, or a signal shorter than 46080 samples.
    """
    return _visqol("audio", AUDIO_RATE, reference, estimate, fs)


def speech_rate(fs: int) -> int:
    """``visqol`` runs at 16 kHz whatever the input's rate."""
    return SPEECH_RATE


def audio_rate(fs: int) -> int:
    """``visqol_audio`` runs at 48 kHz whatever the input's rate."""
    return AUDIO_RATE
