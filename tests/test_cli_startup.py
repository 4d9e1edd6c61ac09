"""The ``accord`` command starts without importing what its sub-commands need (issue 16).

Structural, not timed: what is imported is checked in a fresh interpreter; the times are in
benchmarks/bench_cli.py and docs/benchmarks.md.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from accord.cli import SUBCOMMANDS, app
from accord.cli.lazy import LazyGroup

HEAVY = ("torch", "fastapi", "sqlalchemy", "alembic", "duckdb", "pyarrow", "numpy", "music21", "matplotlib")
"""Never imported to build the command tree or print the top-level help."""

runner = CliRunner()


def imported_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running ``code``."""
    probe = textwrap.dedent(code) + textwrap.dedent(
        """
        import json, sys
        print("MODULES=" + json.dumps(sorted({m.partition(".")[0] for m in sys.modules})))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES=")))


def test_importing_the_cli_and_printing_its_help_imports_no_heavy_library() -> None:
    modules = imported_after(
        """
        from typer.testing import CliRunner
        from accord.cli import app
        result = CliRunner().invoke(app, ["--help"])
        assert result.exit_code == 0, result.output
        assert "catalog" in result.output and "royalties" in result.output
        """
    )
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


def test_the_version_imports_no_heavy_library() -> None:
    modules = imported_after(
        """
        from typer.testing import CliRunner
        from accord.cli import app
        result = CliRunner().invoke(app, ["--version"])
        assert result.exit_code == 0 and result.output.startswith("accord "), result.output
        """
    )
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


def test_a_sub_command_imports_its_own_module_only_when_invoked() -> None:
    modules = imported_after(
        """
        import sys
        from typer.testing import CliRunner
        from accord.cli import app
        result = CliRunner().invoke(app, ["fx", "--help"])
        assert result.exit_code == 0, result.output
        assert "accord.cli.royalties" in sys.modules
        assert "accord.cli.studio" not in sys.modules and "accord.cli.api" not in sys.modules
        """
    )
    assert "torch" not in modules and "fastapi" not in modules


def test_check_on_a_migrated_registry_does_not_import_alembic(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env["ACCORD_HOME"] = str(tmp_path / "home")  # the embedded default: SQLite in ACCORD_HOME
    check = """
        from typer.testing import CliRunner
        from accord.cli import app
        result = CliRunner().invoke(app, ["check", "USRC17607839", "--use", "train", "--territory", "US"])
        assert result.exit_code == 1 and "NOT ELIGIBLE" in result.output, result.output
        """
    first = imported_after(check, env)  # a new registry: Alembic creates the schema
    again = imported_after(check, env)  # at the newest revision: nothing to migrate
    assert "alembic" in first
    assert "alembic" not in again
    assert again.isdisjoint({"torch", "fastapi", "duckdb", "pyarrow", "numpy", "music21", "matplotlib"})


def test_top_level_help_lists_every_command_with_its_own_first_help_paragraph() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    for sub in SUBCOMMANDS:
        assert sub.name in group.list_commands(None)  # type: ignore[arg-type]
        command = group.get_command(None, sub.name)  # type: ignore[arg-type]  # imports it
        assert command is not None and command.help
        if sub.target:
            assert sub.help == inspect.cleandoc(command.help).split("\n\n")[0].replace("\n", " "), sub.name
    help_text = runner.invoke(app, ["--help"], terminal_width=240).output
    for sub in SUBCOMMANDS:
        assert f" {sub.name} " in help_text


def test_commands_of_other_modules_join_their_group() -> None:
    catalog = runner.invoke(app, ["catalog", "--help"], terminal_width=240)
    model = runner.invoke(app, ["model", "--help"], terminal_width=240)
    assert catalog.exit_code == 0 and " transfer " in catalog.output
    assert model.exit_code == 0 and " evaluate " in model.output


def test_an_unknown_command_is_a_usage_error_that_suggests_the_lazy_name() -> None:
    result = runner.invoke(app, ["catalgo"])
    assert result.exit_code == 2
    assert "catalog" in result.output


@pytest.mark.parametrize("args", [["attribution", "index", "--help"], ["train", "--help"], ["serve", "--help"]])
def test_help_of_a_lazy_command_shows_its_options(args: list[str]) -> None:
    result = runner.invoke(app, args, terminal_width=240)
    assert result.exit_code == 0, result.output
    assert "--" in result.output and "Usage:" in result.output


def test_the_heads_read_from_the_migration_scripts_are_alembics_heads() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from accord.registry.store import MIGRATIONS, migration_heads

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert migration_heads() == frozenset(ScriptDirectory.from_config(cfg).get_heads())
