"""The README's demo, end to end on a small build: build, import, eligibility table, every situation shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli import app
from accord.registry.store import Store
from accord.settings import Settings

runner = CliRunner()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_demo_builds_imports_and_shows_every_situation(settings: Settings, tmp_path: Path) -> None:
    result = runner.invoke(app, ["catalog", "demo", "--limit", "4", "--at", "2026-12-01", "--territory", "US"])
    assert result.exit_code == 0, result.output
    out = result.output
    for code in (
        "no_agreement P-HARBOUR",  # master licensed, publishing not
        "use_not_granted P-TIDEWATER",  # generate but not train
        "agreement_expired P-OLDFIELD",  # expired
        "territory_not_covered P-GREENHILL",  # territory-limited
        "opted_out P-ART-QUINLAN",  # artist opt-out
        "no_agreement P-FENWICK",  # co-owner has not signed
    ):
        assert code in out, code
    catalog = Store.open(settings, migrate=False).snapshot()
    assert len(catalog.recordings) >= 12
    assert all(r.media for r in catalog.recordings.values())
    again = runner.invoke(app, ["catalog", "demo", "--limit", "4", "--no-table"])
    assert again.exit_code == 0 and "already imported" in again.output


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_end_to_end_demo_builds_a_signed_training_set_and_verifies_proofs(settings: Settings) -> None:
    result = runner.invoke(
        app, ["demo", "--limit", "4", "--no-table", "--train-minutes", "0.1", "--preset", "tiny", "--pieces", "2"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "The consented training set" in out and "public training-content summary" in out
    assert "Generated pieces" in out and "refused, as it must be" in out
    assert len(list((settings.home / "outputs").glob("OUT-*/OUT-*.wav"))) == 2
    assert (settings.home / "demo" / "summary" / "summary.md").is_file()
    proofs = sorted((settings.home / "demo" / "proofs" / "P-KESTREL").glob("*.proof.json"))
    assert proofs
    root = json.loads(proofs[0].read_text())["statement"]["manifest_root"]
    key = runner.invoke(app, ["key", "export"]).output.strip()
    verify = runner.invoke(app, ["dataset", "verify", *map(str, proofs), "--root", root, "--public-key", key])
    assert verify.exit_code == 0, verify.output
    tampered = json.loads(proofs[0].read_text())
    tampered["statement"]["tree_size"] += 1
    proofs[0].write_text(json.dumps(tampered))
    verify = runner.invoke(app, ["dataset", "verify", str(proofs[0]), "--root", root, "--public-key", key])
    assert verify.exit_code == 1 and "INVALID" in verify.output
