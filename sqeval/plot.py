"""Figures from a per-file CSV: box plots per system, and improvement against input SNR.

Needs matplotlib, the optional extra ``sqeval[plot]``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .metrics import REGISTRY
from .results import NOISY
from .stats import paired_difference


class PlotError(ValueError):
    """The figure cannot be made; the message says why and how to fix it."""


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotError("sqeval plot needs matplotlib, which is not installed: "
                        "pip install 'sqeval[plot]'") from None
    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def input_snr(frame, group_by: str | None) -> dict[str, float] | None:
    """File → input SNR: a ``snr`` group of ``group_by`` if given, else the noisy rows' snr."""
    if group_by is not None:
        try:
            pattern = re.compile(group_by)
        except re.error as error:
            raise PlotError(f"--group-by {group_by!r} is not a valid regular expression: "
                            f"{error}") from None
        if "snr" not in pattern.groupindex:
            raise PlotError(f"--group-by {group_by!r} has no group named 'snr'")
        found = {file: pattern.search(file) for file in frame["file"].unique()}
        snr = {}
        for file, match in found.items():
            if match and match.group("snr"):
                try:
                    snr[file] = float(match.group("snr"))
                except ValueError:
                    raise PlotError(f"--group-by {group_by!r}: its group 'snr' matches "
                                    f"{match.group('snr')!r} in {file!r}, not a number; "
                                    "write e.g. '_(?P<snr>-?\\d+)dB'") from None
        return snr
    noisy = frame[frame["system"] == NOISY]
    if noisy.empty or "snr" not in frame.columns:
        return None
    return dict(zip(noisy["file"], noisy["snr"].astype(float)))


def plot_results(frame, metrics: list[str], output: Path, group_by: str | None = None) -> None:
    """Box plots (a panel per metric, a box per system); with an input SNR, a second row of
    improvement (system − noisy) against it."""
    plt = _pyplot()
    if frame.empty:
        raise PlotError("the CSV holds no rows (only its header line); nothing to plot")
    _check_range(frame, metrics)
    systems = list(dict.fromkeys(frame["system"]))
    snr = input_snr(frame, group_by)
    enhanced = [s for s in systems if s != NOISY]
    with_snr = snr is not None and NOISY in systems and enhanced
    # system names are shown as written: "$\\foo$" is a name, not mathtext to parse (an
    # unknown symbol would stop the figure); for this figure only, not the caller's others
    with plt.rc_context({"text.parse_math": False}):
        _draw(plt, frame, metrics, output, systems, enhanced, snr if with_snr else None)


def _draw(plt, frame, metrics, output, systems, enhanced, snr) -> None:
    """The figure of :func:`plot_results`, with the improvement row when ``snr`` is given;
    closed even when it cannot be written."""
    with_snr = snr is not None
    rows = 2 if with_snr else 1
    figure, axes = plt.subplots(rows, len(metrics), figsize=(3.2 * len(metrics), 3.0 * rows),
                                squeeze=False)
    for column, metric in enumerate(metrics):
        _boxes(axes[0][column], frame, metric, systems)
        if with_snr:
            _improvement(axes[1][column], frame, metric, enhanced, snr)
    try:
        figure.tight_layout()
        figure.savefig(output)
    finally:
        plt.close(figure)


MAX_PLOTTED = 1e300  # beyond it, an axis's span (max − min) or a difference overflows


def _check_range(frame, metrics: list[str]) -> None:
    """Refuse finite values that matplotlib cannot put on an axis: the span of ±1e308
    overflows to inf, and scaling the axis fails (``arange: cannot compute length``).
    ±inf and empty cells are left out of the boxes, as before."""
    for metric in metrics:
        values = frame[metric].astype(float).to_numpy()
        huge = np.isfinite(values) & (np.abs(values) > MAX_PLOTTED)
        if huge.any():
            where = frame.loc[huge, ["file", "system"]].iloc[0]
            raise PlotError(f"{metric} is {values[huge][0]!r} for {where['file']!r} "
                            f"[{where['system']}], beyond the ±{MAX_PLOTTED:g} that can be "
                            "plotted; leave such rows out of the CSV to plot the others")


def _boxes(axis, frame, metric: str, systems: list[str]) -> None:
    """A box per system of ``metric``'s finite values (±inf and empty cells left out)."""
    data = [_finite(frame.loc[frame["system"] == s, metric]) for s in systems]
    labels = "tick_labels" if _has_tick_labels() else "labels"  # renamed in matplotlib 3.9
    axis.boxplot(data, **{labels: systems})
    spec = REGISTRY.get(metric)
    axis.set_title(f"{metric} {spec.direction.arrow}" if spec else metric)
    axis.tick_params(axis="x", labelrotation=30)


def _finite(column) -> np.ndarray:
    values = column.astype(float).to_numpy()
    return values[np.isfinite(values)]


def _by_file(frame, system: str, metric: str):
    """File → value of ``metric``, for the rows of ``system``."""
    rows = frame[frame["system"] == system]
    return dict(zip(rows["file"], rows[metric].astype(float)))


def _has_tick_labels() -> bool:
    import inspect

    import matplotlib.axes

    return "tick_labels" in inspect.signature(matplotlib.axes.Axes.boxplot).parameters


def _improvement(axis, frame, metric, systems, snr, rasterized: bool = False) -> None:
    """Improvement over noisy (system − noisy, per file) against the file's input SNR."""
    noisy = _by_file(frame, NOISY, metric)
    for system in systems:
        pairs = paired_difference(noisy, _by_file(frame, system, metric)).scored()
        x = np.array([snr.get(file, np.nan) for file in pairs.keys], dtype=float)
        keep = np.isfinite(x)
        axis.scatter(x[keep], pairs.differences[keep], s=12, label=system,
                     rasterized=rasterized)
    axis.axhline(0.0, color="grey", linewidth=0.8)
    axis.set_xlabel("input SNR (dB)")
    axis.set_ylabel(f"Δ {metric}")
    axis.legend(fontsize="small")


GRID_COLUMNS = 4  # panels per row in the report's figures
RASTER_DPI = 72  # the resolution of the scatter points drawn as an image inside the SVG


def report_figures(frame, metrics: list[str], group_by: str | None = None):
    """The HTML report's figures as SVG text: box plots per metric and system, and the
    improvement over noisy against the input SNR (None, with the reason, when there is no
    input SNR: neither the noisy rows' ``snr`` nor a ``--group-by`` group ``snr``).
    A grid of at most :data:`GRID_COLUMNS` panels per row; scatter points drawn as an
    image inside the SVG, so 1,000 files stay small.

    Returns:
        ``(boxes_svg, improvement_svg or None, why_not or None)``.
    """
    _pyplot()  # the extra's message when matplotlib is missing
    _check_range(frame, metrics)
    systems = list(dict.fromkeys(frame["system"]))
    enhanced = [s for s in systems if s != NOISY]
    boxes = _grid_svg(metrics, lambda axis, metric: _boxes(axis, frame, metric, systems),
                      salt="boxes")
    snr = input_snr(frame, group_by)
    if NOISY not in systems or not enhanced:
        return boxes, None, "no improvement over noisy to show: the run has no noisy inputs " \
            "(--noisy) or no system besides them"
    if snr is None:
        return boxes, None, "no input SNR to plot against: score the snr metric with --noisy, " \
            "or give --group-by with a group named snr"
    improvement = _grid_svg(metrics, lambda axis, metric: _improvement(
        axis, frame, metric, enhanced, snr, rasterized=True), salt="improvement")
    return boxes, improvement, None


def _grid_svg(metrics: list[str], draw, salt: str) -> str:
    """A figure of one panel per metric, :data:`GRID_COLUMNS` per row, as SVG text (no
    XML declaration or DOCTYPE: ready to put inside an HTML page)."""
    import io

    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    columns = min(GRID_COLUMNS, max(len(metrics), 1))
    rows = -(-len(metrics) // columns)
    # svg.hashsalt: the ids inside each figure differ from the other figure's on the page
    with rc_context({"text.parse_math": False, "svg.hashsalt": salt, "svg.fonttype": "none"}):
        figure = Figure(figsize=(3.2 * columns, 2.8 * rows))
        FigureCanvasSVG(figure)
        axes = figure.subplots(rows, columns, squeeze=False)
        for k, metric in enumerate(metrics):
            draw(axes[k // columns][k % columns], metric)
        for k in range(len(metrics), rows * columns):
            axes[k // columns][k % columns].set_visible(False)
        figure.tight_layout()
        stream = io.StringIO()
        figure.savefig(stream, format="svg", dpi=RASTER_DPI)
    text = stream.getvalue()
    return text[text.index("<svg"):]
