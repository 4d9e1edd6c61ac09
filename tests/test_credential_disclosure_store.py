"""A party that asked not to be named is never named in an output's public credential, through the real store.

On SQLite and PostgreSQL: an output of a tiny model (trained once per session, ``tests/test_studio.py``)
credited to a recording of a ``disclose: false`` publisher names neither the recording (ISRC, title),
nor its work, nor the publisher (id, name) in the sidecar, the C2PA manifest embedded in the audio,
the stored credential, or the API, portal and CLI views of a creator or another party; the credential
still verifies; the hidden publisher's own view names its credit and opens its commitments; the
operator sees everything; and the royalty run pays exactly what the full record pays.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from accord import visibility
from accord.api.app import create_app
from accord.api.auth import create_key, session_cookie_for
from accord.attribution import service
from accord.attribution.contract import Attribution, ItemWeight, WorkRef
from accord.attribution.disclosure import Hidden, commitment_secret, opens, publish
from accord.cli import app as cli
from accord.outputs import store as outputs
from accord.outputs.studio import Prompt, generate_output
from accord.provenance.verify import verify_file
from accord.registry.entities import Catalog
from accord.registry.schema import Base
from accord.registry.store import ChangeSet, Store
from accord.royalties.accounts import books, build_statements
from accord.royalties.inputs import PPM_WHOLE, attribution_rows
from accord.royalties.run import run_period
from accord.royalties.usage import ingest_events
from accord.settings import Settings
from accord.signing import ensure_operator_key
from tests import test_royalty_run as rr
from tests.test_studio import trained  # noqa: F401  (the fixture: a tiny model trained once per session)

HIDDEN_ISRC = "GBXYZ2600001"
"""First Song, embodying W-1, whose 40% publisher P-PUB2 (Second Publishing) asks not to be named."""
SECRETS = (HIDDEN_ISRC, "First Song", "W-1", "P-PUB2", "Second Publishing")


def hush(store: Store, party_id: str) -> None:
    """Set ``disclose: false`` on a party, as its own update."""
    party = store.snapshot().parties[party_id]
    store.apply(ChangeSet(parties=(replace(party, disclose=False),)), actor=party_id, action="party.updated")


def steered(real: Attribution) -> Attribution:
    """``real`` (the method's own run) with weights a tiny model is too small to reach: half to First
    Song, 30% to Second Song, the rest unattributed; works and holders summed from the catalog's shares."""
    return replace(
        real,
        reliable=True,
        unattributed_ppm=200_000,
        items=(
            ItemWeight(HIDDEN_ISRC, 500_000, "First Song", (WorkRef("W-1", "First Song"),)),
            ItemWeight("GBXYZ2600002", 300_000, "Second Song", (WorkRef("W-2", "Second Song"),)),
        ),
        works=(("W-1", 500_000), ("W-2", 300_000)),
        master=(("P-LABEL", 800_000),),
        publishing=(("P-PUB", 600_000), ("P-PUB2", 200_000)),  # W-1: P-PUB 60%, P-PUB2 40%; W-2: P-PUB
    )


@pytest.fixture
def steer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Attribution runs for real, then credits both recordings (:func:`steered`)."""
    for name in ("attribute_output", "attribute_midi"):
        real = getattr(service, name)
        monkeypatch.setattr(service, name, lambda *a, _real=real, **k: steered(_real(*a, **k)))


LABELS_OWN = (HIDDEN_ISRC, "First Song")
"""What P-LABEL may see of the hidden publisher's credit: its own recording (a party sees its own objects)."""


def leaked(text: str, own: tuple[str, ...] = ()) -> list[str]:
    folded = text.casefold()
    return [s for s in SECRETS if s not in own and s.casefold() in folded]


@pytest.mark.slow
def test_a_hidden_publishers_credit_is_named_only_to_it_and_the_operator(
    store: Store,
    settings: Settings,
    trained: dict[str, Any],  # noqa: F811
    steer: None,
) -> None:
    hush(store, "P-PUB2")
    model_id = trained["model"].model_id
    made = generate_output(store, settings, model_id=model_id, creator_id="ana", prompt=Prompt("reel", bars=4), seed=5)
    output = outputs.get_output(store, made.output.output_id)
    assert output.attribution is not None
    full = output.attribution["attribution"]
    assert full["status"] == "computed" and HIDDEN_ISRC in {i["isrc"] for i in full["items"]}  # what is at stake
    assert "P-PUB2" in {h["party_id"] for h in full["holders"]["publishing"]}

    # public: the stored credential, the sidecar, the C2PA manifest read back, and the audio's bytes
    sidecar = made.paths["credential"].read_text(encoding="utf-8")
    embedded = verify_file(made.paths["audio"])
    assert embedded.valid and embedded.credential == output.credential == json.loads(sidecar)["credential"]
    for public in (json.dumps(output.credential), sidecar, made.paths["audio"].read_bytes().decode("latin-1")):
        assert leaked(public) == []
    key = ensure_operator_key(settings.home)[0]
    assert verify_file(made.paths["credential"], public_key_hex=key.public_hex, media=made.paths["midi"]).valid
    checked = CliRunner().invoke(cli, ["credential", "verify", str(made.paths["credential"])])
    assert checked.exit_code == 0, checked.output
    public_items = output.credential["attribution"]["items"]
    assert sum(i["weight_ppm"] for i in public_items) == sum(i["weight_ppm"] for i in full["items"])

    # the API and the portal: a creator and another party see the public form; the hidden party its credit
    keys = {
        name: create_key(store, role=role, party_id=party)[1]
        for name, role, party in (
            ("ops", "operator", "ops"),
            ("ana", "creator", "ana"),
            ("label", "rights_holder", "P-LABEL"),
            ("hushed", "rights_holder", "P-PUB2"),
        )
    }
    oid = output.output_id
    with TestClient(create_app(settings, store=store)) as c:
        views = {n: c.get(f"/v1/outputs/{oid}", headers={"Authorization": f"Bearer {k}"}) for n, k in keys.items()}
        assert all(v.status_code == 200 for v in views.values()), {n: v.text for n, v in views.items()}
        assert leaked(views["ana"].text) == []
        assert leaked(views["label"].text, LABELS_OWN) == []  # not the hidden publisher, its name or its work
        assert HIDDEN_ISRC in views["label"].text  # but its own recording, credited, by ISRC
        for name in ("ana", "label"):
            signed = c.get(f"/v1/outputs/{oid}/files/credential", headers={"Authorization": f"Bearer {keys[name]}"})
            assert signed.status_code == 200 and leaked(signed.text) == []
        assert views["ops"].json()["credential"]["attribution"] == full
        mine = views["hushed"].json()["credential"]["attribution"]
        own_item = next(i for i in mine["items"] if i.get("isrc") == HIDDEN_ISRC)
        assert opens(
            {"commitment": own_item["commitment"], "kind": "items", "value": HIDDEN_ISRC, "blind": own_item["blind"]}
        )
        assert own_item["commitment"] in {
            i.get("commitment") for i in public_items
        }  # the public credential commits to it
        own_line = next(h for h in mine["holders"]["publishing"] if h.get("party_id") == "P-PUB2")
        assert opens({**own_line, "kind": "publishing", "value": "P-PUB2"})
        pages = {}
        for name, base in (("ana", "studio"), ("label", "rights"), ("hushed", "rights")):
            c.cookies.clear()
            c.cookies.set("accord_session", session_cookie_for(keys[name], settings))
            pages[name] = c.get(f"/portal/{base}/outputs/{oid}")
            assert pages[name].status_code == 200, (name, pages[name].text[:300])
        assert leaked(pages["ana"].text) == [] and leaked(pages["label"].text, LABELS_OWN) == []
        assert "First Song" in pages["hushed"].text  # its own recording, by title, on its card

    # the CLI: an upload of the same MIDI attributed as another party may see it, and as the operator
    runner = CliRunner()
    base = ["attribute", str(made.paths["midi"]), "--model", model_id, "--json"]
    as_label = runner.invoke(cli, [*base, "--party", "P-LABEL"])
    assert as_label.exit_code == 0, as_label.output
    assert leaked(as_label.output, LABELS_OWN) == [] and HIDDEN_ISRC in as_label.output
    as_operator = runner.invoke(cli, base)
    assert as_operator.exit_code == 0 and json.loads(as_operator.output) == full | {"method": full["method"]}
    as_hushed = runner.invoke(cli, [*base, "--party", "P-PUB2"])
    assert as_hushed.exit_code == 0 and HIDDEN_ISRC in as_hushed.output and "P-PUB2" in as_hushed.output


def hidden_indie_world(store: Store, settings: Settings) -> dict[str, Any]:
    """The royalty tests' world (tests/test_royalty_run.py) with P-INDIE, 40% owner of recording B, hidden;
    O-1 carries the full attribution of 800,000 ppm to B."""
    cat = rr.demo_catalog()
    cat = replace(cat, parties={**cat.parties, "P-INDIE": replace(cat.parties["P-INDIE"], disclose=False)})
    rr.world(store, settings, cat)
    ingest_events(store, settings, rr.usage())
    return {
        "status": "computed",
        "method": "test",
        "method_version": "1",
        "reliable": True,
        "unattributed_ppm": 200_000,
        "items": [{"isrc": rr.ISRC_B, "weight_ppm": 800_000}],
        "works": [{"work_id": "W-2", "weight_ppm": 800_000}],
        "holders": {
            "master": [{"party_id": "P-LABEL", "weight_ppm": 480_000}, {"party_id": "P-INDIE", "weight_ppm": 320_000}],
            "publishing": [{"party_id": "P-PUB", "weight_ppm": 800_000}],
        },
        "top": [{"isrc": rr.ISRC_B, "title": "", "weight_ppm": 800_000, "works": [{"work_id": "W-2", "title": ""}]}],
    }


def _store_o1(store: Store, credential: dict[str, Any], private: dict[str, Any] | None) -> None:
    t = Base.metadata.tables["outputs"]
    with store.engine.begin() as conn:
        conn.execute(update(t).where(t.c.output_id == "O-1").values(credential=credential, attribution=private))


def _paid(store: Store, settings: Settings) -> dict[str, dict[str, int]]:
    run_period(store, settings, rr.PERIOD)
    statements = build_statements(store, settings, rr.PERIOD, pb=books(store, settings, rr.PERIOD))
    return {st.party_id: dict(st.income) for st in statements}


def test_the_royalty_run_pays_a_hidden_owner_from_the_private_record_exactly_as_from_the_full_one(
    store: Store, settings: Settings
) -> None:
    full = hidden_indie_world(store, settings)
    catalog: Catalog = store.snapshot()
    secret = commitment_secret(ensure_operator_key(settings.home)[0])
    published = publish(full, {}, Hidden.of(catalog), secret=secret, output_id="O-1")
    assert published.attribution["items"][0].keys() == {"commitment", "weight_ppm"}  # B is hidden in public
    assert attribution_rows("O-1", {"attribution": published.attribution}) == [("O-1", "", PPM_WHOLE)]

    _store_o1(store, {"attribution": full}, None)  # as before: the full attribution in the credential
    before = _paid(store, settings)
    _store_o1(store, {"attribution": published.attribution}, published.private_record())
    after = _paid(store, settings)
    assert before["P-INDIE"]["output"] > 0 and after == before
    stored = outputs.get_output(store, "O-1")
    assert "P-INDIE" not in json.dumps(stored.credential) and rr.ISRC_B not in json.dumps(stored.credential)


def test_an_output_stored_before_the_private_record_reads_as_it_always_has(store: Store, settings: Settings) -> None:
    full = hidden_indie_world(store, settings)
    _store_o1(store, {"attribution": full}, None)
    stored = outputs.get_output(store, "O-1")
    assert stored.attribution is None
    viewer = visibility.Party("C-1", visibility.CREATOR)
    assert visibility.attribution_for(viewer, stored, store.snapshot()) == full
    assert "P-INDIE" in visibility.credited_parties(stored)


def test_a_guard_check_names_a_hidden_owners_recording_only_to_the_operator(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    from accord.registry.entities import Share
    from tests.test_guard import N_TUNES, import_catalog, midi_bytes, tune

    tunes = [midi_bytes(*tune(seed)) for seed in range(1, N_TUNES + 1)]
    import_catalog(store, tmp_path / "delivery", [(f"Tune {i}", "midi", t) for i, t in enumerate(tunes, start=1)])
    now = store.snapshot()
    hush_party = replace(now.parties["P-LABEL"], party_id="P-HUSH", name="Hush Records", disclose=False)
    third = replace(now.recordings["GBXYZ2600003"], shares=(Share("P-HUSH", 1_000_000),))
    store.apply(ChangeSet(parties=(hush_party,), recordings=(third,)), actor="operator", action="test.hush")
    keys = {
        n: create_key(store, role=r, party_id=p)[1]
        for n, r, p in (("ops", "operator", "ops"), ("ana", "creator", "ana"))
    }
    with TestClient(create_app(settings.model_copy(update={"guard_audio": False}), store=store)) as c:
        seen = {
            n: c.post("/v1/guard/checks", headers={"Authorization": f"Bearer {k}"}, files={"file": ("x.mid", tunes[2])})
            for n, k in keys.items()
        }
    assert all(r.status_code == 200 and r.json()["status"] == "blocked" for r in seen.values())
    assert seen["ops"].json()["closest"][0]["isrc"] == "GBXYZ2600003"
    top = seen["ana"].json()["closest"][0]
    assert top["isrc"] is None and top["title"] is None and len(top["commitment"]) == 64 and top["over_threshold"]
    assert (
        "GBXYZ2600003" not in seen["ana"].text and "Tune 3" not in seen["ana"].text and "Hush" not in seen["ana"].text
    )
    assert all(e["isrc"] and e["title"] for e in seen["ana"].json()["closest"][1:])  # the others stay named
