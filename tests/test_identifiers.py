"""Specification of accord.identifiers: the published examples, the rules, the guesses."""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.errors import InvalidIdentifier, ValidationError
from accord.identifiers import (
    IdentifierCheck,
    IdentifierKind,
    display,
    format_isni,
    format_isrc,
    format_iswc,
    identify,
    iswc_check_digit,
    make_iswc,
    normalise,
    validate,
    validate_dpid,
    validate_grid,
    validate_gtin,
    validate_ipi_base,
    validate_ipi_name,
    validate_isni,
    validate_isrc,
    validate_iswc,
)

K = IdentifierKind

# The published examples (REFERENCE.md "Industry identifiers"), each worked by hand:
#
# ISWC T-034.524.680-1: Σ i·dᵢ = 1·0+2·3+3·4+4·5+5·2+6·4+7·6+8·8+9·0 = 178;
#   (10 − (1 + 178) mod 10) mod 10 = (10 − 9) mod 10 = 1 ✓
# ISWC T-000.000.001-0: Σ = 9·1 = 9; (10 − 10 mod 10) mod 10 = 0 ✓
# ISWC T1234567893: Σ = 1²+…+9² = 285; (10 − 286 mod 10) mod 10 = 4, not 3 ✗
#   (so the message must say "expected 4"; T1234567894 is the valid one)
# IPI name 00014107338: s = 1·7+4·6+1·5+0·4+7·3+3·2 = 63; (101 − 63) mod 100 = 38 ✓
# IPI name 00000000100: s = 1·2 = 2; (101 − 2) mod 100 = 99, not 00 ✗
# IPI base I-000000229-7: Σ = 7·2+8·2+9·9 = 111; (10 − (2 + 111) mod 10) mod 10 = 7 ✓
# EAN 4006381333931: weights 3,1,3,… leftwards from the digit before the check digit,
#   4·1+0·3+0·1+6·3+3·1+8·3+1·1+3·3+3·1+3·3+9·1+3·3 = 89; (10 − 89 mod 10) mod 10 = 1 ✓
# EAN 4006381333932: the same sum wants 1, not 2 ✗
# ISNI, GRid and DPID use ISO 7064 MOD 11-2 / MOD 37-36 from python-stdnum.
VALID: list[tuple[IdentifierKind, str, str, str]] = [
    # kind, as published, compact, display
    (K.ISWC, "T-034.524.680-1", "T0345246801", "T-034.524.680-1"),
    (K.ISWC, "T-000.000.001-0", "T0000000010", "T-000.000.001-0"),
    (K.IPI_NAME, "00014107338", "00014107338", "00014107338"),
    (K.IPI_BASE, "I-000000229-7", "I0000002297", "I-000000229-7"),
    (K.ISNI, "0000 0001 2281 955X", "000000012281955X", "0000 0001 2281 955X"),
    (K.GRID, "A12425GABC1234002M", "A12425GABC1234002M", "A1-2425G-ABC1234002-M"),
    (K.DPID, "PADPIDA2013020802I", "PADPIDA2013020802I", "PADPIDA2013020802I"),
    (K.GTIN, "4006381333931", "4006381333931", "4006381333931"),
    (K.ISRC, "US-SKG-19-12345", "USSKG1912345", "US-SKG-19-12345"),
    (K.ISRC, "ZZ-AUR-26-00001", "ZZAUR2600001", "ZZ-AUR-26-00001"),
]

INVALID: list[tuple[IdentifierKind, str, str]] = [
    # kind, as published, the rule that fails
    (K.ISWC, "T1234567893", "check_digit"),
    (K.IPI_NAME, "00000000100", "check_digit"),
    (K.ISNI, "0000 0001 1111 955X", "check_digit"),
    (K.DPID, "PADPIDA2013020803I", "check_digit"),
    (K.GTIN, "4006381333932", "check_digit"),
    (K.ISRC, "XX-SKG-19-12345", "prefix"),
]


def rule_of(kind: IdentifierKind | str, value: str) -> str:
    with pytest.raises(InvalidIdentifier) as caught:
        validate(kind, value)
    return caught.value.rule


# --- the published examples -------------------------------------------------------


@pytest.mark.parametrize(("kind", "published", "compact", "shown"), VALID)
def test_every_published_valid_example_validates_to_its_compact_form(kind, published, compact, shown):
    assert validate(kind, published) == compact
    assert display(kind, compact) == shown


@pytest.mark.parametrize(("kind", "published", "compact", "shown"), VALID)
def test_every_published_valid_example_is_identified_from_its_shape_alone(kind, published, compact, shown):
    check = identify(published)
    assert (check.kind, check.valid, check.rule) == (kind, True, "")
    assert (check.compact, check.display) == (compact, shown)


@pytest.mark.parametrize(("kind", "published", "rule"), INVALID)
def test_every_published_invalid_example_fails_the_rule_it_breaks(kind, published, rule):
    assert rule_of(kind, published) == rule
    check = identify(published)
    assert (check.kind, check.valid, check.rule) == (kind, False, rule)


def test_the_named_validators_agree_with_the_dispatcher():
    assert validate_iswc("T-034.524.680-1") == "T0345246801"
    assert validate_ipi_name("00014107338") == "00014107338"
    assert validate_ipi_base("I-000000229-7") == "I0000002297"
    assert validate_isni("0000 0001 2281 955X") == "000000012281955X"
    assert validate_grid("A12425GABC1234002M") == "A12425GABC1234002M"
    assert validate_dpid("PADPIDA2013020802I") == "PADPIDA2013020802I"
    assert validate_gtin("4006381333931") == "4006381333931"
    assert validate_isrc("US-SKG-19-12345") == "USSKG1912345"


def test_a_wrong_iswc_check_digit_message_names_the_digit_found_and_the_one_expected():
    with pytest.raises(InvalidIdentifier) as caught:
        validate_iswc("T1234567893")
    error = caught.value
    assert str(error) == "ISWC T1234567893: check digit is 3, expected 4 (ISO 15707)"
    assert (error.kind, error.rule, error.value) == ("iswc", "check_digit", "T1234567893")
    assert validate_iswc("T1234567894") == "T1234567894"


def test_invalid_identifier_is_a_validation_error_carrying_the_value_as_given():
    with pytest.raises(ValidationError) as caught:
        validate_gtin(" 4006-3813-3393-2 ")
    assert caught.value.value == " 4006-3813-3393-2 "
    assert str(caught.value) == "GTIN 4006381333932: check digit is 2, expected 1 (GS1 mod 10)"


def test_an_isni_check_character_message_says_which_character_was_expected():
    with pytest.raises(InvalidIdentifier, match=r"check character is X, expected 8 \(ISO 27729"):
        validate_isni("0000 0001 1111 955X")


def test_an_ipi_name_message_names_both_check_digits():
    with pytest.raises(InvalidIdentifier, match="check digits are 00, expected 99"):
        validate_ipi_name("00000000100")


def test_a_dpid_message_names_the_check_character_expected():
    with pytest.raises(InvalidIdentifier, match="check character is I, expected G"):
        validate_dpid("PADPIDA2013020803I")


def test_the_isrc_prefix_message_says_what_a_prefix_may_be():
    with pytest.raises(InvalidIdentifier, match="prefix XX is neither an ISO 3166-1 country"):
        validate_isrc("XX-SKG-19-12345")


# --- every single-character change is caught ------------------------------------


def substitutions(compact: str, positions: range, alphabet: str) -> Iterator[str]:
    """Every value that differs from ``compact`` in exactly one of ``positions``."""
    for i in positions:
        for c in alphabet:
            if c != compact[i]:
                yield compact[:i] + c + compact[i + 1 :]


ALNUM = string.digits + string.ascii_uppercase

ALWAYS_CAUGHT: list[tuple[IdentifierKind, str, range, str]] = [
    # kind, valid compact, positions to change, characters to put there
    (K.ISNI, "000000012281955X", range(15), string.digits),
    (K.ISNI, "000000012281955X", range(15, 16), string.digits),
    (K.DPID, "PADPIDA2013020802I", range(7, 17), string.digits),
    (K.DPID, "PADPIDA2013020802I", range(17, 18), ALNUM),
    (K.GRID, "A12425GABC1234002M", range(18), ALNUM),
    (K.GTIN, "4006381333931", range(13), string.digits),
    (K.GTIN, "036000291452", range(12), string.digits),
    (K.IPI_NAME, "00014107338", range(11), string.digits),
    (K.ISWC, "T0345246801", range(10, 11), string.digits),
    (K.IPI_BASE, "I0000002297", range(10, 11), string.digits),
]


@pytest.mark.parametrize(("kind", "compact", "positions", "alphabet"), ALWAYS_CAUGHT)
def test_every_single_character_change_fails_the_check_digit_rule(kind, compact, positions, alphabet):
    altered = list(substitutions(compact, positions, alphabet))
    assert altered, "the test must generate alterations"
    assert {value: rule_of(kind, value) for value in altered} == dict.fromkeys(altered, "check_digit")


def weighted_mod10_blind_spots(compact: str) -> set[str]:
    """Body changes the ISWC/IPI base mod 10 cannot see: weight × change ≡ 0 (mod 10)."""
    blind = set()
    for i in range(1, 10):  # the digit at index i of the compact form has weight i
        for digit in string.digits:
            change = int(digit) - int(compact[i])
            if change and i * change % 10 == 0:
                blind.add(compact[:i] + digit + compact[i + 1 :])
    return blind


@pytest.mark.parametrize(("kind", "compact"), [(K.ISWC, "T0345246801"), (K.IPI_BASE, "I0000002297")])
def test_every_body_digit_change_fails_the_check_digit_rule_unless_mod_10_cannot_see_it(kind, compact):
    blind = weighted_mod10_blind_spots(compact)
    for value in substitutions(compact, range(1, 10), string.digits):
        if value in blind:
            assert validate(kind, value) == value
        else:
            assert rule_of(kind, value) == "check_digit", value


def test_the_iswc_check_digit_by_design_misses_changes_that_weigh_a_multiple_of_ten():
    # Weights 2, 4, 5, 6 and 8 share a factor with 10, so the standard's own formula lets
    # 034.524.680 → 034.544.680 (weight 5, +2 → +10) through: a limit of ISO 15707.
    assert validate_iswc("T-034.544.680-1") == "T0345446801"
    assert len(weighted_mod10_blind_spots("T0345246801")) == 8


# --- length and format rules ----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "rule"),
    [
        (K.ISWC, "T-034.524.680", "length"),
        (K.ISWC, "T-034.524.680-12", "length"),
        (K.ISWC, "X-034.524.680-1", "format"),
        (K.ISWC, "T-034.524.68A-1", "format"),
        (K.ISWC, "", "length"),
        (K.IPI_NAME, "0001410733", "length"),
        (K.IPI_NAME, "0001410733A", "format"),
        (K.IPI_BASE, "I-00000022-7", "length"),
        (K.IPI_BASE, "T-000000229-7", "format"),
        (K.IPI_BASE, "I-000000229-7", "valid"),
        (K.ISNI, "0000 0001 2281 955", "length"),
        (K.ISNI, "0000 0001 2281 95X5", "format"),
        (K.ISNI, "0000 0001 2281 955Y", "format"),
        (K.GRID, "A12425GABC1234002", "length"),
        (K.GRID, "A12425GABC1234002*", "format"),
        (K.DPID, "PADPIDA2013020802", "length"),
        (K.DPID, "PADPIDB2013020802I", "prefix"),
        (K.DPID, "PADPIDA201302080AI", "format"),
        (K.GTIN, "400638133393", "check_digit"),
        (K.GTIN, "40063813339", "length"),
        (K.GTIN, "400638133393A", "format"),
        (K.ISRC, "US-SKG-19-1234", "length"),
        (K.ISRC, "US-SKG-19-1234A", "format"),
        (K.ISRC, "U1-SKG-19-12345", "format"),
        (K.ISRC, "US-SKG-1A-12345", "format"),
        (K.ISRC, "QM-ABC-24-00001", "valid"),
    ],
)
def test_each_shape_rule_is_named_when_it_fails(kind, value, rule):
    if rule == "valid":
        assert validate(kind, value)
    else:
        assert rule_of(kind, value) == rule


def test_an_empty_value_names_itself_in_the_message():
    with pytest.raises(InvalidIdentifier, match=r"ISWC '  ': has 0 characters, expected 11"):
        validate_iswc("  ")


def test_every_iso_3166_country_is_an_isrc_prefix():
    import pycountry

    for country in pycountry.countries:
        assert validate_isrc(f"{country.alpha_2}SKG1912345")


# --- normalisation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "compact"),
    [
        ("  t-034.524.680-1 ", "T0345246801"),
        ("T 034 524 680 1", "T0345246801"),
        ("ISWC T-034.524.680-1", "T0345246801"),
        ("iswc:T0345246801", "T0345246801"),
        ("ISWCT0345246801", "T0345246801"),
        ("ISRC US-SKG-19-12345", "USSKG1912345"),
        ("isrc: us-skg-19-12345", "USSKG1912345"),
        ("ISRCUSSKG1912345", "USSKG1912345"),
        ("ISNI 0000 0001 2281 955x", "000000012281955X"),
        ("GRid:A1-2425G-ABC1234002-M", "A12425GABC1234002M"),
        ("GRID: A1-2425G-ABC1234002-M", "A12425GABC1234002M"),
        ("i-000000229-7", "I0000002297"),
        ("4006381\t333931", "4006381333931"),
    ],
)
def test_normalise_trims_upper_cases_and_drops_separators_and_labels(raw, compact):
    assert normalise(raw) == compact


def test_a_label_glued_to_a_twelve_character_value_is_kept_because_it_may_be_an_isrc():
    # IS (Iceland) + registrant RC0: "ISRC" here is the ISRC itself, not a label.
    assert normalise("ISRC01900001") == "ISRC01900001"
    assert validate_isrc("IS-RC0-19-00001") == "ISRC01900001"
    assert identify("ISRC01900001").kind is K.ISRC


def test_validators_accept_any_normalisable_spelling():
    assert validate_iswc("  iswc t-034.524.680-1") == "T0345246801"
    assert validate_isni("isni 0000-0001-2281-955x") == "000000012281955X"
    assert validate_grid("grid:a1-2425g-abc1234002-m") == "A12425GABC1234002M"
    assert validate_ipi_base("i.000000229.7") == "I0000002297"


# --- display --------------------------------------------------------------------


def test_display_groups_each_kind_as_published():
    assert format_iswc("T0345246801") == "T-034.524.680-1"
    assert format_isni("000000012281955X") == "0000 0001 2281 955X"
    assert format_isrc("ZZAUR2600001") == "ZZ-AUR-26-00001"
    assert display("ipi_base", "I0000002297") == "I-000000229-7"
    assert display("grid", "A12425GABC1234002M") == "A1-2425G-ABC1234002-M"


def test_display_refuses_an_invalid_identifier():
    with pytest.raises(InvalidIdentifier):
        display(K.ISWC, "T1234567893")
    with pytest.raises(InvalidIdentifier):
        format_iswc("T1234567893")


# --- ISWC construction ----------------------------------------------------------


def test_iswc_check_digit_matches_the_published_examples():
    assert iswc_check_digit("034524680") == 1
    assert iswc_check_digit("000000001") == 0
    assert iswc_check_digit("123456789") == 4


def test_iswc_check_digit_wants_exactly_nine_digits():
    with pytest.raises(ValueError, match="9 digits"):
        iswc_check_digit("12345678")


@pytest.mark.parametrize("n", [0, 1, 34_524_680, 999_999_999])
def test_make_iswc_round_trips_through_validate_iswc(n):
    iswc = make_iswc(n)
    assert validate_iswc(format_iswc(iswc)) == iswc
    assert int(iswc[1:10]) == n


def test_make_iswc_matches_the_published_example():
    assert make_iswc(34_524_680) == "T0345246801"
    assert make_iswc(1) == "T0000000010"


@pytest.mark.parametrize("n", [-1, 1_000_000_000])
def test_make_iswc_refuses_a_body_outside_nine_digits(n):
    with pytest.raises(ValueError, match=r"0\.\.999999999"):
        make_iswc(n)


@given(st.integers(min_value=0, max_value=999_999_999), st.integers(min_value=0, max_value=9))
def test_make_iswc_validates_and_any_other_check_digit_fails(n, digit):
    iswc = make_iswc(n)
    assert validate_iswc(iswc) == iswc
    other = iswc[:10] + str(digit)
    if other != iswc:
        with pytest.raises(InvalidIdentifier) as caught:
            validate_iswc(other)
        assert caught.value.rule == "check_digit"


# --- identify -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("T0345246801", K.ISWC),
        ("T1234567893", K.ISWC),
        ("PADPIDA2013020802I", K.DPID),
        ("PADPIDA123", K.DPID),
        ("I-000000229-7", K.IPI_BASE),
        ("USSKG1912345", K.ISRC),
        ("A12425GABC1234002M", K.GRID),
        ("000000012281955X", K.ISNI),
        ("0000000122819551", K.ISNI),
        ("00014107338", K.IPI_NAME),
        ("12345678", K.GTIN),
        ("036000291452", K.GTIN),
        ("4006381333931", K.GTIN),
        ("14006381333938", K.GTIN),
    ],
)
def test_identify_guesses_the_kind_from_the_shape(value, kind):
    assert identify(value).kind is kind


def test_identify_always_reads_eleven_digits_as_an_ipi_name_number():
    check = identify("03600029145")  # a UPC-A could lose its leading zero in a spreadsheet
    assert (check.kind, check.valid, check.rule) == (K.IPI_NAME, False, "check_digit")


def test_identify_hints_at_a_lost_leading_zero_when_one_makes_a_valid_upc():
    check = identify("36000291452")
    assert check.kind is K.IPI_NAME
    assert "036000291452 would be a valid UPC/EAN" in check.message


@pytest.mark.parametrize("value", ["", "hello", "T12345", "123", "A12425GABC1234002M99"])
def test_identify_reports_an_unknown_kind_when_no_shape_fits(value):
    check = identify(value)
    assert (check.kind, check.valid, check.rule) == (None, False, "unknown_kind")
    assert "no identifier kind has this shape" in check.message
    assert "ISWC T+10 digits" in check.message


def test_identify_with_a_kind_validates_as_that_kind_only():
    check = identify("00014107338", "gtin")
    assert (check.kind, check.valid, check.rule) == (K.GTIN, False, "length")
    assert identify("00014107338", K.IPI_NAME).valid


def test_identify_accepts_kind_names_in_any_case_and_the_usual_aliases():
    assert identify("4006381333931", "EAN").kind is K.GTIN
    assert identify("036000291452", "upc").kind is K.GTIN
    assert identify("00014107338", " IPI_NAME ").kind is K.IPI_NAME


@pytest.mark.parametrize("call", [lambda: identify("T0345246801", "iswk"), lambda: validate("x", "T")])
def test_an_unknown_kind_is_a_value_error_naming_the_accepted_kinds(call: Callable[[], object]):
    with pytest.raises(ValueError, match="unknown identifier kind") as caught:
        call()
    assert all(kind.value in str(caught.value) for kind in IdentifierKind)


def test_identifier_check_is_immutable_and_serialises_to_a_plain_dict():
    check = identify("ISWC T-034.524.680-1")
    assert check == IdentifierCheck(
        kind=K.ISWC,
        input="ISWC T-034.524.680-1",
        compact="T0345246801",
        display="T-034.524.680-1",
        valid=True,
        rule="",
        message="valid ISWC (ISO 15707)",
    )
    assert check.to_dict() == {
        "kind": "iswc",
        "input": "ISWC T-034.524.680-1",
        "compact": "T0345246801",
        "display": "T-034.524.680-1",
        "valid": True,
        "rule": "",
        "message": "valid ISWC (ISO 15707)",
    }
    with pytest.raises(AttributeError):
        check.valid = False  # type: ignore[misc]


def test_an_invalid_check_carries_the_normalised_value_and_the_error_message():
    check = identify("t-123.456.789-3")
    assert check.to_dict() == {
        "kind": "iswc",
        "input": "t-123.456.789-3",
        "compact": "T1234567893",
        "display": "T1234567893",
        "valid": False,
        "rule": "check_digit",
        "message": "ISWC T1234567893: check digit is 3, expected 4 (ISO 15707)",
    }


def test_the_kind_is_a_string_enum_other_modules_can_store():
    assert [k.value for k in IdentifierKind] == [
        "isrc",
        "iswc",
        "ipi_name",
        "ipi_base",
        "isni",
        "grid",
        "dpid",
        "gtin",
    ]
    assert K.ISWC == "iswc"
