"""benchmarks/bench.py, the benchmark script outside the package: its options, and its
error when it is not run from a clone (no sample_data/)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"


def run(script: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=120)


def test_help_lists_the_options():
    result = run(BENCH, "--help")
    assert result.returncode == 0
    for option in ("--files", "--jobs", "--keep", "--runs", "-m METRICS, --metrics"):
        assert option in result.stdout
    assert "python benchmarks/bench.py" in result.stdout


def test_an_unknown_run_is_a_usage_error():
    result = run(BENCH, "--runs", "jobs1,fast")
    assert result.returncode == 2 and "unknown run(s) fast; choose from jobs1" in result.stderr


def test_without_sample_data_it_says_to_run_from_a_clone(tmp_path):
    script = tmp_path / "benchmarks" / "bench.py"
    script.parent.mkdir()
    shutil.copy(BENCH, script)
    result = run(script, "--files", "1", "--runs", "jobs1", "--keep", str(tmp_path / "corpus"))
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "expected the clean speech of sample_data/" in message
    assert "from a clone of the sqeval repository" in message
