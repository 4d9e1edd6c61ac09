"""The demo delivery document (``catalog.json``, Accord delivery 1.0) and its folder.

Pure assembly: from the exported pieces and the fictional rights picture to the JSON
document of ``docs/delivery-format.md``, every list sorted by id (recordings by ISRC),
shares as exact percentage strings, a fixed ``created`` instant. Then the folder is
written beside ``dest`` and swapped in, so a failed build never leaves half a delivery.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accord.demo import rights
from accord.demo.corpus import CollectionSpec, PieceRef
from accord.demo.sources import sources
from accord.errors import ValidationError
from accord.identifiers import make_iswc, validate_isrc
from accord.registry.entities import PPM_WHOLE

FORMAT_VERSION = "1.0"
CREATED = "2026-11-01T00:00:00Z"
"""The delivery's fixed ``created`` instant (no time of the run goes into the output)."""

DELIVERY_ID = "ACCORD-DEMO-CATALOG"
ISRC_PREFIX = "ZZ"
"""The International ISRC Agency's prefix: demo ISRCs are never registered codes."""
ISRC_YEAR = "26"
ISWC_BASE = 900_000_000
"""Demo ISWCs are ``make_iswc(ISWC_BASE + serial)``: T-900.000.001 upwards."""


@dataclass
class DemoPiece:
    """One exported piece while the build assembles it.

    Attributes:
        spec: its collection.
        ref: where it is in the corpus.
        parsed: its parsed description (title, style, key ... and note events).
        situation: its policy situation (see :mod:`accord.demo.rights`).
        artist: its performer.
        midi: its MIDI file in the cache.
        info: ``{"sha256", "duration_ms"}`` of that MIDI file.
    """

    spec: CollectionSpec
    ref: PieceRef
    parsed: dict[str, Any]
    situation: str = ""
    artist: rights.Artist | None = None
    midi: Path | None = None
    info: dict[str, Any] | None = None

    @property
    def media_path(self) -> str:
        """Its MIDI file, relative to the delivery folder."""
        return f"media/{self.ref.collection}/{self.ref.name}.mid"

    @property
    def work_id(self) -> str:
        return f"W-DEMO-{self.ref.serial:05d}"

    @property
    def isrc(self) -> str:
        registrant = rights.SITUATION_BY_NAME[self.situation].registrant
        return validate_isrc(f"{ISRC_PREFIX}{registrant}{ISRC_YEAR}{self.ref.serial:05d}")


def percent(ppm: int) -> str:
    """Exact percentage string of a ppm share: 333334 → ``"33.3334"``, 500000 → ``"50"``."""
    if not 0 <= ppm <= PPM_WHOLE:
        msg = f"share={ppm} ppm: expected 0..{PPM_WHOLE}"
        raise ValidationError(msg, field="share", value=ppm)
    whole, part = divmod(ppm, 10_000)
    return f"{whole}.{part:04d}".rstrip("0").rstrip(".") if part else str(whole)


def _shares(owners: list[tuple[str, int]]) -> list[dict[str, str]]:
    return [{"party": party, "share": percent(ppm)} for party, ppm in sorted(owners)]


def _work(p: DemoPiece) -> dict[str, Any]:
    owners = rights.publishing_shares(p.ref.piece_id, p.spec.kind, p.situation)
    return {
        "id": p.work_id,
        "iswc": make_iswc(ISWC_BASE + p.ref.serial),
        "title": p.parsed["title"],
        "writers": rights.writers_for(p.ref.collection, owners),
        "shares": _shares(owners),
    }


def _recording(p: DemoPiece) -> dict[str, Any]:
    assert p.artist is not None and p.info is not None  # set by the build before writing
    parsed = p.parsed
    metadata = {
        "collection": p.ref.collection,
        "corpus_path": p.ref.corpus_path,
        "demo_identifiers": "true",
        "demo_situation": p.situation,
        "instrument": p.artist.instrument,
        "key": parsed["key"],
        "meter": parsed["meter"],
        "piece_id": p.ref.piece_id,
        "program": str(p.artist.program),
        "style_from": parsed["style_from"],
        "tempo_bpm": str(parsed["tempo_bpm"]),
        "tempo_from": parsed["tempo_from"],
    }
    if p.ref.number is not None:
        metadata["tune_number"] = str(p.ref.number)
    if parsed.get("transcriber"):
        metadata["transcription"] = parsed["transcriber"]
    return {
        "isrc": p.isrc,
        "title": parsed["title"],
        "artists": [p.artist.party_id],
        "duration_ms": int(p.info["duration_ms"]),
        "genre": parsed["style"],
        "works": [p.work_id],
        "shares": _shares(rights.master_shares(p.situation)),
        "media": [{"path": p.media_path, "kind": "midi", "sha256": p.info["sha256"]}],
        "source": p.spec.source_id,
        "metadata": dict(sorted(metadata.items())),
    }


def delivery_document(pieces: list[DemoPiece], *, music21_version: str) -> dict[str, Any]:
    """The whole ``catalog.json`` document; every list sorted by its id."""
    return {
        "accord_delivery": FORMAT_VERSION,
        "delivery_id": DELIVERY_ID,
        "sender": rights.OPERATOR,
        "created": CREATED,
        "sources": sources(music21_version),
        "parties": rights.parties(),
        "works": sorted((_work(p) for p in pieces), key=lambda w: w["id"]),
        "recordings": sorted((_recording(p) for p in pieces), key=lambda r: r["isrc"]),
        "agreements": rights.agreements(),
        "optouts": rights.optouts(),
    }


# --------------------------------------------------------------------------- folder


def check_replaceable(dest: Path) -> None:
    """Refuse to replace a folder that is not (or no longer) a delivery folder."""
    if not dest.exists():
        return
    if not dest.is_dir():
        msg = f"dest={dest}: is a file; expected a delivery folder to write"
        raise ValidationError(msg, field="dest", value=str(dest))
    extra = sorted(p.name for p in dest.iterdir() if p.name not in {"catalog.json", "media"})
    if extra:
        msg = (
            f"dest={dest}: holds {', '.join(extra[:3])}; expected an empty folder or an "
            "earlier delivery (catalog.json + media/) that may be replaced"
        )
        raise ValidationError(msg, field="dest", value=str(dest))


def write_delivery(
    dest: Path,
    doc: dict[str, Any],
    pieces: list[DemoPiece],
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Write ``catalog.json`` and copy the MIDI files beside ``dest``, then swap it in."""
    check_replaceable(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(f".{dest.name}.building")
    if staging.exists():
        shutil.rmtree(staging)
    for index, p in enumerate(sorted(pieces, key=lambda x: x.media_path), start=1):
        assert p.midi is not None
        target = staging / p.media_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p.midi, target)
        if progress is not None and (index % 50 == 0 or index == len(pieces)):
            progress(index, len(pieces) + 1)
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    (staging / "catalog.json").write_text(text, encoding="utf-8")
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    if progress is not None:
        progress(len(pieces) + 1, len(pieces) + 1)
