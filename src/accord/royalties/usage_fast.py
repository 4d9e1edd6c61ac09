"""The fast path of a usage batch's checks: whole columns at once with Arrow compute, no row loop.

:func:`fast_events` accepts a batch only when every row is plainly good, in the forms files
usually hold (an ISO 8601 timestamp with seconds and an offset, known ids, codes in any case,
values with or without the spaces :func:`trim` removes). Anything else (a bad row, an id given
twice, a value it does not read the way the precise path does) makes it answer ``None``; the
precise path (:data:`~accord.royalties.usage_checks.STAGE_SQL` and
:func:`~accord.royalties.usage_checks.problems`, in DuckDB) then decides, and names each problem
by row and field. So the fast path never accepts what the precise one refuses, and what it
returns is what the precise one returns (``tests/test_usage_fast.py`` checks both, by hypothesis
over random good and bad rows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.royalties.periods import period_bounds
from accord.royalties.usage_checks import (
    AMOUNT_DIGITS,
    KINDS,
    REVENUE_SOURCES,
    USAGE_KINDS,
    countries,
    currencies,
)

Column: TypeAlias = pa.ChunkedArray | pa.Array

VALID_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("kind", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("creator_id", pa.string()),
        ("output_id", pa.string()),
        ("model_id", pa.string()),
        ("territory", pa.string()),
        ("amount", pa.int64()),
        ("currency", pa.string()),
        ("source", pa.string()),
    ]
)
"""A checked batch: one row per event id (its first row), values trimmed and in canonical case,
``amount`` in micro-units (0 except on revenue), ``""`` for an absent output, model, territory,
currency and source (as the log holds them)."""

SPACES = "\u0020\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
"""What DuckDB's ``trim()`` removes from both ends: the Unicode space separators (category Zs),
and not tabs or line breaks (checked against DuckDB over every code point when this was written)."""

TIMESTAMP = (
    r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])$"
)
"""The timestamps the fast path reads (years 1970-2999, seconds, at most microseconds, an offset);
Arrow's cast and DuckDB's read each of them as the same instant. Others go the precise way."""
AMOUNT = rf"^[0-9]{{1,{AMOUNT_DIGITS}}}(\.[0-9]{{1,6}})?$"
PERIOD = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
MAX_ID = 96

_KINDS, _USAGE = pa.array(KINDS), pa.array(USAGE_KINDS)
_SOURCES = pa.array(REVENUE_SOURCES)


def fast_events(
    raw: pa.Table, outputs: pa.Table, models: pa.Table, period: str | None
) -> tuple[pa.Table, np.ndarray, pa.Array] | None:
    """The batch's events (:data:`VALID_SCHEMA`), their order by id and their ids in that order
    (:func:`id_order`) when every row is plainly good, else ``None``.

    ``raw`` holds the string columns of :data:`~accord.royalties.usage_checks.FIELDS`; ``outputs``
    the released outputs (``output_id``, ``model_id``, each output once), ``models`` the registered
    models (``model_id``); ``period`` (``YYYY-MM``), when given, is the one every event must be in.
    """
    event_id = _blank_to_null(_trim(raw.column("event_id")))
    if event_id.null_count or _longest(event_id) > MAX_ID:
        return None
    with ThreadPoolExecutor(1) as helper:  # Arrow's kernels release the GIL: two cores, two threads
        by_id = helper.submit(id_order, event_id)
        times = helper.submit(lambda: _timestamps(_trim(raw.column("timestamp")), period))
        columns = _columns(raw, outputs, models, period, times)
        order, ranked, repeats = by_id.result()
    if columns is None or repeats:
        return None  # an id given twice: the precise path keeps the first, or names a conflict
    columns = [event_id, *columns]
    table = pa.Table.from_arrays([pa.chunked_array([c]) if isinstance(c, pa.Array) else c for c in columns],
                                 schema=VALID_SCHEMA)  # fmt: skip
    return table, order, ranked


def _columns(
    raw: pa.Table, outputs: pa.Table, models: pa.Table, period: str | None, times: Future[pa.ChunkedArray | None]
) -> list[Column] | None:
    """The columns of :data:`VALID_SCHEMA` but the first, when every row is good."""
    n = raw.num_rows
    kind = _case(_trim(raw.column("kind")), pc.ascii_lower)
    if kind is None or not _all(pc.is_in(kind, value_set=_KINDS)):
        return None
    revenue = pc.equal(kind, "revenue")
    usage = pc.invert(revenue)
    creator = _blank_to_null(_trim(raw.column("creator")))
    output = _blank_to_null(_trim(raw.column("output_id")))
    model = _blank_to_null(_trim(raw.column("model_id")))
    territory = _case(_trim(raw.column("territory")), pc.ascii_upper)
    if territory is None or not _refs_known(usage, creator, output, model, territory, outputs, models):
        return None
    at = times.result()
    if at is None:
        return None
    rows = pc.indices_nonzero(revenue)
    amount = np.zeros(n, np.int64)
    currency, source = _blank(n), _blank(n)
    if len(rows):
        found = _revenue(raw, rows, at.take(rows), period)
        if found is None:
            return None
        micros, cur, src = found
        amount[rows.to_numpy()] = micros
        mask = _combined(revenue)
        currency = pc.replace_with_mask(currency, mask, cur)
        source = pc.replace_with_mask(source, mask, src)
    return [kind, at, creator, pc.fill_null(output, ""), pc.fill_null(model, ""), pc.fill_null(territory, ""),
            pa.array(amount), currency, source]  # fmt: skip


def _chunks(col: Column) -> Iterable[pa.Array]:
    return col.chunks if isinstance(col, pa.ChunkedArray) else [col]


def _plain(col: Column) -> bool:
    """Every byte of the column's text is ASCII and none is a space: trim and case are then byte-wise."""
    for chunk in _chunks(col):
        data = chunk.buffers()[2]
        if data is None or data.size == 0:
            continue
        values = np.frombuffer(data, np.uint8)
        if values.max() < 0x80 and values.min() > 0x20:
            continue  # printable ASCII, no space: read in place, no copy
        text = data.to_pybytes()
        if not text.isascii() or b" " in text:
            return False
    return True


def _trim(col: Column) -> Column:
    """DuckDB's ``trim()``: the space separators :data:`SPACES` off both ends (skipped when none can be there)."""
    return col if _plain(col) else pc.utf8_trim(col, SPACES)


def _case(col: Column, fold: Callable[[Column], Column]) -> Column | None:
    """``lower()``/``upper()`` of trimmed ASCII text (``None`` when a value is not ASCII: DuckDB folds those
    by Unicode rules, where a non-ASCII letter can become an ASCII one)."""
    if not _plain(col) and not _all(pc.string_is_ascii(col), nulls=True):
        return None
    return fold(col)


def _all(mask: Column, *, nulls: bool = False) -> bool:
    """Whether every value is true (a null counts as ``nulls``)."""
    if mask.null_count and not nulls:
        return False
    return bool(pc.all(mask).as_py() is not False)


def _blank(n: int) -> pa.Array:
    return pa.repeat(pa.scalar("", pa.string()), n)


def _blank_to_null(col: Column) -> Column:
    """``nullif(x, '')``, skipped when no value is empty."""
    lengths = pc.binary_length(col)
    low = pc.min(lengths).as_py()
    if low is None or low > 0:
        return col
    return pc.if_else(pc.equal(lengths, 0), pa.scalar(None, pa.string()), col)


def _longest(col: Column) -> int:
    """The most characters of a value (bytes when that is already small enough)."""
    most = pc.max(pc.binary_length(col)).as_py() or 0
    if most <= MAX_ID:
        return int(most)
    return int(pc.max(pc.utf8_length(col)).as_py() or 0)


def _timestamps(text: Column, period: str | None) -> pa.ChunkedArray | None:
    """The instants (UTC) when every value has the form :data:`TIMESTAMP`, and lies in ``period`` if given."""
    if text.null_count or not _all(pc.match_substring_regex(text, TIMESTAMP)):
        return None
    try:
        at = pc.cast(text, pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # a date that does not exist (2026-02-30): the precise path names it
    at = at if isinstance(at, pa.ChunkedArray) else pa.chunked_array([at])
    if period is not None and len(at):
        start, end = (_micros(t) for t in period_bounds(period))
        low, high = pc.min_max(at.cast(pa.int64())).values()
        if low.as_py() < start or high.as_py() >= end:
            return None
    return at


def _micros(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000


def _refs_known(
    usage: Column,
    creator: Column,
    output: Column,
    model: Column,
    territory: Column,
    outputs: pa.Table,
    models: pa.Table,
) -> bool:
    """Usage rows: a creator, a released output made by the (registered) model given, a known territory.
    Revenue rows: an output, if any, released; a territory, if any, known."""
    if creator.null_count and not _all(pc.or_(pc.invert(usage), pc.is_valid(creator))):
        return False
    others = pc.invert(usage)
    at = pc.index_in(output, value_set=outputs.column("output_id"))
    if at.null_count > output.null_count or (output.null_count and not _all(pc.or_(others, pc.is_valid(output)))):
        return False  # an unknown output, or a usage row without one
    made_by = outputs.column("model_id")
    registered = pc.is_in(made_by, value_set=models.column("model_id"))  # once per output, not per event
    same = pc.and_(pc.equal(model, pc.take(made_by, at)), pc.take(registered, at))
    if not _all(pc.or_(others, pc.fill_null(same, False))):
        return False  # a usage row whose model did not make its output, or is not registered
    known = pc.is_in(territory, value_set=countries())
    return _all(known) or _all(pc.or_(known, pc.and_(pc.invert(usage), pc.equal(pc.fill_null(territory, ""), ""))))


def _revenue(
    raw: pa.Table, rows: pa.Array, at: pa.ChunkedArray, period: str | None
) -> tuple[np.ndarray, pa.Array, pa.Array] | None:
    """The revenue rows' amounts (micro-units), currencies and sources, when every one is good."""
    amount = _trim(raw.column("amount").take(rows))
    if amount.null_count or not _all(pc.match_substring_regex(amount, AMOUNT)):
        return None
    currency = _case(_trim(raw.column("currency").take(rows)), pc.ascii_upper)
    source = _case(_trim(raw.column("source").take(rows)), pc.ascii_lower)
    if currency is None or source is None:
        return None
    if not _all(pc.is_in(currency, value_set=currencies())) or not _all(pc.is_in(source, value_set=_SOURCES)):
        return None
    stated = _trim(raw.column("period").take(rows))
    if stated.null_count or not _all(pc.match_substring_regex(stated, PERIOD)):
        return None
    months = np.datetime_as_string(at.cast(pa.int64()).to_numpy().astype("datetime64[us]").astype("datetime64[M]"))
    if not _all(pc.equal(stated, pa.array(months))) or (period is not None and not _all(pc.equal(stated, period))):
        return None
    return micro_units_of(amount), _combined(currency), _combined(source)


def _combined(col: Column) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def micro_units_of(amounts: Column) -> np.ndarray:
    """Checked decimal amounts (``1250.5``; :data:`AMOUNT`) as integer micro-units, exactly (int64: each is
    below 10^15)."""
    dotted = pc.if_else(pc.match_substring(amounts, "."), amounts, pc.binary_join_element_wise(amounts, ".", ""))
    parts = pc.split_pattern(dotted, ".", max_splits=1)
    whole = pc.cast(pc.list_element(parts, 0), pa.int64()).to_numpy()
    frac = pc.cast(pc.utf8_rpad(pc.list_element(parts, 1), 6, "0"), pa.int64()).to_numpy()
    return np.asarray(whole * 1_000_000 + frac, np.int64)


def id_order(ids: Column) -> tuple[np.ndarray, pa.Array, bool]:
    """The positions of ``ids`` sorted by id (UTF-8 byte order, as DuckDB's VARCHAR sorts), the ids in
    that order, and whether an id appears twice."""
    order = pc.sort_indices(ids)
    ranked = pc.take(ids, order)
    ranked = ranked.combine_chunks() if isinstance(ranked, pa.ChunkedArray) else ranked
    repeats = len(ids) > 1 and bool(pc.any(pc.equal(ranked[1:], ranked[:-1])).as_py())
    return order.to_numpy(), ranked, repeats
