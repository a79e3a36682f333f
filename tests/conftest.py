"""Shared fixtures: the golden speech pair and a folder builder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

DATA = Path(__file__).parent / "data"


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
