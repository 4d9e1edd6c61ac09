"""The Ray backend of :mod:`accord.execution`: the same ``map`` on a Ray cluster, or on a Ray started here.

``ACCORD_EXECUTOR=ray`` selects it. ``ACCORD_RAY_ADDRESS`` names the cluster: ``auto`` (the cluster
this node belongs to, started with ``ray start``) or ``ray://HOST:PORT`` (Ray Client); empty starts
a Ray on this machine, sized to ``workers`` CPUs (0: one per core), with no dashboard and Ray's
own logging kept to warnings. A Ray already running in this process (a test's, a notebook's) is
used as it is.

The contract is :class:`accord.execution.Executor`'s: ``fn`` is applied to chunks of
``chunksize`` items, one Ray task per chunk; the results come back in input order whatever order
the tasks finish in; ``on_done(done, total)`` is called once per item as its chunk returns; the
first task to fail cancels the others and its exception is raised here as itself (Ray's wrapper
removed), so callers see the message they would see locally. ``fn`` and the items travel by
pickle: module-level functions and plain data, as for the local process pool. On a cluster the
nodes need Accord installed (the same version), and the files a task reads on a path every node
sees.

This module imports Ray, so :mod:`accord.execution` imports it only when the backend is asked for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import ray

from accord.errors import ValidationError
from accord.execution import DoneCallback, _run_chunk, check_chunksize
from accord.settings import check_ray_address

T = TypeVar("T")
R = TypeVar("R")

IN_FLIGHT_PER_WORKER = 4
"""Chunks submitted ahead per CPU: enough to keep every worker busy while results come back, few
enough that a million-item map does not hold a million pending tasks and their arguments."""

_run_chunk_remote: Any = ray.remote(_run_chunk)  # a Ray remote function: ``.remote(fn, chunk)`` -> ObjectRef


def start_ray(address: str = "", workers: int = 0) -> None:
    """Connect to the Ray at ``address`` (``auto``, ``ray://HOST:PORT``), or start one here when empty.

    Does nothing when this process is connected already. A Ray started here has ``workers`` CPUs
    (0: one per core), no dashboard, no usage reporting, and logs only warnings and errors.
    """
    try:
        address = check_ray_address(address)
    except ValueError as exc:  # the settings' own rule, for an address given in code
        raise ValidationError(
            f"ACCORD_RAY_ADDRESS={address!r}: {exc}", field="ACCORD_RAY_ADDRESS", value=address
        ) from None
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network call home from a batch job
    options: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "log_to_driver": False,  # workers' output stays in Ray's session logs, not on the command's screen
    }
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=workers or os.cpu_count() or 1, **options)


class RayExecutor:
    """Runs a map as Ray tasks, one per chunk of items.

    Attributes:
        workers: CPUs to start a local Ray with (0: one per core); on a cluster, the cluster's
            CPUs are used whatever this says.
        address: the cluster (``auto``, ``ray://HOST:PORT``), or empty for a Ray on this machine.
    """

    def __init__(self, workers: int = 0, address: str | None = None) -> None:
        if workers < 0:
            msg = f"workers={workers}: expected 0 (one per CPU core) or a positive count"
            raise ValidationError(msg, field="workers", value=workers)
        if address is None:
            from accord.settings import get_settings

            address = get_settings().ray_address
        self.workers = workers
        self.address = address.strip()

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
        if total == 0:
            return []
        start_ray(self.address, self.workers)
        starts = list(range(0, total, chunksize))
        cpus = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        ahead = cpus * IN_FLIGHT_PER_WORKER
        remote_fn = ray.put(fn)  # pickled once, not once per chunk
        results: list[list[R] | None] = [None] * len(starts)
        pending: dict[ray.ObjectRef, int] = {}
        following = iter(enumerate(starts))
        done = 0

        def submit(count: int) -> None:
            for index, start in following:
                pending[_run_chunk_remote.remote(remote_fn, items[start : start + chunksize])] = index
                count -= 1
                if count <= 0:
                    return

        submit(ahead)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            index = pending.pop(ref)
            try:
                chunk_results = ray.get(ref)
            except ray.exceptions.RayTaskError as error:
                for other in pending:
                    ray.cancel(other)
                cause = error.cause
                if isinstance(cause, BaseException):
                    raise cause from None
                raise
            results[index] = chunk_results
            for _ in chunk_results:
                done += 1
                if on_done is not None:
                    on_done(done, total)
            submit(1)
        return [result for chunk in results if chunk is not None for result in chunk]
