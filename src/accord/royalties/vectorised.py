"""Largest-remainder allocation and integer-coded keys, vectorised with NumPy.

Every key is coded once as its rank in the sorted list of its distinct strings
(:func:`dictionary`, :func:`encode`), so ordering codes is ordering strings (UTF-8 byte
order: the order of Python's ``str`` and of DuckDB's ``VARCHAR``).

:func:`allocate_groups` is :func:`accord.money.allocate` applied to many groups at once:
floor of the exact integer share, then the units left over one each to the largest
remainders, ties by key ascending (``tests/test_royalties_sql_allocation.py`` checks it
against ``allocate`` on random inputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SAFE = 3_037_000_499
"""Below this (isqrt(2**63 - 1)), ``r * w < wsum**2`` fits in int64: the fast path is exact."""
I64 = np.int64


def allocate_groups(total: np.ndarray, counts: np.ndarray, weight: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Split each ``total[i]`` over its ``counts[i]`` children (contiguous rows) by ``weight``.

    Every count and every weight must be positive. Returns each child's amount: exactly
    ``allocate(total[i], weights, keys)`` per group, the tie-break being ``key`` ascending.
    """
    total, counts = np.asarray(total, I64), np.asarray(counts, I64)
    weight, key = np.asarray(weight, I64), np.asarray(key, I64)
    if len(total) == 0:
        return np.zeros(0, I64)
    if int(counts.max()) == 1:  # one child each: it gets the whole
        return total.copy()
    single = counts == 1
    if single.mean() > 0.25:  # split the one-child groups off: they need no arithmetic
        out = np.repeat(total, counts)
        multi = ~np.repeat(single, counts)
        out[multi] = allocate_groups(total[~single], counts[~single], weight[multi], key[multi])
        return out
    if int(counts.min()) == 2 and int(counts.max()) == 2 and int(weight.max()) * 2 <= SAFE:
        return _allocate_twos(total, weight, key)
    if int(weight.max()) * int(counts.max()) >= 2**63:
        msg = f"weights: up to {int(counts.max())} weights of up to {int(weight.max())} overflow a 64-bit sum"
        raise OverflowError(msg)
    negative = bool(total.min() < 0)
    whole = np.abs(total) if negative else total
    starts = np.zeros(len(total), I64)
    np.cumsum(counts[:-1], out=starts[1:])
    parent = np.repeat(np.arange(len(total), dtype=I64), counts)
    wsum = np.add.reduceat(weight, starts)
    q, r = np.divmod(whole, wsum)
    if int(wsum.max()) <= SAFE:  # r * w < wsum**2 fits int64
        d, rem = np.divmod(r[parent] * weight, wsum[parent])
    else:  # Python integers for the product
        prod, div = r[parent].astype(object) * weight.astype(object), wsum[parent].astype(object)
        d, rem = (prod // div).astype(I64), (prod % div).astype(I64)
    base = q[parent] * weight + d
    left = whole - np.add.reduceat(base, starts)
    need = np.flatnonzero(left[parent] > 0)
    if len(need):
        p = parent[need]
        base[need[ranks(p, rem[need], key[need]) < left[p]]] += 1
    return base * np.where(total < 0, -1, 1)[parent] if negative else base


def _allocate_twos(total: np.ndarray, weight: np.ndarray, key: np.ndarray) -> np.ndarray:
    """:func:`allocate_groups` when every group has two children (rows ``2i``, ``2i + 1``), in closed form.

    Two floors leave at most one unit over; it goes to the larger remainder, a tie to the smaller
    key, then to the first row (the order :func:`ranks` gives). Weights at most ``SAFE // 2``.
    """
    w0, w1 = weight[0::2], weight[1::2]
    wsum = w0 + w1
    whole = np.abs(total)
    q, r = np.divmod(whole, wsum)
    d0, rem0 = np.divmod(r * w0, wsum)
    d1, rem1 = np.divmod(r * w1, wsum)
    a0, a1 = q * w0 + d0, q * w1 + d1
    over = (whole - a0 - a1) > 0
    k0, k1 = key[0::2], key[1::2]
    first = (rem0 > rem1) | ((rem0 == rem1) & (k0 <= k1))
    a0 += over & first
    a1 += over & ~first
    sign = np.where(total < 0, -1, 1)
    out = np.empty(2 * len(total), I64)
    out[0::2], out[1::2] = a0 * sign, a1 * sign
    return out


def allocate_pairs(total: np.ndarray, weight: np.ndarray, whole: int, *, ties_to_first: bool) -> np.ndarray:
    """Each ``total[i]`` split in two by ``weight[i] : whole - weight[i]``; returns the first part.

    Exactly ``allocate(total[i], [weight[i], whole - weight[i]], keys)`` row by row, where the
    first part's key sorts first when ``ties_to_first`` (two parts leave at most one unit over, to
    the larger remainder). Every weight must lie in ``0..whole``; ``whole`` at most :data:`SAFE`.
    """
    total, weight = np.asarray(total, I64), np.asarray(weight, I64)
    if whole > SAFE:
        msg = f"whole: {whole} is above {SAFE}; expected a whole whose products fit int64"
        raise OverflowError(msg)
    negative = len(total) > 0 and int(total.min()) < 0
    magnitude = np.abs(total) if negative else total
    hi, lo = np.divmod(magnitude, whole)
    a_q, a_r = np.divmod(lo * weight, whole)
    b_q, b_r = np.divmod(lo * (whole - weight), whole)
    first = hi * weight + a_q
    over = magnitude - first - (hi * (whole - weight) + b_q) == 1
    first += over & ((a_r >= b_r) if ties_to_first else (a_r > b_r))
    return np.where(total < 0, -first, first) if negative else first


def ranks(group: np.ndarray, rem: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Each row's rank in its group (rows contiguous by group) by ``rem`` descending, then ``key``, then row."""
    n = len(group)
    start = starts_of_runs(group)
    longest = int((np.arange(n, dtype=I64) - start).max()) + 1 if n else 0
    if longest <= 8:  # small groups: count the siblings that come first, pair by pair
        rank = np.zeros(n, I64)
        for d in range(1, longest):
            same = group[d:] == group[:-d]
            a_rem, b_rem, a_key, b_key = rem[:-d], rem[d:], key[:-d], key[d:]
            later_first = same & ((b_rem > a_rem) | ((b_rem == a_rem) & (b_key < a_key)))
            rank[:-d] += later_first
            rank[d:] += same & ~later_first
        return rank
    run = np.cumsum(start == np.arange(n, dtype=I64)) - 1
    widths = [int(run.max()).bit_length(), int(rem.max()).bit_length(), int(key.max()).bit_length()]
    if sum(widths) <= 62:
        packed = (run << (widths[1] + widths[2])) | ((int(rem.max()) - rem) << widths[2]) | key
        order = argsort_int(packed)
    else:
        order = np.lexsort((key, -rem, run))
    rank = np.empty(n, I64)
    rank[order] = np.arange(n, dtype=I64) - start
    return rank


def starts_of_runs(values: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row of its run of equal values."""
    n = len(values)
    first = np.ones(n, dtype=bool)
    first[1:] = values[1:] != values[:-1]
    return np.maximum.accumulate(np.where(first, np.arange(n, dtype=I64), 0))


def dictionary(*columns: pa.Array | pa.ChunkedArray, extra: Sequence[str] = ()) -> pa.Array:
    """The sorted distinct strings of some columns (and ``extra``): a key's code is its index here."""
    parts = [c.chunks if isinstance(c, pa.ChunkedArray) else [c] for c in columns]
    chunks = [x.cast(pa.string()) for p in parts for x in p] + [pa.array(list(extra), pa.string())]
    distinct = pc.unique(pa.chunked_array(chunks, pa.string()))
    return distinct.take(pc.sort_indices(distinct))


def encode(column: pa.Array | pa.ChunkedArray, values: pa.Array) -> np.ndarray:
    """Codes of a column's strings in a :func:`dictionary` holding all of them."""
    return np.asarray(pc.index_in(column, value_set=values).to_numpy(zero_copy_only=False), I64)


def pack(keys: Sequence[np.ndarray], sizes: Sequence[int]) -> np.ndarray:
    """Several codes in one int64, the first most significant (order-preserving)."""
    room = 1
    for s in sizes:
        room *= max(int(s), 1)
    if room >= 2**63:
        msg = f"keys: {room} combinations do not fit one int64 key"
        raise OverflowError(msg)
    packed = np.zeros(len(keys[0]), I64)
    for k, s in zip(keys, sizes, strict=True):
        packed = packed * max(int(s), 1) + k
    return packed


@dataclass(frozen=True)
class Grouped:
    """Rows merged by key: ``key`` sorted and distinct, the merged columns aligned with it, and
    ``rows``, the first input row of each group (to carry columns that are equal within a group)."""

    key: np.ndarray
    columns: dict[str, np.ndarray]
    rows: np.ndarray


def merge_rows(key: np.ndarray, columns: dict[str, tuple[np.ndarray, np.ufunc]]) -> Grouped:
    """One row per distinct ``key`` (sorted), each column reduced with its ufunc (add, maximum, minimum)."""
    order = argsort_int(key)
    k = key[order]
    if len(k) == 0:
        return Grouped(k, {n: np.asarray(c, I64)[order] for n, (c, _) in columns.items()}, order)
    first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    merged = {n: f.reduceat(np.asarray(c, I64)[order], first) for n, (c, f) in columns.items()}
    return Grouped(k[first], merged, order[first])


DENSE_MAX = 1 << 24
"""Children keys below this are found through a dense table (one gather) rather than a binary search."""


@dataclass(frozen=True)
class Children:
    """Each parent key's children (rows sorted by parent key): ``keys`` distinct, ``offsets`` into the rows.

    ``slot``: when the keys are small non-negative integers (below :data:`DENSE_MAX`), each key's
    index in ``keys`` at position ``key`` (-1 elsewhere), so finding a parent is one gather.
    """

    keys: np.ndarray
    offsets: np.ndarray
    slot: np.ndarray | None = None

    @classmethod
    def of(cls, parent_key: np.ndarray) -> Children:
        n = len(parent_key)
        if n == 0:
            return cls(np.zeros(0, I64), np.zeros(1, I64))
        first = np.flatnonzero(np.r_[True, parent_key[1:] != parent_key[:-1]])
        keys = parent_key[first]
        slot = None
        if int(keys[0]) >= 0 and int(keys[-1]) < DENSE_MAX:
            slot = np.full(int(keys[-1]) + 1, -1, I64)
            slot[keys] = np.arange(len(keys), dtype=I64)
        return cls(keys, np.r_[first, n].astype(I64), slot)

    def locate(self, parent_key: np.ndarray) -> np.ndarray:
        """Each parent's index in :attr:`keys` (-1: it has no children)."""
        if len(self.keys) == 0:
            return np.full(len(parent_key), -1, I64)
        if self.slot is not None:
            inside = (parent_key >= 0) & (parent_key < len(self.slot))
            if bool(inside.all()):
                return self.slot[parent_key]
            return np.where(inside, self.slot[np.where(inside, parent_key, 0)], -1)
        pos = np.clip(np.searchsorted(self.keys, parent_key), 0, len(self.keys) - 1)
        return np.where(self.keys[pos] == parent_key, pos, -1)

    def expand(self, parent_key: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the ``live`` parents, the child count of each parent, and every child's row, in parent order."""
        return self.expand_at(self.locate(parent_key), live)

    def expand_at(self, pos: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`expand` for parents already located (``pos``: index in :attr:`keys`, -1 for none)."""
        if len(self.keys) == 0:
            return np.zeros(len(pos), I64), np.zeros(0, I64)
        found = (pos >= 0) & live
        pos = np.where(found, pos, 0)
        counts = np.where(found, self.offsets[pos + 1] - self.offsets[pos], 0)
        n = int(counts.sum())
        ends = np.cumsum(counts)
        rows = np.arange(n, dtype=I64) + np.repeat(self.offsets[pos] - (ends - counts), counts)
        return counts, rows


def argsort_int(key: np.ndarray) -> np.ndarray:
    """The stable ascending order of integer keys (``np.argsort(key, kind="stable")``), by a value sort.

    NumPy sorts int64 values with SIMD several times faster than it argsorts them; so when the keys
    are non-negative and leave room, each row's index is packed into the low bits (it also breaks
    ties by row, so the order is stable), the packed values are sorted, and the indices read back.
    """
    key = np.asarray(key, I64)
    n = len(key)
    if n == 0:
        return np.zeros(0, I64)
    bits = max((n - 1).bit_length(), 1)
    if int(key.min()) >= 0 and int(key.max()) < 1 << (63 - bits):
        packed = (key << bits) | np.arange(n, dtype=I64)
        packed.sort()
        return packed & ((1 << bits) - 1)
    return np.argsort(key, kind="stable")
