"""DDEX ERN 4.3 import: the public sample messages read, convert to a delivery, and import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli import app
from accord.errors import Rejected, ValidationError
from accord.registry import ern_schema
from accord.registry.ern import ern_to_delivery, import_ern
from accord.registry.ern_message import duration_ms, parse_ern, read_ern
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.settings import Settings
from tests.deliveries import small_catalog, write_delivery

FIXTURES = Path(__file__).resolve().parent / "data" / "ddex" / "ern43"  # copies of ../shared/fixtures/ddex/ern43
SINGLE = FIXTURES / "4 SimpleAudioSingle.xml"
ALL = sorted(FIXTURES.glob("*.xml"))

pytestmark = pytest.mark.skipif(not SINGLE.exists(), reason=f"DDEX ERN samples not found at {FIXTURES}")


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_every_sample_message_reads(path: Path):
    message = read_ern(path)
    assert message.sender_dpid.startswith("PADPIDA")
    assert message.releases and message.deals
    for rec in message.sound_recordings:
        assert rec.reference and rec.title
        assert rec.duration_ms is not None and rec.duration_ms > 0


def test_the_single_reads_its_header_recording_release_and_deals():
    m = read_ern(SINGLE)
    assert (m.message_id, m.sender_dpid, m.sender_name) == ("W83814161", "PADPIDA2007050901U", "Warner Music Group")
    (rec,) = m.sound_recordings
    assert (rec.isrc, rec.title, rec.duration_ms) == ("GBAYC1700598", "I Love You", 263_583)
    assert rec.artist_references == ("PRIOPY",)
    assert rec.files[0].uri == "resources/190295810726_00001_LL.flac"
    assert rec.files[0].hash_algorithm == "MD5"
    (release,) = m.releases
    assert (release.grid, release.genre, release.resource_references) == (
        "A10302B0003989564F",
        "Classical",
        ("A1",),
    )
    assert len(m.deals) == 747 and "OnDemandStream" in m.deals[0].use_types


def test_classical_composers_are_noted_not_imported_as_artists():
    m = read_ern(FIXTURES / "Variant Classical.xml")
    conv = ern_to_delivery(m, works_by_isrc={r.isrc: ["W-1"] for r in m.sound_recordings})
    assert not conv.problems
    assert len(conv.document["recordings"]) == 12
    assert {p.code for p in conv.notes} >= {"ern_writer", "ern_bad_dpid", "ern_deals_not_agreements"}
    composer = next(p for p in m.parties if p.reference == "PAV")
    ids = {a for r in conv.document["recordings"] for a in r["artists"]}
    assert f"{m.sender_dpid}:{composer.reference}" not in ids


def test_conversion_names_what_ern_cannot_say():
    m = read_ern(SINGLE)
    conv = ern_to_delivery(m)
    assert [p.code for p in conv.problems] == ["ern_no_works"]
    assert conv.document["recordings"] == []
    dj = ern_to_delivery(read_ern(FIXTURES / "8 DjMix.xml"), works_by_isrc={"USWE34255410": ["W-1"]})
    # the sample's UPC 123123123123 has a wrong check digit: reported as a bad ICPN, not stored
    assert [p.code for p in dj.problems] == ["invalid_identifier"] + ["ern_no_isrc"] * 8
    assert (dj.problems[0].field, dj.problems[0].value) == ("ICPN", "123123123123")
    assert "USAT21400507" in dj.problems[1].value  # the proprietary id is shown, not guessed to be an ISRC
    assert "release_icpn" not in dj.document["recordings"][0]["metadata"]
    assert [r["isrc"] for r in dj.document["recordings"]] == ["USWE34255410"]
    assert dj.document["created"].endswith("Z")
    video = ern_to_delivery(read_ern(FIXTURES / "2 Video.xml"))
    assert [p.code for p in video.problems] == ["ern_empty"]


def test_durations_are_exact_milliseconds():
    assert duration_ms("PT4M23.583S") == 263_583
    assert duration_ms("PT1H2M3S") == 3_723_000
    assert duration_ms("P0DT30S") == 30_000
    with pytest.raises(ValidationError, match="ISO 8601"):
        duration_ms("4:23")


def test_refuses_non_ern_and_dtds():
    with pytest.raises(ValidationError, match="expected"):
        parse_ern(b"<NewReleaseMessage/>")
    with pytest.raises(ValidationError, match="DTD"):
        parse_ern(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
    with pytest.raises(ValidationError, match="well-formed"):
        parse_ern(b"<x")


def test_import_the_single_against_registered_works(store: Store, tmp_path: Path):
    import_delivery(store, write_delivery(tmp_path / "pub", small_catalog()))
    with pytest.raises(Rejected) as caught:
        import_ern(store, SINGLE)
    assert [p.code for p in caught.value.problems] == ["ern_no_works"]
    report = import_ern(store, SINGLE, works_by_isrc={"GBAYC1700598": ["W-1"]})
    assert report.sender == "PADPIDA2007050901U" and report.changed_anything
    rec = store.snapshot().recordings["GBAYC1700598"]
    assert (rec.title, rec.duration_ms, rec.works, rec.genre) == ("I Love You", 263_583, ("W-1",), "classical")
    assert [(s.party_id, s.ppm) for s in rec.shares] == [("PADPIDA2007050901U", 1_000_000)]
    assert rec.artists == ("PADPIDA2007050901U:PRIOPY",)
    again = import_ern(store, SINGLE, works_by_isrc={"GBAYC1700598": ["W-1"]})
    assert again.already_imported and not again.changed_anything


# --- accord catalog import-ern ---------------------------------------------------------------------

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def with_works(settings: Settings, tmp_path: Path) -> Path:
    """A registry holding work W-1 (a publisher's delivery), as the CLI sees it."""
    code, out = cli("catalog", "import", str(write_delivery(tmp_path / "pub", small_catalog())))
    assert code == 0, out
    return tmp_path


def works_csv(folder: Path, text: str) -> Path:
    path = folder / "works.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_cli_imports_the_single_with_a_works_csv(with_works: Path):
    code, out = cli("catalog", "import-ern", str(SINGLE), "--json")
    assert code == 1
    assert [p["code"] for p in json.loads(out)["problems"]] == ["ern_no_works"]
    csv_path = works_csv(with_works, "isrc,works\nGB-AYC-17-00598,W-1\n")
    code, out = cli("catalog", "import-ern", str(SINGLE), "--works", str(csv_path), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert (report["status"], report["sender"], report["added"]["recordings"]) == ("imported", "PADPIDA2007050901U", 1)
    assert report["left_out"] == [] and "ern_deals_not_agreements" in {n["code"] for n in report["notes"]}
    code, out = cli("catalog", "show", "GBAYC1700598", "--json")
    shown = json.loads(out)
    assert code == 0 and [w["id"] for w in shown["works"]] == ["W-1"]
    assert shown["master_shares"] == {"PADPIDA2007050901U": 1_000_000}
    code, out = cli("catalog", "import-ern", str(SINGLE), "--works", str(csv_path))
    assert code == 0 and "already imported" in out


def test_cli_master_owner_and_skip_incomplete(with_works: Path):
    csv_path = works_csv(with_works, "isrc,works\nUSWE34255410,W-1\n")
    code, out = cli("catalog", "import-ern", str(FIXTURES / "8 DjMix.xml"), "--works", str(csv_path), "--json")
    assert code == 1
    assert [p["code"] for p in json.loads(out)["problems"]] == ["invalid_identifier"] + ["ern_no_isrc"] * 8
    args = ("catalog", "import-ern", str(FIXTURES / "8 DjMix.xml"), "--works", str(csv_path), "--skip-incomplete")
    code, out = cli(*args, "--master-owner", "P-LABEL")
    assert code == 0, out
    assert "Left out of 8 DjMix.xml" in out and out.count("ern_no_isrc") == 8 and "Traceback" not in out
    code, out = cli("catalog", "show", "USWE34255410", "--json")
    assert code == 0 and json.loads(out)["master_shares"] == {"P-LABEL": 1_000_000}


def test_cli_lists_every_problem_of_the_works_csv(with_works: Path):
    text = "isrc,works,title\nnot-an-isrc,W-1,x\nGBAYC1700598,,x\nGBAYC1700598,W-1;W-1,x\n"
    code, out = cli("catalog", "import-ern", str(SINGLE), "--works", str(works_csv(with_works, text)), "--json")
    assert code == 1
    found = [(p["location"], p["field"], p["code"]) for p in json.loads(out)["problems"]]
    assert found == [
        ("row 1", "title", "unknown_field"),
        ("row 2", "isrc", "invalid_identifier"),
        ("row 3", "works", "missing_field"),
        ("row 4", "isrc", "duplicate"),
        ("row 4", "works", "duplicate"),
    ]
    code, out = cli("catalog", "import-ern", str(SINGLE), "--works", str(works_csv(with_works, "isrc\nGBAYC1700598\n")))
    assert code == 1 and "missing_field" in out and "Traceback" not in out


def test_cli_unknown_work_is_rejected_and_a_broken_file_is_an_error(with_works: Path):
    csv_path = works_csv(with_works, "isrc,works\nGBAYC1700598,W-404\n")
    code, out = cli("catalog", "import-ern", str(SINGLE), "--works", str(csv_path), "--json")
    assert code == 1 and json.loads(out)["status"] == "rejected"
    assert cli("catalog", "show", "GBAYC1700598")[0] == 2  # nothing was written
    broken = with_works / "broken.xml"
    broken.write_bytes(b"<x")
    code, out = cli("catalog", "import-ern", str(broken))
    assert code == 2 and "well-formed" in out
    code, out = cli("catalog", "import-ern", str(with_works / "missing.xml"))
    assert code == 2


# --- untrusted XML: defused parsing, the ERN 4.3 schema, identifiers checked ----------------------


def single_with(old: str, new: str, count: int = 1) -> bytes:
    text = SINGLE.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, count).encode("utf-8")


def test_entity_expansion_is_refused_even_after_the_first_4096_bytes():
    laughs = b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    data = b'<?xml version="1.0"?><!--' + b" " * 5000 + b"-->" + laughs + b"<x>&b;</x>"
    with pytest.raises(ValidationError, match="DTD or entity declaration"):
        parse_ern(data, "laughs.xml")


def test_an_external_entity_is_refused():
    data = (
        b'<?xml version="1.0"?>\n'
        + b"<!--"
        + b"x" * 5000
        + b'--><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    )
    with pytest.raises(ValidationError, match="DTD or entity declaration"):
        parse_ern(data + b"<x>&e;</x>", "xxe.xml")


def test_elements_nested_100000_deep_are_refused_cleanly():
    deep = b"<a>" * 100_000 + b"</a>" * 100_000
    data = single_with("<PartyList>", "<PartyList>" + deep.decode())
    with pytest.raises(ValidationError, match="nested deeper than 64 levels"):
        parse_ern(data, "deep.xml")


def test_a_message_past_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ern_schema, "MAX_ERN_BYTES", 1000)
    with pytest.raises(ValidationError, match=r"big.xml: 330,\d+ bytes; expected an ERN message of at most 1,000"):
        parse_ern(SINGLE.read_bytes(), "big.xml")


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("<Duration>PT4M23.583S</Duration>", "", "SoundRecording"),
        ("<Duration>PT4M23.583S</Duration>", "<Duration>four minutes</Duration>", "Duration"),
        ("<PartyReference>PRIOPY</PartyReference>", "<PartyReference>RIOPY</PartyReference>", "PartyReference"),
        ("<MessageId>W83814161</MessageId>", "<MessageId>1</MessageId><MessageId>2</MessageId>", "MessageId"),
        (
            "<MessageCreatedDateTime>2017-04-25T15:00:29.947Z</MessageCreatedDateTime>",
            "<MessageCreatedDateTime>yesterday</MessageCreatedDateTime>",
            "MessageCreatedDateTime",
        ),
        ('AvsVersionId="3"', "", "NewReleaseMessage"),
    ],
)
def test_a_message_that_breaks_the_ern_43_schema_is_refused_naming_the_element(old: str, new: str, where: str):
    with pytest.raises(ValidationError) as info:
        parse_ern(single_with(old, new), "bad.xml")
    message = str(info.value)
    assert message.startswith("bad.xml: /ern:NewReleaseMessage") and where in message, message
    assert "ERN 4.3" in message and "\n" not in message


def test_the_schema_ships_inside_the_package():
    from importlib import resources

    assert resources.files("accord.registry").joinpath(ern_schema.SCHEMA_FILE).is_file()
    assert ern_schema.ern_schema().validity == "valid"


def test_a_bad_isrc_is_reported_as_a_bad_isrc_not_a_missing_work():
    m = parse_ern(single_with("<ISRC>GBAYC1700598</ISRC>", "<ISRC>GBAYC17005</ISRC>"), "isrc.xml")
    conv = ern_to_delivery(m, works_by_isrc={"GBAYC17005": ["W-1"]}, file_name="isrc.xml")
    (problem,) = conv.problems
    assert (problem.code, problem.field, problem.value) == ("invalid_identifier", "ISRC", "GBAYC17005")
    assert "a valid ISRC" in problem.expected and problem.location.startswith("ResourceList/SoundRecording[1]")
    assert ern_to_delivery(m, file_name="isrc.xml").problems[0].code == "invalid_identifier"


GRID = "<GRid>A10302B0003989564F</GRid>"  # the first one is the Release's


@pytest.mark.parametrize(
    ("new", "field", "value"),
    [
        ("<GRid>A10302B0003989564G</GRid>", "GRid", "A10302B0003989564G"),
        (GRID + "<ICPN>190295810727</ICPN>", "ICPN", "190295810727"),
    ],
)
def test_a_bad_grid_or_icpn_rejects_the_import_and_nothing_is_written(
    store: Store, tmp_path: Path, new: str, field: str, value: str
):
    import_delivery(store, write_delivery(tmp_path / "pub", small_catalog()))
    before = store.snapshot().recordings
    path = tmp_path / "release.xml"
    path.write_bytes(single_with(GRID, new))
    with pytest.raises(Rejected) as caught:
        import_ern(store, path, works_by_isrc={"GBAYC1700598": ["W-1"]})
    (problem,) = caught.value.problems
    assert (problem.code, problem.field, problem.value) == ("invalid_identifier", field, value)
    assert problem.location == "ReleaseList/Release[1] (R0)"
    assert store.snapshot().recordings == before


def test_valid_release_identifiers_are_stored_compact(store: Store, tmp_path: Path):
    import_delivery(store, write_delivery(tmp_path / "pub", small_catalog()))
    path = tmp_path / "release.xml"
    path.write_bytes(single_with(GRID, "<GRid>A1-0302B-0003989564-F</GRid><ICPN>0190295810726</ICPN>"))
    import_ern(store, path, works_by_isrc={"GBAYC1700598": ["W-1"]})
    metadata = dict(store.snapshot().recordings["GBAYC1700598"].metadata)
    assert (metadata["release_grid"], metadata["release_icpn"]) == ("A10302B0003989564F", "0190295810726")
