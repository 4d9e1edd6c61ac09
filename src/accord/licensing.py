"""The eligibility policy: may a recording be used for a use, at an instant, in a territory?

A pure function of a :class:`~accord.registry.entities.Catalog`. A recording is eligible
for use U at instant t in territory T only when (a) it is known, its master shares are
non-empty and sum to exactly 1,000,000 ppm, and every master owner with a non-zero share
has a master agreement in force at t (``start <= t < end``), granting U, covering T and
covering the recording (the licensor's whole catalog, or the ISRC listed); (b) it embodies
at least one work, and every embodied work is known, with non-empty publishing shares
summing to 1,000,000 ppm, each publishing owner with a non-zero share holding a fitting
publishing agreement likewise; (c) no opt-out for U is in force (``effective <= t``) by a
party with standing: on the recording by a master owner, artist, or writer / publishing
owner of an embodied work; on an embodied work by its writer or publishing owner; on the
whole catalog by anyone who is one of those here (a zero-share owner has standing too).
Opt-outs without standing are ignored (the importer rejects them: :func:`opt_out_standing`).

Unknown or incomplete ownership means not eligible; ``voice`` is reserved and never is.
An eligible decision names, for each (side, owner, subject), the first fitting agreement
in agreement-id order. Otherwise it gives every reason, in this order: recording-level;
master side (owners by party id, their agreements by id); publishing side (works by id,
then owners by party id); opt-outs by opt-out id. An owner with agreements on a side of
which none fits gets one reason per agreement: its first failing check in the order
coverage, in force, use, territory.

Reason codes (stable; the API, CLI and statements show them):

================================  ======================================================
``unknown_recording``             the ISRC is not in the catalog
``master_ownership_unknown``      the recording has no master shares on record
``master_shares_incomplete``      master shares do not sum to 100% (or one is out of range)
``publishing_unknown``            the recording embodies no work, or a work has no shares
``unknown_work``                  an embodied work is not in the catalog
``publishing_shares_incomplete``  a work's publishing shares do not sum to 100%
``no_agreement``                  an owner has no agreement at all on that side
``not_covered``                   the agreement lists its items and this one is not listed
``agreement_not_started``         the agreement starts after t
``agreement_expired``             the agreement ended at or before t
``use_not_granted``               the agreement does not grant the use
``territory_not_covered``         the agreement does not cover the territory
``opted_out``                     a party with standing opted out of the use
``use_reserved``                  the use (``voice``) is reserved: never eligible
================================  ======================================================
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

import pycountry

from accord.errors import ValidationError
from accord.registry.entities import (
    PPM_WHOLE,
    Agreement,
    Catalog,
    OptOut,
    OptOutScope,
    Recording,
    Share,
    Side,
    Use,
    Work,
)
from accord.timeutil import iso


class ReasonCode(StrEnum):
    """Why a decision failed: the stable codes of the table above."""

    UNKNOWN_RECORDING = "unknown_recording"
    MASTER_OWNERSHIP_UNKNOWN = "master_ownership_unknown"
    MASTER_SHARES_INCOMPLETE = "master_shares_incomplete"
    PUBLISHING_UNKNOWN = "publishing_unknown"
    UNKNOWN_WORK = "unknown_work"
    PUBLISHING_SHARES_INCOMPLETE = "publishing_shares_incomplete"
    NO_AGREEMENT = "no_agreement"
    NOT_COVERED = "not_covered"
    AGREEMENT_NOT_STARTED = "agreement_not_started"
    AGREEMENT_EXPIRED = "agreement_expired"
    USE_NOT_GRANTED = "use_not_granted"
    TERRITORY_NOT_COVERED = "territory_not_covered"
    OPTED_OUT = "opted_out"
    USE_RESERVED = "use_reserved"


@dataclass(frozen=True)
class Reason:
    """One reason a decision failed.

    Attributes:
        code: a stable code, one of :class:`ReasonCode`.
        side: the side concerned, or ``None`` (unknown recording, opt-out, reserved use).
        party_id: the party concerned, or ``""``.
        subject: the ISRC or work id concerned.
        message: one sentence a rights holder understands.
        agreement_id: the agreement the reason is about, or ``""``.
    """

    code: str
    side: Side | None
    party_id: str
    subject: str
    message: str
    agreement_id: str = ""

    def to_dict(self) -> dict[str, str]:
        side = "" if self.side is None else self.side.value
        return {**asdict(self), "code": str(self.code), "side": side}


@dataclass(frozen=True)
class Decision:
    """Whether one recording may be used for one use, at one instant, in one territory.

    Attributes:
        isrc: the recording asked about.
        use: the use asked about.
        at: the instant (UTC).
        territory: ISO 3166-1 alpha-2 code, upper case.
        eligible: whether the use is allowed.
        relied_on: agreement ids relied on, sorted (empty when not eligible).
        reasons: every reason it failed, in a deterministic order (empty when eligible).
    """

    isrc: str
    use: Use
    at: datetime
    territory: str
    eligible: bool
    relied_on: tuple[str, ...] = ()
    reasons: tuple[Reason, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "isrc": self.isrc,
            "use": self.use.value,
            "at": iso(self.at),
            "territory": self.territory,
            "eligible": self.eligible,
            "relied_on": list(self.relied_on),
            "reasons": [reason.to_dict() for reason in self.reasons],
        }


_E = TypeVar("_E", Use, OptOutScope)


def _choice(kind: type[_E], value: _E | str, field: str) -> _E:
    try:
        return kind(value.strip().lower() if isinstance(value, str) else value)
    except ValueError:
        msg = f"{field}: {value!r} is not accepted; expected one of {', '.join(kind)}"
        raise ValidationError(msg, field=field, value=str(value)) from None


def _instant(at: datetime) -> datetime:
    if not isinstance(at, datetime):
        msg = f"at: {at!r} is not a date-time; expected a timezone-aware datetime"
        raise ValidationError(msg, field="at", value=str(at))
    if at.utcoffset() is None:
        msg = f"at: {at.isoformat()} has no UTC offset; expected a timezone-aware datetime"
        raise ValidationError(msg, field="at", value=at.isoformat())
    return at.astimezone(UTC)


def _territory(territory: str) -> str:
    code = territory.strip().upper() if isinstance(territory, str) else ""
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        msg = f"territory: {territory!r} is not an ISO 3166-1 alpha-2 code; expected e.g. GB, US"
        raise ValidationError(msg, field="territory", value=str(territory))
    return code


def _as_utc(dt: datetime) -> datetime:
    """Stored instants are UTC; a naive one (bad data) is read as UTC, not as local time."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _percent(ppm: int) -> str:
    whole, frac = divmod(abs(ppm), 10_000)
    return ("-" if ppm < 0 else "") + f"{whole}.{frac:04d}".rstrip("0").rstrip(".") + "%"


_Owners = tuple[tuple[str, int], ...]  # (party id, ppm), by party id


def _owners(shares: Iterable[Share]) -> _Owners:
    """Each owner once, its shares summed, by party id (the order reasons are given in)."""
    total: dict[str, int] = defaultdict(int)
    for share in shares:
        total[share.party_id] += share.ppm
    return tuple(sorted(total.items()))


def _share_problem(shares: tuple[Share, ...]) -> str | None:
    """Why a set of shares is not a whole 100%, in words, or None (owners in party-id order)."""
    for share in sorted(shares, key=lambda s: s.party_id):
        if not 0 <= share.ppm <= PPM_WHOLE:
            return f"include {_percent(share.ppm)} for {share.party_id}, outside 0-100%"
    total = sum(share.ppm for share in shares)
    return None if total == PPM_WHOLE else f"sum to {_percent(total)}, not 100%"


def _work_parties(work: Work) -> frozenset[str]:
    return frozenset(work.writers) | {share.party_id for share in work.shares}


def _recording_parties(recording: Recording) -> frozenset[str]:
    return frozenset(recording.artists) | {share.party_id for share in recording.shares}


def parties_on(catalog: Catalog, recording: Recording) -> frozenset[str]:
    """Every party with standing on a recording: its master owners (any share) and artists,
    and the writers and publishing owners of the works it embodies (unknown works add none)."""
    parties = _recording_parties(recording)
    for work_id in recording.works:
        work = catalog.works.get(work_id)
        if work is not None:
            parties |= _work_parties(work)
    return parties


def opt_out_standing(catalog: Catalog, party_id: str, scope: OptOutScope | str, target: str) -> bool:
    """Whether ``party_id`` may opt ``target`` out (the importer rejects opt-outs without).

    Recording: a master owner, an artist, or a writer / publishing owner of an embodied
    work. Work: a writer or publishing owner. Catalog (target ignored): a master owner,
    artist, writer or publishing owner of anything in the catalog.
    """
    scope = _choice(OptOutScope, scope, "scope")
    if scope is OptOutScope.WORK:
        work = catalog.works.get(target)
        return work is not None and party_id in _work_parties(work)
    if scope is OptOutScope.RECORDING:
        rec = catalog.recordings.get(target)
        return rec is not None and party_id in parties_on(catalog, rec)
    return any(party_id in _recording_parties(r) for r in catalog.recordings.values()) or any(
        party_id in _work_parties(w) for w in catalog.works.values()
    )


class _Terms:
    """An agreement's fit checks, precomputed (UTC instants, upper-case territories)."""

    __slots__ = ("agreement", "catalog", "end", "exclude", "include", "items", "start", "uses")

    def __init__(self, agreement: Agreement) -> None:
        self.agreement = agreement
        self.start = _as_utc(agreement.start)
        self.end = None if agreement.end is None else _as_utc(agreement.end)
        self.uses = frozenset(agreement.uses)
        where = agreement.territory
        self.include = None if where.worldwide else {code.upper() for code in where.include}
        self.exclude = frozenset(code.upper() for code in where.exclude)
        self.catalog = agreement.coverage.catalog
        coverage = agreement.coverage
        self.items = coverage.recordings if agreement.side == Side.MASTER else coverage.works

    def misfit(self, subject: str, use: Use, at: datetime, territory: str) -> ReasonCode | None:
        """The first failing check (coverage, in force, use, territory), or None if it fits."""
        if not self.catalog and subject not in self.items:
            return ReasonCode.NOT_COVERED
        if at < self.start:
            return ReasonCode.AGREEMENT_NOT_STARTED
        if self.end is not None and at >= self.end:
            return ReasonCode.AGREEMENT_EXPIRED
        if use not in self.uses:
            return ReasonCode.USE_NOT_GRANTED
        if self.include is None:  # worldwide, minus exclusions
            return ReasonCode.TERRITORY_NOT_COVERED if territory in self.exclude else None
        return None if territory in self.include else ReasonCode.TERRITORY_NOT_COVERED


@dataclass(frozen=True, slots=True)
class _WorkFacts:
    work_id: str
    owners: _Owners
    problem: str | None  # why its shares are not a whole 100%
    writers: frozenset[str]
    parties: frozenset[str]  # who has standing on it


@dataclass(frozen=True, slots=True)
class _RecordingFacts:
    isrc: str
    owners: _Owners
    problem: str | None
    artists: frozenset[str]
    work_ids: tuple[str, ...]  # sorted, each once
    works: dict[str, _WorkFacts]  # the known ones
    parties: frozenset[str]  # who has standing on it


_Query = tuple[Use, datetime, str]  # use, instant (UTC), territory (upper case)


class LicensingPolicy:
    """The policy over one catalog, indexed once so that each decision is fast."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        terms: dict[tuple[str, Side], list[_Terms]] = defaultdict(list)
        for agreement in catalog.agreements.values():
            terms[(agreement.licensor, Side(agreement.side))].append(_Terms(agreement))
        # "the first fitting agreement" is the lowest id, whatever the delivery order
        self._terms = {key: tuple(sorted(ts, key=lambda t: t.agreement.agreement_id)) for key, ts in terms.items()}
        # opt-outs by (scope, target), catalog ones by (scope, party)
        optouts: dict[tuple[OptOutScope, str], list[tuple[datetime, OptOut]]] = defaultdict(list)
        for optout in catalog.optouts.values():
            scope = OptOutScope(optout.scope)
            key = optout.party_id if scope is OptOutScope.CATALOG else optout.target
            optouts[(scope, key)].append((_as_utc(optout.effective), optout))
        self._optouts = dict(optouts)
        self._optout_parties = frozenset(p for s, p in optouts if s is OptOutScope.CATALOG)
        self._works: dict[str, _WorkFacts | None] = {}
        self._recordings: dict[str, _RecordingFacts | None] = {}

    def decide(self, isrc: str, use: Use | str, at: datetime, territory: str) -> Decision:
        """Decide one recording. Raises ValidationError for a bad use, instant or territory."""
        if not isinstance(isrc, str):
            msg = f"isrc: {isrc!r} is not an ISRC; expected e.g. GBXYZ2600001"
            raise ValidationError(msg, field="isrc", value=str(isrc))
        return self._decide(isrc, _choice(Use, use, "use"), _instant(at), _territory(territory))

    def decide_all(
        self, use: Use | str, at: datetime, territory: str, isrcs: Iterable[str] | None = None
    ) -> Iterator[Decision]:
        """Decide every recording in the catalog (or those given), sorted by ISRC.

        The inputs are checked at once (not on the first ``next``); decisions come lazily.
        """
        query = (_choice(Use, use, "use"), _instant(at), _territory(territory))
        wanted = sorted(self.catalog.recordings if isrcs is None else set(isrcs))
        return (self._decide(isrc, *query) for isrc in wanted)

    def _work(self, work_id: str) -> _WorkFacts | None:
        if work_id not in self._works:
            work = self.catalog.works.get(work_id)
            self._works[work_id] = None
            if work is not None:
                owners, problem = _owners(work.shares), _share_problem(work.shares)
                writers, parties = frozenset(work.writers), _work_parties(work)
                self._works[work_id] = _WorkFacts(work_id, owners, problem, writers, parties)
        return self._works[work_id]

    def _recording(self, isrc: str) -> _RecordingFacts | None:
        if isrc not in self._recordings:
            rec = self.catalog.recordings.get(isrc)
            facts = None
            if rec is not None:
                work_ids = tuple(sorted(set(rec.works)))
                works = {w.work_id: w for w in map(self._work, work_ids) if w is not None}
                parties = _recording_parties(rec).union(*(w.parties for w in works.values()))
                owners, problem = _owners(rec.shares), _share_problem(rec.shares)
                artists = frozenset(rec.artists)
                facts = _RecordingFacts(isrc, owners, problem, artists, work_ids, works, parties)
            self._recordings[isrc] = facts
        return self._recordings[isrc]

    def _decide(self, isrc: str, use: Use, at: datetime, territory: str) -> Decision:
        reasons: list[Reason] = []
        relied: set[str] = set()
        facts = self._recording(isrc)
        if use is Use.VOICE:
            msg = f"The voice use is reserved: no agreement may grant it, so {isrc} is not eligible."
            reasons.append(Reason(ReasonCode.USE_RESERVED, None, "", isrc, msg))
        elif facts is None:
            msg = f"Recording {isrc} is not in the catalog, so nothing is known of its owners."
            reasons.append(Reason(ReasonCode.UNKNOWN_RECORDING, None, "", isrc, msg))
        else:
            query = (use, at, territory)
            self._check_ownership(facts, query, reasons, relied)
            self._check_optouts(facts, query, reasons)
        if reasons:
            return Decision(isrc, use, at, territory, False, (), tuple(reasons))
        return Decision(isrc, use, at, territory, True, tuple(sorted(relied)), ())

    def _check_ownership(self, facts: _RecordingFacts, query: _Query, reasons: list[Reason], relied: set[str]) -> None:
        """(a) and (b): whole shares on both sides, every owner holding a fitting agreement."""
        isrc, master = facts.isrc, Side.MASTER
        if not facts.owners:
            msg = f"Recording {isrc} has no master owners on record."
            reasons.append(Reason(ReasonCode.MASTER_OWNERSHIP_UNKNOWN, master, "", isrc, msg))
        elif facts.problem is not None:
            msg = f"The master shares of {isrc} {facts.problem}."
            reasons.append(Reason(ReasonCode.MASTER_SHARES_INCOMPLETE, master, "", isrc, msg))
        self._check_owners(master, isrc, facts.owners, query, reasons, relied)
        pub = Side.PUBLISHING
        if not facts.work_ids:
            msg = f"Recording {isrc} embodies no work on record: its publishing owners are unknown."
            reasons.append(Reason(ReasonCode.PUBLISHING_UNKNOWN, pub, "", isrc, msg))
        for work_id in facts.work_ids:
            work = facts.works.get(work_id)
            if work is None:
                msg = f"Recording {isrc} embodies work {work_id}, which is not in the catalog."
                reasons.append(Reason(ReasonCode.UNKNOWN_WORK, pub, "", work_id, msg))
                continue
            if not work.owners:
                msg = f"Work {work_id} (embodied in {isrc}) has no publishing owners on record."
                reasons.append(Reason(ReasonCode.PUBLISHING_UNKNOWN, pub, "", work_id, msg))
            elif work.problem is not None:
                msg = f"The publishing shares of {work_id} (embodied in {isrc}) {work.problem}."
                reasons.append(Reason(ReasonCode.PUBLISHING_SHARES_INCOMPLETE, pub, "", work_id, msg))
            self._check_owners(pub, work_id, work.owners, query, reasons, relied)

    def _check_owners(
        self, side: Side, subject: str, owners: _Owners, query: _Query, reasons: list[Reason], relied: set[str]
    ) -> None:
        """Every owner of ``subject`` with a non-zero share needs a fitting agreement."""
        use, at, territory = query
        for party, ppm in owners:
            if ppm == 0:
                continue
            candidates = self._terms.get((party, side), ())
            misfits: list[tuple[_Terms, ReasonCode]] = []
            for terms in candidates:
                code = terms.misfit(subject, use, at, territory)
                if code is None:
                    relied.add(terms.agreement.agreement_id)
                    break
                misfits.append((terms, code))
            else:
                who = f"{party} ({side.value} owner of {subject}, {_percent(ppm)})"
                if not candidates:
                    msg = f"{who} has no {side.value} agreement."
                    reasons.append(Reason(ReasonCode.NO_AGREEMENT, side, party, subject, msg))
                for terms, code in misfits:
                    aid = terms.agreement.agreement_id
                    detail = _misfit_detail(code, terms, subject, query)
                    msg = f"{who} has {side.value} agreement {aid}, but {detail}."
                    reasons.append(Reason(code, side, party, subject, msg, aid))

    def _check_optouts(self, facts: _RecordingFacts, query: _Query, reasons: list[Reason]) -> None:
        use, at, _ = query
        # (effective, opt-out, subject, what it names), only those by a party with standing
        found: list[tuple[datetime, OptOut, str, str]] = []
        for eff, optout in self._optouts.get((OptOutScope.RECORDING, facts.isrc), ()):
            if optout.party_id in facts.parties:
                found.append((eff, optout, facts.isrc, f"recording {facts.isrc}"))
        for work in facts.works.values():
            for eff, optout in self._optouts.get((OptOutScope.WORK, work.work_id), ()):
                if optout.party_id in work.parties:
                    found.append((eff, optout, work.work_id, f"work {work.work_id}"))
        for party in facts.parties & self._optout_parties:
            for eff, optout in self._optouts[(OptOutScope.CATALOG, party)]:
                found.append((eff, optout, facts.isrc, "everything it is on"))
        in_force = [f for f in found if f[0] <= at and use in f[1].uses]
        for eff, optout, subject, named in sorted(in_force, key=lambda f: f[1].optout_id):
            party = optout.party_id
            msg = (
                f"{party} ({_roles(party, facts)}) opted out of {use.value} for {named} "
                f"from {iso(eff)} (opt-out {optout.optout_id})."
            )
            reasons.append(Reason(ReasonCode.OPTED_OUT, None, party, subject, msg))


def _misfit_detail(code: ReasonCode, terms: _Terms, subject: str, query: _Query) -> str:
    use, at, territory = query
    if code is ReasonCode.NOT_COVERED:
        kind = "recordings" if terms.agreement.side == Side.MASTER else "works"
        return f"it covers only listed {kind} and {subject} is not one of them"
    if code is ReasonCode.AGREEMENT_NOT_STARTED:
        return f"it starts {iso(terms.start)}, after {iso(at)}"
    if code is ReasonCode.AGREEMENT_EXPIRED:
        return f"it ended {iso(terms.end)}, on or before {iso(at)}"
    if code is ReasonCode.USE_NOT_GRANTED:
        granted = ", ".join(sorted(terms.uses)) or "no use"
        return f"it grants {granted}, not {use.value}"
    return f"it covers {terms.agreement.territory.describe() or 'no territory'}, not {territory}"


def _roles(party: str, facts: _RecordingFacts) -> str:
    """What a party is on a recording, in words (``artist of GBXYZ2600001``)."""
    roles = [f"master owner of {facts.isrc}"] if party in dict(facts.owners) else []
    if party in facts.artists:
        roles.append(f"artist of {facts.isrc}")
    for work in facts.works.values():
        if party in work.writers:
            roles.append(f"writer of {work.work_id}")
        if party in dict(work.owners):
            roles.append(f"publishing owner of {work.work_id}")
    return ", ".join(roles)


def decide(catalog: Catalog, isrc: str, use: Use | str, at: datetime, territory: str) -> Decision:
    """Decide one recording (build a :class:`LicensingPolicy` once to decide many)."""
    return LicensingPolicy(catalog).decide(isrc, use, at, territory)
