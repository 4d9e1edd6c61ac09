"""``accord train``, ``accord generate``, ``accord creator``, ``accord output``, ``accord credential``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from accord import visibility
from accord.cli.common import (
    EXIT_NO,
    console,
    err_console,
    handle_errors,
    open_store,
    print_json,
    progress_bar,
    use_torch_threads,
)
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.outputs.studio import Prompt, copy_for_download, generate_output, train_on_manifest
from accord.settings import get_settings
from accord.timeutil import iso

creator_app = typer.Typer(help="Creators and their plans.", no_args_is_help=True)
output_app = typer.Typer(
    help="Generated outputs: list, play, download (within the plan's allowance).", no_args_is_help=True
)
credential_app = typer.Typer(help="Content credentials of outputs.", no_args_is_help=True)


@handle_errors
def train_cmd(
    manifest: Annotated[str, typer.Option("--manifest", help="Manifest root (or 8+ hex digits) to train on.")],
    minutes: Annotated[
        float | None,
        typer.Option(help="Convenience: turned into steps from a measured step rate (recorded); --steps is exact."),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="Train for this many steps (the same weights on any like machine).")
    ] = None,
    preset: Annotated[str, typer.Option(help="tiny, mini, demo, small or base (see docs/model.md).")] = "demo",
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same model.")] = 0,
    model_id: Annotated[
        str | None, typer.Option("--id", help="Model id (default: from preset, manifest, seed).")
    ] = None,
    transpose: Annotated[
        float,
        typer.Option(
            help="Chance (0-1) that a training sample is transposed, its key condition with it (the demo uses 0.5)."
        ),
    ] = 0.0,
) -> None:
    """Train a model on a manifest (reading only its hash-checked files) and register it with its card."""
    store, settings = open_store(), get_settings()
    use_torch_threads(settings)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("training", total=1.0, info="")

        def update(event: dict[str, Any]) -> None:
            done = float(event.get("fraction", 0.0))
            info = " ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in event.items()
                if k in ("stage", "step", "train_loss", "val_loss", "tokens_per_second")
            )
            bar.update(task, completed=done, info=info)

        record, _ = train_on_manifest(
            store,
            settings,
            manifest,
            preset=preset,
            minutes=minutes,
            steps=steps,
            seed=seed,
            model_id=model_id,
            progress=update,
            transpose=transpose,
        )
    card = record.card
    console.print(f"Model [bold]{record.model_id}[/] trained on manifest {record.manifest_root[:16]}…")
    t = Table(title="Model card (excerpt)", title_justify="left")
    t.add_column("field")
    t.add_column("value", overflow="fold")
    rows = {
        "parameters": card.get("model", {}).get("parameters"),
        "steps": card.get("training", {}).get("steps"),
        "seconds": card.get("training", {}).get("seconds"),
        "tokens/s": card.get("training", {}).get("tokens_per_second"),
        "train loss": card.get("final_train_loss"),
        "validation loss": card.get("final_val_loss"),
        "device": f"{card.get('hardware', {}).get('device')} {card.get('hardware', {}).get('dtype')}",
        "threads": card.get("hyperparameters", {}).get("threads"),
        "transposed samples": card.get("hyperparameters", {}).get("transpose"),
        "budget": card.get("training", {}).get("budget"),
        "weights sha256": card.get("weights", {}).get("sha256"),
    }
    for k, v in rows.items():
        t.add_row(k, str(v))
    console.print(t)
    console.print(f"Files: {settings.models_dir / record.model_id} (model_card.md, loss.png, ckpt.pt)")


@handle_errors
def generate_cmd(
    model: Annotated[str, typer.Option("--model", help="The model id.")],
    style: Annotated[str, typer.Option(help="Style / genre, e.g. reel, jig, chorale.")],
    creator: Annotated[str, typer.Option(help="The creator asking (see accord creator add).")] = "demo-creator",
    key: Annotated[str | None, typer.Option(help='Key, e.g. "D major".')] = None,
    tempo: Annotated[int | None, typer.Option(help="Tempo in BPM.")] = None,
    meter: Annotated[
        str | None,
        typer.Option(
            help="Every bar's metre, e.g. \"6/8\" (default: the style's most common); one the model has no token for "
            "is refused with the list of those it has."
        ),
    ] = None,
    bars: Annotated[int, typer.Option(help="Length in bars.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same piece.")] = 0,
    from_isrc: Annotated[
        str | None, typer.Option("--from", help="Continue / remix this recording (needs its remix licence).")
    ] = None,
    prime_bars: Annotated[int, typer.Option(help="Bars of --from to continue from.")] = 4,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.85,
    out: Annotated[Path | None, typer.Option(help="Folder for the files (default: ACCORD_HOME/outputs).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Generate a piece: MIDI, audio with its C2PA credential, a signed sidecar, and a piano roll."""
    from accord.identifiers import validate_isrc

    store, settings = open_store(), get_settings()
    use_torch_threads(settings)
    prompt = Prompt(
        style, key, tempo, bars, validate_isrc(from_isrc) if from_isrc else None, prime_bars, temperature, meter
    )
    with progress_bar() as update:
        made = generate_output(
            store, settings, model_id=model, creator_id=creator, prompt=prompt, seed=seed, out_dir=out, progress=update
        )
    if as_json:
        print_json(
            {
                "output_id": made.output.output_id,
                "files": {k: str(v) for k, v in made.paths.items()},
                "render": made.render,
                "seconds": made.seconds,
            }
        )
        return
    console.print(f"Output [bold]{made.output.output_id}[/] ({style}, seed {seed}) in {made.folder}")
    for kind, path in made.paths.items():
        console.print(f"  {kind:10} {path}")
    r = made.render
    console.print(
        f"  {r['tokens']} tokens at {r['tokens_per_second']:.0f} tok/s; "
        f"{r['seconds_of_audio']:.1f} s of audio rendered "
        f"with {r['synthesizer']} in {r['render_seconds']:.2f} s; guard and attribution: pending"
    )


@creator_app.command("add")
@handle_errors
def creator_add(
    creator_id: Annotated[str, typer.Argument(help="The creator's id.")],
    plan: Annotated[str, typer.Option(help="Plan name (ACCORD_PLANS).")] = "free",
    territory: Annotated[str, typer.Option(help="ISO 3166-1 territory.")] = "US",
) -> None:
    """Register a creator on a plan."""
    store, settings = open_store(), get_settings()
    c = outputs.add_creator(store, creator_id, plan, territory, parse_plans(settings.plans))
    console.print(f"Creator {c.creator_id}: plan {c.plan}, territory {c.territory}.")


@output_app.command("list")
@handle_errors
def output_list(
    creator: Annotated[str | None, typer.Option(help="Only this creator's outputs.")] = None,
    party: Annotated[
        str | None,
        typer.Option(help="Only the outputs this rights holder may see (attributed to it), as the API and portal."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Generated outputs."""
    store = open_store()
    rows = outputs.list_outputs(store, creator_id=creator)
    if party is not None:
        rows = visibility.visible_outputs(visibility.Party(party), rows, store.snapshot())
    if as_json:
        print_json(
            [
                {
                    "output_id": o.output_id,
                    "model": o.model_id,
                    "creator": o.creator_id,
                    "created": iso(o.created_at),
                    "prompt": o.prompt,
                    "seed": o.seed,
                }
                for o in rows
            ]
        )
        return
    t = Table(title=f"Outputs ({len(rows)})", title_justify="left")
    for col in ("output", "model", "creator", "style", "seed", "created"):
        t.add_column(col)
    for o in rows:
        t.add_row(
            o.output_id, o.model_id, o.creator_id, str(o.prompt.get("style")), str(o.seed), iso(o.created_at) or ""
        )
    console.print(t)


@output_app.command("play")
@handle_errors
def output_play(
    output_id: Annotated[str, typer.Argument(help="The output.")],
    creator: Annotated[str, typer.Option(help="Who plays it.")],
    event_id: Annotated[str | None, typer.Option(help="Idempotency key of this play.")] = None,
) -> None:
    """Record an in-platform play (a usage event; the same event id counts once)."""
    store = open_store()
    output, who = outputs.get_output(store, output_id), outputs.get_creator(store, creator)
    new = outputs.record_event(store, "play", output, who, at=store.clock(), event_id=event_id)
    console.print(f"Play of {output_id} by {creator} {'recorded' if new else 'already recorded'}.")


@output_app.command("download")
@handle_errors
def output_download(
    output_id: Annotated[str, typer.Argument(help="The output.")],
    creator: Annotated[str, typer.Option(help="Who downloads it (must be its creator).")],
    out: Annotated[Path, typer.Option(help="Where to put the files.")] = Path("downloads"),
) -> None:
    """Download an output's files, within the creator's plan allowance (recorded as a usage event)."""
    store, settings = open_store(), get_settings()
    output, _ = outputs.authorise_download(store, settings, output_id, creator)
    files = copy_for_download(store, output, out / output_id)
    for f in files:
        console.print(f"  {f}")


@credential_app.command("verify")
def credential_verify(
    path: Annotated[Path, typer.Argument(help="An output's audio file (C2PA) or its .credential.json sidecar.")],
    public_key: Annotated[str | None, typer.Option(help="Pin the operator's public key (hex).")] = None,
    media: Annotated[
        Path | None, typer.Option(help="The MIDI or audio it describes (hash checked; audio's embedded copy compared).")
    ] = None,
    sidecar: Annotated[
        Path | None, typer.Option(help="For audio: the sidecar to compare (default: the .credential.json beside it).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check an output's content credential, in either form; audio and sidecar are also compared field by
    field. Exit 0 valid, 1 invalid."""
    from accord.provenance.verify import sidecar_beside, verify_file

    if sidecar is None and path.is_file() and path.suffix.lower() != ".json":
        sidecar = sidecar_beside(path)
    check = verify_file(path, public_key_hex=public_key, media=media, sidecar=sidecar)
    if as_json:
        print_json(
            {
                "valid": check.valid,
                "form": check.form,
                "credential": check.credential,
                "problems": list(check.problems),
                "notes": list(check.notes),
            }
        )
    else:
        verdict = "[green]valid[/]" if check.valid else "[red]INVALID[/]"
        console.print(f"{path.name}: {verdict} ({check.form})")
        for p in check.problems:
            console.print(f"  problem: {p}", highlight=False)
        for n in check.notes:
            console.print(f"  note: {n}", highlight=False)
        if check.credential:
            console.print(json.dumps(check.credential, indent=2), highlight=False, markup=False)
    if not check.valid:
        raise typer.Exit(EXIT_NO)


@handle_errors
def evaluate_cmd(
    model_id: Annotated[str, typer.Argument(help="The model to evaluate.")],
    pieces: Annotated[int, typer.Option(help="Pieces to generate per system.")] = 24,
    temperature: Annotated[float, typer.Option(help="The model's sampling temperature.")] = 0.85,
    seed: Annotated[int, typer.Option(help="Seed for every system's samples.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Validation loss and musical statistics against held-out pieces, with random and n-gram baselines."""
    from accord.datasets import repository
    from accord.datasets.loader import ManifestLoader
    from accord.model.evaluate import evaluate_model, write_report
    from accord.model.sample import load_model
    from accord.outputs.studio import model_dir

    store, settings = open_store(), get_settings()
    use_torch_threads(settings)
    record = repository.get_model(store, model_id)
    manifest, _ = repository.load_manifest(store, record.manifest_root)
    loaded = load_model(model_dir(settings, model_id))
    with progress_bar() as update:
        result = evaluate_model(
            loaded,
            manifest,
            ManifestLoader(manifest, store.media),
            model_id=model_id,
            pieces=pieces,
            seed=seed,
            temperature=temperature,
            progress=update,
        )
    path = write_report(result, model_dir(settings, model_id))
    if as_json:
        print_json(result.to_dict())
        return
    lk = result.likelihood
    console.print(
        f"Held-out pieces: {result.held_out}. Validation loss (nats/token): model {lk['model']['val_loss']:.3f} "
        f"(perplexity {lk['model']['perplexity']:.1f}), untrained {lk['untrained']['val_loss']:.3f} "
        f"(perplexity {lk['untrained']['perplexity']:.1f})"
    )
    t = Table(title="Distance to held-out catalog pieces (lower is better)", title_justify="left")
    t.add_column("metric")
    for system in ("model", "markov", "random"):
        t.add_column(system, justify="right")
    t.add_column("model best?", justify="center")
    for metric, won in result.wins.items():
        if metric == "val_loss":
            continue
        t.add_row(
            metric, *(f"{result.music[s][metric]:.3f}" for s in ("model", "markov", "random")), "yes" if won else "no"
        )
    console.print(t)
    console.print(f"Report: {path}")
