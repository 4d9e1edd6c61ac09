"""``accord demo``: the README's end-to-end run on the embedded defaults.

Catalog → licences → consented training set (signed, Merkle root) → public summary →
one label's proofs, verified as the label would. Later stages (model, attribution,
royalties) join here as they land.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.catalog import run_catalog_demo
from accord.cli.common import console, handle_errors, instant, progress_bar, use_torch_threads
from accord.cli.datasets import print_build_summary
from accord.datasets import repository, service
from accord.datasets.disclosure import Undisclosed
from accord.datasets.proofs import party_recordings, verify_proof, write_proofs
from accord.datasets.summary import render_markdown, summarize
from accord.errors import NotLicensed
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.outputs.studio import Prompt, generate_output, train_on_manifest
from accord.registry.store import Store
from accord.settings import Settings, get_settings
from accord.signing import ensure_operator_key
from accord.timeutil import iso

DEMO_LABEL = "P-KESTREL"  # has items in and out of the training set (a co-owner has not signed)
DEMO_STEPS = 6000
"""The demo model's budget: 6,000 steps of the mini preset on both cores (2 threads, fp32), ~18 min at the
5.5 steps/s of a fresh-clone demo on a quiet 2-core AMD EPYC (2026-12-03), a little more than the 3,000 one-thread
steps it replaced took (~15 min there)."""


def demo(
    limit: Annotated[int | None, typer.Option(help="At most this many pieces per collection (quick runs).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (0: one per core).")] = 0,
    territory: Annotated[str, typer.Option(help="Territory of the demo's uses.")] = "US",
    table: Annotated[bool, typer.Option("--table/--no-table", help="Print every recording's eligibility.")] = True,
    train_steps: Annotated[
        int,
        typer.Option(
            help="Steps to train the demo model (0: skip the model): a step count, not a time, so the model (and its "
            "weights hash) is the same on any machine of this kind; ~18 min on a quiet 2-core machine in fp32."
        ),
    ] = DEMO_STEPS,
    train_minutes: Annotated[
        float | None,
        typer.Option(help="Instead of --train-steps: minutes, turned into steps from a measured step rate (0: skip)."),
    ] = None,
    preset: Annotated[
        str,
        typer.Option(
            help="Model preset for the demo model (mini: 0.9M parameters, so that TRAK's per-example gradients over "
            "the whole manifest take a minute or two on 2 cores; demo: 3.4M, ~4x the attribution cost)."
        ),
    ] = "mini",
    pieces: Annotated[int, typer.Option(help="Pieces to generate, across styles.")] = 5,
) -> None:
    """Run the end-to-end demo: catalog, eligibility, signed training set, summary, proofs."""
    started = time.perf_counter()
    settings = get_settings()
    key, _ = ensure_operator_key(settings.home)
    console.rule("[bold]1. The catalog: deliveries from four labels and three publishers")
    store = run_catalog_demo(
        limit=limit, workers=workers, territory=territory, when=instant(None, field="at"), table=table
    )

    console.rule("[bold]2. The consented training set")
    as_of = store.clock()
    with progress_bar() as update:
        manifest, _, created = service.build(
            store, key, use="train", as_of=as_of, territory=territory, actor="demo", progress=update
        )
    print_build_summary(manifest, store.snapshot(as_of))
    console.print(f"Signed with the operator's Ed25519 key {key.public_hex[:16]}… ({'new' if created else 'existing'})")

    console.rule("[bold]3. The public training-content summary")
    out = settings.home / "demo"
    summary = summarize(manifest, store.snapshot(as_of))
    (out / "summary").mkdir(parents=True, exist_ok=True)
    (out / "summary" / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False))
    markdown = render_markdown(summary)
    (out / "summary" / "summary.md").write_text(markdown)
    console.print(markdown, markup=False, highlight=False)

    console.rule(f"[bold]4. Proofs for one label ({DEMO_LABEL}), verified as the label would")
    isrcs = party_recordings(store.snapshot(), manifest, DEMO_LABEL)
    folder = out / "proofs" / DEMO_LABEL
    index = write_proofs(manifest, key, isrcs, folder, undisclosed=Undisclosed.to_viewer(store.snapshot(), DEMO_LABEL))
    verdicts = []
    for entry in index:
        proof = json.loads((folder / entry["file"]).read_text())
        verdicts.append(verify_proof(proof, manifest.root, public_key_hex=key.public_hex, isrc=entry["isrc"]))
    t = Table(title=f"{len(verdicts)} proofs against root {manifest.root[:16]}…", title_justify="left")
    for col in ("claim", "proofs", "valid"):
        t.add_column(col, justify="right" if col != "claim" else "left")
    for kind, label in (("inclusion", "in the training set"), ("non_inclusion", "not in the training set")):
        mine = [v for v in verdicts if v.kind == kind]
        t.add_row(label, str(len(mine)), f"{sum(v.valid for v in mine)}")
    console.print(t)
    if not all(v.valid for v in verdicts):
        raise typer.Exit(1)
    console.print(f"Proof files: {folder}; the label checks them with")
    console.print(f"  accord dataset verify {folder}/*.proof.json --root {manifest.root} --public-key {key.public_hex}")

    budget: dict[str, float] = {"minutes": train_minutes} if train_minutes is not None else {"steps": train_steps}
    served = False
    if next(iter(budget.values())):
        served = _model_stage(store, settings, manifest.root, budget=budget, preset=preset, pieces=pieces)
    if served and pieces > 0:
        from accord.cli.royalties import royalties_demo_stage

        royalties_demo_stage(store, settings)

    console.rule("[bold]Done")
    console.print(f"Training set {manifest.root} as of {iso(as_of)}: {len(manifest.items)} recordings.")
    console.print(f"Summary: {out / 'summary' / 'summary.md'}   Proofs: {folder}")
    console.print(f"Registry: {settings.resolved_database_url}   Demo took {time.perf_counter() - started:.1f} s.")


DEMO_STYLES = ("chorale", "reel", "jig", "hornpipe", "air", "march", "strathspey")
DEMO_THREADS = 1  # fixed: the thread count changes float reductions, so it is part of what makes the weights
DEMO_TRAIN_THREADS = 2  # training's own, fixed as well: both cores of the 2-core machine the budget is set for
DEMO_TRANSPOSE = 0.5  # half the samples transposed; docs/benchmarks.md measured 0.0 slightly better (0.517 vs 0.524)
DEMO_AUDIT = {"works": 16, "control": 16, "temperatures": (1.0,)}  # bounded: ~1 min on 2 cores
DEMO_APPROVER = "P-KESTREL"  # its agreement requires per-version approval


def _model_stage(
    store: Store, settings: Settings, root: str, *, budget: dict[str, float], preset: str, pieces: int
) -> bool:
    """Train on the manifest, audit it for memorisation, get the licensor's approval, generate a few pieces.

    Returns whether the model may serve (a failed audit stops the stage, with the works it reproduced)."""
    import torch

    from accord.cli.model import print_audit
    from accord.model.audit import audit_model, record_audit
    from accord.model.card import add_to_card
    from accord.provenance.verify import verify_file

    said = f"{budget['steps']:,} steps" if "steps" in budget else f"{budget['minutes']:g} min (turned into steps)"
    console.rule(f"[bold]5. The model: trained for {said} on the manifest only")
    use_torch_threads(settings)
    torch.set_num_threads(DEMO_THREADS)
    with progress_bar() as update:
        record, _ = train_on_manifest(
            store,
            settings,
            root,
            preset=preset,
            seed=0,
            progress=lambda e: update("training", int(100 * float(e.get("fraction", 0))), 100),
            threads=DEMO_TRAIN_THREADS,
            transpose=DEMO_TRANSPOSE,
            **budget,  # type: ignore[arg-type]
        )
    card = record.card
    console.print(
        f"Model [bold]{record.model_id}[/]: {card['model']['parameters']:,} parameters, "
        f"{card['training']['steps']} steps, {card['training']['tokens_per_second']:.0f} tokens/s, "
        f"validation loss {card.get('final_val_loss', float('nan')):.3f}"
    )
    weights = card.get("weights", {}).get("sha256", "?")
    console.print(
        f"Weights sha256 [bold]{weights}[/] ({card['hardware']['dtype']} on {card['hardware']['device']}, "
        f"{card['hyperparameters'].get('threads')} thread(s)); check it with: accord model reproduce {record.model_id}"
    )
    console.print(f"Model card and loss curve: {settings.models_dir / record.model_id}")
    _guard_stage(settings)  # first: the memorisation audit uses the guard at its calibrated threshold
    console.rule("[bold]6b. The memorisation audit: does the model regurgitate its training works?")
    with progress_bar() as update:
        audit = audit_model(store, settings, record.model_id, progress=update, **DEMO_AUDIT)  # type: ignore[arg-type]
    add_to_card(settings.models_dir / record.model_id, "memorisation", audit)
    record_audit(store, record.model_id, audit, actor="demo")
    print_audit(record.model_id, audit)
    if not audit["passed"]:
        return False
    status = service.status_of_model(store, record.model_id, store.clock())
    if status.pending_approvals:
        console.print(f"Waiting for per-version approval by {', '.join(status.pending_approvals)}; the demo approves:")
        for licensor in status.pending_approvals:
            repository.record_approval(
                store, record.model_id, licensor, approve=True, by=licensor, note="demo approval"
            )
            console.print(f"  {licensor} approved {record.model_id}")

    console.rule("[bold]7. Generation, replication guard, attribution, content credentials")
    creator = outputs.add_creator(store, "demo-creator", "free", "US", parse_plans(settings.plans))
    styles = [s for s in DEMO_STYLES if s in set(card.get("data", {}).get("style_programs", DEMO_STYLES))] or list(
        DEMO_STYLES
    )
    t = Table(title="Generated pieces", title_justify="left")
    for col in ("output", "style", "audio", "synth", "credential", "piano roll"):
        t.add_column(col, overflow="fold")
    from accord.attribution.service import index_model
    from accord.cli.attribution import print_piece_provenance

    with progress_bar() as update:  # attribution features over the manifest, once per model
        index_model(store, settings, record.model_id, [settings.attribution_method], progress=update)
    made_pieces = []
    checks = []
    with progress_bar() as update:  # the first piece also builds the guard's index if the catalog changed
        for n in range(pieces):
            update("pieces", n, pieces)
            made = generate_output(
                store,
                settings,
                model_id=record.model_id,
                creator_id=creator.creator_id,
                prompt=Prompt(style=styles[n % len(styles)], bars=16),
                seed=n,
                progress=update,
            )
            key = ensure_operator_key(settings.home)[0]
            checks.append(verify_file(made.paths["credential"], public_key_hex=key.public_hex))
            made_pieces.append(made)
        update("pieces", pieces, pieces)
    for n, (made, check) in enumerate(zip(made_pieces, checks, strict=True)):
        style = styles[n % len(styles)]
        t.add_row(
            made.output.output_id,
            style,
            str(made.paths["audio"]),
            made.render["synthesizer"],
            "valid" if check.valid else "INVALID",
            str(made.paths["pianoroll"]),
        )
    console.print(t)
    for made in made_pieces:
        print_piece_provenance(made.output.output_id, made.output.credential)
    catalog = store.snapshot()
    refused = next(
        (
            r
            for r in sorted(catalog.recordings)
            if dict(catalog.recordings[r].metadata).get("demo_situation", "").startswith("generate")
        ),
        None,
    )
    if refused:
        try:
            generate_output(
                store,
                settings,
                model_id=record.model_id,
                creator_id=creator.creator_id,
                prompt=Prompt(style="air", from_isrc=refused),
                seed=99,
            )
        except NotLicensed as exc:
            console.print(f"Remix of {refused} refused, as it must be: {exc}", highlight=False)
    return True


def _guard_stage(settings: Settings) -> None:
    """Index every catalog recording for the replication guard and set its threshold from the catalog itself."""
    from accord.cli.guard import calibrate_cmd

    audio = "melody index and audio fingerprints" if settings.guard_audio else "melody index (audio check off)"
    console.rule(f"[bold]6. The replication guard: {audio} over the whole registry, calibrated on the catalog")
    calibrate_cmd(percentile=None, margin=None, sample=None, audio=settings.guard_audio, as_json=False)


demo = handle_errors(demo)
