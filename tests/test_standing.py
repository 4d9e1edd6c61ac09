"""Who may write what: a party changes only what it has standing for, on every path (SQLite and PostgreSQL).

Two labels share one registry: P-A (its recording, work, agreements) and P-B (its recording, its
publisher's work, their agreements). Every write P-A might try on P-B's records, by delivery
(domain, ``accord catalog import --as``, ``POST /v1/deliveries``), grant, end, opt-out and
transfer, is refused, and afterwards the registry (records, history, deliveries, audit log,
media store) is exactly as before. The operator's own tools keep full power and say so.
"""

from __future__ import annotations

import copy
import io
import json
import re
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from accord.api.app import create_app
from accord.api.auth import create_key
from accord.cli import app as cli_app
from accord.datasets import repository, service
from accord.errors import NotFound, Rejected, ValidationError
from accord.registry.consent import opt_out_artist
from accord.registry.entities import Catalog
from accord.registry.ern import import_ern
from accord.registry.importer import import_delivery
from accord.registry.media import MediaStore
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.registry.transfer import transfer_share
from accord.settings import Settings
from accord.signing import ensure_operator_key
from tests.deliveries import MIDI_A, MIDI_B, catalog_agreement, sha, write_delivery

ISRC_A, ISRC_B, ISRC_MISSING = "GBAAA2600001", "GBBBB2600001", "GBZZZ2699999"
MIDI_C = MIDI_A + b"\x02"  # a file no delivery has brought yet
runner = CliRunner()


def delivery_a(delivery_id: str = "A-001") -> dict[str, Any]:
    """P-A's own catalog: one recording it owns, one work it publishes, a licence each side."""
    return copy.deepcopy(
        {
            "accord_delivery": "1.0",
            "delivery_id": delivery_id,
            "sender": "P-A",
            "created": "2026-10-01T00:00:00Z",
            "parties": [
                {"id": "P-A", "kind": "label", "name": "A Records"},
                {"id": "P-AART", "kind": "artist", "name": "A Artist"},
            ],
            "works": [{"id": "W-A", "title": "A Song", "writers": [], "shares": [{"party": "P-A", "share": "100"}]}],
            "recordings": [
                {
                    "isrc": ISRC_A,
                    "title": "A Song",
                    "artists": ["P-AART"],
                    "duration_ms": 60000,
                    "works": ["W-A"],
                    "shares": [{"party": "P-A", "share": "100"}],
                    "media": [{"path": "media/a.mid", "kind": "midi"}],
                }
            ],
            "agreements": [
                catalog_agreement("AGR-A", "P-A", "master"),
                catalog_agreement("AGR-AP", "P-A", "publishing"),
            ],
            "optouts": [],
        }
    )


def delivery_b() -> dict[str, Any]:
    """P-B's catalog: its recording, its publisher's work, their licences."""
    return copy.deepcopy(
        {
            "accord_delivery": "1.0",
            "delivery_id": "B-001",
            "sender": "P-B",
            "created": "2026-10-01T00:00:00Z",
            "parties": [
                {"id": "P-B", "kind": "label", "name": "B Records"},
                {"id": "P-BPUB", "kind": "publisher", "name": "B Publishing"},
                {"id": "P-BART", "kind": "artist", "name": "B Artist"},
            ],
            "works": [{"id": "W-B", "title": "B Song", "writers": [], "shares": [{"party": "P-BPUB", "share": "100"}]}],
            "recordings": [
                {
                    "isrc": ISRC_B,
                    "title": "B Song",
                    "artists": ["P-BART"],
                    "duration_ms": 60000,
                    "works": ["W-B"],
                    "shares": [{"party": "P-B", "share": "100"}],
                    "media": [{"path": "media/b.mid", "kind": "midi"}],
                }
            ],
            "agreements": [
                catalog_agreement("AGR-B", "P-B", "master"),
                catalog_agreement("AGR-BP", "P-BPUB", "publishing"),
            ],
            "optouts": [],
        }
    )


def _b(section: str, key: str, value: str) -> dict[str, Any]:
    """One of P-B's records as its delivery gives it."""
    ident = "isrc" if section == "recordings" else "id"
    return next(x for x in delivery_b()[section] if x[ident] == value)


# Each attack: a P-A delivery that also touches one record outside P-A's standing.
ATTACKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "take_over_recording": lambda d: d["recordings"].append(
        {**_b("recordings", "isrc", ISRC_B), "shares": [{"party": "P-A", "share": "100"}]}
    ),
    "retitle_others_recording": lambda d: d["recordings"].append({**_b("recordings", "isrc", ISRC_B), "title": "Mine"}),
    "add_remix_to_others_licence": lambda d: d["agreements"].append(
        {**_b("agreements", "id", "AGR-B"), "uses": ["train", "generate", "remix"]}
    ),
    "take_over_agreement_id": lambda d: d["agreements"].append(catalog_agreement("AGR-B", "P-A", "master")),
    "grant_in_others_name": lambda d: d["agreements"].append(catalog_agreement("AGR-NEW", "P-B", "master")),
    "opt_out_in_others_name": lambda d: d["optouts"].append(
        {"id": "OPT-X", "party": "P-B", "scope": "catalog", "uses": ["all"], "effective": "2026-11-01"}
    ),
    "rename_other_party": lambda d: d["parties"].append({"id": "P-B", "kind": "label", "name": "Renamed"}),
    "retitle_others_work": lambda d: d["works"].append({**_b("works", "id", "W-B"), "title": "Mine"}),
    "take_others_work_share": lambda d: d["works"].append(
        {**_b("works", "id", "W-B"), "shares": [{"party": "P-A", "share": "100"}]}
    ),
    "new_recording_owned_by_other": lambda d: d["recordings"].append(
        {
            "isrc": "GBAAA2600009",
            "title": "Planted",
            "artists": [],
            "duration_ms": 1000,
            "works": ["W-A"],
            "shares": [{"party": "P-B", "share": "100"}],
            "media": [{"path": "media/c.mid", "kind": "midi"}],
        }
    ),
    "move_own_share_to_other": lambda d: d["recordings"][0].update(
        shares=[{"party": "P-A", "share": "50"}, {"party": "P-B", "share": "50"}]
    ),
}

MEDIA = {"media/a.mid": MIDI_A, "media/b.mid": MIDI_B, "media/c.mid": MIDI_C}


def attack_folder(tmp_path: Path, name: str) -> Path:
    doc = delivery_a(f"A-{name}")
    ATTACKS[name](doc)
    return write_delivery(tmp_path / f"attack-{name}", doc, MEDIA)


FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
"""Reads "as the registry stands": the CLI writes at the wall clock, the fixture store at its own clock."""


def current(store: Store) -> Catalog:
    return store.snapshot(FUTURE)


def registry_state(store: Store) -> dict[str, Any]:
    """Everything a write could change: current records, every table's rows, the media store's files."""
    snap = current(store)
    with store.engine.connect() as conn:
        rows = {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in Base.metadata.sorted_tables}
    root = store.media.root
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []
    return {
        "parties": dict(snap.parties),
        "works": dict(snap.works),
        "recordings": dict(snap.recordings),
        "agreements": dict(snap.agreements),
        "optouts": dict(snap.optouts),
        "sources": dict(snap.sources),
        "deliveries": store.deliveries(),
        "audit": store.audit_log(limit=100_000),
        "rows": rows,
        "media": files,
    }


@pytest.fixture
def shared(store: Store, tmp_path: Path) -> Store:
    """The registry with both labels' catalogs, imported by the operator."""
    import_delivery(store, write_delivery(tmp_path / "a", delivery_a(), {"media/a.mid": MIDI_A}))
    import_delivery(store, write_delivery(tmp_path / "b", delivery_b(), {"media/b.mid": MIDI_B}))
    return store


# ---------------------------------------------------------------- deliveries, through the domain


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_delivery_touching_another_partys_record_is_refused_and_changes_nothing(
    shared: Store, tmp_path: Path, name: str
) -> None:
    before = registry_state(shared)
    with pytest.raises(Rejected) as info:
        import_delivery(shared, attack_folder(tmp_path, name), as_party="P-A")
    assert [p.code for p in info.value.problems] == ["no_standing"], info.value.problems
    problem = info.value.problems[0]
    assert problem.file == "catalog.json" and problem.location.startswith("$.") and problem.expected
    assert registry_state(shared) == before


@pytest.mark.parametrize("section", ["agreements", "optouts"])
def test_naming_another_party_answers_alike_whether_it_exists_or_not(
    shared: Store, tmp_path: Path, section: str
) -> None:
    def problems(who: str) -> list[dict[str, str]]:
        doc = delivery_a(f"A-{who}")
        if section == "agreements":
            doc["agreements"].append(catalog_agreement("AGR-NEW", who, "master"))
        else:
            doc["optouts"].append(
                {"id": "OPT-X", "party": who, "scope": "catalog", "uses": ["all"], "effective": "2026-11-01"}
            )
        with pytest.raises(Rejected) as info:
            import_delivery(shared, write_delivery(tmp_path / who, doc, MEDIA), as_party="P-A")
        return [p.to_dict() for p in info.value.problems]

    other, nobody = problems("P-B"), problems("P-NOBODY")
    assert [p["code"] for p in other] == ["no_standing"]
    assert json.dumps(other).replace("P-B", "?") == json.dumps(nobody).replace("P-NOBODY", "?")


def test_the_sender_must_be_the_party_importing(shared: Store, tmp_path: Path) -> None:
    before = registry_state(shared)
    with pytest.raises(ValidationError, match="sender"):
        import_delivery(shared, write_delivery(tmp_path / "d", delivery_a(), MEDIA), as_party="P-B")
    assert registry_state(shared) == before


def test_a_party_changes_its_own_records_and_repeats_others_unchanged(shared: Store, tmp_path: Path) -> None:
    doc = delivery_a("A-002")
    doc["recordings"][0]["title"] = "A Song (remaster)"
    doc["agreements"][0]["uses"] = ["train", "generate", "remix"]
    doc["parties"][0]["name"] = "A Records Ltd"
    doc["recordings"].append(_b("recordings", "isrc", ISRC_B))  # as recorded: not a change
    doc["parties"].append({"id": "P-AWRI", "kind": "writer", "name": "A Writer"})  # a new party
    doc["works"].append(  # a new work published by another, embodied by A's new recording
        {"id": "W-A2", "title": "Co-written", "writers": ["P-AWRI"], "shares": [{"party": "P-BPUB", "share": "100"}]}
    )
    doc["recordings"].append(
        {
            "isrc": "GBAAA2600002",
            "title": "Co-written",
            "artists": [],
            "duration_ms": 1000,
            "works": ["W-A2"],
            "shares": [{"party": "P-A", "share": "100"}],
            "media": [{"path": "media/c.mid", "kind": "midi"}],
        }
    )
    report = import_delivery(shared, write_delivery(tmp_path / "d", doc, MEDIA), as_party="P-A")
    assert report.result is not None and report.result.unchanged["recordings"] == 1
    snap = current(shared)
    assert snap.recordings[ISRC_A].title == "A Song (remaster)" and "remix" in snap.agreements["AGR-A"].uses
    assert snap.works["W-A2"].shares[0].party_id == "P-BPUB"
    event = next(e for e in shared.audit_log() if e.action == "delivery.imported")
    assert event.detail["acting_as"] == "P-A"


def test_the_operator_imports_anything_and_the_log_says_it_was_the_operator(shared: Store, tmp_path: Path) -> None:
    import_delivery(shared, attack_folder(tmp_path, "take_over_recording"))
    assert [s.party_id for s in current(shared).recordings[ISRC_B].shares] == ["P-A"]
    actions = {e.action: e.detail for e in shared.audit_log()}
    assert actions["delivery.imported"]["acting_as"] == "operator"
    assert actions["recording.ownership_changed"]["acting_as"] == "operator"


def test_a_standing_lost_between_validation_and_write_rejects_and_removes_the_copied_media(
    shared: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The standing is checked again inside the write's transaction; media copied for it go again."""
    doc = delivery_a("A-003")
    doc["recordings"][0]["title"] = "A Song (remaster)"
    doc["recordings"][0]["media"] = [{"path": "media/c.mid", "kind": "midi"}]
    folder = write_delivery(tmp_path / "d", doc, MEDIA)
    real_put = shared.media.put

    def put_then_lose_standing(source: Path, digest: str) -> bool:
        transfer_share(shared, "recordings", ISRC_A, "P-A", "P-B", actor="ops", operator_reason="court order 7")
        return real_put(source, digest)

    monkeypatch.setattr(type(shared.media), "put", lambda self, s, d: put_then_lose_standing(s, d))
    with pytest.raises(Rejected) as info:
        import_delivery(shared, folder, as_party="P-A")
    assert info.value.problems[0].code == "no_standing"
    assert not shared.media.has(sha(MIDI_C))
    assert current(shared).recordings[ISRC_A].title == "A Song"


def test_a_rolled_back_import_keeps_a_file_another_import_now_references(
    shared: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two imports bring the same new file; the first fails after the second committed: the file stays."""
    import accord.registry.store as store_module

    first = delivery_a("A-004")
    first["recordings"][0]["media"] = [{"path": "media/c.mid", "kind": "midi"}]
    second = delivery_b()
    second["delivery_id"] = "B-002"
    second["recordings"][0]["media"] = [{"path": "media/c.mid", "kind": "midi"}]
    second_folder = write_delivery(tmp_path / "second", second, MEDIA)
    real_put = MediaStore.put
    raced = {"done": False}

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    def put_while_another_import_runs(self: MediaStore, source: Path, digest: str) -> bool:
        added = real_put(self, source, digest)
        if not raced["done"]:
            raced["done"] = True
            import_delivery(shared, second_folder, as_party="P-B")  # finds the file there, references it
            monkeypatch.setattr(store_module, "_audit", explode)  # the first import's write fails
        return added

    monkeypatch.setattr(MediaStore, "put", put_while_another_import_runs)
    with pytest.raises(RuntimeError):
        import_delivery(shared, write_delivery(tmp_path / "first", first, MEDIA), as_party="P-A")
    assert current(shared).recordings[ISRC_B].media[0].sha256 == sha(MIDI_C)
    assert current(shared).recordings[ISRC_A].media[0].sha256 == sha(MIDI_A)
    assert shared.media.read_verified(sha(MIDI_C)) == MIDI_C


# ---------------------------------------------------------------- a property


B_RECORDS = {
    "parties": ("P-B", "P-BPUB", "P-BART"),
    "recordings": (ISRC_B,),
    "works": ("W-B",),
    "agreements": ("AGR-B", "AGR-BP"),
}
SAME = {  # touches that give the same record: one of them per delivery (a record appears once)
    "retitle_others_recording": "take_over_recording",
    "take_over_agreement_id": "add_remix_to_others_licence",
    "take_others_work_share": "retitle_others_work",
}
TOUCHES = {  # name -> whether it stays inside P-A's standing
    "retitle_own_recording": True,
    "add_remix_to_own_licence": True,
    "rename_own_party": True,
    "new_own_recording": True,
    "new_party": True,
    **{name: False for name in ATTACKS},
}


def _touch(doc: dict[str, Any], name: str, n: int) -> None:
    if name == "retitle_own_recording":
        doc["recordings"][0]["title"] = f"A Song take {n}"
    elif name == "add_remix_to_own_licence":
        doc["agreements"][0]["uses"] = ["train", "generate", "remix"]
    elif name == "rename_own_party":
        doc["parties"][0]["name"] = f"A Records {n}"
    elif name == "new_own_recording":
        doc["recordings"].append(
            {
                "isrc": f"GBAAA26{n:05d}",
                "title": f"New {n}",
                "artists": [],
                "duration_ms": 1000,
                "works": ["W-A"],
                "shares": [{"party": "P-A", "share": "100"}],
            }
        )
    elif name == "new_party":
        doc["parties"].append({"id": f"P-NEW{n}", "kind": "artist", "name": f"New {n}"})
    else:
        ATTACKS[name](doc)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(touches=st.lists(st.sampled_from(sorted(TOUCHES)), min_size=1, max_size=4, unique_by=lambda t: SAME.get(t, t)))
def test_an_import_is_refused_iff_it_touches_a_record_outside_the_senders_standing(
    shared: Store, tmp_path_factory: pytest.TempPathFactory, touches: list[str]
) -> None:
    n = len(shared.deliveries()) + 100
    doc = delivery_a(f"A-P{n}")
    for name in touches:
        _touch(doc, name, n)
    folder = write_delivery(tmp_path_factory.mktemp("prop"), doc, MEDIA)
    before = registry_state(shared)
    outside = not all(TOUCHES[name] for name in touches)
    try:
        import_delivery(shared, folder, as_party="P-A")
    except Rejected as exc:
        assert outside, (touches, exc.problems)
        assert {p.code for p in exc.problems} == {"no_standing"}
        assert registry_state(shared) == before
    else:
        assert not outside, touches
        after = registry_state(shared)
        for kind, keys in B_RECORDS.items():
            assert {k: after[kind][k] for k in keys} == {k: before[kind][k] for k in keys}, kind


# ---------------------------------------------------------------- through the CLI


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli_app, list(args))
    return result.exit_code, result.output


def test_the_cli_imports_for_a_party_with_its_standing_checked(
    shared: Store, settings: Settings, tmp_path: Path
) -> None:
    for name in sorted(ATTACKS):
        before = registry_state(shared)
        code, out = cli("catalog", "import", str(attack_folder(tmp_path, name)), "--as", "P-A", "--json")
        assert code == 1, (name, out)
        assert {p["code"] for p in json.loads(out)["problems"]} == {"no_standing"}, name
        assert registry_state(shared) == before, name


def test_the_cli_acts_as_the_operator_by_default_and_says_so(shared: Store, settings: Settings, tmp_path: Path) -> None:
    code, out = cli("catalog", "import", str(attack_folder(tmp_path, "retitle_others_recording")))
    assert code == 0 and "operator" in out, out
    assert next(e for e in shared.audit_log() if e.action == "delivery.imported").detail["acting_as"] == "operator"
    code, out = cli("agreement", "end", "AGR-B", "--at", "2027-01-01")
    assert code == 0 and "operator" in out, out


def test_cli_rights_commands_for_a_party_refuse_another_partys_records(shared: Store, settings: Settings) -> None:
    before = registry_state(shared)
    grant = ("agreement", "grant", "--id", "AGR-X", "--side", "master", "--use", "train", "--start", "2026-01-01")
    assert cli(*grant, "--licensor", "P-B", "--as", "P-A")[0] == 2
    assert cli(*grant, "--licensor", "P-A", "--recording", ISRC_B, "--as", "P-A")[0] == 1
    optout = ("optout", "add", "--scope", "recording", "--use", "all", "--effective", "2026-11-01")
    assert cli(*optout, "--party", "P-B", "--target", ISRC_B, "--as", "P-A")[0] == 2
    code, out = cli(*optout, "--party", "P-A", "--target", ISRC_B, "--as", "P-A")
    code_missing, out_missing = cli(*optout, "--party", "P-A", "--target", ISRC_MISSING, "--as", "P-A")
    assert code == code_missing == 1 and "unknown_reference" in out and "no_standing" not in out
    assert out.replace(ISRC_B, "?") == out_missing.replace(ISRC_MISSING, "?")
    code, out = cli("agreement", "end", "AGR-B", "--at", "2027-01-01", "--as", "P-A")
    code_missing, out_missing = cli("agreement", "end", "AGR-NOPE", "--at", "2027-01-01", "--as", "P-A")
    assert code == code_missing == 2 and out.replace("AGR-B", "?") == out_missing.replace("AGR-NOPE", "?")
    assert cli("optout", "artist", "--party", "P-A", "--artist", "P-BART", "--as", "P-A")[0] == 2
    assert registry_state(shared) == before


def test_an_artist_wide_opt_out_is_one_write(shared: Store, settings: Settings) -> None:
    code, out = cli("optout", "artist", "--party", "P-A", "--artist", "P-AART", "--as", "P-A")
    assert code == 0, out
    assert [(o.party_id, o.target) for o in current(shared).optouts.values()] == [("P-A", ISRC_A)]
    events = [e for e in shared.audit_log() if e.action == "optout.artist"]
    assert len(events) == 1 and events[0].detail["acting_as"] == "P-A" and events[0].detail["artist"] == "P-AART"


def test_artist_opt_out_names_missing_and_others_artists_alike(shared: Store) -> None:
    when = shared.clock()
    with pytest.raises(NotFound) as other:
        opt_out_artist(shared, "P-A", "P-BART", when, actor="t", as_party="P-A")
    with pytest.raises(NotFound) as missing:
        opt_out_artist(shared, "P-A", "P-NOBODY", when, actor="t", as_party="P-A")
    assert str(other.value).replace("P-BART", "?") == str(missing.value).replace("P-NOBODY", "?")


# ---------------------------------------------------------------- transfers


def test_a_transfer_needs_both_parties_consent_or_the_operator_with_a_reason(shared: Store, settings: Settings) -> None:
    before = registry_state(shared)
    assert cli("catalog", "transfer", ISRC_B, "--from", "P-B", "--to", "P-A")[0] == 2
    assert cli("catalog", "transfer", ISRC_B, "--from", "P-B", "--to", "P-A", "--consent-from", "letter-1")[0] == 2
    assert cli("catalog", "transfer", ISRC_B, "--from", "P-B", "--to", "P-A", "--operator")[0] == 2
    assert cli("catalog", "transfer", ISRC_B, "--from", "P-B", "--to", "P-B", "--operator", "--reason", "x")[0] == 2
    assert registry_state(shared) == before

    code, out = cli(
        "catalog", "transfer", ISRC_B, "--from", "P-B", "--to", "P-A", "--share", "25",
        "--consent-from", "letter-B-7", "--consent-to", "letter-A-3",
    )  # fmt: skip
    assert code == 0, out
    assert {s.party_id: s.ppm for s in current(shared).recordings[ISRC_B].shares} == {"P-B": 750_000, "P-A": 250_000}
    event = next(e for e in shared.audit_log() if e.action == "ownership.transferred")
    assert event.detail["consents"] == {"P-B": "letter-B-7", "P-A": "letter-A-3"}
    assert event.detail["transfer"] == {"kind": "recordings", "key": ISRC_B, "from": "P-B", "to": "P-A", "ppm": 250_000}

    code, out = cli(
        "catalog", "transfer", "W-B", "--work", "--from", "P-BPUB", "--to", "P-A",
        "--operator", "--reason", "court order",
    )  # fmt: skip
    assert code == 0 and "operator" in out, out
    assert [(s.party_id, s.ppm) for s in current(shared).works["W-B"].shares] == [("P-A", 1_000_000)]
    event = next(e for e in shared.audit_log() if e.action == "ownership.transferred")
    assert event.detail["acting_as"] == "operator" and event.detail["reason"] == "court order"


def test_a_transfer_of_a_share_the_giver_does_not_hold_is_refused(shared: Store) -> None:
    before = registry_state(shared)
    with pytest.raises(ValidationError, match="share"):
        transfer_share(shared, "recordings", ISRC_B, "P-A", "P-B", actor="t", operator_reason="why")
    with pytest.raises(ValidationError, match="share"):
        transfer_share(shared, "recordings", ISRC_B, "P-B", "P-A", actor="t", ppm=1_000_001, operator_reason="why")
    with pytest.raises(NotFound):
        transfer_share(shared, "recordings", ISRC_MISSING, "P-B", "P-A", actor="t", operator_reason="why")
    assert registry_state(shared) == before


# ---------------------------------------------------------------- through the API


@pytest.fixture
def api(shared: Store, settings: Settings) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    keys = {
        name: create_key(shared, role=role, party_id=party)[1]
        for name, role, party in (
            ("a", "rights_holder", "P-A"),
            ("b", "rights_holder", "P-B"),
            ("creator", "creator", "ana"),
            ("ops", "operator", "ops"),
        )
    }
    with TestClient(create_app(settings, store=shared)) as client:
        yield client, {name: {"Authorization": f"Bearer {secret}"} for name, secret in keys.items()}


def archive(folder: Path) -> dict[str, Any]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(folder, arcname="delivery")
    return {"archive": ("delivery.tar.gz", buf.getvalue(), "application/gzip")}


def test_post_deliveries_refuses_every_take_over_and_changes_nothing(
    shared: Store, api: tuple[TestClient, dict[str, dict[str, str]]], tmp_path: Path
) -> None:
    client, h = api
    for name in sorted(ATTACKS):
        folder = attack_folder(tmp_path, name)
        before = registry_state(shared)
        r = client.post("/v1/deliveries", headers=h["a"], files=archive(folder))
        assert r.status_code == 422, (name, r.text)
        assert {p["code"] for p in r.json()["error"]["problems"]} == {"no_standing"}, name
        assert registry_state(shared) == before, name
        assert client.post("/v1/deliveries", headers=h["creator"], files=archive(folder)).status_code == 403
        assert registry_state(shared) == before, name
    r = client.post(
        "/v1/deliveries", headers=h["ops"], files=archive(attack_folder(tmp_path / "ops", "take_over_recording"))
    )
    assert r.status_code == 201, r.text
    assert next(e for e in shared.audit_log() if e.action == "delivery.imported").detail["acting_as"] == "operator"


def test_api_grant_end_and_opt_out_refuse_another_partys_records(
    shared: Store, api: tuple[TestClient, dict[str, dict[str, str]]]
) -> None:
    client, h = api
    before = registry_state(shared)
    grant = {
        "id": "AGR-X",
        "licensor": "P-B",
        "side": "master",
        "uses": ["train", "remix"],
        "territory": {"worldwide": True},
        "start": "2026-01-01",
        "coverage": {"catalog": True},
        "terms": {"pool_share": "30"},
    }
    assert client.post("/v1/agreements", headers=h["a"], json=grant).status_code == 422
    assert client.post("/v1/agreements", headers=h["creator"], json=grant).status_code == 403
    assert client.post("/v1/agreements/AGR-B/end", headers=h["a"], json={"at": "2027-01-01"}).status_code == 404
    optout = {"party": "P-B", "scope": "catalog", "uses": ["all"], "effective": "2026-11-01"}
    assert client.post("/v1/optouts", headers=h["a"], json=optout).status_code == 422
    assert client.post("/v1/optouts", headers=h["creator"], json=optout).status_code == 403
    artist = client.post("/v1/artists/P-BART/optout", headers=h["a"], json={"party": "P-A"})
    assert artist.status_code == 404
    assert client.post("/v1/artists/P-AART/optout", headers=h["b"], json={"party": "P-A"}).status_code == 422
    assert client.post("/v1/artists/P-AART/optout", headers=h["creator"], json={"party": "P-A"}).status_code == 403
    assert registry_state(shared) == before
    mine = client.post("/v1/artists/P-AART/optout", headers=h["a"], json={"party": "P-A"})
    assert mine.status_code == 201, mine.text
    assert [o["target"] for o in mine.json()["optouts"]] == [ISRC_A]


def _same_shape(r1: Any, r2: Any, v1: str, v2: str) -> None:
    assert r1.status_code == r2.status_code
    assert r1.text.replace(v1, "?") == r2.text.replace(v2, "?")


def test_naming_another_partys_recording_answers_as_naming_a_missing_one(
    shared: Store, api: tuple[TestClient, dict[str, dict[str, str]]]
) -> None:
    client, h = api
    before = registry_state(shared)

    def optout(target: str) -> Any:
        body = {"party": "P-A", "scope": "recording", "target": target, "uses": ["all"], "effective": "2026-11-01"}
        return client.post("/v1/optouts", headers=h["a"], json=body)

    _same_shape(optout(ISRC_B), optout(ISRC_MISSING), ISRC_B, ISRC_MISSING)

    def work_optout(target: str) -> Any:
        body = {"party": "P-A", "scope": "work", "target": target, "uses": ["all"], "effective": "2026-11-01"}
        return client.post("/v1/optouts", headers=h["a"], json=body)

    _same_shape(work_optout("W-B"), work_optout("W-NOPE"), "W-B", "W-NOPE")

    def grant(covers: str) -> Any:
        body = {
            "id": "AGR-X",
            "licensor": "P-A",
            "side": "master",
            "uses": ["train"],
            "territory": {"worldwide": True},
            "start": "2026-01-01",
            "coverage": {"recordings": [covers]},
            "terms": {"pool_share": "30"},
        }
        return client.post("/v1/agreements", headers=h["a"], json=body)

    _same_shape(grant(ISRC_B), grant(ISRC_MISSING), ISRC_B, ISRC_MISSING)
    end = client.post("/v1/agreements/AGR-B/end", headers=h["a"], json={"at": "2027-01-01"})
    end_missing = client.post("/v1/agreements/AGR-NOPE/end", headers=h["a"], json={"at": "2027-01-01"})
    _same_shape(end, end_missing, "AGR-B", "AGR-NOPE")
    assert registry_state(shared) == before


def test_an_opt_out_answers_only_with_the_flagged_models_the_caller_may_see(
    shared: Store, settings: Settings, api: tuple[TestClient, dict[str, dict[str, str]]]
) -> None:
    client, h = api
    key, _ = ensure_operator_key(settings.home)
    now = shared.clock()
    both, _, _ = service.build(shared, key, use="train", as_of=now, territory="GB")
    only_b, _, _ = service.build(shared, key, use="train", as_of=now, territory="GB", filters=(("isrc", (ISRC_B,)),))
    assert {i.isrc for i in both.items} == {ISRC_A, ISRC_B}
    repository.register_model(shared, "m-both", both.root, card={}, actor="t")
    repository.register_model(shared, "m-b", only_b.root, card={}, actor="t")
    data = {"party": "P-B", "scope": "recording", "target": ISRC_B, "uses": ["all"], "effective": "2026-11-01"}
    r = client.post("/v1/optouts", headers=h["b"], json=data)  # flags m-b and m-both
    assert sorted(m["model_id"] for m in r.json()["flagged_models"]) == ["m-b", "m-both"]
    body = {"party": "P-A", "scope": "recording", "target": ISRC_A, "uses": ["all"], "effective": "2026-11-01"}
    r = client.post("/v1/optouts", headers=h["a"], json=body)
    assert r.status_code == 201, r.text
    assert [m["model_id"] for m in r.json()["flagged_models"]] == ["m-both"]
    body["target"], body["party"] = ISRC_B, "P-B"
    r = client.post("/v1/optouts", headers=h["ops"], json={**body, "uses": ["train"]})
    assert sorted(m["model_id"] for m in r.json()["flagged_models"]) == ["m-b", "m-both"]


# ---------------------------------------------------------------- through the portal


def test_the_portals_artist_opt_out_is_the_same_one_write_and_refuses_anothers_artist(
    shared: Store, settings: Settings
) -> None:
    secret = create_key(shared, role="rights_holder", party_id="P-A")[1]
    app = create_app(settings, store=shared)
    client = TestClient(app)

    def csrf(html: str) -> str:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
        assert found, "the page has no CSRF field"
        return found.group(1)

    signed = client.post("/portal/sign-in", data={"key": secret, "csrf": csrf(client.get("/portal/sign-in").text)})
    assert signed.status_code == 200, signed.text
    token = csrf(client.get("/portal/rights").text)
    before = registry_state(shared)
    assert client.post("/portal/rights/artists/P-BART/opt-out", data={"csrf": token}).status_code == 404
    assert registry_state(shared) == before
    done = client.post("/portal/rights/artists/P-AART/opt-out", data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert [(o.party_id, o.target) for o in current(shared).optouts.values()] == [("P-A", ISRC_A)]
    (event,) = [e for e in shared.audit_log() if e.action == "optout.artist"]
    assert event.detail["acting_as"] == "P-A" and event.detail["artist"] == "P-AART"


# ---------------------------------------------------------------- an ERN message


def test_an_ern_import_for_a_party_checks_the_sender_and_its_standing(shared: Store) -> None:
    single = Path(__file__).resolve().parent / "data" / "ddex" / "ern43" / "4 SimpleAudioSingle.xml"
    works = {"GBAYC1700598": ["W-B"]}
    before = registry_state(shared)
    with pytest.raises(ValidationError, match="sender"):
        import_ern(shared, single, works_by_isrc=works, as_party="P-A")
    with pytest.raises(Rejected) as info:  # the sender delivering a new recording owned by someone else
        import_ern(shared, single, works_by_isrc=works, master_owner="P-B", as_party="PADPIDA2007050901U")
    assert [(p.code, p.value) for p in info.value.problems] == [("no_standing", "GBAYC1700598")]
    assert registry_state(shared) == before
    report = import_ern(shared, single, works_by_isrc=works, as_party="PADPIDA2007050901U")
    assert report.changed_anything
