"""One interface for heavy batch work: ingest, feature extraction, indexing, generation.

Every batch job maps a function over items through an :class:`Executor`. The built-ins
are a local process pool (the default) and a serial executor; both are registered in
:data:`EXECUTORS`, the same registry a cluster backend joins::

    register_executor("ray", _ray)   # accord.execution_ray, imported when asked for
    get_executor(workers=0)          # the backend ACCORD_EXECUTOR names (local by default)

A backend only has to honour the :class:`Executor` contract: results come back in
input order, ``on_done(done, total)`` is called once per finished item (for progress
bars), and an exception raised by ``fn`` propagates to the caller. ``fn`` and the items
must be picklable (module-level functions, plain data) for any backend that leaves the
process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from accord.errors import ValidationError

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")
R = TypeVar("R")

DoneCallback = Callable[[int, int], None]
"""Called as ``on_done(done, total)`` after each item finishes."""


class Executor(Protocol):
    """Runs one function over many items and returns the results in input order."""

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        on_done: DoneCallback | None = None,
        chunksize: int = 1,
    ) -> list[R]:
        """Apply ``fn`` to every item; ``result[i] == fn(items[i])``.

        ``on_done(done, total)`` is called after each item (``done`` counts up to
        ``total``); ``chunksize`` items travel to a worker together (a hint: backends
        that do not batch may ignore it).
        """
        ...


def _run_inline(fn: Callable[[T], R], items: Sequence[T], on_done: DoneCallback | None) -> list[R]:
    total = len(items)
    results: list[R] = []
    for item in items:
        results.append(fn(item))
        if on_done is not None:
            on_done(len(results), total)
    return results


def check_chunksize(chunksize: int) -> None:
    """Refuse a chunk size below one item, naming the field (every backend's :meth:`Executor.map`)."""
    if chunksize < 1:
        msg = f"chunksize={chunksize}: expected a positive number of items per task"
        raise ValidationError(msg, field="chunksize", value=chunksize)


def _run_chunk(fn: Callable[[T], R], chunk: Sequence[T]) -> list[R]:
    """Worker side of :class:`LocalPoolExecutor`: one round trip for a chunk of items."""
    return [fn(item) for item in chunk]


class SerialExecutor:
    """Runs every item in this process, one after another (tests, debugging, tiny jobs)."""

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        on_done: DoneCallback | None = None,
        chunksize: int = 1,
    ) -> list[R]:
        return _run_inline(fn, items, on_done)


class LocalPoolExecutor:
    """A pool of worker processes on this machine.

    Attributes:
        workers: processes to use; 0 means one per CPU core, 1 runs inline in this
            process (no pool, no pickling: the cheapest choice on one core).
    """

    def __init__(self, workers: int = 0) -> None:
        if workers < 0:
            msg = f"workers={workers}: expected 0 (one per CPU core) or a positive count"
            raise ValidationError(msg, field="workers", value=workers)
        self.workers = workers or os.cpu_count() or 1

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        on_done: DoneCallback | None = None,
        chunksize: int = 1,
    ) -> list[R]:
        check_chunksize(chunksize)
        total = len(items)
        if self.workers == 1 or total <= 1:  # a pool would only add start-up and pickling
            return _run_inline(fn, items, on_done)
        starts = range(0, total, chunksize)
        results: list[list[R] | None] = [None] * len(starts)
        done = 0
        # "spawn", not Linux's default "fork": a process forked while PyTorch's or a progress bar's
        # threads hold a lock inherits that lock held forever (seen: the demo's fingerprint pool hung
        # after training). Spawned workers start clean and import what the task needs.
        # imported here: the settings read this module's registry on every command (ACCORD_EXECUTOR),
        # and a process pool's modules would add ~7 ms to each
        import multiprocessing
        from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(self.workers, len(starts)), mp_context=context) as pool:
            pending: dict[Future[list[R]], int] = {
                pool.submit(_run_chunk, fn, items[start : start + chunksize]): index
                for index, start in enumerate(starts)
            }
            while pending:
                finished, _ = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    index = pending.pop(future)
                    error = future.exception()
                    if error is not None:
                        for other in pending:
                            other.cancel()
                        raise error
                    chunk_results = future.result()
                    results[index] = chunk_results
                    for _ in chunk_results:
                        done += 1
                        if on_done is not None:
                            on_done(done, total)
        return [result for chunk in results if chunk is not None for result in chunk]


ExecutorFactory = Callable[..., Executor]
"""Builds an executor; called as ``factory(workers=n)``."""

EXECUTORS: dict[str, ExecutorFactory] = {}
"""Executor backends by name. Built-ins register here like any later backend (Ray)."""


def register_executor(name: str, factory: ExecutorFactory) -> None:
    """Make a backend available to :func:`get_executor` (a later registration wins)."""
    EXECUTORS[name] = factory


def _serial(workers: int = 0) -> Executor:
    return SerialExecutor()


def _ray(workers: int = 0) -> Executor:
    # imported here: Ray takes a second to import, and only a run that asks for it should pay that
    from accord.execution_ray import RayExecutor

    return RayExecutor(workers)


register_executor("local", LocalPoolExecutor)
register_executor("serial", _serial)
register_executor("ray", _ray)


def get_executor(name: str | None = None, workers: int = 0) -> Executor:
    """The executor registered as ``name`` (``None``: the one ``ACCORD_EXECUTOR`` names, ``local`` by
    default), sized to ``workers`` (0 = one per core)."""
    if name is None:
        from accord.settings import get_settings  # not at import: the settings read the environment now

        name = get_settings().executor
    factory = EXECUTORS.get(name)
    if factory is None:
        known = ", ".join(sorted(EXECUTORS))
        msg = f"executor={name!r}: not a known executor; expected one of {known}"
        raise ValidationError(msg, field="executor", value=name)
    return factory(workers=workers)
