"""``accord dataset``, ``accord model`` and ``accord audit``: consented training sets and their taint."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import EXIT_NO, console, handle_errors, instant, open_store, print_json, progress_bar
from accord.datasets import repository, service
from accord.datasets.disclosure import Undisclosed
from accord.datasets.manifest import Manifest, exclusion_summary, parse_filters
from accord.datasets.proofs import party_recordings, verify_proof, write_proofs
from accord.errors import NotFound, ValidationError
from accord.registry.entities import Catalog
from accord.settings import get_settings
from accord.signing import load_operator_key, parse_public_key
from accord.timeutil import iso

dataset_app = typer.Typer(help="Consented training sets: build, prove, verify, summarise, diff.", no_args_is_help=True)
model_app = typer.Typer(help="Model versions: register, approve or refuse, status.", no_args_is_help=True)


def print_build_summary(manifest: Manifest, catalog: Catalog) -> None:
    h = manifest.header
    console.print(
        f"Manifest [bold]{manifest.root}[/]\n  use {h.use.value}, as of {iso(h.as_of)}, territory {h.territory}: "
        f"{len(manifest.items)} included, {len(manifest.excluded)} excluded"
    )
    reasons = exclusion_summary(manifest)
    t = Table(title="Excluded, by reason (a recording counts once per reason)", title_justify="left")
    t.add_column("reason")
    t.add_column("recordings", justify="right")
    for code, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        t.add_row(code, str(n))
    console.print(t)
    included: Counter[str] = Counter()
    excluded: Counter[str] = Counter()
    for item in manifest.items:
        included.update(item.master_owners)
    for e in manifest.excluded:
        rec = catalog.recordings.get(e.isrc)
        if rec is not None:
            excluded.update({s.party_id for s in rec.shares if s.ppm})
    by = Table(title="By master licensor", title_justify="left")
    for col in ("licensor", "included", "excluded"):
        by.add_column(col, justify="left" if col == "licensor" else "right")
    for party in sorted(set(included) | set(excluded)):
        name = catalog.parties[party].name if party in catalog.parties else party
        by.add_row(f"{name} ({party})", str(included[party]), str(excluded[party]))
    console.print(by)


@dataset_app.command("build")
@handle_errors
def build_cmd(
    use: Annotated[str, typer.Option(help="The use every item must be eligible for.")] = "train",
    as_of: Annotated[str | None, typer.Option("--as-of", help="The instant (default: now).")] = None,
    territory: Annotated[str, typer.Option(help="ISO 3166-1 territory where training happens.")] = "US",
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="KEY=V[,V]: genre, licensor, source or isrc (repeat).")
    ] = None,
    actor: Annotated[str, typer.Option(help="Who builds it, for the audit log.")] = "operator",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Build, sign and store the training set the licences allow at one instant."""
    settings = get_settings()
    store = open_store()
    key = load_operator_key(settings.home)
    when = instant(as_of, field="as_of")
    with progress_bar() as update:
        manifest, record, created = service.build(
            store,
            key,
            use=use,
            as_of=when,
            territory=territory,
            filters=parse_filters(filters or ()),
            actor=actor,
            progress=update,
        )
    if as_json:
        print_json({**manifest.statement(), "excluded": len(manifest.excluded), "new": created})
        return
    print_build_summary(manifest, store.snapshot(when))
    if not created:
        console.print("The same training set was built before: the stored manifest is unchanged.")
    console.print(f"Signed by the operator key {record.signature['public_key'][:16]}…; file {record.file_sha256}")


@dataset_app.command("list")
@handle_errors
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The stored manifests."""
    rows = repository.list_manifests(open_store())
    if as_json:
        print_json(
            [
                {
                    "root": r.root,
                    "use": r.use,
                    "as_of": iso(r.as_of),
                    "territory": r.territory,
                    "items": r.tree_size,
                    "excluded": r.excluded,
                    "built_at": iso(r.built_at),
                }
                for r in rows
            ]
        )
        return
    t = Table(title=f"Manifests ({len(rows)})", title_justify="left")
    for col in ("root", "use", "as of", "territory", "items", "excluded", "built"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r.root, r.use, iso(r.as_of) or "", r.territory, str(r.tree_size), str(r.excluded), iso(r.built_at) or ""
        )
    console.print(t)


@dataset_app.command("prove")
@handle_errors
def prove_cmd(
    manifest_ref: Annotated[str, typer.Argument(metavar="MANIFEST", help="Manifest root (or 8+ hex digits of it).")],
    party: Annotated[str, typer.Option(help="The rights holder whose recordings to prove.")],
    out: Annotated[Path, typer.Option(help="Folder for the proof files.")] = Path("proofs"),
) -> None:
    """Write an inclusion or non-inclusion proof for each of a party's recordings."""
    store = open_store()
    manifest, _ = repository.load_manifest(store, manifest_ref)
    catalog = store.snapshot()
    if party not in catalog.parties:
        msg = f"party: {party!r} is not in the registry"
        raise NotFound(msg)
    isrcs = party_recordings(catalog, manifest, party)
    key = load_operator_key(get_settings().home)
    index = write_proofs(manifest, key, isrcs, out / party, undisclosed=Undisclosed.to_viewer(catalog, party))
    included = sum(1 for i in index if i["included"])
    console.print(
        f"{len(index)} proofs for {party} in {out / party}: {included} included, {len(index) - included} not included"
    )
    console.print(
        f"Verify with: accord dataset verify {out / party}/*.proof.json --root {manifest.root} "
        f"--public-key {key.public_hex}"
    )


def _pinned_key(public_key: str | None, public_key_file: Path | None) -> str:
    """The operator's public key the verifier holds (hex), from exactly one of the two options."""
    if (public_key is None) == (public_key_file is None):
        said = "both" if public_key else "neither"
        msg = (
            f"public key: {said} of --public-key and --public-key-file given; give exactly one "
            "(the operator's Ed25519 key, 64 hex digits or PEM): the key inside a proof is never trusted"
        )
        raise ValidationError(msg, field="public_key")
    if public_key is not None:
        return parse_public_key(Path(public_key).read_text() if Path(public_key).is_file() else public_key)
    return parse_public_key(public_key_file.read_text() if public_key_file is not None else "")


@dataset_app.command("verify")
@handle_errors
def verify_cmd(
    proofs: Annotated[list[Path], typer.Argument(help="Proof files.")],
    root: Annotated[str, typer.Option(help="The manifest root you were given (hex).")],
    public_key: Annotated[
        str | None,
        typer.Option(help="The operator's public key (64 hex digits, a PEM block, or a PEM file): required."),
    ] = None,
    public_key_file: Annotated[
        Path | None, typer.Option(help="A pinned file holding the operator's public key (hex or PEM).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check proofs with the files, the root and the operator's key. Exit 0 all valid, 1 any invalid, 2 usage error."""
    pinned = _pinned_key(public_key, public_key_file)
    verdicts = []
    for path in proofs:
        data = json.loads(path.read_text())
        verdicts.append((path, verify_proof(data, root, public_key_hex=pinned)))
    if as_json:
        print_json([{"file": str(p), **v.to_dict()} for p, v in verdicts])
    else:
        t = Table(title=f"Proofs against root {root[:16]}…, key {pinned[:16]}…", title_justify="left")
        for col in ("file", "recording", "claim", "verdict", "failed checks"):
            t.add_column(col, overflow="fold")
        for path, v in verdicts:
            failed = ", ".join(f"{n} ({d})" for n, ok, d in v.checks if not ok)
            claim = "in the training set" if v.kind == "inclusion" else "not in the training set"
            t.add_row(path.name, v.isrc, claim, "[green]valid[/]" if v.valid else "[red]INVALID[/]", failed)
        console.print(t)
    if not all(v.valid for _, v in verdicts):
        raise typer.Exit(EXIT_NO)


@dataset_app.command("summary")
@handle_errors
def summary_cmd(
    manifest_ref: Annotated[str, typer.Argument(metavar="MANIFEST", help="Manifest root (or 8+ hex digits).")],
    out: Annotated[Path, typer.Option(help="Folder for summary.md and summary.json.")] = Path("summary"),
) -> None:
    """A public summary of what a training set holds (names no licensor that asked not to be named)."""
    from accord.datasets.summary import render_markdown, summarize

    store = open_store()
    manifest, _ = repository.load_manifest(store, manifest_ref)
    summary = summarize(manifest, store.snapshot(manifest.header.as_of))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False))
    markdown = render_markdown(summary)
    (out / "summary.md").write_text(markdown)
    console.print(markdown, markup=False, highlight=False)
    console.print(f"Written: {out / 'summary.md'}, {out / 'summary.json'}")


@dataset_app.command("diff")
@handle_errors
def diff_cmd(
    a: Annotated[str, typer.Argument(help="The earlier manifest.")],
    b: Annotated[str, typer.Argument(help="The later manifest.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Which items were added or removed between two manifests, and why."""
    from accord.datasets.diff import diff_manifests

    store = open_store()
    ma, _ = repository.load_manifest(store, a)
    mb, _ = repository.load_manifest(store, b)
    d = diff_manifests(ma, mb, undisclosed=Undisclosed.of(store.snapshot()))
    if as_json:
        print_json(d.to_dict())
        return
    console.print(f"{ma.root[:16]}… → {mb.root[:16]}…: +{len(d.added)} −{len(d.removed)} ~{len(d.changed)}")
    t = Table(title="Changes", title_justify="left")
    for col in ("change", "recording", "why"):
        t.add_column(col, overflow="fold")
    for c in (*d.added, *d.removed, *d.changed):
        t.add_row(c.change, c.isrc, "; ".join(c.why))
    console.print(t)
    counts = d.counts_by_code()
    if counts:
        console.print("By reason: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


@model_app.command("register")
@handle_errors
def register_cmd(
    model_id: Annotated[str, typer.Option("--id", help="The model version's id.")],
    manifest_ref: Annotated[str, typer.Option("--manifest", help="The manifest it was trained on.")],
    card: Annotated[Path | None, typer.Option(help="Its model card (JSON).")] = None,
    actor: Annotated[str, typer.Option(help="Who registers it.")] = "operator",
) -> None:
    """Record a model version and the manifest it was trained on."""
    data = json.loads(card.read_text()) if card else {}
    if not isinstance(data, dict):
        msg = f"card: {card} must hold a JSON object"
        raise ValidationError(msg, field="card")
    model, created = repository.register_model(open_store(), model_id, manifest_ref, card=data, actor=actor)
    verb = "registered" if created else "already registered"
    console.print(f"Model {model.model_id} {verb} on manifest {model.manifest_root}.")


@model_app.command("approve")
@handle_errors
def approve_cmd(
    model_id: Annotated[str, typer.Argument(help="The model version.")],
    party: Annotated[str, typer.Option(help="The licensor deciding.")],
    refuse: Annotated[bool, typer.Option("--refuse", help="Record a refusal instead of an approval.")] = False,
    note: Annotated[str, typer.Option(help="Why, in words.")] = "",
    by: Annotated[str | None, typer.Option(help="Who records it (default: the licensor).")] = None,
) -> None:
    """Record a licensor's approval (or refusal) of one model version."""
    approval, created = repository.record_approval(
        open_store(), model_id, party, approve=not refuse, by=by or party, note=note
    )
    state = "recorded" if created else "already recorded"
    console.print(f"{approval.licensor} {approval.decision} {model_id} ({state} at {iso(approval.at)}).")


@model_app.command("list")
@handle_errors
def models_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Registered models with their status now."""
    store = open_store()
    report = service.audit(store, instant(None, field="at"))
    if as_json:
        print_json([m.to_dict() for m in report.models])
        return
    _print_models(report)


def _print_models(report: service.AuditReport) -> None:
    t = Table(title="Models", title_justify="left")
    for col in ("model", "manifest", "may serve", "why not"):
        t.add_column(col, overflow="fold")
    for m in report.models:
        ok = (
            "[green]yes[/]"
            if not m.blocked_uses
            else "[red]no[/] (" + ", ".join(sorted(u.value for u in m.blocked_uses)) + ")"
        )
        t.add_row(m.model_id, m.manifest_root[:16] + "…", ok, "; ".join(m.reasons))
    console.print(t)


def audit_cmd(
    at: Annotated[str | None, typer.Option(help="Audit as of this instant (default: now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Manifests and models holding items no longer eligible; models awaiting approval."""
    report = service.audit(open_store(), instant(at, field="at"))
    if as_json:
        print_json(report.to_dict())
        return
    t = Table(title=f"Audit at {iso(report.at)} ({report.seconds:.2f} s)", title_justify="left")
    for col in ("manifest", "models", "rechecked", "flagged", "uses", "earliest since", "reasons"):
        t.add_column(col, overflow="fold")
    for m in report.manifests:
        codes = Counter(r["code"] for f in m.flags for r in f.reasons)
        since = min((f.since for f in m.flags if f.since), default=None)
        t.add_row(
            m.root[:16] + "…",
            ", ".join(m.models) or "-",
            str(m.rechecked),
            str(len({f.isrc for f in m.flags})),
            ", ".join(sorted(u.value for u in m.flagged_uses)) or "-",
            iso(since) or "-",
            ", ".join(f"{k} ({v})" for k, v in sorted(codes.items())) or "clean",
        )
    console.print(t)
    _print_models(report)
    for licensor, models in sorted(report.pending_by_licensor.items()):
        console.print(f"Awaiting approval by {licensor}: {', '.join(models)}")


audit_cmd = handle_errors(audit_cmd)
