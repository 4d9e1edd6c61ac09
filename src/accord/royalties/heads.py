"""Signed ledger heads: the operator's Ed25519 signature over where the ledger ended.

A hash chain alone shows an edit or a gap *inside* the ledger, but not that its end was cut
off: drop the last transfers and what remains is still a valid chain. So at every event that
posts to the ledger (a period close, a payout, a reversal) the operator signs a *head*:

    {"format": "accord-ledger-head/1", "head_seq": n, "prev_head": <head_hash of head n-1>,
     "event": "close" | "payout" | "reversal" | "adopt", "period": "YYYY-MM", "subject": <run, transfer>,
     "transfers": <count>, "last_hash": <hash of transfer seq=count>,
     "last_transfer_id": <its id>, "at": <ISO 8601 UTC>}

signed over its RFC 8785 canonical JSON (:func:`accord.signing.canonical_json`). Heads are
chained to each other (``prev_head``) and numbered, so removing or reordering one shows too.
:func:`accord.royalties.ledger.verify` checks the chain of transfers *and* that it ends exactly
at the latest signed head; :func:`check_heads` is the part that reads the heads.

A close's head is also written beside the period's statements (``ledger-head.json``, see
:func:`head_document`), so a rights holder keeps a signed copy that the operator cannot take back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select

from accord.errors import NotFound, ValidationError
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.signing import (
    ALGORITHM,
    PUBLIC_NAME,
    OperatorKey,
    canonical_json,
    keys_dir,
    load_operator_key,
    parse_public_key,
    verify_signature,
)
from accord.timeutil import iso

T = Base.metadata.tables
FORMAT = "accord-ledger-head/1"
GENESIS = "0" * 64
EVENTS = ("close", "payout", "reversal", "adopt")
"""``adopt``: the first head of a ledger posted before heads were signed (``accord ledger adopt``)."""
HEAD_FILE = "ledger-head.json"


@dataclass(frozen=True)
class SignedHead:
    """One signed ledger head (a row of ``ledger_heads``).

    Attributes:
        head_seq: its number (1, 2, ...).
        event: what was posted (``close``, ``payout``, ``reversal``).
        period: the period of that event.
        subject: what the event was about (the run id of a close, the transfer reversed, ...).
        transfers: how many transfers the ledger held when it was signed.
        last_hash: the hash of the last of them (``GENESIS`` when none).
        last_transfer_id: that transfer's id (``""`` when none).
        at: when it was signed.
        prev_head: ``head_hash`` of the head before (``GENESIS`` for the first).
        head_hash: sha256 of the canonical JSON of :meth:`payload`.
        public_key: the signer's Ed25519 public key (hex).
        signature: the Ed25519 signature (hex) of the canonical JSON of :meth:`payload`.
    """

    head_seq: int
    event: str
    period: str
    subject: str
    transfers: int
    last_hash: str
    last_transfer_id: str
    at: datetime
    prev_head: str
    head_hash: str
    public_key: str
    signature: str

    def payload(self) -> dict[str, Any]:
        """What is signed."""
        return {
            "format": FORMAT,
            "head_seq": self.head_seq,
            "prev_head": self.prev_head,
            "event": self.event,
            "period": self.period,
            "subject": self.subject,
            "transfers": self.transfers,
            "last_hash": self.last_hash,
            "last_transfer_id": self.last_transfer_id,
            "at": iso(self.at),
        }

    def describe(self) -> str:
        return f"signed head #{self.head_seq} ({self.event} of {self.period} at {iso(self.at)})"


def head_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def _head(r: Any) -> SignedHead:
    return SignedHead(
        r["head_seq"],
        r["event"],
        r["period"],
        r["subject"],
        r["transfers"],
        r["last_hash"],
        r["last_transfer_id"],
        r["at"],
        r["prev_head"],
        r["head_hash"],
        r["public_key"],
        r["signature"],
    )


def sign_head(
    store: Store, conn: Connection, key: OperatorKey, *, event: str, period: str, subject: str = ""
) -> SignedHead:
    """Sign where the ledger ends now, inside the caller's transaction (the one that posted the transfers)."""
    if event not in EVENTS:
        msg = f"event: {event!r} is not a ledger event; expected one of {', '.join(EVENTS)}"
        raise ValidationError(msg, field="event", value=event)
    t, h = T["ledger_transfers"], T["ledger_heads"]
    last = conn.execute(select(t.c.seq, t.c.hash, t.c.transfer_id).order_by(t.c.seq.desc()).limit(1)).first()
    count = int(conn.execute(select(func.count()).select_from(t)).scalar_one())
    before = conn.execute(select(h.c.head_seq, h.c.head_hash).order_by(h.c.head_seq.desc()).limit(1)).first()
    draft = SignedHead(
        head_seq=int(before[0]) + 1 if before else 1,
        event=event,
        period=period,
        subject=subject,
        transfers=count,
        last_hash=str(last[1]) if last else GENESIS,
        last_transfer_id=str(last[2]) if last else "",
        at=store.clock(),
        prev_head=str(before[1]) if before else GENESIS,
        head_hash="",
        public_key=key.public_hex,
        signature="",
    )
    payload = draft.payload()
    signed = SignedHead(
        **{**draft.__dict__, "head_hash": head_hash(payload), "signature": key.sign(canonical_json(payload))}
    )
    conn.execute(insert(h).values(**signed.__dict__))
    return signed


def signed_heads(store: Store) -> list[SignedHead]:
    """Every signed head, in order."""
    h = T["ledger_heads"]
    with store.engine.connect() as conn:
        return [_head(r) for r in conn.execute(select(h).order_by(h.c.head_seq)).mappings()]


def close_head(store: Store, period: str) -> SignedHead | None:
    """The head signed when ``period`` was closed (``None``: not closed, or closed before heads were signed)."""
    h = T["ledger_heads"]
    with store.engine.connect() as conn:
        r = (
            conn.execute(select(h).where(h.c.event == "close", h.c.period == period).order_by(h.c.head_seq))
            .mappings()
            .first()
        )
    return None if r is None else _head(r)


def head_document(head: SignedHead) -> dict[str, Any]:
    """A head as a self-describing JSON document (what ``ledger-head.json`` holds)."""
    return {
        "head": head.payload(),
        "head_hash": head.head_hash,
        "signature": {"algorithm": ALGORITHM, "public_key": head.public_key, "value": head.signature},
    }


def write_head_file(store: Store, period: str, folder: Path) -> Path | None:
    """Write the period's close head as ``ledger-head.json`` in ``folder`` (beside its statements)."""
    head = close_head(store, period)
    if head is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / HEAD_FILE
    path.write_text(json.dumps(head_document(head), indent=2, sort_keys=True) + "\n")
    return path


def operator_public_key(home: Path) -> str | None:
    """The operator's public key (hex) from ``home/keys``, or ``None`` where there is none yet."""
    public = keys_dir(home) / PUBLIC_NAME
    if public.is_file():
        return parse_public_key(public.read_text())
    try:
        return load_operator_key(home).public_hex
    except NotFound:
        return None


def check_heads(
    heads: list[SignedHead], chain: dict[int, tuple[str, str]], count: int, public_key: str | None
) -> list[str]:
    """Problems with the signed heads, and with where the chain ends against the latest one.

    ``chain``: seq → (hash, transfer id) of the transfers present; ``count``: the last seq present.
    ``public_key``: the operator's key (hex); ``None`` checks each signature against the key the
    head names and that every head names the same key (an auditor passes the key it trusts).
    """
    problems: list[str] = []
    trusted = public_key or (heads[0].public_key if heads else "")
    prev_hash, prev_seq, prev = GENESIS, 0, None
    for head in heads:
        where = head.describe()
        if head.head_seq != prev_seq + 1:
            gone = f"#{prev_seq + 1}" if head.head_seq == prev_seq + 2 else f"#{prev_seq + 1}..#{head.head_seq - 1}"
            problems.append(f"{where}: signed head {gone} before it is missing (removed)")
        elif head.prev_head != prev_hash:
            problems.append(f"{where}: does not follow the head before it (a head was removed, reordered or forged)")
        payload = head.payload()
        if head.public_key != trusted:
            problems.append(
                f"{where}: signed by key {head.public_key[:16]}…, not the operator's key {trusted[:16]}… (forged)"
            )
        elif head_hash(payload) != head.head_hash or not verify_signature(
            trusted, canonical_json(payload), head.signature
        ):
            problems.append(f"{where}: its signature is not valid for the operator's key (edited or forged)")
        if prev is not None and head.transfers < prev.transfers:
            problems.append(f"{where}: goes back from {prev.describe()} (heads only move forward)")
        signed_end = chain.get(head.transfers, (head.last_hash, ""))[0] if head.transfers else GENESIS
        if signed_end != head.last_hash:
            problems.append(
                f"{where}: transfer seq {head.transfers} ({head.last_transfer_id}) no longer has the hash that was "
                f"signed (the ledger was rewritten up to it)"
            )
        prev_hash, prev_seq, prev = head.head_hash, head.head_seq, head
    if prev is None:
        if count:
            problems.append(
                f"no signed head: transfers seq 1..{count} are covered by no signature (the heads were removed, "
                f"or the ledger was kept before heads were signed: accord ledger adopt)"
            )
        return problems
    if count > prev.transfers:
        problems.append(
            f"transfers seq {prev.transfers + 1}..{count} come after the latest {prev.describe()}: posted without "
            f"a signed head, or the head that covered them was removed"
        )
    elif count < prev.transfers:
        problems.append(
            f"period {prev.period}: the ledger ends at seq {count} but the latest {prev.describe()} covers "
            f"{prev.transfers} transfers ending with seq {prev.transfers} ({prev.last_transfer_id}): transfers "
            f"after seq {count} were deleted (truncated)"
        )
    return problems
