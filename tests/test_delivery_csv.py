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
