"""examples/train_denoiser.py runs, and its training lowers the loss and raises SI-SNR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train_denoiser.py"


@pytest.mark.parametrize("loss", ["si_snr", "snr", "wsdr", "pmsqe", "mrstft"])
def test_training_with_a_loss_lowers_it_and_raises_si_snr(loss):
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--loss", loss, "--steps", "40", "--seconds", "0.5"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    before, after = summary["before"], summary["after"]
    assert after["loss"] < before["loss"]
    assert after["si_snr"] > before["si_snr"] + 0.3
    assert f"{loss} loss at the start" in result.stdout
    assert "si_snr:" in result.stdout and "pesq_wb:" in result.stdout


def test_every_loss_of_the_example_exists_and_a_bad_one_is_refused():
    result = subprocess.run([sys.executable, str(EXAMPLE), "--loss", "nope"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice" in result.stderr
    from sqeval import losses

    names = {"si_snr_loss", "si_sdr_loss", "snr_loss", "nsr", "wsdr_loss", "stoi_loss",
             "estoi_loss", "ci_sdr_loss", "multi_resolution_stft_loss", "mc_mse",
             "osi_snr_loss", "fused_loss", "pmsqe_loss"}
    assert names <= set(losses.__all__)
