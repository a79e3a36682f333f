"""Run the tests that compare numbers (pytest marker ``numeric``) again under every CPU
profile this machine offers, so that no test encodes one CPU's floating-point behaviour.

Floating point differs between CPUs: numpy picks SIMD code for the CPU at run time (its
dispatch levels, e.g. X86_V3 = AVX2/FMA3 and X86_V4 = AVX-512 on x86-64), and OpenBLAS
picks its kernels (generic, Haswell, SkylakeX, ...). A test that passes only under the
profile of the machine it was written on is a test of that machine. This script reads
the levels from numpy itself (``numpy.show_config``: the dispatch targets found on this
CPU, none hard-coded) and runs, one after another:

- ``numpy <level>`` for each level found, highest first: every level above it switched
  off with ``NPY_DISABLE_CPU_FEATURES``; the lowest is numpy's baseline (no dispatched
  SIMD code at all). The first, every level on, is the plain run's profile.
- ``OpenBLAS <kernel>``: ``OPENBLAS_CORETYPE`` set to the generic kernel of the
  architecture (Prescott on x86-64, which OpenBLAS builds without its oldest cores run
  as their generic "Katmai" kernels; ARMV8 on arm64) and, on an x86-64 CPU with AVX2,
  Haswell's; a kernel that the plain run already uses is named and not repeated, and
  an OpenBLAS that does not switch kernels (built without DYNAMIC_ARCH) is said so.

Each profile is checked in a child process before its run (numpy's found levels,
threadpoolctl's OpenBLAS kernel) and named in the log with its pytest summary. A level
or kernel this CPU lacks is never asked for. Exit 0 when every profile passed, else 1.

Usage: ``python scripts/cpu_profiles.py [--max-levels N] [-- PYTEST ARGS]``; the pytest
arguments default to ``-q -m numeric``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

PROBE = """
import json, numpy
simd = _simd()
info = []
try:
    import threadpoolctl
    info = [i.get("architecture") for i in threadpoolctl.threadpool_info()
            if i.get("internal_api") == "openblas"]
except ImportError:  # threadpoolctl comes with librosa's scikit-learn (extra dnsmos)
    info = ["(unknown: no threadpoolctl)"]
print(json.dumps({"numpy": numpy.__version__, "baseline": simd[0], "found": simd[1],
                  "openblas": info}))
"""

SIMD = '''
def _simd():
    """(baseline, found) dispatch targets: numpy >= 1.26 gives them as a dict, older
    releases print them at the end of show_config()."""
    import contextlib, io, numpy
    try:
        table = numpy.show_config(mode="dicts").get("SIMD Extensions", {})
        return list(table.get("baseline", [])), list(table.get("found", []))
    except TypeError:
        pass
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        numpy.show_config()
    lines = {k.strip(): v.strip() for k, _, v in
             (line.partition("=") for line in text.getvalue().splitlines()) if _}
    split = lambda v: [x for x in v.replace(" ", "").split(",") if x and x != "none"]
    return split(lines.get("baseline", "")), split(lines.get("found", ""))
'''


def probe(env: dict) -> dict:
    """numpy's version, baseline and found SIMD levels, and the OpenBLAS kernels, as a
    child process with ``env`` sees them."""
    done = subprocess.run([sys.executable, "-c", SIMD + PROBE], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"cpu_profiles: cannot start numpy under this profile:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            return any(line.startswith("flags") and " avx2" in line for line in info)
    except OSError:
        return False


def profiles(native: dict, max_levels: int) -> list[tuple[str, dict]]:
    """(name, environment changes) of every profile to run, the plain one first."""
    found = native["found"]
    top = f"numpy {found[-1]}" if found else "numpy baseline"
    out = [(f"{top} (every level this CPU has), OpenBLAS {_kernels(native)}", {})]
    cuts = _cuts(found, max_levels)
    for k in cuts:
        name = f"numpy {found[k - 1]}" if k > 0 else f"numpy baseline ({' '.join(native['baseline'])})"
        out.append((name, {"NPY_DISABLE_CPU_FEATURES": " ".join(found[k:])}))
    machine = platform.machine().lower()
    kernels = []
    if machine in ("x86_64", "amd64"):
        kernels = ["Prescott"] + (["Haswell"] if has_avx2() else [])
    elif machine in ("aarch64", "arm64"):
        kernels = ["ARMV8"]
    for kernel in kernels:
        if native["openblas"] and all(k.lower() == kernel.lower() for k in native["openblas"]):
            print(f"cpu_profiles: OpenBLAS {kernel} is the plain run's kernel: covered by it")
            continue
        out.append((f"OpenBLAS {kernel}", {"OPENBLAS_CORETYPE": kernel}))
    return out


def _cuts(found: list[str], max_levels: int) -> list[int]:
    """Where to cut ``found`` (the levels kept are ``found[:k]``), highest first; 0 is the
    baseline. numpy 2.4 and later report levels (X86_V3, X86_V4, AVX512_ICL, ...): one cut
    before each. Older releases list single features (SSSE3 ... AVX2, AVX512F, ...): cut
    where a family begins (AVX-512, then AVX/AVX2/FMA3, else the top feature), so that
    the runs are those a user's CPU differs by, then the baseline."""
    every = list(range(len(found) - 1, -1, -1))
    if len(every) <= max_levels:
        return every
    families = [next((k for k, name in enumerate(found) if name.startswith(prefix)), None)
                for prefix in ("AVX512", "AVX")]
    cuts = sorted({k for k in families if k} | {len(found) - 1}, reverse=True)
    return cuts[:max_levels - 1] + [0]


def _kernels(info: dict) -> str:
    return "/".join(info["openblas"]) or "(not loaded)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-levels", type=int, default=4,
                        help="at most this many numpy levels below the top one")
    parser.add_argument("--skip-plain", action="store_true",
                        help="leave out the profile with every level on (the plain run)")
    parser.add_argument("pytest_args", nargs="*", default=["-q", "-m", "numeric"])
    args = parser.parse_args()
    if args.max_levels < 1:
        parser.error("--max-levels takes a number ≥ 1 (the baseline is always run)")
    base = {k: v for k, v in os.environ.items()
            if k not in ("NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES")}
    native = probe(base)
    print(f"cpu_profiles: numpy {native['numpy']} on {platform.machine()}: baseline "
          f"{native['baseline']}, found {native['found']}; OpenBLAS {_kernels(native)}")
    results = []
    for index, (name, change) in enumerate(profiles(native, args.max_levels)):
        if index == 0 and args.skip_plain:
            continue
        env = {**base, **change}
        seen = probe(env)
        if "NPY_DISABLE_CPU_FEATURES" in change:
            kept = [level for level in native["found"]
                    if level not in change["NPY_DISABLE_CPU_FEATURES"].split()]
            if seen["found"] != kept:  # numpy ignored the variable: this is no such profile
                print(f"cpu_profiles: {name}: numpy kept {seen['found']}, not {kept}")
                results.append((name, 1))
                continue
        if "OPENBLAS_CORETYPE" in change:
            if not seen["openblas"] or any(k.startswith("(") for k in seen["openblas"]):
                print(f"cpu_profiles: {name}: the kernel in use cannot be read "
                      f"({_kernels(seen)}); run it all the same")
            elif seen["openblas"] == native["openblas"]:  # the variable changed nothing
                print(f"cpu_profiles: {name}: not run: this OpenBLAS ({_kernels(seen)}) does "
                      "not switch kernels with OPENBLAS_CORETYPE (built without DYNAMIC_ARCH?)")
                continue
            name = f"{name} (runs {_kernels(seen)} kernels)"  # newer OpenBLAS: Prescott → Katmai
        print(f"\n=== CPU profile: {name} — numpy levels {seen['found'] or 'none'} above "
              f"baseline, OpenBLAS {_kernels(seen)} "
              f"({' '.join(f'{k}={v}' for k, v in change.items()) or 'no variable set'})",
              flush=True)
        code = subprocess.call([sys.executable, "-m", "pytest", *args.pytest_args], env=env)
        results.append((name, code))
    print("\ncpu_profiles: summary")
    for name, code in results:
        print(f"  {'passed' if code == 0 else f'FAILED (pytest exit {code})'}: {name}")
    return 0 if all(code == 0 for _, code in results) else 1


if __name__ == "__main__":
    sys.exit(main())
