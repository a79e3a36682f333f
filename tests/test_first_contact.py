"""First contact: --version, completion, help that keeps every word at 80 columns, paper
names in LaTeX and plots, the lines that say what was written, and the wheel installed in
a fresh venv running `sqeval sanity`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sqeval
from sqeval.cli import app
from sqeval.metrics import REGISTRY

from conftest import write

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def sqeval_cli(*args, columns: int = 80) -> subprocess.CompletedProcess:
    """The installed command, in a terminal of ``columns`` columns."""
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm"}
    return subprocess.run([sys.executable, "-m", "sqeval", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=120)


def test_version():
    result = sqeval_cli("--version")
    assert result.returncode == 0 and result.stdout == f"sqeval {sqeval.__version__}\n"


def test_shell_completion_is_available():
    result = sqeval_cli("--show-completion", "bash")
    assert result.returncode == 0 and "_SQEVAL_COMPLETE" in result.stdout
    assert "--install-completion" in sqeval_cli("--help").stdout


def test_help_keeps_square_brackets_and_fits_80_columns():
    help_text = sqeval_cli("score", "--help").stdout
    assert "[tool.sqeval]" in help_text and "sqeval[dask]" in help_text
    assert "sqeval[plot]" in help_text
    assert "'delta.pesq_wb>=0.3'" in help_text and "'_(?P<snr>-?\\d+)dB'" in help_text
    assert "…" not in help_text and "<str>" not in help_text and "list[str]" not in help_text
    for command in ("", "score", "compare", "plot", "report", "sanity", "metrics"):
        text = sqeval_cli(*([command] if command else []), "--help").stdout
        assert max(map(len, text.splitlines())) <= 80, command


def test_each_command_has_a_whole_one_line_summary():
    lines = sqeval_cli("--help").stdout.split("Commands:")[1].strip().splitlines()
    assert len(lines) == 6
    assert all(line.rstrip().endswith(".") and "..." not in line for line in lines)


def _corpus(tmp_path, golden):
    s, e, rate, _ = golden
    for k in range(3):
        write(tmp_path / "clean" / f"f{k}.wav", s, rate)
        write(tmp_path / "noisy" / f"f{k}.wav", e, rate)
        write(tmp_path / "enh" / f"f{k}.wav", s + (k + 1) * (e - s) / 5, rate)
    return ["score", tmp_path / "clean", tmp_path / "enh", "--noisy", tmp_path / "noisy",
            "--metrics", "si_snr,pesq_wb,stoi", "--no-cache", "--jobs", 1]


def test_latex_uses_paper_names_and_its_style(tmp_path, golden):
    base = [str(a) for a in _corpus(tmp_path, golden)]
    tables = {}
    for style in ("mean", "mean-ci", "mean-std"):
        out = tmp_path / f"{style}.tex"
        result = runner.invoke(app, [*base, "--latex", str(out), "--latex-style", style])
        assert result.exit_code == 0, result.output
        tables[style] = out.read_text()
    header = next(line for line in tables["mean"].splitlines() if line.startswith("System &"))
    assert header == (r"System & SI-SNR $\uparrow$ & PESQ (WB) $\uparrow$ & STOI $\uparrow$ "
                      r"\\")
    row = next(line for line in tables["mean"].splitlines() if line.startswith("enh &"))
    assert r"$\pm$" not in row
    assert "mean ± 95 % CI half-width" in tables["mean-ci"]
    assert "mean ± standard deviation" in tables["mean-std"]
    assert tables["mean-ci"] != tables["mean-std"]
    bad = runner.invoke(app, [*base, "--latex", str(tmp_path / "x.tex"), "--latex-style", "x"])
    assert bad.exit_code == 2 and "--latex-style takes mean, mean-ci, mean-std" in bad.output


def test_every_metric_has_a_display_name():
    assert {REGISTRY[n].title for n in ("si_snr", "pesq_wb", "osi_snr", "mc_mse")} == {
        "SI-SNR", "PESQ (WB)", "OSI-SNR", "MC-MSE"}
    assert all(spec.display for spec in REGISTRY.values())


def test_each_written_output_is_one_line_on_stderr(tmp_path, golden):
    base = [str(a) for a in _corpus(tmp_path, golden)]
    result = runner.invoke(app, [*base, "--csv", str(tmp_path / "r.csv"), "--junit",
                                 str(tmp_path / "j.xml"), "--gate", "stoi>0"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("wrote ")]
    assert lines == [f"wrote {tmp_path / 'r.csv'} (6 rows; provenance in "
                     f"{tmp_path / 'r.csv'}.meta.json)",
                     f"wrote {tmp_path / 'j.xml'} (1 gate check)"]
    assert "(3 files)" in result.stdout


def test_a_plot_of_every_metric_is_a_grid_a_paper_can_hold(tmp_path, golden):
    from PIL import Image

    base = [str(a) for a in _corpus(tmp_path, golden)]
    base[base.index("--metrics") + 1] = "core"
    assert runner.invoke(app, [*base, "--csv", str(tmp_path / "r.csv")]).exit_code == 0
    result = runner.invoke(app, ["plot", str(tmp_path / "r.csv"), "-o", str(tmp_path / "f.png")])
    assert result.exit_code == 0, result.output
    width, height = Image.open(tmp_path / "f.png").size
    assert width == 7 * 300  # a two-column paper's text width at 300 dpi
    assert height == round(2 * 3 * 1.75 * 300)  # 11 panels: 3 rows of boxes, 3 of Δ


@pytest.mark.skipif(sys.platform != "linux", reason="the venv layout checked is POSIX's")
def test_the_wheel_installs_in_a_fresh_venv_and_runs_sanity(tmp_path):
    """The wheel holds the package data (sanity's built-in clip). It is built from this
    clone, installed in a new venv with its dependencies taken from this one (a .pth
    file: nothing is downloaded but the build backend), and run from another directory."""
    source = tmp_path / "source"  # a copy: the build leaves build/ and *.egg-info behind
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".venv*", ".git", "build", "dist", "*.egg-info", "tests", "sample_data", "docs",
        ".sqeval-cache", "__pycache__"))
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                            "--disable-pip-version-check", "-w", str(wheels), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("sqeval-*.whl")
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--quiet",
                                "--disable-pip-version-check", str(wheel)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "deps-from-the-test-venv.pth").write_text("\n".join(ours) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(python), "-c", "import sqeval; print(sqeval.__file__)"],
                           capture_output=True, text=True, cwd=elsewhere)
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr
    sanity = subprocess.run([str(target / "bin" / "sqeval"), "sanity", "-m", "si_snr,stoi"],
                            capture_output=True, text=True, cwd=elsewhere, timeout=300)
    assert sanity.returncode == 0, sanity.stdout + sanity.stderr
    assert "| identity " in sanity.stdout and "clean+noise" in sanity.stdout  # the clip's cases
