"""`sqeval score --scheduler`: the per-file jobs on a Dask cluster give the same CSV."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from sqeval.cli import app

from conftest import write

runner = CliRunner()


def test_local_cluster_csv_equals_local_run(tmp_path, golden):
    s, e, rate, _ = golden
    for k in range(4):
        write(tmp_path / "clean" / f"f{k}.wav", s, rate)
        write(tmp_path / "noisy" / f"f{k}.wav", e, rate)
        write(tmp_path / "enh" / f"f{k}.wav", s + (k + 1) * (e - s) / 5, rate)
    write(tmp_path / "enh" / "extra.wav", e, rate)  # an error row must come back too
    base = ["score", str(tmp_path / "clean"), str(tmp_path / "enh"), "--noisy",
            str(tmp_path / "noisy"), "--metrics", "snr,sdr,stoi,estoi,pesq_wb", "--no-cache"]
    local = runner.invoke(app, [*base, "--jobs", "1", "--csv", str(tmp_path / "local.csv")])
    dask = runner.invoke(app, [*base, "--jobs", "2", "--scheduler", "local",
                               "--csv", str(tmp_path / "dask.csv")])
    assert local.exit_code == 3 and dask.exit_code == 3, dask.output
    assert (tmp_path / "local.csv").read_text() == (tmp_path / "dask.csv").read_text()


def test_scheduler_errors_say_what_to_do(tmp_path, golden, monkeypatch):
    s, _, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s, rate)
    write(tmp_path / "enh" / "a.wav", s, rate)
    args = ["score", str(tmp_path / "clean"), str(tmp_path / "enh"), "--metrics", "snr"]
    unreachable = runner.invoke(app, [*args, "--scheduler", "tcp://127.0.0.1:9"])
    assert unreachable.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in " ".join(
        unreachable.stderr.split())
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    missing = runner.invoke(app, [*args, "--scheduler", "local", "--no-cache"])
    assert missing.exit_code == 2 and "pip install '.[dask]'" in " ".join(
        missing.stderr.split())


def _start(command: list[str], cwd, log) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture()
def bare_scheduler(tmp_path):
    """A scheduler on loopback, started as `dask scheduler` is, from a directory that is
    not the client's, and the means to start a worker (`dask worker`, one thread) or to
    kill the scheduler: ``(address, start_worker, kill_scheduler)``."""
    elsewhere = tmp_path / "bare"
    elsewhere.mkdir()
    address_file = elsewhere / "scheduler.json"
    log = open(elsewhere / "cluster.log", "w")
    processes = [_start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                         "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
                         str(address_file)], elsewhere, log)]
    deadline = time.monotonic() + 60
    while not address_file.exists() or not address_file.read_text().strip():
        assert time.monotonic() < deadline, (elsewhere / "cluster.log").read_text()
        time.sleep(0.2)
    time.sleep(0.2)
    address = json.loads(address_file.read_text())["address"]

    def start_worker():
        folder = elsewhere / f"worker{len(processes)}"
        started = len(processes)  # workers after this one
        folder.mkdir()
        processes.append(_start([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                 "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                                 "--local-directory", str(folder)], folder, log))
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(started, timeout=60)

    try:
        yield address, start_worker, processes[0].kill
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


@pytest.fixture()
def real_cluster(bare_scheduler):
    """A scheduler and two worker processes on loopback; its address."""
    address, start_worker, _ = bare_scheduler
    start_worker()
    start_worker()
    return address


def test_a_real_cluster_whose_workers_run_elsewhere_gives_the_local_csv(
        tmp_path, golden, real_cluster, monkeypatch):
    s, e, rate, _ = golden
    data = tmp_path / "data"
    for k in range(3):
        write(data / "clean" / f"f{k}.wav", s, rate)
        write(data / "noisy" / f"f{k}.wav", e, rate)
        write(data / "enh" / f"f{k}.wav", s + (k + 1) * (e - s) / 5, rate)
    monkeypatch.chdir(data)  # relative paths, as a user types them
    base = ["score", "clean", "enh", "--noisy", "noisy", "--metrics", "snr,sdr,stoi,pesq_wb",
            "--no-cache"]
    local = runner.invoke(app, [*base, "--jobs", "1", "--csv", "local.csv"])
    remote = runner.invoke(app, [*base, "--scheduler", real_cluster, "--csv", "dask.csv"])
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    assert (data / "dask.csv").read_bytes() == (data / "local.csv").read_bytes()
    (data / "enh" / "f1.wav").write_bytes(b"RIFF, but not a WAV file")
    broken = runner.invoke(app, [*base, "--scheduler", real_cluster, "--csv", "broken.csv"])
    assert broken.exit_code == 3, broken.output
    rows = {(r["file"], r["system"]): r["error"] for r in csv.DictReader(open(data / "broken.csv"))}
    assert rows["f1.wav", "enh"].startswith("unreadable audio")
    assert f"(on Dask worker {real_cluster.rsplit(':', 1)[0]}:" in rows["f1.wav", "enh"]
    assert rows["f0.wav", "enh"] == rows["f2.wav", "noisy"] == ""


def test_a_scheduler_without_workers_ends_the_run_within_the_bound(tmp_path, golden,
                                                                   bare_scheduler, monkeypatch):
    from sqeval import runner as execution

    monkeypatch.setattr(execution, "DASK_STALL_S", 3.0)
    address, _, _ = bare_scheduler
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s, rate)
    write(tmp_path / "enh" / "a.wav", e, rate)
    out = tmp_path / "o.csv"
    out.write_text("file,system,snr,error\na.wav,enh,30.0,\n")  # a past run that passed
    (tmp_path / "o.csv.meta.json").write_text(json.dumps(
        {"verdict": {"outcome": "PASS"}, "csv_sha256": hashlib.sha256(out.read_bytes()).hexdigest()}))
    started = time.monotonic()
    result = runner.invoke(app, ["score", str(tmp_path / "clean"), str(tmp_path / "enh"),
                                 "-m", "snr", "--no-cache", "--scheduler", address,
                                 "--timeout", "5", "--csv", str(out)])
    assert result.exit_code == 2, result.output
    assert "has 0 workers and no file finished for 3 s" in " ".join(result.stderr.split())
    assert time.monotonic() - started < 60
    from sqeval import read_results

    stopped = read_results(out)  # not the past run's PASS: this run's, partial, no rows
    assert stopped.rows == [] and stopped.verdict["outcome"] == "INCOMPLETE"


def test_a_scheduler_killed_mid_run_ends_it_with_the_partial_csv(tmp_path, golden,
                                                                 bare_scheduler, monkeypatch):
    import threading

    from sqeval import read_results
    from sqeval import runner as execution

    monkeypatch.setattr(execution, "DASK_STALL_S", 5.0)
    address, start_worker, kill_scheduler = bare_scheduler
    start_worker()
    s, e, rate, _ = golden
    for k in range(60):  # about 15 s of work for one worker thread
        write(tmp_path / "clean" / f"f{k:02d}.wav", s, rate)
        write(tmp_path / "enh" / f"f{k:02d}.wav", s + (e - s) / (k + 2), rate)
    out = tmp_path / "o.csv"
    (tmp_path / "o.csv.meta.json").write_text('{"verdict": {"outcome": "PASS"}}')  # a past run
    timer = threading.Timer(4.0, kill_scheduler)
    timer.start()
    started = time.monotonic()
    try:
        result = runner.invoke(app, ["score", str(tmp_path / "clean"), str(tmp_path / "enh"),
                                     "-m", "snr,stoi,pesq_wb", "--no-cache", "--scheduler",
                                     address, "--csv", str(out)])
    finally:
        timer.cancel()
    assert result.exit_code == 2, result.output
    assert "lost the Dask scheduler" in " ".join(result.stderr.split())
    assert time.monotonic() - started < 120
    saved = read_results(out)
    assert 0 < len(saved.rows) < 60 and saved.provenance["partial"] is True
    assert saved.verdict["outcome"] == "INCOMPLETE"
    page = tmp_path / "partial.html"
    assert runner.invoke(app, ["report", str(out), "-o", str(page)]).exit_code == 0
    assert '<span class="verdict fail" id="verdict">INCOMPLETE</span>' in page.read_text()


def test_a_long_file_on_a_live_cluster_is_not_a_stall(tmp_path, golden, monkeypatch):
    from sqeval import runner as execution

    monkeypatch.setattr(execution, "DASK_STALL_S", 0.5)  # far less than one file takes
    s, e, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", np.tile(s, 4), rate)
    write(tmp_path / "enh" / "a.wav", np.tile(e, 4), rate)
    result = runner.invoke(app, ["score", str(tmp_path / "clean"), str(tmp_path / "enh"),
                                 "-m", "pesq_wb,stoi,sdr", "--no-cache", "--jobs", "1",
                                 "--scheduler", "local"])
    assert result.exit_code == 0, result.output
