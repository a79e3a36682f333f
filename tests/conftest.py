"""Shared fixtures: the golden speech pair and a folder builder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
import soundfile as sf

DATA = Path(__file__).parent / "data"

# Property tests draw the same examples on every run (derandomize): a test that passes
# once passes again, under every CPU profile. Health checks about how hard examples were
# to generate (not about the code under test) do not fail a run.
settings.register_profile("sqeval", derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.data_too_large,
                                                 HealthCheck.too_slow])
settings.load_profile("sqeval")


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path, monkeypatch):
    """Each test runs in its own folder, so `sqeval score`'s default cache is its own."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def golden():
    """(reference, estimate, rate, {metric: value}) for pair L."""
    reference, rate = sf.read(DATA / "speech.wav", dtype="float64")
    estimate, _ = sf.read(DATA / "speech_bab_0dB.wav", dtype="float64")
    values = {name: value for name, (value, _) in
              json.loads((DATA / "golden.json").read_text())["values"].items()}
    return reference, estimate, rate, values


def write(path: Path, samples, rate: int, subtype: str | None = None) -> Path:
    """Write ``samples`` ((time,) or (time, channels)) to ``path``, making folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.asarray(samples), rate, subtype=subtype)
    return path


def read_csv(path, **options):
    """pandas.read_csv reading every float exactly: before pandas 3.0 its default parser
    puts about one value in six one unit in the last place off (its round-trip parser,
    the default since 3.0, does not)."""
    import pandas as pd

    if int(pd.__version__.split(".")[0]) < 3:
        options.setdefault("float_precision", "round_trip")
    return pd.read_csv(path, **options)


def read_run_csv(path):
    """A per-file CSV read as ``Results.to_frame()`` promises it: metric cells as floats
    (empty: NaN), ``file``, ``system`` and ``error`` as text (empty: ``""``)."""
    header = open(path, encoding="utf-8").readline().strip().split(",")
    metrics = [name for name in header if name not in ("file", "system", "error")]
    return read_csv(path, dtype={"file": str, "system": str, "error": str},
                    keep_default_na=False, na_values={name: [""] for name in metrics})


# Golden values were recorded on one machine (tests/data/golden.json). Tolerance policy:
# sqeval's float64 metrics agree to 1e-9 relative on any CPU; PESQ computes in float32
# with the C library's log/pow (whose last bits differ between CPUs), and the composites
# are linear in it, so 1e-6 of a MOS; ViSQOL's speech MOS is a float32 TFLite output
# (XNNPACK kernels differ per CPU) and its audio mode runs numba code compiled for the CPU.
GOLDEN_ABS = {"pesq_wb": 1e-6, "pesq_nb": 1e-6, "csig": 1e-6, "cbak": 1e-6, "covl": 1e-6,
              "visqol": 1e-6, "visqol_audio": 1e-6}


def near_golden(name: str, value: float):
    """``value`` of metric ``name`` as a golden value is compared, within the policy above."""
    return pytest.approx(value, rel=1e-9, abs=GOLDEN_ABS.get(name, 1e-12))
