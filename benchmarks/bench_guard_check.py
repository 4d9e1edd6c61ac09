"""``accord guard check`` end to end: one file from a cold process, many files in one call.

    python -m benchmarks.bench_guard_check --home ~/.accord [--runs 5] [--files 20]

Run against a home whose catalog is already indexed (``accord demo``, then ``accord guard
calibrate``, or any ``accord guard check`` once). It measures, in the same run:

* **one file, cold process**: ``accord guard check FILE`` (MIDI, the symbolic and audio reference
  loaded) as a new process, ``--runs`` times: median wall clock and CPU; beside it the floor of any
  command, ``accord --help`` from a cold process.
* **many files, one call**: ``accord guard check F1 … Fn``; the cost per file after the first is
  ``(wall(n files) − wall(1 file)) / (n − 1)``.
* **loading the guard in process**: :meth:`Guard.for_store` as a new process meets it (the listing,
  the symbolic index and the audio reference memory-mapped from their saved folders) against the
  **baseline**, the same call with the saved audio reference and the listing removed, so the
  registry is read (a snapshot) and the landmark index rebuilt from the per-file fingerprint
  caches, which is what every call did before the guard was resident (the symbolic index was
  saved before too). The ratio is baseline ÷ resident.
* **checking in process**: :meth:`Guard.verdict` per MIDI file once loaded (milliseconds).

The files checked are MIDI files of the catalog itself (so each is blocked: exit 1; the timing is
what matters). The load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ACCORD = [sys.executable, "-c", "from accord.cli import app; app()"]


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system of the child) and exit status of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        msg = f"{' '.join(cmd[3:])}: exit {done.returncode}: {done.stderr.decode()[-500:]}"
        raise SystemExit(msg)
    return wall, cpu, done.returncode


def _median_runs(cmd: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu, _ = _timed(cmd, env)
        walls.append(wall)
        cpus.append(cpu)
    return {"wall_s": statistics.median(walls), "best_s": min(walls), "cpu_s": statistics.median(cpus)}


def _catalog_midi(home: Path, count: int) -> list[Path]:
    """``count`` MIDI files of the catalog in ``home`` (as stored in its media store)."""
    from accord.attribution.guard.audio import read_guard_catalog
    from accord.registry.store import Store
    from accord.settings import Settings

    settings = Settings(home=home)
    store = Store.open(settings, migrate=False)
    try:
        listing = read_guard_catalog(store, settings)
    finally:
        store.close()
    paths = sorted(listing.midi.values())
    if not paths:
        raise SystemExit(f"{home}: no catalog MIDI; run accord demo first")
    step = max(1, len(paths) // count)
    return [Path(p) for p in paths[::step][:count]]


def _in_process(home: Path, files: list[Path]) -> dict[str, float]:
    """Resident load, baseline load (saved folders removed) and per-file verdicts, in this process."""
    from accord.attribution.guard import audio as guard_audio
    from accord.attribution.guard import check as guard_check
    from accord.attribution.guard.check import Guard
    from accord.registry.store import Store
    from accord.settings import Settings

    settings = Settings(home=home)
    store = Store.open(settings, migrate=False)
    try:

        def load() -> tuple[float, Guard]:
            guard_check._LOADED.clear()  # as a new process meets it
            guard_audio._LISTINGS.clear()
            started = time.perf_counter()
            guard = Guard.for_store(store, settings, audio=True)
            return time.perf_counter() - started, guard

        load()  # make sure everything is saved
        resident = statistics.median(load()[0] for _ in range(3))
        folder = settings.cache_dir / "guard"
        for saved in folder.glob("audio-*"):  # the symbolic index was saved before too (one .npz, read whole)
            shutil.rmtree(saved)
        for listing in folder.glob("catalog-*.json"):
            listing.unlink()
        baseline, guard = load()  # the registry read, the index and reference rebuilt from per-file caches
        data = [f.read_bytes() for f in files]
        guard.verdict(midi=data[0])
        started = time.perf_counter()
        for d in data:
            guard.verdict(midi=d)
        per_file = (time.perf_counter() - started) / len(data)
    finally:
        store.close()
    return {"resident_load_s": resident, "baseline_load_s": baseline, "verdict_ms": 1000 * per_file}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=os.environ.get("ACCORD_HOME", ""), help="ACCORD_HOME with a catalog.")
    parser.add_argument("--runs", type=int, default=5, help="Cold processes per command (median).")
    parser.add_argument("--files", type=int, default=20, help="Files in the many-files call.")
    args = parser.parse_args(argv)
    if not args.home:
        parser.error("--home: expected the ACCORD_HOME of an indexed catalog (or set ACCORD_HOME)")
    home = Path(args.home).expanduser()
    env = dict(os.environ, ACCORD_HOME=str(home))
    files = _catalog_midi(home, max(args.files, 2))
    one = [*ACCORD, "guard", "check", str(files[0])]
    _timed(one, env)  # warm the OS page cache and the saved folders
    help_run = _median_runs([*ACCORD, "--help"], env, args.runs)
    single = _median_runs(one, env, args.runs)
    many = _median_runs([*ACCORD, "guard", "check", *map(str, files)], env, max(1, args.runs // 2))
    per_file_ms = 1000 * (many["wall_s"] - single["wall_s"]) / (len(files) - 1)
    inner = _in_process(home, files)
    load = os.getloadavg()
    print(f"accord guard check on {home} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)")
    print(f"load average before the in-process part: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| measure | figure |\n|---|---:|")
    print(f"| `accord --help`, cold process (wall / CPU) | {help_run['wall_s']:.3f} s / {help_run['cpu_s']:.3f} s |")
    w, b, c = single["wall_s"], single["best_s"], single["cpu_s"]
    print(f"| `guard check FILE`, cold process (wall / best / CPU) | {w:.3f} s / {b:.3f} s / {c:.3f} s |")
    print(f"| `guard check` of {len(files)} files, one call (wall) | {many['wall_s']:.3f} s |")
    print(f"| per file after the first (CLI) | {per_file_ms:.1f} ms |")
    print(f"| per file, in process (`Guard.verdict`) | {inner['verdict_ms']:.1f} ms |")
    print(f"| load, resident (memory-mapped) | {inner['resident_load_s']:.3f} s |")
    print(f"| load, baseline (registry read, audio reference rebuilt) | {inner['baseline_load_s']:.3f} s |")
    ratio = inner["baseline_load_s"] / max(inner["resident_load_s"], 1e-9)
    print(f"| baseline ÷ resident load | {ratio:.1f}× |")
    print(f"| single check ÷ `--help` (wall) | {single['wall_s'] / help_run['wall_s']:.1f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
