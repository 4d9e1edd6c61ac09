"""The ``accord`` command tree, built without importing the commands.

Each sub-command's module (and with it SQLAlchemy, FastAPI, torch, DuckDB ...) is imported only when
that sub-command runs or its own help is asked for. ``accord --help`` lists every command from the
one-line help kept in :class:`Subcommand`, so it imports nothing but Typer and Rich.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from typer._click import Command, Context  # Typer vendors Click: its classes, not the click package's
from typer._click.shell_completion import CompletionItem
from typer.core import TyperCommand
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo

from accord.cli.common import AccordGroup


@dataclass(frozen=True)
class Subcommand:
    """One command of the top-level tree, in the order ``accord --help`` lists them.

    Attributes:
        name: the command's name (``accord NAME``).
        target: ``"module:attribute"``, a Typer app (a command group) or a command function, imported when the
            command runs; ``""`` for a command defined beside the top-level app (its help is its own).
        help: the one line ``accord --help`` shows without importing ``target``; it is the first paragraph
            of the command's own help (tests/test_cli_startup.py keeps the two equal).
        extra: commands of other modules added to this group, as ``(name, "module:function")`` pairs.
    """

    name: str
    target: str = ""
    help: str = ""
    extra: tuple[tuple[str, str], ...] = ()


def resolve(target: str) -> Any:
    """The object a ``"module:attribute"`` target names (importing its module)."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


class LazyGroup(AccordGroup):
    """A command group whose :attr:`subcommands` are imported on first use.

    Until then each is a placeholder holding its name and one-line help, enough for the group's help
    and for shell completion of command names. Errors keep :class:`AccordGroup`'s handling.
    """

    subcommands: tuple[Subcommand, ...] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        eager = dict(self.commands)
        ordered: dict[str, Command] = {}
        self._pending: dict[str, Subcommand] = {}
        for sub in self.subcommands:
            if sub.target:
                ordered[sub.name] = TyperCommand(sub.name, help=sub.help)
                self._pending[sub.name] = sub
            elif sub.name in eager:
                ordered[sub.name] = eager.pop(sub.name)
        ordered.update(eager)  # commands defined beside the app but not placed in the order: last
        self.commands = ordered
        self._listing = False

    @contextmanager
    def listing(self) -> Iterator[None]:
        """While listing the commands (help, completion of names), placeholders do: nothing is imported."""
        before, self._listing = self._listing, True
        try:
            yield
        finally:
            self._listing = before

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        sub = self._pending.get(cmd_name)
        if sub is not None and not self._listing:
            self.commands[cmd_name] = self._load(sub)
            del self._pending[cmd_name]
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Context, formatter: Any) -> None:
        with self.listing():
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: Context, incomplete: str) -> list[CompletionItem]:
        with self.listing():
            return super().shell_complete(ctx, incomplete)

    def _load(self, sub: Subcommand) -> Command:
        target = resolve(sub.target)
        if not isinstance(target, typer.Typer):
            return self._command(sub.name, target)
        group = get_group_from_info(
            TyperInfo(target, name=sub.name),
            pretty_exceptions_short=True,
            suggest_commands=self.suggest_commands,
            rich_markup_mode=self.rich_markup_mode,
        )
        for name, function in sub.extra:
            group.add_command(self._command(name, resolve(function)), name)
        return group

    def _command(self, name: str, function: Any) -> Command:
        return get_command_from_info(
            CommandInfo(name=name, callback=function),
            pretty_exceptions_short=True,
            rich_markup_mode=self.rich_markup_mode,
        )
