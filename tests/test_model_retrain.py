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


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_operator_queues_a_retraining_through_the_api_and_the_portal(
    store: Store, settings: Settings, model: dict[str, Any]
) -> None:
    from fastapi.testclient import TestClient

    from accord.api.app import create_app
    from accord.api.auth import CSRF_COOKIE, SESSION_COOKIE, create_key, csrf_token_for, session_cookie_for
    from accord.jobs.queue import get_job

    model_id = model["record"].model_id
    _, ops = create_key(store, role="operator", party_id="ops")
    _, label = create_key(store, role="rights_holder", party_id="P-LABEL")
    with TestClient(create_app(settings, store=store)) as client:
        r = client.post(
            f"/v1/models/{model_id}/retrainings", json={"works": 8}, headers={"Authorization": f"Bearer {ops}"}
        )
        assert r.status_code == 202, r.text
        job = get_job(store, r.json()["job_id"])
        assert job.kind == "retraining" and job.params["model_id"] == model_id and job.params["works"] == 8
        refused = client.post(
            f"/v1/models/{model_id}/retrainings", json={}, headers={"Authorization": f"Bearer {label}"}
        )
        assert refused.status_code == 403
        bad = client.post(
            f"/v1/models/{model_id}/retrainings", json={"works": 0}, headers={"Authorization": f"Bearer {ops}"}
        )
        assert bad.status_code == 422
        client.cookies.set(SESSION_COOKIE, session_cookie_for(ops, settings))
        client.cookies.set(CSRF_COOKIE, "n-1")
        page = client.post(
            f"/portal/operator/models/{model_id}/retrain",
            data={"csrf": csrf_token_for(settings, "n-1")},
            follow_redirects=False,
        )
        assert page.status_code == 303 and "retraining=" in page.headers["location"]
        queued = get_job(store, page.headers["location"].split("retraining=")[1])
        assert queued.kind == "retraining" and queued.params == {"model_id": model_id, "actor": "ops"}
        assert "Retrain" in client.get("/portal/operator/models").text
