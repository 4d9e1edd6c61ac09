"""What every command shares: the console, the store, error handling, date options."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer._click import Context  # Typer vendors Click: its classes, not the click package's
from typer._click.exceptions import ClickException, UsageError
from typer._click.globals import get_current_context
from typer.core import TyperGroup

from accord.errors import AccordError, Rejected, ValidationError
from accord.timeutil import parse_instant, utcnow

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) is imported by the commands that open it
    from accord.registry.store import Store
    from accord.settings import Settings

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK, EXIT_NO, EXIT_ERROR = 0, 1, 2
"""0: done (or yes); 1: a negative answer (not eligible, invalid, rejected with its problems); 2: an error."""
FILE_ERRORS = (OSError, UnicodeError, json.JSONDecodeError)
"""Errors of the files and folders a command is given (not of Accord): one line, exit 2, not "internal"."""


def debugging() -> bool:
    """``accord --debug ...`` or ``ACCORD_DEBUG=1``: show the traceback of any error."""
    ctx = get_current_context(silent=True)
    if ctx is not None and ctx.find_root().params.get("debug"):
        return True
    return os.environ.get("ACCORD_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def one_line(text: object) -> str:
    """A message on one line (an exception's text may hold line breaks)."""
    return " ".join(str(text).split())


def fail(exc: BaseException) -> NoReturn:
    """Report any error as ONE line on stderr and exit: 1 for a rejected input (its problems listed), else 2.

    Accord's own errors print their message (field, value, expectation); errors of the files given
    print what the system said; anything else is a bug: one line saying so and how to see the traceback.
    """
    if debugging():
        err_console.print(escape("".join(traceback.format_exception(exc)).rstrip()), highlight=False)
    if isinstance(exc, Rejected):
        print_rejection(exc, as_json=False)
        raise typer.Exit(EXIT_NO) from None
    if isinstance(exc, AccordError):
        line = one_line(exc)
    elif isinstance(exc, FILE_ERRORS):
        line = one_line(exc)
        if isinstance(exc, UnicodeError):
            line = f"a file is not UTF-8 text ({line})"
    else:
        line = (
            f"internal error ({type(exc).__name__}: {one_line(exc)[:200]}); this is a bug in Accord: "
            "re-run with --debug (or ACCORD_DEBUG=1) for the traceback and report it"
        )
    err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_ERROR) from None


class AccordGroup(TyperGroup):
    """The ``accord`` command group: every error any command raises ends here (see :func:`fail`).

    Typer's own usage errors (unknown option, bad value) keep Click's message and exit 2;
    ``typer.Exit`` passes with its code; an interrupt exits 130 (Typer's own handling).
    """

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, UsageError):
            raise
        except ClickException as exc:  # e.g. a file option Click could not open (its own exit is 1)
            fail(ValidationError(exc.format_message()))
        except Exception as exc:
            fail(exc)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Report an error as one clear line (no traceback) and exit 2; a rejected input lists its problems, exit 1.

    The same as the top-level handler (:class:`AccordGroup`), for commands also run on their own.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except AccordError as exc:
            fail(exc)

    return wrapper


def print_rejection(exc: Rejected, *, as_json: bool) -> None:
    """Every problem of a rejected input: a table for people, JSON for machines."""
    from rich.table import Table

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
    """The registry the settings point at, migrated to the newest schema."""
    from accord.registry.store import Store
    from accord.settings import get_settings

    return Store.open(get_settings())


def use_torch_threads(settings: Settings | None = None) -> int:
    """Give PyTorch the threads ``ACCORD_TORCH_THREADS`` says (default 1; 0 leaves PyTorch's own choice).

    Called by every command that trains, samples or attributes, before PyTorch does any work: on a
    machine whose cores other processes share, one thread per process is many times faster than one
    per core each. Returns the number of threads PyTorch will use.
    """
    import torch

    from accord.settings import get_settings

    wanted = (settings or get_settings()).torch_threads
    if wanted > 0 and torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return int(torch.get_num_threads())


def instant(value: str | None, *, field: str) -> datetime:
    """A CLI date option (``2026-12-01`` or a date-time with offset); ``None`` is now."""
    return utcnow() if value is None else parse_instant(value, field=field)


def print_json(data: Any) -> None:
    """JSON for machines on stdout, plain (no colour, no wrapping)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@contextmanager
def progress_bar(transient: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar fed by ``(stage, done, total)`` callbacks, one task per stage."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

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
