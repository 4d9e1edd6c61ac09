"""Reads that cost what they return: recordings and models through the API read their own rows and
stored (materialised) state, and still answer what the policy and the taint audit answer now."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from accord.api import services
from accord.api.auth import Principal, Role
from accord.licensing import LicensingPolicy
from accord.registry.store import Store
from tests.conftest import TickingClock
from tests.test_api import LABEL_ISRC, h, world  # noqa: F401 (world: the API fixture, used by name)


@pytest.fixture
def statements(world: dict[str, Any]) -> Iterator[list[str]]:  # noqa: F811
    """The SQL each request runs, as it runs it."""
    seen: list[str] = []
    engine = world["store"].engine

    def log(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(" ".join(sql.lower().split()))

    event.listen(engine, "before_cursor_execute", log)
    yield seen
    event.remove(engine, "before_cursor_execute", log)


def _pages(c: TestClient, headers: dict[str, str], limit: int) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = c.get("/v1/recordings", headers=headers, params=params).json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


@pytest.mark.parametrize("who,role,party", [("ops", Role.OPERATOR, "ops"), ("label", Role.RIGHTS_HOLDER, "P-LABEL")])
def test_recording_pages_walk_exactly_what_the_caller_may_see_with_the_policys_decisions(
    world: dict[str, Any],  # noqa: F811
    who: str,
    role: Role,
    party: str,
) -> None:
    c: TestClient = world["client"]
    store: Store = world["store"]
    items = _pages(c, h(world, who), limit=1)
    catalog = store.snapshot()
    visible = services.visible_recordings(catalog, Principal("k", role, party))
    assert [i["isrc"] for i in items] == sorted(r.isrc for r in visible)
    policy = LicensingPolicy(catalog)
    for item in items:
        for use, got in item["eligibility"].items():
            want = policy.decide(item["isrc"], use, store.clock(), "US").to_dict()
            assert (got["eligible"], got["relied_on"]) == (want["eligible"], want["relied_on"])
            assert [r["code"] for r in got["reasons"]] == [r["code"] for r in want["reasons"]]


def test_a_second_read_of_a_recording_reads_no_agreement_party_or_opt_out(
    world: dict[str, Any],  # noqa: F811
    statements: list[str],
) -> None:
    c: TestClient = world["client"]
    first = c.get(f"/v1/recordings/{LABEL_ISRC}", headers=h(world, "label"))
    assert first.status_code == 200
    assert any(" from agreements" in s for s in statements)  # decided once, over a snapshot
    statements.clear()
    again = c.get(f"/v1/recordings/{LABEL_ISRC}", headers=h(world, "label"))

    def without_instant(body: dict[str, Any]) -> dict[str, Any]:
        return {use: {k: v for k, v in d.items() if k != "at"} for use, d in body["eligibility"].items()}

    assert without_instant(again.json()) == without_instant(first.json())
    read = [s for s in statements if s.startswith("select")]
    assert read and not any(f" from {t}" in s for s in read for t in ("agreements", "parties", "optouts"))


def test_a_revoked_key_is_refused_on_the_very_next_request(world: dict[str, Any]) -> None:  # noqa: F811
    c: TestClient = world["client"]
    assert c.get("/v1/recordings", headers=h(world, "label")).status_code == 200
    key_id = world["keys"]["label"].split("_")[1]
    assert c.post(f"/v1/api-keys/{key_id}/revoke", headers=h(world, "ops")).status_code == 200
    r = c.get(f"/v1/recordings/{LABEL_ISRC}", headers=h(world, "label"))
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def _blocked(c: TestClient, headers: dict[str, str], model_id: str) -> list[str]:
    models = {m["model_id"]: m for m in c.get("/v1/models", headers=headers).json()["items"]}
    return list(models[model_id]["status"]["blocked_uses"])


def test_the_models_list_reflects_a_new_opt_outs_taint_immediately(world: dict[str, Any]) -> None:  # noqa: F811
    c: TestClient = world["client"]
    ops = h(world, "ops")
    assert _blocked(c, ops, "m-shared") == []  # audited and stored
    assert _blocked(c, ops, "m-shared") == []  # read back
    body = {"party": "P-LABEL", "scope": "recording", "target": LABEL_ISRC, "uses": ["all"], "effective": "2026-11-01"}
    assert c.post("/v1/optouts", headers=h(world, "label"), json=body).status_code == 201
    assert "train" in _blocked(c, ops, "m-shared")


def test_the_models_list_reflects_an_opt_out_from_the_instant_it_takes_effect(
    world: dict[str, Any],  # noqa: F811
    clock: TickingClock,
) -> None:
    c: TestClient = world["client"]
    ops = h(world, "ops")
    effective = clock.now + timedelta(days=3)
    body = {"party": "P-LABEL", "scope": "recording", "target": LABEL_ISRC, "uses": ["all"]}
    body["effective"] = effective.isoformat()
    assert c.post("/v1/optouts", headers=h(world, "label"), json=body).status_code == 201
    assert _blocked(c, ops, "m-shared") == []  # stored, valid until the opt-out's instant
    clock.now = effective  # only time moves
    assert "train" in _blocked(c, ops, "m-shared")
