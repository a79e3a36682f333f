"""Every metric against the pair-L golden values of the metric contract."""

from __future__ import annotations

import pytest

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
        # and the golden value recorded on another machine: PESQ runs in float32 with the
        # C library's log/pow, whose last bits may differ between CPUs (glibc's FMA and
        # plain variants), so within 1e-6 of a MOS of 1 to 4.5 (its float32 resolution)
        assert value == pytest.approx(values[name], rel=0, abs=1e-6)
    else:
        # sqeval's float64 code against values recorded on another CPU: every metric
        # here is a well-conditioned sum or ratio, good to 1e-9 relative on any SIMD path
        assert value == pytest.approx(values[name], rel=1e-9, abs=1e-12)


def test_every_intrusive_metric_has_a_golden_value(golden):
    # DNSMOS (non-intrusive) is checked against speechmos in test_dnsmos.py
    assert set(golden[3]) == set(INTRUSIVE)
