"""The CSV form of a delivery: same rules as JSON, problems located by file, row and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.errors import Rejected
from accord.registry.entities import Share
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from tests.deliveries import MIDI_A, sha

FILES = {
    "delivery.csv": "accord_delivery,delivery_id,sender,created\n1.0,CSV-001,P-LABEL,2026-10-01T00:00:00Z\n",
    "parties.csv": (
        "id,kind,name,ipi,isni,dpid,territory\n"
        "P-LABEL,label,CSV Label,,,PADPIDA2013020802I,GB\n"
        "P-PUB,publisher,CSV Publishing,00014107338,,,\n"
        "P-ARTIST,artist,CSV Artist,,0000 0001 2281 955X,,\n"
        "P-WRITER,writer,CSV Writer,,,,\n"
    ),
    "works.csv": "id,iswc,title,writers\nW-1,T-034.524.680-1,A Song,P-WRITER\n",
    "work_shares.csv": "work,party,share\nW-1,P-PUB,66.6667\nW-1,P-WRITER,33.3333\n",
    "recordings.csv": (
        "isrc,title,artists,duration_ms,genre,works,media_path,media_kind,media_sha256,source\n"
        f"GB-XYZ-26-00001,A Song,P-ARTIST,180000,Jig,W-1,media/a.mid,midi,{sha(MIDI_A)},\n"
    ),
    "recording_shares.csv": "isrc,party,share\nGB-XYZ-26-00001,P-LABEL,100\n",
}


def write_csv(folder: Path, changes: dict[str, str] | None = None) -> Path:
    (folder / "media").mkdir(parents=True)
    (folder / "media" / "a.mid").write_bytes(MIDI_A)
    for name, body in {**FILES, **(changes or {})}.items():
        (folder / name).write_text(body, encoding="utf-8")
    return folder


def test_a_csv_delivery_imports_like_json(store: Store, tmp_path: Path) -> None:
    report = import_delivery(store, write_csv(tmp_path / "d"))
    assert report.changed_anything
    snap = store.snapshot()
    rec = snap.recordings["GBXYZ2600001"]
    assert rec.genre == "jig" and rec.works == ("W-1",) and rec.media[0].sha256 == sha(MIDI_A)
    assert snap.works["W-1"].shares == (Share("P-PUB", 666_667), Share("P-WRITER", 333_333))
    assert not import_delivery(store, write_csv(tmp_path / "again")).changed_anything


@pytest.mark.parametrize(
    ("file", "body", "code", "location"),
    [
        ("recordings.csv", FILES["recordings.csv"].replace("180000", "three minutes"), "wrong_type", "row 2"),
        ("recording_shares.csv", "isrc,party,share\nGB-XYZ-26-00001,P-LABEL,90\n", "shares_sum", "row 2"),
        (
            "work_shares.csv",
            "work,party,share\nW-1,P-PUB,66.6667\nW-1,P-NOBODY,33.3333\n",
            "unknown_reference",
            "row 3",
        ),
        ("work_shares.csv", FILES["work_shares.csv"] + "W-9,P-PUB,100\n", "unknown_reference", "row 4"),
        ("parties.csv", FILES["parties.csv"].replace("00014107338", "00014107339"), "invalid_identifier", "row 3"),
        ("parties.csv", FILES["parties.csv"].replace("id,kind", "ident,kind"), "unknown_field", "row 1"),
    ],
)
def test_csv_problems_name_file_and_row(
    store: Store, tmp_path: Path, file: str, body: str, code: str, location: str
) -> None:
    with pytest.raises(Rejected) as info:
        import_delivery(store, write_csv(tmp_path / "d", {file: body}))
    found = {(p.file, p.code, p.location) for p in info.value.problems}
    assert (file, code, location) in found or (
        # a share-sum problem is reported on the recording's row, in recordings.csv
        code == "shares_sum" and ("recordings.csv", code, location) in found
    ), found
    assert store.snapshot().recordings == {}


def test_a_csv_delivery_without_its_header_file_is_rejected(store: Store, tmp_path: Path) -> None:
    folder = write_csv(tmp_path / "d")
    (folder / "delivery.csv").unlink()
    with pytest.raises(Rejected) as info:
        import_delivery(store, folder)
    assert ("delivery.csv", "missing_file") in {(p.file, p.code) for p in info.value.problems}


# --- limits: strict quoting, cell size, NUL, header columns ----------------------------------------


def csv_problems(store: Store, tmp_path: Path, changes: dict[str, str]) -> list[tuple[str, str, str, str]]:
    with pytest.raises(Rejected) as info:
        import_delivery(store, write_csv(tmp_path / "d", changes))
    assert store.snapshot().recordings == {} and store.deliveries() == []
    return [(p.file, p.code, p.location, p.expected) for p in info.value.problems]


def test_an_unbalanced_quote_is_rejected_with_its_line(store: Store, tmp_path: Path) -> None:
    body = FILES["recording_shares.csv"] + '"GB-XYZ-26-00001,P-LABEL,100\n'
    problems = csv_problems(store, tmp_path, {"recording_shares.csv": body})
    (found,) = [p for p in problems if p[0] == "recording_shares.csv"]
    assert found[1:3] == ("unreadable", "line 3") and "well-formed CSV" in found[3]


def test_a_quote_followed_by_text_is_rejected(store: Store, tmp_path: Path) -> None:
    body = 'isrc,party,share\n"GB-XYZ-26-00001"x,P-LABEL,100\n'
    problems = csv_problems(store, tmp_path, {"recording_shares.csv": body})
    assert ("recording_shares.csv", "unreadable", "line 2") in {p[:3] for p in problems}


def test_a_128_kib_cell_is_rejected_not_a_crash(store: Store, tmp_path: Path) -> None:
    body = FILES["works.csv"].replace("A Song", "x" * 131_073)
    problems = csv_problems(store, tmp_path, {"works.csv": body})
    assert ("works.csv", "unreadable", "line 2") in {p[:3] for p in problems}


def test_a_cell_past_the_cell_limit_is_rejected_naming_its_column(store: Store, tmp_path: Path) -> None:
    body = FILES["works.csv"].replace("A Song", "x" * 70_000)
    problems = csv_problems(store, tmp_path, {"works.csv": body})
    assert (
        "works.csv",
        "invalid_value",
        "row 2",
        "a cell of at most 65,536 characters (this one has 70,000)",
    ) in problems


def test_a_nul_byte_in_a_cell_is_rejected(store: Store, tmp_path: Path) -> None:
    body = FILES["parties.csv"].replace("CSV Label", "CSV\x00Label")
    problems = csv_problems(store, tmp_path, {"parties.csv": body})
    assert ("parties.csv", "invalid_value", "row 2", "a cell without NUL characters") in problems


def test_a_duplicate_header_column_is_rejected(store: Store, tmp_path: Path) -> None:
    body = "isrc,party,share,share\nGB-XYZ-26-00001,P-LABEL,100,50\n"
    problems = csv_problems(store, tmp_path, {"recording_shares.csv": body})
    assert ("recording_shares.csv", "duplicate", "row 1", "each column once in the header") in problems


def test_a_control_character_in_a_title_cell_is_rejected(store: Store, tmp_path: Path) -> None:
    body = FILES["works.csv"].replace("A Song", "A\x1bSong")
    problems = csv_problems(store, tmp_path, {"works.csv": body})
    assert any(p[:3] == ("works.csv", "invalid_value", "row 2") and "U+001B" in p[3] for p in problems)
