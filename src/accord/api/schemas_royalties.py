"""Request and response bodies of the royalty routes: usage ingest, runs and periods, the ledger, payouts.

Money is integer micro-units throughout, as in :mod:`accord.money`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from accord.api.schemas import Strict


class UsageBatchIn(Strict):
    events: list[dict[str, Any]] = Field(
        min_length=1, max_length=10_000, description="Usage or revenue events, the usage file format's fields."
    )
    period: str | None = Field(default=None, max_length=7, description="Assign every event to this period.")


class IngestOut(BaseModel):
    batch_id: str
    received: int
    new: int
    duplicates: int
    late: int
    periods: list[str]


class RunOut(BaseModel):
    run_id: str
    period: str
    engine_version: str
    inputs_hash: str
    result_hash: str
    status: str
    summary: dict[str, Any]


class PeriodOut(BaseModel):
    period: str
    status: str
    latest_run: RunOut | None


class ClosingOut(BaseModel):
    run: RunOut
    transfers: int
    guarantees: list[dict[str, Any]]
    ledger_head: str


class LedgerOut(BaseModel):
    valid: bool
    checked: int
    problems: list[str]
    head: str
    heads: int = Field(0, description="Signed ledger heads checked.")
    public_key: str = Field("", description="The Ed25519 key (hex) the heads' signatures were checked against.")


class PayoutOut(BaseModel):
    party_id: str
    currency: str
    amount: int = Field(description="Micro-units (a whole number of the currency's minor units).")
    transfer_ids: list[str]
    carried: int = Field(0, description="Micro-units below one minor unit, left payable for the next payout.")


class BankDetailsIn(BaseModel):
    iban: str = Field(max_length=64, description="IBAN (spaces allowed).")
    bic: str = Field("", max_length=16, description="BIC; empty: the one the IBAN's bank code gives.")
    holder: str = Field(max_length=140, description="Account holder's name.")
    currency: str = Field("EUR", max_length=3, description="Currency of payouts to this account (ISO 4217).")


class BankDetailsOut(BaseModel):
    party_id: str
    iban: str
    bic: str
    holder: str
    currency: str
    updated_by: str


class BalanceOut(BaseModel):
    account: str = Field(description="<party>:<currency>:<kind>")
    balance: int = Field(description="Credits minus debits, micro-units.")


class ReverseIn(Strict):
    reason: str = Field(max_length=32, description="duplicate, wrong_amount, wrong_party, registry_correction, other")
    period: str = Field(max_length=7, description="The open period the reversal belongs to (YYYY-MM).")
    note: str = Field(default="", max_length=1000)


class TransferOut(BaseModel):
    transfer_id: str
    debit_account: str
    credit_account: str
    amount: int
    currency: str
    period: str
