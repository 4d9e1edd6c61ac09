"""``accord catalog``: import deliveries, build the demo catalog, show what the registry holds."""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import (
    EXIT_ERROR,
    EXIT_NO,
    console,
    handle_errors,
    instant,
    open_store,
    print_json,
    print_rejection,
    progress_bar,
)
from accord.demo import DemoBuildReport, build_demo_delivery
from accord.errors import InvalidIdentifier, NotFound, Problem, Rejected
from accord.identifiers import IdentifierKind, display, validate_isrc
from accord.licensing import Decision, LicensingPolicy
from accord.money import ppm_to_percent
from accord.registry.delivery import LIST_SEP
from accord.registry.entities import GRANTABLE_USES, Catalog, Use
from accord.registry.ern import ern_to_delivery, import_ern
from accord.registry.ern_message import read_ern
from accord.registry.importer import ImportReport, import_delivery
from accord.registry.standing import acting_as
from accord.registry.store import Store
from accord.settings import get_settings
from accord.timeutil import iso

app = typer.Typer(help="Catalog deliveries: import, demo, show, eligibility.", no_args_is_help=True)

USES = sorted(GRANTABLE_USES)


def _print_report(report: ImportReport) -> None:
    if report.already_imported:
        console.print(
            f"Delivery [bold]{report.delivery_id}[/] from {report.sender} was already imported: nothing changed."
        )
        return
    if not report.changed_anything:
        console.print(f"Delivery [bold]{report.delivery_id}[/]: everything in it is already current; nothing changed.")
        return
    data = report.to_dict()
    table = Table(title=f"Imported delivery {report.delivery_id} from {report.sender}", title_justify="left")
    table.add_column("kind")
    for col in ("added", "changed", "unchanged"):
        table.add_column(col, justify="right")
    kinds = sorted(set(data["added"]) | set(data["changed"]) | set(data["unchanged"]))
    for kind in kinds:
        table.add_row(kind, *(str(data[c].get(kind, 0)) for c in ("added", "changed", "unchanged")))
    console.print(table)
    console.print(f"media files added to the store: {report.media_added}")


AsParty = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Import for this party (the delivery's sender): every record it adds or changes needs the "
        "party's standing. Default: the operator, with full power (audit log: acting_as operator).",
    ),
]


@app.command("import")
@handle_errors
def import_cmd(
    path: Annotated[Path, typer.Argument(help="Delivery folder (catalog.json or CSV files, plus media).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report (or every problem) as JSON.")] = False,
    actor: Annotated[str, typer.Option(help="Who is importing, for the audit log.")] = "operator",
    as_party: AsParty = None,
) -> None:
    """Import a catalog delivery, all or nothing. Exit 0 imported, 1 rejected, 2 error."""
    store = open_store()
    try:
        with progress_bar() as update:
            report = import_delivery(store, path, actor=actor, as_party=as_party, progress=update)
    except Rejected as exc:
        print_rejection(exc, as_json=as_json)
        raise typer.Exit(EXIT_NO) from None
    if as_json:
        print_json(report.to_dict() | {"acting_as": acting_as(as_party)})
    else:
        _print_report(report)
        who = "the operator (full power, no standing check)" if as_party is None else f"{as_party} (standing checked)"
        console.print(f"Imported as {who}.")


WORKS_COLUMNS = ("isrc", "works")
"""Columns of the ``import-ern --works`` CSV: an ISRC and the ``;``-separated ids of the works it embodies."""


def read_works_csv(path: Path) -> dict[str, list[str]]:
    """The ``--works`` CSV as ``works_by_isrc`` (ISRCs compacted, works in the order given).

    Raises:
        Rejected: every problem in the file (a missing or unknown column, an invalid or repeated
            ISRC, a row without works, a work listed twice for one recording, more cells than columns).
    """
    name = path.name
    problems: list[Problem] = []
    out: dict[str, list[str]] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            for col in header:
                if col not in WORKS_COLUMNS:
                    expected = f"a known column ({', '.join(WORKS_COLUMNS)})"
                    problems.append(Problem(name, "row 1", col, col, expected, "unknown_field"))
            missing = [col for col in WORKS_COLUMNS if col not in header]
            for col in missing:
                problems.append(Problem(name, "row 1", col, "", f"a header with {col}", "missing_field"))
            for rowno, row in enumerate(() if missing else reader, start=2):
                where = f"row {rowno}"
                if None in row:
                    extra = ",".join(row[None])
                    problems.append(Problem(name, where, "", extra, "no more cells than header columns", "wrong_type"))
                raw_isrc, cell = (row.get("isrc") or "").strip(), row.get("works") or ""
                works = [w.strip() for w in cell.split(LIST_SEP) if w.strip()]
                try:
                    isrc = validate_isrc(raw_isrc)
                except InvalidIdentifier as exc:
                    problems.append(Problem(name, where, "isrc", raw_isrc, f"a valid ISRC: {exc}", exc.code))
                    continue
                if isrc in out:
                    problems.append(Problem(name, where, "isrc", raw_isrc, "each ISRC on one row", "duplicate"))
                if not works:
                    expected = f"the ids of the works it embodies, separated by {LIST_SEP!r}"
                    problems.append(Problem(name, where, "works", cell, expected, "missing_field"))
                for work in sorted({w for w in works if works.count(w) > 1}):
                    problems.append(Problem(name, where, "works", work, "each work once per recording", "duplicate"))
                out.setdefault(isrc, works)
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, "", "", "", f"UTF-8 text ({exc})", "unreadable"))
    if problems:
        raise Rejected(f"works CSV {name}", problems)
    return out


def _print_problems(title: str, problems: Sequence[Problem]) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("where", "field", "value", "expected", "code"):
        table.add_column(col, overflow="fold")
    for p in problems:
        table.add_row(p.location, p.field, p.value, p.expected, p.code)
    console.print(table)


@app.command("import-ern")
@handle_errors
def import_ern_cmd(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A DDEX ERN 4.3 NewReleaseMessage (XML file).")
    ],
    works: Annotated[
        Path | None,
        typer.Option(
            "--works", exists=True, dir_okay=False, help="CSV isrc,works: the work ids (';'-separated) per recording."
        ),
    ] = None,
    master_owner: Annotated[
        str | None, typer.Option("--master-owner", help="Party owning 100% of the masters (default: the sender).")
    ] = None,
    skip_incomplete: Annotated[
        bool, typer.Option("--skip-incomplete", help="Leave out recordings with problems; import the rest.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report (or every problem) as JSON.")] = False,
    actor: Annotated[str, typer.Option(help="Who is importing, for the audit log.")] = "operator",
    as_party: AsParty = None,
) -> None:
    """Import the sound recordings of an ERN 4.3 message, all or nothing. Exit 0 imported, 1 rejected, 2 error."""
    try:
        works_by_isrc = read_works_csv(works) if works is not None else {}
        conversion = ern_to_delivery(
            read_ern(path), works_by_isrc=works_by_isrc, master_owner=master_owner, file_name=path.name
        )
        store = open_store()
        with progress_bar() as update:
            report = import_ern(
                store, path, works_by_isrc=works_by_isrc, master_owner=master_owner, skip_incomplete=skip_incomplete,
                actor=actor, as_party=as_party, progress=update,
            )  # fmt: skip
    except Rejected as exc:
        print_rejection(exc, as_json=as_json)
        raise typer.Exit(EXIT_NO) from None
    if as_json:
        print_json(
            report.to_dict()
            | {
                "left_out": [p.to_dict() for p in conversion.problems],
                "notes": [p.to_dict() for p in conversion.notes],
            }
        )
        return
    _print_report(report)
    if conversion.problems:
        _print_problems(f"Left out of {path.name} (--skip-incomplete)", conversion.problems)
    if conversion.notes:
        codes = Counter(p.code for p in conversion.notes)
        console.print("Read but not imported: " + ", ".join(f"{c} ({n})" for c, n in sorted(codes.items())))


@app.command("demo")
@handle_errors
def demo_cmd(
    limit: Annotated[
        int | None, typer.Option(help="At most this many pieces per collection (default: the full demo).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (0: one per core).")] = 0,
    territory: Annotated[str, typer.Option(help="Territory for the eligibility table.")] = "US",
    at: Annotated[str | None, typer.Option(help="Instant for the eligibility table (default: now).")] = None,
    table: Annotated[bool, typer.Option("--table/--no-table", help="Print every recording's eligibility.")] = True,
) -> None:
    """Build the demo catalog from public-domain scores (music21 corpus), import it, show eligibility."""
    started = time.perf_counter()
    run_catalog_demo(limit=limit, workers=workers, territory=territory, when=instant(at, field="at"), table=table)
    console.print(f"Demo catalog done in {time.perf_counter() - started:.1f} s.")


def run_catalog_demo(*, limit: int | None, workers: int, territory: str, when: datetime, table: bool) -> Store:
    """Build (or reuse) the demo delivery, import it, print the eligibility tables; the store it went into."""
    settings = get_settings()
    store = open_store()
    dest = settings.cache_dir / "demo-delivery"
    with progress_bar() as update:
        built = build_demo_delivery(
            dest,
            cache_dir=settings.cache_dir / "demo-pieces",
            limit_per_collection=limit,
            workers=workers,
            progress=update,
        )
    console.print(
        f"[bold]Demo delivery[/] built at {dest} in {built.seconds:.1f} s"
        + (" (from cache)" if built.from_cache else "")
    )
    _print_build(built)
    try:
        with progress_bar() as update:
            report = import_delivery(store, dest, actor="demo", progress=update)
    except Rejected as exc:
        print_rejection(exc, as_json=False)
        raise typer.Exit(EXIT_ERROR) from None
    _print_report(report)
    catalog = store.snapshot()
    if table:
        _print_eligibility(catalog, when, territory)
    _print_situations(catalog, when, territory)
    return store


def _print_build(built: DemoBuildReport) -> None:
    table = Table(title="Demo collections (public domain, from the music21 corpus)", title_justify="left")
    table.add_column("collection")
    for col in ("found", "duplicates", "selected", "exported", "skipped"):
        table.add_column(col, justify="right")
    table.add_column("skipped because", overflow="fold")
    for c in built.collections:
        reasons = ", ".join(f"{r} ({n})" for r, n in c.skip_reasons)
        table.add_row(
            c.name, str(c.found), str(c.duplicates), str(c.selected), str(c.exported), str(c.skipped), reasons
        )
    console.print(table)
    if built.excluded:
        console.print("Left out on purpose (their terms do not allow this use): " + ", ".join(built.excluded))
    console.print("Styles: " + ", ".join(f"{s} {n}" for s, n in sorted(built.styles, key=lambda sn: -sn[1])))


def _decisions(catalog: Catalog, when: object, territory: str) -> dict[str, dict[Use, Decision]]:
    policy = LicensingPolicy(catalog)
    out: dict[str, dict[Use, Decision]] = {isrc: {} for isrc in sorted(catalog.recordings)}
    for use in USES:
        for d in policy.decide_all(use, when, territory):  # type: ignore[arg-type]
            out[d.isrc][use] = d
    return out


def _short_reasons(decisions: dict[Use, Decision]) -> str:
    """Each distinct reason once, with the uses it blocks: ``no_agreement P-HARBOUR (all)``."""
    blocked: dict[str, list[str]] = {}
    for use in USES:
        for r in decisions[use].reasons:
            key = r.code + (f" {r.party_id}" if r.party_id else "")
            if use.value not in blocked.setdefault(key, []):
                blocked[key].append(use.value)
    return "; ".join(f"{k} ({'all' if len(v) == len(USES) else ', '.join(v)})" for k, v in blocked.items())


def _print_eligibility(catalog: Catalog, when: object, territory: str) -> None:
    decisions = _decisions(catalog, when, territory)
    table = Table(
        title=f"Eligibility at {iso(when)} in {territory} ({len(decisions)} recordings)",  # type: ignore[arg-type]
        title_justify="left",
    )
    table.add_column("ISRC", no_wrap=True)
    table.add_column("title", max_width=28, no_wrap=True)
    table.add_column("genre", no_wrap=True)
    table.add_column("master", no_wrap=True)
    for use in USES:
        table.add_column(use.value, justify="center")
    table.add_column("why not", overflow="fold")
    for isrc, per_use in decisions.items():
        rec = catalog.recordings[isrc]
        owners = "+".join(s.party_id.removeprefix("P-") for s in rec.shares if s.ppm)
        marks = ["[green]yes[/]" if per_use[u].eligible else "[red]no[/]" for u in USES]
        table.add_row(display(IdentifierKind.ISRC, isrc), rec.title, rec.genre, owners, *marks, _short_reasons(per_use))
    console.print(table)


def _print_situations(catalog: Catalog, when: object, territory: str) -> None:
    decisions = _decisions(catalog, when, territory)
    table = Table(title=f"Summary: recordings per use and reason, at {iso(when)} in {territory}", title_justify="left")  # type: ignore[arg-type]
    table.add_column("use")
    table.add_column("eligible", justify="right")
    table.add_column("not eligible", justify="right")
    table.add_column("reasons (recordings)", overflow="fold")
    for use in USES:
        ok = sum(1 for d in decisions.values() if d[use].eligible)
        reasons: Counter[str] = Counter()
        for d in decisions.values():
            for code in {f"{r.code}" + (f" {r.party_id}" if r.party_id else "") for r in d[use].reasons}:
                reasons[code] += 1
        text = ", ".join(f"{k} ({v})" for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        table.add_row(use.value, str(ok), str(len(decisions) - ok), text)
    console.print(table)


@app.command("eligibility")
@handle_errors
def eligibility_cmd(
    territory: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 territory.")] = "US",
    at: Annotated[str | None, typer.Option(help="Instant of use (default: now).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Registry as it stood then (default: now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Every decision as JSON.")] = False,
) -> None:
    """Every recording's eligibility per use, with the reasons where not."""
    store = open_store()
    catalog = store.snapshot(instant(as_of, field="as_of") if as_of else None)
    when = instant(at, field="at")
    if as_json:
        decisions = _decisions(catalog, when, territory)
        print_json([{u.value: d[u].to_dict() for u in USES} | {"isrc": k} for k, d in decisions.items()])
        return
    _print_eligibility(catalog, when, territory)
    _print_situations(catalog, when, territory)


@app.command("show")
@handle_errors
def show_cmd(
    isrc: Annotated[str | None, typer.Argument(help="A recording to show; none: a summary of the catalog.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Show the registry as it stood then.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What the registry holds (now, or as it stood at --as-of)."""
    store = open_store()
    when = instant(as_of, field="as_of") if as_of else None
    catalog = store.snapshot(when)
    if isrc is None:
        _show_summary(catalog, as_json)
        return
    code = validate_isrc(isrc)
    rec = catalog.recordings.get(code)
    if rec is None:
        msg = f"isrc: {isrc!r} is not in the registry" + (f" as of {as_of}" if as_of else "")
        raise NotFound(msg)
    history = store.history("recordings", code)
    if as_json:
        print_json(
            {
                "isrc": rec.isrc,
                "title": rec.title,
                "artists": list(rec.artists),
                "duration_ms": rec.duration_ms,
                "genre": rec.genre,
                "works": [
                    {
                        "id": w,
                        "iswc": catalog.works[w].iswc if w in catalog.works else None,
                        "shares": {s.party_id: s.ppm for s in catalog.works[w].shares} if w in catalog.works else {},
                    }
                    for w in rec.works
                ],
                "master_shares": {s.party_id: s.ppm for s in rec.shares},
                "media": [{"sha256": m.sha256, "kind": m.kind, "size": m.size} for m in rec.media],
                "metadata": dict(rec.metadata),
                "history": [
                    {"version": v.version, "recorded_from": iso(v.recorded_from), "recorded_to": iso(v.recorded_to)}
                    for v in history
                ],
            }
        )
        return
    console.print(f"[bold]{display(IdentifierKind.ISRC, rec.isrc)}[/]  {rec.title}  ({rec.genre or 'no genre'})")
    artists = ", ".join(catalog.parties[a].name if a in catalog.parties else a for a in rec.artists)
    console.print(f"artists: {artists}; duration {rec.duration_ms / 1000:.1f} s; source {rec.source or '-'}")
    t = Table(title="Ownership", title_justify="left")
    for col in ("side", "subject", "owner", "share"):
        t.add_column(col)
    for s in rec.shares:
        t.add_row("master", rec.isrc, _party(catalog, s.party_id), ppm_to_percent(s.ppm) + "%")
    for w in rec.works:
        work = catalog.works.get(w)
        if work is None:
            t.add_row("publishing", w, "[red]unknown work[/]", "")
            continue
        label = f"{w} {display(IdentifierKind.ISWC, work.iswc)}" if work.iswc else w
        for s in work.shares:
            t.add_row("publishing", label, _party(catalog, s.party_id), ppm_to_percent(s.ppm) + "%")
    console.print(t)
    for m in rec.media:
        console.print(f"media: {m.kind} {m.sha256} ({m.size} bytes)")
    h = Table(title="History", title_justify="left")
    for col in ("version", "recorded from", "recorded to", "by"):
        h.add_column(col)
    for v in history:
        h.add_row(str(v.version), iso(v.recorded_from) or "", iso(v.recorded_to) or "current", v.recorded_by)
    console.print(h)


def _party(catalog: Catalog, party_id: str) -> str:
    p = catalog.parties.get(party_id)
    return f"{p.name} ({party_id})" if p else party_id


def _show_summary(catalog: Catalog, as_json: bool) -> None:
    owners: Counter[str] = Counter()
    genres: Counter[str] = Counter()
    for rec in catalog.recordings.values():
        genres[rec.genre or "-"] += 1
        for s in rec.shares:
            if s.ppm:
                owners[s.party_id] += 1
    if as_json:
        print_json(
            {
                "as_of": iso(catalog.as_of),
                "parties": len(catalog.parties),
                "works": len(catalog.works),
                "recordings": len(catalog.recordings),
                "agreements": len(catalog.agreements),
                "optouts": len(catalog.optouts),
                "recordings_by_master_owner": dict(sorted(owners.items())),
                "recordings_by_genre": dict(sorted(genres.items())),
            }
        )
        return
    console.print(
        f"Registry as of {iso(catalog.as_of)}: {len(catalog.recordings)} recordings, {len(catalog.works)} works, "
        f"{len(catalog.parties)} parties, {len(catalog.agreements)} agreements, {len(catalog.optouts)} opt-outs"
    )
    t = Table(title="Recordings by master owner", title_justify="left")
    t.add_column("owner")
    t.add_column("recordings", justify="right")
    for pid, n in sorted(owners.items()):
        t.add_row(_party(catalog, pid), str(n))
    console.print(t)
    g = Table(title="Recordings by genre", title_justify="left")
    g.add_column("genre")
    g.add_column("recordings", justify="right")
    for genre, n in sorted(genres.items(), key=lambda kv: (-kv[1], kv[0])):
        g.add_row(genre, str(n))
    console.print(g)
