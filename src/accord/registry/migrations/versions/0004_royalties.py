"""royalties: usage batches, periods, royalty runs, ledger accounts and transfers, payouts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import accord.registry.schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_batches",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("ingested_at", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.Column("ingested_by", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("periods", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_usage_batches")),
    )
    op.create_table(
        "royalty_periods",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("opened_at", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.Column("closed_at", accord.registry.schema.UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("period", name=op.f("pk_royalty_periods")),
    )
    op.create_table(
        "royalty_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("engine_version", sa.String(length=96), nullable=False),
        sa.Column("inputs_hash", sa.String(length=64), nullable=False),
        sa.Column("result_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_royalty_runs")),
    )
    op.create_index(op.f("ix_royalty_runs_period"), "royalty_runs", ["period"])
    op.create_table(
        "ledger_accounts",
        sa.Column("account_id", sa.String(length=160), nullable=False),
        sa.Column("party_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("created_at", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_ledger_accounts")),
    )
    op.create_index(op.f("ix_ledger_accounts_party_id"), "ledger_accounts", ["party_id"])
    op.create_table(
        "ledger_transfers",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("transfer_id", sa.String(length=64), nullable=False),
        sa.Column("linked_id", sa.String(length=64), nullable=False),
        sa.Column("debit_account", sa.String(length=160), nullable=False),
        sa.Column("credit_account", sa.String(length=160), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("code", sa.String(length=24), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("reverses", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_transfers")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_ledger_transfers_transfer_id")),
    )
    op.create_index(op.f("ix_ledger_transfers_linked_id"), "ledger_transfers", ["linked_id"])
    op.create_index(op.f("ix_ledger_transfers_debit_account"), "ledger_transfers", ["debit_account"])
    op.create_index(op.f("ix_ledger_transfers_credit_account"), "ledger_transfers", ["credit_account"])
    op.create_index(op.f("ix_ledger_transfers_period"), "ledger_transfers", ["period"])
    op.create_table(
        "royalty_payouts",
        sa.Column("payout_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("party_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.String(length=64), nullable=False),
        sa.Column("at", accord.registry.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("payout_id", name=op.f("pk_royalty_payouts")),
    )
    op.create_index(op.f("ix_royalty_payouts_period"), "royalty_payouts", ["period"])
    op.create_index(op.f("ix_royalty_payouts_party_id"), "royalty_payouts", ["party_id"])


def downgrade() -> None:
    op.drop_table("royalty_payouts")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_accounts")
    op.drop_table("royalty_runs")
    op.drop_table("royalty_periods")
    op.drop_table("usage_batches")
