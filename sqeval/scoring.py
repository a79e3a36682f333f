"""Score pairs: one job per clean file, every failure an error cell, never an exception.

A job loads its clean reference once, and each estimate once; each signal is resampled
at most once per rate that a requested metric runs at, and every metric is computed on
those arrays. Jobs run in worker processes; rows come back in a deterministic order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import (AudioError, ChannelPolicy, check_finite, check_resampled_size,
                    estimate_delay, read_audio)
from .dsp import resample
from .metrics import MetricError, MetricSpec, NotApplicableError
from .pairing import Job
from .results import CLEAN, NO_REFERENCE, Row


@dataclass(frozen=True)
class ScoreOptions:
    """How to score: which metrics, which systems in what order, and input policies.

    Attributes:
        metrics: the metrics to compute, in column order.
        systems: system names in output order (``noisy`` first when present).
        channels: what to do with multichannel files.
        strict: the metrics asked for by name: for them, not applying counts as a
            failure.
        max_delay: with ``--align``, the largest delay (seconds) searched and removed
            before the sample-aligned metrics; None leaves the signals as they are.
        no_reference: there are no clean files: every system is scored with the
            non-intrusive metrics alone.
        max_length_diff: the largest difference between an estimate's length and its
            reference's, as a fraction of the reference's length (never less than
            :data:`MIN_LENGTH_ALLOWANCE_S`); a larger one is an error for the whole row.
            None: the default, 10 % but at most :data:`MAX_LENGTH_ALLOWANCE_S`.
        check_outputs: refuse silent, constant and truncated estimates (``sqeval
            sanity`` scores such cases on purpose, to show what each metric gives).

    A system named :data:`CLEAN` is the clean reference itself: its rows carry the
    non-intrusive metrics (DNSMOS of the clean speech); the intrusive ones do not apply.
    """

    metrics: tuple[MetricSpec, ...]
    systems: tuple[str, ...]
    channels: ChannelPolicy = ChannelPolicy()
    strict: frozenset = frozenset()
    max_delay: float | None = None  # seconds; set: remove a constant delay (--align)
    no_reference: bool = False
    max_length_diff: float | None = None  # of the reference's length; None: the default
    check_outputs: bool = True  # refuse degenerate and truncated estimates (sanity: False)


MIN_LENGTH_ALLOWANCE_S = 0.25  # seconds an estimate may always differ from its reference
# (real models' framing: CMGAN's VoiceBank outputs are 0.1 s shorter than their references)
DEFAULT_LENGTH_FRACTION = 0.1  # by default, up to 10 % of the reference's length ...
MAX_LENGTH_ALLOWANCE_S = 1.0  # ... but never more than 1 s: the common prefix is what is
# scored, so a long file must not leave seconds of its reference unscored by default

DEFAULT_MAX_DELAY_S = 0.5  # seconds: the largest delay --align searches, by default

# The delay hint. Without --align, each estimate's lag is measured (the peak of its
# cross-correlation with its reference, searched as --align searches by default, so the
# lag named is the one --align would remove); a system whose lags agree on a constant
# delay gets a note suggesting --align (delay_hints). A delay is the one mistake that
# costs the sample-aligned metrics everything: on sample_data, delaying a clean file by
# 1 ms took its SI-SNR against itself from 174 dB to -16 dB.
DELAY_HINT_MIN_S = 0.001  # a median lag beyond 1 ms: a peak nearer 0 can be the system's
# own phase response (a filter's group delay moves it by a few samples), no delay at all
DELAY_HINT_SPREAD_S = 0.001  # the lags that agree lie within 1 ms of their median (a
# real constant delay gives the same lag on every file, to a sample or two)
DELAY_HINT_MIN_FILES = 2  # at least this many files agree, and more than half of those
# measured: one file's peak away from 0 is that file's distortion, not a delay
DELAY_KEY = "~delay"  # the measured lag among a pair's cached outcomes (no metric's name)

REFERENCE_ITSELF = "the clean reference itself (an intrusive metric compares against it)"
NEEDS_REFERENCE = "needs a clean reference (--no-reference)"


class Signal:
    """A mono signal at its native rate, resampled on demand, once per rate."""

    def __init__(self, samples: np.ndarray, rate: int, notes: list | None = None):
        self.digest = None  # the content digest of the file it was read from, if any
        self.rate = rate
        self._by_rate = {rate: samples}
        self.notes = notes or []  # what reading it did (e.g. a mono file under --channel)

    @property
    def samples(self) -> np.ndarray:
        return self._by_rate[self.rate]

    def at(self, rate: int) -> np.ndarray:
        """The signal at ``rate``. Raises :class:`MetricError` when that would hold more
        samples than sqeval keeps for one signal (a metric's error cell)."""
        if rate not in self._by_rate:
            try:
                check_resampled_size(len(self.samples), self.rate, rate)
            except AudioError as error:
                raise MetricError(str(error)) from None
            self._by_rate[rate] = resample(self.samples, self.rate, rate)
        return self._by_rate[rate]


Known = dict  # system name → (outcomes by metric, notes or None) found in the cache


def _complete(row: Row, metrics) -> Row:
    """Give ``row`` a value for every metric, in column order: NaN where none was set."""
    row.values = {spec.name: row.values.get(spec.name, math.nan) for spec in metrics}
    return row


def failed_row(file: str, system: str, reason: str, metrics) -> Row:
    """A row of which nothing could be scored, and why."""
    return _complete(Row(file, system, file_error=reason), metrics)


def score_job(job: Job, display_name: str, options: ScoreOptions,
              known: Known | None = None) -> list[Row]:
    """All rows of one job, in ``options.systems`` order. Never raises for bad input.

    Metrics whose outcome is in ``known`` are not computed again; an estimate whose every
    outcome is known is not even read.
    """
    known = known or {}
    reference, reference_error = None, None
    rows = []
    for name in options.systems:
        if name in job.problems:
            rows.append(failed_row(display_name, name, job.problems[name], options.metrics))
            continue
        if name not in job.estimates:
            continue
        outcomes, notes = known.get(name, ({}, None))
        if notes is not None and all(key in outcomes for key in needed_outcomes(options, name)):
            rows.append(_row_from_outcomes(display_name, name, outcomes, notes, options))
            continue
        if options.no_reference:
            rows.append(_score_estimate(display_name, name, None, job.estimates[name], options,
                                        outcomes))
            continue
        if reference is None and reference_error is None:
            try:
                reference = read_reference(job.clean, options.channels)
            except AudioError as error:
                reference_error = f"clean reference: {error}"
        if reference is None:
            rows.append(failed_row(display_name, name, reference_error, options.metrics))
        elif name == CLEAN:  # the reference Signal itself: resampled at most once per rate
            row = Row(display_name, name, notes=list(reference.notes),
                      content=(reference.digest, reference.digest))
            rows.append(_score_alone(row, reference, options, outcomes, REFERENCE_ITSELF))
        else:
            rows.append(_score_estimate(display_name, name, reference, job.estimates[name],
                                        options, outcomes))
    return rows


def _row_from_outcomes(file, system, outcomes, notes, options) -> Row:
    row = Row(file, system, notes=list(notes))
    if measures_delay(options, system):
        row.delay = _delay(outcomes[DELAY_KEY])
    for spec in options.metrics:
        _apply(row, spec.name, outcomes[spec.name], _strict(options, system, spec))
    return _complete(row, options.metrics)


def _strict(options: ScoreOptions, system: str, spec: MetricSpec) -> bool:
    """Whether ``spec`` not applying is a failure in this row: it was named, and it is not
    an intrusive metric in the row of the clean reference itself."""
    return spec.name in options.strict and not (system == CLEAN and spec.intrusive)


def read_reference(path: Path, channels: ChannelPolicy) -> Signal:
    """Read a clean reference; a silent one is an :class:`AudioError`. The signal's
    ``digest`` is the content digest of the bytes decoded."""
    notes, digests = [], []
    samples, rate = read_audio(path, channels, notes, digests)
    signal = reference_signal(samples, rate, notes)
    signal.digest = digests[0]
    return signal


def reference_signal(samples: np.ndarray, rate: int, notes=()) -> Signal:
    """The clean reference as a :class:`Signal`; a silent one is an :class:`AudioError`."""
    if not samples.any():
        raise AudioError("silent (all samples zero); no comparison with it is defined")
    return Signal(samples, rate, [f"clean reference: {note}" for note in notes])


def score_arrays(file: str, reference: np.ndarray, estimates: dict, rate: int,
                 options: ScoreOptions) -> list[Row]:
    """All rows of one item held in memory (``sqeval.evaluate``), in ``options.systems``
    order: what :func:`score_job` gives for the same float64 samples read from files at
    ``rate``. ``estimates`` maps a system name to its samples (the :data:`CLEAN` row, when
    a system, is the reference itself). Never raises for bad input: an empty or non-finite
    signal fails its row as an unreadable file would, a silent or non-finite reference
    every row of the item."""
    try:
        signal = reference_signal(_checked(reference), rate)
    except AudioError as error:
        reason = f"clean reference: {error}"
        return [failed_row(file, name, reason, options.metrics) for name in options.systems
                if name == CLEAN or name in estimates]
    rows = []
    for name in options.systems:
        if name == CLEAN:
            rows.append(_score_alone(Row(file, name), signal, options, {}, REFERENCE_ITSELF))
        elif name in estimates:
            try:
                samples = _checked(estimates[name])
            except AudioError as error:
                rows.append(failed_row(file, name, str(error), options.metrics))
                continue
            rows.append(score_signals(file, name, signal, samples, rate, options))
    return rows


def _checked(samples: np.ndarray) -> np.ndarray:
    """``samples`` when :func:`~sqeval.audio.read_audio` would have returned them from a
    file: some samples, all finite; else the :class:`AudioError` it raises."""
    if samples.size == 0:
        raise AudioError("the signal holds no samples")
    check_finite(samples)
    return samples


def _score_estimate(file: str, system: str, reference: Signal | None, path: Path,
                    options: ScoreOptions, known: dict | None = None) -> Row:
    notes, digests = [], []
    try:
        samples, rate = read_audio(path, options.channels, notes, digests)
    except AudioError as error:
        return failed_row(file, system, str(error), options.metrics)
    row = score_signals(file, system, reference, samples, rate, options, known)
    row.notes[:0] = notes
    row.content = (NO_REFERENCE if reference is None else reference.digest, digests[0])
    return row


def score_signals(file: str, system: str, reference: Signal | None, samples: np.ndarray,
                  rate: int, options: ScoreOptions, known: dict | None = None) -> Row:
    """Score an estimate held in memory against ``reference``: the per-file path of
    ``sqeval score`` after reading (resampling to the reference's rate, trimming for
    sample-aligned metrics, every failure an error cell). Outcomes in ``known`` are
    reused; the others are computed and kept in ``row.fresh``.

    With ``reference=None`` only non-intrusive metrics have values."""
    known = known or {}
    row = Row(file, system)
    degenerate = degenerate_estimate(samples) if options.check_outputs else None
    if degenerate is not None:
        return failed_row(file, system, degenerate, options.metrics)
    if reference is not None:
        row.notes += reference.notes
    if reference is None:
        return _score_alone(row, Signal(samples, rate), options, known, NEEDS_REFERENCE)
    fs = reference.rate
    if rate != fs:
        try:
            check_resampled_size(len(samples), rate, fs)
        except AudioError as error:
            return failed_row(file, system, str(error), options.metrics)
        samples = resample(samples, rate, fs)
        row.notes.append(f"estimate at {rate} Hz resampled to the reference's {fs} Hz")
    estimate = Signal(samples, fs)
    n_ref, n_est = len(reference.samples), len(samples)
    mismatch = length_mismatch(n_ref, n_est, fs, options.max_length_diff,
                               options.max_delay) if options.check_outputs else None
    if mismatch is not None:
        return failed_row(file, system, mismatch, options.metrics)
    if n_ref != n_est:
        row.notes.append(
            f"lengths differ by {abs(n_ref - n_est)} samples (reference {n_ref}, estimate "
            f"{n_est}); sample-aligned metrics use the first {min(n_ref, n_est)}"
        )
    if measures_delay(options, system):
        if DELAY_KEY not in known:
            row.fresh[DELAY_KEY] = measured_delay(reference.samples, samples, fs)
        row.delay = _delay(known.get(DELAY_KEY) or row.fresh[DELAY_KEY])
    aligned = _aligned(reference, estimate, options, row) if options.max_delay else None
    computation = Computation(reference, estimate, aligned)
    for spec in options.metrics:
        if spec.name in known:
            outcome = known[spec.name]
        else:
            outcome = row.fresh[spec.name] = computation.outcome(spec)
        _apply(row, spec.name, outcome, _strict(options, system, spec))
    return _complete(row, options.metrics)


def degenerate_estimate(samples: np.ndarray) -> str | None:
    """Why ``samples`` is not an output any metric should score, or None: silent (all
    zero) or constant (DC only). A model that outputs either is broken; its row fails
    (and fails gates), whatever a metric would make of it (a DC estimate got STOI 0.51)."""
    if samples.size < 2:
        return f"the estimate has {samples.size} sample(s): too short to score"
    first = samples.flat[0]
    if not np.any(samples != first):
        what = "silent (all samples zero)" if first == 0 else f"constant (every sample {first:.6g})"
        return f"the estimate is {what}: a degenerate output, not scored"
    return None


def length_mismatch(n_ref: int, n_est: int, fs: int, max_diff: float | None,
                    max_delay: float | None = None) -> str | None:
    """Why an estimate of ``n_est`` samples cannot be scored against a reference of
    ``n_ref`` (both at ``fs``), or None: their lengths differ by more than the allowance,
    ``max_diff`` of the reference's length (default: 10 %, at most
    :data:`MAX_LENGTH_ALLOWANCE_S`), never less than :data:`MIN_LENGTH_ALLOWANCE_S`; with
    ``--align``, plus the largest delay it removes. Scoring the common prefix would hide
    the rest (the first 20 ms of a 2.9 s output got SI-SNR 140 dB)."""
    if max_diff is None:
        allowed = min(DEFAULT_LENGTH_FRACTION * n_ref, MAX_LENGTH_ALLOWANCE_S * fs)
        rule = (f"{DEFAULT_LENGTH_FRACTION:.0%} (at most {MAX_LENGTH_ALLOWANCE_S:g} s, at "
                f"least {MIN_LENGTH_ALLOWANCE_S:g} s)")
    else:
        allowed, rule = max_diff * n_ref, f"{max_diff:.0%} (at least {MIN_LENGTH_ALLOWANCE_S:g} s)"
    allowed = max(allowed, MIN_LENGTH_ALLOWANCE_S * fs) + (max_delay or 0.0) * fs
    if abs(n_ref - n_est) <= allowed:
        return None
    which = "shorter" if n_est < n_ref else "longer"
    return (f"the estimate is {n_est} samples ({n_est / fs:.3f} s), the reference {n_ref} "
            f"({n_ref / fs:.3f} s): {abs(n_ref - n_est) / n_ref:.1%} {which}, more than the "
            f"{rule} allowed{' plus --max-delay' if max_delay else ''}; a truncated or "
            "padded output is not scored on part of the signal (--max-length-diff to allow "
            "more)")


def _score_alone(row: Row, signal: Signal, options: ScoreOptions, known: dict,
                 not_applicable: str) -> Row:
    """A row of non-intrusive values only: of the clean reference itself (the
    :data:`CLEAN` system), or of an estimate when there is no reference. Intrusive
    metrics do not apply, for the reason ``not_applicable``."""
    computation = Computation(None, signal)
    for spec in options.metrics:
        if spec.name in known:
            outcome = known[spec.name]
        elif spec.intrusive:
            outcome = row.fresh[spec.name] = ("n/a", None, not_applicable)
        else:
            outcome = row.fresh[spec.name] = computation.outcome(spec)
        _apply(row, spec.name, outcome, _strict(options, row.system, spec))
    return _complete(row, options.metrics)


def measures_delay(options: ScoreOptions, system: str) -> bool:
    """Whether the rows of ``system`` measure their estimate's lag for the delay hint:
    not aligned (``--align``), against a clean reference, and some metric asked for
    compares sample by sample (the metrics a delay misleads)."""
    return (options.max_delay is None and not options.no_reference and system != CLEAN
            and any(spec.intrusive and spec.sample_aligned for spec in options.metrics))


def needed_outcomes(options: ScoreOptions, system: str) -> list[str]:
    """The outcomes a row of ``system`` needs, in the cache's terms: every metric's, and
    the measured lag when :func:`measures_delay` (a cached row has the hint's lag too)."""
    names = [spec.name for spec in options.metrics]
    return names + [DELAY_KEY] if measures_delay(options, system) else names


def measured_delay(reference: np.ndarray, estimate: np.ndarray, fs: int):
    """The lag of ``estimate`` behind ``reference`` (both at ``fs``) as an outcome:
    ``("value", seconds, "")``, the peak of their cross-correlation within
    ±:data:`DEFAULT_MAX_DELAY_S` (negative: the estimate leads); ``("n/a", None,
    reason)`` when the peak lies at the edge of the search, where the correlation may
    still rise (no peak found; a zero correlation has its argmax there too)."""
    max_lag = round(DEFAULT_MAX_DELAY_S * fs)
    edge = min(max_lag, len(reference) - 1, len(estimate) - 1)
    lag = estimate_delay(reference, estimate, max_lag)
    if edge <= 0 or abs(lag) >= edge:
        return ("n/a", None, f"no cross-correlation peak within ±{edge / fs:g} s")
    return ("value", lag / fs, "")


def _delay(outcome) -> float | None:
    kind, value, _ = outcome
    return float(value) if kind == "value" else None


def delay_hints(rows: list[Row], systems: list[str]) -> list[str]:
    """A note for each system whose outputs are likely delayed by a constant amount:
    the lags measured on its files (``Row.delay``) have a median beyond
    :data:`DELAY_HINT_MIN_S`, and at least :data:`DELAY_HINT_MIN_FILES` of them, more
    than half of those measured, lie within :data:`DELAY_HINT_SPREAD_S` of it. A note
    only: it changes no number, no verdict and no exit code.

    Example:
        >>> rows = [Row(f"{k}.wav", "sysA", delay=0.01) for k in range(3)]
        >>> delay_hints(rows, ["sysA"])[0][:70]
        "system 'sysA': its outputs trail the clean references by about 10.0 ms"
    """
    hints = []
    for system in systems:
        lags = [row.delay for row in rows if row.system == system and row.delay is not None]
        if not lags:
            continue
        median = float(np.median(lags))
        agreeing = [lag for lag in lags if abs(lag - median) <= DELAY_HINT_SPREAD_S]
        if (abs(median) <= DELAY_HINT_MIN_S or len(agreeing) < DELAY_HINT_MIN_FILES
                or 2 * len(agreeing) <= len(lags)):
            continue
        typical = float(np.median(agreeing))
        hints.append(
            f"system '{system}': its outputs {'trail' if typical > 0 else 'lead'} the clean "
            f"references by about {1000 * abs(typical):.1f} ms on {len(agreeing)} of "
            f"{len(lags)} files (the peak of their cross-correlation); metrics that compare "
            "sample by sample (SI-SNR, SDR, STOI, ...) punish a delay heavily: if it is the "
            "system's latency, --align (align=True in sqeval.score) removes it before them")
    return hints


def _aligned(reference: Signal, estimate: Signal, options: ScoreOptions, row: Row):
    """The pair with the estimated constant delay removed (for sample-aligned metrics)."""
    fs = reference.rate
    delay = estimate_delay(reference.samples, estimate.samples, round(options.max_delay * fs))
    row.notes.append(f"aligned: the estimate trails the reference by {delay} samples "
                     f"({1000 * delay / fs:.2f} ms); removed before the sample-aligned metrics")
    if delay >= 0:
        return reference, Signal(estimate.samples[delay:], fs)
    return Signal(reference.samples[-delay:], fs), estimate


def _apply(row: Row, name: str, outcome, strict: bool) -> None:
    kind, value, message = outcome
    if kind == "value":
        row.values[name] = float(value)
    elif kind == "n/a" and not strict:
        row.not_applicable[name] = message
    else:
        row.errors[name] = message


class Computation:
    """The metrics of one (reference, estimate) pair, each thing computed once: a family
    (STOI with ESTOI, the classic measures) once per rate, and a metric that another
    reuses (``pesq_wb`` inside the composites, see ``MetricSpec.needs``) once.

    ``reference`` is None for non-intrusive metrics scored without one; ``aligned`` is the
    pair with a constant delay removed (``--align``), for the sample-aligned metrics.
    """

    def __init__(self, reference: Signal | None, estimate: Signal, aligned=None):
        self.reference, self.estimate, self.aligned = reference, estimate, aligned
        self._results: dict = {}  # (family or metric name, rate) → result or MetricError

    def outcome(self, spec: MetricSpec):
        """("value", x, "") or ("error" | "n/a", None, reason); never raises."""
        try:
            value = self._result(spec)
            if spec.family is not None:
                value = value[spec.name]
                if isinstance(value, MetricError):  # this member alone could not be computed
                    raise value
            value = float(value)
            if not math.isfinite(value):  # never a silent NaN, never an inf in the CSV
                return ("error", None, self._not_finite(value))
            return ("value", value, "")
        except NotApplicableError as error:
            return ("n/a", None, str(error))
        except MetricError as error:
            return ("error", None, str(error))
        except Exception as error:  # a bug or a backend crash costs one cell, not the run
            return ("error", None, f"unexpected {type(error).__name__}: {error}")

    def _not_finite(self, value: float) -> str:
        peaks = ", ".join(f"{name} peak |x| = {np.max(np.abs(signal.samples)):.3g}"
                          for name, signal in (("reference", self.reference),
                                               ("estimate", self.estimate)) if signal is not None)
        return (f"the result is {value} (not a finite number): the signals' levels are "
                f"outside what float64 can square and sum ({peaks}); check the files' levels")

    def _result(self, spec: MetricSpec):
        """What computing ``spec`` gives (its family's dict, or its value), computed once;
        raises the :class:`MetricError` of a failure, every time it is asked for."""
        rate = spec.rate_for((self.reference or self.estimate).rate)
        key = (spec.family or spec.name, rate)
        if key not in self._results:
            try:
                self._results[key] = self._compute(spec, rate)
            except MetricError as error:  # every member of a family gets the reason
                self._results[key] = error
        if isinstance(self._results[key], MetricError):
            raise self._results[key]
        return self._results[key]

    def _compute(self, spec: MetricSpec, rate: int):
        from .metrics import REGISTRY

        pair = self.aligned if self.aligned and spec.sample_aligned else (
            self.reference, self.estimate)
        s = pair[0].at(rate) if spec.intrusive else None
        s_hat = pair[1].at(rate)
        if spec.sample_aligned and spec.intrusive:
            length = min(len(s), len(s_hat))
            s, s_hat = s[:length], s_hat[:length]
        if spec.family is None:
            return spec.compute(reference=s, estimate=s_hat, fs=rate)
        reused = {keyword: self._result(REGISTRY[name]) for keyword, name in spec.needs.items()}
        return spec.compute_family(reference=s, estimate=s_hat, fs=rate, **reused)


