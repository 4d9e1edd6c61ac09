"""Reads kept as rendered and keys kept in process: each answer is what an uncached server would
answer now, for this caller, at this instant, in every process (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import event

from accord.api.app import create_app
from accord.api.auth import audit_events, create_key, revoke_key
from accord.api.readcache import ReadCache, Rendered
from accord.jobs.queue import list_jobs
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.registry import consent
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.settings import Settings
from tests.conftest import TickingClock
from tests.deliveries import MIDI_A, catalog_agreement, small_catalog, write_delivery

SHARED_ISRC, OTHER_ISRC, MISSING_ISRC = "GBXYZ2600002", "GBOTH2600001", "GBXYZ2699999"
AGR_END = datetime(2026, 11, 15, tzinfo=UTC)  # the label's master licence ends then


def _label_catalog() -> dict[str, Any]:
    """The small catalog, with a co-owner that asked not to be named and a master licence that ends."""
    doc = small_catalog()
    doc["parties"].append({"id": "P-HIDDEN", "kind": "label", "name": "Quiet Records", "disclose": False})
    doc["recordings"][1]["shares"] = [{"party": "P-LABEL", "share": "50"}, {"party": "P-HIDDEN", "share": "50"}]
    doc["agreements"] = [
        catalog_agreement("AGR-M", "P-LABEL", "master", end="2026-11-15T00:00:00Z"),
        catalog_agreement("AGR-H", "P-HIDDEN", "master"),
        catalog_agreement("AGR-P", "P-PUB", "publishing"),
    ]
    return doc


def _other_catalog() -> dict[str, Any]:
    return {
        "accord_delivery": "1.0",
        "delivery_id": "OTHER-001",
        "sender": "P-OTHER",
        "created": "2026-10-02T00:00:00Z",
        "parties": [{"id": "P-OTHER", "kind": "label", "name": "Other Label"}],
        "works": [{"id": "W-O", "title": "Other", "writers": [], "shares": [{"party": "P-OTHER", "share": "100"}]}],
        "recordings": [
            {
                "isrc": OTHER_ISRC,
                "title": "Other",
                "artists": [],
                "duration_ms": 90000,
                "works": ["W-O"],
                "shares": [{"party": "P-OTHER", "share": "100"}],
                "media": [{"path": "media/o.mid", "kind": "midi"}],
            }
        ],
        "agreements": [catalog_agreement("AGR-O", "P-OTHER", "master")],
        "optouts": [],
    }


@pytest.fixture
def served(store: Store, settings: Settings, clock: TickingClock, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Two labels, an operator; an API over ``store`` and a second one (another process's) over its own store."""
    import_delivery(store, write_delivery(tmp_path / "label", _label_catalog()))
    import_delivery(store, write_delivery(tmp_path / "other", _other_catalog(), {"media/o.mid": MIDI_A + b"\x01"}))
    keys = {
        name: create_key(store, role=role, party_id=party)[1]
        for name, role, party in (
            ("label", "rights_holder", "P-LABEL"),
            ("other", "rights_holder", "P-OTHER"),
            ("ops", "operator", "ops"),
            ("ana", "creator", "ana"),
        )
    }
    outputs.add_creator(store, "ana", "pro", "GB", parse_plans(settings.plans))
    elsewhere = Store.open(settings, clock=clock, migrate=False)
    with (
        TestClient(create_app(settings, store=store)) as c,
        TestClient(create_app(settings, store=elsewhere)) as c2,
    ):
        yield {
            "client": c,
            "elsewhere": c2,
            "elsewhere_store": elsewhere,
            "keys": keys,
            "store": store,
            "settings": settings,
        }
    elsewhere.close()


def h(served: dict[str, Any], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {served['keys'][who]}"}


def _fresh(served: dict[str, Any], who: str, url: str, **params: str) -> Any:
    """The answer of a server that has cached nothing yet (a new app over the other store)."""
    store: Store = served["elsewhere_store"]
    with TestClient(create_app(served["settings"], store=store)) as c:
        return c.get(url, headers=h(served, who), params=params)


def _statements(store: Store) -> tuple[list[str], Any]:
    seen: list[str] = []

    def log(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(" ".join(sql.lower().split()))

    event.listen(store.engine, "before_cursor_execute", log)
    return seen, log


def test_a_recording_read_again_is_the_same_answer_from_one_query(served: dict[str, Any]) -> None:
    c: TestClient = served["client"]
    at = {"at": "2026-11-10T00:00:00Z"}
    first = c.get(f"/v1/recordings/{SHARED_ISRC}", headers=h(served, "label"), params=at)
    assert first.status_code == 200
    seen, log = _statements(served["store"])
    try:
        again = c.get(f"/v1/recordings/{SHARED_ISRC}", headers=h(served, "label"), params=at)
        page = c.get("/v1/recordings", headers=h(served, "label"), params=at)
        page_again = c.get("/v1/recordings", headers=h(served, "label"), params=at)
    finally:
        event.remove(served["store"].engine, "before_cursor_execute", log)
    assert again.json() == first.json() == _fresh(served, "label", f"/v1/recordings/{SHARED_ISRC}", **at).json()
    assert page_again.json() == page.json() == _fresh(served, "label", "/v1/recordings", **at).json()
    assert len(seen) > 2 and seen[0].startswith("select") and "version_counters" in seen[0]
    assert sum(1 for s in seen if "version_counters" in s) >= 3
    assert seen[-1].startswith("select") and "version_counters" in seen[-1]  # the repeated page: one query


def test_a_key_revoked_by_another_process_is_refused_on_its_next_request(served: dict[str, Any]) -> None:
    c: TestClient = served["client"]
    assert c.get("/v1/me", headers=h(served, "label")).status_code == 200  # the key is now held in this process
    assert c.get("/v1/me", headers=h(served, "label")).status_code == 200
    key_id = served["keys"]["label"].split("_")[1]
    revoke_key(served["elsewhere_store"], key_id)  # not through this process
    for url in ("/v1/me", f"/v1/recordings/{SHARED_ISRC}", "/v1/recordings"):
        r = c.get(url, headers=h(served, "label"))
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"], url
    assert c.get("/v1/me", headers=h(served, "other")).status_code == 200  # other keys still serve


def test_a_registry_write_in_another_process_shows_on_the_next_read(served: dict[str, Any]) -> None:
    c: TestClient = served["client"]
    url, at = f"/v1/recordings/{SHARED_ISRC}", {"at": "2026-11-10T00:00:00Z"}
    before = c.get(url, headers=h(served, "label"), params=at).json()
    assert before["eligibility"]["train"]["eligible"] is True
    optout = {
        "party": "P-LABEL",
        "scope": "recording",
        "target": SHARED_ISRC,
        "uses": ["all"],
        "effective": "2026-06-01",
    }
    consent.record_optout(served["elsewhere_store"], optout, optout_id=None, actor="t")
    after = c.get(url, headers=h(served, "label"), params=at).json()
    assert after["eligibility"]["train"]["eligible"] is False
    assert after == _fresh(served, "label", url, **at).json()
    listed = {i["isrc"]: i for i in c.get("/v1/recordings", headers=h(served, "label"), params=at).json()["items"]}
    assert listed[SHARED_ISRC]["eligibility"]["train"]["eligible"] is False


@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.lists(st.integers(min_value=-20, max_value=20), min_size=1, max_size=4))
def test_an_answer_kept_for_one_instant_is_never_served_for_an_instant_that_decides_otherwise(
    served: dict[str, Any], days: list[int]
) -> None:
    """Instants on both sides of the licence's end, in any order: each answer is the uncached one."""
    c: TestClient = served["client"]
    url = f"/v1/recordings/{SHARED_ISRC}"
    for d in days:
        at = {"at": (AGR_END + timedelta(days=d, hours=1)).isoformat().replace("+00:00", "Z")}
        got = c.get(url, headers=h(served, "label"), params=at).json()
        assert got == _fresh(served, "label", url, **at).json()
        assert got["eligibility"]["train"]["at"] == at["at"]
        assert got["eligibility"]["train"]["eligible"] is (d < 0)


def test_cached_answers_never_cross_callers(served: dict[str, Any]) -> None:
    """The operator's answer (every party named) is kept, yet a label sees the quiet co-owner unnamed,
    and another label gets exactly the answer a missing recording gets, every time it asks."""
    c: TestClient = served["client"]
    url = f"/v1/recordings/{SHARED_ISRC}"
    ops = c.get(url, headers=h(served, "ops"))
    assert "P-HIDDEN" in ops.text and "AGR-H" in ops.text
    for _ in range(2):
        label = c.get(url, headers=h(served, "label"))
        assert label.status_code == 200
        assert "P-HIDDEN" not in label.text and "Quiet Records" not in label.text and "AGR-H" not in label.text
        assert "undisclosed party" in label.text
    missing = c.get(f"/v1/recordings/{MISSING_ISRC}", headers=h(served, "other"))
    assert missing.status_code == 404
    for _ in range(3):
        hidden = c.get(url, headers=h(served, "other"))
        assert hidden.status_code == 404
        assert hidden.json() == {
            "error": {
                **missing.json()["error"],
                "message": missing.json()["error"]["message"].replace(MISSING_ISRC, SHARED_ISRC),
            }
        }
    listed = [i["isrc"] for i in c.get("/v1/recordings", headers=h(served, "other")).json()["items"]]
    assert listed == [OTHER_ISRC]


def test_the_cache_keeps_only_the_newest_registry_counter() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    cache = ReadCache(max_entries=2)
    entry = Rendered((b'{"at":"', b'"}'), (None, None), now)
    cache.put(5, "a", entry)
    assert cache.get(5, "a") is entry
    cache.put(4, "b", entry)  # rendered from an older registry: not kept
    assert cache.get(5, "b") is None
    assert cache.get(6, "a") is None  # the registry moved on
    assert cache.get(5, "a") is None  # and nothing older comes back
    for key in ("x", "y", "z"):
        cache.put(6, key, entry)
    assert cache.get(6, "x") is None and cache.get(6, "z") is entry  # least recently used goes first
    small = ReadCache(max_bytes=3 * entry.nbytes)
    for key in "abcd":
        small.put(1, key, entry)
    assert small.get(1, "a") is None and small.get(1, "d") is entry and small.size == 3 * entry.nbytes
    assert entry.body(now) == b'{"at":"2026-11-01T00:00:00Z"}'
    assert not entry.serves(now, now - timedelta(seconds=1))  # a clock that reads earlier than when rendered


def test_a_generation_sent_again_with_its_idempotency_key_is_one_job_and_one_audit_event(
    served: dict[str, Any],
) -> None:
    c: TestClient = served["client"]
    store: Store = served["store"]
    body = {"model_id": "m-any", "style": "reel", "bars": 4}
    headers = {**h(served, "ana"), "Idempotency-Key": "gen-1"}
    first = c.post("/v1/generations", headers=headers, json=body)
    again = c.post("/v1/generations", headers=headers, json=body)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and first.json()["status"] == "queued"
    assert [j.job_id for j in list_jobs(store)] == [first.json()["job_id"]]
    other = c.post("/v1/generations", headers=headers, json={**body, "bars": 8})  # the key, another request
    assert other.status_code == 409 and other.json()["error"]["code"] == "conflict"
    bob = c.post("/v1/generations", headers={**h(served, "ops"), "Idempotency-Key": "gen-1"}, json=body)
    assert bob.status_code == 422  # an operator names the creator; nothing queued
    plain = [c.post("/v1/generations", headers=h(served, "ana"), json=body) for _ in range(2)]
    assert len({r.json()["job_id"] for r in plain}) == 2  # no key: each request is a job
    jobs = list_jobs(store)
    events = [e for e in audit_events(store) if e.action == "generation.submit"]
    assert len(jobs) == 3 and sorted(e.object_id for e in events) == sorted(j.job_id for j in jobs)
    assert c.get(f"/v1/jobs/{first.json()['job_id']}", headers=h(served, "ana")).json() == first.json()
