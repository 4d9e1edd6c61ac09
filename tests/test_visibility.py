"""Which outputs a party may see: one rule (accord.visibility), and the API and the portal agree with it.

The property: for random outputs (creators, attributions crediting random parties, items and works,
remix sources) stored through the real registry (SQLite and PostgreSQL), for every principal and
every output, the API's list, the API's detail, the portal's list and page and the domain rule give
the same answer, and a hidden output answers exactly as a missing one does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord import visibility
from accord.api.app import create_app
from accord.api.auth import Principal, Role, authenticate, create_key, session_cookie_for
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.registry.versioning import ChangeSet
from accord.settings import Settings
from tests.factories import catalog, recording, work

R1, R2, R3, R_UNKNOWN = "GBXYZ2600001", "GBXYZ2600002", "GBOTH2600003", "GBNON2699999"
ISRCS = (R1, R2, R3, R_UNKNOWN)
WORKS = ("W-1", "W-2", "W-3", "W-LONE", "W-UNKNOWN")
HOLDERS = ("P-LABEL", "P-CO", "P-PUB", "P-PUB2", "P-OTHER", "P-GHOST", "P-NOBODY")
RIGHTS_HOLDERS = (
    "P-LABEL",  # owns R1, half of R2
    "P-CO",  # owns half of R2
    "P-ARTIST",  # performs R2
    "P-PUB",  # publishes W-1
    "P-WRITER",  # wrote W-1
    "P-PUB2",  # publishes W-2 (and half of W-3)
    "P-OTHER",  # owns R3
    "P-LONE",  # publishes W-LONE, which no recording embodies
    "P-NOBODY",  # stands on nothing
    "P-GHOST",  # not in the registry at all
)
CREATORS = ("ana", "bob")
FEW = settings(
    max_examples=24,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def registry() -> Any:
    return catalog(
        recording(R1, owners={"P-LABEL": 100}, works=("W-1",)),
        recording(R2, owners={"P-LABEL": 50, "P-CO": 50}, works=("W-2",), artists=("P-ARTIST",)),
        recording(R3, owners={"P-OTHER": 100}, works=("W-3",)),
        work("W-1", owners={"P-PUB": 100}, writers=("P-WRITER",)),
        work("W-2", owners={"P-PUB2": 100}),
        work("W-3", owners={"P-PUB2": 50, "P-OTHER": 50}),
        work("W-LONE", owners={"P-LONE": 100}),
    )


@dataclass(frozen=True)
class Viewer:
    """One principal of the property: its key, its principal and its portal session cookie."""

    name: str
    principal: Principal
    secret: str
    cookie: str


@pytest.fixture
def world(store: Store, settings: Settings) -> Iterator[tuple[Store, TestClient, list[Viewer]]]:
    cat = registry()
    store.apply(
        ChangeSet(
            parties=tuple(cat.parties.values()),
            works=tuple(cat.works.values()),
            recordings=tuple(cat.recordings.values()),
        ),
        actor="test",
        action="test.delivery",
    )
    plans = parse_plans(settings.plans)
    for creator in CREATORS:
        outputs.add_creator(store, creator, "pro", "GB", plans)
    roles = [*((p, Role.RIGHTS_HOLDER) for p in RIGHTS_HOLDERS), *((c, Role.CREATOR) for c in CREATORS)]
    viewers = []
    for party, role in [*roles, ("ops", Role.OPERATOR)]:
        secret = create_key(store, role=role, party_id=party)[1]
        viewers.append(Viewer(party, authenticate(store, secret), secret, session_cookie_for(secret, settings)))
    with TestClient(create_app(settings, store=store)) as client:
        yield store, client, viewers


attributions = st.one_of(
    st.just({"status": "pending"}),
    st.builds(
        lambda items, works, master, publishing: {
            "status": "computed",
            "items": [{"isrc": i, "weight_ppm": 1000} for i in items],
            "works": [{"work_id": w, "weight_ppm": 1000} for w in works],
            "holders": {
                "master": [{"party_id": p, "weight_ppm": 1000} for p in master],
                "publishing": [{"party_id": p, "weight_ppm": 1000} for p in publishing],
            },
            "unattributed_ppm": 0,
        },
        st.lists(st.sampled_from(ISRCS), max_size=2, unique=True),
        st.lists(st.sampled_from(WORKS), max_size=2, unique=True),
        st.lists(st.sampled_from(HOLDERS), max_size=2, unique=True),
        st.lists(st.sampled_from(HOLDERS), max_size=2, unique=True),
    ),
)
pieces = st.lists(
    st.tuples(st.sampled_from(CREATORS), attributions, st.one_of(st.none(), st.sampled_from(ISRCS))),
    min_size=1,
    max_size=4,
)


def _store_outputs(store: Store, drawn: list[tuple[str, dict[str, Any], str | None]]) -> list[outputs.Output]:
    with store.engine.begin() as conn:
        conn.execute(Base.metadata.tables["outputs"].delete())  # each example starts from no outputs
    made = []
    for n, (creator, attribution, remix) in enumerate(drawn):
        prompt = {"style": "reel", "bars": 4, "from": remix}
        output = outputs.Output(f"OUT-{n}", "m-x", creator, store.clock(), prompt, n, {}, {"attribution": attribution})
        outputs.save_output(store, output)
        made.append(output)
    return made


def _portal(viewer: Viewer) -> str:
    return "/portal/rights" if viewer.principal.role is Role.RIGHTS_HOLDER else "/portal/studio"


def _listed(html: str, base: str) -> set[str]:
    return set(re.findall(rf'href="{base}/outputs/(OUT-\d+)"', html))


def _same_404(hidden: Any, missing: Any, output_id: str) -> bool:
    """Both 404, and the bodies the same but for the id asked for (and a page's per-browser CSRF token)."""

    def plain(text: str, asked: str) -> str:
        return re.sub(r'name="csrf" value="[0-9a-f]+"', "", text.replace(asked, "X"))

    return hidden.status_code == missing.status_code == 404 and plain(hidden.text, output_id) == plain(
        missing.text, "OUT-MISSING"
    )


@given(drawn=pieces)
@FEW
def test_the_api_the_portal_and_the_rule_agree_on_who_sees_each_output(
    world: tuple[Store, TestClient, list[Viewer]], drawn: list[tuple[str, dict[str, Any], str | None]]
) -> None:
    store, client, viewers = world
    made = _store_outputs(store, drawn)
    now = store.snapshot()
    for viewer in viewers:
        rule = {o.output_id for o in made if visibility.may_see_output(viewer.principal, o, now)}
        bearer = {"Authorization": f"Bearer {viewer.secret}"}  # the API by key (it outranks the cookie)
        client.cookies.clear()
        client.cookies.set("accord_session", viewer.cookie)  # the portal by its session
        api_list = client.get("/v1/outputs?limit=200", headers=bearer).json()["items"]
        assert {o["output_id"] for o in api_list} == rule, viewer.name
        missing_api = client.get("/v1/outputs/OUT-MISSING", headers=bearer)
        portal = viewer.principal.role is not Role.OPERATOR  # the operator has no output pages
        if portal:
            base = _portal(viewer)
            assert _listed(client.get(f"{base}/outputs").text, base) == rule, viewer.name
            missing_page = client.get(f"{base}/outputs/OUT-MISSING")
        for output in made:
            detail = client.get(f"/v1/outputs/{output.output_id}", headers=bearer)
            seen = output.output_id in rule
            assert detail.status_code == (200 if seen else 404), (viewer.name, output)
            assert seen or _same_404(detail, missing_api, output.output_id)
            if portal:
                page = client.get(f"{base}/outputs/{output.output_id}")
                assert page.status_code == (200 if seen else 404), (viewer.name, output)
                assert seen or _same_404(page, missing_page, output.output_id)


def _output(creator: str = "bob", attribution: dict[str, Any] | None = None, remix: str | None = None) -> Any:
    credential = {"attribution": attribution or {"status": "pending"}}
    return outputs.Output("OUT-1", "m-x", creator, None, {"from": remix}, 1, {}, credential)  # type: ignore[arg-type]


def _as(party: str, role: str = "rights_holder") -> visibility.Party:
    return visibility.Party(party, role)


def test_a_remixed_recordings_owners_writers_and_publishers_see_the_remix_before_any_attribution() -> None:
    cat = registry()
    remix = _output(remix=R1)
    seeing = {p for p in RIGHTS_HOLDERS if visibility.may_see_output(_as(p), remix, cat)}
    assert seeing == {"P-LABEL", "P-PUB", "P-WRITER"}


def test_a_party_credited_by_the_attribution_sees_it_though_it_stands_on_nothing_now() -> None:
    cat = registry()
    credited = _output(attribution={"status": "computed", "holders": {"master": [{"party_id": "P-GHOST"}]}})
    assert visibility.may_see_output(_as("P-GHOST"), credited, cat)
    assert not visibility.may_see_output(_as("P-NOBODY"), credited, cat)


def test_an_attributed_work_shows_the_output_to_its_publisher_even_with_no_recording_of_it() -> None:
    cat = registry()
    out = _output(attribution={"status": "computed", "works": [{"work_id": "W-LONE"}]})
    assert {p for p in RIGHTS_HOLDERS if visibility.may_see_output(_as(p), out, cat)} == {"P-LONE"}


def test_a_pending_attribution_shows_nothing_and_a_creator_sees_only_its_own() -> None:
    cat = registry()
    pending = _output(attribution={"status": "pending", "items": [{"isrc": R1}]})
    assert not any(visibility.may_see_output(_as(p), pending, cat) for p in RIGHTS_HOLDERS)
    assert visibility.may_see_output(_as("bob", "creator"), pending, cat)
    assert not visibility.may_see_output(_as("ana", "creator"), pending, cat)
    assert visibility.may_see_output(_as("ops", "operator"), pending, cat)


# ---------------------------------------------------------------- naming others


def test_a_co_owner_that_asked_not_to_be_named_is_unnamed_on_the_other_owners_recording_page(
    store: Store, settings: Settings
) -> None:
    from dataclasses import replace

    from tests.factories import party

    hush = replace(party("P-HUSH", name="Hush Records"), disclose=False)
    cat = catalog(
        hush,
        recording(R1, owners={"P-LABEL": 50, "P-HUSH": 50}, works=("W-1",)),
        work("W-1", owners={"P-HUSH": 100}),
    )
    store.apply(
        ChangeSet(
            parties=tuple(cat.parties.values()), works=tuple(cat.works.values()), recordings=(cat.recordings[R1],)
        ),
        actor="test",
        action="test.delivery",
    )
    with TestClient(create_app(settings, store=store)) as client:
        for who, named in (("P-LABEL", False), ("P-HUSH", True)):
            secret = create_key(store, role="rights_holder", party_id=who)[1]
            client.cookies.set("accord_session", session_cookie_for(secret, settings))
            page = client.get(f"/portal/rights/recordings/{R1}")
            assert page.status_code == 200, page.text
            assert ("Hush Records" in page.text) is named and ("undisclosed party" in page.text) is not named
            if not named:
                assert "P-HUSH" not in page.text
    assert visibility.shown_name(store.snapshot(), visibility.Party("ops", "operator"), "P-HUSH") == "Hush Records"


def test_the_cli_lists_the_outputs_a_rights_holder_may_see_by_the_same_rule(
    world: tuple[Store, TestClient, list[Viewer]],
) -> None:
    import json

    from typer.testing import CliRunner

    from accord.cli import app

    store = world[0]
    drawn = [
        ("ana", {"status": "computed", "items": [{"isrc": R1, "weight_ppm": 1}]}, None),
        ("bob", {"status": "pending"}, R3),
        ("bob", {"status": "computed", "holders": {"publishing": [{"party_id": "P-PUB2"}]}}, None),
    ]
    _store_outputs(store, drawn)
    for party, expected in (("P-LABEL", ["OUT-0"]), ("P-OTHER", ["OUT-1"]), ("P-PUB2", ["OUT-1", "OUT-2"])):
        result = CliRunner().invoke(app, ["output", "list", "--party", party, "--json"])
        assert result.exit_code == 0, result.output
        assert [o["output_id"] for o in json.loads(result.output)] == expected, party
