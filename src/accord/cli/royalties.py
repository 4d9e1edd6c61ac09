"""``accord usage``, ``accord royalties`` and ``accord ledger``: thin commands over :mod:`accord.royalties`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import EXIT_NO, console, handle_errors, open_store, print_json, progress_bar
from accord.money import format_money
from accord.registry.bank import OPERATOR, bank_details_of
from accord.registry.entities import Money
from accord.registry.store import Store
from accord.royalties import heads, ledger
from accord.royalties.accounts import books, reconcile, write_statements
from accord.royalties.fx import import_file, rate_date, rates_on
from accord.royalties.payouts import write_payout_files
from accord.royalties.periods import CLOSED, period_status
from accord.royalties.run import close_period, payout_batch, run_period
from accord.royalties.usage import ingest_file, sync_platform_events
from accord.settings import Settings, get_settings
from accord.signing import ensure_operator_key, parse_public_key

usage_app = typer.Typer(help="Usage events: ingest batches into the Parquet usage log.", no_args_is_help=True)
royalties_app = typer.Typer(help="Royalty runs, period close, payouts and statements.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry royalty ledger: verify, balances, reversals.", no_args_is_help=True)

PeriodOpt = Annotated[str, typer.Option("--period", help="The accounting period, a calendar month YYYY-MM.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _money(micros: int, currency: str) -> str:
    return format_money(Money(micros, currency)) if micros >= 0 else "-" + format_money(Money(-micros, currency))


@usage_app.command("ingest")
@handle_errors
def usage_ingest(
    file: Annotated[Path, typer.Argument(help="JSON-lines (.jsonl) or CSV (.csv) file of usage events.")],
    period: Annotated[str | None, typer.Option(help="Refuse events outside this period (YYYY-MM).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a batch (all or nothing), skip events already ingested, append the rest atomically."""
    settings = get_settings()
    with progress_bar() as update:
        result = ingest_file(open_store(), settings, file, period=period, actor="cli", progress=update)
    if as_json:
        print_json(result.__dict__)
        return
    console.print(
        f"{result.received} events read: {result.new} new, {result.duplicates} already ingested, "
        f"{result.late} late (into the next open period); periods {', '.join(result.periods) or '-'}"
    )
    if result.batch_id:
        console.print(f"batch {result.batch_id}: {len(result.files)} file(s) under {settings.usage_path}")


@usage_app.command("sync")
@handle_errors
def usage_sync() -> None:
    """Land the platform's own plays and downloads (recorded in SQL) in the Parquet usage log."""
    result = sync_platform_events(open_store(), get_settings())
    console.print(f"{result.new} platform events added to the usage log ({result.duplicates} already there)")


@royalties_app.command("run")
@handle_errors
def royalties_run(period: PeriodOpt, as_json: JsonOpt = False) -> None:
    """Compute the period's royalties (re-runnable until the period is closed; same inputs, same bytes)."""
    settings = get_settings()
    with progress_bar() as progress:
        run = run_period(open_store(), settings, period, actor="cli", progress=progress)
    if as_json:
        print_json({**run.summary, "result_hash": run.result_hash, "folder": str(run.folder)})
        return
    s = run.summary
    table = Table(title=f"Royalty run {run.run_id} for {period} ({run.status})", title_justify="left")
    for col in ("currency", "revenue", "payable to parties", "unmatched (suspense)", "operator"):
        table.add_column(col, justify="right" if col != "currency" else "left")
    for cur, total in sorted(s["revenue"].items()):
        table.add_row(
            cur,
            _money(total, cur),
            _money(s["payable"].get(cur, 0), cur),
            _money(s["unmatched"].get(cur, 0), cur),
            _money(s["operator"].get(cur, 0), cur),
        )
    console.print(table)
    console.print(f"engine {run.engine_version}; inputs {run.inputs_hash[:16]}; result {run.result_hash[:16]}")
    for note in s["notes"]:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"files: {run.folder}")


@royalties_app.command("close")
@handle_errors
def royalties_close(period: PeriodOpt) -> None:
    """Post the period's run to the ledger and make the period immutable."""
    with progress_bar() as update:  # the period is run again first: its inputs must not have changed
        closing = close_period(open_store(), get_settings(), period, actor="cli", progress=update)
    console.print(
        f"period {period} closed with run {closing.run.run_id}: {closing.transfers} ledger transfers, "
        f"ledger head {closing.ledger_head[:16]}"
    )
    for g in closing.guarantees:
        console.print(
            f"minimum guarantee {g.agreement_id} ({g.party_id}), term {g.term}: guaranteed "
            f"{_money(g.guaranteed, g.currency)}, earned to date {_money(g.earned, g.currency)}, shortfall paid "
            f"{_money(g.shortfall, g.currency)}" + ("" if g.settled else " (term continues)")
        )


@royalties_app.command("payout")
@handle_errors
def royalties_payout(
    period: PeriodOpt,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the payout files (default ACCORD_HOME/payouts/P).")
    ] = None,
) -> None:
    """Pay out a closed period's balances in whole minor units and write the bank files (CSV, pain.001).

    Parties below the threshold, with an advance outstanding or without bank details are held:
    listed with the reason, their balance left payable for the next payout.
    """
    settings, store = get_settings(), open_store()
    batch = payout_batch(store, settings, period, actor="cli")
    table = Table(title=f"Payouts for {period} (threshold {settings.payout_threshold})", title_justify="left")
    for col in ("party", "amount", "carried (sub-unit, stays payable)"):
        table.add_column(col)
    for p in batch.payouts:
        table.add_row(p.party_id, _money(p.amount, p.currency), _money(p.carried, p.currency))
    console.print(table)
    for h in batch.held:
        console.print(f"[yellow]held[/] {h.party_id}: {_money(h.amount, h.currency)} stays payable ({h.reason})")
    if not batch.payouts:
        return
    accounts = bank_details_of(store, [p.party_id for p in batch.payouts] + [OPERATOR])
    paths, notes = write_payout_files(
        list(batch.payouts),
        accounts,
        out or settings.home / "payouts" / period,
        period=period,
        debtor=accounts.get(OPERATOR),
        when=store.clock().date(),
    )
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"payout files: {', '.join(str(p) for p in paths)}")


@royalties_app.command("statements")
@handle_errors
def royalties_statements(
    period: PeriodOpt,
    party: Annotated[str | None, typer.Option(help="Only this party's statements.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the files (default ACCORD_HOME/statements/P).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write statements (CSV, JSON, HTML) and the DSR flat file; check they reconcile to the revenue."""
    store, settings = open_store(), get_settings()
    statements, paths = write_statements(store, settings, period, party=party, out=out)
    pb = books(store, settings, period)
    rec = reconcile(statements, pb) if party is None else None
    if as_json:
        print_json(
            {
                "statements": [
                    {"party_id": s.party_id, "currency": s.currency, "income": dict(s.income),
                     "closing_balance": s.closing_balance}
                    for s in statements
                ],
                "files": [str(p) for p in paths],
                "reconciled": None if rec is None else rec.ok,
            }
        )  # fmt: skip
    else:
        status = "closed" if pb.closed else "open: a preview of what closing would post"
        table = Table(title=f"Statements for {period} ({status})", title_justify="left")
        for col in ("party", "opening", "training", "output", "recouped", "reserves", "paid", "closing"):
            table.add_column(col, justify="left" if col == "party" else "right")
        for s in statements:
            c = s.currency
            table.add_row(
                f"{s.party_name} ({s.party_id})",
                *(_money(v, c) for v in (s.opening_balance, s.income_for("training"), s.income_for("output"))),
                *(_money(v, c) for v in (s.recouped, s.reserves, s.paid, s.closing_balance)),
            )
        console.print(table)
        console.print(f"{len(paths)} files in {paths[0].parent if paths else '-'}")
        if rec is not None:
            verdict = "[green]reconciles[/]" if rec.ok else "[red]does not reconcile[/]"
            console.print(f"statements + unmatched + operator share = revenue: {verdict}")
    if rec is not None and not rec.ok:
        for problem in rec.problems:
            console.print(f"[red]{problem}[/]")
        raise typer.Exit(EXIT_NO)


def _public_key(value: str | None, settings: Settings) -> str | None:
    """``--public-key``: hex, a PEM block or a PEM file; else the operator's own key (if any)."""
    if value is None:
        return heads.operator_public_key(settings.home)
    path = Path(value)
    return parse_public_key(path.read_text() if path.is_file() else value)


@ledger_app.command("verify")
@handle_errors
def ledger_verify(
    public_key: Annotated[
        str | None,
        typer.Option("--public-key", help="Check the signed heads against this Ed25519 key (hex, PEM, or a PEM file)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Walk the hash chain and the signed heads: exit 1 naming each edited, deleted or reordered
    transfer (and field), a removed or forged head, or a ledger cut short after its latest head."""
    v = ledger.verify(open_store(), _public_key(public_key, get_settings()))
    if as_json:
        print_json(
            {"ok": v.ok, "checked": v.checked, "heads": v.heads, "public_key": v.public_key, "head": v.head,
             "problems": list(v.problems)}
        )  # fmt: skip
    elif v.ok:
        console.print(
            f"[green]ledger intact[/]: {v.checked} transfers, head {v.head[:16]}, ending at the latest of "
            f"{v.heads} signed heads (key {v.public_key[:16] or '-'})"
        )
    else:
        for problem in v.problems:
            console.print(f"[red]{problem}[/]")
    if not v.ok:
        raise typer.Exit(EXIT_NO)


@ledger_app.command("balances")
@handle_errors
def ledger_balances(party: Annotated[str | None, typer.Option(help="Only this party's accounts.")] = None) -> None:
    """Every account's balance (credits - debits)."""
    bal = ledger.balances(ledger.transfers(open_store()))
    table = Table(title="Ledger balances (credits - debits)", title_justify="left")
    for col in ("account", "balance"):
        table.add_column(col)
    for acc, amount in sorted(bal.items()):
        if party is None or acc.startswith(f"{party}:"):
            table.add_row(acc, _money(amount, ledger.parse_account(acc)[1]))
    console.print(table)


@ledger_app.command("reverse")
@handle_errors
def ledger_reverse(
    transfer_id: Annotated[str, typer.Argument(help="The transfer to correct.")],
    reason: Annotated[str, typer.Option(help=f"Reason code: {', '.join(ledger.REASON_CODES)}.")],
    period: PeriodOpt,
    note: Annotated[str, typer.Option(help="Why, in words.")] = "",
) -> None:
    """Correct a transfer by a reversing one in an open period (transfers are never edited)."""
    key, _ = ensure_operator_key(get_settings().home)
    tr = ledger.reverse(open_store(), transfer_id, reason_code=reason, period=period, key=key, note=note)
    console.print(f"posted reversal {tr.transfer_id} in {tr.period}: {tr.debit_account} -> {tr.credit_account}")


@ledger_app.command("adopt")
@handle_errors
def ledger_adopt() -> None:
    """Sign the head of a ledger kept before heads were signed (once; refused if its chain is broken)."""
    settings = get_settings()
    head = ledger.adopt(open_store(), ensure_operator_key(settings.home)[0])
    console.print(f"{head.describe()}: {head.transfers} transfers, ending {head.last_hash[:16]}")


DEMO_USD_PER_EUR = "1.0800"
"""The demo's exchange rate (illustrative, not the ECB's): its USD advance and guarantee need one."""


def _demo_rates(store: Store, settings: Settings, period: str) -> None:
    """Import an illustrative EUR/USD rate for the period's rate date, unless one is stored already."""
    day = rate_date(period)
    if "USD" in rates_on(store, day):
        return
    path = settings.home / "demo" / f"fx-{period}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"Date,USD,\n{day.isoformat()},{DEMO_USD_PER_EUR},\n", encoding="utf-8")
    import_file(store, path, actor="demo")
    console.print(
        f"Exchange rate for {period} (illustrative, not the ECB's): 1 EUR = {DEMO_USD_PER_EUR} USD on "
        f"{day.isoformat()}, the period's last business day (accord fx import loads real ones)."
    )


def royalties_demo_stage(store: Store, settings: Settings, *, seed: int = 0) -> None:
    """The demo's last stage: a simulated month of usage, a closed period, what each rights holder earned."""
    from accord.demo.usage import revenue_total, simulate_month, write_jsonl
    from accord.royalties.periods import period_of

    period = period_of(store.clock())
    console.rule(f"[bold]8. A month of usage and the {period} royalty period")
    if period_status(store, period) == CLOSED:
        console.print(f"Period {period} is already closed (an earlier demo run); its statements stand.")
        return
    events = simulate_month(store, period, seed=seed)
    path = write_jsonl(events, settings.home / "demo" / f"usage-{period}.jsonl")
    result = ingest_file(store, settings, path, period=period, actor="demo")
    kinds: dict[str, int] = {}
    for e in events:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    console.print(
        f"Simulated {path.name}: {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}; revenue "
        f"{revenue_total(events)} EUR. Ingested {result.new} events ({result.duplicates} already known)."
    )
    _demo_rates(store, settings, period)
    with progress_bar() as progress:
        run = run_period(store, settings, period, actor="demo", progress=progress)
    closing = close_period(store, settings, period, actor="demo")
    verified = ledger.verify(store, heads.operator_public_key(settings.home)).ok
    console.print(
        f"Run {run.run_id} (engine {run.engine_version}, inputs {run.inputs_hash[:12]}): period {period} closed, "
        f"{closing.transfers} ledger transfers; ledger verified: {verified}"
    )
    statements, paths = write_statements(store, settings, period)
    pb = books(store, settings, period)
    rec = reconcile(statements, pb)
    lines = pb.result.lines.to_pylist()
    table = Table(title=f"What each rights holder earned in {period}, and why", title_justify="left")
    for col in ("rights holder", "training pool", "output pool", "total", "why"):
        table.add_column(col, justify="right" if col in ("training pool", "output pool", "total") else "left")
    for st in sorted(statements, key=lambda s: (-s.total_income, s.party_id)):
        mine = [line for line in lines if line["party_id"] == st.party_id and line["currency"] == st.currency]
        recs = {line["isrc"] for line in mine if line["basis"] == "training"}
        outs = {line["output_id"] for line in mine if line["basis"] == "output"}
        sides = sorted({line["side"] for line in mine})
        why = f"{len(recs)} recording(s) in the training set ({'/'.join(sides)})"
        if outs:
            why += f"; attributed in {len(outs)} piece(s)"
        c = st.currency
        table.add_row(
            f"{st.party_name} ({st.party_id})",
            _money(st.income_for("training"), c),
            _money(st.income_for("output"), c),
            _money(st.total_income, c),
            why,
        )
    console.print(table)
    for cur, revenue, income, unmatched, operator, _ in rec.rows:
        console.print(
            f"{cur}: revenue {_money(revenue, cur)} = rights holders {_money(income, cur)} + unmatched "
            f"{_money(unmatched, cur)} + operator {_money(operator, cur)}: "
            f"{'[green]reconciles[/]' if rec.ok else '[red]does not reconcile[/]'}"
        )
    console.print(f"Statements (CSV, JSON, HTML) and the DSR file: {paths[0].parent if paths else '-'}")


fx_app = typer.Typer(help="Exchange rates for royalty conversions: import reference rates.", no_args_is_help=True)


@fx_app.command("import")
@handle_errors
def fx_import(
    file: Annotated[Path, typer.Argument(help="The ECB's reference-rate CSV (Date, then one column per currency).")],
    as_json: JsonOpt = False,
) -> None:
    """Store a file's rates (units per 1 EUR, exact): a re-import is a no-op, a changed rate is refused."""
    result = import_file(open_store(), file, actor="cli")
    if as_json:
        print_json(result.__dict__)
        return
    console.print(
        f"{result.name} (sha256 {result.source_sha256[:12]}): {result.dates} day(s), {result.added} rate(s) "
        f"added, {result.already} already stored"
    )
