"""Agreements (grant, end, list) and opt-outs (create, list), each party seeing only its own."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from accord.api import services
from accord.api.deps import Caller, StoreDep, record
from accord.api.pagination import Cursor, Limit, paginate
from accord.api.schemas import (
    AgreementEndIn,
    AgreementIn,
    AgreementOut,
    ModelStatusOut,
    OptOutCreated,
    OptOutIn,
    OptOutOut,
    Page,
)
from accord.datasets.taint import ModelStatus
from accord.registry.consent import agreement_dict
from accord.registry.entities import Agreement, OptOut
from accord.timeutil import parse_instant

router = APIRouter(tags=["rights"])


class ArtistOptOutIn(BaseModel):
    """An artist-wide opt-out: everything of the party's catalog the artist performs."""

    model_config = {"extra": "forbid"}
    party: str = Field(min_length=1, max_length=64, description="Who opts out (a rights holder: itself).")
    effective: str | None = Field(default=None, max_length=40, description="In force from (default: now).")


class ArtistOptOutCreated(BaseModel):
    optouts: list[OptOutOut]
    flagged_models: list[ModelStatusOut] = Field(description="Models you may see that may no longer serve some use.")


def _agreement(a: Agreement) -> AgreementOut:
    return AgreementOut.model_validate(agreement_dict(a))


def _optout(o: OptOut) -> OptOutOut:
    return OptOutOut(
        id=o.optout_id,
        party=o.party_id,
        scope=o.scope.value,
        target=o.target,
        uses=sorted(u.value for u in o.uses),
        effective=o.effective,
    )


def model_status_out(m: ModelStatus) -> ModelStatusOut:
    return ModelStatusOut(
        model_id=m.model_id,
        manifest_root=m.manifest_root,
        blocked_uses=sorted(u.value for u in m.blocked_uses),
        reasons=list(m.reasons),
        pending_approvals=list(m.pending_approvals),
        refused_by=list(m.refused_by),
    )


@router.get("/agreements", response_model=Page[AgreementOut])
def list_agreements(principal: Caller, store: StoreDep, limit: Limit = 50, cursor: Cursor = None) -> Page[AgreementOut]:
    """Agreements in force or on record (a rights holder: those it granted)."""
    rows = services.visible_agreements(store.snapshot(isrcs=()), principal)
    page, nxt = paginate(rows, lambda a: a.agreement_id, limit, cursor)
    return Page[AgreementOut](items=[_agreement(a) for a in page], next_cursor=nxt)


@router.get("/agreements/{agreement_id}", response_model=AgreementOut)
def get_agreement(agreement_id: str, principal: Caller, store: StoreDep) -> AgreementOut:
    """One agreement (a rights holder: one it granted): uses, territory, window, coverage, terms."""
    return _agreement(services.agreement_for(store.snapshot(isrcs=()), principal, agreement_id))


@router.post("/agreements", status_code=201, response_model=AgreementOut)
def grant_agreement(request: Request, body: AgreementIn, principal: Caller, store: StoreDep) -> AgreementOut:
    """Grant a licence (a rights holder as licensor itself); the same grant twice changes nothing."""
    agreement, changed = services.grant_agreement(store, principal, body.model_dump(exclude_none=True))
    record(request, principal, "agreement.grant", "agreement", agreement.agreement_id, changed=changed)
    return _agreement(agreement)


@router.post("/agreements/{agreement_id}/end", response_model=AgreementOut)
def end_agreement(
    request: Request, agreement_id: str, body: AgreementEndIn, principal: Caller, store: StoreDep
) -> AgreementOut:
    """End an agreement at an instant (an amendment; the earlier version stays in history)."""
    ended = services.end_agreement(store, principal, agreement_id, parse_instant(body.at, field="at"))
    record(request, principal, "agreement.end", "agreement", agreement_id, at=body.at)
    return _agreement(ended)


@router.get("/optouts", response_model=Page[OptOutOut])
def list_optouts(principal: Caller, store: StoreDep, limit: Limit = 50, cursor: Cursor = None) -> Page[OptOutOut]:
    """Opt-outs on record (a rights holder: its own)."""
    rows = services.visible_optouts(store.snapshot(isrcs=()), principal)
    page, nxt = paginate(rows, lambda o: o.optout_id, limit, cursor)
    return Page[OptOutOut](items=[_optout(o) for o in page], next_cursor=nxt)


@router.get("/optouts/{optout_id}", response_model=OptOutOut)
def get_optout(optout_id: str, principal: Caller, store: StoreDep) -> OptOutOut:
    """One opt-out (a rights holder: its own)."""
    return _optout(services.optout_for(store.snapshot(isrcs=()), principal, optout_id))


@router.post("/optouts", status_code=201, response_model=OptOutCreated)
def create_optout(request: Request, body: OptOutIn, principal: Caller, store: StoreDep) -> OptOutCreated:
    """Opt a recording, a work or a whole catalog out (a rights holder: as itself); the models it flags."""
    data = body.model_dump(exclude={"id"})
    optout, flagged = services.create_optout(store, principal, data, body.id)
    record(request, principal, "optout.create", "optout", optout.optout_id, scope=optout.scope.value)
    return OptOutCreated(optout=_optout(optout), flagged_models=[model_status_out(m) for m in flagged])


@router.post("/artists/{artist_id}/optout", status_code=201, response_model=ArtistOptOutCreated)
def opt_out_artist(
    request: Request, artist_id: str, body: ArtistOptOutIn, principal: Caller, store: StoreDep
) -> ArtistOptOutCreated:
    """Opt out every recording of the party's catalog this artist performs, all at once (an artist
    opting itself out withdraws its whole catalog); the models it flags."""
    when = parse_instant(body.effective, field="effective") if body.effective else store.clock()
    made, flagged = services.opt_out_artist(store, principal, body.party, artist_id, when)
    record(request, principal, "optout.artist", "artist", artist_id, optouts=[o.optout_id for o in made])
    return ArtistOptOutCreated(
        optouts=[_optout(o) for o in made], flagged_models=[model_status_out(m) for m in flagged]
    )
