"""One-step retraining: after an opt-out, one command builds, diffs, trains, audits, registers and asks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from accord.cli import app
from accord.datasets import repository, service
from accord.jobs.kinds import KINDS
from accord.jobs.queue import submit
from accord.model.audit import latest_audits
from accord.model.retrain import APPROVAL_REQUESTED, retrain_model, successor_id
from accord.outputs.studio import train_on_manifest
from accord.registry.importer import import_delivery
from accord.registry.store import ChangeSet, Store
from accord.settings import Settings
from accord.signing import ensure_operator_key
from tests.deliveries import write_delivery
from tests.factories import optout
from tests.test_model_audit import catalog_with_unseen_works

AUDIT = {"works": 3, "control": 2, "temperatures": (1.0,), "continue_bars": 2}


@pytest.fixture
def model(store: Store, settings: Settings, tmp_path: Path) -> dict[str, Any]:
    doc, media = catalog_with_unseen_works(tmp_path)
    # the publisher approves each model version one by one
    next(a for a in doc["agreements"] if a["id"] == "AGR-P")["model_scope"] = "approved_versions"
    import_delivery(store, write_delivery(tmp_path / "d", doc, media))
    key, _ = ensure_operator_key(settings.home)
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    record, _ = train_on_manifest(store, settings, manifest.root, preset="tiny", steps=6, seed=4)
    return {"manifest": manifest, "record": record, "key": key}


def opt_out_first_recording(store: Store) -> str:
    isrc = sorted(store.snapshot().recordings)[0]
    change = ChangeSet(optouts=(optout("O-1", "P-ARTIST", "recording", isrc, ("train",), store.clock()),))
    store.apply(change, actor="P-ARTIST", action="optout.added")
    return isrc


def test_retraining_after_an_opt_out_drops_the_item_keeps_config_and_seed_audits_registers_and_asks(
    store: Store, settings: Settings, model: dict[str, Any]
) -> None:
    old = model["record"]
    unchanged = retrain_model(store, settings, model["key"], old.model_id, audit_options=AUDIT)
    assert unchanged.new_model_id is None and unchanged.new_root == old.manifest_root  # nothing to do

    gone = opt_out_first_recording(store)
    assert not service.status_of_model(store, old.model_id, store.clock()).can_serve("generate")
    done = retrain_model(store, settings, model["key"], old.model_id, audit_options=AUDIT)
    assert done.new_model_id == successor_id(old.model_id, "tiny", old.manifest_root, done.new_root)
    assert [c["isrc"] for c in done.diff["removed"]] == [gone] and done.diff["added"] == []
    assert any("opt" in why for why in done.diff["removed"][0]["why"])
    new = repository.get_model(store, done.new_model_id)
    assert new.manifest_root == done.new_root != old.manifest_root
    assert gone not in {i.isrc for i in repository.load_manifest(store, new.manifest_root)[0].items}
    for key in ("preset", "steps", "seed", "batch_size", "lr", "threads"):
        assert new.card["hyperparameters"][key] == old.card["hyperparameters"][key], key
    assert new.card["retrained_from"] == {
        "model": old.model_id,
        "manifest": old.manifest_root,
        "added": 0,
        "removed": 1,
        "changed": 0,
    }
    assert new.card["memorisation"]["passed"] is True
    assert latest_audits(store, [new.model_id])[new.model_id]["passed"] is True
    assert done.approvals_requested == ("P-PUB",)
    asked = [e for e in store.audit_log(50) if e.action == APPROVAL_REQUESTED]
    assert [(e.subject, e.detail["licensor"]) for e in asked] == [(new.model_id, "P-PUB")]
    status = service.status_of_model(store, new.model_id, store.clock())
    assert status.pending_approvals == ("P-PUB",) and not status.can_serve("generate")
    repository.record_approval(store, new.model_id, "P-PUB", approve=True, by="P-PUB")
    assert service.status_of_model(store, new.model_id, store.clock()).can_serve("generate")

    again = retrain_model(store, settings, model["key"], old.model_id, audit_options=AUDIT)
    assert again.new_model_id == new.model_id  # a retried job answers with what it registered
    assert len(repository.list_models(store)) == 2


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_cli_shows_the_diff_and_the_job_kind_runs_the_same(
    store: Store, settings: Settings, model: dict[str, Any]
) -> None:
    old = model["record"]
    gone = opt_out_first_recording(store)
    result = CliRunner().invoke(app, ["model", "retrain", old.model_id, "--works", "3", "--control", "2"])
    assert result.exit_code == 0, result.output
    assert gone in result.output and "removed" in result.output and "Approval requested from: P-PUB" in result.output
    assert "Memorisation audit" in result.output
    job = submit(store, "retraining", "operator", {"model_id": old.model_id, "actor": "operator", "works": 3})
    out = KINDS["retraining"](store, settings, job)
    assert out["new_model_id"] in result.output and out["new_root"] == json.loads(json.dumps(out))["new_root"]
    assert len(repository.list_models(store)) == 2  # the job found the version the CLI registered
    bad = CliRunner().invoke(app, ["model", "retrain", "no-such-model"])
    assert bad.exit_code == 2 and "not registered" in bad.output
