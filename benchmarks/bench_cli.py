"""CLI start-up: ``accord --help``, ``accord --version`` and ``accord check`` from a cold process.

    python -m benchmarks.bench_cli [--runs 10]

Baseline, measured in the same run: a bare Typer app of the same shape, written to a temporary
file: the same top-level commands and groups with the same one-line helps, the same ``--version``
and ``--debug`` options, each group holding one command, and a ``check`` with the same arguments
that prints one line. It imports nothing but Typer: the floor for a Typer CLI of this shape here.
``accord check`` runs against a registry already migrated (an unknown ISRC, so exit 1: the whole
path, settings, store, snapshot, policy and table, without a catalog to read).

Each figure is the median of ``--runs`` cold processes (wall clock), with the CPU time they used
(user + system, less sensitive to other load); the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer
import typer.main
from rich.console import Console
from rich.table import Table

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="cold processes per command")
    args = parser.parse_args(argv)
    console = Console(width=160)
    with tempfile.TemporaryDirectory(prefix="accord-bench-cli-") as tmp:
        bare = Path(tmp) / "bare_accord.py"
        bare.write_text(bare_app(shape()), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
        env["ACCORD_HOME"] = str(Path(tmp) / "home")
        subprocess.run([*ACCORD, *CHECK], env=env, capture_output=True, check=False)  # create and migrate it once
        load_before = os.getloadavg()
        rows = []
        for label, args_ in (("--help", ["--help"]), ("--version", ["--version"]), ("check", CHECK)):
            ours = timed([*ACCORD, *args_], args.runs, env)
            floor = timed([sys.executable, str(bare), *args_], args.runs, env)
            rows.append((label, ours, floor))
        python = timed([sys.executable, "-c", "pass"], args.runs, env)
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
    console.print(
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in load_after)
    )


if __name__ == "__main__":
    main()
