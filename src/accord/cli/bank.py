"""``accord bank``: parties' bank details for payouts (the operator's tool: audited as such)."""

from __future__ import annotations

from typing import Annotated

import typer

from accord.cli.common import console, handle_errors, open_store, print_json
from accord.registry.bank import OPERATOR, bank_details, set_bank_details

bank_app = typer.Typer(
    help="Bank details for payouts (IBAN, BIC, holder, currency): set or show a party's account.",
    no_args_is_help=True,
)
PartyArg = Annotated[str, typer.Argument(help=f"The party id ({OPERATOR} for the operator's own paying account).")]


@bank_app.command("set")
@handle_errors
def bank_set(
    party: PartyArg,
    iban: Annotated[str, typer.Option(help="IBAN (spaces allowed), checked by its check digits and country format.")],
    holder: Annotated[str, typer.Option(help="Account holder's name, as the bank knows it.")],
    currency: Annotated[str, typer.Option(help="Currency payouts to this account are made in (ISO 4217).")] = "EUR",
    bic: Annotated[str, typer.Option(help="BIC; empty: the one the IBAN's bank code gives.")] = "",
) -> None:
    """Set a party's bank details (validated; an audit event records the change, masked)."""
    details = set_bank_details(
        open_store(), party, iban=iban, bic=bic, holder=holder, currency=currency, caller="cli", operator=True
    )
    console.print(f"bank details of {party}: {details.masked_iban} {details.bic} ({details.currency}) set")


@bank_app.command("show")
@handle_errors
def bank_show(party: PartyArg, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show a party's bank details."""
    d = bank_details(open_store(), party, viewer="cli", operator=True)
    row = {"party_id": d.party_id, "iban": d.iban, "bic": d.bic, "holder": d.holder, "currency": d.currency}
    if as_json:
        print_json({**row, "updated_at": d.updated_at.isoformat(), "updated_by": d.updated_by})
        return
    console.print(f"{d.party_id}: {d.holder}, IBAN {d.iban}, BIC {d.bic}, {d.currency} (set by {d.updated_by})")
