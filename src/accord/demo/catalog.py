"""Build the demo catalog delivery folder (``catalog.json`` + ``media/*.mid``).

One orchestrator, :func:`build_demo_delivery`, with named stages, each reported
through the progress callback:

``scan``    list the pieces of each collection and pick this build's (no parsing);
``parse``   parse each piece with music21 into note events (parallel, cached);
``render``  write each piece's MIDI with its performer's program (parallel, cached);
``write``   assemble the delivery document and the media folder, then swap it in.

The cache (``cache_dir``) keeps each piece's parsed description and its MIDI files
keyed by builder version, collection, source file (name and sha256) and tune number,
so a second build only reads and copies files. The output is deterministic: the same
corpus and builder version give byte-identical ``catalog.json`` and MIDI files, with
every list sorted by id and a fixed ``created`` instant.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accord.demo import rights
from accord.demo.corpus import (
    COLLECTIONS,
    EXCLUDED_COLLECTIONS,
    CollectionSpec,
    PieceRef,
    corpus_root,
    count_reasons,
    scan_collection,
    select_pieces,
)
from accord.demo.document import DemoPiece, check_replaceable, delivery_document, write_delivery
from accord.demo.midi import duration_ms, render_midi
from accord.demo.scores import PieceTask, read_piece
from accord.errors import ValidationError
from accord.execution import get_executor

BUILDER_VERSION = "1"
"""Bump when parsing or rendering changes: older cache entries are then ignored."""

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)``; stages: scan, parse, render, write."""


@dataclass(frozen=True)
class CollectionReport:
    """What one collection gave.

    Attributes:
        name: the music21 corpus folder.
        found: files (chorales) or tunes (ABC books) seen in it.
        duplicates: second encodings of a piece, dropped before selection.
        selected: pieces this build tried (all, or the first by stable hash up to the cap).
        exported: pieces in the delivery.
        skipped: selected pieces left out (failed to parse or export, or duplicates).
        skip_reasons: ``(reason, count)`` sorted by reason.
        cached: selected pieces whose parse came from the cache.
    """

    name: str
    found: int
    duplicates: int
    selected: int
    exported: int
    skipped: int
    skip_reasons: tuple[tuple[str, int], ...] = ()
    cached: int = 0


@dataclass(frozen=True)
class DemoBuildReport:
    """The outcome of :func:`build_demo_delivery`.

    Attributes:
        path: the delivery folder written.
        collections: one report per collection, in build order.
        excluded: corpus folders deliberately not used.
        recordings: recordings in the delivery (one MIDI file each).
        works: works in the delivery.
        parties: parties in the delivery.
        agreements: agreements in the delivery.
        optouts: opt-outs in the delivery.
        styles: ``(style, recordings)`` sorted by style.
        situations: ``(policy situation, recordings)`` sorted by situation.
        seconds: wall time of the build.
        from_cache: whether nothing had to be parsed or rendered.
    """

    path: Path
    collections: tuple[CollectionReport, ...]
    excluded: tuple[str, ...]
    recordings: int
    works: int
    parties: int
    agreements: int
    optouts: int
    styles: tuple[tuple[str, int], ...]
    situations: tuple[tuple[str, int], ...]
    seconds: float
    from_cache: bool

    @property
    def exported(self) -> int:
        return sum(c.exported for c in self.collections)

    @property
    def skipped(self) -> int:
        return sum(c.skipped for c in self.collections)


# --------------------------------------------------------------------------- cache


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent or torn: parse again
    return data if isinstance(data, dict) else None


def _piece_cache(cache_dir: Path, ref: PieceRef) -> Path:
    """``<cache>/demo-v1/<collection>/<file>-<sha12>/<tune or score>`` (add a suffix)."""
    file_name = Path(ref.corpus_path).stem
    tune = f"{ref.number:04d}" if ref.number is not None else "score"
    folder = cache_dir / f"demo-v{BUILDER_VERSION}" / ref.collection
    return folder / f"{file_name}-{ref.file_sha256[:12]}" / tune


@dataclass(frozen=True)
class _ParseJob:
    task: PieceTask
    cache_file: str


def _parse_and_cache(job: _ParseJob) -> dict[str, Any]:
    """Worker: parse one piece and keep the result (a failure too) in the cache."""
    result = read_piece(job.task)
    if result["status"] == "ok":
        canonical = json.dumps(result["events"], separators=(",", ":")).encode()
        result["content_sha256"] = hashlib.sha256(canonical).hexdigest()
    result["piece_id"] = job.task.ref.piece_id
    result["builder"] = BUILDER_VERSION
    data = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    _atomic_write(Path(job.cache_file), data.encode("utf-8"))
    return result


@dataclass(frozen=True)
class _RenderJob:
    piece_file: str
    midi_file: str
    program: int


def _render_and_cache(job: _RenderJob) -> dict[str, Any]:
    """Worker: write one piece's MIDI for a program, with its sha256 and length beside it."""
    piece = _read_json(Path(job.piece_file))
    if piece is None:
        msg = f"cache file {job.piece_file}: unreadable; expected the parsed piece"
        raise ValidationError(msg, field="cache_dir", value=job.piece_file)
    data = render_midi(
        piece["events"],
        tempo_bpm=piece["tempo_bpm"],
        program=job.program,
        title=piece["title"],
        meter=piece["meter"],
        sharps=piece["sharps"],
    )
    info = {"sha256": hashlib.sha256(data).hexdigest(), "duration_ms": duration_ms(data)}
    midi_path = Path(job.midi_file)
    _atomic_write(midi_path, data)
    _atomic_write(midi_path.with_suffix(".json"), json.dumps(info).encode())
    return info


# --------------------------------------------------------------------------- build


def build_demo_delivery(
    dest: Path,
    *,
    cache_dir: Path,
    limit_per_collection: int | None = None,
    workers: int = 0,
    progress: ProgressCallback | None = None,
) -> DemoBuildReport:
    """Write the demo catalog delivery to ``dest`` (``catalog.json`` + ``media/``).

    ``limit_per_collection`` caps the pieces tried per collection (``None``: the
    defaults in :data:`~accord.demo.corpus.COLLECTIONS`, ~1,500 pieces in all);
    ``workers`` sizes the process pool (0: one per core, 1: inline). ``dest`` is
    replaced only when it is absent, empty, or an earlier delivery folder.
    """
    started = time.perf_counter()
    if limit_per_collection is not None and limit_per_collection < 0:
        msg = f"limit_per_collection={limit_per_collection}: expected None or a count >= 0"
        raise ValidationError(msg, field="limit_per_collection", value=limit_per_collection)
    dest, cache_dir = Path(dest), Path(cache_dir)
    check_replaceable(dest)

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    executor = get_executor(workers=workers)  # the backend ACCORD_EXECUTOR names (local by default)
    root = corpus_root()

    # scan: which pieces, in which collections (cheap: no music is parsed)
    scans = []
    for index, spec in enumerate(COLLECTIONS, start=1):
        scan = scan_collection(spec, root)
        cap = limit_per_collection if limit_per_collection is not None else spec.default_cap
        scans.append((spec, scan, select_pieces(scan.pieces, cap)))
        report("scan", index, len(COLLECTIONS))

    # parse: cached pieces are read back, the rest parsed in parallel
    selected = [(spec, ref) for spec, _, chosen in scans for ref in chosen]
    parsed: dict[str, dict[str, Any]] = {}
    jobs: list[_ParseJob] = []
    for _, ref in selected:
        cache_file = _piece_cache(cache_dir, ref).with_suffix(".json")
        hit = _read_json(cache_file)
        if hit is not None and hit.get("builder") == BUILDER_VERSION:
            parsed[ref.piece_id] = hit
        else:
            jobs.append(_ParseJob(PieceTask(ref, str(root)), str(cache_file)))
    hits = len(parsed)
    report("parse", hits, len(selected))
    results = executor.map(
        _parse_and_cache,
        jobs,
        on_done=lambda done, _: report("parse", hits + done, len(selected)),
        chunksize=4,
    )
    parsed.update((job.task.ref.piece_id, r) for job, r in zip(jobs, results, strict=True))

    # keep what parsed, once per collection (identical note content is one piece)
    pieces, reasons = _keep(selected, parsed)

    # assign rights: situation, performer (its program goes into the MIDI file)
    situations = rights.assign_situations([(p.ref.piece_id, p.spec.kind) for p in pieces])
    for p in pieces:
        p.situation = situations[p.ref.piece_id]
        p.artist = rights.artist_for(p.ref.piece_id, p.spec.kind, p.situation)

    # render: cached MIDI files are reused, the rest written in parallel
    renders: list[tuple[DemoPiece, _RenderJob]] = []
    for p in pieces:
        assert p.artist is not None
        base = _piece_cache(cache_dir, p.ref)
        p.midi = base.with_name(f"{base.name}.p{p.artist.program:03d}.mid")
        p.info = _read_json(p.midi.with_suffix(".json"))
        if p.info is None or not p.midi.is_file():
            job = _RenderJob(str(base.with_suffix(".json")), str(p.midi), p.artist.program)
            renders.append((p, job))
    render_hits = len(pieces) - len(renders)
    report("render", render_hits, len(pieces))
    infos = executor.map(
        _render_and_cache,
        [job for _, job in renders],
        on_done=lambda done, _: report("render", render_hits + done, len(pieces)),
        chunksize=8,
    )
    for (p, _), info in zip(renders, infos, strict=True):
        p.info = info

    # write: the document and the media folder, built aside and swapped in
    doc = delivery_document(pieces, music21_version=_music21_version())
    write_delivery(dest, doc, pieces, lambda done, total: report("write", done, total))

    parsed_now = {job.task.ref.piece_id for job in jobs}
    collections = tuple(
        CollectionReport(
            name=spec.name,
            found=scan.found,
            duplicates=scan.duplicates,
            selected=len(chosen),
            exported=sum(1 for p in pieces if p.spec.name == spec.name),
            skipped=len(chosen) - sum(1 for p in pieces if p.spec.name == spec.name),
            skip_reasons=count_reasons(reasons[spec.name]),
            cached=sum(1 for ref in chosen if ref.piece_id not in parsed_now),
        )
        for spec, scan, chosen in scans
    )
    return DemoBuildReport(
        path=dest,
        collections=collections,
        excluded=EXCLUDED_COLLECTIONS,
        recordings=len(doc["recordings"]),
        works=len(doc["works"]),
        parties=len(doc["parties"]),
        agreements=len(doc["agreements"]),
        optouts=len(doc["optouts"]),
        styles=tuple(sorted(Counter(p.parsed["style"] for p in pieces).items())),
        situations=tuple(sorted(Counter(p.situation for p in pieces).items())),
        seconds=round(time.perf_counter() - started, 3),
        from_cache=not jobs and not renders,
    )


def _keep(
    selected: list[tuple[CollectionSpec, PieceRef]], parsed: dict[str, dict[str, Any]]
) -> tuple[list[DemoPiece], dict[str, list[str]]]:
    """The pieces that parsed, the first (by id) of each identical note content kept."""
    pieces: list[DemoPiece] = []
    reasons: dict[str, list[str]] = {spec.name: [] for spec in COLLECTIONS}
    seen: set[tuple[str, str]] = set()
    for spec, ref in sorted(selected, key=lambda s: s[1].piece_id):
        result = parsed[ref.piece_id]
        if result.get("status") != "ok":
            reasons[spec.name].append(str(result.get("reason", "unknown")))
            continue
        content = (spec.name, str(result["content_sha256"]))
        if content in seen:
            reasons[spec.name].append("duplicate_content")
            continue
        seen.add(content)
        pieces.append(DemoPiece(spec, ref, result))
    return pieces, reasons


def _music21_version() -> str:
    import music21

    return str(music21.__version__)
