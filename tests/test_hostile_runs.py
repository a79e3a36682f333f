"""sqeval as a CI gate under hostile conditions: never a hang, never a silent pass, never a
traceback, never a destroyed file.

Inputs that are not regular files, a slow worker start-up under --timeout, a hung file
beside others, a MemoryError inside a metric, a cache that is locked, read-only or
damaged, --jobs far above the cores, and a parent killed with SIGKILL.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import sqeval
from sqeval import cache as caching
from sqeval import runner, scoring
from sqeval.audio import AudioError, read_audio
from sqeval.metrics import REGISTRY
from sqeval.pairing import System, pair_folders

from conftest import write

RATE = 16000
LOG = "SQEVAL_TEST_START_LOG"  # a file where the stand-in below logs every job it starts
# "SECONDS PID": any process but PID importing this module sleeps that long (a worker whose
# start-up is slow: cold disk, imports), or with "exit PID" ends at once (one that cannot start)
START = "SQEVAL_TEST_WORKER_START"
NAP_S = 0.3  # what a file takes in the stand-in (a fraction of every timeout used here)

if os.environ.get(START) and int(os.environ[START].split()[1]) != os.getpid():
    if os.environ[START].split()[0] == "exit":
        os._exit(3)
    time.sleep(float(os.environ[START].split()[0]))


def napping_score_job(job, display_name, options, known=None):
    """Stand-in for scoring.score_job (module-level, so workers import it by name): logs
    its start, then takes NAP_S seconds, or hangs when the file's name has "slow" in it."""
    if os.environ.get(LOG):
        with open(os.environ[LOG], "a", encoding="utf-8") as stream:
            stream.write(f"{display_name} {os.getpid()} {time.time()!r}\n")
    time.sleep(600 if "slow" in display_name else NAP_S)
    return scoring.score_job(job, display_name, options, known)


def signal_pair(seed: int = 0, seconds: float = 0.25):
    rng = np.random.default_rng(seed)
    clean = 0.1 * rng.standard_normal(int(RATE * seconds))
    return clean, clean + 0.01 * rng.standard_normal(len(clean))


def pairs(root: Path, names) -> Path:
    """clean/NAME and enh/NAME for each name: tiny noise pairs, SNR near 20 dB."""
    for k, name in enumerate(names):
        clean, enhanced = signal_pair(k)
        write(root / "clean" / name, clean, RATE)
        write(root / "enh" / name, enhanced, RATE)
    return root


def snr_tasks(root: Path, names):
    pairs(root, names)
    system = System("enh", root / "enh")
    tasks = [(job, job.display_name()) for job in pair_folders(root / "clean", [system])]
    return tasks, scoring.ScoreOptions(metrics=(REGISTRY["snr"],), systems=("enh",))


def sqeval_score(*args, timeout: float = 20.0):
    """``python -m sqeval score ARGS`` in its own session: (exit code, stdout, stderr); a
    run still going after ``timeout`` seconds is killed, with its workers, and fails."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(sqeval.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "-m", "sqeval", "score", *map(str, args)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"sqeval score {' '.join(map(str, args))} still ran after {timeout} s")
    return process.returncode, out, err


def read_rows(path: Path) -> dict:
    with open(path, newline="", encoding="utf-8") as stream:
        return {(row["file"], row["system"]): row for row in csv.DictReader(stream)}


# --- 1. inputs that are not regular files ------------------------------------------------

def hostile_folder(root: Path) -> Path:
    """a.wav fine; enh/fifo.wav a FIFO; enh/zero.wav a link to /dev/zero; clean/cfifo.wav
    a FIFO beside a fine enh/cfifo.wav."""
    pairs(root, ["a.wav", "fifo.wav", "zero.wav", "cfifo.wav"])
    (root / "enh" / "fifo.wav").unlink()
    os.mkfifo(root / "enh" / "fifo.wav")
    (root / "enh" / "zero.wav").unlink()
    os.symlink("/dev/zero", root / "enh" / "zero.wav")
    (root / "clean" / "cfifo.wav").unlink()
    os.mkfifo(root / "clean" / "cfifo.wav")
    return root


@pytest.mark.parametrize("cache", [["--cache", "c.sqlite"], ["--no-cache"]])
def test_a_fifo_or_dev_zero_among_the_inputs_is_an_error_row_not_a_hang(tmp_path, cache):
    """With the cache the parent hashes every file; without it the worker reads them."""
    root = hostile_folder(tmp_path)
    code, _, err = sqeval_score(root / "clean", root / "enh", "-m", "snr", "--jobs", "1",
                                "--timeout", "60", "--csv", root / "o.csv", *cache)
    assert code == 3, err
    rows = read_rows(root / "o.csv")
    assert rows[("a.wav", "enh")]["error"] == "" and float(rows[("a.wav", "enh")]["snr"]) > 15
    assert "not a regular file (a FIFO)" in rows[("fifo.wav", "enh")]["error"]
    assert "not a regular file (a character device)" in rows[("zero.wav", "enh")]["error"]
    assert rows[("cfifo.wav", "enh")]["error"].startswith(
        "clean reference: not a regular file (a FIFO)")


def test_a_fifo_as_list_file_reference_or_listed_path_never_blocks(tmp_path):
    root = pairs(tmp_path, ["a.wav", "b.wav"])
    os.mkfifo(root / "ref.scp")
    code, _, err = sqeval_score(root / "ref.scp", root / "enh")
    assert code == 2 and "not a regular file (a FIFO)" in err
    os.mkfifo(root / "ref.wav")
    code, _, err = sqeval_score(root / "ref.wav", root / "enh" / "a.wav")
    assert code == 2 and "not a regular file (a FIFO)" in err
    os.mkfifo(root / "pipe.wav")
    (root / "est.scp").write_text(f"a {root / 'enh' / 'a.wav'}\nb {root / 'pipe.wav'}\n")
    (root / "ref2.scp").write_text(f"a {root / 'clean' / 'a.wav'}\nb {root / 'clean' / 'b.wav'}\n")
    code, _, err = sqeval_score(root / "ref2.scp", f"est={root / 'est.scp'}", "-m", "snr",
                                "--jobs", "1", "--csv", root / "o.csv")
    assert code == 3, err
    rows = read_rows(root / "o.csv")
    assert rows[("a.wav", "est")]["error"] == ""
    assert "not a regular file (a FIFO)" in rows[("b.wav", "est")]["error"]


def test_hashing_and_reading_refuse_what_is_not_a_bounded_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo.wav")
    huge = tmp_path / "huge.wav"
    with open(huge, "wb") as stream:  # sparse: 2 GiB of nothing, more than sqeval reads
        stream.truncate(2 * caching.MAX_AUDIO_BYTES)
    started = time.monotonic()
    for path in (tmp_path / "fifo.wav", Path("/dev/zero"), huge):
        assert caching.file_hash(path) is None, path
    with pytest.raises(AudioError, match=r"not a regular file \(a FIFO\)"):
        read_audio(tmp_path / "fifo.wav")
    with pytest.raises(AudioError, match=r"more than the 1073741824 \(1 GiB\)"):
        read_audio(huge)
    assert time.monotonic() - started < 2  # nothing was read
    fine = write(tmp_path / "fine.wav", signal_pair()[0], RATE)
    assert caching.file_hash(fine) is not None and read_audio(fine)[1] == RATE


# --- 3. transient failures are not cached -------------------------------------------------

def test_a_memory_error_in_a_metric_is_not_served_from_the_cache(tmp_path, monkeypatch):
    tasks, options = snr_tasks(tmp_path, ["a.wav", "b.wav"])
    options = scoring.ScoreOptions(metrics=(REGISTRY["snr"], REGISTRY["si_snr"]),
                                   systems=("enh",))
    original = scoring.Computation._compute

    def out_of_memory(self, spec, rate):
        if spec.name == "snr":
            raise MemoryError("cannot allocate 1.2 GiB")
        return original(self, spec, rate)

    def run():
        store = caching.ResultCache(tmp_path / "c.sqlite")
        try:
            return runner.score_jobs(tasks, options, 1, cache=store, isolate=False)
        finally:
            store.close()

    monkeypatch.setattr(scoring.Computation, "_compute", out_of_memory)
    first = run()
    assert all(row.errors["snr"].startswith("unexpected MemoryError") for row in first)
    monkeypatch.setattr(scoring.Computation, "_compute", original)
    second = run()
    assert all(not row.failed and row.values["snr"] > 15 for row in second)
    assert [row.values["si_snr"] for row in second] == [row.values["si_snr"] for row in first]
