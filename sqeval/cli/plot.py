"""``sqeval plot``: figures from a per-file CSV (needs the extra sqeval[plot])."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..compare import CompareError, read_results
from ..metrics import resolve
from ..plot import PlotError, plot_results
from .common import abort, check_outputs, stderr_console

FORMATS = (".png", ".svg", ".pdf")


def plot_command(
    results: Path = typer.Argument(
        ..., metavar="RESULTS",
        help="Per-file CSV of `sqeval score --csv`."),
    output: Path = typer.Option(
        ..., "--output", "-o", metavar="FILE",
        help="Figure file: .png, .svg or .pdf."),
    metrics: Optional[str] = typer.Option(
        None, "--metrics", "-m", metavar="NAMES",
        help="Comma-separated names; default: every metric in the CSV."),
    group_by: Optional[str] = typer.Option(
        None, "--group-by", metavar="REGEX",
        help="Regex whose group 'snr' gives each file's input SNR."),
) -> None:
    """Box plots per metric and system; with the noisy system (its snr) or a --group-by
    'snr' group, also the improvement over noisy against the input SNR."""
    if output.suffix.lower() not in FORMATS:
        abort(f"{output}: the figure must end in {', '.join(FORMATS)}")
    check_outputs({"--output": output}, [results, Path(f"{results}.meta.json")])
    try:
        frame = read_results(results).reset_index()
    except CompareError as error:
        abort(str(error))
    try:
        names = [spec.name for spec in resolve(metrics)] if metrics else None
    except KeyError as error:
        abort(error.args[0])
    available = [c for c in frame.columns if c not in ("file", "system", "error")]
    names = names or [c for c in available if c in {s.name for s in resolve("all")}]
    absent = [name for name in names if name not in available]
    if absent or not names:
        abort(f"{results} has no column {', '.join(absent) or 'of a known metric'}")
    try:
        plot_results(frame, names, output, group_by)
    except PlotError as error:
        abort(str(error))
    except OSError as error:  # e.g. a full disk, or -o a link to /dev/full
        abort(f"could not write {output}: {error.strerror or error}")
    stderr_console().print(f"wrote {output}", markup=False)
