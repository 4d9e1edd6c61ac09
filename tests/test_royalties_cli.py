"""The royalties commands end to end through Typer: ingest, run, statements, close, payout, verify."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from accord.cli import app
from accord.registry.store import Store
from accord.settings import Settings
from tests.test_royalty_run import usage, world

runner = CliRunner()


def accord(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_a_month_from_usage_file_to_verified_ledger(store: Store, settings: Settings, tmp_path: Path) -> None:
    world(store, settings)
    batch = tmp_path / "usage.jsonl"
    batch.write_text("".join(json.dumps(e) + "\n" for e in usage(2)), encoding="utf-8")
    assert "5 new" in accord("usage", "ingest", str(batch))
    assert "0 new, 5 already ingested" in accord("usage", "ingest", str(batch))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**usage()[0], "event_id": "zz", "output_id": "O-404"}) + "\n", encoding="utf-8")
    out = accord("usage", "ingest", str(bad), code=1)
    assert "O-404" in out and "output_id" in out
    run = json.loads(accord("royalties", "run", "--period", "2026-11", "--json"))
    assert run["revenue"] == {"EUR": 100_000_000}
    preview = accord("royalties", "statements", "--period", "2026-11", "--out", str(tmp_path / "preview"))
    assert "preview" in preview and "reconciles" in preview
    assert "closed with run" in accord("royalties", "close", "--period", "2026-11")
    assert "closed" in accord("royalties", "run", "--period", "2026-11", code=2)
    assert "P-LABEL" in accord("royalties", "payout", "--period", "2026-11")
    docs = json.loads(accord("royalties", "statements", "--period", "2026-11", "--out", str(tmp_path / "st"), "--json"))
    assert docs["reconciled"] is True
    assert {Path(p).suffix for p in docs["files"]} == {".csv", ".json", ".html", ".tsv"}
    assert "ledger-head.json" in {Path(p).name for p in docs["files"]}  # the close's signed head, kept with them
    one = json.loads(
        accord(
            "royalties",
            "statements",
            "--period",
            "2026-11",
            "--party",
            "P-INDIE",
            "--out",
            str(tmp_path / "i"),
            "--json",
        )
    )
    assert [s["party_id"] for s in one["statements"]] == ["P-INDIE"]
    assert "ledger intact" in accord("ledger", "verify")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_transfers SET amount = amount + 1 WHERE seq = 2"))
    assert "seq 2" in accord("ledger", "verify", code=1)


def test_the_demo_stage_simulates_a_month_closes_it_and_writes_statements(store: Store, settings: Settings) -> None:
    from accord.cli.royalties import royalties_demo_stage
    from accord.demo.usage import simulate_month

    world(store, settings)
    assert simulate_month(store, "2026-11", seed=3) == simulate_month(store, "2026-11", seed=3)
    assert simulate_month(store, "2026-11", seed=3) != simulate_month(store, "2026-11", seed=4)
    royalties_demo_stage(store, settings)
    folder = settings.home / "statements" / "2026-11"
    assert {p.suffix for p in folder.iterdir()} == {".csv", ".json", ".html", ".tsv"}
    assert len(list(folder.glob("P-*_2026-11_EUR.json"))) == 3
    royalties_demo_stage(store, settings)  # a second demo run leaves the closed period as it was
