"""What every command shares: exit codes, the consoles, and ``abort()``."""

from __future__ import annotations

import os
from enum import IntEnum
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape as escape_markup

from ..audio import ChannelPolicy
from ..results import printable


class ExitCode(IntEnum):
    """sqeval's exit codes, defined here only."""

    OK = 0  # everything scored and every gate passed
    GATE_FAILED = 1  # a quality gate (or a declared property) failed
    USAGE = 2  # bad arguments, a folder missing, no pairs found
    INCOMPLETE = 3  # the run finished, but some files or metrics could not be scored
    INTERNAL = 4  # a bug in sqeval: an exception nothing expected
    INTERRUPTED = 130  # Ctrl-C or SIGTERM (128 + SIGINT)
    BROKEN_PIPE = 141  # stdout's reader went away (128 + SIGPIPE), e.g. ``| head``


DEBUG = {"on": False}  # --debug (or SQEVAL_DEBUG): tracebacks of internal errors


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
    stderr_console().print(f"[bold red]error:[/bold red] {escape_markup(printable(message))}",
                           soft_wrap=True)
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
