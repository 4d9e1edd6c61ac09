"""``accord guard``: check any file against the whole catalog, calibrate the thresholds, measure the guard."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import EXIT_NO, console, handle_errors, open_store, print_json, progress_bar
from accord.errors import NotFound, ValidationError
from accord.settings import get_settings
from accord.timeutil import iso, utcnow

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
    file: Annotated[Path, typer.Argument(help="A MIDI file, or WAV/FLAC audio.")],
    render: Annotated[
        bool, typer.Option("--render/--no-render", help="MIDI: also render it and run the audio check.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Compare a file with every catalog recording. Exit 0 clear, 1 over the threshold, 2 error."""
    from accord.attribution.guard import Guard

    if not file.is_file():
        msg = f"file: no file at {file}"
        raise NotFound(msg)
    data = file.read_bytes()
    kind = _kind_of(data, file)
    store, settings = open_store(), get_settings()
    with progress_bar() as update:
        guard = Guard.for_store(store, settings, audio=True if kind == "audio" or render else None, progress=update)
    if kind == "midi":
        if render:
            from accord.media.render import render as render_midi

            with tempfile.TemporaryDirectory() as tmp:
                wav = Path(tmp) / "render.wav"
                render_midi(data, wav)
                verdict = guard.verdict(midi=data, audio=wav)
        else:
            verdict = guard.verdict(midi=data)
    else:
        from accord.attribution.guard.check import check_audio

        verdict = check_audio(guard, data, transcribe=settings.guard_transcribe)
    if as_json:
        print_json({"file": str(file), **verdict.to_dict()})
    else:
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
                f"E {e.evalue:.2g} (significance {e.score:g})" if symbolic else f"{e.score:g} landmarks",
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
    if verdict.blocked:
        raise typer.Exit(EXIT_NO)


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
            evaluate_audio(guard, store.media.read_verified, works=audio_works, seed=seed, progress=update)
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
