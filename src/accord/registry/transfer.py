"""Moving ownership between parties: the one two-sided operation that changes shares.

A delivery, a grant or an opt-out never moves a share from one party to another
(:mod:`accord.registry.standing`). A transfer does, when both parties consent (each consent
recorded by its reference: a signed letter, a ticket) or when the operator makes it with a
reason; the audit log keeps who consented, or the operator and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from accord.errors import NotFound, ValidationError
from accord.registry.entities import Recording, Share, Work
from accord.registry.standing import OPERATOR
from accord.registry.store import ChangeSet, Store

KINDS = ("recordings", "works")


@dataclass(frozen=True)
class Transfer:
    """A share moved from one party to another.

    Attributes:
        kind: ``recordings`` (master side) or ``works`` (publishing side).
        key: the ISRC or work id.
        from_party: who gives the share.
        to_party: who receives it.
        ppm: how much moves, in parts per million of the whole.
        record: the record as it is after the transfer.
    """

    kind: str
    key: str
    from_party: str
    to_party: str
    ppm: int
    record: Recording | Work


def _moved(shares: tuple[Share, ...], from_party: str, to_party: str, ppm: int) -> tuple[Share, ...]:
    """The shares after ``ppm`` moves from one party to the other (order kept; a new owner last)."""
    out: list[Share] = []
    for s in shares:
        if s.party_id == from_party:
            if s.ppm - ppm > 0:
                out.append(Share(s.party_id, s.ppm - ppm))
        elif s.party_id == to_party:
            out.append(Share(s.party_id, s.ppm + ppm))
        else:
            out.append(s)
    if to_party not in {s.party_id for s in shares}:
        out.append(Share(to_party, ppm))
    return tuple(out)


def transfer_share(
    store: Store,
    kind: str,
    key: str,
    from_party: str,
    to_party: str,
    *,
    actor: str,
    ppm: int | None = None,
    consents: Mapping[str, str] | None = None,
    operator_reason: str | None = None,
) -> Transfer:
    """Move ``ppm`` (default: all) of ``from_party``'s share of a recording or work to ``to_party``.

    Either ``consents`` names a reference for both parties, or ``operator_reason`` says why the
    operator makes the transfer alone. One write; its audit event says which.

    Raises:
        ValidationError: a missing consent or reason, the same party on both sides, a share
            the giver does not hold, an unknown receiving party.
        NotFound: no such recording or work.
    """
    if kind not in KINDS:
        msg = f"kind: {kind!r} is not one of {', '.join(KINDS)}"
        raise ValidationError(msg, field="kind", value=kind)
    if from_party == to_party:
        msg = f"to: {to_party!r} is the party giving the share; a transfer needs two parties"
        raise ValidationError(msg, field="to", value=to_party)
    reason = (operator_reason or "").strip()
    given = {p: (ref or "").strip() for p, ref in (consents or {}).items()}
    if not reason:
        for party, field in ((from_party, "consent_from"), (to_party, "consent_to")):
            if not given.get(party):
                msg = (
                    f"{field}: no consent of {party} recorded; both parties consent "
                    "(a reference for each), or the operator transfers with a reason"
                )
                raise ValidationError(msg, field=field, value="")
    catalog = store.snapshot()
    held: Mapping[str, Recording | Work] = catalog.recordings if kind == "recordings" else catalog.works
    record = held.get(key)
    if record is None:
        msg = f"{kind[:-1]} {key!r}: not found"
        raise NotFound(msg)
    if to_party not in catalog.parties:
        msg = f"to: {to_party!r} is not a party in the registry"
        raise ValidationError(msg, field="to", value=to_party)
    has = sum(s.ppm for s in record.shares if s.party_id == from_party)
    moving = has if ppm is None else ppm
    if has == 0 or not 0 < moving <= has:
        msg = f"share: {moving} ppm is not a part of {from_party}'s share of {key} ({has} ppm); expected 1..{has}"
        raise ValidationError(msg, field="share", value=moving)
    after = replace(record, shares=_moved(record.shares, from_party, to_party, moving))
    detail: dict[str, Any] = {
        "transfer": {"kind": kind, "key": key, "from": from_party, "to": to_party, "ppm": moving},
    }
    if reason:
        detail |= {"acting_as": OPERATOR, "reason": reason}
    else:
        detail |= {"acting_as": f"{from_party}+{to_party}", "consents": {p: given[p] for p in (from_party, to_party)}}
    changes = ChangeSet(recordings=(after,)) if isinstance(after, Recording) else ChangeSet(works=(after,))
    store.apply(changes, actor=actor, action="ownership.transferred", detail=detail)
    return Transfer(kind, key, from_party, to_party, moving, after)
