"""Rendered read answers, kept in process while nothing they show can have changed.

A recording's detail or a page of recordings is rendered once (JSON bytes) and then served from
memory. An entry is keyed by the registry counter (:mod:`accord.registry.counters`, read once at
the start of each request, before anything derived from it), the question (route and its
parameters) and the caller's *visibility class*: ``operator`` (every operator sees the same,
unredacted answer) or ``role:party`` (what a rights holder may see, and whom it sees unnamed,
depends on its own party: :mod:`accord.visibility` decides, on the first read, and its answer is
what is kept). An answer that is "not found" is kept as such, so another party's recording keeps
answering exactly like a missing one.

A licensing decision also depends on the instant asked about: each entry holds the span of
instants around it over which its decisions stay the same (:func:`accord.registry.decisions.decisions_with_spans`)
and the rendered JSON is kept split where that instant is shown, so that an answer for another
instant of the span is the same bytes with that instant put back. A registry write moves the
counter (in the writing transaction), so the next request in any process misses and renders again;
entries of older counters are dropped as soon as a newer counter is seen.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request, Response

from accord.api.auth import Principal, request_counters
from accord.errors import NotFound
from accord.registry.decisions import Span
from accord.registry.store import Store
from accord.timeutil import iso

TOKEN = f"@@accord-instant-{secrets.token_hex(16)}@@"
"""Stands for the instant asked about in a rendered answer (random per process: no data holds it)."""
MAX_ENTRIES = 4096
MAX_BYTES = 64 * 2**20
"""At most this many rendered bytes per process (a page of 50 recordings is ~50 kB, a detail ~2 kB)."""


@dataclass(frozen=True)
class Rendered:
    """One answer as rendered, and when it may be served again.

    Attributes:
        parts: the JSON body, split where the instant asked about is shown (empty: a "not found").
        span: the instants at which its decisions are what they show (``None`` ends: unbounded).
        built_now: the store's clock when it was rendered (an answer about "now" is not served to
            a request whose clock reads earlier).
        missing: the question answered "not found" (:attr:`error`), raised again as it was.
        error: that answer's error.
    """

    parts: tuple[bytes, ...]
    span: Span
    built_now: datetime
    missing: bool = False
    error: NotFound | None = None

    def serves(self, at: datetime, now: datetime) -> bool:
        start, until = self.span
        return now >= self.built_now and (start is None or start <= at) and (until is None or at < until)

    @property
    def nbytes(self) -> int:
        return sum(len(p) for p in self.parts)

    def body(self, at: datetime) -> bytes:
        return (iso(at) or "").encode().join(self.parts)


def visibility_class(principal: Principal) -> str:
    """Callers to whom :mod:`accord.visibility` gives the same answers: the operators; each other party."""
    return "operator" if principal.is_operator else f"{principal.role.value}:{principal.party_id}"


def render(content: Any) -> tuple[bytes, ...]:
    """JSON bytes as FastAPI's ``JSONResponse`` writes them, split at :data:`TOKEN`."""
    raw = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
    return tuple(raw.encode("utf-8").split(TOKEN.encode()))


def span_of(spans: Any) -> Span:
    """The instants at which every one of several recordings' decisions stays the same (intersection)."""
    starts = [s for s, _ in spans if s is not None]
    ends = [u for _, u in spans if u is not None]
    return (max(starts) if starts else None, min(ends) if ends else None)


class ReadCache:
    """Rendered answers of one registry, for one process (``app.state.reads``): an LRU of at most
    :data:`MAX_ENTRIES` entries and :data:`MAX_BYTES` bytes, all of the newest registry counter seen."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.stamp = -1
        self.entries: OrderedDict[Hashable, Rendered] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def _clear(self) -> None:
        self.entries.clear()
        self.size = 0

    def get(self, stamp: int, key: Hashable) -> Rendered | None:
        with self.lock:
            if stamp != self.stamp:
                if stamp > self.stamp:  # the registry moved on: everything held is stale
                    self.stamp = stamp
                    self._clear()
                return None
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
            return found

    def put(self, stamp: int, key: Hashable, entry: Rendered) -> None:
        with self.lock:
            if stamp > self.stamp:
                self.stamp = stamp
                self._clear()
            if stamp != self.stamp:  # rendered from an older registry than others have seen: keep nothing
                return
            old = self.entries.pop(key, None)
            self.size += entry.nbytes - (old.nbytes if old is not None else 0)
            self.entries[key] = entry
            while self.entries and (len(self.entries) > self.max_entries or self.size > self.max_bytes):
                _, dropped = self.entries.popitem(last=False)
                self.size -= dropped.nbytes


Build = Callable[[int], tuple[Any, Span]]
"""Renders an answer from the registry at a counter: the content (with :data:`TOKEN` where the
instant is shown) and its span; raises :class:`NotFound` for an answer that is "not found"."""


def serve(
    request: Request,
    store: Store,
    principal: Principal,
    key: tuple[Hashable, ...],
    at: datetime,
    now: datetime,
    build: Build,
) -> Response:
    """The answer to ``key`` for ``principal`` at instant ``at``: from the cache when it holds one for
    the registry counter of this request that covers ``at``, rendered by ``build`` otherwise."""
    cache: ReadCache = request.app.state.reads
    stamp = request_counters(request, store)["registry"]
    full_key = (*key, visibility_class(principal))
    entry = cache.get(stamp, full_key)
    if entry is None or not entry.serves(at, now):
        try:
            content, span = build(stamp)
        except NotFound as exc:
            cache.put(stamp, full_key, Rendered((), (None, None), now, missing=True, error=exc))
            raise
        entry = Rendered(render(content), span, now)
        cache.put(stamp, full_key, entry)
    if entry.missing and entry.error is not None:
        raise copy.copy(entry.error)  # a copy: one exception object is never raised twice (its traceback)
    return Response(entry.body(at), media_type="application/json")
