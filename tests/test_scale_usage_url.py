"""``ACCORD_USAGE_URL``: the usage log on a folder every node reads (a path or a ``file://`` URL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli import app
from accord.errors import ValidationError
from accord.registry.store import Store
from accord.royalties.run import compute_period
from accord.royalties.usage import committed_files, ingest_events, usage_dir
from accord.settings import Settings, get_settings
from tests.test_royalty_run import PERIOD, usage, world


@pytest.mark.parametrize("as_url", [False, True])
def test_the_usage_log_is_written_and_read_where_accord_usage_url_says(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_url: bool
) -> None:
    shared = tmp_path / "shared" / "usage"
    monkeypatch.setenv("ACCORD_USAGE_URL", shared.as_uri() if as_url else str(shared))
    elsewhere = get_settings()
    assert usage_dir(elsewhere) == shared and usage_dir(settings) == settings.home / "usage"
    world(store, elsewhere)
    result = ingest_events(store, elsewhere, usage(2))
    assert result.new == 5 and all((shared / f).is_file() for f in result.files)
    assert not (settings.home / "usage").exists()
    assert committed_files(store, elsewhere, PERIOD) == sorted(shared / f for f in result.files)
    run, _, _ = compute_period(store, elsewhere, PERIOD)
    assert run.revenue == {"EUR": 100_000_000}


def test_an_object_store_url_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ACCORD_HOME", str(tmp_path))
    monkeypatch.setenv("ACCORD_USAGE_URL", "s3://bucket/usage")
    with pytest.raises(ValidationError, match=r"^ACCORD_USAGE_URL='s3://bucket/usage': scheme 's3' is not supported"):
        get_settings()
    result = CliRunner().invoke(app, ["usage", "sync"])
    assert result.exit_code == 2 and "ACCORD_USAGE_URL='s3://bucket/usage'" in result.output
    assert "Traceback" not in result.output
