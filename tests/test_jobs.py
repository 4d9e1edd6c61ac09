"""Jobs as durable work: the queue in the registry, claimed by workers under a lease, retried safely.

Every test runs on SQLite and PostgreSQL (the ``store`` fixture). The slow ones run real
generation on a tiny model; the kill -9 test starts two ``accord worker`` processes and kills the
one that claimed the job mid-way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from accord.cli import app as cli
from accord.cli.worker import start_workers, stop_workers, worker_command
from accord.errors import NotFound, NotLicensed
from accord.jobs import kinds, queue
from accord.jobs.kinds import KINDS, output_id_for
from accord.jobs.queue import DONE, FAILED, QUEUED, RUNNING, Job, claim, get_job, submit
from accord.jobs.worker import Worker, run_until_idle
from accord.outputs import store as outputs
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.settings import Settings

T = Base.metadata.tables


class Wall:
    """A wall clock the test moves by hand (leases are measured in wall time)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def quick(settings: Settings, **changes: Any) -> Settings:
    """The test's settings with short leases, heartbeats and polls: the queue's timing in seconds."""
    base = {"job_lease_s": 2.0, "job_heartbeat_s": 0.1, "job_poll_s": 0.1, "job_max_attempts": 3}
    return settings.model_copy(update=base | changes)


def count(store: Store, table: str, **where: Any) -> int:
    t = T[table]
    q = select(func.count()).select_from(t).where(*(t.c[k] == v for k, v in where.items()))
    with store.engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


# ---------------------------------------------------------------- the queue


def test_a_submitted_job_waits_queued_until_one_worker_claims_it(store: Store) -> None:
    job = submit(store, "generation", "ana", {"model_id": "m"})
    assert (job.status, job.attempts, job.worker) == (QUEUED, 0, None)
    claimed = claim(store, "w1")
    assert claimed is not None and claimed.job_id == job.job_id
    assert (claimed.status, claimed.attempts, claimed.worker) == (RUNNING, 1, "w1")
    assert claimed.heartbeat_at is not None and claimed.started_at is not None
    assert claim(store, "w2") is None  # nothing else is queued


def test_an_unknown_kind_is_refused_when_submitted_not_in_a_worker(store: Store) -> None:
    with pytest.raises(NotFound, match="kind: 'mining' is not a job kind"):
        submit(store, "mining", "ana", {})
    assert count(store, "jobs") == 0


def test_workers_take_jobs_oldest_first(store: Store) -> None:
    ids = [submit(store, "generation", "ana", {"n": n}).job_id for n in range(3)]
    taken = [claim(store, "w") for _ in range(3)]
    assert [j.job_id for j in taken if j is not None] == ids


def test_concurrent_workers_never_claim_the_same_job_twice(store: Store) -> None:
    ids = {submit(store, "generation", "ana", {"n": n}).job_id for n in range(24)}
    claimed: dict[str, list[str]] = {}
    lock = threading.Lock()

    def work(name: str) -> None:
        while True:
            job = claim(store, name)
            if job is None:
                if not queue.list_jobs(store, status=QUEUED):
                    return
                continue
            with lock:
                claimed.setdefault(job.job_id, []).append(name)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert set(claimed) == ids
    assert all(len(names) == 1 for names in claimed.values()), claimed
    assert {j.attempts for j in queue.list_jobs(store)} == {1}


# ---------------------------------------------------------------- leases and attempts


def test_a_job_whose_worker_stopped_beating_is_queued_again_then_failed_after_the_last_attempt(store: Store) -> None:
    wall = Wall()
    job = submit(store, "generation", "ana", {})
    for attempt in (1, 2, 3):
        held = claim(store, f"w{attempt}", wall=wall)
        assert held is not None and held.attempts == attempt
        wall.advance(10)
        assert queue.requeue_expired(store, lease_s=30, max_attempts=3, wall=wall) == []  # within the lease
        assert queue.beat(store, held, wall=wall)
        wall.advance(31)  # the worker died: no beat for longer than the lease
        (changed,) = queue.requeue_expired(store, lease_s=30, max_attempts=3, wall=wall)
        assert changed.job_id == job.job_id and changed.error is not None
        assert changed.error["code"] == "worker_lost" and f"w{attempt}" in changed.error["message"]
        if attempt < 3:
            assert (changed.status, changed.worker) == (QUEUED, None)
            assert changed.error["message"].endswith("queued again")
    final = get_job(store, job.job_id)
    assert final.status == FAILED and final.attempts == 3 and final.finished_at is not None
    assert "ACCORD_JOB_MAX_ATTEMPTS=3; given up" in (final.error or {})["message"]
    assert claim(store, "w4", wall=wall) is None


def test_a_worker_that_lost_its_lease_changes_nothing(store: Store) -> None:
    wall = Wall()
    job = submit(store, "generation", "ana", {})
    stale = claim(store, "slow", wall=wall)
    assert stale is not None
    wall.advance(60)
    queue.requeue_expired(store, lease_s=30, max_attempts=3, wall=wall)
    current = claim(store, "fresh", wall=wall)
    assert current is not None and current.attempts == 2
    assert not queue.beat(store, stale, wall=wall)
    assert not queue.complete(store, stale, {"output_id": "OUT-STALE"})
    assert not queue.fail(store, stale, {"code": "x", "message": "x", "field": None})
    assert get_job(store, job.job_id).status == RUNNING and get_job(store, job.job_id).worker == "fresh"
    assert queue.complete(store, current, {"output_id": "OUT-FRESH"})
    assert get_job(store, job.job_id).result == {"output_id": "OUT-FRESH"}


# ---------------------------------------------------------------- what a worker does with an attempt


@pytest.fixture
def test_kinds(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Job kinds for these tests: one refused, one that always crashes, one that crashes once, one slow."""
    calls: dict[str, int] = {}

    def refused(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
        calls["refused"] = calls.get("refused", 0) + 1
        raise NotLicensed("model m may not serve generate now: the licence ended")

    def broken(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
        calls["broken"] = calls.get("broken", 0) + 1
        raise RuntimeError("disk full")

    def flaky(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
        calls["flaky"] = calls.get("flaky", 0) + 1
        if calls["flaky"] == 1:
            raise ConnectionError("the database went away")
        return {"ok": True}

    def slow(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
        first = get_job(store, job.job_id).heartbeat_at
        time.sleep(settings.job_heartbeat_s * 6)
        return {"first": str(first), "later": str(get_job(store, job.job_id).heartbeat_at)}

    for name, fn in (("refused", refused), ("broken", broken), ("flaky", flaky), ("slow", slow)):
        monkeypatch.setitem(KINDS, name, fn)
    return calls


def test_a_refusal_fails_the_job_at_once(store: Store, settings: Settings, test_kinds: dict[str, int]) -> None:
    job = submit(store, "refused", "ana", {})
    (ran,) = run_until_idle(store, quick(settings))
    assert ran.status == FAILED and ran.attempts == 1 and test_kinds["refused"] == 1
    assert ran.error == {
        "code": "not_licensed",
        "message": "model m may not serve generate now: the licence ended",
        "field": None,
    }
    assert get_job(store, job.job_id) == ran


def test_a_crash_is_retried_up_to_the_attempt_limit_then_failed_with_its_reason(
    store: Store, settings: Settings, test_kinds: dict[str, int]
) -> None:
    broken = submit(store, "broken", "ana", {})
    flaky = submit(store, "flaky", "ana", {})
    run_until_idle(store, quick(settings, job_max_attempts=3))
    failed, done = get_job(store, broken.job_id), get_job(store, flaky.job_id)
    assert failed.status == FAILED and failed.attempts == 3 and test_kinds["broken"] == 3
    assert failed.error == {"code": "internal", "message": "RuntimeError: disk full", "field": None}
    assert done.status == DONE and done.attempts == 2 and done.result == {"ok": True} and done.error is None


def test_a_running_job_beats_its_heartbeat(store: Store, settings: Settings, test_kinds: dict[str, int]) -> None:
    submit(store, "slow", "ana", {})
    (ran,) = run_until_idle(store, quick(settings, job_heartbeat_s=0.05))
    assert ran.status == DONE and ran.result is not None
    assert ran.result["later"] > ran.result["first"]


def test_a_job_of_a_kind_this_worker_does_not_know_fails_naming_it(store: Store, settings: Settings) -> None:
    job = queue.create_job(store, "from-a-newer-version", "ana", {})
    (ran,) = run_until_idle(store, quick(settings))
    assert ran.job_id == job.job_id and ran.status == FAILED
    assert "kind: 'from-a-newer-version' is not a job kind this worker runs" in (ran.error or {})["message"]


def test_a_worker_outlives_a_queue_it_cannot_reach_for_a_while(
    store: Store, settings: Settings, test_kinds: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    job = submit(store, "slow", "ana", {})
    real, calls = queue.claim, []

    def locked_once(*args: Any, **kwargs: Any) -> Job | None:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("UPDATE jobs …", {}, Exception("database is locked"))
        return real(*args, **kwargs)

    monkeypatch.setattr(queue, "claim", locked_once)
    stop = threading.Event()
    loop = threading.Thread(target=Worker(store, quick(settings)).run, args=(stop,))
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while get_job(store, job.job_id).status != DONE:
            assert loop.is_alive() and time.monotonic() < deadline, get_job(store, job.job_id)
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert len(calls) >= 2


def test_the_worker_command_runs_the_queue_until_idle(
    store: Store, settings: Settings, test_kinds: dict[str, int]
) -> None:
    submit(store, "flaky", "ana", {})
    result = CliRunner().invoke(cli, ["worker", "--until-idle"])
    assert result.exit_code == 0, result.output
    assert "ran 2 job(s)" in result.output  # the crash and the retry
    assert [j.status for j in queue.list_jobs(store)] == [DONE]


# ---------------------------------------------------------------- generation, on a tiny model

from tests.test_studio import trained  # noqa: E402,F401  (a tiny model, trained once per session)


def generation_job(store: Store, trained: dict[str, Any], seed: int = 5) -> Job:  # noqa: F811
    params = {
        "model_id": trained["model"].model_id,
        "creator_id": "ana",
        "seed": seed,
        "prompt": {"style": "reel", "key": None, "tempo_bpm": None, "bars": 4, "from_isrc": None}
        | {"prime_bars": 4, "temperature": 0.85},
    }
    return submit(store, "generation", "ana", params)


@pytest.mark.slow
def test_a_generation_run_again_makes_no_second_output_or_usage_event(
    store: Store,
    settings: Settings,
    trained: dict[str, Any],  # noqa: F811
) -> None:
    job = generation_job(store, trained)
    first = kinds.run_generation(store, settings, job)
    assert first["output_id"] == output_id_for(job.job_id)
    again = kinds.run_generation(store, settings, job)  # as the attempt after a crash would
    assert again["output_id"] == first["output_id"] and again["files"] == first["files"]
    assert count(store, "outputs") == 1
    assert [e["event_id"] for e in outputs.events(store)] == [f"gen-{first['output_id']}"]
    # a crash between storing the output and recording its event: the re-run records it, once
    with store.engine.begin() as conn:
        conn.execute(T["usage_events"].delete())
    kinds.run_generation(store, settings, job)
    kinds.run_generation(store, settings, job)
    assert count(store, "outputs") == 1 and len(outputs.events(store)) == 1


@pytest.mark.slow
def test_a_worker_keeps_a_model_loaded_between_jobs_and_loads_a_retrained_one_again(
    settings: Settings,
    trained: dict[str, Any],  # noqa: F811
) -> None:
    from accord.outputs.studio import _load, model_dir

    folder = model_dir(settings, trained["model"].model_id)
    first = _load(folder)
    assert _load(folder) is first  # the second job on the model loads nothing
    ckpt = (folder / "ckpt.pt").stat()
    os.utime(folder / "ckpt.pt", ns=(ckpt.st_atime_ns, ckpt.st_mtime_ns + 1_000_000_000))  # retrained in place
    again = _load(folder)
    assert again is not first and _load(folder) is again


@pytest.mark.slow
def test_a_worker_killed_mid_job_leaves_it_to_another_which_completes_it_exactly_once(
    store: Store,
    settings: Settings,
    trained: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    env = os.environ | {
        "ACCORD_JOB_LEASE_S": "2",
        "ACCORD_JOB_HEARTBEAT_S": "0.2",
        "ACCORD_JOB_POLL_S": "0.2",
        "ACCORD_JOB_MAX_ATTEMPTS": "3",
    }
    logs = [(tmp_path / f"worker{i}.log").open("wb") for i in range(2)]
    workers = [subprocess.Popen(worker_command(), env=env, stdout=log, stderr=subprocess.STDOUT) for log in logs]
    by_pid = {p.pid: p for p in workers}
    try:
        job = generation_job(store, trained)
        deadline = time.monotonic() + 120
        while (held := get_job(store, job.job_id)).status == QUEUED:
            assert time.monotonic() < deadline, "no worker claimed the job"
            time.sleep(0.05)
        assert held.status == RUNNING and held.worker is not None, held
        victim = by_pid[int(held.worker.split(":")[1])]
        victim.send_signal(signal.SIGKILL)  # mid-job: the worker dies without a word
        victim.wait(timeout=10)
        deadline = time.monotonic() + 300
        while (now := get_job(store, job.job_id)).status in (QUEUED, RUNNING):
            assert time.monotonic() < deadline, now
            time.sleep(0.2)
        log_text = "\n".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("worker*.log"))
        assert now.status == DONE, (now, log_text)
        assert now.attempts == 2 and now.worker != held.worker
        assert now.result is not None and now.result["output_id"] == output_id_for(job.job_id)
        assert count(store, "outputs") == 1
        assert [e["output_id"] for e in outputs.events(store) if e["kind"] == "generation"] == [now.result["output_id"]]
    finally:
        for p in workers:
            if p.poll() is None:
                p.terminate()
        for p in workers:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.close()


@pytest.mark.slow
def test_a_worker_process_stops_on_sigterm_between_jobs(store: Store, settings: Settings, tmp_path: Path) -> None:
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        (worker,) = start_workers(1, stdout=log)
        deadline = time.monotonic() + 120
        while "waiting for jobs" not in log_path.read_text(errors="replace"):
            assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.2)
        stop_workers([worker], grace_s=30)
    assert worker.returncode == 0, log_path.read_text(errors="replace")
    assert "stopped" in log_path.read_text(errors="replace")


# ---------------------------------------------------------------- the faces: API and serve


def test_the_api_only_queues_a_job_and_a_worker_runs_it(store: Store, settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from accord.api.app import create_app
    from accord.api.auth import create_key
    from accord.outputs.plans import parse_plans

    outputs.add_creator(store, "ana", "free", "GB", parse_plans(settings.plans))
    auth = {"Authorization": f"Bearer {create_key(store, role='creator', party_id='ana')[1]}"}
    with TestClient(create_app(settings, store=store)) as c:
        r = c.post("/v1/generations", headers=auth, json={"model_id": "m-none", "style": "reel", "bars": 4})
        assert r.status_code == 202 and r.json()["status"] == "queued" and r.json()["attempts"] == 0
        time.sleep(0.5)
        assert c.get(f"/v1/jobs/{r.json()['job_id']}", headers=auth).json()["status"] == "queued"
        job_threads = [t.name for t in threading.enumerate() if t.name.startswith(("accord-job", "accord-worker"))]
        assert job_threads == []  # nothing in the API process runs jobs
        (ran,) = run_until_idle(store, quick(settings))
        failed = c.get(f"/v1/jobs/{r.json()['job_id']}", headers=auth).json()
    assert ran.job_id == failed["job_id"] and failed["status"] == "failed" and failed["attempts"] == 1
    assert failed["error"]["code"] == "not_found" and "m-none" in failed["error"]["message"]


def test_serve_runs_n_api_processes_and_starts_and_stops_its_job_workers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    import accord.cli.worker as worker_cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setattr(worker_cli, "start_workers", lambda n: seen.setdefault("started", [f"w{i}" for i in range(n)]))
    monkeypatch.setattr(worker_cli, "stop_workers", lambda ws: seen.update(stopped=ws))
    result = CliRunner().invoke(cli, ["serve", "--processes", "3", "--job-workers", "2", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert seen["app"] == "accord.api.app:create_app" and seen["factory"] is True
    assert (seen["workers"], seen["port"]) == (3, 8123)
    assert seen["started"] == seen["stopped"] == ["w0", "w1"]
    assert "3 API process(es), 2 job worker(s)" in result.output


def test_a_heartbeat_no_shorter_than_the_lease_is_refused_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    from accord.errors import ValidationError
    from accord.settings import get_settings

    monkeypatch.setenv("ACCORD_JOB_LEASE_S", "2")
    monkeypatch.setenv("ACCORD_JOB_HEARTBEAT_S", "2")
    with pytest.raises(ValidationError, match=r"ACCORD_JOB_HEARTBEAT_S='2': must be shorter than ACCORD_JOB_LEASE_S"):
        get_settings()
    monkeypatch.setenv("ACCORD_JOB_HEARTBEAT_S", "0.5")
    assert get_settings().job_heartbeat_s == 0.5
