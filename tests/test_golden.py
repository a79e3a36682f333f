"""Every metric against the pair-L golden values of the metric contract."""

from __future__ import annotations

import pytest

from conftest import near_golden
from sqeval.dsp import resample
from sqeval.metrics import REGISTRY

# compares numbers with a reference: repeated under every CPU profile (scripts/cpu_profiles.py)
pytestmark = pytest.mark.numeric


INTRUSIVE = [name for name, spec in REGISTRY.items() if spec.intrusive]


@pytest.mark.parametrize("name", INTRUSIVE)
def test_pair_l_matches_golden_value(golden, name):
    reference, estimate, rate, values = golden
    spec = REGISTRY[name]
    fs = spec.rate_for(rate)
    if fs != rate:  # visqol_audio runs at 48 kHz: resampled as sqeval score does
        reference, estimate = resample(reference, rate, fs), resample(estimate, rate, fs)
    value = spec.compute(reference=reference, estimate=estimate, fs=fs)
    if name.startswith("pesq"):
        # the pesq package's C code on the same samples: exactly what it gives here
        import pesq

        mode = "wb" if name == "pesq_wb" else "nb"
        assert value == pesq.pesq(fs, reference, estimate, mode)
    # the golden value recorded on another machine: within conftest's GOLDEN_ABS policy
    assert value == near_golden(name, values[name])


def test_every_intrusive_metric_has_a_golden_value(golden):
    # DNSMOS (non-intrusive) is checked against speechmos in test_dnsmos.py
    assert set(golden[3]) == set(INTRUSIVE)
