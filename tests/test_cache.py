"""The results cache: a rerun computes only what is missing, and Ctrl-C loses nothing."""

from __future__ import annotations

import pytest
from scipy.signal import resample_poly
from typer.testing import CliRunner

from sqeval import runner as execution
from sqeval import scoring
from sqeval.cli import app

from conftest import write

runner = CliRunner()


@pytest.fixture()
def folders(tmp_path, golden):
    s, e, rate, _ = golden
    for k in range(3):
        write(tmp_path / "clean" / f"f{k}.wav", s, rate)
        write(tmp_path / "enh" / f"f{k}.wav", s + (k + 1) * (e - s) / 4, rate)
    return tmp_path


@pytest.fixture()
def evaluations(monkeypatch):
    """Counts metric evaluations (jobs=1 runs in this process)."""
    calls = []
    original = scoring.Computation.outcome

    def counting(self, spec):
        calls.append(spec.name)
        return original(self, spec)

    monkeypatch.setattr(scoring.Computation, "outcome", counting)
    return calls


def score(folders, *args):
    return runner.invoke(app, ["score", str(folders / "clean"), str(folders / "enh"),
                               "--jobs", "1", *map(str, args)])


def api_score(folders, metrics, cache=True, channel=None):
    """Score in this process (isolate=False), so that evaluations can be counted."""
    from sqeval.audio import ChannelPolicy
    from sqeval.cache import ResultCache
    from sqeval.metrics import resolve
    from sqeval.pairing import System, pair_folders

    systems = [System("enh", folders / "enh")]
    jobs = pair_folders(folders / "clean", systems)
    tasks = [(job, job.display_name(folders / "clean", {"enh": systems[0]})) for job in jobs]
    options = scoring.ScoreOptions(metrics=tuple(resolve(metrics)), systems=("enh",),
                                   channels=ChannelPolicy(channel=channel))
    store = ResultCache(folders / "cache.sqlite") if cache else None
    try:
        return execution.score_jobs(tasks, options, 1, cache=store, isolate=False)
    finally:
        if store is not None:
            store.close()


def test_a_rerun_computes_nothing_and_gives_the_same_rows(folders, evaluations):
    first = api_score(folders, "snr,stoi")
    assert len(evaluations) == 6
    evaluations.clear()
    assert api_score(folders, "snr,stoi") == first and evaluations == []
    # and through the command line, in worker processes: the same CSV twice
    assert score(folders, "--metrics", "snr,stoi", "--csv", folders / "a.csv").exit_code == 0
    assert (folders / ".sqeval-cache" / "results.sqlite").is_file()
    assert score(folders, "--metrics", "snr,stoi", "--csv", folders / "b.csv").exit_code == 0
    assert (folders / "a.csv").read_text() == (folders / "b.csv").read_text()


def test_one_more_metric_computes_only_that_metric(folders, evaluations):
    api_score(folders, "snr")
    evaluations.clear()
    rows = api_score(folders, "snr,pesq_nb")
    assert evaluations == ["pesq_nb"] * 3 and all(r.values["pesq_nb"] > 1 for r in rows)


def test_changed_content_no_cache_and_other_channel_settings_recompute(folders, golden,
                                                                       evaluations):
    api_score(folders, "snr")
    s, e, rate, _ = golden
    write(folders / "enh" / "f0.wav", e, rate)  # same name, new content
    evaluations.clear()
    api_score(folders, "snr")
    assert evaluations == ["snr"]
    evaluations.clear()
    api_score(folders, "snr", channel=0)
    assert evaluations == ["snr"] * 3  # another channel policy is another question
    evaluations.clear()
    api_score(folders, "snr", cache=False)
    assert evaluations == ["snr"] * 3
    result = score(folders, "--metrics", "snr", "--no-cache", "--cache", folders / "x.sqlite")
    assert result.exit_code == 0 and not (folders / "x.sqlite").exists()


def test_cached_not_applicable_follows_the_strictness_of_this_run(tmp_path, golden):
    s, e, _, _ = golden
    write(tmp_path / "clean" / "a.wav", resample_poly(s, 1, 2), 8000)
    write(tmp_path / "enh" / "a.wav", resample_poly(e, 1, 2), 8000)
    assert score(tmp_path).exit_code == 0  # all metrics: pesq_wb n/a is no failure
    named = score(tmp_path, "--metrics", "pesq_wb")
    assert named.exit_code == 3 and "wide-band PESQ needs" in named.stderr


def test_interrupted_run_resumes_where_it_stopped(folders, evaluations, monkeypatch):
    original = scoring.score_job
    seen = []

    def interrupt_on_the_second(job, name, options, known=None):
        seen.append(name)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return original(job, name, options, known)

    monkeypatch.setattr(scoring, "score_job", interrupt_on_the_second)
    with pytest.raises(execution.Interrupted) as stop:
        api_score(folders, "snr")
    assert (stop.value.done, stop.value.total) == (1, 3)
    monkeypatch.setattr(scoring, "score_job", original)
    evaluations.clear()
    resumed = api_score(folders, "snr")
    assert evaluations == ["snr"] * 2  # the first file came from the cache
    assert resumed == api_score(folders, "snr", cache=False)


def test_interrupt_message_and_exit_code(folders, monkeypatch):
    from sqeval import api

    def stopped(*args, **kwargs):
        raise execution.Interrupted(1, 3)

    monkeypatch.setattr(api, "score_jobs", stopped)
    result = score(folders, "--metrics", "snr", "--csv", folders / "o.csv")
    assert result.exit_code == 130
    message = " ".join(result.stderr.split())
    assert "interrupted after 1 of 3 files" in message and "run the same command again" in message
    # no row finished: the CSV holds its header, and its .meta.json says the run is partial
    # (an earlier run's CSV and PASS must not stand in its place)
    assert (folders / "o.csv").read_text() == "file,system,snr,error\n"
    from sqeval import read_results

    assert read_results(folders / "o.csv").verdict["outcome"] == "INCOMPLETE"


def test_parallel_run_uses_and_fills_the_cache(folders):
    assert score(folders, "--metrics", "snr,sdr", "--jobs", "2", "--csv", folders / "a.csv").exit_code == 0
    assert score(folders, "--metrics", "snr,sdr", "--csv", folders / "b.csv").exit_code == 0
    assert (folders / "a.csv").read_text() == (folders / "b.csv").read_text()


def test_sigterm_halfway_then_rerun_gives_the_uninterrupted_csv(tmp_path, golden):
    """A real 500-file `sqeval score` run, terminated halfway, then run again."""
    import csv
    import signal as signals
    import subprocess
    import sys
    import time

    s, e, rate, _ = golden
    n_files, length = 500, rate  # one-second crops of the golden pair
    for k in range(n_files):
        start = (k * 997) % (len(s) - length)
        clean = s[start:start + length]
        write(tmp_path / "clean" / f"f{k:03d}.wav", clean, rate)
        write(tmp_path / "enh" / f"f{k:03d}.wav",
              clean + (1 + k % 8) * (e[start:start + length] - clean) / 8, rate)
    command = [sys.executable, "-m", "sqeval", "score", str(tmp_path / "clean"),
               str(tmp_path / "enh"), "--jobs", "2", "--metrics", "snr,si_snr,stoi,pesq_wb",
               "--csv", str(tmp_path / "o.csv"), "--cache", str(tmp_path / "c.sqlite")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    database = tmp_path / "c.sqlite"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # until half the results are stored, then terminate
        if _stored(database) >= n_files // 2:
            break
        time.sleep(0.1)
    process.send_signal(signals.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr.decode()
    assert "interrupted after" in stderr.decode()
    partial = list(csv.DictReader(open(tmp_path / "o.csv")))
    assert n_files // 2 <= len(partial) < n_files  # a valid CSV of what finished
    assert subprocess.run(command, capture_output=True).returncode == 0
    whole = (tmp_path / "o.csv").read_text()
    fresh = command[:-4] + ["--csv", str(tmp_path / "fresh.csv"), "--no-cache"]
    assert subprocess.run(fresh, capture_output=True).returncode == 0
    assert whole == (tmp_path / "fresh.csv").read_text()


def _stored(database) -> int:
    """Estimates with stored outcomes; 0 while the database or its table is being made."""
    import sqlite3

    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database) as connection:
            return connection.execute("SELECT COUNT(DISTINCT estimate) FROM outcome").fetchone()[0]
    except sqlite3.OperationalError:  # no table yet, or the writer holds a lock
        return 0
