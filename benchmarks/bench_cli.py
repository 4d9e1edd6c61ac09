"""CLI start-up: ``accord --help``, ``accord --version`` and ``accord check`` from a cold process; and
``accord generate`` of 30 s of music from a cold process and through a warm worker.

    python -m benchmarks.bench_cli [--runs 10] [--generate-runs 3]

Baseline, measured in the same run: a bare Typer app of the same shape, written to a temporary
file: the same top-level commands and groups with the same one-line helps, the same ``--version``
and ``--debug`` options, each group holding one command, and a ``check`` with the same arguments
that prints one line. It imports nothing but Typer: the floor for a Typer CLI of this shape here.
``accord check`` runs against a registry already migrated (an unknown ISRC, so exit 1: the whole
path, settings, store, snapshot, policy and table, without a catalog to read).

Each figure is the median of ``--runs`` cold processes (wall clock), with the CPU time they used
(user + system, less sensitive to other load); the load average is printed beside them. Accord's
package is byte-compiled first and ``PYTHONDONTWRITEBYTECODE`` is dropped from the children's
environment: an installed Accord starts from its ``.pyc`` files (pip compiles them at install; an
editable install writes them on first run). A development shell that sets that variable and has
never written them compiles every Accord module from source on every start (~10% more instructions
for ``accord check``, measured with Valgrind), which the earlier figures in docs/benchmarks.md included.

``accord generate`` (``--generate-runs``, 0 skips it) runs on a registry the demo builds in a
temporary home, or in ``--home`` (kept for the next run; built there when it holds no model yet):
(``accord demo --limit 3 --train-minutes 0.3 --pieces 0``: a few catalog pieces,
a ``mini`` model trained for 18 s and approved, the guard's index built), 15 bars at
120 bpm in 4/4 (30 s nominal; the rendered length is printed). One untimed generation first
builds what a first generation builds once (the attribution index). Then:

- cold: ``accord generate ... --json`` in a fresh process, wall and CPU (with FluidSynth's), and
  the median of each stage the command reports (``imports``: torch, SciPy, matplotlib and the rest
  of the generation stack; ``load``: reading the checkpoint; ``generate``: sampling);
- warm: one ``accord worker``-like process (:func:`accord.jobs.worker.warm_up`, then
  :func:`accord.jobs.worker.run_until_idle`) runs queued generation jobs one after another; the
  figure is a job's wall time from claim to done, the model already loaded (every job after the
  first);
- baselines in the same run: ``python -c "import torch"`` (the floor of any command that samples
  with PyTorch) and ``accord check`` (the same CLI doing no generation).
"""

from __future__ import annotations

import argparse
import compileall
import inspect
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import typer
import typer.main
from rich.console import Console
from rich.table import Table

import accord
from accord.cli import SUBCOMMANDS, app
from accord.cli.lazy import LazyGroup, resolve

ACCORD = [sys.executable, "-c", "from accord.cli import app; app()"]
ISRC = "USRC17607839"
CHECK = ["check", ISRC, "--use", "train", "--territory", "US"]


def shape() -> list[tuple[str, str, bool]]:
    """``accord``'s top level: (name, one-line help, is a group), in order."""
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    rows = []
    with group.listing():
        for sub in SUBCOMMANDS:
            command = group.get_command(None, sub.name)  # type: ignore[arg-type]
            assert command is not None
            line = inspect.cleandoc(command.help or "").split("\n\n")[0]
            is_group = isinstance(resolve(sub.target), typer.Typer) if sub.target else hasattr(command, "commands")
            rows.append((sub.name, line, is_group))
    return rows


def bare_app(rows: list[tuple[str, str, bool]]) -> str:
    """The source of a bare Typer app with ``rows`` as its top level."""
    lines = [
        "import typer",
        "app = typer.Typer(name='accord', help='Accord (bare).', no_args_is_help=True, pretty_exceptions_enable=False)",
        "@app.callback(invoke_without_command=True)",
        "def main(version: bool = typer.Option(False, '--version'), debug: bool = typer.Option(False, '--debug')):",
        "    if version:",
        "        typer.echo('accord 0')",
        "        raise typer.Exit()",
        "def nothing() -> None:",
        "    typer.echo('done')",
        "def check(isrc: str = typer.Argument(...), use: str = typer.Option(...), territory: str = typer.Option(...),",
        "          at: str = typer.Option(None), as_json: bool = typer.Option(False, '--json')) -> None:",
        "    typer.echo(f'{isrc}: checked for {use} in {territory}')",
        "    raise typer.Exit(1)",
    ]
    for name, line, is_group in rows:
        if name == "check":
            lines.append(f"app.command('check', help={line!r})(check)")
        elif is_group:
            lines.append(f"sub = typer.Typer(help={line!r}, no_args_is_help=True)")
            lines.append("sub.command('show')(nothing)")
            lines.append(f"app.add_typer(sub, name={name!r})")
        else:
            lines.append(f"app.command({name!r}, help={line!r})(nothing)")
    lines.append("app()")
    return "\n".join(lines) + "\n"


def timed(argv: list[str], runs: int, env: dict[str, str]) -> tuple[float, float, float]:
    """Median and best wall seconds over ``runs`` cold processes, and their median CPU seconds."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, check=False)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode not in (0, 1):
            msg = f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}"
            raise RuntimeError(msg)
    return statistics.median(walls), min(walls), statistics.median(cpus)


MODEL_STYLE, CREATOR = "reel", "bench-creator"
GENERATE = ["generate", "--creator", CREATOR, "--style", MODEL_STYLE, "--bars", "15", "--tempo", "120", "--json"]

WARM_WORKER = """
import json, sys, time
from accord.cli.common import use_torch_threads
from accord.jobs.queue import get_job, submit
from accord.jobs.worker import Worker, warm_up
from accord.registry.store import Store
from accord.settings import get_settings

settings = get_settings()
store = Store.open(settings)
use_torch_threads(settings)
warm_up()
model, creator, style, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
worker = Worker(store, settings)
for seed in range(runs + 1):  # the first job loads the model: not counted
    prompt = {"style": style, "key": None, "tempo_bpm": 120, "bars": 15, "from_isrc": None}
    params = {"model_id": model, "creator_id": creator, "seed": 1000 + seed,
              "prompt": prompt | {"prime_bars": 4, "temperature": 0.85}}
    job = submit(store, "generation", creator, params)
    t0 = time.perf_counter()
    done = worker.run_one()
    wall = time.perf_counter() - t0
    assert done is not None and done.status == "done", done
    result = done.result
    print(json.dumps({"wall": wall, "seconds": result["seconds"], "render": result["render"]}))
"""
"""A long-lived worker's steady state: queued generation jobs claimed and run one after another."""


def _run(argv: list[str], env: dict[str, str], *, timeout: float = 1800) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=timeout)
    if done.returncode != 0:
        msg = f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-800:]}"
        raise RuntimeError(msg)
    return done.stdout.decode()


def _models(home: Path) -> list[str]:
    folder = home / "models"
    return sorted(p.name for p in folder.iterdir() if (p / "ckpt.pt").is_file()) if folder.is_dir() else []


def generation_home(env: dict[str, str]) -> str:
    """The demo registry in ``env``'s ACCORD_HOME (built unless a model is there); the id of its model."""
    if not _models(Path(env["ACCORD_HOME"])):
        _run([*ACCORD, "demo", "--limit", "3", "--train-minutes", "0.3", "--pieces", "0", "--no-table"], env)
        _run([*ACCORD, "creator", "add", CREATOR, "--plan", "pro", "--territory", "US"], env)
    models = _models(Path(env["ACCORD_HOME"]))
    if not models:
        msg = "the demo trained no model"
        raise RuntimeError(msg)
    return models[0]


def time_generation(runs: int, env: dict[str, str]) -> dict[str, Any]:
    """Cold ``accord generate`` and warm-worker jobs (see the module's help), with their baselines."""
    model = generation_home(env)
    _run([*ACCORD, *GENERATE, "--model", model, "--seed", "999"], env)  # builds the attribution index once
    walls, cpus, stages, renders = [], [], [], []
    for seed in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = _run([*ACCORD, *GENERATE, "--model", model, "--seed", str(seed)], env)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        report = json.loads(out)
        stages.append(report["seconds"])
        renders.append(report["render"])
    warm_out = _run([sys.executable, "-c", WARM_WORKER, model, CREATOR, MODEL_STYLE, str(runs)], env)
    warm = [json.loads(line) for line in warm_out.splitlines() if line.startswith("{")][1:]
    torch_floor = timed([sys.executable, "-c", "import torch"], runs, env)
    check = timed([*ACCORD, *CHECK], runs, env)
    names = sorted({k for s in stages for k in s})
    return {
        "model": model,
        "cold": (statistics.median(walls), min(walls), statistics.median(cpus)),
        "stages": {k: statistics.median(s.get(k, 0.0) for s in stages) for k in names},
        "warm": statistics.median(w["wall"] for w in warm),
        "warm_best": min(w["wall"] for w in warm),
        "warm_stages": {k: statistics.median(w["seconds"].get(k, 0.0) for w in warm) for k in names},
        "audio": statistics.median(r["seconds_of_audio"] for r in renders + [w["render"] for w in warm]),
        "tokens": (
            statistics.median(r["tokens"] for r in renders),
            statistics.median(w["render"]["tokens"] for w in warm),
        ),
        "tokens_per_s": (
            statistics.median(r["tokens_per_second"] for r in renders),
            statistics.median(w["render"]["tokens_per_second"] for w in warm),
        ),
        "torch": torch_floor,
        "check": check,
    }


def print_generation(console: Console, g: dict[str, Any], runs: int) -> None:
    table = Table(title=f"accord generate, 15 bars at 120 bpm (median {g['audio']:.1f} s of audio), {runs} runs each")
    for col in ("path", "wall (s)", "best (s)", "CPU (s)", "target (s)"):
        table.add_column(col, justify="right")
    wall, best, cpu = g["cold"]
    table.add_row("cold CLI: accord generate", f"{wall:.2f}", f"{best:.2f}", f"{cpu:.2f}", "≤ 2")
    table.add_row("warm worker: one job", f"{g['warm']:.2f}", f"{g['warm_best']:.2f}", "", "≤ 1")
    table.add_row(
        "(python -c 'import torch')", f"{g['torch'][0]:.2f}", f"{g['torch'][1]:.2f}", f"{g['torch'][2]:.2f}", ""
    )
    table.add_row(
        "(accord check, same run)", f"{g['check'][0]:.2f}", f"{g['check'][1]:.2f}", f"{g['check'][2]:.2f}", ""
    )
    console.print(table)
    stages = Table(title="where a generation's time goes (median wall seconds per stage, as the command reports them)")
    stages.add_column("stage")
    stages.add_column("cold CLI", justify="right")
    stages.add_column("warm worker", justify="right")
    for name, value in g["stages"].items():
        stages.add_row(name, f"{value:.3f}", f"{g['warm_stages'].get(name, 0.0):.3f}")
    stages.add_row("(tokens sampled)", *(f"{n:.0f}" for n in g["tokens"]))
    stages.add_row("(sampling tokens/s)", *(f"{n:.0f}" for n in g["tokens_per_s"]))
    console.print(stages)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="cold processes per command")
    parser.add_argument(
        "--generate-runs", type=int, default=3, help="cold accord generate runs and warm worker jobs (0: skip them)"
    )
    parser.add_argument(
        "--home", type=Path, default=None, help="ACCORD_HOME for the generation runs, kept (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    console = Console(width=160)
    compileall.compile_dir(Path(accord.__file__).parent, quiet=1)  # as installed: every module has its .pyc
    with tempfile.TemporaryDirectory(prefix="accord-bench-cli-") as tmp:
        bare = Path(tmp) / "bare_accord.py"
        bare.write_text(bare_app(shape()), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_") and k != "PYTHONDONTWRITEBYTECODE"}
        env["ACCORD_HOME"] = str(Path(tmp) / "home")
        subprocess.run([*ACCORD, *CHECK], env=env, capture_output=True, check=False)  # create and migrate it once
        load_before = os.getloadavg()
        rows = []
        for label, args_ in (("--help", ["--help"]), ("--version", ["--version"]), ("check", CHECK)):
            ours = timed([*ACCORD, *args_], args.runs, env)
            floor = timed([sys.executable, str(bare), *args_], args.runs, env)
            rows.append((label, ours, floor))
        python = timed([sys.executable, "-c", "pass"], args.runs, env)
        generation = None
        if args.generate_runs > 0:
            generation = time_generation(args.generate_runs, env | {"ACCORD_HOME": str(args.home or Path(tmp) / "gen")})
        load_after = os.getloadavg()
    table = Table(
        title=f"CLI start-up ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, median of {args.runs} cold runs)"
    )
    for col in ("accord", "wall (s)", "best (s)", "CPU (s)", "bare Typer wall (s)", "bare CPU (s)", "wall ÷ bare"):
        table.add_column(col, justify="right")
    for label, (wall, best, cpu), (bwall, _, bcpu) in rows:
        table.add_row(
            label, f"{wall:.3f}", f"{best:.3f}", f"{cpu:.3f}", f"{bwall:.3f}", f"{bcpu:.3f}", f"{wall / bwall:.1f}×"
        )
    table.add_row("(python -c pass)", f"{python[0]:.3f}", f"{python[1]:.3f}", f"{python[2]:.3f}", "", "", "")
    console.print(table)
    if generation is not None:
        print_generation(console, generation, args.generate_runs)
    console.print(
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in load_after)
    )


if __name__ == "__main__":
    main()
