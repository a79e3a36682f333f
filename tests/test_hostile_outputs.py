"""sqeval as a CI gate, second round of hostile cases: systems named as sqeval's own rows,
outputs over the cache or a config file, stdout and stderr that cannot be written,
SIGTERM in any command, a FIFO output nobody reads, and what the cache really kept."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sqeval
import sqeval.cli as cli
import sqeval.outputs as outputs
from sqeval.cli import app
from sqeval.cli import score as score_module
from sqeval.cli.common import terminate_as_interrupt

from conftest import write

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture()
def folders(tmp_path, golden):
    s, e, rate, _ = golden
    for name in ("a", "b"):
        write(tmp_path / "clean" / f"{name}.wav", s, rate)
        write(tmp_path / "enh" / f"{name}.wav", s + (e - s) / 3, rate)
    return tmp_path


def sqeval_process(*args, **options):
    """``python -m sqeval ARGS``: the real entry point, with its exit code."""
    return subprocess.run([sys.executable, "-m", "sqeval", *map(str, args)], timeout=300,
                          **options)


# Systems named as sqeval's own rows --------------------------------------------------------

def test_estimates_named_noisy_or_clean_are_refused_not_silently_ungated(folders):
    (folders / "runs").mkdir()
    (folders / "enh").rename(folders / "runs" / "noisy")
    gated = run("score", folders / "clean", folders / "runs" / "noisy", "-m", "snr",
                "--gate", "snr>=100", "--no-cache")
    assert gated.exit_code == 2 and "reserved" in gated.stderr, gated.output
    named = run("score", folders / "clean", f"noisy={folders / 'runs' / 'noisy'}", "-m", "snr",
                "--no-cache")
    assert named.exit_code == 2 and "NAME=PATH" in " ".join(named.stderr.split())
    (folders / "runs" / "noisy").rename(folders / "runs" / "clean")
    unread = run("score", folders / "clean", folders / "runs" / "clean", "-m", "snr",
                 "--no-cache")
    assert unread.exit_code == 2 and "reserved" in unread.stderr
    with pytest.raises(ValueError, match="reserved"):
        sqeval.score(folders / "clean", {"noisy": folders / "runs" / "clean"}, metrics="snr")
    renamed = run("score", folders / "clean", f"model={folders / 'runs' / 'clean'}", "-m",
                  "snr", "--gate", "snr>=100", "--no-cache")
    assert renamed.exit_code == 1  # gated like any system


def test_a_manifest_system_named_noisy_is_refused(folders):
    manifest = folders / "run.csv"
    manifest.write_text("id,reference,estimate,system\n"
                        f"a,{folders / 'clean' / 'a.wav'},{folders / 'enh' / 'a.wav'},noisy\n")
    result = run("score", manifest, "-m", "snr", "--gate", "snr>=100", "--no-cache")
    assert result.exit_code == 2 and "reserved" in result.stderr


def test_a_gate_that_would_check_nothing_is_refused(folders):
    (folders / "enh").rename(folders / "noisy")  # without references, `noisy` is the baseline
    result = run("score", "--no-reference", folders / "noisy", "-m", "dnsmos_ovrl",
                 "--gate", "dnsmos_ovrl>=5", "--no-cache")
    assert result.exit_code == 2 and "check nothing" in " ".join(result.stderr.split())


# Outputs over what a run keeps --------------------------------------------------------------

def test_no_command_writes_over_the_cache_or_a_config_file(folders):
    assert run("score", folders / "clean", folders / "enh", "-m", "snr",
               "--csv", folders / "r.csv").exit_code == 0
    cache = Path(".sqeval-cache/results.sqlite")  # the working directory is tmp_path
    before = cache.read_bytes()
    sanity = run("sanity", "-m", "snr", "--csv", cache)
    assert sanity.exit_code == 2 and "destroy" in sanity.stderr
    assert cache.read_bytes() == before
    config = Path("sqeval.toml")
    config.write_text('gates = ["snr>=0"]\n')
    compare = run("compare", folders / "r.csv", folders / "r.csv", "--markdown", config)
    assert compare.exit_code == 2 and config.read_text() == 'gates = ["snr>=0"]\n'
    config.unlink()
    new = folders / "new.sqlite"  # a cache this run makes: no output may take its place
    fresh = run("score", folders / "clean", folders / "enh", "-m", "snr", "--cache", new,
                "--csv", new)
    assert fresh.exit_code == 2 and not new.exists()


# stdout and stderr ------------------------------------------------------------------------

def test_a_closed_stdout_keeps_the_outputs_and_the_gate_verdict(folders):
    command = [sys.executable, "-m", "sqeval", "score", str(folders / "clean"),
               str(folders / "enh"), "-m", "snr", "--no-cache", "--gate", "snr>=100",
               "--csv", str(folders / "a.csv"), "--junit", str(folders / "a.xml")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    process.stdout.close()  # `| true`: the reader is gone before the tables
    assert process.wait(timeout=300) == 1  # the gate failed: 1, not 141
    assert (folders / "a.csv").is_file() and (folders / "a.xml").is_file()
    closed = sqeval_process("score", folders / "clean", folders / "enh", "-m", "snr",
                            "--no-cache", "--csv", folders / "b.csv", capture_output=False,
                            stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    assert closed.returncode == 0 and (folders / "b.csv").is_file(), closed.stderr
    with open("/dev/full", "w") as full:
        result = sqeval_process("score", folders / "clean", folders / "enh", "-m", "snr",
                                "--no-cache", "--csv", folders / "c.csv", stdout=full,
                                stderr=subprocess.PIPE, text=True)
    assert result.returncode == 2 and "could not write the tables" in result.stderr
    assert (folders / "c.csv").is_file() and "Traceback" not in result.stderr


def test_a_stderr_that_cannot_be_written_does_not_change_the_exit_code(folders):
    (folders / "clean" / "c.wav").write_bytes((folders / "clean" / "a.wav").read_bytes())
    with open("/dev/full", "w") as full:
        usage = sqeval_process("score", folders / "nowhere", folders / "enh", stderr=full)
        incomplete = sqeval_process("score", folders / "clean", folders / "enh", "-m", "snr",
                                    "--no-cache", stderr=full, stdout=subprocess.DEVNULL)
    assert usage.returncode == 2
    assert incomplete.returncode == 3  # c.wav has no estimate
    process = subprocess.Popen([sys.executable, "-m", "sqeval", "score", str(folders / "clean"),
                                str(folders / "enh"), "-m", "snr", "--no-cache"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    process.stderr.close()  # the reader of stderr is gone
    assert process.wait(timeout=300) == 3


# Signals and FIFOs ------------------------------------------------------------------------

def test_sigterm_stops_any_command_as_ctrl_c_does(monkeypatch):
    import sqeval.cli.sanity as sanity_cli

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr(sanity_cli, "run_cases", terminated)
    assert cli.run(["sanity", "-m", "snr"]) == 130
    assert signal.getsignal(signal.SIGTERM) is not terminate_as_interrupt  # restored


def test_a_fifo_output_without_a_reader_is_an_error_after_the_other_outputs(folders,
                                                                            monkeypatch):
    monkeypatch.setattr(outputs, "FIFO_WAIT_S", 0.3)
    fifo = folders / "out.csv"
    os.mkfifo(fifo)
    result = run("score", folders / "clean", folders / "enh", "-m", "snr", "--no-cache",
                 "--csv", fifo, "--json", folders / "o.json")
    assert result.exit_code == 2 and "no process read the FIFO" in result.stderr
    assert (folders / "o.json").is_file()


# What the cache kept ----------------------------------------------------------------------

def test_an_unwritable_output_does_not_claim_a_cache_that_failed(folders, monkeypatch):
    cache = folders / "damaged.sqlite"
    cache.write_bytes(b"not a database" * 100)

    def read_only(path, write):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(score_module, "write_atomically", read_only)
    result = run("score", folders / "clean", folders / "enh", "-m", "snr", "--cache", cache,
                 "--latex", folders / "t.tex")
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2 and "could not write" in message
    assert "kept in the cache" not in message and "could not be used" in message
    with pytest.raises(sqlite3.DatabaseError):  # left as it was
        sqlite3.connect(cache).execute("SELECT * FROM outcome").fetchall()
