"""Writing output files without destroying anything (ground floor: no sqeval imports).

- :func:`check_outputs`, before any work: no output may be an input file, the cache, a
  directory, another output, or a read-only file; its folder must exist and be writable.
- :func:`write_atomically`: a regular file (or a new one) is written through a temporary
  file in the same folder and renamed over it, at the end of any symlink, so a reader
  never sees half a file and a symlink stays a symlink; anything else that exists (a
  device such as ``/dev/stdout``, a FIFO) is written in place, never replaced. A new file
  gets the mode the umask gives (``0o666 & ~umask``), an existing one keeps its mode.
  Text is UTF-8; a file name that is not valid UTF-8 is written with backslash escapes.
- :func:`strict_json`: NaN and ±inf as null, so every JSON file is strict JSON.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Iterable


class OutputError(ValueError):
    """An output that must not or cannot be written; the message says which and why."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_stream(path: Path) -> bool:
    """Whether ``path`` exists and is not a regular file or a folder (a device, a FIFO,
    a socket, or a symlink to one): written in place, and has no companion files."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def write_atomically(path: Path, write) -> None:
    """Call ``write(stream)`` to fill ``path`` (see the module's docstring)."""
    path = Path(path)
    if is_stream(path):
        with _open_stream(path) as stream:
            write(stream)
        return
    target = Path(os.path.realpath(path))  # a symlink's target is replaced, not the link
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", errors="backslashreplace",
                       newline="") as stream:
            write(stream)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise


FIFO_WAIT_S = 10.0  # how long an output FIFO may go without a reader before it is an error


def _open_stream(path: Path):
    """``path`` (a device, a FIFO) opened for writing text in place. Opening a FIFO waits
    for a reader; after :data:`FIFO_WAIT_S` without one it is an error (``OSError``), not
    a hang."""
    options = dict(encoding="utf-8", errors="backslashreplace", newline="")
    if not stat.S_ISFIFO(os.stat(path).st_mode):
        return open(path, "w", **options)
    deadline = time.monotonic() + FIFO_WAIT_S
    while True:
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as error:
            if error.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if time.monotonic() > deadline:
                raise OSError(errno.ENXIO, f"no process read the FIFO in {FIFO_WAIT_S:g} s") \
                    from None
            time.sleep(0.05)
    os.set_blocking(descriptor, True)
    return open(descriptor, "w", **options)


def utf8_safe(text: str) -> str:
    r"""``text`` encodable as UTF-8: the bytes of a file name that were not UTF-8 (which
    ``os.fsdecode`` keeps as lone surrogates) written as ``\xNN``.

    Example:
        >>> utf8_safe("caf\udce9.wav"), utf8_safe("café.wav")
        ('caf\\xe9.wav', 'café.wav')
    """
    if not any("\ud800" <= char <= "\udfff" for char in text):
        return text
    return "".join(f"\\x{ord(char) - 0xDC00:02x}" if "\udc80" <= char <= "\udcff" else
                   f"\\u{ord(char):04x}" if "\ud800" <= char <= "\udfff" else char
                   for char in text)


def strict_json(data):
    """``data`` with every non-finite float replaced by None (JSON has no NaN or inf) and
    every string made UTF-8-safe (:func:`utf8_safe`)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, str):
        return utf8_safe(data)
    if isinstance(data, dict):
        return {strict_json(key): strict_json(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json(value) for value in data]
    return data


def _identity(path: Path):
    """What two names of one file share: (device, inode) when it exists, else its real path."""
    try:
        info = os.stat(path)
        return (info.st_dev, info.st_ino)
    except OSError:
        return os.path.realpath(path)


def companions(path: Path) -> list[Path]:
    """The files written beside an output (``.meta.json``); none beside a stream."""
    return [] if is_stream(path) else [Path(f"{path}.meta.json")]


def check_outputs(outputs: dict[str, Path], inputs: Iterable[Path],
                  with_meta: Iterable[str] = ()) -> None:
    """Refuse, before any work, an output that would destroy something or cannot be written.

    Args:
        outputs: option name (e.g. ``--csv``) → path, for the outputs asked for.
        inputs: every file the run reads or keeps: audio, lists, the cache database.
        with_meta: the options whose output gets a ``.meta.json`` companion.

    Raises:
        OutputError: naming the option, the path and the reason.
    """
    protected = {}
    for path in inputs:  # a file that does not exist yet (a new cache) is one the run makes
        if path is not None:
            protected.setdefault(_identity(path), Path(path))
    claimed: dict = {}
    for option, path in outputs.items():
        if path is None:
            continue
        path = Path(path)
        files = [(option, path)]
        if option in with_meta:
            files += [(f"{option}'s metadata", extra) for extra in companions(path)]
        for label, target in files:
            _check_one(label, target, protected)
            if is_stream(target):
                continue  # e.g. --csv /dev/stdout and --json /dev/stdout may share a pipe
            identity = _identity(target)
            if identity in claimed:
                raise OutputError(f"{label} {target}: the same file as {claimed[identity]}; "
                                  "give each output its own file")
            claimed[identity] = f"{label} {target}"


def _check_one(label: str, path: Path, protected: dict) -> None:
    identity = _identity(path)
    if identity in protected:
        raise OutputError(f"{label} {path} is {protected[identity]}, which this run reads or "
                          "keeps; writing it would destroy it. Choose another file.")
    if path.is_dir():
        raise OutputError(f"{label} {path} is a folder; give a file name")
    if is_stream(path):
        if not os.access(path, os.W_OK):
            raise OutputError(f"{label} {path}: not writable")
        return
    folder = Path(os.path.realpath(path)).parent
    if not folder.is_dir():
        raise OutputError(f"{label} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{label} {path}: folder {folder} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{label} {path}: the file is read-only; sqeval does not replace it")
