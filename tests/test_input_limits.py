"""Limits at the catalog's edges: untrusted JSON, delivery fields, CSV cells, archives, ERN XML.

Every input here is either accepted or refused with one accord error naming where and what —
never a traceback, never a partial import.
"""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.errors import ValidationError
from accord.jsonload import check_depth, load_json, load_json_lines

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


@settings(deadline=None)
@given(json_values)
def test_every_valid_json_document_round_trips(value: object) -> None:
    assert load_json(json.dumps(value)) == value


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_parsed_or_refused_with_a_validation_error(data: bytes) -> None:
    with contextlib.suppress(ValidationError):
        load_json(data, max_depth=8)


@settings(deadline=None)
@given(st.text(alphabet='[]{}",:\\01aeNI \n', max_size=200))
def test_json_like_text_is_parsed_or_refused_with_a_validation_error(text: str) -> None:
    with contextlib.suppress(ValidationError):
        load_json(text, max_depth=4)
