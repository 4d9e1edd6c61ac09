"""Granting and ending licences, recording opt-outs: the rights writes the CLI, the API and the
portal all call (each face only says who is acting).

``as_party`` is the party whose standing a write needs (:mod:`accord.registry.standing`),
checked again inside the write's transaction; ``None`` is the operator's full power, and the
audit log records it as such (``acting_as: "operator"``). Where a party names another party's
agreement, recording or work, the answer is exactly the answer for a missing one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from accord.errors import Conflict, NotFound, Problem, Rejected, ValidationError
from accord.licensing import parties_on
from accord.registry.delivery import Item, Loc
from accord.registry.entities import Agreement, OptOut
from accord.registry.rights import read_agreement, read_optout
from accord.registry.store import ChangeSet, Store
from accord.timeutil import iso

GIVEN = Loc("", "request")
"""Where a problem in a single write's fields is located."""


def agreement_dict(a: Agreement) -> dict[str, Any]:
    """An agreement as JSON (the CLI's ``--json`` and the API's body)."""
    t = a.terms
    return {
        "id": a.agreement_id,
        "licensor": a.licensor,
        "side": a.side.value,
        "uses": sorted(u.value for u in a.uses),
        "territory": {"worldwide": True, "exclude": sorted(a.territory.exclude)}
        if a.territory.worldwide
        else {"include": sorted(a.territory.include)},
        "start": iso(a.start),
        "end": iso(a.end),
        "coverage": {"catalog": True}
        if a.coverage.catalog
        else (
            {"recordings": sorted(a.coverage.recordings)}
            if a.coverage.recordings
            else {"works": sorted(a.coverage.works)}
        ),
        "terms": {
            "pool_share_ppm": t.pool_share_ppm,
            "master_split_ppm": t.master_split_ppm,
            "training_pool_method": t.training_pool_method.value,
            "minimum_guarantee": None
            if t.minimum_guarantee is None
            else {"micros": t.minimum_guarantee.micros, "currency": t.minimum_guarantee.currency},
            "advance": None if t.advance is None else {"micros": t.advance.micros, "currency": t.advance.currency},
        },
        "model_scope": a.model_scope.value,
    }


def optout_dict(o: OptOut) -> dict[str, Any]:
    """An opt-out as JSON."""
    return {
        "id": o.optout_id,
        "party": o.party_id,
        "scope": o.scope.value,
        "target": o.target,
        "uses": sorted(u.value for u in o.uses),
        "effective": iso(o.effective),
    }


def _missing(kind: str, key: str) -> NotFound:
    return NotFound(f"{kind} {key!r}: not found")


def _only_as(as_party: str | None, field: str, given: object, what: str) -> None:
    if as_party is not None and given != as_party:
        msg = f"{field}: {given!r} is not you ({as_party}); {what}"
        raise ValidationError(msg, field=field, value=str(given))


def grant_agreement(
    store: Store, data: dict[str, Any], *, actor: str, as_party: str | None = None
) -> tuple[Agreement, bool]:
    """Record a licence given in the delivery format; whether it changed anything.

    Raises:
        ValidationError: a party grants as another licensor.
        Rejected: every problem in the fields.
        Conflict: the id names another agreement (end it and grant a new id).
    """
    _only_as(as_party, "licensor", data.get("licensor"), "grant only your own rights")
    catalog = store.snapshot()
    problems: list[Problem] = []
    agreement = read_agreement(Item(GIVEN, data), problems, catalog, viewer=as_party)
    if problems or agreement is None:
        raise Rejected("agreement", problems)
    existing = catalog.agreements.get(agreement.agreement_id)
    if existing is not None and existing != agreement:
        _refuse_taken(
            "agreement",
            agreement.agreement_id,
            existing.licensor,
            as_party,
            "with other terms; end it and grant a new id",
        )
    result = store.apply(ChangeSet(agreements=(agreement,)), actor=actor, action="agreement.granted", as_party=as_party)
    return agreement, result.changed_anything


def end_agreement(
    store: Store, agreement_id: str, at: datetime, *, actor: str, as_party: str | None = None
) -> Agreement:
    """Bring an agreement's end forward to ``at``; ending at the same instant again changes nothing.

    Raises:
        NotFound: no such agreement (or, for a party, not one it granted: the same answer).
        Conflict: ``at`` is not inside the agreement's window.
    """
    current = store.snapshot(isrcs=()).agreements.get(agreement_id)
    if current is None or (as_party is not None and current.licensor != as_party):
        raise _missing("agreement", agreement_id)
    if at <= current.start:
        msg = f"at: {iso(at)} is not after the agreement's start {iso(current.start)}"
        raise Conflict(msg)
    if current.end is not None and at > current.end:
        msg = f"at: {iso(at)} is after the agreement's end {iso(current.end)}; an end can only be brought forward"
        raise Conflict(msg)
    ended = replace(current, end=at)
    store.apply(ChangeSet(agreements=(ended,)), actor=actor, action="agreement.ended", as_party=as_party)
    return ended


def _refuse_taken(kind: str, record_id: str, owner: str, as_party: str | None, differs: str) -> None:
    """An id already held by a record with other content: :class:`Conflict`. Another party's record is
    only said to be *taken*, never described (no oracle on its content)."""
    if as_party is not None and owner != as_party:
        raise Conflict(f"{kind} id {record_id!r} is taken; choose another id")
    msg = f"{kind} {record_id!r} already exists {differs}"
    raise Conflict(msg)


def optout_id_for(data: dict[str, Any]) -> str:
    """The default id of an opt-out: a hash of its content (the same opt-out twice is one)."""
    canon = json.dumps({k: data[k] for k in sorted(data)}, sort_keys=True, default=str)
    return "OPT-" + hashlib.sha256(canon.encode()).hexdigest()[:12].upper()


def _read_optout(data: dict[str, Any], optout_id: str | None, catalog: Any, as_party: str | None) -> OptOut:
    oid = optout_id or optout_id_for(data)
    problems: list[Problem] = []
    item = Item(GIVEN, {"id": oid, **{k: v for k, v in data.items() if v}})
    optout = read_optout(item, problems, catalog, viewer=as_party)
    if problems or optout is None:
        raise Rejected("opt-out", problems)
    existing = catalog.optouts.get(optout.optout_id)
    if existing is not None and existing != optout:
        _refuse_taken("opt-out", optout.optout_id, existing.party_id, as_party, "with other content")
    return optout


def record_optout(
    store: Store, data: dict[str, Any], *, optout_id: str | None, actor: str, as_party: str | None = None
) -> OptOut:
    """Validate and record an opt-out; its default id is a hash of its content (idempotent).

    Raises:
        ValidationError: a party opts out in another's name.
        Rejected: every problem in the fields (a target the party has no standing on reads as missing).
        Conflict: the id names another opt-out.
    """
    _only_as(as_party, "party", data.get("party"), "opt out only as yourself")
    optout = _read_optout(data, optout_id, store.snapshot(), as_party)
    store.apply(ChangeSet(optouts=(optout,)), actor=actor, action="optout.added", as_party=as_party)
    return optout


def opt_out_artist(
    store: Store, party: str, artist: str, effective: datetime, *, actor: str, as_party: str | None = None
) -> list[OptOut]:
    """Withdraw every use of what ``party`` has standing on that ``artist`` performs, in one write.

    An artist opting itself out withdraws its whole catalog (one catalog opt-out); a label or
    publisher opting out one of its artists gets one recording opt-out per recording of its
    catalog the artist performs. All of them are recorded together, or none.

    Raises:
        NotFound: no recording of the party's catalog has this artist.
    """
    _only_as(as_party, "party", party, "opt out only as yourself")
    catalog = store.snapshot()
    when = iso(effective)
    if artist == party:
        wanted = [{"party": party, "scope": "catalog", "target": None, "uses": ["all"], "effective": when}]
    else:
        isrcs = sorted(
            isrc
            for isrc, rec in catalog.recordings.items()
            if artist in rec.artists and party in parties_on(catalog, rec)
        )
        if not isrcs:
            raise _missing("artist", artist)
        wanted = [
            {"party": party, "scope": "recording", "target": isrc, "uses": ["all"], "effective": when} for isrc in isrcs
        ]
    optouts = [_read_optout(data, None, catalog, as_party) for data in wanted]
    detail = {"artist": artist, "optouts": [o.optout_id for o in optouts]}
    store.apply(
        ChangeSet(optouts=tuple(optouts)), actor=actor, action="optout.artist", as_party=as_party, detail=detail
    )
    return optouts
