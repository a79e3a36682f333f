"""``sqeval sanity``: every metric on canonical cases, and its declared properties checked."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from .. import __version__
from ..audio import AudioError, ChannelPolicy, file_problem, read_audio
from ..metrics import resolve
from ..metrics.registry import PROPERTIES
from ..pairing import PairingError, list_audio
from ..report.files import json_number, write_csv, write_json
from ..report.table import case_table, properties_table
from ..sanity import (MAX_NOISE_CORRELATION, Material, add_losses, check_properties,
                      noise_correlation, run_cases)
from ..scoring import ScoreOptions, read_reference
from .common import (CHANNEL_OPTION, MIX_OPTION, ExitCode, abort, channel_policy,
                     check_outputs, print_to_stdout, stderr_console, stdout_console)

BUILT_IN = "speech.wav (built in)"


def sanity_command(
    clean: Optional[Path] = typer.Option(
        None, "--clean", metavar="FILE",
        help="A clean file, or a folder of them. Default: a built-in 3 s speech clip."),
    noisy: Optional[Path] = typer.Option(
        None, "--noisy", metavar="FILE", help="The noisy file (or folder, paired by name) for "
        "--clean; the "
        "noise is noisy − clean. Default: white noise at 5 dB SNR."),
    metrics: Optional[str] = typer.Option(
        None, "--metrics", "-m", metavar="NAMES",
        help="Comma-separated metric and group names, or 'all'; default: the core group."),
    losses: bool = typer.Option(False, "--losses", help="Also show the loss forms of "
                                "sqeval.losses for every case."),
    csv_path: Optional[Path] = typer.Option(
        None, "--csv", metavar="FILE",
        help="Write file,case,values,error."),
    json_path: Optional[Path] = typer.Option(
        None, "--json", metavar="FILE",
        help="Write cases and properties."),
    channel: Optional[int] = CHANNEL_OPTION,
    mix: Optional[str] = MIX_OPTION,
) -> None:
    """Show how every metric behaves on canonical cases, and check its declared properties.

    Exit code 1 when a property that the registry declares does not hold.
    """
    try:
        specs = resolve(metrics)
    except KeyError as error:
        abort(error.args[0])
    check_outputs({"--csv": csv_path, "--json": json_path}, [clean, noisy])
    materials = _materials(clean, noisy, channel_policy(channel, mix))
    options = ScoreOptions(metrics=tuple(specs), systems=(), check_outputs=False)
    rows = [row for material in materials
            for row in run_cases(material, options, add_losses if losses else None)]
    names = [spec.name for spec in specs]
    loss_names = [name for name in rows[0].values if name not in names]
    results = check_properties(rows, specs, _correlated_noise(materials))
    unwritten = None
    try:  # the files first: a stdout that breaks while the tables print loses nothing else
        if csv_path is not None:
            write_csv(csv_path, rows, names + loss_names, second="case")
        if json_path is not None:
            _write_json(json_path, rows, names + loss_names, results)
    except OSError as error:
        unwritten = f"could not write {error.filename or ''}: {error.strerror or error}"
    stdout_problem = print_to_stdout(lambda: _print_tables(rows, names, loss_names,
                                                           len(materials), results, specs))
    if unwritten is not None:
        abort(unwritten)
    failed = [f"{r.metric}.{r.name}" for r in results if r.failed]
    if failed:
        stderr_console().print(f"[bold red]declared properties that do not hold:[/bold red] "
                               f"{', '.join(failed)}")
        raise typer.Exit(int(ExitCode.GATE_FAILED))
    if stdout_problem is not None:
        raise typer.Exit(int(stdout_problem))


def _print_tables(rows, names, loss_names, n_materials, results, specs) -> None:
    console = stdout_console()
    console.print(case_table(rows, names, n_materials, "sqeval sanity: metrics"))
    if loss_names:
        console.print(case_table(rows, loss_names, n_materials,
                                 "loss forms (sqeval.losses; lower is better)"))
    console.print(properties_table(results, specs))
    for result in results:
        if result.failed or result.finding:
            kind = "[bold red]FAILED[/bold red]" if result.failed else "[yellow]finding[/yellow]"
            console.print(f"{kind} {escape(result.metric)}: {result.name} "
                          f"({PROPERTIES[result.name]}) — {escape(result.observed)}",
                          soft_wrap=True)


def _correlated_noise(materials) -> dict[str, float]:
    """Files whose noisy − clean holds speech, each with a warning on stderr."""
    found = {}
    for material in materials:
        if material.noisy is None:
            continue
        rho = noise_correlation(material)
        if abs(rho) > MAX_NOISE_CORRELATION:
            found[material.name] = rho
            stderr_console().print(
                f"warning: {material.name}: the noise (noisy − clean) correlates with the clean "
                f"signal (ρ = {rho:.2f}), as when a noisy file is scaled after mixing; its SNR "
                "sweep is shown but monotone_in_snr is not evaluated on it", markup=False,
                soft_wrap=True)
    return found


def _materials(clean: Optional[Path], noisy: Optional[Path], policy: ChannelPolicy):
    if clean is None:
        if noisy is not None:
            abort("--noisy needs --clean: the noise is taken as noisy − clean")
        with resources.as_file(resources.files("sqeval") / "data" / "speech.wav") as path:
            return [_material(BUILT_IN, path, None, policy)]
    for path in (clean, noisy):
        if path is not None and not path.exists():
            abort(f"{path}: no such file or folder")
        problem = None if path is None or path.is_dir() else file_problem(path)
        if problem is not None:  # a FIFO, a device such as a link to /dev/zero, > 1 GiB
            abort(f"{path}: {problem}")
    if clean.is_file():
        if noisy is not None and not noisy.is_file():
            abort(f"--clean is a file, so --noisy must be a file too; got the folder {noisy}")
        return [_material(clean.name, clean, noisy, policy)]
    if noisy is not None and not noisy.is_dir():
        abort(f"--clean is a folder, so --noisy must be a folder too; got the file {noisy}")
    return _folder_materials(clean, noisy, policy)


def _folder_materials(clean: Path, noisy: Optional[Path], policy: ChannelPolicy):
    try:
        clean_files, _ = list_audio(clean)
        noisy_files = list_audio(noisy)[0] if noisy is not None else {}
    except PairingError as error:  # a user's input, not a bug in sqeval: exit 2
        abort(str(error))
    materials, warn = [], stderr_console()
    for key, path in clean_files.items():
        if noisy is not None and key not in noisy_files:
            warn.print(f"skipped {key}: no noisy file of that name in {noisy}", markup=False)
            continue
        material = _material(key, path, noisy_files.get(key), policy, warn)
        if material is not None:
            materials.append(material)
    if not materials:
        abort(f"no usable clean audio files in {clean}")
    return materials


def _material(name, clean_path, noisy_path, policy, warn=None):
    """Read one clean (and noisy) file; in a folder a bad file is skipped with its reason."""
    try:
        reference = read_reference(clean_path, policy)
        material = Material(name, reference.samples, reference.rate)
        if noisy_path is not None:
            material.noisy, material.noisy_rate = read_audio(noisy_path, policy)
            if not material.prefix_and_noise[1].any():  # no noise to scale for the sweep
                raise AudioError("the noisy file equals the clean one (noisy − clean is "
                                 "zero): there is no noise to sweep; give the noisy input")
        return material
    except AudioError as error:
        if warn is None:
            abort(f"{noisy_path if 'noisy' in str(error) else clean_path}: {error}")
        warn.print(f"skipped {name}: {error}", markup=False)
        return None


def _write_json(path: Path, rows, names, results) -> None:
    data = {
        "sqeval_version": __version__,
        "columns": names,
        "cases": [{"file": r.file, "case": r.system,
                   "values": {n: json_number(r.values[n]) for n in names},
                   "error": r.error_text(names) or None, "notes": r.notes} for r in rows],
        "properties": [{"metric": p.metric, "property": p.name, "meaning": PROPERTIES[p.name],
                        "declared": p.declared, "holds": p.holds, "observed": p.observed,
                        "failed": p.failed, "finding": p.finding} for p in results],
    }
    write_json(path, data)
