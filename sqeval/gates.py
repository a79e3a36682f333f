"""Quality gates: thresholds on a statistic of a metric, checked per system.

Grammar: ``[SYSTEM:][delta.]METRIC[.STAT] OP NUMBER`` with ``OP`` one of
``>= > <= <`` and ``STAT`` one of ``mean`` (the default), ``median``, ``min``, ``max``,
or ``pNN`` (the NN-th percentile, 0 ≤ NN ≤ 100). ``delta.`` takes the statistic over the
paired per-file improvement ``system − noisy``. A gate that names no system applies to
every enhanced system (not to the noisy input); ``noisy:...`` gates the noisy input.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from dataclasses import dataclass
from pathlib import Path

from .metrics import REGISTRY
from .results import CLEAN, NOISY, Row, plural
from .stats import paired_difference, statistic, values_by_file

OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_GATE = re.compile(
    r"^\s*(?:(?P<system>[^:=<>\s]+)\s*:\s*)?(?P<delta>delta\.)?(?P<metric>[A-Za-z_][\w]*)"
    r"(?:\.(?P<stat>mean|median|min|max|p\d{1,3}(?:\.\d+)?))?\s*(?P<op>>=|<=|>|<)\s*"
    r"(?P<threshold>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


class GateError(ValueError):
    """A gate that cannot be parsed or refers to something unknown; says why."""


@dataclass(frozen=True)
class Gate:
    """One threshold, as written."""

    text: str
    metric: str
    op: str
    threshold: float
    stat: str = "mean"
    delta: bool = False
    system: str | None = None

    @property
    def key(self) -> tuple:
        """What a later gate of the same left side and direction replaces."""
        return (self.system, self.delta, self.metric, self.stat, self.op[0])

    @property
    def subject(self) -> str:
        return f"{'delta.' if self.delta else ''}{self.metric}.{self.stat}"


def parse_gate(text: str) -> Gate:
    """Parse one gate.

    Example:
        >>> g = parse_gate("sysA:delta.pesq_wb.p10>=0.3")
        >>> g.system, g.delta, g.metric, g.stat, g.op, g.threshold
        ('sysA', True, 'pesq_wb', 'p10', '>=', 0.3)

    Raises:
        GateError: the text does not follow the grammar, names an unknown metric, or a
            percentile outside 0 … 100.
    """
    match = _GATE.match(text)
    if match is None:
        raise GateError(f"cannot read the gate {text!r}; expected [SYSTEM:][delta.]METRIC"
                        "[.mean|median|min|max|pNN] >=|>|<=|< NUMBER, e.g. 'pesq_wb.median>=3'")
    parts = match.groupdict()
    if parts["metric"] not in REGISTRY:
        raise GateError(f"gate {text!r}: unknown metric {parts['metric']!r}; known: "
                        f"{', '.join(REGISTRY)}")
    stat = parts["stat"] or "mean"
    if stat.startswith("p") and not 0 <= float(stat[1:]) <= 100:
        raise GateError(f"gate {text!r}: percentile {stat[1:]} is outside 0 … 100")
    return Gate(text.strip(), parts["metric"], parts["op"], float(parts["threshold"]), stat,
                bool(parts["delta"]), parts["system"])


def check_gate_targets(gates: list[Gate], metrics: list[str], systems: list[str]) -> None:
    """Refuse, before scoring, a gate that could never be checked in this run.

    Raises:
        GateError: a gate on a metric the run does not compute, on a system it does not
            have, a ``delta.`` gate without the noisy inputs, or a gate on the clean
            references' row with an intrusive metric; the message says the fix.
    """
    for gate in gates:
        if gate.metric not in metrics:
            raise GateError(
                f"gate {gate.text!r} needs {gate.metric}, which this run does not compute "
                f"(metrics: {', '.join(metrics)}); add it, e.g. --metrics "
                f"{','.join([*metrics, gate.metric])}, or remove the gate")
        if gate.system == CLEAN and REGISTRY[gate.metric].intrusive:
            # The clean row is the reference scored against itself: an intrusive metric is
            # n/a on every file, so the gate would fail "no file scored" after the whole run.
            usable = [name for name in metrics if not REGISTRY[name].intrusive]
            example = (f", e.g. '{CLEAN}:{usable[0]}>=3'" if usable else
                       " (such as dnsmos_ovrl, with --metrics ...,dnsmos)")
            raise GateError(
                f"gate {gate.text!r}: the '{CLEAN}' row is the clean references, which only "
                f"the non-intrusive metrics score; {gate.metric} compares with the reference "
                f"itself, so it is n/a there and the gate could never pass. Gate '{CLEAN}' on "
                f"a non-intrusive metric{example}, or gate the enhanced systems")
        if gate.system is not None and gate.system not in systems:
            raise GateError(f"gate {gate.text!r}: no system named {gate.system!r} in this run "
                            f"(systems: {', '.join(systems)})")
        if gate.delta and NOISY not in systems:
            raise GateError(f"gate {gate.text!r}: delta gates compare with the noisy inputs; "
                            "give them with --noisy DIR")


@dataclass(frozen=True)
class GateResult:
    """One gate on one system: the statistic observed, and what it saw.

    Attributes:
        n: files whose value entered the statistic.
        failed: files of the system where the gated metric could not be computed (an
            error, an unreadable, degenerate or truncated output; a missing output too,
            unless ``--allow-missing``); for a ``delta.`` gate, on either side.
        na: files where the metric does not apply (e.g. ``pesq_wb`` at 8 kHz).
        missing: output files that do not exist, excused by ``--allow-missing``.
    """

    gate: Gate
    system: str
    observed: float
    passed: bool
    reason: str = ""  # why it failed besides the number
    n: int = 0
    failed: int = 0
    na: int = 0
    missing: int = 0


MISSING_FAILS = ("some files could not be scored (--allow-missing excuses only output "
                 "files that do not exist)")


@dataclass(frozen=True)
class Verdict:
    """A run's verdict, the one its exit code says: ``FAIL`` (a gate failed, or a file
    could not be scored under gates, other than a missing output with
    ``--allow-missing``), ``INCOMPLETE`` (files could not be scored, no gates), ``PASS``
    (gates, all hold, every gated file scored) or ``OK`` (no gates, all scored)."""

    outcome: str
    reason: str


def unexcused_failures(rows: list[Row], allow_missing: bool) -> int:
    """Rows that could not be fully scored, less the missing files ``--allow-missing``
    excuses: silence, NaN, truncation and every metric error always count."""
    return sum(row.failed and not (allow_missing and row.missing) for row in rows)


def gated_rows(results: list[GateResult], rows: list[Row]) -> list[Row]:
    """The rows of the systems the gates checked (and of ``noisy`` under a delta gate):
    those a gated verdict is about."""
    systems = {r.system for r in results} | (
        {NOISY} if any(r.gate.delta for r in results) else set())
    return [row for row in rows if row.system in systems]


def run_verdict(results: list[GateResult], rows: list[Row], gated: bool,
                allow_missing: bool) -> Verdict:
    """The verdict of a run of ``rows`` with gate ``results``. With gates, a failed row of
    a gated system (other than a missing file under ``allow_missing``) fails the run; a
    row of an ungated system (the noisy input, the clean references) does not."""
    failed = [r for r in results if not r.passed]
    if failed:
        return Verdict("FAIL", f"{len(failed)} of {len(results)} gate checks failed")
    unexcused = unexcused_failures(gated_rows(results, rows), allow_missing)
    if unexcused and gated:
        return Verdict("FAIL", MISSING_FAILS)
    if any(row.failed for row in rows) and not gated:
        return Verdict("INCOMPLETE", "no gates; some files could not be scored")
    return Verdict("PASS", "every gate holds") if gated else Verdict("OK", "every file scored")


def verdict_line(verdict: Verdict, results: list[GateResult], rows: list[Row],
                 allow_missing: bool) -> str:
    """One line that ends a gated run: the verdict with its counts."""
    checks = f"{sum(r.passed for r in results)} of {len(results)} gate checks pass"
    rows = gated_rows(results, rows)
    failed = unexcused_failures(rows, allow_missing)
    missing = sum(row.missing for row in rows)
    na = sum(r.na for r in results)
    return (f"{verdict.outcome}: {checks}; {plural(failed, 'file')} not scored"
            f"{f', {missing} missing (allowed)' if allow_missing and missing else ''}"
            f"{f', {na} gated n/a cells' if na else ''} ({verdict.reason})")


def recorded_verdict(verdict: Verdict, results: list[GateResult], rows: list[Row],
                     allow_missing: bool) -> dict:
    """The verdict and its counts as the run's provenance records them (``verdict`` in the
    ``.meta.json``; ``Results.verdict``)."""
    rows = gated_rows(results, rows) if results else rows
    return {"outcome": verdict.outcome, "reason": verdict.reason,
            "gate_checks": len(results), "gate_failures": sum(not r.passed for r in results),
            "rows_failed": unexcused_failures(rows, allow_missing and bool(results)),
            "missing": sum(row.missing for row in rows),
            "na": sum(r.na for r in results)}


def check_gates(gates: list[Gate], rows: list[Row], systems: list[str], *,
                allow_missing: bool = False, allow_na: bool = False) -> list[GateResult]:
    """Every gate against every system it applies to, in the order given. A gate passes
    only when its statistic holds on at least one file and no file of the system failed
    the metric (a missing output is excused by ``allow_missing``) or, unless
    ``allow_na``, found it not applicable."""
    noisy = [row for row in rows if row.system == NOISY]
    results = []
    for gate in gates:
        # A gate without a system is about the outputs: not the noisy input, not the clean
        # references (scored when DNSMOS is asked for); name those to gate them.
        targets = [gate.system] if gate.system else [s for s in systems
                                                     if s not in (NOISY, CLEAN)]
        for system in targets:
            results.append(_check(gate, system, rows, noisy, systems, allow_missing, allow_na))
    return results


def _check(gate: Gate, system: str, rows, noisy, systems, allow_missing: bool,
           allow_na: bool) -> GateResult:
    if system not in systems:
        return GateResult(gate, system, math.nan, False, f"no system named {system!r}")
    if gate.delta and not noisy:
        return GateResult(gate, system, math.nan, False, "delta needs --noisy")
    own = [row for row in rows if row.system == system]
    sides = {row.file: [row] for row in own}
    if gate.delta:
        for row in noisy:
            sides.setdefault(row.file, []).append(row)
    excused = {file for file, pair in sides.items()
               if allow_missing and any(row.missing for row in pair)}
    failed = sum(file not in excused and any(row.metric_failed(gate.metric) for row in pair)
                 for file, pair in sides.items())
    na = sum(file not in excused and any(gate.metric in row.not_applicable for row in pair)
             for file, pair in sides.items())
    if gate.delta:
        values = paired_difference(values_by_file(noisy, gate.metric),
                                   values_by_file(own, gate.metric)).scored().differences
    else:
        values = [row.values[gate.metric] for row in own]
    values = [v for v in values if not math.isnan(v)]
    observed = statistic(values, gate.stat)
    counts = dict(n=len(values), failed=failed, na=na, missing=len(excused))
    reasons = []
    if failed:
        reasons.append(f"{plural(failed, 'file')} not scored")
    if na and not allow_na:
        reasons.append(f"n/a on {plural(na, 'file')} (--allow-na to gate the rest)")
    if math.isnan(observed):
        reasons.append("no file scored")
    if reasons:
        return GateResult(gate, system, observed, False, "; ".join(reasons), **counts)
    return GateResult(gate, system, observed, OPERATORS[gate.op](observed, gate.threshold),
                      **counts)


@dataclass(frozen=True)
class GateConfig:
    gates: list[Gate]
    allow_missing: bool | None
    source: Path | None


CONFIG_KEYS = ("gates", "allow_missing")  # every key a config file may hold


def find_config(start: Path) -> Path | None:
    """``sqeval.toml``, or a ``pyproject.toml`` with ``[tool.sqeval]``, in ``start`` or above.

    Raises:
        GateError: a ``sqeval.toml`` or ``pyproject.toml`` on the way that cannot be read,
            is not valid TOML, or has a ``tool`` that is not a table; the message names
            the file.
    """
    for folder in [start, *start.parents]:
        candidate = folder / "sqeval.toml"
        if _is_file(candidate):
            return candidate
        pyproject = folder / "pyproject.toml"
        # A pyproject.toml that cannot be read (or parsed) is an error even when it may
        # not be sqeval's: sqeval cannot tell whether it holds [tool.sqeval], and skipping
        # it would run without the gates it might hold, so CI would pass ungated. The
        # message says how to stop the search before it (a sqeval.toml below it).
        if _is_file(pyproject) and "sqeval" in _tool_table(_load_toml(pyproject), pyproject):
            return pyproject
    return None


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a config file to read; a broken link or a folder that cannot be
    looked into is an error, not a config that is not there (that would drop its gates)."""
    try:
        if path.is_file():
            return True
        dangling = path.is_symlink()
    except OSError as error:
        raise GateError(f"{path}: cannot tell whether this config file exists "
                        f"({error.strerror or error}); sqeval looks for sqeval.toml and "
                        "pyproject.toml from the working directory upwards") from None
    if dangling:
        raise GateError(f"{path}: a link to a file that does not exist; sqeval would read "
                        "its gates from it. Fix or remove the link")
    return False


def _tool_table(data: dict, path: Path) -> dict:
    """The ``tool`` table of a pyproject.toml (empty when it has none)."""
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise GateError(f"{path}: 'tool' must be a table ([tool.sqeval] for sqeval's "
                        f"settings); got {_kind(tool)}")
    return tool


def _kind(value) -> str:
    """What a TOML value is, in words, for a message."""
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
             list: "an array", dict: "a table"}
    return next((name for kind, name in names.items() if isinstance(value, kind)),
                f"a {type(value).__name__}")


def _load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        data = path.read_bytes()
    except OSError as error:
        # a pyproject.toml may not be sqeval's: say how to stop the search before it
        other = (", or put a sqeval.toml (it may be empty) in a folder below it to stop the "
                 "search there" if path.name == "pyproject.toml" else "")
        raise GateError(
            f"{path}: cannot read this config file ({error.strerror or error}); sqeval reads "
            "its gates from sqeval.toml, or [tool.sqeval] in pyproject.toml, found from the "
            f"working directory upwards. Make it readable{other}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise GateError(f"{path}: not valid TOML ({error})") from None


def load_config(path: Path | None) -> GateConfig:
    """Gates and ``allow_missing`` from a config file (``[tool.sqeval]`` in pyproject).

    Raises:
        GateError: the file cannot be read, invalid TOML, an unknown key, wrong types, or
            a gate that does not parse; the message names the file and the key.
    """
    if path is None:
        return GateConfig([], None, None)
    data = _load_toml(path)
    in_pyproject = path.name == "pyproject.toml"
    table = _tool_table(data, path).get("sqeval", {}) if in_pyproject else data
    where = f"{path}{' [tool.sqeval]' if in_pyproject else ''}"
    if not isinstance(table, dict):
        raise GateError(f"{path}: 'tool.sqeval' must be a table ([tool.sqeval]); got "
                        f"{_kind(table)}")
    for key in table:
        if key not in CONFIG_KEYS:
            close = difflib.get_close_matches(key.replace("-", "_"), CONFIG_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise GateError(f"{where}: unknown key {key!r}; {hint}the keys are "
                            f"{', '.join(CONFIG_KEYS)} (a typo would silently turn gates off)")
    gates = table.get("gates", [])
    if not isinstance(gates, list):
        raise GateError(f"{where}: 'gates' must be a list of strings like \"pesq_wb>=3.0\"; "
                        f"got {_kind(gates)}")
    for item in gates:
        if not isinstance(item, str):
            raise GateError(f"{where}: 'gates' must be a list of strings like "
                            f"\"pesq_wb>=3.0\"; it holds {_kind(item)}")
    allow = table.get("allow_missing")
    if allow is not None and not isinstance(allow, bool):
        raise GateError(f"{where}: 'allow_missing' must be true or false; got {_kind(allow)}")
    try:
        parsed = [parse_gate(g) for g in gates]
    except GateError as error:
        raise GateError(f"{where}: {error}") from None
    return GateConfig(parsed, allow, path)


def merge_gates(configured: list[Gate], given: list[Gate]) -> list[Gate]:
    """Configured gates, with each replaced by a command-line gate of the same left side
    and direction; the command line's other gates follow."""
    replaced = {gate.key: gate for gate in given}
    merged = [replaced.pop(gate.key, gate) for gate in configured]
    return merged + [gate for gate in given if gate.key in replaced]


def check_gates_apply(gates: list[Gate], systems: list[str]) -> None:
    """Refuse, before scoring, a gate without a system in a run that has no estimates
    besides ``noisy`` and ``clean``: it would check nothing, and pass.

    Raises:
        GateError: naming the gate and the fix.
    """
    estimates = [name for name in systems if name not in (NOISY, CLEAN)]
    for gate in gates:
        if gate.system is None and not estimates:
            raise GateError(f"gate {gate.text!r} applies to the estimates, and this run has "
                            f"none besides {', '.join(systems)}: it would check nothing. Give "
                            "the estimates as NAME=PATH, or name the system in the gate "
                            "(SYSTEM:METRIC...)")
