"""Property-based tests (hypothesis) of the metric invariants the registry declares."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqeval.metrics import REGISTRY

# compares numbers with a reference: repeated under every CPU profile (scripts/cpu_profiles.py)
pytestmark = pytest.mark.numeric

WAVEFORM = ["snr", "si_snr", "si_sdr", "osi_snr", "sdr", "mc_mse", "lsd", "rel_entropy"]
RATE = 8000


@st.composite
def pairs(draw, n=2048):
    """A non-silent reference and an estimate = reference + scaled noise, seeded."""
    seed = draw(st.integers(0, 2**32 - 1))
    level = draw(st.floats(1e-2, 10.0))  # energies ≫ ε: see the ε note in the README
    noise_level = draw(st.floats(1e-3, 3.0))
    rng = np.random.default_rng(seed)
    s = level * rng.standard_normal(n)
    return s, s + noise_level * level * rng.standard_normal(n)


def compute(name, s, e):
    spec = REGISTRY[name]
    return spec.compute(reference=s, estimate=e, fs=spec.rate_for(RATE))


@settings(max_examples=30, deadline=None)
@given(pair=pairs(), gain=st.floats(0.05, 20.0))
@pytest.mark.parametrize("name", [n for n in WAVEFORM if REGISTRY[n].properties.get("gain_invariant")])
def test_declared_gain_invariance(name, pair, gain):
    s, e = pair
    a, b = compute(name, s, e), compute(name, s, gain * e)
    assert b == pytest.approx(a, rel=1e-6, abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(pair=pairs())
@pytest.mark.parametrize("name", [n for n in WAVEFORM if REGISTRY[n].properties.get("best_at_identity")])
def test_identity_is_the_best_value(name, pair):
    s, e = pair
    identity, other = compute(name, s, s), compute(name, s, e)
    assert identity >= other if REGISTRY[name].higher_is_better else identity <= other


@settings(max_examples=30, deadline=None)
@given(pair=pairs())
@pytest.mark.parametrize("name", WAVEFORM)
def test_finite_for_finite_non_silent_input(name, pair):
    assert np.isfinite(compute(name, *pair))


@settings(max_examples=15, deadline=None)
@given(a=pairs(n=1024), b=pairs(n=1024), c=pairs(n=1024))
@pytest.mark.parametrize("name", WAVEFORM)
def test_batch_equals_the_per_item_loop(name, a, b, c):
    s = np.stack([a[0], b[0], c[0]])
    e = np.stack([a[1], b[1], c[1]])
    batch = compute(name, s, e)
    loop = [compute(name, s[k], e[k]) for k in range(3)]
    assert batch == pytest.approx(loop, rel=1e-10, abs=1e-12)
