"""outputs: creators, generated outputs, usage events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import accord.registry.schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "creators",
        sa.Column("creator_id", sa.String(length=64), nullable=False),
        sa.Column("plan", sa.String(length=32), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("created_at", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("creator_id", name=op.f("pk_creators")),
    )
    op.create_table(
        "outputs",
        sa.Column("output_id", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.String(length=96), nullable=False),
        sa.Column("creator_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.Column("prompt", sa.JSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("credential", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("output_id", name=op.f("pk_outputs")),
    )
    op.create_index(op.f("ix_outputs_model_id"), "outputs", ["model_id"])
    op.create_index(op.f("ix_outputs_creator_id"), "outputs", ["creator_id"])
    op.create_table(
        "usage_events",
        sa.Column("event_id", sa.String(length=96), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.Column("creator_id", sa.String(length=64), nullable=False),
        sa.Column("output_id", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.String(length=96), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_usage_events")),
    )
    op.create_index(op.f("ix_usage_events_at"), "usage_events", ["at"])
    op.create_index(op.f("ix_usage_events_creator_id"), "usage_events", ["creator_id"])
    op.create_index(op.f("ix_usage_events_output_id"), "usage_events", ["output_id"])


def downgrade() -> None:
    op.drop_table("usage_events")
    op.drop_table("outputs")
    op.drop_table("creators")
