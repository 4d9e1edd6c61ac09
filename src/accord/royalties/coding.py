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
from typing import Any, TypeVar

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
        h = inputs.holders
        isrcs = (attribution["isrc"], inputs.items["isrc"], inputs.sides["isrc"], inputs.works["isrc"], h["isrc"])
        tasks: dict[str, Callable[[], pa.Array]] = {
            "isrc": lambda: dictionary(*isrcs, extra=[""]),
            "out": lambda: dictionary(usage["output_id"], extra=[""]),
            "basis": lambda: dictionary(h["basis"], extra=BASES),
            "model": lambda: dictionary(usage["model_id"], inputs.items["model_id"]),
            "side": lambda: dictionary(inputs.sides["side"], inputs.works["side"], h["side"]),
            "work": lambda: dictionary(inputs.works["work_id"], h["work_id"], extra=[""]),
            "party": lambda: dictionary(h["party_id"], extra=[""]),
            "agreement": lambda: dictionary(h["agreement_id"], extra=[""]),
        }
        built = dict(zip(tasks, parallel(list(tasks.values()), workers), strict=True))
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

        def attributed() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            out, isrc = encode(attribution["output_id"], codes.out), encode(attribution["isrc"], codes.isrc)
            weight = col(attribution, "weight")
            pair = pack([out, isrc], [codes.size("out"), n["isrc"]])
            shift = int(weight.max()).bit_length() if len(weight) else 0
            # canonical order (output, isrc, weight): nothing depends on the table's row order
            if len(pair) and int(pair.max()).bit_length() + shift <= 62 and int(weight.min()) >= 0:
                both = (pair << shift) | weight
                both.sort()  # a value sort (SIMD), read back: no argsort, no gathers
                pair = both >> shift
                return pair // n["isrc"], pair % n["isrc"], both & ((1 << shift) - 1)
            order = np.lexsort((weight, pair))
            return out[order], isrc[order], weight[order]

        tasks: list[Callable[[], Any]] = [attributed, holders, items, sides, works, durations]
        (a_out, a_isrc, a_weight), *grouped = parallel(tasks, workers)
        g_holders, g_items, g_sides, g_works, g_durations = grouped
        method = {a.agreement_id: str(a.terms.training_pool_method) for a in inputs.agreements.values()}
        agreements = codes.agreement.to_pylist()
        by_duration = np.array(
            [i for i, aid in enumerate(agreements) if method.get(aid) == "pro_rata_duration"], dtype=I64
        )
        return cls(g_items, g_sides, g_works, g_holders, a_out, a_isrc, a_weight, g_durations, by_duration)
