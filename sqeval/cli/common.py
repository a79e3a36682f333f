"""What every command shares: exit codes, the consoles, and ``abort()``."""

from __future__ import annotations

import os
import sys
from enum import IntEnum
from pathlib import Path
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


def terminate_as_interrupt(signum, frame) -> None:
    """The SIGTERM handler of every command: it stops as Ctrl-C does (exit 130, finished
    results kept)."""
    raise KeyboardInterrupt


def silence_stdout() -> None:
    """Point stdout at the null device (its reader went away, or it cannot be written),
    so that nothing written later, up to the flush at exit, fails again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


CONFIG_NAMES = ("sqeval.toml", "pyproject.toml")
CACHE_SUFFIXES = ("", "-wal", "-shm", "-journal")  # SQLite's database and its side files


def cache_files(path) -> list[Path]:
    """The results database at ``path`` and the files SQLite keeps beside it."""
    return [Path(f"{path}{suffix}") for suffix in CACHE_SUFFIXES]


def check_outputs(outputs: dict, inputs, with_meta=()) -> None:
    """:func:`sqeval.outputs.check_outputs`, with what no command may ever write over
    added to ``inputs``: the default results cache and every ``sqeval.toml`` and
    ``pyproject.toml`` from the working directory up. Aborts (exit 2) with the reason."""
    from ..cache import DEFAULT_PATH
    from ..outputs import OutputError, check_outputs as check

    here = Path.cwd()
    configs = [folder / name for folder in (here, *here.parents) for name in CONFIG_NAMES]
    try:
        check(outputs, [*inputs, *cache_files(DEFAULT_PATH), *configs], with_meta=with_meta)
    except OutputError as error:
        abort(str(error))


def print_to_stdout(show) -> Optional[ExitCode]:
    """Run ``show`` (printing to stdout), after the command wrote its files. Its failure
    does not hide the command's verdict: a reader that went away (``| head``) is
    :data:`ExitCode.BROKEN_PIPE`, a stdout that cannot be written (a full disk) a usage
    error, said on stderr; None when all went well. The caller exits with its verdict
    when that is not OK, else with this."""
    try:
        show()
        sys.stdout.flush()
        return None
    except BrokenPipeError:
        silence_stdout()
        return ExitCode.BROKEN_PIPE
    except SystemExit as stop:  # rich's answer to a broken pipe: SystemExit(1)
        if not isinstance(stop.__context__, BrokenPipeError):
            raise
        silence_stdout()
        return ExitCode.BROKEN_PIPE
    except OSError as error:
        silence_stdout()
        stderr_console().print(f"error: could not write the tables to stdout: "
                               f"{error.strerror or error}", markup=False)
        return ExitCode.USAGE


def abort(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    stderr_console().print(f"[bold red]error:[/bold red] {escape_markup(printable(message))}",
                           soft_wrap=True)
    raise typer.Exit(int(code))


CHANNEL_OPTION = typer.Option(
    None, "--channel", metavar="K", min=0,
    help="Score channel K (0-based) of multichannel files.")
MIX_OPTION = typer.Option(
    None, "--mix", metavar="mono",
    help="'mono': average the channels of multichannel files.")


def channel_policy(channel: Optional[int], mix: Optional[str]) -> ChannelPolicy:
    """The policy for --channel / --mix, or abort with a usage error."""
    from ..api import UsageError, channel_policy as policy

    try:
        return policy(channel, mix)
    except UsageError as error:
        abort(str(error))
