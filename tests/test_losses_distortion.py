"""CI-SDR, SA-SDR and multi-resolution STFT losses: numpy against torch, each against its
reference implementation (ci_sdr, torchmetrics, auraloss), gradients, silent and identical
inputs, dtypes, shapes, and a few steps of training."""

from __future__ import annotations

import importlib
import subprocess
import sys

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sqeval import losses

import torch  # noqa: E402  (the test environment has every extra: never skipped)

# compares numbers with a reference: repeated under every CPU profile (scripts/cpu_profiles.py)
pytestmark = pytest.mark.numeric

SPEECH = Path(losses.__file__).resolve().parent.parent / "data" / "speech.wav"
SMALL_STFT = {"fft_sizes": (16, 32), "hop_sizes": (4, 8), "win_lengths": (12, 32)}


def _ci_sdr_peer():
    with warnings.catch_warnings():  # ci_sdr 0.0.2 imports distutils
        warnings.simplefilter("ignore")
        return importlib.import_module("ci_sdr.pt")


@pytest.fixture(scope="module")
def speech():
    samples, rate = sf.read(SPEECH, dtype="float64")
    assert rate == 16000
    return samples


@pytest.fixture(scope="module")
def pair(speech):
    """(reference, estimate) of shape (3, 8000): speech excerpts, and the same through a
    decaying random filter plus noise (the third item's noise at −10 dB, so low SDRs too)."""
    rng = np.random.default_rng(25)
    reference = np.stack([speech[i:i + 8000] for i in (4000, 16000, 30000)])
    taps = rng.standard_normal((3, 64)) * np.exp(-np.arange(64) / 10)
    filtered = np.stack([np.convolve(r, h)[:8000] for r, h in zip(reference, taps)])
    noise = rng.standard_normal(reference.shape) * filtered.std(-1, keepdims=True)
    return reference, filtered + np.array([[0.05], [0.3], [3.0]]) * noise


def _t(x, dtype=None):
    return torch.tensor(np.asarray(x), dtype=dtype or torch.float64)


# Each loss with the keyword arguments and input shapes of its small cases.
LOSSES = {
    "ci_sdr": (losses.ci_sdr_loss, {"filter_length": 4}, (2, 3, 40)),
    "sa_sdr": (losses.sa_sdr_loss, {}, (2, 3, 40)),
    "sa_sdr_si_zm": (losses.sa_sdr_loss, {"scale_invariant": True, "zero_mean": True},
                     (2, 3, 40)),
    "mr_stft": (losses.multi_resolution_stft_loss, SMALL_STFT, (2, 3, 40)),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are small: several threads per operation only slow them down (the
    gradient checks run ~40× slower on a busy two-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _small(shape, seed=0):
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal(shape)
    return reference, 0.7 * reference + 0.5 * rng.standard_normal(shape)


# --- numpy and torch give one value -----------------------------------------------------------

@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_numpy_and_torch_float64_agree(name, reduction, pair):
    loss, options, shape = LOSSES[name]
    for reference, estimate in (_small(shape), (pair[0][:2, None], pair[1][:2, None])):
        if name == "ci_sdr" and reference.shape[-1] > 40:
            options = {"filter_length": 512}
        if name == "mr_stft" and reference.shape[-1] > 40:
            options = {}
        value = loss(reference=reference, estimate=estimate, reduction=reduction, **options)
        tensor = loss(reference=_t(reference), estimate=_t(estimate), reduction=reduction,
                      **options)
        assert isinstance(value, float) == (reduction != "none")
        assert tensor.dtype == torch.float64
        np.testing.assert_allclose(tensor.numpy(), value, rtol=1e-9, atol=0)


# --- against the reference implementations -----------------------------------------------------

@pytest.mark.parametrize("filter_length", [0, 1, 16, 512])
def test_ci_sdr_equals_the_ci_sdr_package(pair, filter_length):
    peer = _ci_sdr_peer()
    reference, estimate = pair
    expected = peer.ci_sdr_loss(_t(estimate), _t(reference), compute_permutation=False,
                                filter_length=filter_length).numpy()
    assert np.ptp(expected) > 10  # high and low SDRs
    ours = losses.ci_sdr_loss(reference=reference, estimate=estimate,
                              filter_length=filter_length, reduction="none")
    # Same formula, different FFT length and a diagonal loading of 1e-10·r[0]: on these
    # signals the loading moves the value by ~3e-9 dB (measured), so 1e-7 dB leaves margin
    # and still catches any change of formula (a lag, the padding, ε placement).
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-7)
    assert losses.ci_sdr_loss(reference=reference, estimate=estimate,
                              filter_length=filter_length) == pytest.approx(
        expected.mean(), abs=1e-7)
    # float32: both solve a 512×512 system in single precision; ours stays as close to the
    # float64 value as the package's own float32 result is (a few 1e-6 dB on these).
    ours32 = losses.ci_sdr_loss(reference=_t(reference, torch.float32),
                                estimate=_t(estimate, torch.float32),
                                filter_length=filter_length, reduction="none")
    theirs32 = peer.ci_sdr_loss(_t(estimate, torch.float32), _t(reference, torch.float32),
                                compute_permutation=False, filter_length=filter_length)
    assert ours32.dtype == torch.float32
    bound = max(1e-4, 10 * float(np.abs(theirs32.numpy() - expected).max()))
    np.testing.assert_allclose(ours32.numpy(), expected, rtol=0, atol=bound)


def test_ci_sdr_vectorises_over_leading_axes(pair):
    reference, estimate = pair
    flat = losses.ci_sdr_loss(reference=reference, estimate=estimate, filter_length=32,
                              reduction="none")
    stacked = losses.ci_sdr_loss(reference=np.stack([reference, reference[::-1]]),
                                 estimate=np.stack([estimate, estimate[::-1]]),
                                 filter_length=32, reduction="none")
    assert stacked.shape == (2, 3)
    np.testing.assert_allclose(stacked, np.stack([flat, flat[::-1]]), rtol=1e-12)


@pytest.mark.parametrize("scale_invariant", [False, True])
@pytest.mark.parametrize("zero_mean", [False, True])
def test_sa_sdr_equals_torchmetrics(pair, scale_invariant, zero_mean):
    audio = importlib.import_module("torchmetrics.functional.audio")
    reference = pair[0].reshape(3, 1, 8000)[[0, 1, 2, 0]].reshape(2, 2, 8000)
    estimate = pair[1].reshape(3, 1, 8000)[[0, 1, 2, 0]].reshape(2, 2, 8000) + 0.01
    reference[1, 1] = 0.0  # a silent speaker
    for dtype, rtol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        # Same operations in the same order, same ε = finfo(dtype).eps: equal to rounding
        # (float32: ~1e-7 per sum over 16000 samples, summed in a different order).
        expected = -audio.source_aggregated_signal_distortion_ratio(
            _t(estimate, dtype), _t(reference, dtype), scale_invariant=scale_invariant,
            zero_mean=zero_mean)
        ours = losses.sa_sdr_loss(reference=_t(reference, dtype), estimate=_t(estimate, dtype),
                                  scale_invariant=scale_invariant, zero_mean=zero_mean,
                                  reduction="none")
        assert ours.dtype == dtype and ours.shape == (2,)
        np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=rtol)
    assert losses.sa_sdr_loss(reference=reference, estimate=estimate,
                              scale_invariant=scale_invariant, zero_mean=zero_mean
                              ) == pytest.approx(float(expected.mean()), rel=1e-5)


def test_sa_sdr_default_is_the_papers_not_torchmetrics(pair):
    audio = importlib.import_module("torchmetrics.functional.audio")
    reference, estimate = pair[0][None], 0.5 * pair[1][None]  # a gain error
    plain = losses.sa_sdr_loss(reference=reference, estimate=estimate)
    assert plain == pytest.approx(-float(audio.source_aggregated_signal_distortion_ratio(
        _t(estimate), _t(reference), scale_invariant=False)), rel=1e-12)
    assert plain > losses.sa_sdr_loss(reference=reference, estimate=estimate,
                                      scale_invariant=True) + 1  # the gain error costs


def _auraloss(float64_window: bool):
    freq = importlib.import_module("auraloss.freq")
    module = freq.MultiResolutionSTFTLoss()
    if float64_window:  # auraloss makes its Hann windows in float32, whatever the input
        for stft in module.stft_losses:
            stft.window = torch.hann_window(stft.win_length, dtype=torch.float64)
    return module


def test_mr_stft_mean_equals_auraloss_on_a_batch(pair):
    reference = np.stack([pair[0], 4 * pair[0][::-1]], axis=1)  # (3, 2, time)
    estimate = np.stack([pair[1], pair[1][::-1]], axis=1)
    ours = losses.multi_resolution_stft_loss(reference=reference, estimate=estimate)
    # auraloss(input=estimate, target=reference). With float64 windows the computation is
    # the same up to rounding; with its own float32 windows (rounded at ~6e-8 relative) the
    # value moves by ~1e-9 relative, so 1e-7 there.
    exact = _auraloss(True)(_t(estimate), _t(reference)).item()
    assert ours == pytest.approx(exact, rel=1e-12)
    assert ours == pytest.approx(_auraloss(False)(_t(estimate), _t(reference)).item(), rel=1e-7)
    tensor = losses.multi_resolution_stft_loss(reference=_t(reference, torch.float32),
                                               estimate=_t(estimate, torch.float32))
    assert tensor.dtype == torch.float32 and tensor.item() == pytest.approx(exact, rel=1e-5)
    # its spectral convergence pools the batch: not the mean of the per-item losses
    each = losses.multi_resolution_stft_loss(reference=reference, estimate=estimate,
                                             reduction="none")
    assert each.shape == (3, 2) and abs(each.mean() - ours) > 1e-3


def test_mr_stft_none_is_auraloss_per_item_and_sum_adds_them(pair):
    reference, estimate = pair
    each = losses.multi_resolution_stft_loss(reference=reference, estimate=estimate,
                                             reduction="none")
    module = _auraloss(True)
    expected = [module(_t(e)[None, None], _t(r)[None, None]).item()
                for r, e in zip(reference, estimate)]
    np.testing.assert_allclose(each, expected, rtol=1e-12)
    assert losses.multi_resolution_stft_loss(reference=reference, estimate=estimate,
                                             reduction="sum") == pytest.approx(sum(expected))
    # one item, or items with one spectral-convergence ratio: "mean" is the mean of "none"
    assert losses.multi_resolution_stft_loss(reference=reference[:1], estimate=estimate[:1]
                                             ) == pytest.approx(expected[0], rel=1e-12)
    doubled = losses.multi_resolution_stft_loss(reference=np.stack([reference[0]] * 2),
                                                estimate=np.stack([estimate[0]] * 2))
    assert doubled == pytest.approx(expected[0], rel=1e-12)


# --- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", LOSSES)
def test_gradcheck_float64(name):
    loss, options, shape = LOSSES[name]
    reference, estimate = _small(shape, seed=1)
    few = (slice(None, 2), slice(None, 2)) if name.startswith("sa_sdr") else (0, slice(None, 2))
    assert torch.autograd.gradcheck(  # the whole Jacobian, on two items
        lambda r, e: loss(reference=r, estimate=e, reduction="none", **options),
        (_t(reference[few]).requires_grad_(), _t(estimate[few]).requires_grad_()))
    assert torch.autograd.gradcheck(  # random directions, on the whole batch
        lambda r, e: loss(reference=r, estimate=e, **options),
        (_t(reference).requires_grad_(), _t(estimate).requires_grad_()), fast_mode=True)


SAFETY_CASES = ("silent reference", "silent estimate", "both silent", "identical",
                "one silent item")


def _safety_case(case, shape, seed=2):
    reference, estimate = _small(shape, seed)
    if case in ("silent reference", "both silent"):
        reference = np.zeros(shape)
    if case in ("silent estimate", "both silent"):
        estimate = np.zeros(shape)
    if case == "identical":
        estimate = reference.copy()
    if case == "one silent item":
        reference[0, 0] = 0.0
        estimate[1, 0] = 0.0
    return reference, estimate


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("case", SAFETY_CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_finite_value_and_gradient(name, case, dtype):
    loss, options, shape = LOSSES[name]
    if name == "ci_sdr":
        shape, options = (2, 3, 400), {"filter_length": 64}
    reference, estimate = (_t(x, dtype).requires_grad_() for x in _safety_case(case, shape))
    for reduction in ("mean", "none"):
        value = loss(reference=reference, estimate=estimate, reduction=reduction, **options)
        reference.grad = estimate.grad = None
        value.sum().backward()
        assert torch.isfinite(value).all(), (case, value)
        assert torch.isfinite(reference.grad).all() and torch.isfinite(estimate.grad).all()
        assert value.dtype == dtype


def test_ci_sdr_is_finite_where_the_package_is_not():
    peer = _ci_sdr_peer()
    reference, estimate = _small((2, 400), seed=3)
    silent = np.zeros_like(reference)
    # silent reference: the package's solve fails on a zero matrix, for the whole batch
    with pytest.raises(RuntimeError):
        peer.ci_sdr_loss(_t(estimate), _t(silent), compute_permutation=False, filter_length=64)
    ours = losses.ci_sdr_loss(reference=silent, estimate=estimate, filter_length=64,
                              reduction="none")
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(ours, -10 * np.log10(eps / ((estimate**2).sum(-1) + eps)))
    # silent estimate: 0/0 = NaN there; here w = 0, t = 0 and −10·log10(ε/ε) = 0
    assert torch.isnan(peer.ci_sdr_loss(_t(silent), _t(reference), compute_permutation=False,
                                        filter_length=64)).all()
    np.testing.assert_allclose(losses.ci_sdr_loss(reference=reference, estimate=silent,
                                                  filter_length=64, reduction="none"), 0.0)
    # identical: ~ −300 dB there with gradients ~1e13; the loading caps it (−180 dB here)
    x = _t(reference).requires_grad_()
    theirs = peer.ci_sdr_loss(x, _t(reference), compute_permutation=False, filter_length=64)
    theirs.sum().backward()
    y = _t(reference).requires_grad_()
    ours = losses.ci_sdr_loss(reference=_t(reference), estimate=y, filter_length=64,
                              reduction="none")
    ours.sum().backward()
    assert (theirs < -250).all() and (-250 < ours).all() and (ours < -90).all()
    assert float(y.grad.abs().max()) < 1e-3 * float(x.grad.abs().max())


# --- dtypes and shapes ----------------------------------------------------------------------

@pytest.mark.parametrize("name", LOSSES)
def test_float32_in_float32_out_and_numpy_in_float_out(name):
    loss, options, shape = LOSSES[name]
    reference, estimate = _small(shape)
    for reduction, out_shape in (("mean", ()), ("sum", ()), ("none", shape[:-2] if name.startswith(
            "sa_sdr") else shape[:-1])):
        value = loss(reference=_t(reference, torch.float32), estimate=_t(estimate, torch.float32),
                     reduction=reduction, **options)
        assert value.dtype == torch.float32 and tuple(value.shape) == out_shape
        numpy_value = loss(reference=reference, estimate=estimate, reduction=reduction, **options)
        assert np.shape(numpy_value) == out_shape
        np.testing.assert_allclose(value.numpy(), numpy_value, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", LOSSES)
def test_bad_shapes_and_options_raise_value_error(name):
    loss, options, shape = LOSSES[name]
    reference, estimate = _small(shape)
    with pytest.raises(ValueError):
        loss(reference=reference, estimate=estimate[..., :-1], **options)
    with pytest.raises(ValueError):
        loss(reference=reference, estimate=estimate[:1], **options)
    with pytest.raises(ValueError):
        loss(reference=np.float64(1.0), estimate=np.float64(1.0), **options)
    with pytest.raises(ValueError):
        loss(reference=reference, estimate=estimate, reduction="max", **options)
    with pytest.raises(ValueError):
        loss(reference=_t(reference), estimate=estimate, **options)


def test_loss_specific_shape_errors():
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="sources, time"):
        losses.sa_sdr_loss(reference=rng.standard_normal(40), estimate=rng.standard_normal(40))
    for bad in (-1, 41, 2.5, True):
        with pytest.raises(ValueError, match="filter_length"):
            losses.ci_sdr_loss(reference=rng.standard_normal(40),
                               estimate=rng.standard_normal(40), filter_length=bad)
    with pytest.raises(ValueError, match="1024"):  # reflect padding of the 2048-point FFT
        losses.multi_resolution_stft_loss(reference=np.ones(1024), estimate=np.ones(1024))
    assert losses.multi_resolution_stft_loss(reference=np.ones(1025), estimate=np.ones(1025)
                                             ) == 0.0
    for bad in ({"fft_sizes": (16,)}, {**SMALL_STFT, "win_lengths": (12, 64)},
                {**SMALL_STFT, "hop_sizes": (0, 8)}):
        with pytest.raises(ValueError):
            losses.multi_resolution_stft_loss(reference=rng.standard_normal(40),
                                              estimate=rng.standard_normal(40), **bad)


# --- training ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, options", [
    ("ci_sdr", {"filter_length": 512}),
    ("sa_sdr", {}),
    ("mr_stft", {}),
])
def test_a_few_adam_steps_lower_the_loss(speech, name, options):
    """A learnable gain and 16-tap FIR on noisy speech (white noise at 5 dB SNR): Adam
    lowers each loss within 15 steps (lowpass filtering removes noise above the speech)."""
    loss = LOSSES[name][0]
    torch.manual_seed(0)
    clean = _t(speech[8000:24000], torch.float32).reshape(1, 1, -1)
    noisy = clean + 0.56 * clean.std() * torch.randn_like(clean)
    gain = torch.nn.Parameter(torch.tensor(0.3))
    fir = torch.nn.Parameter(torch.zeros(1, 1, 16))
    with torch.no_grad():
        fir[..., 0] = 1.0
    optimiser = torch.optim.Adam([gain, fir], lr=0.02)
    values = []
    for _ in range(15):
        optimiser.zero_grad()
        estimate = gain * torch.nn.functional.conv1d(
            torch.nn.functional.pad(noisy, (15, 0)), fir.flip(-1))
        shape = (1, 1, -1) if name == "sa_sdr" else (1, -1)
        value = loss(reference=clean.reshape(shape), estimate=estimate.reshape(shape),
                     **options)
        value.backward()
        optimiser.step()
        values.append(value.item())
    assert np.isfinite(values).all()
    assert values[-1] < values[0] - 0.1 * abs(values[0]) or values[-1] < values[0] - 1.0, values


def test_ci_sdr_solves_a_batch_after_set_num_threads():
    """torch 2.13's batched LU (oneMKL) fails once torch.set_num_threads was called, as a
    training script often does; ci_sdr_loss solves one item at a time (in a fresh process:
    the thread setting is global)."""
    code = ("import torch, numpy as np\n"
            "torch.set_num_threads(2)\n"
            "from sqeval.losses import ci_sdr_loss\n"
            "rng = np.random.default_rng(0)\n"
            "c = torch.from_numpy(rng.standard_normal((4, 4000)).astype(np.float32))\n"
            "e = (c + 0.5 * torch.randn(4, 4000)).requires_grad_(True)\n"
            "ci_sdr_loss(reference=c, estimate=e).backward()\n"
            "print(bool(torch.isfinite(e.grad).all()))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
