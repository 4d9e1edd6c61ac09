"""SQL tables of the money side: usage batches, royalty periods and runs, the ledger and its signed
heads, bank details, FX rates and payouts (migrations 0004, 0006, 0007).

Declared with SQLAlchemy Core on the registry's one :data:`~accord.registry.schema.METADATA`, so one
``MetaData`` (and one Alembic history) holds every table; :mod:`accord.registry.schema` imports this module.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Integer,
    String,
    Table,
    Text,
)

from accord.registry.schema import METADATA, UTCDateTime

# --- royalties: usage periods, royalty runs, ledger accounts and transfers (migration 0004) ---


# One ingested batch of usage events: its Parquet files (under settings home) and what it held.
usage_batches_table = Table(
    "usage_batches",
    METADATA,
    Column("batch_id", String(64), primary_key=True),
    Column("ingested_at", UTCDateTime, nullable=False),
    Column("ingested_by", String(64), nullable=False, default=""),
    Column("source", Text, nullable=False, default=""),
    Column("events", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("files", JSON, nullable=False),
    Column("periods", JSON, nullable=False),
)


# An accounting period (a calendar month, ``YYYY-MM``): open until closed, then immutable.
royalty_periods_table = Table(
    "royalty_periods",
    METADATA,
    Column("period", String(7), primary_key=True),
    Column("status", String(8), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("closed_by", String(64), nullable=False, default=""),
    Column("run_id", String(64), nullable=False, default=""),
)


# One royalty run of a period: engine version, hash of its inputs, hash of its result.
royalty_runs_table = Table(
    "royalty_runs",
    METADATA,
    Column("run_id", String(64), primary_key=True),
    Column("period", String(7), nullable=False, index=True),
    Column("engine_version", String(96), nullable=False),
    Column("inputs_hash", String(64), nullable=False),
    Column("result_hash", String(64), nullable=False),
    Column("status", String(12), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False, default=""),
    Column("summary", JSON, nullable=False),
)


# A ledger account: one per party x currency x kind (payable, paid, advance, reserve, ...).
ledger_accounts_table = Table(
    "ledger_accounts",
    METADATA,
    Column("account_id", String(160), primary_key=True),
    Column("party_id", String(64), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


# An immutable transfer (debit one account, credit another) chained by hash to the one before.
ledger_transfers_table = Table(
    "ledger_transfers",
    METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("transfer_id", String(64), nullable=False, unique=True),
    Column("linked_id", String(64), nullable=False, index=True),
    Column("debit_account", String(160), nullable=False, index=True),
    Column("credit_account", String(160), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("code", String(24), nullable=False),
    Column("period", String(7), nullable=False, index=True),
    Column("run_id", String(64), nullable=False, default=""),
    Column("reverses", String(64), nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    Column("at", UTCDateTime, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # field -> short sha256 of its value at posting: names the field of an edited transfer (migration 0006)
    Column("digests", JSON, nullable=False, default=dict),
)


# A signed ledger head: where the ledger ended at a close, payout or reversal (migration 0006).
ledger_heads_table = Table(
    "ledger_heads",
    METADATA,
    Column("head_seq", Integer, primary_key=True, autoincrement=False),
    Column("event", String(16), nullable=False),
    Column("period", String(7), nullable=False, index=True),
    Column("subject", String(64), nullable=False, default=""),
    Column("transfers", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("last_transfer_id", String(64), nullable=False, default=""),
    Column("at", UTCDateTime, nullable=False),
    Column("prev_head", String(64), nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
)


# A party's bank account for payouts (IBAN, BIC, holder, currency): seen only by it and the operator.
bank_details_table = Table(
    "bank_details",
    METADATA,
    Column("party_id", String(64), primary_key=True),
    Column("iban", String(34), nullable=False),
    Column("bic", String(11), nullable=False),
    Column("holder", Text, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(64), nullable=False),
)


# An imported file of exchange rates (migration 0007): its content hash, name and when.
fx_sources_table = Table(
    "fx_sources",
    METADATA,
    Column("source_sha256", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("imported_by", String(64), nullable=False, default=""),
    Column("dates", Integer, nullable=False),
    Column("rates", Integer, nullable=False),
)


# One reference rate: units of ``currency`` per 1 EUR on ``day``, exactly ``units / 10**scale``.
fx_rates_table = Table(
    "fx_rates",
    METADATA,
    Column("day", Date, primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("units", BigInteger, nullable=False),
    Column("scale", Integer, nullable=False),
    Column("source_sha256", String(64), nullable=False, index=True),
)


# A payout of one party's payable balance in one currency (moved to paid by a ledger transfer).
royalty_payouts_table = Table(
    "royalty_payouts",
    METADATA,
    Column("payout_id", String(64), primary_key=True),
    Column("period", String(7), nullable=False, index=True),
    Column("party_id", String(64), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("transfer_id", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)
