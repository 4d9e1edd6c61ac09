"""materialised reads: version counters (registry, keys, models), decisions per recording × use × territory, taint state

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import accord.registry.schema

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COUNTERS = ("registry", "keys", "models")


def upgrade() -> None:
    utc = accord.registry.schema.UTCDateTime
    counters = op.create_table(
        "version_counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_version_counters")),
    )
    op.bulk_insert(counters, [{"name": name, "n": 0} for name in COUNTERS])
    op.create_table(
        "decisions",
        sa.Column("isrc", sa.String(length=12), nullable=False),
        sa.Column("use", sa.String(length=16), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", utc(), nullable=True),
        sa.Column("valid_until", utc(), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("isrc", "use", "territory", name=op.f("pk_decisions")),
    )
    op.create_table(
        "taint_states",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("stamp", sa.String(length=64), nullable=False),
        sa.Column("valid_from", utc(), nullable=True),
        sa.Column("valid_until", utc(), nullable=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_taint_states")),
    )


def downgrade() -> None:
    op.drop_table("taint_states")
    op.drop_table("decisions")
    op.drop_table("version_counters")
