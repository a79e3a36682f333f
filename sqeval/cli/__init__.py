"""The ``sqeval`` command: one Typer app, one module per command.

:func:`main` owns the exit codes of everything that is not a command's own verdict: a
usage error exits 2, Ctrl-C 130, and an exception nothing expected (a bug in sqeval)
exits 4 with one line saying so (the traceback with ``--debug``); never 1, the gate code.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback

import typer
import typer.core

from .common import DEBUG, ExitCode, silence_stdout, terminate_as_interrupt
from .compare import compare_command
from .metrics import metrics_command
from .plot import plot_command
from .report import report_command
from .sanity import sanity_command
from .score import score_command

app = typer.Typer(
    name="sqeval",
    help="Evaluate speech enhancement: score folders of outputs against clean references.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain help, as click writes it: rich markup would eat every word in square brackets
    # ("sqeval[dask]", "[tool.sqeval]"), and its panels cut examples at 80 columns.
    rich_markup_mode=None,
)


def _show_version(shown: bool) -> None:
    if shown:
        from .. import __version__

        print(f"sqeval {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="On an internal error (exit 4), print the traceback."),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_show_version,
        help="Print sqeval's version and exit."),
) -> None:
    """Evaluate speech enhancement: score folders of outputs against clean references."""
    DEBUG["on"] = DEBUG["on"] or debug


# Newer Typers label each argument in --help with its Python type ("REFERENCE <str>",
# "ENHANCED <list[str]>"): noise to a user, so arguments show their names alone.
if hasattr(typer.core.TyperArgument, "display_type_rich"):  # pragma: no branch
    typer.core.TyperArgument.display_type_rich = lambda self, ctx: None

# One line each in `sqeval --help` (click would cut the docstrings' first sentences).
app.command("score", short_help="Score enhanced files against clean references.")(
    score_command)
app.command("metrics", short_help="List the metrics: unit, range, rates, source.")(
    metrics_command)
app.command("sanity", short_help="Show each metric on canonical cases; check them.")(
    sanity_command)
app.command("compare", short_help="Compare two runs file by file; gate on drops.")(
    compare_command)
app.command("plot", short_help="Draw box plots and improvement from a CSV.")(plot_command)
app.command("report", short_help="HTML report or paper tables (LaTeX, Markdown) of saved runs.")(
    report_command)

# The ClickException of the click Typer runs on (its own copy in newer Typers, the click
# package in older ones), found from typer.BadParameter's public class hierarchy.
CLICK_EXCEPTION = next(kind for kind in typer.BadParameter.__mro__
                       if kind.__name__ == "ClickException")

REPORT = ("this is a bug in sqeval; please report it with the command line and the output "
          "of the same command run with `sqeval --debug …`")


def run(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); its exit code.

    Diagnostics never change it: stderr that cannot be written (closed, a full disk, a
    reader that went away) is written to nowhere, so a run still exits with its verdict.
    SIGTERM stops any command as Ctrl-C does (130).
    """
    DEBUG["on"] = bool(os.environ.get("SQEVAL_DEBUG"))
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stdout if sys.stdout is not None else open(os.devnull, "w")  # ``>&-``
    sys.stderr = _Tolerant(sys.stderr if sys.stderr is not None else open(os.devnull, "w"))
    previous = _on_sigterm(terminate_as_interrupt)
    try:
        return _run(argv)
    finally:
        _on_sigterm(previous)
        sys.stdout, sys.stderr = saved


class _Tolerant:
    """A text stream whose writes and flushes never raise: what cannot be said is lost."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):  # ENOSPC, EPIPE, EIO, a closed file
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name):  # isatty, fileno, encoding ...: the stream's own
        return getattr(self._stream, name)


def _on_sigterm(handler):
    """Install ``handler`` for SIGTERM (from the main thread only); the previous one."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # pragma: no cover - no signals here
        return None


def _run(argv: list[str] | None) -> int:
    try:
        code = app(args=argv, prog_name="sqeval", standalone_mode=False)
        return code if isinstance(code, int) else int(ExitCode.OK)
    except typer.Exit as stop:  # raised outside a command's invocation
        return stop.exit_code
    except SystemExit as stop:  # Typer exits 1 on a broken stdout pipe; that is not a gate
        if isinstance(stop.__context__, BrokenPipeError):
            silence_stdout()
            return int(ExitCode.BROKEN_PIPE)
        raise
    except CLICK_EXCEPTION as error:  # bad arguments: a usage error, whatever its kind
        _show_usage_error(error)
        return int(ExitCode.USAGE)
    except (typer.Abort, KeyboardInterrupt):
        print("\ninterrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:  # the reader of stdout went away (``| head``): nothing to say
        silence_stdout()
        return int(ExitCode.BROKEN_PIPE)
    except Exception as error:  # noqa: BLE001 - the one place that catches everything
        if DEBUG["on"]:
            traceback.print_exc()
        summary = " ".join(str(error).split())[:300]
        print(f"sqeval: internal error: {type(error).__name__}"
              f"{': ' + summary if summary else ''}\n{REPORT}", file=sys.stderr)
        return int(ExitCode.INTERNAL)


def _show_usage_error(error) -> None:
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(error)
    except Exception:  # noqa: BLE001 - an older Typer: click's own format
        error.show()


def main() -> None:
    """Console-script entry point."""
    code = run()
    for stream in (sys.stdout, sys.stderr):  # a flush failing at exit would make it 120
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
            except (OSError, ValueError, AttributeError):
                pass
    sys.exit(code)
