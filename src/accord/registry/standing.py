"""Who may write what: the one standing rule every write path calls.

A change is accepted from a party only where it has standing (DESIGN.md, "Who may write what"):

==============  ==========================================================================
record          the acting party may add or change it when
==============  ==========================================================================
party           it is the party's own record (a new party may be registered by anyone:
                a label registers its artists and writers; once there, only the party
                itself changes it)
recording       it holds a master share (above 0) in the recording as the registry holds
                it now; a new recording only with itself among the owners (above 0)
work            it holds a publishing share (above 0: a publisher, or a writer holding an
                unpublished share) in the work as the registry holds it now; a new work
                with itself among its owners or writers, or embodied by a recording of the
                same change on which it holds a master share
agreement       it is the licensor (of the new version and of the current one)
opt-out         it is in its own name (the new version and the current one)
source          new sources by anyone; an existing source only by the operator
==============  ==========================================================================

The shares of an existing recording or work never change through this path: moving
ownership between parties is the two-sided :mod:`accord.registry.transfer` operation.
Records given unchanged need no standing (a delivery may repeat what the registry holds).

The operator (``party=None`` everywhere) has every standing; its writes say so in the audit
log (``acting_as: "operator"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accord.errors import Problem
from accord.registry.entities import Agreement, Catalog, OptOut, Party, Recording, Share, Source, Work
from accord.registry.versioning import KINDS, ChangeSet

OPERATOR = "operator"
"""How the audit log names writes made with the operator's full power (no standing checked)."""

TRANSFER_HINT = "ownership moves between parties only by a transfer (accord catalog transfer)"


def acting_as(party: str | None) -> str:
    """The audit log's name for whose standing a write used: the party, or ``operator``."""
    return OPERATOR if party is None else party


def holders(shares: tuple[Share, ...]) -> frozenset[str]:
    """Parties holding a share above 0."""
    return frozenset(s.party_id for s in shares if s.ppm > 0)


def standing_problems(
    changes: ChangeSet,
    current: Catalog,
    party: str,
    where: Mapping[tuple[str, str], tuple[str, str]] | None = None,
) -> list[Problem]:
    """Every record of ``changes`` that ``party`` may not add or change, as problems.

    ``where`` maps ``(kind, key)`` to ``(file, location)`` (a delivery's item positions);
    otherwise a problem is located at ``kind[key]``. Records equal to the registry's current
    version are not changes and pass.
    """
    problems: list[Problem] = []
    located = where or {}

    def refuse(kind: str, key: str, field: str, value: str, expected: str) -> None:
        file, location = located.get((kind, key), ("", f"{kind}[{key}]"))
        problems.append(Problem(file, location, field, value, expected, "no_standing"))

    held: dict[str, Any] = {
        "sources": current.sources,
        "parties": current.parties,
        "works": current.works,
        "recordings": current.recordings,
        "agreements": current.agreements,
        "optouts": current.optouts,
    }
    masters_in_change = {w for r in changes.recordings if party in holders(r.shares) for w in r.works}
    for kind, records in changes.by_kind().items():
        key_attr = KINDS[kind][1]
        for rec in records:
            key = str(getattr(rec, key_attr))
            old = held[kind].get(key)
            if old == rec:
                continue
            why = _why_not(rec, old, party, masters_in_change)
            if why is not None:
                field, value, expected = why
                refuse(kind, key, field, value, expected)
    return problems


def _why_not(rec: Any, old: Any, party: str, embodied: set[str]) -> tuple[str, str, str] | None:
    """``None`` when ``party`` may make ``rec`` current over ``old``; else (field, value, expected)."""
    if isinstance(rec, Party):
        if old is None or rec.party_id == party:
            return None
        return ("id", rec.party_id, f"only the party's own record ({party} may change only {party})")
    if isinstance(rec, Recording):
        if old is None:
            if party in holders(rec.shares):
                return None
            return ("shares", rec.isrc, f"a new recording with {party} among its master owners")
        if party not in holders(old.shares):
            return ("isrc", rec.isrc, f"a recording on which {party} holds a master share")
        if old.shares != rec.shares:
            return ("shares", rec.isrc, f"the master shares as recorded; {TRANSFER_HINT}")
        return None
    if isinstance(rec, Work):
        if old is None:
            if party in holders(rec.shares) or party in rec.writers or rec.work_id in embodied:
                return None
            return (
                "shares",
                rec.work_id,
                f"a new work with {party} among its owners or writers, or embodied by {party}'s recording",
            )
        if party not in holders(old.shares):
            return ("id", rec.work_id, f"a work in which {party} holds a publishing share")
        if old.shares != rec.shares:
            return ("shares", rec.work_id, f"the publishing shares as recorded; {TRANSFER_HINT}")
        return None
    if isinstance(rec, Agreement):
        if rec.licensor != party:
            return ("licensor", rec.licensor, f"{party} as licensor (grant only your own rights)")
        if old is not None and old.licensor != party:
            return ("id", rec.agreement_id, f"an agreement id granted by {party} (choose another id)")
        return None
    if isinstance(rec, OptOut):
        if rec.party_id != party:
            return ("party", rec.party_id, f"{party} (opt out only in your own name)")
        if old is not None and old.party_id != party:
            return ("id", rec.optout_id, f"an opt-out id of {party}'s own (choose another id)")
        return None
    if isinstance(rec, Source):
        if old is None:
            return None
        return ("id", rec.source_id, "a new source id (an existing source is changed by the operator)")
    msg = f"record: {type(rec).__name__} is not a registry record"
    raise TypeError(msg)
