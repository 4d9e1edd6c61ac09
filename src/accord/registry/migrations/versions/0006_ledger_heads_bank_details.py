"""ledger heads and bank details: signed ledger heads, per-field digests of transfers, parties' bank accounts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import accord.registry.schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = accord.registry.schema.UTCDateTime
    # Transfers posted before this migration have no digests ({}): an edit of one is still found, unnamed.
    with op.batch_alter_table("ledger_transfers") as batch:
        batch.add_column(sa.Column("digests", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    op.create_table(
        "ledger_heads",
        sa.Column("head_seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("transfers", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("last_transfer_id", sa.String(length=64), nullable=False),
        sa.Column("at", utc(), nullable=False),
        sa.Column("prev_head", sa.String(length=64), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("head_seq", name=op.f("pk_ledger_heads")),
    )
    op.create_index(op.f("ix_ledger_heads_period"), "ledger_heads", ["period"])
    op.create_table(
        "bank_details",
        sa.Column("party_id", sa.String(length=64), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("party_id", name=op.f("pk_bank_details")),
    )


def downgrade() -> None:
    op.drop_table("bank_details")
    op.drop_index(op.f("ix_ledger_heads_period"), table_name="ledger_heads")
    op.drop_table("ledger_heads")
    with op.batch_alter_table("ledger_transfers") as batch:
        batch.drop_column("digests")
