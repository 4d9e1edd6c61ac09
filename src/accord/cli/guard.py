"""``accord guard``: check any file against the whole catalog, calibrate the thresholds, measure the guard."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from accord.cli.common import EXIT_NO, console, handle_errors, open_store, print_json, progress_bar
from accord.errors import NotFound, ValidationError
from accord.settings import get_settings
from accord.timeutil import iso, utcnow

if TYPE_CHECKING:
    from accord.attribution.guard import Guard, GuardVerdict

guard_app = typer.Typer(
    help="The replication guard: does a piece copy a catalog work or recording?", no_args_is_help=True
)


def _kind_of(data: bytes, path: Path) -> str:
    if data[:4] == b"MThd":
        return "midi"
    if data[:4] in (b"RIFF", b"fLaC"):
        return "audio"
    msg = f"file: {path.name} is neither a Standard MIDI File nor WAV/FLAC audio (starts {data[:4]!r})"
    raise ValidationError(msg, field="file", value=str(path))


@guard_app.command("check")
@handle_errors
def check_cmd(
    files: Annotated[list[Path], typer.Argument(help="MIDI files, or WAV/FLAC audio (any number).")],
    render: Annotated[
        bool, typer.Option("--render/--no-render", help="MIDI: also render it and run the audio check.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each verdict as JSON (one object per line for several files).")
    ] = False,
) -> None:
    """Compare files with every catalog recording. Exit 0 all clear, 1 any over the threshold, 2 error.

    The guard is loaded once for all the files (memory-mapped from its saved index), so checking
    many files in one call costs one start-up."""
    from accord.attribution.guard import Guard

    inputs = []
    for file in files:  # every file is read and recognised before any is checked: a bad one stops the call
        if not file.is_file():
            msg = f"file: no file at {file}"
            raise NotFound(msg)
        data = file.read_bytes()
        inputs.append((file, data, _kind_of(data, file)))
    store, settings = open_store(), get_settings()
    wants_audio = any(kind == "audio" for _, _, kind in inputs) or render
    with progress_bar() as update:
        guard = Guard.for_store(store, settings, audio=True if wants_audio else None, progress=update)
    blocked = False
    for file, data, kind in inputs:
        verdict = _check_one(guard, data, kind, render=render, transcribe=settings.guard_transcribe)
        blocked = blocked or verdict.blocked
        if as_json:
            body = {"file": str(file), **verdict.to_dict()}
            if len(inputs) == 1:
                print_json(body)
            else:  # JSON Lines: each line the same object as for one file
                typer.echo(json.dumps(body, ensure_ascii=False, default=str))
        else:
            _print_verdict(file, verdict)
    if blocked:
        raise typer.Exit(EXIT_NO)


def _check_one(guard: Guard, data: bytes, kind: str, *, render: bool, transcribe: bool) -> GuardVerdict:
    """The verdict on one file's bytes (``kind`` from :func:`_kind_of`)."""
    if kind == "audio":
        from accord.attribution.guard.check import check_audio

        return check_audio(guard, data, transcribe=transcribe)
    if not render:
        return guard.verdict(midi=data)
    from accord.media.render import render as render_midi

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "render.wav"
        render_midi(data, wav)
        return guard.verdict(midi=data, audio=wav)


def _print_verdict(file: Path, verdict: GuardVerdict) -> None:
    colour = "red" if verdict.blocked else "green"
    console.print(
        f"{file.name}: [bold {colour}]{verdict.status.upper()}[/] — checks: {', '.join(verdict.checks) or 'none'}; "
        f"thresholds: symbolic {verdict.threshold:g}, audio {verdict.audio_threshold:g} "
        f"({verdict.policy_version}); catalog: {verdict.catalog}",
        highlight=False,
    )
    table = Table(title="Closest catalog works", title_justify="left")
    for col in ("check", "isrc", "title", "score", "threshold", "shared notes", "bars here", "bars there", "line"):
        table.add_column(col, overflow="fold")
    for e in verdict.closest:
        style = "bold red" if e.over else ""
        symbolic = e.check == "symbolic"
        table.add_row(
            e.check,
            e.isrc,
            e.title,
            f"E {e.evalue:.2g} (significance {e.score:g})" if symbolic else f"{e.score:g} weighted landmarks",
            f"{e.threshold:g}",
            str(e.shared_notes) if symbolic else f"{e.matched_fraction:.1%} landmarks",
            f"{e.piece_bars[0]}-{e.piece_bars[1]}" if symbolic else f"{e.piece_seconds[0]:.1f} s",
            f"{e.catalog_bars[0]}-{e.catalog_bars[1]}" if symbolic else f"{e.catalog_seconds[0]:.1f} s",
            f"{e.piece_line}→{e.catalog_line}" if symbolic else e.catalog_line,
            style=style,
        )
    console.print(table)
    for note in verdict.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)


@guard_app.command("calibrate")
@handle_errors
def calibrate_cmd(
    percentile: Annotated[
        float | None, typer.Option(help="Percentile of the catalog's borrowing (default ACCORD_GUARD_PERCENTILE).")
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option(help="Added above it: decades of E (symbolic), landmarks (audio) (default ACCORD_GUARD_MARGIN)."),
    ] = None,
    sample: Annotated[int | None, typer.Option(help="Measure this many catalog pieces (default: all).")] = None,
    audio: Annotated[bool, typer.Option("--audio/--no-audio", help="Also calibrate the audio check.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the policy as JSON.")] = False,
) -> None:
    """Measure how much catalog works share with each other and set the guard's thresholds above it."""
    from accord.attribution.guard import Guard
    from accord.attribution.guard.calibrate import calibrate
    from accord.attribution.guard.policy import default_policy, keep_audio_calibration, save_policy

    store, settings = open_store(), get_settings()
    with progress_bar() as update:
        guard = Guard.for_store(store, settings, audio=audio, progress=update, policy=default_policy())
        result = calibrate(
            guard,
            percentile=settings.guard_percentile if percentile is None else percentile,
            margin=settings.guard_margin if margin is None else margin,
            created=iso(utcnow()) or "",
            sample=sample,
            progress=update,
        )
    kept = False
    if not audio:  # keep this catalog's audio calibration rather than fall back to the default
        kept_policy, kept = keep_audio_calibration(result.policy, settings)
        result = replace(result, policy=kept_policy)
    path = save_policy(result.policy, settings)
    if as_json:
        print_json({"path": str(path), **result.to_dict()})
        return
    policy = result.policy
    table = Table(title="The catalog's own borrowing (best score against other works)", title_justify="left")
    for col in ("check", "measured", "mean", "p50", "p90", "p99", "p99.5", "max", "threshold"):
        table.add_column(col, justify="right")
    for check, threshold in (("symbolic", policy.symbolic_threshold), ("audio", policy.audio_threshold)):
        m = policy.measured.get(check, {})
        if not m.get("count"):
            table.add_row(check, "0", "", "", "", "", "", "", f"{threshold:g} (default)")
            continue
        table.add_row(
            check,
            str(m["count"]),
            f"{m['mean']:g}",
            f"{m['p50']:g}",
            f"{m['p90']:g}",
            f"{m['p99']:g}",
            f"{m['p99.5']:g}",
            f"{m['p100']:g}",
            f"{threshold:g}",
        )
    console.print(table)
    pieces = {p.isrc: p.title for p in guard.index.pieces}
    if result.duplicates:
        dup = Table(
            title=f"Same tune under two titles ({len(result.duplicates)}; left out of the distribution)",
            title_justify="left",
        )
        for col in ("isrc", "title", "same tune as", "title ", "score"):
            dup.add_column(col, overflow="fold")
        for a, b, s in result.duplicates[:15]:
            dup.add_row(a, pieces[a], b, pieces[b], f"{s:g}")
        console.print(dup)
    console.print(
        f"Policy {policy.version}: block at symbolic significance ≥ {policy.symbolic_threshold:g} (E ≤ "
        f"{10**-policy.symbolic_threshold:.2g} chance matches in the catalog) "
        f"(p{policy.percentile:g} + {policy.margin:g}), audio ≥ {policy.audio_threshold:g} landmarks"
        + (" (kept from this catalog's last audio calibration)" if kept else "")
        + f". Saved to {path}",
        highlight=False,
    )


@guard_app.command("evaluate")
@handle_errors
def evaluate_cmd(
    works: Annotated[int, typer.Option(help="Catalog works to plant copies of.")] = 60,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same planted set.")] = 0,
    audio: Annotated[
        bool,
        typer.Option(
            "--audio/--no-audio",
            help="Also plant re-rendered excerpts of catalog recordings and measure the audio check.",
        ),
    ] = False,
    audio_works: Annotated[int, typer.Option(help="Catalog recordings to re-render (with --audio).")] = 30,
    audio_melody: Annotated[
        bool,
        typer.Option(
            "--audio-melody/--no-audio-melody",
            help="With --audio: also transcribe each planted query and score the one decision of the audio "
            "check and the melody check on its notes together (slower: ~1 s per query).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Plant transformed copies of catalog works in other material; report TPR at fixed FPR."""
    from accord.attribution.guard import Guard
    from accord.attribution.guard.evaluate import evaluate
    from accord.attribution.guard.evaluate_audio import evaluate_audio

    store, settings = open_store(), get_settings()
    with progress_bar() as update:
        guard = Guard.for_store(store, settings, audio=audio, progress=update)
        report = evaluate(guard, works=works, seed=seed, progress=update)
        heard = (
            evaluate_audio(
                guard,
                store.media.read_verified,
                works=audio_works,
                seed=seed,
                progress=update,
                with_melody=audio_melody,
            )
            if audio
            else None
        )
    if as_json:
        print_json(report.to_dict() | ({"audio": heard.to_dict()} if heard is not None else {}))
        return
    for table in report.tables():
        console.print(table)
    if heard is not None:
        console.print(heard.table())
