"""SQL tables of the money side: usage batches, royalty periods and runs, the ledger and its signed
heads, bank details, FX rates and payouts (migrations 0004, 0006, 0007).

Declared on the registry's one :class:`~accord.registry.schema.Base`, so one ``MetaData`` (and one
Alembic history) holds every table; :mod:`accord.registry.schema` imports this module.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from accord.registry.schema import Base, UTCDateTime

# --- royalties: usage periods, royalty runs, ledger accounts and transfers (migration 0004) ---


class UsageBatchRow(Base):
    """One ingested batch of usage events: its Parquet files (under settings home) and what it held."""

    __tablename__ = "usage_batches"
    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ingested_by: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    source: Mapped[str] = mapped_column(Text, nullable=False, default="")
    events: Mapped[int] = mapped_column(Integer, nullable=False)
    duplicates: Mapped[int] = mapped_column(Integer, nullable=False)
    files: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    periods: Mapped[list[str]] = mapped_column(JSON, nullable=False)


class RoyaltyPeriodRow(Base):
    """An accounting period (a calendar month, ``YYYY-MM``): open until closed, then immutable."""

    __tablename__ = "royalty_periods"
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    status: Mapped[str] = mapped_column(String(8), nullable=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    run_id: Mapped[str] = mapped_column(String(64), nullable=False, default="")


class RoyaltyRunRow(Base):
    """One royalty run of a period: engine version, hash of its inputs, hash of its result."""

    __tablename__ = "royalty_runs"
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), nullable=False, index=True)
    engine_version: Mapped[str] = mapped_column(String(96), nullable=False)
    inputs_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    result_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class LedgerAccountRow(Base):
    """A ledger account: one per party x currency x kind (payable, paid, advance, reserve, ...)."""

    __tablename__ = "ledger_accounts"
    account_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    party_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class LedgerTransferRow(Base):
    """An immutable transfer (debit one account, credit another) chained by hash to the one before."""

    __tablename__ = "ledger_transfers"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    transfer_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    linked_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    debit_account: Mapped[str] = mapped_column(String(160), nullable=False, index=True)
    credit_account: Mapped[str] = mapped_column(String(160), nullable=False, index=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    code: Mapped[str] = mapped_column(String(24), nullable=False)
    period: Mapped[str] = mapped_column(String(7), nullable=False, index=True)
    run_id: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    reverses: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # field -> short sha256 of its value at posting: names the field of an edited transfer (migration 0006)
    digests: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)


class LedgerHeadRow(Base):
    """A signed ledger head: where the ledger ended at a close, payout or reversal (migration 0006)."""

    __tablename__ = "ledger_heads"
    head_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    event: Mapped[str] = mapped_column(String(16), nullable=False)
    period: Mapped[str] = mapped_column(String(7), nullable=False, index=True)
    subject: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    transfers: Mapped[int] = mapped_column(Integer, nullable=False)
    last_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    last_transfer_id: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    prev_head: Mapped[str] = mapped_column(String(64), nullable=False)
    head_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    public_key: Mapped[str] = mapped_column(String(64), nullable=False)
    signature: Mapped[str] = mapped_column(String(128), nullable=False)


class BankDetailsRow(Base):
    """A party's bank account for payouts (IBAN, BIC, holder, currency): seen only by it and the operator."""

    __tablename__ = "bank_details"
    party_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    iban: Mapped[str] = mapped_column(String(34), nullable=False)
    bic: Mapped[str] = mapped_column(String(11), nullable=False)
    holder: Mapped[str] = mapped_column(Text, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_by: Mapped[str] = mapped_column(String(64), nullable=False)


class FxSourceRow(Base):
    """An imported file of exchange rates (migration 0007): its content hash, name and when."""

    __tablename__ = "fx_sources"
    source_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    imported_by: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    dates: Mapped[int] = mapped_column(Integer, nullable=False)
    rates: Mapped[int] = mapped_column(Integer, nullable=False)


class FxRateRow(Base):
    """One reference rate: units of ``currency`` per 1 EUR on ``day``, exactly ``units / 10**scale``."""

    __tablename__ = "fx_rates"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False)
    scale: Mapped[int] = mapped_column(Integer, nullable=False)
    source_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)


class PayoutRow(Base):
    """A payout of one party's payable balance in one currency (moved to paid by a ledger transfer)."""

    __tablename__ = "royalty_payouts"
    payout_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), nullable=False, index=True)
    party_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    transfer_id: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
