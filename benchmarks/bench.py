"""Benchmark: ``python benchmarks/bench.py [--files N] [--jobs J] [--runs R] [-m METRICS]``.
Not a test, and not part of the package.

Needs a clone of the repository (the speech in its sample_data/) with sqeval installed
and the test-only extra, for fast_bss_eval in the plain loop: ``make .venv/.installed-test``
or ``pip install -e '.[test]'``.

Builds a corpus of N clean/enhanced pairs of 2–6 s at 16 kHz from the speech in
sample_data/ (random crops, seeded), then times, each in a fresh process and on the same
corpus:

1. ``sqeval score`` with ``--jobs 1`` and with all cores (default metrics, no cache),
   then with all cores and a new cache, and again with that (now warm) cache;
2. a plain per-file loop as a user would write it: soundfile, pesq (wb and nb), pystoi
   (STOI and ESTOI), fast_bss_eval's SDR, and numpy for the SNR family, MC-MSE and the
   relative entropy;
3. the PESQ wb+nb calls alone, on one core and on all cores;
4. ``sqeval score`` with ``--noisy`` on one 20-minute triplet at 16 kHz (``long``), whose
   peak memory must stay under 1 GB.

It prints the times, the ratios of the issue's targets, and the peak memory of each run
over all its processes, twice: the summed RSS sampled from /proc every 20 ms, which can
miss a short peak, and the sum of each process's own peak (VmHWM, exact), an upper bound
(Linux only).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RATE = 16000
SEED = 2026

PLAIN_LOOP = r"""
import sys, numpy as np, soundfile as sf, pesq, pystoi, fast_bss_eval
from pathlib import Path
from scipy.signal import get_window
clean, est = Path(sys.argv[1]), Path(sys.argv[2])
eps = np.finfo(float).eps
def db(n, d): return 10 * np.log10((n + eps) / (d + eps))
def si(s, e):
    t = (e @ s + eps) / (s @ s + eps) * s
    return db(t @ t, (e - t) @ (e - t))
def mag(x):
    n = 512; w = get_window("hann", n)
    f = np.lib.stride_tricks.sliding_window_view(x, n)[::128]
    return np.abs(np.fft.rfft(f * w, axis=-1)) / np.sqrt(w @ w)
rows = []
for path in sorted(clean.glob("*.wav")):
    s, fs = sf.read(path); e, _ = sf.read(est / path.name)
    n = min(len(s), len(e)); s, e = s[:n], e[:n]
    lam = (e @ e) / (s @ e); t = lam * s
    q, r = 1 / (1 + np.exp(-e)), 1 / (1 + np.exp(-s))
    rows.append([db(s @ s, (e - s) @ (e - s)), si(s - s.mean(), e - e.mean()), si(s, e),
                 db(t @ t, (e - t) @ (e - t)),
                 float(fast_bss_eval.sdr(s[None], e[None], filter_length=512)[0]),
                 pystoi.stoi(s, e, fs), pystoi.stoi(s, e, fs, extended=True),
                 pesq.pesq(fs, s, e, "wb"), pesq.pesq(fs, s, e, "nb"),
                 np.mean((mag(s) ** 0.3 - mag(e) ** 0.3) ** 2), np.mean(q * np.log(q / r))])
print(len(rows))
"""

PESQ_ONLY = r"""
import sys, soundfile as sf, pesq
from multiprocessing import get_context
from pathlib import Path
clean, est, jobs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
def one(path):
    s, fs = sf.read(path); e, _ = sf.read(est / path.name)
    return pesq.pesq(fs, s, e, "wb"), pesq.pesq(fs, s, e, "nb")
if __name__ == "__main__":
    paths = sorted(clean.glob("*.wav"))
    if jobs == 1:
        out = [one(p) for p in paths]
    else:
        with get_context("spawn").Pool(jobs) as pool:
            out = pool.map(one, paths, chunksize=1)
    print(len(out))
"""


LONG_MINUTES = 20


SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"


def _speech() -> np.ndarray:
    """sample_data's clean speech, end to end.

    Raises:
        SystemExit: sample_data/clean holds no .wav file (not a clone of the repository).
    """
    import soundfile as sf

    source = SAMPLE_DATA / "clean"
    clips = [sf.read(p)[0] for p in sorted(source.glob("*.wav"))]
    if not clips:
        raise SystemExit(f"bench: expected the clean speech of sample_data/ in {source}, found "
                         "no .wav file there; run benchmarks/bench.py from a clone of the "
                         "sqeval repository, which has sample_data/")
    return np.concatenate(clips)


def _check_plain_loop_backend() -> None:
    """Raises SystemExit when fast_bss_eval (the plain loop's SDR) is not installed."""
    from importlib.util import find_spec

    if find_spec("fast_bss_eval") is None:
        raise SystemExit("bench: the plain loop needs fast_bss_eval, which is not installed; "
                         "install the test extra (pip install -e '.[test]', or make "
                         ".venv/.installed-test), or leave 'plain' out of --runs")


def build_long_triplet(folder: Path) -> None:
    """One 20-minute clean/noisy/enhanced triplet: sample_data's speech repeated, noise
    at 5 dB, and an 'enhanced' file with the noise 10 dB lower."""
    import soundfile as sf

    n = LONG_MINUTES * 60 * RATE
    speech = _speech()
    s = np.tile(speech, n // len(speech) + 1)[:n]
    noise = np.random.default_rng(SEED).standard_normal(n)
    noise *= np.sqrt(np.sum(s**2) / np.sum(noise**2) / 10 ** 0.5)
    peak = np.max(np.abs(s + noise))
    for sub, x in (("clean", s), ("noisy", s + noise), ("enhanced", s + np.sqrt(0.1) * noise)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        sf.write(folder / sub / "long.wav", x / peak, RATE, subtype="PCM_16")


def build_corpus(folder: Path, n_files: int) -> None:
    """N pairs of 2–6 s: crops of sample_data's clean speech, with noise at 0–20 dB."""
    import soundfile as sf

    speech = _speech()
    rng = np.random.default_rng(SEED)
    for sub in ("clean", "enhanced"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for k in range(n_files):
        length = int(rng.uniform(2.0, 6.0) * RATE)
        start = rng.integers(0, len(speech) - length)
        s = speech[start:start + length]
        noise = rng.standard_normal(length)
        noise *= np.sqrt(np.sum(s**2) / np.sum(noise**2) / 10 ** (rng.uniform(0, 20) / 10))
        sf.write(folder / "clean" / f"f{k:05d}.wav", s, RATE, subtype="PCM_16")
        sf.write(folder / "enhanced" / f"f{k:05d}.wav", s + 0.3 * noise, RATE, subtype="PCM_16")


def _tree(pid: int) -> tuple[int, list[int]]:
    """Resident memory (bytes) of ``pid`` and all its descendants, and their pids."""
    children: dict[int, list[int]] = {}
    rss = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack, pids = 0, [pid], []
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        pids.append(current)
        stack.extend(children.get(current, []))
    return total, pids


def _high_water_mark(pid: int) -> int:
    """The highest resident memory (bytes) ``pid`` has had so far: the kernel's ``VmHWM``,
    exact, not sampled; 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as stream:
            for line in stream:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def timed(command: list[str]) -> tuple[float, int, int]:
    """Wall time and two peaks of a command's process tree, in bytes:

    - the summed RSS, sampled every 20 ms (a shorter peak can be missed);
    - the sum of each process's own peak (``VmHWM``, which the kernel keeps exactly): an
      upper bound of the tree's peak, as the processes need not peak at the same time.
      Only a rise in a process's last 20 ms before it exits can escape it.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    marks: dict[int, int] = {}
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            total, pids = _tree(process.pid)
            peak = max(peak, total)
            for pid in pids:
                marks[pid] = max(marks.get(pid, 0), _high_water_mark(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    if process.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr.decode()}")
    return elapsed, peak, sum(marks.values())


RUNS = ("jobs1", "cores", "cold", "warm", "plain", "pesq1", "pesqall", "long")


def _arguments(argv) -> argparse.Namespace:
    """The options, with ``runs`` as the list of run keys; checked before anything is built.

    Raises:
        SystemExit: an unknown run, or the plain loop without fast_bss_eval.
    """
    parser = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200, help="pairs in the corpus (200)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="'all cores' for this run (default: every core)")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the corpus here")
    parser.add_argument("--runs", default="every", help="comma-separated subset of: "
                        f"{', '.join(RUNS)} (default: every run)")
    parser.add_argument("-m", "--metrics", default=None,
                        help="metrics for the sqeval runs, as sqeval score --metrics (default: "
                             "the default set, which the plain loop and PESQ-only runs match)")
    args = parser.parse_args(argv)
    args.runs = list(RUNS) if args.runs == "every" else [k.strip() for k in args.runs.split(",")]
    unknown = [key for key in args.runs if key not in RUNS]
    if unknown:
        parser.error(f"unknown run(s) {', '.join(unknown)}; choose from {', '.join(RUNS)}")
    if "plain" in args.runs:
        _check_plain_loop_backend()
    return args


def _commands(args: argparse.Namespace, folder: Path) -> dict[str, tuple[str, list[str]]]:
    """Run key → (label, command), on the corpus in ``folder``."""
    long = folder / "long"
    clean, enhanced = str(folder / "clean"), str(folder / "enhanced")
    py = sys.executable
    scripts = {}
    for name, text in (("plain_loop.py", PLAIN_LOOP), ("pesq_only.py", PESQ_ONLY)):
        scripts[name] = folder / name  # a file, so that spawned pool workers can import it
        scripts[name].write_text(text)
    chosen_metrics = ["--metrics", args.metrics] if args.metrics else []
    score = [py, "-m", "sqeval", "score", clean, enhanced, *chosen_metrics]
    cache = folder / "bench-cache.sqlite"
    cache.unlink(missing_ok=True)
    return {
        "jobs1": ("sqeval --jobs 1", [*score, "--jobs", "1", "--no-cache"]),
        "cores": (f"sqeval --jobs {args.jobs}",
                  [*score, "--jobs", str(args.jobs), "--no-cache"]),
        "cold": (f"sqeval --jobs {args.jobs}, cold cache",
                 [*score, "--jobs", str(args.jobs), "--cache", str(cache)]),
        "warm": (f"sqeval --jobs {args.jobs}, warm cache",
                 [*score, "--jobs", str(args.jobs), "--cache", str(cache)]),
        "plain": ("plain loop (1 core)", [py, str(scripts["plain_loop.py"]), clean, enhanced]),
        "pesq1": ("PESQ only, 1 core", [py, str(scripts["pesq_only.py"]), clean, enhanced, "1"]),
        "pesqall": (f"PESQ only, {args.jobs} cores",
                    [py, str(scripts["pesq_only.py"]), clean, enhanced, str(args.jobs)]),
        "long": (f"sqeval, one {LONG_MINUTES}-minute triplet",
                 [py, "-m", "sqeval", "score", str(long / "clean"), str(long / "enhanced"),
                  "--noisy", str(long / "noisy"), "--no-cache", *chosen_metrics]),
    }


def main(argv=None) -> None:
    """Build the corpus (unless ``--keep`` has one), time the chosen runs, print the tables."""
    args = _arguments(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="sqeval-bench-"))
    if not (folder / "clean").is_dir():
        build_corpus(folder, args.files)
    if "long" in args.runs and not (folder / "long" / "clean").is_dir():
        build_long_triplet(folder / "long")
    runs = _commands(args, folder)
    t, peaks, bounds = {}, {}, {}
    print(f"{args.files} files of 2–6 s at 16 kHz in {folder}; {args.jobs} cores; metrics: "
          f"{args.metrics or 'the default set'}")
    print("| run | seconds | peak memory (MB, all processes, sampled) | sum of each process's "
          "peak (MB, upper bound) |\n|---|---:|---:|---:|")
    for key in args.runs:
        label, command = runs[key]
        t[key], peaks[key], bounds[key] = timed(command)
        print(f"| {label} | {t[key]:.1f} | {peaks[key] / 2**20:.0f} | "
              f"{bounds[key] / 2**20:.0f} |", flush=True)
    _print_targets(t, args.jobs)
    if "long" in peaks:
        print(f"\n{LONG_MINUTES}-minute triplet: peak memory {peaks['long'] / 2**20:.0f} MB "
              f"sampled, at most {bounds['long'] / 2**20:.0f} MB (the sum of each process's "
              "own peak); goal: under 1 GB = 1024 MB")


def _print_targets(t: dict, jobs: int) -> None:
    targets = [
        ("cores", "pesqall", f"default metrics, {jobs} cores ÷ PESQ only, {jobs} cores", "≤ 1.3"),
        ("plain", "jobs1", "plain loop ÷ sqeval --jobs 1", "≥ 1.4"),
        ("plain", "cores", f"plain loop ÷ sqeval --jobs {jobs}", "≥ 2.6"),
        ("warm", "cold", "warm-cache rerun ÷ first run", "< 0.05"),
        ("plain", "pesq1", "plain loop ÷ PESQ only (the ceiling of the 1-core speed-up)", "–"),
        ("plain", "pesqall", f"plain loop ÷ PESQ only on {jobs} cores (ceiling)", "–"),
    ]
    rows = [(label, t[a] / t[b], goal) for a, b, label, goal in targets if a in t and b in t]
    if rows:
        print("\n| ratio | measured | goal |\n|---|---:|---:|")
        for label, value, goal in rows:
            print(f"| {label} | {value:.2f} | {goal} |")


if __name__ == "__main__":
    main()
