"""Benchmark of the training losses: ``python benchmarks/losses.py [--runs R] [--case NAME]``.
Not a test, and not part of the package.

For each loss of :mod:`sqeval.losses` that a peer library also has, times a forward and
backward pass on a batch of 8 × 4 s at 16 kHz (float32, CPU; the estimate requires a
gradient), for sqeval's loss and the peer's in the same run, each in a fresh process, and
the peak memory the pass adds (the process's peak resident set, VmHWM, after the pass
minus its resident set before it; Linux). Prints a Markdown table (the one in docs/losses.md).

Needs sqeval's test environment (``make .venv/.installed-test``): torch, torchmetrics,
auraloss, ci_sdr and asteroid.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

BATCH, SECONDS, FS = 8, 4.0, 16000


def _inputs(sources: int | None = None):
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    # separation cases: the batch of 8 signals as 8 items of `sources` sources each
    shape = (BATCH, int(SECONDS * FS)) if sources is None else (BATCH, sources, int(SECONDS * FS))
    clean = rng.standard_normal(shape).astype(np.float32) * 0.1
    noisy = clean + rng.standard_normal(shape).astype(np.float32) * 0.05
    return torch.from_numpy(clean), torch.from_numpy(noisy)


def _power(x):
    import torch

    window = torch.hann_window(512, dtype=x.dtype).sqrt()
    spectrum = torch.stft(x, 512, 256, window=window, center=False, return_complex=True)
    return (spectrum.abs() ** 2).transpose(-1, -2)


def _case(name: str):
    """(ours, peer, peer's name, input maker): each a function of (clean, estimate)."""
    import torch
    from sqeval import losses

    if name == "si_sdr":
        from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as tm
        return (lambda c, e: losses.si_sdr_loss(reference=c, estimate=e),
                lambda c, e: -tm(e, c).mean(), "torchmetrics", _inputs)
    if name == "si_snr":
        from torchmetrics.functional.audio import scale_invariant_signal_noise_ratio as tm
        return (lambda c, e: losses.si_snr_loss(reference=c, estimate=e),
                lambda c, e: -tm(e, c).mean(), "torchmetrics", _inputs)
    if name == "snr":
        from auraloss.time import SNRLoss
        peer = SNRLoss()
        return (lambda c, e: losses.snr_loss(reference=c, estimate=e),
                lambda c, e: peer(e, c), "auraloss", _inputs)
    if name == "sa_sdr":
        from torchmetrics.functional.audio import source_aggregated_signal_distortion_ratio as tm
        return (lambda c, e: losses.sa_sdr_loss(reference=c, estimate=e),
                lambda c, e: -tm(e, c, scale_invariant=False).mean(), "torchmetrics",
                lambda: _inputs(sources=2))
    if name == "ci_sdr":
        import ci_sdr
        return (lambda c, e: losses.ci_sdr_loss(reference=c, estimate=e),
                lambda c, e: ci_sdr.pt.ci_sdr_loss(e, c, compute_permutation=False).mean(),
                "ci_sdr", _inputs)
    if name == "multi_resolution_stft":
        from auraloss.freq import MultiResolutionSTFTLoss
        peer = MultiResolutionSTFTLoss()
        return (lambda c, e: losses.multi_resolution_stft_loss(reference=c, estimate=e),
                lambda c, e: peer(e[:, None], c[:, None]), "auraloss", _inputs)  # (batch, 1, time)
    if name == "pmsqe":
        from asteroid.losses import SingleSrcPMSQE
        peer = SingleSrcPMSQE()
        return (lambda c, e: losses.pmsqe_loss(reference=_power(c), estimate=_power(e)),
                lambda c, e: peer(_power(e), _power(c)).mean(), "asteroid", _inputs)
    if name == "pit_si_sdr":
        from torchmetrics.functional.audio import (permutation_invariant_training,
                                                   scale_invariant_signal_distortion_ratio)
        return (lambda c, e: losses.pit(losses.si_sdr_loss, reference=c, estimate=e)[0],
                lambda c, e: -permutation_invariant_training(
                    e, c, scale_invariant_signal_distortion_ratio, eval_func="max")[0].mean(),
                "torchmetrics", lambda: _inputs(sources=3))
    raise SystemExit(f"unknown case {name!r}")


CASES = ["snr", "si_sdr", "si_snr", "sa_sdr", "ci_sdr", "multi_resolution_stft", "pmsqe",
         "pit_si_sdr"]


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measure(name: str, which: str, runs: int) -> dict:
    """In this process: time ``runs`` forward+backward passes (after one warm-up) and the
    peak memory of the first."""
    ours, peer, peer_name, make = _case(name)
    function = ours if which == "ours" else peer
    clean, noisy = make()
    before = _rss_kib("VmRSS")
    estimate = noisy.clone().requires_grad_(True)
    function(clean, estimate).backward()
    peak = _rss_kib("VmHWM") - before
    times = []
    for _ in range(runs):
        estimate = noisy.clone().requires_grad_(True)
        start = time.perf_counter()
        function(clean, estimate).backward()
        times.append(time.perf_counter() - start)
    return {"case": name, "impl": which, "peer": peer_name, "median_s": statistics.median(times),
            "peak_mib": peak / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--case", action="append", choices=CASES)
    parser.add_argument("--one", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], args.runs)))
        return
    import torch

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, batch {BATCH} × {SECONDS:g} s at {FS} Hz, float32, "
          f"median of {args.runs} forward+backward passes\n")
    print("| loss | peer | sqeval (ms) | peer (ms) | sqeval peak (MiB) | peer peak (MiB) |")
    print("|---|---|---:|---:|---:|---:|")
    for name in args.case or CASES:
        results = {}
        for which in ("ours", "peer"):
            out = subprocess.run([sys.executable, __file__, "--runs", str(args.runs), "--one",
                                  name, which], capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"{name} ({which}) failed:\n{out.stderr}")
            results[which] = json.loads(out.stdout.strip().splitlines()[-1])
        ours, peer = results["ours"], results["peer"]
        print(f"| {name} | {ours['peer']} | {1000 * ours['median_s']:.1f} | "
              f"{1000 * peer['median_s']:.1f} | {ours['peak_mib']:.0f} | {peer['peak_mib']:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
