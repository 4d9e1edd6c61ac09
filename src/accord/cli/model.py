"""``accord model``: register, approve, list (from :mod:`accord.cli.datasets`), and reproduce, audit, retrain."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accord.cli.common import (
    EXIT_NO,
    console,
    handle_errors,
    open_store,
    print_json,
    progress_bar,
    use_torch_threads,
)
from accord.cli.datasets import model_app
from accord.errors import ValidationError
from accord.settings import get_settings

__all__ = ["model_app"]
model_app.info.help = "Model versions: register, approve or refuse, status, reproduce, memorisation audit, retrain."


def _temperatures(values: list[float] | None) -> tuple[float, ...]:
    from accord.model.audit import TEMPERATURES

    return tuple(values) if values else TEMPERATURES


def _works(value: str) -> int | None:
    if value == "all":
        return None
    try:
        return int(value)
    except ValueError:
        msg = f"works: {value!r}; expected a number of training works or 'all'"
        raise ValidationError(msg, field="works", value=value) from None


@model_app.command("reproduce")
@handle_errors
def reproduce_cmd(
    model_id: Annotated[str, typer.Argument(metavar="MODEL", help="The registered model to train again.")],
    out: Annotated[
        Path | None, typer.Option(help="Keep the reproduced model in this folder (default: a temporary one, removed).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Train a model again from its card and manifest; exit 0 if the weights hash matches, 1 if not."""
    from accord.model.reproduce import reproduce_model

    store, settings = open_store(), get_settings()
    use_torch_threads(settings)
    with progress_bar() as update:

        def on_event(event: dict[str, Any]) -> None:
            if "fraction" in event:
                update("training again", int(1000 * float(event["fraction"])), 1000)

        result = reproduce_model(store, settings, model_id, out_dir=out, progress=on_event)
    if as_json:
        print_json(result.to_dict())
    else:
        verdict = "[green]matches[/]" if result.matches else "[red]DOES NOT MATCH[/]"
        console.print(f"Model [bold]{model_id}[/] trained again on manifest {result.manifest_root[:16]}…: {verdict}")
        t = Table(title="Weights", title_justify="left")
        for col in ("run", "weights sha256", "device", "dtype", "threads"):
            t.add_column(col, overflow="fold")
        for name, sha, setup in (
            ("original", result.original_sha256, result.original),
            ("reproduced", result.reproduced_sha256, result.reproduced),
        ):
            t.add_row(name, sha, str(setup.get("device")), str(setup.get("dtype")), str(setup.get("threads")))
        console.print(t)
        if not result.matches or not result.same_setup:
            where = f" (in {result.max_diff_parameter})" if result.max_diff_parameter else ""
            diff = "unknown" if result.max_abs_diff is None else f"{result.max_abs_diff:.3g}"
            console.print(f"Largest parameter difference: {diff}{where}")
        for line in result.differences:
            console.print(f"  differs: {line}", highlight=False)
        console.print(f"Took {result.seconds:.1f} s.")
    if not result.matches:
        raise typer.Exit(EXIT_NO)


@model_app.command("audit")
@handle_errors
def audit_cmd(
    model_id: Annotated[str, typer.Argument(metavar="MODEL", help="The registered model to audit.")],
    works: Annotated[str, typer.Option(help="Training works to prompt: a number (a seeded sample) or 'all'.")] = "64",
    control: Annotated[int, typer.Option(help="Works the model never saw, prompted the same way (the control).")] = 32,
    prompt_bars: Annotated[int, typer.Option(help="Opening bars of each work given as the prompt.")] = 2,
    bars: Annotated[int, typer.Option(help="Bars sampled after the prompt.")] = 6,
    temperature: Annotated[
        list[float] | None, typer.Option("--temperature", help="Sampling temperature (repeat; default 0.8 and 1.0).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample and of every continuation.")] = 0,
    limit: Annotated[
        float | None, typer.Option(help="Policy: largest memorisation (training minus control rate) that passes.")
    ] = None,
    actor: Annotated[str, typer.Option(help="Who runs it, for the audit log.")] = "operator",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Can the model be made to regurgitate its training works? Exit 0 passed, 1 failed (it may not be approved)."""
    from accord.model.audit import EXTRACTION_LIMIT, audit_model, record_audit
    from accord.model.card import add_to_card

    store, settings = open_store(), get_settings()
    use_torch_threads(settings)
    with progress_bar() as update:
        summary = audit_model(
            store,
            settings,
            model_id,
            progress=update,
            works=_works(works),
            control=control,
            prompt_bars=prompt_bars,
            continue_bars=bars,
            temperatures=_temperatures(temperature),
            seed=seed,
            limit=EXTRACTION_LIMIT if limit is None else limit,
        )
    add_to_card(settings.models_dir / model_id, "memorisation", summary)
    record_audit(store, model_id, summary, actor=actor)
    if as_json:
        print_json({k: v for k, v in summary.items() if k != "probes"})
    else:
        print_audit(model_id, summary)
    if not summary["passed"]:
        raise typer.Exit(EXIT_NO)


def print_audit(model_id: str, summary: dict[str, Any]) -> None:
    """The audit's figures, its distribution, the worst works and the verdict, for people."""
    from accord.model.audit import refusal

    console.print(
        f"Memorisation audit of [bold]{model_id}[/]: {summary['train_works']} training works and "
        f"{summary['control_works']} unseen works, {summary['settings']['prompt_bars']} bars of prompt, "
        f"{summary['settings']['continue_bars']} bars sampled at {summary['settings']['temperatures']} "
        f"({summary['seconds']:.0f} s); guard threshold {summary['guard']['threshold']:g}"
    )
    console.print(
        f"Extraction rate: training works {summary['extraction_rate']:.1%}, unseen works (control) "
        f"{summary['control_extraction_rate']:.1%}: memorisation {summary['memorisation']:.1%} "
        f"(limit {summary['limit']:.0%})"
    )
    t = Table(title="Bars of the source reproduced by a continuation", title_justify="left")
    for col in ("bars", "training", "control"):
        t.add_column(col, justify="right")
    hist = summary["bars_reproduced"]
    for b in sorted({*hist["train"], *hist["control"]}, key=int):
        t.add_row(b, str(hist["train"].get(b, 0)), str(hist["control"].get(b, 0)))
    console.print(t)
    w = Table(title="Closest training works", title_justify="left")
    for col in ("work", "title", "temperature", "bars", "guard score", "extracted"):
        w.add_column(col, overflow="fold")
    for p in summary["worst"]:
        w.add_row(
            p["isrc"], p["title"], str(p["temperature"]), str(p["bars"]), f"{p['score']:.2f}", str(p["extracted"])
        )
    console.print(w)
    why = refusal(model_id, summary)
    console.print("[green]passed[/]" if why is None else f"[red]FAILED[/]: {why}", highlight=False)


@model_app.command("retrain")
@handle_errors
def retrain_cmd(
    model_id: Annotated[str, typer.Argument(metavar="MODEL", help="The model to retrain on the licences as of now.")],
    new_id: Annotated[str | None, typer.Option("--id", help="The new version's id (default: derived).")] = None,
    force: Annotated[bool, typer.Option(help="Retrain even if the training set has not changed.")] = False,
    works: Annotated[str, typer.Option(help="Memorisation audit: training works to prompt (or 'all').")] = "64",
    control: Annotated[int, typer.Option(help="Memorisation audit: unseen works prompted.")] = 32,
    actor: Annotated[str, typer.Option(help="Who retrains, for the audit log.")] = "operator",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Manifest as of now, its diff, training with the same config and seed, audit, register, ask for approval."""
    from accord.model.retrain import retrain_model
    from accord.signing import load_operator_key

    store, settings = open_store(), get_settings()
    use_torch_threads(settings)
    key = load_operator_key(settings.home)
    with progress_bar() as update:
        result = retrain_model(
            store,
            settings,
            key,
            model_id,
            new_model_id=new_id,
            actor=actor,
            force=force,
            audit_options={"works": _works(works), "control": control},
            progress=update,
        )
    if as_json:
        print_json(result.to_dict())
        return
    d = result.diff
    console.print(
        f"Training set {result.old_root[:16]}… → {result.new_root[:16]}…: "
        f"+{d['counts']['added']} −{d['counts']['removed']} ~{d['counts']['changed']}"
    )
    if d["removed"] or d["added"]:
        t = Table(title="What left and what came in", title_justify="left")
        for col in ("change", "recording", "why"):
            t.add_column(col, overflow="fold")
        for c in (*d["removed"], *d["added"]):
            t.add_row(c["change"], c["isrc"], "; ".join(c["why"]))
        console.print(t)
    if result.new_model_id is None:
        console.print("The training set has not changed: nothing retrained (--force retrains anyway).")
        return
    console.print(f"New version [bold]{result.new_model_id}[/] trained with the same config and seed, registered.")
    if result.audit is not None:
        print_audit(result.new_model_id, result.audit)
    if result.approvals_requested:
        console.print("Approval requested from: " + ", ".join(result.approvals_requested))
    status = result.status or {}
    if status.get("blocked_uses"):
        console.print("It may not serve yet: " + "; ".join(status.get("reasons", [])), highlight=False)
