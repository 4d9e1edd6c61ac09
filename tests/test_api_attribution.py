"""The guard and attribution over HTTP, and which outputs a rights holder credited by attribution sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from accord.api.app import create_app
from accord.api.auth import audit_events, create_key
from accord.attribution.contract import Attribution, ItemWeight, WorkRef, attribution_problems
from accord.jobs.worker import run_until_idle
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.registry.store import Store
from accord.settings import Settings
from tests.test_guard import N_TUNES, import_catalog, midi_bytes, tune

ROLES = (("ops", "operator", "ops"), ("label", "rights_holder", "P-LABEL"), ("ana", "creator", "ana"))


def _client(store: Store, settings: Settings, **update: Any) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=update), store=store))


def _keys(store: Store, *extra: tuple[str, str, str]) -> dict[str, dict[str, str]]:
    return {
        name: {"Authorization": f"Bearer {create_key(store, role=role, party_id=party)[1]}"}
        for name, role, party in (*ROLES, *extra)
    }


# ---------------------------------------------------------------- the guard


def test_a_copied_catalog_midi_is_blocked_with_public_evidence_and_an_original_is_clear(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    tunes = [midi_bytes(*tune(seed)) for seed in range(1, N_TUNES + 1)]
    import_catalog(store, tmp_path / "delivery", [(f"Tune {i}", "midi", t) for i, t in enumerate(tunes, start=1)])
    keys = _keys(store)
    with _client(store, settings, guard_audio=False) as c:
        copied = c.post("/v1/guard/checks", headers=keys["ana"], files={"file": ("mine.mid", tunes[2], "audio/midi")})
        assert copied.status_code == 200, copied.text
        body = copied.json()
        assert body["status"] == "blocked" and body["kind"] == "midi" and body["checks"] == ["symbolic"]
        top = body["closest"][0]
        assert top["isrc"] == "GBXYZ2600003" and top["title"] == "Tune 3" and top["over_threshold"]
        assert top["score"] >= body["threshold"] and top["catalog_bars"][1] > top["catalog_bars"][0]
        original = midi_bytes(*tune(4242))
        clear = c.post("/v1/guard/checks", headers=keys["label"], files={"file": ("new.mid", original)})
        assert clear.status_code == 200 and clear.json()["status"] == "clear"
        assert not any(e["over_threshold"] for e in clear.json()["closest"])
        junk = c.post("/v1/guard/checks", headers=keys["ops"], files={"file": ("x.txt", b"hello there")})
        assert junk.status_code == 422 and junk.json()["error"]["field"] == "file"
        broken = c.post("/v1/guard/checks", headers=keys["ops"], files={"file": ("x.mid", b"MThd\x00\x00\x00")})
        assert broken.status_code == 422
        assert c.post("/v1/guard/checks", files={"file": ("a.mid", tunes[0])}).status_code == 401
    checks = [e for e in audit_events(store) if e.action == "guard.check"]
    assert [e.detail["status"] for e in checks] == ["blocked", "clear"]
    assert checks[0].party_id == "ana" and len(checks[0].object_id) == 64


# ---------------------------------------------------------------- outputs credited by attribution


def _credential_attribution() -> dict[str, Any]:
    """A computed attribution naming a P-LABEL recording, crediting P-HOLDER (master) and P-PUB (publishing)."""
    attr = Attribution(
        method="embedding",
        method_version="test-1",
        reliable=True,
        unattributed_ppm=400_000,
        items=(ItemWeight("GBXYZ2600001", 600_000, "Tune 1", (WorkRef("W-1", "Tune 1"),)),),
        works=(("W-1", 600_000),),
        master=(("P-HOLDER", 600_000),),
        publishing=(("P-PUB", 600_000),),
        manifest_root="0" * 64,
    )
    data = attr.to_credential()
    assert attribution_problems(data) == []
    return data


def test_a_rights_holder_credited_by_an_outputs_attribution_sees_it_and_another_does_not(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    import_catalog(store, tmp_path / "delivery", [("Tune 1", "midi", midi_bytes(*tune(1)))])
    outputs.add_creator(store, "ana", "pro", "GB", parse_plans(settings.plans))
    credited = outputs.Output(
        "OUT-CREDITED", "m-x", "ana", store.clock(), {}, 1, {}, {"attribution": _credential_attribution()}
    )
    pending = outputs.Output(
        "OUT-PENDING", "m-x", "ana", store.clock(), {}, 2, {}, {"attribution": {"status": "pending"}}
    )
    outputs.save_output(store, credited)
    outputs.save_output(store, pending)
    keys = _keys(
        store,
        ("holder", "rights_holder", "P-HOLDER"),  # credited as master owner; no standing in the registry now
        ("pub", "rights_holder", "P-PUB"),
        ("other", "rights_holder", "P-OTHER"),
    )
    with _client(store, settings) as c:

        def seen(who: str) -> list[str]:
            r = c.get("/v1/outputs", headers=keys[who])
            assert r.status_code == 200, r.text
            return [o["output_id"] for o in r.json()["items"]]

        assert seen("holder") == ["OUT-CREDITED"]
        assert seen("pub") == ["OUT-CREDITED"]
        assert seen("label") == ["OUT-CREDITED"]  # owns the attributed recording
        assert seen("other") == []
        assert seen("ops") == ["OUT-CREDITED", "OUT-PENDING"]
        assert c.get("/v1/outputs/OUT-CREDITED", headers=keys["holder"]).status_code == 200
        hidden = c.get("/v1/outputs/OUT-CREDITED", headers=keys["other"])
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
        assert c.get("/v1/outputs/OUT-PENDING", headers=keys["holder"]).status_code == 404


# ---------------------------------------------------------------- attribution on a tiny model


@pytest.mark.slow
def test_attribution_of_a_midi_and_indexing_a_model_over_the_api(
    store: Store, settings: Settings, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import torch

    from accord.datasets import repository, service
    from accord.registry.importer import import_delivery
    from accord.signing import ensure_operator_key
    from tests.deliveries import catalog_agreement, small_catalog, write_delivery
    from tests.test_studio import tiny_model
    from tests.test_studio import tune as fiddle

    torch.set_num_threads(1)
    doc = small_catalog()
    doc["agreements"].append(catalog_agreement("AGR-P2", "P-PUB2", "publishing"))
    for rec in doc["recordings"]:
        rec["genre"] = "reel"
        rec["media"][0].pop("sha256", None)
    import_delivery(store, write_delivery(tmp_path / "d", doc, {"media/a.mid": fiddle(1), "media/b.mid": fiddle(2)}))
    key = ensure_operator_key(settings.home)[0]
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    record, _ = tiny_model(store, settings, manifest.root, tmp_path_factory)  # trained once per session
    repository.register_model(store, "m-empty", manifest.root, card={}, actor="t")  # registered, never trained
    keys = _keys(store, ("stranger", "rights_holder", "P-NOBODY"))
    piece = fiddle(1)
    with _client(store, settings) as c:
        form = {"model_id": record.model_id, "method": "embedding"}
        r = c.post("/v1/attributions", headers=keys["label"], data=form, files={"file": ("p.mid", piece)})
        assert r.status_code == 200, r.text
        body = r.json()
        assert attribution_problems(body["attribution"]) == [] and body["attribution"]["method"] == "embedding"
        assert {i["isrc"] for i in body["attribution"]["items"]} <= {i.isrc for i in manifest.items}
        assert "details" not in body  # the contract only, as in a public credential
        ops = c.post("/v1/attributions", headers=keys["ops"], data=form, files={"file": ("p.mid", piece)}).json()
        assert ops["attribution"] == body["attribution"] and ops["details"]["items"] == len(manifest.items)
        # a rights holder with nothing in the model's manifest does not learn the model exists
        hidden = c.post("/v1/attributions", headers=keys["stranger"], data=form, files={"file": ("p.mid", piece)})
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
        bad = c.post(
            "/v1/attributions",
            headers=keys["ana"],
            data={**form, "method": "no-such-method"},
            files={"file": ("p.mid", piece)},
        )
        assert bad.status_code == 422
        # indexing: operator only, as a job that names each method's index
        url = f"/v1/models/{record.model_id}/attribution-index"
        assert c.post(url, headers=keys["label"], json={}).status_code == 403
        assert c.post(url, headers=keys["ops"], json={"methods": ["nope"]}).status_code == 422
        job = c.post(url, headers=keys["ops"], json={"methods": ["embedding"]})
        assert job.status_code == 202, job.text
        run_until_idle(store, c.app.state.settings)  # type: ignore[attr-defined]  # a worker's turn
        done = c.get(f"/v1/jobs/{job.json()['job_id']}", headers=keys["ops"]).json()
        assert done["status"] == "done" and done["kind"] == "attribution_index", done
        assert set(done["result"]["methods"]) == {"embedding"} and done["result"]["methods"]["embedding"]["items"] == 2
        failed = c.post("/v1/models/m-empty/attribution-index", headers=keys["ops"], json={"methods": ["embedding"]})
        run_until_idle(store, c.app.state.settings)  # type: ignore[attr-defined]
        gone = c.get(f"/v1/jobs/{failed.json()['job_id']}", headers=keys["ops"]).json()
        assert gone["status"] == "failed" and gone["error"]["code"] == "not_found"
    actions = [e.action for e in audit_events(store)]
    assert actions.count("attribution.compute") == 2 and actions.count("attribution.index.submit") == 2
