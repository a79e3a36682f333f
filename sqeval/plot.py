"""Figures from a per-file CSV: box plots per system, and improvement against input SNR.

Needs matplotlib, the optional extra ``sqeval[plot]``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .metrics import REGISTRY
from .results import CLEAN, NOISY, printable
from .stats import paired_difference


class PlotError(ValueError):
    """The figure cannot be made; the message says why and how to fix it."""


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotError("sqeval plot needs matplotlib, which is not installed: "
                        "pip install '.[plot]' in sqeval's source folder (the plot "
                        "extra)") from None
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


GRID_COLUMNS = 4  # panels per row, in `sqeval plot` and in the report's figures
PAPER_WIDTH_IN = 7.0  # a two-column paper's text width (figure*), in inches
PANEL_HEIGHT_IN = 1.75
# Okabe & Ito's palette, told apart with every common colour-vision deficiency
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")
PAPER_STYLE = {"font.size": 7, "axes.titlesize": 7.5, "axes.labelsize": 7,
               "xtick.labelsize": 6.5, "ytick.labelsize": 6.5, "legend.fontsize": 6,
               "axes.linewidth": 0.6, "lines.linewidth": 0.9}


def _style() -> dict:
    from cycler import cycler

    return {**PAPER_STYLE, "axes.prop_cycle": cycler(color=PALETTE),
            # names are shown as written: "$\\foo$" is a name, not mathtext to parse
            "text.parse_math": False}


def plot_results(frame, metrics: list[str], output: Path, group_by: str | None = None) -> None:
    """Box plots (a panel per metric, a box per system); with an input SNR, the
    improvement (system − noisy) against it below them. A grid of at most
    :data:`GRID_COLUMNS` panels per row, :data:`PAPER_WIDTH_IN` wide (a two-column
    paper's text width), titled with the metrics' display names, in a colour-blind-safe
    palette."""
    plt = _pyplot()
    if frame.empty:
        raise PlotError("the CSV holds no rows (only its header line); nothing to plot")
    _check_range(frame, metrics)
    systems = _plotted_systems(frame, metrics)
    snr = input_snr(frame, group_by)
    enhanced = [s for s in systems if s not in (NOISY, CLEAN)]
    with_snr = snr is not None and NOISY in systems and enhanced
    # for this figure only, not the caller's others
    with plt.rc_context(_style()):
        _draw(plt, frame, metrics, output, systems, enhanced, snr if with_snr else None)


def _plotted_systems(frame, metrics: list[str]) -> list[str]:
    """The systems in order, but those without a value of any of ``metrics`` (the clean
    references' rows when only intrusive metrics are plotted): no empty box for them."""
    systems = list(dict.fromkeys(frame["system"]))
    values = frame[metrics].astype(float).to_numpy()
    scored = set(frame["system"][np.isfinite(values).any(axis=1)])
    return [s for s in systems if s in scored] or systems


def _grid(figure, n_panels: int, blocks: int = 1):
    """Lay ``blocks`` grids of ``n_panels`` panels on ``figure``, :data:`GRID_COLUMNS` per
    row, and size it to fit; the axes of each block in order (the spare ones hidden)."""
    columns = min(GRID_COLUMNS, max(n_panels, 1))
    rows = -(-n_panels // columns)
    figure.set_size_inches(PAPER_WIDTH_IN * columns / GRID_COLUMNS,
                           PANEL_HEIGHT_IN * rows * blocks)
    axes = figure.subplots(rows * blocks, columns, squeeze=False)
    flat = [axis for row in axes for axis in row]
    out = []
    for block in range(blocks):
        panels = flat[block * rows * columns:(block + 1) * rows * columns]
        for axis in panels[n_panels:]:
            axis.set_visible(False)
        out.append(panels[:n_panels])
    return figure, out


def _draw(plt, frame, metrics, output, systems, enhanced, snr) -> None:
    """The figure of :func:`plot_results`, with the improvement panels when ``snr`` is
    given; closed even when it cannot be written."""
    with_snr = snr is not None
    figure, blocks = _grid(plt.figure(), len(metrics), 2 if with_snr else 1)
    for k, metric in enumerate(metrics):
        _boxes(blocks[0][k], frame, metric, systems)
        if with_snr:
            _improvement(blocks[1][k], frame, metric, enhanced, snr, order=systems)
    try:
        figure.tight_layout()
        figure.savefig(output, dpi=300)
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
            raise PlotError(f"{metric} is {float(values[huge][0])!r} for {where['file']!r} "
                            f"[{where['system']}], beyond the ±{MAX_PLOTTED:g} that can be "
                            "plotted; leave such rows out of the CSV to plot the others")


def _boxes(axis, frame, metric: str, systems: list[str]) -> None:
    """A box per system of ``metric``'s finite values (±inf and empty cells left out),
    each in its system's colour."""
    data = [_finite(frame.loc[frame["system"] == s, metric]) for s in systems]
    labels = "tick_labels" if _has_tick_labels() else "labels"  # renamed in matplotlib 3.9
    boxes = axis.boxplot(data, patch_artist=True, widths=0.6,
                         medianprops={"color": "black", "linewidth": 0.9},
                         flierprops={"markersize": 2.5, "markeredgewidth": 0.5},
                         **{labels: [printable(s) for s in systems]})
    for k, box in enumerate(boxes["boxes"]):
        box.set(facecolor=PALETTE[k % len(PALETTE)], alpha=0.75, linewidth=0.6)
    spec = REGISTRY.get(metric)
    axis.set_title(f"{spec.title} {spec.direction.arrow}" if spec else metric)
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


def _improvement(axis, frame, metric, systems, snr, rasterized: bool = False,
                 order: list[str] | None = None) -> None:
    """Improvement over noisy (system − noisy, per file) against the file's input SNR; each
    system in the colour of its box (its place in ``order``, the boxes' systems)."""
    noisy = _by_file(frame, NOISY, metric)
    order = order or list(dict.fromkeys(frame["system"]))
    for system in systems:
        pairs = paired_difference(noisy, _by_file(frame, system, metric)).scored()
        x = np.array([snr.get(file, np.nan) for file in pairs.keys], dtype=float)
        keep = np.isfinite(x)
        axis.scatter(x[keep], pairs.differences[keep], s=6, label=printable(system),
                     linewidths=0, color=PALETTE[order.index(system) % len(PALETTE)],
                     rasterized=rasterized)
    axis.axhline(0.0, color="grey", linewidth=0.6)
    axis.set_xlabel("input SNR (dB)")
    spec = REGISTRY.get(metric)
    axis.set_ylabel(f"Δ {spec.title if spec else metric}")
    axis.legend(fontsize="x-small", markerscale=1.5, frameon=False)


RASTER_DPI = 100  # the resolution of the scatter points drawn as an image inside the SVG


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
    systems = _plotted_systems(frame, metrics)
    enhanced = [s for s in systems if s not in (NOISY, CLEAN)]
    boxes = _grid_svg(metrics, lambda axis, metric: _boxes(axis, frame, metric, systems),
                      salt="boxes")
    if NOISY not in systems or not enhanced:
        return boxes, None, "no improvement over noisy to show: the run has no noisy inputs " \
            "(--noisy) or no system besides them"
    try:
        snr = input_snr(frame, group_by)
    except PlotError as error:  # a --group-by whose snr is not a number: the boxes stay
        return boxes, None, f"no input SNR to plot against: {error}"
    if snr is None:
        return boxes, None, "no input SNR to plot against: score the snr metric with --noisy, " \
            "or give --group-by with a group named snr"
    improvement = _grid_svg(metrics, lambda axis, metric: _improvement(
        axis, frame, metric, enhanced, snr, rasterized=True, order=systems),
        salt="improvement")
    return boxes, improvement, None


def _grid_svg(metrics: list[str], draw, salt: str) -> str:
    """A figure of one panel per metric, :data:`GRID_COLUMNS` per row, as SVG text (no
    XML declaration or DOCTYPE: ready to put inside an HTML page)."""
    import io
    import warnings

    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    # svg.hashsalt: the ids inside each figure differ from the other figure's on the page;
    # a name in a script the font lacks (CJK, emoji) draws boxes, not a warning per glyph
    with rc_context({**_style(), "svg.hashsalt": salt, "svg.fonttype": "none"}), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        figure = Figure()
        FigureCanvasSVG(figure)
        _, (panels,) = _grid(figure, len(metrics))
        for axis, metric in zip(panels, metrics):
            draw(axis, metric)
        figure.tight_layout()
        stream = io.StringIO()
        figure.savefig(stream, format="svg", dpi=RASTER_DPI)
    text = stream.getvalue()
    return text[text.index("<svg"):]
