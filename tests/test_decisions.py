"""Materialised decisions (accord.registry.decisions) equal the policy's, through the real store.

Each stored row holds a recording's decision for a use and territory, the registry counter it was
decided at and the span of instants it holds for. Whatever sequence of registry changes and clock
moves comes, what ``decisions_for`` answers is what :meth:`LicensingPolicy.decide` answers over a
fresh snapshot at that instant, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from accord.licensing import LicensingPolicy
from accord.registry import counters, decisions
from accord.registry.entities import Use
from accord.registry.store import Store
from accord.registry.versioning import ChangeSet
from tests.conftest import TickingClock
from tests.factories import agreement, catalog, optout, recording, work

TERRITORIES = ("US", "GB")
OFFSETS = tuple(timedelta(days=d) for d in (-400, -30, 1, 3, 20, 90))
STEPS = tuple(timedelta(hours=h) for h in (1, 30, 24 * 5, 24 * 40))
_examples = itertools.count()


def _write(store: Store, *records: object) -> None:
    cat = catalog(*records)  # type: ignore[arg-type]
    changes = ChangeSet(
        parties=tuple(cat.parties.values()),
        works=tuple(cat.works.values()),
        recordings=tuple(cat.recordings.values()),
        agreements=tuple(cat.agreements.values()),
        optouts=tuple(cat.optouts.values()),
    )
    store.apply(changes, actor="test", action="test.change")


def _assert_matches_policy(store: Store, isrcs: list[str], at: datetime, territory: str) -> None:
    got = decisions.decisions_for(store, isrcs, at, territory)
    policy = LicensingPolicy(store.snapshot())
    for isrc in isrcs:
        for use in decisions.USES:
            want = policy.decide(isrc, use, at, territory)
            assert got[isrc][use] == want, (isrc, use, at, got[isrc][use].reasons, want.reasons)


class World:
    """Three recordings and two works of one example, with ids of their own (the store is shared)."""

    def __init__(self, store: Store, n: int) -> None:
        self.store = store
        self.label, self.label2, self.pub, self.artist = (f"P-{n}-{k}" for k in ("LAB", "LB2", "PUB", "ART"))
        self.works = [f"W-{n}-{k}" for k in (1, 2)]
        self.isrcs = [f"QZ{n % 1000:03d}26{k:05d}" for k in (1, 2, 3)]
        self.recordings = {
            self.isrcs[0]: recording(self.isrcs[0], {self.label: 100}, [self.works[0]], [self.artist]),
            self.isrcs[1]: recording(self.isrcs[1], {self.label: 50, self.label2: 50}, [self.works[1]]),
            self.isrcs[2]: recording(self.isrcs[2], {self.label2: 100}, self.works),
        }
        self.agreements: dict[str, object] = {}
        self.ids = itertools.count(1)
        self.n = n
        _write(store, *(work(w, {self.pub: 100}) for w in self.works), *self.recordings.values())

    def parties(self) -> list[str]:
        return [self.label, self.label2, self.pub, self.artist]


change = st.one_of(
    st.tuples(st.just("grant"), st.integers(0, 2), st.sampled_from(OFFSETS), st.sampled_from((None, *OFFSETS))),
    st.tuples(st.just("end"), st.integers(0, 20), st.sampled_from(OFFSETS)),
    st.tuples(st.just("optout"), st.integers(0, 3), st.integers(0, 2), st.sampled_from(OFFSETS)),
    st.tuples(st.just("owners"), st.integers(0, 2), st.integers(0, 3)),
    st.tuples(st.just("time"), st.sampled_from(STEPS)),
)


def _apply(world: World, clock: TickingClock, step: tuple[object, ...]) -> None:
    now, kind = clock.now, step[0]
    if kind == "time":
        clock.now += step[1]  # type: ignore[operator]
    elif kind == "grant":
        _, who, start, end = step
        licensor = [world.label, world.label2, world.pub][who]  # type: ignore[index]
        side = "publishing" if licensor == world.pub else "master"
        first = now + start  # type: ignore[operator]
        last = None if end is None else max(first + timedelta(days=1), now + end)  # type: ignore[operator]
        made = agreement(f"A-{world.n}-{next(world.ids)}", licensor, side, start=first, end=last)
        world.agreements[made.agreement_id] = made
        _write(world.store, made)
    elif kind == "end" and world.agreements:
        _, which, at = step
        aid = sorted(world.agreements)[which % len(world.agreements)]  # type: ignore[operator]
        old = world.agreements[aid]
        ended = replace(old, end=max(old.start + timedelta(days=1), now + at))  # type: ignore[type-var,operator,arg-type]
        world.agreements[aid] = ended
        _write(world.store, ended)
    elif kind == "optout":
        _, who, target, at = step
        party = world.parties()[who]  # type: ignore[index]
        scope, subject = [("recording", world.isrcs[0]), ("work", world.works[1]), ("catalog", "")][target]  # type: ignore[index]
        made = optout(f"O-{world.n}-{next(world.ids)}", party, scope, subject, effective=now + at)  # type: ignore[operator]
        _write(world.store, made)
    elif kind == "owners":
        _, which, who = step
        isrc = world.isrcs[which]  # type: ignore[index]
        owner = world.parties()[who]  # type: ignore[index]
        world.recordings[isrc] = replace(world.recordings[isrc], shares=recording(isrc, {owner: 100}).shares)
        _write(world.store, world.recordings[isrc])


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(steps=st.lists(change, min_size=1, max_size=8), territory=st.sampled_from(TERRITORIES))
def test_materialised_decisions_equal_the_policy_after_any_changes_and_clock_moves(
    store: Store, clock: TickingClock, steps: list[tuple[object, ...]], territory: str
) -> None:
    world = World(store, next(_examples))
    note(f"steps {steps} from {clock.now.isoformat()}")
    _assert_matches_policy(store, world.isrcs, clock.now, territory)
    for step in steps:
        _apply(world, clock, step)
        _assert_matches_policy(store, world.isrcs, clock.now, territory)  # decided again where stale
        _assert_matches_policy(store, world.isrcs, clock.now, territory)  # read back as stored
    for offset in OFFSETS:  # any other instant over the same registry: stored spans hold or are recomputed
        _assert_matches_policy(store, world.isrcs, clock.now + offset, territory)


def _setup(store: Store, clock: TickingClock) -> World:
    world = World(store, 5000 + next(_examples))
    start = clock.now - timedelta(days=30)
    for aid, licensor, side in (
        ("M1", world.label, "master"),
        ("M2", world.label2, "master"),
        ("P1", world.pub, "publishing"),
    ):
        made = agreement(f"A-{world.n}-{aid}", licensor, side, start=start)
        world.agreements[made.agreement_id] = made
        _write(store, made)
    return world


def test_an_agreement_ending_between_two_reads_ends_eligibility_at_its_instant(
    store: Store, clock: TickingClock
) -> None:
    world = _setup(store, clock)
    isrc, ends = world.isrcs[0], clock.now + timedelta(days=2)
    _write(store, replace(world.agreements[f"A-{world.n}-M1"], end=ends))  # type: ignore[type-var]
    before = decisions.decisions_for(store, [isrc], clock.now, "US")[isrc][Use.TRAIN]
    assert before.eligible
    assert decisions.stored(store, isrc, Use.TRAIN, "US")["valid_until"] == ends  # type: ignore[index]
    clock.now = ends  # no registry write: only time moves
    after = decisions.decisions_for(store, [isrc], clock.now, "US")[isrc][Use.TRAIN]
    assert not after.eligible
    assert [r.code for r in after.reasons] == ["agreement_expired"]
    assert after == LicensingPolicy(store.snapshot()).decide(isrc, Use.TRAIN, ends, "US")


def test_an_opt_out_taking_effect_between_two_reads_is_honoured_from_its_instant(
    store: Store, clock: TickingClock
) -> None:
    world = _setup(store, clock)
    isrc, effective = world.isrcs[0], clock.now + timedelta(hours=5)
    assert decisions.decisions_for(store, [isrc], clock.now, "GB")[isrc][Use.GENERATE].eligible
    _write(store, optout(f"O-{world.n}-1", world.artist, "recording", isrc, uses=["generate"], effective=effective))
    still = decisions.decisions_for(store, [isrc], clock.now, "GB")[isrc]
    assert still[Use.GENERATE].eligible and still[Use.TRAIN].eligible
    clock.now = effective + timedelta(seconds=1)
    now = decisions.decisions_for(store, [isrc], clock.now, "GB")[isrc]
    assert not now[Use.GENERATE].eligible and now[Use.TRAIN].eligible
    assert [r.code for r in now[Use.GENERATE].reasons] == ["opted_out"]


def test_a_stored_decision_is_read_back_without_deciding_again_until_the_registry_changes(
    store: Store, clock: TickingClock
) -> None:
    world = _setup(store, clock)
    isrc = world.isrcs[1]
    decisions.decisions_for(store, [isrc], clock.now, "US")
    with store.engine.connect() as conn:
        stamp = counters.read(conn)["registry"]
    row = decisions.stored(store, isrc, Use.REMIX, "US")
    assert row is not None and row["stamp"] == stamp and row["decision"]["eligible"] is True
    _write(store, optout(f"O-{world.n}-2", world.label2, "catalog", "", effective=clock.now - timedelta(days=1)))
    with store.engine.connect() as conn:
        assert counters.read(conn)["registry"] == stamp + 1  # bumped by the write, in its transaction
    assert not decisions.decisions_for(store, [isrc], clock.now, "US")[isrc][Use.REMIX].eligible
    assert decisions.stored(store, isrc, Use.REMIX, "US")["stamp"] == stamp + 1  # type: ignore[index]


def test_the_instant_named_in_a_reason_is_the_one_asked_about(store: Store, clock: TickingClock) -> None:
    world = _setup(store, clock)
    isrc, later = world.isrcs[0], clock.now + timedelta(days=10)
    _write(store, agreement(f"A-{world.n}-M1", world.label, start=clock.now + timedelta(days=100)))
    first = decisions.decisions_for(store, [isrc], clock.now, "US")[isrc][Use.TRAIN]
    second = decisions.decisions_for(store, [isrc], later, "US")[isrc][Use.TRAIN]  # same span, from the row
    assert second == LicensingPolicy(store.snapshot()).decide(isrc, Use.TRAIN, later, "US")
    assert first.reasons[0].message != second.reasons[0].message


def test_an_instant_without_offset_or_a_bad_territory_is_refused(store: Store) -> None:
    import pytest

    from accord.errors import ValidationError

    with pytest.raises(ValidationError, match="territory"):
        decisions.decisions_for(store, ["GBXYZ2600001"], datetime(2026, 1, 1, tzinfo=UTC), "XX")
    with pytest.raises(ValidationError, match="at:"):
        decisions.decisions_for(store, ["GBXYZ2600001"], datetime(2026, 1, 1), "US")
