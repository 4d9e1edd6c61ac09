"""The job queue: rows of the registry's ``jobs`` table, claimed by workers under a lease.

A job is ``queued`` → ``running`` → ``done`` | ``failed``. The API (and the portal) only
:func:`submit` a row and answer with its id; ``accord worker`` processes :func:`claim` the oldest
queued job, beat its ``heartbeat_at`` while they run it (:func:`beat`) and :func:`finish` it. A job
whose heartbeat is older than the lease (``ACCORD_JOB_LEASE_S``) was left by a worker that died:
:func:`requeue_expired` puts it back in the queue, or fails it, naming why, once it has used
``ACCORD_JOB_MAX_ATTEMPTS`` attempts.

Why a hand-written claim over our own table rather than a task library: the queue must live in
the registry (SQLite by default, PostgreSQL by URL) so that a job, its output and its usage event
share one database and need no broker. The well-kept database queues are PostgreSQL-only
(procrastinate, pgqueuer, ``SKIP LOCKED`` recipes); Celery, RQ, Dramatiq and Huey need Redis or
a broker (Huey's SQLite store is not PostgreSQL). The claim is one statement on each backend:

* PostgreSQL: ``UPDATE jobs SET status='running', … WHERE job_id = (SELECT job_id … WHERE
  status='queued' ORDER BY created_at, job_id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *``:
  concurrent workers skip each other's locked row and never claim the same job.
* SQLite: the same ``UPDATE`` (without ``FOR UPDATE``) inside ``BEGIN IMMEDIATE``, which takes
  the database's single write lock before reading, so two processes cannot read the same queued
  row and both claim it (SQLite's busy timeout makes the second wait its turn).

Every later write of a running job (heartbeat, finish, re-queue) is conditioned on the claim
(``job_id``, ``worker``, ``attempts`` and ``status='running'``): a worker that lost its lease
(a long pause, a network split) changes nothing, and its result is dropped. A job's effects are
keyed by its job id (:mod:`accord.jobs.kinds`), so the attempt that re-runs it after a crash
never makes a second output or usage event.

Leases are measured in wall-clock UTC (``wall``), not by the store's clock (which tests tick):
the machines running workers need clocks kept in step (NTP); the 30 s default lease absorbs
ordinary skew.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from accord.errors import Conflict, NotFound
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.timeutil import utcnow

T = Base.metadata.tables
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
Wall = Callable[[], datetime]


@dataclass(frozen=True)
class Job:
    """One job.

    Attributes:
        job_id: its id.
        kind: what it does (``generation``, ``training``, ``evaluation``, ``attribution_index``).
        owner: the party that submitted it (a creator's id, or the operator's name).
        status: queued, running, done or failed.
        params: what was asked.
        result: what it made (when done).
        error: ``{"code", "message", "field"}`` (when failed).
        created_at, started_at, finished_at: when (``started_at``: of the latest attempt).
        attempts: how many times a worker has claimed it.
        worker: the worker that claimed it last (``host:pid:nonce``).
        heartbeat_at: when that worker last said it was still at it (wall clock).
    """

    job_id: str
    kind: str
    owner: str
    status: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int = 0
    worker: str | None = None
    heartbeat_at: datetime | None = None


def _job(r: Any) -> Job:
    return Job(
        r["job_id"],
        r["kind"],
        r["owner"],
        r["status"],
        r["params"],
        r["result"],
        r["error"],
        r["created_at"],
        r["started_at"],
        r["finished_at"],
        r["attempts"],
        r["worker"],
        r["heartbeat_at"],
    )


InTransaction = Callable[[Connection, "Job"], None]
"""Something to write in the same transaction as a new job (the API's audit event)."""


_SQLITE_WRITER = threading.Lock()
"""SQLite takes one writer at a time: threads of one process queue here for their turn instead of in
SQLite's busy handler, which sleeps (1, 2, 5 … 100 ms) between tries."""
_INSERT = insert(T["jobs"])
"""One statement object for every submission: compiled once, then only its parameters change."""
_INSERT_IF_NEW: dict[str, Any] = {}


def _insert_if_new(dialect_name: str) -> Any:
    """``INSERT … ON CONFLICT (job_id) DO NOTHING RETURNING job_id`` for the backend (built once each)."""
    found = _INSERT_IF_NEW.get(dialect_name)
    if found is None:
        t = T["jobs"]
        dialect = pg_dialect if dialect_name == "postgresql" else sqlite_dialect
        found = dialect.insert(t).on_conflict_do_nothing(index_elements=[t.c.job_id]).returning(t.c.job_id)
        _INSERT_IF_NEW[dialect_name] = found
    return found


def job_id_for(kind: str, owner: str, idempotency_key: str | None) -> str:
    """A new job's id: random, or, for a request that names an idempotency key, a hash of
    (kind, owner, key), so that the same request sent again names the same job."""
    if idempotency_key is None:
        return "JOB-" + secrets.token_hex(8).upper()
    digest = hashlib.sha256(f"accord-job|{kind}|{owner}|{idempotency_key}".encode()).hexdigest()
    return "JOB-" + digest[:16].upper()


def create_job(
    store: Store,
    kind: str,
    owner: str,
    params: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    also: InTransaction | None = None,
) -> Job:
    """Queue a job (any kind; :func:`submit` checks the kind first): one ``INSERT``, and ``also`` in
    the same transaction when the job is new.

    With ``idempotency_key`` the job's id is :func:`job_id_for` it, and the insert does nothing when
    that job exists: the existing job is answered (whatever its status now), and ``also`` is not run.

    Raises:
        Conflict: the key was used by the same owner for a different request.
    """
    job_id = job_id_for(kind, owner, idempotency_key)
    created_at = store.clock()
    values = {
        "job_id": job_id,
        "kind": kind,
        "owner": owner,
        "status": QUEUED,
        "params": params,
        "created_at": created_at,
        "attempts": 0,
    }
    job = Job(job_id, kind, owner, QUEUED, params, None, None, created_at, None, None)
    sqlite = store.engine.dialect.name == "sqlite"
    with _SQLITE_WRITER if sqlite else contextlib.nullcontext(), store.engine.begin() as conn:
        if idempotency_key is None:
            conn.execute(_INSERT, values)
            inserted = True
        else:  # RETURNING, not rowcount: psycopg reports no row count for an INSERT
            inserted = conn.execute(_insert_if_new(conn.dialect.name), values).first() is not None
        if inserted and also is not None:
            also(conn, job)
    if inserted:
        return job
    existing = get_job(store, job_id)
    if (existing.kind, existing.params) != (kind, params):
        msg = (
            f"Idempotency-Key: {idempotency_key!r} was already used for another {existing.kind} request "
            f"(job {job_id}); use a new key for a new request"
        )
        raise Conflict(msg)
    return existing


def submit(
    store: Store,
    kind: str,
    owner: str,
    params: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    also: InTransaction | None = None,
) -> Job:
    """Queue a job of a known kind; a worker runs it. An unknown kind is refused here, not in a worker."""
    from accord.jobs.kinds import KINDS

    if kind not in KINDS:
        msg = f"kind: {kind!r} is not a job kind ({', '.join(sorted(KINDS))})"
        raise NotFound(msg)
    return create_job(store, kind, owner, params, idempotency_key=idempotency_key, also=also)


@dataclass(frozen=True)
class JobQueue:
    """The queue of one registry, as the API and the portal hold it (``app.state.jobs``): submit only.

    Attributes:
        store: the registry whose ``jobs`` table is the queue.
    """

    store: Store

    def submit(
        self,
        kind: str,
        owner: str,
        params: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        also: InTransaction | None = None,
    ) -> Job:
        return submit(self.store, kind, owner, params, idempotency_key=idempotency_key, also=also)


def get_job(store: Store, job_id: str) -> Job:
    t = T["jobs"]
    with store.engine.connect() as conn:
        r = conn.execute(select(t).where(t.c.job_id == job_id)).mappings().first()
    if r is None:
        msg = f"job {job_id!r}: not found"
        raise NotFound(msg)
    return _job(r)


def list_jobs(store: Store, *, owner: str | None = None, status: str | None = None) -> list[Job]:
    t = T["jobs"]
    q = select(t).order_by(t.c.created_at, t.c.job_id)  # submission order: the order workers take them
    if owner is not None:
        q = q.where(t.c.owner == owner)
    if status is not None:
        q = q.where(t.c.status == status)
    with store.engine.connect() as conn:
        return [_job(r) for r in conn.execute(q).mappings()]


def claim(store: Store, worker: str, *, wall: Wall = utcnow) -> Job | None:
    """Take the oldest queued job for ``worker`` (``attempts`` + 1, heartbeat now); ``None`` when none is queued."""
    t = T["jobs"]
    now = wall()
    oldest = select(t.c.job_id).where(t.c.status == QUEUED).order_by(t.c.created_at, t.c.job_id).limit(1)
    sqlite = store.engine.dialect.name == "sqlite"
    if not sqlite:
        oldest = oldest.with_for_update(skip_locked=True)
    statement = (
        update(t)
        .where(t.c.job_id == oldest.scalar_subquery(), t.c.status == QUEUED)
        .values(
            status=RUNNING,
            worker=worker,
            attempts=t.c.attempts + 1,
            started_at=store.clock(),
            heartbeat_at=now,
            error=None,
        )
        .returning(*t.c)
    )
    with store.engine.connect() as conn:
        if sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock before the read: one claimer at a time
        row = conn.execute(statement).mappings().first()
        conn.commit()
    return None if row is None else _job(row)


def _mine(job: Job) -> Any:
    """The rows a claim still owns: the same attempt by the same worker, still running."""
    t = T["jobs"]
    return (
        (t.c.job_id == job.job_id)
        & (t.c.worker == job.worker)
        & (t.c.attempts == job.attempts)
        & (t.c.status == RUNNING)
    )


def _owned_update(conn: Connection, job: Job, **values: Any) -> bool:
    result = conn.execute(update(T["jobs"]).where(_mine(job)).values(**values))
    return int(result.rowcount or 0) == 1


def beat(store: Store, job: Job, *, wall: Wall = utcnow) -> bool:
    """Say the claim on ``job`` is alive; ``False`` when it was lost (re-queued after its lease ran out)."""
    with store.engine.begin() as conn:
        return _owned_update(conn, job, heartbeat_at=wall())


def complete(store: Store, job: Job, result: dict[str, Any]) -> bool:
    """Mark the claimed ``job`` done with ``result``; ``False`` (nothing written) when the claim was lost."""
    with store.engine.begin() as conn:
        return _owned_update(conn, job, status=DONE, result=result, finished_at=store.clock())


def fail(store: Store, job: Job, error: dict[str, Any]) -> bool:
    """Mark the claimed ``job`` failed with ``error`` (``{"code", "message", "field"}``); ``False`` when lost."""
    with store.engine.begin() as conn:
        return _owned_update(conn, job, status=FAILED, error=error, finished_at=store.clock())


def retry(store: Store, job: Job, error: dict[str, Any]) -> bool:
    """Put the claimed ``job`` back in the queue for another attempt, keeping why this one failed in
    ``error`` until the next claim; ``False`` when the claim was lost."""
    with store.engine.begin() as conn:
        return _owned_update(conn, job, status=QUEUED, worker=None, heartbeat_at=None, error=error)


def requeue_expired(store: Store, *, lease_s: float, max_attempts: int, wall: Wall = utcnow) -> list[Job]:
    """Re-queue running jobs whose heartbeat is older than ``lease_s`` (their worker died), or fail
    those that have had ``max_attempts`` attempts, saying so; the jobs as they now stand."""
    t = T["jobs"]
    cutoff = wall() - timedelta(seconds=lease_s)
    with store.engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.status == RUNNING, t.c.heartbeat_at < cutoff)).mappings().all()
    changed = []
    for expired in (_job(r) for r in rows):
        with store.engine.begin() as conn:
            msg = (
                f"job {expired.job_id}: its worker {expired.worker} stopped beating its heartbeat for more than "
                f"the lease (ACCORD_JOB_LEASE_S={lease_s:g} s) on attempt {expired.attempts} of "
                f"ACCORD_JOB_MAX_ATTEMPTS={max_attempts}"
            )
            if expired.attempts < max_attempts:
                error = {"code": "worker_lost", "message": f"{msg}; queued again", "field": None}
                done = _owned_update(conn, expired, status=QUEUED, worker=None, heartbeat_at=None, error=error)
            else:
                error = {"code": "worker_lost", "message": f"{msg}; given up", "field": None}
                done = _owned_update(conn, expired, status=FAILED, error=error, finished_at=store.clock())
        if done:
            changed.append(get_job(store, expired.job_id))
    return changed
