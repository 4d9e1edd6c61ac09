"""Training data: a manifest's pieces as token arrays, split by ISRC, cut into bar-aligned windows.

Every sample starts with a piece's four condition tokens followed by its body from a
``Bar`` token, so the model always sees the conditions and always starts where music
starts. Which windows a step draws depends only on ``(seed, step)``, so a run resumed
from a checkpoint draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from accord.datasets.loader import TrainingFile
from accord.errors import ValidationError
from accord.model.conditions import N_CONDITIONS, TONICS, parse_key
from accord.model.tokenizer import MusicTokenizer
from accord.registry.entities import Catalog

IGNORE = -1
"""Target id the loss skips (condition slots and padding)."""


@dataclass(frozen=True)
class TokenizedPiece:
    """One manifest item, tokenized.

    Attributes:
        isrc: the recording.
        genre: its style as the manifest gives it.
        ids: conditions, body and ``EOS`` (int32).
        bar_starts: offsets into ``ids`` of its ``Bar`` tokens (where windows may start).
        key: the key conditioned on.
        key_from: ``"catalog"`` or ``"estimated"``.
        tempo_bpm: its tempo.
        programs: the programs its notes play on.
    """

    isrc: str
    genre: str
    ids: np.ndarray
    bar_starts: np.ndarray
    key: str
    key_from: str
    tempo_bpm: float
    programs: frozenset[int]


@dataclass(frozen=True)
class Skipped:
    """A manifest item that could not be tokenized (its file passed its hash but holds no usable notes)."""

    isrc: str
    reason: str


def catalog_key(catalog: Catalog, isrc: str) -> str | None:
    """The key the catalog records for a recording, when it records a readable one."""
    rec = catalog.recordings.get(isrc)
    key = dict(rec.metadata).get("key") if rec is not None else None
    if not key:
        return None
    try:
        parse_key(key)
    except ValidationError:
        return None
    return key


def tokenize_files(
    files: Iterable[TrainingFile],
    tokenizer: MusicTokenizer,
    catalog: Catalog,
    *,
    total: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[TokenizedPiece], list[Skipped]]:
    """Tokenize every file the loader yields, in manifest (ISRC) order."""
    pieces: list[TokenizedPiece] = []
    skipped: list[Skipped] = []
    for n, tf in enumerate(files, start=1):
        key = catalog_key(catalog, tf.item.isrc)
        try:
            enc = tokenizer.encode_piece(tf.data, style=tf.item.genre, key=key)
        except ValidationError as exc:
            skipped.append(Skipped(tf.item.isrc, str(exc)))
        else:
            ids = np.asarray(enc.ids, dtype=np.int32)
            bars = np.flatnonzero(ids == tokenizer.bar_id).astype(np.int64)
            pieces.append(
                TokenizedPiece(
                    tf.item.isrc,
                    tf.item.genre,
                    ids,
                    bars,
                    enc.key,
                    "catalog" if key else "estimated",
                    enc.tempo_bpm,
                    enc.programs,
                )
            )
        if progress is not None and (n % 50 == 0 or n == total):
            progress(n, total)
    return pieces, skipped


def held_out_fraction(isrc: str) -> float:
    """A stable number in [0, 1) per ISRC: below ``val_fraction`` means validation."""
    return int.from_bytes(hashlib.sha256(f"accord-val:{isrc}".encode()).digest()[:8], "big") / 2**64


def split_pieces(
    pieces: Sequence[TokenizedPiece], val_fraction: float
) -> tuple[list[TokenizedPiece], list[TokenizedPiece]]:
    """Train and validation pieces, whole pieces on each side, by ISRC hash.

    With two or more pieces and ``val_fraction > 0`` validation gets at least one (the lowest
    hash), so a small set still reports a held-out loss.
    """
    val = [p for p in pieces if held_out_fraction(p.isrc) < val_fraction]
    if not val and val_fraction > 0 and len(pieces) >= 2:
        val = [min(pieces, key=lambda p: (held_out_fraction(p.isrc), p.isrc))]
    held = {p.isrc for p in val}
    return [p for p in pieces if p.isrc not in held], val


class Windows:
    """Samples of ``block_size + 1`` tokens, each starting with a piece's conditions and a bar line.

    A training sample is the piece's conditions, its body from one of its bar lines, then, if
    the piece ends first, whole further pieces (conditions included) until the sample is full:
    no position is padding, and every bar of every piece is as likely to start a sample, so
    short tunes weigh as much per token as long chorales. Validation samples are padded
    instead, so each held-out token is scored at most once.
    """

    def __init__(self, pieces: Sequence[TokenizedPiece], block_size: int, tokenizer: MusicTokenizer) -> None:
        if not pieces:
            msg = "training: no pieces to cut windows from"
            raise ValidationError(msg, field="pieces", value=0)
        self.pieces = list(pieces)
        self.block_size = block_size
        self.pad_id = tokenizer.pad_id
        self.condition_offset = tokenizer.condition_offset
        # each condition id → its slot's *_unknown id (other ids map to themselves)
        unknown_of = np.arange(tokenizer.vocab_size, dtype=np.int64)
        for i in range(tokenizer.condition_offset, tokenizer.vocab_size):
            slot = tokenizer.token_name(i).split("_", 1)[0]
            unknown_of[i] = tokenizer.token_id(f"{slot}_unknown")
        self.unknown_of = unknown_of
        self.tokenizer = tokenizer
        starts = [(i, s) for i, p in enumerate(self.pieces) for s in (p.bar_starts.tolist() or [N_CONDITIONS])]
        self.starts = np.asarray(starts, dtype=np.int64)  # (N, 2): piece index, offset of a bar line

    def __len__(self) -> int:
        return len(self.starts)

    @functools.cached_property
    def transposer(self) -> Transposer:
        """Built on first use: validation windows and runs without transposition never need one."""
        return Transposer(self.tokenizer)

    def sample(self, piece: int, start: int, fill: Iterator[int] | None = None) -> np.ndarray:
        """One sample; pieces from ``fill`` follow the first one, or padding when ``fill`` is ``None``."""
        p = self.pieces[piece]
        parts = [p.ids[:N_CONDITIONS], p.ids[start:]]
        n = sum(len(x) for x in parts)
        while fill is not None and n < self.block_size + 1:
            parts.append(self.pieces[next(fill)].ids)
            n += len(parts[-1])
        out = np.full(self.block_size + 1, self.pad_id, dtype=np.int64)
        joined = np.concatenate(parts)[: self.block_size + 1]
        out[: len(joined)] = joined
        return out

    def batch(
        self,
        rows: Sequence[tuple[int, int]],
        *,
        rng: np.random.Generator | None = None,
        condition_dropout: float = 0.0,
        transpose: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (B, T); with ``rng``, samples are filled with random pieces, conditions
        dropped, and each sample transposed with chance ``transpose`` (:class:`Transposer`)."""
        if rng is None:
            seqs = np.stack([self.sample(i, s) for i, s in rows])  # (B, T + 1)
        else:
            fill = iter(lambda: int(rng.integers(len(self.pieces))), None)
            seqs = np.stack([self.sample(i, s, fill) for i, s in rows])  # (B, T + 1)
            if condition_dropout > 0:
                drop = (seqs >= self.condition_offset) & (rng.random(seqs.shape) < condition_dropout)
                seqs = np.where(drop, self.unknown_of[np.where(drop, seqs, 0)], seqs)
            if transpose > 0:
                seqs = self.transposer.apply(seqs, rng, transpose)
        x = torch.from_numpy(seqs[:, :-1].copy())
        y = seqs[:, 1:].copy()
        y[(y >= self.condition_offset) | (y == self.pad_id)] = IGNORE  # conditions are given, never predicted
        return x, torch.from_numpy(y)

    def random_batch(
        self, rng: np.random.Generator, batch_size: int, condition_dropout: float, transpose: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        picks = rng.integers(0, len(self.starts), size=batch_size)
        rows = [(int(i), int(s)) for i, s in self.starts[picks]]
        return self.batch(rows, rng=rng, condition_dropout=condition_dropout, transpose=transpose)

    def tiles(self, limit: int) -> list[tuple[int, int]]:
        """Up to ``limit`` non-overlapping windows, spread over the pieces in order (for validation)."""
        body_len = self.block_size + 1 - N_CONDITIONS
        rows: list[tuple[int, int]] = []
        for i, p in enumerate(self.pieces):
            next_free = 0
            for s in p.bar_starts.tolist() or [N_CONDITIONS]:
                if s >= next_free:
                    rows.append((i, int(s)))
                    next_free = s + body_len
        step = max(1, len(rows) // max(limit, 1))
        return rows[::step][:limit]


class Transposer:
    """Moves a training sample's pitched notes by one interval, and its key condition with them.

    A tune in G is the same tune in A: shown transposed copies, a small model learns intervals
    and scale degrees rather than each key's absolute pitches (the usual augmentation for
    symbolic music). The interval is drawn from -6..+5 semitones, narrowed so that every note of
    the sample stays in the vocabulary's pitch range; drum notes (``PitchDrum_*``), which name
    sounds, not pitches, and every other token are left as they are, as is ``KEY_unknown``.
    """

    SPAN = range(-6, 6)

    def __init__(self, tokenizer: MusicTokenizer) -> None:
        names = [tokenizer.token_name(i) for i in range(tokenizer.vocab_size)]
        ids = {name: i for i, name in enumerate(names)}
        pitch = np.full(len(names), -1, dtype=np.int64)
        for i, name in enumerate(names):
            if name.startswith("Pitch_"):
                pitch[i] = int(name.removeprefix("Pitch_"))
        self.pitch = pitch
        known = pitch[pitch >= 0]
        self.low, self.high = (int(known.min()), int(known.max())) if len(known) else (0, -1)
        keys = {  # KEY_<tonic>_<mode> → (tonic, mode), parsed once
            i: parse_key(name.removeprefix("KEY_").replace("_", " "))
            for i, name in enumerate(names)
            if name.startswith("KEY_") and name != "KEY_unknown"
        }
        self.tables: dict[int, np.ndarray] = {}
        for k in self.SPAN:
            table = np.arange(len(names), dtype=np.int64)
            for i in np.flatnonzero(pitch >= 0):
                table[i] = ids.get(f"Pitch_{pitch[i] + k}", i)
            for i, (tonic, mode) in keys.items():
                table[i] = ids.get(f"KEY_{TONICS[(tonic + k) % 12]}_{mode}", i)
            self.tables[k] = table

    def apply(self, seqs: np.ndarray, rng: np.random.Generator, chance: float) -> np.ndarray:
        """``seqs`` (B, T) with each row transposed with probability ``chance`` (a new array)."""
        out = seqs.copy()
        for row in range(len(out)):
            if rng.random() >= chance:
                continue
            pitches = self.pitch[out[row]]
            pitches = pitches[pitches >= 0]
            low = max(self.SPAN.start, self.low - int(pitches.min())) if len(pitches) else self.SPAN.start
            high = min(self.SPAN.stop - 1, self.high - int(pitches.max())) if len(pitches) else self.SPAN.stop - 1
            if low <= high:
                out[row] = self.tables[int(rng.integers(low, high + 1))][out[row]]
        return out


def batch_seed(seed: int, step: int) -> np.random.Generator:
    """The generator a step draws its batch from: a function of (seed, step) only."""
    return np.random.default_rng([seed, step])
