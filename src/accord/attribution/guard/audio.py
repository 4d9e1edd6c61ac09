"""The audio check's reference set: fingerprints of every catalog recording's sound.

For each recording in the registry the guard fingerprints (:mod:`accord.media.fingerprint`)

* every **audio file** delivered with it (``kind = "audio"``: WAV or FLAC), and
* a **render of its MIDI** (FluidSynth with the soundfont that renders outputs, at 8 kHz,
  the first :data:`RENDER_SECONDS` seconds), since an output that reproduces a catalog piece
  note for note with the same instrument sounds like it. Where pyfluidsynth and a soundfont
  are available the render runs in this process (:mod:`accord.media.fluid`: the soundfont is
  loaded once per process, not once per piece); otherwise :func:`accord.media.render.render`
  runs the ``fluidsynth`` command per piece.

Fingerprints are cached one file per media hash (``cache_dir/guard/fp/``), so a catalog
change costs only its new files. Audio-only recordings are also transcribed to notes for the
symbolic check (:func:`accord.attribution.guard.check.transcribed_midi`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from accord.attribution.guard.index import CatalogPiece, load_arrays, save_arrays
from accord.errors import AccordError
from accord.media.fingerprint import (
    FINGERPRINT_VERSION,
    INDEX_FORMAT,
    SAMPLE_RATE,
    Fingerprint,
    FingerprintIndex,
    fingerprint_file,
)

if TYPE_CHECKING:
    from accord.registry.store import Store
    from accord.settings import Settings

RENDER_SECONDS = 180.0  # renders are cut here: the audio check's cost grows with catalog minutes
RENDER_IN_PROCESS = "fluid2"
"""Cache tag of MIDI renders made in process (:mod:`accord.media.fluid`); bump when that render changes."""
RENDER_COMMAND = "cli1"
"""Cache tag of MIDI renders made with the ``fluidsynth`` command (or the simple synthesizer)."""
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class AudioSource:
    """One catalog sound the audio check compares against.

    Attributes:
        isrc: the recording.
        title: its title.
        sha256: the media file's hash (MIDI or audio).
        origin: ``"audio"`` (a delivered recording) or ``"midi render"``.
    """

    isrc: str
    title: str
    sha256: str
    origin: str


def render_tag() -> str:
    """:data:`RENDER_IN_PROCESS` where :func:`render_fingerprint` renders in process, else :data:`RENDER_COMMAND`."""
    from accord.media.fluid import available

    return RENDER_IN_PROCESS if available()[0] else RENDER_COMMAND


def _cache_path(cache_dir: Path, source: AudioSource, render: str | None = None) -> Path:
    """The cache file of ``source``; MIDI renders also name how they were rendered (:func:`render_tag`)."""
    tag = FINGERPRINT_VERSION.replace("/", "-")
    origin = source.origin.replace(" ", "-")
    if source.origin != "audio":
        origin = f"{origin}-{render or render_tag()}"
    return cache_dir / "guard" / "fp" / f"{tag}-{origin}-{source.sha256}.npz"


def fingerprint_source(job: tuple[AudioSource, Path, Path]) -> Fingerprint:
    """Fingerprint one source (rendering MIDI first), reading and writing its cache file."""
    source, media_path, cache_dir = job
    path = _cache_path(cache_dir, source)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return Fingerprint(data["hashes"], data["times"], float(data["seconds"]))
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)
    audio = source.origin == "audio"
    fp = fingerprint_file(media_path) if audio else render_fingerprint(media_path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, hashes=fp.hashes, times=fp.times, seconds=np.array(fp.seconds))
    tmp.replace(path)
    return fp


def render_fingerprint(midi: bytes) -> Fingerprint:
    """The fingerprint of a MIDI file rendered as outputs are (cut at :data:`RENDER_SECONDS`).

    In process with pyfluidsynth where it and a soundfont are available
    (:func:`accord.media.fluid.render_performance`), else with the ``fluidsynth`` command.
    """
    from accord.media.features import read_performance
    from accord.media.fluid import FluidUnavailable, available, render_performance
    from accord.media.render import render, synthesize

    perf = read_performance(midi)
    if available()[0]:
        try:
            samples = render_performance(perf, SAMPLE_RATE, seconds=min(perf.seconds, RENDER_SECONDS))
        except FluidUnavailable:
            pass  # e.g. the soundfont does not load: the command line below says why, or falls back
        else:
            from accord.media.fingerprint import fingerprint

            return fingerprint(samples, SAMPLE_RATE)
    if perf.seconds > RENDER_SECONDS:
        keep = perf.notes[:, 0] < RENDER_SECONDS
        perf = type(perf)(perf.notes[keep], perf.track[keep], perf.instruments, perf.downbeats, RENDER_SECONDS)
        from accord.media.fingerprint import fingerprint

        return fingerprint(synthesize(perf, SAMPLE_RATE), SAMPLE_RATE)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "render.wav"
        try:
            render(midi, out, sample_rate=SAMPLE_RATE)
        except AccordError:
            from accord.media.fingerprint import fingerprint

            return fingerprint(synthesize(perf, SAMPLE_RATE), SAMPLE_RATE)
        return fingerprint_file(out)


def fingerprint_all(
    sources: Sequence[tuple[AudioSource, Path]], cache_dir: Path, workers: int = 1, progress: Progress | None = None
) -> list[Fingerprint]:
    """Fingerprints of every source, from the cache where present, the rest in a process pool."""
    jobs = [(s, p, cache_dir) for s, p in sources]
    render = render_tag()
    missing = [j for j in jobs if not _cache_path(cache_dir, j[0], render).is_file()]
    if len(missing) > 4 and workers != 1:

        def done(n: int, total: int) -> None:
            if progress:
                progress("fingerprint catalog audio", n, total)

        from accord.execution import get_executor

        get_executor(workers=workers).map(fingerprint_source, missing, on_done=done)  # ACCORD_EXECUTOR's
    out = []
    for i, job in enumerate(jobs, start=1):
        out.append(fingerprint_source(job))
        if progress and len(missing) <= 4:
            progress("fingerprint catalog audio", i, len(jobs))
    return out


_REFERENCE_ARRAYS = ("hashes", "clips", "times", "weights")


def reference_key(sources: Sequence[AudioSource]) -> str:
    """The hash the built audio reference is saved under: the fingerprint method, how MIDI is rendered,
    and every source (ISRC, origin, media hash) in order."""
    data = json.dumps(
        [FINGERPRINT_VERSION, INDEX_FORMAT, render_tag(), [(s.isrc, s.origin, s.sha256) for s in sources]]
    )
    return hashlib.sha256(data.encode()).hexdigest()


def load_or_build_reference(
    sources: Sequence[tuple[AudioSource, Path]], cache_dir: Path, workers: int = 1, progress: Progress | None = None
) -> FingerprintIndex:
    """The landmark index of ``sources``: memory-mapped from ``cache_dir/guard/audio-<key>/`` where saved
    before (no fingerprint read, nothing sorted), else built from the per-file fingerprints and saved."""
    path = cache_dir / "guard" / f"audio-{reference_key([s for s, _ in sources])[:24]}"
    if path.is_dir():
        try:
            arrays, meta = load_arrays(path, _REFERENCE_ARRAYS)
            if meta.get("version") == INDEX_FORMAT and int(meta["count"]) == len(sources):
                return FingerprintIndex(count=int(meta["count"]), **arrays)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        shutil.rmtree(path, ignore_errors=True)  # damaged or of another method: built again, never trusted
    index = FingerprintIndex.build(fingerprint_all(sources, cache_dir, workers, progress))
    save_arrays(
        path,
        {name: getattr(index, name) for name in _REFERENCE_ARRAYS},
        {"version": INDEX_FORMAT, "fingerprint": FINGERPRINT_VERSION, "count": index.count},
    )
    return index


# -- the catalog the guard covers, kept resident ----------------------------------------------

LISTING_FORMAT = "guard-catalog/1"
PROBE_MARGIN = timedelta(seconds=1)
"""A saved listing is trusted only while the registry has recorded nothing since this long before
it was read: a write in the same instant as the read (a frozen test clock, or the same microsecond)
sends the next caller back to the registry instead of being missed."""
_LISTINGS: dict[str, tuple[datetime, GuardCatalog]] = {}


@dataclass(frozen=True)
class GuardCatalog:
    """What the guard compares with: every recording of the registry that has media to compare.

    Attributes:
        pieces: the recordings with notes (MIDI, or audio transcribed to notes), sorted by ISRC.
        works: per piece, the works it embodies (recordings of one work are one work).
        genres: per piece, its genre.
        midi: MIDI file per media hash (pieces with MIDI).
        transcribed: audio file per media hash (audio-only pieces, transcribed for the symbolic check).
        audio_sources: every catalog sound with its file: delivered audio and MIDI to render.
        missing: media hashes named by a recording but not in the media store (left out until stored).
    """

    pieces: tuple[CatalogPiece, ...]
    works: tuple[tuple[str, ...], ...]
    genres: tuple[str, ...]
    midi: Mapping[str, Path]
    transcribed: Mapping[str, Path]
    audio_sources: tuple[tuple[AudioSource, Path], ...]
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "pieces": [[p.isrc, p.title, p.sha256] for p in self.pieces],
            "works": [list(w) for w in self.works],
            "genres": list(self.genres),
            "midi": {k: str(v) for k, v in self.midi.items()},
            "transcribed": {k: str(v) for k, v in self.transcribed.items()},
            "audio_sources": [[s.isrc, s.title, s.sha256, s.origin, str(p)] for s, p in self.audio_sources],
            "missing": list(self.missing),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuardCatalog:
        return cls(
            pieces=tuple(CatalogPiece(*row) for row in data["pieces"]),
            works=tuple(tuple(w) for w in data["works"]),
            genres=tuple(data["genres"]),
            midi={k: Path(v) for k, v in data["midi"].items()},
            transcribed={k: Path(v) for k, v in data["transcribed"].items()},
            audio_sources=tuple((AudioSource(*row[:4]), Path(row[4])) for row in data["audio_sources"]),
            missing=tuple(data["missing"]),
        )


def read_guard_catalog(store: Store, settings: Settings) -> GuardCatalog:
    """The guard's catalog as the registry holds it now (one snapshot)."""
    catalog = store.snapshot()
    pieces, works, genres, audio_sources, missing = [], [], [], [], []
    midi_paths: dict[str, Path] = {}
    transcribed: dict[str, Path] = {}
    # sorted by ISRC: the index (and its hash) does not depend on storage order
    for isrc in sorted(catalog.recordings):
        rec = catalog.recordings[isrc]
        media = sorted(rec.media, key=lambda m: (m.kind, m.sha256))
        stored = {m.sha256 for m in media if store.media.has(m.sha256)}
        missing += [m.sha256 for m in media if m.sha256 not in stored and m.kind in ("midi", "audio")]
        midi = next((m for m in media if m.kind == "midi"), None)
        if midi is not None and midi.sha256 in stored:
            pieces.append(CatalogPiece(isrc, rec.title, midi.sha256))
            works.append(tuple(sorted(rec.works)))
            genres.append(rec.genre)
            midi_paths[midi.sha256] = store.media.path_for(midi.sha256)
            audio_sources.append((AudioSource(isrc, rec.title, midi.sha256, "midi render"), midi_paths[midi.sha256]))
        elif settings.guard_transcribe:
            # audio only: its notes, transcribed once (cached), so the symbolic check covers it too
            heard = next((m for m in media if m.kind == "audio" and m.sha256 in stored), None)
            if heard is not None:
                pieces.append(CatalogPiece(isrc, rec.title, heard.sha256))
                works.append(tuple(sorted(rec.works)))
                genres.append(rec.genre)
                transcribed[heard.sha256] = store.media.path_for(heard.sha256)
        for m in media:
            if m.kind == "audio" and m.sha256 in stored:
                audio_sources.append((AudioSource(isrc, rec.title, m.sha256, "audio"), store.media.path_for(m.sha256)))
    return GuardCatalog(
        tuple(pieces),
        tuple(works),
        tuple(genres),
        midi_paths,
        transcribed,
        tuple(audio_sources),
        tuple(sorted(set(missing))),
    )


def _listing_path(store: Store, settings: Settings) -> tuple[str, Path]:
    """The resident listing's name (registry URL, media folder, transcription on/off) and file."""
    url = store.engine.url.render_as_string(hide_password=True)
    name = json.dumps([LISTING_FORMAT, url, str(store.media.root), settings.guard_transcribe])
    digest = hashlib.sha256(name.encode()).hexdigest()[:24]
    return digest, settings.cache_dir / "guard" / f"catalog-{digest}.json"


def _still_current(store: Store, as_of: datetime, listing: GuardCatalog) -> bool:
    """Whether the registry has recorded nothing since ``as_of`` (less :data:`PROBE_MARGIN`) and no
    media file the listing lacked has been stored since: one cheap query per record kind."""
    if store.clock() < as_of:
        return False  # a clock behind the listing: trust nothing
    changed, _ = store.changed_since(as_of - PROBE_MARGIN)
    return not any(changed.values()) and not any(store.media.has(sha) for sha in listing.missing)


def guard_catalog(store: Store, settings: Settings) -> GuardCatalog:
    """The guard's catalog, kept resident: in this process, and on disk for the next one.

    A listing read before is used again while the registry has recorded nothing since
    (:func:`_still_current`: one query per record kind instead of a snapshot of the whole
    registry); otherwise it is read again (:func:`read_guard_catalog`) and saved.
    """
    name, path = _listing_path(store, settings)
    held = _LISTINGS.get(name)
    if held is None and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") == LISTING_FORMAT:
                held = (datetime.fromisoformat(data["as_of"]), GuardCatalog.from_dict(data["catalog"]))
        except (OSError, ValueError, KeyError, TypeError):
            held = None  # a damaged listing is read again, never trusted
    if held is not None and _still_current(store, *held):
        _LISTINGS[name] = held
        return held[1]
    as_of = store.clock()
    listing = read_guard_catalog(store, settings)
    _LISTINGS[name] = (as_of, listing)
    data = {"format": LISTING_FORMAT, "as_of": as_of.isoformat(), "catalog": listing.to_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return listing
