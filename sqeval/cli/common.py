"""What every command shares: exit codes, the consoles, and ``abort()``."""

from __future__ import annotations

import os
from enum import IntEnum
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ..audio import ChannelPolicy


class ExitCode(IntEnum):
    """sqeval's exit codes, defined here only."""

    OK = 0  # everything scored and every gate passed
    GATE_FAILED = 1  # a quality gate (or a declared property) failed
    USAGE = 2  # bad arguments, a folder missing, no pairs found
    INCOMPLETE = 3  # the run finished, but some files or metrics could not be scored


def stdout_console() -> Console:
    """Data goes to stdout; plain and wide enough for the tables when it is not a terminal."""
    console = Console(highlight=False)
    if console.is_terminal and "NO_COLOR" not in os.environ:
        return console
    return Console(highlight=False, width=None if console.is_terminal else 140, no_color=True)


def stderr_console() -> Console:
    """Diagnostics go to stderr."""
    console = Console(stderr=True, highlight=False)
    return console if console.is_terminal else Console(stderr=True, highlight=False, width=140)


def abort(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    stderr_console().print(f"[bold red]error:[/bold red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(int(code))


CHANNEL_OPTION = typer.Option(
    None, "--channel", min=0, help="Score channel K (0-based) of multichannel files.")
MIX_OPTION = typer.Option(None, "--mix", help="'mono': average the channels of multichannel files.")


def channel_policy(channel: Optional[int], mix: Optional[str]) -> ChannelPolicy:
    """The policy for --channel / --mix, or abort with a usage error."""
    from ..api import UsageError, channel_policy as policy

    try:
        return policy(channel, mix)
    except UsageError as error:
        abort(str(error))
