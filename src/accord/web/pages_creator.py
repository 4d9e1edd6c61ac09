"""The creator's pages: the studio (generate by style, key, tempo and length, or remix a licensed
recording), job progress, its outputs with player, piano roll, guard verdict and attribution card,
and downloads within its plan's allowance. Plays (posted by the player to the API when playback
starts) and downloads are usage events; streaming the audio records nothing."""

from __future__ import annotations

import io
import secrets
import zipfile
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from accord.api import services
from accord.api.auth import Principal, Role, audit
from accord.datasets import repository, service
from accord.errors import NotFound, ValidationError
from accord.licensing import LicensingPolicy
from accord.model.conditions import TONICS
from accord.model.contracts import METERS, check_request_for_model
from accord.outputs import store as outputs
from accord.outputs.plans import Refused, parse_plans
from accord.outputs.studio import Prompt
from accord.web import jobs, views
from accord.web.deps import PortalRoute, attachment, media_file, render, settings_of, store_of
from accord.web.session import CSRF, signed_in

router = APIRouter(prefix="/portal/studio", route_class=PortalRoute, include_in_schema=False)
Creator = Annotated[Principal, Depends(signed_in(Role.CREATOR))]
KEYS = tuple(f"{t} {m}" for m in ("major", "minor") for t in TONICS)
MAX_BARS = 64
REMIX_CHOICES = 200  # the remix list shows at most this many licensed recordings


def _creator(request: Request, me: Principal) -> outputs.Creator:
    found = outputs.find_creator(store_of(request), me.party_id)
    if found is None:
        msg = f"creator {me.party_id!r}: not registered; ask the operator to run 'accord creator add {me.party_id}'"
        raise NotFound(msg)
    return found


def _own_output(request: Request, me: Principal, output_id: str) -> outputs.Output:
    """The creator's own output (:func:`accord.api.services.output_for`); another's is a 404 like a missing one."""
    return services.output_for(store_of(request), me, output_id)


@router.get("")
def studio_page(request: Request, me: Creator, error: str = "") -> Response:
    store = store_of(request)
    creator = _creator(request, me)
    now = store.clock()
    statuses = {s.model_id: s for s in service.audit(store, now).models}
    models = [
        (m, statuses.get(m.model_id)) for m in reversed(repository.list_models(store))
    ]  # newest first: the one to use
    styles = sorted({s for m, _ in models for s in m.card.get("tokenizer", {}).get("styles", [])})
    catalog = store.snapshot(now)
    remixable = [d.isrc for d in LicensingPolicy(catalog).decide_all("remix", now, creator.territory) if d.eligible][
        :REMIX_CHOICES
    ]
    plan = parse_plans(settings_of(request).plans).get(creator.plan)
    mine = outputs.list_outputs(store, creator_id=me.party_id)
    return render(
        request,
        "studio/studio.html",
        {
            "creator": creator,
            "plan": plan,
            "models": models,
            "styles": styles,
            "keys": KEYS,
            "meters": METERS,
            "remixable": [(i, catalog.recordings[i].title) for i in remixable],
            "outputs": list(reversed(mine))[:10],
            "error": error,
            "max_bars": MAX_BARS,
        },
    )


@router.post("/generate", dependencies=[CSRF])
def submit(
    request: Request,
    me: Creator,
    model: Annotated[str, Form()],
    style: Annotated[str, Form()],
    key: Annotated[str, Form()] = "",
    tempo: Annotated[str, Form()] = "",
    meter: Annotated[str, Form()] = "",
    bars: Annotated[int, Form()] = 16,
    remix: Annotated[str, Form()] = "",
    seed: Annotated[str, Form()] = "",
) -> Response:
    store = store_of(request)
    _creator(request, me)
    repository.get_model(store, model)
    if key and key not in KEYS:
        raise ValidationError(f"key: {key!r} is not one of the keys offered (e.g. 'D major')", field="key", value=key)
    if not 1 <= bars <= MAX_BARS:
        raise ValidationError(f"bars: {bars} is outside 1..{MAX_BARS}", field="bars", value=bars)
    tempo_bpm = None
    if tempo.strip():
        if not tempo.strip().isdigit() or not 30 <= int(tempo) <= 300:
            raise ValidationError(
                f"tempo: {tempo!r} is not a whole number of BPM in 30..300", field="tempo", value=tempo
            )
        tempo_bpm = int(tempo)
    if seed.strip() and not seed.strip().isdigit():
        raise ValidationError(f"seed: {seed!r} is not a whole number >= 0", field="seed", value=seed)
    # the rule the API and the generation itself apply (style, key, tempo, bars, metre against the model's vocabulary)
    check_request_for_model(
        settings_of(request).models_dir,
        model,
        style=style,
        key=key or None,
        tempo_bpm=tempo_bpm,
        bars=bars,
        meter=meter or None,
    )
    prompt = Prompt(
        style=style, key=key or None, tempo_bpm=tempo_bpm, bars=bars, from_isrc=remix or None, meter=meter or None
    )
    job = jobs.submit_generation(
        request, me.party_id, model, prompt, int(seed) if seed.strip() else secrets.randbelow(2**31)
    )
    audit(store, me, "generation.submit", "job", job.job_id, {"model": model, "prompt": prompt.to_dict()})
    return RedirectResponse(f"/portal/studio/jobs/{job.job_id}", status_code=303)


@router.get("/jobs/{job_id}")
def job_page(request: Request, me: Creator, job_id: str) -> Response:
    job = jobs.job_for(request, me.party_id, job_id)
    return render(request, "studio/job.html", {"job": job, "prompt": job.params.get("prompt", {})})


@router.get("/jobs/{job_id}/status")
def job_status(request: Request, me: Creator, job_id: str) -> Response:
    return JSONResponse(jobs.status_of(jobs.job_for(request, me.party_id, job_id)))


@router.get("/outputs")
def outputs_page(request: Request, me: Creator) -> Response:
    mine = outputs.list_outputs(store_of(request), creator_id=me.party_id)
    return render(request, "studio/outputs.html", {"outputs": list(reversed(mine))})


@router.get("/outputs/{output_id}")
def output_page(request: Request, me: Creator, output_id: str, refused: str = "") -> Response:
    output = _own_output(request, me, output_id)
    creator = _creator(request, me)
    plan = parse_plans(settings_of(request).plans).get(creator.plan)
    used = outputs.downloads_in_month(store_of(request), me.party_id, store_of(request).clock())
    return render(
        request,
        "studio/output.html",
        {
            "output": output,
            "guard": views.guard_of(output.credential),
            "card": views.attribution_card(output.credential),
            "plan": plan,
            "downloads_used": used,
            "refused": refused,
            "credential_json": views.pretty(output.credential),
        },
    )


@router.get("/outputs/{output_id}/{kind}")
def output_file(request: Request, me: Creator, output_id: str, kind: str) -> Response:
    """Stream the audio (``Range`` for seeking) or show the piano roll, on every plan; reading records
    nothing: the player records a play with ``POST /v1/outputs/{output_id}/plays`` when playback starts."""
    return media_file(request, _own_output(request, me, output_id), kind)


@router.post("/outputs/{output_id}/download", dependencies=[CSRF])
def download(request: Request, me: Creator, output_id: str) -> Response:
    """MIDI, audio and credential in one zip, if the plan allows one more download this month."""
    store = store_of(request)
    _own_output(request, me, output_id)
    try:
        output, _ = outputs.authorise_download(store, settings_of(request), output_id, me.party_id)
    except Refused as exc:
        return RedirectResponse(f"/portal/studio/outputs/{output_id}?refused={quote(str(exc))}", status_code=303)
    audit(store, me, "output.download", "output", output_id)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for kind in sorted(output.files):
            info = output.files[kind]
            zf.write(store.media.open_path(info["sha256"]), f"{output_id}/{info['name']}")
    return attachment(buf.getvalue(), "application/zip", f"{output_id}.zip")
