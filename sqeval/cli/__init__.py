"""The ``sqeval`` command: one Typer app, one module per command."""

from __future__ import annotations

import typer

from .compare import compare_command
from .metrics import metrics_command
from .plot import plot_command
from .sanity import sanity_command
from .score import score_command

app = typer.Typer(
    name="sqeval",
    help="Evaluate speech enhancement: score folders of outputs against clean references.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("score")(score_command)
app.command("metrics")(metrics_command)
app.command("sanity")(sanity_command)
app.command("compare")(compare_command)
app.command("plot")(plot_command)


def main() -> None:
    """Console-script entry point."""
    app()
