"""The public training-content summary: totals, licensors and their licensing basis, privacy."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets.manifest import Manifest, build_manifest
from accord.datasets.summary import WITHHELD, hours, render_markdown, summarize
from accord.registry.entities import Catalog, MediaRef, Party, PartyKind, Recording, Source
from accord.registry.store import Store
from accord.registry.versioning import ChangeSet
from tests.factories import AT, agreement, catalog, optout, recording, work

MINUTE = 60_000
HUSH_START = datetime(2026, 2, 1, tzinfo=UTC)
HUSH_END = datetime(2027, 1, 1, tzinfo=UTC)
TRAD = Source(
    "SRC-TRAD", "Traditional tunes collection", origin="session archive", terms="CC BY 4.0", public_domain=True
)


def with_midi(rec: Recording, *, source: str = "", size: int = 1_000) -> Recording:
    """A factory recording with one MIDI file (named by a hash of its ISRC) and a source."""
    sha = hashlib.sha256(rec.isrc.encode()).hexdigest()
    return dataclasses.replace(rec, media=(MediaRef(sha, "midi", size, f"{rec.isrc}.mid"),), source=source)


def with_sources(cat: Catalog, *sources: Source) -> Catalog:
    return dataclasses.replace(cat, sources={s.source_id: s for s in sources})


def build(cat: Catalog, **kwargs: object) -> Manifest:
    return build_manifest(cat, use="train", as_of=AT, territory="GB", **kwargs)


def label_catalog(*, hush_discloses: bool = False) -> Catalog:
    """Aurora (label) and North (publisher) are named; Hushed Tones (label) asked not to be.

    Four recordings are licensed (150 minutes); "Shared Whisper" is co-owned by Aurora and
    Hushed Tones; "Unlicensed Air" belongs to a label with no agreement and is left out.
    """
    rec = recording
    return with_sources(
        catalog(
            Party("P-AURORA", PartyKind.LABEL, "Aurora Records"),
            Party("P-NORTH", PartyKind.PUBLISHER, "North Songs"),
            Party("P-HUSH", PartyKind.LABEL, "Hushed Tones Ltd", disclose=hush_discloses),
            with_midi(
                rec(
                    "GBXYZ2600001",
                    {"P-AURORA": 100},
                    ("W-1",),
                    title="Morning Reel",
                    duration_ms=30 * MINUTE,
                    genre="reel",
                ),
                source="SRC-TRAD",
                size=100,
            ),
            with_midi(
                rec(
                    "GBXYZ2600002",
                    {"P-AURORA": 100},
                    ("W-2",),
                    title="Evening Jig",
                    duration_ms=45 * MINUTE,
                    genre="jig",
                ),
                size=200,
            ),
            with_midi(
                rec(
                    "GBXYZ2600003",
                    {"P-HUSH": 100},
                    ("W-3",),
                    title="Quiet Waltz",
                    duration_ms=60 * MINUTE,
                    genre="waltz",
                ),
                size=300,
            ),
            with_midi(
                rec(
                    "GBXYZ2600004",
                    {"P-AURORA": 50, "P-HUSH": 50},
                    ("W-1",),
                    title="Shared Whisper",
                    duration_ms=15 * MINUTE,
                    genre="reel",
                ),
                size=400,
            ),
            with_midi(rec("GBXYZ2600005", {"P-LONE": 100}, ("W-2",), title="Unlicensed Air", genre="reel")),
            *(work(w, {"P-NORTH": 100}) for w in ("W-1", "W-2", "W-3")),
            agreement("AGR-AURORA", "P-AURORA"),
            agreement("AGR-NORTH", "P-NORTH", side="publishing", territory=("GB", "IE")),
            agreement("AGR-HUSH-M", "P-HUSH", uses=("train",), start=HUSH_START, end=HUSH_END),
        ),
        TRAD,
    )


def licensor(summary: dict, name: str) -> dict:
    return next(x for x in summary["licensors"] if x["licensor"] == name)


def test_hours_are_milliseconds_rounded_half_up_to_two_decimals():
    assert hours(150 * MINUTE) == 2.5
    assert hours(18_000) == 0.01  # 0.005 h rounds up
    assert hours(0) == 0.0


def test_totals_count_items_hours_bytes_and_exclusions_by_reason():
    cat = label_catalog()
    summary = summarize(build(cat), cat)
    assert summary["totals"] == {
        "items": 4,
        "duration_ms": 150 * MINUTE,
        "hours": 2.5,
        "bytes": 1_000,
        "excluded": 1,
        "excluded_by_reason": {"no_agreement": 1},
        "licensors": 3,
        "named_licensors": 2,
        "undisclosed_licensors": 1,
        "agreements": 3,
    }
    assert (summary["use"], summary["territory"], summary["as_of"]) == ("train", "GB", "2026-06-01T00:00:00Z")


def test_each_named_licensor_shows_its_items_hours_and_the_agreements_relied_on():
    cat = label_catalog()
    summary = summarize(build(cat), cat)
    aurora = licensor(summary, "Aurora Records")
    assert (aurora["party_id"], aurora["kind"], aurora["sides"]) == ("P-AURORA", "label", ["master"])
    assert (aurora["items"], aurora["hours"]) == (3, 1.5)
    assert aurora["agreements"] == [
        {
            "agreement_id": "AGR-AURORA",
            "side": "master",
            "uses": ["generate", "remix", "train"],
            "territory": "worldwide",
            "start": "2026-01-01T00:00:00Z",
            "end": None,
        }
    ]
    north = licensor(summary, "North Songs")
    assert (north["sides"], north["items"], north["hours"]) == (["publishing"], 4, 2.5)
    assert north["agreements"][0]["territory"] == "GB, IE"


def test_an_undisclosed_licensor_is_numbered_and_its_agreements_only_counted():
    cat = label_catalog()
    hidden = licensor(summarize(build(cat), cat), "undisclosed licensor 1")
    assert hidden["party_id"] is None and hidden["disclosed"] is False
    assert (hidden["items"], hidden["hours"], hidden["sides"]) == (2, 1.25, ["master"])
    assert hidden["agreements"] == [] and hidden["examples"] == []
    assert hidden["basis"] == {
        "agreement_count": 1,
        "uses": ["train"],
        "territories": ["worldwide"],
        "start": "2026-02-01T00:00:00Z",
        "end": "2027-01-01T00:00:00Z",
    }


def test_undisclosed_licensors_are_numbered_by_item_count_not_by_id():
    cat = label_catalog()
    cat = dataclasses.replace(
        cat,
        parties={**cat.parties, "P-AAA": Party("P-AAA", PartyKind.LABEL, "Aaa Quiet", disclose=False)},
        recordings={**cat.recordings, "GBXYZ2600009": with_midi(recording("GBXYZ2600009", {"P-AAA": 100}, ("W-1",)))},
        agreements={**cat.agreements, "AGR-AAA": agreement("AGR-AAA", "P-AAA")},
    )
    summary = summarize(build(cat), cat)
    assert licensor(summary, "undisclosed licensor 1")["items"] == 2  # P-HUSH, though P-AAA sorts first
    assert licensor(summary, "undisclosed licensor 2")["items"] == 1


def test_examples_are_sorted_titles_of_items_no_undisclosed_party_is_on():
    cat = label_catalog()
    summary = summarize(build(cat), cat)
    assert licensor(summary, "Aurora Records")["examples"] == ["Evening Jig", "Morning Reel"]
    assert licensor(summary, "North Songs")["examples"] == ["Evening Jig", "Morning Reel"]


def test_once_a_licensor_agrees_to_be_named_its_titles_may_be_examples():
    cat = label_catalog(hush_discloses=True)
    summary = summarize(build(cat), cat)
    assert licensor(summary, "Hushed Tones Ltd")["examples"] == ["Quiet Waltz", "Shared Whisper"]
    assert summary["totals"]["undisclosed_licensors"] == 0


def test_genres_and_sources_carry_counts_and_hours():
    cat = label_catalog()
    summary = summarize(build(cat), cat)
    assert [(g["genre"], g["items"], g["hours"]) for g in summary["genres"]] == [
        ("jig", 1, 0.75),
        ("reel", 2, 0.75),
        ("waltz", 1, 1.0),
    ]
    sources = {s["source_id"]: s for s in summary["sources"]}
    assert sources["SRC-TRAD"]["title"] == "Traditional tunes collection"
    assert (sources["SRC-TRAD"]["public_domain"], sources["SRC-TRAD"]["terms"], sources["SRC-TRAD"]["items"]) == (
        True,
        "CC BY 4.0",
        1,
    )
    assert sources[""]["items"] == 3  # no source on record


def test_time_span_runs_from_the_earliest_start_to_the_latest_end_or_open_ended():
    cat = label_catalog()
    assert summarize(build(cat), cat)["time_span"] == {
        "as_of": "2026-06-01T00:00:00Z",
        "earliest_start": "2026-01-01T00:00:00Z",
        "latest_end": None,
        "open_ended": True,
    }


UNDISCLOSED_SECRETS = (
    "Hushed Tones",
    "P-HUSH",
    "AGR-HUSH-M",
    "Quiet Waltz",
    "Shared Whisper",
    "GBXYZ2600003",
    "GBXYZ2600004",
)


@pytest.mark.parametrize("secret", UNDISCLOSED_SECRETS)
def test_nothing_of_an_undisclosed_licensor_appears_in_the_json_or_the_markdown(secret: str):
    cat = label_catalog()
    summary = summarize(build(cat), cat)
    assert secret.casefold() not in json.dumps(summary).casefold()
    assert secret.casefold() not in render_markdown(summary).casefold()


def test_a_filter_naming_an_undisclosed_licensor_is_withheld_and_listed_isrcs_only_counted():
    cat = label_catalog()
    filters = (("isrc", ("GBXYZ2600001", "GBXYZ2600003")), ("licensor", ("P-AURORA", "P-HUSH")))
    summary = summarize(build(cat, filters=filters), cat)
    assert summary["filters"] == {"isrc": ["2 listed recordings"], "licensor": [WITHHELD, "P-AURORA"]}
    assert "GBXYZ2600001" not in json.dumps(summary)


def test_a_source_text_that_names_an_undisclosed_licensor_is_withheld():
    cat = with_sources(label_catalog(), dataclasses.replace(TRAD, title="Hushed Tones Ltd archive"))
    summary = summarize(build(cat), cat)
    assert {s["title"] for s in summary["sources"]} == {WITHHELD, "(not recorded)"}


def test_the_summary_is_deterministic_and_json_ready():
    cat = label_catalog()
    manifest = build(cat)
    first, second = summarize(manifest, cat), summarize(manifest, cat)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert render_markdown(first) == render_markdown(second)


def test_the_markdown_has_a_title_an_explanation_and_tables():
    cat = label_catalog()
    page = render_markdown(summarize(build(cat), cat))
    assert page.startswith("# Training content summary\n")
    assert "## What this is" in page
    assert "1 of 3 licensors asked not to be named" in page
    assert "| Aurora Records | label | master | 3 | 1.50 | 1 |" in page
    assert "| undisclosed licensor 1 | 1 agreement | train | worldwide |" in page
    assert "| Traditional tunes collection | CC BY 4.0 | yes | 1 | 0.50 |" in page
    assert "| hours of music | 2.50 |" in page


def test_an_empty_manifest_summarizes_to_zeroes():
    cat = catalog(with_midi(recording("GBXYZ2600001", {"P-LONE": 100})))
    summary = summarize(build(cat), cat)
    assert summary["totals"]["items"] == 0 and summary["licensors"] == []
    assert summary["time_span"]["earliest_start"] is None and summary["time_span"]["open_ended"] is False
    assert "# Training content summary" in render_markdown(summary)


# --- property: whoever asks not to be named, nothing of theirs leaks ---------------------------

LABELS = {"P-AURORA": "Aurora Records", "P-BOREAL": "Borealis Music", "P-COBALT": "Cobalt Sound"}
PUBLISHERS = {"P-DELTA": "Delta Publishing", "P-EMBER": "Ember Songs"}
TITLES = ("Alpha Tune", "Bravo Air", "Charlie Reel", "Dancing Echo", "Foxtrot Hymn")
ISRCS = tuple(f"GBXYZ26{n:05d}" for n in range(11, 16))

owner_sets = st.lists(
    st.lists(st.sampled_from(sorted(LABELS)), min_size=1, max_size=2, unique=True), min_size=5, max_size=5
)
publisher_sets = st.lists(
    st.lists(st.sampled_from(sorted(PUBLISHERS)), min_size=1, max_size=2, unique=True), min_size=5, max_size=5
)


def random_catalog(owners: list[list[str]], publishers: list[list[str]], hidden: set[str]) -> Catalog:
    def split(ids: list[str]) -> dict[str, str]:
        return {ids[0]: "100"} if len(ids) == 1 else {ids[0]: "50", ids[1]: "50"}

    names = {**LABELS, **PUBLISHERS}
    return catalog(
        *(
            Party(pid, PartyKind.LABEL if pid in LABELS else PartyKind.PUBLISHER, n, disclose=pid not in hidden)
            for pid, n in names.items()
        ),
        *(
            with_midi(recording(isrc, split(o), (f"W-{n}",), title=t))
            for n, (isrc, t, o) in enumerate(zip(ISRCS, TITLES, owners, strict=True))
        ),
        *(work(f"W-{n}", split(p)) for n, p in enumerate(publishers)),
        *(agreement(f"AGR-{pid.removeprefix('P-')}-M", pid) for pid in LABELS),
        *(agreement(f"AGR-{pid.removeprefix('P-')}-P", pid, side="publishing") for pid in PUBLISHERS),
    )


def people_on(cat: Catalog, rec: Recording) -> set[str]:
    return {s.party_id for s in rec.shares} | {s.party_id for w in rec.works for s in cat.works[w].shares}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(owner_sets, publisher_sets, st.sets(st.sampled_from(sorted({**LABELS, **PUBLISHERS}))))
def test_property_no_undisclosed_name_id_agreement_title_or_isrc_ever_appears(owners, publishers, hidden):
    cat = random_catalog(owners, publishers, hidden)
    summary = summarize(build(cat), cat)
    text = (json.dumps(summary) + render_markdown(summary)).casefold()
    secrets = {a.agreement_id for a in cat.agreements.values() if a.licensor in hidden}
    for pid in hidden:
        on = [r for r in cat.recordings.values() if pid in people_on(cat, r)]
        secrets |= {pid, cat.parties[pid].name} | {r.isrc for r in on} | {r.title for r in on}
    assert not [s for s in secrets if s.casefold() in text]
    # disclosure changes who is named, never the totals
    licensors = {p for o in owners + publishers for p in o}
    assert (summary["totals"]["items"], summary["totals"]["licensors"]) == (5, len(licensors))
    assert summary["totals"]["undisclosed_licensors"] == len(hidden & licensors)


# --- through the real store: a flag read back from SQLite / PostgreSQL is still honoured ---------


def stored(store: Store, cat: Catalog) -> None:
    """Put a factory catalog into the registry, as a delivery would."""
    store.apply(
        ChangeSet(
            sources=tuple(cat.sources.values()),
            parties=tuple(cat.parties.values()),
            works=tuple(cat.works.values()),
            recordings=tuple(cat.recordings.values()),
            agreements=tuple(cat.agreements.values()),
        ),
        actor="test",
        action="test.delivery",
    )


def test_a_stored_licensor_that_asked_not_to_be_named_keeps_its_flag(store: Store):
    stored(store, label_catalog())
    assert store.snapshot().parties["P-HUSH"].disclose is False
    assert store.snapshot().parties["P-AURORA"].disclose is True


@pytest.mark.parametrize("secret", UNDISCLOSED_SECRETS)
def test_a_summary_built_through_the_store_names_an_undisclosed_licensor_nowhere(store: Store, secret: str):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from accord.datasets import service
    from accord.signing import OperatorKey

    stored(store, label_catalog())
    key = OperatorKey(Ed25519PrivateKey.generate())
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    summary = summarize(manifest, store.snapshot(manifest.header.as_of))
    assert secret.casefold() not in json.dumps(summary).casefold()
    assert secret.casefold() not in render_markdown(summary).casefold()
    # the undisclosed licensor is counted under an anonymous line: totals still add up
    assert summary["totals"]["undisclosed_licensors"] == 1
    assert licensor(summary, "undisclosed licensor 1")["items"] == 2


def test_a_manifest_diff_through_the_store_names_an_undisclosed_licensor_nowhere(store: Store):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from accord.datasets import service
    from accord.datasets.diff import diff_manifests
    from accord.datasets.disclosure import Undisclosed
    from accord.signing import OperatorKey

    key = OperatorKey(Ed25519PrivateKey.generate())
    stored(store, label_catalog())
    a, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    newer = with_midi(recording("GBXYZ2600006", {"P-HUSH": 100}, ("W-1",), title="Hidden Hornpipe"))
    store.apply(
        ChangeSet(recordings=(newer,), optouts=(optout("O-H", "P-HUSH", "recording", "GBXYZ2600003", ("train",)),)),
        actor="P-HUSH",
        action="test.changes",
    )
    b, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    plain = diff_manifests(a, b).to_dict()
    assert "P-HUSH" in json.dumps(plain) and "AGR-HUSH-M" in json.dumps(plain)  # what the diff would say
    diff = diff_manifests(a, b, undisclosed=Undisclosed.of(store.snapshot())).to_dict()
    text = json.dumps(diff).casefold()
    for secret in ("Hushed Tones", "P-HUSH", "AGR-HUSH-M", "Hidden Hornpipe", "Quiet Waltz"):
        assert secret.casefold() not in text
    assert "(undisclosed)" in text
    assert diff["counts"] == plain["counts"] == {"added": 1, "removed": 1, "changed": 0}
    assert diff["counts_by_code"] == plain["counts_by_code"]
