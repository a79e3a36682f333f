"""Every command and code example of README.md and docs/ runs as written.

A page's fenced ``sh`` and ``python`` blocks run in order, in one folder of their own
that holds what the examples name: ``clean/``, ``noisy/``, ``enhanced/`` (copies of
``sample_data/``), ``runs/a`` and ``runs/b`` (two systems: the enhanced and the noisy
files), ``dns/`` (the same triplets under DNS Challenge names) and ``tests/data``.
``sqeval`` is this checkout's, run by the interpreter running the tests.

A block runs with ``bash -e`` (or Python) and must exit 0, unless an HTML comment just
before it says otherwise: ``<!-- example: exit N -->`` (the block's last command exits
N, as the page says), or ``<!-- example: not run (REASON) -->``, allowed only for blocks
that install or set up an environment (pip, venv, make): CI runs those itself.
In Python blocks, a line ``EXPRESSION  # NUMBER`` (or ``# [NUMBER, ...]``) states a
value: it is checked to the digits printed (within half a unit of the last digit; one
unit when a trailing ``...`` marks a cut number).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUN = ("sh", "python")
# Languages of blocks that are not examples to run: outputs, synopses, files' contents.
NOT_CODE = ("", "text", "toml", "csv", "json", "latex", "tex", "markdown", "xml")
SETUP = re.compile(r"^(pip |python3? -m (venv|pip) |\. |make( |$)|sudo |apt-get |git clone )")
ANNOTATION = re.compile(r"^<!--\s*example:\s*(exit (?P<exit>\d+)|not run \((?P<why>[^)]+)\))"
                        r"\s*-->$")


@dataclass
class Block:
    page: Path
    line: int
    language: str
    code: str
    exit: int = 0
    not_run: str | None = None

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, with their annotations."""
    found, lines = [], page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = re.match(r"^```(\S*)\s*$", lines[index])
        if not opening:
            index += 1
            continue
        end = next(j for j in range(index + 1, len(lines)) if lines[j].startswith("```"))
        block = Block(page, index + 1, opening.group(1), "\n".join(lines[index + 1:end]) + "\n")
        before = next((lines[j].strip() for j in range(index - 1, -1, -1) if lines[j].strip()),
                      "")
        mark = ANNOTATION.match(before)
        if mark and mark.group("exit"):
            block.exit = int(mark.group("exit"))
        elif mark:
            block.not_run = mark.group("why")
        found.append(block)
        index = end + 1
    return found


def test_every_block_is_an_example_or_declared_not_code():
    """A block in another language would silently escape this test."""
    for page in PAGES:
        for block in blocks(page):
            assert block.language in RUN + NOT_CODE, (
                f"{block.where()}: a ```{block.language} block: run it (sh, python) or "
                "declare what it is in NOT_CODE")


def test_not_run_blocks_only_set_up():
    for page in PAGES:
        for block in blocks(page):
            if block.not_run is None:
                continue
            assert block.language == "sh", block.where()
            for line in block.code.splitlines():
                command = line.split("#", 1)[0].strip()
                assert not command or SETUP.match(command), (
                    f"{block.where()}: `{command}` is not a set-up step; only those may "
                    "be left out of the run")


def test_the_quick_start_is_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"```sh\n(.*?)```", section, re.S) == ["make demo\nmake test\n"]


def sandbox(folder: Path) -> dict:
    """The folder the examples of one page run in, and their environment."""
    samples = ROOT / "sample_data"
    shutil.copytree(samples, folder / "sample_data")
    for name in ("clean", "noisy", "enhanced"):
        shutil.copytree(samples / name, folder / name)
    shutil.copytree(samples / "enhanced", folder / "runs" / "a")
    shutil.copytree(samples / "noisy", folder / "runs" / "b")
    (folder / "tests").mkdir()
    (folder / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    (folder / "examples").symlink_to(ROOT / "examples")
    for part in ("clean", "noisy", "enhanced"):
        (folder / "dns" / part).mkdir(parents=True)
    for number, path in enumerate(sorted((samples / "clean").glob("*.wav"))):
        snr = re.search(r"_(-?\d+)dB$", path.stem).group(1)
        shutil.copy(path, folder / "dns" / "clean" / f"clean_fileid_{number}.wav")
        shutil.copy(samples / "noisy" / path.name,
                    folder / "dns" / "noisy" / f"book_{path.stem}_snr{snr}_fileid_{number}.wav")
        shutil.copy(samples / "enhanced" / path.name,
                    folder / "dns" / "enhanced" / f"enhanced_snr{snr}_fileid_{number}.wav")
    tools = folder / ".bin"
    tools.mkdir()
    for name, module in (("sqeval", "sqeval"), ("python", None), ("python3", None)):
        script = tools / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" '
                          + (f"-m {module} " if module else "") + '"$@"\n')
        script.chmod(0o755)
    env = dict(os.environ, PATH=f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=str(ROOT), NO_COLOR="1", COLUMNS="120", OMP_NUM_THREADS="1")
    env.pop("SQEVAL_DEBUG", None)
    return env


STATED = re.compile(r"^(?P<expr>[^#=]+?\S)\s+#\s*(?P<value>\[[-\d., e]+\]|-?\d+(\.\d+)?(e-?\d+)?)"
                    r"(?P<cut>\.\.\.)?\s*$")


def checked(code: str) -> str:
    """The block with each stated value turned into a check of it."""
    lines = []
    for line in code.splitlines():
        match = STATED.match(line)
        if match and not line.startswith((" ", "\t")) and "(" in match.group("expr"):
            # a rounded number is within half a unit of its last digit, a cut one within one
            unit = 1.0 if match.group("cut") else 0.5
            lines.append(f"_stated({match.group('expr')}, {match.group('value')!r}, {unit})")
        else:
            lines.append(line)
    helper = textwrap.dedent('''\
        def _stated(value, text, unit):
            import numpy as _np
            numbers = [n for n in text.strip("[]").replace(",", " ").split()]
            decimals = max(len(n.split("e")[0].split(".")[1]) if "." in n else 0 for n in numbers)
            expected = _np.array([float(n) for n in numbers])
            got = _np.atleast_1d(_np.asarray(value, dtype=float))
            assert got.shape == expected.shape, (got, text)
            assert _np.all(_np.abs(got - expected) <= unit * 1.0001 * 10.0 ** -decimals), (got, text)
        ''')
    return helper + "\n".join(lines) + "\n"


def run(block: Block, folder: Path, env: dict) -> subprocess.CompletedProcess:
    if block.language == "sh":
        command = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    else:
        command = [sys.executable, "-c", checked(block.code)]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=900)


PAGES_WITH_EXAMPLES = [page for page in PAGES
                       if any(b.language in RUN and b.not_run is None for b in blocks(page))]


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES,
                         ids=[str(p.relative_to(ROOT)) for p in PAGES_WITH_EXAMPLES])
def test_the_examples_run(page, tmp_path):
    env = sandbox(tmp_path)
    ran = 0
    for block in blocks(page):
        if block.language not in RUN or block.not_run is not None:
            continue
        result = run(block, tmp_path, env)
        assert result.returncode == block.exit, (
            f"{block.where()}: exit {result.returncode}, expected {block.exit}\n"
            f"--- code\n{block.code}--- stdout\n{result.stdout[-3000:]}"
            f"--- stderr\n{result.stderr[-3000:]}")
        assert "Traceback" not in result.stderr, f"{block.where()}:\n{result.stderr[-3000:]}"
        ran += 1
    assert ran


def test_stated_values_are_checked():
    """The check of a stated value fails on a wrong value (it is not a comment)."""
    ok = subprocess.run([sys.executable, "-c", checked("abs(-0.125)   # 0.125\n")])
    wrong = subprocess.run([sys.executable, "-c", checked("abs(-0.125)   # 0.126\n")],
                           capture_output=True)
    cut = subprocess.run([sys.executable, "-c", checked("sum([0.1, 0.2])   # 0.3000...\n")])
    listed = subprocess.run([sys.executable, "-c", checked("list((1.5, 2.25))   # [1.5, 2.4]\n")],
                            capture_output=True)
    assert (ok.returncode, wrong.returncode, cut.returncode, listed.returncode) == (0, 1, 0, 1)
