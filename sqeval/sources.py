"""Sources of audio files, and the id by which each file pairs.

A source lists :class:`Entry` items: an id and a file, plus how to name the file. Pairing
(:mod:`sqeval.pairing`) matches files of different sources by id and never needs to know
where they came from.

Conventions:
    - a folder: every .wav, .flac and .ogg file below it; id = the path relative to the
      folder without its extension, with forward slashes (``sub/a.flac`` → ``sub/a``).
    - an audio file: one entry; id = its name without extension. Estimates of a single
      reference file take the reference's id (:meth:`AudioFile.pinned`).
    - a Kaldi ``wav.scp`` list: ``ID PATH`` per line; blank lines and lines starting with
      ``#`` are skipped.
    - a CSV list with the columns ``id,path``; or a manifest with the columns
      ``id,reference,estimate[,noisy][,system]`` that holds every source of a run
      (:func:`read_manifest`).
    - relative paths in a list resolve against the list's folder. Pipes (``cmd |``) and
      other Kaldi extended filenames (``-``, ``archive.ark:1234``) are refused.
    - ``--key REGEX`` (:func:`rekey`) replaces every id by the regex's match in the file's
      relative path (for a list: the path as written in it).
"""

from __future__ import annotations

import csv
import io
from abc import ABC, abstractmethod
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from .audio import AUDIO_SUFFIXES, file_problem


class PairingError(ValueError):
    """The inputs cannot be paired at all (a folder is missing, a list is malformed, ...)."""


KINDS = f"a folder, an audio file ({', '.join(AUDIO_SUFFIXES)}), a Kaldi .scp or a .csv list"
LIST_COLUMNS = ("id", "path")  # a CSV list: one source
MANIFEST_COLUMNS = ("id", "reference", "estimate", "noisy", "system")  # a CSV of a whole run
KALDI_OFFSET = re.compile(r":\d+(\[[^\]]*\])?$")  # archive.ark:1234 (or :1234[0:100])


@dataclass(frozen=True)
class Entry:
    """One file of a source.

    Attributes:
        id: what pairing matches.
        path: the file (relative paths of lists already resolved).
        name: the ``file`` column when this file is a reference: the path relative to
            its folder, or a list's id with the file's extension.
        where: the text ``--key`` searches: the relative path, or the path as written.
        problem: why the file cannot be scored, when listing found out already.
    """

    id: str
    path: Path
    name: str
    where: str
    problem: str | None = None


class Source(ABC):
    """Where audio files come from. ``noun`` says what its ids are, for messages."""

    path: Path
    noun = "name"

    @abstractmethod
    def entries(self) -> list[Entry]:
        """Every file of the source, in a deterministic order."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


@dataclass(frozen=True, repr=False)
class Folder(Source):
    """Every audio file below ``path``; symbolic links to folders are not followed (a link
    loop cannot hang the walk). A folder named like an audio file, and a name that is not
    a regular file (a FIFO, a link to ``/dev/zero``: reading would block or never end)
    are listed with their problem, so that they get a row."""

    path: Path

    def entries(self) -> list[Entry]:
        if not self.path.exists():
            raise PairingError(f"{self.path}: not a folder, audio file or list: it does not "
                               "exist")
        if not self.path.is_dir():
            raise PairingError(f"{self.path}: expected {KINDS}; got a file of another kind "
                               "(a list's name must end in .scp or .csv)")
        entries = []
        for root, directories, files in os.walk(self.path, followlinks=False):
            directories.sort()
            for name in directories:
                if Path(name).suffix.lower() in AUDIO_SUFFIXES:
                    entries.append(self._entry(Path(root) / name,
                                               f"{name} is a folder, not an audio file"))
            for name in sorted(files):
                path = Path(root) / name
                if path.suffix.lower() in AUDIO_SUFFIXES and not path.is_dir():
                    entries.append(self._entry(path, file_problem(path)))
        return entries

    def _entry(self, path: Path, problem: str | None = None) -> Entry:
        relative = PurePosixPath(*path.relative_to(self.path).parts)
        return Entry(relative.with_suffix("").as_posix(), path, relative.as_posix(),
                     relative.as_posix(), problem)


@dataclass(frozen=True, repr=False)
class AudioFile(Source):
    """One audio file; its id is its name without extension, or ``id`` when pinned."""

    path: Path
    id: str | None = None

    def entries(self) -> list[Entry]:
        problem = file_problem(self.path)
        if problem is not None and self.path.exists():
            raise PairingError(f"{self.path}: {problem}")
        if not self.path.is_file():
            raise PairingError(f"{self.path}: no such audio file (expected {KINDS})")
        return [Entry(self.id or self.path.stem, self.path, self.path.name, self.path.name)]

    def pinned(self, id: str) -> "AudioFile":
        """This file, paired under ``id`` (an estimate of a single reference file)."""
        return AudioFile(self.path, id)


@dataclass(frozen=True)
class Listed:
    """One line of a list: an id and a path as written, on ``line`` of ``list_path``."""

    id: str
    written: str
    list_path: Path
    line: int

    def where(self) -> str:
        return f"{self.list_path}, line {self.line}"


@dataclass(frozen=True, repr=False)
class FileList(Source):
    """The files of a Kaldi ``wav.scp`` or a CSV list (``id,path``) at ``path``, or the
    ``listed`` lines of one column of a manifest."""

    path: Path
    listed: tuple[Listed, ...] | None = field(default=None, compare=False)
    noun = "id"

    def entries(self) -> list[Entry]:
        listed = self.listed if self.listed is not None else read_list(self.path)
        return [_list_entry(item) for item in listed]


@dataclass(frozen=True, repr=False)
class Mapping(Source):
    """Files given as ``{id: path}`` (the Python API); a relative path starts at the
    working directory. Named after the working directory's folder."""

    items: tuple[tuple[str, str], ...]
    path: Path = Path(".")
    noun = "id"

    def entries(self) -> list[Entry]:
        origin = Path.cwd() / "{id: path} mapping"  # what messages name as the list
        return [_list_entry(Listed(str(id), str(path), origin, k), "the working directory")
                for k, (id, path) in enumerate(self.items, start=1)]


def _list_entry(item: Listed, relative_to: str = "the list's folder") -> Entry:
    path = item.list_path.parent / item.written  # an absolute path stays as it is
    name = item.id + PurePosixPath(item.written).suffix
    try:
        problem = _entry_problem(path, item, relative_to)
    except OSError as error:  # a name over 255 bytes, a path over PATH_MAX, a loop ...
        problem = f"cannot be examined: {error.strerror or error} ({item.where()})"
    return Entry(item.id, path, name, item.written, problem)


def _entry_problem(path: Path, item: Listed, relative_to: str) -> str | None:
    if path.is_dir():
        return f"{item.written} is a folder, not an audio file ({item.where()})"
    if not path.exists():
        return (f"no such file: {path} ({item.where()}; a relative path starts at "
                f"{relative_to})")
    if file_problem(path) is not None:
        return f"{file_problem(path)} ({item.where()})"
    return None


def open_source(path: Path) -> Source:
    """The source that ``path`` names, by its kind: an audio file, a ``.scp`` or ``.csv``
    list, else a folder. Nothing is read yet; problems surface when it is listed.

    Example:
        >>> open_source(Path("data/ref.scp")), open_source(Path("out/a.flac"))
        (FileList('data/ref.scp'), AudioFile('out/a.flac'))
    """
    suffix = path.suffix.lower()
    if path.is_dir():
        return Folder(path)
    if suffix in AUDIO_SUFFIXES:
        return AudioFile(path)
    if suffix in (".scp", ".csv"):
        return FileList(path)
    return Folder(path)  # its listing says what is wrong


def default_name(source: Source) -> str:
    """The system name of a source given without ``NAME=``: a folder's own name, or the
    name of the folder that holds a file (audio or list).

    Example:
        >>> default_name(Folder(Path("out/run2/"))), default_name(FileList(Path("x/b/wav.scp")))
        ('run2', 'b')
    """
    folder = source.path if isinstance(source, Folder) else source.path.parent
    return folder.resolve().name if folder.name in ("", ".", "..") else folder.name


# --- lists -----------------------------------------------------------------------------

def read_list(path: Path) -> tuple[Listed, ...]:
    """The lines of a Kaldi ``.scp`` list or of a CSV list with the columns ``id,path``."""
    if path.suffix.lower() == ".scp":
        return read_scp(path)
    header, rows = _read_csv(path)
    if set(header) != set(LIST_COLUMNS):
        if "estimate" in header:
            raise PairingError(f"{path} is a manifest (it has an estimate column): it holds "
                               "every source of the run, so give it alone, as the first "
                               "argument")
        raise _header_error(path, header, "id,path", "id,reference,estimate[,noisy][,system]")
    return tuple(_listed(path, line, row["id"], row["path"]) for line, row in rows)


def read_scp(path: Path) -> tuple[Listed, ...]:
    """``ID PATH`` per line (the path may hold spaces); ``#`` comments, blank lines."""
    listed = []
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split(maxsplit=1)
        if len(fields) < 2:
            raise PairingError(f"{path}, line {number}: expected 'ID PATH', got {text!r}")
        listed.append(_listed(path, number, *fields))
    return tuple(listed)


def _listed(path: Path, line: int, id: str, written: str) -> Listed:
    item = Listed(id.strip(), written.strip(), path, line)
    if not item.id or not item.written:
        raise PairingError(f"{item.where()}: expected an id and a path, got "
                           f"id {item.id!r} and path {item.written!r}")
    _refuse_extended_filename(item)
    return item


def _refuse_extended_filename(item: Listed) -> None:
    """Kaldi's pipes, stdin and archive offsets are not files: refuse them with the fix."""
    written = item.written
    if written.endswith("|") or written.startswith("|"):
        command = written.strip("| ")
        raise PairingError(
            f"{item.where()}: {written!r} is a pipe; sqeval reads audio files only, never "
            f"runs commands. Write the audio to a file first ({command} > {item.id}.wav) "
            "and list that file")
    offset = KALDI_OFFSET.search(written)
    if written == "-" or (offset and not (item.list_path.parent / written).exists()):
        raise PairingError(
            f"{item.where()}: {written!r} is a Kaldi extended filename (standard input or "
            "an archive offset), not a file; extract each entry to its own audio file "
            "first and list those files")


def _read_text(path: Path) -> str:
    problem = file_problem(path)
    if problem is not None and not path.is_dir():  # a FIFO would block the read
        raise PairingError(f"{path}: {problem}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PairingError(f"{path}: no such list file (expected {KINDS})") from None
    except UnicodeDecodeError as error:
        raise PairingError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); "
                           "save the list as UTF-8") from None
    except OSError as error:
        raise PairingError(f"{path}: cannot read it ({error.strerror})") from None


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header (stripped) and the (line, row) of every non-empty row."""
    # the text as a stream with its line ends: a quoted cell may hold a newline (a file
    # name "a⏎b.wav"), which csv keeps only when the reader sees the line ends
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    header = [name.strip() for name in next(reader, [])]
    if len(set(header)) != len(header) or "" in header:
        raise PairingError(f"{path}, line 1: expected distinct column names, got "
                           f"{','.join(header)!r}")
    rows = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise PairingError(f"{path}, line {reader.line_num}: expected {len(header)} cells "
                               f"({','.join(header)}), got {len(cells)}")
        rows.append((reader.line_num, dict(zip(header, (cell.strip() for cell in cells)))))
    return header, rows


def _header_error(path: Path, header: list[str], *expected: str) -> PairingError:
    return PairingError(f"{path}: expected the columns {' or '.join(expected)}; got "
                       f"{','.join(header) or 'no header'}")


# --- manifests -------------------------------------------------------------------------

@dataclass
class Manifest:
    """The sources of a CSV manifest: ``references``, ``noisy`` and one list per system
    (empty cells leave a file out; a row repeated per system lists its reference once)."""

    references: tuple[Listed, ...]
    noisy: tuple[Listed, ...] | None
    systems: dict[str, tuple[Listed, ...]]


def is_manifest(path: Path) -> bool:
    """Whether ``path`` is a CSV file whose header has an ``estimate`` column."""
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    header, _ = _read_csv(path)
    return "estimate" in header


def read_manifest(path: Path, default_system: str) -> Manifest:
    """Read a manifest; rows without a ``system`` cell belong to ``default_system``."""
    header, rows = _read_csv(path)
    unknown = [name for name in header if name not in MANIFEST_COLUMNS]
    if unknown or "id" not in header:
        raise _header_error(path, header, "id,reference,estimate[,noisy][,system]")
    references, noisy, systems = [], [], {}
    for line, row in rows:
        if row.get("reference"):
            references.append(_listed(path, line, row["id"], row["reference"]))
        if row.get("noisy"):
            noisy.append(_listed(path, line, row["id"], row["noisy"]))
        if row["estimate"]:
            name = row.get("system") or default_system
            systems.setdefault(name, []).append(_listed(path, line, row["id"], row["estimate"]))
    return Manifest(_once(references), _once(noisy) if "noisy" in header else None,
                    {name: tuple(items) for name, items in systems.items()})


def _once(items: list[Listed]) -> tuple[Listed, ...]:
    """Each (id, path) once: a manifest repeats a reference on the row of every system."""
    seen, kept = set(), []
    for item in items:
        if (item.id, item.written) not in seen:
            seen.add((item.id, item.written))
            kept.append(item)
    return tuple(kept)


# --- --key -----------------------------------------------------------------------------

def compile_key(text: str) -> re.Pattern:
    """The ``--key`` regex, or :class:`PairingError` saying what is wrong with it."""
    try:
        return re.compile(text)
    except re.error as error:
        raise PairingError(f"--key '{text}' is not a valid regular expression: {error}; "
                           r"e.g. --key 'fileid_(\d+)'") from None


def rekey(entry: Entry, key: re.Pattern) -> Entry:
    r"""``entry`` with the id that ``key`` finds in ``entry.where``: its group ``key``, else
    its first group, else the whole match. Without a match, the file gets a problem and
    its own id, so that it still gets a row.

    Example:
        >>> e = Entry("x", Path("x.wav"), "x.wav", "book_8_fileid_12_snr3.wav")
        >>> rekey(e, re.compile(r"fileid_(\d+)")).id
        '12'
        >>> print(rekey(e, re.compile(r"reader_(\d+)")).problem)
        the --key 'reader_(\d+)' does not match book_8_fileid_12_snr3.wav
    """
    match = key.search(entry.where)
    if match is not None:
        group = "key" if "key" in key.groupindex else (1 if key.groups else 0)
        found = match.group(group)
        if found:
            return replace(entry, id=found)
    return replace(entry, id=entry.where,
                   problem=entry.problem or f"the --key '{key.pattern}' does not match {entry.where}")
