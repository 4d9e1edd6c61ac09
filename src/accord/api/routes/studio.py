"""Creators, generation as a job (submit, poll), outputs (files, stream, download) and usage."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Header, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from accord import visibility
from accord.api import services
from accord.api.auth import Principal, Role
from accord.api.deps import Caller, SettingsDep, StoreDep, ranged, record
from accord.api.jobs import Job, JobQueue, get_job, list_jobs
from accord.api.pagination import Cursor, Limit, paginate
from accord.api.schemas import (
    CreatorIn,
    CreatorOut,
    CredentialCheckOut,
    GenerationIn,
    JobOut,
    OutputDetail,
    OutputOut,
    Page,
    PlayOut,
    UsageEventOut,
)
from accord.errors import Forbidden, NotFound, ValidationError
from accord.identifiers import validate_isrc
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans

router = APIRouter(tags=["studio"])

MEDIA_TYPES = {
    "midi": "audio/midi",
    "audio": "audio/wav",
    "pianoroll": "image/png",
    "credential": "application/json",
}
VIEWABLE = ("pianoroll", "credential")  # free to fetch; MIDI and audio leave only by stream or download


def _job(j: Job) -> JobOut:
    return JobOut.model_validate(j.__dict__)


def _output(o: outputs.Output, detail: dict[str, Any] | None = None) -> OutputOut:
    base: dict[str, Any] = {
        "output_id": o.output_id,
        "model_id": o.model_id,
        "creator_id": o.creator_id,
        "created_at": o.created_at,
        "prompt": o.prompt,
        "seed": o.seed,
        "files": sorted(o.files),
    }
    return OutputDetail(**base, credential=detail) if detail is not None else OutputOut(**base)


@router.post("/creators", status_code=201, response_model=CreatorOut)
def add_creator(
    request: Request, body: CreatorIn, principal: Caller, store: StoreDep, settings: SettingsDep
) -> CreatorOut:
    """Register a creator on a plan (operator)."""
    services.require(principal, Role.OPERATOR)
    c = outputs.add_creator(store, body.creator_id, body.plan, body.territory, parse_plans(settings.plans))
    record(request, principal, "creator.add", "creator", c.creator_id, plan=c.plan)
    return CreatorOut(creator_id=c.creator_id, plan=c.plan, territory=c.territory)


@router.get("/creators/me", response_model=CreatorOut)
def my_creator(principal: Caller, store: StoreDep) -> CreatorOut:
    """The calling creator: its plan and territory."""
    services.require(principal, Role.CREATOR)
    c = outputs.get_creator(store, principal.party_id)
    return CreatorOut(creator_id=c.creator_id, plan=c.plan, territory=c.territory)


def _creator_for(principal: Principal, requested: str | None) -> str:
    services.require(principal, Role.CREATOR, Role.OPERATOR)
    if principal.role is Role.CREATOR:
        if requested not in (None, principal.party_id):
            msg = f"creator_id: {requested!r} is not you ({principal.party_id}); leave it out"
            raise ValidationError(msg, field="creator_id", value=requested)
        return principal.party_id
    if not requested:
        raise ValidationError("creator_id: required when an operator generates; name the creator", field="creator_id")
    return requested


@router.post("/generations", status_code=202, response_model=JobOut)
def submit_generation(
    request: Request,
    body: GenerationIn,
    principal: Caller,
    store: StoreDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=96)] = None,
) -> JobOut:
    """Ask for a piece; answers at once with a job to poll (GET /v1/jobs/{job_id}), the work runs in a worker.

    The same request sent again with the same ``Idempotency-Key`` answers the same job (a key used for
    another request: 409)."""
    creator_id = _creator_for(principal, body.creator_id)
    services.known_creator(store, creator_id)  # refuse an unknown creator now rather than in the worker
    from accord.model.contracts import check_request_for_model  # a style, key, tempo or metre it cannot honour: 422

    check_request_for_model(
        settings.models_dir,
        body.model_id,
        style=body.style,
        key=body.key,
        tempo_bpm=body.tempo_bpm,
        bars=body.bars,
        meter=body.meter,
    )
    prompt = body.model_dump(exclude={"model_id", "seed", "creator_id"})
    if prompt["from_isrc"]:
        prompt["from_isrc"] = validate_isrc(prompt["from_isrc"])
    params = {"model_id": body.model_id, "creator_id": creator_id, "seed": body.seed, "prompt": prompt}
    runner: JobQueue = request.app.state.jobs

    def audited(conn: Connection, job: Job) -> None:  # the job and its audit event: one transaction
        record(request, principal, "generation.submit", "job", job.job_id, conn=conn, model_id=body.model_id)

    job = runner.submit("generation", creator_id, params, idempotency_key=idempotency_key, also=audited)
    return _job(job)


def _job_for(store: StoreDep, principal: Principal, job_id: str) -> Job:
    services.require(principal, Role.CREATOR, Role.OPERATOR)
    job = get_job(store, job_id)
    if not principal.owns(job.owner):
        raise NotFound(f"job {job_id!r}: not found")
    return job


@router.get("/jobs", response_model=Page[JobOut])
def jobs(principal: Caller, store: StoreDep, limit: Limit = 50, cursor: Cursor = None) -> Page[JobOut]:
    """Jobs (a creator: its own), oldest first."""
    services.require(principal, Role.CREATOR, Role.OPERATOR)
    rows = list_jobs(store, owner=None if principal.is_operator else principal.party_id)
    page, nxt = paginate(rows, lambda j: f"{j.created_at.isoformat()}|{j.job_id}", limit, cursor)
    return Page[JobOut](items=[_job(j) for j in page], next_cursor=nxt)


@router.get("/jobs/{job_id}", response_model=JobOut)
def job_status(job_id: str, principal: Caller, store: StoreDep) -> JobOut:
    """A job's status; when done, its result names the output."""
    return _job(_job_for(store, principal, job_id))


@router.get("/outputs", response_model=Page[OutputOut])
def list_outputs(principal: Caller, store: StoreDep, limit: Limit = 50, cursor: Cursor = None) -> Page[OutputOut]:
    """Outputs: a creator's own; those attributed to a rights holder's works; all for the operator."""
    rows = services.visible_outputs(store, principal)
    page, nxt = paginate(rows, lambda o: o.output_id, limit, cursor)
    return Page[OutputOut](items=[_output(o) for o in page], next_cursor=nxt)


@router.get("/outputs/{output_id}", response_model=OutputDetail)
def get_output(output_id: str, principal: Caller, store: StoreDep) -> OutputOut:
    """One output with its content credential (model, manifest root, prompt, seed, guard, attribution), as
    the caller may see it (:func:`accord.visibility.credential_for`): the public credential, whose
    attribution names no party that asked not to be named; such a party sees its own entries named, with
    the openings of their commitments; the operator sees the full attribution and guard record. The
    signed credential itself is ``/files/credential``."""
    output = services.output_for(store, principal, output_id)
    return _output(output, visibility.credential_for(principal, output, services.current_catalog(store)))


@router.get(
    "/outputs/{output_id}/files/{kind}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "application/json": {}, "audio/midi": {}, "audio/wav": {}}}},
)
def output_file(
    output_id: str,
    kind: Literal["pianoroll", "credential", "midi", "audio"],
    principal: Caller,
    store: StoreDep,
) -> Response:
    """An output's piano roll (PNG) or signed credential (JSON); its MIDI or audio for review by a rights
    holder it is attributed to, or the operator (a creator plays through /stream, recording each play with
    POST /plays, and downloads through /download, which applies its plan and records the download)."""
    if kind not in VIEWABLE and principal.role is Role.CREATOR:
        msg = f"kind: {kind} leaves the platform only by /stream (to play) or /download (within the plan)"
        raise Forbidden(msg)
    output = services.output_for(store, principal, output_id)
    return _file(store, output, kind)


def _bytes(store: StoreDep, output: outputs.Output, kind: str) -> tuple[bytes, str]:
    """An output's file and its name; a file the media store lacks is named by output, never by path."""
    info = output.files.get(kind)
    if info is None:
        raise NotFound(f"output {output.output_id!r}: has no {kind} file")
    try:
        return store.media.read_verified(info["sha256"]), str(info["name"])
    except NotFound:
        raise NotFound(f"output {output.output_id!r}: its {kind} file is missing from the media store") from None


def _file(store: StoreDep, output: outputs.Output, kind: str) -> Response:
    data, name = _bytes(store, output, kind)
    headers = {"Content-Disposition": f'inline; filename="{name}"'}
    return Response(data, media_type=MEDIA_TYPES.get(kind, "application/octet-stream"), headers=headers)


@router.get(
    "/outputs/{output_id}/stream",
    response_class=Response,
    responses={
        200: {"content": {"audio/wav": {}}},
        206: {"description": "The byte range asked for (``Range: bytes=first-last``)."},
        416: {"description": "A range outside the file."},
    },
)
def stream(
    output_id: str,
    principal: Caller,
    store: StoreDep,
    range_header: Annotated[str | None, Header(alias="Range", description="bytes=first-last, to seek.")] = None,
) -> Response:
    """An output's audio, to play in the platform, for whoever may see the output (never a download:
    no attachment, on every plan). Reading it records nothing: a player records each play with
    ``POST /v1/outputs/{output_id}/plays`` when playback starts. Supports ``Range`` (206, or 416)."""
    output = services.output_for(store, principal, output_id)
    data, name = _bytes(store, output, "audio")
    return ranged(data, range_header, MEDIA_TYPES["audio"], {"Content-Disposition": f'inline; filename="{name}"'})


@router.post("/outputs/{output_id}/plays", status_code=201, response_model=PlayOut)
def play(
    request: Request,
    output_id: str,
    principal: Caller,
    store: StoreDep,
    idempotency_key: Annotated[str | None, Header(max_length=96)] = None,
) -> PlayOut:
    """Record a play that started in the platform's player (its creator; a usage event). The play id in
    ``Idempotency-Key`` counts once, however often the request is repeated."""
    services.require(principal, Role.CREATOR)
    output = services.output_for(store, principal, output_id)
    creator = outputs.get_creator(store, principal.party_id)
    new = outputs.record_event(store, "play", output, creator, at=store.clock(), event_id=idempotency_key)
    record(request, principal, "output.play", "output", output_id, recorded=new)
    return PlayOut(output_id=output_id, recorded=new)


@router.post(
    "/outputs/{output_id}/download",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}, "audio/midi": {}, "audio/wav": {}}}},
)
def download(
    request: Request,
    output_id: str,
    principal: Caller,
    store: StoreDep,
    settings: SettingsDep,
    kind: Annotated[Literal["all", "midi", "audio"], Query(description="all (a zip), midi or audio.")] = "all",
) -> Response:
    """Download an output (its creator, within the plan's monthly allowance; recorded as a usage event)."""
    services.require(principal, Role.CREATOR)
    services.output_for(store, principal, output_id)
    output, _ = outputs.authorise_download(store, settings, output_id, principal.party_id)
    record(request, principal, "output.download", "output", output_id, kind=kind)
    if kind != "all":
        return _file(store, output, kind)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in sorted(output.files.values(), key=lambda i: i["name"]):
            zf.writestr(info["name"], store.media.read_verified(info["sha256"]))
    headers = {"Content-Disposition": f'attachment; filename="{output_id}.zip"'}
    return Response(buf.getvalue(), media_type="application/zip", headers=headers)


@router.get("/usage", response_model=Page[UsageEventOut])
def usage(principal: Caller, store: StoreDep, limit: Limit = 50, cursor: Cursor = None) -> Page[UsageEventOut]:
    """Usage events: generations, plays, downloads (a creator: its own)."""
    rows = services.visible_usage(store, principal)
    page, nxt = paginate(rows, lambda e: f"{e['at'].isoformat()}|{e['event_id']}", limit, cursor)
    return Page[UsageEventOut](items=[UsageEventOut.model_validate(e) for e in page], next_cursor=nxt)


@router.post("/credentials/verify", response_model=CredentialCheckOut)
def verify_credential(
    principal: Caller,
    file: Annotated[UploadFile, File(description="An output's audio (C2PA) or its .credential.json sidecar.")],
    public_key: Annotated[str | None, Query(max_length=256, description="Pin the operator's public key (hex).")] = None,
    sidecar: Annotated[
        UploadFile | None,
        File(description="With audio as file: its .credential.json sidecar, to compare with the embedded credential."),
    ] = None,
) -> CredentialCheckOut:
    """Check a content credential, in either form, as anyone given the file can; given the audio and its
    sidecar, also compare the two field by field (the first differing field is named)."""
    from accord.provenance.verify import verify_file

    name = Path(file.filename or "upload").name or "upload"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "file" / name
        path.parent.mkdir()
        path.write_bytes(file.file.read())
        sidecar_path = None
        if sidecar is not None:
            sidecar_path = Path(tmp) / "sidecar" / (Path(sidecar.filename or "sidecar.json").name or "sidecar.json")
            sidecar_path.parent.mkdir()
            sidecar_path.write_bytes(sidecar.file.read())
        check = verify_file(path, public_key_hex=public_key, sidecar=sidecar_path)
    return CredentialCheckOut(
        valid=check.valid,
        form=check.form,
        credential=check.credential,
        problems=list(check.problems),
        notes=list(check.notes),
    )
