"""Parties' bank details for payouts: IBAN, BIC, account holder, currency.

Validated on entry with ``schwifty`` (IBAN check digits and national format, BIC structure and
country). One rule, one place: :func:`may_see_bank_details` decides who may read or change a
party's bank details — the party itself and the operator, nobody else — and every face (CLI,
API, portal, payout files) goes through :func:`set_bank_details` / :func:`bank_details`. A change
is an audit event (who, when, which account, masked), kept forever.

The operator's own account, the debtor of the payout files, is kept under :data:`OPERATOR`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy import delete, insert, select

from accord.errors import Forbidden, NotFound, ValidationError
from accord.money import check_currency
from accord.registry.schema import Base
from accord.registry.store import Store

T = Base.metadata.tables
OPERATOR = "OPERATOR"
"""The party id under which the operator's own (paying) account is kept."""


@dataclass(frozen=True)
class BankDetails:
    """A party's bank account for payouts.

    Attributes:
        party_id: whose account.
        iban: the IBAN, compact (no spaces), upper case.
        bic: the BIC (8 or 11 characters), upper case.
        holder: the account holder's name, as the bank knows it.
        currency: the currency payouts to this account are made in (ISO 4217).
        updated_at: when it was last set.
        updated_by: who set it (the party itself or the operator).
    """

    party_id: str
    iban: str
    bic: str
    holder: str
    currency: str
    updated_at: datetime
    updated_by: str

    @property
    def masked_iban(self) -> str:
        """``DE89…3000``: enough to recognise an account in logs, not to use it."""
        return f"{self.iban[:4]}…{self.iban[-4:]}"


def check_iban(value: str) -> str:
    try:
        return str(IBAN(value).compact)
    except (SchwiftyException, ValueError, TypeError) as exc:
        msg = f"iban: {value!r} is not a valid IBAN ({exc}); expected e.g. DE89 3704 0044 0532 0130 00"
        raise ValidationError(msg, field="iban", value=value) from None


def check_bic(value: str, iban: str) -> str:
    """A BIC, upper case; ``""`` takes the one the IBAN's bank code gives (where schwifty knows it)."""
    if not value.strip():
        derived = IBAN(iban).bic
        if derived is None:
            msg = f"bic: empty, and no BIC is known for the bank of IBAN {iban[:4]}…; expected a BIC (8 or 11 chars)"
            raise ValidationError(msg, field="bic", value=value)
        return str(derived)
    try:
        bic = BIC(value)
    except (SchwiftyException, ValueError, TypeError) as exc:
        msg = f"bic: {value!r} is not a valid BIC ({exc}); expected 8 or 11 characters, e.g. COBADEFFXXX"
        raise ValidationError(msg, field="bic", value=value) from None
    return str(bic)


def check_holder(value: str) -> str:
    name = " ".join(value.split()) if isinstance(value, str) else ""
    if not name or len(name) > 140:
        msg = f"holder: {value!r} is not an account holder's name; expected 1 to 140 characters"
        raise ValidationError(msg, field="holder", value=value)
    return name


def may_see_bank_details(viewer: str, party_id: str, *, operator: bool) -> bool:
    """The rule: a party's bank details are for the party itself and the operator only."""
    return operator or viewer == party_id


def _party_exists(store: Store, party_id: str) -> bool:
    p = T["parties"]
    with store.engine.connect() as conn:
        return conn.execute(select(p.c.party_id).where(p.c.party_id == party_id).limit(1)).first() is not None


def set_bank_details(
    store: Store,
    party_id: str,
    *,
    iban: str,
    bic: str,
    holder: str,
    currency: str,
    caller: str,
    operator: bool,
    actor: str = "",
) -> BankDetails:
    """Validate and store a party's bank details (the party itself, or the operator), with an audit event.

    ``caller``: the party id making the change; ``operator``: whether it acts as the operator;
    ``actor``: how the audit log names it (default ``caller``).

    Raises:
        ValidationError: a field is not valid (the message names it).
        Forbidden: ``caller`` is neither the party nor the operator.
        NotFound: no such party in the registry.
    """
    actor = actor or caller
    if not may_see_bank_details(caller, party_id, operator=operator):
        msg = f"party_id: {caller!r} may not set the bank details of {party_id!r}; only the party or the operator may"
        raise Forbidden(msg)
    if party_id != OPERATOR and not _party_exists(store, party_id):
        msg = f"party_id: {party_id!r} is not a party in the registry"
        raise NotFound(msg)
    compact = check_iban(iban)
    details = BankDetails(
        party_id=party_id,
        iban=compact,
        bic=check_bic(bic, compact),
        holder=check_holder(holder),
        currency=check_currency(currency),
        updated_at=store.clock(),
        updated_by=actor,
    )
    b, audit = T["bank_details"], T["audit_events"]
    with store.engine.begin() as conn:
        conn.execute(delete(b).where(b.c.party_id == party_id))
        conn.execute(insert(b).values(**details.__dict__))
        conn.execute(
            insert(audit).values(
                at=details.updated_at,
                actor=actor,
                action="bank_details.set",
                subject=f"party:{party_id}",
                detail={
                    "iban": details.masked_iban,
                    "bic": details.bic,
                    "currency": details.currency,
                    "by": "party" if caller == party_id else "operator",
                },
            )
        )
    return details


def _details(r: dict[str, object]) -> BankDetails:
    return BankDetails(**r)  # type: ignore[arg-type]


def bank_details(store: Store, party_id: str, *, viewer: str, operator: bool) -> BankDetails:
    """A party's bank details, for the party itself or the operator (to anyone else: not found)."""
    if may_see_bank_details(viewer, party_id, operator=operator):
        found = bank_details_of(store, [party_id])
        if party_id in found:
            return found[party_id]
    msg = f"party_id: no bank details for {party_id!r}"
    raise NotFound(msg)


def bank_details_of(store: Store, party_ids: Iterable[str]) -> dict[str, BankDetails]:
    """Bank details by party, for the payout run (operator-side: never hand these to a party's view)."""
    b = T["bank_details"]
    wanted = sorted(set(party_ids))
    with store.engine.connect() as conn:
        rows = conn.execute(select(b).where(b.c.party_id.in_(wanted))).mappings()
        return {r["party_id"]: _details(dict(r)) for r in rows}
