"""Royalties through the API: who may see which statements; the engine's functions do the rest.

The royalty engine (:mod:`accord.royalties`) owns usage ingest, runs, periods, the ledger and
statements. The rules here: usage ingest, runs, closing and ledger verification are the
operator's; a rights holder sees only its own statements, and only of closed periods (a draft
run can still change); the operator sees every statement of any period with a run.
"""

from __future__ import annotations

from typing import Any

from accord import visibility
from accord.api.auth import Principal, Role
from accord.api.services import require
from accord.errors import NotFound
from accord.registry.store import Store
from accord.settings import Settings


def statements_for(
    store: Store, settings: Settings, principal: Principal, period: str, party: str | None = None
) -> list[Any]:
    """The statements of one period the principal may see (each party and currency)."""
    from accord.royalties.accounts import build_statements
    from accord.royalties.periods import CLOSED, parse_period, period_status

    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    period = parse_period(period)
    if not principal.is_operator and period_status(store, period) != CLOSED:
        return []  # not a statement yet: the period's runs are drafts
    who = party if principal.is_operator else principal.party_id
    try:
        found = build_statements(store, settings, period, party=who)
    except NotFound:
        return []  # no run yet for this period
    return [s for s in found if visibility.may_see_statement(principal, s.party_id)]


def statement_for(
    store: Store, settings: Settings, principal: Principal, period: str, currency: str, party: str | None
) -> Any:
    found = [s for s in statements_for(store, settings, principal, period, party) if s.currency == currency.upper()]
    if len(found) != 1:
        who = party or principal.party_id
        msg = f"statement {who}/{period}/{currency}: not found" if found == [] else "party: required (operator)"
        raise NotFound(msg)
    return found[0]
