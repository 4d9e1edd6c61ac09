"""``accord apikey`` (create, list, revoke) and ``accord serve`` (the HTTP API and the portal)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from accord.api.auth import create_key, list_keys, revoke_key
from accord.cli.common import console, err_console, handle_errors, open_store, print_json
from accord.timeutil import iso

apikey_app = typer.Typer(help="API keys: one per party and role, stored only as hashes.", no_args_is_help=True)


@apikey_app.command("create")
@handle_errors
def apikey_create(
    role: Annotated[str, typer.Option(help="rights_holder, creator or operator.")],
    party: Annotated[str, typer.Option(help="The rights holder's party id, the creator's id, or the operator's name.")],
    label: Annotated[str, typer.Option(help="A note for people, e.g. who uses the key.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Make an API key; its secret is printed once, here, and never again."""
    key, secret = create_key(open_store(), role=role, party_id=party, label=label)
    if as_json:
        print_json(key.to_dict() | {"secret": secret})
        return
    console.print(
        f"API key [bold]{key.key_id}[/] for {key.role.value} {key.party_id}" + (f" ({label})" if label else "")
    )
    err_console.print("The secret is shown only now; keep it safe:", highlight=False)
    typer.echo(secret)


@apikey_app.command("list")
@handle_errors
def apikey_list(
    party: Annotated[str | None, typer.Option(help="Only this party's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every API key (never its secret): role, party, when made, when revoked."""
    keys = list_keys(open_store(), party_id=party)
    if as_json:
        print_json([k.to_dict() for k in keys])
        return
    table = Table(title=f"API keys ({len(keys)})", title_justify="left")
    for col in ("key", "role", "party", "label", "created", "revoked"):
        table.add_column(col, overflow="fold")
    for k in keys:
        table.add_row(k.key_id, k.role.value, k.party_id, k.label, iso(k.created_at) or "", iso(k.revoked_at) or "")
    console.print(table)


@apikey_app.command("revoke")
@handle_errors
def apikey_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (16 hex digits).")]) -> None:
    """Revoke a key: requests and portal sessions made with it are refused from now on."""
    key = revoke_key(open_store(), key_id)
    console.print(f"API key [bold]{key.key_id}[/] ({key.role.value} {key.party_id}) revoked at {iso(key.revoked_at)}")


@handle_errors
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    processes: Annotated[int, typer.Option(min=1, help="uvicorn worker processes answering requests.")] = 1,
    job_workers: Annotated[
        int,
        typer.Option(
            min=0, help="`accord worker` processes to start beside the API (0: none; run `accord worker` elsewhere)."
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) and the portal with uvicorn.

    Requests only queue jobs; job workers (started here with --job-workers, or `accord worker`
    anywhere that reaches the same registry) run them. The workers started here stop with it.
    """
    import uvicorn

    from accord.cli.worker import start_workers, stop_workers
    from accord.registry.store import Store
    from accord.settings import get_settings

    Store.open(get_settings()).close()  # migrate once, here, before several processes open the registry
    workers = start_workers(job_workers)
    console.print(
        f"Accord API on http://{host}:{port} (OpenAPI: /openapi.json, docs: /docs): "
        f"{processes} API process(es), {job_workers} job worker(s)"
    )
    try:
        # an import string and a factory: each uvicorn process builds its own app (and its own connections)
        uvicorn.run(
            "accord.api.app:create_app", factory=True, host=host, port=port, workers=processes, log_level="info"
        )
    finally:
        stop_workers(workers)
