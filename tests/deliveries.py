"""Deliveries built in code: a small valid catalog document, and a writer for its folder."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

MIDI_A = bytes.fromhex("4d546864000000060000000101e04d54726b0000000400ff2f00")  # an empty, valid MIDI file
MIDI_B = MIDI_A + b"\x00"  # different bytes, different hash


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def catalog_agreement(agreement_id: str, licensor: str, side: str, **extra: Any) -> dict[str, Any]:
    """A whole-catalog, worldwide licence for train and generate from 2026, as a delivery writes it."""
    return {
        "id": agreement_id,
        "licensor": licensor,
        "side": side,
        "uses": ["train", "generate"],
        "territory": {"worldwide": True},
        "start": "2026-01-01",
        "coverage": {"catalog": True},
        "terms": {"pool_share": "30"},
        **extra,
    }


def small_catalog() -> dict[str, Any]:
    """A valid two-recording delivery: a label, two publishers, an artist, a writer, one licence each side."""
    return copy.deepcopy(
        {
            "accord_delivery": "1.0",
            "delivery_id": "TEST-001",
            "sender": "P-LABEL",
            "created": "2026-10-01T00:00:00Z",
            "sources": [{"id": "src", "title": "Test masters", "origin": "tests", "terms": "test only"}],
            "parties": [
                {"id": "P-LABEL", "kind": "label", "name": "Test Label", "dpid": "PADPIDA2013020802I"},
                {"id": "P-PUB", "kind": "publisher", "name": "Test Publishing", "ipi": "00014107338"},
                {"id": "P-PUB2", "kind": "publisher", "name": "Second Publishing"},
                {"id": "P-ARTIST", "kind": "artist", "name": "Test Artist", "isni": "0000000122819 55X"},
                {"id": "P-WRITER", "kind": "writer", "name": "Test Writer"},
            ],
            "works": [
                {
                    "id": "W-1",
                    "iswc": "T-034.524.680-1",
                    "title": "First Song",
                    "writers": ["P-WRITER"],
                    "shares": [{"party": "P-PUB", "share": "60"}, {"party": "P-PUB2", "share": "40"}],
                },
                {
                    "id": "W-2",
                    "title": "Second Song",
                    "writers": ["P-WRITER"],
                    "shares": [{"party": "P-PUB", "share_ppm": 1000000}],
                },
            ],
            "recordings": [
                {
                    "isrc": "GB-XYZ-26-00001",
                    "title": "First Song",
                    "artists": ["P-ARTIST"],
                    "duration_ms": 180000,
                    "genre": "Reel",
                    "works": ["W-1"],
                    "shares": [{"party": "P-LABEL", "share": "100"}],
                    "media": [{"path": "media/a.mid", "kind": "midi", "sha256": sha(MIDI_A)}],
                    "source": "src",
                },
                {
                    "isrc": "GBXYZ2600002",
                    "title": "Second Song",
                    "artists": ["P-ARTIST"],
                    "duration_ms": 120000,
                    "works": ["W-2"],
                    "shares": [{"party": "P-LABEL", "share": "100"}],
                    "media": [{"path": "media/b.mid", "kind": "midi"}],
                },
            ],
            "agreements": [
                catalog_agreement("AGR-M", "P-LABEL", "master"),
                catalog_agreement("AGR-P", "P-PUB", "publishing"),
            ],
            "optouts": [],
        }
    )


def write_delivery(
    folder: Path, doc: dict[str, Any], media: dict[str, bytes] | None = None, *, raw: str | None = None
) -> Path:
    """Write ``doc`` as ``folder/catalog.json`` with its media files (default: a.mid and b.mid)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"media/a.mid": MIDI_A, "media/b.mid": MIDI_B} if media is None else media
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (folder / "catalog.json").write_text(raw if raw is not None else json.dumps(doc, indent=2), encoding="utf-8")
    return folder
