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
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import sqeval
from sqeval import cache as caching
from sqeval import runner, scoring
from sqeval.api import UsageError
from sqeval.audio import AudioError, read_audio
from sqeval.cli import app
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


def test_a_fifo_as_list_file_reference_listed_path_or_cache_never_blocks(tmp_path):
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
    os.mkfifo(root / "cache.sqlite")
    code, _, err = sqeval_score(root / "ref2.scp", f"est={root / 'est.scp'}", "-m", "snr",
                                "--jobs", "1", "--cache", root / "cache.sqlite",
                                "--csv", root / "o.csv")
    assert code == 3, err
    assert "cache.sqlite cannot be used: not a regular file (a FIFO)" in " ".join(err.split())
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


def run_cli(*args, timeout: float = 20):
    """sqeval in a child process: a read that hangs or fills the memory ends in a timeout
    there, not in a hung test run."""
    result = subprocess.run([sys.executable, "-m", "sqeval", *map(str, args)],
                            capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stderr


def test_compare_and_plot_read_only_bounded_regular_files(tmp_path):
    """A saved CSV that is a link to /dev/zero (memory without bound) or a FIFO (a read
    that never ends), or such a .meta.json beside it, is refused at once with exit 2."""
    (tmp_path / "b.csv").write_text("file,system,snr,error\na.wav,enh,10,\n")
    os.symlink("/dev/zero", tmp_path / "z.csv")
    os.mkfifo(tmp_path / "f.csv")
    started = time.monotonic()
    code, err = run_cli("compare", tmp_path / "b.csv", tmp_path / "z.csv")
    assert code == 2 and "z.csv: not a regular file (a character device)" in err, err
    code, err = run_cli("compare", tmp_path / "b.csv", tmp_path / "f.csv")
    assert code == 2 and "f.csv: not a regular file (a FIFO)" in err, err
    code, err = run_cli("plot", tmp_path / "f.csv", "-o", tmp_path / "p.png")
    assert code == 2 and "f.csv: not a regular file (a FIFO)" in err, err
    (tmp_path / "c.csv").write_text("file,system,snr,error\na.wav,enh,9,\n")
    os.mkfifo(tmp_path / "c.csv.meta.json")
    code, err = run_cli("compare", tmp_path / "b.csv", tmp_path / "c.csv")
    assert code == 2 and "c.csv.meta.json: not a regular file (a FIFO)" in err, err
    assert time.monotonic() - started < 50


def test_read_results_refuses_an_oversized_csv_and_a_broken_meta_json(tmp_path, monkeypatch):
    from sqeval import audio, read_results

    saved = tmp_path / "b.csv"
    saved.write_text("file,system,snr,error\na.wav,enh,10,\n")
    assert read_results(saved).metrics == ["snr"]
    Path(f"{saved}.meta.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"b\.csv\.meta\.json: not valid JSON"):
        read_results(saved)
    Path(f"{saved}.meta.json").write_text("[1, 2]")
    with pytest.raises(UsageError, match="expected a JSON object"):
        read_results(saved)
    Path(f"{saved}.meta.json").unlink()
    monkeypatch.setattr(audio, "MAX_AUDIO_BYTES", 16)
    with pytest.raises(UsageError, match=r"b\.csv: \d+ bytes, more than the 16"):
        read_results(saved)
    with pytest.raises(UsageError, match=r"nothing\.csv: no such file"):
        read_results(tmp_path / "nothing.csv")


# --- 2. --timeout counts a started worker's time on its file only -----------------------

def test_timeout_does_not_count_a_slow_worker_start_up(tmp_path, monkeypatch):
    """Workers take 3 s to start, files 0.3 s each: none of them times out at 2 s."""
    tasks, options = snr_tasks(tmp_path, [f"f{k}.wav" for k in range(6)])
    monkeypatch.setattr(scoring, "score_job", napping_score_job)
    monkeypatch.setenv(START, f"3 {os.getpid()}")
    started = time.monotonic()
    rows = runner.score_jobs(tasks, options, n_jobs=2, timeout=2)
    assert time.monotonic() - started > 3 + 3 * NAP_S  # the start-up did take its time
    assert [row.file_error for row in rows] == [None] * 6
    assert all(row.values["snr"] > 15 for row in rows)


def test_a_timeout_kills_only_the_worker_of_the_hung_file(tmp_path, monkeypatch):
    """The file in flight beside the hung one is not killed and run again, and the other
    worker goes on after the timeout."""
    names = ["a_slow.wav"] + [f"q{k:02d}.wav" for k in range(14)]
    tasks, options = snr_tasks(tmp_path, names)
    log = tmp_path / "starts.log"
    monkeypatch.setattr(scoring, "score_job", napping_score_job)
    monkeypatch.setenv(LOG, str(log))
    timeout = 2.0
    rows = {row.file: row for row in runner.score_jobs(tasks, options, n_jobs=2,
                                                       timeout=timeout)}
    assert "timed out after 2 s" in rows["a_slow.wav"].file_error
    assert all(not rows[name].failed for name in names[1:])
    starts = [line.split() for line in log.read_text().splitlines()]
    assert sorted(name for name, _, _ in starts) == sorted(names)  # each started once
    killed = next(float(at) for name, _, at in starts if name == "a_slow.wav") + timeout
    before = {pid for name, pid, at in starts if name != "a_slow.wav" and float(at) < killed}
    after = {pid for name, pid, at in starts if float(at) > killed + 0.1}
    assert before & after  # a worker that scored files before the timeout went on after it


def test_workers_that_cannot_start_fail_the_files_with_the_reason_not_forever(tmp_path,
                                                                             monkeypatch):
    tasks, options = snr_tasks(tmp_path, ["a.wav", "b.wav", "c.wav"])
    monkeypatch.setattr(scoring, "score_job", napping_score_job)
    monkeypatch.setenv(START, f"exit {os.getpid()}")
    rows = runner.score_jobs(tasks, options, n_jobs=2, timeout=2)
    assert [row.file for row in rows] == ["a.wav", "b.wav", "c.wav"]
    for row in rows:
        assert row.file_error.startswith("no worker process could start (a worker process "
                                         "ended with exit code 3"), row.file_error


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


# --- 4. a locked, read-only or damaged cache ---------------------------------------------

def cli(*args):
    return CliRunner().invoke(app, ["score", *map(str, args)])


def score_with_cache(root: Path, cache: Path, *more):
    return cli(root / "clean", root / "enh", "-m", "snr", "--jobs", "1", "--cache", cache,
               "--csv", root / "o.csv", *more)


def fill_cache(root: Path, cache: Path, names) -> None:
    """Score ``names`` into ``cache``, in this process."""
    tasks, options = snr_tasks(root, names)
    store = caching.ResultCache(cache)
    try:
        runner.score_jobs(tasks, options, 1, cache=store, isolate=False)
    finally:
        store.close()


def assert_complete_with_one_warning(result, root: Path, cache: Path, reason: str, n: int):
    message = " ".join(result.stderr.split())
    assert result.exit_code == 0, (result.output, repr(result.exception))
    assert message.count(f"results cache {cache}") == 1, message
    assert reason in message, message
    rows = read_rows(root / "o.csv")
    assert len(rows) == n and all(row["error"] == "" and row["snr"] for row in rows.values())


def test_a_cache_locked_by_another_process_is_waited_for_briefly_then_done_without(tmp_path):
    root, cache = pairs(tmp_path, ["a.wav", "b.wav"]), tmp_path / "c.sqlite"
    holder = sqlite3.connect(cache, isolation_level=None)  # a rollback journal: all locked
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        result = score_with_cache(root, cache)
        assert time.monotonic() - started < caching.LOCK_WAIT_S + 12
    finally:
        holder.close()
    assert_complete_with_one_warning(result, root, cache, "database is locked", 2)


def test_a_cache_locked_at_store_time_loses_no_result(tmp_path):
    root, cache = tmp_path, tmp_path / "c.sqlite"
    fill_cache(root, cache, ["a.wav"])  # sqeval's own cache, in WAL mode: reads still work
    pairs(root, ["a.wav", "b.wav", "c.wav"])
    holder = sqlite3.connect(cache, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    try:
        result = score_with_cache(root, cache)
    finally:
        holder.close()
    assert_complete_with_one_warning(result, root, cache, "database is locked", 3)


def test_a_read_only_cache_is_reported_and_the_run_goes_on(tmp_path, monkeypatch):
    root, cache = tmp_path, tmp_path / "c.sqlite"
    fill_cache(root, cache, ["a.wav"])
    pairs(root, ["a.wav", "b.wav"])
    connect = sqlite3.connect

    def read_only(database, *args, **kwargs):  # as a file sqeval may not write (even as root)
        return connect(f"file:{database}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(caching.sqlite3, "connect", read_only)
    before = cache.read_bytes()
    result = score_with_cache(root, cache)
    assert_complete_with_one_warning(result, root, cache, "readonly database", 2)
    assert cache.read_bytes() == before


@pytest.mark.parametrize("damage", ["pages", "header"])
def test_a_damaged_cache_is_reported_left_as_it_is_and_done_without(tmp_path, damage):
    root, cache = tmp_path, tmp_path / "c.sqlite"
    fill_cache(root, cache, ["a.wav", "b.wav"])
    data = bytearray(cache.read_bytes())
    assert len(data) >= 2 * 4096  # page 1 holds the schema, the tables follow it
    junk = np.random.default_rng(1).bytes(len(data))
    if damage == "pages":
        data[4096:] = junk[4096:]
    else:
        data[:100] = junk[:100]
    cache.write_bytes(bytes(data))
    result = score_with_cache(root, cache)
    reason = "malformed" if damage == "pages" else "not a database"
    assert_complete_with_one_warning(result, root, cache, reason, 2)
    assert "It is damaged: move it away" in " ".join(result.stderr.split())
    assert cache.read_bytes() == bytes(data)  # never destroyed, never "repaired"


# --- 5. --jobs far above the cores -------------------------------------------------------

def test_jobs_above_the_cores_warn_and_far_above_need_force_jobs(tmp_path):
    root = pairs(tmp_path, ["a.wav"])
    cores = runner.default_jobs()
    base = [root / "clean", root / "enh", "-m", "snr", "--no-cache"]
    refused = cli(*base, "--jobs", 4 * cores + 1)
    assert refused.exit_code == 2 and "--force-jobs" in refused.stderr
    forced = cli(*base, "--jobs", 4 * cores + 1, "--force-jobs")
    warned = cli(*base, "--jobs", cores + 1)
    for result in (forced, warned):
        assert result.exit_code == 0, result.output
        assert f"more than the {cores} core(s)" in " ".join(result.stderr.split())
    plain = cli(*base, "--jobs", cores)
    assert plain.exit_code == 0 and "warning" not in plain.stderr
    with pytest.raises(UsageError, match="--force-jobs"):
        sqeval.score(root / "clean", root / "enh", metrics="snr", jobs=4 * cores + 1)


# --- 6. workers end with their parent -------------------------------------------------------

PARENT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from sqeval import runner, scoring
import test_hostile_runs

if __name__ == "__main__":
    tasks, options = test_hostile_runs.snr_tasks(Path({root!r}), ["slow_a.wav", "slow_b.wav"])
    scoring.score_job = test_hostile_runs.napping_score_job
    runner.score_jobs(tasks, options, n_jobs=2)
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its new parent to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_exit_when_their_parent_is_killed(tmp_path):
    script, log = tmp_path / "parent.py", tmp_path / "starts.log"
    script.write_text(PARENT.format(tests=str(Path(__file__).parent), root=str(tmp_path)))
    env = dict(os.environ, **{LOG: str(log)}, PYTHONPATH=os.pathsep.join(
        [str(Path(sqeval.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    parent = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path,
                              stderr=subprocess.PIPE)
    workers = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.2)
            workers = [int(line.split()[1]) for line in
                       (log.read_text().splitlines() if log.exists() else [])]
        assert len(workers) == 2, parent.stderr.read1().decode() if parent.poll() else workers
        parent.kill()  # SIGKILL: no cleanup in the parent at all
        parent.wait()
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in workers), "orphaned workers still run"
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
