"""The delay hint: outputs delayed by a constant amount get a note suggesting --align
(issue 26, item 6); undelayed ones, a delay on one file alone, or an aligned run do not,
and the note changes no number, verdict or exit code."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import sqeval.scoring
from sqeval import evaluate, read_results, score
from sqeval.audio import estimate_delay
from sqeval.cli import app
from sqeval.metrics import resolve
from sqeval.results import Row
from sqeval.scoring import (DELAY_HINT_MIN_S, ScoreOptions, delay_hints, measured_delay,
                            measures_delay)

from conftest import write

SAMPLE_CLEAN = Path(__file__).resolve().parent.parent / "sample_data" / "clean"
FILES = 4  # real speech files of the repository's sample_data (16 kHz, about 4.5 s)
NOTE = "note: system "

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def delayed(x: np.ndarray, samples: int) -> np.ndarray:
    """``x`` late by ``samples`` (early when negative), at its own length."""
    if samples >= 0:
        return np.concatenate([np.zeros(samples), x])[:len(x)]
    return np.concatenate([x[-samples:], np.zeros(-samples)])


@pytest.fixture(scope="module")
def speech():
    """[(name, samples)] of real speech, and their rate."""
    items = []
    for path in sorted(SAMPLE_CLEAN.glob("*.wav"))[:FILES]:
        samples, rate = sf.read(path, dtype="float64")
        items.append((path.name, samples))
    assert len(items) == FILES and rate == 16000
    return items, rate


def folders(root: Path, speech, **systems) -> Path:
    """root/clean/<name> and root/<system>/<name> = make(index, samples) per system."""
    items, rate = speech
    for index, (name, samples) in enumerate(items):
        write(root / "clean" / name, samples, rate, "DOUBLE")
        for system, make in systems.items():
            write(root / system / name, make(index, samples), rate, "DOUBLE")
    return root


def notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(NOTE)]


def test_outputs_delayed_by_10_ms_get_a_note_naming_the_lag_and_align(tmp_path, speech):
    root = folders(tmp_path, speech, late=lambda k, x: delayed(x, 160))  # 10 ms at 16 kHz
    out = tmp_path / "out.csv"
    result = run("score", root / "clean", root / "late", "-m", "si_snr", "--csv", out,
                 "--jobs", 1)
    assert result.exit_code == 0, result.output
    [note] = notes(result.stderr)
    assert note.startswith("note: system 'late': its outputs trail the clean references by "
                           f"about 10.0 ms on {FILES} of {FILES} files")
    assert "--align" in note
    # not a metric: the CSV holds what it held before the hint existed
    assert out.read_text().splitlines()[0] == "file,system,si_snr,error"


def test_early_outputs_are_said_to_lead(tmp_path, speech):
    root = folders(tmp_path, speech, early=lambda k, x: delayed(x, -80))
    result = run("score", root / "clean", root / "early", "-m", "si_snr", "--jobs", 1)
    assert result.exit_code == 0, result.output
    [note] = notes(result.stderr)
    assert "'early': its outputs lead the clean references by about 5.0 ms" in note


@pytest.mark.parametrize("make", [
    lambda k, x: x,  # the clean file itself
    lambda k, x: x + 0.05 * np.random.default_rng(k).standard_normal(len(x)),  # plus noise
    lambda k, x: delayed(x, 8),  # 0.5 ms: within DELAY_HINT_MIN_S, not named
], ids=["clean", "clean-plus-noise", "half-a-millisecond"])
def test_undelayed_outputs_get_no_note(tmp_path, speech, make):
    root = folders(tmp_path, speech, sys=make)
    result = run("score", root / "clean", root / "sys", "-m", "si_snr", "--jobs", 1)
    assert result.exit_code == 0, result.output
    assert notes(result.stderr) == []


def test_a_delay_on_one_file_alone_is_no_constant_delay(tmp_path, speech):
    root = folders(tmp_path, speech, sys=lambda k, x: delayed(x, 160) if k == 0 else x)
    result = run("score", root / "clean", root / "sys", "-m", "si_snr", "--jobs", 1)
    assert result.exit_code == 0, result.output
    assert notes(result.stderr) == []


def test_lags_that_disagree_are_no_constant_delay(tmp_path, speech):
    # each file late by another amount (10, 30, 50, 70 ms): peaks away from 0, no one delay
    root = folders(tmp_path, speech, sys=lambda k, x: delayed(x, 160 + 320 * k))
    result = run("score", root / "clean", root / "sys", "-m", "si_snr", "--jobs", 1)
    assert result.exit_code == 0, result.output
    assert notes(result.stderr) == []


def test_other_speech_as_output_gives_no_note(tmp_path, speech):
    items, _ = speech  # each output is another file's speech: any peak is spurious
    root = folders(tmp_path, speech, sys=lambda k, x: np.resize(items[(k + 1) % FILES][1], len(x)))
    result = run("score", root / "clean", root / "sys", "-m", "si_snr", "--jobs", 1)
    assert result.exit_code == 0, result.output
    assert notes(result.stderr) == []


def test_align_removes_the_delay_and_the_note(tmp_path, speech):
    root = folders(tmp_path, speech, late=lambda k, x: delayed(x, 160))
    result = run("score", root / "clean", root / "late", "-m", "si_snr", "--align", "--jobs", 1)
    assert result.exit_code == 0, result.output
    assert notes(result.stderr) == []
    assert "aligned: the estimate trails the reference by 160 samples" in result.stderr


def test_the_note_changes_neither_the_verdict_nor_the_exit_code(tmp_path, speech):
    root = folders(tmp_path, speech, late=lambda k, x: delayed(x, 160))
    passed = run("score", root / "clean", root / "late", "-m", "si_snr", "--jobs", 1,
                 "--gate", "si_snr>=-100")
    failed = run("score", root / "clean", root / "late", "-m", "si_snr", "--jobs", 1,
                 "--gate", "si_snr>=0")
    assert passed.exit_code == 0 and "PASS" in passed.stderr, passed.output
    assert failed.exit_code == 1 and "FAIL" in failed.stderr, failed.output
    assert len(notes(passed.stderr)) == len(notes(failed.stderr)) == 1


def test_a_note_per_delayed_system_only(tmp_path, speech):
    root = folders(tmp_path, speech, late=lambda k, x: delayed(x, 160), ok=lambda k, x: x)
    result = run("score", root / "clean", root / "late", root / "ok", "-m", "si_snr",
                 "--jobs", 1)
    assert result.exit_code == 0, result.output
    [note] = notes(result.stderr)
    assert note.startswith("note: system 'late'")


def test_pesq_alone_measures_no_delay(tmp_path, speech):
    # PESQ aligns the signals itself: no metric asked for is misled, so no note
    root = folders(tmp_path, speech, late=lambda k, x: delayed(x, 160))
    result = run("score", root / "clean", root / "late", "-m", "pesq_wb", "--jobs", 1)
    assert result.exit_code == 0, result.output
    assert notes(result.stderr) == []


def test_the_library_warns_and_results_carry_the_hint(tmp_path, speech):
    root = folders(tmp_path, speech, late=lambda k, x: delayed(x, 160))
    with pytest.warns(RuntimeWarning, match="'late': its outputs trail .* about 10.0 ms"):
        results = score(root / "clean", {"late": root / "late"}, metrics="si_snr", jobs=1)
    assert len(results.hints) == 1 and "--align" in results.hints[0]
    assert list(results.to_frame().columns) == ["file", "system", "si_snr", "error"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when aligned
        aligned = score(root / "clean", {"late": root / "late"}, metrics="si_snr", jobs=1,
                        align=True)
    assert aligned.hints == []
    path = tmp_path / "out.csv"
    path.write_text(results.csv_text())
    assert read_results(path).hints == []  # the lags are not saved


def test_evaluate_in_memory_carries_the_hint(speech):
    items, rate = speech
    clean = [samples for _, samples in items]
    late = evaluate(clean, [delayed(x, 160) for x in clean], rate, metrics="si_snr")
    ok = evaluate(clean, clean, rate, metrics="si_snr")
    assert len(late.hints) == 1 and "about 10.0 ms" in late.hints[0]
    assert ok.hints == []


def test_a_cached_rerun_keeps_the_note_without_measuring_again(tmp_path, speech, monkeypatch):
    root = folders(tmp_path, speech, late=lambda k, x: delayed(x, 160))
    cache = tmp_path / "cache.sqlite"
    with pytest.warns(RuntimeWarning, match="10.0 ms"):
        score(root / "clean", {"late": root / "late"}, metrics="si_snr", jobs=1, cache=cache)

    def no_measuring(*args, **kwargs):
        raise AssertionError("the lag was measured again: it should come from the cache")

    monkeypatch.setattr(sqeval.scoring, "estimate_delay", no_measuring)
    with pytest.warns(RuntimeWarning, match="10.0 ms"):
        again = score(root / "clean", {"late": root / "late"}, metrics="si_snr", jobs=1,
                      cache=cache)
    assert [row.delay for row in again.rows] == [0.01] * FILES


def test_measured_delay_in_seconds_and_no_peak_at_the_edge(speech):
    items, rate = speech
    x = items[0][1]
    assert measured_delay(x, delayed(x, 160), rate) == ("value", 0.01, "")
    assert measured_delay(x, delayed(x, -40), rate) == ("value", -0.0025, "")
    for level in (1e160, 1e-305):  # would overflow, or underflow, unscaled
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert measured_delay(level * x, level * delayed(x, 160), rate) == ("value", 0.01, "")
    kind, value, reason = measured_delay(x, np.zeros(len(x)), rate)  # no correlation at all
    assert (kind, value) == ("n/a", None) and "no cross-correlation peak" in reason


def rows(lags, system="sys"):
    return [Row(f"{k}.wav", system, delay=lag) for k, lag in enumerate(lags)]


@pytest.mark.parametrize("lags, hinted", [
    ([0.01, 0.01], True),  # two files agree
    ([0.01], False),  # one file is not enough
    ([0.01, 0.01, 0.0102, 0.2, -0.3], True),  # 3 of 5 agree
    ([0.01, 0.01, 0.2, -0.3], False),  # half is not most
    ([0.01, 0.01, 0.01, None, None], True),  # unmeasured files do not count
    ([DELAY_HINT_MIN_S] * 4, False),  # at the threshold: not beyond it
    ([0.0, 0.0, 0.0, 0.01, 0.01], False),  # most files are on time
])
def test_delay_hints_need_most_files_to_agree_beyond_the_threshold(lags, hinted):
    assert bool(delay_hints(rows(lags), ["sys"])) == hinted


def test_delay_hints_count_the_agreeing_files():
    [hint] = delay_hints(rows([0.01, 0.01, 0.0102, 0.2, -0.3]), ["sys"])
    assert "by about 10.0 ms on 3 of 5 files" in hint


def test_only_unaligned_runs_with_sample_aligned_metrics_measure():
    core = tuple(resolve("si_snr"))
    pesq = tuple(resolve("pesq_wb"))
    assert measures_delay(ScoreOptions(metrics=core, systems=("a",)), "a")
    assert not measures_delay(ScoreOptions(metrics=core, systems=("a",), max_delay=0.5), "a")
    assert not measures_delay(ScoreOptions(metrics=pesq, systems=("a",)), "a")
    assert not measures_delay(ScoreOptions(metrics=core, systems=("clean", "a")), "clean")


def test_align_finds_the_lag_at_extreme_levels_too(speech):
    """--align and the hint share estimate_delay, which scales each signal by a power of
    two (exact) before correlating: the lag is the same at any level, with no overflow."""
    items, _ = speech
    s = items[0][1][:16000]
    late = delayed(s, 160)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lags = [estimate_delay(s * level, late * level, 800) for level in (1.0, 1e160, 1e-305)]
    assert lags == [160, 160, 160]
