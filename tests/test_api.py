"""The HTTP API as its callers see it: keys, roles, other parties' objects, errors, pages, jobs, audit."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from accord.api.app import create_app
from accord.api.auth import (
    Role,
    audit_events,
    authenticate,
    create_key,
    csrf_token_for,
    principal_from_cookie,
    revoke_key,
    session_cookie_for,
)
from accord.api.jobs import create_job
from accord.datasets import repository, service
from accord.errors import Unauthenticated, ValidationError
from accord.jobs.worker import run_until_idle
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.registry.importer import import_delivery
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.settings import Settings
from accord.signing import ensure_operator_key
from tests.deliveries import MIDI_A, catalog_agreement, small_catalog, write_delivery

LABEL_ISRC, OTHER_ISRC = "GBXYZ2600002", "GBOTH2600001"  # LABEL_ISRC is in the shared manifest


# ---------------------------------------------------------------- keys


def test_a_key_is_stored_only_as_its_hash_and_shown_once(store: Store) -> None:
    key, secret = create_key(store, role="rights_holder", party_id="P-LABEL", label="ingest")
    assert secret.startswith(f"acc_{key.key_id}_")
    with store.engine.connect() as conn:
        row = conn.execute(select(Base.metadata.tables["api_keys"])).mappings().one()
    assert secret not in json.dumps(dict(row), default=str)
    assert row["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert authenticate(store, secret).party_id == "P-LABEL"


def test_a_revoked_key_and_its_sessions_are_refused(store: Store, settings: Settings) -> None:
    key, secret = create_key(store, role=Role.CREATOR, party_id="ana")
    cookie = session_cookie_for(secret, settings)
    assert principal_from_cookie(store, cookie, settings).key_id == key.key_id
    revoke_key(store, key.key_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        authenticate(store, secret)
    with pytest.raises(Unauthenticated, match="revoked"):
        principal_from_cookie(store, cookie, settings)


def test_wrong_secrets_forged_cookies_and_unknown_roles_are_refused(store: Store, settings: Settings) -> None:
    _, secret = create_key(store, role="operator", party_id="ops")
    with pytest.raises(Unauthenticated):
        authenticate(store, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    with pytest.raises(Unauthenticated):
        authenticate(store, "not-a-key")
    forged = session_cookie_for(secret, settings).rsplit(".", 1)[0] + "." + "0" * 64
    with pytest.raises(Unauthenticated):
        principal_from_cookie(store, forged, settings)
    with pytest.raises(ValidationError, match="role"):
        create_key(store, role="admin", party_id="x")


def test_the_apikey_commands_create_list_and_revoke(store: Store, settings: Settings) -> None:
    from typer.testing import CliRunner

    from accord.cli import app

    runner = CliRunner()
    made = runner.invoke(app, ["apikey", "create", "--role", "creator", "--party", "ana", "--json"])
    assert made.exit_code == 0, made.output
    data = json.loads(made.output)
    assert authenticate(store, data["secret"]).party_id == "ana"
    listed = runner.invoke(app, ["apikey", "list", "--json"])
    assert data["secret"] not in listed.output and json.loads(listed.output)[0]["key_id"] == data["key_id"]
    assert runner.invoke(app, ["apikey", "revoke", data["key_id"]]).exit_code == 0
    with pytest.raises(Unauthenticated):
        authenticate(store, data["secret"])
    bad = runner.invoke(app, ["apikey", "create", "--role", "admin", "--party", "x"])
    assert bad.exit_code == 2 and "role" in bad.output


# ---------------------------------------------------------------- a small world


def _other_delivery() -> dict[str, Any]:
    return {
        "accord_delivery": "1.0",
        "delivery_id": "OTHER-001",
        "sender": "P-OTHER",
        "created": "2026-10-02T00:00:00Z",
        "sources": [{"id": "src-o", "title": "Other masters", "origin": "tests", "terms": "test only"}],
        "parties": [
            {"id": "P-OTHER", "kind": "label", "name": "Other Label"},
            {"id": "P-OPUB", "kind": "publisher", "name": "Other Publishing"},
        ],
        "works": [{"id": "W-O", "title": "Other Song", "writers": [], "shares": [{"party": "P-OPUB", "share": "100"}]}],
        "recordings": [
            {
                "isrc": OTHER_ISRC,
                "title": "Other Song",
                "artists": [],
                "duration_ms": 90000,
                "genre": "jig",
                "works": ["W-O"],
                "shares": [{"party": "P-OTHER", "share": "100"}],
                "media": [{"path": "media/o.mid", "kind": "midi"}],
                "source": "src-o",
            }
        ],
        "agreements": [
            catalog_agreement("AGR-O", "P-OTHER", "master"),
            catalog_agreement("AGR-OP", "P-OPUB", "publishing"),
        ],
        "optouts": [
            {
                "id": "OPT-O",
                "party": "P-OTHER",
                "scope": "recording",
                "target": OTHER_ISRC,
                "uses": ["remix"],
                "effective": "2026-06-01",
            }
        ],
    }


@pytest.fixture
def world(store: Store, settings: Settings, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Two labels, two creators, an operator; manifests, models, an output and a job of each kind."""
    from tests.deliveries import MIDI_A

    import_delivery(store, write_delivery(tmp_path / "label", small_catalog()))
    import_delivery(store, write_delivery(tmp_path / "other", _other_delivery(), {"media/o.mid": MIDI_A + b"\x01"}))
    key, _ = ensure_operator_key(settings.home)
    now = store.clock()
    shared, _, _ = service.build(store, key, use="train", as_of=now, territory="GB")
    only_other, _, _ = service.build(
        store, key, use="train", as_of=now, territory="GB", filters=(("isrc", (OTHER_ISRC,)),)
    )
    repository.register_model(store, "m-shared", shared.root, card={"note": "shared"}, actor="t")
    repository.register_model(store, "m-other", only_other.root, card={"note": "other"}, actor="t")
    plans = parse_plans(settings.plans)
    for cid in ("ana", "bob"):
        outputs.add_creator(store, cid, "pro", "GB", plans)
    files = {
        kind: {"sha256": store.media.put_bytes(data), "name": f"OUT-ANA.{ext}"}
        for kind, data, ext in (
            ("midi", MIDI_A, "mid"),
            ("audio", b"RIFF....WAVE", "wav"),
            ("pianoroll", b"\x89PNG....", "png"),
            ("credential", b'{"a": 1}', "credential.json"),
        )
    }
    out = outputs.Output("OUT-ANA", "m-shared", "ana", store.clock(), {"style": "reel"}, 1, files, {"x": 1})
    outputs.save_output(store, out)
    attribution = {
        "status": "computed",
        "reliable": True,
        "items": [{"isrc": LABEL_ISRC, "weight_ppm": 600_000}],
        "unattributed_ppm": 400_000,
    }
    attributed = outputs.Output(
        "OUT-ATTR", "m-shared", "bob", store.clock(), {"style": "reel"}, 2, files, {"attribution": attribution}
    )
    outputs.save_output(store, attributed)
    job = create_job(store, "generation", "ana", {"model_id": "m-shared"})
    secrets = {
        name: create_key(store, role=role, party_id=party)[1]
        for name, role, party in (
            ("label", "rights_holder", "P-LABEL"),
            ("other", "rights_holder", "P-OTHER"),
            ("ana", "creator", "ana"),
            ("bob", "creator", "bob"),
            ("ops", "operator", "ops"),
        )
    }
    app = create_app(settings, store=store)
    with TestClient(app) as client:
        yield {
            "client": client,
            "keys": secrets,
            "shared": shared.root,
            "other_root": only_other.root,
            "job": job.job_id,
            "store": store,
        }


def h(world: dict[str, Any], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world['keys'][who]}"}


def test_every_endpoint_needs_a_key(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]
    schema = c.get("/openapi.json").json()
    for path, ops in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        url = path.replace("{", "").replace("}", "")
        for method in ops:
            r = c.request(method.upper(), url)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["error"]["code"] == "unauthenticated"
    bad = c.get("/v1/me", headers={"Authorization": "Bearer acc_0000000000000000_" + "x" * 43})
    assert bad.status_code == 401


def test_a_revoked_key_is_refused_by_the_api(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]
    assert c.get("/v1/me", headers=h(world, "label")).json()["party_id"] == "P-LABEL"
    key_id = world["keys"]["label"].split("_")[1]
    assert c.post(f"/v1/api-keys/{key_id}/revoke", headers=h(world, "ops")).status_code == 200
    r = c.get("/v1/me", headers=h(world, "label"))
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_a_session_cookie_works_like_the_key(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]
    store: Store = world["store"]
    cookie = session_cookie_for(world["keys"]["other"], c.app.state.settings)  # type: ignore[attr-defined]
    c.cookies.set("accord_session", cookie)
    assert c.get("/v1/me").json()["party_id"] == "P-OTHER"
    c.cookies.set("accord_session", cookie[:-2] + "00")
    assert c.get("/v1/me").status_code == 401
    c.cookies.clear()
    assert store is not None


def test_a_proof_verifies_through_the_api_only_against_the_operator_key(
    world: dict[str, Any], settings: Settings
) -> None:
    c: TestClient = world["client"]
    proof = c.get(f"/v1/manifests/{world['shared']}/proofs/{LABEL_ISRC}", headers=h(world, "label")).json()
    body = {"proof": proof, "root": world["shared"]}
    refused = c.post("/v1/proofs/verify", headers=h(world, "label"), json=body)
    assert refused.status_code in (400, 422) and "public_key" in refused.text
    key = ensure_operator_key(settings.home)[0].public_hex
    verdict = c.post("/v1/proofs/verify", headers=h(world, "label"), json={**body, "public_key": key}).json()
    assert verdict["valid"] is True and verdict["kind"] == "inclusion"
    other = "11" * 32
    verdict = c.post("/v1/proofs/verify", headers=h(world, "label"), json={**body, "public_key": other}).json()
    assert verdict["valid"] is False


def test_a_rights_holder_sees_only_its_own(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]
    recs = c.get("/v1/recordings", headers=h(world, "label")).json()["items"]
    assert [r["isrc"] for r in recs] == ["GBXYZ2600001", "GBXYZ2600002"]
    assert set(recs[0]["eligibility"]) == {"train", "generate", "remix"}
    assert recs[0]["eligibility"]["remix"]["eligible"] is False and recs[0]["eligibility"]["remix"]["reasons"]
    assert [a["id"] for a in c.get("/v1/agreements", headers=h(world, "label")).json()["items"]] == ["AGR-M"]
    assert [o["id"] for o in c.get("/v1/optouts", headers=h(world, "other")).json()["items"]] == ["OPT-O"]
    assert c.get("/v1/optouts", headers=h(world, "label")).json()["items"] == []
    manifests = [m["root"] for m in c.get("/v1/manifests", headers=h(world, "label")).json()["items"]]
    assert manifests == [world["shared"]]
    models = [m["model_id"] for m in c.get("/v1/models", headers=h(world, "label")).json()["items"]]
    assert models == ["m-shared"]
    proofs = c.get(f"/v1/manifests/{world['shared']}/proofs", headers=h(world, "label")).json()["items"]
    assert sorted(p["isrc"] for p in proofs) == ["GBXYZ2600001", "GBXYZ2600002"]
    assert [o["output_id"] for o in c.get("/v1/outputs", headers=h(world, "label")).json()["items"]] == ["OUT-ATTR"]
    assert c.get("/v1/outputs", headers=h(world, "other")).json()["items"] == []
    assert c.get("/v1/deliveries", headers=h(world, "label")).json()["items"][0]["sender"] == "P-LABEL"
    summary = c.get("/v1/catalog/summary", headers=h(world, "label")).json()
    assert summary["recordings"] == 2 and summary["recordings_by_master_owner"] == {"P-LABEL": 2}


def test_a_creator_sees_only_its_outputs_jobs_and_usage_and_no_catalog(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]
    assert [o["output_id"] for o in c.get("/v1/outputs", headers=h(world, "ana")).json()["items"]] == ["OUT-ANA"]
    assert [o["output_id"] for o in c.get("/v1/outputs", headers=h(world, "bob")).json()["items"]] == ["OUT-ATTR"]
    assert c.get("/v1/jobs", headers=h(world, "bob")).json()["items"] == []
    assert len(c.get("/v1/jobs", headers=h(world, "ana")).json()["items"]) == 1
    for path in ("/v1/recordings", "/v1/agreements", "/v1/optouts", "/v1/manifests", "/v1/audit-events", "/v1/taint"):
        r = c.get(path, headers=h(world, "ana"))
        assert r.status_code == 403, path
        assert r.json()["error"]["code"] == "forbidden"


def test_the_operator_sees_everything(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]
    assert len(c.get("/v1/recordings", headers=h(world, "ops")).json()["items"]) == 3
    assert len(c.get("/v1/manifests", headers=h(world, "ops")).json()["items"]) == 2
    assert len(c.get("/v1/outputs", headers=h(world, "ops")).json()["items"]) == 2
    assert c.get(f"/v1/recordings/{OTHER_ISRC}", headers=h(world, "ops")).status_code == 200


# Another party's object, requested by (owner, stranger): the stranger gets 404, worded as for a missing one.
CROSS = [
    ("GET", "/v1/recordings/{OTHER_ISRC}", None, "other", "label"),
    ("GET", "/v1/recordings/{OTHER_ISRC}/eligibility?use=train", None, "other", "label"),
    ("GET", "/v1/agreements/AGR-O", None, "other", "label"),
    ("POST", "/v1/agreements/AGR-O/end", {"at": "2027-01-01"}, "other", "label"),
    ("GET", "/v1/optouts/OPT-O", None, "other", "label"),
    ("GET", "/v1/manifests/{other_root}", None, "other", "label"),
    ("GET", "/v1/manifests/{other_root}/summary", None, "other", "label"),
    ("GET", "/v1/manifests/{other_root}/proofs", None, "other", "label"),
    ("GET", "/v1/manifests/{other_root}/proofs/{OTHER_ISRC}", None, "other", "label"),
    ("GET", "/v1/manifests/{shared}/proofs/{OTHER_ISRC}", None, "other", "label"),
    ("GET", "/v1/models/m-other", None, "other", "label"),
    ("POST", "/v1/models/m-other/approvals", {"approve": True}, "other", "label"),
    ("GET", "/v1/outputs/OUT-ANA", None, "ana", "bob"),
    ("GET", "/v1/outputs/OUT-ANA", None, "ana", "label"),
    ("GET", "/v1/outputs/OUT-ANA/files/pianoroll", None, "ana", "bob"),
    ("GET", "/v1/outputs/OUT-ATTR", None, "label", "other"),
    ("GET", "/v1/outputs/OUT-ATTR/files/pianoroll", None, "label", "other"),
    ("GET", "/v1/outputs/OUT-ANA/stream", None, "ana", "bob"),
    ("POST", "/v1/outputs/OUT-ANA/plays", None, "ana", "bob"),
    ("POST", "/v1/outputs/OUT-ANA/download", None, "ana", "bob"),
    ("GET", "/v1/jobs/{job}", None, "ana", "bob"),
]


def _fill(world: dict[str, Any], path: str) -> str:
    return path.format(OTHER_ISRC=OTHER_ISRC, other_root=world["other_root"], shared=world["shared"], job=world["job"])


def _missing(path: str) -> str:
    """The same request for an object that does not exist."""
    for real, fake in (
        (OTHER_ISRC, "GBNON2699999"),
        ("AGR-O/", "AGR-NOPE/"),
        ("OPT-O", "OPT-NOPE"),
        ("m-other", "m-nope"),
        ("OUT-ANA", "OUT-NOPE"),
    ):
        path = path.replace(real, fake)
    if path.endswith("AGR-O"):
        path = path[: -len("AGR-O")] + "AGR-NOPE"
    return path


@pytest.mark.parametrize(("method", "path", "body", "owner", "stranger"), CROSS, ids=[f"{m} {p}" for m, p, *_ in CROSS])
def test_another_partys_object_answers_404_as_if_it_did_not_exist(
    world: dict[str, Any], method: str, path: str, body: Any, owner: str, stranger: str
) -> None:
    c: TestClient = world["client"]
    url = _fill(world, path)
    r = c.request(method, url, headers=h(world, stranger), json=body)
    assert r.status_code == 404, (url, r.status_code, r.text)
    assert r.json()["error"]["code"] == "not_found"
    assert world["keys"] and "P-OTHER" not in r.text and "ana" not in r.text.replace("AGR-O", "")
    if method == "GET":
        assert c.get(url, headers=h(world, owner)).status_code == 200, url
    missing = _missing(url)
    if missing != url and "{" not in missing:
        m = c.request(method, missing, headers=h(world, stranger), json=body)
        assert m.status_code == 404 and m.json()["error"]["code"] == "not_found"


def test_errors_are_structured_with_the_field_at_fault(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]
    r = c.get("/v1/recordings?limit=0", headers=h(world, "ops"))
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "limit" and r.json()["error"]["code"] == "validation"
    r = c.get("/v1/recordings?cursor=%%%", headers=h(world, "ops"))
    assert r.status_code == 422 and r.json()["error"]["field"] == "cursor"
    r = c.post(
        "/v1/optouts",
        headers=h(world, "label"),
        json={"party": "P-OTHER", "scope": "catalog", "uses": ["all"], "effective": "2026-11-01"},
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "party"
    r = c.post(
        "/v1/optouts",
        headers=h(world, "label"),
        json={"party": "P-LABEL", "scope": "recording", "target": LABEL_ISRC, "uses": ["all"], "effective": "nope"},
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "effective", r.json()
    r = c.get("/v1/recordings/GBXYZ2600001?at=yesterday", headers=h(world, "label"))
    assert r.status_code == 422 and r.json()["error"]["field"] == "at"


def test_lists_are_paged_with_a_cursor(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]
    seen, cursor, pages = [], None, 0
    while True:
        q = "/v1/recordings?limit=1" + (f"&cursor={cursor}" if cursor else "")
        body = c.get(q, headers=h(world, "ops")).json()
        seen += [r["isrc"] for r in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == 3 and pages == 3
    log = c.get("/v1/registry-log?limit=1", headers=h(world, "ops")).json()
    older = c.get(f"/v1/registry-log?limit=1&cursor={log['next_cursor']}", headers=h(world, "ops")).json()
    assert older["items"][0]["pk"] < log["items"][0]["pk"]


def test_an_opt_out_flags_the_models_and_every_change_is_audited(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]

    def train_eligible() -> bool:
        recs = c.get("/v1/recordings", headers=h(world, "label")).json()["items"]
        return bool(next(r for r in recs if r["isrc"] == LABEL_ISRC)["eligibility"]["train"]["eligible"])

    assert train_eligible()
    body = {"party": "P-LABEL", "scope": "recording", "target": LABEL_ISRC, "uses": ["all"], "effective": "2026-11-01"}
    r = c.post("/v1/optouts", headers={**h(world, "label"), "X-Request-ID": "req-42"}, json=body)
    assert r.status_code == 201, r.text
    assert not train_eligible()  # the registry read for lists is re-read after a change
    assert [m["model_id"] for m in r.json()["flagged_models"]] == ["m-shared"]
    c.post("/v1/agreements/AGR-M/end", headers=h(world, "label"), json={"at": "2027-01-01"})
    events = c.get("/v1/audit-events", headers=h(world, "ops")).json()["items"]
    assert [(e["action"], e["party_id"], e["role"]) for e in events] == [
        ("optout.create", "P-LABEL", "rights_holder"),
        ("agreement.end", "P-LABEL", "rights_holder"),
    ]
    assert events[0]["request_id"] == "req-42" and events[0]["object_id"] == r.json()["optout"]["id"]
    status = c.get("/v1/models/m-shared", headers=h(world, "label")).json()["status"]
    assert "train" in status["blocked_uses"]


def test_a_delivery_uploads_as_an_archive_all_or_nothing(world: dict[str, Any], tmp_path: Path) -> None:
    c: TestClient = world["client"]
    doc = small_catalog()
    doc["delivery_id"] = "TEST-002"
    doc["recordings"][1]["title"] = "Second Song (remaster)"
    folder = write_delivery(tmp_path / "up" / "delivery", doc)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(folder, arcname="delivery")
    files = {"archive": ("delivery.tar.gz", buf.getvalue(), "application/gzip")}
    assert c.post("/v1/deliveries", headers=h(world, "other"), files=files).json()["error"]["field"] == "sender"
    r = c.post("/v1/deliveries", headers=h(world, "label"), files=files)
    assert r.status_code == 201, r.text
    assert r.json()["changed"] == {"recordings": 1}
    bad = dict(doc, delivery_id="TEST-003")
    bad["recordings"][0]["shares"] = [{"party": "P-LABEL", "share": "90"}]
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("catalog.json", json.dumps(bad))
        zf.writestr("media/a.mid", (folder / "media/a.mid").read_bytes())
        zf.writestr("media/b.mid", (folder / "media/b.mid").read_bytes())
    r = c.post("/v1/deliveries", headers=h(world, "label"), files={"archive": ("d.zip", zbuf.getvalue())})
    assert r.status_code == 422 and r.json()["error"]["code"] == "rejected" and r.json()["error"]["problems"]
    assert len(c.get("/v1/deliveries", headers=h(world, "label")).json()["items"]) == 2
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../catalog.json", "{}")
    r = c.post("/v1/deliveries", headers=h(world, "ops"), files={"archive": ("e.zip", evil.getvalue())})
    assert r.status_code == 422 and r.json()["error"]["field"] == "archive"


def test_a_creator_streams_plays_and_downloads_within_its_plan(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]
    r = c.get("/v1/outputs/OUT-ANA/stream", headers=h(world, "ana"))
    assert r.status_code == 200 and r.content == b"RIFF....WAVE" and r.headers["accept-ranges"] == "bytes"
    assert "attachment" not in r.headers["content-disposition"]  # a stream, never a download
    assert c.get("/v1/usage", headers=h(world, "ana")).json()["items"] == []  # streaming records nothing
    play = {**h(world, "ana"), "Idempotency-Key": "p1"}
    assert c.post("/v1/outputs/OUT-ANA/plays", headers=play).json() == {"output_id": "OUT-ANA", "recorded": True}
    assert c.post("/v1/outputs/OUT-ANA/plays", headers=play).json() == {"output_id": "OUT-ANA", "recorded": False}
    r = c.post("/v1/outputs/OUT-ANA/download", headers=h(world, "ana"))
    assert r.status_code == 200
    assert sorted(zipfile.ZipFile(io.BytesIO(r.content)).namelist())[0] == "OUT-ANA.credential.json"
    assert c.get("/v1/outputs/OUT-ANA/files/audio", headers=h(world, "ana")).status_code == 403
    assert c.get("/v1/outputs/OUT-ATTR/files/audio", headers=h(world, "label")).content == b"RIFF....WAVE"
    kinds = [e["kind"] for e in c.get("/v1/usage", headers=h(world, "ana")).json()["items"]]
    assert kinds == ["play", "download"]
    assert c.get("/v1/usage", headers=h(world, "bob")).json()["items"] == []


@pytest.mark.parametrize(
    ("asked", "status", "body", "content_range"),
    [
        ("bytes=0-3", 206, b"RIFF", "bytes 0-3/12"),
        ("bytes=8-", 206, b"WAVE", "bytes 8-11/12"),
        ("bytes=-4", 206, b"WAVE", "bytes 8-11/12"),
        ("bytes=4-99", 206, b"....WAVE", "bytes 4-11/12"),
        ("bytes=12-", 416, None, "bytes */12"),
        ("bytes=5-2", 416, None, "bytes */12"),
        ("bytes=-0", 416, None, "bytes */12"),
        ("bytes=x-y", 416, None, "bytes */12"),
        ("bytes=0-1,4-5", 200, b"RIFF....WAVE", None),  # several ranges: the whole file
    ],
)
def test_a_stream_serves_the_byte_range_a_player_asks_for(
    world: dict[str, Any], asked: str, status: int, body: bytes | None, content_range: str | None
) -> None:
    c: TestClient = world["client"]
    for url in ("/v1/outputs/OUT-ANA/stream", "/portal/studio/outputs/OUT-ANA/audio"):
        headers = {**h(world, "ana"), "Range": asked} if url.startswith("/v1") else {"Range": asked}
        if url.startswith("/portal"):
            c.cookies.set("accord_session", session_cookie_for(world["keys"]["ana"], c.app.state.settings))  # type: ignore[attr-defined]
        r = c.get(url, headers=headers)
        c.cookies.clear()
        assert r.status_code == status, (url, r.text)
        assert r.headers.get("content-range") == content_range
        if body is not None:
            assert r.content == body
        else:
            assert r.json()["error"]["code"] == "range_not_satisfiable"
    assert outputs.events(world["store"]) == []


# ---------------------------------------------------------------- attribution errors


def test_no_attribution_error_shows_a_path_on_the_server(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]
    home = str(c.app.state.settings.home)  # type: ignore[attr-defined]
    midi = {"file": ("p.mid", MIDI_A)}
    answers = {
        "untrained model": c.post(
            "/v1/attributions", headers=h(world, "ops"), data={"model_id": "m-shared"}, files=midi
        ),
        "another's model": c.post(
            "/v1/attributions", headers=h(world, "label"), data={"model_id": "m-other"}, files=midi
        ),
        "no such model": c.post("/v1/attributions", headers=h(world, "ana"), data={"model_id": "m-nope"}, files=midi),
        "not midi": c.post(
            "/v1/attributions", headers=h(world, "ops"), data={"model_id": "m-shared"}, files={"file": ("x", b"junk")}
        ),
        "no key": c.post("/v1/attributions", data={"model_id": "m-shared"}, files=midi),
        "index, not operator": c.post("/v1/models/m-shared/attribution-index", headers=h(world, "label"), json={}),
        "index, no such model": c.post("/v1/models/m-nope/attribution-index", headers=h(world, "ops"), json={}),
        "guard, not audio": c.post("/v1/guard/checks", headers=h(world, "ops"), files={"file": ("x", b"junk")}),
    }
    job = c.post("/v1/models/m-shared/attribution-index", headers=h(world, "ops"), json={"methods": ["embedding"]})
    run_until_idle(world["store"], c.app.state.settings)  # type: ignore[attr-defined]  # the worker's turn
    answers["index job of an untrained model"] = c.get(f"/v1/jobs/{job.json()['job_id']}", headers=h(world, "ops"))
    assert answers["untrained model"].status_code == 404
    assert answers["untrained model"].json()["error"]["message"].startswith("model 'm-shared'")
    assert answers["index job of an untrained model"].json()["error"]["code"] == "not_found"
    for what, r in answers.items():
        error = r.json()["error"]
        assert error["code"] and error["message"], what
        assert home not in r.text and "ckpt.pt" not in r.text, (what, r.text)


# ---------------------------------------------------------------- sessions and CSRF


def _session(c: TestClient, secret: str, *, nonce: str | None = None) -> None:
    """Sign the test client in as the portal does: the session cookie (and this browser's CSRF nonce)."""
    settings = c.app.state.settings  # type: ignore[attr-defined]
    c.cookies.clear()
    c.cookies.set("accord_session", session_cookie_for(secret, settings))
    if nonce is not None:
        c.cookies.set("accord_csrf", nonce)


def test_a_session_cookie_without_the_csrf_token_changes_nothing(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]
    store: Store = world["store"]
    label_key = world["keys"]["label"].split("_")[1]
    token = csrf_token_for(c.app.state.settings, "nonce-1")  # type: ignore[attr-defined]
    before = len(audit_events(store))
    for secret, url, headers in (
        (world["keys"]["ops"], f"/v1/api-keys/{label_key}/revoke", {}),
        (world["keys"]["ana"], "/v1/outputs/OUT-ANA/plays", {}),
        (world["keys"]["ana"], "/v1/outputs/OUT-ANA/plays", {"X-CSRF-Token": "0" * 64}),
        (world["keys"]["ana"], "/v1/outputs/OUT-ANA/plays", {"X-CSRF-Token": token}),  # another browser's token
    ):
        _session(c, secret, nonce="nonce-2")
        r = c.post(url, headers=headers)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "csrf" and r.json()["error"]["field"] == "X-CSRF-Token"
    c.cookies.clear()
    assert c.get("/v1/me", headers=h(world, "label")).status_code == 200  # the key was not revoked
    assert outputs.events(store) == [] and len(audit_events(store)) == before  # no play, nothing audited
    _session(c, world["keys"]["ana"], nonce="nonce-1")
    assert c.get("/v1/me").json()["party_id"] == "ana"  # reading needs no token
    played = c.post("/v1/outputs/OUT-ANA/plays", headers={"X-CSRF-Token": token})
    assert played.status_code == 201 and played.json()["recorded"] is True
    _session(c, world["keys"]["ops"], nonce="nonce-1")
    assert c.post(f"/v1/api-keys/{label_key}/revoke", headers={"X-CSRF-Token": token}).status_code == 200
    c.cookies.clear()
    assert c.get("/v1/me", headers=h(world, "label")).status_code == 401
    assert [e["kind"] for e in outputs.events(store)] == ["play"]


def test_a_bearer_key_needs_no_csrf_token(world: dict[str, Any]) -> None:
    c: TestClient = world["client"]
    c.cookies.clear()
    r = c.post("/v1/outputs/OUT-ANA/plays", headers=h(world, "ana"))
    assert r.status_code == 201 and r.json()["recorded"] is True


# ---------------------------------------------------------------- generation as a job (a tiny model)

from tests.test_studio import trained  # noqa: E402,F401  (the fixture that trains a tiny model)


@pytest.mark.slow
def test_generation_runs_as_a_job_submit_poll_fetch(
    store: Store,
    settings: Settings,
    trained: dict[str, Any],  # noqa: F811
) -> None:
    model_id = trained["model"].model_id
    _, secret = create_key(store, role="creator", party_id="ana")
    _, other = create_key(store, role="creator", party_id="bob")
    with TestClient(create_app(settings, store=store)) as c:
        auth = {"Authorization": f"Bearer {secret}"}
        r = c.post("/v1/generations", headers=auth, json={"model_id": model_id, "style": "reel", "bars": 4, "seed": 5})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        assert r.json()["status"] == "queued"  # the API only queues it
        assert c.get(f"/v1/jobs/{job_id}", headers=auth).json()["status"] == "queued"
        (ran,) = run_until_idle(store, settings)  # a worker's turn
        job = c.get(f"/v1/jobs/{job_id}", headers=auth).json()
        assert job["status"] == "done" and job["attempts"] == 1 and ran.job_id == job_id, job
        output_id = job["result"]["output_id"]
        roll = c.get(f"/v1/outputs/{output_id}/files/pianoroll", headers=auth)
        assert roll.status_code == 200 and roll.content.startswith(b"\x89PNG")
        cred = c.get(f"/v1/outputs/{output_id}/files/credential", headers=auth).json()
        assert output_id in json.dumps(cred)
        audio = c.get(f"/v1/outputs/{output_id}/stream", headers=auth)
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
        refused = c.post(f"/v1/outputs/{output_id}/download", headers=auth)  # the free plan streams only
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "refused"
        assert c.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {other}"}).status_code == 404
        check = c.post("/v1/credentials/verify", headers=auth, files={"file": ("a.wav", audio.content)}).json()
        assert check["form"] == "c2pa"
        bad = c.post("/v1/generations", headers=auth, json={"model_id": "nope", "style": "reel", "bars": 4})
        failed = bad.json()["job_id"]
        run_until_idle(store, settings)
        assert c.get(f"/v1/jobs/{failed}", headers=auth).json()["error"]["code"] == "not_found"

        ops = {"Authorization": f"Bearer {create_key(store, role='operator', party_id='ops')[1]}"}
        assert c.post("/v1/trainings", headers=auth, json={"manifest": trained["manifest"].root}).status_code == 403
        body = {"manifest": trained["manifest"].root[:12], "preset": "tiny", "steps": 2, "seed": 9, "model_id": "api-m"}
        training = c.post("/v1/trainings", headers=ops, json=body).json()["job_id"]
        evaluation = c.post(f"/v1/models/{model_id}/evaluations", headers=ops, json={"pieces": 2}).json()["job_id"]
        run_until_idle(store, settings)
        for job_id in (training, evaluation):
            assert c.get(f"/v1/jobs/{job_id}", headers=ops).json()["status"] == "done"
        assert c.get("/v1/models/api-m", headers=ops).json()["manifest_root"] == trained["manifest"].root
        result = c.get(f"/v1/jobs/{evaluation}", headers=ops).json()["result"]
        assert result["held_out_pieces"] >= 0 and "model" in result["likelihood"]


# ---------------------------------------------------------------- royalties


def test_a_month_of_royalties_through_the_api_each_party_seeing_its_own_statement(
    store: Store, settings: Settings
) -> None:
    from tests.test_royalty_run import PERIOD, usage
    from tests.test_royalty_run import world as royalty_world

    royalty_world(store, settings)
    keys = {
        name: {"Authorization": f"Bearer {create_key(store, role=role, party_id=party)[1]}"}
        for name, role, party in (
            ("ops", "operator", "ops"),
            ("label", "rights_holder", "P-LABEL"),
            ("indie", "rights_holder", "P-INDIE"),
        )
    }
    with TestClient(create_app(settings, store=store)) as c:
        assert c.post("/v1/usage-events", headers=keys["label"], json={"events": usage()}).status_code == 403
        r = c.post("/v1/usage-events", headers=keys["ops"], json={"events": usage()})
        assert r.status_code == 201 and r.json()["new"] == 4, r.text
        assert c.post("/v1/usage-events", headers=keys["ops"], json={"events": usage()}).json()["duplicates"] == 4
        run = c.post(f"/v1/royalty-periods/{PERIOD}/runs", headers=keys["ops"])
        assert run.status_code == 201 and run.json()["status"] == "draft", run.text
        assert c.get(f"/v1/statements?period={PERIOD}", headers=keys["label"]).json()["items"] == []  # a draft
        closed = c.post(f"/v1/royalty-periods/{PERIOD}/close", headers=keys["ops"])
        assert closed.status_code == 200 and closed.json()["run"]["status"] == "final", closed.text
        mine = c.get(f"/v1/statements?period={PERIOD}", headers=keys["label"]).json()["items"]
        assert {s["party_id"] for s in mine} == {"P-LABEL"}
        every = c.get(f"/v1/statements?period={PERIOD}", headers=keys["ops"]).json()["items"]
        assert {"P-LABEL", "P-INDIE", "P-PUB"} <= {s["party_id"] for s in every}
        currency = mine[0]["currency"]
        csv = c.get(f"/v1/statements/{PERIOD}/{currency}?format=csv", headers=keys["label"])
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        other = c.get(f"/v1/statements/{PERIOD}/{currency}?format=csv&party=P-LABEL", headers=keys["indie"])
        assert other.status_code == 200 and "P-LABEL" not in other.text  # the party filter is the operator's only
        ledger = c.get("/v1/ledger/verify", headers=keys["ops"]).json()
        assert ledger["valid"] is True and ledger["checked"] > 0
        accounts = [b["account"] for b in c.get("/v1/ledger/balances", headers=keys["label"]).json()["items"]]
        assert accounts and all(a.startswith("P-LABEL:") for a in accounts)
        assert c.post(f"/v1/royalty-periods/{PERIOD}/payouts", headers=keys["ops"]).status_code == 201
        gone = c.post(
            "/v1/ledger/transfers/nope/reverse", headers=keys["ops"], json={"reason": "other", "period": "2026-12"}
        )
        assert gone.status_code == 404
        actions = [e["action"] for e in c.get("/v1/audit-events", headers=keys["ops"]).json()["items"]]
        assert actions == ["usage.ingest", "usage.ingest", "royalty.run", "royalty.close", "royalty.payout"]
