"""The run's inputs as integer codes: dictionaries of the keys, and the registry tables coded and merged.

Every key is coded once as its rank among the sorted distinct strings of its kind
(:class:`Codes`), so ordering codes is ordering strings; the registry tables are then coded and
merged by key (:class:`Registry`), each table in its own thread. Only the attribution rows of the
outputs used in the period are read further (:func:`used_attribution`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from typing import Any, TypeAlias, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.royalties.inputs import RunInputs
from accord.royalties.vectorised import I64, Grouped, dictionary, encode, merge_rows, pack

T = TypeVar("T")
BASES = ("output", "training")


def parallel(tasks: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Run the tasks, ``workers`` at a time in threads (NumPy and Arrow release the GIL), results in order."""
    if workers <= 1 or len(tasks) <= 1:
        return [t() for t in tasks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda t: t(), tasks))


Column: TypeAlias = pa.Array | pa.ChunkedArray
SLICE_ROWS = 1 << 20
"""Rows per slice when a long column is hashed (distinct values, codes) in slices side by side."""


def slices(column: Column, rows: int = 0) -> list[Column]:
    """A column cut into slices of at most ``rows`` rows (:data:`SLICE_ROWS`; one, empty, for an empty column)."""
    n, rows = len(column), rows or SLICE_ROWS
    return [column.slice(lo, min(rows, n - lo)) for lo in range(0, n, rows)] or [column]


def used_attribution(attribution: pa.Table, used: pa.Array | pa.ChunkedArray, workers: int) -> pa.Table:
    """The attribution rows of the outputs in ``used``, in table order (slices filtered side by side)."""
    n = attribution.num_rows
    cuts = [n * i // max(workers, 1) for i in range(max(workers, 1) + 1)]

    def part(lo: int, hi: int) -> pa.Table:
        piece = attribution.slice(lo, hi - lo)
        return piece.filter(pc.is_in(piece["output_id"], value_set=used))

    tasks = [partial(part, lo, hi) for lo, hi in pairwise(cuts) if lo < hi]
    parts = parallel(tasks, workers)
    return pa.concat_tables(parts) if parts else attribution.slice(0, 0)


@dataclass(frozen=True)
class Codes:
    """The run's dictionaries: each key's code is its index in the sorted distinct strings."""

    cur: pa.Array
    basis: pa.Array
    model: pa.Array
    out: pa.Array
    isrc: pa.Array
    side: pa.Array
    work: pa.Array
    party: pa.Array
    agreement: pa.Array

    @classmethod
    def build(
        cls, currencies: Sequence[str], usage: pa.Table, attribution: pa.Table, inputs: RunInputs, workers: int = 1
    ) -> Codes:
        h, items, sides, works = inputs.holders, inputs.items, inputs.sides, inputs.works
        sources: dict[str, tuple[tuple[Column, ...], tuple[str, ...]]] = {
            "isrc": ((attribution["isrc"], items["isrc"], sides["isrc"], works["isrc"], h["isrc"]), ("",)),
            "out": ((usage["output_id"],), ("",)),
            "basis": ((h["basis"],), BASES),
            "model": ((usage["model_id"], items["model_id"]), ()),
            "side": ((sides["side"], works["side"], h["side"]), ()),
            "work": ((works["work_id"], h["work_id"]), ("",)),
            "party": ((h["party_id"],), ("",)),
            "agreement": ((h["agreement_id"],), ("",)),
        }
        # the distinct values of each column, in slices side by side; then each kind's dictionary
        parts = [(name, part) for name, (cols, _) in sources.items() for col in cols for part in slices(col)]
        distinct = parallel([partial(pc.unique, part) for _, part in parts], workers)
        tasks = [
            partial(dictionary, *(d for (n, _), d in zip(parts, distinct, strict=True) if n == name), extra=extra)
            for name, (_, extra) in sources.items()
        ]
        built = dict(zip(sources, parallel(tasks, workers), strict=True))
        return cls(cur=pa.array(sorted(currencies), pa.string()), **built)

    def code(self, name: str, value: str) -> int:
        """The code of ``value`` (-1 when absent: no row carries it)."""
        found = pc.index(getattr(self, name), value).as_py()
        return -1 if found is None else int(found)

    def size(self, name: str) -> int:
        return max(len(getattr(self, name)), 1)

    def strings(self, name: str, codes: np.ndarray) -> pa.Array:
        """The strings of some codes (a dictionary array cast to plain strings: faster than a ``take``)."""
        values = getattr(self, name)
        if len(values) >= 2**31:
            return values.take(pa.array(codes, pa.int64()))
        return self.dictionary_array(name, codes).cast(pa.string())

    def dictionary_array(self, name: str, codes: np.ndarray) -> pa.DictionaryArray:
        """Some codes as a dictionary array over the dictionary of their kind (no string copied)."""
        values = getattr(self, name)
        wide = len(values) >= 2**31
        indices = pa.array(np.asarray(codes, np.int64 if wide else np.int32), pa.int64() if wide else pa.int32())
        return pa.DictionaryArray.from_arrays(indices, values, safe=False)


@dataclass(frozen=True)
class Registry:
    """The registry tables coded and merged as the engine's views define them (each key once)."""

    items: Grouped
    sides: Grouped
    works: Grouped
    holders: Grouped
    attr_out: np.ndarray
    attr_isrc: np.ndarray
    attr_weight: np.ndarray
    durations: Grouped
    by_duration: np.ndarray

    @classmethod
    def build(cls, inputs: RunInputs, attribution: pa.Table, codes: Codes, workers: int = 1) -> Registry:
        n = {k: codes.size(k) for k in ("model", "isrc", "side", "work", "basis", "party")}
        add, most, least = np.add, np.maximum, np.minimum

        def col(t: pa.Table, name: str) -> np.ndarray:
            return np.asarray(t[name].to_numpy(), I64)

        def key(t: pa.Table, names: Sequence[tuple[str, str]]) -> np.ndarray:
            return pack([encode(t[c], getattr(codes, d)) for c, d in names], [n[d] for _, d in names])

        def items() -> Grouped:
            t = inputs.items
            return merge_rows(key(t, [("model_id", "model"), ("isrc", "isrc")]), {"weight": (col(t, "weight"), add)})

        def sides() -> Grouped:
            t = inputs.sides
            return merge_rows(key(t, [("isrc", "isrc"), ("side", "side")]), {"weight": (col(t, "weight"), add)})

        def works() -> Grouped:
            t = inputs.works
            names = [("isrc", "isrc"), ("side", "side"), ("work_id", "work")]
            return merge_rows(key(t, names), {"weight": (col(t, "weight"), most)})

        def holders() -> Grouped:
            t = inputs.holders
            names = [("isrc", "isrc"), ("side", "side"), ("work_id", "work"), ("basis", "basis"), ("party_id", "party")]
            return merge_rows(
                key(t, names),
                {
                    "weight": (col(t, "weight"), add),
                    "share_ppm": (col(t, "share_ppm"), add),
                    "agreement": (encode(t["agreement_id"], codes.agreement), least),
                    "pool_ppm": (col(t, "pool_ppm"), least),
                },
            )

        def durations() -> Grouped:
            t = inputs.durations
            return merge_rows(key(t, [("model_id", "model"), ("isrc", "isrc")]), {"ms": (col(t, "duration_ms"), most)})

        def attribution_codes(piece: pa.Table) -> tuple[np.ndarray, np.ndarray]:
            return encode(piece["output_id"], codes.out), encode(piece["isrc"], codes.isrc)

        cuts = [*range(0, attribution.num_rows, SLICE_ROWS), attribution.num_rows]
        pieces = [attribution.slice(lo, hi - lo) for lo, hi in pairwise(cuts) if lo < hi]
        tasks: list[Callable[[], Any]] = [partial(attribution_codes, p) for p in pieces]
        tasks += [holders, items, sides, works, durations]
        done = parallel(tasks, workers)
        coded, (g_holders, g_items, g_sides, g_works, g_durations) = done[: len(pieces)], done[len(pieces) :]
        a_out = np.concatenate([o for o, _ in coded]) if coded else np.zeros(0, I64)
        a_isrc = np.concatenate([i for _, i in coded]) if coded else np.zeros(0, I64)
        a_weight = col(attribution, "weight")
        a_out, a_isrc, a_weight = _canonical(a_out, a_isrc, a_weight, codes.size("out"), n["isrc"])
        method = {a.agreement_id: str(a.terms.training_pool_method) for a in inputs.agreements.values()}
        agreements = codes.agreement.to_pylist()
        by_duration = np.array(
            [i for i, aid in enumerate(agreements) if method.get(aid) == "pro_rata_duration"], dtype=I64
        )
        return cls(g_items, g_sides, g_works, g_holders, a_out, a_isrc, a_weight, g_durations, by_duration)


def _canonical(
    out: np.ndarray, isrc: np.ndarray, weight: np.ndarray, n_out: int, n_isrc: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The attribution rows (output and isrc codes, weight) sorted by all three (the table's order never counts)."""
    pair = pack([out, isrc], [n_out, n_isrc])
    shift = int(weight.max()).bit_length() if len(weight) else 0
    if len(pair) and int(pair.max()).bit_length() + shift <= 62 and int(weight.min()) >= 0:
        both = (pair << shift) | weight
        both.sort()  # a value sort (SIMD), read back: no argsort, no gathers
        pair = both >> shift
        return pair // n_isrc, pair % n_isrc, both & ((1 << shift) - 1)
    order = np.lexsort((weight, pair))
    return out[order], isrc[order], weight[order]
