"""The ``accord`` command: thin Typer commands over the domain functions.

Building the command tree imports only Typer, Rich and this package's light parts: each sub-command's
module (and its heavy dependencies) is imported when that sub-command runs (see :mod:`accord.cli.lazy`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from accord import __version__
from accord.cli.common import EXIT_ERROR, EXIT_NO, console, err_console, handle_errors, instant, open_store, print_json
from accord.cli.lazy import LazyGroup, Subcommand

SUBCOMMANDS = (
    Subcommand(
        "attribute",
        "accord.cli.attribution:attribute_cmd",
        "Attribute any MIDI file to the items of a model's training manifest.",
    ),
    Subcommand(
        "serve",
        "accord.cli.api:serve_cmd",
        "Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) and the portal with uvicorn.",
    ),
    Subcommand(
        "worker",
        "accord.cli.worker:worker_cmd",
        "Run queued jobs until stopped (SIGTERM or Ctrl-C: the job in hand is finished first).",
    ),
    Subcommand(
        "audit",
        "accord.cli.datasets:audit_cmd",
        "Manifests and models holding items no longer eligible; models awaiting approval.",
    ),
    Subcommand(
        "demo",
        "accord.cli.demo:demo",
        "Run the end-to-end demo: catalog, eligibility, signed training set, summary, proofs.",
    ),
    Subcommand(
        "train",
        "accord.cli.studio:train_cmd",
        "Train a model on a manifest (reading only its hash-checked files) and register it with its card.",
    ),
    Subcommand(
        "generate",
        "accord.cli.studio:generate_cmd",
        "Generate a piece: MIDI, audio with its C2PA credential, a signed sidecar, and a piano roll.",
    ),
    Subcommand("init"),
    Subcommand("check"),
    Subcommand("log"),
    Subcommand(
        "catalog",
        "accord.cli.catalog:app",
        "Catalog deliveries: import, demo, show, eligibility.",
        extra=(("transfer", "accord.cli.rights:transfer_cmd"),),
    ),
    Subcommand("attribution", "accord.cli.attribution:attribution_app", "Attribution: indexes and honest evaluation."),
    Subcommand("apikey", "accord.cli.api:apikey_app", "API keys: one per party and role, stored only as hashes."),
    Subcommand("agreement", "accord.cli.rights:agreement_app", "Licences granted by rights holders: grant, end, list."),
    Subcommand("optout", "accord.cli.rights:optout_app", "Opt-outs by owners, artists and writers: add, list."),
    Subcommand(
        "dataset", "accord.cli.datasets:dataset_app", "Consented training sets: build, prove, verify, summarise, diff."
    ),
    Subcommand(
        "model",
        "accord.cli.model:model_app",
        "Model versions: register, approve or refuse, status, reproduce, memorisation audit, retrain.",
        extra=(("evaluate", "accord.cli.studio:evaluate_cmd"),),
    ),
    Subcommand("creator", "accord.cli.studio:creator_app", "Creators and their plans."),
    Subcommand(
        "output",
        "accord.cli.studio:output_app",
        "Generated outputs: list, play, download (within the plan's allowance).",
    ),
    Subcommand("credential", "accord.cli.studio:credential_app", "Content credentials of outputs."),
    Subcommand("usage", "accord.cli.royalties:usage_app", "Usage events: ingest batches into the Parquet usage log."),
    Subcommand(
        "royalties", "accord.cli.royalties:royalties_app", "Royalty runs, period close, payouts and statements."
    ),
    Subcommand(
        "ledger", "accord.cli.royalties:ledger_app", "The double-entry royalty ledger: verify, balances, reversals."
    ),
    Subcommand("fx", "accord.cli.royalties:fx_app", "Exchange rates for royalty conversions: import reference rates."),
    Subcommand(
        "bank",
        "accord.cli.bank:bank_app",
        "Bank details for payouts (IBAN, BIC, holder, currency): set or show a party's account.",
    ),
    Subcommand(
        "guard",
        "accord.cli.guard:guard_app",
        "The replication guard: does a piece copy a catalog work or recording?",
    ),
    Subcommand("key"),
    Subcommand("id"),
)
"""Every top-level command, in the order ``accord --help`` lists them; the lazy ones with their one-line help."""


class AccordCommands(LazyGroup):
    """The ``accord`` group: :data:`SUBCOMMANDS`, imported on first use; errors handled as by AccordGroup."""

    subcommands = SUBCOMMANDS


app = typer.Typer(
    name="accord",
    help="Accord: licensed-by-design AI music. Registry, licensing policy, consented training, royalties.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=AccordCommands,  # lazy sub-commands; one top-level error handler: one line, exit 2 (1 for a negative answer)
)
key_app = typer.Typer(help="The operator's signing key.", no_args_is_help=True)
app.add_typer(key_app, name="key")
id_app = typer.Typer(
    help="Music-industry identifiers: ISRC, ISWC, IPI, ISNI, GRid, DPID, UPC/EAN.", no_args_is_help=True
)
app.add_typer(id_app, name="id")


@app.callback(invoke_without_command=True)
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="ACCORD_DEBUG", help="On an error, also print its traceback (ACCORD_DEBUG=1)."),
    ] = False,
) -> None:
    """Exit codes: 0 done (or yes), 1 a negative answer (not eligible, invalid, rejected input), 2 an error."""
    if version:
        typer.echo(f"accord {__version__}")
        raise typer.Exit()


@app.command()
@handle_errors
def init() -> None:
    """Create ACCORD_HOME, the registry (migrated to the newest schema) and the operator's signing key."""
    from accord.provenance.certificates import ensure_dev_chain
    from accord.settings import get_settings
    from accord.signing import ensure_operator_key

    settings = get_settings()
    store = open_store()
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    key, created = ensure_operator_key(settings.home)
    chain = ensure_dev_chain(settings.home)
    console.print(f"Accord home:    {settings.home}")
    console.print(f"Registry:       {store.engine.url.render_as_string(hide_password=True)} (migrated)")
    console.print(f"Media store:    {settings.media_dir}")
    console.print(f"Operator key:   Ed25519 {key.public_hex} ({'created' if created else 'kept'})")
    console.print(f"C2PA signer:    {chain.source} chain {chain.chain_path} ({chain.algorithm})")


@key_app.command("export")
@handle_errors
def key_export(
    pem: Annotated[bool, typer.Option("--pem", help="Print a PEM block instead of hex.")] = False,
) -> None:
    """Print the operator's public key, to give to rights holders who verify proofs."""
    from accord.settings import get_settings
    from accord.signing import load_operator_key

    key = load_operator_key(get_settings().home)
    typer.echo(key.public_pem if pem else key.public_hex)


@app.command()
@handle_errors
def check(
    isrc: Annotated[str, typer.Argument(help="The recording's ISRC.")],
    use: Annotated[str, typer.Option(help="train, generate or remix.")],
    territory: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 territory of the use.")],
    at: Annotated[str | None, typer.Option(help="Instant of the use (default: now).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Registry as it stood then (default: now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """May this recording be used so? Exit 0 eligible, 1 not eligible, 2 error."""
    from rich.table import Table

    from accord.identifiers import validate_isrc
    from accord.licensing import LicensingPolicy
    from accord.timeutil import iso

    code = validate_isrc(isrc)
    store = open_store()
    # only this recording and its works (with every party, agreement and opt-out): what the policy needs
    catalog = store.snapshot(instant(as_of, field="as_of") if as_of else None, isrcs=[code])
    decision = LicensingPolicy(catalog).decide(code, use, instant(at, field="at"), territory)
    if as_json:
        print_json(decision.to_dict())
    else:
        rec = catalog.recordings.get(code)
        title = f" ({rec.title})" if rec else ""
        verdict = "[bold green]ELIGIBLE[/]" if decision.eligible else "[bold red]NOT ELIGIBLE[/]"
        console.print(
            f"{code}{title}: {verdict} for {decision.use.value} in {decision.territory} at {iso(decision.at)}"
        )
        if decision.eligible:
            table = Table(title="Agreements relied on", title_justify="left")
            for col in ("agreement", "licensor", "side", "until"):
                table.add_column(col)
            for aid in decision.relied_on:
                a = catalog.agreements[aid]
                table.add_row(aid, a.licensor, a.side.value, iso(a.end) or "open-ended")
        else:
            table = Table(title="Reasons", title_justify="left")
            for col in ("code", "side", "party", "subject", "why"):
                table.add_column(col, overflow="fold")
            for r in decision.reasons:
                table.add_row(r.code, r.side.value if r.side else "", r.party_id, r.subject, r.message)
        console.print(table)
    if not decision.eligible:
        raise typer.Exit(EXIT_NO)


@id_app.command("check")
def id_check(
    code: Annotated[str, typer.Argument(help="The identifier, in any usual spelling.")],
    kind: Annotated[
        str | None, typer.Option(help="isrc, iswc, ipi_name, ipi_base, isni, grid, dpid, gtin (default: guess).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What kind of identifier this is, whether it is valid, and why. Exit 0 valid, 1 invalid, 2 usage."""
    from accord.identifiers import identify

    try:
        result = identify(code, kind)
    except ValueError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_ERROR) from None
    if as_json:
        print_json(result.to_dict())
    elif result.valid:
        console.print(f"[green]valid[/] {result.kind.value if result.kind else ''}: {result.display}")
    else:
        what = result.kind.value if result.kind else "unknown kind"
        console.print(f"[red]invalid[/] {what}: {result.message} (rule: {result.rule})", highlight=False)
    if not result.valid:
        raise typer.Exit(EXIT_NO)


@app.command("log")
@handle_errors
def audit_log(
    limit: Annotated[int, typer.Option(help="How many events, newest first.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The audit log of changes to rights: who, when, what."""
    from rich.table import Table

    from accord.timeutil import iso

    events = open_store().audit_log(limit)
    if as_json:
        print_json(
            [
                {"at": iso(e.at), "actor": e.actor, "action": e.action, "subject": e.subject, "detail": e.detail}
                for e in events
            ]
        )
        return
    table = Table(title="Audit log (newest first)", title_justify="left")
    for col in ("at", "actor", "action", "subject", "detail"):
        table.add_column(col, overflow="fold")
    for e in events:
        table.add_row(iso(e.at) or "", e.actor, e.action, e.subject, str(e.detail))
    console.print(table)
