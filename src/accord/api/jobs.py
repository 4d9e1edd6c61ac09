"""Jobs: work submitted through the API and run by a worker, never inside the request.

A job is a row (queued → running → done | failed) and a task on the :class:`JobRunner`'s
worker threads. The worker calls the same domain function as the CLI
(:func:`accord.outputs.studio.generate_output`); the request that submitted it returns at once
with the job id, and the client polls. Jobs left queued or running by a stopped server are
marked failed when the next one starts (:func:`fail_interrupted`).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from accord.errors import AccordError, NotFound
from accord.outputs.studio import Prompt, generate_output
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.settings import Settings

T = Base.metadata.tables
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass(frozen=True)
class Job:
    """One job.

    Attributes:
        job_id: its id.
        kind: what it does (``generation``).
        owner: the party that submitted it (a creator's id, or the operator's name).
        status: queued, running, done or failed.
        params: what was asked.
        result: what it made (when done).
        error: ``{"code", "message", "field"}`` (when failed).
        created_at, started_at, finished_at: when.
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
    )


def create_job(store: Store, kind: str, owner: str, params: dict[str, Any]) -> Job:
    job_id = "JOB-" + secrets.token_hex(8).upper()
    with store.engine.begin() as conn:
        conn.execute(
            insert(T["jobs"]).values(
                job_id=job_id, kind=kind, owner=owner, status=QUEUED, params=params, created_at=store.clock()
            )
        )
    return get_job(store, job_id)


def get_job(store: Store, job_id: str) -> Job:
    t = T["jobs"]
    with store.engine.connect() as conn:
        r = conn.execute(select(t).where(t.c.job_id == job_id)).mappings().first()
    if r is None:
        msg = f"job {job_id!r}: not found"
        raise NotFound(msg)
    return _job(r)


def list_jobs(store: Store, *, owner: str | None = None) -> list[Job]:
    t = T["jobs"]
    q = select(t).order_by(t.c.created_at, t.c.job_id)
    if owner is not None:
        q = q.where(t.c.owner == owner)
    with store.engine.connect() as conn:
        return [_job(r) for r in conn.execute(q).mappings()]


def _set(store: Store, job_id: str, **values: Any) -> None:
    t = T["jobs"]
    with store.engine.begin() as conn:
        conn.execute(update(t).where(t.c.job_id == job_id).values(**values))


def fail_interrupted(store: Store) -> int:
    """Mark jobs a stopped server left queued or running as failed; how many."""
    t = T["jobs"]
    error = {"code": "interrupted", "message": "the server stopped before this job finished; submit it again"}
    with store.engine.begin() as conn:
        result = conn.execute(
            update(t)
            .where(t.c.status.in_((QUEUED, RUNNING)))
            .values(status=FAILED, error=error, finished_at=store.clock())
        )
    return int(result.rowcount or 0)


def run_generation(store: Store, settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """The worker side of a generation job: the CLI's ``generate`` over the job's parameters."""
    p = params["prompt"]
    prompt = Prompt(
        p["style"], p.get("key"), p.get("tempo_bpm"), p["bars"], p.get("from_isrc"), p["prime_bars"], p["temperature"]
    )
    made = generate_output(
        store,
        settings,
        model_id=params["model_id"],
        creator_id=params["creator_id"],
        prompt=prompt,
        seed=params["seed"],
    )
    return {
        "output_id": made.output.output_id,
        "files": sorted(made.output.files),
        "render": made.render,
        "seconds": {k: round(v, 3) for k, v in made.seconds.items()},
    }


def run_training(store: Store, settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """The worker side of a training job: the CLI's ``train`` (reads only the manifest's hash-checked files)."""
    from accord.outputs.studio import train_on_manifest

    record, _ = train_on_manifest(
        store,
        settings,
        params["manifest"],
        preset=params["preset"],
        minutes=params.get("minutes"),
        steps=params.get("steps"),
        seed=params["seed"],
        model_id=params.get("model_id"),
        actor=params["actor"],
    )
    card: dict[str, Any] = json.loads(json.dumps(record.card, default=str))
    return {"model_id": record.model_id, "manifest_root": record.manifest_root, "card": card}


def run_evaluation(store: Store, settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """The worker side of an evaluation job: the CLI's ``model evaluate`` (baselines in the same run)."""
    from accord.datasets import repository
    from accord.datasets.loader import ManifestLoader
    from accord.model.evaluate import evaluate_model, write_report
    from accord.model.sample import load_model
    from accord.outputs.studio import model_dir

    record = repository.get_model(store, params["model_id"])
    manifest, _ = repository.load_manifest(store, record.manifest_root)
    folder = model_dir(settings, record.model_id)
    if not folder.is_dir():
        msg = f"model files: {folder} not found (the model was registered, not trained here)"
        raise NotFound(msg)
    result = evaluate_model(
        load_model(folder),
        manifest,
        ManifestLoader(manifest, store.media),
        model_id=record.model_id,
        pieces=params["pieces"],
        seed=params["seed"],
        temperature=params["temperature"],
    )
    write_report(result, folder)
    out: dict[str, Any] = json.loads(json.dumps(result.to_dict(), default=str))
    return out


Work = Callable[[Store, Settings, dict[str, Any]], dict[str, Any]]
KINDS: dict[str, Work] = {"generation": run_generation, "training": run_training, "evaluation": run_evaluation}
"""Job kinds and the function a worker runs for each."""


class JobRunner:
    """Worker threads that run jobs off the request path (a thread each: generation holds the GIL little)."""

    def __init__(self, store: Store, settings: Settings, workers: int = 1) -> None:
        self.store = store
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="accord-job")
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, owner: str, params: dict[str, Any]) -> Job:
        if kind not in KINDS:
            msg = f"kind: {kind!r} is not a job kind ({', '.join(sorted(KINDS))})"
            raise NotFound(msg)
        job = create_job(self.store, kind, owner, params)
        with self._lock:
            self._futures[job.job_id] = self._pool.submit(self._run, job)
        return job

    def _run(self, job: Job) -> None:
        _set(self.store, job.job_id, status=RUNNING, started_at=self.store.clock())
        try:
            result = KINDS[job.kind](self.store, self.settings, job.params)
        except AccordError as exc:
            error = {"code": exc.code, "message": str(exc), "field": getattr(exc, "field", None)}
            _set(self.store, job.job_id, status=FAILED, error=error, finished_at=self.store.clock())
        except Exception as exc:  # a bug or a broken model file: the job fails, the server goes on
            error = {"code": "internal", "message": f"{type(exc).__name__}: {exc}", "field": None}
            _set(self.store, job.job_id, status=FAILED, error=error, finished_at=self.store.clock())
        else:
            _set(self.store, job.job_id, status=DONE, result=result, finished_at=self.store.clock())
        finally:
            with self._lock:
                self._futures.pop(job.job_id, None)

    def wait(self, job_id: str, timeout: float | None = None) -> None:
        """Block until a job submitted here finishes (tests, benchmarks)."""
        with self._lock:
            future = self._futures.get(job_id)
        if future is not None:
            future.result(timeout=timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
