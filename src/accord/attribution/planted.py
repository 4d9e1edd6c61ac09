"""A tiny training set with planted canaries, for testing attribution where the answer is known.

Background pieces are seeded random melodies (a scale walk in eighth and quarter notes over a
held bass, in several keys, two styles). Canaries are planted in two ways:

- **duplicated works**: one distinctive melody recorded ``copies`` times under different ISRCs
  (a model sees it ``copies`` times as often as a background piece, the classic memorisation case);
- **distinctive motifs**: a piece built from a motif no other piece has (wide leaps, chromatic
  steps, dotted and triplet-like rhythms), repeated through the piece;
- **typical items** (the harder test): a piece made by the same generator, scale and style as the
  background, so nothing in its notes sets it apart, recorded ``strength`` times under different
  ISRCs (1: an ordinary piece the model saw once; 4: one it saw four times as often). A content
  embedding finds an outlier; here only what the model learnt from the piece can single it out.

An output is *steered* toward a canary by priming generation with the canary's first bars;
the canary's group (all its copies) is then the expected answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from symusic.core import NoteTick, ScoreTick, TempoTick, TimeSignatureTick, TrackTick

from accord.datasets.loader import ManifestLoader
from accord.datasets.manifest import Manifest, ManifestHeader, ManifestItem
from accord.datasets.merkle import MerkleTree
from accord.registry.entities import Catalog, Party, PartyKind, Recording, Share, Use, Work
from accord.registry.media import MediaStore
from accord.timeutil import parse_instant

TPQ = 480
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
LABELS = ("P-LABEL-A", "P-LABEL-B")
PUBLISHERS = ("P-PUB-A", "P-PUB-B")


@dataclass(frozen=True)
class PlantedSet:
    """A planted training set.

    Attributes:
        manifest: the manifest (every piece is an item).
        loader: reads its files.
        catalog: recordings, works and owners (two labels, two publishers, one co-owned work).
        media: the media store.
        groups: canary name → the ISRCs expected for an output steered toward it.
        primes: canary name → the MIDI its outputs are primed with.
        styles: canary name → its style.
    """

    manifest: Manifest
    loader: ManifestLoader
    catalog: Catalog
    media: MediaStore
    groups: dict[str, tuple[str, ...]]
    primes: dict[str, bytes]
    styles: dict[str, str]


def midi(notes: list[tuple[float, float, int]], *, program: int, tempo: float) -> bytes:
    """One-track MIDI from ``(onset, duration, pitch)`` in quarter notes."""
    score = ScoreTick(TPQ)
    score.tempos.append(TempoTick(0, qpm=tempo))
    score.time_signatures.append(TimeSignatureTick(0, 4, 4))
    track = TrackTick()
    track.program = program
    for onset, duration, pitch in notes:
        track.notes.append(NoteTick(round(onset * TPQ), max(1, round(duration * TPQ)), int(pitch), 80))
    score.tracks.append(track)
    return bytes(score.dumps_midi())


def background(
    rng: np.random.Generator, *, bars: int, tonic: int, scale: tuple[int, ...]
) -> list[tuple[float, float, int]]:
    """A scale walk in eighths and quarters with a held bass note per bar."""
    notes: list[tuple[float, float, int]] = []
    degree = int(rng.integers(0, len(scale)))
    for bar in range(bars):
        t = 0.0
        while t < 4.0:
            dur = 0.5 if rng.random() < 0.7 else 1.0
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 1, 1, 2]), 0, 2 * len(scale) - 1))
            octave, step = divmod(degree, len(scale))
            notes.append((bar * 4 + t, dur, 60 + tonic + 12 * octave + scale[step]))
            t += dur
        notes.append((bar * 4.0, 4.0, 48 + tonic))
    return notes


def motif_piece(rng: np.random.Generator, *, bars: int, tonic: int) -> list[tuple[float, float, int]]:
    """A motif of leaps, chromatic steps and uneven rhythm, varied a little and repeated every bar."""
    leaps = rng.choice([-9, -8, 7, 8, 10, 11, -1, 1, 6, -6], size=5)
    rhythm = [0.75, 0.25, 1.0, 0.33, 0.67, 1.0]
    notes: list[tuple[float, float, int]] = []
    for bar in range(bars):
        pitch, t = 66 + tonic, 0.0
        for n, dur in enumerate(rhythm):
            notes.append((bar * 4 + t, dur, int(np.clip(pitch, 50, 90))))
            t += dur
            pitch += int(leaps[n % len(leaps)])
        notes.append((bar * 4.0, 4.0, 45 + tonic))
    return notes


BACKGROUND_PIECES = 32  # ordinary pieces of the planted set, besides the canaries


def build_planted_set(
    root: Path,
    *,
    background_pieces: int = BACKGROUND_PIECES,
    duplicated: int = 2,
    copies: int = 3,
    motifs: int = 2,
    bars: int = 8,
    seed: int = 0,
    typical: Sequence[int] = (),
) -> PlantedSet:
    """Write the planted pieces to a media store under ``root`` and describe them as a manifest.

    ``typical``: one typical canary per entry, recorded that many times (its strength); named
    ``typical-<n>-x<strength>``."""
    rng = np.random.default_rng(seed)
    media = MediaStore(root / "media")
    pieces: list[tuple[str, str, bytes, str]] = []  # (isrc, genre, midi, group)
    styles = (("reel", 73, 150.0, MAJOR), ("air", 40, 70.0, MINOR))
    n = 0

    def isrc() -> str:
        nonlocal n
        n += 1
        return f"ZZPLT26{n:05d}"

    for i in range(background_pieces):
        genre, program, tempo, scale = styles[i % 2]
        notes = background(rng, bars=bars, tonic=int(rng.integers(0, 12)), scale=scale)
        pieces.append((isrc(), genre, midi(notes, program=program, tempo=tempo), ""))
    groups: dict[str, list[str]] = {}
    primes: dict[str, bytes] = {}
    canary_styles: dict[str, str] = {}
    for d in range(duplicated):
        genre, program, tempo, _ = styles[d % 2]
        notes = background(rng, bars=bars, tonic=int(rng.integers(0, 12)), scale=(0, 1, 4, 5, 7, 8, 11))  # a rare mode
        data = midi(notes, program=program, tempo=tempo)
        name = f"duplicate-{d + 1}"
        for _ in range(copies):
            pieces.append((isrc(), genre, data, name))
            groups.setdefault(name, []).append(pieces[-1][0])
        primes[name], canary_styles[name] = data, genre
    for m in range(motifs):
        genre, program, tempo, _ = styles[m % 2]
        data = midi(motif_piece(rng, bars=bars, tonic=int(rng.integers(0, 12))), program=program, tempo=tempo)
        name = f"motif-{m + 1}"
        pieces.append((isrc(), genre, data, name))
        groups[name] = [pieces[-1][0]]
        primes[name], canary_styles[name] = data, genre
    for t, strength in enumerate(typical):
        genre, program, tempo, scale = styles[t % 2]
        notes = background(rng, bars=bars, tonic=int(rng.integers(0, 12)), scale=scale)  # as any background piece
        data = midi(notes, program=program, tempo=tempo)
        name = f"typical-{t + 1}-x{strength}"
        for _ in range(strength):
            pieces.append((isrc(), genre, data, name))
            groups.setdefault(name, []).append(pieces[-1][0])
        primes[name], canary_styles[name] = data, genre

    items, recordings, works = [], [], []
    for k, (code, genre, data, _) in enumerate(sorted(pieces)):
        sha = media.put_bytes(data)
        label, publisher = LABELS[k % 2], PUBLISHERS[k % 2]
        work_id = f"W-PLT-{k + 1:04d}"
        rec_shares = (Share(label, 1_000_000),) if k % 5 else (Share(LABELS[0], 600_000), Share(LABELS[1], 400_000))
        pub_shares = (
            (Share(publisher, 1_000_000),) if k % 7 else (Share(PUBLISHERS[0], 500_000), Share(PUBLISHERS[1], 500_000))
        )
        works.append(Work(work_id=work_id, title=f"Planted work {k + 1}", shares=pub_shares))
        recordings.append(
            Recording(isrc=code, title=f"Planted {code}", works=(work_id,), shares=rec_shares, genre=genre)
        )
        owners = tuple(sorted(s.party_id for s in rec_shares))
        pubs = tuple(sorted(s.party_id for s in pub_shares))
        items.append(
            ManifestItem(
                isrc=code,
                media_sha256=sha,
                media_kind="midi",
                size=len(data),
                duration_ms=bars * 2000,
                agreements=(),
                master_owners=owners,
                publishers=pubs,
                standing=tuple(sorted(set(owners) | set(pubs))),
                works=(work_id,),
                genre=genre,
            )
        )
    as_of = parse_instant("2026-11-01T00:00:00Z", field="as_of")
    header = ManifestHeader(Use.TRAIN, as_of, "US")
    manifest = Manifest(header, tuple(items), (), MerkleTree([i.leaf() for i in items]).root.hex())
    parties = [Party(p, PartyKind.LABEL, p) for p in LABELS] + [Party(p, PartyKind.PUBLISHER, p) for p in PUBLISHERS]
    catalog = Catalog.of(parties=parties, works=works, recordings=recordings)
    return PlantedSet(
        manifest,
        ManifestLoader(manifest, media),
        catalog,
        media,
        {g: tuple(sorted(v)) for g, v in groups.items()},
        primes,
        canary_styles,
    )


def sub_manifest(manifest: Manifest, drop: set[str]) -> Manifest:
    """The same manifest without the items in ``drop`` (for retraining without them)."""
    items = tuple(i for i in manifest.items if i.isrc not in drop)
    return Manifest(manifest.header, items, (), MerkleTree([i.leaf() for i in items]).root.hex())
