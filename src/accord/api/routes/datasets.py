"""Manifests, inclusion proofs, models with their cards, approvals and taint status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from accord.api import services
from accord.api.auth import Role
from accord.api.deps import Caller, SettingsDep, StoreDep, instant_or_now, record
from accord.api.jobs import JobQueue
from accord.api.pagination import Cursor, Limit, paginate
from accord.api.routes.rights import model_status_out
from accord.api.schemas import (
    ApprovalIn,
    ApprovalOut,
    EvaluationIn,
    JobOut,
    ManifestBuildIn,
    ManifestBuilt,
    ManifestOut,
    ModelDetail,
    ModelOut,
    ModelRegisterIn,
    Page,
    ProofVerifyIn,
    RetrainingIn,
    TrainingIn,
    VerdictOut,
)
from accord.datasets import repository, service
from accord.datasets.manifest import parse_filters
from accord.datasets.proofs import verify_proof
from accord.datasets.repository import ManifestRecord
from accord.signing import load_operator_key, parse_public_key

router = APIRouter(tags=["datasets"])


def _manifest(r: ManifestRecord) -> ManifestOut:
    return ManifestOut(
        root=r.root,
        use=r.use,
        territory=r.territory,
        as_of=r.as_of,
        items=r.tree_size,
        excluded=r.excluded,
        built_at=r.built_at,
        built_by=r.built_by,
        signature=r.signature,
    )


def _model(v: services.ModelView, detail: bool = False) -> ModelOut:
    m = v.record
    base: dict[str, Any] = {
        "model_id": m.model_id,
        "manifest_root": m.manifest_root,
        "created_at": m.created_at,
        "registered_by": m.registered_by,
        "status": model_status_out(v.status),
    }
    return ModelDetail(**base, card=m.card) if detail else ModelOut(**base)


@router.get("/manifests", response_model=Page[ManifestOut])
def list_manifests(principal: Caller, store: StoreDep, limit: Limit = 50, cursor: Cursor = None) -> Page[ManifestOut]:
    """Training-set manifests (a rights holder: those holding its recordings)."""
    page, nxt = paginate(services.visible_manifests(store, principal), lambda r: r.root, limit, cursor)
    return Page[ManifestOut](items=[_manifest(r) for r in page], next_cursor=nxt)


@router.post("/manifests", status_code=201, response_model=ManifestBuilt)
def build_manifest(
    request: Request, body: ManifestBuildIn, principal: Caller, store: StoreDep, settings: SettingsDep
) -> ManifestBuilt:
    """Build, sign and store the training set the licences allow at one instant (operator)."""
    services.require(principal, Role.OPERATOR)
    _, rec, created = service.build(
        store,
        load_operator_key(settings.home),
        use=body.use,
        as_of=instant_or_now(store, body.as_of, "as_of"),
        territory=body.territory,
        filters=parse_filters(body.filters),
        actor=services.actor(principal),
    )
    record(request, principal, "manifest.build", "manifest", rec.root, new=created)
    return ManifestBuilt(**_manifest(rec).model_dump(), new=created)


@router.get("/manifests/{root}", response_model=ManifestOut)
def get_manifest(root: str, principal: Caller, store: StoreDep) -> ManifestOut:
    """One manifest: what it was built for, its size and the operator's signature over its root."""
    return _manifest(services.manifest_for(store, principal, root)[1])


@router.get("/manifests/{root}/summary", response_model=dict[str, Any])
def manifest_summary(root: str, principal: Caller, store: StoreDep) -> dict[str, Any]:
    """The public summary of what a training set holds (names no licensor that asked not to be named)."""
    from accord.datasets.summary import summarize

    manifest, _ = services.manifest_for(store, principal, root)
    summary: dict[str, Any] = summarize(manifest, store.snapshot(manifest.header.as_of))
    return summary


@router.get("/manifests/{root}/diff/{other}", response_model=dict[str, Any])
def manifest_diff(root: str, other: str, principal: Caller, store: StoreDep) -> dict[str, Any]:
    """Items added or removed between two manifests, and why (operator)."""
    from accord.datasets.diff import diff_manifests
    from accord.datasets.disclosure import Undisclosed

    services.require(principal, Role.OPERATOR)
    a, _ = services.manifest_for(store, principal, root)
    b, _ = services.manifest_for(store, principal, other)
    diff: dict[str, Any] = diff_manifests(a, b, undisclosed=Undisclosed.of(store.snapshot())).to_dict()
    return diff


@router.get("/manifests/{root}/proofs", response_model=Page[dict[str, Any]])
def list_proofs(
    root: str,
    principal: Caller,
    store: StoreDep,
    settings: SettingsDep,
    party: Annotated[str | None, Query(max_length=64, description="Operator only: whose recordings.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[dict[str, Any]]:
    """Inclusion or non-inclusion proofs for each of a rights holder's recordings (its own only)."""
    proofs = services.proofs_for(store, principal, root, party, load_operator_key(settings.home))
    page, nxt = paginate(proofs, lambda p: str(p.get("isrc", "")), limit, cursor)
    return Page[dict[str, Any]](items=page, next_cursor=nxt)


@router.get("/manifests/{root}/proofs/{isrc}", response_model=dict[str, Any])
def get_proof(root: str, isrc: str, principal: Caller, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """One recording's proof, checked offline by the root and the operator's public key (``accord dataset verify``)."""
    return services.proof_for(store, principal, root, isrc, load_operator_key(settings.home))


@router.post("/proofs/verify", response_model=VerdictOut)
def verify(body: ProofVerifyIn, principal: Caller) -> VerdictOut:
    """Check a proof against a root and the operator's public key (required: the key in the proof is never trusted)."""
    pinned = parse_public_key(body.public_key)
    return VerdictOut.model_validate(verify_proof(body.proof, body.root, public_key_hex=pinned).to_dict())


@router.get("/models", response_model=Page[ModelOut])
def list_models(principal: Caller, store: StoreDep, limit: Limit = 50, cursor: Cursor = None) -> Page[ModelOut]:
    """Models and whether each may serve now (a rights holder: those trained on its catalog)."""
    views = services.visible_models(store, principal, store.clock())
    page, nxt = paginate(views, lambda v: v.record.model_id, limit, cursor)
    return Page[ModelOut](items=[_model(v) for v in page], next_cursor=nxt)


@router.get("/models/{model_id}", response_model=ModelDetail)
def get_model(model_id: str, principal: Caller, store: StoreDep) -> ModelOut:
    """One model: its card (hyperparameters, data, losses) and its status."""
    return _model(services.model_for(store, principal, model_id, store.clock()), detail=True)


@router.post("/models", status_code=201, response_model=ModelDetail)
def register_model(request: Request, body: ModelRegisterIn, principal: Caller, store: StoreDep) -> ModelOut:
    """Record a model version and the manifest it was trained on (operator)."""
    services.require(principal, Role.OPERATOR)
    model, created = repository.register_model(
        store, body.model_id, body.manifest, card=body.card, actor=services.actor(principal)
    )
    record(request, principal, "model.register", "model", model.model_id, new=created)
    return _model(services.model_for(store, principal, model.model_id, store.clock()), detail=True)


@router.post("/models/{model_id}/approvals", status_code=201, response_model=ApprovalOut)
def approve_model(request: Request, model_id: str, body: ApprovalIn, principal: Caller, store: StoreDep) -> ApprovalOut:
    """A licensor approves (or refuses) one model version trained on its catalog."""
    a = services.approve_model(store, principal, model_id, body.licensor, body.approve, body.note)
    record(request, principal, "model.approval", "model", model_id, decision=a.decision, licensor=a.licensor)
    return ApprovalOut(model_id=a.model_id, licensor=a.licensor, decision=a.decision, at=a.at, by=a.by, note=a.note)


@router.get("/taint", response_model=dict[str, Any])
def taint_audit(
    principal: Caller,
    store: StoreDep,
    at: Annotated[str | None, Query(max_length=40, description="Audit as of (default: now).")] = None,
) -> dict[str, Any]:
    """Manifests and models holding items no longer eligible; models awaiting approval (operator)."""
    services.require(principal, Role.OPERATOR)
    report: dict[str, Any] = service.audit(store, instant_or_now(store, at, "at")).to_dict()
    return report


@router.post("/trainings", status_code=202, response_model=JobOut)
def submit_training(request: Request, body: TrainingIn, principal: Caller, store: StoreDep) -> JobOut:
    """Train a model on a manifest, as a job (operator); the result names the registered model."""
    services.require(principal, Role.OPERATOR)
    record_ = repository.resolve_root(store, body.manifest)
    params = body.model_dump() | {"manifest": record_.root, "actor": services.actor(principal)}
    runner: JobQueue = request.app.state.jobs
    job = runner.submit("training", principal.party_id, params)
    record(request, principal, "training.submit", "job", job.job_id, manifest=record_.root)
    return JobOut.model_validate(job.__dict__)


@router.post("/models/{model_id}/evaluations", status_code=202, response_model=JobOut)
def submit_evaluation(
    request: Request, model_id: str, body: EvaluationIn, principal: Caller, store: StoreDep
) -> JobOut:
    """Evaluate a model against held-out pieces with random and n-gram baselines, as a job (operator)."""
    services.require(principal, Role.OPERATOR)
    model = services.model_for(store, principal, model_id, store.clock())
    runner: JobQueue = request.app.state.jobs
    job = runner.submit("evaluation", principal.party_id, body.model_dump() | {"model_id": model.record.model_id})
    record(request, principal, "evaluation.submit", "job", job.job_id, model_id=model_id)
    return JobOut.model_validate(job.__dict__)


@router.post("/models/{model_id}/retrainings", status_code=202, response_model=JobOut)
def submit_retraining(
    request: Request, model_id: str, body: RetrainingIn, principal: Caller, store: StoreDep
) -> JobOut:
    """Retrain a model on the licences as they stand now, as a job (operator): manifest, diff, training with the
    same config and seed, memorisation audit, registration, approval requests (``accord model retrain``)."""
    services.require(principal, Role.OPERATOR)
    model = services.model_for(store, principal, model_id, store.clock())
    params = body.model_dump() | {"model_id": model.record.model_id, "actor": services.actor(principal)}
    runner: JobQueue = request.app.state.jobs
    job = runner.submit("retraining", principal.party_id, params)
    record(request, principal, "retraining.submit", "job", job.job_id, model_id=model_id)
    return JobOut.model_validate(job.__dict__)
