"""Adversarial cases of sqeval.losses (issue 25's promises), each a defect found in review:
what a user training a model would pass, and what the losses must do with it."""

from __future__ import annotations

import io
import pickle
import warnings

import numpy as np
import pytest
import torch

from sqeval import losses

pytestmark = pytest.mark.numeric


# --- UncertaintyWeighting --------------------------------------------------------------------

def test_uncertainty_weighting_pickles_and_saves_whole():
    """A module defined inside a function could not be pickled: torch.save(model) of a model
    holding one, multiprocessing and deepcopy-by-pickle failed with AttributeError."""
    weighting = losses.UncertaintyWeighting(3)
    with torch.no_grad():
        weighting.log_variances.add_(torch.tensor([0.5, -1.0, 2.0]))
    copy = pickle.loads(pickle.dumps(weighting))
    assert isinstance(copy, losses.UncertaintyWeighting)
    torch.testing.assert_close(copy.log_variances, weighting.log_variances)
    buffer = io.BytesIO()
    torch.save(weighting, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(loaded.log_variances, weighting.log_variances)


def test_uncertainty_weighting_refuses_bad_losses_with_a_value_error():
    weighting = losses.UncertaintyWeighting(2)
    with pytest.raises(ValueError, match="one value per task"):  # was a RuntimeError (reshape)
        weighting(torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="device"):  # was a RuntimeError from torch.stack
        weighting(torch.ones((), device="meta"), torch.ones(()))


def test_uncertainty_weighting_computes_half_precision_in_float32():
    weighting = losses.UncertaintyWeighting(2)
    for dtype in (torch.float16, torch.bfloat16):
        value = weighting(torch.tensor(2.0, dtype=dtype), torch.tensor(4.0, dtype=dtype))
        assert value.dtype == torch.float32
    assert weighting(torch.tensor(2.0, dtype=torch.float64), torch.tensor(4.0)).dtype == \
        torch.float64
    assert losses.UncertaintyWeighting(np.int64(2)).log_variances.numel() == 2


# --- inputs that numpy would convert silently or with its own message --------------------------

def _waveforms(shape=(2, 64), seed=0):
    rng = np.random.default_rng(seed)
    s = rng.standard_normal(shape)
    return s, s + 0.3 * rng.standard_normal(shape)


def test_complex_numpy_input_is_refused_as_complex_tensors_are():
    """A complex numpy array (an STFT passed where magnitudes belong) lost its imaginary
    part with only a ComplexWarning; a complex tensor is refused. Both now refuse."""
    s, e = _waveforms()
    m = np.fft.rfft(s)[..., None] * np.ones(3)  # (2, 33, 3), complex
    for call in (lambda: losses.si_snr_loss(reference=s + 0j, estimate=e),
                 lambda: losses.mc_mse(reference=m, estimate=np.abs(m)),
                 lambda: losses.pit(losses.si_snr_loss, reference=(s + 1j * e)[None],
                                    estimate=e[None])):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match="real.*complex"):
                call()


def test_ragged_or_non_numeric_input_says_what_was_expected():
    for reference in ([[1.0, 2.0, 3.0], [1.0, 2.0]], np.array(["a", "b", "c"])):
        with pytest.raises(ValueError, match=r"reference must be .*numbers.*\(\.\.\., time\)"):
            losses.snr_loss(reference=reference, estimate=np.ones(3))
    with pytest.raises(ValueError, match=r"estimate must be .*\(batch, sources, \.\.\.\)"):
        losses.pit(losses.si_snr_loss, reference=np.ones((1, 2, 3)),
                   estimate=[[[1.0, 2.0, 3.0], [1.0, 2.0]]])


def test_relative_entropy_of_loud_numpy_signals_warns_of_no_overflow():
    """int16-scaled or loud float signals: σ(−s) overflowed exp in numpy (RuntimeWarning)
    while the value was right; the torch path never warned."""
    s, e = _waveforms()
    s, e = 1e3 * s, 1e3 * e
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = losses.relative_entropy(reference=s, estimate=e, reduction="none")
        pcm = losses.relative_entropy(reference=(s * 30).astype(np.int16),
                                      estimate=(e * 30).astype(np.int16))
    expected = losses.relative_entropy(reference=torch.tensor(s), estimate=torch.tensor(e),
                                       reduction="none")
    np.testing.assert_allclose(value, expected.numpy(), rtol=1e-9, atol=0)
    assert np.isfinite(pcm)


# --- docstrings that promised other values than the code gives ---------------------------------

def test_documented_silent_cases():
    s, e = _waveforms((64,))
    # si_sdr_loss: a silent *reference* is not 0 dB but 10·log10((‖ŝ‖² + ε)/ε)
    assert losses.si_sdr_loss(reference=0 * s, estimate=e) == pytest.approx(
        10 * np.log10((e @ e + losses.EPS) / losses.EPS), rel=1e-12)
    assert "silent reference gives" in losses.si_sdr_loss.__doc__
    # wsdr_loss: a silent estimate gives −(1 − α)·cos(z, x), not −(1 − α)
    z = np.random.default_rng(1).standard_normal(64)
    x = s + z
    alpha = s @ s / (s @ s + z @ z + losses.WSDR_EPS)
    cos = z @ x / np.sqrt((z @ z) * (x @ x) + losses.WSDR_EPS)
    assert losses.wsdr_loss(reference=s, estimate=0 * s, noisy=x) == pytest.approx(
        -(1 - alpha) * cos, rel=1e-12)
    assert "−(1 − α)·cos(z, x)" in losses.wsdr_loss.__doc__


def test_documented_limit_at_identity():
    """snr_loss's docstring said identical signals give about −353 dB; it is
    −10·log10((‖s‖² + ε)/ε), −156.5 dB for a unit-energy signal."""
    s = np.array([1.0, -1.0, 1.0, -1.0]) / 2
    for loss in (losses.snr_loss, losses.si_sdr_loss, losses.si_snr_loss):
        assert loss(reference=s, estimate=s) == pytest.approx(
            -10 * np.log10((1 + losses.EPS) / losses.EPS), rel=1e-9)
    assert "353" not in losses.snr_loss.__doc__ and "−157 dB" in losses.snr_loss.__doc__
