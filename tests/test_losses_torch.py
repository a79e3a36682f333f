"""The loss forms on PyTorch tensors: the same value as on numpy arrays (one definition),
the metric's value and torchmetrics' where it has the loss, gradients that gradcheck
accepts and that stay finite at silence, and training that lowers each loss."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import torch

from sqeval import losses, metrics

pytestmark = pytest.mark.numeric

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _waveforms(shape=(3, 400), seed=0):
    rng = np.random.default_rng(seed)
    s = rng.standard_normal(shape)
    return s, s + 0.3 * rng.standard_normal(shape), s + 0.8 * rng.standard_normal(shape)


def _spectra(shape=(3, 16, 9), seed=1):
    rng = np.random.default_rng(seed)
    m = rng.random(shape) + 0.1
    return m, np.abs(m + 0.05 * rng.standard_normal(shape)), None


# name → (function of reference, estimate, noisy and keywords; input kind)
WAVEFORM = {
    "snr_loss": lambda r, e, x, **k: losses.snr_loss(reference=r, estimate=e, **k),
    "si_sdr_loss": lambda r, e, x, **k: losses.si_sdr_loss(reference=r, estimate=e, **k),
    "si_snr_loss": lambda r, e, x, **k: losses.si_snr_loss(reference=r, estimate=e, **k),
    "nsr": lambda r, e, x, **k: losses.nsr(reference=r, estimate=e, **k),
    "wsdr_loss": lambda r, e, x, **k: losses.wsdr_loss(reference=r, estimate=e, noisy=x, **k),
    "relative_entropy": lambda r, e, x, **k: losses.relative_entropy(reference=r, estimate=e, **k),
    "relative_entropy_sum": lambda r, e, x, **k: losses.relative_entropy(
        reference=r, estimate=e, over_time="sum", **k),
}
FRAME_WISE = {
    "osi_snr_loss_1": lambda r, e, x, **k: losses.osi_snr_loss(reference=r, estimate=e, **k),
    "osi_snr_loss_2": lambda r, e, x, **k: losses.osi_snr_loss(reference=r, estimate=e,
                                                               method=2, **k),
    "mc_mse": lambda r, e, x, **k: losses.mc_mse(reference=r, estimate=e, **k),
    "fused_loss": lambda r, e, x, **k: losses.fused_loss(reference=r, estimate=e, **k),
}
ALL = {**{name: (f, _waveforms) for name, f in WAVEFORM.items()},
       **{name: (f, _spectra) for name, f in FRAME_WISE.items()}}


def _tensors(arrays, device="cpu", dtype=torch.float64, grad=False):
    return [None if a is None else torch.tensor(a, dtype=dtype, device=device,
                                                requires_grad=grad) for a in arrays]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_the_tensor_value_is_the_numpy_value(name, reduction, device):
    function, inputs = ALL[name]
    arrays = inputs()
    expected = function(*arrays, reduction=reduction)
    value = function(*_tensors(arrays, device), reduction=reduction)
    assert isinstance(value, torch.Tensor) and value.device.type == device
    assert value.dtype == torch.float64
    np.testing.assert_allclose(value.detach().cpu().numpy(), expected, rtol=1e-9, atol=0)
    assert np.shape(expected) == ((3,) if reduction == "none" else ())


def test_osi_snr_frames_on_tensors():
    m, m_hat, _ = _spectra()
    frames = losses.osi_snr_frames(reference=torch.tensor(m), estimate=torch.tensor(m_hat))
    np.testing.assert_allclose(frames.numpy(), losses.osi_snr_frames(reference=m, estimate=m_hat),
                               rtol=1e-9)


def test_the_waveform_losses_are_the_metrics_on_real_speech(golden):
    reference, estimate, _, _ = golden
    r, e = torch.tensor(reference), torch.tensor(estimate)
    for loss, metric, sign in [(losses.snr_loss, metrics.snr, -1),
                               (losses.si_sdr_loss, metrics.si_sdr, -1),
                               (losses.si_snr_loss, metrics.si_snr, -1),
                               (losses.relative_entropy, metrics.rel_entropy, 1)]:
        expected = sign * metric(reference=reference, estimate=estimate)
        assert float(loss(reference=r, estimate=e)) == pytest.approx(expected, rel=1e-9)
        assert loss(reference=reference, estimate=estimate) == pytest.approx(expected, rel=1e-9)
    si_snr = metrics.si_snr(reference=reference, estimate=estimate)
    assert float(losses.nsr(reference=r, estimate=e)) == pytest.approx(10 ** (-si_snr / 10),
                                                                        rel=1e-9)


def test_equal_to_torchmetrics():
    from torchmetrics.functional.audio import (scale_invariant_signal_distortion_ratio,
                                               scale_invariant_signal_noise_ratio,
                                               signal_noise_ratio)

    s, e, _ = _waveforms((4, 2000))
    r, t = torch.tensor(s), torch.tensor(e)
    for ours, theirs in [(losses.snr_loss, signal_noise_ratio),
                         (losses.si_sdr_loss, scale_invariant_signal_distortion_ratio),
                         (losses.si_snr_loss, scale_invariant_signal_noise_ratio)]:
        # float64 on both sides, the same ε: only the order of the sums differs
        torch.testing.assert_close(ours(reference=r, estimate=t, reduction="none"),
                                   -theirs(t, r), rtol=1e-9, atol=1e-12)


def test_wsdr_is_the_formula_of_choi_et_al():
    s, e, x = _waveforms((2, 500))
    for i in range(2):
        z, z_hat = x[i] - s[i], x[i] - e[i]
        alpha = (s[i] @ s[i]) / (s[i] @ s[i] + z @ z)

        def cos(a, b):
            return (a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))

        expected = -alpha * cos(s[i], e[i]) - (1 - alpha) * cos(z, z_hat)
        assert losses.wsdr_loss(reference=s[i], estimate=e[i], noisy=x[i]) == pytest.approx(
            expected, rel=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_gradcheck(name):
    function, inputs = ALL[name]
    arrays = inputs((2, 24) if inputs is _waveforms else (2, 5, 4))
    reference, estimate, noisy = _tensors(arrays)
    estimate.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda e: function(reference, e, noisy, reduction="sum"), (estimate,))


def _cases(inputs):
    """(label, reference, estimate, noisy): the silent and identical cases."""
    s, e, x = inputs((3, 64) if inputs is _waveforms else (3, 8, 6))
    x = s + 0.5 if x is None else x
    one_silent = e.copy()
    one_silent[1] = 0
    return [("silent estimate", s, np.zeros_like(e), x), ("silent reference", np.zeros_like(s), e, x),
            ("both silent", np.zeros_like(s), np.zeros_like(e), np.zeros_like(x)),
            ("identical", s, s.copy(), x), ("one silent item", s, one_silent, x)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", ALL)
def test_value_and_gradient_are_finite_at_silence_and_identity(name, dtype):
    function, inputs = ALL[name]
    for label, s, e, x in _cases(inputs):
        reference, estimate, noisy = _tensors([s, e, x], dtype=dtype)
        estimate.requires_grad_(True)
        value = function(reference, estimate, None if inputs is _spectra else noisy)
        value.backward()
        assert torch.isfinite(value), (name, label, value)
        assert torch.isfinite(estimate.grad).all(), (name, label)
        assert np.isfinite(function(s, e, None if inputs is _spectra else x)), (name, label)


@pytest.mark.parametrize("name", ALL)
def test_dtypes(name):
    function, inputs = ALL[name]
    arrays = inputs()
    for dtype, result in [(torch.float32, torch.float32), (torch.float16, torch.float32),
                          (torch.bfloat16, torch.float32), (torch.float64, torch.float64)]:
        value = function(*_tensors(arrays, dtype=dtype))
        assert value.dtype == result
        assert float(value) == pytest.approx(function(*arrays), rel=2e-2 if dtype in (
            torch.float16, torch.bfloat16) else 1e-4)


def test_bad_inputs_raise_a_clear_value_error():
    s, e, x = _waveforms()
    with pytest.raises(ValueError, match="one shape"):
        losses.si_snr_loss(reference=torch.tensor(s), estimate=torch.tensor(e[:, :-1]))
    with pytest.raises(ValueError, match="is a tensor but reference is not"):
        losses.si_snr_loss(reference=s, estimate=torch.tensor(e))
    with pytest.raises(ValueError, match="different devices"):
        losses.si_snr_loss(reference=torch.tensor(s), estimate=torch.tensor(e, device="meta"))
    with pytest.raises(ValueError, match="floating-point"):
        losses.snr_loss(reference=torch.ones(3, dtype=torch.int64), estimate=torch.ones(3))
    with pytest.raises(ValueError, match="NaN or Inf"):
        losses.snr_loss(reference=torch.tensor([1.0, float("nan")]), estimate=torch.ones(2))
    with pytest.raises(ValueError, match=r"\(..., bins, frames\)"):
        losses.mc_mse(reference=torch.ones(5), estimate=torch.ones(5))
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.snr_loss(reference=s, estimate=e, reduction="avg")
    with pytest.raises(ValueError, match=r"\(..., time\)"):
        losses.snr_loss(reference=torch.ones(3, 0), estimate=torch.ones(3, 0))


def _speech(length=4000):
    from tests.conftest import DATA
    import soundfile as sf

    clean, _ = sf.read(DATA / "speech.wav", dtype="float64")
    clean = clean[8000:8000 + length]
    noise = np.random.default_rng(3).standard_normal(length) * np.std(clean)
    return clean, clean + noise


def _stft_magnitude(x):
    return torch.stft(x, 256, 64, window=torch.hann_window(256, dtype=x.dtype),
                      return_complex=True).abs()


@pytest.mark.parametrize("name", ALL)
def test_a_few_optimizer_steps_lower_the_loss(name):
    """A learnable gain and 9-tap filter applied to noisy speech, trained with the loss."""
    function, inputs = ALL[name]
    torch.manual_seed(0)
    clean, noisy = (torch.tensor(a, dtype=torch.float32) for a in _speech())
    taps = torch.zeros(9)
    taps.data[4] = 0.5
    taps.requires_grad_(True)
    optimizer = torch.optim.Adam([taps], lr=0.01)

    def loss():
        estimate = torch.nn.functional.conv1d(noisy[None, None], taps[None, None], padding=4)[0, 0]
        if inputs is _spectra:
            return function(_stft_magnitude(clean), _stft_magnitude(estimate), None)
        return function(clean, estimate, noisy)

    first = float(loss().detach())
    for _ in range(25):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
    assert float(loss().detach()) < first


def test_pit_finds_the_permutation_and_equals_torchmetrics():
    from torchmetrics.functional.audio import (permutation_invariant_training,
                                               scale_invariant_signal_distortion_ratio)

    rng = np.random.default_rng(5)
    s = rng.standard_normal((4, 3, 300))
    order = np.array([list(p) for p in itertools.permutations(range(3))])[[1, 3, 5, 2]]
    e = s[np.arange(4)[:, None], order] + 0.3 * rng.standard_normal(s.shape)
    value, permutation = losses.pit(losses.si_sdr_loss, reference=torch.tensor(s),
                                    estimate=torch.tensor(e))
    best, their_permutation = permutation_invariant_training(
        torch.tensor(e), torch.tensor(s), scale_invariant_signal_distortion_ratio, eval_func="max")
    torch.testing.assert_close(value, -best.mean(), rtol=1e-9, atol=0)
    # ours: permutation[b, i] = the estimate for reference i; theirs: the same map
    assert permutation.tolist() == their_permutation.tolist()
    assert (np.argsort(order, axis=1) == permutation.numpy()).all()
    numpy_value, numpy_permutation = losses.pit(losses.si_sdr_loss, reference=s, estimate=e)
    assert numpy_value == pytest.approx(float(value), rel=1e-9)
    assert (numpy_permutation == permutation.numpy()).all()


def test_pit_beyond_exhaustive_uses_the_hungarian_method_and_finds_the_optimum():
    rng = np.random.default_rng(6)
    n = losses._pit.EXHAUSTIVE_UP_TO + 2
    s = rng.standard_normal((2, n, 200))
    e = s[:, rng.permutation(n)] + 0.5 * rng.standard_normal(s.shape)
    value, permutation = losses.pit(losses.si_snr_loss, reference=s, estimate=e,
                                    reduction="none")
    pairwise = np.array([[[losses.si_snr_loss(reference=s[b, i], estimate=e[b, j])
                           for j in range(n)] for i in range(n)] for b in range(2)])
    for b in range(2):
        brute = min(itertools.permutations(range(n)),
                    key=lambda p: pairwise[b, range(n), p].sum())
        assert permutation[b].tolist() == list(brute)
        assert value[b] == pytest.approx(pairwise[b, range(n), brute].mean(), rel=1e-12)


def test_pit_with_a_frame_wise_loss_and_gradients():
    m, m_hat, _ = _spectra((2, 2, 8, 5))
    estimate = torch.tensor(m_hat[:, ::-1].copy(), requires_grad=True)
    value, permutation = losses.pit(functools.partial(losses.osi_snr_loss, method=2),
                                    reference=torch.tensor(m), estimate=estimate)
    value.backward()
    assert permutation.tolist() == [[1, 0], [1, 0]]
    assert torch.isfinite(estimate.grad).all()
    with pytest.raises(ValueError, match=r"\(batch, sources, ...\)"):
        losses.pit(losses.si_snr_loss, reference=np.ones((2, 10)), estimate=np.ones((2, 10)))


def test_uncertainty_weighting_learns_the_task_scales():
    weighting = losses.UncertaintyWeighting(2)
    assert isinstance(weighting, torch.nn.Module)
    assert float(weighting(torch.tensor(2.0), torch.tensor(4.0)).detach()) == pytest.approx(3.0)
    optimizer = torch.optim.Adam(weighting.parameters(), lr=0.1)
    for _ in range(1000):  # constant task losses 1 and 100: the optimum is s_i = log L_i
        optimizer.zero_grad()
        weighting(torch.tensor(1.0), torch.tensor(100.0)).backward()
        optimizer.step()
    np.testing.assert_allclose(weighting.log_variances.detach().numpy(), [0, np.log(100)],
                               atol=0.05)
    with pytest.raises(ValueError, match="expected 2 task losses"):
        weighting(torch.tensor(1.0))
    with pytest.raises(ValueError, match="positive number"):
        losses.UncertaintyWeighting(0)
