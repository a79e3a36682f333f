"""The loss forms against the frame-wise golden values of the metric contract, closed
forms, and per-column loops."""

from __future__ import annotations

import numpy as np
import pytest

from sqeval import losses
from sqeval.metrics import si_snr

# compares numbers with a reference: repeated under every CPU profile (scripts/cpu_profiles.py)
pytestmark = pytest.mark.numeric

# The contract's frame-wise example: M and M̂ = M − 0.1, shape (bins, frames) = (3, 3).
M = np.array([[0.5, 0.6, 0.7], [0.8, 0.9, 1.0], [1.1, 1.2, 1.3]])
M_HAT = M - 0.1
GOLDEN_FRAMES = [28.07307793, 30.06463945, 31.86671312]
GOLDEN_METHOD_1 = 0.033421230071106235  # ε = 1e-8
GOLDEN_METHOD_2 = 0.033331692478076595
GOLDEN_MC_MSE = 0.0013543901266690672  # p = 0.3
GOLDEN_FUSED = 0.05373708198223014  # γ = 15, ε = 1e-10


def test_frame_wise_golden_values_to_1e_12():
    frames = losses.osi_snr_frames(reference=M, estimate=M_HAT)
    assert frames == pytest.approx(GOLDEN_FRAMES, abs=1e-8)  # given to 8 decimals
    assert abs(losses.osi_snr_loss(reference=M, estimate=M_HAT, method=1)
               - GOLDEN_METHOD_1) < 1e-12
    assert abs(losses.osi_snr_loss(reference=M, estimate=M_HAT, method=2)
               - GOLDEN_METHOD_2) < 1e-12
    assert abs(losses.mc_mse(reference=M, estimate=M_HAT, power=0.3) - GOLDEN_MC_MSE) < 1e-12
    assert abs(losses.fused_loss(reference=M, estimate=M_HAT, gamma=15) - GOLDEN_FUSED) < 1e-12


def test_osi_snr_frames_equals_a_per_column_loop_and_vectorises():
    rng = np.random.default_rng(0)
    m = rng.random((2, 5, 16, 7))
    m_hat = m + 0.1 * rng.standard_normal(m.shape)
    frames = losses.osi_snr_frames(reference=m, estimate=m_hat)
    assert frames.shape == (2, 5, 7)
    for index in np.ndindex(2, 5, 7):
        column, estimate = m[index[:2]][:, index[2]], m_hat[index[:2]][:, index[2]]
        scale = (estimate @ estimate) / (column @ estimate + 1e-10)
        target = scale * column
        expected = 10 * np.log10((target @ target) / ((estimate - target) @ (estimate - target) + 1e-8))
        assert frames[index] == pytest.approx(expected, rel=1e-12)
    assert losses.osi_snr_loss(reference=m, estimate=m_hat, reduction="none").shape == (2, 5)
    assert losses.osi_snr_loss(reference=m, estimate=m_hat) == pytest.approx(
        losses.osi_snr_loss(reference=m, estimate=m_hat, reduction="none").mean(), rel=1e-12)


def test_fused_is_method_1_plus_gamma_mc_mse():
    expected = (losses.osi_snr_loss(reference=M, estimate=M_HAT, method=1, eps=1e-10)
                + 3.0 * losses.mc_mse(reference=M, estimate=M_HAT))
    assert losses.fused_loss(reference=M, estimate=M_HAT, gamma=3.0) == pytest.approx(
        expected, rel=1e-15)


def test_waveform_losses_against_si_snr_and_orthogonal_noise():
    rng = np.random.default_rng(1)
    s = rng.standard_normal(4000)
    s -= s.mean()
    noise = rng.standard_normal(4000)
    noise -= noise.mean() + (noise @ s) / (s @ s) * s
    noise *= np.sqrt((s @ s) / (noise @ noise) / 10)  # 10 dB
    e = s + noise
    assert losses.si_snr_loss(reference=s, estimate=e) == pytest.approx(
        -si_snr(reference=s, estimate=e), rel=1e-12)
    assert losses.si_snr_loss(reference=s, estimate=e) == pytest.approx(-10.0, abs=1e-9)
    assert losses.nsr(reference=s, estimate=e) == pytest.approx(0.1, rel=1e-9)


def test_relative_entropy_reductions():
    s = np.array([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    e = np.array([[0.4, -0.9, 2.5, 0.1], [0.5, 0.5, 0.5, 0.5]])
    q, r = 1 / (1 + np.exp(-e)), 1 / (1 + np.exp(-s))
    terms = q * np.log(q / r)
    assert losses.relative_entropy(reference=s, estimate=e, reduction="none") == pytest.approx(
        terms.mean(axis=-1), rel=1e-12)
    assert losses.relative_entropy(reference=s, estimate=e, over_time="sum",
                                   reduction="none") == pytest.approx(terms.sum(axis=-1), rel=1e-12)
    assert losses.relative_entropy(reference=s, estimate=e, over_time="sum") == pytest.approx(
        terms.sum(axis=-1).mean(), rel=1e-12)
    assert losses.relative_entropy(reference=s, estimate=e, reduction="sum") == pytest.approx(
        terms.mean(axis=-1).sum(), rel=1e-12)
    with pytest.raises(ValueError, match="reduction"):
        losses.relative_entropy(reference=s, estimate=e, reduction="max")
    with pytest.raises(ValueError, match="over_time"):
        losses.relative_entropy(reference=s, estimate=e, over_time="max")


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match="method must be 1 or 2"):
        losses.osi_snr_loss(reference=M, estimate=M_HAT, method=3)
    with pytest.raises(ValueError, match=r"one shape \(..., bins, frames\)"):
        losses.osi_snr_frames(reference=M, estimate=M_HAT[:2])
