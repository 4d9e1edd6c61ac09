"""Catalog delivery import: every error class, all-or-nothing, idempotence, history (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from accord.errors import Rejected
from accord.registry.entities import Share
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from tests.deliveries import MIDI_A, sha, small_catalog, write_delivery


def reject(store: Store, folder: Path) -> list[dict[str, str]]:
    with pytest.raises(Rejected) as info:
        import_delivery(store, folder)
    return [p.to_dict() for p in info.value.problems]


def codes(problems: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(p["code"], p["location"]) for p in problems}


def assert_nothing_written(store: Store) -> None:
    snap = store.snapshot()
    assert not snap.recordings and not snap.works and not snap.parties and not snap.agreements
    assert store.deliveries() == []
    assert store.audit_log() == []
    assert not store.media.root.exists() or not any(p.is_file() for p in store.media.root.rglob("*"))


def test_a_valid_delivery_imports_everything(store: Store, tmp_path: Path) -> None:
    report = import_delivery(store, write_delivery(tmp_path / "d", small_catalog()))
    assert report.changed_anything
    snap = store.snapshot()
    assert sorted(snap.recordings) == ["GBXYZ2600001", "GBXYZ2600002"]
    rec = snap.recordings["GBXYZ2600001"]
    assert rec.genre == "reel"
    assert rec.shares == (Share("P-LABEL", 1_000_000),)
    assert snap.works["W-1"].iswc == "T0345246801"
    assert snap.works["W-1"].shares == (Share("P-PUB", 600_000), Share("P-PUB2", 400_000))
    assert snap.parties["P-ARTIST"].isni == "000000012281955X"
    assert store.media.has(sha(MIDI_A))
    assert report.media_added == 2
    assert len(store.deliveries()) == 1


def test_importing_the_same_delivery_twice_changes_nothing_the_second_time(store: Store, tmp_path: Path) -> None:
    folder = write_delivery(tmp_path / "d", small_catalog())
    import_delivery(store, folder)
    before = (store.snapshot().recordings, store.deliveries(), len(store.audit_log()))
    again = import_delivery(store, folder)
    assert again.already_imported and not again.changed_anything
    assert (store.snapshot().recordings, store.deliveries(), len(store.audit_log())) == before


def test_a_new_delivery_with_the_same_facts_changes_nothing(store: Store, tmp_path: Path) -> None:
    import_delivery(store, write_delivery(tmp_path / "d1", small_catalog()))
    doc = small_catalog()
    doc["delivery_id"] = "TEST-002"
    report = import_delivery(store, write_delivery(tmp_path / "d2", doc))
    assert not report.changed_anything
    assert len(store.deliveries()) == 1


def test_a_later_delivery_updates_ownership_and_keeps_history(store: Store, tmp_path: Path, clock: Any) -> None:
    import_delivery(store, write_delivery(tmp_path / "d1", small_catalog()))
    first_import = clock.now
    doc = small_catalog()
    doc["delivery_id"] = "TEST-002"
    doc["parties"].append({"id": "P-LABEL2", "kind": "label", "name": "Co-owner"})
    doc["recordings"][0]["shares"] = [{"party": "P-LABEL", "share": "70"}, {"party": "P-LABEL2", "share": "30"}]
    doc["recordings"] = doc["recordings"][:1]
    report = import_delivery(store, write_delivery(tmp_path / "d2", doc))
    assert report.result is not None
    assert report.result.changed["recordings"] == 1 and report.result.added["parties"] == 1
    now = store.snapshot()
    assert now.recordings["GBXYZ2600001"].shares == (Share("P-LABEL", 700_000), Share("P-LABEL2", 300_000))
    assert "GBXYZ2600002" in now.recordings  # not mentioned: left as it was
    then = store.snapshot(first_import)
    assert then.recordings["GBXYZ2600001"].shares == (Share("P-LABEL", 1_000_000),)
    assert "P-LABEL2" not in then.parties
    versions = store.history("recordings", "GBXYZ2600001")
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].recorded_to == versions[1].recorded_from
    actions = [e.action for e in store.audit_log()]
    assert "recording.ownership_changed" in actions


def test_the_registry_before_any_import_is_empty_at_that_instant(store: Store, tmp_path: Path) -> None:
    import_delivery(store, write_delivery(tmp_path / "d", small_catalog()))
    assert store.snapshot(datetime(2020, 1, 1, tzinfo=UTC)).recordings == {}


def test_every_problem_is_reported_at_once_and_nothing_is_written(store: Store, tmp_path: Path) -> None:
    doc = small_catalog()
    doc["recordings"][0]["isrc"] = "XX-XYZ-26-00001"  # bad country prefix
    doc["recordings"][1]["shares"] = [{"party": "P-LABEL", "share": "99.5"}]  # sums to 99.5%
    doc["works"][0]["iswc"] = "T1234567893"  # bad check digit
    doc["parties"][1]["kind"] = "manager"  # not a party kind
    doc["agreements"][0]["uses"] = ["train", "voice"]  # voice is reserved
    problems = reject(store, write_delivery(tmp_path / "d", doc))
    found = codes(problems)
    assert ("invalid_identifier", "$.recordings[0].isrc") in found
    assert ("shares_sum", "$.recordings[1].shares") in found
    assert ("invalid_identifier", "$.works[0].iswc") in found
    assert ("invalid_value", "$.parties[1].kind") in found
    assert ("invalid_value", "$.agreements[0].uses[1]") in found
    for p in problems:
        assert p["file"] == "catalog.json" and p["expected"]
    assert_nothing_written(store)


@pytest.mark.parametrize(
    ("mutate", "code", "location"),
    [
        (lambda d: d.update(extra=1), "unknown_field", "$.extra"),
        (lambda d: d["recordings"][0].update(colour="red"), "unknown_field", "$.recordings[0].colour"),
        (lambda d: d.pop("delivery_id"), "missing_field", "$.delivery_id"),
        (lambda d: d["recordings"][0].pop("title"), "missing_field", "$.recordings[0].title"),
        (lambda d: d["recordings"][0].update(duration_ms="long"), "wrong_type", "$.recordings[0].duration_ms"),
        (lambda d: d["recordings"][0].update(duration_ms=0), "invalid_value", "$.recordings[0].duration_ms"),
        (lambda d: d["recordings"][0].update(works=[]), "missing_field", "$.recordings[0].works"),
        (lambda d: d.update(recordings={}), "wrong_type", "$.recordings"),
        (lambda d: d["parties"][0].update(dpid="PADPIDA2013020803I"), "invalid_identifier", "$.parties[0].dpid"),
        (lambda d: d["parties"][1].update(ipi="00000000100"), "invalid_identifier", "$.parties[1].ipi"),
        (lambda d: d["parties"][3].update(isni="0000 0001 1111 955X"), "invalid_identifier", "$.parties[3].isni"),
        (lambda d: d["parties"][0].update(territory="XX"), "invalid_value", "$.parties[0].territory"),
        (lambda d: d["parties"][0].update(id="has spaces"), "invalid_value", "$.parties[0].id"),
        (lambda d: d["works"][0]["shares"][0].update(share="60.00001"), "invalid_value", "$.works[0].shares[0].share"),
        (lambda d: d["works"][0]["shares"][0].update(share="-5"), "invalid_value", "$.works[0].shares[0].share"),
        (
            lambda d: d["works"][0]["shares"][0].update(share="60", share_ppm=600000),
            "invalid_value",
            "$.works[0].shares[0].share",
        ),
        (
            lambda d: d["works"][0]["shares"].append({"party": "P-PUB", "share": "0"}),
            "duplicate",
            "$.works[0].shares[2].party",
        ),
        (
            lambda d: d["works"][1]["shares"].__setitem__(0, {"party": "P-PUB", "share_ppm": 999999}),
            "shares_sum",
            "$.works[1].shares",
        ),
        (lambda d: d["works"][1].update(shares=[]), "missing_field", "$.works[1].shares"),
        (lambda d: d["recordings"].append(dict(d["recordings"][0])), "duplicate", "$.recordings[2].isrc"),
        (lambda d: d["parties"].append(dict(d["parties"][0])), "duplicate", "$.parties[5].id"),
        (lambda d: d["works"][1].update(iswc="T-034.524.680-1"), "duplicate", "$.works[1].iswc"),
        (lambda d: d["recordings"][0].update(artists=["P-NOBODY"]), "unknown_reference", "$.recordings[0].artists[0]"),
        (lambda d: d["recordings"][0].update(works=["W-404"]), "unknown_reference", "$.recordings[0].works[0]"),
        (lambda d: d["recordings"][0].update(source="nowhere"), "unknown_reference", "$.recordings[0].source"),
        (
            lambda d: d["recordings"][0]["shares"][0].update(party="P-GHOST"),
            "unknown_reference",
            "$.recordings[0].shares[0].party",
        ),
        (lambda d: d["works"][0].update(writers=["P-GHOST"]), "unknown_reference", "$.works[0].writers[0]"),
        (lambda d: d.update(sender="P-GHOST"), "unknown_reference", "$.sender"),
        (lambda d: d.update(created="2026-10-01T00:00:00"), "invalid_date", "$.created"),
        (lambda d: d.update(accord_delivery="9.9"), "invalid_value", "$.accord_delivery"),
        (
            lambda d: d["recordings"][0]["media"][0].update(path="media/missing.mid"),
            "media_missing",
            "$.recordings[0].media[0].path",
        ),
        (
            lambda d: d["recordings"][0]["media"][0].update(path="../../etc/passwd"),
            "path_outside",
            "$.recordings[0].media[0].path",
        ),
        (
            lambda d: d["recordings"][0]["media"][0].update(sha256="0" * 64),
            "media_hash_mismatch",
            "$.recordings[0].media[0].sha256",
        ),
        (
            lambda d: d["recordings"][0]["media"][0].update(sha256="xyz"),
            "invalid_value",
            "$.recordings[0].media[0].sha256",
        ),
        (
            lambda d: d["recordings"][0]["media"][0].update(kind="video"),
            "invalid_value",
            "$.recordings[0].media[0].kind",
        ),
        (lambda d: d["recordings"][0].update(metadata={"k": [1]}), "wrong_type", "$.recordings[0].metadata.k"),
        (lambda d: d["agreements"][0].update(licensor="P-GHOST"), "unknown_reference", "$.agreements[0].licensor"),
        (lambda d: d["agreements"][0].update(side="both"), "invalid_value", "$.agreements[0].side"),
        (lambda d: d["agreements"][0].update(uses=[]), "missing_field", "$.agreements[0].uses"),
        (
            lambda d: d["agreements"][0].update(territory={"include": ["ZZ"]}),
            "invalid_value",
            "$.agreements[0].territory.include[0]",
        ),
        (
            lambda d: d["agreements"][0].update(territory={"include": ["GB"], "exclude": ["FR"]}),
            "invalid_value",
            "$.agreements[0].territory.exclude",
        ),
        (lambda d: d["agreements"][0].update(end="2025-01-01"), "invalid_value", "$.agreements[0].end"),
        (
            lambda d: d["agreements"][0].update(coverage={"works": ["W-1"]}),
            "invalid_value",
            "$.agreements[0].coverage.works",
        ),
        (
            lambda d: d["agreements"][0].update(coverage={"recordings": ["GBXYZ2699999"]}),
            "unknown_reference",
            "$.agreements[0].coverage.recordings[0]",
        ),
        (
            lambda d: d["agreements"][0]["terms"].update(pool_share="150"),
            "invalid_value",
            "$.agreements[0].terms.pool_share",
        ),
        (lambda d: d["agreements"][0]["terms"].pop("pool_share"), "missing_field", "$.agreements[0].terms.pool_share"),
        (
            lambda d: d["agreements"][0]["terms"].update(training_pool_method="lottery"),
            "invalid_value",
            "$.agreements[0].terms.training_pool_method",
        ),
        (
            lambda d: d["agreements"][0]["terms"].update(advance={"amount": "10", "currency": "XYZ"}),
            "invalid_value",
            "$.agreements[0].terms.advance",
        ),
        (lambda d: d["agreements"][0].update(model_scope="some"), "invalid_value", "$.agreements[0].model_scope"),
        (lambda d: d["agreements"].append(dict(d["agreements"][0])), "duplicate", "$.agreements[2].id"),
    ],
)
def test_each_error_class_is_named_with_its_location(
    store: Store, tmp_path: Path, mutate: Any, code: str, location: str
) -> None:
    doc = small_catalog()
    mutate(doc)
    problems = reject(store, write_delivery(tmp_path / "d", doc))
    assert (code, location) in codes(problems), problems
    assert_nothing_written(store)


@pytest.mark.parametrize(
    ("optout", "code", "field"),
    [
        ({"party": "P-PUB2", "scope": "recording", "target": "GBXYZ2600002", "uses": ["all"]}, "no_standing", "party"),
        (
            {"party": "P-ARTIST", "scope": "recording", "target": "GBXYZ2699999", "uses": ["all"]},
            "unknown_reference",
            "target",
        ),
        ({"party": "P-ARTIST", "scope": "work", "target": "W-1", "uses": ["train"]}, "no_standing", "party"),
        ({"party": "P-ARTIST", "scope": "catalog", "target": "W-1", "uses": ["train"]}, "invalid_value", "target"),
        ({"party": "P-ARTIST", "scope": "catalog", "uses": ["sing"]}, "invalid_value", "uses[0]"),
        ({"party": "P-ARTIST", "scope": "galaxy", "uses": ["train"]}, "invalid_value", "scope"),
    ],
)
def test_opt_outs_need_standing_and_valid_targets(
    store: Store, tmp_path: Path, optout: dict[str, Any], code: str, field: str
) -> None:
    doc = small_catalog()
    doc["optouts"] = [{"id": "OPT-1", "effective": "2026-09-01", **optout}]
    problems = reject(store, write_delivery(tmp_path / "d", doc))
    assert (code, f"$.optouts[0].{field}") in codes(problems), problems


def test_opt_outs_by_parties_with_standing_import(store: Store, tmp_path: Path) -> None:
    doc = small_catalog()
    doc["optouts"] = [
        {"id": "O1", "party": "P-ARTIST", "scope": "catalog", "uses": ["train"], "effective": "2026-09-01"},
        {"id": "O2", "party": "P-PUB2", "scope": "work", "target": "W-1", "uses": ["all"], "effective": "2026-09-01"},
        {
            "id": "O3",
            "party": "P-WRITER",
            "scope": "recording",
            "target": "GB-XYZ-26-00002",
            "uses": ["remix"],
            "effective": "2026-09-01T10:00:00+02:00",
        },
    ]
    import_delivery(store, write_delivery(tmp_path / "d", doc))
    snap = store.snapshot()
    assert snap.optouts["O2"].uses == frozenset({"train", "generate", "remix"})
    assert snap.optouts["O3"].target == "GBXYZ2600002"
    assert snap.optouts["O3"].effective == datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


def test_unreadable_json_is_rejected_with_its_position(store: Store, tmp_path: Path) -> None:
    problems = reject(store, write_delivery(tmp_path / "d", {}, raw='{"accord_delivery": "1.0",,}'))
    assert problems[0]["code"] == "unreadable" and problems[0]["location"].startswith("line 1")


def test_a_folder_without_a_catalog_is_rejected(store: Store, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    problems = reject(store, tmp_path / "empty")
    assert problems[0]["code"] == "not_found"


def test_floats_are_never_needed_shares_are_exact(store: Store, tmp_path: Path) -> None:
    doc = small_catalog()
    doc["works"][0]["shares"] = [
        {"party": "P-PUB", "share": "33.3334"},
        {"party": "P-PUB2", "share": "33.3333"},
        {"party": "P-WRITER", "share": "33.3333"},
    ]
    import_delivery(store, write_delivery(tmp_path / "d", doc))
    assert [s.ppm for s in store.snapshot().works["W-1"].shares] == [333_334, 333_333, 333_333]
    raw = json.dumps(doc).replace('"33.3334"', "33.3334")  # a JSON number is read exactly, too
    doc2 = json.loads(raw)
    doc2["delivery_id"] = "again"
    assert not import_delivery(store, write_delivery(tmp_path / "d2", doc2)).changed_anything


def test_a_crash_while_writing_leaves_the_registry_and_media_store_as_before(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import accord.registry.store as store_module

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store_module, "_audit", explode)  # fails after rows were inserted, before commit
    with pytest.raises(RuntimeError):
        import_delivery(store, write_delivery(tmp_path / "d", small_catalog()))
    assert_nothing_written(store)


def test_an_import_for_a_party_lists_every_record_outside_its_standing_where_it_stands(
    store: Store, tmp_path: Path
) -> None:
    import_delivery(store, write_delivery(tmp_path / "d", small_catalog()))  # by the operator

    def state() -> tuple[Any, ...]:
        return (replace(store.snapshot(), as_of=None), store.deliveries(), store.audit_log())

    before = state()
    doc = small_catalog()
    doc["delivery_id"] = "TEST-002"
    doc["works"][0]["title"] = "First Song (P-PUB's)"
    doc["agreements"][1]["uses"] = ["train", "generate", "remix"]
    doc["parties"][1]["name"] = "Renamed Publishing"
    doc["optouts"] = [{"id": "O1", "party": "P-ARTIST", "scope": "catalog", "uses": ["all"], "effective": "2026-09-01"}]
    with pytest.raises(Rejected) as info:
        import_delivery(store, write_delivery(tmp_path / "d2", doc), as_party="P-LABEL")
    found = {(p.code, p.location) for p in info.value.problems}
    assert found == {
        ("no_standing", "$.works[0]"),
        ("no_standing", "$.agreements[1]"),
        ("no_standing", "$.parties[1]"),
        ("no_standing", "$.optouts[0]"),
    }
    assert state() == before


@pytest.mark.parametrize(
    ("raw", "location", "expected"),
    [
        ('{"accord_delivery": "1.0", "sender": "A", "sender": "B"}', "$", "duplicate key 'sender'"),
        ('{"accord_delivery": "1.0", "recordings": [{"duration_ms": NaN}]}', "$", "finite number"),
        ('{"a": ' * 200 + "1" + "}" * 200, "line 1 (character 384)", "nested deeper than 64 levels"),
    ],
)
def test_untrusted_json_is_refused_before_validation_and_nothing_is_written(
    store: Store, tmp_path: Path, raw: str, location: str, expected: str
) -> None:
    (problem,) = reject(store, write_delivery(tmp_path / "d", {}, raw=raw))
    assert (problem["code"], problem["file"], problem["location"]) == ("unreadable", "catalog.json", location)
    assert expected in problem["expected"]
    assert_nothing_written(store)
