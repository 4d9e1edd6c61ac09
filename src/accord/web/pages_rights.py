"""The rights holder's pages: catalog and eligibility, agreements, opt-outs, models and proofs,
attributed outputs, earnings and statements. Everything is narrowed to the signed-in party."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from accord import visibility
from accord.api import services
from accord.api.auth import Principal, Role, audit
from accord.errors import ValidationError
from accord.registry.entities import Catalog, OptOut, Recording
from accord.registry.store import Store
from accord.signing import load_operator_key
from accord.timeutil import iso
from accord.web import earnings, views
from accord.web.deps import PortalRoute, attachment, media_file, render, settings_of, store_of
from accord.web.session import CSRF, signed_in

router = APIRouter(prefix="/portal/rights", route_class=PortalRoute, include_in_schema=False)
Holder = Annotated[Principal, Depends(signed_in(Role.RIGHTS_HOLDER))]
PAGE_SIZE = 25


@router.get("")
def catalog_page(request: Request, me: Holder, page: int = 1, territory: str = "", q: str = "") -> Response:
    store = store_of(request)
    catalog = store.snapshot()
    territory = (territory or views.default_territory(store)).upper()
    mine = views.my_recordings(catalog, me)
    if q:
        needle = q.lower()
        mine = [r for r in mine if needle in r.title.lower() or needle in r.isrc.lower()]
    pages = max(1, -(-len(mine) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    every = views.eligibility(catalog, mine, store.clock(), territory, me.party_id)
    rows = every[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    counts = {u.value: sum(1 for r in every if r.decisions[u.value].eligible) for u in views.USES}
    return render(
        request,
        "rights/catalog.html",
        {
            "rows": rows,
            "total": len(mine),
            "page": page,
            "pages": pages,
            "territory": territory,
            "q": q,
            "counts": counts,
            "artists": _my_artists(catalog, me, mine),
            "uses": [u.value for u in views.USES],
        },
    )


def _names(catalog: Catalog, me: Principal, rec: Recording, optouts: list[OptOut]) -> dict[str, str]:
    """How the recording page names each party on it (``disclose: false`` others unnamed, :mod:`accord.visibility`)."""
    ids = {s.party_id for s in rec.shares} | {o.party_id for o in optouts}
    ids |= {s.party_id for w in rec.works if w in catalog.works for s in catalog.works[w].shares}
    return {pid: visibility.shown_name(catalog, me, pid) for pid in ids}


def _my_artists(catalog: Catalog, me: Principal, mine: list[Recording]) -> list[tuple[str, str, int]]:
    found: dict[str, int] = {}
    for rec in mine:
        for a in rec.artists:
            found[a] = found.get(a, 0) + 1
    return [(a, visibility.shown_name(catalog, me, a), n) for a, n in sorted(found.items())]


@router.get("/recordings/{isrc}")
def recording_page(request: Request, me: Holder, isrc: str, territory: str = "", optout: str = "") -> Response:
    store = store_of(request)
    catalog = store.snapshot()
    rec = services.recording_for(catalog, me, isrc)
    isrc = rec.isrc
    territory = (territory or views.default_territory(store)).upper()
    now = store.clock()
    row = views.eligibility(catalog, [rec], now, territory, me.party_id)[0]
    models = [m for m in views.models_for(store, me, now) if isrc in m.mine]
    optouts = [o for _, o in sorted(catalog.optouts.items()) if o.target == isrc or o.party_id in rec.artists]
    return render(
        request,
        "rights/recording.html",
        {
            "row": row,
            "territory": territory,
            "models": models,
            "flags": {m.model.model_id: [f for f in m.flags if f.isrc == isrc] for m in models},
            "optouts": optouts,
            "just_opted": optout,
            "works": [catalog.works[w] for w in rec.works if w in catalog.works],
            "names": _names(catalog, me, rec, optouts),
        },
    )


@router.post("/recordings/{isrc}/opt-out", dependencies=[CSRF])
def opt_out_recording(request: Request, me: Holder, isrc: str) -> Response:
    """One click: the party withdraws every use of one recording of its catalog, from now."""
    store = store_of(request)
    rec = services.recording_for(store.snapshot(), me, isrc)
    data = {"party": me.party_id, "scope": "recording", "target": rec.isrc, "uses": ["all"], "effective": _now(store)}
    optout, stopped = services.create_optout(store, me, data, None)
    detail = {"scope": "recording", "target": rec.isrc, "stops": [m.model_id for m in stopped], "via": "portal"}
    audit(store, me, "optout.create", "optout", optout.optout_id, detail)
    return RedirectResponse(f"/portal/rights/recordings/{rec.isrc}?optout={optout.optout_id}", status_code=303)


@router.post("/artists/{artist_id}/opt-out", dependencies=[CSRF])
def opt_out_artist(request: Request, me: Holder, artist_id: str) -> Response:
    """One click: opt out every recording of the party's catalog this artist performs (an artist
    opting itself out withdraws its whole catalog), in one write."""
    store = store_of(request)
    made, _ = services.opt_out_artist(store, me, me.party_id, artist_id, store.clock())
    ids = [o.optout_id for o in made]
    audit(store, me, "optout.create", "artist", artist_id, {"optouts": ids, "via": "portal"})
    return RedirectResponse(f"/portal/rights/opt-outs?artist={artist_id}", status_code=303)


def _now(store: Store) -> str:
    return iso(store.clock()) or ""


@router.get("/opt-outs")
def optouts_page(request: Request, me: Holder, artist: str = "") -> Response:
    store = store_of(request)
    catalog = store.snapshot()
    mine = sorted(services.visible_optouts(catalog, me), key=lambda o: (o.effective, o.optout_id), reverse=True)
    models = [m for m in views.models_for(store, me, store.clock()) if m.flagged]
    return render(
        request,
        "rights/optouts.html",
        {"optouts": mine, "models": models, "artist": artist, "recordings": catalog.recordings},
    )


@router.get("/agreements")
def agreements_page(request: Request, me: Holder) -> Response:
    catalog = store_of(request).snapshot(isrcs=())
    mine = sorted(services.visible_agreements(catalog, me), key=lambda a: a.agreement_id)
    return render(request, "rights/agreements.html", {"agreements": mine, "now": store_of(request).clock()})


@router.get("/models")
def models_page(request: Request, me: Holder) -> Response:
    store = store_of(request)
    return render(request, "rights/models.html", {"models": views.models_for(store, me, store.clock())})


@router.post("/models/{model_id}/approval", dependencies=[CSRF])
def model_approval(request: Request, me: Holder, model_id: str, decision: Annotated[str, Form()]) -> Response:
    """A licensor whose agreement asks to approve each model version approves or refuses this one."""
    if decision not in ("approve", "refuse"):
        msg = f"decision: {decision!r} is not approve or refuse"
        raise ValidationError(msg, field="decision", value=decision)
    store = store_of(request)
    approval = services.approve_model(store, me, model_id, None, decision == "approve", "from the portal")
    audit(store, me, f"model.{approval.decision}", "model", model_id, {"via": "portal"})
    return RedirectResponse("/portal/rights/models", status_code=303)


@router.get("/models/{model_id}/proofs.zip")
def proofs_download(request: Request, me: Holder, model_id: str) -> Response:
    store = store_of(request)
    view = views.model_for(store, me, model_id, store.clock())
    body = views.proofs_zip(store, view.model, me.party_id, load_operator_key(settings_of(request).home))
    name = f"proofs-{me.party_id}-{view.model.manifest_root[:12]}.zip"
    return attachment(body, "application/zip", name)


@router.get("/models/{model_id}/proofs/{isrc}.json")
def proof_download(request: Request, me: Holder, model_id: str, isrc: str) -> Response:
    store = store_of(request)
    view = views.model_for(store, me, model_id, store.clock())
    proof = services.proof_for(store, me, view.model.manifest_root, isrc, load_operator_key(settings_of(request).home))
    return attachment(json.dumps(proof, indent=2, sort_keys=True), "application/json", f"{isrc}.proof.json")


@router.get("/outputs")
def outputs_page(request: Request, me: Holder) -> Response:
    store = store_of(request)
    found = views.outputs_attributed(store, me)
    return render(request, "rights/outputs.html", {"outputs": found})


@router.get("/outputs/{output_id}")
def output_page(request: Request, me: Holder, output_id: str) -> Response:
    store = store_of(request)
    output, card = views.output_attributed(store, me, output_id)
    return render(
        request,
        "rights/output.html",
        {"output": output, "card": card, "guard": views.guard_of(output.credential)},
    )


@router.get("/outputs/{output_id}/{kind}")
def output_file(request: Request, me: Holder, output_id: str, kind: str) -> Response:
    """The audio (to listen) or piano roll of an output attributed to the party; not a download."""
    output, _ = views.output_attributed(store_of(request), me, output_id)
    return media_file(request, output, kind)


@router.get("/earnings")
def earnings_page(request: Request, me: Holder) -> Response:
    periods = earnings.periods_for(store_of(request), settings_of(request), me)
    return render(request, "rights/earnings.html", {"periods": periods, "chart": earnings.bar_chart(periods)})


@router.get("/statements/{period}/{currency}.{fmt}")
def statement_download(request: Request, me: Holder, period: str, currency: str, fmt: str) -> Response:
    store, settings = store_of(request), settings_of(request)
    body, media, name = earnings.statement_file(store, settings, me, period, currency, fmt)
    return attachment(body, media, name)
