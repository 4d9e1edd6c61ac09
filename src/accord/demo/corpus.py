"""The demo's raw material: public-domain scores shipped inside the music21 wheel.

Which collections are used (and which are not), and what pieces they hold:

* :func:`scan_collection` lists the pieces of one collection (a chorale file, or one
  tune of an ABC tune book) without parsing any music, dropping second encodings of
  the same piece;
* :func:`select_pieces` picks a build's pieces deterministically (spread over the whole
  book by a stable hash, so a capped build still holds every section of it).

Parsing the music is :mod:`accord.demo.scores`; styles and tempos are
:mod:`accord.demo.styles`. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

CHORALE = "chorale"
TUNE = "tune"


@dataclass(frozen=True)
class CollectionSpec:
    """One collection of the music21 corpus used by the demo.

    Attributes:
        name: its folder in the music21 corpus (``bach``, ``oneills1850`` ...).
        kind: ``chorale`` (one score per file) or ``tune`` (ABC tunes, one or many per file).
        default_cap: pieces per build when no limit is given (``None``: all), sized so
            that the whole demo holds ~1,500 pieces across styles.
        serial_base: first demo serial of the collection; a piece's serial is stable
            (it does not depend on the build's cap) and names its ISRC and ISWC.
        source_id: the delivery ``sources`` entry the pieces come from.
    """

    name: str
    kind: str
    default_cap: int | None
    serial_base: int
    source_id: str


COLLECTIONS: tuple[CollectionSpec, ...] = (
    CollectionSpec("bach", CHORALE, None, 0, "SRC-BACH-CHORALES"),
    CollectionSpec("oneills1850", TUNE, 450, 10_000, "SRC-ONEILLS-1850"),
    CollectionSpec("ryansMammoth", TUNE, 350, 20_000, "SRC-RYANS-MAMMOTH"),
    CollectionSpec("airdsAirs", TUNE, 350, 30_000, "SRC-AIRDS-AIRS"),
)
"""The collections built, in build order."""

EXCLUDED_COLLECTIONS: tuple[str, ...] = ("essenFolksong", "palestrina")
"""Corpus folders never read: their encodings' terms forbid commercial or derivative use."""

NOT_CHORALES = frozenset({"bwv846"})
"""Files in the corpus's bach/ folder that are not chorales (BWV 846: a keyboard prelude)."""

_FORMAT_PREFERENCE = {".mxl": 0, ".xml": 1, ".musicxml": 1, ".krn": 2}
"""A chorale in several encodings: MusicXML wins; the **kern files reserve derivative rights."""


@dataclass(frozen=True)
class PieceRef:
    """One piece found in the corpus, before any parsing.

    Attributes:
        piece_id: stable id, ``<collection>/<name>`` (``bach/bwv1.6``, ``oneills1850/1201``).
        collection: the corpus folder.
        corpus_path: the file, relative to the music21 corpus root.
        number: the tune's ``X:`` number in an ABC book (``None``: the file is one score).
        serial: the stable demo serial (see :class:`CollectionSpec`).
        file_sha256: hex sha256 of the source file: part of the cache key.
    """

    piece_id: str
    collection: str
    corpus_path: str
    number: int | None
    serial: int
    file_sha256: str

    @property
    def name(self) -> str:
        """The piece's name inside its collection (used for media and cache file names)."""
        return self.piece_id.split("/", 1)[1].replace("/", "-")


@dataclass(frozen=True)
class ScanResult:
    """The pieces of one collection.

    Attributes:
        pieces: the pieces kept, sorted by id.
        found: files (chorales) or tunes (ABC books) seen.
        duplicates: second encodings of a kept piece, dropped.
    """

    pieces: tuple[PieceRef, ...]
    found: int
    duplicates: int


def corpus_root() -> Path:
    """The music21 corpus folder inside the installed wheel."""
    from music21 import corpus

    return Path(corpus.__file__).resolve().parent


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stable_fraction(text: str, salt: str = "") -> float:
    """A number in [0, 1) fixed by ``text``: the same on every run and every machine."""
    digest = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def read_text(path: Path) -> str:
    """A corpus text file (UTF-8, or Latin-1 for the older ABC books)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # older ABC books are Latin-1
        return data.decode("latin-1")


_X_RE = re.compile(r"^X:\s*(\d+)", re.MULTILINE)
_ONEILL_NO_RE = re.compile(r"^B:\s*\"?O'Neill's\s+(\d+)", re.MULTILINE)


def abc_tunes(text: str) -> list[tuple[int, str]]:
    """The tunes of an ABC book as ``(X: number, tune text)``, in file order."""
    starts = [m.start() for m in _X_RE.finditer(text)]
    blocks = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    return [(int(m.group(1)), block) for block in blocks if (m := _X_RE.match(block))]


def abc_field(block: str, field: str) -> str:
    """The first ``field:`` header value of an ABC tune (``""`` when absent)."""
    m = re.search(rf"^{field}:[ \t]*(.*?)\s*$", block, re.MULTILINE)
    return m.group(1) if m else ""


def scan_collection(spec: CollectionSpec, root: Path | None = None) -> ScanResult:
    """List the pieces of one collection, dropping second encodings of a piece."""
    root = root or corpus_root()
    folder = root / spec.name
    if spec.kind == CHORALE:
        return _scan_chorales(spec, root, folder)
    return _scan_tune_books(spec, root, folder)


def _scan_chorales(spec: CollectionSpec, root: Path, folder: Path) -> ScanResult:
    files = sorted(p for p in folder.iterdir() if p.suffix in _FORMAT_PREFERENCE)
    best: dict[str, Path] = {}
    for path in files:
        kept = best.get(path.stem)
        if kept is None or _FORMAT_PREFERENCE[path.suffix] < _FORMAT_PREFERENCE[kept.suffix]:
            best[path.stem] = path
    stems = sorted(best, key=_natural_key)  # serials follow catalogue order: bwv1.6, bwv2.6 ...
    pieces = tuple(
        PieceRef(
            piece_id=f"{spec.name}/{stem}",
            collection=spec.name,
            corpus_path=best[stem].relative_to(root).as_posix(),
            number=None,
            serial=spec.serial_base + index,
            file_sha256=_sha256(best[stem]),
        )
        for index, stem in enumerate(stems, start=1)
    )
    return ScanResult(tuple(sorted(pieces, key=lambda p: p.piece_id)), len(files), len(files) - len(best))


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in re.findall(r"\d+|\D+", text))


def _scan_tune_books(spec: CollectionSpec, root: Path, folder: Path) -> ScanResult:
    files = sorted(folder.glob("*.abc"))
    found = 0
    pieces: dict[str, PieceRef] = {}
    for file_index, path in enumerate(files, start=1):
        sha = _sha256(path)
        rel = path.relative_to(root).as_posix()
        for number, block in abc_tunes(read_text(path)):
            found += 1
            name, serial = _tune_name(spec, path, file_index, number, block)
            piece_id = f"{spec.name}/{name}"
            if piece_id in pieces:  # O'Neill's books overlap: the first transcription wins
                continue
            pieces[piece_id] = PieceRef(piece_id, spec.name, rel, number, serial, sha)
    return ScanResult(tuple(pieces[k] for k in sorted(pieces)), found, found - len(pieces))


def _tune_name(spec: CollectionSpec, path: Path, file_index: int, number: int, block: str) -> tuple[str, int]:
    """A tune's stable name and serial within its collection."""
    if spec.name == "oneills1850":  # tunes are known by their number in the printed book
        m = _ONEILL_NO_RE.search(block)
        oneill = int(m.group(1)) if m else number
        return f"{oneill:04d}", spec.serial_base + oneill
    if spec.name == "ryansMammoth":  # one tune per file, named after it
        return path.stem, spec.serial_base + file_index
    book = int(re.sub(r"\D", "", path.stem) or file_index)  # airdsAirs/book3.abc
    return f"book{book}/{number:04d}", spec.serial_base + book * 1000 + number


def select_pieces(pieces: tuple[PieceRef, ...], cap: int | None) -> tuple[PieceRef, ...]:
    """The first ``cap`` pieces in stable-hash order (all when ``cap`` is None), by id."""
    if cap is None or cap >= len(pieces):
        return pieces
    spread = sorted(pieces, key=lambda p: (stable_fraction(p.piece_id, "select"), p.piece_id))
    return tuple(sorted(spread[: max(cap, 0)], key=lambda p: p.piece_id))


def count_reasons(reasons: list[str]) -> tuple[tuple[str, int], ...]:
    """Reasons counted, sorted by reason (a report's stable order)."""
    return tuple(sorted(Counter(reasons).items()))
