"""Walk the clean, noisy and enhanced folders and pair their files.

Files pair by their path relative to each folder, without the extension, so that
``clean/a/b.wav`` pairs with ``enhanced/a/b.flac``. Every audio file found in any folder
becomes part of exactly one :class:`Job`; what did not pair is recorded on the job, so
the report can give it a row and a reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .audio import AUDIO_SUFFIXES

NOISY = "noisy"  # the system name of the noisy folder
CLEAN = "clean"  # the system name of the clean references, scored by non-intrusive metrics
CLEAN_PROBLEM = "clean reference: "  # how a problem of the clean file itself begins


class PairingError(ValueError):
    """The folders cannot be paired at all (a folder is missing, a name is reused, ...)."""


@dataclass(frozen=True)
class System:
    """A folder of estimates and the name its rows carry."""

    name: str
    folder: Path


@dataclass
class Job:
    """One clean reference (or its absence) and every estimate of it: a unit of work.

    Attributes:
        key: the relative path without extension, with forward slashes.
        clean: the clean file, or None when no folder has it.
        estimates: system name → file, for every system that has one.
        problems: system name → why that file cannot be scored (found by pairing).
    """

    key: str
    clean: Path | None
    estimates: dict[str, Path] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def display_name(self, clean_folder: Path, systems: dict[str, System]) -> str:
        """The ``file`` column: path relative to the clean folder, forward slashes."""
        if self.clean is not None:
            return _relative(self.clean, clean_folder)
        for name, path in self.estimates.items():
            return _relative(path, systems[name].folder)
        return self.key  # only clashing files: the shared name, without extension


def _relative(path: Path, folder: Path) -> str:
    return PurePosixPath(*path.relative_to(folder).parts).as_posix()


def parse_system(argument: str) -> System:
    """``NAME=PATH`` or ``PATH`` (the folder's name names the system).

    Example:
        >>> parse_system("ours=out/run1").name, parse_system("out/run2/").name
        ('ours', 'run2')
    """
    name, sep, path = argument.partition("=")
    if sep and name and path and os.sep not in name:
        return System(name, Path(path))
    folder = Path(argument)
    return System(folder.resolve().name if folder.name in ("", ".", "..") else folder.name, folder)


def list_audio(folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Audio files under ``folder`` by key, and the keys that cannot be paired, with the
    reason: two files of one name, or a folder named like an audio file.

    Symbolic links to directories are not followed, so a link loop cannot hang the walk.
    """
    found: dict[str, list[Path]] = {}
    folders_named_as_audio: dict[str, str] = {}
    for root, directories, files in os.walk(folder, followlinks=False):
        directories.sort()
        for name in directories:
            if Path(name).suffix.lower() in AUDIO_SUFFIXES:
                path = Path(root) / name
                key = PurePosixPath(*path.relative_to(folder).with_suffix("").parts).as_posix()
                folders_named_as_audio[key] = f"{name} is a folder, not an audio file"
        for name in sorted(files):
            path = Path(root) / name
            if path.suffix.lower() in AUDIO_SUFFIXES and not path.is_dir():
                key = PurePosixPath(*path.relative_to(folder).with_suffix("").parts).as_posix()
                found.setdefault(key, []).append(path)
    unique = {key: paths[0] for key, paths in found.items()}
    clashes = {
        key: "ambiguous: " + ", ".join(p.name for p in paths) + " share one name; keep one"
        for key, paths in found.items()
        if len(paths) > 1
    }
    for key, reason in folders_named_as_audio.items():
        clashes.setdefault(key, reason)
        if key in unique:  # a file and a folder of one name: the file cannot be paired
            clashes[key] = f"ambiguous: {unique[key].name} and a folder of the same name"
    return unique, clashes


def pair_folders(clean_folder: Path, systems: list[System]) -> list[Job]:
    """Pair every audio file of ``clean_folder`` with each system's folder.

    Returns:
        one :class:`Job` per key found in any folder, sorted by key.

    Raises:
        PairingError: a folder is missing or not a folder, two systems share a name, or
            no audio file was found anywhere.
    """
    _check(systems, [clean_folder, *(system.folder for system in systems)])
    clean_files, clean_clashes = list_audio(clean_folder)
    listings = {system.name: list_audio(system.folder) for system in systems}
    keys = set(clean_files) | set(clean_clashes)
    for files, clashes in listings.values():
        keys |= set(files) | set(clashes)
    if not keys:
        raise PairingError(
            f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {clean_folder} or the "
            "estimate folders"
        )
    return [_job(key, clean_files, clean_clashes, listings) for key in sorted(keys)]


def pair_estimates(systems: list[System]) -> list[Job]:
    """Pair the files of folders that have no clean references (``--no-reference``).

    Returns:
        one :class:`Job` per key found in any folder, sorted by key, with ``clean=None``;
        a folder that lacks a file another has gets a problem for it.

    Raises:
        PairingError: as :func:`pair_folders`.
    """
    _check(systems, [system.folder for system in systems])
    listings = {system.name: list_audio(system.folder) for system in systems}
    keys = set().union(*(set(files) | set(clashes) for files, clashes in listings.values()))
    if not keys:
        raise PairingError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in "
                           + ", ".join(str(system.folder) for system in systems))
    jobs = []
    for key in sorted(keys):
        job = Job(key, None)
        for name, (files, clashes) in listings.items():
            if key in clashes:
                job.problems[name] = clashes[key]
            elif key in files:
                job.estimates[name] = files[key]
            else:
                job.problems[name] = "no file of this name in this folder (another folder has one)"
        jobs.append(job)
    return jobs


def _check(systems: list[System], folders: list[Path]) -> None:
    """Raise :class:`PairingError` for two systems of one name or a missing folder."""
    names = [system.name for system in systems]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise PairingError(
            f"two folders would both be called {', '.join(duplicated)}; "
            "name them apart with NAME=PATH"
        )
    for folder in folders:
        if not folder.is_dir():
            raise PairingError(f"{folder}: not a folder (expected a folder of audio files)")


def _job(key, clean_files, clean_clashes, listings) -> Job:
    job = Job(key, clean_files.get(key))
    for name, (files, clashes) in listings.items():
        if key in files:
            job.estimates[name] = files[key]
        if key in clashes:
            job.problems[name] = clashes[key]
        elif key in clean_clashes:
            job.problems[name] = CLEAN_PROBLEM + clean_clashes[key]
        elif job.clean is None:
            if key in files:
                job.problems[name] = "no clean reference for this file"
        elif key not in files:
            job.problems[name] = ("no noisy input for this reference" if name == NOISY
                                  else "no output for this reference")
    return job
