"""The run's lines: their order and their columns, from the owner rows' integer codes.

The lines are sorted by :data:`LINE_ORDER` (party, currency, basis, recording, work, model,
output, side: unique per line). Rather than sorting every line by that whole key, the engine
gets most of the order for free:

1. before the owner levels, the recording rows are put in order by (currency, basis,
   recording, model, output) (:func:`recording_order`: one sort of the recording rows, under half
   as many as the lines), so the owner levels, which keep their parents' order, give the owner
   rows in that order, each recording row's owners by (side, work, party);
2. a stable sort by party (:func:`~accord.royalties.vectorised.argsort_int`) then gives
   each party's rows in line order, *provided* the party holds a single (side, work) of each
   recording on each basis (a label the master, a publisher one work): its work and side are then
   the same on all its lines of a recording, so (recording, model, output) order is line order;
3. the rows of the parties that hold more of one recording (its master and a work of it, or two of
   its works: :func:`mixed_parties`, read from the registry's holders) are sorted by the whole key.

The text columns are dictionary arrays over the run's sorted dictionaries
(:class:`~accord.royalties.coding.Codes`): the line's codes with the strings they stand for,
never materialised as one string per line unless a reader asks (``to_pylist``, a cast); the
Parquet file of a run stores them as dictionaries too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

import numpy as np
import pyarrow as pa

from accord.royalties.coding import Codes, parallel
from accord.royalties.vectorised import I64, Grouped, argsort_int, pack

LINE_ORDER = ("party", "cur", "basis", "isrc", "work", "model", "out", "side")
"""The lines' sort order (unique per line), by coded column."""
RECORDING_ORDER = ("cur", "basis", "isrc", "model", "out")
"""The recording rows' order (unique per row): the line order less party, work and side."""
PARALLEL_SORT_MIN = 1_000_000
"""From this many keys, :func:`argsort_parallel` sorts two parts side by side."""


def argsort_parallel(key: np.ndarray, workers: int) -> np.ndarray:
    """The stable ascending order of int64 keys: cut at a sampled median, the two parts sorted side by side.

    Each part is sorted by :func:`~accord.royalties.vectorised.argsort_int` (stable), and equal keys
    fall in one part, so the parts joined are the stable order. Below :data:`PARALLEL_SORT_MIN`
    keys, or with one worker, it is one sort.
    """
    if workers <= 1 or len(key) < max(PARALLEL_SORT_MIN, 2):
        return argsort_int(key)
    sample = np.sort(key[:: max(len(key) // 4096, 1)])
    low = key < sample[len(sample) // 2]

    def sort(rows: np.ndarray) -> np.ndarray:
        return rows[argsort_int(key[rows])]

    return np.concatenate(parallel([partial(sort, np.flatnonzero(low)), partial(sort, np.flatnonzero(~low))], 2))


def sort_order(keys: Sequence[np.ndarray], sizes: Sequence[int], workers: int = 1) -> np.ndarray:
    """The row order by ``keys`` (first most significant; together unique per row).

    Packed into one int64 when the combinations fit (sorted by :func:`argsort_parallel`), else into
    as many int64 keys as needed, sorted by ``lexsort``.
    """
    packed: list[np.ndarray] = []
    group: list[int] = []
    room = 1
    for i, s in enumerate(sizes):
        if group and room * s >= 2**62:
            packed.append(pack([keys[j] for j in group], [sizes[j] for j in group]))
            group, room = [], 1
        group.append(i)
        room *= s
    packed.append(pack([keys[j] for j in group], [sizes[j] for j in group]))
    if len(packed) == 1:
        return argsort_parallel(packed[0], workers)
    return np.lexsort(packed[::-1])


def recording_order(rec: Mapping[str, np.ndarray], codes: Codes, workers: int) -> np.ndarray:
    """The recording rows' order by :data:`RECORDING_ORDER`, in which the owner levels should take them."""
    return sort_order([rec[k] for k in RECORDING_ORDER], [codes.size(k) for k in RECORDING_ORDER], workers)


def mixed_parties(holders: Grouped, codes: Codes) -> np.ndarray:
    """Per party code, whether the party holds more than one (side, work) of a recording on one basis.

    ``holders``: the registry's holder rows, keyed by (isrc, side, work, basis, party) and distinct,
    so two rows of one (party, isrc, basis) differ in side or work.
    """
    n_party, n_basis = codes.size("party"), codes.size("basis")
    k = holders.key
    party, basis = k % n_party, (k // n_party) % n_basis
    isrc = k // (n_party * n_basis * codes.size("work") * codes.size("side"))
    triple = np.sort(pack([party, isrc, basis], [n_party, codes.size("isrc"), n_basis]))
    twice = triple[1:][triple[1:] == triple[:-1]]
    mixed = np.zeros(n_party, bool)
    mixed[twice // (codes.size("isrc") * n_basis)] = True
    return mixed


def line_order(
    owner: Mapping[str, np.ndarray],
    rec: Mapping[str, np.ndarray],
    codes: Codes,
    work_ranks: int,
    mixed: np.ndarray,
    workers: int,
) -> np.ndarray:
    """The owner rows' order as lines (:data:`LINE_ORDER`), from owner rows in recording order.

    ``owner``: the owner rows (``r``: their recording row, in :func:`recording_order`; ``party``,
    ``rank``: the work's rank among its recording's works, ``side``), each recording row's rows
    by (side, work, party); ``mixed``: :func:`mixed_parties`.
    """
    party = owner["party"]
    order = argsort_parallel(party, workers)
    odd = np.flatnonzero(mixed[party[order]]) if bool(mixed.any()) else np.zeros(0, I64)
    if len(odd):
        # these parties' rows, by the whole key (a work's rank orders its recording's works as
        # their ids do); their positions hold whole parties in party order, so the sorted rows fit
        rows = order[odd]
        at = owner["r"][rows]
        cols = {"party": party[rows], "work": owner["rank"][rows], "side": owner["side"][rows]}
        cols |= {k: rec[k][at] for k in RECORDING_ORDER}
        sizes = [work_ranks if k == "work" else codes.size(k) for k in LINE_ORDER]
        order[odd] = rows[sort_order([cols[k] for k in LINE_ORDER], sizes, workers)]
    return order


def line_table(
    owner: Mapping[str, np.ndarray], rec: Mapping[str, np.ndarray], codes: Codes, order: np.ndarray, workers: int
) -> pa.Table:
    """The lines (``LINE_COLUMNS`` of :mod:`accord.royalties.engine`) of the owner rows in ``order``.

    Text columns are dictionary arrays over :class:`Codes`' dictionaries; each column is gathered
    in its own task, ``workers`` at a time.
    """
    at = owner["r"][order]  # each line's recording row

    def text(name: str, values: Callable[[], np.ndarray]) -> Callable[[], pa.Array]:
        return lambda: codes.dictionary_array(name, values())

    def ints(values: Callable[[], np.ndarray]) -> Callable[[], pa.Array]:
        return lambda: pa.array(values(), pa.int64())

    def sorted_party() -> np.ndarray:  # the lines are in party order: a run of each party's code
        counts = np.bincount(owner["party"], minlength=codes.size("party"))
        return np.repeat(np.arange(len(counts), dtype=np.int32), counts)

    columns = {
        "party_id": text("party", sorted_party),
        "currency": text("cur", lambda: rec["cur"].astype(np.int32)[at]),
        "basis": text("basis", lambda: rec["basis"].astype(np.int32)[at]),
        "side": text("side", lambda: owner["side"][order]),
        "isrc": text("isrc", lambda: rec["isrc"].astype(np.int32)[at]),
        "work_id": text("work", lambda: owner["work"][order]),
        "model_id": text("model", lambda: rec["model"].astype(np.int32)[at]),
        "output_id": text("out", lambda: rec["out"].astype(np.int32)[at]),
        "units": ints(lambda: rec["units"][at]),
        "share_ppm": ints(lambda: owner["share_ppm"][order]),
        "amount": ints(lambda: owner["amount"][order]),
        "agreement_id": text("agreement", lambda: owner["agreement"][order]),
    }
    return pa.table(dict(zip(columns, parallel(list(columns.values()), workers), strict=True)))
