"""Usage events (batch ingest), royalty periods (run, close), statements, ledger verification."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from accord.api import royalties, services
from accord.api.auth import Role
from accord.api.deps import Caller, SettingsDep, StoreDep, record
from accord.api.pagination import Cursor, Limit, paginate
from accord.api.schemas import ClosingOut, IngestOut, LedgerOut, Page, PeriodOut, RunOut, UsageBatchIn

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
    return IngestOut(
        batch_id=result.batch_id,
        received=result.received,
        new=result.new,
        duplicates=result.duplicates,
        late=result.late,
        periods=list(result.periods),
    )


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
def verify_ledger(principal: Caller, store: StoreDep) -> LedgerOut:
    """Walk the ledger's hash chain: an edited, deleted or reordered transfer is found (operator)."""
    from accord.royalties import ledger

    services.require(principal, Role.OPERATOR)
    check = ledger.verify(store)
    return LedgerOut(valid=check.ok, checked=check.checked, problems=list(check.problems), head=check.head)
