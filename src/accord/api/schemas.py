"""The API's request and response bodies (Pydantic, so that /openapi.json describes every one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

ID = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``?cursor=`` for the next (``null``: the last page)."""

    items: list[T]
    next_cursor: str | None


class ProblemOut(BaseModel):
    code: str
    file: str
    location: str
    field: str
    value: str
    expected: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code: validation, not_found, unauthenticated ...")
    message: str = Field(description="What is wrong, naming the field, the value and what was expected.")
    field: str | None = Field(description="The field at fault, when one is.")
    problems: list[ProblemOut] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- keys and audit


class PrincipalOut(BaseModel):
    key_id: str
    role: str
    party_id: str


class ApiKeyIn(Strict):
    role: Literal["rights_holder", "creator", "operator"]
    party_id: str = ID
    label: str = Field(default="", max_length=200)


class ApiKeyOut(BaseModel):
    key_id: str
    role: str
    party_id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="Shown only in this response; only its sha256 is stored.")


class AuditEventOut(BaseModel):
    seq: int
    at: datetime
    key_id: str
    role: str
    party_id: str
    action: str
    object_type: str
    object_id: str
    request_id: str
    detail: dict[str, Any]


# ---------------------------------------------------------------- catalog


class ShareOut(BaseModel):
    party_id: str
    ppm: int


class ReasonOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    message: str


class DecisionOut(BaseModel):
    isrc: str
    use: str
    at: str
    territory: str
    eligible: bool
    relied_on: list[str]
    reasons: list[dict[str, str]]


class RecordingOut(BaseModel):
    isrc: str
    title: str
    artists: list[str]
    genre: str
    duration_ms: int
    works: list[str]
    master_shares: list[ShareOut]
    eligibility: dict[str, DecisionOut] = Field(description="Per use (train, generate, remix): eligible, and why not.")


class CatalogSummaryOut(BaseModel):
    recordings: int
    agreements: int
    optouts: int
    recordings_by_master_owner: dict[str, int]
    recordings_by_genre: dict[str, int]


class MediaOut(BaseModel):
    sha256: str
    kind: str
    size: int


class VersionOut(BaseModel):
    version: int
    recorded_from: datetime
    recorded_to: datetime | None
    recorded_by: str


class RecordingDetail(RecordingOut):
    media: list[MediaOut]
    history: list[VersionOut]


class DeliveryOut(BaseModel):
    delivery_id: str
    sender: str
    content_sha256: str
    received_at: datetime
    format: str
    summary: dict[str, Any]


class ImportOut(BaseModel):
    status: str
    delivery_id: str
    sender: str
    content_sha256: str
    already_imported: bool
    added: dict[str, int]
    changed: dict[str, int]
    unchanged: dict[str, int]
    media_added: int
    stage_seconds: dict[str, float]


# ---------------------------------------------------------------- agreements and opt-outs


class AgreementIn(Strict):
    """A licence, in the delivery format (docs/delivery-format.md)."""

    id: str = ID
    licensor: str = ID
    side: str = Field(max_length=16, description="master or publishing")
    uses: list[str] = Field(max_length=8, description="train, generate, remix")
    territory: dict[str, Any] = Field(description='{"worldwide": true, "exclude": [...]} or {"include": [...]}')
    start: str = Field(max_length=40)
    end: str | None = Field(default=None, max_length=40)
    coverage: dict[str, Any] = Field(description='{"catalog": true}, {"recordings": [...]} or {"works": [...]}')
    terms: dict[str, Any] = Field(default_factory=dict)
    model_scope: str = Field(default="any", max_length=32)


class AgreementOut(BaseModel):
    id: str
    licensor: str
    side: str
    uses: list[str]
    territory: dict[str, Any]
    start: str | None
    end: str | None
    coverage: dict[str, Any]
    terms: dict[str, Any]
    model_scope: str


class AgreementEndIn(Strict):
    at: str = Field(max_length=40, description="The instant it ends (exclusive), ISO 8601.")


class OptOutIn(Strict):
    id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    party: str = ID
    scope: str = Field(max_length=16, description="recording, work or catalog")
    target: str | None = Field(default=None, max_length=64, description="ISRC or work id (not for catalog)")
    uses: list[str] = Field(min_length=1, max_length=8, description="uses withdrawn, or ['all']")
    effective: str = Field(max_length=40)


class OptOutOut(BaseModel):
    id: str
    party: str
    scope: str
    target: str
    uses: list[str]
    effective: datetime


class ModelStatusOut(BaseModel):
    model_id: str
    manifest_root: str
    blocked_uses: list[str]
    reasons: list[str]
    pending_approvals: list[str]
    refused_by: list[str]


class OptOutCreated(BaseModel):
    optout: OptOutOut
    flagged_models: list[ModelStatusOut] = Field(description="Models that may no longer serve some use because of it.")


# ---------------------------------------------------------------- manifests and models


class ManifestOut(BaseModel):
    root: str
    use: str
    territory: str
    as_of: datetime
    items: int
    excluded: int
    built_at: datetime
    built_by: str
    signature: dict[str, str]


class ManifestBuildIn(Strict):
    use: str = Field(default="train", max_length=16)
    as_of: str | None = Field(default=None, max_length=40)
    territory: str = Field(default="US", max_length=2)
    filters: list[str] = Field(default_factory=list, max_length=20, description="KEY=V[,V]: genre, licensor ...")


class ManifestBuilt(ManifestOut):
    new: bool


class ProofVerifyIn(Strict):
    proof: dict[str, Any]
    root: str = Field(max_length=128)
    public_key: str = Field(min_length=1, max_length=256, description="The operator's Ed25519 public key: required.")


class VerdictOut(BaseModel):
    valid: bool
    kind: str
    isrc: str
    checks: list[dict[str, Any]]


class ModelOut(BaseModel):
    model_id: str
    manifest_root: str
    created_at: datetime
    registered_by: str
    status: ModelStatusOut


class ModelDetail(ModelOut):
    card: dict[str, Any]


class ModelRegisterIn(Strict):
    model_id: str = Field(min_length=1, max_length=96, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    manifest: str = Field(min_length=8, max_length=64)
    card: dict[str, Any] = Field(default_factory=dict)


class ApprovalIn(Strict):
    approve: bool = True
    note: str = Field(default="", max_length=1000)
    licensor: str | None = Field(default=None, max_length=64, description="Operator only: the licensor deciding.")


class ApprovalOut(BaseModel):
    model_id: str
    licensor: str
    decision: str
    at: datetime
    by: str
    note: str


# ---------------------------------------------------------------- studio


class CreatorIn(Strict):
    creator_id: str = ID
    plan: str = Field(default="free", max_length=32)
    territory: str = Field(default="US", max_length=2)


class CreatorOut(BaseModel):
    creator_id: str
    plan: str
    territory: str


class GenerationIn(Strict):
    model_id: str = Field(min_length=1, max_length=96)
    style: str = Field(min_length=1, max_length=64)
    key: str | None = Field(default=None, max_length=32, description='e.g. "D major"')
    tempo_bpm: int | None = Field(default=None, ge=20, le=300)
    bars: int = Field(default=16, ge=1, le=128)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    from_isrc: str | None = Field(default=None, max_length=15, description="Remix this recording (needs a licence).")
    prime_bars: int = Field(default=4, ge=1, le=32)
    temperature: float = Field(default=0.85, gt=0.0, le=5.0)
    meter: str | None = Field(default=None, max_length=8, description='metre of every bar, e.g. "6/8"')
    creator_id: str | None = Field(default=None, max_length=64, description="Operator only: generate for a creator.")


class JobOut(BaseModel):
    job_id: str
    kind: str
    owner: str
    status: Literal["queued", "running", "done", "failed"]
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int = Field(0, description="How many times a worker has taken it up (a crashed worker's job is retried).")


class OutputOut(BaseModel):
    output_id: str
    model_id: str
    creator_id: str
    created_at: datetime
    prompt: dict[str, Any]
    seed: int
    files: list[str]


class OutputDetail(OutputOut):
    credential: dict[str, Any]


class UsageEventOut(BaseModel):
    event_id: str
    kind: str
    at: datetime
    creator_id: str
    output_id: str
    model_id: str
    territory: str


class PlayOut(BaseModel):
    output_id: str
    recorded: bool = Field(description="False when this event id was recorded before (idempotent).")


class CredentialCheckOut(BaseModel):
    valid: bool
    form: str
    credential: dict[str, Any] | None
    problems: list[str]
    notes: list[str]


class TrainingIn(Strict):
    manifest: str = Field(min_length=8, max_length=64, description="Manifest root (or 8+ hex digits).")
    preset: Literal["tiny", "demo", "small", "base"] = "demo"
    minutes: float | None = Field(default=None, gt=0, le=600)
    steps: int | None = Field(default=None, ge=1, le=1_000_000)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    model_id: str | None = Field(default=None, min_length=1, max_length=96, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


class RetrainingIn(Strict):
    new_model_id: str | None = Field(
        default=None, min_length=1, max_length=96, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
    )
    force: bool = Field(default=False, description="Retrain even if the training set has not changed.")
    works: int = Field(default=64, ge=1, le=100_000, description="Memorisation audit: training works prompted.")
    control: int = Field(default=32, ge=0, le=100_000, description="Memorisation audit: unseen works prompted.")


class EvaluationIn(Strict):
    pieces: int = Field(default=24, ge=1, le=256)
    temperature: float = Field(default=0.85, gt=0.0, le=5.0)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
