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
        data = [frame.loc[frame["system"] == s, metric].dropna().to_numpy() for s in systems]
        axis = axes[0][column]
        labels = "tick_labels" if _has_tick_labels() else "labels"  # renamed in matplotlib 3.9
        axis.boxplot(data, **{labels: systems})
        arrow = REGISTRY[metric].direction.arrow
        axis.set_title(f"{metric} {arrow}")
        axis.tick_params(axis="x", labelrotation=30)
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


def _by_file(frame, system: str, metric: str):
    """File → value of ``metric``, for the rows of ``system``."""
    rows = frame[frame["system"] == system]
    return dict(zip(rows["file"], rows[metric].astype(float)))


def _has_tick_labels() -> bool:
    import inspect

    import matplotlib.axes

    return "tick_labels" in inspect.signature(matplotlib.axes.Axes.boxplot).parameters


def _improvement(axis, frame, metric, systems, snr) -> None:
    """Improvement over noisy (system − noisy, per file) against the file's input SNR."""
    noisy = _by_file(frame, NOISY, metric)
    for system in systems:
        pairs = paired_difference(noisy, _by_file(frame, system, metric)).scored()
        x = np.array([snr.get(file, np.nan) for file in pairs.keys], dtype=float)
        keep = np.isfinite(x)
        axis.scatter(x[keep], pairs.differences[keep], s=12, label=system)
    axis.axhline(0.0, color="grey", linewidth=0.8)
    axis.set_xlabel("input SNR (dB)")
    axis.set_ylabel(f"Δ {metric}")
    axis.legend(fontsize="small")
