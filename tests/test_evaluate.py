"""``sqeval.evaluate`` on arrays and tensors in memory gives the Results of ``sqeval.score``
on the same audio written to files: the same rows, values to the last bit, and error cells;
one bad item is an error row, never an exception."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.signal import resample_poly

import sqeval
from conftest import DATA

SHORT = 400  # samples an estimate may lack and still be scored (a note, not an error)


@pytest.fixture(scope="module")
def speech():
    """(clean, noisy) at 16 kHz."""
    clean, fs = sf.read(DATA / "speech.wav", dtype="float64")
    noisy, _ = sf.read(DATA / "speech_bab_0dB.wav", dtype="float64")
    assert fs == 16000
    return clean, noisy


def batch(speech, rate: int, n: int = 3):
    """(references, estimates, noisy): ``n`` 1.5 s items at ``rate``, each its own mix."""
    clean, noisy = speech
    size = 24000
    starts = np.linspace(0, len(clean) - size, n).astype(int)
    ref = np.stack([clean[s:s + size] for s in starts])
    noi = np.stack([noisy[s:s + size] for s in starts])
    est = np.stack([(0.6 + 0.1 * k) * ref[k] + (0.1 + 0.1 * k) * noi[k] for k in range(n)])
    if rate != 16000:
        ref, est, noi = (resample_poly(x, rate, 16000, axis=1) for x in (ref, est, noi))
    return ref, est, noi


def score_files(tmp_path, references, estimates, rate, noisy=None, metrics=None):
    """``sqeval.score`` of the same signals written as float64 WAV files ``<i>.wav``."""
    folders = {"clean": references, "estimate": estimates}
    if noisy is not None:
        folders["noisy"] = noisy
    for folder, signals in folders.items():
        (tmp_path / folder).mkdir()
        for index, signal in enumerate(signals):
            sf.write(tmp_path / folder / f"{index}.wav", signal, rate, subtype="DOUBLE")
    return sqeval.score(tmp_path / "clean", {"estimate": tmp_path / "estimate"},
                        noisy=None if noisy is None else tmp_path / "noisy", metrics=metrics,
                        jobs=1)


def assert_same(in_memory, from_files):
    """The two Results' frames are equal cell for cell, ``<i>`` naming file ``<i>.wav``."""
    frame = in_memory.to_frame()
    frame["file"] = frame["file"] + ".wav"
    expected = from_files.to_frame()
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert in_memory.metrics == from_files.metrics
    assert in_memory.systems == from_files.systems


@pytest.mark.parametrize("rate", [16000, 8000])
@pytest.mark.parametrize("with_noisy", [False, True])
@pytest.mark.parametrize("metrics", [None, ["pesq_wb", "stoi", "si_snr"]])
def test_arrays_give_what_score_gives_on_the_same_files(tmp_path, speech, rate, with_noisy,
                                                        metrics):
    ref, est, noi = batch(speech, rate)
    results = sqeval.evaluate(ref, est, rate, noisy=noi if with_noisy else None,
                              metrics=metrics)
    assert_same(results, score_files(tmp_path, ref, est, rate, noi if with_noisy else None,
                                     metrics))
    assert len(results.rows) == len(ref) * (2 if with_noisy else 1)
    if rate == 8000 and metrics is not None:  # pesq_wb asked for by name: a failure
        assert all("pesq_wb" in row.errors for row in results.rows)
    else:
        assert not any(row.failed for row in results.rows)


def test_bad_items_fail_their_rows_as_their_files_do(tmp_path, speech):
    """Silent, NaN, truncated estimates and a silent reference: error rows with the reasons
    `sqeval score` gives for the same files; the other items are scored (a list holds
    signals of their own lengths)."""
    ref, est, noi = batch(speech, 16000, n=6)
    refs, ests = list(ref), list(est)
    ests[1] = ests[1][:-SHORT]  # shorter within the allowance: scored, with a note
    ests[2] = np.zeros_like(ests[2])
    ests[3] = ests[3].copy()
    ests[3][100] = np.nan
    refs[4] = np.zeros_like(refs[4])
    ests[5] = ests[5][: len(ests[5]) // 2]  # truncated: not scored
    results = sqeval.evaluate(refs, ests, 16000, noisy=list(noi))
    assert_same(results, score_files(tmp_path, refs, ests, 16000, list(noi)))
    errors = {(row.file, row.system): row.file_error for row in results.rows}
    assert errors[("0", "estimate")] is None and errors[("1", "estimate")] is None
    assert "silent" in errors[("2", "estimate")]
    assert errors[("3", "estimate")] == "1 NaN and 0 Inf samples; expected finite audio"
    assert errors[("4", "noisy")] == errors[("4", "estimate")]
    assert errors[("4", "estimate")].startswith("clean reference: silent")
    assert "shorter" in errors[("5", "estimate")] and errors[("5", "noisy")] is None
    assert any("lengths differ" in note for row in results.rows if row.file == "1"
               for note in row.notes)


def test_a_silent_or_nan_item_in_a_batch_is_an_error_row_not_an_exception(speech):
    ref, est, _ = batch(speech, 16000)
    est[1] = 0.0
    est[2, :10] = np.inf
    results = sqeval.evaluate(ref, est, 16000, metrics=["pesq_wb", "stoi", "si_snr"])
    failures = results.failures
    assert failures["file"].tolist() == ["1", "2"]
    assert "silent (all samples zero)" in failures["error"].iloc[0]
    assert failures["error"].iloc[1] == "0 NaN and 10 Inf samples; expected finite audio"
    frame = results.to_frame()
    assert frame.loc[0, ["pesq_wb", "stoi", "si_snr"]].notna().all()
    assert frame.loc[1:, ["pesq_wb", "stoi", "si_snr"]].isna().all().all()


def test_non_intrusive_metrics_score_the_clean_rows_too(tmp_path, speech):
    """As `sqeval score` does, a non-intrusive metric adds the rows of system `clean`."""
    ref, est, _ = batch(speech, 16000, n=2)
    results = sqeval.evaluate(ref, est, 16000, metrics=["si_snr", "srmr"])
    assert results.systems == ["clean", "estimate"]
    assert_same(results, score_files(tmp_path, ref, est, 16000, metrics=["si_snr", "srmr"]))


def test_one_signal_names_systems_and_items(speech):
    ref, est, noi = batch(speech, 16000, n=2)
    one = sqeval.evaluate(ref[0], est[0], 16000, metrics="si_snr")
    assert one.to_frame()[["file", "system"]].values.tolist() == [["0", "estimate"]]
    two = sqeval.evaluate(ref, {"a": est, "b": noi}, 16000, metrics="si_snr",
                          names=["x/u1", "x/u2"])
    assert [(r.file, r.system) for r in two.rows] == [
        ("x/u1", "a"), ("x/u1", "b"), ("x/u2", "a"), ("x/u2", "b")]
    assert two.rows[0].values == one.rows[0].values
    assert two.summary()["system"].tolist() == ["a", "b"]


def test_tensors_give_what_arrays_give(speech):
    import torch
    ref, est, noi = batch(speech, 16000)
    metrics = ["pesq_wb", "stoi", "si_snr"]
    arrays = sqeval.evaluate(ref, est, 16000, noisy=noi, metrics=metrics).to_frame()
    tensors = sqeval.evaluate(torch.from_numpy(ref), torch.from_numpy(est).requires_grad_(),
                              16000, noisy=torch.from_numpy(noi), metrics=metrics).to_frame()
    pd.testing.assert_frame_equal(tensors, arrays, check_exact=True)
    # float32 tensors (a model's output) are the float32 arrays, exactly; lists of tensors too
    as32 = [x.astype(np.float32) for x in (ref, est)]
    arrays32 = sqeval.evaluate(*as32, 16000, metrics=metrics).to_frame()
    tensors32 = sqeval.evaluate(*(list(torch.from_numpy(x)) for x in as32), 16000,
                                metrics=metrics).to_frame()
    pd.testing.assert_frame_equal(tensors32, arrays32, check_exact=True)
    half = sqeval.evaluate(torch.from_numpy(as32[0]).bfloat16(), torch.from_numpy(as32[1]),
                           16000, metrics="si_snr")
    assert not any(row.failed for row in half.rows)


@pytest.mark.parametrize("call, words", [
    (lambda x: sqeval.evaluate(x[None, None], x[None, None], 16000),
     ["shape (1, 1, 24000)", "expected one signal (time,) or a batch", "x[:, 0]"]),
    (lambda x: sqeval.evaluate(np.stack([x, x]), x, 16000),
     ["estimate holds 1 signal(s) but reference holds 2", "expected one per reference"]),
    (lambda x: sqeval.evaluate(x, x, 16000, noisy=np.stack([x, x])),
     ["noisy holds 2 signal(s)"]),
    (lambda x: sqeval.evaluate((x * 32767).astype(np.int16), x, 16000),
     ["int16 samples", "expected float samples", "x / 32768"]),
    (lambda x: sqeval.evaluate(x, x.astype(complex), 16000), ["complex128", "expected real"]),
    (lambda x: sqeval.evaluate(x, x, 16000.0), ["an int from 1000 to 768000", "got 16000.0",
                                               "int(fs)"]),
    (lambda x: sqeval.evaluate(x, x, 100), ["an int from 1000", "got 100"]),
    (lambda x: sqeval.evaluate(x, x, 16000, names=["a", "b"]), ["2 name(s) for 1 item(s)"]),
    (lambda x: sqeval.evaluate([x, x], [x, x], 16000, names=["a", "a"]), ["'a' twice"]),
    (lambda x: sqeval.evaluate(x, {"noisy": x}, 16000), ["'noisy' is reserved"]),
    (lambda x: sqeval.evaluate({"u1": x}, {"u1": x}, 16000), ["is a mapping", "names=ids"]),
    (lambda x: sqeval.evaluate(x, x, 16000, metrics="pesq_wideband"), ["pesq_wideband"]),
    (lambda x: sqeval.evaluate(x, x, 16000, metrics=[]), ["an empty list"]),
])
def test_calls_that_cannot_run_raise_value_errors_that_say_why(speech, call, words):
    x = batch(speech, 16000, n=1)[0][0]
    with pytest.raises(ValueError) as caught:
        call(x)
    for word in words:
        assert word in str(caught.value)


def test_evaluate_on_arrays_never_imports_torch(tmp_path):
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import sqeval
        x = np.random.default_rng(0).standard_normal((2, 16000))
        results = sqeval.evaluate(x, x + 0.1, 16000, metrics="core")
        assert len(results.rows) == 2 and not any(r.failed for r in results.rows)
        assert "torch" not in sys.modules, "torch was imported"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_evaluate_is_public_and_documented():
    assert "evaluate" in sqeval.__all__ and "evaluate" in dir(sqeval)
    assert sqeval.evaluate.__module__ == "sqeval.arrays"


def test_score_given_arrays_points_at_evaluate(tmp_path, speech):
    """The gap of issue 25: `{id: array}` given to score failed every row with "no such
    file: [-0.0020752 ...]"; now the call says to use sqeval.evaluate."""
    ref, est, _ = batch(speech, 16000, n=1)
    sf.write(tmp_path / "0.wav", ref[0], 16000, subtype="DOUBLE")
    for call in (lambda: sqeval.score({"0": ref[0]}, {"0": est[0]}),
                 lambda: sqeval.score(tmp_path, {"model": {"0": est[0]}}),
                 lambda: sqeval.score(str(tmp_path), est[0])):
        with pytest.raises(ValueError, match="sqeval.evaluate") as caught:
            call()
        assert "shape (24000,)" in str(caught.value)


def test_a_time_by_channels_array_is_refused_not_scored_as_many_tiny_items(speech):
    """soundfile.read gives a stereo file as (time, channels): taken as a (batch, time)
    batch it was 4000 items of 2 samples, scored (a mean SI-SNR of 116 dB), not an error."""
    clean, _ = speech
    stereo = np.stack([clean[:4000], clean[4000:8000]], axis=1)
    with pytest.raises(ValueError) as caught:
        sqeval.evaluate(stereo, stereo * 0.9, 16000, metrics="si_snr")
    for word in ["shape (4000, 2)", "(batch, time)", "(time, channels)", ".T"]:
        assert word in str(caught.value)
    ref, est, _ = batch(speech, 16000, n=2)  # (2, 24000) stays a batch of two
    assert len(sqeval.evaluate(ref, est, 16000, metrics="si_snr").rows) == 2


@pytest.mark.parametrize("empty", [np.zeros((0, 16000)), [], ()])
def test_no_items_is_a_value_error_as_score_on_no_files(empty):
    """A summary of nothing would pass for a run: `sqeval score` refuses sources with no
    audio files; evaluate refuses an empty batch (an empty list was one empty signal)."""
    with pytest.raises(ValueError, match="no signals"):
        sqeval.evaluate(empty, empty, 16000, metrics="si_snr")


def test_fs_as_a_0d_integer_tensor_or_array(speech):
    """A DataLoader collates a rate into a tensor; a 0-d integer one is the rate."""
    import torch
    ref, est, _ = batch(speech, 16000, n=1)
    expected = sqeval.evaluate(ref, est, 16000, metrics="si_snr").to_frame()
    for fs in (torch.tensor(16000), np.array(16000), np.int32(16000)):
        got = sqeval.evaluate(ref, est, fs, metrics="si_snr").to_frame()
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    for fs, words in ((torch.tensor([16000, 16000]), "int(fs[0])"),
                      (torch.tensor(16000.0), "int(fs)")):
        with pytest.raises(ValueError, match=r"an int from 1000 to 768000") as caught:
            sqeval.evaluate(ref, est, fs, metrics="si_snr")
        assert words in str(caught.value)


def test_the_example_validation_does_not_average_over_failed_items(speech, capsys):
    """examples/train_denoiser.py's evaluate took pandas' mean, which skips NaN: a model
    silent on one file was reported with the mean of the others."""
    import importlib.util

    import torch
    path = DATA.parent.parent / "examples" / "train_denoiser.py"
    spec = importlib.util.spec_from_file_location("train_denoiser_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    ref, _, noi = batch(speech, 16000, n=2)
    clean, noisy = [x.astype(np.float32) for x in ref], [x.astype(np.float32) for x in noi]

    def silent_on_the_second(x):
        return torch.zeros_like(x) if torch.equal(x[0], torch.from_numpy(noisy[1])) else x

    means = example.evaluate(silent_on_the_second, clean, noisy)
    assert all(np.isnan(value) for value in means.values()), means
    assert "silent" in capsys.readouterr().out
