"""datasets: manifests, models, model approvals; parties may ask not to be named

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import accord.registry.schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("parties") as batch:
        batch.add_column(sa.Column("disclose", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        "manifests",
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("use", sa.String(length=16), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("as_of", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("excluded", sa.Integer(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.JSON(), nullable=False),
        sa.Column("built_at", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.Column("built_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("root", name=op.f("pk_manifests")),
    )
    op.create_index(op.f("ix_manifests_as_of"), "manifests", ["as_of"])
    op.create_table(
        "models",
        sa.Column("model_id", sa.String(length=96), nullable=False),
        sa.Column("manifest_root", sa.String(length=64), nullable=False),
        sa.Column("created_at", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.Column("registered_by", sa.String(length=64), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_models")),
    )
    op.create_index(op.f("ix_models_manifest_root"), "models", ["manifest_root"])
    op.create_table(
        "model_approvals",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(length=96), nullable=False),
        sa.Column("licensor", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("at", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_model_approvals")),
    )
    op.create_index(op.f("ix_model_approvals_model_id"), "model_approvals", ["model_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_model_approvals_model_id"), table_name="model_approvals")
    op.drop_table("model_approvals")
    op.drop_index(op.f("ix_models_manifest_root"), table_name="models")
    op.drop_table("models")
    op.drop_index(op.f("ix_manifests_as_of"), table_name="manifests")
    op.drop_table("manifests")
    with op.batch_alter_table("parties") as batch:
        batch.drop_column("disclose")
