"""SQL tables of the registry (SQLAlchemy 2), the same on SQLite and PostgreSQL.

History is kept by *system versioning*: every versioned table is keyed by
``(id, version)`` and carries ``recorded_from`` / ``recorded_to`` (UTC). A change
closes the current version (sets ``recorded_to``) and inserts the next one, so what the
registry said at any instant ``t`` is the rows with
``recorded_from <= t < coalesce(recorded_to, ∞)``. Child rows (shares, media) belong
to one version of their parent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes stored as naive UTC (identical on SQLite and PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = f"naive datetime {value.isoformat()} given to the store; expected timezone-aware"
            raise ValueError(msg)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite may hand back text in raw queries
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Versioned:
    """Columns every system-versioned table has."""

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    recorded_from: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    recorded_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivery_pk: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(64), nullable=False, default="")


class DeliveryRow(Base):
    """One imported delivery (a delivery that changed nothing is not recorded)."""

    __tablename__ = "deliveries"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(128), nullable=False)
    sender: Mapped[str] = mapped_column(String(64), nullable=False)
    content_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    format: Mapped[str] = mapped_column(String(16), nullable=False)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    received_by: Mapped[str] = mapped_column(String(64), nullable=False, default="")


class SourceRow(Versioned, Base):
    __tablename__ = "sources"
    source_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    origin: Mapped[str] = mapped_column(Text, nullable=False, default="")
    terms: Mapped[str] = mapped_column(Text, nullable=False, default="")
    public_domain: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class PartyRow(Versioned, Base):
    __tablename__ = "parties"
    party_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    ipi: Mapped[str | None] = mapped_column(String(16))
    isni: Mapped[str | None] = mapped_column(String(16))
    dpid: Mapped[str | None] = mapped_column(String(18))
    territory: Mapped[str | None] = mapped_column(String(2))
    disclose: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=true())


class WorkRow(Versioned, Base):
    __tablename__ = "works"
    work_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    iswc: Mapped[str | None] = mapped_column(String(11), index=True)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    writers: Mapped[list[str]] = mapped_column(JSON, nullable=False)


class WorkShareRow(Base):
    __tablename__ = "work_shares"
    work_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    share_ppm: Mapped[int] = mapped_column(Integer, nullable=False)
    __table_args__ = (
        ForeignKeyConstraint(["work_id", "version"], ["works.work_id", "works.version"]),
        Index("ix_work_shares_party", "party_id"),
    )


class RecordingRow(Versioned, Base):
    __tablename__ = "recordings"
    isrc: Mapped[str] = mapped_column(String(12), primary_key=True)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    artists: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    duration_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    genre: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    works: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    source_id: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    extra: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False)


class RecordingShareRow(Base):
    __tablename__ = "recording_shares"
    isrc: Mapped[str] = mapped_column(String(12), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    share_ppm: Mapped[int] = mapped_column(Integer, nullable=False)
    __table_args__ = (
        ForeignKeyConstraint(["isrc", "version"], ["recordings.isrc", "recordings.version"]),
        Index("ix_recording_shares_party", "party_id"),
    )


class RecordingMediaRow(Base):
    __tablename__ = "recording_media"
    isrc: Mapped[str] = mapped_column(String(12), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    filename: Mapped[str] = mapped_column(Text, nullable=False, default="")
    __table_args__ = (ForeignKeyConstraint(["isrc", "version"], ["recordings.isrc", "recordings.version"]),)


class AgreementRow(Versioned, Base):
    __tablename__ = "agreements"
    agreement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    licensor: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    side: Mapped[str] = mapped_column(String(16), nullable=False)
    uses: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    worldwide: Mapped[bool] = mapped_column(Boolean, nullable=False)
    territories_include: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    territories_exclude: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    coverage_catalog: Mapped[bool] = mapped_column(Boolean, nullable=False)
    coverage_recordings: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    coverage_works: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    pool_share_ppm: Mapped[int] = mapped_column(Integer, nullable=False)
    master_split_ppm: Mapped[int] = mapped_column(Integer, nullable=False)
    training_pool_method: Mapped[str] = mapped_column(String(32), nullable=False)
    minimum_guarantee_micros: Mapped[int | None] = mapped_column(BigInteger)
    minimum_guarantee_currency: Mapped[str | None] = mapped_column(String(3))
    advance_micros: Mapped[int | None] = mapped_column(BigInteger)
    advance_currency: Mapped[str | None] = mapped_column(String(3))
    model_scope: Mapped[str] = mapped_column(String(32), nullable=False)
    # the minimum guarantee's term and settlement (migration 0007)
    guarantee_term: Mapped[str] = mapped_column(String(16), nullable=False, default="monthly")
    guarantee_settlement: Mapped[str] = mapped_column(String(16), nullable=False, default="term_end")


class OptOutRow(Versioned, Base):
    __tablename__ = "optouts"
    optout_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    party_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    scope: Mapped[str] = mapped_column(String(16), nullable=False)
    target: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    uses: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    effective: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class AuditEventRow(Base):
    """Every change to rights: who, when, what. Kept forever, never edited."""

    __tablename__ = "audit_events"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    subject: Mapped[str] = mapped_column(String(128), nullable=False)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class ManifestRow(Base):
    """A training-set manifest, by its Merkle root; its file lives in the content-addressed store."""

    __tablename__ = "manifests"
    root: Mapped[str] = mapped_column(String(64), primary_key=True)
    use: Mapped[str] = mapped_column(String(16), nullable=False)
    territory: Mapped[str] = mapped_column(String(2), nullable=False)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    tree_size: Mapped[int] = mapped_column(Integer, nullable=False)
    excluded: Mapped[int] = mapped_column(Integer, nullable=False)
    file_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    signature: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    built_by: Mapped[str] = mapped_column(String(64), nullable=False)


class ModelRow(Base):
    """A trained model version and the manifest it was trained on."""

    __tablename__ = "models"
    model_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    manifest_root: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    registered_by: Mapped[str] = mapped_column(String(64), nullable=False)
    card: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class ModelApprovalRow(Base):
    """A licensor's approval or refusal of one model version (the latest per licensor counts)."""

    __tablename__ = "model_approvals"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(96), nullable=False, index=True)
    licensor: Mapped[str] = mapped_column(String(64), nullable=False)
    decision: Mapped[str] = mapped_column(String(16), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    by: Mapped[str] = mapped_column(String(64), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")


class CreatorRow(Base):
    """An end user who generates music, on a plan that limits how outputs leave the platform."""

    __tablename__ = "creators"
    creator_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    plan: Mapped[str] = mapped_column(String(32), nullable=False)
    territory: Mapped[str] = mapped_column(String(2), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class OutputRow(Base):
    """A generated piece: its files (by sha256 in the content-addressed store) and how it was made."""

    __tablename__ = "outputs"
    output_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(96), nullable=False, index=True)
    creator_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    prompt: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    seed: Mapped[int] = mapped_column(Integer, nullable=False)
    files: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    credential: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class UsageEventRow(Base):
    """A generation, play, stream or download: idempotent by its event id, never edited."""

    __tablename__ = "usage_events"
    event_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    creator_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    output_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    model_id: Mapped[str] = mapped_column(String(96), nullable=False)
    territory: Mapped[str] = mapped_column(String(2), nullable=False)


# --- API: keys, audit log, jobs (migration 0005) ---


class ApiKeyRow(Base):
    """An API key of one party (rights holder, creator or operator); only the secret's sha256 is kept."""

    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    party_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    label: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiAuditEventRow(Base):
    """Every change made through the API or the portal: who (key, role, party), when, what. Append-only."""

    __tablename__ = "api_audit_events"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    key_id: Mapped[str] = mapped_column(String(32), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    party_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    object_type: Mapped[str] = mapped_column(String(32), nullable=False)
    object_id: Mapped[str] = mapped_column(String(128), nullable=False)
    request_id: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class JobRow(Base):
    """Work submitted through the API and run by a worker (generation): queued → running → done | failed.

    The queue itself (migration 0008): a worker claims the oldest queued job (``attempts`` + 1,
    ``worker`` its id), beats ``heartbeat_at`` while it runs; a job whose heartbeat is older than
    the lease is re-queued (or failed after the last attempt). See :mod:`accord.jobs.queue`.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created_at", "status", "created_at"),)
    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    owner: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    worker: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- materialised reads: version counters, decisions, taint state (migration 0009) ---


class VersionCounterRow(Base):
    """A counter bumped in the same transaction as every write of what it names (``registry``,
    ``keys``, ``models``): a reader that saw ``n`` knows nothing it derived from is stale while it reads ``n``."""

    __tablename__ = "version_counters"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class DecisionRow(Base):
    """One recording's licensing decision for a use and territory, as the registry stood at ``stamp``;
    it holds for every instant in ``[valid_from, valid_until)`` (``None``: unbounded). See
    :mod:`accord.registry.decisions`."""

    __tablename__ = "decisions"
    isrc: Mapped[str] = mapped_column(String(12), primary_key=True)
    use: Mapped[str] = mapped_column(String(16), primary_key=True)
    territory: Mapped[str] = mapped_column(String(2), primary_key=True)
    stamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class TaintStateRow(Base):
    """The taint audit's model statuses as of ``stamp`` (registry and models counters), valid over
    ``[valid_from, valid_until)``. See :mod:`accord.datasets.taint`."""

    __tablename__ = "taint_states"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    stamp: Mapped[str] = mapped_column(String(64), nullable=False)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


# The money side's tables live in their own module, on the same Base (imported for its side effect).
from accord.registry import money_tables  # noqa: E402, F401

VERSIONED_TABLES = ("sources", "parties", "works", "recordings", "agreements", "optouts")
for _name in VERSIONED_TABLES:
    _t = Base.metadata.tables[_name]
    Index(f"ix_{_name}_current", _t.c.recorded_to)
