"""The results cache: a rerun computes only what is missing, and Ctrl-C loses nothing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly
from typer.testing import CliRunner

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
    original = scoring._evaluate

    def counting(spec, reference, estimate, shared):
        calls.append(spec.name)
        return original(spec, reference, estimate, shared)

    monkeypatch.setattr(scoring, "_evaluate", counting)
    return calls


def score(folders, *args):
    return runner.invoke(app, ["score", str(folders / "clean"), str(folders / "enh"),
                               "--jobs", "1", *map(str, args)])


def test_a_rerun_computes_nothing_and_gives_the_same_csv(folders, evaluations):
    assert score(folders, "--metrics", "snr,stoi", "--csv", folders / "a.csv").exit_code == 0
    assert len(evaluations) == 6 and (folders / ".sqeval-cache" / "results.sqlite").is_file()
    evaluations.clear()
    assert score(folders, "--metrics", "snr,stoi", "--csv", folders / "b.csv").exit_code == 0
    assert evaluations == []
    assert (folders / "a.csv").read_text() == (folders / "b.csv").read_text()


def test_one_more_metric_computes_only_that_metric(folders, evaluations):
    assert score(folders, "--metrics", "snr").exit_code == 0
    evaluations.clear()
    assert score(folders, "--metrics", "snr,pesq_nb", "--csv", folders / "o.csv").exit_code == 0
    assert evaluations == ["pesq_nb"] * 3
    assert "pesq_nb" in (folders / "o.csv").read_text().splitlines()[0]


def test_changed_content_no_cache_and_other_channel_settings_recompute(folders, golden,
                                                                       evaluations):
    assert score(folders, "--metrics", "snr").exit_code == 0
    s, e, rate, _ = golden
    write(folders / "enh" / "f0.wav", e, rate)  # same name, new content
    evaluations.clear()
    assert score(folders, "--metrics", "snr").exit_code == 0
    assert evaluations == ["snr"]
    evaluations.clear()
    assert score(folders, "--metrics", "snr", "--channel", "0").exit_code == 0
    assert evaluations == ["snr"] * 3  # another channel policy is another question
    evaluations.clear()
    result = score(folders, "--metrics", "snr", "--no-cache", "--cache", folders / "x.sqlite")
    assert result.exit_code == 0 and evaluations == ["snr"] * 3
    assert not (folders / "x.sqlite").exists()


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
    stopped = score(folders, "--metrics", "snr", "--csv", folders / "o.csv")
    assert stopped.exit_code == 130
    message = " ".join(stopped.stderr.split())
    assert "interrupted after 1 of 3 files" in message and "run the same command again" in message
    assert not (folders / "o.csv").exists()
    monkeypatch.setattr(scoring, "score_job", original)
    evaluations.clear()
    assert score(folders, "--metrics", "snr", "--csv", folders / "o.csv").exit_code == 0
    assert evaluations == ["snr"] * 2  # the first file came from the cache
    rerun = score(folders, "--metrics", "snr", "--csv", folders / "p.csv", "--no-cache")
    assert rerun.exit_code == 0
    assert (folders / "o.csv").read_text() == (folders / "p.csv").read_text()


def test_parallel_run_uses_and_fills_the_cache(folders):
    assert score(folders, "--metrics", "snr,sdr", "--jobs", "2", "--csv", folders / "a.csv").exit_code == 0
    assert score(folders, "--metrics", "snr,sdr", "--csv", folders / "b.csv").exit_code == 0
    assert (folders / "a.csv").read_text() == (folders / "b.csv").read_text()
