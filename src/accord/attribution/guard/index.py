"""The inverted index of catalog lines: which works contain each n-gram, and how rare it is.

Every line of every catalog recording with MIDI (the **whole** registry, licensed or not:
copying any known song is the harm) is one *entry*. The index keeps:

* the entries' notes end to end (pitch, rhythm class, bar, onset) and where each starts,
  for the alignment that re-scores candidates;
* every distinct n-gram (sorted), the entries that contain it (posting lists), and its
  inverse document frequency ``idf = log(entries / entries containing it)``: a pattern
  every other tune has (a scale, a cadence) weighs almost nothing, a rare one a lot.

A query looks up its distinct n-grams (binary search), sums the idf of the ones each entry
shares, and returns the best-scoring entries: no pass over the catalog. n-grams in more
than :data:`STOP_FRACTION` of entries are skipped at query time (their idf is near zero and
their posting lists are the longest).

The index is saved under ``cache_dir/guard/`` named by a hash of the registry's media
(ISRC, title and MIDI hash of every recording) and of :data:`INDEX_VERSION`, so it is built
again only when the catalog or the method changes. It is saved as a folder of ``.npy`` arrays
and loaded memory-mapped (:func:`load_arrays`): opening it reads no array, a check pages in
only what it touches, and processes on one machine share the pages.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accord.attribution.guard.lines import LINE_KINDS, extract_lines
from accord.attribution.guard.ngrams import GRAM, SYMBOL_BITS, Encoded, encode, grams, grams_batch

INDEX_VERSION = "guard-index/3"
STOP_FRACTION = 0.02  # grams in more than 2% of entries (and more than 50) are skipped at query time
STOP_MIN_DF = 50

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CatalogPiece:
    """A catalog recording the symbolic guard indexes.

    Attributes:
        isrc: its ISRC.
        title: its title.
        sha256: the content hash of its MIDI file (or of the audio it was transcribed from).
    """

    isrc: str
    title: str
    sha256: str


@dataclass(frozen=True)
class SymbolicIndex:
    """Catalog lines and their n-gram index (see the module docstring).

    Attributes:
        pieces: the indexed recordings, sorted by ISRC.
        entry_piece: ``int32[E]`` which piece each entry (line) belongs to.
        entry_kind: ``int8[E]`` index into :data:`LINE_KINDS`.
        starts: ``int64[E+1]`` where each entry's notes start in the note arrays.
        pitches, rhythm, bars, onsets: the notes of every entry, end to end.
        gram_keys: ``uint64[U]`` distinct n-grams, sorted.
        gram_starts: ``int64[U+1]`` where each n-gram's postings start.
        postings: ``int32[P]`` entry ids, by n-gram.
        idf: ``float32[U]`` inverse document frequency of each n-gram.
        entry_metered: ``bool[E]`` whether each entry's bars come from a time signature.
        rarity: ``float32[N]`` per note: the highest idf of the n-grams covering it over
            ``log(entries)`` (1: a pattern found in this line only; near 0: in every line).
        key: the catalog hash the index was built for.
    """

    pieces: tuple[CatalogPiece, ...]
    entry_piece: np.ndarray
    entry_kind: np.ndarray
    starts: np.ndarray
    pitches: np.ndarray
    rhythm: np.ndarray
    bars: np.ndarray
    onsets: np.ndarray
    gram_keys: np.ndarray
    gram_starts: np.ndarray
    postings: np.ndarray
    idf: np.ndarray
    rarity: np.ndarray
    key: str
    entry_metered: np.ndarray

    @property
    def entries(self) -> int:
        return len(self.entry_piece)

    def entry(self, e: int) -> Encoded:
        """The notes of entry ``e``."""
        a, b = int(self.starts[e]), int(self.starts[e + 1])
        return Encoded(
            self.pitches[a:b],
            self.rhythm[a:b],
            self.bars[a:b],
            self.onsets[a:b],
            self.rarity[a:b],
            bool(self.entry_metered[e]),
        )

    def candidates(self, query_grams: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` entries sharing the most idf weight with ``query_grams``: ``(entry, weight)``, best first."""
        if len(self.gram_keys) == 0 or len(query_grams) == 0:
            return []
        q = np.unique(query_grams)
        pos = np.minimum(np.searchsorted(self.gram_keys, q), len(self.gram_keys) - 1)
        found = pos[self.gram_keys[pos] == q]
        if len(found) == 0:
            return []
        lo, hi = self.gram_starts[found], self.gram_starts[found + 1]
        stop = max(STOP_MIN_DF, int(STOP_FRACTION * self.entries))
        keep = (hi - lo) <= stop
        lo, hi, found = lo[keep], hi[keep], found[keep]
        lengths = hi - lo
        total = int(lengths.sum())
        if total == 0:
            return []
        offsets = np.repeat(lo - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(total)
        hits = self.postings[offsets]
        weights = np.repeat(self.idf[found], lengths)
        uniq, inverse = np.unique(hits, return_inverse=True)
        score = np.bincount(inverse, weights=weights)
        # best weight first; ties by entry id so results do not depend on sort stability
        order = np.lexsort((uniq, -score))[:k]
        return [(int(uniq[i]), float(score[i])) for i in order]


def catalog_key(pieces: Sequence[CatalogPiece]) -> str:
    """The hash an index is saved under: every piece's ISRC, title and media hash, and the method version."""
    data = json.dumps([INDEX_VERSION, GRAM, [(p.isrc, p.title, p.sha256) for p in pieces]])
    return hashlib.sha256(data.encode()).hexdigest()


def build_index(
    pieces: Sequence[CatalogPiece],
    encoded: Sequence[Sequence[tuple[str, Encoded]]],
    key: str = "",
) -> SymbolicIndex:
    """Index ``encoded[i]`` (``(kind, line)`` pairs) as the lines of ``pieces[i]``."""
    entry_piece, entry_kind, chunks, metered = [], [], [], []
    for i, lines in enumerate(encoded):
        for kind, enc in lines:
            entry_piece.append(i)
            entry_kind.append(LINE_KINDS.index(kind))
            chunks.append(enc)
            metered.append(enc.metered)
    lengths = np.array([len(c) for c in chunks], dtype=np.int64)
    starts = np.r_[0, np.cumsum(lengths)].astype(np.int64)

    def cat(name: str, dtype: type) -> np.ndarray:
        return np.concatenate([getattr(c, name) for c in chunks]).astype(dtype) if chunks else np.zeros(0, dtype)

    return index_from_arrays(
        pieces,
        np.asarray(entry_piece, dtype=np.int32),
        np.asarray(entry_kind, dtype=np.int8),
        starts,
        cat("pitches", np.int16),
        cat("rhythm", np.int8),
        cat("bars", np.int32),
        cat("onsets", np.float32),
        key,
        np.asarray(metered, dtype=bool),
    )


def index_from_arrays(
    pieces: Sequence[CatalogPiece],
    entry_piece: np.ndarray,
    entry_kind: np.ndarray,
    starts: np.ndarray,
    pitches: np.ndarray,
    rhythm: np.ndarray,
    bars: np.ndarray,
    onsets: np.ndarray,
    key: str = "",
    entry_metered: np.ndarray | None = None,
) -> SymbolicIndex:
    """Build the n-gram postings and idf over notes already laid end to end (used for synthetic catalogs too)."""
    g, line = grams_batch(pitches, rhythm, starts)
    # one posting per (gram, entry): an entry that repeats a pattern counts it once. A gram is
    # GRAM * 10 = 40 bits, so (gram, entry) packs into one uint64 for up to 2^24 entries: one 1-D sort
    entry_bits = 64 - GRAM * SYMBOL_BITS
    if len(entry_piece) < (1 << entry_bits):
        packed = np.unique((g << np.uint64(entry_bits)) | line.astype(np.uint64))
        keys_sorted = packed >> np.uint64(entry_bits)
        entries_sorted = (packed & np.uint64((1 << entry_bits) - 1)).astype(np.int32)
    else:
        pairs = np.unique(np.stack([g, line.astype(np.uint64)], axis=1), axis=0)
        keys_sorted, entries_sorted = pairs[:, 0], pairs[:, 1].astype(np.int32)
    gram_keys, first, counts = np.unique(keys_sorted, return_index=True, return_counts=True)
    gram_starts = np.r_[first, len(keys_sorted)].astype(np.int64)
    n_entries = max(len(entry_piece), 1)
    idf = np.log(n_entries / np.maximum(counts, 1)).astype(np.float32)
    rarity = note_rarity(g, line, starts, len(pitches), gram_keys, idf, n_entries)
    return SymbolicIndex(
        tuple(pieces),
        entry_piece,
        entry_kind,
        starts,
        pitches,
        rhythm,
        bars,
        onsets,
        gram_keys.astype(np.uint64),
        gram_starts,
        entries_sorted,
        idf,
        rarity,
        key,
        np.ones(len(entry_piece), dtype=bool) if entry_metered is None else np.asarray(entry_metered, dtype=bool),
    )


def note_rarity(
    g: np.ndarray,
    line: np.ndarray,
    starts: np.ndarray,
    total: int,
    gram_keys: np.ndarray,
    idf: np.ndarray,
    n_entries: int,
) -> np.ndarray:
    """Per note, the rarest n-gram covering it, as ``idf / log(entries)`` in [0, 1] (see :class:`SymbolicIndex`)."""
    rarity = np.zeros(total, dtype=np.float32)
    if len(g) == 0 or n_entries < 2:
        return rarity + 1.0
    # the valid grams are in note order; gram k of a line starts at note starts[line] + (rank within the line)
    first_of_line = np.r_[0, np.flatnonzero(np.diff(line)) + 1]
    rank = np.arange(len(line)) - np.repeat(first_of_line, np.diff(np.r_[first_of_line, len(line)]))
    at = starts[line] + rank
    value = idf[np.searchsorted(gram_keys, g)] / np.float32(np.log(n_entries))
    span = GRAM + 2  # a gram covers the note it starts at and the next GRAM + 1
    for shift in range(span):
        np.maximum.at(rarity, np.minimum(at + shift, total - 1), value)
    return np.clip(rarity, 0.0, 1.0)


def encode_midi(midi: bytes) -> list[tuple[str, Encoded]]:
    """The encoded melody and bass of a MIDI file (``[]`` for one with no usable line)."""
    return [(line.kind, encode(line)) for line in extract_lines(midi)]


def query_grams(lines: Sequence[tuple[str, Encoded]]) -> list[np.ndarray]:
    """The n-grams of each query line."""
    return [grams(enc.pitches, enc.rhythm) for _, enc in lines]


_ARRAYS = (
    "entry_piece",
    "entry_kind",
    "starts",
    "pitches",
    "rhythm",
    "bars",
    "onsets",
    "gram_keys",
    "gram_starts",
    "postings",
    "idf",
    "rarity",
    "entry_metered",
)


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Write ``arrays`` as one ``.npy`` file each and ``meta`` as ``meta.json`` in the folder ``path``, atomically:
    the folder is written under another name and renamed, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent))
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(dict(meta), ensure_ascii=False), encoding="utf-8")
        try:
            tmp.rename(path)
        except OSError:  # another process saved the same folder first: theirs is as good
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_arrays(path: Path, names: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays ``names`` of a folder written by :func:`save_arrays`, memory-mapped read-only (the OS
    pages them in as they are read and shares them between processes), and its ``meta.json``.

    Raises:
        OSError, ValueError, KeyError: the folder is missing or damaged.
    """
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    arrays = {}
    for name in names:
        file = path / f"{name}.npy"
        # an empty array cannot be memory-mapped: read it instead
        arrays[name] = np.load(file, mmap_mode="r" if file.stat().st_size > 128 else None, allow_pickle=False)
    return arrays, meta


def save_index(index: SymbolicIndex, path: Path) -> None:
    """Write the index as a folder of ``.npy`` arrays (pieces as JSON beside them), atomically."""
    pieces = [[p.isrc, p.title, p.sha256] for p in index.pieces]
    save_arrays(
        path, {n: getattr(index, n) for n in _ARRAYS}, {"version": INDEX_VERSION, "key": index.key, "pieces": pieces}
    )


def load_index(path: Path) -> SymbolicIndex:
    """The index saved at ``path``, its arrays memory-mapped (see :func:`load_arrays`)."""
    arrays, meta = load_arrays(path, _ARRAYS)
    if meta.get("version") != INDEX_VERSION:
        msg = f"{path}: index version {meta.get('version')!r}, expected {INDEX_VERSION!r}"
        raise ValueError(msg)
    pieces = tuple(CatalogPiece(*row) for row in meta["pieces"])
    return SymbolicIndex(pieces=pieces, key=str(meta["key"]), **arrays)


def load_or_build(
    pieces: Sequence[CatalogPiece],
    read: Callable[[CatalogPiece], list[tuple[str, Encoded]]],
    cache_dir: Path,
    progress: Progress | None = None,
) -> SymbolicIndex:
    """The index of ``pieces`` from the cache, or built (``read`` gives a piece's encoded lines) and saved."""
    key = catalog_key(pieces)
    path = cache_dir / "guard" / f"symbolic-{key[:24]}"
    if path.is_dir():
        try:
            return load_index(path)
        except (OSError, ValueError, KeyError, TypeError):
            shutil.rmtree(path, ignore_errors=True)  # a damaged cache folder is rebuilt, never trusted
    encoded = []
    for i, piece in enumerate(pieces, start=1):
        encoded.append(read(piece))
        if progress:
            progress("index catalog lines", i, len(pieces))
    index = build_index(pieces, encoded, key)
    save_index(index, path)
    return index
