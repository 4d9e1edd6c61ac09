"""``accord attribute FILE`` and ``accord attribution index | evaluate``: which training works shaped a piece."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accord.cli.common import console, handle_errors, open_store, print_json, progress_bar, use_torch_threads
from accord.errors import NotFound, ValidationError
from accord.money import ppm_to_percent
from accord.settings import get_settings

attribution_app = typer.Typer(help="Attribution: indexes and honest evaluation.", no_args_is_help=True)


def print_attribution(data: dict[str, Any], *, title: str) -> None:
    """An attribution (the credential's contract) as tables: top items, works, holders per side."""
    status = "reliable" if data["reliable"] else "NOT reliable (its share falls back to the training pool)"
    console.print(
        f"[bold]{title}[/]: method {data['method']} ({data['method_version']}); {status}; "
        f"unattributed {ppm_to_percent(data['unattributed_ppm'])}%",
        highlight=False,
    )
    t = Table(title="Top items", title_justify="left")
    for col in ("#", "isrc", "title", "works", "share %"):
        t.add_column(col, justify="right" if col in ("#", "share %") else "left", overflow="fold")
    for n, item in enumerate(data["top"], start=1):
        works = ", ".join(w["title"] or w["work_id"] for w in item["works"])
        t.add_row(str(n), item["isrc"], item["title"], works, ppm_to_percent(item["weight_ppm"]))
    console.print(t)
    for side in ("master", "publishing"):
        holders = data["holders"][side]
        if holders:
            shown = ", ".join(  # a committed holder: a party that asked not to be named
                f"{h.get('party_id') or 'undisclosed party'} {ppm_to_percent(h['weight_ppm'])}%" for h in holders[:8]
            )
            console.print(f"  {side}: {shown}", highlight=False)


def print_piece_provenance(output_id: str, credential: dict[str, Any]) -> None:
    """One output's guard verdict and top attributions, in a few lines (the demo's per-piece view)."""
    guard = credential.get("guard") or {}
    verdict = str(guard.get("status", "?"))
    closest = []
    for check, unit in (("symbolic", "significance, -log10 E"), ("audio", "weighted landmarks")):
        e = next((e for e in guard.get("closest") or [] if e.get("check") == check), None)
        if e is not None:
            score = f"{e['score']:.1f}" if check == "symbolic" else f"{e['score']:g}"
            closest.append(f"{check} {score} of {e['threshold']:g} {unit} ({e.get('title') or e['isrc']})")
    nearest = f" — closest: {'; '.join(closest)}" if closest else ""
    console.print(f"[bold]{output_id}[/]  guard: {verdict}{nearest}", highlight=False)
    data = credential.get("attribution") or {}
    if data.get("status") != "computed":
        console.print(f"  attribution: {data.get('status', '?')} {data.get('note', '')}", highlight=False)
        return
    reliable = "reliable" if data["reliable"] else "not reliable: paid through the training pool"
    console.print(
        f"  attribution ({data['method']}, {reliable}): unattributed {ppm_to_percent(data['unattributed_ppm'])}%",
        highlight=False,
    )
    for item in data["top"][:3]:
        works = ", ".join(w["title"] or w["work_id"] for w in item["works"])
        console.print(
            f"    {ppm_to_percent(item['weight_ppm']):>7}%  {item['isrc']}  {item['title']}  ({works})", highlight=False
        )


@handle_errors
def attribute_cmd(
    file: Annotated[Path, typer.Argument(help="A MIDI file (an output or any piece).")],
    model: Annotated[str, typer.Option("--model", help="The model id whose manifest is searched.")],
    method: Annotated[str | None, typer.Option(help="trak, tracin, gradsim or embedding (default: settings).")] = None,
    style: Annotated[str | None, typer.Option(help="Style to read the piece under (default: unknown).")] = None,
    party: Annotated[
        str | None,
        typer.Option(
            help="Show it as this rights holder may see it (the public form, as the API answers it); default: "
            "in full, as the operator."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the credential's attribution JSON.")] = False,
) -> None:
    """Attribute any MIDI file to the items of a model's training manifest."""
    from accord.attribution.service import attribute_midi

    if not file.is_file():
        msg = f"file: {file} does not exist"
        raise NotFound(msg)
    store, settings = open_store(), get_settings()
    use_torch_threads(settings)
    with progress_bar() as update:  # the model's index is built on first use: its stages show as they go
        update("attributing", 0, 1)
        result = attribute_midi(
            store, settings, model, file.read_bytes(), method=method, style=style, label=file.name, progress=update
        )
        update("attributing", 1, 1)
    data = result.to_credential()
    if party is not None:
        data = _as_party(store, settings, party, data, file.read_bytes())
    if as_json:
        print_json(data)
        return
    print_attribution(data, title=file.name)
    if party is not None:
        return  # the method's details (scores of every item) are the operator's
    d = result.details
    console.print(
        f"  {d.get('items')} manifest items; best robust z {d.get('top_z')}; "
        f"{d.get('significant')} significant; query {d.get('query_seconds')} s",
        highlight=False,
    )


def _as_party(store: Any, settings: Any, party: str, contract: dict[str, Any], data: bytes) -> dict[str, Any]:
    """An upload's attribution as a rights holder may see it (:func:`accord.visibility.upload_attribution`)."""
    import hashlib

    from accord import visibility
    from accord.attribution.disclosure import operator_commitment_secret

    secret = operator_commitment_secret(settings.home)
    return visibility.upload_attribution(
        visibility.Party(party), contract, store.snapshot(), secret=secret, sha256=hashlib.sha256(data).hexdigest()
    )


@attribution_app.command("index")
@handle_errors
def index_cmd(
    model: Annotated[str, typer.Option("--model", help="The model id.")],
    method: Annotated[
        list[str] | None, typer.Option("--method", help="Methods to index (repeat; default: every method).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Precompute a model's attribution features over its manifest (stored in the model folder)."""
    from accord.attribution.methods import method_names
    from accord.attribution.service import index_model

    store, settings = open_store(), get_settings()
    use_torch_threads(settings)
    names = method or method_names()
    with progress_bar() as update:
        info = index_model(store, settings, model, names, progress=update)
    if as_json:
        print_json(info)
        return
    t = Table(title=f"Attribution index of {model}", title_justify="left")
    for col in ("method", "items", "size", "seconds"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for name, row in info.items():
        t.add_row(name, str(row.get("items")), f"{row.get('bytes', 0) / 1e6:.1f} MB", f"{row['seconds']:.1f}")
    console.print(t)
    console.print(f"Stored in {settings.models_dir / model / 'attribution'}")


def print_report(report: dict[str, Any]) -> None:
    setup = report["setup"]
    t = Table(
        title=f"Steered outputs ({setup['outputs']} outputs, {setup['items']} manifest items)", title_justify="left"
    )
    for col in ("method", "precision@1", "recall@10", "mean credited share", "reliable", "query (s)"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for row in report["canaries"]:
        t.add_row(
            row["method"],
            f"{row['precision_at_1']:.3f}",
            f"{row['recall_at_10']:.3f}",
            f"{row['named_share'] / 1e4:.1f}%" if row["method"] != "random" else "",
            f"{row['reliable']}/{row['outputs']}" if row["method"] != "random" else "",
            f"{row['seconds_per_query']:.3f}" if row["method"] != "random" else "",
        )
    console.print(t)
    c = report["chance"]
    console.print(f"Chance (exact): precision@1 {c['precision_at_1']:.3f}, recall@10 {c['recall_at_10']:.3f}")
    lo = report.get("leave_top_k_out")
    if lo:
        t = Table(title="Leave-top-k-out: loss of the output (nats/token) after retraining", title_justify="left")
        for col in ("output", "all items", "without top-k", "without k random", "rise top", "rise random"):
            t.add_column(col, justify="left" if col == "output" else "right")
        for r in lo["outputs"]:
            t.add_row(
                r["output"],
                f"{r['loss_full']:.3f}",
                f"{r['loss_without_top']:.3f}",
                f"{r['loss_without_random']:.3f}",
                f"{r['increase_without_top']:+.3f}",
                f"{r['increase_without_random']:+.3f}",
            )
        console.print(t)
        console.print(
            f"Mean rise without the top-k: {lo['mean_increase_without_top']:+.3f}; "
            f"without k random: {lo['mean_increase_without_random']:+.3f} nats/token"
        )


@attribution_app.command("evaluate")
@handle_errors
def evaluate_cmd(
    model: Annotated[
        str | None, typer.Option("--model", help="A registered model (outputs primed with its items).")
    ] = None,
    planted: Annotated[bool, typer.Option("--planted", help="Plant canaries, train a tiny model, evaluate.")] = False,
    method: Annotated[list[str] | None, typer.Option("--method", help="Methods (repeat; default: all).")] = None,
    steps: Annotated[int, typer.Option(help="Training steps of the planted model.")] = 300,
    leave_out: Annotated[
        bool, typer.Option("--leave-out/--no-leave-out", help="Run leave-top-k-out (retrains).")
    ] = True,
    leave_out_steps: Annotated[int, typer.Option(help="Steps of each retraining for leave-top-k-out.")] = 150,
    outputs: Annotated[int, typer.Option(help="Outputs to steer (with --model).")] = 8,
    workdir: Annotated[Path | None, typer.Option(help="Folder for the planted set (default: a temporary one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Precision@1 and recall@10 of every method on steered outputs against a random ranking; leave-top-k-out."""
    from accord.attribution import evaluate as ev

    if planted == (model is not None):
        msg = "evaluate: give exactly one of --model M or --planted"
        raise ValidationError(msg, field="model", value=model)
    use_torch_threads()
    with progress_bar() as update:
        if planted:
            with tempfile.TemporaryDirectory() as tmp:
                report = ev.run_planted(
                    workdir or Path(tmp),
                    steps=steps,
                    leave_out=leave_out,
                    leave_out_steps=leave_out_steps,
                    methods=method,
                    progress=update,
                )
        else:
            report = _evaluate_model(model or "", method, outputs, update)
    if as_json:
        print_json(report)
        return
    print_report(report)


def _evaluate_model(model: str, methods: list[str] | None, outputs: int, update: Any) -> dict[str, Any]:
    """Steer outputs of a registered model with its own items (leave-top-k-out needs --planted: it retrains)."""
    from accord.attribution import evaluate as ev
    from accord.attribution.service import context_for_model
    from accord.model.sample import load_model

    store, settings = open_store(), get_settings()
    ctx = context_for_model(store, settings, model)
    queries = ev.steer_from_items(load_model(ctx.model_dir), ctx, count=outputs)
    return ev.evaluation_report(
        ctx, queries, setup={"kind": "model", "model_id": model}, methods=methods, progress=update
    )
