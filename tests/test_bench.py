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
    for option in ("--files", "--clips", "--jobs", "--keep", "--runs", "-m METRICS, --metrics"):
        assert option in result.stdout
    assert "python benchmarks/bench.py" in result.stdout


def test_an_unknown_run_is_a_usage_error():
    result = run(BENCH, "--runs", "short,fast")
    assert result.returncode == 2 and "unknown run(s) fast; choose from short" in result.stderr


def test_without_sample_data_it_says_to_run_from_a_clone(tmp_path):
    script = tmp_path / "benchmarks" / "bench.py"
    script.parent.mkdir()
    shutil.copy(BENCH, script)
    result = run(script, "--files", "1", "--runs", "short", "--keep", str(tmp_path / "corpus"))
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "expected the clean speech of sample_data/" in message
    assert "from a clone of the sqeval repository" in message


def test_a_small_run_prints_every_measure_of_the_speed_issue(tmp_path):
    """The default runs on tiny corpora (2 pairs, 2 clips; 2,000 pairs for 'flat' would take
    minutes, so 'flat' is left out): every ratio of the goals table is printed, a number."""
    runs = "short,pesq-short,long,pesq-long,single,dnsmos-loop,dnsmos1,dnsmos,cold,warm"
    result = subprocess.run([sys.executable, str(BENCH), "--files", "2", "--clips", "2", "--jobs",
                             "2", "--runs", runs, "--keep", str(tmp_path / "corpus")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "cores; Python" in out.splitlines()[0]  # the machine
    for measure in ("sqeval ÷ PESQ only, short pairs", "sqeval ÷ PESQ only, long pairs",
                    "DNSMOS throughput, sqeval --jobs 2 ÷ the speechmos loop",
                    "DNSMOS throughput, sqeval --jobs 1", "warm-cache rerun ÷ first run",
                    "one pair end to end, seconds (median)"):
        line = next(line for line in out.splitlines() if line.startswith(f"| {measure}"))
        float(line.split("|")[2])  # a number
    assert len(list((tmp_path / "corpus" / "dnsmos" / "clips").glob("*.wav"))) == 2
