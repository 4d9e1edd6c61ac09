"""Catalog deliveries (upload, list) and recordings with their eligibility per use and why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile

from accord import visibility
from accord.api import services
from accord.api.auth import Principal
from accord.api.deps import Caller, StoreDep, instant_or_now, record
from accord.api.pagination import Cursor, Limit, paginate
from accord.api.schemas import (
    CatalogSummaryOut,
    DecisionOut,
    DeliveryOut,
    ImportOut,
    Page,
    RecordingDetail,
    RecordingOut,
    ShareOut,
)
from accord.licensing import Decision
from accord.registry.entities import Catalog, Recording, Use

router = APIRouter(tags=["catalog"])

Territory = Annotated[str, Query(min_length=2, max_length=2, description="ISO 3166-1 alpha-2 territory of use.")]
At = Annotated[str | None, Query(max_length=40, description="Instant of use, ISO 8601 (default: now).")]
AsOf = Annotated[str | None, Query(max_length=40, description="The registry as it stood then (default: now).")]


def _recording(rec: Recording, decisions: dict[Use, Decision], catalog: Catalog, viewer: Principal) -> RecordingOut:
    """A recording as ``viewer`` may see it: a co-owner or artist that asked not to be named
    (``disclose: false``) is unnamed, in its shares and in every decision's reasons (:mod:`accord.visibility`)."""
    hidden = visibility.hidden_parties(catalog, viewer)

    def shown(party_id: str) -> str:
        return visibility.UNDISCLOSED if party_id in hidden else party_id

    return RecordingOut(
        isrc=rec.isrc,
        title=rec.title,
        artists=[shown(a) for a in rec.artists],
        genre=rec.genre,
        duration_ms=rec.duration_ms,
        works=list(rec.works),
        master_shares=[ShareOut(party_id=shown(s.party_id), ppm=s.ppm) for s in rec.shares],
        eligibility={u.value: _decision(d, catalog, viewer) for u, d in decisions.items()},
    )


def _decision(decision: Decision, catalog: Catalog, viewer: Principal) -> DecisionOut:
    return DecisionOut.model_validate(visibility.redacted_decision(catalog, viewer, decision).to_dict())


@router.post("/deliveries", status_code=201, response_model=ImportOut)
def upload_delivery(
    request: Request,
    principal: Caller,
    store: StoreDep,
    archive: Annotated[UploadFile, File(description="A zip or tar.gz of one delivery folder.")],
) -> ImportOut:
    """Import a catalog delivery (zip or tar.gz of a delivery folder), all or nothing."""
    report = services.import_archive(store, principal, archive.filename or "upload", archive.file.read())
    out = ImportOut.model_validate(report.to_dict())
    record(request, principal, "delivery.import", "delivery", report.delivery_id, status=out.status)
    return out


@router.get("/deliveries", response_model=Page[DeliveryOut])
def list_deliveries(principal: Caller, store: StoreDep, limit: Limit = 50, cursor: Cursor = None) -> Page[DeliveryOut]:
    """Imported deliveries (a rights holder: its own)."""
    rows = services.visible_deliveries(store, principal)
    page, nxt = paginate(rows, lambda d: f"{d['pk']:012d}", limit, cursor)
    return Page[DeliveryOut](items=[DeliveryOut.model_validate(d) for d in page], next_cursor=nxt)


def _snapshot(store: StoreDep, as_of: str | None, isrc: str | None = None) -> Catalog:
    """The registry now (or as of), whole, or only one recording and its works (with every party and licence)."""
    if isrc is None and as_of is None:
        return services.current_catalog(store)
    only = None if isrc is None else [isrc.upper().replace("-", "")]
    return store.snapshot(instant_or_now(store, as_of, "as_of") if as_of else None, isrcs=only)


@router.get("/catalog/summary", response_model=CatalogSummaryOut)
def catalog_summary(principal: Caller, store: StoreDep, as_of: AsOf = None) -> CatalogSummaryOut:
    """What the registry holds (a rights holder: of its own), by master owner and genre."""
    return CatalogSummaryOut.model_validate(services.catalog_summary(_snapshot(store, as_of), principal))


@router.get("/recordings", response_model=Page[RecordingOut])
def list_recordings(
    principal: Caller,
    store: StoreDep,
    territory: Territory = "US",
    at: At = None,
    as_of: AsOf = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RecordingOut]:
    """Recordings (a rights holder: those it has standing on), each with its eligibility per use and why.

    The registry now is read one page at a time (keyset on ISRC) with its materialised decisions;
    ``as_of`` (the registry as it stood then) decides over a snapshot of that instant.
    """
    when = instant_or_now(store, at, "at")
    if as_of is None:
        page, nxt = services.recordings_page(store, principal, cursor, limit)
        decisions = services.eligibility_now(store, [r.isrc for r in page], when, territory)
        catalog = services.current_catalog(store)
        items = [_recording(r, decisions[r.isrc], catalog, principal) for r in page]
        return Page[RecordingOut](items=items, next_cursor=nxt)
    catalog = _snapshot(store, as_of)
    page, nxt = paginate(services.visible_recordings(catalog, principal), lambda r: r.isrc, limit, cursor)
    decisions = services.eligibility(catalog, [r.isrc for r in page], when, territory)
    items = [_recording(r, decisions[r.isrc], catalog, principal) for r in page]
    return Page[RecordingOut](items=items, next_cursor=nxt)


@router.get("/recordings/{isrc}", response_model=RecordingDetail)
def get_recording(
    isrc: str, principal: Caller, store: StoreDep, territory: Territory = "US", at: At = None, as_of: AsOf = None
) -> RecordingDetail:
    """One recording: ownership, media, history, and its eligibility per use with the reasons."""
    when = instant_or_now(store, at, "at")
    if as_of is None:  # the recording and its works only, with its materialised decisions
        rec = services.recording_now(store, principal, isrc)
        decisions = services.eligibility_now(store, [rec.isrc], when, territory)
        catalog = services.current_catalog(store)
    else:
        catalog = _snapshot(store, as_of, isrc)
        rec = services.recording_for(catalog, principal, isrc)
        decisions = services.eligibility(catalog, [rec.isrc], when, territory)
    base = _recording(rec, decisions[rec.isrc], catalog, principal)
    history = [
        {
            "version": v.version,
            "recorded_from": v.recorded_from,
            "recorded_to": v.recorded_to,
            "recorded_by": v.recorded_by,
        }
        for v in store.history("recordings", rec.isrc)
    ]
    media = [{"sha256": m.sha256, "kind": m.kind, "size": m.size} for m in rec.media]
    return RecordingDetail.model_validate(base.model_dump() | {"media": media, "history": history})


@router.get("/recordings/{isrc}/eligibility", response_model=DecisionOut)
def check_eligibility(
    isrc: str,
    principal: Caller,
    store: StoreDep,
    use: Annotated[Use, Query(description="train, generate or remix.")],
    territory: Territory = "US",
    at: At = None,
    as_of: AsOf = None,
) -> DecisionOut:
    """May this recording be used so, there, then? The agreements relied on, or every reason not."""
    when = instant_or_now(store, at, "at")
    if as_of is None and use in services.USES:
        rec = services.recording_now(store, principal, isrc)
        decision = services.eligibility_now(store, [rec.isrc], when, territory)[rec.isrc][use]
        return _decision(decision, services.current_catalog(store), principal)
    catalog = _snapshot(store, as_of, isrc)
    rec = services.recording_for(catalog, principal, isrc)
    decision = services.decide(catalog, rec.isrc, use, when, territory)
    return _decision(decision, catalog, principal)
