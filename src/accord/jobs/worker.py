"""A worker: claims jobs from the queue, one at a time, beats their heartbeat, finishes them.

``accord worker`` runs :meth:`Worker.run` until stopped (SIGTERM or SIGINT: the job in hand is
finished first); ``accord serve --job-workers N`` starts N of them beside the API; the tests call
:func:`run_until_idle` in their own process. What a job does is :mod:`accord.jobs.kinds`; the
queue's rules (claim, lease, attempts) are :mod:`accord.jobs.queue`.

Outcomes of an attempt:

* done: the result is stored;
* an :class:`~accord.errors.AccordError` (not licensed, blocked by the guard, not found ...): the
  job fails at once with that error, since running it again would give the same answer;
* any other exception (a bug, a lost connection, a broken file): the job is queued again, until
  ``ACCORD_JOB_MAX_ATTEMPTS`` attempts, then failed with the last error;
* the worker dies (kill -9, a machine lost): its heartbeat stops, and after ``ACCORD_JOB_LEASE_S``
  the next worker that looks re-queues the job (or fails it after the last attempt).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from typing import Any

from accord.errors import AccordError
from accord.jobs import queue
from accord.jobs.kinds import KINDS
from accord.jobs.queue import Job, Wall
from accord.registry.store import Store
from accord.settings import Settings
from accord.timeutil import utcnow

log = logging.getLogger("accord.worker")


def warm_up() -> float:
    """Import what a generation needs now (:func:`accord.outputs.studio.import_generation_stack`); seconds taken.

    Loaded models are kept between jobs (:func:`accord.outputs.studio._load`); this makes the first job as
    fast as the next ones but for loading its model.
    """
    from accord.outputs.studio import import_generation_stack

    return import_generation_stack()


def worker_name() -> str:
    """``host:pid:nonce``: which machine and process holds a job (the nonce tells restarts apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, AccordError):
        return {"code": exc.code, "message": str(exc), "field": getattr(exc, "field", None)}
    return {"code": "internal", "message": f"{type(exc).__name__}: {exc}", "field": None}


class Worker:
    """One worker over one registry: claims, runs and finishes jobs, one at a time.

    Attributes:
        store: the registry (its ``jobs`` table is the queue).
        settings: lease, heartbeat, attempts, poll interval; and what the jobs themselves read.
        name: this worker's id in the ``jobs.worker`` column.
    """

    def __init__(self, store: Store, settings: Settings, *, name: str | None = None, wall: Wall = utcnow) -> None:
        self.store = store
        self.settings = settings
        self.name = name or worker_name()
        self.wall = wall

    def run_one(self) -> Job | None:
        """Re-queue what dead workers left, then claim and run one job; the job as it ended, or ``None``."""
        s = self.settings
        for left in queue.requeue_expired(
            self.store, lease_s=s.job_lease_s, max_attempts=s.job_max_attempts, wall=self.wall
        ):
            log.warning("job %s: %s", left.job_id, (left.error or {}).get("message", ""))
        job = queue.claim(self.store, self.name, wall=self.wall)
        if job is None:
            return None
        log.info("job %s (%s): attempt %d by %s", job.job_id, job.kind, job.attempts, self.name)
        stop = threading.Event()
        beating = threading.Thread(target=self._beat, args=(job, stop), name=f"heartbeat-{job.job_id}", daemon=True)
        beating.start()
        t0 = time.perf_counter()
        try:
            work = KINDS.get(job.kind)
            if work is None:
                msg = f"kind: {job.kind!r} is not a job kind this worker runs ({', '.join(sorted(KINDS))})"
                raise AccordError(msg)
            result = work(self.store, s, job)
        except AccordError as exc:  # a refusal: the same answer every time, so no retry
            kept = queue.fail(self.store, job, _error(exc))
        except Exception as exc:  # a bug or a transient fault: try again, up to the limit
            log.exception("job %s: attempt %d raised", job.job_id, job.attempts)
            if job.attempts < s.job_max_attempts:
                kept = queue.retry(self.store, job, _error(exc))
            else:
                kept = queue.fail(self.store, job, _error(exc))
        else:
            kept = queue.complete(self.store, job, result)
        finally:
            stop.set()
            beating.join()
        if not kept:
            log.warning("job %s: the lease was lost while %s ran it; its outcome was dropped", job.job_id, self.name)
        log.info("job %s: finished in %.1f s", job.job_id, time.perf_counter() - t0)
        return queue.get_job(self.store, job.job_id)

    def _beat(self, job: Job, stop: threading.Event) -> None:
        while not stop.wait(self.settings.job_heartbeat_s):
            try:
                alive = queue.beat(self.store, job, wall=self.wall)
            except Exception:  # a database hiccup: try again at the next beat (the lease allows a few)
                log.exception("job %s: heartbeat failed", job.job_id)
                continue
            if not alive:
                log.warning("job %s: the claim was lost (re-queued after its lease ran out)", job.job_id)
                return

    def run(self, stop: threading.Event) -> None:
        """Warm up (:func:`warm_up`), then run jobs until ``stop`` is set (checked between jobs); idle, look again
        every ``ACCORD_JOB_POLL_S``."""
        log.info("worker %s: generation stack imported in %.1f s", self.name, warm_up())
        log.info("worker %s: waiting for jobs", self.name)
        while not stop.is_set():
            try:
                ran = self.run_one()
            except Exception:  # the database unreachable or locked past its timeout: no job is lost, look again
                log.exception("worker %s: could not reach the queue", self.name)
                ran = None
            if ran is None:
                stop.wait(self.settings.job_poll_s)
        log.info("worker %s: stopped", self.name)


def run_until_idle(store: Store, settings: Settings, *, name: str | None = None) -> list[Job]:
    """Run queued jobs in this process until none is left (tests, ``accord worker --until-idle``); the jobs run."""
    worker = Worker(store, settings, name=name)
    ran = []
    while (job := worker.run_one()) is not None:
        ran.append(job)
    return ran


class WorkerThread:
    """A worker on a thread of this process (the browser tests' live portal, screenshots): start, then stop.

    Not for serving: ``accord serve`` runs workers as processes (``--job-workers``).
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.worker = Worker(store, settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.worker.run, args=(self._stop,), name="accord-worker", daemon=True)

    def __enter__(self) -> WorkerThread:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
