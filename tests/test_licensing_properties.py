"""Properties of the eligibility policy over random small catalogs (hypothesis)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.licensing import Decision, LicensingPolicy, decide
from accord.registry.entities import (
    PPM_WHOLE,
    Agreement,
    Catalog,
    OptOut,
    OptOutScope,
    Recording,
    Side,
    Use,
    Work,
)
from tests.factories import agreement, catalog, optout, ppm, recording, work

PARTIES = ("P-A", "P-B", "P-C", "P-D")
TERRITORIES = ("GB", "US", "FR", "DE")
DATES = tuple(datetime(2026, month, 1, tzinfo=UTC) for month in (1, 3, 6, 9, 12))
INSTANTS = (*DATES, datetime(2026, 7, 15, 12, tzinfo=UTC))
ISRCS = tuple(f"GBXYZ26{n:05d}" for n in range(1, 7))
WORK_IDS = ("W-0001", "W-0002", "W-0003", "W-0004")
UNKNOWN_WORK = "W-9999"
ALL = frozenset({"train", "generate", "remix"})

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mostly(draw: st.DrawFn, common: object, rare: st.SearchStrategy, in_ten: int = 7) -> object:
    """``common`` ``in_ten`` times in ten, else a draw from ``rare``."""
    return common if draw(st.integers(0, 9)) < in_ten else draw(rare)


# Strategies are built once, here: building them inside a draw costs more than drawing.
# They lean towards what licenses in practice (every use, worldwide, whole catalog, open
# ended, whole shares) so that a fair part of the recordings comes out eligible and the
# properties bite both ways.
parties = st.sampled_from(PARTIES)
some_parties = st.lists(parties, max_size=2, unique=True)
uses = mostly(ALL, st.frozensets(st.sampled_from(sorted(ALL)), max_size=3), in_ten=8)
territory_specs = mostly("worldwide", st.lists(st.sampled_from(TERRITORIES), max_size=3), in_ten=8)
exclusions = mostly([], st.lists(st.sampled_from(TERRITORIES), min_size=1, max_size=2), in_ten=8)
starts = mostly(DATES[0], st.sampled_from(DATES), in_ten=8)
ends = mostly(None, st.sampled_from(DATES[1:]), in_ten=8)
rare_ends = mostly(None, st.sampled_from(DATES[1:]), in_ten=9)
rare_exclusions = mostly([], st.lists(st.sampled_from(TERRITORIES), min_size=1, max_size=2), in_ten=9)
listed = {
    "master": mostly(None, st.lists(st.sampled_from(ISRCS), max_size=3), in_ten=8),
    "publishing": mostly(None, st.lists(st.sampled_from(WORK_IDS), max_size=3), in_ten=8),
}
rare_listed = {
    "master": mostly(None, st.lists(st.sampled_from(ISRCS), max_size=3), in_ten=9),
    "publishing": mostly(None, st.lists(st.sampled_from(WORK_IDS), max_size=3), in_ten=9),
}
embodied_of = {k: st.lists(st.sampled_from(WORK_IDS[:k]), min_size=1, max_size=2, unique=True) for k in (1, 2, 3, 4)}
owner_lists = st.lists(parties, min_size=1, max_size=3, unique=True)
cut_points = st.lists(st.integers(0, PPM_WHOLE), min_size=2, max_size=2)
share_errors = mostly(0, st.integers(-500_000, 500_000), in_ten=9)


@st.composite
def embodied(draw: st.DrawFn, known: int) -> list[str]:
    """Mostly 1-2 of the catalog's works; sometimes none, sometimes an unknown one too."""
    roll = draw(st.integers(0, 19))
    works = [] if roll == 0 else draw(embodied_of[known])
    return [*works, UNKNOWN_WORK] if roll == 1 else works


@st.composite
def owner_shares(draw: st.DrawFn) -> dict[str, object]:
    """1-3 distinct owners with ppm shares summing to 100%, or (one time in ten) not."""
    owners = draw(owner_lists)
    bounds = [0, *sorted(draw(cut_points)[: len(owners) - 1]), PPM_WHOLE]
    values = [b - a for a, b in itertools.pairwise(bounds)]
    values[0] += draw(share_errors)
    return {owner: ppm(value) for owner, value in zip(owners, values, strict=True)}


@st.composite
def agreements(draw: st.DrawFn, agreement_id: str) -> Agreement:
    side = draw(st.sampled_from(["master", "publishing"]))
    start, end = draw(starts), draw(ends)
    items = draw(listed[side])
    return agreement(
        agreement_id,
        draw(parties),
        side,
        uses=draw(uses),
        territory=draw(territory_specs),
        exclude=draw(exclusions),
        start=start,
        end=end if end is None or end > start else None,
        recordings=items if side == "master" else None,
        works=items if side == "publishing" else None,
    )


@st.composite
def plain_agreements(draw: st.DrawFn, party: str, side: str) -> Agreement:
    """Every use, worldwide, from 2026-01-01, the whole catalog; one time in ten an exclusion,
    an end, or a list of items."""
    items = draw(rare_listed[side])
    return agreement(
        f"AGR-{party}-{side}",
        party,
        side,
        exclude=draw(rare_exclusions),
        end=draw(rare_ends),
        recordings=items if side == "master" else None,
        works=items if side == "publishing" else None,
    )


@st.composite
def optouts(draw: st.DrawFn, optout_id: str) -> OptOut:
    scope = draw(st.sampled_from(list(OptOutScope)))
    target = draw(st.sampled_from(ISRCS if scope is OptOutScope.RECORDING else WORK_IDS))
    return optout(optout_id, draw(parties), scope, target, draw(uses), draw(st.sampled_from(DATES)))


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    """1-6 recordings, 1-4 works, plain licences for most parties, 0-8 other agreements, 0-2 opt-outs."""
    known = draw(st.integers(1, 4))
    works = [work(w, owners=draw(owner_shares()), writers=draw(some_parties)) for w in WORK_IDS[:known]]
    recordings = [
        recording(isrc, owners=draw(owner_shares()), works=draw(embodied(known)), artists=draw(some_parties))
        for isrc in ISRCS[: draw(st.integers(1, 6))]
    ]
    plain = [
        draw(plain_agreements(party, side))
        for party in PARTIES
        for side in ("master", "publishing")
        if draw(st.integers(0, 9)) < 7
    ]
    others = [draw(agreements(f"AGR-X{n}")) for n in range(draw(st.integers(0, 8)))]
    opts = [draw(optouts(f"O-{n}")) for n in range(draw(st.integers(0, 2)))]
    return catalog(*works, *recordings, *plain, *others, *opts)


queries = st.tuples(
    mostly(Use.TRAIN, st.sampled_from(list(Use))),
    st.sampled_from(INSTANTS),
    st.sampled_from(TERRITORIES),
)


def decisions(cat: Catalog, query: tuple[Use, datetime, str]) -> dict[str, Decision]:
    return {d.isrc: d for d in LicensingPolicy(cat).decide_all(*query)}


def without_agreement(cat: Catalog, agreement_id: str) -> Catalog:
    rest = {k: v for k, v in cat.agreements.items() if k != agreement_id}
    return dataclasses.replace(cat, agreements=rest)


# ------------------------------------------------------------------ an independent oracle


def oracle_eligible(cat: Catalog, isrc: str, use: Use, at: datetime, territory: str) -> bool:
    """The rule of DESIGN.md, written as plainly as possible, without indexes."""
    rec: Recording | None = cat.recordings.get(isrc)
    if use is Use.VOICE or rec is None:
        return False

    def whole(shares: tuple) -> bool:
        return bool(shares) and all(0 <= s.ppm <= PPM_WHOLE for s in shares) and sum(s.ppm for s in shares) == PPM_WHOLE

    def signed(party_id: str, side: Side, subject: str) -> bool:
        return any(
            a.licensor == party_id
            and a.side == side
            and a.in_force(at)
            and use in a.uses
            and a.territory.covers(territory)
            and (a.coverage.catalog or subject in (a.coverage.recordings if side == Side.MASTER else a.coverage.works))
            for a in cat.agreements.values()
        )

    if not whole(rec.shares) or not all(signed(s.party_id, Side.MASTER, rec.isrc) for s in rec.shares if s.ppm):
        return False
    works: list[Work] = []
    for work_id in rec.works:
        w = cat.works.get(work_id)
        if w is None or not whole(w.shares):
            return False
        if not all(signed(s.party_id, Side.PUBLISHING, work_id) for s in w.shares if s.ppm):
            return False
        works.append(w)
    if not works:
        return False
    on_work = {w.work_id: set(w.writers) | {s.party_id for s in w.shares} for w in works}
    on_recording = set(rec.artists) | {s.party_id for s in rec.shares} | set().union(*on_work.values())
    for o in cat.optouts.values():
        if not (o.in_force(at) and use in o.uses):
            continue
        if o.scope is OptOutScope.RECORDING and o.target == isrc and o.party_id in on_recording:
            return False
        if o.scope is OptOutScope.WORK and o.party_id in on_work.get(o.target, set()):
            return False
        if o.scope is OptOutScope.CATALOG and o.party_id in on_recording:
            return False
    return True


# ------------------------------------------------------------------ properties


@settings(FAST, max_examples=120)
@given(catalogs())
def test_policy_agrees_with_the_plain_rule(cat):
    # every use, at every boundary date and between them, in every territory
    policy = LicensingPolicy(cat)
    for query in itertools.product(Use, INSTANTS, TERRITORIES):
        for decision in policy.decide_all(*query):
            assert decision.eligible == oracle_eligible(cat, decision.isrc, *query), decision


@FAST
@given(catalogs(), queries, st.data())
def test_removing_an_agreement_never_makes_a_recording_eligible(cat, query, data):
    if not cat.agreements:
        return
    removed = data.draw(st.sampled_from(sorted(cat.agreements)))
    before = decisions(cat, query)
    after = decisions(without_agreement(cat, removed), query)
    for isrc, decision in after.items():
        assert not decision.eligible or before[isrc].eligible
        assert removed not in decision.relied_on


@FAST
@given(catalogs(), queries, st.data())
def test_adding_an_opt_out_never_makes_a_recording_eligible(cat, query, data):
    new = data.draw(optouts("O-NEW"))
    before = decisions(cat, query)
    after = decisions(dataclasses.replace(cat, optouts={**cat.optouts, "O-NEW": new}), query)
    for isrc, decision in after.items():
        assert not decision.eligible or before[isrc].eligible


@FAST
@given(catalogs(), queries)
def test_eligible_decisions_rely_on_fitting_agreements(cat, query):
    use, at, territory = query
    for decision in decisions(cat, query).values():
        assert decision.eligible == (not decision.reasons)
        assert decision.eligible == bool(decision.relied_on)
        assert list(decision.relied_on) == sorted(set(decision.relied_on))
        for agreement_id in decision.relied_on:
            a = cat.agreements[agreement_id]
            assert a.in_force(at)
            assert use in a.uses
            assert a.territory.covers(territory)


@FAST
@given(catalogs(), queries)
def test_shares_not_summing_to_100_percent_are_never_eligible(cat, query):
    for isrc, decision in decisions(cat, query).items():
        rec = cat.recordings[isrc]
        known = [cat.works[w] for w in rec.works if w in cat.works]
        if sum(s.ppm for s in rec.shares) != PPM_WHOLE or any(sum(s.ppm for s in w.shares) != PPM_WHOLE for w in known):
            assert not decision.eligible


@FAST
@given(catalogs(), queries)
def test_decide_is_deterministic(cat, query):
    policy = LicensingPolicy(cat)
    for isrc in cat.recordings:
        first = policy.decide(isrc, *query)
        assert first == policy.decide(isrc, *query)
        assert first == decide(cat, isrc, *query)
        assert first == LicensingPolicy(cat).decide(isrc, *query)
        assert first.to_dict() == decide(cat, isrc, *query).to_dict()
