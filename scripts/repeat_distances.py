"""How far back a piece's repeated melodic patterns lie, in tokens: can the model see what it should repeat?

For every 4-note interval pattern of a piece's top line (the highest pitch at each onset) that
occurred earlier in the same piece, the distance in tokens to its nearest earlier occurrence,
over every piece of a manifest tokenized as training tokenizes it. Prints, per style, the
median distance and the shares beyond the body context a model sees (docs/model.md,
"Why repetition loses").

    ACCORD_HOME=... .venv/bin/python scripts/repeat_distances.py MANIFEST_ROOT [--context 256 --context 512]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import numpy as np

from accord.datasets import repository
from accord.datasets.loader import ManifestLoader
from accord.model.conditions import N_CONDITIONS
from accord.model.data import tokenize_files
from accord.model.tokenizer import MusicTokenizer
from accord.registry.store import Store
from accord.settings import get_settings

PATTERN_NOTES = 4  # as accord.media.features.repetition counts them


def top_line(ids: list[int], names: list[str]) -> list[tuple[int, int]]:
    """(token index, pitch) of the highest pitch at each onset (a Position or Bar token starts a new one)."""
    line: list[tuple[int, int]] = []
    best: tuple[int, int] | None = None
    for i, t in enumerate(ids):
        name = names[t]
        if name.startswith(("Position", "Bar")):
            if best is not None:
                line.append(best)
            best = None
        elif name.startswith("Pitch_"):
            pitch = int(name.removeprefix("Pitch_"))
            if best is None or pitch > best[1]:
                best = (i, pitch)
    if best is not None:
        line.append(best)
    return line


def repeat_distances(line: list[tuple[int, int]]) -> list[int]:
    """Token distance from each recurring interval pattern to its nearest earlier occurrence."""
    k = PATTERN_NOTES - 1
    positions = [i for i, _ in line]
    intervals = np.diff([p for _, p in line]).tolist()
    last: dict[tuple[int, ...], int] = {}
    out = []
    for n in range(len(intervals) - k + 1):
        pattern, at = tuple(intervals[n : n + k]), positions[n + k]
        if pattern in last:
            out.append(at - last[pattern])
        last[pattern] = at
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", help="a manifest root (or its prefix)")
    parser.add_argument("--context", type=int, action="append", help="context lengths in tokens (default 256, 512)")
    args = parser.parse_args()
    contexts = args.context or [256, 512]
    store = Store.open(get_settings())
    manifest, _ = repository.load_manifest(store, args.manifest)
    loader = ManifestLoader(manifest, store.media)
    tok = MusicTokenizer.build([item.genre for item in manifest.items])
    pieces, _ = tokenize_files(loader, tok, store.snapshot(manifest.header.as_of), total=len(loader))
    names = [tok.token_name(i) for i in range(tok.vocab_size)]
    by_style: dict[str, list[int]] = defaultdict(list)
    for piece in pieces:
        by_style[piece.genre] += repeat_distances(top_line(piece.ids.tolist(), names))
    # the body a model sees: the context less the conditions; after sampling restarts, half of it
    bounds = sorted({b for c in contexts for b in (c // 2 - N_CONDITIONS, c - N_CONDITIONS)})
    rows = [" ".join(["style".ljust(14), "repeats".rjust(8), "median".rjust(7), *(f">{b}".rjust(7) for b in bounds)])]
    every = [d for ds in by_style.values() for d in ds]
    for style, ds in [("all", every), *sorted(by_style.items(), key=lambda kv: -len(kv[1]))]:
        d = np.asarray(ds)
        shares = (f"{(d > b).mean():7.1%}" for b in bounds)
        rows.append(" ".join([style.ljust(14), f"{len(d):8d}", f"{np.median(d):7.0f}", *shares]))
    sys.stdout.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
