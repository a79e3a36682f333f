"""Pair the files of the reference and estimate sources by id.

Sources (:mod:`sqeval.sources`: folders, audio files, wav.scp and CSV lists) yield
``(id, path)`` entries; a folder's ids are relative paths without extension, so that
``clean/a/b.wav`` pairs with ``enhanced/a/b.flac``. Every file found in any source becomes
part of exactly one :class:`Job`; what did not pair is recorded on the job, so the report
can give it a row and a reason. Two files of one source with one id are ambiguous: both
are named in an error row. When no id is shared at all, pairing stops with a
:class:`PairingError` that shows ids of each side and suggests ``--key``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .audio import AUDIO_SUFFIXES
from .results import (CLEAN, NO_NOISY_INPUT, NO_OUTPUT, NO_REFERENCE_FILE, NOISY,
                      NOT_IN_FOLDER, NOT_IN_SOURCE)
from .sources import (AudioFile, Entry, FileList, Folder, PairingError, Source, default_name,
                      is_manifest, open_source, read_manifest, rekey)

__all__ = ["CLEAN_PROBLEM", "Inputs", "Job", "PairingError", "System",
           "list_audio", "pair_estimates", "pair_folders", "pair_sources", "parse_system",
           "read_inputs"]

CLEAN_PROBLEM = "clean reference: "  # how a problem of the clean file itself begins
EXAMPLES = 2  # ids shown from each side when nothing pairs


@dataclass(frozen=True)
class System:
    """A source of estimates and the name its rows carry (a path means a folder)."""

    name: str
    source: Source

    def __post_init__(self):
        if isinstance(self.source, (str, os.PathLike)):
            object.__setattr__(self, "source", Folder(Path(self.source)))


@dataclass
class Job:
    """One clean reference (or its absence) and every estimate of it: a unit of work.

    Attributes:
        key: the id the files share (for folders: the relative path without extension).
        clean: the clean file, or None when no source has it.
        estimates: system name → file, for every system that has one.
        problems: system name → why that file cannot be scored (found by pairing).
        name: the ``file`` column: the reference's name in its source (a folder's
            relative path; a list's id with the file's extension), else the first
            estimate's, else the key.
    """

    key: str
    clean: Path | None
    estimates: dict[str, Path] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    name: str = ""

    def display_name(self, *_unused) -> str:
        """The ``file`` column (the arguments of sqeval 0.1 are no longer needed)."""
        return self.name or self.key


@dataclass
class Listing:
    """A source's entries by id: ``files`` holds the first file of each id, ``problems``
    why an id cannot be scored (ambiguous, not a file, not matched by ``--key``)."""

    files: dict[str, Entry]
    problems: dict[str, str]
    missing: str = NOT_IN_SOURCE

    def ids(self) -> set[str]:
        return set(self.files) | set(self.problems)


def parse_system(argument: str) -> System:
    """``NAME=PATH`` or ``PATH`` (a folder's name, or a file's folder, names the system).

    Example:
        >>> parse_system("ours=out/run1").name, parse_system("out/run2/").name
        ('ours', 'run2')
        >>> parse_system("out/run3/a.wav").name
        'run3'
    """
    name, sep, path = argument.partition("=")
    if sep and name and path and "/" not in name and "\\" not in name:
        return System(name, open_source(Path(path)))
    source = open_source(Path(argument))
    return System(default_name(source), source)


@dataclass
class Inputs:
    """What a command line names: the reference source (None with ``--no-reference``) and
    the estimate systems, the noisy one first when given."""

    reference: Source | None
    systems: list[System]


def read_inputs(first: str, estimates: list[str], noisy: str | None = None,
                no_reference: bool = False) -> Inputs:
    """The sources of ``sqeval score FIRST [ESTIMATE ...] [--noisy NOISY]``.

    ``first`` is the reference, or a manifest of the whole run, or (``no_reference``) the
    first source to score. When it is one audio file, every other source must be one
    file too, and they all take its id.

    Raises:
        PairingError: a manifest given elsewhere than first, or malformed; one reference
            file with a folder or list of estimates; no estimate source at all.
    """
    inputs = _first_inputs(Path(first), no_reference)
    first_source = inputs.reference or next((s.source for s in inputs.systems), None)
    given = [parse_system(argument) for argument in estimates]
    check_reserved_names(given, no_reference)
    inputs.systems += given
    if not inputs.systems:
        raise PairingError("give at least one estimate source (ENHANCED) after the reference "
                           "(or --no-reference to score sources without clean files)")
    if noisy is not None:
        inputs.systems.insert(0, System(NOISY, open_source(Path(noisy))))
    if isinstance(first_source, AudioFile):
        _pin_to(first_source, inputs)
    return inputs


def _first_inputs(path: Path, no_reference: bool) -> Inputs:
    if is_manifest(path):
        return _manifest_inputs(path, no_reference)
    if no_reference:
        first = [parse_system(str(path))]
        check_reserved_names(first, no_reference)
        return Inputs(None, first)
    return Inputs(open_source(path), [])


def check_reserved_names(systems: list[System], no_reference: bool) -> None:
    """Raise :class:`PairingError` for a system of estimates named as sqeval names its own
    rows: ``clean`` (the references themselves) and, with references, ``noisy`` (the
    ``--noisy`` baseline, which gates skip and deltas subtract). Such a system would be
    taken for that row: its files never gated, or never read. Without references a source
    named ``noisy`` is the baseline, as documented."""
    reserved = {CLEAN: "the clean references' own rows"}
    if not no_reference:
        reserved[NOISY] = "the --noisy inputs, the baseline that gates skip"
    for system in systems:
        if system.name in reserved:
            where = getattr(system.source, "path", "")
            raise PairingError(
                f"the system name {system.name!r} (of {where}) is reserved for "
                f"{reserved[system.name]}; name these estimates with NAME=PATH, e.g. "
                f"model={where}")


def _manifest_inputs(path: Path, no_reference: bool) -> Inputs:
    manifest = read_manifest(path, default_name(FileList(path)))
    systems = [System(name, FileList(path, items)) for name, items in manifest.systems.items()]
    check_reserved_names(systems, no_reference)
    if manifest.noisy is not None:
        systems.insert(0, System(NOISY, FileList(path, manifest.noisy)))
    if no_reference:
        if manifest.references:
            raise PairingError(f"{path}: a manifest with references cannot go with "
                               "--no-reference; drop --no-reference, or the reference column")
        return Inputs(None, systems)
    if not manifest.references:
        raise PairingError(f"{path}: expected a reference column with the clean files "
                           "(or --no-reference to score the estimates alone)")
    return Inputs(FileList(path, manifest.references), systems)


def _pin_to(first: AudioFile, inputs: Inputs) -> None:
    """One reference file pairs with every estimate file given beside it: all take its id."""
    for index, system in enumerate(inputs.systems):
        if not isinstance(system.source, AudioFile):
            raise PairingError(f"{first.path} is one audio file, so every other source must "
                               f"be one audio file too; got {system.source.path} (system "
                               f"{system.name}). Give a folder or list first to pair many")
        inputs.systems[index] = System(system.name, system.source.pinned(first.path.stem))


def pair_sources(reference: Source | None, systems: list[System],
                 key: re.Pattern | None = None) -> list[Job]:
    """Pair every file of ``reference`` with each system's, by id (``key``: see
    :func:`sqeval.sources.rekey`). Without a reference (``--no-reference``) the systems'
    files pair with each other.

    Returns:
        one :class:`Job` per id found in any source, sorted by id.

    Raises:
        PairingError: two systems share a name, a source cannot be listed, no audio file
            was found anywhere, or no id is shared by the reference and any estimate.
    """
    _check_names(systems)
    listings = {system.name: list_source(system.source, key) for system in systems}
    references = list_source(reference, key) if reference is not None else None
    ids = set().union(*(listing.ids() for listing in listings.values()))
    if references is not None:
        ids |= references.ids()
    if not ids:
        where = ([str(reference.path)] if reference is not None else []) + [
            str(system.source.path) for system in systems]
        raise PairingError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in "
                           + ", ".join(where))
    _check_something_pairs(references, listings, key)
    if references is None:
        return [_estimates_job(id, listings) for id in sorted(ids)]
    return [_job(id, references, listings) for id in sorted(ids)]


def list_source(source: Source, key: re.Pattern | None = None) -> Listing:
    """``source``'s entries by id (after ``key``), with the ids that cannot be scored."""
    entries = source.entries()
    if key is not None:
        entries = [rekey(entry, key) for entry in entries]
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.id, []).append(entry)
    files = {id: next((e for e in group if e.problem is None), None)
             for id, group in groups.items()}
    problems = {id: _problem(id, group, source.noun if key is None else "--key match")
                for id, group in groups.items() if len(group) > 1 or group[0].problem}
    missing = NOT_IN_FOLDER if isinstance(source, Folder) else Listing.missing
    return Listing({id: entry for id, entry in files.items() if entry is not None}, problems,
                   missing)


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``, False where the path cannot even be examined (a name too long)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _problem(id: str, group: list[Entry], noun: str) -> str:
    """Why ``group`` (the entries of one id in one source) cannot be scored."""
    files = [entry for entry in group if entry.problem is None]
    folders = [entry for entry in group if entry.problem is not None and _is_dir(entry.path)]
    if len(group) == 1 or len(folders) == len(group):
        return group[0].problem
    if files and folders:
        return f"ambiguous: {Path(files[0].where).name} and a folder of the same {noun}"
    names = [Path(entry.where).name for entry in group]
    if len(set(names)) < len(names):
        names = [entry.where for entry in group]
    if noun == "name":
        return f"ambiguous: {', '.join(names)} share one name; keep one"
    return f"ambiguous: {', '.join(names)} share the {noun} {id!r}; keep one"


def _check_names(systems: list[System]) -> None:
    """Raise :class:`PairingError` for two systems of one name."""
    names = [system.name for system in systems]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise PairingError(
            f"two sources would both be called {', '.join(duplicated)}; "
            "name them apart with NAME=PATH"
        )


def _check_something_pairs(references: Listing | None, listings: dict[str, Listing],
                           key: re.Pattern | None) -> None:
    """Raise :class:`PairingError` when no id of the reference (with ``--no-reference``:
    of the first source) is an id of any other source: the names follow another scheme."""
    sides = list(listings.values())
    if references is None:
        if len(sides) < 2:
            return
        references, sides = sides[0], sides[1:]
    others = set().union(*(side.ids() for side in sides))
    if references.ids() & others:
        return
    hint = (f"check that --key '{key.pattern}' finds the same part in the names of both"
            if key is not None else
            "if the names differ but share a part, take the id from it with --key REGEX, "
            r"e.g. --key 'fileid_(\d+)' or --key '(\d+)\.wav$'")
    raise PairingError(f"nothing pairs: no id of the reference ({_examples(references.ids())}) "
                       f"is an id of any estimate ({_examples(others)}); {hint}")


def _examples(ids: set[str]) -> str:
    if not ids:
        return "no audio files"
    shown = ", ".join(repr(id) for id in sorted(ids)[:EXAMPLES])
    return f"e.g. {shown}" + (f" of {len(ids)}" if len(ids) > EXAMPLES else "")


def _job(id: str, references: Listing, listings: dict[str, Listing]) -> Job:
    clean = references.files.get(id)
    job = Job(id, clean.path if clean is not None else None)
    for name, listing in listings.items():
        entry = listing.files.get(id)
        if entry is not None:
            job.estimates[name] = entry.path
        if id in listing.problems:
            job.problems[name] = listing.problems[id]
        elif id in references.problems:
            job.problems[name] = CLEAN_PROBLEM + references.problems[id]
        elif clean is None:
            if entry is not None:
                job.problems[name] = NO_REFERENCE_FILE
        elif entry is None:
            job.problems[name] = NO_NOISY_INPUT if name == NOISY else NO_OUTPUT
    job.name = _name(id, [references, *listings.values()])
    return job


def _estimates_job(id: str, listings: dict[str, Listing]) -> Job:
    job = Job(id, None, name=_name(id, listings.values()))
    for name, listing in listings.items():
        if id in listing.problems:
            job.problems[name] = listing.problems[id]
        elif id in listing.files:
            job.estimates[name] = listing.files[id].path
        else:
            job.problems[name] = listing.missing
    return job


def _name(id: str, listings) -> str:
    """The ``file`` column: the first source's name of the file with this id."""
    return next((listing.files[id].name for listing in listings if id in listing.files), id)


# --- the folder forms of sqeval 0.1 ----------------------------------------------------

def pair_folders(clean_folder: Path, systems: list[System]) -> list[Job]:
    """Pair every audio file of ``clean_folder`` with each system's (a folder form of
    :func:`pair_sources`)."""
    return pair_sources(Folder(Path(clean_folder)), systems)


def pair_estimates(systems: list[System]) -> list[Job]:
    """Pair the files of sources that have no clean references (``--no-reference``)."""
    return pair_sources(None, systems)


def list_audio(folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Audio files under ``folder`` by id, and the ids that cannot be paired, with the
    reason: two files of one name, or a folder named like an audio file."""
    listing = list_source(Folder(Path(folder)))
    return {id: entry.path for id, entry in listing.files.items()}, listing.problems
