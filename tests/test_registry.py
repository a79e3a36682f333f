"""The registry's entries: keyword-only, callables, numeric ranges rendered as before, and
listing it imports no metric backend."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys

import pytest

from sqeval.metrics import REGISTRY, Direction, MetricSpec, si_snr
from sqeval.metrics.registry import range_text

# The range column of `sqeval metrics` as it read when ranges were text (0.2.0).
RANGES = {
    "snr": "(-inf, inf)", "si_snr": "(-inf, inf)", "si_sdr": "(-inf, inf)",
    "osi_snr": "[0, inf)", "sdr": "(-inf, inf)", "stoi": "[0, 1]", "estoi": "[-1, 1]",
    "pesq_wb": "[1.04, 4.64]", "pesq_nb": "[1.02, 4.55]", "mc_mse": "[0, inf)",
    "lsd": "[0, inf)",
    "rel_entropy": "(-inf, inf), 0 at identity", "seg_snr": "[-10, 35]",
    "fw_seg_snr": "[-10, 35]", "llr": "[0, 2]", "wss": "[0, inf)", "csig": "[1, 5]",
    "cbak": "[1, 5]", "covl": "[1, 5]", "dnsmos_sig": "[1, 5]", "dnsmos_bak": "[1, 5]",
    "dnsmos_ovrl": "[1, 5]", "dnsmos_p808": "[1, 5]", "plcmos": "[1, 5]",
    "visqol": "[1, 5]", "visqol_audio": "[1, 5]", "srmr": "[0, inf)", "srmr_norm": "[0, inf)",
    "srmr_fast": "[0, inf)",
}
LOWER_IS_BETTER = {"mc_mse", "lsd", "rel_entropy", "llr", "wss"}


def test_ranges_render_as_the_registry_table_always_showed_them():
    assert {name: spec.range_text for name, spec in REGISTRY.items()} == RANGES
    assert range_text(-math.inf, 2.5) == "(-inf, 2.5]"


def test_direction_is_named_and_higher_is_better_follows_it():
    for name, spec in REGISTRY.items():
        expected = Direction.LOWER if name in LOWER_IS_BETTER else Direction.HIGHER
        assert spec.direction is expected
        assert spec.higher_is_better is (expected is Direction.HIGHER)
    assert (Direction.HIGHER.arrow, Direction.LOWER.arrow) == ("↑", "↓")


def test_entries_hold_callables_and_are_keyword_only():
    for spec in REGISTRY.values():
        assert callable(spec.function) and (spec.family is None or callable(spec.family))
        assert spec.low < spec.high
        assert pickle.loads(pickle.dumps(spec)) == spec  # sent to worker processes
    with pytest.raises(TypeError):
        MetricSpec("x", si_snr, "dB", -math.inf, math.inf, "", Direction.HIGHER, "d", "r")


def test_listing_the_registry_imports_no_backend():
    backends = ("('pesq', 'pystoi', 'onnxruntime', 'soxr', 'librosa', 'speechmos', 'visqol', "
                "'numba', 'ai_edge_litert', 'libsvm')")
    code = ("import sys, sqeval.metrics.registry; print(sorted(m for m in sys.modules if "
            f"m.split('.')[0] in {backends}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_presets_give_the_columns_papers_print_in_their_order():
    from typer.testing import CliRunner

    from sqeval.api import _specs
    from sqeval.cli import app
    from sqeval.metrics.registry import PRESETS, resolve

    assert [s.name for s in resolve("voicebank")] == ["pesq_wb", "csig", "cbak", "covl",
                                                      "seg_snr", "stoi"]
    assert [s.name for s in resolve("dns")] == ["dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl",
                                                "dnsmos_p808"]
    assert [s.name for s in resolve("voicebank,snr")][-1] == "snr"
    _, named = _specs("voicebank,snr", "core")  # a preset is not a metric named one by one
    assert named == {"snr"}
    listing = CliRunner().invoke(app, ["metrics"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0
    for name, (metrics, _) in PRESETS.items():
        assert name in listing.stdout and ", ".join(metrics) in listing.stdout
