"""The replication guard and attribution over HTTP: check any file, attribute any MIDI, index a model.

* ``POST /v1/guard/checks``: the guard's verdict on an uploaded MIDI or WAV/FLAC file
  (``accord guard check``), for any authenticated role.
* ``POST /v1/attributions``: which items of a model's training manifest shaped an uploaded MIDI
  (``accord attribute``), for whoever may see that model.
* ``POST /v1/models/{model_id}/attribution-index``: build a model's attribution indexes as a job
  (``accord attribution index``), operator only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from accord import visibility
from accord.api import services
from accord.api.auth import Role
from accord.api.deps import Caller, SettingsDep, StoreDep, record
from accord.api.jobs import JobQueue
from accord.api.schemas import JobOut
from accord.api.schemas_attribution import AttributionIndexIn, AttributionOut, GuardCheckOut
from accord.attribution.disclosure import operator_commitment_secret
from accord.errors import NotFound, ValidationError

router = APIRouter(tags=["attribution"])

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
"""The largest file checked or attributed (a few minutes of 16-bit stereo WAV; MIDI is far smaller)."""
INDEX_JOB = "attribution_index"  # run by a worker: accord.jobs.kinds.run_attribution_index


@contextmanager
def _model_files(model_id: str) -> Iterator[None]:
    """A model whose files (checkpoint, index, manifest media) are missing is a 404 that names the model,
    never a path on the server (where the files would be is the operator's business, not the caller's)."""
    try:
        yield
    except NotFound:
        msg = f"model {model_id!r}: its trained files are not available here (train it first: accord train)"
        raise NotFound(msg) from None


def _read(file: UploadFile) -> tuple[str, bytes]:
    """The upload's base name and bytes (refused above :data:`MAX_UPLOAD_BYTES`)."""
    name = Path(file.filename or "upload").name or "upload"
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        msg = f"file: {name!r} is larger than {MAX_UPLOAD_BYTES} bytes; expected a MIDI or WAV/FLAC file up to that"
        raise ValidationError(msg, field="file", value=name)
    return name, data


def upload_kind(data: bytes, name: str) -> str:
    """``midi`` or ``audio`` by the file's first bytes, as ``accord guard check`` tells them apart."""
    if data[:4] == b"MThd":
        return "midi"
    if data[:4] in (b"RIFF", b"fLaC"):
        return "audio"
    msg = f"file: {name} is neither a Standard MIDI File nor WAV/FLAC audio (starts {data[:4]!r})"
    raise ValidationError(msg, field="file", value=name)


@router.post("/guard/checks", response_model=GuardCheckOut)
def guard_check(
    request: Request,
    principal: Caller,
    store: StoreDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="A Standard MIDI File, or WAV/FLAC audio.")],
) -> GuardCheckOut:
    """Check a file against every catalog recording: ``blocked`` when any check reaches its threshold.

    Any authenticated role may check (a label checking a suspicious track, a creator its own
    piece). The evidence is the same as ``accord guard check`` prints: for each closest catalog
    recording its ISRC, title, score and the bars (or seconds) that match. The guard compares with
    the whole registry, so titles of recordings the caller has no standing on can appear: that is
    deliberate, since what a piece copies is the point of the check and catalog titles and ISRCs
    are public identifiers (no shares, parties or licence terms are shown) — except a recording of
    a party that asked not to be named: its match keeps its check, score and threshold, and shows
    a commitment in place of its ISRC and title (the operator sees it in full).

    MIDI gets the symbolic check (:func:`accord.attribution.guard.guard_output`); audio gets the
    audio fingerprint check and the symbolic check on the notes transcribed from it
    (:func:`accord.attribution.guard.check.check_audio`; off with ``ACCORD_GUARD_TRANSCRIBE=false``).
    Audited as ``guard.check`` with the file's SHA-256.
    """
    from accord.attribution.guard import Guard, guard_output

    name, data = _read(file)
    kind = upload_kind(data, name)
    if kind == "midi":
        verdict = guard_output(store, settings, midi=data, audio=None)
    else:
        from accord.attribution.guard.check import check_audio

        guard = Guard.for_store(store, settings, audio=True)
        verdict = check_audio(guard, data, transcribe=settings.guard_transcribe)
    digest = hashlib.sha256(data).hexdigest()
    record(request, principal, "guard.check", "upload", digest, file=name, kind=kind, status=verdict.status)
    shown = visibility.upload_guard(
        principal,
        verdict.to_dict(),
        services.current_catalog(store),
        secret=operator_commitment_secret(settings.home),
        sha256=digest,
    )
    return GuardCheckOut.model_validate({"file": name, "kind": kind, "sha256": digest, **shown})


@router.post("/attributions", response_model=AttributionOut, response_model_exclude_none=True)
def attribute(
    request: Request,
    principal: Caller,
    store: StoreDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="A Standard MIDI File (an output or any piece).")],
    model_id: Annotated[str, Form(min_length=1, max_length=96, description="The model whose manifest is searched.")],
    method: Annotated[
        str | None, Form(max_length=32, description="trak, tracin, gradsim or embedding (default: settings).")
    ] = None,
    style: Annotated[str | None, Form(max_length=32, description="Style to read the piece under.")] = None,
) -> AttributionOut:
    """Attribute a MIDI file to the items of a model's training manifest (``accord attribute``).

    The operator, or a creator or rights holder who may see the model (a rights holder: a model
    trained on its catalog). The operator gets the attribution contract in full, with the method's
    details (scores, thresholds, timings); everyone else its public form, as an output's public
    content credential carries it (:func:`accord.visibility.shown_attribution`): entries that would
    name a party that asked not to be named are commitments (keyed to this upload), and such a party
    sees its own entries named. The model's index is built on first use (index it ahead with
    ``POST /v1/models/{model_id}/attribution-index``). Audited as ``attribution.compute``.
    """
    from accord.attribution.service import attribute_midi

    services.require(principal, Role.OPERATOR, Role.CREATOR, Role.RIGHTS_HOLDER)
    model = services.model_for(store, principal, model_id, store.clock())
    name, data = _read(file)
    if upload_kind(data, name) != "midi":
        msg = f"file: {name} is audio; attribution reads a Standard MIDI File"
        raise ValidationError(msg, field="file", value=name)
    with _model_files(model.record.model_id):
        result = attribute_midi(
            store, settings, model.record.model_id, data, method=method or None, style=style or None, label=name
        )
    digest = hashlib.sha256(data).hexdigest()
    contract = visibility.upload_attribution(
        principal,
        result.to_credential(),
        services.current_catalog(store),
        secret=operator_commitment_secret(settings.home),
        sha256=digest,
    )
    record(
        request,
        principal,
        "attribution.compute",
        "upload",
        digest,
        model_id=model.record.model_id,
        method=contract["method"],
        reliable=contract["reliable"],
    )
    details = dict(result.details) if principal.is_operator else None
    return AttributionOut.model_validate(
        {"file": name, "model_id": model.record.model_id, "attribution": contract, "details": details}
    )


@router.post("/models/{model_id}/attribution-index", status_code=202, response_model=JobOut)
def submit_attribution_index(
    request: Request, model_id: str, body: AttributionIndexIn, principal: Caller, store: StoreDep
) -> JobOut:
    """Build (or find) a model's attribution indexes over its manifest, as a job to poll (operator).

    Indexing computes per-item features of every manifest recording (gradients for trak, tracin
    and gradsim; embeddings) and stores them in the model's folder; later attributions only
    score their own query. Audited as ``attribution.index.submit``.
    """
    from accord.attribution.methods import get_method, method_names

    services.require(principal, Role.OPERATOR)
    model = services.model_for(store, principal, model_id, store.clock())
    names = sorted(set(body.methods)) if body.methods else method_names()
    for name in names:
        get_method(name)  # an unknown method is refused now rather than in the worker
    runner: JobQueue = request.app.state.jobs
    job = runner.submit(INDEX_JOB, principal.party_id, {"model_id": model.record.model_id, "methods": names})
    record(request, principal, "attribution.index.submit", "job", job.job_id, model_id=model_id, methods=names)
    return JobOut.model_validate(job.__dict__)
