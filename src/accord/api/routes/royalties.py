"""Usage events (batch ingest), royalty periods (run, close), statements, ledger verification."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from accord.api import royalties, services
from accord.api.auth import Role
from accord.api.deps import Caller, SettingsDep, StoreDep, record
from accord.api.pagination import Cursor, Limit, paginate
from accord.api.schemas import Page
from accord.api.schemas_royalties import (
    BalanceOut,
    BankDetailsIn,
    BankDetailsOut,
    ClosingOut,
    IngestOut,
    LedgerOut,
    PayoutOut,
    PeriodOut,
    ReverseIn,
    RunOut,
    TransferOut,
    UsageBatchIn,
)

router = APIRouter(tags=["royalties"])

Period = Annotated[str, Query(max_length=7, description="YYYY-MM")]


def _run(run: Any) -> RunOut:
    return RunOut(
        run_id=run.run_id,
        period=run.period,
        engine_version=run.engine_version,
        inputs_hash=run.inputs_hash,
        result_hash=run.result_hash,
        status=run.status,
        summary=run.summary,
    )


@router.post("/usage-events", status_code=201, response_model=IngestOut)
def ingest_usage(
    request: Request, body: UsageBatchIn, principal: Caller, store: StoreDep, settings: SettingsDep
) -> IngestOut:
    """Ingest a batch of usage (and revenue) events; an event id seen before counts once (operator)."""
    from accord.royalties.usage import ingest_events

    services.require(principal, Role.OPERATOR)
    result = ingest_events(
        store, settings, body.events, period=body.period, actor=services.actor(principal), source="api"
    )
    record(request, principal, "usage.ingest", "usage_batch", result.batch_id or "-", new=result.new)
    return _ingest(result)


def _ingest(result: Any) -> IngestOut:
    return IngestOut(
        batch_id=result.batch_id,
        received=result.received,
        new=result.new,
        duplicates=result.duplicates,
        late=result.late,
        periods=list(result.periods),
    )


@router.post("/usage-events/sync", status_code=201, response_model=IngestOut)
def sync_usage(request: Request, principal: Caller, store: StoreDep, settings: SettingsDep) -> IngestOut:
    """Land the platform's own generations, plays and downloads in the usage log (operator)."""
    from accord.royalties.usage import sync_platform_events

    services.require(principal, Role.OPERATOR)
    result = sync_platform_events(store, settings)
    record(request, principal, "usage.sync", "usage_batch", result.batch_id or "-", new=result.new)
    return _ingest(result)


@router.get("/royalty-periods/{period}", response_model=PeriodOut)
def period_status(period: str, principal: Caller, store: StoreDep, settings: SettingsDep) -> PeriodOut:
    """A period's status (open or closed) and its latest run (operator)."""
    from accord.errors import NotFound
    from accord.royalties import periods, run

    services.require(principal, Role.OPERATOR)
    status = periods.period_status(store, periods.parse_period(period))
    try:
        latest = _run(run.latest_run(store, settings, period))
    except NotFound:
        latest = None
    return PeriodOut(period=period, status=status, latest_run=latest)


@router.post("/royalty-periods/{period}/runs", status_code=201, response_model=RunOut)
def run_period(request: Request, period: str, principal: Caller, store: StoreDep, settings: SettingsDep) -> RunOut:
    """Run (or re-run) an open period; the same inputs give the same run (operator)."""
    from accord.royalties import run

    services.require(principal, Role.OPERATOR)
    made = run.run_period(store, settings, period, actor=services.actor(principal))
    record(request, principal, "royalty.run", "royalty_period", made.period, run_id=made.run_id)
    return _run(made)


@router.post("/royalty-periods/{period}/close", response_model=ClosingOut)
def close_period(
    request: Request, period: str, principal: Caller, store: StoreDep, settings: SettingsDep
) -> ClosingOut:
    """Close a period: it must reproduce its latest run; it is posted to the ledger and never changes (operator)."""
    from accord.royalties import run

    services.require(principal, Role.OPERATOR)
    closing = run.close_period(store, settings, period, actor=services.actor(principal))
    record(request, principal, "royalty.close", "royalty_period", closing.run.period, run_id=closing.run.run_id)
    return ClosingOut(
        run=_run(closing.run),
        transfers=closing.transfers,
        guarantees=[dict(g.__dict__) for g in closing.guarantees],
        ledger_head=closing.ledger_head,
    )


@router.get("/statements", response_model=Page[dict[str, Any]])
def list_statements(
    principal: Caller,
    store: StoreDep,
    settings: SettingsDep,
    period: Period,
    party: Annotated[str | None, Query(max_length=64, description="Operator only: one party's.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[dict[str, Any]]:
    """Statements of a period (a rights holder: its own, of closed periods), as JSON documents."""
    from accord.royalties.statements import to_document

    found = royalties.statements_for(store, settings, principal, period, party)
    page, nxt = paginate(found, lambda s: f"{s.party_id}|{s.currency}", limit, cursor)
    return Page[dict[str, Any]](items=[to_document(s) for s in page], next_cursor=nxt)


@router.get(
    "/statements/{period}/{currency}",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "text/csv": {}, "text/html": {}}}},
)
def statement_file(
    period: str,
    currency: str,
    principal: Caller,
    store: StoreDep,
    settings: SettingsDep,
    format: Annotated[Literal["json", "csv", "html"], Query(description="json, csv or html")] = "json",
    party: Annotated[str | None, Query(max_length=64, description="Operator only: whose statement.")] = None,
) -> Response:
    """One statement to download: line detail (CSV), the whole statement (JSON) or a readable page (HTML)."""
    from accord.royalties import statements as st

    found = royalties.statement_for(store, settings, principal, period, currency, party)
    write, media = {
        "json": (st.json_text, "application/json"),
        "csv": (st.csv_text, "text/csv"),
        "html": (st.html_text, "text/html"),
    }[format]
    name = f"statement-{found.party_id}-{found.period}-{found.currency}.{format}"
    return Response(write(found), media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/ledger/verify", response_model=LedgerOut)
def verify_ledger(principal: Caller, store: StoreDep, settings: SettingsDep) -> LedgerOut:
    """Walk the hash chain and the signed heads: an edited, deleted or reordered transfer, a removed or
    forged head, or a ledger cut short after its latest signed head is found (operator)."""
    from accord.royalties import heads, ledger

    services.require(principal, Role.OPERATOR)
    check = ledger.verify(store, heads.operator_public_key(settings.home))
    return LedgerOut(
        valid=check.ok,
        checked=check.checked,
        problems=list(check.problems),
        head=check.head,
        heads=check.heads,
        public_key=check.public_key,
    )


@router.post("/royalty-periods/{period}/payouts", status_code=201, response_model=list[PayoutOut])
def payout(request: Request, period: str, principal: Caller, store: StoreDep, settings: SettingsDep) -> list[PayoutOut]:
    """Pay out the balances of a closed period at or above the threshold, advances recouped (operator)."""
    from accord.royalties import run

    services.require(principal, Role.OPERATOR)
    paid = run.payout_period(store, settings, period, actor=services.actor(principal))
    record(request, principal, "royalty.payout", "royalty_period", period, payouts=len(paid))
    return [
        PayoutOut(
            party_id=p.party_id,
            currency=p.currency,
            amount=p.amount,
            transfer_ids=list(p.transfer_ids),
            carried=p.carried,
        )
        for p in paid
    ]


@router.get("/ledger/balances", response_model=Page[BalanceOut])
def balances(principal: Caller, store: StoreDep, limit: Limit = 50, cursor: Cursor = None) -> Page[BalanceOut]:
    """Account balances (a rights holder: its own accounts)."""
    from accord.royalties import ledger

    services.require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    every = ledger.balances(ledger.transfers(store))
    rows = [(a, b) for a, b in every.items() if principal.owns(ledger.parse_account(a)[0])]
    page, nxt = paginate(rows, lambda ab: ab[0], limit, cursor)
    return Page[BalanceOut](items=[BalanceOut(account=a, balance=b) for a, b in page], next_cursor=nxt)


@router.post("/ledger/transfers/{transfer_id}/reverse", status_code=201, response_model=TransferOut)
def reverse(
    request: Request, transfer_id: str, body: ReverseIn, principal: Caller, store: StoreDep, settings: SettingsDep
) -> TransferOut:
    """Correct a transfer by a reversing one in an open period; transfers are never edited (operator)."""
    from accord.royalties import ledger
    from accord.signing import ensure_operator_key

    services.require(principal, Role.OPERATOR)
    key, _ = ensure_operator_key(settings.home)
    tr = ledger.reverse(store, transfer_id, reason_code=body.reason, period=body.period, key=key, note=body.note)
    record(request, principal, "ledger.reverse", "transfer", transfer_id, reversal=tr.transfer_id)
    return TransferOut(
        transfer_id=tr.transfer_id,
        debit_account=tr.debit_account,
        credit_account=tr.credit_account,
        amount=tr.amount,
        currency=tr.currency,
        period=tr.period,
    )


def _bank(d: Any) -> BankDetailsOut:
    return BankDetailsOut(
        party_id=d.party_id, iban=d.iban, bic=d.bic, holder=d.holder, currency=d.currency, updated_by=d.updated_by
    )


@router.put("/parties/{party_id}/bank-details", response_model=BankDetailsOut)
def set_bank_details(
    request: Request, party_id: str, body: BankDetailsIn, principal: Caller, store: StoreDep
) -> BankDetailsOut:
    """Set a party's bank details for payouts: the party itself or the operator only (audited)."""
    from accord.registry import bank

    services.require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    d = bank.set_bank_details(
        store,
        party_id,
        iban=body.iban,
        bic=body.bic,
        holder=body.holder,
        currency=body.currency,
        caller=principal.party_id,
        operator=principal.is_operator,
        actor=services.actor(principal),
    )
    record(request, principal, "bank_details.set", "party", party_id, iban=d.masked_iban)
    return _bank(d)


@router.get("/parties/{party_id}/bank-details", response_model=BankDetailsOut)
def get_bank_details(party_id: str, principal: Caller, store: StoreDep) -> BankDetailsOut:
    """A party's bank details: to the party itself and the operator (anyone else: not found)."""
    from accord.registry import bank

    services.require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    return _bank(bank.bank_details(store, party_id, viewer=principal.party_id, operator=principal.is_operator))
