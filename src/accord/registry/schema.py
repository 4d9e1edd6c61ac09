"""SQL tables of the registry (SQLAlchemy 2), the same on SQLite and PostgreSQL.

History is kept by *system versioning*: every versioned table is keyed by
``(id, version)`` and carries ``recorded_from`` / ``recorded_to`` (UTC). A change
closes the current version (sets ``recorded_to``) and inserts the next one, so what the
registry said at any instant ``t`` is the rows with
``recorded_from <= t < coalesce(recorded_to, ∞)``. Child rows (shares, media) belong
to one version of their parent.

The tables are declared with SQLAlchemy Core (``Table``), not the ORM: every reader and writer
works on ``Base.metadata.tables`` with Core statements, and declaring ORM classes cost each
command that opens the registry ~0.1 s of import (the ORM itself and its mappers) for nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    true,
)
from sqlalchemy.engine import Dialect


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


METADATA = MetaData(naming_convention=NAMING)
"""Every table of the registry (and of the money side, :mod:`accord.registry.money_tables`): one Alembic history."""


class Base:
    """Where the modules that read and write the registry find its tables: ``Base.metadata.tables[name]``."""

    metadata = METADATA


def versioned_columns() -> tuple[Column[Any], ...]:
    """Columns every system-versioned table has (after its own): the version and the span it was recorded over."""
    return (
        Column("version", Integer, primary_key=True),
        Column("recorded_from", UTCDateTime, nullable=False),
        Column("recorded_to", UTCDateTime, nullable=True),
        Column("delivery_pk", Integer, nullable=True),
        Column("recorded_by", String(64), nullable=False, default=""),
    )


# One imported delivery (a delivery that changed nothing is not recorded).
deliveries_table = Table(
    "deliveries",
    METADATA,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(128), nullable=False),
    Column("sender", String(64), nullable=False),
    Column("content_sha256", String(64), nullable=False, index=True),
    Column("created", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("format", String(16), nullable=False),
    Column("summary", JSON, nullable=False),
    Column("received_by", String(64), nullable=False, default=""),
)


sources_table = Table(
    "sources",
    METADATA,
    Column("source_id", String(64), primary_key=True),
    Column("title", Text, nullable=False),
    Column("origin", Text, nullable=False, default=""),
    Column("terms", Text, nullable=False, default=""),
    Column("public_domain", Boolean, nullable=False, default=False),
    *versioned_columns(),
)


parties_table = Table(
    "parties",
    METADATA,
    Column("party_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("ipi", String(16), nullable=True),
    Column("isni", String(16), nullable=True),
    Column("dpid", String(18), nullable=True),
    Column("territory", String(2), nullable=True),
    Column("disclose", Boolean, nullable=False, default=True, server_default=true()),
    *versioned_columns(),
)


works_table = Table(
    "works",
    METADATA,
    Column("work_id", String(64), primary_key=True),
    Column("iswc", String(11), index=True, nullable=True),
    Column("title", Text, nullable=False),
    Column("writers", JSON, nullable=False),
    *versioned_columns(),
)


work_shares_table = Table(
    "work_shares",
    METADATA,
    Column("work_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("party_id", String(64), primary_key=True),
    Column("share_ppm", Integer, nullable=False),
    ForeignKeyConstraint(["work_id", "version"], ["works.work_id", "works.version"]),
    Index("ix_work_shares_party", "party_id"),
)


recordings_table = Table(
    "recordings",
    METADATA,
    Column("isrc", String(12), primary_key=True),
    Column("title", Text, nullable=False),
    Column("artists", JSON, nullable=False),
    Column("duration_ms", BigInteger, nullable=False),
    Column("genre", String(64), nullable=False, default=""),
    Column("works", JSON, nullable=False),
    Column("source_id", String(64), nullable=False, default=""),
    Column("extra", JSON, nullable=False),
    *versioned_columns(),
)


recording_shares_table = Table(
    "recording_shares",
    METADATA,
    Column("isrc", String(12), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("party_id", String(64), primary_key=True),
    Column("share_ppm", Integer, nullable=False),
    ForeignKeyConstraint(["isrc", "version"], ["recordings.isrc", "recordings.version"]),
    Index("ix_recording_shares_party", "party_id"),
)


recording_media_table = Table(
    "recording_media",
    METADATA,
    Column("isrc", String(12), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("filename", Text, nullable=False, default=""),
    ForeignKeyConstraint(["isrc", "version"], ["recordings.isrc", "recordings.version"]),
)


agreements_table = Table(
    "agreements",
    METADATA,
    Column("agreement_id", String(64), primary_key=True),
    Column("licensor", String(64), nullable=False, index=True),
    Column("side", String(16), nullable=False),
    Column("uses", JSON, nullable=False),
    Column("worldwide", Boolean, nullable=False),
    Column("territories_include", JSON, nullable=False),
    Column("territories_exclude", JSON, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=True),
    Column("coverage_catalog", Boolean, nullable=False),
    Column("coverage_recordings", JSON, nullable=False),
    Column("coverage_works", JSON, nullable=False),
    Column("pool_share_ppm", Integer, nullable=False),
    Column("master_split_ppm", Integer, nullable=False),
    Column("training_pool_method", String(32), nullable=False),
    Column("minimum_guarantee_micros", BigInteger, nullable=True),
    Column("minimum_guarantee_currency", String(3), nullable=True),
    Column("advance_micros", BigInteger, nullable=True),
    Column("advance_currency", String(3), nullable=True),
    Column("model_scope", String(32), nullable=False),
    # the minimum guarantee's term and settlement (migration 0007)
    Column("guarantee_term", String(16), nullable=False, default="monthly"),
    Column("guarantee_settlement", String(16), nullable=False, default="term_end"),
    *versioned_columns(),
)


optouts_table = Table(
    "optouts",
    METADATA,
    Column("optout_id", String(64), primary_key=True),
    Column("party_id", String(64), nullable=False, index=True),
    Column("scope", String(16), nullable=False),
    Column("target", String(64), nullable=False, default=""),
    Column("uses", JSON, nullable=False),
    Column("effective", UTCDateTime, nullable=False),
    *versioned_columns(),
)


# Every change to rights: who, when, what. Kept forever, never edited.
audit_events_table = Table(
    "audit_events",
    METADATA,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("detail", JSON, nullable=False),
)


# A training-set manifest, by its Merkle root; its file lives in the content-addressed store.
manifests_table = Table(
    "manifests",
    METADATA,
    Column("root", String(64), primary_key=True),
    Column("use", String(16), nullable=False),
    Column("territory", String(2), nullable=False),
    Column("as_of", UTCDateTime, nullable=False, index=True),
    Column("tree_size", Integer, nullable=False),
    Column("excluded", Integer, nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("signature", JSON, nullable=False),
    Column("built_at", UTCDateTime, nullable=False),
    Column("built_by", String(64), nullable=False),
)


# A trained model version and the manifest it was trained on.
models_table = Table(
    "models",
    METADATA,
    Column("model_id", String(96), primary_key=True),
    Column("manifest_root", String(64), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("registered_by", String(64), nullable=False),
    Column("card", JSON, nullable=False),
)


# A licensor's approval or refusal of one model version (the latest per licensor counts).
model_approvals_table = Table(
    "model_approvals",
    METADATA,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("model_id", String(96), nullable=False, index=True),
    Column("licensor", String(64), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("by", String(64), nullable=False),
    Column("note", Text, nullable=False, default=""),
)


# An end user who generates music, on a plan that limits how outputs leave the platform.
creators_table = Table(
    "creators",
    METADATA,
    Column("creator_id", String(64), primary_key=True),
    Column("plan", String(32), nullable=False),
    Column("territory", String(2), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


# A generated piece: its files (by sha256 in the content-addressed store) and how it was made.
outputs_table = Table(
    "outputs",
    METADATA,
    Column("output_id", String(64), primary_key=True),
    Column("model_id", String(96), nullable=False, index=True),
    Column("creator_id", String(64), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("prompt", JSON, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("files", JSON, nullable=False),
    Column("credential", JSON, nullable=False),
    # the private attribution record (full attribution and guard, openings); NULL before migration 0010
    Column("attribution", JSON, nullable=True),
)


# A generation, play, stream or download: idempotent by its event id, never edited.
usage_events_table = Table(
    "usage_events",
    METADATA,
    Column("event_id", String(96), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("creator_id", String(64), nullable=False, index=True),
    Column("output_id", String(64), nullable=False, index=True),
    Column("model_id", String(96), nullable=False),
    Column("territory", String(2), nullable=False),
)


# --- API: keys, audit log, jobs (migration 0005) ---


# An API key of one party (rights holder, creator or operator); only the secret's sha256 is kept.
api_keys_table = Table(
    "api_keys",
    METADATA,
    Column("key_id", String(32), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("party_id", String(64), nullable=False, index=True),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("label", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)


# Every change made through the API or the portal: who (key, role, party), when, what. Append-only.
api_audit_events_table = Table(
    "api_audit_events",
    METADATA,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("key_id", String(32), nullable=False),
    Column("role", String(16), nullable=False),
    Column("party_id", String(64), nullable=False, index=True),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(128), nullable=False),
    Column("request_id", String(64), nullable=False, default=""),
    Column("detail", JSON, nullable=False),
)


# Work submitted through the API and run by a worker (generation): queued → running → done | failed. The queue
# itself (migration 0008): a worker claims the oldest queued job (``attempts`` + 1, ``worker`` its id), beats
# ``heartbeat_at`` while it runs; a job whose heartbeat is older than the lease is re-queued (or failed after
# the last attempt). See :mod:`accord.jobs.queue`.
jobs_table = Table(
    "jobs",
    METADATA,
    Column("job_id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("owner", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("worker", String(128), nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Column("params", JSON, nullable=False),
    Column("result", JSON, nullable=True),
    Column("error", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Index("ix_jobs_status_created_at", "status", "created_at"),
)


# --- materialised reads: version counters, decisions, taint state (migration 0009) ---


# A counter bumped in the same transaction as every write of what it names (``registry``, ``keys``, ``models``):
# a reader that saw ``n`` knows nothing it derived from is stale while it reads ``n``.
version_counters_table = Table(
    "version_counters",
    METADATA,
    Column("name", String(32), primary_key=True),
    Column("n", BigInteger, nullable=False, default=0),
)


# One recording's licensing decision for a use and territory, as the registry stood at ``stamp``; it holds for
# every instant in ``[valid_from, valid_until)`` (``None``: unbounded). See :mod:`accord.registry.decisions`.
decisions_table = Table(
    "decisions",
    METADATA,
    Column("isrc", String(12), primary_key=True),
    Column("use", String(16), primary_key=True),
    Column("territory", String(2), primary_key=True),
    Column("stamp", BigInteger, nullable=False),
    Column("valid_from", UTCDateTime, nullable=True),
    Column("valid_until", UTCDateTime, nullable=True),
    Column("decision", JSON, nullable=False),
)


# The taint audit's model statuses as of ``stamp`` (registry and models counters), valid over ``[valid_from,
# valid_until)``. See :mod:`accord.datasets.taint`.
taint_states_table = Table(
    "taint_states",
    METADATA,
    Column("name", String(32), primary_key=True),
    Column("stamp", String(64), nullable=False),
    Column("valid_from", UTCDateTime, nullable=True),
    Column("valid_until", UTCDateTime, nullable=True),
    Column("state", JSON, nullable=False),
)


# The money side's tables live in their own module, on the same METADATA (imported for its side effect).
from accord.registry import money_tables  # noqa: E402, F401

VERSIONED_TABLES = ("sources", "parties", "works", "recordings", "agreements", "optouts")
for _name in VERSIONED_TABLES:
    _t = Base.metadata.tables[_name]
    Index(f"ix_{_name}_current", _t.c.recorded_to)
