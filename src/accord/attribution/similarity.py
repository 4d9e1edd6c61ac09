"""Content similarity: a symbolic embedding of each piece, searched with FAISS (the baseline method).

The embedding reads the notes, not the model: four blocks, each normalised to unit length,
weighted, concatenated and normalised again (:data:`DIM` numbers):

- pitch classes weighted by duration (12): the key and mode;
- melodic intervals of the top line, -12..+12 semitones (25): the melody's shape, in any key;
- rhythm: inter-onset intervals in beats (8 log₂ bins) and ratios of successive ones (7 bins);
- hashed 3-grams of (interval, rhythm ratio) of the top line (256 buckets): motifs, in any key and tempo.

Similarity is the cosine (inner product of unit vectors). Search is FAISS: exact
(``IndexFlatIP``) below :data:`HNSW_FROM` items, HNSW with 32 links above, where the median and
spread the weighting needs are estimated from a seeded uniform sample of the manifest.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from accord.attribution.methods import AttributionContext, Progress, Query, Scored, register_method
from accord.attribution.weights import robust_z
from accord.errors import ValidationError
from accord.model.tokenizer import parse_midi

VERSION = "symbolic-embedding/1"
DIM = 12 + 25 + 15 + 256
HNSW_FROM = 100_000
"""Manifest size from which the embedding search is approximate (HNSW)."""
CANDIDATES = 256
"""Items an approximate search scores exactly; the rest count at the sampled median."""
SAMPLE = 10_000
_BLOCK_WEIGHTS = (0.5, 0.75, 0.5, 1.0)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def top_line(midi: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Pitches and durations of all pitched notes, the top line's onsets and pitches, and ticks per quarter."""
    score = parse_midi(midi)
    notes = [t.notes.numpy() for t in score.tracks if not t.is_drum and len(t.notes)]
    if not notes:
        msg = f"midi: {len(midi)} bytes hold no pitched notes to embed"
        raise ValidationError(msg, field="midi", value=len(midi))
    onsets = np.concatenate([n["time"] for n in notes]).astype(np.int64)
    pitches = np.concatenate([n["pitch"] for n in notes]).astype(np.int64)
    durations = np.concatenate([n["duration"] for n in notes]).astype(np.float64)
    order = np.lexsort((-pitches, onsets))  # by onset, highest pitch first
    first = np.ones(len(order), dtype=bool)
    first[1:] = onsets[order][1:] != onsets[order][:-1]
    top = order[first]
    return pitches, durations, onsets[top], pitches[top], max(int(score.ticks_per_quarter), 1)


def embed(midi: bytes) -> np.ndarray:
    """(DIM,) float32 unit vector of one piece (see the module docstring)."""
    pitches, durations, on, line, tpq = top_line(midi)
    pcs = np.bincount(pitches % 12, weights=durations, minlength=12)
    steps = np.diff(line)
    intervals = np.bincount(np.clip(steps, -12, 12) + 12, minlength=25).astype(np.float64)
    ioi = np.diff(on).astype(np.float64) / tpq
    ioi = ioi[ioi > 0]
    ioi_bins = (
        np.bincount(np.clip(np.round(np.log2(ioi)).astype(np.int64) + 4, 0, 7), minlength=8)
        if len(ioi)
        else np.zeros(8)
    )
    ratios = np.log2(ioi[1:] / ioi[:-1]) if len(ioi) > 1 else np.zeros(0)
    ratio_bins = (
        np.bincount(np.clip(np.round(ratios).astype(np.int64) + 3, 0, 6), minlength=7) if len(ratios) else np.zeros(7)
    )
    grams = np.zeros(256)
    gaps = np.diff(on).astype(np.float64)
    if len(steps) >= 3:
        rr = np.round(np.log2(np.maximum(gaps[1:], 1) / np.maximum(gaps[:-1], 1)) * 2).astype(
            np.int64
        )  # half-octave ratio bins
        tokens = [f"{int(steps[i])}:{int(rr[i - 1]) if i > 0 else 0}" for i in range(len(steps))]
        for i in range(len(tokens) - 2):
            grams[zlib.crc32(" ".join(tokens[i : i + 3]).encode()) % 256] += 1
    blocks = (pcs, intervals, np.concatenate([ioi_bins, ratio_bins]).astype(np.float64), grams)
    v = np.concatenate([w * _unit(b.astype(np.float64)) for w, b in zip(_BLOCK_WEIGHTS, blocks, strict=True)])
    return _unit(v).astype(np.float32)


def embed_all(files: list[bytes], progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(n, DIM) embeddings and (n,) validity (a file without pitched notes embeds to zeros)."""
    out = np.zeros((len(files), DIM), dtype=np.float32)
    valid = np.zeros(len(files), dtype=bool)
    for i, data in enumerate(files):
        try:
            out[i] = embed(data)
            valid[i] = True
        except ValidationError:
            pass
        if progress is not None and ((i + 1) % 100 == 0 or i + 1 == len(files)):
            progress("embeddings", i + 1, len(files))
    return out, valid


def build_faiss(vectors: np.ndarray, *, hnsw: bool | None = None, ef_search: int = 128) -> Any:
    """A FAISS inner-product index over unit rows: exact below :data:`HNSW_FROM` rows, HNSW32 above."""
    import faiss

    d = vectors.shape[1]
    if hnsw is None:
        hnsw = len(vectors) >= HNSW_FROM
    index: Any
    if hnsw:
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        index.hnsw.efSearch = ef_search
    else:
        index = faiss.IndexFlatIP(d)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


@dataclass(frozen=True)
class Embedding:
    name: str = "embedding"
    version: str = VERSION
    floor: float = 0.50
    causal: bool = False
    description: str = "content similarity: pitch-class, interval, rhythm and motif histograms, FAISS search"

    def vectors(self, ctx: AttributionContext, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
        if "embedding" in ctx.cache:
            return ctx.cache["embedding"]
        path, meta_path = ctx.index_dir / "embedding.npz", ctx.index_dir / "embedding.json"
        shas = hashlib.sha256("\n".join(i.media_sha256 for i in ctx.manifest.items).encode()).hexdigest()
        found = None
        if path.is_file() and meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            if (
                meta.get("version") == VERSION
                and meta.get("manifest_root") == ctx.manifest.root
                and meta.get("media") == shas
            ):
                with np.load(path) as data:
                    found = (data["vectors"], data["valid"])
        if found is None:
            started = time.perf_counter()
            found = embed_all(ctx.files(), progress)
            ctx.index_dir.mkdir(parents=True, exist_ok=True)
            tmp = ctx.index_dir / "embedding.tmp.npz"
            np.savez(tmp, vectors=found[0], valid=found[1])
            tmp.replace(path)
            meta = {
                "version": VERSION,
                "manifest_root": ctx.manifest.root,
                "media": shas,
                "items": len(found[0]),
                "dim": DIM,
                "seconds": round(time.perf_counter() - started, 3),
            }
            meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        ctx.cache["embedding"] = found
        return found

    def index(self, ctx: AttributionContext, progress: Progress | None = None) -> dict[str, Any]:
        vectors, _ = self.vectors(ctx, progress)
        return {"items": len(vectors), "dim": DIM, "bytes": int(vectors.nbytes), "search": self._kind(len(vectors))}

    @staticmethod
    def _kind(n: int) -> str:
        return "faiss-hnsw32" if n >= HNSW_FROM else "faiss-flat-ip"

    def scores(self, ctx: AttributionContext, query: Query) -> np.ndarray | Scored:
        vectors, valid = self.vectors(ctx)
        q = embed(query.midi)[None, :]
        if "faiss" not in ctx.cache:
            ctx.cache["faiss"] = build_faiss(vectors)
        index = ctx.cache["faiss"]
        n = len(vectors)
        if n < HNSW_FROM:
            sims, ids = index.search(q, n)
            scores = np.zeros(n, dtype=np.float64)
            scores[ids[0]] = sims[0]
        else:  # approximate: the best candidates exactly, the rest at the median of a uniform sample
            sample = (vectors[np.random.default_rng(0).choice(n, size=min(SAMPLE, n), replace=False)] @ q[0]).astype(
                np.float64
            )
            _, median, _ = robust_z(sample)
            sims, ids = index.search(q, CANDIDATES)
            scores = np.full(n, median, dtype=np.float64)
            keep = ids[0] >= 0
            scores[ids[0][keep]] = sims[0][keep]
            excess_total = float(np.maximum(sample - median, 0).mean()) * n
            return Scored(scores, sample, excess_total)
        if not valid.all() and valid.any():
            scores[~valid] = float(np.median(scores[valid]))
        return scores


register_method(Embedding())
