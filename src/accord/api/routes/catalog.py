"""Catalog deliveries (upload, list) and recordings with their eligibility per use and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile

from accord import visibility
from accord.api import readcache, services, uploads
from accord.api.auth import Principal, Role
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
from accord.registry import decisions
from accord.registry.entities import Catalog, Recording, Use
from accord.registry.store import Store
from accord.timeutil import iso, parse_instant

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
    report = uploads.import_archive(store, principal, archive.filename or "upload", archive.file.read())
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


def _instant(store: Store, at: str | None) -> tuple[datetime, datetime]:
    """The instant asked about (``at``, default now) and the store's clock now."""
    now = store.clock()
    return (now if at is None else parse_instant(at, field="at")), now


def _shown(out: RecordingOut | RecordingDetail, at: datetime) -> dict[str, Any]:
    """``out`` as JSON content, with the instant asked about replaced by :data:`readcache.TOKEN`."""
    content = out.model_dump(mode="json")
    at_text = iso(at) or ""
    content["eligibility"] = {
        use: decisions.instant_mentions(d, at_text, readcache.TOKEN) for use, d in content["eligibility"].items()
    }
    return content


@router.get("/recordings", response_model=Page[RecordingOut])
def list_recordings(
    request: Request,
    principal: Caller,
    store: StoreDep,
    territory: Territory = "US",
    at: At = None,
    as_of: AsOf = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    """Recordings (a rights holder: those it has standing on), each with its eligibility per use and why.

    The registry now is read one page at a time (keyset on ISRC) with its materialised decisions, and
    the page as rendered is kept while the registry does not change (:mod:`accord.api.readcache`);
    ``as_of`` (the registry as it stood then) decides over a snapshot of that instant.
    """
    if as_of is None:
        when, now = _instant(store, at)
        services.require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)

        def build(stamp: int) -> tuple[dict[str, Any], decisions.Span]:
            page, nxt = services.recordings_page(store, principal, cursor, limit)
            found, spans = services.eligibility_with_spans(store, [r.isrc for r in page], when, territory, stamp)
            catalog = services.registry_parties(store, stamp)
            items = [_shown(_recording(r, found[r.isrc], catalog, principal), when) for r in page]
            return {"items": items, "next_cursor": nxt}, readcache.span_of(spans.values())

        key = ("recordings", cursor, limit, territory)
        return readcache.serve(request, store, principal, key, when, now, build)
    when = instant_or_now(store, at, "at")
    catalog = _snapshot(store, as_of)
    page, nxt = paginate(services.visible_recordings(catalog, principal), lambda r: r.isrc, limit, cursor)
    decided = services.eligibility(catalog, [r.isrc for r in page], when, territory)
    items = [_recording(r, decided[r.isrc], catalog, principal) for r in page]
    return Page[RecordingOut](items=items, next_cursor=nxt)


def _detail(store: Store, rec: Recording, base: RecordingOut) -> RecordingDetail:
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


@router.get("/recordings/{isrc}", response_model=RecordingDetail)
def get_recording(
    request: Request,
    isrc: str,
    principal: Caller,
    store: StoreDep,
    territory: Territory = "US",
    at: At = None,
    as_of: AsOf = None,
) -> Any:
    """One recording: ownership, media, history, and its eligibility per use with the reasons."""
    if as_of is None:  # the recording and its works only, with its materialised decisions; kept as rendered
        when, now = _instant(store, at)
        services.require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)

        def build(stamp: int) -> tuple[dict[str, Any], decisions.Span]:
            rec = services.recording_now(store, principal, isrc)
            found, spans = services.eligibility_with_spans(store, [rec.isrc], when, territory, stamp)
            catalog = services.registry_parties(store, stamp)
            base = _recording(rec, found[rec.isrc], catalog, principal)
            return _shown(_detail(store, rec, base), when), spans[rec.isrc]

        return readcache.serve(request, store, principal, ("recording", isrc, territory), when, now, build)
    when = instant_or_now(store, at, "at")
    catalog = _snapshot(store, as_of, isrc)
    rec = services.recording_for(catalog, principal, isrc)
    decided = services.eligibility(catalog, [rec.isrc], when, territory)
    return _detail(store, rec, _recording(rec, decided[rec.isrc], catalog, principal))


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
