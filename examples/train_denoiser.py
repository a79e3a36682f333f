"""Train a small denoiser on sample_data/ with a loss of sqeval.losses, and report
sqeval's numbers before and after training (the numbers `sqeval score` gives).

    python examples/train_denoiser.py --loss si_snr --steps 300

Needs sqeval with its torch extra (``pip install 'sqeval[torch]'``) and a clone of the
repository (for sample_data/). The model is a spectral mask from a small per-frame
network (before training its estimate is the noisy input); each step trains on a batch
of random 1 s crops of the noisy/clean pairs.
Prints the loss (its mean over the whole files) at the start and at the end, then sqeval.evaluate's mean SI-SNR, STOI
and PESQ (wide-band) of the whole files before and after training, and a last line of
JSON with the same numbers (for scripts and the tests).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import sqeval
from sqeval import losses

FS = 16000
N_FFT, HOP = 512, 128  # STFT of the frame-wise losses: 32 ms frames, 8 ms hop at 16 kHz


def magnitudes(x: torch.Tensor) -> torch.Tensor:
    """|STFT| of shape (batch, bins, frames), for the frame-wise losses."""
    window = torch.hann_window(N_FFT, dtype=x.dtype, device=x.device)
    return torch.stft(x, N_FFT, HOP, window=window, return_complex=True).abs()


def power_frames(x: torch.Tensor) -> torch.Tensor:
    """Power spectra of shape (batch, frames, 257), sqrt-Hann windowed, for PMSQE."""
    window = torch.hann_window(N_FFT, dtype=x.dtype, device=x.device).sqrt()
    spectrum = torch.stft(x, N_FFT, N_FFT // 2, window=window, center=False,
                          return_complex=True)
    return (spectrum.abs() ** 2).transpose(-1, -2)


def _waveform(loss):
    return lambda clean, estimate, noisy: loss(reference=clean, estimate=estimate)


def _frames(loss, spectrum=magnitudes):
    return lambda clean, estimate, noisy: loss(reference=spectrum(clean),
                                               estimate=spectrum(estimate))


LOSSES = {
    "si_snr": lambda: _waveform(losses.si_snr_loss),
    "si_sdr": lambda: _waveform(losses.si_sdr_loss),
    "snr": lambda: _waveform(losses.snr_loss),
    "nsr": lambda: _waveform(losses.nsr),
    "wsdr": lambda: lambda clean, estimate, noisy: losses.wsdr_loss(
        reference=clean, estimate=estimate, noisy=noisy),
    "stoi": lambda: lambda clean, estimate, noisy: losses.stoi_loss(
        reference=clean, estimate=estimate, fs=FS),
    "estoi": lambda: lambda clean, estimate, noisy: losses.estoi_loss(
        reference=clean, estimate=estimate, fs=FS),
    "ci_sdr": lambda: _waveform(losses.ci_sdr_loss),
    "mrstft": lambda: _waveform(losses.multi_resolution_stft_loss),
    "mc_mse": lambda: _frames(losses.mc_mse),
    "osi_snr": lambda: _frames(functools.partial(losses.osi_snr_loss, method=2)),
    "fused": lambda: _frames(losses.fused_loss),
    "pmsqe": lambda: _frames(losses.pmsqe_loss, power_frames),
}


class Denoiser(torch.nn.Module):
    """A spectral mask from a small per-frame network: estimate = iSTFT(mask · STFT(noisy)).

    The mask is σ(MLP(log |STFT(noisy)|)) per frame; it starts at σ(3) ≈ 0.95 everywhere,
    so before training the estimate is the noisy input, slightly quieter.
    """

    def __init__(self, hidden: int = 128):
        super().__init__()
        bins = N_FFT // 2 + 1
        self.net = torch.nn.Sequential(torch.nn.Linear(bins, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, bins))
        torch.nn.init.zeros_(self.net[-1].weight)
        torch.nn.init.constant_(self.net[-1].bias, 3.0)
        self.register_buffer("window", torch.hann_window(N_FFT))

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(noisy, N_FFT, HOP, window=self.window, return_complex=True)
        features = torch.log(spectrum.abs() + 1e-5).transpose(-1, -2)  # (batch, frames, bins)
        mask = torch.sigmoid(self.net(features)).transpose(-1, -2)
        return torch.istft(spectrum * mask, N_FFT, HOP, window=self.window,
                           length=noisy.shape[-1])


def load_pairs(data: Path):
    clean, noisy = [], []
    for path in sorted((data / "noisy").glob("*.wav")):
        reference = data / "clean" / path.name
        if reference.exists():
            c, fc = sf.read(reference, dtype="float32")
            n, fn = sf.read(path, dtype="float32")
            if fc != FS or fn != FS:
                raise SystemExit(f"{path.name}: expected {FS} Hz audio; got {fc} and {fn}")
            length = min(len(c), len(n))
            clean.append(c[:length])
            noisy.append(n[:length])
    if not clean:
        raise SystemExit(f"no noisy/clean pairs of the same name in {data}/noisy and {data}/clean")
    return clean, noisy


def active(crop: np.ndarray, block: int = 320) -> bool:
    """Whether most of ``crop`` is speech: at least 60 % of its 20 ms blocks within 40 dB
    of its loudest block (STOI drops the others, and needs 384 ms of speech)."""
    blocks = crop[: len(crop) // block * block].reshape(-1, block)
    energy = np.sum(blocks.astype(np.float64) ** 2, axis=-1)
    return np.mean(energy > 1e-4 * np.max(energy)) >= 0.6


def crops(clean, noisy, batch: int, length: int, rng: np.random.Generator):
    """A batch of random crops that are mostly speech: a crop of silence has no SI-SNR or
    STOI to learn from (its reference is silent, or too short once its silence is dropped)."""
    c, n = [], []
    while len(c) < batch:
        i = rng.integers(len(clean))
        start = rng.integers(len(clean[i]) - length + 1)
        if active(clean[i][start:start + length]):
            c.append(clean[i][start:start + length])
            n.append(noisy[i][start:start + length])
    return torch.from_numpy(np.stack(c)), torch.from_numpy(np.stack(n))


def evaluate(model, clean, noisy) -> dict:
    """sqeval's mean SI-SNR, STOI and PESQ of the model's output on the whole files."""
    with torch.no_grad():
        estimates = [model(torch.from_numpy(n)[None])[0].numpy() for n in noisy]
    results = sqeval.evaluate(clean, estimates, FS, metrics=["si_snr", "stoi", "pesq_wb"])
    for row in results.failures.itertuples():  # an item not scored is not left out quietly
        print(f"not scored: file {row.file}: {row.error}", flush=True)
    frame = results.to_frame()
    # skipna=False: a failed item makes the mean NaN, never the mean of the others
    return {name: float(frame[name].mean(skipna=False))
            for name in ("si_snr", "stoi", "pesq_wb")}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loss", choices=sorted(LOSSES), default="si_snr")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0, help="crop length")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parent.parent / "sample_data")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    clean, noisy = load_pairs(args.data)
    loss_of = LOSSES[args.loss]()
    model = Denoiser()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    length = int(args.seconds * FS)
    def whole_files_loss() -> float:  # the loss's mean over the whole files
        with torch.no_grad():
            return float(np.mean([float(loss_of(c[None], model(n[None]), n[None])) for c, n in
                                  zip(map(torch.from_numpy, clean), map(torch.from_numpy, noisy))]))

    before = {"loss": whole_files_loss(), **evaluate(model, clean, noisy)}
    print(f"{args.loss} loss at the start: {before['loss']:.4f}", flush=True)
    for step in range(1, args.steps + 1):
        c, n = crops(clean, noisy, args.batch, length, rng)
        optimizer.zero_grad()
        value = loss_of(c, model(n), n)
        value.backward()
        optimizer.step()
        if step % 50 == 0:
            print(f"step {step}: {float(value.detach()):.4f}", flush=True)
    after = {"loss": whole_files_loss(), **evaluate(model, clean, noisy)}
    print(f"{args.loss} loss at the end: {after['loss']:.4f}")
    for name in ("si_snr", "stoi", "pesq_wb"):
        print(f"{name}: {before[name]:.3f} before, {after[name]:.3f} after")
    summary = {"loss": args.loss, "before": before, "after": after}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
