"""Limits at the catalog's edges: untrusted JSON, delivery fields, CSV cells, archives, ERN XML.

Every input here is either accepted or refused with one accord error naming where and what —
never a traceback, never a partial import.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tarfile
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord import identifiers
from accord.api import uploads
from accord.api.uploads import unpack_archive
from accord.errors import InvalidIdentifier, Problem, Rejected, ValidationError
from accord.identifiers import IdentifierKind
from accord.jsonload import check_depth, load_json, load_json_lines
from accord.registry.delivery import read_delivery
from accord.registry.entities import Catalog
from accord.registry.ern import ern_to_delivery
from accord.registry.ern_message import parse_ern
from accord.registry.importer import import_delivery, validate_delivery
from accord.registry.store import Store
from tests.deliveries import small_catalog, write_delivery

FUZZ_EXAMPLES = int(os.environ.get("ACCORD_FUZZ_EXAMPLES", "30"))
"""Examples per fuzz test: small in CI (all of them together in a few seconds); raise it locally."""
fuzz = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- jsonload: one safe loader for untrusted JSON -----------------------------------------------


def refusal(data: bytes | str, **kwargs: object) -> str:
    with pytest.raises(ValidationError) as info:
        load_json(data, what="doc.json", **kwargs)  # type: ignore[arg-type]
    return str(info.value)


def test_json_nested_100000_deep_is_refused_cleanly_before_parsing() -> None:
    message = refusal(b"[" * 100_000 + b"]" * 100_000)
    assert "doc.json" in message and "nested deeper than 64 levels" in message


def test_deep_objects_are_refused_too_and_brackets_inside_strings_do_not_count() -> None:
    assert "nested deeper" in refusal('{"a":' * 70 + "1" + "}" * 70)
    assert load_json('{"a": "' + "[" * 1000 + '"}') == {"a": "[" * 1000}
    assert load_json('["\\"[[[[", 1]') == ['"[[[[', 1]


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert load_json("[" * 64 + "]" * 64) is not None
    assert "nested deeper" in refusal("[" * 65 + "]" * 65)
    check_depth("[" * 10 + "]" * 10, 10)


def test_a_duplicate_key_is_refused_naming_the_key_and_its_path() -> None:
    message = refusal('{"recordings": [{"isrc": "A", "title": "x", "title": "y"}]}')
    assert "duplicate key 'title'" in message and "$.recordings[0]" in message


def test_a_duplicate_key_at_the_top_and_under_an_odd_key_is_named() -> None:
    assert "doc.json: $: duplicate key 'a';" in refusal('{"a": 1, "a": 1}')
    assert '$["x y"]' in refusal('{"x y": {"k": 1, "k": 2}}')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "[1, NaN]", '{"x": Infinity}'])
def test_nan_and_infinity_are_refused(constant: str) -> None:
    assert "finite number" in refusal(constant)


def test_a_float_that_overflows_to_infinity_is_refused() -> None:
    assert "finite number" in refusal("[1e400]")


def test_invalid_utf8_is_refused_with_its_byte_offset() -> None:
    message = refusal(b'{"title": "caf\xe9"}')
    assert "byte 14" in message and "UTF-8" in message


def test_a_lone_surrogate_escape_is_refused_but_a_pair_is_text() -> None:
    assert "lone UTF-16 surrogate" in refusal('{"title": "\\ud800"}')
    assert "surrogate" in refusal('{"\\udc00": 1}')
    assert load_json('{"t": "\\ud83c\\udfb5"}') == {"t": "\N{MUSICAL NOTE}"}


def test_the_size_limit_is_in_bytes() -> None:
    assert "expected at most 10 bytes" in refusal('"' + "é" * 5 + '"', max_bytes=10)
    assert load_json('"' + "e" * 8 + '"', max_bytes=10) == "e" * 8


def test_syntax_errors_name_line_and_column() -> None:
    assert "line 2 column 7" in refusal('{"a":\n  "b" 1}')


def test_an_integer_past_pythons_digit_limit_is_refused() -> None:
    assert "doc.json" in refusal("[" + "9" * 5000 + "]")


def test_a_byte_order_mark_is_ignored_and_decimals_stay_exact() -> None:
    assert load_json(b'\xef\xbb\xbf{"a": 0.1}', parse_float=Decimal) == {"a": Decimal("0.1")}


def test_json_lines_name_the_bad_line_and_skip_blank_lines() -> None:
    assert load_json_lines('{"a": 1}\n\n[2]\n') == [{"a": 1}, [2]]
    with pytest.raises(ValidationError, match=r"usage.jsonl line 3: \$: duplicate key 'a'"):
        load_json_lines('{"a": 1}\n\n{"a": 1, "a": 2}\n', what="usage.jsonl")
    with pytest.raises(ValidationError, match=r"line 2: size: JSON of \d+ bytes"):
        load_json_lines('1\n"' + "x" * 100 + '"\n', max_line_bytes=50)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@fuzz
@given(json_values)
def test_every_valid_json_document_round_trips(value: object) -> None:
    assert load_json(json.dumps(value)) == value


@fuzz
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_parsed_or_refused_with_a_validation_error(data: bytes) -> None:
    with contextlib.suppress(ValidationError):
        load_json(data, max_depth=8)


@fuzz
@given(st.text(alphabet='[]{}",:\\01aeNI \n', max_size=200))
def test_json_like_text_is_parsed_or_refused_with_a_validation_error(text: str) -> None:
    with contextlib.suppress(ValidationError):
        load_json(text, max_depth=4)


# --- catalog.json deliveries: limits on every field, refused before anything is written ---------


def rejected(store: Store, folder: Path) -> list[Problem]:
    with pytest.raises(Rejected) as info:
        import_delivery(store, folder)
    assert_nothing_written(store)
    return info.value.problems


def assert_nothing_written(store: Store) -> None:
    snap = store.snapshot()
    assert not snap.recordings and not snap.works and not snap.parties and not snap.agreements
    assert store.deliveries() == []


def one(problems: list[Problem], code: str) -> Problem:
    found = [p for p in problems if p.code == code]
    assert found, [str(p) for p in problems]
    return found[0]


def test_a_delivery_nested_100000_deep_is_rejected_and_nothing_is_written(store: Store, tmp_path: Path) -> None:
    deep = '{"accord_delivery": "1.0", "recordings": ' + "[" * 100_000 + "]" * 100_000 + "}"
    problem = one(rejected(store, write_delivery(tmp_path / "d", {}, raw=deep)), "unreadable")
    assert problem.file == "catalog.json" and "nested deeper than 64 levels" in problem.expected


def test_a_duplicate_key_in_a_delivery_is_rejected_naming_it(store: Store, tmp_path: Path) -> None:
    text = json.dumps(small_catalog()).replace('"genre": "Reel"', '"genre": "Reel", "genre": "Jig"')
    problem = one(rejected(store, write_delivery(tmp_path / "d", {}, raw=text)), "unreadable")
    assert problem.location == "$.recordings[0]" and "duplicate key 'genre'" in problem.expected


def test_a_5_mb_title_is_rejected_with_the_limit_and_a_short_value_and_1000_characters_pass(
    store: Store, tmp_path: Path
) -> None:
    doc = small_catalog()
    doc["recordings"][0]["title"] = "x" * 5_000_000
    problem = one(rejected(store, write_delivery(tmp_path / "d", doc)), "invalid_value")
    assert (problem.location, problem.field) == ("$.recordings[0].title", "title")
    assert "at most 1,000 characters" in problem.expected and len(problem.value) < 300
    doc["recordings"][0]["title"] = "x" * 1_000  # the limit itself is accepted
    import_delivery(store, write_delivery(tmp_path / "ok", doc))
    assert store.snapshot().recordings["GBXYZ2600001"].title == "x" * 1_000


@pytest.mark.parametrize("char", ["\x00", "\x07", "\n", "\x1b", "\x7f", "\x85", "\x9b"])
def test_a_title_with_a_nul_or_control_character_is_rejected(store: Store, tmp_path: Path, char: str) -> None:
    doc = small_catalog()
    doc["works"][0]["title"] = f"First{char}Song"
    problem = one(rejected(store, write_delivery(tmp_path / "d", doc)), "invalid_value")
    assert problem.location == "$.works[0].title" and f"U+{ord(char):04X}" in problem.expected


def test_control_characters_are_refused_in_names_lists_and_metadata_too(store: Store, tmp_path: Path) -> None:
    doc = small_catalog()
    doc["parties"][0]["name"] = "Test\x00Label"
    doc["recordings"][0]["metadata"] = {"note": "a\x01b"}
    problems = rejected(store, write_delivery(tmp_path / "d", doc))
    found = {(p.location, p.code) for p in problems}
    assert ("$.parties[0].name", "invalid_value") in found
    assert ("$.recordings[0].metadata.note", "invalid_value") in found


def test_titles_are_stored_in_nfc(store: Store, tmp_path: Path) -> None:
    doc = small_catalog()
    doc["recordings"][0]["title"] = "Cafe\u0301"  # e + combining acute accent
    import_delivery(store, write_delivery(tmp_path / "d", doc))
    assert store.snapshot().recordings["GBXYZ2600001"].title == "Caf\u00e9"


@pytest.mark.parametrize("amount", ["1e30", "1000000000001", "1E+999999999", 10**30])
def test_a_minimum_guarantee_beyond_10_to_the_12_is_rejected(store: Store, tmp_path: Path, amount: object) -> None:
    doc = small_catalog()
    doc["agreements"][0]["terms"]["minimum_guarantee"] = {"amount": amount, "currency": "EUR"}
    problem = one(rejected(store, write_delivery(tmp_path / "d", doc)), "invalid_value")
    assert "minimum_guarantee" in problem.location and "at most 1,000,000,000,000" in problem.expected


def test_a_json_number_minimum_guarantee_of_1e30_is_rejected(store: Store, tmp_path: Path) -> None:
    doc = small_catalog()
    doc["agreements"][0]["terms"]["advance"] = {"amount": "__AMOUNT__", "currency": "EUR"}
    text = json.dumps(doc).replace('"__AMOUNT__"', "1e30")
    problem = one(rejected(store, write_delivery(tmp_path / "d", {}, raw=text)), "invalid_value")
    assert "advance" in problem.location


def test_the_largest_amount_is_stored_exactly(store: Store, tmp_path: Path) -> None:
    doc = small_catalog()
    doc["agreements"][0]["terms"]["advance"] = {"amount": "1000000000000.000001", "currency": "EUR"}
    assert "at most" in one(rejected(store, write_delivery(tmp_path / "d", doc)), "invalid_value").expected
    doc["agreements"][0]["terms"]["advance"] = {"amount": "1000000000000", "currency": "EUR"}
    import_delivery(store, write_delivery(tmp_path / "ok", doc))
    advance = store.snapshot().agreements["AGR-M"].terms.advance
    assert advance is not None and advance.micros == 10**18


@pytest.mark.parametrize("share", ["1e999999999", "-1E+999999999", "1E+1000000"])
def test_a_share_whose_exponent_would_overflow_is_rejected_not_a_crash(
    store: Store, tmp_path: Path, share: str
) -> None:
    doc = small_catalog()
    doc["works"][0]["shares"][0]["share"] = share
    problem = one(rejected(store, write_delivery(tmp_path / "d", doc)), "invalid_value")
    assert problem.location == "$.works[0].shares[0].share"


def test_a_duration_past_one_week_is_rejected(store: Store, tmp_path: Path) -> None:
    doc = small_catalog()
    doc["recordings"][0]["duration_ms"] = 10**30
    problem = one(rejected(store, write_delivery(tmp_path / "d", doc)), "invalid_value")
    assert problem.field == "duration_ms" and "604,800,000" in problem.expected


# --- delivery archives (POST /v1/deliveries): truncated, corrupt, too big ----------------------


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


CATALOG = {"d/catalog.json": json.dumps(small_catalog()).encode()}


def test_a_complete_archive_unpacks_to_its_delivery_folder(tmp_path: Path) -> None:
    assert unpack_archive(tar_gz(CATALOG), "d.tar.gz", tmp_path / "t") == tmp_path / "t" / "d"
    assert unpack_archive(zipped(CATALOG), "d.zip", tmp_path / "z") == tmp_path / "z" / "d"


@pytest.mark.parametrize("keep", [0.01, 0.1, 0.5, 0.9])
def test_a_truncated_tar_gz_is_a_validation_error(tmp_path: Path, keep: float) -> None:
    data = tar_gz({**CATALOG, "d/media/a.mid": bytes(range(256)) * 400})
    with pytest.raises(ValidationError, match=r"archive: 'd.tar.gz' is not a readable .*truncated or corrupt"):
        unpack_archive(data[: int(len(data) * keep)], "d.tar.gz", tmp_path)


def test_a_corrupt_zip_member_is_a_validation_error(tmp_path: Path) -> None:
    data = bytearray(zipped({"d/catalog.json": b"x" * 5000}))
    data[60:70] = b"\xff" * 10  # inside the deflated member
    with pytest.raises(ValidationError, match=r"archive: 'd.zip'"):
        unpack_archive(bytes(data), "d.zip", tmp_path)


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "MAX_MEMBER_BYTES", 1_000_000)
    bomb = zipped({**CATALOG, "d/media/zeros.mid": bytes(50_000_000)})
    assert len(bomb) < 100_000
    with pytest.raises(ValidationError, match=r"member 'd/media/zeros.mid' unpacks to 50,000,000 bytes"):
        unpack_archive(bomb, "d.zip", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_the_total_unpacked_size_and_member_count_are_limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "MAX_ARCHIVE_BYTES", 10_000)
    many = {f"d/media/{i}.mid": bytes(3_000) for i in range(5)}
    with pytest.raises(ValidationError, match=r"unpacks to more than 10,000 bytes"):
        unpack_archive(tar_gz({**CATALOG, **many}), "d.tar.gz", tmp_path / "a")
    monkeypatch.setattr(uploads, "MAX_ARCHIVE_MEMBERS", 3)
    with pytest.raises(ValidationError, match=r"more than 3 members"):
        unpack_archive(zipped({f"d/{i}": b"" for i in range(4)}), "d.zip", tmp_path / "b")


# --- fuzzing: any input is imported or rejected with an accord error, never another exception ---

nasty_text = st.lists(
    st.sampled_from(["a", "É", "e\u0301", '"', ",", ";", "\n", "\r", "\x00", "\x1b", "\x85", "\ud7ff", "9", "-", " "]),
    max_size=30,
).map("".join)
nasty_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.decimals(allow_nan=False, allow_infinity=False).map(str)
    | nasty_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(nasty_text, inner, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return doc


CATALOG_PATHS = _paths(small_catalog())


def read_and_validate(folder: Path) -> None:
    """The whole read → validate pipeline against an empty registry: it accepts or raises an accord error."""
    with contextlib.suppress(Rejected, ValidationError):
        validate_delivery(read_delivery(folder), Catalog())


@fuzz
@given(st.lists(st.tuples(st.sampled_from(CATALOG_PATHS), nasty_values), min_size=1, max_size=4))
def test_a_mutated_catalog_json_is_validated_or_rejected(
    tmp_path_factory: pytest.TempPathFactory, edits: list[Any]
) -> None:
    doc: Any = small_catalog()
    for path, value in edits:
        with contextlib.suppress(KeyError, IndexError, TypeError):  # an earlier edit removed the path
            doc = _replace(doc, path, value)
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "catalog.json").write_text(json.dumps(doc, default=str), encoding="utf-8")
    read_and_validate(folder)


@fuzz
@given(st.binary(max_size=300) | st.text(alphabet='{}[]":,0123456789eE.-+ \\u\nNaINfty', max_size=300).map(str.encode))
def test_arbitrary_catalog_json_bytes_are_validated_or_rejected(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "catalog.json").write_bytes(data)
    read_and_validate(folder)


CSV_ALPHABET = st.sampled_from(['"', ",", "\n", "\r", "\x00", "a", "É", "1", ";", " ", "GB-XYZ-26-00001", "P-LABEL"])


@fuzz
@given(
    st.sampled_from(["recordings.csv", "parties.csv", "works.csv", "work_shares.csv", "recording_shares.csv"]),
    st.booleans(),
    st.lists(CSV_ALPHABET, max_size=60).map("".join),
)
def test_a_mutated_csv_delivery_is_validated_or_rejected(
    tmp_path_factory: pytest.TempPathFactory, name: str, keep_header: bool, body: str
) -> None:
    from tests.test_delivery_csv import FILES, write_csv

    folder = write_csv(tmp_path_factory.mktemp("fuzz") / "d")
    header = FILES[name].split("\n", 1)[0] + "\n" if keep_header else ""
    (folder / name).write_text(header + body, encoding="utf-8", newline="")
    read_and_validate(folder)


DJ_MIX = Path(__file__).resolve().parent / "data" / "ddex" / "ern43" / "8 DjMix.xml"


@fuzz
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_not_an_ern_message(data: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_ern(data, "fuzz.xml")


@fuzz
@given(st.data())
def test_a_mutated_ern_message_is_read_or_refused_with_a_validation_error(data: st.DataObject) -> None:
    text = DJ_MIX.read_text(encoding="utf-8")
    texts = [m.span(1) for m in re.finditer(r">([^<>]+)<", text)]
    start, end = data.draw(st.sampled_from(texts))
    pieces = st.sampled_from(["A", "1", "P", "-", "&amp;", "<x/>", "PT", "S", "é", "<", "]]>"])
    new = data.draw(st.lists(pieces, max_size=20).map("".join))
    try:
        message = parse_ern((text[:start] + new + text[end:]).encode(), "fuzz.xml")
    except ValidationError:
        return
    ern_to_delivery(message, works_by_isrc={"USWE34255410": ["W-1"]}, file_name="fuzz.xml")


@settings(
    max_examples=max(3, FUZZ_EXAMPLES // 6), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.sampled_from(CATALOG_PATHS), nasty_values), min_size=1, max_size=2))
def test_a_rejected_fuzzed_import_writes_nothing(store: Store, tmp_path: Path, edits: list[Any]) -> None:
    doc: Any = small_catalog()
    for path, value in edits:
        with contextlib.suppress(KeyError, IndexError, TypeError):
            doc = _replace(doc, path, value)
    folder = tmp_path / f"d{len(list(tmp_path.iterdir()))}"
    write_delivery(folder, {}, raw=json.dumps(doc, default=str))
    before = (store.snapshot().recordings, store.deliveries(), len(store.audit_log()))
    try:
        import_delivery(store, folder)
    except (Rejected, ValidationError):
        assert (store.snapshot().recordings, store.deliveries(), len(store.audit_log())) == before


# --- identifiers: megabytes are refused at once, and not echoed ------------------------------------


@pytest.mark.parametrize("kind", list(IdentifierKind))
def test_an_identifier_of_megabytes_is_refused_by_length_with_a_short_message(kind: IdentifierKind) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        identifiers.validate(kind, "GB" + "1" * 5_000_000)
    assert info.value.rule == "length" and "5,000,002 characters, expected at most 64" in str(info.value)
    assert len(str(info.value)) < 200
    assert len(identifiers.identify("1" * 5_000_000).message) < 300


def test_a_megabyte_date_is_rejected_without_echoing_it(store: Store, tmp_path: Path) -> None:
    doc = small_catalog()
    doc["created"] = "2026-" + "1" * 1_000_000
    problem = one(rejected(store, write_delivery(tmp_path / "d", doc)), "invalid_date")
    assert problem.field == "created" and len(problem.expected) < 100 and len(problem.value) < 300
