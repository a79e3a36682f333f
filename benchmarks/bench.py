"""Benchmark: ``python benchmarks/bench.py [--files N] [--jobs J] [--runs R] [-m METRICS]``.
Not a test, and not part of the package.

Needs a clone of the repository (the speech in its sample_data/) with sqeval installed
with its test-only extra (fast_bss_eval, for the plain loop) and the dnsmos extra
(speechmos, for the DNSMOS loop): ``make .venv/.installed-test``.

Builds, from the speech in sample_data/ (random crops, seeded), N clean/enhanced pairs of
2–4 s ("short") and N of 4–8 s ("long") at 16 kHz, and 25 noisy clips of 4–7 s, then
times, each in a fresh process (whole process: start-up included), by default:

1. ``sqeval score`` (default metrics, all cores, no cache) on the short and on the long
   pairs, and the PESQ wb+nb calls alone on the same pairs and cores (a spawn pool, as
   sqeval's workers): the issue's ratio, sqeval ÷ PESQ only;
2. one pair end to end, ``sqeval score clean.wav enhanced.wav`` (a 3 s pair), 5 times;
3. DNSMOS of the 25 clips: a plain loop of ``speechmos.dnsmos.run`` in one process
   (onnxruntime's default threads), and ``sqeval score --no-reference --metrics dnsmos``
   with ``--jobs 1`` and with all cores;
4. the short pairs with a new cache, then again with that (now warm) cache;
5. 2,000 short pairs (``flat``): the peak memory must not grow with the corpus.

Also on request (``--runs``): ``jobs1`` (sqeval on one core), ``plain`` (a per-file loop
as a user would write it: soundfile, pesq, pystoi, fast_bss_eval, numpy), ``pesq1`` (PESQ
alone on one core), and ``long20`` (one 20-minute triplet, whose peak must stay under
1 GB).

It prints the machine, the times, the ratios against the goals, and the peak memory of
each run over all its processes, twice: the summed RSS sampled from /proc every 20 ms,
which can miss a short peak, and the sum of each process's own peak (VmHWM, exact), an
upper bound (Linux only).
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


def build_corpus(folder: Path, n_files: int, seconds: tuple[float, float],
                 seed: int = SEED) -> None:
    """N clean/enhanced pairs of ``seconds`` (low, high): crops of sample_data's clean
    speech, with white noise at 0–20 dB in the enhanced files."""
    import soundfile as sf

    speech = _speech()
    rng = np.random.default_rng(seed)
    for sub in ("clean", "enhanced"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for k in range(n_files):
        length = int(rng.uniform(*seconds) * RATE)
        start = rng.integers(0, len(speech) - length)
        s = speech[start:start + length]
        noise = rng.standard_normal(length)
        noise *= np.sqrt(np.sum(s**2) / np.sum(noise**2) / 10 ** (rng.uniform(0, 20) / 10))
        sf.write(folder / "clean" / f"f{k:05d}.wav", s, RATE, subtype="PCM_16")
        sf.write(folder / "enhanced" / f"f{k:05d}.wav", s + 0.3 * noise, RATE, subtype="PCM_16")


DNSMOS_CLIPS, DNSMOS_SECONDS = 25, (4.0, 7.0)  # as VoiceBank-DEMAND's test clips

DNSMOS_LOOP = r"""
import sys, soundfile as sf
from pathlib import Path
from speechmos import dnsmos
for path in sorted(Path(sys.argv[1]).glob("*.wav")):
    x, fs = sf.read(path)
    dnsmos.run(x, fs)
"""


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


RUNS = ("short", "pesq-short", "long", "pesq-long", "single", "dnsmos-loop", "dnsmos1",
        "dnsmos", "cold", "warm", "flat", "jobs1", "plain", "pesq1", "long20")
DEFAULT_RUNS = RUNS[:RUNS.index("flat") + 1]
SINGLE_REPEATS = 5
FLAT_FILES = 2000


def _arguments(argv) -> argparse.Namespace:
    """The options, with ``runs`` as the list of run keys; checked before anything is built.

    Raises:
        SystemExit: an unknown run, or a loop whose backend is not installed.
    """
    parser = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=400,
                        help="pairs in the short and in the long corpus (400)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="'all cores' for this run (default: every core)")
    parser.add_argument("--clips", type=int, default=DNSMOS_CLIPS,
                        help=f"clips of 4–7 s for the DNSMOS runs ({DNSMOS_CLIPS})")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the corpora here")
    parser.add_argument("--runs", default="default", help="comma-separated subset of: "
                        f"{', '.join(RUNS)}; 'default' is {DEFAULT_RUNS[0]} to "
                        f"{DEFAULT_RUNS[-1]}, 'every' all of them")
    parser.add_argument("-m", "--metrics", default=None,
                        help="metrics for the sqeval runs on pairs, as sqeval score --metrics "
                             "(default: the default set, which the plain loop and PESQ-only "
                             "runs match)")
    args = parser.parse_args(argv)
    args.runs = (list(DEFAULT_RUNS) if args.runs == "default" else list(RUNS)
                 if args.runs == "every" else [k.strip() for k in args.runs.split(",")])
    unknown = [key for key in args.runs if key not in RUNS]
    if unknown:
        parser.error(f"unknown run(s) {', '.join(unknown)}; choose from {', '.join(RUNS)}")
    if "plain" in args.runs:
        _check_backend("fast_bss_eval", "the plain loop needs fast_bss_eval, which is not "
                       "installed; install the test extra (pip install -e '.[test]', or make "
                       ".venv/.installed-test), or leave 'plain' out of --runs")
    if "dnsmos-loop" in args.runs:
        _check_backend("speechmos", "the DNSMOS loop needs speechmos, which is not installed; "
                       "install the dnsmos extra (pip install -e '.[dnsmos]'), or leave "
                       "'dnsmos-loop' out of --runs")
    return args


def _check_backend(module: str, message: str) -> None:
    """Raises SystemExit with ``message`` when ``module`` (a loop's backend) is missing."""
    from importlib.util import find_spec

    if find_spec(module) is None:
        raise SystemExit(f"bench: {message}")


def _corpora(args: argparse.Namespace, folder: Path) -> None:
    """Build what the chosen runs need and ``folder`` does not hold yet."""
    needs = {"short": ("short", "pesq-short", "single", "cold", "warm", "jobs1", "plain",
                       "pesq1"),
             "long": ("long", "pesq-long"), "scale": ("flat",)}
    sizes = {"short": (args.files, (2.0, 4.0)), "long": (args.files, (4.0, 8.0)),
             "scale": (FLAT_FILES, (2.0, 4.0))}
    for name, runs in needs.items():
        if any(run in args.runs for run in runs) and not (folder / name / "clean").is_dir():
            count, seconds = sizes[name]
            build_corpus(folder / name, count, seconds)
    dnsmos = folder / "dnsmos" / "clips"
    if any(run.startswith("dnsmos") for run in args.runs) and not dnsmos.is_dir():
        build_corpus(folder / "dnsmos", args.clips, DNSMOS_SECONDS, seed=SEED + 1)
        (folder / "dnsmos" / "enhanced").rename(dnsmos)  # noisy speech, rated alone
    if "long20" in args.runs and not (folder / "long20" / "clean").is_dir():
        build_long_triplet(folder / "long20")


def _commands(args: argparse.Namespace, folder: Path) -> dict[str, tuple[str, list]]:
    """Run key → (label, command); the ``single`` run's command is run SINGLE_REPEATS
    times."""
    py = sys.executable
    scripts = {}
    for name, text in (("plain_loop.py", PLAIN_LOOP), ("pesq_only.py", PESQ_ONLY),
                       ("dnsmos_loop.py", DNSMOS_LOOP)):
        scripts[name] = folder / name  # a file, so that spawned pool workers can import it
        scripts[name].write_text(text)
    chosen = ["--metrics", args.metrics] if args.metrics else []
    jobs = str(args.jobs)

    def score(corpus: str, *more: str) -> list[str]:
        return [py, "-m", "sqeval", "score", str(folder / corpus / "clean"),
                str(folder / corpus / "enhanced"), *chosen, *more]

    def pesq_only(corpus: str, cores: str) -> list[str]:
        return [py, str(scripts["pesq_only.py"]), str(folder / corpus / "clean"),
                str(folder / corpus / "enhanced"), cores]

    cache = folder / "bench-cache.sqlite"
    cache.unlink(missing_ok=True)
    pair = [str(folder / "short" / sub / "f00000.wav") for sub in ("clean", "enhanced")]
    clips = str(folder / "dnsmos" / "clips")
    dnsmos = [py, "-m", "sqeval", "score", clips, "--no-reference", "--metrics", "dnsmos",
              "--no-cache"]
    long20 = folder / "long20"
    return {
        "short": (f"sqeval, {args.files} short pairs (2–4 s), --jobs {jobs}",
                  score("short", "--jobs", jobs, "--no-cache")),
        "pesq-short": (f"PESQ only, short pairs, {jobs} processes", pesq_only("short", jobs)),
        "long": (f"sqeval, {args.files} long pairs (4–8 s), --jobs {jobs}",
                 score("long", "--jobs", jobs, "--no-cache")),
        "pesq-long": (f"PESQ only, long pairs, {jobs} processes", pesq_only("long", jobs)),
        "single": ("one 3 s pair, sqeval score clean.wav enhanced.wav",
                   [py, "-m", "sqeval", "score", *pair, *chosen, "--no-cache"]),
        "dnsmos-loop": (f"speechmos.dnsmos.run loop, {args.clips} clips (4–7 s)",
                        [py, str(scripts["dnsmos_loop.py"]), clips]),
        "dnsmos1": ("sqeval DNSMOS, same clips, --jobs 1", [*dnsmos, "--jobs", "1"]),
        "dnsmos": (f"sqeval DNSMOS, same clips, --jobs {jobs}", [*dnsmos, "--jobs", jobs]),
        "cold": (f"sqeval, short pairs, --jobs {jobs}, new cache",
                 score("short", "--jobs", jobs, "--cache", str(cache))),
        "warm": (f"sqeval, short pairs, --jobs {jobs}, warm cache",
                 score("short", "--jobs", jobs, "--cache", str(cache))),
        "flat": (f"sqeval, {FLAT_FILES} short pairs, --jobs {jobs}",
                 score("scale", "--jobs", jobs, "--no-cache")),
        "jobs1": ("sqeval, short pairs, --jobs 1", score("short", "--jobs", "1", "--no-cache")),
        "plain": ("plain loop, short pairs (1 core)",
                  [py, str(scripts["plain_loop.py"]), str(folder / "short" / "clean"),
                   str(folder / "short" / "enhanced")]),
        "pesq1": ("PESQ only, short pairs, 1 process", pesq_only("short", "1")),
        "long20": (f"sqeval, one {LONG_MINUTES}-minute triplet",
                   [py, "-m", "sqeval", "score", str(long20 / "clean"), str(long20 / "enhanced"),
                    "--noisy", str(long20 / "noisy"), "--no-cache", *chosen]),
    }


def machine() -> str:
    """The CPU, its cores, and the versions that the numbers depend on."""
    from importlib.metadata import PackageNotFoundError, version

    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for name in ("sqeval", "numpy", "scipy", "pesq", "onnxruntime"):
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} absent")
    return (f"{model}; {os.cpu_count()} cores; Python {sys.version.split()[0]}; "
            + ", ".join(versions))


def main(argv=None) -> None:
    """Build the corpora (unless ``--keep`` has them), time the chosen runs, print tables."""
    args = _arguments(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="sqeval-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    _corpora(args, folder)
    runs = _commands(args, folder)
    t, peaks, bounds = {}, {}, {}
    print(f"{machine()}\ncorpora in {folder}; {args.jobs} cores; metrics: "
          f"{args.metrics or 'the default set'}")
    print("| run | seconds | peak memory (MB, all processes, sampled) | sum of each process's "
          "peak (MB, upper bound) |\n|---|---:|---:|---:|")
    for key in args.runs:
        label, command = runs[key]
        repeats = SINGLE_REPEATS if key == "single" else 1
        measured = [timed(command) for _ in range(repeats)]
        times = sorted(m[0] for m in measured)
        t[key] = times[len(times) // 2]  # the median
        peaks[key] = max(m[1] for m in measured)
        bounds[key] = max(m[2] for m in measured)
        spread = f" (median of {repeats}; {times[0]:.2f}–{times[-1]:.2f})" if repeats > 1 else ""
        print(f"| {label}{spread} | {t[key]:.2f} | {peaks[key] / 2**20:.0f} | "
              f"{bounds[key] / 2**20:.0f} |", flush=True)
    _print_targets(t, bounds, args)
    if "long20" in peaks:
        print(f"\n{LONG_MINUTES}-minute triplet: peak memory {peaks['long20'] / 2**20:.0f} MB "
              f"sampled, at most {bounds['long20'] / 2**20:.0f} MB (the sum of each process's "
              "own peak); goal: under 1 GB = 1024 MB")


def _print_targets(t: dict, bounds: dict, args: argparse.Namespace) -> None:
    jobs = args.jobs
    rows = []
    for a, b, label, goal in (
            ("short", "pesq-short", f"sqeval ÷ PESQ only, short pairs, {jobs} cores", "≤ 1.15"),
            ("long", "pesq-long", f"sqeval ÷ PESQ only, long pairs, {jobs} cores", "–"),
            ("dnsmos-loop", "dnsmos", f"DNSMOS throughput, sqeval --jobs {jobs} ÷ the "
             "speechmos loop", "≥ 1.5"),
            ("dnsmos-loop", "dnsmos1", "DNSMOS throughput, sqeval --jobs 1 ÷ the speechmos "
             "loop", "≥ 1.0"),
            ("warm", "cold", "warm-cache rerun ÷ first run", "< 0.05"),
            ("plain", "jobs1", "plain loop ÷ sqeval --jobs 1", "–"),
            ("plain", "pesq1", "plain loop ÷ PESQ only, 1 core", "–")):
        if a in t and b in t:
            rows.append((label, f"{t[a] / t[b]:.3f}", goal))
    if "single" in t:
        rows.append(("one pair end to end, seconds (median)", f"{t['single']:.2f}", "≤ 0.8"))
    if "flat" in bounds and "short" in bounds:
        rows.append((f"peak memory, {FLAT_FILES} ÷ {args.files} short pairs (upper bounds)",
                     f"{bounds['flat'] / bounds['short']:.2f}", "flat (≈ 1)"))
    if rows:
        print("\n| measure | measured | goal |\n|---|---:|---:|")
        for label, value, goal in rows:
            print(f"| {label} | {value} | {goal} |")


if __name__ == "__main__":
    main()
