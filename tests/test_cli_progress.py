"""Long CLI steps show progress; PyTorch gets the threads ACCORD_TORCH_THREADS says (issue 16)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from accord.cli import app, common
from accord.registry.store import Store
from accord.settings import Settings
from tests.test_royalty_run import usage as demo_usage
from tests.test_royalty_run import world

runner = CliRunner()


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the CLI's progress bars draw on a terminal (they are transient: drawn as work goes, then cleared)."""
    screen = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=screen, force_terminal=True, width=120))
    return screen


@pytest.fixture
def torch_threads() -> Iterator[None]:
    """Each test starts PyTorch on 2 threads; the suite's own setting (1) is put back after."""
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(1)


def test_usage_ingest_shows_its_stages_in_a_bar(
    store: Store, settings: Settings, tmp_path: Path, bars: io.StringIO
) -> None:
    world(store, settings)
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(e) for e in demo_usage(2)) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["usage", "ingest", str(batch)])
    assert result.exit_code == 0, result.output
    assert "5 events read: 5 new" in result.output
    assert "ingest usage events" in bars.getvalue()
    assert "4/4" in bars.getvalue()  # read, validated, new events found, written


@pytest.mark.usefixtures("settings", "torch_threads")
def test_generate_gives_pytorch_the_threads_of_the_settings_before_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACCORD_TORCH_THREADS", "1")
    result = runner.invoke(app, ["generate", "--model", "M-NONE", "--style", "reel"])
    assert result.exit_code == 2  # no such model: refused after the threads were set
    assert torch.get_num_threads() == 1


@pytest.mark.usefixtures("settings", "torch_threads")
def test_zero_torch_threads_leaves_pytorch_its_own_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCORD_TORCH_THREADS", "0")
    result = runner.invoke(app, ["attribute", __file__, "--model", "M-NONE"])
    assert result.exit_code == 2 and "ACCORD_TORCH_THREADS" not in result.output  # 0 is a valid setting
    assert torch.get_num_threads() == 2


@pytest.mark.usefixtures("settings")
def test_a_negative_torch_thread_count_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCORD_TORCH_THREADS", "-1")
    result = runner.invoke(app, ["train", "--manifest", "00000000"])
    assert result.exit_code == 2
    assert "ACCORD_TORCH_THREADS='-1'" in result.output
