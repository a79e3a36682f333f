"""Shared vocabulary of results, on the ground floor: the row of one (file, system), the
names of the two systems every part knows, and how a row becomes CSV cells.

The per-file CSV is ``file,system,<one column per metric>,error``: a metric cell is the
shortest text that round-trips the float64 (``repr``), or empty when the value could not
be computed, with ``metric: reason`` in ``error``. A text cell that a spreadsheet would
run as a formula (it starts with ``= + - @``, a tab or a carriage return) is written
with a leading ``'``, which spreadsheets show as text; :func:`read_text_cell` removes it. The CLI's ``--csv`` and
``Results.to_frame()`` both come from :func:`write_rows`, so they agree cell for cell.
Every CSV sqeval writes goes through :class:`CsvWriter`, which quotes a cell holding a
carriage return as well.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Iterable

from .outputs import utf8_safe

NOISY = "noisy"  # the system name of the noisy inputs: the baseline of every delta
CLEAN = "clean"  # the system name of the clean references, scored by non-intrusive metrics

# Why a row has no file to score: the output does not exist. Only these rows are what
# --allow-missing excuses; every other failure (unreadable, NaN, silent, truncated, a
# metric's error) is a failure of the system. Read back from a CSV by their text.
NO_OUTPUT = "no output for this reference"
NO_NOISY_INPUT = "no noisy input for this reference"
NOT_IN_FOLDER = "no file of this name in this folder (another folder has one)"
NOT_IN_SOURCE = "no file of this id in this source (another source has one)"
NO_REFERENCE_FILE = "no clean reference for this file"  # an output without its reference
NO_SUCH_FILE = "no such file: "  # a listed path that does not exist (the path follows)
MISSING_REASONS = frozenset({NO_OUTPUT, NO_NOISY_INPUT, NOT_IN_FOLDER, NOT_IN_SOURCE,
                             NO_REFERENCE_FILE})
NO_REFERENCE = "(no reference)"  # the cache's clean key in --no-reference runs
NA = "n/a: "  # before the reason of a metric that does not apply, in the error cell


@dataclass
class Row:
    """The result for one (file, system): values, and why any value is missing.

    Attributes:
        values: metric name → value; NaN where it could not be computed.
        errors: metric name → reason, for failures.
        not_applicable: metric name → reason, for metrics that do not apply here (a
            failure only when the metric was asked for by name).
        file_error: why nothing at all could be scored, or None.
        notes: what was done to the signals (resampling, trimming).
        delay: the lag in seconds by which the estimate trails its reference at the peak
            of their cross-correlation (negative: it leads), measured for the delay hint
            (:func:`~sqeval.scoring.delay_hints`) when the signals are not aligned; None
            when not measured. Not a metric: it is in no CSV.
    """

    file: str
    system: str
    values: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    file_error: str | None = None
    notes: list[str] = field(default_factory=list)
    fresh: dict = field(default_factory=dict, repr=False, compare=False)  # computed now, to store
    # (clean, estimate) content digests of the bytes scored (the cache's key), when read
    content: tuple | None = field(default=None, repr=False, compare=False)
    delay: float | None = field(default=None, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        return self.file_error is not None or bool(self.errors)

    @property
    def missing(self) -> bool:
        """Whether the row failed because its file does not exist (the only failure
        ``--allow-missing`` excuses)."""
        return self.file_error is not None and (self.file_error in MISSING_REASONS or
                                                self.file_error.startswith(NO_SUCH_FILE))

    def metric_failed(self, name: str) -> bool:
        """Whether ``name`` could not be computed in this row (an error, or no file)."""
        return self.file_error is not None or name in self.errors

    def error_text(self, metric_names: Iterable[str]) -> str:
        """The CSV ``error`` cell: ``metric: reason`` per missing value, ``; ``-separated."""
        if self.file_error is not None:
            return self.file_error
        reasons = {**{name: NA + reason for name, reason in self.not_applicable.items()},
                   **self.errors}
        return "; ".join(f"{name}: {reasons[name]}" for name in metric_names if name in reasons)


def plural(n: int, word: str, words: str | None = None) -> str:
    """``n`` and the word, singular for one.

    Example:
        >>> plural(1, "file"), plural(3, "file"), plural(0, "reason", "reasons")
        ('1 file', '3 files', '0 reasons')
    """
    return f"{n} {word if n == 1 else words or word + 's'}"


def printable(text: str) -> str:
    r"""``text`` safe to print on a terminal: control characters (ESC, newline, ...) and
    bytes that were not valid UTF-8 in a file name shown as backslash escapes.

    Example:
        >>> printable("a\x1b[31m.wav"), printable("caf\udce9.wav"), printable("café")
        ('a\\x1b[31m.wav', 'caf\\xe9.wav', 'café')
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escaped(char) for char in text)


def _escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def csv_cell(value) -> str:
    """A CSV number: the shortest text that round-trips the float64; empty for NaN/None.

    Example:
        >>> csv_cell(0.1), csv_cell(float("nan")), csv_cell(3)
        ('0.1', '', '3')
    """
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(value)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _guarded(text: str) -> bool:
    """Whether :func:`text_cell` prefixes ``text`` (a formula start, or a ``'`` before one)."""
    return text.startswith(FORMULA_STARTS) or (text.startswith("'") and _guarded(text[1:]))


def text_cell(text: str) -> str:
    """A CSV text cell a spreadsheet shows as text, not as a formula.

    Example:
        >>> text_cell("=HYPERLINK(1)"), text_cell("a.wav"), read_text_cell("'=HYPERLINK(1)")
        ("'=HYPERLINK(1)", 'a.wav', '=HYPERLINK(1)')
    """
    text = utf8_safe(text)
    return f"'{text}" if _guarded(text) else text


def read_text_cell(cell: str) -> str:
    """The text :func:`text_cell` wrote as ``cell`` (it inverts it exactly)."""
    return cell[1:] if cell.startswith("'") and _guarded(cell[1:]) else cell


class CsvWriter:
    r"""``csv.writer(stream, lineterminator="\n")``, but a field holding a carriage return
    is quoted too. With ``"\n"`` as the line end, ``csv.QUOTE_MINIMAL`` quotes a field
    holding a comma, a quote or ``\n`` but not one holding ``\r``, and every CSV reader
    (``csv.reader``, pandas, spreadsheets) ends the row there: a file named
    ``a\r=cmd|….wav`` would start a new row with a formula that :func:`text_cell` never
    saw. Each row is written with ``"\r\n"`` as the line end, which makes the csv module
    quote ``\r`` as it quotes ``\n``, and that end is then replaced by ``"\n"``: the
    output of any other row is byte for byte that of ``csv.writer``.

    Example:
        >>> stream = io.StringIO()
        >>> CsvWriter(stream).writerows([["file", "n"], ["a\r=b.wav", "1"], ["c.wav", "2"]])
        >>> stream.getvalue()
        'file,n\n"a\r=b.wav",1\nc.wav,2\n'
    """

    def __init__(self, stream):
        self._stream = stream
        self._row = io.StringIO()
        self._writer = csv.writer(self._row, lineterminator="\r\n")

    def writerow(self, row) -> None:
        self._row.seek(0)
        self._row.truncate()
        self._writer.writerow(row)
        self._stream.write(self._row.getvalue()[:-2] + "\n")

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)


def write_rows(stream, rows, names: list[str], second: str = "system",
               guard: bool = True) -> None:
    """Write ``rows`` (objects with ``file``, ``system``, ``values``, ``error_text``) as the
    per-file CSV to ``stream``: ``file,<second>,<names>,error``; text cells through
    :func:`text_cell` unless ``guard`` is False."""
    text = text_cell if guard else utf8_safe
    writer = CsvWriter(stream)
    writer.writerow(["file", second, *names, "error"])
    for row in rows:
        writer.writerow([text(row.file), text(row.system),
                         *(csv_cell(row.values[name]) for name in names),
                         text(row.error_text(names))])
