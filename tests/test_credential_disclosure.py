"""The public form of an attribution: parties that asked not to be named are only commitments.

Pure tests (no store): the public form holds to the contract, keeps every sum, names nothing
hidden, is deterministic, and each commitment opens to the entry it hides; the contract still
refuses malformed entries. The round trip through the studio, the store, the API, the portal,
the CLI and the royalty run is in ``test_credential_disclosure_store.py``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord import visibility
from accord.attribution.contract import PPM_WHOLE, TOP_N, attribution_problems
from accord.attribution.disclosure import Hidden, Opening, named_isrcs, opened_view, opens, publish
from accord.registry.entities import Catalog, PartyKind
from tests import factories as f

SECRET = bytes(range(32))
PARTIES = {"P-ALPHA": "Alpha Tones", "P-BRAVO": "Bravo Sounds", "P-CHARLIE": "Charlie Music", "P-DELTA": "Delta Songs"}


def isrc(n: int) -> str:
    return f"GBXYZ26{n:05d}"


def world(owners: list[tuple[str, str]], hidden: set[str]) -> Catalog:
    """Recording n is owned by ``owners[n][0]`` and embodies work W-0n, published by ``owners[n][1]``."""
    records: list[Any] = [
        replace(f.party(p, PartyKind.LABEL, name), disclose=p not in hidden) for p, name in PARTIES.items()
    ]
    for n, (label, publisher) in enumerate(owners):
        records.append(f.recording(isrc(n), {label: 100}, [f"W-{n:02d}"], title=f"Song {n:02d}"))
        records.append(f.work(f"W-{n:02d}", {publisher: 100}, title=f"Tune {n:02d}"))
    return f.catalog(*records)


def contract(catalog: Catalog, weights: dict[str, int], *, reliable: bool = True) -> dict[str, Any]:
    """The attribution contract for ``weights`` (ISRC → ppm): works and holders summed from the items."""
    items = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
    works: dict[str, int] = {}
    master: dict[str, int] = {}
    publishing: dict[str, int] = {}
    for i, w in items:
        rec = catalog.recordings[i]
        for work_id in rec.works:
            works[work_id] = works.get(work_id, 0) + w
            for share in catalog.works[work_id].shares:
                publishing[share.party_id] = publishing.get(share.party_id, 0) + w
        for share in rec.shares:
            master[share.party_id] = master.get(share.party_id, 0) + w

    def listed(d: dict[str, int], key: str) -> list[dict[str, Any]]:
        return [{key: k, "weight_ppm": v} for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))]

    return {
        "status": "computed",
        "method": "test",
        "method_version": "1",
        "reliable": reliable,
        "unattributed_ppm": PPM_WHOLE - sum(weights.values()),
        "items": [{"isrc": i, "weight_ppm": w} for i, w in items],
        "works": listed(works, "work_id"),
        "holders": {"master": listed(master, "party_id"), "publishing": listed(publishing, "party_id")},
        "top": [
            {
                "isrc": i,
                "title": catalog.recordings[i].title,
                "weight_ppm": w,
                "works": [{"work_id": x, "title": catalog.works[x].title} for x in catalog.recordings[i].works],
            }
            for i, w in items[:TOP_N]
        ],
    }


def secrets_of(catalog: Catalog, hidden: set[str]) -> set[str]:
    """Every text of the hidden parties: ids, names, and the ISRCs, titles and works of their recordings."""
    out = set(hidden) | {PARTIES[p] for p in hidden}
    for i, rec in catalog.recordings.items():
        on = {s.party_id for s in rec.shares} | {s.party_id for w in rec.works for s in catalog.works[w].shares}
        if on & hidden:
            out |= {i, rec.title} | set(rec.works) | {catalog.works[w].title for w in rec.works}
    return out


def example() -> tuple[Catalog, dict[str, Any]]:
    """Three recordings; P-BRAVO (master owner of recording 1) asked not to be named."""
    cat = world([("P-ALPHA", "P-CHARLIE"), ("P-BRAVO", "P-CHARLIE"), ("P-ALPHA", "P-DELTA")], {"P-BRAVO"})
    return cat, contract(cat, {isrc(0): 300_000, isrc(1): 450_000, isrc(2): 100_000})


def sums(entries: list[dict[str, Any]]) -> list[int]:
    return sorted(e["weight_ppm"] for e in entries)


def test_a_hidden_owners_recording_work_and_holder_line_become_commitments_with_their_weights() -> None:
    cat, full = example()
    published = publish(full, {}, Hidden.of(cat), secret=SECRET, output_id="OUT-1")
    public = published.attribution
    assert attribution_problems(public) == []
    text = json.dumps(public)
    for secret in ("P-BRAVO", "Bravo Sounds", isrc(1), "Song 01", "W-01", "Tune 01"):
        assert secret not in text
    assert public["items"][0] == {"commitment": public["items"][0]["commitment"], "weight_ppm": 450_000}
    assert [t["isrc"] for t in public["top"]] == [isrc(0), isrc(2)]
    assert sums(public["items"]) == sums(full["items"]) and public["unattributed_ppm"] == 150_000
    assert {"party_id": "P-ALPHA", "weight_ppm": 400_000} in public["holders"]["master"]
    assert public["holders"]["publishing"] == full["holders"]["publishing"]  # P-CHARLIE and P-DELTA disclose
    assert all(opens(o) for o in published.openings)
    committed = {e["commitment"] for part in ("items", "works") for e in public[part] if "commitment" in e}
    committed |= {
        e["commitment"] for side in ("master", "publishing") for e in public["holders"][side] if "commitment" in e
    }
    assert committed == {o.commitment for o in published.openings}
    assert {(o.kind, o.value) for o in published.openings} == {
        ("items", isrc(1)),
        ("works", "W-01"),
        ("master", "P-BRAVO"),
    }
    assert published.private_record()["attribution"] == full


def test_commitments_are_deterministic_keyed_and_separated_by_output_and_kind() -> None:
    cat, full = example()
    hidden = Hidden.of(cat)
    one = publish(full, {}, hidden, secret=SECRET, output_id="OUT-1")
    assert publish(full, {}, hidden, secret=SECRET, output_id="OUT-1") == one
    other_output = publish(full, {}, hidden, secret=SECRET, output_id="OUT-2")
    other_key = publish(full, {}, hidden, secret=bytes(32), output_id="OUT-1")
    mine = {o.commitment for o in one.openings}
    assert not mine & {o.commitment for o in other_output.openings}
    assert not mine & {o.commitment for o in other_key.openings}
    both_sides = world([("P-BRAVO", "P-BRAVO")], {"P-BRAVO"})  # the same party on both sides: two commitments
    sided = publish(contract(both_sides, {isrc(0): 10}), {}, Hidden.of(both_sides), secret=SECRET, output_id="O")
    holders = sided.attribution["holders"]
    assert holders["master"][0]["commitment"] != holders["publishing"][0]["commitment"]


def test_an_opening_with_another_value_or_blind_does_not_open() -> None:
    cat, full = example()
    opening = publish(full, {}, Hidden.of(cat), secret=SECRET, output_id="OUT-1").openings[0]
    assert opens(opening) and opens(opening.to_dict())
    assert not opens(replace(opening, value=opening.value + "X"))
    assert not opens(replace(opening, blind="00" * 32))
    assert not opens(replace(opening, blind="not hex"))


def test_a_hidden_party_sees_its_own_entries_opened_and_everyone_else_the_public_form() -> None:
    cat, full = example()
    published = publish(full, {}, Hidden.of(cat), secret=SECRET, output_id="OUT-1")
    args = (full, published.attribution, published.openings, cat)
    bravo = visibility.shown_attribution(visibility.Party("P-BRAVO"), *args)
    assert bravo["items"][0]["isrc"] == isrc(1) and opens(_opening(bravo))
    assert {"party_id", "commitment", "blind", "weight_ppm"} == set(bravo["holders"]["master"][0])
    assert [t["isrc"] for t in bravo["top"]] == [isrc(1), isrc(0), isrc(2)]
    assert visibility.shown_attribution(visibility.Party("P-ALPHA"), *args) == published.attribution
    assert visibility.shown_attribution(visibility.Party("ana", visibility.CREATOR), *args) == published.attribution
    assert visibility.shown_attribution(visibility.Party("ops", visibility.OPERATOR), *args) == full
    not_own = opened_view(published.attribution, full, [])
    assert not_own == published.attribution


def _opening(view: dict[str, Any]) -> Opening:
    e = view["items"][0]
    return Opening(e["commitment"], "items", e["isrc"], e["blind"])


def test_guard_evidence_of_a_hidden_recording_keeps_its_scores_and_names_nothing() -> None:
    cat, full = example()
    guard = {
        "status": "clear",
        "closest": [
            {"isrc": isrc(1), "title": "Song 01", "check": "symbolic", "score": 2.5, "threshold": 9.0,
             "over_threshold": False, "catalog_line": "Song 01 melody", "piece_bars": [1, 2]},
            {"isrc": isrc(0), "title": "Song 00", "check": "symbolic", "score": 1.0, "threshold": 9.0,
             "over_threshold": False},
        ],
        "attempts": [{"seed": 1, "status": "clear", "closest": {"isrc": isrc(1), "check": "symbolic", "score": 2.5}}],
        "notes": ["compared with Bravo Sounds' Song 01"],
    }  # fmt: skip
    public = publish(full, guard, Hidden.of(cat), secret=SECRET, output_id="OUT-1").guard
    text = json.dumps(public)
    assert "Song 01" not in text and isrc(1) not in text and "Bravo" not in text
    assert set(public["closest"][0]) == {"commitment", "check", "score", "threshold", "over_threshold"}
    assert public["closest"][1] == guard["closest"][1]


def test_an_attribution_not_computed_is_public_as_it_is() -> None:
    cat, _ = example()
    pending = {"status": "not_computed", "note": "model files missing"}
    assert publish(pending, {}, Hidden.of(cat), secret=SECRET, output_id="O").attribution == pending


@pytest.mark.parametrize(
    ("where", "entry", "problem"),
    [
        ("items", {"isrc": "GBXYZ2600000", "commitment": "a" * 64, "weight_ppm": 1}, "exactly isrc (or commitment)"),
        ("items", {"commitment": "A" * 64, "weight_ppm": 1}, "64 lower-case hex"),
        ("items", {"commitment": "ab", "weight_ppm": 1}, "64 lower-case hex"),
        ("works", {"commitment": "a" * 64, "weight_ppm": 0}, "integer in 1..1,000,000"),
        ("works", {"commitment": "a" * 64}, "exactly work_id (or commitment)"),
    ],
)
def test_the_contract_refuses_a_malformed_committed_entry(where: str, entry: dict[str, Any], problem: str) -> None:
    cat, full = example()
    public = publish(full, {}, Hidden.of(cat), secret=SECRET, output_id="O").attribution
    public[where] = [*public[where], entry]
    assert any(problem in p for p in attribution_problems(public))


def test_the_contract_refuses_a_repeated_commitment_a_wrong_order_and_a_hidden_item_left_in_top() -> None:
    cat, full = example()
    public = publish(full, {}, Hidden.of(cat), secret=SECRET, output_id="O").attribution
    twice = {**public, "items": [public["items"][0], *public["items"]]}
    assert any("commitment appears twice" in p for p in attribution_problems(twice))
    backwards = {**public, "items": list(reversed(public["items"]))}
    assert any("not sorted" in p for p in attribution_problems(backwards))
    shown = {**public, "top": [{"isrc": isrc(1), "title": "", "weight_ppm": 1, "works": []}, *public["top"]]}
    assert any(".top:" in p for p in attribution_problems(shown))
    short = {**public, "top": public["top"][:1]}  # a named item of the full top left out
    assert any(".top:" in p for p in attribution_problems(short))
    assert attribution_problems(full) == []


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Catalog, dict[str, Any], set[str]]:
    names = sorted(PARTIES)
    n = draw(st.integers(1, 14))
    owners = [(draw(st.sampled_from(names)), draw(st.sampled_from(names))) for _ in range(n)]
    hidden = draw(st.sets(st.sampled_from(names)))
    cat = world(owners, hidden)
    chosen = draw(st.sets(st.integers(0, n - 1), min_size=1))
    weights = {isrc(i): draw(st.integers(1, PPM_WHOLE // 15)) for i in sorted(chosen)}
    if draw(st.booleans()):  # ties: equal weights, the order then decided by id or commitment
        weights = dict.fromkeys(weights, 1000)
    return cat, contract(cat, weights, reliable=draw(st.booleans())), hidden


@settings(max_examples=150, deadline=None)
@given(worlds(), st.text(min_size=1, max_size=12))
def test_property_public_form_keeps_sums_names_nothing_hidden_and_is_deterministic(
    w: tuple[Catalog, dict[str, Any], set[str]], output_id: str
) -> None:
    cat, full, hidden = w
    published = publish(full, {}, Hidden.of(cat), secret=SECRET, output_id=output_id)
    public = published.attribution
    assert attribution_problems(public) == []
    assert sum(e["weight_ppm"] for e in public["items"]) + public["unattributed_ppm"] == PPM_WHOLE
    for part in ("items", "works"):
        assert sums(public[part]) == sums(full[part])
    for side in ("master", "publishing"):
        assert sums(public["holders"][side]) == sums(full["holders"][side])
    text = json.dumps(public).casefold()
    assert not [s for s in secrets_of(cat, hidden) if s.casefold() in text]
    assert publish(full, {}, Hidden.of(cat), secret=SECRET, output_id=output_id) == published
    named_only = Hidden.of(cat, named_isrcs(full, {}))  # what the studio and the API look at
    assert publish(full, {}, named_only, secret=SECRET, output_id=output_id) == published
    assert all(opens(o) for o in published.openings)
    named = [e for e in public["items"] if "isrc" in e]
    assert named == [e for e in full["items"] if e["isrc"] in {x["isrc"] for x in named}]  # shown ones untouched
    if not hidden:
        assert public == full


def test_a_remix_of_a_hidden_recording_names_its_source_in_the_credential_only_by_commitment() -> None:
    cat, full = example()
    hidden = Hidden.of(cat)
    remix = publish(full, {}, hidden, secret=SECRET, output_id="O", prompt={"style": "reel", "from": isrc(1)})
    assert remix.prompt["style"] == "reel" and remix.prompt["from"] != isrc(1)
    assert next(o for o in remix.openings if o.kind == "prompt").commitment == remix.prompt["from"]
    shown = publish(full, {}, hidden, secret=SECRET, output_id="O", prompt={"style": "reel", "from": isrc(0)})
    assert shown.prompt == {"style": "reel", "from": isrc(0)}


def test_a_credentials_guard_accepts_committed_evidence_and_refuses_evidence_naming_nothing() -> None:
    from accord.provenance.credential import guard_problems

    base = {"status": "clear", "policy_version": "p", "threshold": 9.0, "audio_threshold": 20, "checks": ["symbolic"]}
    evidence = {"check": "symbolic", "score": 2.0, "threshold": 9.0, "over_threshold": False}
    assert guard_problems({**base, "closest": [{**evidence, "commitment": "ab" * 32}]}) == []
    assert guard_problems({**base, "closest": [{**evidence, "commitment": "AB" * 32}]}) != []
    assert guard_problems({**base, "closest": [evidence]}) != []
