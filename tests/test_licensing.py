"""The eligibility policy, one rule per test (DESIGN.md, "Domain rules")."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

import accord.licensing
from accord.errors import ValidationError
from accord.licensing import Decision, LicensingPolicy, ReasonCode, decide, opt_out_standing
from accord.registry.entities import Catalog, OptOutScope, Side, Use
from tests.factories import (
    AT,
    ISRC_1,
    ISRC_2,
    JAN_1_2026,
    WORK_1,
    WORK_2,
    Record,
    agreement,
    catalog,
    fully_licensed_catalog,
    optout,
    ppm,
    recording,
    to_ppm,
    work,
)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Every rule is checked on the catalog as built, and after a round trip through each store."""
    return str(request.param)


@pytest.fixture(autouse=True)
def through_the_store(backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the SQLite and PostgreSQL runs, ``decide`` reads its catalog back from a real store first."""
    if backend == "memory":
        return
    from sqlalchemy import delete

    from accord.registry.schema import Base
    from accord.registry.store import ChangeSet, Store

    store: Store = request.getfixturevalue("store")
    stored: dict[int, tuple[Catalog, Catalog]] = {}
    real = accord.licensing.decide

    def via_store(cat: Catalog, *args: object) -> Decision:
        if id(cat) not in stored:
            with store.engine.begin() as conn:
                for table in reversed(Base.metadata.sorted_tables):
                    conn.execute(delete(table))
            store.apply(
                ChangeSet(
                    parties=tuple(cat.parties.values()),
                    works=tuple(cat.works.values()),
                    recordings=tuple(cat.recordings.values()),
                    agreements=tuple(cat.agreements.values()),
                    optouts=tuple(cat.optouts.values()),
                ),
                actor="test",
                action="test",
            )
            stored[id(cat)] = (cat, store.snapshot())  # keep cat alive so its id is not reused
        return real(stored[id(cat)][1], *args)  # type: ignore[arg-type]

    monkeypatch.setattr(__import__(__name__, fromlist=["decide"]), "decide", via_store)


def codes(decision: Decision) -> list[str]:
    return [reason.code for reason in decision.reasons]


def licensed(*records: Record) -> Catalog:
    """The fully licensed one-recording catalog, plus (or replacing, by id) these records."""
    base = fully_licensed_catalog()
    extra = catalog(*records)
    return Catalog(
        parties={**base.parties, **extra.parties},
        works={**base.works, **extra.works},
        recordings={**base.recordings, **extra.recordings},
        agreements={**base.agreements, **extra.agreements},
        optouts={**base.optouts, **extra.optouts},
    )


def test_fully_licensed_recording_is_eligible_for_every_grantable_use():
    for use in ("train", "generate", "remix"):
        decision = decide(fully_licensed_catalog(), ISRC_1, use, AT, "GB")
        assert decision.eligible
        assert decision.reasons == ()
        assert decision.relied_on == ("AGR-LABEL-MASTER", "AGR-PUB-PUBLISHING")


def test_co_owned_recording_needs_every_owner_to_sign():
    cat = licensed(recording(ISRC_1, owners={"P-LABEL": 60, "P-CO": 40}, works=(WORK_1,)))
    decision = decide(cat, ISRC_1, "train", AT, "GB")
    assert not decision.eligible
    (reason,) = decision.reasons
    assert (reason.code, reason.side, reason.party_id, reason.subject) == (
        "no_agreement",
        Side.MASTER,
        "P-CO",
        ISRC_1,
    )
    assert reason.message == f"P-CO (master owner of {ISRC_1}, 40%) has no master agreement."

    signed = licensed(
        recording(ISRC_1, owners={"P-LABEL": 60, "P-CO": 40}, works=(WORK_1,)),
        agreement("AGR-CO", "P-CO"),
    )
    assert decide(signed, ISRC_1, "train", AT, "GB").relied_on == (
        "AGR-CO",
        "AGR-LABEL-MASTER",
        "AGR-PUB-PUBLISHING",
    )


def test_master_licensed_but_publishing_not_is_not_eligible():
    cat = catalog(
        recording(ISRC_1),
        work(WORK_1, owners={"P-PUB": 100}),
        agreement("AGR-LABEL-MASTER", "P-LABEL"),
    )
    decision = decide(cat, ISRC_1, "train", AT, "GB")
    assert not decision.eligible
    assert decision.relied_on == ()
    (reason,) = decision.reasons
    assert (reason.code, reason.side, reason.subject) == ("no_agreement", Side.PUBLISHING, WORK_1)


def test_publishing_licensed_but_master_not_is_not_eligible():
    cat = catalog(recording(ISRC_1), work(WORK_1), agreement("AGR-PUB", "P-PUB", "publishing"))
    decision = decide(cat, ISRC_1, "train", AT, "GB")
    assert codes(decision) == ["no_agreement"]
    assert decision.reasons[0].side is Side.MASTER


def test_a_master_agreement_does_not_license_the_publishing_side():
    cat = catalog(
        recording(ISRC_1, owners={"P-MAJOR": 100}),
        work(WORK_1, owners={"P-MAJOR": 100}),
        agreement("AGR-MAJOR-MASTER", "P-MAJOR", "master"),
    )
    decision = decide(cat, ISRC_1, "train", AT, "GB")
    assert [(r.code, r.side) for r in decision.reasons] == [("no_agreement", Side.PUBLISHING)]


def test_every_embodied_work_needs_its_publishers_to_sign():
    cat = licensed(
        recording(ISRC_1, works=(WORK_1, WORK_2)),
        work(WORK_2, owners={"P-HARBOUR": 40, "P-PUB": 60}),
    )
    decision = decide(cat, ISRC_1, "train", AT, "GB")
    (reason,) = decision.reasons
    assert reason.message == "P-HARBOUR (publishing owner of W-0002, 40%) has no publishing agreement."


def test_expired_agreement_no_longer_counts():
    cat = licensed(agreement("AGR-LABEL-MASTER", "P-LABEL", end=datetime(2026, 3, 1, tzinfo=UTC)))
    assert decide(cat, ISRC_1, "train", datetime(2026, 2, 28, tzinfo=UTC), "GB").eligible
    decision = decide(cat, ISRC_1, "train", AT, "GB")
    (reason,) = decision.reasons
    assert reason.code == "agreement_expired"
    assert reason.agreement_id == "AGR-LABEL-MASTER"
    assert "2026-03-01T00:00:00Z" in reason.message
    assert "2026-06-01T00:00:00Z" in reason.message


def test_agreement_end_is_exclusive():
    end = datetime(2026, 3, 1, tzinfo=UTC)
    cat = licensed(agreement("AGR-LABEL-MASTER", "P-LABEL", end=end))
    assert decide(cat, ISRC_1, "train", end - timedelta(microseconds=1), "GB").eligible
    assert codes(decide(cat, ISRC_1, "train", end, "GB")) == ["agreement_expired"]


def test_agreement_start_is_inclusive_and_nothing_counts_before_it():
    start = datetime(2026, 3, 1, tzinfo=UTC)
    cat = licensed(agreement("AGR-LABEL-MASTER", "P-LABEL", start=start))
    assert decide(cat, ISRC_1, "train", start, "GB").eligible
    decision = decide(cat, ISRC_1, "train", start - timedelta(seconds=1), "GB")
    assert codes(decision) == ["agreement_not_started"]
    assert "starts 2026-03-01T00:00:00Z" in decision.reasons[0].message


def test_instants_in_other_timezones_are_compared_in_utc():
    end = datetime(2026, 3, 1, tzinfo=UTC)
    cat = licensed(agreement("AGR-LABEL-MASTER", "P-LABEL", end=end))
    paris = timezone(timedelta(hours=1))
    just_before = datetime(2026, 3, 1, 0, 59, 59, tzinfo=paris)  # 23:59:59 UTC
    decision = decide(cat, ISRC_1, "train", just_before, "FR")
    assert decision.eligible
    assert decision.at == datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC)
    assert not decide(cat, ISRC_1, "train", datetime(2026, 3, 1, 1, tzinfo=paris), "FR").eligible


def test_territory_limited_agreement():
    cat = licensed(agreement("AGR-LABEL-MASTER", "P-LABEL", territory=["GB", "IE"]))
    assert decide(cat, ISRC_1, "train", AT, "GB").eligible
    assert decide(cat, ISRC_1, "train", AT, "ie").eligible
    decision = decide(cat, ISRC_1, "train", AT, "US")
    assert codes(decision) == ["territory_not_covered"]
    assert "it covers GB, IE, not US" in decision.reasons[0].message


def test_worldwide_minus_exclusions():
    cat = licensed(agreement("AGR-PUB-PUBLISHING", "P-PUB", "publishing", exclude=["FR"]))
    assert decide(cat, ISRC_1, "train", AT, "DE").eligible
    decision = decide(cat, ISRC_1, "train", AT, "FR")
    assert codes(decision) == ["territory_not_covered"]
    assert "worldwide except FR" in decision.reasons[0].message


def test_licensed_for_generate_but_not_train():
    cat = licensed(agreement("AGR-LABEL-MASTER", "P-LABEL", uses=("generate",)))
    assert decide(cat, ISRC_1, "generate", AT, "GB").eligible
    decision = decide(cat, ISRC_1, "train", AT, "GB")
    assert codes(decision) == ["use_not_granted"]
    assert "it grants generate, not train" in decision.reasons[0].message


def test_voice_is_reserved_and_never_eligible():
    cat = licensed(
        agreement("AGR-LABEL-MASTER", "P-LABEL", uses=("train", "voice")),
        agreement("AGR-PUB-PUBLISHING", "P-PUB", "publishing", uses=("train", "voice")),
    )
    decision = decide(cat, ISRC_1, Use.VOICE, AT, "GB")
    assert not decision.eligible
    assert codes(decision) == ["use_reserved"]


def test_artist_opt_out_blocks_only_its_uses_from_its_effective_date():
    effective = datetime(2026, 4, 1, tzinfo=UTC)
    cat = licensed(optout("O-1", "P-ARTIST", "recording", ISRC_1, ("train",), effective))
    assert decide(cat, ISRC_1, "train", effective - timedelta(seconds=1), "GB").eligible
    assert decide(cat, ISRC_1, "generate", AT, "GB").eligible
    decision = decide(cat, ISRC_1, "train", effective, "GB")
    (reason,) = decision.reasons
    assert (reason.code, reason.party_id, reason.subject) == ("opted_out", "P-ARTIST", ISRC_1)
    assert reason.message == (
        f"P-ARTIST (artist of {ISRC_1}) opted out of train for recording {ISRC_1} "
        "from 2026-04-01T00:00:00Z (opt-out O-1)."
    )


def test_writer_catalog_opt_out_blocks_recordings_of_its_works():
    cat = licensed(
        recording(ISRC_2, works=(WORK_2,)),
        work(WORK_2, owners={"P-PUB": 100}, writers=("P-OTHER-WRITER",)),
        optout("O-1", "P-WRITER", "catalog", uses="all"),
    )
    assert codes(decide(cat, ISRC_1, "train", AT, "GB")) == ["opted_out"]
    assert decide(cat, ISRC_2, "train", AT, "GB").eligible  # P-WRITER did not write W-0002


def test_work_opt_out_by_its_publisher_blocks_every_recording_of_the_work():
    cat = licensed(
        recording(ISRC_2, works=(WORK_1,)),
        optout("O-1", "P-PUB", "work", WORK_1, ("remix",)),
    )
    for isrc in (ISRC_1, ISRC_2):
        decision = decide(cat, isrc, "remix", AT, "GB")
        assert codes(decision) == ["opted_out"]
        assert decision.reasons[0].subject == WORK_1
        assert decide(cat, isrc, "train", AT, "GB").eligible


def test_recording_opt_out_blocks_only_that_recording():
    cat = licensed(recording(ISRC_2), optout("O-1", "P-LABEL", "recording", ISRC_1))
    assert not decide(cat, ISRC_1, "train", AT, "GB").eligible
    assert decide(cat, ISRC_2, "train", AT, "GB").eligible


def test_opt_out_without_standing_is_ignored():
    cat = licensed(
        recording(ISRC_2, owners={"P-STRANGER": 100}, works=(WORK_2,)),
        work(WORK_2, owners={"P-STRANGER": 100}),
        optout("O-REC", "P-STRANGER", "recording", ISRC_1),
        optout("O-WORK", "P-STRANGER", "work", WORK_1),
        optout("O-CAT", "P-STRANGER", "catalog"),
    )
    assert decide(cat, ISRC_1, "train", AT, "GB").eligible
    assert not opt_out_standing(cat, "P-STRANGER", OptOutScope.RECORDING, ISRC_1)
    assert not opt_out_standing(cat, "P-STRANGER", "work", WORK_1)


def test_who_has_standing_to_opt_out():
    cat = fully_licensed_catalog()
    for party_id in ("P-LABEL", "P-ARTIST", "P-WRITER", "P-PUB"):
        assert opt_out_standing(cat, party_id, "recording", ISRC_1)
        assert opt_out_standing(cat, party_id, "catalog", "")
    assert opt_out_standing(cat, "P-WRITER", "work", WORK_1)
    assert opt_out_standing(cat, "P-PUB", "work", WORK_1)
    assert not opt_out_standing(cat, "P-LABEL", "work", WORK_1)  # a label owns no song
    assert not opt_out_standing(cat, "P-ARTIST", "work", WORK_1)
    assert not opt_out_standing(cat, "P-LABEL", "recording", "GBXYZ2699999")  # unknown
    assert not opt_out_standing(cat, "P-NOBODY", "catalog", "")
    with pytest.raises(ValidationError) as raised:
        opt_out_standing(cat, "P-LABEL", "everything", "")
    assert raised.value.field == "scope"


def test_zero_share_owner_needs_no_agreement():
    cat = licensed(recording(ISRC_1, owners={"P-LABEL": 100, "P-FORMER": 0}))
    decision = decide(cat, ISRC_1, "train", AT, "GB")
    assert decision.eligible
    assert decision.relied_on == ("AGR-LABEL-MASTER", "AGR-PUB-PUBLISHING")


def test_zero_share_owner_still_has_standing_to_opt_out():
    cat = licensed(
        recording(ISRC_1, owners={"P-LABEL": 100, "P-FORMER": 0}),
        optout("O-1", "P-FORMER", "recording", ISRC_1),
    )
    assert codes(decide(cat, ISRC_1, "train", AT, "GB")) == ["opted_out"]


def test_listed_coverage_covers_only_listed_items():
    cat = licensed(
        recording(ISRC_2, works=(WORK_2,)),
        work(WORK_2),
        agreement("AGR-LABEL-MASTER", "P-LABEL", recordings=[ISRC_1]),
        agreement("AGR-PUB-PUBLISHING", "P-PUB", "publishing", works=[WORK_2]),
    )
    first = decide(cat, ISRC_1, "train", AT, "GB")
    assert [(r.code, r.side) for r in first.reasons] == [("not_covered", Side.PUBLISHING)]
    assert f"covers only listed works and {WORK_1} is not one of them" in first.reasons[0].message
    second = decide(cat, ISRC_2, "train", AT, "GB")
    assert [(r.code, r.side) for r in second.reasons] == [("not_covered", Side.MASTER)]


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ((recording(ISRC_1, owners={}),), ["master_ownership_unknown"]),
        ((recording(ISRC_1, works=()),), ["publishing_unknown"]),
        ((recording(ISRC_1, works=(WORK_1, "W-9999")),), ["unknown_work"]),
        ((work(WORK_1, owners={}),), ["publishing_unknown"]),
    ],
    ids=["no-master-owners", "no-works", "unknown-work", "work-without-owners"],
)
def test_unknown_ownership_is_not_eligible(records, expected):
    decision = decide(licensed(*records), ISRC_1, "train", AT, "GB")
    assert not decision.eligible
    assert codes(decision) == expected


def test_unknown_recording_is_not_eligible():
    decision = decide(fully_licensed_catalog(), "GBXYZ2699999", "train", AT, "GB")
    assert codes(decision) == ["unknown_recording"]
    assert decision.reasons[0].side is None


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        (
            (recording(ISRC_1, owners={"P-LABEL": 90}),),
            "The master shares of GBXYZ2600001 sum to 90%, not 100%.",
        ),
        (
            (work(WORK_1, owners={"P-PUB": ppm(999_999)}),),
            "The publishing shares of W-0001 (embodied in GBXYZ2600001) sum to 99.9999%, not 100%.",
        ),
        (
            (recording(ISRC_1, owners={"P-LABEL": 110, "P-CO": -10}),),
            "The master shares of GBXYZ2600001 include -10% for P-CO, outside 0-100%.",
        ),
    ],
    ids=["master-90", "publishing-one-ppm-short", "out-of-range"],
)
def test_shares_not_summing_to_exactly_100_percent_are_not_eligible(records, expected):
    decision = decide(licensed(*records), ISRC_1, "train", AT, "GB")
    assert not decision.eligible
    assert decision.reasons[0].message == expected


def test_decision_names_every_failing_party():
    cat = catalog(
        recording(ISRC_1, owners={"P-LABEL": 50, "P-CO": 50}, works=(WORK_1, WORK_2)),
        work(WORK_1, owners={"P-PUB": 60, "P-HARBOUR": 40}, writers=("P-WRITER",)),
        work(WORK_2, owners={"P-PUB": 100}),
        agreement("AGR-CO", "P-CO", end=datetime(2026, 2, 1, tzinfo=UTC)),
        agreement("AGR-PUB", "P-PUB", "publishing", territory=["US"]),
        optout("O-1", "P-WRITER", "work", WORK_1),
    )
    decision = decide(cat, ISRC_1, "train", AT, "GB")
    assert [(r.code, r.party_id, r.subject, r.agreement_id) for r in decision.reasons] == [
        ("agreement_expired", "P-CO", ISRC_1, "AGR-CO"),
        ("no_agreement", "P-LABEL", ISRC_1, ""),
        ("no_agreement", "P-HARBOUR", WORK_1, ""),
        ("territory_not_covered", "P-PUB", WORK_1, "AGR-PUB"),
        ("territory_not_covered", "P-PUB", WORK_2, "AGR-PUB"),
        ("opted_out", "P-WRITER", WORK_1, ""),
    ]
    assert decision.reasons[0].message == (
        f"P-CO (master owner of {ISRC_1}, 50%) has master agreement AGR-CO, "
        "but it ended 2026-02-01T00:00:00Z, on or before 2026-06-01T00:00:00Z."
    )


def test_each_unfitting_agreement_gives_its_first_failing_check():
    # coverage is checked first, then in force, then use, then territory
    cat = licensed(
        agreement("AGR-LABEL-MASTER", "P-LABEL", recordings=[ISRC_2], end=JAN_1_2026),
        agreement("AGR-LABEL-2", "P-LABEL", start=datetime(2027, 1, 1, tzinfo=UTC), uses=()),
        agreement("AGR-LABEL-3", "P-LABEL", uses=("remix",), territory=["US"]),
        agreement("AGR-LABEL-4", "P-LABEL", territory=["US"]),
    )
    decision = decide(cat, ISRC_1, "train", AT, "GB")
    assert [(r.agreement_id, r.code) for r in decision.reasons] == [
        ("AGR-LABEL-2", "agreement_not_started"),
        ("AGR-LABEL-3", "use_not_granted"),
        ("AGR-LABEL-4", "territory_not_covered"),
        ("AGR-LABEL-MASTER", "not_covered"),
    ]


def test_relied_on_agreements():
    # the first fitting agreement by id is relied on, once however many items it covers
    cat = licensed(
        recording(ISRC_1, works=(WORK_1, WORK_2)),
        work(WORK_2),
        agreement("AGR-LABEL-0-EXPIRED", "P-LABEL", end=JAN_1_2026 + timedelta(days=1)),
        agreement("AGR-LABEL-Z-LATER", "P-LABEL"),
        agreement("AGR-PUB-0-W2", "P-PUB", "publishing", works=[WORK_2]),
    )
    decision = decide(cat, ISRC_1, "train", AT, "GB")
    assert decision.eligible
    assert decision.relied_on == ("AGR-LABEL-MASTER", "AGR-PUB-0-W2", "AGR-PUB-PUBLISHING")


def test_reasons_do_not_depend_on_delivery_order():
    records = [
        recording(ISRC_1, owners={"P-B": 50, "P-A": 50}, works=(WORK_2, WORK_1)),
        work(WORK_1, owners={"P-D": 50, "P-C": 50}),
        work(WORK_2, owners={"P-C": 100}),
        agreement("AGR-2", "P-A", uses=("remix",)),
        agreement("AGR-1", "P-A", territory=["US"]),
    ]
    forward = decide(catalog(*records), ISRC_1, "train", AT, "GB")
    backward = decide(catalog(*reversed(records)), ISRC_1, "train", AT, "GB")
    assert forward == backward
    assert [(r.party_id, r.subject) for r in forward.reasons] == [
        ("P-A", ISRC_1),
        ("P-A", ISRC_1),
        ("P-B", ISRC_1),
        ("P-C", WORK_1),
        ("P-D", WORK_1),
        ("P-C", WORK_2),
    ]


@pytest.mark.parametrize(
    ("use", "at", "territory", "field"),
    [
        ("sing", AT, "GB", "use"),
        ("train", datetime(2026, 6, 1), "GB", "at"),
        ("train", "2026-06-01", "GB", "at"),
        ("train", AT, "UK", "territory"),
        ("train", AT, "GBR", "territory"),
        ("train", AT, "", "territory"),
    ],
)
def test_bad_inputs_raise_validation_error_naming_the_field(use, at, territory, field):
    with pytest.raises(ValidationError) as raised:
        decide(fully_licensed_catalog(), ISRC_1, use, at, territory)
    assert raised.value.field == field
    assert field in str(raised.value)


def test_bad_use_error_names_the_accepted_values():
    with pytest.raises(ValidationError, match="train, generate, remix, voice"):
        LicensingPolicy(fully_licensed_catalog()).decide(ISRC_1, "sing", AT, "GB")


def test_use_and_territory_given_as_text_are_normalised():
    decision = decide(fully_licensed_catalog(), ISRC_1, " Train ", AT, "gb")
    assert (decision.use, decision.territory, decision.eligible) == (Use.TRAIN, "GB", True)


def test_decide_all_is_sorted_by_isrc():
    cat = licensed(recording(ISRC_2, owners={"P-NEW": 100}))
    policy = LicensingPolicy(cat)
    decisions = list(policy.decide_all("train", AT, "GB"))
    assert [(d.isrc, d.eligible) for d in decisions] == [(ISRC_1, True), (ISRC_2, False)]
    chosen = list(policy.decide_all("train", AT, "GB", isrcs=["GBXYZ2699999", ISRC_1]))
    assert [(d.isrc, codes(d)) for d in chosen] == [
        (ISRC_1, []),
        ("GBXYZ2699999", ["unknown_recording"]),
    ]
    assert decisions[0] == policy.decide(ISRC_1, "train", AT, "GB")


def test_decision_serialises_to_json_with_iso_dates_and_codes():
    cat = licensed(recording(ISRC_1, owners={"P-LABEL": 60, "P-CO": 40}))
    data = decide(cat, ISRC_1, "train", AT, "GB").to_dict()
    assert json.loads(json.dumps(data)) == {
        "isrc": ISRC_1,
        "use": "train",
        "at": "2026-06-01T00:00:00Z",
        "territory": "GB",
        "eligible": False,
        "relied_on": [],
        "reasons": [
            {
                "code": "no_agreement",
                "side": "master",
                "party_id": "P-CO",
                "subject": ISRC_1,
                "agreement_id": "",
                "message": f"P-CO (master owner of {ISRC_1}, 40%) has no master agreement.",
            }
        ],
    }


def test_every_reason_code_is_documented():
    doc = accord.licensing.__doc__ or ""
    for code in ReasonCode:
        assert f"``{code}``" in doc


def test_factories_convert_percent_to_ppm_exactly():
    assert to_ppm(40) == 400_000
    assert to_ppm("33.3334") == 333_334
    assert to_ppm(ppm(7)) == 7
    with pytest.raises(ValueError):
        to_ppm("33.33333")
    with pytest.raises(TypeError):
        to_ppm(33.3)  # type: ignore[arg-type]


def test_decide_all_checks_its_inputs_before_the_first_decision():
    with pytest.raises(ValidationError) as raised:
        LicensingPolicy(fully_licensed_catalog()).decide_all("train", AT, "ZZ")
    assert raised.value.field == "territory"
