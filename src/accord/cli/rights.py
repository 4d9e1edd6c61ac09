"""``accord agreement`` and ``accord optout``: grant, end, list licences; record opt-outs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.table import Table

from accord.cli.common import console, handle_errors, instant, open_store, print_json
from accord.errors import Conflict, NotFound, Problem, Rejected
from accord.money import format_money, ppm_to_percent
from accord.registry.delivery import Item, Loc
from accord.registry.entities import Agreement, Catalog, OptOut
from accord.registry.rights import read_agreement, read_optout
from accord.registry.store import ChangeSet, Store
from accord.timeutil import iso

agreement_app = typer.Typer(help="Licences granted by rights holders: grant, end, list.", no_args_is_help=True)
optout_app = typer.Typer(help="Opt-outs by owners, artists and writers: add, list.", no_args_is_help=True)

OPTIONS = Loc("", "options")


def _reject_or(record: Any, problems: list[Problem], what: str) -> Any:
    if problems or record is None:
        raise Rejected(what, problems)
    return record


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
    store = open_store()
    catalog = store.snapshot()
    problems: list[Problem] = []
    agreement = _reject_or(read_agreement(Item(OPTIONS, data), problems, catalog), problems, "agreement")
    existing = catalog.agreements.get(agreement.agreement_id)
    if existing is not None and existing != agreement:
        msg = f"agreement {agreement.agreement_id!r} already exists with other terms; end it and grant a new id"
        raise Conflict(msg)
    result = store.apply(ChangeSet(agreements=(agreement,)), actor=actor, action="agreement.granted")
    verb = "granted" if result.changed_anything else "already recorded, nothing changed"
    console.print(f"Agreement [bold]{agreement.agreement_id}[/] {verb}.")


@agreement_app.command("end")
@handle_errors
def end_cmd(
    agreement_id: Annotated[str, typer.Argument(help="The agreement to end.")],
    at: Annotated[str, typer.Option(help="The instant it ends (exclusive).")],
    actor: Annotated[str, typer.Option(help="Who records it, for the audit log.")] = "operator",
) -> None:
    """End an agreement at an instant (an amendment: the earlier version stays in history)."""
    store = open_store()
    ending = end_agreement(store, agreement_id, instant(at, field="at"), actor=actor)
    console.print(f"Agreement [bold]{agreement_id}[/] ends at {iso(ending.end)}.")


def end_agreement(store: Store, agreement_id: str, at: Any, *, actor: str) -> Agreement:
    """Bring an agreement's end forward to ``at``; ending at the same instant again changes nothing."""
    current = store.snapshot().agreements.get(agreement_id)
    if current is None:
        msg = f"agreement {agreement_id!r}: not in the registry"
        raise NotFound(msg)
    if at <= current.start:
        msg = f"at: {iso(at)} is not after the agreement's start {iso(current.start)}"
        raise Conflict(msg)
    if current.end is not None and at > current.end:
        msg = f"at: {iso(at)} is after the agreement's end {iso(current.end)}; an end can only be brought forward"
        raise Conflict(msg)
    ended = replace(current, end=at)
    store.apply(ChangeSet(agreements=(ended,)), actor=actor, action="agreement.ended")
    return ended


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


def agreement_dict(a: Agreement) -> dict[str, Any]:
    t = a.terms
    return {
        "id": a.agreement_id,
        "licensor": a.licensor,
        "side": a.side.value,
        "uses": sorted(u.value for u in a.uses),
        "territory": {"worldwide": True, "exclude": sorted(a.territory.exclude)}
        if a.territory.worldwide
        else {"include": sorted(a.territory.include)},
        "start": iso(a.start),
        "end": iso(a.end),
        "coverage": {"catalog": True}
        if a.coverage.catalog
        else (
            {"recordings": sorted(a.coverage.recordings)}
            if a.coverage.recordings
            else {"works": sorted(a.coverage.works)}
        ),
        "terms": {
            "pool_share_ppm": t.pool_share_ppm,
            "master_split_ppm": t.master_split_ppm,
            "training_pool_method": t.training_pool_method.value,
            "minimum_guarantee": None
            if t.minimum_guarantee is None
            else {"micros": t.minimum_guarantee.micros, "currency": t.minimum_guarantee.currency},
            "advance": None if t.advance is None else {"micros": t.advance.micros, "currency": t.advance.currency},
        },
        "model_scope": a.model_scope.value,
    }


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
) -> None:
    """Record an opt-out. The same opt-out given twice is recorded once."""
    store = open_store()
    optout = record_optout(
        store,
        {"party": party, "scope": scope, "target": target, "uses": use, "effective": effective},
        optout_id=optout_id,
        actor=actor,
    )
    console.print(f"Opt-out [bold]{optout.optout_id}[/] by {optout.party_id} recorded ({optout.scope.value}).")


def record_optout(store: Store, data: dict[str, Any], *, optout_id: str | None, actor: str) -> OptOut:
    """Validate and record an opt-out; its default id is a hash of its content (idempotent)."""
    if not optout_id:
        canon = json.dumps({k: data[k] for k in sorted(data)}, sort_keys=True, default=str)
        optout_id = "OPT-" + hashlib.sha256(canon.encode()).hexdigest()[:12].upper()
    catalog = store.snapshot()
    problems: list[Problem] = []
    optout = read_optout(Item(OPTIONS, {"id": optout_id, **{k: v for k, v in data.items() if v}}), problems, catalog)
    if problems or optout is None:
        raise Rejected("opt-out", problems)
    existing = catalog.optouts.get(optout.optout_id)
    if existing is not None and existing != optout:
        msg = f"opt-out {optout.optout_id!r} already exists with other content"
        raise Conflict(msg)
    store.apply(ChangeSet(optouts=(optout,)), actor=actor, action="optout.added")
    return optout


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
        print_json(
            [
                {
                    "id": o.optout_id,
                    "party": o.party_id,
                    "scope": o.scope.value,
                    "target": o.target,
                    "uses": sorted(u.value for u in o.uses),
                    "effective": iso(o.effective),
                }
                for o in rows
            ]
        )
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
