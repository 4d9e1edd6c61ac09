"""What every command shares: the console, the store, error handling, date options."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from accord.errors import AccordError, Rejected
from accord.registry.store import Store
from accord.settings import get_settings
from accord.timeutil import parse_instant, utcnow

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK, EXIT_NO, EXIT_ERROR = 0, 1, 2


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print an Accord error as one clear message (no traceback) and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Rejected as exc:
            print_rejection(exc, as_json=False)
            raise typer.Exit(EXIT_NO) from None
        except AccordError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper


def print_rejection(exc: Rejected, *, as_json: bool) -> None:
    """Every problem of a rejected input: a table for people, JSON for machines."""
    if as_json:
        print_json({"status": "rejected", "problems": [p.to_dict() for p in exc.problems]})
        return
    table = Table(title=str(exc), title_justify="left")
    for col in ("file", "where", "field", "value", "expected", "code"):
        table.add_column(col, overflow="fold")
    for p in exc.problems:
        table.add_row(p.file, p.location, p.field, p.value, p.expected, p.code)
    console.print(table)
    err_console.print(f"[bold red]rejected:[/] {exc}", highlight=False)


def open_store() -> Store:
    return Store.open(get_settings())


def instant(value: str | None, *, field: str) -> datetime:
    """A CLI date option (``2026-12-01`` or a date-time with offset); ``None`` is now."""
    return utcnow() if value is None else parse_instant(value, field=field)


def print_json(data: Any) -> None:
    """JSON for machines on stdout, plain (no colour, no wrapping)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@contextmanager
def progress_bar(transient: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar fed by ``(stage, done, total)`` callbacks, one task per stage."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    with progress:
        yield update
