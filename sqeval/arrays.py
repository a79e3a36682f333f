"""Scoring in memory: ``sqeval.evaluate(reference, estimate, fs)`` on numpy arrays or
tensors, one signal or a batch, for a validation loop.

The arrays enter at per-file scoring (:func:`~sqeval.scoring.score_arrays`), skipping
sources, pairing and the runner's files; every check and metric after reading is the
one ``sqeval score`` runs, so the :class:`~sqeval.api.Results` are those of the same
audio written to float WAV files and scored with the CLI. torch is never imported here:
a tensor is taken by what it offers (``detach``, ``cpu``, ``numpy``).
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Mapping

import numpy as np

from .api import Results, UsageError, _specs
from .audio import MAX_RATE, MIN_RATE
from .provenance import provenance as current_provenance
from .results import CLEAN, NOISY
from .scoring import ScoreOptions, score_arrays

ESTIMATE = "estimate"  # the system name of an estimate given as one array (or batch)


def evaluate(reference, estimate, fs: int, *, noisy=None, metrics=None,
             names=None) -> Results:
    """Score estimates held in memory against their references, as ``sqeval score``
    scores the same audio in files.

    Args:
        reference: the clean references: one signal (shape ``(time,)``), a batch on the
            first axis (``(batch, time)``), or a list of 1-D signals (each its own
            length); a numpy array, a tensor (torch, on any device, with or without
            grad), or anything ``numpy.asarray`` takes. Float samples, as
            ``soundfile.read`` gives them (full scale ±1).
        estimate: the estimates, shaped as ``reference`` with as many items: system
            ``"estimate"``; or a ``{system name: estimates}`` mapping for several systems.
        fs: the sample rate of every signal, an ``int`` from 1000 to 768000 Hz (or a 0-d
            integer array or tensor).
        noisy: the noisy inputs, shaped as ``reference``: system ``noisy``, the baseline.
        metrics: as in :func:`sqeval.score`: metric and group names (a string or a
            list), ``"all"``, or None for the default set (``core``).
        names: one name per item, for the ``file`` column; default ``"0"``, ``"1"``, ...

    Returns:
        :class:`~sqeval.api.Results`, one row per item and system (``clean`` first when a
        non-intrusive metric is asked for, then ``noisy``, then the estimates): the rows,
        values and error cells that ``sqeval.score`` gives for the same samples written
        as float WAV files named ``<name>.wav``. An item that cannot be scored (silent or
        constant estimate, silent reference, NaN or Inf samples, lengths too far apart)
        is a row with its reason in the ``error`` cell, never an exception.

    Raises:
        ValueError: a call that cannot make a run (the message says what was expected,
            what was given, and the fix): more than two dimensions, a 2-D array with more
            rows than columns (``(time, channels)``, as ``soundfile.read`` gives a
            multichannel file), no signals at all, counts that differ between
            ``reference``, ``estimate`` and ``noisy``, integer or complex samples, a rate
            outside the range, bad ``names`` or ``metrics``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> clean = rng.standard_normal((2, 16000)) * 0.1
        >>> results = evaluate(clean, clean + 0.01 * rng.standard_normal((2, 16000)),
        ...                    16000, metrics="si_snr")
        >>> results.to_frame()[["file", "system"]].values.tolist()
        [['0', 'estimate'], ['1', 'estimate']]
    """
    fs = _rate(fs)
    references = _items(reference, "reference")
    given = estimate if isinstance(estimate, Mapping) else {ESTIMATE: estimate}
    if not given:
        raise UsageError("estimate is an empty mapping; expected estimates (an array, a "
                         "tensor, a list of signals) or {system name: estimates}")
    systems = {}
    if noisy is not None:
        systems[NOISY] = _items(noisy, "noisy")
    for name, value in given.items():
        _check_system(name)
        systems[name] = _items(value, f"estimate[{name!r}]" if isinstance(estimate, Mapping)
                               else "estimate")
    for name, items in systems.items():
        if len(items) != len(references):
            what = "noisy" if name == NOISY else (
                f"estimate[{name!r}]" if isinstance(estimate, Mapping) else "estimate")
            raise UsageError(f"{what} holds {len(items)} signal(s) but reference holds "
                             f"{len(references)}; expected one per reference, in the same "
                             "order (a batch on the first axis)" + (
                                 "; a mapping given as estimate is {system name: estimates}"
                                 if isinstance(estimate, Mapping) else ""))
    if not references:
        raise UsageError("reference holds no signals (an empty batch); expected at least one "
                         "signal (time,) or a batch (batch, time) with batch >= 1")
    files = _names(names, len(references))
    specs, named = _specs(metrics, "core")
    order = [NOISY] if noisy is not None else []
    order += [name for name in systems if name != NOISY]
    if any(not spec.intrusive for spec in specs):  # DNSMOS of the clean speech too
        order.insert(0, CLEAN)
    options = ScoreOptions(metrics=tuple(specs), systems=tuple(order), strict=named)
    rows = [row for index, file in enumerate(files)
            for row in score_arrays(file, references[index],
                                    {name: items[index] for name, items in systems.items()},
                                    fs, options)]
    present = [name for name in order if any(row.system == name for row in rows)]
    return Results(rows, [spec.name for spec in specs], present, {
        **current_provenance(), "audio": {}, "inputs": "arrays in memory (sqeval.evaluate)",
        "fs": fs, "channels": {"channel": None, "mix": None}, "align": None,
        "max_length_diff": None, "references": {}})


def _rate(fs) -> int:
    if getattr(fs, "ndim", None) == 0 and getattr(fs, "dtype", None) is not None and (
            str(fs.dtype).replace("torch.", "").startswith(("int", "uint"))):
        fs = operator.index(fs)  # a 0-d integer array or tensor (a DataLoader's rate)
    if isinstance(fs, bool) or not isinstance(fs, numbers.Integral) or not (
            MIN_RATE <= fs <= MAX_RATE):
        raise UsageError(f"fs takes the sample rate of the signals, an int from {MIN_RATE} to "
                         f"{MAX_RATE} Hz; got {fs!r}"
                         + _rate_fix(fs))
    return int(fs)


def _rate_fix(fs) -> str:
    """How to turn ``fs`` into the int it stands for, when it plainly stands for one."""
    try:
        flat = np.asarray(fs.detach().cpu() if _is_tensor(fs) else fs, dtype=float).ravel()
    except (TypeError, ValueError):
        return ""
    if flat.size == 0 or not (flat == flat[0]).all() or not float(flat[0]).is_integer() or not (
            MIN_RATE <= flat[0] <= MAX_RATE):
        return ""
    return (f" (pass int(fs), e.g. {int(flat[0])})" if flat.size == 1 else
            f" (one rate per item: pass int(fs[0]), e.g. {int(flat[0])}, when all are equal)")


def _check_system(name) -> None:
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"a system name is a non-empty string; got {name!r} (estimate as "
                         "{'model': estimates})")
    if name in (CLEAN, NOISY):
        raise UsageError(f"the system name {name!r} is reserved for sqeval's own rows ("
                         f"{'the clean references' if name == CLEAN else 'noisy=, the baseline'})"
                         "; name these estimates otherwise, e.g. {'model': estimates}")


def _names(names, count: int) -> list[str]:
    if names is None:
        return [str(index) for index in range(count)]
    if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
        raise UsageError(f"names takes one name per item (a list of strings); got "
                         f"{type(names).__name__} {names!r}")
    names = list(names)
    odd = next((name for name in names if not isinstance(name, str) or not name), None)
    if len(names) != count or odd is not None or len(set(names)) != len(names):
        got = (f"{len(names)} name(s) for {count} item(s)" if len(names) != count else
               f"{odd!r}" if odd is not None else
               f"{next(n for n in names if names.count(n) > 1)!r} twice")
        raise UsageError(f"names takes one distinct, non-empty string per item ({count}); got "
                         f"{got}; leave it out for '0', '1', ...")
    return names


def _items(value, what: str) -> list[np.ndarray]:
    """``value`` as a list of 1-D float64 signals: a 1-D array is one, a 2-D one a batch on
    its first axis, a list or tuple of 1-D arrays is a batch of its own lengths."""
    if isinstance(value, Mapping):
        raise UsageError(f"{what} is a mapping ({type(value).__name__}); expected an array, a "
                         "tensor or a list of signals. For {id: signal} mappings pass "
                         "evaluate([reference[k] for k in ids], [estimate[k] for k in ids], fs, "
                         "names=ids)")
    if isinstance(value, (list, tuple)) and not value:
        return []  # no signals (refused by evaluate), not one empty signal
    if isinstance(value, (list, tuple)) and value and all(np.ndim(item) >= 1 for item in value):
        signals = [_float(_numpy(item), f"{what}[{index}]") for index, item in enumerate(value)]
        wrong = next((index for index, s in enumerate(signals) if s.ndim != 1), None)
        if wrong is not None:
            raise UsageError(f"{what}[{wrong}] has shape {signals[wrong].shape}; a list holds "
                             "1-D signals (time,), one per item")
        return signals
    array = _float(_numpy(value), what)
    if array.ndim == 1:
        return [array]
    if array.ndim == 2:
        if array.shape[0] > array.shape[1]:  # more items than samples: (time, channels)
            raise UsageError(
                f"{what} has shape {array.shape}: {array.shape[0]} signals of "
                f"{array.shape[1]} sample(s) each; expected a batch (batch, time), not "
                "(time, channels) as soundfile.read gives a multichannel file (pass x.T "
                "for a batch of its channels, or x[:, 0] for one channel)")
        return list(array)
    raise UsageError(f"{what} has shape {array.shape}; expected one signal (time,) or a batch "
                     "(batch, time)" + (" (squeeze the channel axis: x[:, 0] for (batch, 1, "
                                        "time))" if array.ndim == 3 else ""))


def _is_tensor(value) -> bool:
    return hasattr(value, "detach") and hasattr(value, "numpy")


def _numpy(value) -> np.ndarray:
    """A numpy array of ``value``: a tensor detached and copied to the CPU (as float32 when
    its dtype has no numpy form, e.g. bfloat16), anything else through ``np.asarray``."""
    if _is_tensor(value):
        value = value.detach()
        if hasattr(value, "cpu"):
            value = value.cpu()
        try:
            return value.numpy()
        except TypeError:  # bfloat16 and kin: exact in float32
            return value.float().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as error:  # ragged nested lists, ...
        raise UsageError(f"cannot read it as an array ({error}); expected a numpy array, a "
                         "tensor, or a list of 1-D signals") from None


def _float(array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype.kind == "f":
        return np.ascontiguousarray(array, dtype=np.float64)
    if array.dtype.kind in "iu":
        raise UsageError(f"{what} holds {array.dtype} samples; expected float samples at full "
                         "scale ±1, as soundfile.read gives them (for 16-bit PCM: x / 32768)")
    raise UsageError(f"{what} holds {array.dtype} values; expected real float samples (a "
                     "float32 or float64 array or tensor)")
