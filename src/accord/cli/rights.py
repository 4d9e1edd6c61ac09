"""``accord agreement`` and ``accord optout``: grant, end, list licences; record opt-outs."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from accord.cli.common import console, handle_errors, instant, open_store, print_json
from accord.money import format_money, percent_to_ppm, ppm_to_percent
from accord.registry.consent import (
    agreement_dict,
    end_agreement,
    grant_agreement,
    opt_out_artist,
    optout_dict,
    record_optout,
)
from accord.registry.entities import Catalog
from accord.registry.standing import OPERATOR
from accord.registry.transfer import transfer_share
from accord.timeutil import iso

agreement_app = typer.Typer(help="Licences granted by rights holders: grant, end, list.", no_args_is_help=True)
optout_app = typer.Typer(help="Opt-outs by owners, artists and writers: add, list.", no_args_is_help=True)

AsParty = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Act for this party: its standing is checked as the API checks it. "
        "Default: the operator, with full power (the audit log records acting_as: operator).",
    ),
]


def acting_line(as_party: str | None) -> str:
    """How a command's output says whose standing it used."""
    if as_party is None:
        return f"as the {OPERATOR} (full power; recorded as the operator's act)"
    return f"for {as_party} (its standing checked)"


def _money(amount: str | None, currency: str) -> dict[str, str] | None:
    return None if amount is None else {"amount": amount, "currency": currency}


@agreement_app.command("grant")
@handle_errors
def grant(
    agreement_id: Annotated[str, typer.Option("--id", help="Agreement id, e.g. AGR-AURORA-MASTER-2026.")],
    licensor: Annotated[str, typer.Option(help="Party id of the licensor.")],
    side: Annotated[str, typer.Option(help="master or publishing.")],
    use: Annotated[list[str], typer.Option("--use", help="A use granted (repeat): train, generate, remix.")],
    start: Annotated[str, typer.Option(help="In force from (ISO date or date-time with offset).")],
    end: Annotated[str | None, typer.Option(help="In force until, exclusive (default: open-ended).")] = None,
    territory: Annotated[
        list[str] | None, typer.Option("--territory", help="ISO 3166-1 code included (repeat); omit for worldwide.")
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Worldwide except this code (repeat).")] = None,
    recording: Annotated[list[str] | None, typer.Option("--recording", help="Cover only this ISRC (repeat).")] = None,
    work: Annotated[list[str] | None, typer.Option("--work", help="Cover only this work id (repeat).")] = None,
    pool_share: Annotated[str, typer.Option(help="Percent of net revenue into the rights pool.")] = "30",
    master_split: Annotated[str, typer.Option(help="Master side's percent of the pool.")] = "50",
    method: Annotated[str, typer.Option(help="equal_per_work or pro_rata_duration.")] = "equal_per_work",
    minimum_guarantee: Annotated[str | None, typer.Option(help="Minimum guarantee amount, e.g. 25000.00.")] = None,
    advance: Annotated[str | None, typer.Option(help="Advance amount, e.g. 10000.00.")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency of the amounts.")] = "EUR",
    model_scope: Annotated[str, typer.Option(help="any, or approved_versions.")] = "any",
    actor: Annotated[str, typer.Option(help="Who records it, for the audit log.")] = "operator",
    as_party: AsParty = None,
) -> None:
    """Record a licence granted by a rights holder. Repeating the same grant changes nothing."""
    if recording:
        coverage: dict[str, Any] = {"recordings": recording}
    elif work:
        coverage = {"works": work}
    else:
        coverage = {"catalog": True}
    terr: dict[str, Any] = {"include": territory} if territory else {"worldwide": True, "exclude": exclude or []}
    data = {
        "id": agreement_id,
        "licensor": licensor,
        "side": side,
        "uses": use,
        "territory": terr,
        "start": start,
        "end": end,
        "coverage": coverage,
        "terms": {
            "pool_share": pool_share,
            "master_split": master_split,
            "training_pool_method": method,
            "minimum_guarantee": _money(minimum_guarantee, currency),
            "advance": _money(advance, currency),
        },
        "model_scope": model_scope,
    }
    agreement, changed = grant_agreement(open_store(), data, actor=actor, as_party=as_party)
    verb = "granted" if changed else "already recorded, nothing changed"
    console.print(f"Agreement [bold]{agreement.agreement_id}[/] {verb} {acting_line(as_party)}.")


@agreement_app.command("end")
@handle_errors
def end_cmd(
    agreement_id: Annotated[str, typer.Argument(help="The agreement to end.")],
    at: Annotated[str, typer.Option(help="The instant it ends (exclusive).")],
    actor: Annotated[str, typer.Option(help="Who records it, for the audit log.")] = "operator",
    as_party: AsParty = None,
) -> None:
    """End an agreement at an instant (an amendment: the earlier version stays in history)."""
    ending = end_agreement(open_store(), agreement_id, instant(at, field="at"), actor=actor, as_party=as_party)
    console.print(f"Agreement [bold]{agreement_id}[/] ends at {iso(ending.end)} {acting_line(as_party)}.")


@agreement_app.command("list")
@handle_errors
def list_agreements(
    licensor: Annotated[str | None, typer.Option(help="Only this licensor's agreements.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="As the registry stood then.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The agreements on record."""
    catalog = open_store().snapshot(instant(as_of, field="as_of") if as_of else None)
    rows = [a for _, a in sorted(catalog.agreements.items()) if licensor is None or a.licensor == licensor]
    if as_json:
        print_json([agreement_dict(a) for a in rows])
        return
    table = Table(title=f"Agreements ({len(rows)})", title_justify="left")
    for col in ("id", "licensor", "side", "uses", "territory", "from", "until", "covers", "pool", "scope", "money"):
        table.add_column(col, overflow="fold")
    for a in rows:
        cover = "catalog" if a.coverage.catalog else f"{len(a.coverage.recordings) + len(a.coverage.works)} items"
        money = ", ".join(
            f"{label} {format_money(m)}"
            for label, m in (("MG", a.terms.minimum_guarantee), ("advance", a.terms.advance))
            if m is not None
        )
        table.add_row(
            a.agreement_id,
            _name(catalog, a.licensor),
            a.side.value,
            ", ".join(sorted(u.value for u in a.uses)),
            a.territory.describe(),
            (iso(a.start) or "")[:10],
            (iso(a.end) or "open")[:10],
            cover,
            ppm_to_percent(a.terms.pool_share_ppm) + "%",
            a.model_scope.value,
            money,
        )
    console.print(table)


def _name(catalog: Catalog, party_id: str) -> str:
    p = catalog.parties.get(party_id)
    return f"{p.name} ({party_id})" if p else party_id


@optout_app.command("add")
@handle_errors
def add_optout(
    party: Annotated[str, typer.Option(help="Who opts out: an owner, artist, writer or publisher.")],
    scope: Annotated[str, typer.Option(help="recording, work or catalog.")],
    effective: Annotated[str, typer.Option(help="In force from (ISO date or date-time).")],
    use: Annotated[list[str], typer.Option("--use", help="A use withdrawn (repeat), or 'all'.")],
    target: Annotated[str | None, typer.Option(help="ISRC or work id (not for catalog).")] = None,
    optout_id: Annotated[
        str | None, typer.Option("--id", help="Opt-out id (default: derived from its content).")
    ] = None,
    actor: Annotated[str, typer.Option(help="Who records it, for the audit log.")] = "operator",
    as_party: AsParty = None,
) -> None:
    """Record an opt-out. The same opt-out given twice is recorded once."""
    optout = record_optout(
        open_store(),
        {"party": party, "scope": scope, "target": target, "uses": use, "effective": effective},
        optout_id=optout_id,
        actor=actor,
        as_party=as_party,
    )
    console.print(
        f"Opt-out [bold]{optout.optout_id}[/] by {optout.party_id} recorded ({optout.scope.value}) "
        f"{acting_line(as_party)}."
    )


@optout_app.command("artist")
@handle_errors
def add_artist_optout(
    party: Annotated[str, typer.Option(help="Who opts out: the artist itself, or its label or publisher.")],
    artist: Annotated[str, typer.Option(help="The artist's party id.")],
    effective: Annotated[str | None, typer.Option(help="In force from (default: now).")] = None,
    actor: Annotated[str, typer.Option(help="Who records it, for the audit log.")] = "operator",
    as_party: AsParty = None,
) -> None:
    """Opt out every recording of the party's catalog the artist performs, in one write (an artist
    opting itself out withdraws its whole catalog)."""
    made = opt_out_artist(
        open_store(), party, artist, instant(effective, field="effective"), actor=actor, as_party=as_party
    )
    console.print(f"{len(made)} opt-out(s) by {party} for artist {artist} recorded {acting_line(as_party)}.")


@optout_app.command("list")
@handle_errors
def list_optouts(
    party: Annotated[str | None, typer.Option(help="Only this party's opt-outs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The opt-outs on record."""
    catalog = open_store().snapshot()
    rows = [o for _, o in sorted(catalog.optouts.items()) if party is None or o.party_id == party]
    if as_json:
        print_json([optout_dict(o) for o in rows])
        return
    table = Table(title=f"Opt-outs ({len(rows)})", title_justify="left")
    for col in ("id", "party", "scope", "target", "uses", "effective"):
        table.add_column(col)
    for o in rows:
        table.add_row(
            o.optout_id,
            _name(catalog, o.party_id),
            o.scope.value,
            o.target or "-",
            ", ".join(sorted(u.value for u in o.uses)),
            iso(o.effective) or "",
        )
    console.print(table)


# ``accord catalog transfer`` (added to the catalog group in accord.cli.SUBCOMMANDS): ownership belongs with
# the catalog commands, its rule with the rights.
@handle_errors
def transfer_cmd(
    key: Annotated[str, typer.Argument(help="The ISRC (or, with --work, the work id) whose share moves.")],
    from_party: Annotated[str, typer.Option("--from", help="The party giving its share.")],
    to_party: Annotated[str, typer.Option("--to", help="The party receiving it.")],
    share: Annotated[
        str | None, typer.Option(help="Percent of the whole that moves (default: all of --from's share).")
    ] = None,
    work: Annotated[bool, typer.Option("--work", help="A work's publishing share, not a recording's master.")] = False,
    consent_from: Annotated[
        str | None, typer.Option(help="Reference of --from's consent (a signed letter, a ticket).")
    ] = None,
    consent_to: Annotated[str | None, typer.Option(help="Reference of --to's consent.")] = None,
    operator: Annotated[
        bool, typer.Option("--operator", help="The operator transfers alone (needs --reason), not both parties.")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why the operator transfers (with --operator).")] = None,
    actor: Annotated[str, typer.Option(help="Who records it, for the audit log.")] = "operator",
) -> None:
    """Move a master (or publishing) share between two parties: both consent, or the operator with a reason."""
    if operator and not (reason or "").strip():
        err = "reason: --operator needs a --reason, recorded in the audit log"
        raise typer.BadParameter(err, param_hint="--reason")
    consents = {p: ref for p, ref in ((from_party, consent_from), (to_party, consent_to)) if ref}
    moved = transfer_share(
        open_store(),
        "works" if work else "recordings",
        key.strip() if work else key.strip().upper().replace("-", ""),
        from_party,
        to_party,
        actor=actor,
        ppm=None if share is None else percent_to_ppm(share, field="share"),
        consents=None if operator else consents,
        operator_reason=reason if operator else None,
    )
    how = f"by the operator ({reason})" if operator else "with both parties' consent"
    console.print(
        f"{ppm_to_percent(moved.ppm)}% of {moved.key} moved from {moved.from_party} to {moved.to_party} {how}."
    )
