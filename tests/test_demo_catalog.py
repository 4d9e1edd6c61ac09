"""The demo catalog delivery (accord.demo) and the batch executor (accord.execution).

The demo builds read a few pieces per collection from the music21 corpus; the whole
module runs in a few seconds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import mido
import pytest

from accord.demo import DemoBuildReport, build_demo_delivery, rights
from accord.demo.corpus import CHORALE, TUNE, abc_tunes
from accord.demo.midi import duration_ms, render_midi
from accord.demo.scores import transcription_credit
from accord.demo.styles import abc_tempo, infer_style, normalise_style
from accord.errors import ValidationError
from accord.execution import (
    EXECUTORS,
    LocalPoolExecutor,
    SerialExecutor,
    get_executor,
    register_executor,
)
from accord.identifiers import validate_isrc, validate_iswc

LIMIT = 4
SITUATIONS = {s.name for s in rights.SITUATIONS}

# The keys docs/delivery-format.md allows, per object (unknown keys are rejected).
TOP_KEYS = {"accord_delivery", "delivery_id", "sender", "created", "sources", "parties", "works"}
TOP_KEYS |= {"recordings", "agreements", "optouts"}
SOURCE_KEYS = {"id", "title", "origin", "terms", "public_domain"}
PARTY_KEYS = {"id", "kind", "name", "ipi", "isni", "dpid", "territory"}
WORK_KEYS = {"id", "iswc", "title", "writers", "shares"}
RECORDING_KEYS = {"isrc", "title", "artists", "duration_ms", "genre", "works", "shares"}
RECORDING_KEYS |= {"media", "source", "metadata"}
AGREEMENT_KEYS = {"id", "licensor", "side", "uses", "territory", "start", "end", "coverage"}
AGREEMENT_KEYS |= {"terms", "model_scope"}
TERMS_KEYS = {"pool_share", "master_split", "training_pool_method", "minimum_guarantee", "advance"}
OPTOUT_KEYS = {"id", "party", "scope", "target", "uses", "effective"}


@dataclass(frozen=True)
class Builds:
    """Three builds of the same small demo: fresh inline, cached, fresh in a pool."""

    first: DemoBuildReport
    cached: DemoBuildReport
    pooled: DemoBuildReport
    stages: list[tuple[str, int, int]]

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads((self.first.path / "catalog.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    tmp = tmp_path_factory.mktemp("demo")
    stages: list[tuple[str, int, int]] = []
    first = build_demo_delivery(
        tmp / "first",
        cache_dir=tmp / "cache",
        limit_per_collection=LIMIT,
        workers=1,
        progress=lambda stage, done, total: stages.append((stage, done, total)),
    )
    cached = build_demo_delivery(tmp / "cached", cache_dir=tmp / "cache", limit_per_collection=LIMIT, workers=2)
    pooled = build_demo_delivery(tmp / "pooled", cache_dir=tmp / "cache-2", limit_per_collection=LIMIT, workers=2)
    return Builds(first, cached, pooled, stages)


def ppm(share: object) -> int:
    """A delivery share (percentage string, at most four decimals) in exact ppm."""
    text = str(share)
    assert re.fullmatch(r"\d{1,3}(\.\d{1,4})?", text), text
    value = Decimal(text) * 10_000
    assert value == value.to_integral_value(), text
    return int(value)


# --------------------------------------------------------------------------- the contract


def test_catalog_json_has_only_the_keys_the_delivery_format_allows(builds: Builds) -> None:
    doc = builds.doc
    assert set(doc) <= TOP_KEYS
    assert doc["accord_delivery"] == "1.0"
    assert doc["created"] == "2026-11-01T00:00:00Z"
    assert doc["delivery_id"]
    for key, allowed in [
        ("sources", SOURCE_KEYS),
        ("parties", PARTY_KEYS),
        ("works", WORK_KEYS),
        ("recordings", RECORDING_KEYS),
        ("agreements", AGREEMENT_KEYS),
        ("optouts", OPTOUT_KEYS),
    ]:
        assert doc[key], key
        for item in doc[key]:
            assert set(item) <= allowed, (key, set(item) - allowed)
    for agreement in doc["agreements"]:
        assert set(agreement["terms"]) <= TERMS_KEYS
        assert set(agreement["uses"]) <= {"train", "generate", "remix"}
        assert agreement["side"] in {"master", "publishing"}
        assert agreement["model_scope"] in {"any", "approved_versions"}
        assert agreement["terms"]["training_pool_method"] in {"equal_per_work", "pro_rata_duration"}


def test_recordings_carry_every_required_field(builds: Builds) -> None:
    for rec in builds.doc["recordings"]:
        assert rec["title"] and rec["artists"] and rec["works"] and rec["shares"]
        assert isinstance(rec["duration_ms"], int) and rec["duration_ms"] > 0
        assert rec["genre"] == rec["genre"].lower() and rec["genre"]
        assert len(rec["media"]) == 1 and rec["media"][0]["kind"] == "midi"
        meta = rec["metadata"]
        assert all(isinstance(v, str | int | float | bool) for v in meta.values())
        for key in ("key", "meter", "tempo_bpm", "program", "collection", "corpus_path"):
            assert meta[key], key
        assert 0 <= int(meta["program"]) <= 127
        assert meta["demo_identifiers"] == "true"


def test_party_ids_and_kinds_follow_the_format(builds: Builds) -> None:
    kinds = {"label", "publisher", "artist", "writer", "operator"}
    for party in builds.doc["parties"]:
        assert re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", party["id"])
        assert party["kind"] in kinds


def test_shares_sum_to_exactly_one_million_ppm(builds: Builds) -> None:
    doc = builds.doc
    for item in doc["recordings"] + doc["works"]:
        assert sum(ppm(s["share"]) for s in item["shares"]) == 1_000_000, item
    splits = {tuple(s["share"] for s in w["shares"]) for w in doc["works"]}
    assert any(len(split) > 1 for split in splits)  # co-published works exist


def test_every_reference_resolves(builds: Builds) -> None:
    doc = builds.doc
    parties = {p["id"] for p in doc["parties"]}
    works = {w["id"] for w in doc["works"]}
    sources = {s["id"] for s in doc["sources"]}
    isrcs = {r["isrc"] for r in doc["recordings"]}
    assert doc["sender"] in parties
    for rec in doc["recordings"]:
        assert set(rec["artists"]) <= parties
        assert {s["party"] for s in rec["shares"]} <= parties
        assert set(rec["works"]) <= works
        assert rec["source"] in sources
    for work in doc["works"]:
        assert set(work["writers"]) <= parties
        assert {s["party"] for s in work["shares"]} <= parties
    for agreement in doc["agreements"]:
        assert agreement["licensor"] in parties
    for optout in doc["optouts"]:
        assert optout["party"] in parties
        assert optout.get("target", "") in isrcs | works | {""}
    assert works == {w for r in doc["recordings"] for w in r["works"]}  # no orphan works


def test_media_files_exist_inside_the_folder_and_match_their_sha256(builds: Builds) -> None:
    folder = builds.first.path.resolve()
    listed = set()
    for rec in builds.doc["recordings"]:
        media = rec["media"][0]
        path = (folder / media["path"]).resolve()
        assert path.is_relative_to(folder) and path.is_file()
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == media["sha256"]
        midi = mido.MidiFile(path)
        assert midi.tracks and abs(midi.length * 1000 - rec["duration_ms"]) <= 1
        listed.add(path)
    assert listed == {p.resolve() for p in (folder / "media").rglob("*") if p.is_file()}


def test_identifiers_are_valid_and_marked_as_demo(builds: Builds) -> None:
    doc = builds.doc
    isrcs = [r["isrc"] for r in doc["recordings"]]
    assert len(set(isrcs)) == len(isrcs)
    for isrc in isrcs:
        assert validate_isrc(isrc) == isrc
        assert re.fullmatch(r"ZZ(AUR|KES|TDW|OLD|FEN)26\d{5}", isrc)
    iswcs = [w["iswc"] for w in doc["works"]]
    assert len(set(iswcs)) == len(iswcs)
    for iswc in iswcs:
        assert validate_iswc(iswc) == iswc and int(iswc[1:10]) > 900_000_000
    notes = [s for s in doc["sources"] if "demo identifiers" in s["terms"]]
    assert any(s["id"] == "SRC-DEMO-RIGHTS" for s in notes)


def test_every_list_is_sorted_by_id(builds: Builds) -> None:
    doc = builds.doc
    for key, id_key in [
        ("sources", "id"),
        ("parties", "id"),
        ("works", "id"),
        ("recordings", "isrc"),
        ("agreements", "id"),
        ("optouts", "id"),
    ]:
        ids = [item[id_key] for item in doc[key]]
        assert ids == sorted(ids), key


# --------------------------------------------------------------------------- the rights picture


def _agreements_of(doc: dict[str, Any], party: str) -> list[dict[str, Any]]:
    return [a for a in doc["agreements"] if a["licensor"] == party]


def _owners(item: dict[str, Any]) -> dict[str, int]:
    return {s["party"]: ppm(s["share"]) for s in item["shares"]}


def test_every_policy_situation_is_present(builds: Builds) -> None:
    doc = builds.doc
    works = {w["id"]: w for w in doc["works"]}
    recs = doc["recordings"]

    def publishers(rec: dict[str, Any]) -> set[str]:
        return {p for w in rec["works"] for p in _owners(works[w])}

    signed = {a["licensor"] for a in doc["agreements"]}
    # (1) fully licensed: Aurora master, publishing only by parties with worldwide all-use deals
    licensed = [
        r
        for r in recs
        if _owners(r) == {"P-AURORA": 1_000_000}
        and publishers(r) <= {"P-NORTHSTAR", rights.ARRANGER}
        and rights.QUINLAN not in r["artists"]
    ]
    assert licensed
    # (2) master licensed, publishing not: Harbour Lane has not signed
    assert "P-HARBOUR" not in signed
    assert any("P-HARBOUR" in publishers(r) and set(_owners(r)) <= signed for r in recs)
    # (3) generate but not train: Tidewater
    (tidewater,) = _agreements_of(doc, "P-TIDEWATER")
    assert tidewater["uses"] == ["generate"]
    assert any("P-TIDEWATER" in _owners(r) for r in recs)
    # (4) expired: Oldfield's agreement ended 2026-06-30
    (oldfield,) = _agreements_of(doc, "P-OLDFIELD")
    assert oldfield["end"].startswith("2026-06-30")
    assert any("P-OLDFIELD" in _owners(r) for r in recs)
    # (5) territory-limited: Greenhill includes GB and IE only
    (greenhill,) = _agreements_of(doc, "P-GREENHILL")
    assert greenhill["territory"] == {"include": ["GB", "IE"]}
    assert any("P-GREENHILL" in publishers(r) for r in recs)
    # (6) artist opt-out: Mara Quinlan, whole catalog, train, from 2026-09-01
    (optout,) = [o for o in doc["optouts"] if o["party"] == rights.QUINLAN]
    assert optout["scope"] == "catalog" and optout["uses"] == ["train"]
    assert optout["effective"].startswith("2026-09-01")
    assert any(rights.QUINLAN in r["artists"] for r in recs)
    # (7) co-owned, one owner unsigned: Kestrel 60% / Fenwick 40%, Fenwick has no agreement
    assert "P-FENWICK" not in signed
    assert any(_owners(r) == {"P-KESTREL": 600_000, "P-FENWICK": 400_000} for r in recs)
    # and the one approved-versions agreement, on Kestrel's own recordings
    (kestrel,) = _agreements_of(doc, "P-KESTREL")
    assert kestrel["model_scope"] == "approved_versions"
    assert any(_owners(r) == {"P-KESTREL": 1_000_000} for r in recs)
    assert {r["metadata"]["demo_situation"] for r in recs} == SITUATIONS


def test_agreements_carry_realistic_commercial_terms(builds: Builds) -> None:
    agreements = builds.doc["agreements"]
    terms = [a["terms"] for a in agreements]
    assert {t["training_pool_method"] for t in terms} == {"equal_per_work", "pro_rata_duration"}
    assert {t["master_split"] for t in terms} == {"50", "60"}
    assert all(20 <= Decimal(t["pool_share"]) <= 35 for t in terms)
    assert any(t["minimum_guarantee"] for t in terms) and any(t["advance"] for t in terms)
    for a in agreements:
        if a["licensor"] != "P-OLDFIELD":  # active: from 2026-01-01, open-ended
            assert a["start"].startswith("2026-01-01") and a["end"] is None


def test_writers_hold_between_none_and_half_of_a_work(builds: Builds) -> None:
    for work in builds.doc["works"]:
        writer_share = sum(ppm(s["share"]) for s in work["shares"] if s["party"].startswith("P-WRITER"))
        assert 0 <= writer_share <= 500_000


def test_a_full_size_catalog_is_mostly_fully_licensed() -> None:
    pieces = [(f"c/{n}", CHORALE) for n in range(370)] + [(f"t/{n}", TUNE) for n in range(1150)]
    chosen = rights.assign_situations(pieces)
    share = sum(1 for s in chosen.values() if s == "licensed") / len(chosen)
    assert 0.58 <= share <= 0.70
    assert set(chosen.values()) == SITUATIONS
    assert rights.assign_situations(list(reversed(pieces))) == chosen  # order does not matter


def test_a_small_build_still_shows_every_situation() -> None:
    pieces = [(f"c/{n}", CHORALE) for n in range(3)] + [(f"t/{n}", TUNE) for n in range(9)]
    chosen = rights.assign_situations(pieces)
    assert set(chosen.values()) == SITUATIONS
    assert all(rights.SITUATION_BY_NAME[chosen[p]].weights[k] > 0 for p, k in pieces)


# --------------------------------------------------------------------------- the build


def test_the_build_is_deterministic(builds: Builds) -> None:
    first = (builds.first.path / "catalog.json").read_bytes()
    assert (builds.cached.path / "catalog.json").read_bytes() == first
    assert (builds.pooled.path / "catalog.json").read_bytes() == first  # fresh cache, pool
    assert b"2026-11-01T00:00:00Z" in first
    for rec in builds.doc["recordings"]:
        path = rec["media"][0]["path"]
        assert (builds.pooled.path / path).read_bytes() == (builds.first.path / path).read_bytes()


def test_a_second_build_reads_the_cache(builds: Builds) -> None:
    assert not builds.first.from_cache and not builds.pooled.from_cache
    assert builds.cached.from_cache
    assert all(c.cached == c.selected for c in builds.cached.collections)
    assert all(c.cached == 0 for c in builds.first.collections)


def test_the_report_counts_what_was_written(builds: Builds) -> None:
    report, doc = builds.first, builds.doc
    assert report.recordings == len(doc["recordings"]) == report.exported
    assert report.works == len(doc["works"])
    assert (report.parties, report.agreements, report.optouts) == (
        len(doc["parties"]),
        len(doc["agreements"]),
        len(doc["optouts"]),
    )
    for c in report.collections:
        assert c.selected == min(LIMIT, c.found - c.duplicates)
        assert c.exported + c.skipped == c.selected
        assert sum(n for _, n in c.skip_reasons) == c.skipped
    assert sum(n for _, n in report.situations) == report.recordings
    assert sum(n for _, n in report.styles) == report.recordings


def test_progress_reports_every_stage_to_its_end(builds: Builds) -> None:
    stages = builds.stages
    assert list(dict.fromkeys(name for name, _, _ in stages)) == ["scan", "parse", "render", "write"]
    for name in ("scan", "parse", "render", "write"):
        last = [(d, t) for s, d, t in stages if s == name][-1]
        assert last[0] == last[1]


def test_excluded_collections_are_never_used_and_say_why(builds: Builds) -> None:
    doc = builds.doc
    for rec in doc["recordings"]:
        assert rec["metadata"]["collection"] in {"bach", "oneills1850", "ryansMammoth", "airdsAirs"}
        assert not rec["metadata"]["corpus_path"].startswith(("essenFolksong", "palestrina"))
    excluded = {s["id"]: s for s in doc["sources"] if s["title"].startswith("EXCLUDED")}
    assert set(excluded) == {"SRC-EXCLUDED-ESSEN", "SRC-EXCLUDED-PALESTRINA"}
    assert "non-commercial" in excluded["SRC-EXCLUDED-ESSEN"]["terms"]
    assert "derivative" in excluded["SRC-EXCLUDED-PALESTRINA"]["terms"]
    assert builds.first.excluded == ("essenFolksong", "palestrina")
    used = {r["source"] for r in doc["recordings"]}
    assert all(s["public_domain"] for s in doc["sources"] if s["id"] in used)


def test_a_folder_that_is_not_a_delivery_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValidationError, match=r"notes\.txt"):
        build_demo_delivery(tmp_path, cache_dir=tmp_path / "cache", limit_per_collection=1)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------- corpus and MIDI


@pytest.mark.parametrize(
    ("written", "style"),
    [
        ("REEL", "reel"),
        ("Reel", "reel"),
        ("double jig", "jig"),
        ("slipjig", "slip jig"),
        ("Slip Jig", "slip jig"),
        ("hornpipe", "hornpipe"),
        ("Highland Fling", "highland fling"),
        ("R: REEL", "reel"),
        ("Reel (Scotch)", "reel"),
        ("C:O'Carolan", ""),
        ("", ""),
    ],
)
def test_tune_types_are_normalised(written: str, style: str) -> None:
    assert normalise_style(written) == style


def test_untagged_tunes_take_their_style_from_book_title_or_meter() -> None:
    assert infer_style("oneills1850", "1300", "", "The Boys of Ballisodare", "2/2") == (
        "reel",
        "book_section",
    )
    assert infer_style("airdsAirs", "book1/0002", "", "Quick Step. 25th Regt", "2/4") == ("march", "title")
    assert infer_style("airdsAirs", "book1/0009", "", "Lady Mary", "9/8") == ("slip jig", "meter")
    assert infer_style("airdsAirs", "book1/0010", "", "Lady Mary", "3/4") == ("air", "default")
    assert infer_style("ryansMammoth", "X", "R: Hornpipe", "Fairy Reel", "2/4")[0] == "hornpipe"


def test_abc_tempo_reads_the_beat_and_ignores_bare_numbers() -> None:
    assert abc_tempo("Q:1/4 =50") == 50  # music21 misreads this one
    assert abc_tempo("Q:3/8=120") == 180
    assert abc_tempo('Q:"Lively" 1/2=104') == 208
    assert abc_tempo("Q:80") is None


def test_abc_books_are_split_into_numbered_tunes() -> None:
    book = "% header\n\nX:1\nT:One\nK:G\nGAB|\n\nX: 2\nT:Two\nK:D\nDEF|\n"
    assert [(n, block.splitlines()[1]) for n, block in abc_tunes(book)] == [(1, "T:One"), (2, "T:Two")]


def test_transcription_credits_lose_addresses() -> None:
    assert transcription_credit('"Transcribed by Norbert Paap, norbertp@bdu.uva.nl"') == "Transcribed by Norbert Paap"
    assert transcription_credit("Contributed by Ray Davies,  ray:davies99.freeserve.co.uk") == (
        "Contributed by Ray Davies"
    )


def test_midi_is_rendered_with_program_tempo_and_exact_length() -> None:
    events = [[0, 60, 0, 480], [0, 64, 480, 480], [1, 48, 0, 960], [0, 67, 960, 960]]
    data = render_midi(events, tempo_bpm=120, program=40, title="Test – tune", meter="6/8", sharps=1)
    assert data == render_midi(events, tempo_bpm=120, program=40, title="Test – tune", meter="6/8", sharps=1)
    assert duration_ms(data) == 2000  # four quarters at 120 bpm
    midi = mido.MidiFile(file=io.BytesIO(data))
    programs = {m.program for t in midi.tracks for m in t if m.type == "program_change"}
    assert programs == {40}
    notes = [m for t in midi.tracks for m in t if m.type == "note_on"]
    assert len(notes) == 4 and {m.channel for m in notes} == {0, 1}


# --------------------------------------------------------------------------- the executor


def _square(n: int) -> int:
    return n * n


def _pid(_: int) -> int:
    return os.getpid()


def _fail_on_three(n: int) -> int:
    if n == 3:
        msg = "three"
        raise ValueError(msg)
    return n


@pytest.mark.parametrize("chunksize", [1, 3, 50])
def test_the_pool_returns_results_in_input_order(chunksize: int) -> None:
    items = list(range(23))
    assert LocalPoolExecutor(workers=2).map(_square, items, chunksize=chunksize) == [n * n for n in items]


def test_progress_is_called_once_per_item_up_to_the_total() -> None:
    calls: list[tuple[int, int]] = []
    LocalPoolExecutor(workers=2).map(_square, list(range(10)), on_done=lambda d, t: calls.append((d, t)), chunksize=3)
    assert calls == [(n, 10) for n in range(1, 11)]


def test_one_worker_runs_inline_and_several_run_in_other_processes() -> None:
    assert set(LocalPoolExecutor(workers=1).map(_pid, [1, 2, 3])) == {os.getpid()}
    assert os.getpid() not in LocalPoolExecutor(workers=2).map(_pid, [1, 2, 3, 4])


def test_an_error_in_a_worker_reaches_the_caller() -> None:
    with pytest.raises(ValueError, match="three"):
        LocalPoolExecutor(workers=2).map(_fail_on_three, list(range(6)))


def test_executors_are_found_by_name_in_the_registry() -> None:
    assert {"local", "serial"} <= set(EXECUTORS)
    assert isinstance(get_executor("serial"), SerialExecutor)
    local = get_executor("local", workers=0)
    assert isinstance(local, LocalPoolExecutor) and local.workers == (os.cpu_count() or 1)
    calls: list[tuple[int, int]] = []
    assert get_executor("serial").map(_square, [3, 1], on_done=lambda d, t: calls.append((d, t))) == [9, 1]
    assert calls == [(1, 2), (2, 2)]
    with pytest.raises(ValidationError, match="spark"):  # ray is registered (accord.execution_ray)
        get_executor("spark")


def test_a_backend_joins_through_the_same_registry() -> None:
    register_executor("test-serial", lambda workers=0: SerialExecutor())
    try:
        assert get_executor("test-serial").map(_square, [2]) == [4]
    finally:
        del EXECUTORS["test-serial"]


def test_an_empty_batch_returns_nothing() -> None:
    assert LocalPoolExecutor(workers=2).map(_square, []) == []
