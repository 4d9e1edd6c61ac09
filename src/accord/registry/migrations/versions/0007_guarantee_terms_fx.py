"""guarantee terms and exchange rates: agreements' guarantee term and settlement; imported FX rates

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import accord.registry.schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = accord.registry.schema.UTCDateTime
    # Agreements recorded before this migration keep the old rule: a guarantee per month, settled at its end.
    with op.batch_alter_table("agreements") as batch:
        batch.add_column(sa.Column("guarantee_term", sa.String(length=16), nullable=False, server_default="monthly"))
        batch.add_column(
            sa.Column("guarantee_settlement", sa.String(length=16), nullable=False, server_default="term_end")
        )
    op.create_table(
        "fx_sources",
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("imported_at", utc(), nullable=False),
        sa.Column("imported_by", sa.String(length=64), nullable=False),
        sa.Column("dates", sa.Integer(), nullable=False),
        sa.Column("rates", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("source_sha256", name=op.f("pk_fx_sources")),
    )
    op.create_table(
        "fx_rates",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("scale", sa.Integer(), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("day", "currency", name=op.f("pk_fx_rates")),
    )
    op.create_index(op.f("ix_fx_rates_source_sha256"), "fx_rates", ["source_sha256"])


def downgrade() -> None:
    op.drop_index(op.f("ix_fx_rates_source_sha256"), table_name="fx_rates")
    op.drop_table("fx_rates")
    op.drop_table("fx_sources")
    with op.batch_alter_table("agreements") as batch:
        batch.drop_column("guarantee_settlement")
        batch.drop_column("guarantee_term")
