"""stoi_loss and estoi_loss: their values against pystoi and sqeval's metrics (numpy and
torch), their gradients (gradcheck, finiteness where STOI is degenerate), their errors, and
a few optimiser steps.

Tolerances: pystoi and the metrics within 1e-6 absolute (the brief's bound; measured
differences are about 1e-15: the same float64 steps in another order, scipy's upfirdn
against a polyphase product, and pystoi's ESTOI noise of float64-eps size); numpy against
torch float64 within 1e-9 relative (BLAS and FFT kernels differ in the last bits); float32
against float64 within 1e-4 (float32's eps, amplified by the normalisations).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sqeval.dsp import resample
from sqeval.losses import estoi_loss, stoi_loss
from sqeval.metrics import estoi, stoi

import torch  # noqa: E402  (the test environment has every extra: never skipped)
import pystoi  # noqa: E402  (a runtime dependency of sqeval: never skipped)

# compares numbers with a reference: repeated under every CPU profile (scripts/cpu_profiles.py)
pytestmark = pytest.mark.numeric

ROOT = Path(__file__).resolve().parent.parent
LOSSES = {False: stoi_loss, True: estoi_loss}  # extended → loss
METRICS = {False: stoi, True: estoi}


def _read(path) -> np.ndarray:
    samples, rate = sf.read(ROOT / path, dtype="float64")
    assert rate == 16000
    return samples


@pytest.fixture(scope="module")
def speech():
    """Two real pairs at 16 kHz, 3.1 s and 2.5 s: (reference, estimate)."""
    return [(_read("tests/data/speech.wav"), _read("tests/data/speech_bab_0dB.wav")),
            (_read("sample_data/clean/de_babble_0dB.wav")[8000:48000],
             _read("sample_data/enhanced/de_babble_0dB.wav")[8000:48000])]


def _pystoi(reference, estimate, fs, extended):
    np.random.seed(0)  # pystoi's ESTOI adds eps-sized noise
    return pystoi.stoi(reference, estimate, fs, extended=extended)


def _both(extended, reference, estimate, fs, **options):
    """The loss on numpy arrays and on float64 tensors."""
    loss = LOSSES[extended]
    value = loss(reference=reference, estimate=estimate, fs=fs, **options)
    tensor = loss(reference=torch.from_numpy(np.asarray(reference)),
                  estimate=torch.from_numpy(np.asarray(estimate)), fs=fs, **options)
    assert tensor.dtype == torch.float64
    return value, tensor.numpy() if tensor.ndim else tensor.item()


@pytest.mark.parametrize("extended", [False, True])
@pytest.mark.parametrize("fs", [16000, 10000, 8000, 48000, 44100])
def test_real_speech_equals_pystoi_and_the_metric_at_several_rates(speech, extended, fs):
    for reference, estimate in speech[:1] if fs != 16000 else speech:
        reference, estimate = resample(reference, 16000, fs), resample(estimate, 16000, fs)
        value, tensor = _both(extended, reference, estimate, fs)
        assert isinstance(value, float)
        expected = _pystoi(reference, estimate, fs, extended)
        assert abs(-value - expected) < 1e-6
        assert abs(-tensor - expected) < 1e-6
        assert tensor == pytest.approx(value, rel=1e-9)
        metric = METRICS[extended](reference=reference, estimate=estimate, fs=fs)
        assert abs(-value - metric) < 1e-6


def test_the_resampler_is_pystois_for_every_length():
    """The polyphase form (numpy and torch) against pystoi's ``resample_oct`` (scipy's
    ``resample_poly``), sample by sample, including lengths shorter than the filter."""
    from pystoi.utils import resample_oct

    from sqeval.losses._backend import Ops
    from sqeval.losses._stoi import _resample

    rng = np.random.default_rng(4)
    for fs in (8000, 11025, 16000, 44100, 48000):
        for n in (1, 7, 4097, 5003):
            x = rng.standard_normal((2, n))
            expected = np.stack([resample_oct(row, 10000, fs) for row in x])
            numpy_out = _resample(Ops(), x, fs)
            torch_out = _resample(Ops(torch, torch.float64, torch.device("cpu")),
                                  torch.from_numpy(x), fs).numpy()
            assert numpy_out.shape == torch_out.shape == expected.shape
            np.testing.assert_allclose(numpy_out, expected, rtol=0, atol=1e-13)
            np.testing.assert_allclose(torch_out, expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("extended", [False, True])
def test_noise_at_several_snrs_equals_pystoi(speech, extended):
    rng = np.random.default_rng(3)
    reference = speech[1][0][:24000]
    values = []
    for snr in (-10, 0, 5, 20):
        noise = rng.standard_normal(reference.shape)
        noise *= np.linalg.norm(reference) / np.linalg.norm(noise) * 10 ** (-snr / 20)
        value, tensor = _both(extended, reference, reference + noise, 16000)
        expected = _pystoi(reference, reference + noise, 16000, extended)
        assert abs(-value - expected) < 1e-6 and abs(-tensor - expected) < 1e-6
        assert tensor == pytest.approx(value, rel=1e-9)
        values.append(value)
    assert values == sorted(values, reverse=True)  # more noise, higher loss


@pytest.mark.parametrize("extended", [False, True])
def test_a_batch_equals_its_items_with_different_speech_frame_counts(speech, extended):
    (a, a_hat), (b, b_hat) = speech
    n = len(b)
    a, a_hat = a[:n], a_hat[:n]
    quiet_start = a.copy()
    quiet_start[: n // 2] *= 1e-4  # 80 dB down: about half the frames are silent
    references = np.stack([a, quiet_start, b])
    estimates = np.stack([a_hat, a_hat, b_hat])
    value, tensor = _both(extended, references, estimates, 16000, reduction="none")
    expected = [-_pystoi(r, e, 16000, extended) for r, e in zip(references, estimates)]
    assert value.shape == tensor.shape == (3,)
    np.testing.assert_allclose(value, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(tensor, value, rtol=1e-9)
    assert expected[0] != pytest.approx(expected[1], abs=1e-3)  # the frame choice matters
    loss = LOSSES[extended]
    assert loss(reference=references, estimate=estimates, fs=16000) == pytest.approx(
        np.mean(value), rel=1e-12)
    assert loss(reference=references, estimate=estimates, fs=16000,
                reduction="sum") == pytest.approx(np.sum(value), rel=1e-12)
    stacked = loss(reference=references.reshape(3, 1, n)[[0, 1, 2, 0]].reshape(2, 2, n),
                   estimate=estimates.reshape(3, 1, n)[[0, 1, 2, 0]].reshape(2, 2, n),
                   fs=16000, reduction="none")
    np.testing.assert_allclose(stacked, np.reshape(value[[0, 1, 2, 0]], (2, 2)), rtol=1e-12)


@pytest.mark.parametrize("extended", [False, True])
@pytest.mark.parametrize("fs, length", [(10000, 4200), (8000, 3400)])
def test_gradcheck_on_the_shortest_inputs(extended, fs, length):
    """One 30-frame segment (at 10 kHz) per item, two items; 8 kHz goes through the
    resampler."""
    generator = torch.Generator().manual_seed(1)
    reference = torch.randn(2, length, dtype=torch.float64, generator=generator)
    estimate = (reference + 0.5 * torch.randn(2, length, dtype=torch.float64,
                                              generator=generator)).requires_grad_()
    loss = LOSSES[extended]
    assert torch.autograd.gradcheck(
        lambda e: loss(reference=reference, estimate=e, fs=fs, reduction="none"),
        (estimate,), fast_mode=True, atol=1e-6, rtol=1e-4)


def _value_and_grad(extended, reference, estimate, fs=16000, dtype=torch.float64):
    estimate = torch.tensor(estimate, dtype=dtype, requires_grad=True)
    value = LOSSES[extended](reference=torch.tensor(reference, dtype=dtype),
                             estimate=estimate, fs=fs, reduction="sum")
    value.backward()
    return value.detach(), estimate.grad


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("extended", [False, True])
def test_finite_value_and_gradient_where_stoi_is_degenerate(speech, extended, dtype):
    reference = speech[0][0][:9000]  # 0.56 s
    for scale in (1.0, 32768.0):  # float samples, and int16-sized ones
        r = scale * reference
        value, grad = _value_and_grad(extended, r, np.zeros_like(r), dtype=dtype)
        assert value.item() == 0 and torch.all(grad == 0)  # silent: STOI 0, no direction
        value, grad = _value_and_grad(extended, r, r, dtype=dtype)
        assert value.item() == pytest.approx(-1, abs=1e-5) and torch.isfinite(grad).all()
        batch = np.stack([r, np.zeros_like(r), r + scale * 0.1 * np.sin(np.arange(len(r)))])
        value, grad = _value_and_grad(extended, np.stack([r] * 3), batch, dtype=dtype)
        assert torch.isfinite(value) and torch.isfinite(grad).all()
        assert torch.all(grad[1] == 0) and torch.any(grad[2] != 0)


@pytest.mark.parametrize("extended", [False, True])
def test_a_dc_estimate_gives_one_value_on_numpy_and_tensors(speech, extended):
    """A constant estimate (a model's output at initialisation) has envelopes that vary only
    by the Hann window's leakage: rows constant to 1e-6 are centred to 0, so the value
    does not depend on rounding (pystoi's does) and the gradient stays finite."""
    reference = speech[0][0][:32000]
    dc = np.full_like(reference, 0.3)
    value, tensor = _both(extended, reference, dc, 16000)
    assert abs(value - tensor) <= 1e-9
    _, grad = _value_and_grad(extended, reference, dc, dtype=torch.float32)
    assert torch.isfinite(grad).all()


def test_float32_in_float32_out_near_float64(speech):
    reference, estimate = (x[:32000] for x in speech[0])
    for extended in (False, True):
        loss = LOSSES[extended]
        single = loss(reference=torch.tensor(reference, dtype=torch.float32),
                      estimate=torch.tensor(estimate, dtype=torch.float32), fs=16000)
        assert single.dtype == torch.float32 and single.shape == ()
        assert single.item() == pytest.approx(
            loss(reference=reference, estimate=estimate, fs=16000), abs=1e-4)


def test_bad_inputs_raise_value_error(speech):
    reference, estimate = speech[0]
    for extended in (False, True):
        loss = LOSSES[extended]
        with pytest.raises(ValueError, match="one shape"):
            loss(reference=reference, estimate=estimate[:-1], fs=16000)
        with pytest.raises(ValueError, match="shape"):
            loss(reference=np.zeros(0), estimate=np.zeros(0), fs=16000)
        with pytest.raises(ValueError, match="too short for STOI/ESTOI: 4000 samples"):
            loss(reference=reference[:4000], estimate=estimate[:4000], fs=16000)
        with pytest.raises(ValueError, match="reference is too quiet"):
            loss(reference=np.zeros(20000), estimate=estimate[:20000], fs=16000)
        burst = np.zeros(32000)
        burst[16000:19000] = reference[16000:19000]  # 0.19 s of speech
        with pytest.raises(ValueError, match="fewer than 30 frames of speech"):
            loss(reference=burst, estimate=estimate[:32000], fs=16000)
        batch = np.stack([reference[:32000], burst])
        with pytest.raises(ValueError, match=r"reference \(item 1\) is too short"):
            loss(reference=torch.tensor(batch), estimate=torch.tensor(batch), fs=16000)
        for fs in (0, -16000, 16000.5, "16000", True):
            with pytest.raises(ValueError, match="fs must be"):
                loss(reference=reference, estimate=estimate, fs=fs)
        with pytest.raises(ValueError, match="reduction"):
            loss(reference=reference, estimate=estimate, fs=16000, reduction="max")
        with pytest.raises(ValueError, match="NaN"):
            loss(reference=reference, estimate=np.full_like(estimate, np.nan), fs=16000)


def test_adam_steps_on_a_gain_and_fir_lower_the_loss(speech):
    """A tiny noise canceller, ``gain·(noisy − fir * noise)``, with the noise leaking into
    the speech through an unknown 3-tap filter: five Adam steps raise STOI and ESTOI."""
    reference = speech[0][0][4000:16000]  # 0.75 s
    rng = np.random.default_rng(5)
    noise = rng.standard_normal(len(reference)) * np.std(reference)
    noisy = reference + np.convolve(noise, [0.8, 0.5, -0.3])[:len(reference)]
    reference, noisy, noise = torch.tensor(reference), torch.tensor(noisy), torch.tensor(noise)
    for extended in (False, True):
        gain = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        fir = torch.zeros(4, dtype=torch.float64, requires_grad=True)
        optimiser = torch.optim.Adam([gain, fir], lr=0.1)
        losses = []
        for _ in range(5):
            optimiser.zero_grad()
            cancelled = torch.nn.functional.conv1d(noise[None, None], fir.flip(0)[None, None],
                                                   padding=3)[0, 0, :len(reference)]
            loss = LOSSES[extended](reference=reference, estimate=gain * (noisy - cancelled),
                                    fs=16000)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        assert all(np.diff(losses) < 0) and losses[-1] < losses[0] - 0.05, losses
